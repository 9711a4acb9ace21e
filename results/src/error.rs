//! The error type of the crate. Every variant names the file and, where the user can act,
//! what to do.
//!
//! Convention (as in the other library crates): each message is one line that already
//! includes the text of its cause, and the cause is also kept as the error's
//! [`std::error::Error::source`], so a caller can match on the kind and walk the chain (the
//! binary finds a full disk by walking it to the [`std::io::Error`]). A chain printer that
//! leaves out causes whose text is already on the line (the binary's `error_line`) prints
//! each cause once.

use std::path::PathBuf;

/// Why a run directory, a record store, an export or a report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write or read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line of a JSON Lines store that is not a record of the expected type.
    #[error("{path}: line {line} is not a valid record: {source}")]
    BadLine {
        path: PathBuf,
        /// From 1.
        line: usize,
        source: serde_json::Error,
    },
    /// A record could not be serialised as JSON.
    #[error("cannot encode a record for {path}: {source}")]
    Encode {
        /// The file the record was meant for.
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The leaderboard could not be written as CSV.
    #[error("cannot encode a record for {path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path} is not a run directory (no trajectories/ inside); pass a directory written by `cwm-bench run`, e.g. runs/<run-id>")]
    NotARunDir { path: PathBuf },
    #[error(transparent)]
    Trajectory(#[from] cwm_protocol::TrajectoryError),
    /// A JSON file of the run (its `config.json`) that does not parse.
    #[error("{path}: not valid JSON: {source}")]
    BadFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// An evaluation file of the run (`report.json`, `hardened.json`) that cannot be read,
    /// or a write through the grader's helper that failed.
    #[error("{path}: {source}")]
    Eval {
        path: PathBuf,
        /// Boxed: it is large, and [`ResultsError`] travels in every `Result` of the crate.
        source: Box<cwm_eval::EvalError>,
    },
    #[error("run {run} has no eval report for {instance_id}; `--only resolved` needs graded runs: run `cwm-bench run --evaluate` (or `cwm-bench eval`) first, or export with `--only all`")]
    NotEvaluated { run: String, instance_id: String },
    /// plotters failed to draw a chart of the HTML report.
    #[error("cannot draw the {chart} chart: {source}")]
    Chart {
        /// The chart's title.
        chart: String,
        source: plotters::drawing::DrawingAreaErrorKind<std::io::Error>,
    },
}
