//! The engine: a model, its tokenizer and chat template, and a KV cache reused across calls.
//!
//! Each call names its full prompt. The engine keeps the cached prefix the prompt shares
//! with what it has already seen, rolls back the rest, and prefills only the new suffix.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::Device;

use super::error::{LocalError, Result};
use super::model::{last_row, KvCache, Transformer};
use super::sampling::{sample, Rng, SamplingParams};
use super::template::{ChatMessage, ChatTemplate};
use super::tokenizer::Tokenizer;
use super::{gguf, hf};

/// Where the weights came from, which decides the prompt format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    Gguf,
    HfCheckpoint,
}

pub struct Engine {
    model: Transformer,
    tokenizer: Option<Tokenizer>,
    template: Option<ChatTemplate>,
    format: ModelFormat,
    cache: KvCache,
    /// Tokens whose keys and values are in `cache`, in order.
    cached: Vec<u32>,
    stats: EngineStats,
}

/// Counters over the engine's lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Tokens run through the model (prompt suffixes plus fed-back generated tokens).
    pub tokens_processed: usize,
    /// Prompt tokens found already cached.
    pub tokens_reused: usize,
}

/// What one generation produced.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated ids, without the stop token.
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    /// Prompt tokens that had to be prefilled (not found in the cache).
    pub prefilled_tokens: usize,
    /// The stop token that ended generation, if any (else max_new_tokens or the callback).
    pub stopped_on: Option<u32>,
    pub prefill_time: Duration,
    pub decode_time: Duration,
}

impl Engine {
    /// Loads a GGUF file or a Hugging Face checkpoint directory onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        if path.is_dir() {
            if !path.join("config.json").exists() {
                return Err(LocalError::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
            let m = hf::load(path, device, None)?;
            let template = match (&m.chat_template, &m.tokenizer) {
                (Some(src), Some(_)) => Some(ChatTemplate::new(src, "", "")?),
                _ => None,
            };
            return Ok(Self::new(
                m.model,
                m.tokenizer,
                template,
                ModelFormat::HfCheckpoint,
            ));
        }
        let m = gguf::load(path, device)?;
        let name = |id: Option<u32>| {
            id.and_then(|i| m.tokenizer.id_to_token(i))
                .unwrap_or_default()
        };
        let bos = name(m.model.config.bos_token_id);
        let eos = name(m.model.config.eos_token_ids.first().copied());
        let template = match &m.chat_template {
            Some(src) => Some(ChatTemplate::new(src, &bos, &eos)?),
            None => None,
        };
        Ok(Self::new(
            m.model,
            Some(m.tokenizer),
            template,
            ModelFormat::Gguf,
        ))
    }

    pub fn new(
        model: Transformer,
        tokenizer: Option<Tokenizer>,
        template: Option<ChatTemplate>,
        format: ModelFormat,
    ) -> Self {
        let cache = model.new_cache();
        Self {
            model,
            tokenizer,
            template,
            format,
            cache,
            cached: Vec::new(),
            stats: EngineStats::default(),
        }
    }

    pub fn model(&self) -> &Transformer {
        &self.model
    }

    pub fn format(&self) -> ModelFormat {
        self.format
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Tokens currently held in the KV cache.
    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    /// Empties the KV cache (the next prompt is prefilled in full).
    pub fn reset(&mut self) {
        self.cache.truncate(0);
        self.cached.clear();
    }

    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer
            .as_ref()
            .ok_or_else(|| LocalError::Tokenizer("the checkpoint has no tokenizer.json".into()))
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer()?.encode(text)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer()?.decode(ids)
    }

    /// The prompt text for `messages` through the model's own chat template.
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String> {
        let t = self.template.as_ref().ok_or_else(|| {
            LocalError::Template("the model carries no chat template".to_string())
        })?;
        t.render(messages, true)
    }

    /// Brings the cache to exactly `prompt` and returns the logits after its last token.
    /// Only tokens after the longest cached common prefix are run.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        if prompt.is_empty() {
            return Err(LocalError::EmptyPrompt);
        }
        let common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        // At least the last prompt token is run, to get its logits.
        let keep = common.min(prompt.len() - 1);
        self.cache.truncate(keep);
        self.cached.truncate(keep);
        self.stats.tokens_reused += keep;
        self.run(&prompt[keep..])
    }

    /// Runs `tokens` after the cached ones; returns the last logits.
    fn run(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let logits = self.model.forward(tokens, &mut self.cache, false);
        let logits = match logits {
            Ok(l) => l,
            Err(e) => {
                // A failed step may have written part of the cache: forget it.
                self.cache.truncate(self.cached.len());
                return Err(e);
            }
        };
        self.cached.extend_from_slice(tokens);
        self.stats.tokens_processed += tokens.len();
        last_row(&logits)
    }

    /// Generates after `prompt`. `on_token` sees each new token (not the stop token) and
    /// may return false to stop early.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &SamplingParams,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Generation> {
        let t0 = Instant::now();
        let before = self.stats.tokens_processed;
        let mut logits = self.prefill(prompt)?;
        let prefilled = self.stats.tokens_processed - before;
        let prefill_time = t0.elapsed();
        let stops: &[u32] = if params.stop_tokens.is_empty() {
            &self.model.config.eos_token_ids
        } else {
            &params.stop_tokens
        };
        let stops = stops.to_vec();
        let mut rng = Rng::new(params.seed);
        let mut out = Vec::new();
        let mut stopped_on = None;
        let t1 = Instant::now();
        let room = self.model.config.max_positions.saturating_sub(prompt.len());
        for _ in 0..params.max_new_tokens.min(room) {
            let tok = sample(&logits, params, &mut rng);
            if stops.contains(&tok) {
                stopped_on = Some(tok);
                break;
            }
            out.push(tok);
            if !on_token(tok) || out.len() == params.max_new_tokens.min(room) {
                break;
            }
            logits = self.run(&[tok])?;
        }
        Ok(Generation {
            tokens: out,
            prompt_tokens: prompt.len(),
            prefilled_tokens: prefilled,
            stopped_on,
            prefill_time,
            decode_time: t1.elapsed(),
        })
    }
}
