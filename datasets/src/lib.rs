//! SWE-bench datasets: the typed [`Instance`], loaders for JSONL, JSON and parquet,
//! instance filters, task image naming (`--namespace`, `--image-template`), and the bundled
//! fixture tasks with the recipe for their offline base image.

#![forbid(unsafe_code)]

mod error;
mod filter;
pub mod fixtures;
mod instance;
mod load;
mod naming;
mod prediction;
mod stats;

pub use error::{DatasetError, ImageNamingError, RowProblem, SliceError};
pub use filter::{Filter, Slice};
pub use instance::Instance;
pub use load::load;
pub use naming::{
    docker_safe_id, image_arch, official_image_name, ImageNaming, DEFAULT_ARCH, DEFAULT_NAMESPACE,
    PLACEHOLDERS,
};
pub use prediction::Prediction;
pub use stats::Stats;
