//! The episode loop end to end in real Docker containers of the fixture images: the oracle on
//! every fixture, replay of its trajectory, and scripted replays for every exit status and
//! every format error.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod agent_support;

use std::time::Duration;

use agent_support::*;
use cwm_agent::{
    read_trajectory, replay_and_compare, run_episode, EpisodeContext, EpisodeObserver, ExitStatus,
    JsonlTrajectoryWriter, NoopObserver, OpenAiConfig, OpenAiPolicy, OraclePolicy, ReplayPolicy,
    Turn,
};
use cwm_env::REPO_ROOT;

/// A replay of `turns`; a turn without `</think>` is an answer and gets one in front.
fn script(turns: &[&str]) -> ReplayPolicy {
    let turns: Vec<String> = turns
        .iter()
        .map(|t| {
            if t.contains("</think>") {
                t.to_string()
            } else {
                format!("ok\n</think>\n{t}")
            }
        })
        .collect();
    ReplayPolicy::from_script(&turns.join("\n---\n"), "test-script")
}

fn bash(cmd: &str) -> String {
    format!("<think>\nrun it\n</think>\n<tool: bash>\n{cmd}\n</tool>")
}

#[tokio::test(flavor = "multi_thread")]
async fn oracle_solves_every_fixture_and_its_replay_reproduces() {
    let docker = docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for instance in fixtures() {
        let path = dir.path().join(format!("{}.jsonl", instance.instance_id));
        let box_ = container(&docker, &instance).await;
        let mut recorder = JsonlTrajectoryWriter::create(&path).expect("trajectory file");
        let outcome = run_episode(EpisodeContext {
            container: &box_,
            instance: &instance,
            policy: &mut OraclePolicy::new(),
            config: &config(),
            recorder: &mut recorder,
            observer: &mut NoopObserver,
        })
        .await
        .expect("episode runs");
        box_.remove().await.expect("removed");
        let iid = &instance.instance_id;
        assert_eq!(
            outcome.status,
            ExitStatus::Submitted,
            "{iid}: {:?}",
            outcome.error
        );
        let patch = outcome.patch.expect("a patch");
        assert_eq!(
            normalise_diff(&patch),
            normalise_diff(&instance.patch),
            "{iid}:\n{patch}"
        );

        let trajectory = read_trajectory(&path).expect("trajectory reads back");
        assert_eq!(trajectory.turns.len() as u64, outcome.turns);
        assert!(
            trajectory.turns.iter().all(|t| t.format_error.is_none()),
            "{iid}: {:?}",
            trajectory.turns.iter().find_map(|t| t.format_error.clone())
        );
        let replay_container = container(&docker, &instance).await;
        let report = replay_and_compare(&replay_container, &instance, &trajectory, &path).await;
        replay_container.remove().await.expect("removed");
        let report = report.expect("replay runs");
        assert!(report.identical(), "{iid}: {:#?}", report.mismatches);
        assert_eq!(report.status_replayed, ExitStatus::Submitted);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scripted_tools_and_format_errors() {
    let instance = fixture("paginate");
    let turns = [
        "I will just talk.",
        "<tool: bash>\nls\n</tool>\n<tool: bash>\npwd\n</tool>",
        "<tool: python>\nprint(1)\n</tool>",
        "<tool: bash>\nls",
        "<think>\n<tool: bash>\nls\n</tool>\n</think>\nnothing here",
        "x\n</think>\ny\n</think>\n<tool: bash>\nls\n</tool>",
        "<tool: edit>\npagekit/paginator.py\n<<<<<<< SEARCH\nno such line\n=======\nx\n>>>>>>> REPLACE\n</tool>",
        "<tool: edit>\npagekit/paginator.py\n<<<<<<< SEARCH\n\n=======\nx\n>>>>>>> REPLACE\n</tool>",
        "<tool: create>\npagekit/paginator.py\nx\n</tool>",
        "<tool: create>\nnotes/new.txt\nx\n</tool>",
        "<tool: create>\nnew.txt\nhello\n\n</tool>",
        "<tool: bash>\n: > /tmp/empty.diff; echo nope > /tmp/bad.diff; cat new.txt; cd /tmp; echo $((6*7))\n</tool>",
        "<tool: submit>\n/tmp/empty.diff\n</tool>",
        "<tool: submit>\n/tmp/bad.diff\n</tool>",
        // The session is in /tmp now, and relative paths follow it (CWM): name the file fully.
        &format!("<tool: edit>\n{REPO_ROOT}/new.txt\n<<<<<<< SEARCH\nhello\n=======\nhello world\n>>>>>>> REPLACE\n</tool>"),
        &bash(&format!("cd {REPO_ROOT} && git add -N . && git diff > /tmp/p.diff && pwd")),
        "<tool: submit>\n/tmp/p.diff\n</tool>",
        "All done.",
    ];
    let (outcome, records) = episode(&instance, &mut script(&turns), &config(), None).await;
    let t = turns_of(&records);
    assert_eq!(outcome.status, ExitStatus::Submitted, "{:?}", outcome.error);
    assert_eq!(t.len(), turns.len());
    let fe = |i: usize| t[i].format_error.clone().unwrap_or_default();
    assert!(fe(0).starts_with("FormatError: no tool call"), "{}", fe(0));
    assert!(
        fe(1).contains("found 2 tool calls (bash, bash)"),
        "{}",
        fe(1)
    );
    assert!(fe(2).contains("unknown tool `python`"), "{}", fe(2));
    // An unterminated call is a tag-count mismatch, as in CWM.
    assert!(
        fe(3).contains("found 1 `<tool:` and 0 `</tool>`"),
        "{}",
        fe(3)
    );
    assert!(fe(4).contains("inside <think>"), "{}", fe(4));
    assert!(fe(5).contains("found 2 `</think>` tags"), "{}", fe(5));
    for turn in &t[..6] {
        let obs = turn
            .observation
            .as_ref()
            .expect("format errors get a message");
        assert_eq!(obs.role, cwm_agent::Role::User);
        assert!(obs.content.starts_with("FormatError: "));
    }
    let out = |i: usize| {
        t[i].observation
            .as_ref()
            .map(|m| m.content.clone())
            .unwrap_or_default()
    };
    assert!(out(6).contains("occur 0 times"), "{}", out(6));
    assert!(out(7).contains("search lines are empty"), "{}", out(7));
    assert!(out(8).contains("already exists"), "{}", out(8));
    assert!(out(9).contains("does not exist"), "{}", out(9));
    assert!(
        out(10).contains(&format!("Created {REPO_ROOT}/new.txt")),
        "{}",
        out(10)
    );
    assert!(
        out(11).starts_with("<output>\nhello\n42\n</output>\n\n<budget>\n* Remaining turns: "),
        "{}",
        out(11)
    );
    assert_eq!(t[11].exit_code, Some(0));
    assert!(out(12).contains("is empty"), "{}", out(12));
    assert!(out(13).contains("must start with `diff`"), "{}", out(13));
    assert!(
        out(14).contains(&format!("Edited {REPO_ROOT}/new.txt")),
        "{}",
        out(14)
    );
    assert!(
        out(16).contains("<submission>\ndiff --git a/new.txt b/new.txt"),
        "{}",
        out(16)
    );
    assert!(t[17].observation.is_none() && t[17].call.is_none());
    let patch = outcome.patch.expect("submitted patch");
    assert!(patch.contains("+hello world"), "{patch}");
    assert_eq!(outcome.format_errors, 6);
}

fn turns_of(records: &[cwm_agent::Record]) -> Vec<Turn> {
    turns(records)
}

#[tokio::test(flavor = "multi_thread")]
async fn budget_exit_statuses() {
    let instance = fixture("jsonpointer");

    let mut c = config();
    c.budgets.max_turns = 2;
    c.on_budget = cwm_agent::OnBudget::Autosubmit;
    let mut policy = script(&[&bash("echo changed >> README.md"), &bash("ls"), &bash("ls")]);
    let (o, records) = episode(&instance, &mut policy, &c, None).await;
    assert_eq!(o.status, ExitStatus::TurnLimit);
    assert_eq!(o.turns, 2);
    assert!(
        o.patch.as_deref().is_some_and(|p| p.contains("+changed")),
        "autosubmit diff: {:?}",
        o.patch
    );
    // The reply that reaches the limit is not executed (CWM); the one before saw 1 turn left.
    let t = turns_of(&records);
    assert!(t[1].observation.is_none() && t[1].call.is_none());
    assert!(t[0]
        .observation
        .as_ref()
        .expect("obs")
        .content
        .contains("* Remaining turns: 1"));

    let mut c = config();
    c.budgets.max_format_errors = Some(2);
    let (o, _) = episode(
        &instance,
        &mut script(&["no call", "still none", "x"]),
        &c,
        None,
    )
    .await;
    assert_eq!(o.status, ExitStatus::FormatErrorLimit);
    assert_eq!(o.turns, 2);

    let mut c = config();
    let start = {
        let mut probe = script(&[]);
        let (o, _) = episode(&instance, &mut probe, &c, None).await;
        assert_eq!(
            o.status,
            ExitStatus::ModelError,
            "an empty replay is a model error"
        );
        assert!(o.error.unwrap_or_default().contains("no assistant turn 1"));
        o.context_tokens
    };
    c.budgets.context_tokens = start + 200;
    let (o, records) = episode(
        &instance,
        &mut script(&[&bash("seq 1 2000"), &bash("ls")]),
        &c,
        None,
    )
    .await;
    assert_eq!(o.status, ExitStatus::ContextLimit);
    let t = turns_of(&records);
    assert_eq!(t.len(), 1);
    let obs = t[0].observation.as_ref().expect("observation");
    assert!(
        obs.content.contains("* Remaining tokens: -"),
        "{}",
        obs.content
    );

    let mut c = config();
    c.budgets.wall_clock_secs = Some(1);
    let mut slow = script(&[&bash("ls")]).with_delay(Duration::from_secs(5));
    let (o, _) = episode(&instance, &mut slow, &c, None).await;
    assert_eq!(o.status, ExitStatus::TimeLimit);
    assert_eq!(o.turns, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn model_and_env_errors() {
    let instance = fixture("semver");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut config_http = OpenAiConfig::new("nobody", Some(format!("http://127.0.0.1:{port}/v1")));
    config_http.max_retries = 1;
    config_http.initial_backoff = Duration::from_millis(10);
    let mut policy = OpenAiPolicy::new(config_http).expect("client");
    let (o, _) = episode(&instance, &mut policy, &config(), None).await;
    assert_eq!(o.status, ExitStatus::ModelError);
    let error = o.error.unwrap_or_default();
    assert!(
        error.contains("after 2 attempt(s)") && error.contains(&port.to_string()),
        "{error}"
    );

    // The container disappears after the first turn: the next tool call is an env error.
    struct Remover;
    impl EpisodeObserver for Remover {
        fn on_turn(&mut self, turn: &Turn) {
            if turn.turn == 1 {
                let id = turn
                    .observation
                    .as_ref()
                    .map(|m| m.content.trim().to_string())
                    .unwrap_or_default();
                let id = id.lines().nth(1).unwrap_or_default().to_string();
                let status = std::process::Command::new("docker")
                    .args(["rm", "-f", &id])
                    .output()
                    .expect("docker cli");
                assert!(
                    status.status.success(),
                    "{}",
                    String::from_utf8_lossy(&status.stderr)
                );
            }
        }
    }
    let mut policy = script(&[&bash("cat /etc/hostname"), &bash("ls")]);
    let (o, _) = episode(&instance, &mut policy, &config(), Some(&mut Remover)).await;
    assert_eq!(o.status, ExitStatus::EnvError);
    assert!(o
        .error
        .unwrap_or_default()
        .contains("container environment failed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn session_restarts_are_announced() {
    let instance = fixture("iniparse");
    let mut c = config();
    c.budgets.command_timeout_secs = 2;
    c.budgets.output_limit_bytes = 20_000;
    c.budgets.max_observation_tokens = 2_000;
    let turns = [
        bash("export FOO=set; cd /tmp; sleep 30"),
        bash("echo ${FOO:-unset}; pwd"),
        bash("yes"),
        bash("seq 1 3000"),
    ];
    let turns: Vec<&str> = turns.iter().map(String::as_str).collect();
    let (_, records) = episode(&instance, &mut script(&turns), &c, None).await;
    let t = turns_of(&records);
    let out = |i: usize| {
        t[i].observation
            .as_ref()
            .map(|m| m.content.clone())
            .unwrap_or_default()
    };
    assert!(t[0].restarted && t[0].exit_code.is_none());
    assert!(
        out(0).contains("did not finish within 2 seconds") && out(0).contains("fresh session"),
        "{}",
        out(0)
    );
    assert!(
        out(1).starts_with(&format!("<output>\nunset\n{REPO_ROOT}\n</output>")),
        "{}",
        out(1)
    );
    assert!(t[2].restarted, "{}", out(2));
    assert!(out(2).contains("too much output"), "{}", out(2));
    assert!(
        !t[3].restarted && t[3].truncated,
        "long output is cut in tokens"
    );
    // CWM cuts the whole message from the right, budget block included.
    assert!(out(3).ends_with("[...]"), "{}", out(3));
}

/// An image without a git repository at /testbed: the hygiene the container started with
/// fails, and the first tool call ends the episode as an env error naming it; the model
/// never sees an unclean repository.
#[tokio::test(flavor = "multi_thread")]
async fn failed_startup_hygiene_is_an_env_error() {
    let docker = docker().await;
    let instance = fixture("semver");
    let base = cwm_env::build_base_image(&docker)
        .await
        .expect("base image (cached)");
    let no_repo = cwm_env::ContainerConfig::for_episode(base, "test-agent", "no-repo");
    let container = cwm_env::Container::start(&docker, &no_repo)
        .await
        .expect("container starts");
    let mut policy = script(&[&bash("echo should-not-run")]);
    let mut records = Vec::new();
    let outcome = run_episode(EpisodeContext {
        container: &container,
        instance: &instance,
        policy: &mut policy,
        config: &config(),
        recorder: &mut records,
        observer: &mut NoopObserver,
    })
    .await
    .expect("episode runs");
    container.remove().await.expect("container removed");
    assert_eq!(outcome.status, ExitStatus::EnvError, "{outcome:?}");
    let error = outcome.error.unwrap_or_default();
    assert!(error.contains("cleaning the git history"), "{error}");
    assert!(
        turns(&records).iter().all(|t| !t
            .observation
            .as_ref()
            .is_some_and(|o| o.content.contains("should-not-run"))),
        "the command ran"
    );
}
