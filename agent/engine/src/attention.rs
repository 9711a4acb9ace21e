//! Attention over the KV cache: the cache, and one entry point with two ways to attend.
//!
//! [`attend`] is what a layer calls with the step's queries, keys and values (after RoPE).
//! It writes the keys and values into the layer's cache, then:
//!
//! - one new position on the CPU in f32 (a decode step, whose activations are a plain
//!   [`Act::Row`]) takes [`one_query`]: it reads the cache in place, every team member
//!   taking a slice of the visible keys for all heads, and merges the partial softmaxes.
//!   candle's gemm would pack both operands for every call, which for one query row costs
//!   more than the attention itself.
//! - anything else (prefill chunks; every step off the CPU) takes [`many_queries`]: the
//!   query heads of each KV group stacked as rows, one matmul per group for the scores, the
//!   causal and sliding-window mask fused with the softmax in place on the CPU
//!   ([`MaskedSoftmax`]; an additive mask elsewhere), then one matmul with the values.
//!
//! Grouped-query attention never copies the cache per query head: a group's query heads
//! share their KV head's rows in both paths.

use candle_core::{CpuStorage, DType, Device, Tensor};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use super::config::ModelConfig;
use super::error::Result;
use super::ops::{with_host, Act};
use super::team::Team;

/// Head counts and size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Heads {
    pub fn of(c: &ModelConfig) -> Self {
        Self {
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
        }
    }
}

/// The positions of one attention call: queries `start..start + n`, which see keys
/// `lo..start + n` (causally, and within `window` for a sliding layer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start: usize,
    pub n: usize,
    pub window: Option<usize>,
    /// The first key the first query sees.
    pub lo: usize,
}

impl Span {
    pub fn new(start: usize, n: usize, window: Option<usize>) -> Self {
        let lo = window.map_or(0, |w| (start + 1).saturating_sub(w));
        Self {
            start,
            n,
            window,
            lo,
        }
    }

    pub fn end(&self) -> usize {
        self.start + self.n
    }

    /// Columns (keys `lo + j`) that the query at position `qpos` sees, out of `keys`.
    fn visible(&self, qpos: usize, keys: usize) -> std::ops::Range<usize> {
        let first = self
            .window
            .map_or(0, |w| (qpos + 1).saturating_sub(w))
            .saturating_sub(self.lo);
        let end = (qpos + 1 - self.lo).min(keys);
        first.min(end)..end
    }
}

/// One layer's keys and values, each (kv_heads, capacity, head_dim).
pub(crate) struct LayerKv {
    keys: Tensor,
    values: Tensor,
}

impl LayerKv {
    fn capacity(&self) -> Result<usize> {
        Ok(self.keys.dim(1)?)
    }

    /// Stores `k`, `v` (n, kv_heads * head_dim) at positions `start..start + n`.
    fn write(&self, k: &Act, v: &Act, start: usize, h: &Heads) -> Result<()> {
        let by_head = |t: &Act| -> Result<Tensor> {
            Ok(match t {
                Act::Row(row) => {
                    Tensor::from_slice(row, (h.kv_heads, 1, h.head_dim), &Device::Cpu)?
                }
                Act::Tensor(t) => t
                    .reshape((t.dim(0)?, h.kv_heads, h.head_dim))?
                    .transpose(0, 1)?
                    .contiguous()?,
            })
        };
        self.keys.slice_set(&by_head(k)?, 1, start)?;
        self.values.slice_set(&by_head(v)?, 1, start)?;
        Ok(())
    }
}

/// Keys and values of every layer for positions `0..len`.
///
/// Every position is kept (rather than a ring of `window` for sliding layers), so rolling
/// back to any prefix is just a shorter `len`; sliding layers look at their last `window`
/// keys.
pub struct KvCache {
    layers: Vec<LayerKv>,
    capacity: usize,
    len: usize,
}

impl KvCache {
    pub(crate) fn new() -> Self {
        Self {
            layers: Vec::new(),
            capacity: 0,
            len: 0,
        }
    }

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

    /// Records that positions up to `len` are now filled.
    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len;
    }

    pub(crate) fn layers(&self) -> &[LayerKv] {
        &self.layers
    }

    /// Makes room for `needed` positions, growing geometrically up to the model's maximum
    /// and keeping positions `0..len`.
    pub(crate) fn reserve(
        &mut self,
        c: &ModelConfig,
        dtype: DType,
        device: &Device,
        needed: usize,
    ) -> Result<()> {
        if needed <= self.capacity && self.layers.len() == c.num_layers {
            return Ok(());
        }
        let cap = needed
            .max(self.capacity * 2)
            .max(256)
            .min(c.max_positions.max(needed));
        let shape = (c.num_kv_heads, cap, c.head_dim);
        let mut layers = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let fresh = LayerKv {
                keys: Tensor::zeros(shape, dtype, device)?,
                values: Tensor::zeros(shape, dtype, device)?,
            };
            if let Some(old) = self.layers.get(i).filter(|_| self.len > 0) {
                let kept = |t: &Tensor| t.narrow(1, 0, self.len)?.contiguous();
                fresh.keys.slice_set(&kept(&old.keys)?, 1, 0)?;
                fresh.values.slice_set(&kept(&old.values)?, 1, 0)?;
            }
            layers.push(fresh);
        }
        self.layers = layers;
        self.capacity = cap;
        Ok(())
    }
}

/// Attention of the `span.n` new positions: `q` (n, heads * head_dim) and `k`, `v`
/// (n, kv_heads * head_dim), after RoPE. Stores `k` and `v` in `kv`, then returns the
/// attention output (n, heads * head_dim): one query row (a decode step on the CPU) through
/// [`one_query`], anything else through [`many_queries`].
pub(crate) fn attend(
    q: &Act,
    k: &Act,
    v: &Act,
    kv: &LayerKv,
    span: &Span,
    h: &Heads,
) -> Result<Act> {
    kv.write(k, v, span.start, h)?;
    match q {
        Act::Row(q) => Ok(Act::Row(one_query(q, kv, span, h)?)),
        Act::Tensor(q) => Ok(Act::Tensor(many_queries(q, kv, span, h)?)),
    }
}

/// Masked softmax attention of several queries (or of one outside the f32 CPU path).
fn many_queries(q: &Tensor, kv: &LayerKv, span: &Span, h: &Heads) -> Result<Tensor> {
    let (n, hd, kvh) = (span.n, h.head_dim, h.kv_heads);
    let (lo, end) = (span.lo, span.end());
    let group = h.heads / kvh;
    let keys = kv.keys.narrow(1, lo, end - lo)?;
    let values = kv.values.narrow(1, lo, end - lo)?;
    // Query heads of one KV group are stacked as rows: (KV, group * n, hd).
    // Scaling the queries is cheaper than scaling the (n x keys) scores.
    let q = q
        .reshape((n, h.heads, hd))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((kvh, group * n, hd))?;
    let q = (q * (1.0 / (hd as f64).sqrt()))?;
    let dtype = q.dtype();
    let scores = q.matmul(&keys.t()?)?.to_dtype(DType::F32)?;
    let probs = if q.device().is_cpu() {
        scores.inplace_op1(&MaskedSoftmax { span: *span })?;
        scores.to_dtype(dtype)?
    } else {
        let scores = match additive_mask(span, q.device())? {
            Some(mask) => scores
                .reshape((kvh, group, n, end - lo))?
                .broadcast_add(&mask)?
                .reshape((kvh, group * n, end - lo))?,
            None => scores,
        };
        candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)?
    };
    let out = probs.matmul(&values)?; // (KV, group * n, hd)
    Ok(out
        .reshape((h.heads, n, hd))?
        .transpose(0, 1)?
        .reshape((n, h.heads * hd))?)
}

/// Additive mask (n, end - lo) for devices without [`MaskedSoftmax`]: causal, and limited
/// to `window` for sliding layers. `None` when every query may see every key in the range
/// (single-token decode).
fn additive_mask(span: &Span, device: &Device) -> Result<Option<Tensor>> {
    if span.n == 1 {
        return Ok(None);
    }
    let len = span.end() - span.lo;
    let mut mask = vec![0f32; span.n * len];
    for (i, row) in mask.chunks_exact_mut(len).enumerate() {
        let visible = span.visible(span.start + i, len);
        row[..visible.start].fill(f32::NEG_INFINITY);
        row[visible.end..].fill(f32::NEG_INFINITY);
    }
    Ok(Some(Tensor::from_vec(mask, (span.n, len), device)?))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums so that the loop vectorizes.
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A softmax over part of the keys, not yet normalized: per query head, the largest score,
/// the sum of exp(score - max), and the exp-weighted sum of values.
struct Partial {
    max: Vec<f32>,
    sum: Vec<f32>,
    acc: Vec<f32>,
}

/// Single-query attention: `q` holds heads * head_dim values (one position, after RoPE);
/// returns the same shape.
///
/// The visible positions are split evenly over the team (so any head count balances), each
/// member reads every key and value row once for all query heads of its KV group, and the
/// partial softmaxes are merged at the end.
fn one_query(q: &[f32], kv: &LayerKv, span: &Span, shape: &Heads) -> Result<Vec<f32>> {
    let team = Team::global();
    let members = team.size();
    let (lo, end) = (span.lo, span.end());
    let len = end - lo;
    let capacity = kv.capacity()?;
    let partials: Vec<Mutex<Option<Partial>>> = (0..members).map(|_| Mutex::new(None)).collect();
    with_host(&kv.keys, |k| {
        with_host(&kv.values, |v| {
            team.run(&|member, n| {
                let from = lo + member * len / n;
                let to = lo + (member + 1) * len / n;
                if from < to {
                    let part = partial(q, k, v, capacity, from..to, shape);
                    *partials[member]
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(part);
                }
            });
        })
    })??;
    let parts: Vec<Partial> = partials
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect();
    Ok(merge(&parts, shape))
}

/// Attention of every query head over key positions `range`.
fn partial(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    capacity: usize,
    range: std::ops::Range<usize>,
    s: &Heads,
) -> Partial {
    let (hd, group) = (s.head_dim, s.heads / s.kv_heads);
    let scale = 1.0 / (hd as f32).sqrt();
    let n = range.len();
    let mut out = Partial {
        max: vec![f32::NEG_INFINITY; s.heads],
        sum: vec![0f32; s.heads],
        acc: vec![0f32; s.heads * hd],
    };
    let mut scores = vec![0f32; group * n];
    for g in 0..s.kv_heads {
        let base = g * capacity * hd;
        let row = |t: usize| base + t * hd..base + (t + 1) * hd;
        let qs = &q[g * group * hd..(g + 1) * group * hd];
        for (i, t) in range.clone().enumerate() {
            let key = &k[row(t)];
            for (j, qh) in qs.chunks_exact(hd).enumerate() {
                scores[j * n + i] = dot(qh, key) * scale;
            }
        }
        for (j, sc) in scores.chunks_exact_mut(n).enumerate() {
            let h = g * group + j;
            let max = sc.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let mut sum = 0f32;
            for x in sc.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            out.max[h] = max;
            out.sum[h] = sum;
        }
        let acc = &mut out.acc[g * group * hd..(g + 1) * group * hd];
        for (i, t) in range.clone().enumerate() {
            let value = &v[row(t)];
            for (j, a) in acc.chunks_exact_mut(hd).enumerate() {
                let p = scores[j * n + i];
                a.iter_mut().zip(value).for_each(|(a, x)| *a += p * x);
            }
        }
    }
    out
}

/// Combines partial softmaxes over disjoint key ranges into the normalized output.
fn merge(parts: &[Partial], s: &Heads) -> Vec<f32> {
    let hd = s.head_dim;
    let mut out = vec![0f32; s.heads * hd];
    for (h, o) in out.chunks_exact_mut(hd).enumerate() {
        let max = parts.iter().fold(f32::NEG_INFINITY, |m, p| m.max(p.max[h]));
        let mut total = 0f32;
        for p in parts {
            let w = (p.max[h] - max).exp();
            total += w * p.sum[h];
            let acc = &p.acc[h * hd..(h + 1) * hd];
            o.iter_mut().zip(acc).for_each(|(o, a)| *o += w * a);
        }
        o.iter_mut().for_each(|x| *x /= total);
    }
    out
}

/// Causal (and sliding-window) mask plus softmax, in place over prefill scores
/// (kv_heads, group * n, keys) on the CPU: one pass, no mask tensor. Row r is query
/// position `start + r % n`; column j is key position `lo + j`.
struct MaskedSoftmax {
    span: Span,
}

impl MaskedSoftmax {
    fn row(&self, r: usize, row: &mut [f32]) {
        let qpos = self.span.start + r % self.span.n;
        let seen = self.span.visible(qpos, row.len());
        let (before, rest) = row.split_at_mut(seen.start);
        let (live, after) = rest.split_at_mut(seen.end - seen.start);
        before.fill(0.0);
        after.fill(0.0);
        let max = live.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let mut total = 0f32;
        for s in live.iter_mut() {
            *s = (*s - max).exp();
            total += *s;
        }
        let inv = 1.0 / total;
        live.iter_mut().for_each(|s| *s *= inv);
    }
}

impl candle_core::InplaceOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("masked softmax needs f32 scores");
        };
        let Some((from, to)) = layout.contiguous_offsets() else {
            candle_core::bail!("masked softmax needs contiguous scores");
        };
        let keys = *layout.dims().last().unwrap_or(&1);
        let rows_per_head = layout.dims().iter().rev().nth(1).copied().unwrap_or(1);
        data[from..to]
            .par_chunks_mut(keys)
            .enumerate()
            .for_each(|(i, row)| self.row(i % rows_per_head, row));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 + seed) % 29) as f32 / 14.0 - 1.0)
            .collect()
    }

    /// The two entry points agree on a single query, for global and sliding layers.
    #[test]
    fn one_query_matches_many_queries() {
        let h = Heads {
            heads: 4,
            kv_heads: 2,
            head_dim: 8,
        };
        let (cap, start) = (32, 20);
        let shape = (h.kv_heads, cap, h.head_dim);
        let size = h.kv_heads * cap * h.head_dim;
        let kv = LayerKv {
            keys: Tensor::from_vec(ramp(size, 1), shape, &Device::Cpu).unwrap(),
            values: Tensor::from_vec(ramp(size, 5), shape, &Device::Cpu).unwrap(),
        };
        let width = h.heads * h.head_dim;
        let q = ramp(width, 3);
        let kvw = h.kv_heads * h.head_dim;
        let (k, v) = (Act::Row(ramp(kvw, 7)), Act::Row(ramp(kvw, 11)));
        for window in [None, Some(8)] {
            let span = Span::new(start, 1, window);
            let one = attend(&Act::Row(q.clone()), &k, &v, &kv, &span, &h).unwrap();
            let Act::Row(one) = one else {
                panic!("a row query gives a row")
            };
            let qt = Tensor::from_slice(&q, (1, width), &Device::Cpu).unwrap();
            let many = many_queries(&qt, &kv, &span, &h).unwrap();
            let many: Vec<f32> = many.flatten_all().unwrap().to_vec1().unwrap();
            let d = one
                .iter()
                .zip(&many)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-5, "window {window:?}: entry points differ by {d}");
        }
    }
}
