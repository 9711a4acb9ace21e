//! The run pipeline as a library, against the real Docker daemon and the fixture images,
//! without the binary: a whole run, its resume, a stop, and one instance solved and graded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::Path;
use std::process::Command;

use cwm_agent::{NoopObserver, NullSink, ReplayPolicy};
use cwm_bench::config::{ConfigOverrides, RunConfig};
use cwm_bench::pipeline::{grade, solve, Run, Task};

/// A stop removes every live container of the process (as the binary, which runs one run),
/// so the tests of this file take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds the fixture images once if a test machine lacks them.
async fn docker() -> cwm_env::Docker {
    let docker = cwm_env::connect().await.unwrap();
    cwm_env::build_fixture_images(&docker).await.unwrap();
    docker
}

/// An oracle run of the fixtures, graded, `workers` at a time, stored under `runs`.
fn oracle_config(runs: &Path, run_id: &str, instances: &[&str]) -> RunConfig {
    let mut flags = ConfigOverrides::default();
    flags.backend.model = Some("oracle".into());
    flags.run.run_id = Some(run_id.into());
    flags.run.runs_dir = Some(runs.to_path_buf());
    flags.run.workers = Some(2);
    flags.eval.evaluate = Some(true);
    flags.dataset.instances = Some(instances.iter().map(|s| s.to_string()).collect());
    RunConfig::resolve(None, flags).unwrap()
}

/// Containers still carrying this run's label.
fn containers_of(run_id: &str) -> usize {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=cwm-bench.run={run_id}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

const TWO: [&str; 2] = ["fixtures__paginate-1", "fixtures__rational-1"];

#[tokio::test]
async fn an_oracle_run_resolves_everything_and_resuming_redoes_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    docker().await;
    let runs = tempfile::tempdir().unwrap();
    let run_id = format!("lib-oracle-{}", std::process::id());
    let config = oracle_config(runs.path(), &run_id, &TWO);
    let outcome = Run::prepare(config.clone())
        .unwrap()
        .execute(true, std::future::pending())
        .await
        .unwrap();
    assert_eq!(outcome.interrupted, None);
    assert_eq!(outcome.rows.len(), 2, "{:?}", outcome.rows);
    assert!(
        outcome
            .rows
            .iter()
            .all(|r| r.resolved == Some(true) && r.status == "submitted"),
        "{:?}",
        outcome.rows
    );
    assert!(
        outcome.summary.resolved_line().contains('2'),
        "{}",
        outcome.summary.resolved_line()
    );
    assert_eq!(containers_of(&run_id), 0);
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(outcome.run_dir.join("config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["backend"]["model"], "oracle");
    assert_eq!(saved["policy"]["kind"], "oracle", "{saved}");

    // Resuming finds both finished: the trajectories are not rewritten.
    let trajectory = outcome
        .run_dir
        .join("trajectories/fixtures__paginate-1.jsonl");
    let written = std::fs::metadata(&trajectory).unwrap().modified().unwrap();
    let again = Run::prepare(config)
        .unwrap()
        .execute(true, std::future::pending())
        .await
        .unwrap();
    assert_eq!(again.rows, outcome.rows);
    assert_eq!(
        std::fs::metadata(&trajectory).unwrap().modified().unwrap(),
        written
    );
}

#[tokio::test]
async fn a_stop_signal_ends_the_run_with_its_code_and_no_container_left() {
    let _turn = ONE_AT_A_TIME.lock().await;
    docker().await;
    let runs = tempfile::tempdir().unwrap();
    let run_id = format!("lib-stop-{}", std::process::id());
    let config = oracle_config(runs.path(), &run_id, &TWO);
    let stop = async {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        130
    };
    let outcome = Run::prepare(config)
        .unwrap()
        .execute(true, stop)
        .await
        .unwrap();
    assert_eq!(outcome.interrupted, Some(130));
    assert_eq!(containers_of(&run_id), 0);
    assert!(outcome.run_dir.join("summary.json").exists());
}

#[tokio::test]
async fn one_instance_is_solved_then_graded_and_a_wrong_patch_is_not_resolved() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let docker = docker().await;
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    let instance = instances.iter().find(|i| i.instance_id == TWO[0]).unwrap();
    let episode = cwm_agent::EpisodeConfig::default();
    let run_id = format!("lib-one-{}", std::process::id());
    let task = Task {
        docker: &docker,
        instance,
        run_id: &run_id,
        episode: &episode,
        keep: false,
    };
    let script = "ok\n</think>\n<tool: bash>\necho wrong > wrong.txt && git add -N wrong.txt && git diff > /tmp/p.diff\n</tool>\n---\nok\n</think>\n<tool: submit>\n/tmp/p.diff\n</tool>\n---\nok\n</think>\ndone\n";
    let mut policy = ReplayPolicy::from_script(script, "wrong");
    let solved = solve(&task, &mut policy, &mut NullSink, &mut NoopObserver)
        .await
        .unwrap();
    assert_eq!(
        solved.footer.status,
        cwm_protocol::ExitStatus::Submitted,
        "{:?}",
        solved.footer
    );
    let patch = solved.footer.patch.clone().expect("a submitted patch");
    let out = tempfile::tempdir().unwrap();
    let options = cwm_eval::EvalOptions::new(&run_id);
    let evaluation = grade(&docker, instance, Some(&patch), &options, out.path())
        .await
        .unwrap();
    assert!(!evaluation.resolved());
    assert!(evaluation.report.is_some());
    assert_eq!(containers_of(&run_id), 0);
    // A finished evaluation is read back, not run again.
    let again = grade(&docker, instance, Some("garbage"), &options, out.path())
        .await
        .unwrap();
    assert_eq!(again, evaluation);
}
