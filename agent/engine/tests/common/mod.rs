//! Shared helpers for the local engine tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The SmolLM2 GGUF (`cwm_engine::smollm2_path`). Panics with the fix when it is missing.
pub fn smollm2_path() -> PathBuf {
    let path = cwm_engine::smollm2_path();
    assert!(
        path.exists(),
        "SmolLM2 GGUF not found at {}: run scripts/setup, or set CWM_BENCH_SMOLLM2",
        path.display()
    );
    path
}

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Reads one HTTP request from `stream` (headers, then `Content-Length` bytes of body) and
/// returns its body: the stand-in model servers of the OpenAI tests use it.
pub fn read_http_body(stream: &std::net::TcpStream) -> Vec<u8> {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    body
}
