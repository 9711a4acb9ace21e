//! The error types of the crate. Every variant says what went wrong and, where there is one,
//! what the user can do about it.
//!
//! Convention (as in the other library crates): each message is one line that already
//! includes the text of its cause, and the cause is also kept as the error's
//! [`std::error::Error::source`], so a caller can match on the kind and walk the chain. A
//! chain printer that leaves out causes whose text is already on the line (the binary's
//! `error_line`) prints each cause once; anyhow's `{:#}` would repeat them.

use std::path::PathBuf;
use std::time::Duration;

/// Errors from the Docker environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The daemon could not be reached (not running, wrong `DOCKER_HOST`, no permission).
    #[error("cannot reach the Docker daemon at {address}: {cause}; start it (e.g. `sudo systemctl start docker`)")]
    DaemonUnreachable {
        /// `DOCKER_HOST`, or the default socket.
        address: String,
        #[source]
        cause: bollard::errors::Error,
    },

    /// A container stopped under a running episode or evaluation: not the model's doing
    /// (the model cannot stop its container's main process), so an infrastructure failure.
    #[error("container {container} stopped during {what}: {reason}; this is an infrastructure failure, not the model's: run again with the same --run-id to redo it, or pass --retry-infra")]
    ContainerStopped {
        /// The container's short id.
        container: String,
        /// What was running, e.g. `the evaluation`.
        what: String,
        /// From [`crate::Container::stopped_reason`].
        reason: String,
    },

    /// A Docker API request failed.
    #[error("Docker request failed while {action}: {cause}")]
    Docker {
        /// What was being done, e.g. `creating a container from image X`.
        action: String,
        #[source]
        cause: bollard::errors::Error,
    },

    /// The image is missing locally and could not be pulled.
    #[error("image {image} is not available locally and cannot be pulled ({reason}); {hint}")]
    ImageUnavailable {
        image: String,
        #[source]
        reason: PullFailure,
        /// What to do, e.g. ``build it with `cwm-bench images build-fixtures` `` or
        /// ``log in with `docker login HOST` ``.
        hint: String,
    },

    /// The Docker CLI's configuration file (registry credentials) cannot be used.
    #[error("cannot read registry credentials from {path}: {detail}; fix the file, or set DOCKER_CONFIG to a directory with a valid config.json")]
    DockerConfig { path: PathBuf, detail: String },

    /// An image could not be removed because a container uses it.
    #[error("image {image} is in use by a container and was not removed ({detail}); remove the container first (`cwm-bench clean`, or `docker rm`)")]
    ImageInUse {
        image: String,
        /// The daemon's explanation, naming the container.
        detail: String,
    },

    /// The free space of Docker's data root could not be measured.
    #[error("cannot measure the free space of Docker's data root {path}: {cause}; the disk budget needs the daemon to run on this machine")]
    DiskSpace {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },

    #[error("debootstrap is not installed; run `apt-get install -y debootstrap`")]
    DebootstrapMissing,

    /// A command (on the host or in a container) ran but failed; `detail` holds its exit
    /// status and the end of its output.
    #[error("{what} failed: {detail}")]
    CommandFailed { what: String, detail: String },

    #[error("{path}: no such file in container {container}")]
    FileNotFound {
        /// The container's short (12 character) id.
        container: String,
        path: String,
    },

    #[error("{path} in container {container} is {kind}, not a regular file")]
    NotAFile {
        /// The container's short (12 character) id.
        container: String,
        path: String,
        /// What is there instead, e.g. `a directory`.
        kind: String,
    },

    #[error("fixture {name}: init_repo.sh printed base commit {got}, but fixtures.jsonl records {expected}; regenerate with `python3 datasets/fixtures/make_fixtures.py`")]
    FixtureCommitMismatch {
        name: String,
        expected: String,
        got: String,
    },

    /// The bundled fixture dataset could not be loaded.
    #[error("fixture dataset: {path}: {source}")]
    FixtureDataset {
        /// The `fixtures.jsonl` file.
        path: PathBuf,
        /// Boxed: it is large, and [`EnvError`] travels in every `Result` of the crate.
        #[source]
        source: Box<cwm_datasets::DatasetError>,
    },

    /// A fixture task names an image outside the fixture image namespace.
    #[error(
        "fixture dataset: {instance_id}: image {image} is not of the form {prefix}<name>:latest",
        prefix = crate::images::FIXTURE_PREFIX
    )]
    FixtureImageName { instance_id: String, image: String },

    /// The persistent shell session could not be started or restarted.
    #[error("the shell session in container {container} could not be (re)started: {cause}")]
    ShellUnavailable {
        /// The container's short (12 character) id.
        container: String,
        #[source]
        cause: ShellFailure,
    },

    #[error("{what} timed out after {after:?}")]
    Timeout { what: String, after: Duration },

    /// A local I/O operation failed (temporary files, tar archives, locks).
    #[error("{what}: {cause}")]
    Io {
        /// What was being done, e.g. `creating /tmp/x`.
        what: String,
        #[source]
        cause: std::io::Error,
    },
}

/// Why a missing image could not be pulled ([`EnvError::ImageUnavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum PullFailure {
    /// A `cwm-bench/...` image: it only ever exists when built on this machine.
    #[error("it is built locally, never pulled")]
    BuiltLocally,
    /// The registry has no such repository or tag. Never retried.
    #[error("the registry has no such image: {detail}")]
    NotFound {
        /// The daemon's message.
        detail: String,
    },
    /// The registry refused access (no or wrong credentials). Never retried.
    #[error("registry {registry} denied access: {detail}")]
    Denied {
        /// The registry host, e.g. `docker.io` or `localhost:5000`.
        registry: String,
        /// The daemon's message.
        detail: String,
    },
    /// Anything else: the last error after `attempts` tries (transient errors are retried
    /// with backoff; others end the pull at once). Boxed: it is large, and [`EnvError`]
    /// travels in every `Result` of the crate.
    #[error("after {attempts} attempt(s): {cause}")]
    Failed {
        attempts: u32,
        #[source]
        cause: Box<bollard::errors::Error>,
    },
}

/// Why the persistent shell session could not be (re)started ([`EnvError::ShellUnavailable`]).
#[derive(Debug, thiserror::Error)]
pub enum ShellFailure {
    /// The warden (the helper bash that kills on the session's behalf) did not start.
    #[error("starting the warden: {0}")]
    StartingWarden(#[source] WardenError),
    /// The session's bash no longer reads its input (it died).
    #[error("writing to bash: {0}")]
    WritingToBash(#[source] std::io::Error),
    /// bash ended before its first answer: the image may have no bash.
    #[error("bash exited at start (is bash installed?)")]
    ExitedAtStart,
    /// bash gave no first answer within `after`.
    #[error("bash did not answer within {} s", .after.as_secs())]
    NoAnswerAtStart { after: Duration },
    /// The session's start-up script (conda, `cd` to the repository) did not come back.
    #[error("the start-up script did not finish")]
    StartupUnfinished,
    /// A command was sent while no bash was running.
    #[error("no shell is running")]
    NotRunning,
    /// A warden request found no warden to send it to.
    #[error("the warden could not be started")]
    NoWarden,
    /// A request to the warden failed; the warden is dropped and started afresh next time.
    #[error("warden: {0}")]
    Warden(#[source] WardenError),
}

/// A failed request to the warden bash ([`ShellFailure`]).
#[derive(Debug, thiserror::Error)]
pub enum WardenError {
    /// Its bash could not be started.
    #[error("{0}")]
    Spawn(#[source] Box<EnvError>),
    /// Its set-up answered something other than `ready`.
    #[error("unexpected answer {0:?}")]
    UnexpectedAnswer(String),
    #[error("writing: {0}")]
    Writing(#[source] std::io::Error),
    #[error("reading: {0}")]
    Reading(#[source] bollard::errors::Error),
    /// No answer line within `after`.
    #[error("no answer within {} s", .after.as_secs())]
    NoAnswer { after: Duration },
    /// Its bash exited.
    #[error("it exited")]
    Exited,
}

impl EnvError {
    /// Wraps a bollard error with the action that was being attempted.
    pub(crate) fn docker(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let action = action.into();
        move |cause| EnvError::Docker { action, cause }
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |cause| EnvError::Io { what, cause }
    }
}

/// True when a bollard error is the daemon's "404 not found".
pub(crate) fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
