//! The trajectory reader (`read_trajectory` and its line-by-line record parsing). The first
//! byte picks the mode:
//! - 0: the rest is the file, as is;
//! - 1: a trajectory built from the rest is written by the writer and must read back equal,
//!   and with its last line torn it must read back without that record;
//! - 2: such a file with bytes changed, which must read as a value (Ok or Err).
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use cwm_protocol::{
    read_trajectory, Budgets, ExitStatus, Footer, Header, JsonlTrajectoryWriter, Message, OnBudget,
    Record, Role, ToolCall, ToolName, Trajectory, TrajectorySink, Turn, SCHEMA_VERSION,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

static PATH: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("cwm-fuzz-trajectory-{}.jsonl", std::process::id()))
});

fn tool(u: &mut Unstructured) -> Result<ToolName> {
    u.choose(&ToolName::ALL).copied()
}

fn message(u: &mut Unstructured) -> Result<Message> {
    let role = match u.int_in_range(0..=3)? {
        0 => Role::System,
        1 => Role::User,
        2 => Role::Assistant,
        // Tool names are written without surrounding whitespace.
        _ => Role::Tool(u.arbitrary::<String>()?.trim().to_string()),
    };
    Ok(Message::new(role, u.arbitrary::<String>()?))
}

fn header(u: &mut Unstructured) -> Result<Header> {
    Ok(Header {
        schema_version: SCHEMA_VERSION,
        harness_version: u.arbitrary()?,
        instance_id: u.arbitrary()?,
        repo: u.arbitrary()?,
        base_commit: u.arbitrary()?,
        image: u.arbitrary()?,
        model: u.arbitrary()?,
        policy: serde_json::json!({ "url": u.arbitrary::<String>()?, "seed": u.arbitrary::<u64>()? }),
        budgets: Budgets {
            max_turns: u.arbitrary()?,
            context_tokens: u.arbitrary()?,
            max_action_tokens: u.arbitrary()?,
            max_observation_tokens: u.arbitrary()?,
            command_timeout_secs: u.arbitrary()?,
            output_limit_bytes: u.arbitrary()?,
            wall_clock_secs: u.arbitrary()?,
            max_format_errors: u.arbitrary()?,
            max_prompt_tokens: u.arbitrary()?,
        },
        autosubmit: u.arbitrary()?,
        on_budget: *u.choose(&[
            OnBudget::Fail,
            OnBudget::LastSubmission,
            OnBudget::Autosubmit,
        ])?,
        tools: (0..u.int_in_range(0..=5)?)
            .map(|_| tool(u))
            .collect::<Result<_>>()?,
        messages: (0..u.int_in_range(0..=3)?)
            .map(|_| message(u))
            .collect::<Result<_>>()?,
        started_at: u.arbitrary()?,
    })
}

fn turn(u: &mut Unstructured) -> Result<Turn> {
    Ok(Turn {
        turn: u.arbitrary()?,
        started_at: u.arbitrary()?,
        finished_at: u.arbitrary()?,
        raw: u.arbitrary()?,
        thinking: u.arbitrary()?,
        answer: u.arbitrary()?,
        call: if u.arbitrary()? {
            Some(ToolCall::new(tool(u)?, u.arbitrary::<String>()?))
        } else {
            None
        },
        observation: if u.arbitrary()? {
            Some(message(u)?)
        } else {
            None
        },
        exit_code: u.arbitrary()?,
        success: u.arbitrary()?,
        format_error: u.arbitrary()?,
        restarted: u.arbitrary()?,
        truncated: u.arbitrary()?,
        submission: u.arbitrary()?,
        tokens_in: u.arbitrary()?,
        tokens_out: u.arbitrary()?,
        context_tokens: u.arbitrary()?,
        finish_reason: u.arbitrary()?,
        model_latency_ms: u.arbitrary()?,
        tool_latency_ms: u.arbitrary()?,
    })
}

fn footer(u: &mut Unstructured) -> Result<Footer> {
    Ok(Footer {
        status: *u.choose(&[
            ExitStatus::Submitted,
            ExitStatus::TurnLimit,
            ExitStatus::ContextLimit,
            ExitStatus::FormatErrorLimit,
            ExitStatus::TimeLimit,
            ExitStatus::ModelError,
            ExitStatus::EnvError,
        ])?,
        patch: u.arbitrary()?,
        error: u.arbitrary()?,
        turns: u.arbitrary()?,
        format_errors: u.arbitrary()?,
        tokens_in: u.arbitrary()?,
        tokens_out: u.arbitrary()?,
        context_tokens: u.arbitrary()?,
        model_time_ms: u.arbitrary()?,
        tool_time_ms: u.arbitrary()?,
        wall_time_ms: u.arbitrary()?,
        finished_at: u.arbitrary()?,
    })
}

fn trajectory(u: &mut Unstructured) -> Result<Trajectory> {
    Ok(Trajectory {
        header: header(u)?,
        turns: (0..u.int_in_range(0..=3)?)
            .map(|_| turn(u))
            .collect::<Result<_>>()?,
        footer: if u.arbitrary()? {
            Some(footer(u)?)
        } else {
            None
        },
    })
}

/// Writes `t` with the writer; the file's bytes.
fn write(t: &Trajectory) -> Vec<u8> {
    let Ok(mut writer) = JsonlTrajectoryWriter::create(PATH.as_path()) else {
        panic!("cannot create {}", PATH.display());
    };
    let records = std::iter::once(Record::Header(Box::new(t.header.clone())))
        .chain(t.turns.iter().map(|x| Record::Turn(Box::new(x.clone()))))
        .chain(t.footer.iter().map(|x| Record::Footer(Box::new(x.clone()))));
    for record in records {
        if let Err(err) = writer.write(&record) {
            panic!("write: {err}");
        }
    }
    std::fs::read(PATH.as_path()).unwrap_or_default()
}

fn read(bytes: &[u8]) -> std::result::Result<Trajectory, cwm_protocol::TrajectoryError> {
    if let Err(err) = std::fs::write(PATH.as_path(), bytes) {
        panic!("write {}: {err}", PATH.display());
    }
    let result = read_trajectory(&PATH);
    if let Err(err) = &result {
        let _ = err.to_string();
    }
    result
}

fn structured(u: &mut Unstructured, mutate: bool) -> Result<()> {
    let t = trajectory(u)?;
    let mut bytes = write(&t);
    if !mutate {
        match read_trajectory(&PATH) {
            Ok(back) => assert_eq!(back, t),
            Err(err) => panic!("a written trajectory does not read back: {err}"),
        }
        // Tear the last line at a byte chosen by the input.
        let body = &bytes[..bytes.len() - 1];
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let cut = start + u.choose_index(body.len() - start).unwrap_or(0);
        let mut expected = t.clone();
        let last_dropped = expected.footer.take().is_some() || expected.turns.pop().is_some();
        let result = read(&bytes[..cut]);
        if last_dropped {
            match result {
                Ok(back) => assert_eq!(back, expected),
                Err(err) => panic!("a torn last line is not left out: {err}"),
            }
        } else {
            assert!(result.is_err());
        }
        return Ok(());
    }
    for _ in 0..u.int_in_range(1..=4)? {
        let at = u.choose_index(bytes.len())?;
        bytes[at] = u.arbitrary()?;
    }
    if u.arbitrary()? {
        let len = u.choose_index(bytes.len() + 1)?;
        bytes.truncate(len);
    }
    let _ = read(&bytes);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = read(rest);
        }
        mode => {
            let _ = structured(&mut Unstructured::new(rest), mode == 2);
        }
    }
});
