//! The Llama-3 / CWM decoder: RMSNorm, RoPE (llama3 scaling), GQA, SwiGLU, and per-layer
//! global or sliding-window attention over a KV cache that keeps the full history.
//!
//! Keeping every position (rather than a ring of `window`) makes rollback to any prefix
//! trivial; sliding-window layers simply look at the last `window` keys.

use candle_core::{DType, Device, Tensor};

use super::attention::{decode_attention, CacheSpan, MaskedSoftmax};
use super::config::{ModelConfig, RopeStyle};
use super::decode::{decode_token, rope_angles, DecodeWeights, Slot};
use super::error::{LocalError, Result};
use super::linear::{Embedding, Linear, LinearGroup};

pub struct Layer {
    pub attn_norm: Tensor,
    /// q, k, v projections.
    pub qkv: LinearGroup,
    pub o: Linear,
    pub ffn_norm: Tensor,
    /// gate and up projections.
    pub gate_up: LinearGroup,
    pub down: Linear,
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
        })
    }
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
    /// Set when one-token steps can skip tensor ops (see [`super::decode`]).
    fast_decode: Option<DecodeWeights>,
}

/// Keys and values of every layer for positions `0..len`.
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    capacity: usize,
    len: usize,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets positions `len..`; their slots are overwritten by the next prefill.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Prefill is cut into chunks of at most this many tokens...
const PREFILL_CHUNK: usize = 512;
/// ...and of at most this many bytes of attention scores (heads x chunk x keys, f32), so a
/// long context stays within memory: CWM's 48 heads over 131k keys take 25 MB per token.
const SCORES_BUDGET: usize = 256 << 20;
/// Chunks never get shorter than this (at 131k keys: 400 MB of CWM scores).
const MIN_CHUNK: usize = 16;

impl Transformer {
    pub fn new(
        config: ModelConfig,
        device: Device,
        dtype: DType,
        embed: Embedding,
        layers: Vec<Layer>,
        norm: Tensor,
        lm_head: Linear,
    ) -> Self {
        let inv_freqs = config.inv_freqs();
        let fast_decode = (dtype == DType::F32)
            .then(|| DecodeWeights::new(&layers, &norm, &lm_head))
            .flatten();
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
            fast_decode,
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
        KvCache {
            layers: (0..self.layers.len()).map(|_| None).collect(),
            capacity: 0,
            len: 0,
        }
    }

    /// Runs `tokens` at positions `cache.len()..` and appends them to the cache.
    /// Returns f32 logits: (tokens.len(), vocab) if `all_logits`, else (1, vocab) for the last.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, all_logits: bool) -> Result<Tensor> {
        if tokens.is_empty() {
            return Err(LocalError::EmptyPrompt);
        }
        let end = cache.len + tokens.len();
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
        if let (Some(fast), [token]) = (&self.fast_decode, tokens) {
            let logits = self.decode_one(fast, *token, cache)?;
            let vocab = logits.len();
            return Ok(Tensor::from_vec(logits, (1, vocab), &self.device)?);
        }
        let mut outs = Vec::new();
        let mut done = 0;
        while done < tokens.len() {
            let n = self.chunk_len(cache.len, tokens.len() - done);
            let chunk = &tokens[done..done + n];
            done += n;
            let last = cache.len + chunk.len() == end;
            let h = self.forward_chunk(chunk, cache)?;
            if all_logits {
                outs.push(self.head(&h)?);
            } else if last {
                let n = h.dim(0)?;
                outs.push(self.head(&h.narrow(0, n - 1, 1)?)?);
            }
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    fn decode_one(
        &self,
        fast: &DecodeWeights,
        token: u32,
        cache: &mut KvCache,
    ) -> Result<Vec<f32>> {
        let pos = cache.len;
        cache.reserve(self, pos + 1)?;
        let slots = cache
            .layers
            .iter()
            .zip(&self.config.layer_windows)
            .map(|(slot, &window)| {
                let (keys, values) = slot.as_ref().ok_or_else(|| {
                    LocalError::Worker("KV cache layer missing after reserve".to_string())
                })?;
                Ok(Slot {
                    keys,
                    values,
                    window,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let x = self.embed.row(token)?;
        let logits = decode_token(fast, &self.config, &self.inv_freqs, x, pos, &slots)?;
        cache.len = pos + 1;
        Ok(logits)
    }

    fn head(&self, h: &Tensor) -> Result<Tensor> {
        let h = candle_nn::ops::rms_norm(h, &self.norm, self.config.rms_eps as f32)?;
        Ok(self.lm_head.forward(&h)?.to_dtype(DType::F32)?)
    }

    /// Hidden states (n, hidden) after the last layer, before the final norm.
    fn forward_chunk(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let start = cache.len;
        let n = tokens.len();
        cache.reserve(self, start + n)?;
        let (cos, sin) = self.rope_tables(start, n)?;
        let mut x = self.embed.forward(tokens, &self.device, self.dtype)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let window = self.config.layer_windows[i];
            let slot = cache.layers[i].as_ref().ok_or_else(|| {
                LocalError::Worker("KV cache layer missing after reserve".to_string())
            })?;
            x = self.block(layer, &x, slot, start, window, &cos, &sin)?;
        }
        cache.len = start + n;
        Ok(x)
    }

    /// cos/sin (n, head_dim/2) for positions start..start+n.
    fn rope_tables(&self, start: usize, n: usize) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freqs.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in start..start + n {
            let (c, s) = rope_angles(&self.inv_freqs, p);
            cos.extend(c);
            sin.extend(s);
        }
        let cos = Tensor::from_vec(cos, (n, half), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (n, half), &self.device)?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        layer: &Layer,
        x: &Tensor,
        slot: &(Tensor, Tensor),
        start: usize,
        window: Option<usize>,
        cos: &Tensor,
        sin: &Tensor,
    ) -> Result<Tensor> {
        let eps = self.config.rms_eps as f32;
        let h = candle_nn::ops::rms_norm(x, &layer.attn_norm, eps)?;
        let qkv = layer.qkv.forward(&h)?;
        let attn = self.attention(&qkv[0], &qkv[1], &qkv[2], slot, start, window, cos, sin)?;
        let x = (x + layer.o.forward(&attn)?)?;
        let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?;
        let gu = layer.gate_up.forward(&h)?;
        let act = (candle_nn::ops::silu(&gu[0])? * &gu[1])?;
        Ok((x + layer.down.forward(&act)?)?)
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        Ok(match self.config.rope_style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, cos, sin)?,
            RopeStyle::Halves => candle_nn::rotary_emb::rope(x, cos, sin)?,
        })
    }

    /// q (n, H*hd), k/v (n, KV*hd) -> attention output (n, H*hd).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        slot: &(Tensor, Tensor),
        start: usize,
        window: Option<usize>,
        cos: &Tensor,
        sin: &Tensor,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (n, hd, kvh) = (q.dim(0)?, c.head_dim, c.num_kv_heads);
        let group = c.num_heads / kvh;
        let heads = |t: &Tensor, h: usize| -> Result<Tensor> {
            Ok(t.reshape((1, n, h, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let q = self.rope(&heads(q, c.num_heads)?, cos, sin)?;
        let k = self.rope(&heads(k, kvh)?, cos, sin)?;
        let v = heads(v, kvh)?;
        let (kc, vc) = slot;
        kc.slice_set(&k.squeeze(0)?, 1, start)?;
        vc.slice_set(&v.squeeze(0)?, 1, start)?;
        let end = start + n;
        // The first query (position `start`) sees keys after start - window.
        let lo = window.map_or(0, |w| (start + 1).saturating_sub(w));
        if n == 1 && self.device.is_cpu() && self.dtype == DType::F32 {
            let span = CacheSpan {
                capacity: kc.dim(1)?,
                lo,
                end,
            };
            let q: Vec<f32> = q.flatten_all()?.to_vec1()?;
            let out = decode_attention(&q, kc, vc, &span, c.num_heads, kvh, hd)?;
            return Ok(Tensor::from_vec(out, (1, c.num_heads * hd), &self.device)?);
        }
        let keys = kc.narrow(1, lo, end - lo)?;
        let values = vc.narrow(1, lo, end - lo)?;
        // Query heads of one KV group are stacked as rows: (KV, group * n, hd).
        // Scaling the queries is cheaper than scaling the (n x keys) scores.
        let q = (q.reshape((kvh, group * n, hd))? * (1.0 / (hd as f64).sqrt()))?;
        let scores = q.matmul(&keys.t()?)?.to_dtype(DType::F32)?;
        let probs = if self.device.is_cpu() {
            scores.inplace_op1(&MaskedSoftmax {
                n,
                start,
                lo,
                window,
            })?;
            scores.to_dtype(self.dtype)?
        } else {
            let scores = match attention_mask(n, start, lo, end, window, &self.device)? {
                Some(mask) => scores
                    .reshape((kvh, group, n, end - lo))?
                    .broadcast_add(&mask)?
                    .reshape((kvh, group * n, end - lo))?,
                None => scores,
            };
            candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(self.dtype)?
        };
        let out = probs.matmul(&values)?; // (KV, group * n, hd)
        let out = out
            .reshape((c.num_heads, n, hd))?
            .transpose(0, 1)?
            .reshape((n, c.num_heads * hd))?;
        Ok(out)
    }
}

/// Additive mask (n, end - lo): causal, and limited to `window` for sliding layers.
/// `None` when every query may see every key in the range (single-token decode).
fn attention_mask(
    n: usize,
    start: usize,
    lo: usize,
    end: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Option<Tensor>> {
    if n == 1 {
        return Ok(None);
    }
    let len = end - lo;
    let mut mask = vec![0f32; n * len];
    for i in 0..n {
        let qpos = start + i;
        for j in 0..len {
            let kpos = lo + j;
            let visible = kpos <= qpos && window.is_none_or(|w| qpos - kpos < w);
            if !visible {
                mask[i * len + j] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Some(Tensor::from_vec(mask, (n, len), device)?))
}

impl KvCache {
    /// Makes room for `needed` positions, growing geometrically up to the model's maximum.
    fn reserve(&mut self, model: &Transformer, needed: usize) -> Result<()> {
        if needed <= self.capacity && self.layers.iter().all(Option::is_some) {
            return Ok(());
        }
        let c = &model.config;
        let cap = needed
            .max(self.capacity * 2)
            .max(256)
            .min(c.max_positions.max(needed));
        for slot in self.layers.iter_mut() {
            let shape = (c.num_kv_heads, cap, c.head_dim);
            let k = Tensor::zeros(shape, model.dtype, &model.device)?;
            let v = Tensor::zeros(shape, model.dtype, &model.device)?;
            if let Some((ok, ov)) = slot.as_ref() {
                if self.len > 0 {
                    k.slice_set(&ok.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                    v.slice_set(&ov.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                }
            }
            *slot = Some((k, v));
        }
        self.capacity = cap;
        Ok(())
    }
}

/// Used by tests and the engine: the last row of `logits` as a vector.
pub fn last_row(logits: &Tensor) -> Result<Vec<f32>> {
    let n = logits.dim(0)?;
    Ok(logits.get(n - 1)?.to_vec1()?)
}
