//! The error types of the crate that cross its boundary: [`EnvFailure`] (the container failed
//! under a tool) and [`ProfileError`] (a prompt profile could not be loaded).
//!
//! The model's own mistakes are not errors of the harness and live with the code that
//! renders them for the model: [`crate::FormatError`] (parse.rs) and
//! [`crate::edit::EditError`] / [`crate::edit::CreateError`] (edit.rs).
//!
//! Convention (as in the other library crates): each message is one line that already
//! includes the text of its cause, and the cause is also kept as the error's
//! [`std::error::Error::source`], so a caller can match on the kind and walk the chain. A
//! chain printer that leaves out causes whose text is already on the line (the binary's
//! `error_line`) prints each cause once.

use std::path::PathBuf;
use std::sync::Arc;

use cwm_env::EnvError;

/// An infrastructure failure: the container or the Docker daemon is gone, not a tool
/// misuse by the model. It ends the episode with `env_error`; the episode's footer records
/// this error's text.
#[derive(Debug, thiserror::Error)]
#[error("container environment failed while {action}: {cause}")]
pub struct EnvFailure {
    /// What the tool was doing, e.g. `running a bash command`.
    pub action: String,
    /// What failed.
    #[source]
    pub cause: EnvFailureCause,
}

/// Why the container environment failed ([`EnvFailure::cause`]).
#[derive(Debug, thiserror::Error)]
pub enum EnvFailureCause {
    /// The environment crate failed (Docker, the shell session, file transfer). Shared, as
    /// a failed repository hygiene fails every later use of the workspace with the same error.
    #[error(transparent)]
    Env(Arc<EnvError>),
    /// A bookkeeping command in the container printed something it never prints.
    #[error("unexpected output {output:?}")]
    UnexpectedOutput { output: String },
    /// Any other cause, from [`crate::Workspace`] implementations outside this crate (an
    /// in-memory test workspace says `"container gone"`).
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl EnvFailure {
    /// `action` is what was being done (`running a bash command`); `cause` is an
    /// [`EnvError`], an `Arc<EnvError>`, an [`EnvFailureCause`], or a text (`&str` or
    /// `String`) for workspaces that have no error type of their own.
    pub fn new(action: impl Into<String>, cause: impl Into<EnvFailureCause>) -> Self {
        Self {
            action: action.into(),
            cause: cause.into(),
        }
    }

    /// The environment error underneath, if that is the cause.
    pub fn env_error(&self) -> Option<&EnvError> {
        match &self.cause {
            EnvFailureCause::Env(err) => Some(err),
            _ => None,
        }
    }
}

impl From<EnvError> for EnvFailureCause {
    fn from(err: EnvError) -> Self {
        Self::Env(Arc::new(err))
    }
}

impl From<Arc<EnvError>> for EnvFailureCause {
    fn from(err: Arc<EnvError>) -> Self {
        Self::Env(err)
    }
}

impl From<&str> for EnvFailureCause {
    fn from(text: &str) -> Self {
        Self::Other(text.into())
    }
}

impl From<String> for EnvFailureCause {
    fn from(text: String) -> Self {
        Self::Other(text.into())
    }
}

/// Why a prompt profile could not be loaded. Every variant names the profile
/// (`source_name`: the file, or `built-in`) and, for a field, its dotted key.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read prompt profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not TOML; the message is toml's, on one line.
    #[error("prompt profile {source_name} is not valid TOML: {}", .source.message().trim_end().replace('\n', "; "))]
    Toml {
        source_name: String,
        source: toml::de::Error,
    },
    #[error("prompt profile {source_name}: unknown field `{key}`; the fields are listed in docs/prompts.md (`cwm-bench prompts dump` writes them all)")]
    UnknownField { source_name: String, key: String },
    #[error("prompt profile {source_name}: field `{key}` must be a string")]
    NotAString { source_name: String, key: String },
    #[error("prompt profile {source_name}: field `{key}` is not a valid template: {source}")]
    BadTemplate {
        source_name: String,
        key: String,
        source: minijinja::Error,
    },
    #[error("prompt profile {source_name}: field `{key}` uses `{placeholder}`, which it does not have; it may use: {allowed}")]
    UnknownPlaceholder {
        source_name: String,
        key: String,
        placeholder: String,
        /// The placeholders the field may use, comma-separated, or `none`.
        allowed: String,
    },
}
