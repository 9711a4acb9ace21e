//! One instance end to end, and a whole run of them.
//!
//! - [`solve`]: a container of the instance's image, the episode, the container's removal.
//! - [`grade`]: the patch graded in a fresh container (or the finished evaluation on disk).
//! - [`grade_all`]: a set of predictions graded, `workers` at a time (`eval`).
//! - [`run`]: every selected instance with a worker pool, resumable, and stopped cleanly
//!   by a signal ([`run::Run`]).
//! - [`samples`]: `run --samples K`, one run per sample, combined into pass@k and a vote.
//! - [`debugger`]: the neural-debugger evaluation over traces (next-frame prediction).
//! - [`trace`]: CWM-format execution traces of a task's tests, in its container.
//! - [`tts`]: reproduction tests and patch selection over a run's samples.
//! - [`failures`]: infrastructure failures (not scored, redone) apart from model failures.
//! - [`validate`]: gold validation (gold must resolve, the base commit must not).
//! - [`with_cleanup`]: any container work that a stop signal must not leave behind.

mod cleanup;
pub mod debugger;
mod disk;
pub mod failures;
mod grade_all;
mod instance;
pub mod run;
pub mod samples;
pub mod trace;
pub mod tts;
pub mod validate;

pub use cleanup::with_cleanup;
pub use disk::ImageBudget;
pub use failures::{Failures, ModelFailure};
pub use grade_all::{grade_all, Grading};
pub use instance::{grade, solve, Solved, Task, Timings};
pub use run::{summarise, summary_rows, Run, RunOutcome, SummaryRow};
