//! One-token decode on the CPU without tensor ops: plain loops for the small vector work
//! (norms, RoPE, activations) and the team's quantized kernels for the matrices.
//!
//! At one token, every tensor op costs an allocation and often a thread hand-off, which
//! together took longer than the arithmetic. Used when every projection is Q4_1 or Q8_0.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::attention::{decode_attention, CacheSpan};
use super::config::{ModelConfig, RopeStyle};
use super::error::Result;
use super::kernels::{matvec, matvec_many, QMatrix};
use super::linear::Linear;
use super::model::Layer;

pub(crate) struct DecodeLayer {
    attn_norm: Vec<f32>,
    qkv: [Arc<QMatrix>; 3],
    o: Arc<QMatrix>,
    ffn_norm: Vec<f32>,
    gate_up: [Arc<QMatrix>; 2],
    down: Arc<QMatrix>,
}

/// The weights of a model that can take the fast path.
pub(crate) struct DecodeWeights {
    layers: Vec<DecodeLayer>,
    norm: Vec<f32>,
    lm_head: Arc<QMatrix>,
}

fn quant(l: Option<&Linear>) -> Option<Arc<QMatrix>> {
    match l? {
        Linear::Quant { q, .. } => Some(q.clone()),
        _ => None,
    }
}

fn vector(t: &Tensor) -> Option<Vec<f32>> {
    t.to_dtype(candle_core::DType::F32).ok()?.to_vec1().ok()
}

impl DecodeWeights {
    /// `None` unless every projection has our kernels and the model lives on the CPU.
    pub(crate) fn new(layers: &[Layer], norm: &Tensor, lm_head: &Linear) -> Option<Self> {
        if !norm.device().is_cpu() {
            return None;
        }
        let layers = layers
            .iter()
            .map(|l| {
                Some(DecodeLayer {
                    attn_norm: vector(&l.attn_norm)?,
                    qkv: [
                        quant(l.qkv.part(0))?,
                        quant(l.qkv.part(1))?,
                        quant(l.qkv.part(2))?,
                    ],
                    o: quant(Some(&l.o))?,
                    ffn_norm: vector(&l.ffn_norm)?,
                    gate_up: [quant(l.gate_up.part(0))?, quant(l.gate_up.part(1))?],
                    down: quant(Some(&l.down))?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            layers,
            norm: vector(norm)?,
            lm_head: quant(Some(lm_head))?,
        })
    }
}

/// Where one decode step writes and reads: the layer's cache tensors and the position.
pub(crate) struct Slot<'a> {
    pub keys: &'a Tensor,
    pub values: &'a Tensor,
    pub window: Option<usize>,
}

/// Runs one token at position `pos` through every layer; `x` is its embedding and becomes
/// the final hidden state. Returns the logits.
pub(crate) fn decode_token(
    w: &DecodeWeights,
    c: &ModelConfig,
    inv_freqs: &[f64],
    mut x: Vec<f32>,
    pos: usize,
    slots: &[Slot<'_>],
) -> Result<Vec<f32>> {
    let (cos, sin) = rope_angles(inv_freqs, pos);
    let eps = c.rms_eps as f32;
    let (hd, kvh) = (c.head_dim, c.num_kv_heads);
    let mut q = vec![0f32; c.num_heads * hd];
    let mut k = vec![0f32; kvh * hd];
    let mut v = vec![0f32; kvh * hd];
    let mut proj = vec![0f32; c.hidden_size];
    let mut gate = vec![0f32; c.intermediate_size];
    let mut up = vec![0f32; c.intermediate_size];
    for (layer, slot) in w.layers.iter().zip(slots) {
        let h = rms_norm(&x, &layer.attn_norm, eps);
        let [wq, wk, wv] = &layer.qkv;
        matvec_many(&[wq, wk, wv], &h, &mut [&mut q, &mut k, &mut v]);
        rope(&mut q, &cos, &sin, hd, c.rope_style);
        rope(&mut k, &cos, &sin, hd, c.rope_style);
        let device = Device::Cpu;
        let kt = Tensor::from_slice(&k, (kvh, 1, hd), &device)?;
        let vt = Tensor::from_slice(&v, (kvh, 1, hd), &device)?;
        slot.keys.slice_set(&kt, 1, pos)?;
        slot.values.slice_set(&vt, 1, pos)?;
        let span = CacheSpan {
            capacity: slot.keys.dim(1)?,
            lo: slot.window.map_or(0, |w| (pos + 1).saturating_sub(w)),
            end: pos + 1,
        };
        let attn = decode_attention(&q, slot.keys, slot.values, &span, c.num_heads, kvh, hd)?;
        matvec(&layer.o, &attn, &mut proj);
        add(&mut x, &proj);
        let h = rms_norm(&x, &layer.ffn_norm, eps);
        let [wg, wu] = &layer.gate_up;
        matvec_many(&[wg, wu], &h, &mut [&mut gate, &mut up]);
        for (g, u) in gate.iter_mut().zip(&up) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
        matvec(&layer.down, &gate, &mut proj);
        add(&mut x, &proj);
    }
    let h = rms_norm(&x, &w.norm, eps);
    let mut logits = vec![0f32; w.lm_head.rows];
    matvec(&w.lm_head, &h, &mut logits);
    Ok(logits)
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (mean_square + eps).sqrt();
    x.iter().zip(weight).map(|(v, w)| v * r * w).collect()
}

/// cos and sin of every rotary pair's angle at `pos` (angles in f32, like the reference
/// implementations).
pub(crate) fn rope_angles(inv_freqs: &[f64], pos: usize) -> (Vec<f32>, Vec<f32>) {
    inv_freqs
        .iter()
        .map(|f| {
            let a = (pos as f32 * *f as f32) as f64;
            (a.cos() as f32, a.sin() as f32)
        })
        .unzip()
}

/// Rotates every head of `x` (heads * hd values) in place.
fn rope(x: &mut [f32], cos: &[f32], sin: &[f32], hd: usize, style: RopeStyle) {
    let half = hd / 2;
    for head in x.chunks_exact_mut(hd) {
        for i in 0..half {
            let (a, b) = match style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Halves => (i, i + half),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos[i] - x1 * sin[i];
            head[b] = x0 * sin[i] + x1 * cos[i];
        }
    }
}
