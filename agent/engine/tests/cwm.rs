//! CWM architecture parity with transformers' CwmForCausalLM (tests/data/make_tiny_cwm.py),
//! and prefix reuse giving the same logits as a cold prefill.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use candle_core::{Device, Tensor};
use cwm_engine::{hf, Engine, ModelFormat};

const TOL: f32 = 1e-4;

fn expected() -> (Vec<u32>, Tensor) {
    let path = common::data_dir().join("tiny_cwm.expected.safetensors");
    let t = candle_core::safetensors::load(path, &Device::Cpu).expect("expected logits");
    let tokens: Vec<i64> = t["tokens"].to_vec1().expect("tokens");
    let tokens = tokens.into_iter().map(|x| x as u32).collect();
    (tokens, t["logits"].clone())
}

fn engine() -> Engine {
    let m = hf::load(&common::data_dir().join("tiny_cwm"), &Device::Cpu, None).expect("tiny CWM");
    Engine::new(m.model, None, None, ModelFormat::HfCheckpoint)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn config_reads_layer_types_and_llama3_rope() {
    let m = hf::load(&common::data_dir().join("tiny_cwm"), &Device::Cpu, None).expect("tiny CWM");
    let c = &m.model.config;
    assert_eq!(
        c.layer_windows,
        vec![None, Some(16), Some(16), None, Some(16), Some(16)]
    );
    assert!(c.rope_scaling.is_some());
    assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim), (4, 2, 16));
}

#[test]
fn one_prefill_matches_transformers() {
    let (tokens, want) = expected();
    let m = hf::load(&common::data_dir().join("tiny_cwm"), &Device::Cpu, None).expect("tiny CWM");
    let mut cache = m.model.new_cache();
    let got = m.model.forward(&tokens, &mut cache, true).expect("forward");
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    let d = max_diff(&got, &want);
    assert!(d <= TOL, "max abs diff {d} > {TOL}");
}

#[test]
fn token_by_token_matches_transformers() {
    let (tokens, want) = expected();
    let m = hf::load(&common::data_dir().join("tiny_cwm"), &Device::Cpu, None).expect("tiny CWM");
    let mut cache = m.model.new_cache();
    for (i, t) in tokens.iter().enumerate() {
        let got = m.model.forward(&[*t], &mut cache, false).expect("forward");
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        let row: Vec<f32> = want.get(i).unwrap().to_vec1().unwrap();
        let d = max_diff(&got, &row);
        assert!(d <= TOL, "position {i}: max abs diff {d} > {TOL}");
    }
}

/// Prefill A, then prompts that extend, diverge from, and shorten A: each must give the
/// logits of a cold prefill, and only the unseen suffix may be run.
#[test]
fn prefix_reuse_matches_cold_prefill() {
    let (tokens, want) = expected();
    let row = |n: usize| -> Vec<f32> { want.get(n - 1).unwrap().to_vec1().unwrap() };
    let mut e = engine();
    // Cold: 40 tokens (beyond two windows).
    let l = e.prefill(&tokens[..40]).expect("prefill A");
    assert!(max_diff(&l, &row(40)) <= TOL);
    assert_eq!(e.stats().tokens_processed, 40);
    // Extend: only 24 new tokens are run.
    let l = e.prefill(&tokens[..64]).expect("prefill A+B");
    assert!(max_diff(&l, &row(64)) <= TOL);
    assert_eq!(e.stats().tokens_processed, 64);
    // Diverge at 30: roll back to 30 and run the rest of the new prompt.
    let mut other = tokens[..30].to_vec();
    other.extend(tokens[30..50].iter().map(|t| (t + 7) % 256));
    let l = e.prefill(&other).expect("diverged prompt");
    let mut cold = engine();
    let want_other = cold.prefill(&other).expect("cold diverged");
    assert!(max_diff(&l, &want_other) <= TOL);
    assert_eq!(e.stats().tokens_processed, 64 + 20);
    // Back to the original at full length, after the divergence: rerun from 30.
    let l = e.prefill(&tokens[..64]).expect("back to A+B");
    assert!(max_diff(&l, &row(64)) <= TOL);
    // A shorter prompt, fully cached: only its last token is rerun.
    let before = e.stats().tokens_processed;
    let l = e.prefill(&tokens[..20]).expect("shorter prompt");
    assert!(max_diff(&l, &row(20)) <= TOL);
    assert_eq!(e.stats().tokens_processed, before + 1);
}

/// A bf16 checkpoint loads on the CPU (computed in f32) and stays close to the f32 logits.
#[test]
fn bf16_checkpoint_loads_and_agrees() {
    let src = common::data_dir().join("tiny_cwm");
    let dir = std::env::temp_dir().join(format!("tiny_cwm_bf16_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let weights = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu)
        .expect("f32 weights");
    let bf16: std::collections::HashMap<String, Tensor> = weights
        .into_iter()
        .map(|(k, v)| (k, v.to_dtype(candle_core::DType::BF16).unwrap()))
        .collect();
    candle_core::safetensors::save(&bf16, dir.join("model.safetensors")).unwrap();
    let m = hf::load(&dir, &Device::Cpu, None).expect("bf16 tiny CWM");
    let (tokens, want) = expected();
    let mut cache = m.model.new_cache();
    let got = m.model.forward(&tokens, &mut cache, true).expect("forward");
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    let d = max_diff(&got, &want);
    std::fs::remove_dir_all(&dir).ok();
    assert!(d < 0.1, "bf16 weights drift {d} from the f32 reference");
}

/// Long contexts prefill in shorter chunks to bound the attention scores' memory; forcing
/// the shortest chunks still gives transformers' logits.
#[test]
fn short_prefill_chunks_match_transformers() {
    let (tokens, want) = expected();
    let mut m =
        hf::load(&common::data_dir().join("tiny_cwm"), &Device::Cpu, None).expect("tiny CWM");
    m.model.set_scores_budget(1);
    let mut cache = m.model.new_cache();
    let got = m.model.forward(&tokens, &mut cache, true).expect("forward");
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    assert!(tokens.len() > 32, "the sequence must span several chunks");
    let d = max_diff(&got, &want);
    assert!(d <= TOL, "max abs diff {d} > {TOL}");
}
