#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the trajectory reader (`read_trajectory` and its line-by-line record
//! parsing): no file makes it panic, a bad file is a `TrajectoryError` value naming a line
//! of it, a trajectory written by the writer reads back equal, and a torn last line (a
//! crash mid-write) reads back as the trajectory without that record.

use std::path::Path;

use cwm_protocol::{
    read_trajectory, BadRecord, Budgets, ExitStatus, Footer, Header, JsonlTrajectoryWriter,
    Message, OnBudget, Record, Role, ToolCall, ToolName, Trajectory, TrajectoryError,
    TrajectorySink, Turn, SCHEMA_VERSION,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "(?s).{0,40}", Just(String::new())]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::System),
        Just(Role::User),
        Just(Role::Assistant),
        // A tool name round-trips when it has no surrounding whitespace.
        "[a-z_]{0,8}".prop_map(Role::Tool),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (role(), text()).prop_map(|(role, content)| Message { role, content })
}

fn tool() -> impl Strategy<Value = ToolName> {
    proptest::sample::select(ToolName::ALL.to_vec())
}

/// Plain JSON: no floats, whose text form need not read back to the same bits.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn budgets() -> impl Strategy<Value = Budgets> {
    (
        any::<u64>(),
        any::<usize>(),
        any::<usize>(),
        any::<usize>(),
        any::<u64>(),
        any::<usize>(),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        any::<usize>(),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i)| Budgets {
            max_turns: a,
            context_tokens: b,
            max_action_tokens: c,
            max_observation_tokens: d,
            command_timeout_secs: e,
            output_limit_bytes: f,
            wall_clock_secs: g,
            max_format_errors: h,
            max_prompt_tokens: i,
        })
}

fn header() -> impl Strategy<Value = Header> {
    (
        (text(), text(), text(), text(), text(), json()),
        (
            budgets(),
            any::<bool>(),
            proptest::sample::select(vec![
                OnBudget::Fail,
                OnBudget::LastSubmission,
                OnBudget::Autosubmit,
            ]),
            proptest::collection::vec(tool(), 0..6),
            proptest::collection::vec(message(), 0..4),
            text(),
        ),
    )
        .prop_map(
            |(
                (instance_id, repo, base_commit, image, model, policy),
                (budgets, autosubmit, on_budget, tools, messages, started_at),
            )| Header {
                schema_version: SCHEMA_VERSION,
                harness_version: "0.1.0".into(),
                instance_id,
                repo,
                base_commit,
                image,
                model,
                policy,
                budgets,
                autosubmit,
                on_budget,
                tools,
                messages,
                started_at,
            },
        )
}

fn turn() -> impl Strategy<Value = Turn> {
    (
        (
            any::<u64>(),
            text(),
            text(),
            text(),
            any::<Option<String>>(),
            text(),
        ),
        (
            proptest::option::of((tool(), text()).prop_map(|(t, b)| ToolCall::new(t, b))),
            proptest::option::of(message()),
            any::<Option<i64>>(),
            any::<Option<bool>>(),
            proptest::option::of(text()),
            any::<(bool, bool)>(),
        ),
        (
            proptest::option::of(text()),
            any::<(usize, usize, usize)>(),
            proptest::option::of(text()),
            any::<(u64, u64)>(),
        ),
    )
        .prop_map(
            |(
                (turn, started_at, finished_at, raw, thinking, answer),
                (call, observation, exit_code, success, format_error, (restarted, truncated)),
                (submission, (tokens_in, tokens_out, context_tokens), finish_reason, (m, t)),
            )| Turn {
                turn,
                started_at,
                finished_at,
                raw,
                thinking,
                answer,
                call,
                observation,
                exit_code,
                success,
                format_error,
                restarted,
                truncated,
                submission,
                tokens_in,
                tokens_out,
                context_tokens,
                finish_reason,
                model_latency_ms: m,
                tool_latency_ms: t,
            },
        )
}

fn footer() -> impl Strategy<Value = Footer> {
    (
        proptest::sample::select(vec![
            ExitStatus::Submitted,
            ExitStatus::TurnLimit,
            ExitStatus::ContextLimit,
            ExitStatus::FormatErrorLimit,
            ExitStatus::TimeLimit,
            ExitStatus::ModelError,
            ExitStatus::EnvError,
        ]),
        proptest::option::of(text()),
        proptest::option::of(text()),
        any::<(u64, u64, u64, u64)>(),
        any::<usize>(),
        any::<(u64, u64, u64)>(),
        text(),
    )
        .prop_map(
            |(
                status,
                patch,
                error,
                (turns, format_errors, tokens_in, tokens_out),
                context_tokens,
                (m, t, w),
                finished_at,
            )| Footer {
                status,
                patch,
                infrastructure: error.is_some(),
                error,
                turns,
                format_errors,
                tokens_in,
                tokens_out,
                context_tokens,
                model_time_ms: m,
                tool_time_ms: t,
                wall_time_ms: w,
                finished_at,
            },
        )
}

fn trajectory() -> impl Strategy<Value = Trajectory> {
    (
        header(),
        proptest::collection::vec(turn(), 0..4),
        proptest::option::of(footer()),
    )
        .prop_map(|(header, turns, footer)| Trajectory {
            header,
            turns,
            footer,
        })
}

fn records(t: &Trajectory) -> Vec<Record> {
    let mut records = vec![Record::Header(Box::new(t.header.clone()))];
    records.extend(
        t.turns
            .iter()
            .map(|turn| Record::Turn(Box::new(turn.clone()))),
    );
    records.extend(t.footer.iter().map(|f| Record::Footer(Box::new(f.clone()))));
    records
}

fn write(path: &Path, t: &Trajectory) {
    let mut writer = JsonlTrajectoryWriter::create(path).unwrap();
    for record in records(t) {
        writer.write(&record).unwrap();
    }
}

/// Reads `bytes` as a trajectory file: a value either way, and an error names a line.
fn read_bytes(bytes: &[u8]) -> Result<Trajectory, TrajectoryError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    std::fs::write(&path, bytes).unwrap();
    let result = read_trajectory(&path);
    match &result {
        Ok(t) => assert_eq!(t.header.schema_version, SCHEMA_VERSION),
        Err(TrajectoryError::Malformed { line, problem, .. }) => {
            let lines = bytes.split(|&b| b == b'\n').count();
            assert!(
                *line >= 1 && *line <= lines.max(1),
                "line {line} of {lines}"
            );
            assert!(!problem.to_string().is_empty());
        }
        Err(TrajectoryError::Io { .. }) => assert!(std::str::from_utf8(bytes).is_err()),
    }
    if let Err(err) = &result {
        assert!(!err.to_string().is_empty());
    }
    result
}

/// Lines of a trajectory file and lines close to them.
fn near_valid_file() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        3 => trajectory().prop_flat_map(|t| {
            let lines: Vec<String> = records(&t).iter().map(|r| serde_json::to_string(r).unwrap()).collect();
            proptest::sample::select(lines)
        }),
        1 => (trajectory(), any::<proptest::sample::Index>()).prop_map(|(t, at)| {
            // A record cut short.
            let line = serde_json::to_string(&records(&t)[0]).unwrap();
            let cut = at.index(line.len() + 1);
            String::from_utf8_lossy(&line.as_bytes()[..cut]).into_owned()
        }),
        1 => any::<u32>().prop_map(|v| format!("{{\"type\":\"header\",\"schema_version\":{v}}}")),
        1 => proptest::sample::select(vec![
            "", " ", "{}", "null", "[]", "{\"type\":\"turn\"}", "{\"type\":\"footer\"}",
            "{\"type\":\"other\"}", "\u{feff}", "\r",
        ]).prop_map(str::to_string),
        1 => ".{0,16}",
    ];
    proptest::collection::vec(line, 0..6).prop_map(|lines| lines.join("\n").into_bytes())
}

proptest! {
    #[test]
    fn any_bytes_read_as_a_trajectory_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_bytes(&bytes);
    }

    #[test]
    fn any_text_reads_as_a_trajectory_or_an_error(text in any::<String>()) {
        let _ = read_bytes(text.as_bytes());
    }

    #[test]
    fn near_valid_files_read_as_a_trajectory_or_an_error(bytes in near_valid_file()) {
        if let Ok(t) = read_bytes(&bytes) {
            // Every record read came from a line that parsed.
            let text = String::from_utf8(bytes).unwrap();
            prop_assert!(text.contains("\"type\":\"header\""));
            prop_assert!(t.turns.len() <= text.matches("\"type\":\"turn\"").count());
        }
    }

    #[test]
    fn a_written_trajectory_reads_back_equal(t in trajectory()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("t.jsonl");
        write(&path, &t);
        prop_assert_eq!(read_trajectory(&path).unwrap(), t);
    }

    #[test]
    fn a_torn_last_line_is_left_out(t in trajectory(), at in any::<proptest::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        write(&path, &t);
        let bytes = std::fs::read(&path).unwrap();
        // The start of the last line, and its length without the newline.
        let body = &bytes[..bytes.len() - 1];
        let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let cut = start + at.index(body.len() - start);
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let read = read_trajectory(&path);
        let mut expected = t.clone();
        if expected.footer.take().is_none() && expected.turns.pop().is_none() {
            // Only the header was written: without it there is no trajectory.
            let is_no_header = matches!(
                read,
                Err(TrajectoryError::Malformed { problem: BadRecord::NoHeader, .. })
                    | Err(TrajectoryError::Malformed { problem: BadRecord::Json(_), .. })
                    | Err(TrajectoryError::Io { .. })
            );
            prop_assert!(is_no_header, "{:?}", read);
        } else {
            prop_assert_eq!(read.unwrap(), expected);
        }
    }

    #[test]
    fn another_schema_version_is_refused(t in trajectory(), version in any::<u32>()) {
        prop_assume!(version != SCHEMA_VERSION);
        let mut t = t;
        t.header.schema_version = version;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        write(&path, &t);
        let read = read_trajectory(&path);
        let refused = matches!(
            read,
            Err(TrajectoryError::Malformed { line: 1, problem: BadRecord::UnsupportedSchema { found }, .. }) if found == version
        );
        prop_assert!(refused, "{:?}", read);
    }
}

/// Found by `a_torn_last_line_is_left_out`: a crash that tore the last line inside a
/// multi-byte character made the whole file unreadable (`stream did not contain valid
/// UTF-8`) instead of leaving the torn line out.
#[test]
fn a_last_line_torn_inside_a_character_is_left_out() {
    let header = r#"{"type":"header","schema_version":1,"harness_version":"0.1.0","instance_id":"a","repo":"r","base_commit":"c","image":"i","model":"m","policy":null,"budgets":{"max_turns":1,"context_tokens":1,"max_action_tokens":1,"max_observation_tokens":1,"command_timeout_secs":1,"output_limit_bytes":1,"wall_clock_secs":null},"autosubmit":false,"messages":[],"started_at":"t"}"#;
    let mut bytes = format!("{header}\n{{\"type\":\"turn\",\"raw\":\"caf\u{e9}").into_bytes();
    bytes.pop(); // half of `é`
    let t = read_bytes(&bytes).unwrap();
    assert_eq!(t.header.instance_id, "a");
    assert!(t.turns.is_empty() && t.footer.is_none());
    // Anywhere else, bytes that are not UTF-8 are still an error.
    let mut bytes = format!("{header}\n").into_bytes();
    bytes.extend(b"\xff\n");
    bytes.extend(header.as_bytes());
    assert!(matches!(
        read_bytes(&bytes),
        Err(TrajectoryError::Io { .. })
    ));
}
