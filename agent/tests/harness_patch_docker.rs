//! Patches the harness builds itself (the budget autosubmit and the oracle) in real fixture
//! containers: they leave out what the image already held untracked, carry binary files
//! whole, and apply where they are graded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod agent_support;

use std::time::Duration;

use agent_support::*;
use cwm_agent::{
    run_episode, EpisodeConfig, EpisodeContext, EpisodeOutcome, ExitStatus, NoopObserver,
    OraclePolicy, Policy, ReplayPolicy,
};
use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, REPO_ROOT};

const TIMEOUT: Duration = Duration::from_secs(60);
/// A build artefact present in the image, not ignored by the repo: a copy of the package.
const BUILD_COPY: &str = "mkdir -p build/lib && cp -r pagekit build/lib/";

fn bash(cmd: &str) -> String {
    format!("<think>\nrun it\n</think>\n<tool: bash>\n{cmd}\n</tool>")
}

/// A container of `instance` as its image would be after `setup`, before the repo hygiene
/// (the episode runs it, and it records the repo as the episode finds it).
async fn image_with(instance: &Instance, setup: &str, test: &str) -> Container {
    let docker = docker().await;
    let run = format!("test-agent-{test}-{}", std::process::id());
    let config = ContainerConfig::new(instance.image_name(), run, &instance.instance_id);
    let container = Container::start(&docker, &config)
        .await
        .expect("container starts");
    let out = container
        .exec(&format!("cd {REPO_ROOT} && {setup}"), TIMEOUT)
        .await
        .expect("setup runs");
    assert_eq!(out.exit_code, Some(0), "{}", out.output);
    container
}

async fn run_in(
    container: &Container,
    instance: &Instance,
    policy: &mut dyn Policy,
    config: &EpisodeConfig,
) -> EpisodeOutcome {
    let mut records = Vec::new();
    run_episode(EpisodeContext {
        container,
        instance,
        policy,
        config,
        recorder: &mut records,
        observer: &mut NoopObserver,
    })
    .await
    .expect("episode runs")
}

/// Applies `patch` as the grader does (`git apply -v`) in a fresh container holding the same
/// untracked files; returns git's output on failure.
async fn apply_where_graded(instance: &Instance, setup: &str, patch: &str) -> Result<(), String> {
    let container = image_with(instance, setup, "grade").await;
    container
        .write_file("/tmp/model.patch", patch.as_bytes())
        .await
        .expect("patch written");
    let out = container
        .exec(
            &format!("cd {REPO_ROOT} && git apply -v /tmp/model.patch"),
            TIMEOUT,
        )
        .await
        .expect("git apply runs");
    container.remove().await.expect("removed");
    if out.exit_code == Some(0) {
        Ok(())
    } else {
        Err(out.output)
    }
}

/// Autosubmit once `turns` replies have acted (the reply that reaches the turn limit does not
/// act, as in CWM, so scripts end with one more).
fn autosubmit_after(turns: usize) -> EpisodeConfig {
    let mut config = config();
    config.budgets.max_turns = turns as u64 + 1;
    config.on_budget = cwm_agent::OnBudget::Autosubmit;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn autosubmit_leaves_out_what_was_untracked_at_the_start() {
    let instance = fixture("paginate");
    let container = image_with(&instance, BUILD_COPY, "autosubmit-untracked").await;
    let fix = "sed -i 's|return total // per_page + 1|return (total + per_page - 1) // per_page|' pagekit/paginator.py";
    let mut policy = ReplayPolicy::from_script(
        &[
            bash(&format!("{fix} && echo 'a note' > NOTES.txt")),
            bash("echo changed >> build/lib/pagekit/paginator.py"),
            bash("true"),
        ]
        .join("\n---\n"),
        "test",
    );
    let outcome = run_in(&container, &instance, &mut policy, &autosubmit_after(2)).await;
    container.remove().await.expect("removed");
    assert_eq!(outcome.status, ExitStatus::TurnLimit, "{:?}", outcome.error);
    let patch = outcome.patch.expect("the working-tree diff");
    assert!(!patch.contains("build/lib"), "{patch}");
    assert!(
        patch.contains("+++ b/NOTES.txt"),
        "the model's new file: {patch}"
    );
    assert!(patch.contains("+    return (total + per_page - 1) // per_page"));
    apply_where_graded(&instance, BUILD_COPY, &patch)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{patch}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_oracle_leaves_out_what_was_untracked_at_the_start() {
    let instance = fixture("paginate");
    let container = image_with(&instance, BUILD_COPY, "oracle-untracked").await;
    let outcome = run_in(&container, &instance, &mut OraclePolicy::new(), &config()).await;
    container.remove().await.expect("removed");
    assert_eq!(outcome.status, ExitStatus::Submitted, "{:?}", outcome.error);
    let patch = outcome.patch.expect("a patch");
    assert_eq!(
        normalise_diff(&patch),
        normalise_diff(&instance.patch),
        "{patch}"
    );
    apply_where_graded(&instance, BUILD_COPY, &patch)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{patch}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn autosubmit_carries_binary_files_whole_and_leaves_out_what_is_not_text() {
    let instance = fixture("paginate");
    let container = image_with(&instance, "true", "autosubmit-binary").await;
    let mut policy = ReplayPolicy::from_script(
        &[
            bash(
                "printf '\\000\\001\\377\\376' > data.bin && printf 'caf\\351\\n' > latin1.txt \
                 && echo changed >> README.md",
            ),
            bash("true"),
        ]
        .join("\n---\n"),
        "test",
    );
    let outcome = run_in(&container, &instance, &mut policy, &autosubmit_after(1)).await;
    container.remove().await.expect("removed");
    assert_eq!(outcome.status, ExitStatus::TurnLimit, "{:?}", outcome.error);
    let patch = outcome.patch.expect("the working-tree diff");
    assert!(
        patch.contains("diff --git a/data.bin b/data.bin") && patch.contains("GIT binary patch"),
        "{patch}"
    );
    assert!(
        !patch.contains('\u{FFFD}') && !patch.contains("latin1.txt"),
        "{patch}"
    );
    assert!(patch.contains("+changed"), "{patch}");
    let note = outcome.error.unwrap_or_default();
    assert!(note.contains("latin1.txt"), "{note}");
    apply_where_graded(&instance, "true", &patch)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{patch}"));
}
