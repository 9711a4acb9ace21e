//! An episode's limits and how it ended: written into every trajectory header and footer.

use serde::{Deserialize, Serialize};

/// An episode's limits. Defaults are CWM's SWE-bench evaluation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    pub max_turns: u64,
    /// The whole conversation must fit in this many tokens.
    pub context_tokens: usize,
    /// At most this many tokens per assistant turn.
    pub max_action_tokens: usize,
    /// Tool output beyond this many tokens is cut and marked `[...]`.
    pub max_observation_tokens: usize,
    pub command_timeout_secs: u64,
    /// A command printing more than this is killed and the session restarted.
    pub output_limit_bytes: usize,
    /// Wall-clock limit for the whole episode.
    pub wall_clock_secs: Option<u64>,
    /// This many format errors in a row end the episode; `None` (the default, as CWM) is no
    /// limit: each error still costs a turn.
    #[serde(default)]
    pub max_format_errors: Option<u64>,
    /// The user prompt is cut from the left to this many tokens (CWM: 8,192).
    #[serde(default = "default_max_prompt_tokens")]
    pub max_prompt_tokens: usize,
}

fn default_max_prompt_tokens() -> usize {
    8192
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_turns: 128,
            context_tokens: 131_072,
            max_action_tokens: 65_536,
            max_observation_tokens: 32_768,
            command_timeout_secs: 120,
            output_limit_bytes: 480 * 1024,
            wall_clock_secs: Some(7200),
            max_format_errors: None,
            max_prompt_tokens: default_max_prompt_tokens(),
        }
    }
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// The model submitted and then ended with a reply without a tool call.
    Submitted,
    TurnLimit,
    ContextLimit,
    FormatErrorLimit,
    TimeLimit,
    ModelError,
    EnvError,
}

impl ExitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::TurnLimit => "turn_limit",
            Self::ContextLimit => "context_limit",
            Self::FormatErrorLimit => "format_error_limit",
            Self::TimeLimit => "time_limit",
            Self::ModelError => "model_error",
            Self::EnvError => "env_error",
        }
    }

    /// A budget ran out (the cases where `autosubmit` applies).
    pub fn is_budget(self) -> bool {
        matches!(
            self,
            Self::TurnLimit | Self::ContextLimit | Self::FormatErrorLimit | Self::TimeLimit
        )
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a budget that runs out (turns, context, time, format errors) leaves as the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnBudget {
    /// None: the episode failed and is not graded (CWM's rule).
    #[default]
    Fail,
    /// The last successful submission, if any.
    LastSubmission,
    /// The working-tree diff against the base commit (the last submission when the diff
    /// cannot be taken).
    Autosubmit,
}
