//! Loading Llama-family GGUF files: config from metadata, weights kept quantized.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::{GgmlDType, QMatMul};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::config::{ModelConfig, RopeStyle};
use super::error::{LocalError, Result};
use super::kernels::{QKind, QMatrix};
use super::linear::{Embedding, Linear};
use super::model::{Layer, Transformer};
use super::tokenizer::Tokenizer;

/// Dequantized prefill copies are kept only while they fit in this many bytes.
const DENSE_COPY_LIMIT: usize = 16 << 30;

pub struct GgufModel {
    pub model: Transformer,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
}

struct Reader<'a> {
    path: &'a Path,
    file: File,
    content: Content,
    device: Device,
    dense_prefill: bool,
}

pub fn load(path: &Path, device: &Device) -> Result<GgufModel> {
    super::pin_thread_count();
    let mut file = File::open(path).map_err(LocalError::io(path))?;
    let content = Content::read(&mut file).map_err(|e| LocalError::Gguf {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let config = read_config(path, &content.metadata)?;
    let tokenizer = Tokenizer::from_gguf(&content)?;
    let chat_template = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();
    let c = &config;
    let params = c.num_layers
        * (c.hidden_size * c.head_dim * 2 * (c.num_heads + c.num_kv_heads)
            + 3 * c.hidden_size * c.intermediate_size);
    let mut r = Reader {
        path,
        file,
        content,
        device: device.clone(),
        dense_prefill: params * 4 <= DENSE_COPY_LIMIT,
    };
    let model = r.model(config)?;
    Ok(GgufModel {
        model,
        tokenizer,
        chat_template,
    })
}

fn gguf_err(path: &Path, detail: impl Into<String>) -> LocalError {
    LocalError::Gguf {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn read_config(path: &Path, md: &HashMap<String, Value>) -> Result<ModelConfig> {
    let arch = md
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .ok_or_else(|| gguf_err(path, "no general.architecture"))?
        .clone();
    let get = |key: &str| -> Result<&Value> {
        md.get(&format!("{arch}.{key}"))
            .ok_or_else(|| gguf_err(path, format!("metadata lacks `{arch}.{key}`")))
    };
    let num = |key: &str| -> Result<usize> {
        let v = get(key)?;
        v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .map_err(|e| gguf_err(path, format!("`{arch}.{key}`: {e}")))
    };
    let float = |key: &str, default: f64| -> f64 {
        md.get(&format!("{arch}.{key}"))
            .and_then(|v| v.to_f32().ok())
            .map_or(default, f64::from)
    };
    let hidden = num("embedding_length")?;
    let heads = num("attention.head_count")?;
    let layers = num("block_count")?;
    let vocab = md
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map(Vec::len)
        .ok_or_else(|| gguf_err(path, "metadata lacks tokenizer.ggml.tokens"))?;
    let id = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
    let mut eos: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|k| id(k))
        .collect();
    eos.dedup();
    let config = ModelConfig {
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: num("feed_forward_length")?,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: num("attention.head_count_kv").unwrap_or(heads),
        head_dim: num("attention.key_length").unwrap_or(hidden / heads.max(1)),
        rms_eps: float("attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta: float("rope.freq_base", 10_000.0),
        rope_scaling: None,
        rope_freq_factors: None,
        rope_style: RopeStyle::Interleaved,
        max_positions: num("context_length")?,
        layer_windows: vec![None; layers],
        bos_token_id: id("tokenizer.ggml.bos_token_id"),
        eos_token_ids: eos,
    };
    config.validate(path)?;
    Ok(config)
}

impl Reader<'_> {
    fn model(&mut self, config: ModelConfig) -> Result<Transformer> {
        let embed = match self.quant("token_embd.weight")? {
            Some(q) => Embedding::Quant(q),
            None => Embedding::Dense(self.dense("token_embd.weight")?),
        };
        let lm_head = if self.content.tensor_infos.contains_key("output.weight") {
            self.linear_with("output.weight", false)?
        } else {
            // Tied: reuse the embedding table; the head only ever sees a few rows.
            match &embed {
                Embedding::Quant(q) => Linear::Quant {
                    q: q.clone(),
                    dense: None,
                },
                Embedding::Dense(t) => Linear::Dense(t.clone()),
            }
        };
        let layers = (0..config.num_layers)
            .map(|i| self.layer(i))
            .collect::<Result<Vec<_>>>()?;
        let norm = self.dense("output_norm.weight")?;
        let mut config = config;
        if self.content.tensor_infos.contains_key("rope_freqs.weight") {
            let factors: Vec<f32> = self.dense("rope_freqs.weight")?.flatten_all()?.to_vec1()?;
            config.rope_freq_factors = Some(factors.into_iter().map(f64::from).collect());
            config.validate(self.path)?;
        }
        Ok(Transformer::new(
            config,
            self.device.clone(),
            DType::F32,
            embed,
            layers,
            norm,
            lm_head,
        ))
    }

    fn layer(&mut self, i: usize) -> Result<Layer> {
        let mut lin = |name: &str| self.linear(&format!("blk.{i}.{name}.weight"));
        let (q, k, v, o) = (
            lin("attn_q")?,
            lin("attn_k")?,
            lin("attn_v")?,
            lin("attn_output")?,
        );
        let (gate, up, down) = (lin("ffn_gate")?, lin("ffn_up")?, lin("ffn_down")?);
        let attn_norm = self.dense(&format!("blk.{i}.attn_norm.weight"))?;
        let ffn_norm = self.dense(&format!("blk.{i}.ffn_norm.weight"))?;
        Layer::new(attn_norm, q, k, v, o, ffn_norm, gate, up, down)
    }

    fn linear(&mut self, name: &str) -> Result<Linear> {
        let dense = self.dense_prefill;
        self.linear_with(name, dense)
    }

    fn linear_with(&mut self, name: &str, keep_dense: bool) -> Result<Linear> {
        if let Some(q) = self.quant(name)? {
            let dense = if keep_dense && self.device.is_cpu() || !self.device.is_cpu() {
                Some(dequantize(&q, &self.device)?)
            } else {
                None
            };
            return Ok(Linear::Quant { q, dense });
        }
        let info = tensor_info(&self.content, name)?;
        if matches!(
            info.ggml_dtype,
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16
        ) {
            return Ok(Linear::Dense(self.dense(name)?));
        }
        let qt = info
            .read(
                &mut self.file,
                self.content.tensor_data_offset,
                &self.device,
            )
            .map_err(|e| gguf_err(self.path, format!("{name}: {e}")))?;
        Ok(Linear::Ggml(QMatMul::from_qtensor(qt)?))
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        tensor_info(&self.content, name)
    }

    /// The raw bytes of a Q4_1 / Q8_0 tensor as a matrix; `None` for other types.
    fn quant(&mut self, name: &str) -> Result<Option<Arc<QMatrix>>> {
        let info = self.info(name)?;
        let kind = match info.ggml_dtype {
            GgmlDType::Q4_1 => QKind::Q4_1,
            GgmlDType::Q8_0 => QKind::Q8_0,
            _ => return Ok(None),
        };
        let (rows, cols) = info
            .shape
            .dims2()
            .map_err(|e| gguf_err(self.path, format!("{name}: {e}")))?;
        let size = rows * cols / 32 * kind.block_bytes();
        let offset = self.content.tensor_data_offset + info.offset;
        let mut data = vec![0u8; size];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut data))
            .map_err(LocalError::io(self.path))?;
        QMatrix::new(kind, rows, cols, data)
            .map(|q| Some(Arc::new(q)))
            .ok_or_else(|| gguf_err(self.path, format!("{name}: bad size for {rows}x{cols}")))
    }

    /// Any tensor, dequantized to f32.
    fn dense(&mut self, name: &str) -> Result<Tensor> {
        let info = tensor_info(&self.content, name)?;
        let qt = info
            .read(
                &mut self.file,
                self.content.tensor_data_offset,
                &self.device,
            )
            .map_err(|e| gguf_err(self.path, format!("{name}: {e}")))?;
        Ok(qt.dequantize(&self.device)?.to_dtype(DType::F32)?)
    }
}

fn tensor_info<'a>(content: &'a Content, name: &str) -> Result<&'a TensorInfo> {
    content
        .tensor_infos
        .get(name)
        .ok_or_else(|| LocalError::MissingTensor(name.to_string()))
}

/// (rows, cols) f32 copy of a quantized matrix, dequantized in parallel.
fn dequantize(q: &QMatrix, device: &Device) -> Result<Tensor> {
    let mut out = vec![0f32; q.rows * q.cols];
    out.par_chunks_mut(q.cols)
        .enumerate()
        .for_each(|(r, row)| q.dequantize_row(r, row));
    Ok(Tensor::from_vec(out, (q.rows, q.cols), device)?)
}
