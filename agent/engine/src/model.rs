//! The Llama-3 / CWM decoder: one forward path for every step.
//!
//! [`Transformer::forward`] embeds the tokens, runs them through each `Layer::forward`
//! and the final norm and LM head. A layer is RMSNorm, q/k/v projections, RoPE, attention
//! over the KV cache (global or sliding-window, grouped-query), the output projection and
//! a residual; then RMSNorm, the SwiGLU MLP and a residual.
//!
//! The same path runs a 512-token prefill chunk and a single decoded token. What changes
//! with the step is inside the building blocks. A decode step on the CPU in f32 carries its
//! activations as plain vectors (`ops::Act::Row`): the norms, RoPE and SwiGLU run the loops
//! of `ops`, quantized projections the SIMD matrix-vector kernels (`kernels`, through
//! `linear`), and attention the entry that reads the cache in place (`attention`). A
//! prefill chunk carries tensors: the same loops row by row, a gemm over a dequantized copy
//! of the weights, and masked-softmax attention. Other devices and dtypes run candle's
//! kernels for the same formulas. docs/engine.md has the whole picture.

use candle_core::{DType, Device, Tensor};

use super::attention::{attend, Heads, LayerKv, Span};
use super::config::ModelConfig;
use super::error::{LocalError, Result};
use super::linear::{Embedding, Linear, LinearGroup};
use super::ops::{self, Act, Rope};

pub use super::attention::KvCache;

pub struct Layer {
    pub attn_norm: Tensor,
    /// q, k, v projections.
    pub qkv: LinearGroup,
    pub o: Linear,
    pub ffn_norm: Tensor,
    /// gate and up projections.
    pub gate_up: LinearGroup,
    pub down: Linear,
    /// `None` for global attention, `Some(w)` to see only the last `w` positions; set from
    /// the config's `layer_windows` by [`Transformer::new`].
    pub window: Option<usize>,
}

/// What every layer of one forward step shares: where the step starts, its rotary angles,
/// and the model's shapes.
pub(crate) struct Step {
    start: usize,
    n: usize,
    rope: Rope,
    heads: Heads,
    eps: f32,
}

impl Layer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        attn_norm: Tensor,
        q: Linear,
        k: Linear,
        v: Linear,
        o: Linear,
        ffn_norm: Tensor,
        gate: Linear,
        up: Linear,
        down: Linear,
    ) -> Result<Self> {
        Ok(Self {
            attn_norm,
            qkv: LinearGroup::new(vec![q, k, v])?,
            o,
            ffn_norm,
            gate_up: LinearGroup::new(vec![gate, up])?,
            down,
            window: None,
        })
    }

    /// Runs hidden states `x` (n, hidden) of positions `step.start..` through the layer;
    /// their keys and values are added to `kv`.
    pub(crate) fn forward(&self, x: Act, step: &Step, kv: &LayerKv) -> Result<Act> {
        let h = ops::rms_norm(&x, &self.attn_norm, step.eps)?;
        let [q, k, v] = parts(self.qkv.apply(&h)?, "q/k/v")?;
        let (q, k) = (step.rope.apply(q)?, step.rope.apply(k)?);
        let span = Span::new(step.start, step.n, self.window);
        let attn = attend(&q, &k, &v, kv, &span, &step.heads)?;
        let x = x.add(&self.o.apply(&attn)?)?;
        let h = ops::rms_norm(&x, &self.ffn_norm, step.eps)?;
        let [gate, up] = parts(self.gate_up.apply(&h)?, "gate/up")?;
        let act = ops::swiglu(gate, &up)?;
        x.add(&self.down.apply(&act)?)
    }
}

/// The outputs of a projection group as an array.
fn parts<const N: usize>(outs: Vec<Act>, group: &str) -> Result<[Act; N]> {
    outs.try_into().map_err(|_| {
        LocalError::Worker(format!("the {group} projection group must have {N} parts"))
    })
}

pub struct Transformer {
    pub config: ModelConfig,
    pub device: Device,
    /// Activations and KV cache dtype.
    pub dtype: DType,
    pub embed: Embedding,
    pub layers: Vec<Layer>,
    pub norm: Tensor,
    pub lm_head: Linear,
    inv_freqs: Vec<f64>,
    scores_budget: usize,
}

/// Prefill is cut into chunks of at most this many tokens...
const PREFILL_CHUNK: usize = 512;
/// ...and of at most this many bytes of attention scores (heads x chunk x keys, f32), so a
/// long context stays within memory: CWM's 48 heads over 131k keys take 25 MB per token.
const SCORES_BUDGET: usize = 256 << 20;
/// Chunks never get shorter than this (at 131k keys: 400 MB of CWM scores).
const MIN_CHUNK: usize = 16;

impl Transformer {
    /// Assembles a model; each layer's attention window is taken from
    /// `config.layer_windows`.
    pub fn new(
        config: ModelConfig,
        device: Device,
        dtype: DType,
        embed: Embedding,
        mut layers: Vec<Layer>,
        norm: Tensor,
        lm_head: Linear,
    ) -> Self {
        for (layer, window) in layers.iter_mut().zip(&config.layer_windows) {
            layer.window = *window;
        }
        let inv_freqs = config.inv_freqs();
        Self {
            config,
            device,
            dtype,
            embed,
            layers,
            norm,
            lm_head,
            inv_freqs,
            scores_budget: SCORES_BUDGET,
        }
    }

    /// Bytes of attention scores one prefill chunk may use (tests force tiny chunks).
    pub fn set_scores_budget(&mut self, bytes: usize) {
        self.scores_budget = bytes;
    }

    /// Tokens in the next prefill chunk, starting at position `start`.
    fn chunk_len(&self, start: usize, remaining: usize) -> usize {
        let per_key = self.config.num_heads * std::mem::size_of::<f32>();
        let keys = start + PREFILL_CHUNK.min(remaining);
        let fit = self.scores_budget / (per_key * keys).max(1);
        fit.clamp(MIN_CHUNK, PREFILL_CHUNK).min(remaining)
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new()
    }

    /// Runs `tokens` at positions `cache.len()..` and appends them to the cache.
    /// Returns f32 logits: (tokens.len(), vocab) if `all_logits`, else (1, vocab) for the last.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, all_logits: bool) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(LocalError::EmptyPrompt);
        }
        let end = cache.len() + tokens.len();
        if end > self.config.max_positions {
            return Err(LocalError::ContextOverflow {
                len: end,
                max: self.config.max_positions,
            });
        }
        if let Some(&id) = tokens
            .iter()
            .find(|&&t| t as usize >= self.config.vocab_size)
        {
            return Err(LocalError::BadToken {
                id,
                vocab: self.config.vocab_size,
            });
        }
        let mut outs = Vec::new();
        let mut done = 0;
        while done < tokens.len() {
            let n = self.chunk_len(cache.len(), tokens.len() - done);
            let chunk = &tokens[done..done + n];
            done += n;
            let h = self.forward_chunk(chunk, cache)?;
            if all_logits {
                outs.push(self.head(h)?);
            } else if done == tokens.len() {
                let last = match h {
                    Act::Tensor(t) => Act::Tensor(t.narrow(0, n - 1, 1)?),
                    row => row,
                };
                outs.push(self.head(last)?);
            }
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    /// Hidden states (n, hidden) after the last layer, before the final norm. A single
    /// token on the CPU in f32 (a decode step) runs as a plain row ([`Act::Row`]).
    fn forward_chunk(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Act> {
        let start = cache.len();
        let n = tokens.len();
        cache.reserve(&self.config, self.dtype, &self.device, start + n)?;
        let step = Step {
            start,
            n,
            rope: Rope::new(
                &self.inv_freqs,
                start,
                n,
                self.config.rope_style,
                &self.device,
                self.dtype,
            )?,
            heads: Heads::of(&self.config),
            eps: self.config.rms_eps as f32,
        };
        let mut x = match tokens {
            [token] if self.device.is_cpu() && self.dtype == DType::F32 => {
                Act::Row(self.embed.row(*token)?)
            }
            _ => Act::Tensor(self.embed.forward(tokens, &self.device, self.dtype)?),
        };
        for (layer, kv) in self.layers.iter().zip(cache.layers()) {
            x = layer.forward(x, &step, kv)?;
        }
        cache.set_len(start + n);
        Ok(x)
    }

    /// Final norm and LM head: f32 logits (n, vocab).
    fn head(&self, h: Act) -> Result<Tensor> {
        let h = ops::rms_norm(&h, &self.norm, self.config.rms_eps as f32)?;
        let logits = self.lm_head.apply(&h)?.into_tensor()?;
        Ok(logits.to_dtype(DType::F32)?)
    }
}

/// Used by tests and the engine: the last row of `logits` as a vector.
pub fn last_row(logits: &Tensor) -> Result<Vec<f32>> {
    let n = logits.dim(0)?;
    Ok(logits.get(n - 1)?.to_vec1()?)
}
