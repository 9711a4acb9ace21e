//! Infrastructure faults during a run, against the real daemon: a container killed from
//! outside under an episode and under an evaluation is an infrastructure failure (not
//! scored, listed apart from model failures, redone by the next start or at once with
//! `--retry-infra`), and SIGKILLs of the harness at random moments never lose or duplicate
//! an instance.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

const FIRST: &str = "fixtures__daterange-1";
const SECOND: &str = "fixtures__iniparse-1";

/// Ids of the running containers labelled with this run (and `instance`, when given).
fn running(run_id: &str, instance: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "ps".to_string(),
        "-q".into(),
        "--filter".into(),
        format!("label=cwm-bench.run={run_id}"),
    ];
    if let Some(instance) = instance {
        args.extend([
            "--filter".into(),
            format!("label=cwm-bench.instance={instance}"),
        ]);
    }
    let out = output(Command::new("docker").args(&args));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn docker_kill(id: &str) {
    let out = output(Command::new("docker").args(["kill", id]));
    assert!(
        out.status.success(),
        "docker kill {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for the run's episode container of `instance` to have run its first command for a
/// moment (the trajectory holds a turn), then kills it from outside.
fn kill_episode_container(run_dir: &Path, run_id: &str, instance: &str) {
    let trajectory = run_dir
        .join("trajectories")
        .join(format!("{instance}.jsonl"));
    wait_until("the episode's first turn", Duration::from_secs(120), || {
        std::fs::read_to_string(&trajectory).is_ok_and(|t| t.lines().count() >= 1)
            && !running(run_id, Some(instance)).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    for id in running(run_id, Some(instance)) {
        docker_kill(&id);
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn jsonl_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn a_container_killed_under_an_episode_is_an_infrastructure_failure_redone_by_the_next_start() {
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("killed-episode");
    let run_dir = runs.path().join(&run_id);
    let script = sleeping_script(runs.path(), 20);
    let mut args = run_args(runs.path(), &run_id);
    args.extend(
        [
            "--model",
            &format!("replay:{}", script.display()),
            "--instances",
            &format!("{FIRST},{SECOND}"),
        ]
        .map(String::from),
    );
    let child = cwm_bench()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kill_episode_container(&run_dir, &run_id, FIRST);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("infrastructure failures and are not scored")
            && stderr.contains(&format!("--run-id {run_id}")),
        "{stderr}"
    );
    assert!(
        stdout.contains("infrastructure failures: 1")
            && stdout.contains(&format!("{FIRST} (episode)")),
        "{stdout}"
    );
    assert_eq!(
        pred_ids(&run_dir),
        vec![SECOND.to_string()],
        "the run went on"
    );
    let failures = read_json(&run_dir.join("failures.json"));
    let infra = failures["infrastructure"].as_array().unwrap();
    assert_eq!(infra.len(), 1, "{failures}");
    assert_eq!(infra[0]["instance_id"], FIRST);
    let reason = infra[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("env_error") && reason.contains("container"),
        "{reason}"
    );
    assert_eq!(containers_of(&run_id), 0);

    // The next start redoes exactly the unfinished instance, and keeps the failed attempt.
    let quick = sleeping_script(runs.path(), 0);
    let mut again = run_args(runs.path(), &run_id);
    again.extend(["--model".to_string(), format!("replay:{}", quick.display())]);
    again.extend(["--instances".to_string(), format!("{FIRST},{SECOND}")]);
    let out = output(cwm_bench().args(&again));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("infrastructure failures: 0"), "{stdout}");
    let mut ids = pred_ids(&run_dir);
    ids.sort();
    assert_eq!(ids, vec![FIRST.to_string(), SECOND.to_string()]);
    let set_aside = run_dir
        .join("trajectories/attempts")
        .join(format!("{FIRST}.1.jsonl"));
    let earlier = cwm_agent::read_trajectory(&set_aside).unwrap();
    assert_eq!(earlier.footer.unwrap().status.as_str(), "env_error");
    let redone =
        cwm_agent::read_trajectory(&run_dir.join("trajectories").join(format!("{FIRST}.jsonl")))
            .unwrap();
    assert_eq!(redone.footer.unwrap().status.as_str(), "submitted");
    assert_eq!(
        jsonl_count(&run_dir.join("infra_failures.jsonl")),
        1,
        "the log keeps the attempt"
    );
    assert_eq!(containers_of(&run_id), 0);
}

#[test]
fn retry_infra_redoes_an_instance_whose_container_was_killed_within_the_run() {
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("retry-infra");
    let run_dir = runs.path().join(&run_id);
    let script = sleeping_script(runs.path(), 8);
    let mut args = run_args(runs.path(), &run_id);
    args.extend(
        [
            "--model",
            &format!("replay:{}", script.display()),
            "--instances",
            FIRST,
            "--retry-infra",
        ]
        .map(String::from),
    );
    let child = cwm_bench()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kill_episode_container(&run_dir, &run_id, FIRST);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("infrastructure failures: 0"), "{stdout}");
    assert_eq!(pred_ids(&run_dir), vec![FIRST.to_string()]);
    assert_eq!(jsonl_count(&run_dir.join("infra_failures.jsonl")), 1);
    assert!(run_dir
        .join("trajectories/attempts")
        .join(format!("{FIRST}.1.jsonl"))
        .exists());
    let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(log.contains("--retry-infra"), "{log}");
    assert_eq!(containers_of(&run_id), 0);
}

#[test]
fn a_container_killed_under_an_evaluation_is_an_infrastructure_failure_not_a_verdict() {
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("killed-eval");
    let run_dir = runs.path().join(&run_id);
    let mut args = run_args(runs.path(), &run_id);
    args.extend(["--model", "oracle", "--evaluate", "--instances", FIRST].map(String::from));
    let child = cwm_bench()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The prediction is recorded before grading starts; the next container is the grader's.
    wait_until("the prediction", Duration::from_secs(120), || {
        pred_ids(&run_dir).len() == 1
    });
    let started = Instant::now();
    let mut killed = false;
    while !killed && started.elapsed() < Duration::from_secs(60) {
        for id in running(&run_id, Some(FIRST)) {
            docker_kill(&id);
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(killed, "no evaluation container showed up");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{FIRST} (evaluation)")),
        "{stdout}"
    );
    assert!(stdout.contains("model failures: 0"), "{stdout}");
    assert!(
        !run_dir
            .join("eval")
            .join(FIRST)
            .join("hardened.json")
            .exists(),
        "no verdict from a killed evaluation"
    );

    // The next start grades it (the episode is not run again).
    let out = output(cwm_bench().args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("resolved 1/1"), "{stdout}");
    assert!(
        !run_dir.join("trajectories/attempts").exists(),
        "the episode was not redone"
    );
    assert_eq!(containers_of(&run_id), 0);
}

#[test]
fn sigkill_at_random_moments_never_loses_or_duplicates_an_instance() {
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("random-kills");
    let run_dir = runs.path().join(&run_id);
    let mut args = run_args(runs.path(), &run_id);
    args.extend(["--model", "oracle", "--evaluate", "--workers", "2"].map(String::from));
    let n = fixture_count();
    // A fixed seed: the same moments on every machine, spread over the whole run.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(150) && kills < 12 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_millis(300 + rng % 2_500);
        let mut child = cwm_bench()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            break; // finished before the kill
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        check_run_dir(&run_dir);
    }
    let out = output(cwm_bench().args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("resolved {n}/{n}")),
        "after {kills} kills: {stdout}"
    );
    let mut ids = pred_ids(&run_dir);
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), total), (n, n), "each instance exactly once");
    check_run_dir(&run_dir);
    assert_eq!(containers_of(&run_id), 0);
    assert!(kills >= 3, "the loop killed the run only {kills} times");
}

/// Every trajectory reads back, every prediction line parses, and no temporary file is left.
fn check_run_dir(run_dir: &Path) {
    pred_ids(run_dir);
    if let Ok(entries) = std::fs::read_dir(run_dir.join("trajectories")) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                cwm_agent::read_trajectory(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }
    let leftovers = output(Command::new("find").arg(run_dir).args(["-name", "*.tmp*"]));
    assert!(
        leftovers.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&leftovers.stdout)
    );
}

/// A model server on a free local port that answers every request with `status` (the
/// `GET /models` probe included). Mock of a failing server: a real one cannot be made to
/// fail on cue.
fn failing_server(
    status: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let body = "{\"error\": \"overloaded\"}";
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, count)
}

#[test]
fn a_model_server_that_nothing_listens_at_stops_the_run_before_any_container() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("no-server");
    let mut args = run_args(runs.path(), &run_id);
    args.extend(
        [
            "--model",
            &format!("openai:m@http://127.0.0.1:{port}/v1"),
            "--instances",
            FIRST,
        ]
        .map(String::from),
    );
    let out = output(cwm_bench().args(&args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("cannot be reached")
            && last.contains(&port.to_string())
            && last.contains("--model"),
        "{stderr}"
    );
    assert_eq!(pred_ids(&runs.path().join(&run_id)), Vec::<String>::new());
    let trajectories = runs.path().join(&run_id).join("trajectories");
    assert_eq!(
        std::fs::read_dir(&trajectories).map_or(0, |d| d.count()),
        0,
        "nothing started"
    );
    assert_eq!(containers_of(&run_id), 0);
}

#[test]
fn a_model_server_failing_mid_run_ends_episodes_as_infrastructure_failures_and_the_run_goes_on() {
    let (url, requests) = failing_server("500 Internal Server Error");
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("server-500");
    let run_dir = runs.path().join(&run_id);
    let mut args = run_args(runs.path(), &run_id);
    args.extend(
        [
            "--model",
            &format!("openai:m@{url}"),
            "--instances",
            &format!("{FIRST},{SECOND}"),
        ]
        .map(String::from),
    );
    let out = output(cwm_bench().args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("infrastructure failures: 2"), "{stdout}");
    assert!(stdout.contains("model failures: 0"), "{stdout}");
    let failures = read_json(&run_dir.join("failures.json"));
    for failure in failures["infrastructure"].as_array().unwrap() {
        let reason = failure["reason"].as_str().unwrap();
        assert!(
            reason.contains("model_error") && reason.contains("500"),
            "{reason}"
        );
    }
    // The probe, then per episode one request and its retries: bounded.
    let sent = requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!((3..=20).contains(&sent), "{sent} requests");
    assert_eq!(
        pred_ids(&run_dir),
        Vec::<String>::new(),
        "no prediction from a failed server"
    );
    assert_eq!(containers_of(&run_id), 0);
}
