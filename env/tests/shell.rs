//! The persistent shell: state, output handling and hostile commands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use std::time::Duration;

use common::*;
use cwm_env::{Container, Shell, ShellConfig, ShellOutput, CONDA_ENV, REPO_ROOT};

const SHORT: Duration = Duration::from_secs(3);
const SLACK: Duration = Duration::from_secs(2);

async fn session(test: &str) -> (cwm_env::Docker, String, Container, Shell) {
    let docker = docker_with_images().await;
    let run = run_id(test);
    let container = start(&docker, &fixture_image("paginate"), &run).await;
    let shell = Shell::open(&container, ShellConfig::default())
        .await
        .unwrap();
    (docker, run, container, shell)
}

/// Sessions and containers move between tasks.
#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Shell>();
    send_sync::<Container>();
}

async fn run(shell: &mut Shell, command: &str) -> ShellOutput {
    shell.run(command, Duration::from_secs(20)).await.unwrap()
}

/// The session answers normally after whatever came before.
async fn assert_usable(shell: &mut Shell) {
    // Background jobs (a fork bomb's complaints) may print before it.
    let out = run(shell, "echo ok").await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(out.output.ends_with("ok\n"), "{out:?}");
}

async fn hostile(shell: &mut Shell, command: &str, timeout: Duration) -> ShellOutput {
    let out = shell.run(command, timeout).await.unwrap();
    eprintln!(
        "{command:?}: {:?} exit {:?} timed_out {} truncated {} restarted {} ({} bytes)",
        out.duration,
        out.exit_code,
        out.timed_out,
        out.truncated,
        out.restarted,
        out.output.len()
    );
    assert!(
        out.duration < timeout + SLACK,
        "{command:?} took {:?}",
        out.duration
    );
    assert_usable(shell).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_persists_and_the_environment_is_non_interactive() {
    let (docker, run_label, container, mut shell) = session("state").await;
    let out = run(
        &mut shell,
        "pwd; echo $PAGER $GIT_PAGER $TERM $CONDA_DEFAULT_ENV",
    )
    .await;
    assert_eq!(
        out.output,
        format!("{REPO_ROOT}\ncat cat dumb {CONDA_ENV}\n")
    );
    assert!(!out.restarted);
    run(
        &mut shell,
        "cd /tmp && export FOO=bar && greet() { echo hi-$1; }",
    )
    .await;
    let out = run(
        &mut shell,
        "pwd; echo $FOO; greet x; git config --global --get-all safe.directory",
    )
    .await;
    assert_eq!(out.output, format!("/tmp\nbar\nhi-x\n{REPO_ROOT}\n"));
    let out = run(
        &mut shell,
        "echo a; echo b >&2; echo c; exit_code_test() { return 3; }; exit_code_test",
    )
    .await;
    assert_eq!((out.output.as_str(), out.exit_code), ("a\nb\nc\n", Some(3)));
    let out = run(&mut shell, "printf 'no newline'").await;
    assert_eq!(out.output, "no newline");
    let out = run(&mut shell, "echo \"unterminated").await;
    assert_eq!(out.exit_code, Some(2), "{out:?}");
    let out = run(
        &mut shell,
        "cat <<'EOF'\nline 'one' \\ $HOME\nEOF\nprintf '\\xff\\xfe|é\\n'",
    )
    .await;
    // Invalid UTF-8 is dropped, as CWM's session decodes it.
    assert_eq!(out.output, "line 'one' \\ $HOME\n|é\n");
    // Longer than the liveness poll: still one normal result.
    let out = run(&mut shell, "sleep 2.5; echo slept").await;
    assert_eq!(
        (out.output.as_str(), out.exit_code, out.restarted),
        ("slept\n", Some(0), false)
    );
    let out = run(&mut shell, "read -r x; echo \"read=$x rc=$?\"").await;
    assert_eq!(out.output, "read= rc=1\n");
    let out = run(
        &mut shell,
        &format!("cd {REPO_ROOT} && git log --oneline | head -1"),
    )
    .await;
    assert!(out.output.contains("Initial commit"), "{out:?}");
    // A fresh session trusts the repo again without adding a second entry.
    shell.restart().await.unwrap();
    let out = run(&mut shell, "git config --global --get-all safe.directory").await;
    assert_eq!(out.output, format!("{REPO_ROOT}\n"));
    drop(shell);
    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run_label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_capped_with_head_and_tail() {
    let docker = docker_with_images().await;
    let run_label = run_id("cap");
    let container = start(&docker, &fixture_image("paginate"), &run_label).await;
    let config = ShellConfig {
        output_limit_bytes: 10_000,
        ..ShellConfig::default()
    };
    let mut shell = Shell::open(&container, config).await.unwrap();
    let out = run(&mut shell, "seq 1 200000").await;
    assert!(out.truncated);
    assert!(out.output.starts_with("1\n2\n3\n"), "{}", &out.output[..20]);
    assert!(out.output.ends_with("199999\n200000\n"));
    assert!(out.output.contains("\n[...]\n"));
    assert!(out.output.len() < 10_100);
    let out = run(&mut shell, "seq 1 10").await;
    assert!(!out.truncated);
    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run_label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commands_return_and_leave_the_session_usable() {
    let (docker, run_label, container, mut shell) = session("hostile").await;
    run(&mut shell, "seq 1 100 > /tmp/somefile").await;
    let rss_before = rss_kib();

    let out = hostile(&mut shell, "yes", SHORT).await;
    assert!(
        out.truncated && out.exit_code.is_none(),
        "{:?}",
        (out.truncated, out.exit_code)
    );
    assert!(out.output.len() <= 3 * 480 * 1024 + 16);
    assert!(rss_kib() < rss_before + 200 * 1024, "harness memory grew");

    let out = hostile(&mut shell, "sleep 100000", SHORT).await;
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");
    assert!(!out.restarted);

    let out = hostile(&mut shell, "sleep 1000 & echo started", SHORT).await;
    assert_eq!((out.output.as_str(), out.exit_code), ("started\n", Some(0)));
    assert!(out.duration < Duration::from_secs(1), "{:?}", out.duration);

    let out = hostile(&mut shell, "cat /dev/urandom | head -c 5000000", SHORT).await;
    assert!(
        out.truncated && out.exit_code == Some(0),
        "{:?}",
        out.exit_code
    );

    for pager in [
        "less /tmp/somefile",
        "python3",
        "vi /tmp/somefile",
        "more /tmp/somefile",
        "git log -p",
        "cat",
        "python3 -c 'input()'",
        "git -c user.name=a -c user.email=a@b commit --allow-empty",
    ] {
        let out = hostile(&mut shell, pager, SHORT).await;
        assert!(!out.timed_out, "{pager}: {out:?}");
        assert!(
            !out.output.contains("not found"),
            "{pager} is not installed: {out:?}"
        );
    }

    let out = hostile(&mut shell, "exit", SHORT).await;
    assert!(out.restarted, "{out:?}");
    let out = hostile(&mut shell, "kill -9 $$", SHORT).await;
    assert!(out.restarted, "{out:?}");
    let out = hostile(&mut shell, "sleep 1000 & exit 4", SHORT).await;
    assert!(out.restarted, "{out:?}");
    // After a restart the session is set up again.
    assert_eq!(
        run(&mut shell, "pwd").await.output,
        format!("{REPO_ROOT}\n")
    );
    let out = hostile(&mut shell, "while true; do :; done", SHORT).await;
    assert!(out.timed_out && out.restarted, "{out:?}");
    // Every other process dies, the warden too; the container idles on, and a timeout
    // afterwards is still enforced (a new warden is started).
    hostile(&mut shell, "sleep 1000 & kill -9 -1", SHORT).await;
    let out = hostile(&mut shell, "sleep 100000", SHORT).await;
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");

    drop(shell);
    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run_label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_is_contained() {
    let docker = docker_with_images().await;
    let run_label = run_id("forkbomb");
    let mut config = cwm_env::ContainerConfig::new(fixture_image("paginate"), &run_label, "bomb");
    config.pids_limit = 256;
    let container = Container::start(&docker, &config).await.unwrap();
    let mut shell = Shell::open(&container, ShellConfig::default())
        .await
        .unwrap();
    // The bare bomb returns at once (it backgrounds itself). Once it has (nearly) filled the
    // pids limit, which takes it a moment that depends on the machine's load, the next
    // command's guard kills it first. Every command in between still runs.
    let out = shell.run(":(){ :|:& };:", SHORT).await.unwrap();
    assert!(!out.timed_out && out.duration < SHORT, "{out:?}");
    let mut guarded = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let out = shell
            .run("ls / > /dev/null; echo listed", SHORT)
            .await
            .unwrap();
        // The bomb's own complaints may interleave until the guard has killed it.
        assert!(
            out.output.contains("listed\n") && out.exit_code == Some(0),
            "{out:?}"
        );
        assert!(!out.restarted && !out.timed_out, "{out:?}");
        if out
            .output
            .contains("[cwm-bench: background processes were killed")
        {
            guarded = Some(out);
            break;
        }
    }
    let guarded = guarded.expect("the pids guard never stepped in");
    assert!(guarded.output.ends_with("\nlisted\n"), "{guarded:?}");
    // A bomb behind a foreground command ends at that command's timeout.
    hostile(&mut shell, ":(){ :|:& };:; sleep 100", SHORT).await;
    // Nothing of it is left.
    let out = run(&mut shell, "ps -e --no-headers | wc -l").await;
    let processes: usize = out.output.trim().parse().unwrap_or(usize::MAX);
    assert!(processes < 10, "{}", out.output);
    drop(shell);
    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run_label).await;
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Sleeps of the test below still running (zombies show as `[sleep] <defunct>`).
async fn escaped_sleeps(shell: &mut Shell) -> String {
    let out = run(shell, "ps -eo args= | grep -c '^sleep 100[0-9]$'").await;
    out.output.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_in_new_sessions_die_on_timeout_and_restart() {
    let (docker, run_label, container, mut shell) = session("setsid").await;
    // Both escape the session: `setsid`, and a daemon's fork-setsid-fork that leaves it
    // orphaned under pid 1.
    let escape = |n: u32| {
        format!(
            "setsid sleep 100{n} & (setsid sh -c 'sleep 100{} &' &)",
            n + 1
        )
    };
    let out = hostile(&mut shell, &format!("{}; sleep 100", escape(1)), SHORT).await;
    assert!(out.timed_out, "{out:?}");
    assert_eq!(escaped_sleeps(&mut shell).await, "0", "killed on timeout");

    run(&mut shell, &escape(3)).await;
    // The double fork may take a moment to start its sleep.
    let mut live = escaped_sleeps(&mut shell).await;
    for _ in 0..50 {
        if live == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        live = escaped_sleeps(&mut shell).await;
    }
    assert_eq!(live, "2", "a finished command's jobs live on");
    shell.restart().await.unwrap();
    assert_eq!(escaped_sleeps(&mut shell).await, "0", "killed on restart");
    drop(shell);
    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run_label).await;
}
