//! The plain types every stage shares: messages, tool calls, budgets, exit statuses,
//! trajectory records, and CWM's chat format. No async and no model code, so readers of
//! trajectories (`cwm-results`) depend on this crate alone.

#![forbid(unsafe_code)]

pub mod budgets;
pub mod chat;
mod error;
pub mod message;
pub mod pystr;
pub mod tool;
pub mod trajectory;

pub use budgets::{Budgets, ExitStatus, OnBudget};
pub use error::{BadRecord, TrajectoryError};
pub use message::{assistant_turns, Message, Role};
pub use tool::{ToolCall, ToolName};
pub use trajectory::{
    append_line, now, read_trajectory, Footer, Header, JsonlTrajectoryWriter, NullSink, Record,
    Trajectory, TrajectorySink, Turn, HARNESS_VERSION, SCHEMA_VERSION,
};
