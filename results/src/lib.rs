//! The run directory: crash-safe trajectory and prediction stores, run summaries, exports for
//! RL/SFT and leaderboard reports.

#![forbid(unsafe_code)]

pub mod export;
pub mod loaded;
pub mod report;
mod run_dir;
mod store;

use std::path::PathBuf;

pub use loaded::{Episode, LoadedRun};
pub use run_dir::RunDir;
pub use store::{read_jsonl, write_atomic, JsonlStore};

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write or read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: line {line} is not a valid record: {message}")]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot encode a record for {path}: {message}")]
    Encode { path: PathBuf, message: String },
    #[error("{path} is not a run directory (no trajectories/ inside); pass a directory written by `cwm-bench run`, e.g. runs/<run-id>")]
    NotARunDir { path: PathBuf },
    #[error(transparent)]
    Trajectory(#[from] cwm_protocol::TrajectoryError),
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("run {run} has no eval report for {instance_id}; `--only resolved` needs graded runs: run `cwm-bench run --evaluate` (or `cwm-bench eval`) first, or export with `--only all`")]
    NotEvaluated { run: String, instance_id: String },
    #[error("cannot draw the {chart} chart: {message}")]
    Chart { chart: String, message: String },
}
