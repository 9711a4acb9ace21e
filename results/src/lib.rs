//! The run directory: crash-safe trajectory and prediction stores, run summaries, exports for
//! RL/SFT and leaderboard reports.

#![forbid(unsafe_code)]

mod error;
pub mod export;
pub mod loaded;
pub mod metrics;
pub mod report;
mod run_dir;
mod store;

pub use error::ResultsError;
pub use loaded::{Episode, LoadedRun};
pub use run_dir::{InfraFailure, RunDir, Stage};
pub use store::{read_jsonl, write_atomic, JsonlStore};
