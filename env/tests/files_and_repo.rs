//! File transfer through tar, and repo hygiene on a fixture with an upstream future.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use std::time::Duration;

use common::*;
use cwm_env::{Container, EnvError, REPO_ROOT};

const T: Duration = Duration::from_secs(60);

async fn sh(container: &Container, script: &str) -> String {
    let out = container.exec(script, T).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{script}: {}", out.output);
    out.output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_binary_safe_and_large() {
    let docker = docker_with_images().await;
    let run = run_id("files");
    let container = start(&docker, &fixture_image("paginate"), &run).await;

    // 20 MB of pseudo-random bytes, every byte value included.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let big: Vec<u8> = (0..20 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    container
        .write_file("/tmp/deep/new/dir/big.bin", &big)
        .await
        .unwrap();
    assert_eq!(
        container
            .read_file("/tmp/deep/new/dir/big.bin")
            .await
            .unwrap(),
        big
    );
    let size = sh(&container, "stat -c %s /tmp/deep/new/dir/big.bin").await;
    assert_eq!(size.trim(), big.len().to_string());

    // Relative paths are under the repository root; empty files and odd names work.
    container
        .write_file("notes/empty file.txt", b"")
        .await
        .unwrap();
    assert_eq!(
        container
            .read_file(&format!("{REPO_ROOT}/notes/empty file.txt"))
            .await
            .unwrap(),
        b""
    );

    // An existing script keeps its mode; a new file is 0644.
    sh(
        &container,
        "printf '#!/bin/sh\\necho hi\\n' > /tmp/run.sh && chmod 755 /tmp/run.sh",
    )
    .await;
    container
        .write_file("/tmp/run.sh", b"#!/bin/sh\necho bye\n")
        .await
        .unwrap();
    assert_eq!(
        sh(&container, "stat -c %a /tmp/run.sh && /tmp/run.sh").await,
        "755\nbye\n"
    );
    assert_eq!(
        sh(
            &container,
            &format!("stat -c %a '{REPO_ROOT}/notes/empty file.txt'")
        )
        .await,
        "644\n"
    );

    // Symlinks are followed; directories and missing files are clear errors.
    sh(&container, "ln -s run.sh /tmp/link.sh").await;
    assert_eq!(
        container.read_file("/tmp/link.sh").await.unwrap(),
        b"#!/bin/sh\necho bye\n"
    );
    // Writing through the link writes its target, which keeps its mode; the link stays.
    container
        .write_file("/tmp/link.sh", b"#!/bin/sh\necho linked\n")
        .await
        .unwrap();
    assert_eq!(
        sh(
            &container,
            "stat -c '%F %a' /tmp/link.sh /tmp/run.sh && /tmp/run.sh"
        )
        .await,
        "symbolic link 777\nregular file 755\nlinked\n"
    );
    let missing = container.read_file("/nope/x").await.unwrap_err();
    assert!(
        matches!(missing, EnvError::FileNotFound { .. }),
        "{missing}"
    );
    let dir = container.read_file(REPO_ROOT).await.unwrap_err();
    assert!(matches!(dir, EnvError::NotAFile { .. }), "{dir}");
    assert!(container.write_file(REPO_ROOT, b"x").await.is_err());

    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hygiene_removes_the_upstream_future() {
    let docker = docker_with_images().await;
    let run = run_id("hygiene");
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    let instance = instances
        .iter()
        .find(|i| i.image_name() == fixture_image("iniparse"))
        .unwrap();
    let container = start(&docker, &instance.image_name(), &run).await;

    let future = sh(&container, "git rev-parse refs/remotes/origin/upstream").await;
    let future = future.trim();
    assert_ne!(future, instance.base_commit);
    let before = sh(
        &container,
        "git log --all --format=%H | wc -l; git tag; git branch -a; git remote",
    )
    .await;
    assert!(
        before.contains("v0.2-fixed") && before.contains("origin"),
        "{before}"
    );
    // Some more state a real repo may carry: a stash and a note.
    sh(&container, "echo x >> README.md 2>/dev/null || echo x > README.md; git -c user.name=a -c user.email=a@b stash -u -q; git -c user.name=a -c user.email=a@b notes add -m n HEAD").await;

    cwm_env::prepare_repo(&container).await.unwrap();

    let log = sh(&container, "git log --all --format=%H").await;
    assert_eq!(
        log.trim(),
        instance.base_commit,
        "git log --all after hygiene"
    );
    let refs = sh(
        &container,
        "git for-each-ref --format='%(refname)'; git remote; git tag; git stash list; git reflog",
    )
    .await;
    assert_eq!(refs.trim(), "refs/heads/main");
    let gone = container
        .exec(&format!("git cat-file -t {future}"), T)
        .await
        .unwrap();
    assert_ne!(
        gone.exit_code,
        Some(0),
        "the fix commit is still in the object store"
    );
    assert_eq!(
        sh(&container, "git rev-parse HEAD; git status --porcelain")
            .await
            .trim(),
        instance.base_commit
    );

    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hygiene_at_container_start_removes_the_upstream_future() {
    let docker = docker_with_images().await;
    let run = run_id("hygiene-start");
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    let instance = instances
        .iter()
        .find(|i| i.image_name() == fixture_image("iniparse"))
        .unwrap();
    let config = cwm_env::ContainerConfig::for_episode(instance.image_name(), &run, "test");
    let container = Container::start(&docker, &config).await.unwrap();
    assert!(container.cleans_repo_at_start());
    let mut shell = cwm_env::Shell::open(&container, cwm_env::ShellConfig::default())
        .await
        .unwrap();
    let waited = shell
        .run(&cwm_env::hygiene_wait_script(), Duration::from_secs(60))
        .await
        .unwrap();
    cwm_env::check_hygiene(
        waited.exit_code.map(i64::from),
        waited.timed_out,
        &waited.output,
    )
    .unwrap();

    let log = shell
        .run(
            "git log --all --format=%H; ls -d /tmp/.cwm-bench-hygiene* 2>/dev/null | wc -l; pwd",
            T,
        )
        .await
        .unwrap();
    let lines: Vec<&str> = log.output.lines().collect();
    assert_eq!(
        lines,
        [instance.base_commit.as_str(), "0", REPO_ROOT],
        "{}",
        log.output
    );
    // The session is untouched by the waiting subshell, and the container still idles.
    let again = shell.run("echo still-here", T).await.unwrap();
    assert_eq!(again.output.trim(), "still-here");
    // The warden enforces timeouts; after the model kills it (with everything but pid 1
    // and its own bash), a new warden takes over and the container keeps running.
    let short = Duration::from_secs(2);
    let slept = shell.run("sleep 100", short).await.unwrap();
    assert!(slept.timed_out && slept.duration < T, "{slept:?}");
    let killed = shell
        .run("sleep 1000 & kill -9 -1; echo done", T)
        .await
        .unwrap();
    assert_eq!(killed.output.trim(), "done", "{killed:?}");
    let slept = shell.run("sleep 100", short).await.unwrap();
    assert!(slept.timed_out && slept.duration < T, "{slept:?}");
    let again = shell.run("echo still-here", T).await.unwrap();
    assert_eq!(again.output.trim(), "still-here");

    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run).await;
}
