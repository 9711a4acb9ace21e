//! Speed probe of the local engine on SmolLM2 (ignored by default; the reported figures
//! come from `cwm-bench bench model`). Run: cargo test -p cwm-engine --test bench --
//! --ignored --nocapture (docs/engine.md: how to compare two builds on a shared machine)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use std::time::Instant;

use candle_core::Device;
use cwm_engine::{Engine, SamplingParams};

#[test]
#[ignore]
fn smollm2_speed() {
    let mut e = Engine::load(&common::smollm2_path(), &Device::Cpu).expect("load");
    let vocab = e.model().config.vocab_size;
    let n: usize = std::env::var("BENCH_PROMPT_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let prompt: Vec<u32> = (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect();
    e.prefill(&prompt[..16]).expect("warm-up");
    e.reset();
    let t = Instant::now();
    e.prefill(&prompt).expect("prefill");
    let p = t.elapsed().as_secs_f64();
    let params = SamplingParams {
        max_new_tokens: 128,
        stop_tokens: vec![u32::MAX],
        ..Default::default()
    };
    let g = e
        .generate(&prompt, &params, &mut |_| true)
        .expect("generate");
    let d = g.decode_time.as_secs_f64();
    println!("prefill {:.1} tok/s", n as f64 / p);
    println!("decode {:.1} tok/s", (g.tokens.len() - 1) as f64 / d);
}
