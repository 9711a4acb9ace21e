//! The tool protocol: parsing `<tool: NAME>` calls out of model text, running bash/edit/create/submit/test in a session, and formatting observations.
//!
//! The flow for one assistant turn: [`parse_reply`] splits off the thinking and finds the one
//! call (or a [`FormatError`] for the model), [`execute`] runs it against a [`Workspace`] (the
//! task container), and [`format_observation`] wraps the result with the budget block.

#![forbid(unsafe_code)]

mod docker;
pub mod edit;
mod error;
mod exec;
mod observation;
mod parse;
mod patch;
pub mod profile;
mod submit;
mod test_tool;
mod tokens;
mod workspace;

pub use docker::DockerWorkspace;
pub use error::{EnvFailure, EnvFailureCause, ProfileError};
pub use exec::{execute, submission_message, ToolConfig, ToolOutcome};
pub use observation::{budget_block, format_observation, observation_body, Remaining};
pub use parse::{
    parse_call, parse_reply, split_thinking, FormatError, Reply, ToolCall, ToolName, THINK_END,
    THINK_START,
};
pub use patch::{clean_patch, CleanPatch, LeftOut, LeftOutReason};
pub use profile::Profile;
pub use tokens::{
    approx_tokens, head_within, tail_within, truncate_tokens, ApproxCounter, TokenCounter,
};
pub use workspace::{
    parent_dir, resolve_in_session, resolve_path, shell_quote, CommandOutput, PathKind, Workspace,
    REPO_ROOT,
};
