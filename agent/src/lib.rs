//! The episode loop: prompts, budgets, trajectories, and the model backends (local candle engine, OpenAI-compatible HTTP, replay, oracle).
//!
//! Entry point: [`run_episode`] with an [`EpisodeContext`] (container, instance, a [`Policy`],
//! [`EpisodeConfig`], a [`TrajectorySink`] such as [`JsonlTrajectoryWriter`], and an
//! [`EpisodeObserver`]). Prompts follow CWM's SWE-RL agent; [`render_cwm_prompt`] is the exact
//! text a CWM engine is prompted with.

pub mod episode;
pub mod local;
pub mod message;
pub mod policy;
pub mod prompt;
pub mod replay_check;
pub mod trajectory;

pub use episode::{
    run_episode, working_tree_diff, AgentError, Budgets, EpisodeConfig, EpisodeContext,
    EpisodeObserver, EpisodeOutcome, ExitStatus, NoopObserver, OnBudget,
};
pub use message::{Message, Role};
pub use policy::{
    parse_model_spec, ModelReply, ModelSpec, OpenAiConfig, OpenAiPolicy, OpenAiSampling,
    OraclePolicy, Policy, PolicyError, ReplayPolicy,
};
pub use prompt::{render_cwm_prompt, system_prompt, user_prompt};
pub use replay_check::{replay_and_compare, Mismatch, ReplayReport};
pub use trajectory::{
    append_line, read_trajectory, Footer, Header, JsonlTrajectoryWriter, NullSink, Record,
    Trajectory, TrajectoryError, TrajectorySink, Turn,
};
