//! The run pipeline as a library: the typed run configuration, building the model backend,
//! one instance end to end (container, episode, removal; grading in a fresh container), and
//! the scheduler that runs a whole dataset with a worker pool, resume and clean stops. The
//! `cwm-bench` binary only parses flags and prints; tests drive this library directly.

#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod logging;
pub mod pipeline;
pub mod policies;
pub mod progress;
pub mod signals;

pub use config::RunConfig;
pub use error::PipelineError;
