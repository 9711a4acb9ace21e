//! Container lifecycle: labels, limits, one-shot exec, and removal on every path.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use std::time::Duration;

use common::*;
use cwm_env::{Container, ContainerConfig, REPO_ROOT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_labelled_limited_and_isolated() {
    let docker = docker_with_images().await;
    let run = run_id("limits");
    let container = start(&docker, &fixture_image("retry"), &run).await;
    let inspect = docker
        .inspect_container(container.id(), None)
        .await
        .unwrap();
    let config = inspect.config.unwrap();
    let labels = config.labels.unwrap();
    assert_eq!(labels.get("cwm-bench.run"), Some(&run));
    assert_eq!(
        labels.get("cwm-bench.instance").map(String::as_str),
        Some("test")
    );
    assert_eq!(config.working_dir.as_deref(), Some(REPO_ROOT));
    let host = inspect.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.memory, Some(4 << 30));
    assert_eq!(host.pids_limit, Some(1024));
    assert_eq!(host.nano_cpus, Some(2_000_000_000));
    let out = container
        .exec("ls /sys/class/net; pwd", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.output, format!("lo\n{REPO_ROOT}\n"));
    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_exec_reports_codes_and_kills_at_timeout() {
    let docker = docker_with_images().await;
    let run = run_id("exec");
    let container = start(&docker, &fixture_image("retry"), &run).await;
    let out = container
        .exec("echo out; echo err >&2; exit 3", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.output.as_str(), out.timed_out),
        (Some(3), "out\nerr\n", false)
    );

    // Background jobs holding the output open are killed too.
    let timeout = Duration::from_secs(2);
    let out = container
        .exec("echo started; sleep 1000 & sleep 1000", timeout)
        .await
        .unwrap();
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");
    assert_eq!(out.output, "started\n");
    assert!(
        out.duration < timeout + Duration::from_secs(2),
        "{:?}",
        out.duration
    );
    let ps = container
        .exec("ps -e -o comm= | grep -c sleep", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ps.output.trim(), "1", "only pid 1's sleep may remain");
    container.remove().await.unwrap();
    assert_no_leftovers(&docker, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_removed_on_drop_error_and_panic() {
    let docker = docker_with_images().await;
    let run = run_id("removal");
    let config = ContainerConfig::new(fixture_image("retry"), &run, "drop");

    // Plain drop.
    let container = Container::start(&docker, &config).await.unwrap();
    assert_eq!(leftovers(&docker, &run).await, 1);
    drop(container);
    assert_no_leftovers(&docker, &run).await;

    // A panicking task.
    let (d, c) = (docker.clone(), config.clone());
    let task = tokio::spawn(async move {
        let _container = Container::start(&d, &c).await.unwrap();
        panic!("task failed");
    });
    assert!(task.await.is_err());
    assert_no_leftovers(&docker, &run).await;

    // An error path (`?` out of a function).
    async fn failing(
        docker: &cwm_env::Docker,
        config: &ContainerConfig,
    ) -> Result<(), cwm_env::EnvError> {
        let container = Container::start(docker, config).await?;
        container.read_file("/does/not/exist").await?;
        Ok(())
    }
    assert!(failing(&docker, &config).await.is_err());
    assert_no_leftovers(&docker, &run).await;

    // A current-thread runtime, dropped inside async code.
    let d = docker.clone();
    let c = config.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let container = Container::start(&d, &c).await.unwrap();
            drop(container);
        });
    })
    .join()
    .unwrap();
    assert_no_leftovers(&docker, &run).await;

    // keep() disarms removal; clean by label finds it.
    let kept = Container::start(&docker, &config).await.unwrap().keep();
    assert_eq!(leftovers(&docker, &run).await, 1);
    assert_eq!(
        cwm_env::remove_labelled(&docker, Some(&run)).await.unwrap(),
        1
    );
    assert!(docker.inspect_container(&kept, None).await.is_err());
    assert_no_leftovers(&docker, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_and_bad_config_are_clear_errors() {
    let docker = docker_with_images().await;
    let run = run_id("badimage");
    let config = ContainerConfig::new("cwm-bench/fixture.nope:latest", &run, "x");
    let err = Container::start(&docker, &config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cwm-bench/fixture.nope:latest"), "{err}");
    let err = cwm_env::ensure_image(&docker, "swebench/sweb.eval.x86_64.nope_1776_nope-1:latest")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker pull swebench/sweb.eval.x86_64.nope_1776_nope-1:latest"),
        "{err}"
    );
    assert_no_leftovers(&docker, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_past_its_deadline_removes_itself() {
    let docker = docker_with_images().await;
    let run = run_id("deadline");
    let config = ContainerConfig::for_episode(fixture_image("retry"), &run, "test")
        .with_deadline(Duration::from_secs(3));
    let container = Container::start(&docker, &config).await.unwrap();
    // Until the deadline it works normally, even after a kill of every process it can see.
    let out = container
        .exec("kill -9 -1; echo alive", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        out.output.contains("alive") || out.exit_code.is_some(),
        "{out:?}"
    );
    // A harness killed with SIGKILL never removes it; the deadline does. The handle is
    // forgotten so its drop does not remove the container either.
    let id = container.keep();
    let start = std::time::Instant::now();
    while docker.inspect_container(&id, None).await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "container {id} still exists 30 s after a 3 s deadline"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "removed before its deadline"
    );
    assert_no_leftovers(&docker, &run).await;
}
