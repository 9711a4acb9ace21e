//! Architecture settings shared by GGUF and Hugging Face checkpoints, and RoPE frequencies.

use std::path::Path;

use serde::Deserialize;

use super::error::{LocalError, Result};

/// How RoPE pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs (2i, 2i+1): GGUF Llama files, whose q/k rows were permuted by the converter.
    Interleaved,
    /// Pairs (i, i + d/2): Hugging Face checkpoints.
    Halves,
}

/// Llama-3 style frequency scaling (`rope_type: llama3`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_positions: f64,
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3Scaling>,
    /// Per rotary pair, a divisor of its frequency: how GGUF files store llama3 scaling
    /// (the `rope_freqs.weight` tensor, read as llama.cpp does).
    pub rope_freq_factors: Option<Vec<f64>>,
    pub rope_style: RopeStyle,
    /// Longest context the model accepts (positions 0..max_positions).
    pub max_positions: usize,
    /// Per layer: `None` for global attention, `Some(w)` to see only the last `w` positions.
    pub layer_windows: Vec<Option<usize>>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// Inverse frequencies of the head's rotary pairs, with llama3 scaling applied.
    pub fn inv_freqs(&self) -> Vec<f64> {
        let half = self.head_dim / 2;
        (0..half)
            .map(|i| {
                let f = 1.0 / self.rope_theta.powf((2 * i) as f64 / self.head_dim as f64);
                let f = match &self.rope_scaling {
                    Some(s) => s.scale(f),
                    None => f,
                };
                match &self.rope_freq_factors {
                    Some(factors) => f / factors.get(i).copied().unwrap_or(1.0),
                    None => f,
                }
            })
            .collect()
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |detail: String| LocalError::Config {
            path: path.to_path_buf(),
            detail,
        };
        if self.num_heads == 0
            || self.num_kv_heads == 0
            || !self.num_heads.is_multiple_of(self.num_kv_heads)
        {
            return Err(bad(format!(
                "{} query heads cannot be grouped over {} KV heads",
                self.num_heads, self.num_kv_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2) || self.head_dim == 0 {
            return Err(bad(format!("head_dim {} must be even", self.head_dim)));
        }
        if let Some(factors) = &self.rope_freq_factors {
            if factors.len() != self.head_dim / 2 || factors.iter().any(|f| f.is_nan() || *f <= 0.0)
            {
                return Err(bad(format!(
                    "rope_freqs needs {} positive factors (head_dim / 2), got {}",
                    self.head_dim / 2,
                    factors.len()
                )));
            }
        }
        if self.layer_windows.len() != self.num_layers {
            return Err(bad(format!(
                "{} layer types for {} layers",
                self.layer_windows.len(),
                self.num_layers
            )));
        }
        Ok(())
    }
}

impl Llama3Scaling {
    fn scale(&self, freq: f64) -> f64 {
        let low_wavelen = self.original_max_positions / self.low_freq_factor;
        let high_wavelen = self.original_max_positions / self.high_freq_factor;
        let wavelen = 2.0 * std::f64::consts::PI / freq;
        if wavelen < high_wavelen {
            freq
        } else if wavelen > low_wavelen {
            freq / self.factor
        } else {
            let smooth = (self.original_max_positions / wavelen - self.low_freq_factor)
                / (self.high_freq_factor - self.low_freq_factor);
            (1.0 - smooth) * freq / self.factor + smooth * freq
        }
    }
}

/// The fields of a Hugging Face `config.json` (Llama, CWM) that the engine uses.
#[derive(Debug, Deserialize)]
struct HfConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_scaling: Option<HfRope>,
    rope_parameters: Option<HfRope>,
    max_position_embeddings: usize,
    sliding_window: Option<usize>,
    layer_types: Option<Vec<String>>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<OneOrMany>,
    #[serde(default)]
    tie_word_embeddings: bool,
}

#[derive(Debug, Deserialize)]
struct HfRope {
    rope_type: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    rope_theta: Option<f64>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

/// Parsed `config.json`, plus whether the LM head shares the embedding.
pub struct HfModelConfig {
    pub config: ModelConfig,
    pub tie_embeddings: bool,
}

pub fn load_hf_config(path: &Path) -> Result<HfModelConfig> {
    let text = std::fs::read_to_string(path).map_err(LocalError::io(path))?;
    let bad = |detail: String| LocalError::Config {
        path: path.to_path_buf(),
        detail,
    };
    let hf: HfConfig = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let rope = hf.rope_parameters.as_ref().or(hf.rope_scaling.as_ref());
    let rope_theta = hf
        .rope_theta
        .or_else(|| rope.and_then(|r| r.rope_theta))
        .unwrap_or(10_000.0);
    let rope_scaling = match rope {
        Some(r) => parse_rope_scaling(r).map_err(bad)?,
        None => None,
    };
    let layer_windows = layer_windows(&hf).map_err(bad)?;
    let config = ModelConfig {
        vocab_size: hf.vocab_size,
        hidden_size: hf.hidden_size,
        intermediate_size: hf.intermediate_size,
        num_layers: hf.num_hidden_layers,
        num_heads: hf.num_attention_heads,
        num_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
        head_dim: hf
            .head_dim
            .unwrap_or(hf.hidden_size / hf.num_attention_heads.max(1)),
        rms_eps: hf.rms_norm_eps,
        rope_theta,
        rope_scaling,
        rope_freq_factors: None,
        rope_style: RopeStyle::Halves,
        max_positions: hf.max_position_embeddings,
        layer_windows,
        bos_token_id: hf.bos_token_id,
        eos_token_ids: match hf.eos_token_id {
            Some(OneOrMany::One(id)) => vec![id],
            Some(OneOrMany::Many(ids)) => ids,
            None => Vec::new(),
        },
    };
    config.validate(path)?;
    Ok(HfModelConfig {
        config,
        tie_embeddings: hf.tie_word_embeddings,
    })
}

fn parse_rope_scaling(r: &HfRope) -> std::result::Result<Option<Llama3Scaling>, String> {
    let kind = r
        .rope_type
        .as_deref()
        .or(r.kind.as_deref())
        .unwrap_or("default");
    match kind {
        "default" => Ok(None),
        "llama3" => {
            let need = |v: Option<f64>, name: &str| {
                v.ok_or_else(|| format!("llama3 rope scaling lacks `{name}`"))
            };
            Ok(Some(Llama3Scaling {
                factor: need(r.factor, "factor")?,
                low_freq_factor: need(r.low_freq_factor, "low_freq_factor")?,
                high_freq_factor: need(r.high_freq_factor, "high_freq_factor")?,
                original_max_positions: need(
                    r.original_max_position_embeddings,
                    "original_max_position_embeddings",
                )?,
            }))
        }
        other => Err(format!(
            "rope type `{other}` is not supported (supported: default, llama3)"
        )),
    }
}

fn layer_windows(hf: &HfConfig) -> std::result::Result<Vec<Option<usize>>, String> {
    let Some(types) = &hf.layer_types else {
        // Without layer_types every layer is global (plain Llama).
        return Ok(vec![None; hf.num_hidden_layers]);
    };
    types
        .iter()
        .map(|t| match t.as_str() {
            "full_attention" => Ok(None),
            "sliding_attention" => hf
                .sliding_window
                .map(Some)
                .ok_or_else(|| "a sliding_attention layer but no sliding_window".to_string()),
            other => Err(format!("unknown layer type `{other}`")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(scaling: Option<Llama3Scaling>, factors: Option<Vec<f64>>) -> ModelConfig {
        ModelConfig {
            vocab_size: 10,
            hidden_size: 128,
            intermediate_size: 256,
            num_layers: 1,
            num_heads: 1,
            num_kv_heads: 1,
            head_dim: 128,
            rms_eps: 1e-5,
            rope_theta: 500_000.0,
            rope_scaling: scaling,
            rope_freq_factors: factors,
            rope_style: RopeStyle::Halves,
            max_positions: 131_072,
            layer_windows: vec![None],
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }

    /// GGUF's per-pair factors (what llama.cpp's converter writes for llama3 scaling)
    /// reproduce the Hugging Face llama3 frequencies.
    #[test]
    fn rope_freq_factors_reproduce_llama3_scaling() {
        let llama3 = Llama3Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_positions: 8192.0,
        };
        let hf = config(Some(llama3), None).inv_freqs();
        let plain = config(None, None).inv_freqs();
        let factors: Vec<f64> = plain.iter().zip(&hf).map(|(p, s)| p / s).collect();
        assert!(
            factors.iter().any(|f| (f - 8.0).abs() < 1e-9),
            "{factors:?}"
        );
        let gguf = config(None, Some(factors)).inv_freqs();
        for (a, b) in gguf.iter().zip(&hf) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
        }
        let bad = config(None, Some(vec![1.0; 3]));
        assert!(bad.validate(Path::new("x.gguf")).is_err());
    }
}
