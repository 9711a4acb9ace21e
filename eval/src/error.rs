//! Errors of the eval crate. Each names what went wrong and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{instance_id}: unknown log_parser `{name}`; use one of SWE-bench's parse_log_* names (e.g. parse_log_pytest)")]
    UnknownParser { instance_id: String, name: String },
    #[error("{instance_id}: unknown eval_type {value}; use `pass_and_fail` or `fail_only`")]
    UnknownEvalType { instance_id: String, value: String },
    #[error("{instance_id}: {crash}; no report is written, as SWE-bench 5.0.2 writes none (see docs/grading.md)")]
    ParserCrash {
        instance_id: String,
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
    #[error(
        "{path} is not a valid report.json ({message}); delete it to evaluate the instance again"
    )]
    BadReport { path: PathBuf, message: String },
    #[error("{instance_id}: {source}")]
    Env {
        instance_id: String,
        source: cwm_env::EnvError,
    },
    #[error("predictions file {path}: {message}")]
    BadPredictions { path: PathBuf, message: String },
    #[error("predictions name instance ids that are not in the dataset: {}; check --dataset, or drop those predictions", .0.join(", "))]
    UnknownPredictionIds(Vec<String>),
}
