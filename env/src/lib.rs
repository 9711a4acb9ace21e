//! Docker sandboxes through bollard: image resolution, pulling (with retries and registry
//! credentials) and building, local image sizes and removal, the disk Docker keeps images on,
//! container lifecycle, the persistent shell session, file transfer and cleanup by label.

#![forbid(unsafe_code)]

mod auth;
mod container;
mod disk;
mod docker;
mod error;
mod files;
mod health;
mod hygiene;
mod images;
mod killer;
mod layout;
mod lock;
mod output;
mod pull;
mod repo_image;
mod shell;

pub use bollard::Docker;
pub use container::{
    remove_all_live, remove_labelled, remove_labelled_settled, Container, ContainerConfig,
    ExecOutput, EPISODE_DISK_LIMIT, INSTANCE_LABEL, RUN_LABEL,
};
pub use disk::{disk_space, image_size, remove_image, DiskSpace};
pub use docker::connect;
pub use error::{EnvError, PullFailure, ShellFailure, WardenError};
pub use files::container_path;
pub use health::wait_for_daemon;
pub use hygiene::{
    check_hygiene, hygiene_wait_script, prepare_repo, HYGIENE_TIMEOUT, START_BASE_FILE,
    UNTRACKED_AT_START_FILE,
};
pub use images::{
    build_base_image, build_fixture_images, build_fixture_images_report, ensure_image,
    image_exists, FixtureImage, INPUTS_LABEL,
};
pub use layout::{CONDA_ACTIVATE, CONDA_ENV, DEFAULT_PATH, REPO_ROOT};
pub use output::CUT_MARKER;
pub use pull::{pull_image, PullOptions, PullReport, DEFAULT_PULL_ATTEMPTS};
pub use repo_image::build_repo_image;
pub use shell::{DiskLimitHit, Shell, ShellConfig, ShellOutput, SESSION_MARK_VAR};
