//! Local image sizes, removal, and the free space of Docker's data root, on the real daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use std::collections::HashMap;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateImageOptionsBuilder, TagImageOptionsBuilder};
use common::*;
use cwm_env::{Docker, EnvError, RUN_LABEL};
use futures_util::StreamExt;

/// Removes the named containers and images with the Docker CLI when dropped, so a failing
/// test leaves nothing behind.
#[derive(Default)]
struct Leftovers {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            let _ = std::process::Command::new("docker")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        for container in &self.containers {
            docker(&["rm", "-f", container]);
        }
        for image in &self.images {
            docker(&["rmi", image]);
        }
    }
}

async fn tag(docker: &Docker, image: &str, as_name: &str) {
    let (repo, tag) = as_name.rsplit_once(':').unwrap();
    let options = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
    docker.tag_image(image, Some(options)).await.unwrap();
}

/// Imports a one-file image as `name`: its only tag, and no layer shared with anything.
async fn import_tiny_image(docker: &Docker, name: &str) {
    let mut builder = tar::Builder::new(Vec::new());
    let content = format!("{name}\n");
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "name.txt", content.as_bytes())
        .unwrap();
    let archive = builder.into_inner().unwrap();
    let (repo, tag) = name.rsplit_once(':').unwrap();
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .build();
    let body = bollard::body_full(archive.into());
    let mut stream = docker.create_image(Some(options), Some(body), None);
    while let Some(item) = stream.next().await {
        item.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_removal_and_the_data_roots_free_space() {
    let docker = docker_with_images().await;
    let mut leftovers = Leftovers::default();
    let fixture = fixture_image("paginate");
    let size = cwm_env::image_size(&docker, &fixture).await.unwrap();
    assert!(size.unwrap() > 1_000_000, "{size:?}");
    let absent = "cwm-bench/fixture.absent:latest";
    assert_eq!(cwm_env::image_size(&docker, absent).await.unwrap(), None);

    // Removing a second tag removes only that name.
    let alias = format!("cwm-bench-test/alias-{}:latest", std::process::id());
    leftovers.images.push(alias.clone());
    tag(&docker, &fixture, &alias).await;
    assert_eq!(cwm_env::image_size(&docker, &alias).await.unwrap(), size);
    assert!(cwm_env::remove_image(&docker, &alias).await.unwrap());
    assert!(!cwm_env::remove_image(&docker, &alias).await.unwrap());
    assert!(!cwm_env::image_exists(&docker, &alias).await.unwrap());
    assert!(cwm_env::image_exists(&docker, &fixture).await.unwrap());

    let space = cwm_env::disk_space(&docker).await.unwrap();
    assert!(space.path.is_dir(), "{space:?}");
    assert!(
        space.free_bytes > 0 && space.total_bytes >= space.free_bytes,
        "{space:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_a_container_uses_is_kept_and_named() {
    let docker = cwm_env::connect().await.unwrap();
    let run = run_id("inuse");
    let mut leftovers = Leftovers::default();
    let image = format!("cwm-bench-test/in-use-{}:latest", std::process::id());
    leftovers.images.push(image.clone());
    import_tiny_image(&docker, &image).await;
    // Created, never started: the image has no shell, and a created container uses it too.
    let config = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: Some(vec!["/none".to_string()]),
        labels: Some(HashMap::from([(RUN_LABEL.to_string(), run.clone())])),
        ..Default::default()
    };
    let created = docker.create_container(None, config).await.unwrap();
    leftovers.containers.push(created.id.clone());

    let err = cwm_env::remove_image(&docker, &image).await.unwrap_err();
    assert!(matches!(err, EnvError::ImageInUse { .. }), "{err:?}");
    let line = err.to_string();
    assert!(
        line.contains(&image) && line.contains("cwm-bench clean"),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
    assert!(cwm_env::image_exists(&docker, &image).await.unwrap());

    docker.remove_container(&created.id, None).await.unwrap();
    assert!(cwm_env::remove_image(&docker, &image).await.unwrap());
    assert!(!cwm_env::image_exists(&docker, &image).await.unwrap());
    assert_no_leftovers(&docker, &run).await;
}
