//! Tokenizer parity with llama.cpp on the committed corpus (tests/data/tokenizer_corpus.py).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use cwm_engine::Tokenizer;

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

#[test]
fn smollm2_tokens_match_llama_cpp() {
    let tok = Tokenizer::from_gguf_file(&common::smollm2_path()).expect("tokenizer from GGUF");
    let corpus = std::fs::read_to_string(common::data_dir().join("smollm2_tokens.jsonl"))
        .expect("corpus file");
    let cases: Vec<Case> = corpus
        .lines()
        .map(|l| serde_json::from_str(l).expect("corpus line"))
        .collect();
    assert!(cases.len() >= 200, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = tok.encode(&case.text).expect("encode");
        if got != case.ids {
            failures.push(format!(
                "{:?}: got {:?}, llama.cpp {:?}",
                case.text, got, case.ids
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} strings differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_decode_round_trips() {
    let tok = Tokenizer::from_gguf_file(&common::smollm2_path()).expect("tokenizer from GGUF");
    let text = "def f(x):\n    return x  # caf\u{e9} \u{1F600}<|im_end|>";
    let ids = tok.encode(text).expect("encode");
    assert_eq!(tok.decode(&ids).expect("decode"), text);
}
