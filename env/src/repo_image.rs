//! Baking a local repository into an image, for tasks made from a directory instead of a
//! dataset row (`repro --repo`).

use std::path::Path;

use crate::{Container, ContainerConfig, Docker, EnvError, REPO_ROOT};

/// Builds `image` from `base` with `repo_dir` (history included) at [`REPO_ROOT`].
/// The build container is removed whatever happens.
pub async fn build_repo_image(
    docker: &Docker,
    base: &str,
    repo_dir: &Path,
    image: &str,
) -> Result<(), EnvError> {
    let archive = pack_dir(repo_dir)?;
    let run_id = format!("images-{}", std::process::id());
    let config = ContainerConfig::new(base, run_id, "local-repo");
    let container = Container::start(docker, &config).await?;
    let result = upload_and_commit(&container, archive, image).await;
    let removed = container.remove().await;
    result.and(removed)
}

async fn upload_and_commit(
    container: &Container,
    archive: Vec<u8>,
    image: &str,
) -> Result<(), EnvError> {
    crate::images::upload_archive(container, archive, &format!("the repository for {image}"))
        .await?;
    crate::images::commit_image(container, image, None).await
}

fn pack_dir(dir: &Path) -> Result<Vec<u8>, EnvError> {
    let pack = || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all(REPO_ROOT.trim_start_matches('/'), dir)?;
        builder.into_inner()
    };
    pack().map_err(EnvError::io(format!("packing {}", dir.display())))
}
