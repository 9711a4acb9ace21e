//! A whole scripted episode rendered in CWM's chat format and compared byte for byte with a
//! checked-in transcript: the system and user prompts, tool turns, a format error, a session
//! restart, a failed and a successful submission, all through a user prompt profile.
//! `UPDATE_GOLDEN=1` rewrites the expected file (review the diff before committing it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod agent_support;

use std::path::PathBuf;

use agent_support::*;
use cwm_agent::{render_cwm_prompt, Message, Record, ReplayPolicy, Role};
use cwm_tools::{Profile, ToolName};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The conversation as the model saw it: the prompts, then each reply and what came back.
fn conversation(records: &[Record]) -> Vec<Message> {
    let mut messages = Vec::new();
    for record in records {
        match record {
            Record::Header(h) => messages.extend(h.messages.clone()),
            Record::Turn(t) => {
                messages.push(Message::new(Role::Assistant, t.raw.clone()));
                messages.extend(t.observation.clone());
            }
            Record::Footer(_) => {}
        }
    }
    messages
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scripted_episode_renders_exactly_as_the_golden_transcript() {
    let instance = fixture("paginate");
    let turns = [
        "<think>\nLook first.\n</think>\n<tool: bash>\nls\n</tool>",
        "<think>\nTwo at once.\n</think>\nno call here",
        "<think>\nWait.\n</think>\n<tool: bash>\nsleep 30\n</tool>",
        "<think>\nEmpty patch.\n</think>\n<tool: bash>\n: > /tmp/empty.diff\n</tool>",
        "<think>\nSubmit it.\n</think>\n<tool: submit>\n/tmp/empty.diff\n</tool>",
        "<think>\nA real one.\n</think>\n<tool: bash>\nprintf 'x\\n' >> README.md && git diff > /tmp/p.diff\n</tool>",
        "<think>\nSubmit.\n</think>\n<tool: submit>\n/tmp/p.diff\n</tool>",
        "<think>\nDone.\n</think>\nI changed the README.",
    ];
    let mut policy = ReplayPolicy::from_script(&turns.join("\n---\n"), "golden");
    let mut config = config();
    config.budgets.command_timeout_secs = 2;
    config.tools = ToolName::CWM.to_vec();
    config.profile = Profile::load(&data("golden_profile.toml")).expect("profile loads");
    let (outcome, records) = episode(&instance, &mut policy, &config, None).await;
    assert_eq!(
        outcome.status,
        cwm_agent::ExitStatus::Submitted,
        "{:?}",
        outcome.error
    );
    let rendered = render_cwm_prompt(&conversation(&records));
    let expected_path = data("golden_transcript.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &rendered).expect("write golden");
    }
    let expected = std::fs::read_to_string(&expected_path).expect("golden transcript");
    if rendered != expected {
        let diff = similar::TextDiff::from_lines(&expected, &rendered);
        panic!(
            "the transcript differs from {}:\n{}",
            expected_path.display(),
            diff.unified_diff().header("expected", "rendered")
        );
    }
}
