//! The Docker daemon restarted under a running `cwm-bench run` (its own test binary: a
//! restart stops every container on the machine, so nothing else may run beside it).
//!
//! The test restarts the real `dockerd` (SIGTERM, then the same command line again, or
//! `systemctl restart docker` where systemd runs it). It needs root; without root it says
//! so and checks nothing (the container-killed tests in tests/faults.rs cover the episode
//! side then).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

const IDS: [&str; 3] = [
    "fixtures__daterange-1",
    "fixtures__iniparse-1",
    "fixtures__jsonpointer-1",
];

fn daemon_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ID}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn systemd_runs_docker() -> bool {
    std::path::Path::new("/run/systemd/system").exists()
        && Command::new("systemctl")
            .args(["is-active", "--quiet", "docker"])
            .status()
            .is_ok_and(|s| s.success())
}

/// Restarts dockerd and waits until it answers again. `false` when this machine does not let
/// the test do it (not root, no pid file).
fn restart_dockerd() -> bool {
    if systemd_runs_docker() {
        let ok = Command::new("systemctl")
            .args(["restart", "docker"])
            .status()
            .unwrap();
        assert!(ok.success(), "systemctl restart docker");
    } else {
        let Ok(pid) = std::fs::read_to_string("/var/run/docker.pid") else {
            return false;
        };
        let pid = pid.trim().to_string();
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
        {
            return false;
        }
        let started = Instant::now();
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "dockerd did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::File::create(std::env::temp_dir().join("cwm-bench-dockerd-restart.log"))
            .unwrap();
        // `setsid --fork`: the daemon must outlive this test process, and setsid returns.
        let started = Command::new("setsid")
            .arg("--fork")
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .expect("start dockerd again");
        assert!(started.success(), "setsid --fork {argv:?}");
    }
    let started = Instant::now();
    while !daemon_answers() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "dockerd did not come back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

#[test]
fn a_daemon_restart_mid_run_fails_only_the_episode_in_flight_and_the_next_start_redoes_it() {
    if !is_root() {
        eprintln!("skipped: restarting dockerd needs root");
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    let run_id = unique("daemon-restart");
    let run_dir = runs.path().join(&run_id);
    let script = sleeping_script(runs.path(), 10);
    let mut args = run_args(runs.path(), &run_id);
    args.extend([
        "--model".to_string(),
        format!("replay:{}", script.display()),
    ]);
    args.extend(["--instances".to_string(), IDS.join(",")]);
    let child = cwm_bench()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Restart while the first episode's `sleep` runs.
    let first = run_dir
        .join("trajectories")
        .join(format!("{}.jsonl", IDS[0]));
    wait_until(
        "the first episode's first turn",
        Duration::from_secs(120),
        || std::fs::read_to_string(&first).is_ok_and(|t| t.lines().count() >= 1),
    );
    assert!(
        restart_dockerd(),
        "this machine did not let the test restart dockerd"
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("infrastructure failures: 1"), "{stdout}");
    assert!(
        stdout.contains(&format!("{} (episode)", IDS[0])),
        "{stdout}"
    );
    let mut done = pred_ids(&run_dir);
    done.sort();
    assert_eq!(done, IDS[1..].to_vec(), "the rest of the run went on");

    // The next start redoes exactly the unfinished instance.
    let out = output(cwm_bench().args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut done = pred_ids(&run_dir);
    let total = done.len();
    done.sort();
    done.dedup();
    assert_eq!((done.len(), total), (3, 3));
    let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert_eq!(
        log.matches("episode finished").count(),
        3,
        "2 + the redone one: {log}"
    );
    assert_eq!(containers_of(&run_id), 0);
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
