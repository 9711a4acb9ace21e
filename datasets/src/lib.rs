//! SWE-bench datasets: the typed [`Instance`], loaders for JSONL, JSON and parquet,
//! instance filters, and the bundled fixture tasks with the recipe for their offline base image.

#![forbid(unsafe_code)]

mod error;
mod filter;
pub mod fixtures;
mod instance;
mod load;
mod prediction;
mod stats;

pub use error::{DatasetError, RowProblem, SliceError};
pub use filter::{Filter, Slice};
pub use instance::Instance;
pub use load::load;
pub use prediction::Prediction;
pub use stats::Stats;
