//! The SmolLM2 GGUF end to end: chat template, generation stopping on eos, quantized
//! decode agreeing with the dense prefill path, and prefix reuse across chat turns.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use candle_core::Device;
use cwm_engine::{ChatMessage, Engine, SamplingParams};

fn engine() -> Engine {
    Engine::load(&common::smollm2_path(), &Device::Cpu).expect("load SmolLM2")
}

#[test]
fn chat_reply_stops_on_eos() {
    let mut e = engine();
    let messages = [ChatMessage::new("user", "What is 2+2?")];
    let prompt = e.render_chat(&messages).expect("render template");
    assert!(prompt.starts_with("<|im_start|>system\n"), "{prompt:?}");
    assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt:?}");
    let ids = e.encode(&prompt).expect("encode");
    let params = SamplingParams {
        max_new_tokens: 200,
        ..Default::default()
    };
    let mut streamed = Vec::new();
    let g = e
        .generate(&ids, &params, &mut |t| {
            streamed.push(t);
            true
        })
        .expect("generate");
    let text = e.decode(&g.tokens).expect("decode");
    assert_eq!(streamed, g.tokens);
    assert_eq!(
        g.stopped_on,
        Some(2),
        "did not stop on <|im_end|>: {text:?}"
    );
    // llama.cpp's greedy reply on this file: "The answer to this classic math problem is 4."
    assert!(text.contains('4'), "{text:?}");
}

#[test]
fn quantized_decode_agrees_with_dense_prefill() {
    let mut e = engine();
    let ids = e
        .encode("The quick brown fox jumps over the lazy dog. def main():\n    print(")
        .expect("encode");
    let dense = e.prefill(&ids).expect("prefill");
    e.reset();
    e.prefill(&ids[..1]).expect("first token");
    let mut quant = Vec::new();
    for i in 2..=ids.len() {
        quant = e.prefill(&ids[..i]).expect("one more token");
    }
    assert_eq!(e.stats().tokens_processed, ids.len() * 2);
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
    };
    assert_eq!(argmax(&dense), argmax(&quant));
    let spread = dense.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = dense
        .iter()
        .zip(&quant)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff < 0.05 * spread, "diff {diff} vs |logit| {spread}");
}

#[test]
fn chat_turns_prefill_only_new_tokens() {
    let mut e = engine();
    let params = SamplingParams {
        max_new_tokens: 24,
        ..Default::default()
    };
    let mut messages = vec![ChatMessage::new("user", "Name a colour.")];
    for turn in 0..3 {
        let ids = e
            .encode(&e.render_chat(&messages).expect("render"))
            .expect("encode");
        let g = e.generate(&ids, &params, &mut |_| true).expect("generate");
        let reply = e.decode(&g.tokens).expect("decode");
        messages.push(ChatMessage::new("assistant", reply));
        messages.push(ChatMessage::new("user", format!("Another one ({turn}).")));
    }
    let final_ids = e
        .encode(&e.render_chat(&messages).expect("render"))
        .expect("encode");
    e.prefill(&final_ids).expect("final prefill");
    let processed = e.stats().tokens_processed;
    // Each turn's reply is re-tokenized inside the next prompt; only the tokens the model
    // has not seen (its stop token and the new user message) are run again.
    assert!(
        processed <= final_ids.len() + 3,
        "processed {processed} tokens for a final context of {}",
        final_ids.len()
    );
}

/// Copies the SmolLM2 file with a `rope_freqs.weight` tensor added, the form in which
/// Llama-3.1 GGUF files carry llama3 RoPE scaling.
fn with_rope_freqs(dest: &std::path::Path, factors: &[f32]) {
    use candle_core::quantized::{gguf_file, QTensor};
    let src = common::smollm2_path();
    let mut file = std::fs::File::open(&src).expect("open SmolLM2");
    let content = gguf_file::Content::read(&mut file).expect("read GGUF");
    let mut tensors: Vec<(String, QTensor)> = content
        .tensor_infos
        .keys()
        .map(|name| {
            let t = content
                .tensor(&mut file, name, &Device::Cpu)
                .expect("tensor");
            (name.clone(), t)
        })
        .collect();
    let freqs = candle_core::Tensor::new(factors, &Device::Cpu).expect("factors");
    tensors.push((
        "rope_freqs.weight".to_string(),
        QTensor::quantize(&freqs, candle_core::quantized::GgmlDType::F32).expect("f32 tensor"),
    ));
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::fs::File::create(dest).expect("create copy");
    gguf_file::write(&mut out, &metadata, &tensor_refs).expect("write GGUF");
}

#[test]
fn rope_freqs_tensor_is_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let half = engine().model().config.head_dim / 2;
    let ids: Vec<u32> = (0..300).map(|i| (i * 37 % 4000 + 100) as u32).collect();
    let base = engine().prefill(&ids).expect("prefill");

    let ones = dir.path().join("ones.gguf");
    with_rope_freqs(&ones, &vec![1.0; half]);
    let mut e = Engine::load(&ones, &Device::Cpu).expect("load with rope_freqs");
    assert_eq!(e.model().config.rope_freq_factors, Some(vec![1.0; half]));
    assert_eq!(
        e.prefill(&ids).expect("prefill"),
        base,
        "unit factors changed the logits"
    );

    // Llama-3.1's factors for this head size: 1 for fast pairs, up to 8 for slow ones.
    let factors: Vec<f32> = (0..half)
        .map(|i| 1.0 + 7.0 * i as f32 / (half - 1) as f32)
        .collect();
    let scaled = dir.path().join("scaled.gguf");
    with_rope_freqs(&scaled, &factors);
    let mut e = Engine::load(&scaled, &Device::Cpu).expect("load with rope_freqs");
    let logits = e.prefill(&ids).expect("prefill");
    let diff = logits
        .iter()
        .zip(&base)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff > 1e-2, "scaling factors had no effect ({diff})");

    let bad = dir.path().join("bad.gguf");
    with_rope_freqs(&bad, &[1.0; 3]);
    let err = Engine::load(&bad, &Device::Cpu)
        .err()
        .expect("wrong length is refused");
    assert!(err.to_string().contains("rope_freqs"), "{err}");
}
