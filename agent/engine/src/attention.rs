//! CPU attention helpers: single-query attention for decode, reading the KV cache in place
//! (candle's gemm packs both operands for every call, which for one query row costs more
//! than the attention itself), and a fused mask + softmax for prefill scores.

use candle_core::{CpuStorage, Storage, Tensor};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use super::error::{LocalError, Result};
use super::team::Team;

/// Where the keys of one query live in a (kv_heads, capacity, head_dim) f32 cache.
pub struct CacheSpan {
    pub capacity: usize,
    /// Key positions lo..end are visible.
    pub lo: usize,
    pub end: usize,
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

fn with_f32<T>(t: &Tensor, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(f(&v[layout.start_offset()..])),
        _ => Err(LocalError::Worker(
            "CPU attention needs an f32 CPU cache".to_string(),
        )),
    }
}

/// Shapes of one decode attention call.
struct Heads {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

/// A softmax over part of the keys, not yet normalized: per query head, the largest score,
/// the sum of exp(score - max), and the exp-weighted sum of values.
struct Partial {
    max: Vec<f32>,
    sum: Vec<f32>,
    acc: Vec<f32>,
}

/// `q` holds heads * head_dim values (one position, after RoPE); returns the same shape.
///
/// The visible positions are split evenly over the team (so any head count balances), each
/// member reads every key and value row once for all query heads of its KV group, and the
/// partial softmaxes are merged at the end.
pub fn decode_attention(
    q: &[f32],
    keys: &Tensor,
    values: &Tensor,
    span: &CacheSpan,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
) -> Result<Vec<f32>> {
    let shape = Heads {
        heads,
        kv_heads,
        head_dim,
    };
    let team = Team::global();
    let members = team.size();
    let len = span.end - span.lo;
    let partials: Vec<Mutex<Option<Partial>>> = (0..members).map(|_| Mutex::new(None)).collect();
    with_f32(keys, |k| {
        with_f32(values, |v| {
            team.run(&|member, n| {
                let from = span.lo + member * len / n;
                let to = span.lo + (member + 1) * len / n;
                if from < to {
                    let part = partial(q, k, v, span.capacity, from..to, &shape);
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
    Ok(merge(&parts, &shape))
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
pub struct MaskedSoftmax {
    pub n: usize,
    pub start: usize,
    pub lo: usize,
    pub window: Option<usize>,
}

impl MaskedSoftmax {
    /// Visible columns of the row for query position `qpos`.
    fn visible(&self, qpos: usize, keys: usize) -> std::ops::Range<usize> {
        let first = self
            .window
            .map_or(0, |w| (qpos + 1).saturating_sub(w))
            .saturating_sub(self.lo);
        let end = (qpos + 1 - self.lo).min(keys);
        first.min(end)..end
    }

    fn row(&self, r: usize, row: &mut [f32]) {
        let qpos = self.start + r % self.n;
        let seen = self.visible(qpos, row.len());
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
