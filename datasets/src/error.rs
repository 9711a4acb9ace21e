//! The error types of the crate: [`DatasetError`] (a dataset could not be loaded or filtered),
//! [`SliceError`] (a `--slice` that is not `A:B`) and [`ImageNamingError`] (a `--namespace` or
//! `--image-template` that cannot name images).
//!
//! Convention (as in the other library crates): each message is one line that already
//! includes the text of its cause, and the cause is also kept as the error's
//! [`std::error::Error::source`], so a caller can match on the kind and walk the chain. A
//! chain printer that leaves out causes whose text is already on the line (the binary's
//! `error_line`) prints each cause once.

use std::path::PathBuf;

/// Why a dataset could not be loaded or filtered. Every variant names the file (or the
/// instance ids) and what to do.
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
    #[error("cannot read parquet file {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    /// One row (a line of a JSONL file, an entry of a JSON file, a parquet row) is not an
    /// instance.
    #[error("{file}: row {row}, field `{field}`: {problem}")]
    BadRow {
        file: PathBuf,
        /// From 1; for a JSON document that does not parse, the line of the syntax error.
        row: usize,
        /// The field's path (`FAIL_TO_PASS`), or `(whole line)` / `(document)`.
        field: String,
        #[source]
        problem: RowProblem,
    },
    #[error(
        "unknown instance id(s) {0:?}; check `cwm-bench dataset stats` for what the dataset holds"
    )]
    UnknownInstances(Vec<String>),
    /// Instance ids were given, but all of them blank (`--instances ","`).
    #[error("the instance ids {0:?} are all blank; give ids, e.g. --instances a__b-1,c__d-2, or leave the flag out for all")]
    NoInstanceIds(Vec<String>),
}

/// What is wrong with a dataset row ([`DatasetError::BadRow`]).
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    /// The line or document is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// JSON, but a field has the wrong type or is missing.
    #[error(transparent)]
    Field(serde_json::Error),
    /// A JSON document that is neither a list nor an object keyed by instance id.
    #[error("expected a list of instances or an object keyed by instance id")]
    NotAList,
    /// The instance id was already used by an earlier row.
    #[error("duplicate instance id {0}")]
    DuplicateId(String),
}

/// A `--slice` that is not a Python-style `A:B` range ([`crate::Slice`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SliceError {
    /// There is no `:` in `text`.
    #[error("slice `{text}` must look like A:B, e.g. 0:10 or :5")]
    NoColon { text: String },
    /// One side of the colon is neither empty nor a non-negative integer.
    #[error("slice bound `{bound}` in `{text}` is not a non-negative integer")]
    BadBound {
        /// The side of the colon that failed, as written.
        bound: String,
        /// The whole slice, as written.
        text: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

/// A `--namespace` or `--image-template` that cannot name images ([`crate::ImageNaming`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageNamingError {
    #[error("image namespace `{namespace}` is not usable: {problem} (e.g. `swebench` or `localhost:5000/swebench`)")]
    BadNamespace {
        namespace: String,
        problem: &'static str,
    },
    #[error("the image template is empty; e.g. `{{namespace}}/sweb.eval.{{arch}}.{{id}}:latest`")]
    EmptyTemplate,
    #[error("image template `{template}` has an unknown placeholder `{{{name}}}`; use {{namespace}}, {{id}}, {{instance_id}} or {{arch}} (and {{{{ }}}} for literal braces)")]
    UnknownPlaceholder { template: String, name: String },
    #[error("image template `{template}` has {problem}; placeholders look like {{id}}, and {{{{ }}}} are literal braces")]
    BadBrace {
        template: String,
        problem: &'static str,
    },
    #[error("image template `{template}` uses neither {{id}} nor {{instance_id}}, so every task would get the same image; add one of them")]
    NoInstancePlaceholder { template: String },
    #[error("architecture `{arch}` has no SWE-bench images; use x86_64 (alias amd64) or arm64")]
    BadArch { arch: String },
}
