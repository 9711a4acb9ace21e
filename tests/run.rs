//! `cwm-bench run` and `repro` end to end: real Docker, the fixture images, the oracle and
//! scripted replays. The images are built by `scripts/setup` (or `cwm-bench images build-fixtures`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

#[test]
fn oracle_run_with_evaluation_resolves_every_fixture() {
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("oracle-all");
    let out = output(cwm_bench().args(run_args(runs.path(), &run_id)).args([
        "--model",
        "oracle",
        "--evaluate",
        "--workers",
        "2",
        "--eval-timeout",
        "120",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = fixture_count();
    assert!(
        stdout.contains(&format!("resolved {n}/{n} (100.0%)")),
        "{stdout}"
    );
    assert!(stdout.contains("exit statuses: submitted"), "{stdout}");
    let run_dir = runs.path().join(&run_id);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["resolved_instances"], n);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["backend"]["model"], "oracle");
    assert_eq!(pred_ids(&run_dir).len(), n);
    assert!(run_dir.join("run.log").exists());
    assert_eq!(
        std::fs::read_dir(run_dir.join("trajectories"))
            .unwrap()
            .count(),
        n
    );
    assert_eq!(containers_of(&run_id), 0);

    // The recorded trajectory replays to the same observations, and an edited one does not.
    let trajectory = run_dir.join("trajectories/fixtures__paginate-1.jsonl");
    let replay = output(cwm_bench().arg("replay").arg(&trajectory));
    let replay_out = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{replay_out}");
    assert!(replay_out.contains("replay: identical"), "{replay_out}");
    let edited = runs.path().join("edited.jsonl");
    let text = std::fs::read_to_string(&trajectory).unwrap();
    std::fs::write(
        &edited,
        text.replacen("Remaining turns", "Remaining turnz", 1),
    )
    .unwrap();
    let replay = output(cwm_bench().arg("replay").arg(&edited));
    assert!(!replay.status.success());
    assert!(String::from_utf8_lossy(&replay.stdout).contains("replay: MISMATCH"));

    // Running the same id again finds nothing to do and keeps every file as it was.
    let again = output(cwm_bench().args(run_args(runs.path(), &run_id)).args([
        "--model",
        "oracle",
        "--evaluate",
    ]));
    assert!(String::from_utf8_lossy(&again.stdout).contains(&format!("resolved {n}/{n}")));
    assert_eq!(pred_ids(&run_dir).len(), n);
}

#[test]
fn sigkill_midway_then_resume_finishes_each_instance_once() {
    let runs = tempfile::tempdir().unwrap();
    let script = slow_script(runs.path());
    let run_id = unique("killed");
    let run_dir = runs.path().join(&run_id);
    let args = |cmd: &mut Command| {
        cmd.args(run_args(runs.path(), &run_id)).args([
            "--model",
            &format!("replay:{}", script.display()),
            "--workers",
            "2",
        ]);
    };
    let mut first = cwm_bench();
    args(&mut first);
    let mut child = first
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("two predictions", Duration::from_secs(120), || {
        pred_ids(&run_dir).len() >= 2
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = pred_ids(&run_dir).len();
    assert!(
        before < fixture_count(),
        "the kill came too late to test anything"
    );

    let mut second = cwm_bench();
    args(&mut second);
    let out = output(&mut second);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ids = pred_ids(&run_dir);
    assert_eq!(ids.len(), fixture_count());
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        fixture_count(),
        "a prediction was recorded twice"
    );
    assert_eq!(
        containers_of(&run_id),
        0,
        "leftovers of the killed attempt were not removed"
    );
}

fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_removes_containers_and_writes_the_summary() {
    stop_midway("INT", 130);
}

#[test]
fn sigterm_and_sighup_stop_like_ctrl_c() {
    stop_midway("TERM", 143);
    stop_midway("HUP", 129);
}

/// Sends `signal` while episodes run; the run must remove its containers, write the
/// summary, and exit with `code`.
fn stop_midway(signal: &str, code: i32) {
    let runs = tempfile::tempdir().unwrap();
    let script = slow_script(runs.path());
    let run_id = unique(&format!("interrupted-{signal}"));
    let mut child = cwm_bench()
        .args(run_args(runs.path(), &run_id))
        .args([
            "--model",
            &format!("replay:{}", script.display()),
            "--workers",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a container of the run", Duration::from_secs(60), || {
        containers_of(&run_id) > 0
    });
    send_signal(&child, signal);
    let start = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run did not stop after SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("--run-id {run_id}")));
    assert_eq!(containers_of(&run_id), 0);
    assert!(runs.path().join(&run_id).join("summary.json").exists());
}

#[test]
fn repro_streams_turns_and_prints_the_verdict() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = output(cwm_bench().args([
        "repro",
        "fixtures__paginate-1",
        "--model",
        "oracle",
        "--out",
        &out_dir.path().display().to_string(),
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("── turn 1 ──"), "{stdout}");
    assert!(stdout.contains("<tool: edit>"), "{stdout}");
    assert!(stdout.contains("verdict: RESOLVED (FULL)"), "{stdout}");
}

#[test]
fn repro_on_a_local_repository_and_issue() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("calc");
    std::fs::create_dir_all(repo.join("tests")).unwrap();
    std::fs::write(repo.join("calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    std::fs::write(
        repo.join("tests/test_calc.py"),
        "import sys, os\nsys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))\nfrom calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap();
        assert!(status.success());
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    let issue = dir.path().join("issue.md");
    std::fs::write(&issue, "add(2, 3) returns -1 instead of 5.\n").unwrap();
    // A tracked file changed since HEAD would be baked into the image: refused, by name.
    std::fs::write(repo.join("calc.py"), "def add(a, b):\n    return 0\n").unwrap();
    let dirty = output(cwm_bench().args([
        "repro",
        "--repo",
        &repo.display().to_string(),
        "--issue",
        &issue.display().to_string(),
        "--model",
        "oracle",
    ]));
    let stderr = String::from_utf8_lossy(&dirty.stderr);
    assert!(!dirty.status.success());
    assert!(
        stderr.contains("calc.py") && stderr.contains("commit or stash"),
        "{stderr}"
    );
    git(&["checkout", "--", "calc.py"]);
    let script = dir.path().join("fix.txt");
    std::fs::write(
        &script,
        "ok\n</think>\n<tool: edit>\ncalc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n</tool>\n---\nok\n</think>\n<tool: bash>\ngit diff > /tmp/patch.diff\n</tool>\n---\nok\n</think>\n<tool: submit>\n/tmp/patch.diff\n</tool>\n---\nok\n</think>\nFixed.\n",
    )
    .unwrap();
    let out = output(cwm_bench().args([
        "repro",
        "--repo",
        &repo.display().to_string(),
        "--issue",
        &issue.display().to_string(),
        "--test-cmd",
        "pytest -rA tests",
        "--model",
        &format!("replay:{}", script.display()),
        "--out",
        &dir.path().join("out").display().to_string(),
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: TESTS PASS (1 tests)"), "{stdout}");
}

#[test]
fn sampling_flags_a_model_cannot_apply_are_refused_and_config_records_the_policy() {
    let runs = tempfile::tempdir().unwrap();
    let out = output(
        cwm_bench()
            .args(run_args(runs.path(), &unique("nosample")))
            .args(["--model", "oracle", "--temperature", "0.5", "--top-k", "5"]),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not sample") && stderr.contains("--temperature, --top-k"),
        "{stderr}"
    );
    assert_eq!(containers_of(&unique("nosample")), 0);

    // Without them the oracle runs, and config.json holds what the policy applies.
    let run_id = unique("policyconfig");
    let out = output(cwm_bench().args(run_args(runs.path(), &run_id)).args([
        "--model",
        "oracle",
        "--instances",
        "fixtures__paginate-1",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs.path().join(&run_id).join("config.json")).unwrap(),
    )
    .unwrap();
    assert!(config["policy"].is_object(), "{config}");
    assert_eq!(config["sampling"]["temperature"], 1.0, "CWM's default");
}

/// A small tmpfs mounted over a temporary directory, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_with_one_error_and_nothing_torn() {
    let disk = Tmpfs::mount("64k");
    let run_id = unique("diskfull");
    let args = || {
        let mut args = run_args(disk.0.path(), &run_id);
        args.extend(["--model", "oracle", "--evaluate"].map(String::from));
        args
    };
    let out = output(cwm_bench().args(args()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("No space left"))
        .collect();
    assert_eq!(errors.len(), 1, "one error: {stderr}");
    assert_eq!(
        errors[0].matches("No space left").count(),
        1,
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains(&format!("--run-id {run_id}")),
        "{}",
        errors[0]
    );
    // What was written is whole: every trajectory reads back, every prediction parses, and
    // no temporary file or container is left.
    let run = disk.0.path().join(&run_id);
    for entry in std::fs::read_dir(run.join("trajectories")).unwrap() {
        let path = entry.unwrap().path();
        cwm_agent::read_trajectory(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    for line in std::fs::read_to_string(run.join("preds.jsonl"))
        .unwrap_or_default()
        .lines()
    {
        serde_json::from_str::<serde_json::Value>(line).expect("a whole prediction line");
    }
    let leftovers = Command::new("find")
        .arg(&run)
        .args(["-name", "*.tmp*"])
        .output()
        .unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&leftovers.stdout)
    );
    assert_eq!(containers_of(&run_id), 0);

    // With room again, the same run finishes every instance exactly once.
    disk.resize("64m");
    let out = output(cwm_bench().args(args()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let preds = std::fs::read_to_string(run.join("preds.jsonl")).unwrap();
    let mut ids: Vec<String> = preds
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["instance_id"].to_string())
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), total), (fixture_count(), fixture_count()));
    assert!(run.join("summary.json").is_file());
}
