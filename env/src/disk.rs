//! Local images and the disk they live on: sizes, removal, and the free space of Docker's
//! data root (for the image cache's disk budget).

use std::path::PathBuf;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::RemoveImageOptionsBuilder;
use bollard::Docker;

use crate::error::is_not_found;
use crate::EnvError;

/// The size of a local image in bytes (Docker's `Size`: every layer of the image, including
/// layers it shares with other images), or None when there is no such local image.
///
/// Errors: [`EnvError::Docker`] when the daemon fails the lookup.
pub async fn image_size(docker: &Docker, image: &str) -> Result<Option<u64>, EnvError> {
    match docker.inspect_image(image).await {
        Ok(inspect) => Ok(Some(inspect.size.unwrap_or(0).max(0) as u64)),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(cause) => Err(EnvError::Docker {
            action: format!("inspecting image {image}"),
            cause,
        }),
    }
}

/// Removes the local image `image` (a `repo:tag` name) as `docker rmi` without `--force`
/// does: the tag goes, and the image's layers go with it unless another tag or image still
/// uses them. Returns Ok(false) when there was no such image.
///
/// Errors: [`EnvError::ImageInUse`] naming the image (and, in the daemon's words, the
/// container) when a container uses it; [`EnvError::Docker`] otherwise.
pub async fn remove_image(docker: &Docker, image: &str) -> Result<bool, EnvError> {
    let options = RemoveImageOptionsBuilder::new()
        .force(false)
        .noprune(false)
        .build();
    match docker.remove_image(image, Some(options), None).await {
        Ok(_) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        }) if message.contains("container") => Err(EnvError::ImageInUse {
            image: image.to_string(),
            detail: message.trim().to_string(),
        }),
        Err(cause) => Err(EnvError::Docker {
            action: format!("removing image {image}"),
            cause,
        }),
    }
}

/// Free and total space of the file system holding Docker's data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes available to unprivileged writers (statvfs `f_bavail` × `f_frsize`).
    pub free_bytes: u64,
    /// Size of the file system in bytes (`f_blocks` × `f_frsize`).
    pub total_bytes: u64,
    /// Docker's data root (`docker info`'s DockerRootDir), e.g. `/var/lib/docker`.
    pub path: PathBuf,
}

/// The free space where the daemon keeps images. The path comes from the daemon; it is
/// measured on this machine, so the daemon must be local.
///
/// Errors: [`EnvError::Docker`] when `docker info` fails; [`EnvError::DiskSpace`] naming the
/// path when the daemon reports none or it cannot be measured here.
pub async fn disk_space(docker: &Docker) -> Result<DiskSpace, EnvError> {
    let info = docker.info().await.map_err(EnvError::docker(
        "reading the daemon's data root (docker info)",
    ))?;
    let Some(root) = info.docker_root_dir.filter(|r| !r.is_empty()) else {
        return Err(EnvError::DiskSpace {
            path: PathBuf::new(),
            cause: std::io::Error::other("the daemon reported no DockerRootDir"),
        });
    };
    let path = PathBuf::from(root);
    match rustix::fs::statvfs(&path) {
        Ok(stat) => Ok(DiskSpace {
            free_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
            total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
            path,
        }),
        Err(errno) => Err(EnvError::DiskSpace {
            path,
            cause: errno.into(),
        }),
    }
}
