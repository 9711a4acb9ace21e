//! [`LocalPolicy`]: the in-process engine behind the agent loop's [`Policy`] trait.
//!
//! Generation runs on tokio's blocking pool; the engine (and its KV cache) stays alive
//! across turns, so each turn prefills only the messages added since the last one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;

use crate::policy::{ModelReply, Policy, PolicyError};
use cwm_engine::{ChatMessage, Engine, EngineStats, LocalError, ModelFormat, SamplingParams};
use cwm_protocol::chat::{assistant_content, render_cwm_prompt, STOP_TOKEN_IDS};
use cwm_protocol::message::Message;

pub struct LocalPolicy {
    path: PathBuf,
    sampling: SamplingParams,
    engine: Arc<Mutex<Engine>>,
}

impl LocalPolicy {
    /// Loads a GGUF file or a Hugging Face checkpoint directory onto the default device.
    /// `sampling.max_new_tokens` caps each reply in addition to the loop's own limit.
    pub fn load(path: &Path, sampling: SamplingParams) -> Result<Self, LocalError> {
        let engine = Engine::load(path, &cwm_engine::default_device())?;
        Ok(Self::from_engine(path, engine, sampling))
    }

    pub fn from_engine(path: &Path, engine: Engine, sampling: SamplingParams) -> Self {
        Self {
            path: path.to_path_buf(),
            sampling,
            engine: Arc::new(Mutex::new(engine)),
        }
    }

    /// Token counters of the engine (prefilled vs reused) over all turns so far.
    pub fn stats(&self) -> EngineStats {
        lock(&self.engine).stats()
    }
}

/// A panic on the worker poisons the lock; the engine's state is still consistent
/// (a failed step rolls its cache back), so keep using it.
fn lock(engine: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|p| p.into_inner())
}

/// The prompt text: CWM's chat format for checkpoints, the file's template for GGUFs.
pub fn render_prompt(engine: &Engine, messages: &[Message]) -> Result<String, LocalError> {
    match engine.format() {
        ModelFormat::HfCheckpoint => Ok(render_cwm_prompt(messages)),
        ModelFormat::Gguf => {
            let chat: Vec<ChatMessage> = messages
                .iter()
                .map(|m| ChatMessage::new(m.role.as_string(), m.content.clone()))
                .collect();
            engine.render_chat(&chat)
        }
    }
}

fn respond_blocking(
    engine: &mut Engine,
    messages: &[Message],
    mut params: SamplingParams,
) -> Result<ModelReply, LocalError> {
    let started = Instant::now();
    let prompt = engine.encode(&render_prompt(engine, messages)?)?;
    let max = engine.model().config.max_positions;
    if prompt.len() >= max {
        return Err(LocalError::ContextOverflow {
            len: prompt.len(),
            max,
        });
    }
    if params.stop_tokens.is_empty() {
        params.stop_tokens = engine.model().config.eos_token_ids.clone();
        if engine.format() == ModelFormat::HfCheckpoint {
            params.stop_tokens.extend(STOP_TOKEN_IDS);
        }
    }
    let g = engine.generate(&prompt, &params, &mut |_| true)?;
    let completion = engine.decode(&g.tokens)?;
    let text = match engine.format() {
        ModelFormat::HfCheckpoint => assistant_content(&completion),
        ModelFormat::Gguf => completion,
    };
    Ok(ModelReply {
        text,
        prompt_tokens: Some(g.prompt_tokens),
        completion_tokens: Some(g.tokens.len()),
        latency: started.elapsed(),
        finish_reason: Some(
            if g.stopped_on.is_some() {
                "stop"
            } else {
                "length"
            }
            .to_string(),
        ),
    })
}

#[async_trait]
impl Policy for LocalPolicy {
    async fn respond(
        &mut self,
        messages: &[Message],
        max_tokens: usize,
    ) -> Result<ModelReply, PolicyError> {
        let engine = self.engine.clone();
        let messages = messages.to_vec();
        let mut params = self.sampling.clone();
        params.max_new_tokens = params.max_new_tokens.min(max_tokens);
        tokio::task::spawn_blocking(move || respond_blocking(&mut lock(&engine), &messages, params))
            .await
            .map_err(PolicyError::GenerationThread)?
            .map_err(PolicyError::Local)
    }

    fn name(&self) -> String {
        format!("local:{}", self.path.display())
    }

    fn count_tokens(&self, text: &str) -> usize {
        match lock(&self.engine).encode(text) {
            Ok(ids) => ids.len(),
            Err(_) => cwm_tools::approx_tokens(text),
        }
    }

    fn config(&self) -> serde_json::Value {
        let s = &self.sampling;
        serde_json::json!({
            "backend": "local",
            "path": self.path.display().to_string(),
            "temperature": s.temperature,
            "top_p": s.top_p,
            "top_k": s.top_k,
            "seed": s.seed,
            "max_new_tokens": s.max_new_tokens,
        })
    }
}
