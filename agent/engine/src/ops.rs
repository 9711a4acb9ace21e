//! The decoder's elementwise math, written once: RMSNorm, RoPE and SwiGLU as plain loops
//! over f32 rows, and the functions every layer calls on its activations ([`Act`]).
//!
//! Activations in f32 on the CPU (every GGUF model, and every checkpoint run on the CPU) go
//! through the loops, one row per position, for a decoded token as for a prefill chunk; so
//! prefill and decode compute the same numbers. Other devices and dtypes (CUDA, bf16) run
//! candle's kernels for the same formulas.

use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
use rayon::prelude::*;

use super::config::RopeStyle;
use super::error::{LocalError, Result};

/// `out = x / rms(x) * weight`, one row.
pub fn rms_norm_row(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (mean_square + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * r * w;
    }
}

/// cos and sin of every rotary pair's angle at `pos` (angles in f32, like the reference
/// implementations).
pub fn rope_angles(inv_freqs: &[f64], pos: usize) -> (Vec<f32>, Vec<f32>) {
    inv_freqs
        .iter()
        .map(|f| {
            let a = (pos as f32 * *f as f32) as f64;
            (a.cos() as f32, a.sin() as f32)
        })
        .unzip()
}

/// Rotates every head of one position's `x` (heads * head_dim values) in place.
pub fn rope_row(x: &mut [f32], cos: &[f32], sin: &[f32], head_dim: usize, style: RopeStyle) {
    let half = head_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
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

/// `gate = silu(gate) * up`, elementwise.
pub fn swiglu_row(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// The activations of one forward step, (n, width) for n positions.
///
/// A single position on the CPU in f32 (a decode step) is a plain vector: the loops and
/// the quantized kernels work on it directly, with none of the tensor bookkeeping (an
/// allocation, shape checks and often a thread hand-off per op) that cost more than the
/// arithmetic of one 576-wide row: about 3% of SmolLM2's decode time when those rows were
/// (1, width) tensors, and far more when they went through candle's thread pool.
pub(crate) enum Act {
    Tensor(Tensor),
    /// One position, f32, on the CPU.
    Row(Vec<f32>),
}

impl Act {
    /// As a tensor (a row becomes (1, width) on the CPU).
    pub fn into_tensor(self) -> Result<Tensor> {
        Ok(match self {
            Act::Tensor(t) => t,
            Act::Row(v) => {
                let width = v.len();
                Tensor::from_vec(v, (1, width), &Device::Cpu)?
            }
        })
    }

    /// The residual connection: `self + y`.
    pub fn add(self, y: &Act) -> Result<Act> {
        Ok(match (self, y) {
            (Act::Row(mut x), Act::Row(y)) => {
                x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
                Act::Row(x)
            }
            (x, y) => Act::Tensor((x.into_tensor()? + y.tensor()?)?),
        })
    }

    /// A tensor view (a row is copied into a (1, width) tensor).
    fn tensor(&self) -> Result<Tensor> {
        match self {
            Act::Tensor(t) => Ok(t.clone()),
            Act::Row(v) => Ok(Tensor::from_slice(v, (1, v.len()), &Device::Cpu)?),
        }
    }
}

/// Whether `t` runs on the loops above: f32 on the CPU.
pub(crate) fn on_host(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Calls `f` with the values of an f32 CPU tensor (copied first if it is strided).
pub(crate) fn with_host<T>(t: &Tensor, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((from, to))) => Ok(f(&v[from..to])),
        _ => Err(LocalError::Worker(format!(
            "expected an f32 CPU tensor, got {:?} on {:?}",
            t.dtype(),
            t.device().location()
        ))),
    }
}

/// A tensor of `x`'s shape (f32, CPU) whose rows (last dimension) are
/// `f(row index, input row, output row)`, run on rayon's pool like candle's own ops.
fn map_rows(x: &Tensor, f: impl Fn(usize, &[f32], &mut [f32]) + Sync) -> Result<Tensor> {
    let width = x.dims().last().copied().unwrap_or(1).max(1);
    let out = with_host(x, |src| {
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(width)
            .zip(src.par_chunks(width))
            .enumerate()
            .for_each(|(r, (o, i))| f(r, i, o));
        dst
    })?;
    Ok(Tensor::from_vec(out, x.shape(), x.device())?)
}

/// RMSNorm of each row of `x` (n, hidden).
pub(crate) fn rms_norm(x: &Act, weight: &Tensor, eps: f32) -> Result<Act> {
    Ok(match x {
        Act::Row(row) => with_host(weight, |w| {
            let mut out = vec![0f32; row.len()];
            rms_norm_row(row, w, eps, &mut out);
            Act::Row(out)
        })?,
        Act::Tensor(x) if on_host(x) && on_host(weight) => Act::Tensor(with_host(weight, |w| {
            map_rows(x, |_, row, out| rms_norm_row(row, w, eps, out))
        })??),
        Act::Tensor(x) => Act::Tensor(candle_nn::ops::rms_norm(x, weight, eps)?),
    })
}

/// `silu(gate) * up` for the MLP's two projections, both (n, intermediate).
pub(crate) fn swiglu(gate: Act, up: &Act) -> Result<Act> {
    Ok(match (gate, up) {
        (Act::Row(mut g), Act::Row(u)) => {
            swiglu_row(&mut g, u);
            Act::Row(g)
        }
        (Act::Tensor(g), Act::Tensor(u)) if on_host(&g) && on_host(u) => {
            let width = g.dims().last().copied().unwrap_or(1);
            Act::Tensor(with_host(u, |u| {
                map_rows(&g, |r, g, out| {
                    out.copy_from_slice(g);
                    swiglu_row(out, &u[r * width..(r + 1) * width]);
                })
            })??)
        }
        (g, u) => Act::Tensor((candle_nn::ops::silu(&g.into_tensor()?)? * u.tensor()?)?),
    })
}

/// The rotary angles of the positions of one forward step, shared by every layer.
pub(crate) struct Rope {
    /// (n, head_dim / 2), row-major.
    cos: Vec<f32>,
    sin: Vec<f32>,
    head_dim: usize,
    style: RopeStyle,
    /// The same tables as tensors in the model's dtype, for candle's kernels (off the CPU
    /// or in another dtype than f32).
    tables: Option<(Tensor, Tensor)>,
}

impl Rope {
    /// Angles of positions `start..start + n`.
    pub fn new(
        inv_freqs: &[f64],
        start: usize,
        n: usize,
        style: RopeStyle,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let half = inv_freqs.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in start..start + n {
            let (c, s) = rope_angles(inv_freqs, p);
            cos.extend(c);
            sin.extend(s);
        }
        let tables = if device.is_cpu() && dtype == DType::F32 {
            None
        } else {
            let table = |v: &[f32]| -> Result<Tensor> {
                Ok(Tensor::from_slice(v, (n, half), device)?.to_dtype(dtype)?)
            };
            Some((table(&cos)?, table(&sin)?))
        };
        Ok(Self {
            cos,
            sin,
            head_dim: 2 * half,
            style,
            tables,
        })
    }

    /// Rotates `x` (n, heads * head_dim), one row per position.
    pub fn apply(&self, x: Act) -> Result<Act> {
        let (hd, half) = (self.head_dim, self.head_dim / 2);
        let rotate = |r: usize, row: &mut [f32]| {
            let angles = r * half..(r + 1) * half;
            let (cos, sin) = (&self.cos[angles.clone()], &self.sin[angles]);
            rope_row(row, cos, sin, hd, self.style);
        };
        let x = match x {
            Act::Row(mut row) => {
                rotate(0, &mut row);
                return Ok(Act::Row(row));
            }
            Act::Tensor(x) => x,
        };
        let Some((cos, sin)) = self.tables.as_ref().filter(|_| !on_host(&x)) else {
            return Ok(Act::Tensor(map_rows(&x, |r, row, out| {
                out.copy_from_slice(row);
                rotate(r, out);
            })?));
        };
        let (n, width) = x.dims2()?;
        let heads = x.reshape((1, n, width / hd, hd))?;
        let rotated = match self.style {
            RopeStyle::Halves => candle_nn::rotary_emb::rope_thd(&heads, cos, sin)?,
            RopeStyle::Interleaved => {
                let by_head = heads.transpose(1, 2)?.contiguous()?;
                candle_nn::rotary_emb::rope_i(&by_head, cos, sin)?.transpose(1, 2)?
            }
        };
        Ok(Act::Tensor(rotated.reshape((n, width))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37) % 23) as f32 * scale - 1.0)
            .collect()
    }

    fn values(a: Act) -> Vec<f32> {
        let t = a.into_tensor().unwrap().to_dtype(DType::F32).unwrap();
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn close(a: Act, b: Act, tol: f32) {
        let (a, b) = (values(a), values(b));
        assert_eq!(a.len(), b.len());
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d <= tol, "differ by {d}");
    }

    /// The loops compute candle's functions (f16 tensors take candle's kernels), and a
    /// single row gives the numbers of the same row inside a chunk.
    #[test]
    fn loops_match_candle_kernels_and_rows_match_chunks() {
        let dev = Device::Cpu;
        let (n, heads, hd) = (3, 2, 8);
        let width = heads * hd;
        let x = Tensor::from_vec(ramp(n * width, 0.1), (n, width), &dev).unwrap();
        let up = (&x * 0.5).unwrap();
        let w = Tensor::from_vec(ramp(width, 0.05), width, &dev).unwrap();
        let t = |t: &Tensor| Act::Tensor(t.clone());
        let f16 = |t: &Tensor| Act::Tensor(t.to_dtype(DType::F16).unwrap());
        let f16w = w.to_dtype(DType::F16).unwrap();
        let row = |t: &Tensor, r: usize| Act::Row(t.get(r).unwrap().to_vec1::<f32>().unwrap());

        let ours = |x: &Act| rms_norm(x, &w, 1e-5).unwrap();
        let theirs = candle_nn::ops::rms_norm(&x, &w, 1e-5).unwrap();
        close(ours(&t(&x)), t(&theirs), 1e-5);
        close(ours(&t(&x)), rms_norm(&f16(&x), &f16w, 1e-5).unwrap(), 2e-2);
        let chunk = ours(&t(&x)).into_tensor().unwrap();
        for r in 0..n {
            close(ours(&row(&x, r)), row(&chunk, r), 0.0);
        }

        let ours = |g: Act, u: &Act| swiglu(g, u).unwrap();
        let theirs = (candle_nn::ops::silu(&x).unwrap() * &up).unwrap();
        close(ours(t(&x), &t(&up)), t(&theirs), 1e-6);
        close(ours(t(&x), &t(&up)), ours(f16(&x), &f16(&up)), 1e-2);
        let chunk = ours(t(&x), &t(&up)).into_tensor().unwrap();
        for r in 0..n {
            close(ours(row(&x, r), &row(&up, r)), row(&chunk, r), 0.0);
        }

        let inv: Vec<f64> = (0..hd / 2)
            .map(|i| 1.0 / 100f64.powf(i as f64 / 4.0))
            .collect();
        for style in [RopeStyle::Interleaved, RopeStyle::Halves] {
            let host = Rope::new(&inv, 5, n, style, &dev, DType::F32).unwrap();
            let kernel = Rope::new(&inv, 5, n, style, &dev, DType::F16).unwrap();
            let chunk = host.apply(t(&x)).unwrap().into_tensor().unwrap();
            close(t(&chunk), kernel.apply(f16(&x)).unwrap(), 1e-2);
            for r in 0..n {
                let one = Rope::new(&inv, 5 + r, 1, style, &dev, DType::F32).unwrap();
                close(one.apply(row(&x, r)).unwrap(), row(&chunk, r), 0.0);
            }
        }
    }
}
