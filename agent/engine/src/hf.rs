//! Loading Hugging Face checkpoint directories (config.json, *.safetensors, tokenizer.json).

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use super::config::load_hf_config;
use super::error::{LocalError, Result};
use super::linear::{Embedding, Linear};
use super::model::{Layer, Transformer};
use super::tokenizer::Tokenizer;

pub struct HfModel {
    pub model: Transformer,
    /// `None` when the directory has no tokenizer.json (raw-token use only).
    pub tokenizer: Option<Tokenizer>,
    pub chat_template: Option<String>,
}

/// Loads `dir`. On CPU the weights are converted to f32 (candle's CPU matmul has no bf16);
/// on a GPU they keep the checkpoint's dtype unless `dtype` says otherwise.
pub fn load(dir: &Path, device: &Device, dtype: Option<DType>) -> Result<HfModel> {
    super::pin_thread_count();
    let hf = load_hf_config(&dir.join("config.json"))?;
    let files = shard_files(dir)?;
    // SAFETY: the shards are mapped read-only; the engine never writes to them, and files
    // changed under a running model are outside what we support.
    let st = unsafe { MmapedSafetensors::multi(&files) }.map_err(|e| LocalError::Config {
        path: dir.to_path_buf(),
        detail: format!("cannot map safetensors shards: {e}"),
    })?;
    let first = st.load("model.embed_tokens.weight", device)?;
    let dtype = match dtype {
        Some(d) => d,
        None if device.is_cpu() => DType::F32,
        None => first.dtype(),
    };
    let load = |name: &str| -> Result<Tensor> {
        let t = st
            .load(name, device)
            .map_err(|_| LocalError::MissingTensor(name.to_string()))?;
        Ok(t.to_dtype(dtype)?)
    };
    let c = &hf.config;
    let layers = (0..c.num_layers)
        .map(|i| {
            let p = format!("model.layers.{i}");
            let lin = |n: &str| load(&format!("{p}.{n}.weight")).map(Linear::Dense);
            Layer::new(
                load(&format!("{p}.input_layernorm.weight"))?,
                lin("self_attn.q_proj")?,
                lin("self_attn.k_proj")?,
                lin("self_attn.v_proj")?,
                lin("self_attn.o_proj")?,
                load(&format!("{p}.post_attention_layernorm.weight"))?,
                lin("mlp.gate_proj")?,
                lin("mlp.up_proj")?,
                lin("mlp.down_proj")?,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let embed = first.to_dtype(dtype)?;
    let lm_head = if hf.tie_embeddings {
        embed.clone()
    } else {
        load("lm_head.weight")?
    };
    let norm = load("model.norm.weight")?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = if tok_path.exists() {
        Some(Tokenizer::from_json_file(&tok_path)?)
    } else {
        None
    };
    let model = Transformer::new(
        hf.config,
        device.clone(),
        dtype,
        Embedding::Dense(embed),
        layers,
        norm,
        Linear::Dense(lm_head),
    );
    Ok(HfModel {
        model,
        tokenizer,
        chat_template: read_chat_template(dir),
    })
}

fn shard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(LocalError::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LocalError::Config {
            path: dir.to_path_buf(),
            detail: "no *.safetensors weights in the directory".to_string(),
        });
    }
    Ok(files)
}

/// `chat_template` from tokenizer_config.json, if any.
fn read_chat_template(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("chat_template")?.as_str().map(str::to_string)
}
