//! The episode loop and the model backends it talks to (OpenAI-compatible HTTP, replay,
//! oracle, and with the `local` feature the in-process `cwm-engine`).
//!
//! Entry point: [`run_episode`] with an [`EpisodeContext`] (container, instance, a [`Policy`],
//! [`EpisodeConfig`], a [`TrajectorySink`] such as [`JsonlTrajectoryWriter`], and an
//! [`EpisodeObserver`]). Prompts follow CWM's SWE-RL agent; [`render_cwm_prompt`] is the exact
//! text a CWM engine is prompted with.

#![forbid(unsafe_code)]

pub mod episode;
mod error;
#[cfg(feature = "local")]
pub mod local_policy;
pub mod policy;
pub mod prompt;
pub mod replay_check;

pub use cwm_protocol::chat::render_cwm_prompt;
pub use cwm_protocol::{
    append_line, read_trajectory, Budgets, ExitStatus, Footer, Header, JsonlTrajectoryWriter,
    Message, NullSink, OnBudget, Record, Role, Trajectory, TrajectoryError, TrajectorySink, Turn,
};
pub use episode::{
    run_episode, working_tree_diff, EpisodeConfig, EpisodeContext, EpisodeObserver, EpisodeOutcome,
    NoopObserver,
};
pub use error::{AgentError, OracleError, PolicyError, ResponseProblem, SpecProblem};
#[cfg(feature = "local")]
pub use local_policy::{render_prompt, LocalPolicy};
pub use policy::{
    parse_model_spec, ModelReply, ModelSpec, OpenAiConfig, OpenAiPolicy, OpenAiSampling,
    OraclePolicy, Policy, ReplayPolicy,
};
pub use prompt::{system_prompt, user_prompt};
pub use replay_check::{replay_and_compare, Mismatch, ReplayReport};
