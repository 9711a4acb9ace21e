//! The OpenAI-compatible policy against a model server that misbehaves on cue (a small local
//! HTTP server standing in for a failing vLLM, which cannot run here): 500s and 429 with
//! Retry-After are retried (the latter after the time asked), a malformed or cut-off body is
//! a clear error, and a refused connection names the URL and the attempts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cwm_agent::{Message, OpenAiConfig, OpenAiPolicy, Policy, Role};

mod common;

const GOOD: &str = r#"{"choices": [{"message": {"content": "ok</think>\n<tool: bash>\nls\n</tool>"}, "finish_reason": "stop"}]}"#;

/// Serves the scripted raw HTTP responses in order, one per connection; returns the URL and
/// how many requests arrived.
fn server(responses: Vec<String>) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let count = Arc::new(Mutex::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for response in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            common::read_http_body(&stream);
            *seen.lock().expect("count") += 1;
            let mut stream = stream;
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (url, count)
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn policy(url: String, retries: u32) -> OpenAiPolicy {
    let mut config = OpenAiConfig::new("cwm", Some(url));
    config.max_retries = retries;
    config.initial_backoff = Duration::from_millis(10);
    config.request_timeout = Duration::from_secs(10);
    OpenAiPolicy::new(config).expect("client")
}

async fn ask(policy: &mut OpenAiPolicy) -> Result<String, String> {
    policy
        .respond(&[Message::new(Role::User, "hi")], 16)
        .await
        .map(|r| r.text)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn server_errors_and_429_are_retried_and_retry_after_is_honoured() {
    let (url, count) = server(vec![
        http("500 Internal Server Error", "", "{}"),
        http("429 Too Many Requests", "retry-after: 1\r\n", "{}"),
        http("200 OK", "", GOOD),
    ]);
    let started = Instant::now();
    let text = ask(&mut policy(url, 3))
        .await
        .expect("the third try succeeds");
    assert!(text.contains("<tool: bash>"), "{text}");
    assert_eq!(*count.lock().expect("count"), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_says_what_happened() {
    let (url, count) = server(vec![http("503 Service Unavailable", "", "busy"); 3]);
    let err = ask(&mut policy(url.clone(), 2))
        .await
        .expect_err("keeps failing");
    assert_eq!(*count.lock().expect("count"), 3, "one try and two retries");
    assert!(err.contains("503") && err.contains(&url), "{err}");
}

#[tokio::test]
async fn malformed_and_cut_off_bodies_are_clear_errors() {
    let (url, _) = server(vec![http("200 OK", "", "{\"choices\": [")]);
    let err = ask(&mut policy(url, 0)).await.expect_err("malformed JSON");
    assert!(err.contains("not JSON"), "{err}");

    // The body stops before its announced length, then the connection closes.
    let cut = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\nconnection: close\r\n\r\n{\"choices\": [{\"mess".to_string();
    let (url, _) = server(vec![cut]);
    let err = ask(&mut policy(url.clone(), 0))
        .await
        .expect_err("cut-off body");
    assert!(err.contains(&url), "{err}");
}

#[tokio::test]
async fn a_refused_connection_names_the_url_and_the_attempts() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let err = ask(&mut policy(url, 1)).await.expect_err("nothing listens");
    assert!(
        err.contains("after 2 attempt(s)") && err.contains(&port.to_string()),
        "{err}"
    );
}
