//! Fixture images: each holds its repo at /testbed on the recorded base commit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_images_are_at_their_base_commit() {
    let docker = docker_with_images().await;
    let run = run_id("images");
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    assert!(instances.len() >= 8);
    for instance in &instances {
        let container = start(&docker, &instance.image_name(), &run).await;
        let out = container
            .exec(
                "git rev-parse HEAD && git status --porcelain",
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(
            out.exit_code,
            Some(0),
            "{}: {}",
            instance.instance_id,
            out.output
        );
        assert_eq!(
            out.output.trim(),
            instance.base_commit,
            "{}",
            instance.instance_id
        );
        container.remove().await.unwrap();
    }
    assert_no_leftovers(&docker, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_cached_and_missing_ones_are_named() {
    let docker = docker_with_images().await;
    let again = cwm_env::build_fixture_images_report(&docker).await.unwrap();
    assert!(again.iter().all(|f| !f.built), "rebuilt: {again:?}");

    // `docker run IMAGE CMD` runs CMD: no entrypoint leaks from the build container.
    let inspect = docker
        .inspect_image(&fixture_image("paginate"))
        .await
        .unwrap();
    let entrypoint = inspect
        .config
        .and_then(|c| c.entrypoint)
        .unwrap_or_default();
    assert!(entrypoint.iter().all(|e| e.is_empty()), "{entrypoint:?}");

    let missing = "cwm-bench/fixture.does-not-exist:latest";
    let err = cwm_env::ensure_image(&docker, missing)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(missing) && err.contains("cwm-bench images build-fixtures"),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
}
