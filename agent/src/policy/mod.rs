//! Model backends behind one trait: the OpenAI-compatible HTTP client, replay of a recorded
//! trajectory or script, the gold-patch oracle, and (in [`crate::local_policy`]) the candle engine.

mod openai;
mod oracle;
mod replay;
mod spec;

use std::time::Duration;

use async_trait::async_trait;
use cwm_datasets::Instance;

use cwm_protocol::message::Message;

pub use crate::error::PolicyError;
pub use openai::{OpenAiConfig, OpenAiPolicy, OpenAiSampling};
pub use oracle::{oracle_calls, OraclePolicy};
pub use replay::{parse_script, ReplayPolicy};
pub use spec::{parse_model_spec, ModelSpec};

/// One completion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelReply {
    /// The assistant message content, including the leading `<think>\n` when the prompt forced
    /// it (see [`cwm_protocol::chat::assistant_content`]).
    pub text: String,
    /// Tokens in the prompt, when the backend knows them exactly.
    pub prompt_tokens: Option<usize>,
    /// Tokens generated, when the backend knows them exactly.
    pub completion_tokens: Option<usize>,
    /// Time spent waiting for the reply.
    pub latency: Duration,
    /// Why generation stopped (`stop`, `length`, ...), when known.
    pub finish_reason: Option<String>,
}

/// A model that answers the conversation so far with the next assistant turn.
///
/// The loop passes the full message list every turn (the system and user prompts, then
/// alternating assistant turns and observations), so a backend with a KV cache can reuse the
/// longest cached prefix.
#[async_trait]
pub trait Policy: Send {
    /// The next assistant message, at most `max_tokens` tokens long.
    async fn respond(
        &mut self,
        messages: &[Message],
        max_tokens: usize,
    ) -> Result<ModelReply, PolicyError>;

    /// Names the model in trajectories and predictions (`model_name_or_path`).
    fn name(&self) -> String;

    /// Tokens in `text` by the model's tokenizer, or an estimate when it has none.
    fn count_tokens(&self, text: &str) -> usize {
        cwm_tools::approx_tokens(text)
    }

    /// Settings worth recording in the trajectory header (sampling, URL, ...).
    fn config(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Called once before a run starts anything: fails when the backend cannot answer at
    /// all (a model server nothing listens at), so the run stops before its first container.
    async fn check_ready(&mut self) -> Result<(), PolicyError> {
        Ok(())
    }

    /// Called once before an episode's first turn.
    async fn start_episode(&mut self, _instance: &Instance) -> Result<(), PolicyError> {
        Ok(())
    }
}
