//! `cwm-bench run` with the in-process SmolLM2, then `bench model --episode` on the
//! trajectory it recorded: the prefix-reuse figure on a real episode. Real Docker, the
//! fixture images and the SmolLM2 GGUF (`scripts/setup` provides all three).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::process::{Command, Output};

fn cwm_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
        .args(args)
        .output()
        .expect("the cwm-bench binary runs")
}

fn smollm2() -> String {
    let path = cwm_engine::smollm2_path();
    assert!(
        path.exists(),
        "run scripts/setup first: {} is missing",
        path.display()
    );
    path.display().to_string()
}

/// (turns, tokens run, final context) from the `episode:` line.
fn episode_line(stdout: &str) -> (usize, usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("episode:"))
        .unwrap_or_else(|| panic!("no episode line in {stdout}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn a_recorded_local_episode_prefills_each_token_once() {
    let model = smollm2();
    let runs = tempfile::tempdir().expect("temp dir");
    let runs_dir = runs.path().display().to_string();
    let run_id = format!("bench-episode-{}", std::process::id());
    let out = cwm_bench(&[
        "run",
        "--model",
        &format!("local:{model}"),
        "--instances",
        "fixtures__slugify-1",
        "--max-turns",
        "4",
        "--max-action-tokens",
        "48",
        "--runs-dir",
        &runs_dir,
        "--run-id",
        &run_id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trajectory = runs
        .path()
        .join(&run_id)
        .join("trajectories/fixtures__slugify-1.jsonl");
    let trajectory = trajectory.display().to_string();

    let common = [
        "--chat-turns",
        "0",
        "--prompt-tokens",
        "16",
        "--gen-tokens",
        "2",
    ];
    let mut args = vec!["bench", "model", &model, "--episode", &trajectory];
    args.extend(common);
    let out = cwm_bench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (turns, run_through, context) = episode_line(&stdout);
    assert!(turns >= 2, "{stdout}");
    assert!(context > 500, "{stdout}");
    assert_eq!(run_through, context, "{stdout}");

    let mut args = vec!["bench", "model", &model, "--episode", "/nonexistent.jsonl"];
    args.extend(common);
    let out = cwm_bench(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/nonexistent.jsonl"), "{stderr}");
}
