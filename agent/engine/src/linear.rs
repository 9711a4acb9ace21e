//! Linear layers and embeddings over dense or quantized weights.
//!
//! A quantized weight keeps its GGML bytes for decode (our SIMD matrix-vector kernels) and,
//! when memory allows, a dequantized f32 copy for prefill, where a gemm over many rows wins.

use std::sync::Arc;

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor};

use super::error::Result;
use super::kernels::{self, QMatrix};
use super::ops::{with_host, Act};

/// Inputs with at most this many rows take the matrix-vector path.
const MATVEC_MAX_ROWS: usize = 4;

pub enum Linear {
    /// (out, in) weight in the compute dtype.
    Dense(Tensor),
    /// Our kernels for decode; `dense` (out, in) f32 for prefill if it was kept.
    Quant {
        q: Arc<QMatrix>,
        dense: Option<Tensor>,
    },
    /// GGML types without our kernels run through candle's quantized matmul.
    Ggml(QMatMul),
}

impl Linear {
    /// `x` (rows, in) -> (rows, out).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Dense(w) => Ok(x.matmul(&w.t()?)?),
            Linear::Quant { q, dense } => {
                let rows = x.dim(0)?;
                match dense {
                    Some(w) if rows > MATVEC_MAX_ROWS || !x.device().is_cpu() => {
                        Ok(x.matmul(&w.t()?)?)
                    }
                    _ => matvec_rows(&[&**q], x).map(|mut v| v.remove(0)),
                }
            }
            Linear::Ggml(m) => Ok(m.forward(x)?),
        }
    }

    fn quant_for_matvec(&self, rows: usize, cpu: bool) -> Option<&QMatrix> {
        match self {
            Linear::Quant { q, dense } if cpu && (rows <= MATVEC_MAX_ROWS || dense.is_none()) => {
                Some(q)
            }
            _ => None,
        }
    }

    /// Applies several layers to the same input; quantized decode runs them as one
    /// parallel pass (q/k/v, gate/up).
    pub fn forward_many(layers: &[&Linear], x: &Tensor) -> Result<Vec<Tensor>> {
        let rows = x.dim(0)?;
        let cpu = x.device().is_cpu();
        let quants: Option<Vec<&QMatrix>> = layers
            .iter()
            .map(|l| l.quant_for_matvec(rows, cpu))
            .collect();
        match quants {
            Some(qs) => matvec_rows(&qs, x),
            None => layers.iter().map(|l| l.forward(x)).collect(),
        }
    }

    /// `x` (rows, in) -> (rows, out); a single row on the CPU stays a vector.
    pub(crate) fn apply(&self, x: &Act) -> Result<Act> {
        match x {
            Act::Tensor(t) => Ok(Act::Tensor(self.forward(t)?)),
            Act::Row(row) => Ok(Act::Row(apply_row(&[self], row)?.remove(0))),
        }
    }
}

/// Several layers on one f32 row: the quantized kernels in one parallel pass when every
/// layer has them, else each layer's [`Linear::forward`] on a (1, in) tensor.
fn apply_row(layers: &[&Linear], row: &[f32]) -> Result<Vec<Vec<f32>>> {
    let quants: Option<Vec<&QMatrix>> =
        layers.iter().map(|l| l.quant_for_matvec(1, true)).collect();
    match quants {
        Some(qs) => {
            let mut outs: Vec<Vec<f32>> = qs.iter().map(|m| vec![0f32; m.rows]).collect();
            let mut slices: Vec<&mut [f32]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
            kernels::matvec_many(&qs, row, &mut slices);
            Ok(outs)
        }
        None => {
            let t = Tensor::from_slice(row, (1, row.len()), &Device::Cpu)?;
            layers
                .iter()
                .map(|l| {
                    let y = l.forward(&t)?.to_dtype(DType::F32)?;
                    Ok(y.flatten_all()?.to_vec1()?)
                })
                .collect()
        }
    }
}

/// Layers applied to the same input (q/k/v, gate/up). For prefill their dequantized
/// weights are stacked into one matrix, so one large gemm replaces several thin ones.
pub struct LinearGroup {
    parts: Vec<Linear>,
    /// (sum of outs, in) f32, when every part is quantized with a prefill copy.
    stacked: Option<Tensor>,
}

impl LinearGroup {
    pub fn new(mut parts: Vec<Linear>) -> Result<Self> {
        let denses: Option<Vec<Tensor>> = parts
            .iter()
            .map(|p| match p {
                Linear::Quant { dense: Some(d), .. } => Some(d.clone()),
                _ => None,
            })
            .collect();
        let stacked = match denses {
            Some(ds) if ds.first().is_some_and(|d| d.device().is_cpu()) => {
                // The stacked copy replaces the per-part copies.
                for p in parts.iter_mut() {
                    if let Linear::Quant { dense, .. } = p {
                        *dense = None;
                    }
                }
                Some(Tensor::cat(&ds, 0)?)
            }
            _ => None,
        };
        Ok(Self { parts, stacked })
    }

    pub fn part(&self, i: usize) -> Option<&Linear> {
        self.parts.get(i)
    }

    /// One output per part, each (rows, out_i).
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let rows = x.dim(0)?;
        match &self.stacked {
            Some(w) if rows > MATVEC_MAX_ROWS => {
                let y = x.matmul(&w.t()?)?;
                let mut off = 0;
                let mut outs = Vec::with_capacity(self.parts.len());
                for p in &self.parts {
                    let n = p.out_features()?;
                    outs.push(y.narrow(1, off, n)?.contiguous()?);
                    off += n;
                }
                Ok(outs)
            }
            _ => {
                let refs: Vec<&Linear> = self.parts.iter().collect();
                Linear::forward_many(&refs, x)
            }
        }
    }

    /// One output per part; a single row on the CPU stays a vector.
    pub(crate) fn apply(&self, x: &Act) -> Result<Vec<Act>> {
        Ok(match x {
            Act::Tensor(t) => self.forward(t)?.into_iter().map(Act::Tensor).collect(),
            Act::Row(row) => {
                let refs: Vec<&Linear> = self.parts.iter().collect();
                apply_row(&refs, row)?.into_iter().map(Act::Row).collect()
            }
        })
    }
}

impl Linear {
    pub fn out_features(&self) -> Result<usize> {
        Ok(match self {
            Linear::Dense(w) => w.dim(0)?,
            Linear::Quant { q, .. } => q.rows,
            Linear::Ggml(m) => match m {
                QMatMul::QTensor(t) => t.shape().dims()[0],
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dim(0)?,
            },
        })
    }
}

/// Row by row matrix-vector products of `x` (rows, in) with each matrix.
fn matvec_rows(mats: &[&QMatrix], x: &Tensor) -> Result<Vec<Tensor>> {
    let (rows, cols) = x.dims2()?;
    let mut outs: Vec<Vec<f32>> = mats.iter().map(|m| vec![0f32; rows * m.rows]).collect();
    // On a GPU (a tied quantized LM head has no dense copy) the rows come to the CPU.
    let host = x.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    with_host(&host, |xs| {
        for r in 0..rows {
            let input = &xs[r * cols..(r + 1) * cols];
            let mut slices: Vec<&mut [f32]> = outs
                .iter_mut()
                .zip(mats)
                .map(|(o, m)| &mut o[r * m.rows..(r + 1) * m.rows])
                .collect();
            kernels::matvec_many(mats, input, &mut slices);
        }
    })?;
    outs.into_iter()
        .zip(mats)
        .map(|(o, m)| Ok(Tensor::from_vec(o, (rows, m.rows), x.device())?.to_dtype(x.dtype())?))
        .collect()
}

pub enum Embedding {
    Dense(Tensor),
    /// Rows are dequantized on lookup, so the table stays quantized in memory.
    Quant(Arc<QMatrix>),
}

impl Embedding {
    /// The f32 row of one token.
    pub fn row(&self, token: u32) -> Result<Vec<f32>> {
        match self {
            Embedding::Dense(t) => Ok(t.get(token as usize)?.to_dtype(DType::F32)?.to_vec1()?),
            Embedding::Quant(q) => {
                let mut out = vec![0f32; q.cols];
                q.dequantize_row(token as usize, &mut out);
                Ok(out)
            }
        }
    }

    /// (tokens.len(), hidden) rows for `tokens`.
    pub fn forward(&self, tokens: &[u32], device: &Device, dtype: DType) -> Result<Tensor> {
        match self {
            Embedding::Dense(t) => {
                let ids = Tensor::new(tokens, t.device())?;
                Ok(t.index_select(&ids, 0)?)
            }
            Embedding::Quant(q) => {
                let mut out = vec![0f32; tokens.len() * q.cols];
                for (row, &t) in out.chunks_exact_mut(q.cols).zip(tokens) {
                    q.dequantize_row(t as usize, row);
                }
                let t = Tensor::from_vec(out, (tokens.len(), q.cols), device)?;
                Ok(t.to_dtype(dtype)?)
            }
        }
    }
}
