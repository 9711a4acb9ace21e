//! The sampling settings reach an OpenAI-compatible server: a small local HTTP server (a
//! recording stand-in for vLLM, which cannot run here) captures every request body.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;

use cwm_agent::{Message, OpenAiConfig, OpenAiPolicy, OpenAiSampling, Policy};

/// Serves one chat completion and hands back the request body.
fn recording_server() -> (String, mpsc::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let (sent, received) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let body = common::read_http_body(&stream);
        let _ = sent.send(serde_json::from_slice(&body).expect("json body"));
        let reply = r#"{"choices": [{"message": {"content": "ok</think>\n<tool: bash>\nls\n</tool>"}, "finish_reason": "stop"}]}"#;
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
    });
    (url, received)
}

#[tokio::test]
async fn every_sampling_field_reaches_the_request_body() {
    let (url, bodies) = recording_server();
    let mut config = OpenAiConfig::new("cwm", Some(url));
    config.sampling = OpenAiSampling {
        temperature: 0.6,
        top_p: 0.9,
        top_k: 20,
        seed: Some(7),
    };
    config.max_retries = 0;
    let mut policy = OpenAiPolicy::new(config).expect("client");
    let reply = policy
        .respond(&[Message::new(cwm_agent::Role::User, "hi")], 321)
        .await
        .expect("reply");
    assert!(reply.text.contains("<tool: bash>"), "{}", reply.text);
    let body = bodies.recv().expect("a request was made");
    assert_eq!(body["temperature"], 0.6);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["top_k"], 20);
    assert_eq!(body["seed"], 7);
    assert_eq!(body["max_tokens"], 321);
    // What the trajectory records is what was sent.
    let recorded = &policy.config()["sampling_sent"];
    for field in ["temperature", "top_p", "top_k", "seed"] {
        assert_eq!(recorded[field], body[field], "{field}");
    }
}

#[tokio::test]
async fn defaults_are_cwms_and_top_k_zero_is_left_out() {
    let (url, bodies) = recording_server();
    let mut policy = OpenAiPolicy::new(OpenAiConfig::new("cwm", Some(url))).expect("client");
    policy
        .respond(&[Message::new(cwm_agent::Role::User, "hi")], 8)
        .await
        .expect("reply");
    let body = bodies.recv().expect("a request was made");
    assert_eq!(body["temperature"], 1.0);
    assert_eq!(body["top_p"], 0.95);
    assert!(body.get("top_k").is_none(), "{body}");
    assert!(body.get("seed").is_none(), "{body}");
}

#[path = "common/mod.rs"]
mod common;

#[test]
fn a_given_tokenizer_counts_tokens_exactly_and_the_config_says_which() {
    let policy = OpenAiPolicy::new(OpenAiConfig::new(
        "cwm",
        Some("http://127.0.0.1:9/v1".into()),
    ))
    .expect("client");
    assert!(policy.config()["token_counts"]
        .as_str()
        .is_some_and(|s| s.starts_with("estimate")));
    let gguf = common::smollm2_path();
    let policy = policy.with_tokenizer(&gguf).expect("tokenizer loads");
    let text = "def add(a, b):\n    return a + b  # ünïcödé\n";
    let exact = cwm_engine::Tokenizer::from_gguf_file(&gguf)
        .expect("tokenizer")
        .encode(text)
        .expect("encode")
        .len();
    assert_eq!(policy.count_tokens(text), exact);
    assert_ne!(
        exact,
        cwm_tools::approx_tokens(text),
        "the test text tells them apart"
    );
    assert!(policy.config()["token_counts"]
        .as_str()
        .is_some_and(|s| s.contains("SmolLM2")));
    let err = OpenAiPolicy::new(OpenAiConfig::new("cwm", None))
        .expect("client")
        .with_tokenizer(std::path::Path::new("/nonexistent/tokenizer.json"))
        .err()
        .expect("a missing tokenizer is refused");
    assert!(
        err.to_string().contains("/nonexistent/tokenizer.json"),
        "{err}"
    );
}
