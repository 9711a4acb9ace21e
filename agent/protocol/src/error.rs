//! The error types of the crate: [`TrajectoryError`] (a trajectory file could not be written
//! or read back) and [`BadRecord`] (why a line of one is not a record).
//!
//! Convention (as in the other library crates): each message is one line that already
//! includes the text of its cause, and the cause is also kept as the error's
//! [`std::error::Error::source`], so a caller can match on the kind and walk the chain. A
//! chain printer that leaves out causes whose text is already on the line (the binary's
//! `error_line`) prints each cause once.

use std::path::PathBuf;

use crate::trajectory::SCHEMA_VERSION;

/// Failure to write or read a trajectory.
#[derive(Debug, thiserror::Error)]
pub enum TrajectoryError {
    #[error("trajectory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a trajectory record (a torn last line is not an error).
    #[error("trajectory {path}, line {line}: {problem}")]
    Malformed {
        path: PathBuf,
        /// From 1.
        line: usize,
        #[source]
        problem: BadRecord,
    },
}

/// Why a trajectory line is not a record ([`TrajectoryError::Malformed`]).
#[derive(Debug, thiserror::Error)]
pub enum BadRecord {
    /// Not JSON, or not one of the record types.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A header of another schema version.
    #[error("schema version {found} is not supported (this build reads {SCHEMA_VERSION})")]
    UnsupportedSchema { found: u32 },
    /// The file has no header record.
    #[error("no header record; is this a trajectory file?")]
    NoHeader,
}
