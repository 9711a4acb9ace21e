//! SWE-bench datasets: the typed [`Instance`], loaders for JSONL, JSON and parquet,
//! instance filters, and the bundled fixture tasks with the recipe for their offline base image.

#![forbid(unsafe_code)]

mod filter;
pub mod fixtures;
mod instance;
mod load;
mod prediction;
mod stats;

use std::path::PathBuf;

pub use filter::{Filter, Slice};
pub use instance::Instance;
pub use load::load;
pub use prediction::Prediction;
pub use stats::Stats;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset {0} does not exist; pass a .jsonl, .json or .parquet file or a directory holding one")]
    NotFound(PathBuf),
    #[error("cannot tell the format of {0}; use a .jsonl, .json or .parquet file")]
    UnknownFormat(PathBuf),
    #[error("directory {0} holds no .jsonl, .json or .parquet file")]
    EmptyDir(PathBuf),
    #[error("directory {0} holds several dataset files ({1:?}); pass one of them")]
    AmbiguousDir(PathBuf, Vec<PathBuf>),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read parquet file {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("{file}: row {row}, field `{field}`: {message}")]
    BadRow {
        file: PathBuf,
        row: usize,
        field: String,
        message: String,
    },
    #[error(
        "unknown instance id(s) {0:?}; check `cwm-bench dataset stats` for what the dataset holds"
    )]
    UnknownInstances(Vec<String>),
}
