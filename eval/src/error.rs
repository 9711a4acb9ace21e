//! Errors of the eval crate. Each names what went wrong and what to do about it.
//!
//! Convention (as in the other library crates): each message is one line that already
//! includes the text of its cause, and the cause is also kept as the error's
//! [`std::error::Error::source`], so a caller can match on the kind and walk the chain. A
//! chain printer that leaves out causes whose text is already on the line (the binary's
//! `error_line`) prints each cause once. Where a verdict file records why an instance has no
//! report (`hardened.json`'s `error`), it records this error's text.

use std::path::PathBuf;

/// Why an instance could not be evaluated or graded, or an input or output file could not be
/// used.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{instance_id}: unknown log_parser `{name}`; use one of SWE-bench's parse_log_* names (e.g. parse_log_pytest)")]
    UnknownParser { instance_id: String, name: String },
    #[error("{instance_id}: unknown eval_type {value}; use `pass_and_fail` or `fail_only`")]
    UnknownEvalType { instance_id: String, value: String },
    #[error("{instance_id}: {crash}; no report is written, as SWE-bench 5.0.2 writes none (see docs/grading.md)")]
    ParserCrash {
        instance_id: String,
        #[source]
        crash: crate::parsers::ParserCrash,
    },
    #[error("{instance_id}: no log parser is known for repo `{repo}`; set the dataset's `log_parser` field")]
    NoParser { instance_id: String, repo: String },
    #[error("{instance_id}: the dataset has no eval_script and no test command is known for repo `{repo}`; add an `eval_script` (or a `log_parser`) to the dataset")]
    NoTestCommand { instance_id: String, repo: String },
    #[error("{instance_id}: the dataset has no eval_script and its test_patch touches no test files, so no eval script can be built; add an `eval_script` to the dataset")]
    NoTestFiles { instance_id: String },
    #[error("cannot write {path}: {source}; check that the run directory is writable and the disk is not full")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A `report.json` or `hardened.json` that cannot be read back.
    #[error(
        "{path} is not a valid report.json ({problem}); delete it to evaluate the instance again"
    )]
    BadReport {
        path: PathBuf,
        #[source]
        problem: ReportProblem,
    },
    #[error("{instance_id}: {source}")]
    Env {
        instance_id: String,
        source: cwm_env::EnvError,
    },
    #[error("predictions file {path}: {problem}")]
    BadPredictions {
        path: PathBuf,
        #[source]
        problem: PredictionsProblem,
    },
    #[error("predictions name instance ids that are not in the dataset: {}; check --dataset, or drop those predictions", .0.join(", "))]
    UnknownPredictionIds(Vec<String>),
    /// A test log to re-grade is not UTF-8 text ([`crate::regrade::regrade`]).
    #[error(
        "{path}: not UTF-8 text (invalid byte at offset {}); the official grader cannot read it \
         either, so it gets no report; fix the file's encoding or evaluate the instance again",
        .source.utf8_error().valid_up_to()
    )]
    LogNotUtf8 {
        path: PathBuf,
        source: std::string::FromUtf8Error,
    },
    /// A test log to re-grade that could not be graded ([`crate::regrade::regrade`]).
    #[error("{path}: {source}")]
    Ungradable {
        /// The `test_output.txt` file.
        path: PathBuf,
        source: Box<EvalError>,
    },
}

/// What is wrong with a report file ([`EvalError::BadReport`]).
#[derive(Debug, thiserror::Error)]
pub enum ReportProblem {
    /// Not JSON, or not the report's shape.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A `report.json` must hold exactly one instance id at its top level.
    #[error("expected exactly one instance id at the top level")]
    NotOneInstance,
}

/// What is wrong with a predictions file ([`EvalError::BadPredictions`]).
#[derive(Debug, thiserror::Error)]
pub enum PredictionsProblem {
    /// A record of a JSON list or dict is not a prediction.
    #[error("bad prediction: {0}")]
    BadRecord(#[source] serde_json::Error),
    /// A line of a JSON Lines file is not a prediction.
    #[error("line {line}: {source}")]
    BadLine {
        /// From 1.
        line: usize,
        source: serde_json::Error,
    },
    /// The whole file is JSON, but neither a list, a dict, nor one record.
    #[error("expected JSON Lines, a JSON list or a JSON object, found {found}")]
    WrongShape {
        /// What was found instead, e.g. `a number`.
        found: &'static str,
    },
    /// A record with an empty or missing `instance_id` (outside a dict keyed by id).
    #[error("a prediction has no instance_id")]
    NoInstanceId,
}
