//! The Ctrl-C path: `remove_all_live` removes every container this process still owns.
//! (Its own test binary: it would remove other tests' containers.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_all_live_removes_owned_containers_only() {
    let docker = docker_with_images().await;
    let run = run_id("ctrlc");
    let a = start(&docker, &fixture_image("semver"), &run).await;
    let b = start(&docker, &fixture_image("semver"), &run).await;
    let kept = start(&docker, &fixture_image("semver"), &run).await.keep();
    assert_eq!(leftovers(&docker, &run).await, 3);
    cwm_env::remove_all_live().await;
    assert_eq!(
        leftovers(&docker, &run).await,
        1,
        "kept containers are not ours to remove"
    );
    // The handles are stale now; dropping them must be quiet.
    drop((a, b));
    assert!(docker.inspect_container(&kept, None).await.is_ok());
    assert_eq!(
        cwm_env::remove_labelled(&docker, Some(&run)).await.unwrap(),
        1
    );
    assert_no_leftovers(&docker, &run).await;
}
