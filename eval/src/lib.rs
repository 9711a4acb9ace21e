//! SWE-bench grading: applying patches, running eval scripts in fresh containers, per-repo
//! log parsers, verdicts, `report.json` and the run summary exactly as the official
//! harness (SWE-bench 5.0.2) writes them, plus a hardened verdict a patch cannot forge.

#![forbid(unsafe_code)]

mod error;
pub mod grading;
pub mod hardened;
pub mod infra;
pub mod log;
pub mod official;
pub use cwm_parsers as parsers;
mod pyjson;
mod report;
pub mod script;
pub mod specs;
pub use cwm_parsers::status;

pub use error::{EvalError, PredictionsProblem, ReportProblem};
pub use grading::{grade, resolution, EvalType, ResolvedStatus, SuccessFailure, TestsStatus};
pub use hardened::{Flag, Hardened};
pub use official::{parser_for, report_for_log};
pub use report::{write_atomic, InstanceReport};
pub use status::{StatusMap, TestStatus};

mod evaluate;
pub mod predictions;
pub mod regrade;
mod summary;

pub use evaluate::{
    evaluate, evaluate_base, EvalOptions, Evaluation, APPLY_COMMANDS, CONTAINER_PATCH_FILE,
    DEFAULT_EVAL_TIMEOUT,
};
pub use summary::{RunSummary, INSTANCE_LOG_FILE, REPORT_FILE, TEST_OUTPUT_FILE};
