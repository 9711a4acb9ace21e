//! `cwm-bench trace` on every fixture (gold patch, FAIL_TO_PASS tests) against the real
//! daemon: every example re-parses from its token form, its frames replay consistently (the
//! locals after expanding `".."` equal the recorded ones, values and sources agree), and each
//! line event's source is the line at that number of the file in the patched repository.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use cwm_bench::pipeline::trace::TraceExample;

mod common;
use common::replay::{assert_each_test_traced, check_replay, read_examples};
use common::*;

fn fixtures() -> Vec<cwm_datasets::Instance> {
    cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap()
}

/// Lines `(file, number)` of `instance`'s repository with its gold and test patches applied.
fn repo_lines(
    instance: &cwm_datasets::Instance,
    wanted: &BTreeSet<(String, u64)>,
) -> BTreeMap<(String, u64), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gold.diff"), &instance.patch).unwrap();
    std::fs::write(dir.path().join("test.diff"), &instance.test_patch).unwrap();
    let query: Vec<String> = wanted.iter().map(|(f, n)| format!("{f}\t{n}")).collect();
    std::fs::write(dir.path().join("query.txt"), query.join("\n")).unwrap();
    let script = "cd /testbed && git apply /in/gold.diff /in/test.diff && python3 -c '
import json, sys
out = {}
for q in open(\"/in/query.txt\").read().splitlines():
    f, n = q.split(\"\\t\")
    lines = open(f).read().split(\"\\n\")
    out[q] = lines[int(n) - 1] if int(n) <= len(lines) else None
print(json.dumps(out))'";
    let out = output(Command::new("docker").args([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:/in:ro", dir.path().display()),
        &instance.image_name(),
        "bash",
        "-c",
        script,
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: BTreeMap<String, Option<String>> =
        serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    wanted
        .iter()
        .filter_map(|(f, n)| {
            let line = found.get(&format!("{f}\t{n}"))?.clone()?;
            Some(((f.clone(), *n), line))
        })
        .collect()
}

#[test]
fn traces_of_every_fixture_reparse_and_replay_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("traces.jsonl");
    let stdout = succeed(cwm_bench().args(["trace", "--out", out_file.to_str().unwrap()]));
    let examples = read_examples(&out_file);
    for instance in fixtures() {
        assert_each_test_traced(&examples, &instance, "python 3.11");
        let mine: Vec<&TraceExample> = examples
            .iter()
            .filter(|e| e.instance_id == instance.instance_id)
            .collect();
        let mut wanted = BTreeSet::new();
        for e in &mine {
            check_replay(e);
            assert!(e.context.contains("# << START_OF_TRACE"), "{}", e.context);
            for f in e.frames.iter().filter(|f| f.event == "line") {
                wanted.insert((e.file.clone(), f.line));
            }
        }
        let lines = repo_lines(&instance, &wanted);
        for e in &mine {
            for f in e.frames.iter().filter(|f| f.event == "line") {
                let real = lines.get(&(e.file.clone(), f.line)).unwrap_or_else(|| {
                    panic!("{}:{} is not a line of the repository", e.file, f.line)
                });
                assert_eq!(&f.source, real, "{} {}:{}", e.qualname, e.file, f.line);
            }
        }
    }
    assert!(stdout.contains("examples from"), "{stdout}");
    let left = output(Command::new("docker").args([
        "ps",
        "-a",
        "--filter",
        "label=cwm-bench.run",
        "--format",
        "{{.Label \"cwm-bench.run\"}}",
    ]));
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.lines().any(|l| l.starts_with("trace-")), "{left}");
}

#[test]
fn trace_follows_a_runs_predictions_and_names_the_instances_it_could_not_trace() {
    let dir = tempfile::tempdir().unwrap();
    let preds = dir.path().join("preds.jsonl");
    let not_applying = "diff --git a/nowhere.py b/nowhere.py\n--- a/nowhere.py\n+++ b/nowhere.py\n@@ -1 +1 @@\n-a\n+b\n";
    let lines: Vec<String> = [
        ("fixtures__paginate-1", gold_patch("fixtures__paginate-1")),
        ("fixtures__semver-1", not_applying.to_string()),
    ]
    .iter()
    .map(|(id, patch)| {
        serde_json::json!({"instance_id": id, "model_name_or_path": "m", "model_patch": patch})
            .to_string()
    })
    .collect();
    std::fs::write(&preds, lines.join("\n") + "\n").unwrap();
    let traces = dir.path().join("traces.jsonl");
    std::fs::write(&traces, "an earlier file\n").unwrap();
    let out = output(cwm_bench().args([
        "trace",
        "--instances",
        "fixtures__paginate-1,fixtures__semver-1,fixtures__slugify-1",
        "--predictions",
        preds.to_str().unwrap(),
        "--max-events",
        "4",
        "--out",
        traces.to_str().unwrap(),
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("not traced: 2 instances"), "{stdout}");
    assert!(
        stdout.contains("fixtures__semver-1: trace fixtures__semver-1: the patches do not apply"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fixtures__slugify-1: ") && stdout.contains("has no prediction for it"),
        "{stdout}"
    );
    let examples = read_examples(&traces);
    assert!(!examples.is_empty());
    assert!(examples
        .iter()
        .all(|e| e.instance_id == "fixtures__paginate-1"));
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".cwm-bench-out-")
        })
        .count();
    assert_eq!(leftovers, 0, "the output's temporary file is gone");
}

#[test]
fn bad_trace_arguments_are_named_before_any_container_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--tests", ""], "an empty test id"),
        (&["--timeout", "0"], "--timeout"),
        (&["--max-repr", "3"], "--max-repr"),
        (&["--max-examples", "0"], "--max-examples"),
    ];
    for (flags, named) in cases {
        let run = output(cwm_bench().args(["trace", "--out", out]).args(flags));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(named), "{flags:?}: {stderr}");
    }
    let run = output(cwm_bench().args(["trace", "--out", dir.path().to_str().unwrap()]));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a folder"), "{stderr}");
    assert!(!std::path::Path::new(out).exists());
}

#[test]
fn a_test_that_gives_no_example_is_named_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("t.jsonl");
    let run = output(cwm_bench().args([
        "trace",
        "--instances",
        "fixtures__paginate-1",
        "--tests",
        " tests/test_nope.py::test_x ",
        "--out",
        traces.to_str().unwrap(),
    ]));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("tests that gave no example: 1")
            && stdout.contains("fixtures__paginate-1: tests/test_nope.py::test_x"),
        "{stdout}"
    );
    // The warning shows what pytest said about the id.
    assert!(stderr.contains("test_nope.py"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&traces).unwrap(), "");
}

#[test]
fn ctrl_c_stops_trace_removes_its_containers_and_keeps_the_earlier_file() {
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("t.jsonl");
    std::fs::write(&traces, "an earlier file\n").unwrap();
    let child = cwm_bench()
        .args(["trace", "--out", traces.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let label = format!("trace-{}", child.id());
    wait_until("a container of the trace", Duration::from_secs(120), || {
        containers_of(&label) > 0
    });
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(containers_of(&label), 0);
    assert_eq!(
        std::fs::read_to_string(&traces).unwrap(),
        "an earlier file\n"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["t.jsonl"]);
}

#[test]
fn export_format_trace_writes_the_token_form_of_each_example() {
    let dir = tempfile::tempdir().unwrap();
    let traces = traces_of("fixtures__paginate-1", dir.path(), 3);
    let examples = read_examples(&traces);
    assert!(!examples.is_empty());
    // A limit of 3 events cuts the longer traces, and they say so.
    assert!(examples
        .iter()
        .any(|e| e.truncated.as_deref() == Some("events") && !e.text.ends_with("<|end_of_text|>")));
    assert!(examples.iter().all(|e| e.frames.len() <= 3));
    let train = dir.path().join("train.jsonl");
    succeed(cwm_bench().args([
        "export",
        traces.to_str().unwrap(),
        "--format",
        "trace",
        "--out",
        train.to_str().unwrap(),
    ]));
    let texts: Vec<String> = std::fs::read_to_string(&train)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        texts,
        examples.iter().map(|e| e.text.clone()).collect::<Vec<_>>()
    );
}

/// Traces of the FAIL_TO_PASS tests of `instance`, each cut at `max_events`, in `dir`.
fn traces_of(instance: &str, dir: &std::path::Path, max_events: usize) -> std::path::PathBuf {
    let traces = dir.join("traces.jsonl");
    succeed(cwm_bench().args([
        "trace",
        "--instances",
        instance,
        "--max-events",
        &max_events.to_string(),
        "--out",
        traces.to_str().unwrap(),
    ]));
    traces
}

/// `debugger-eval` of `traces` with `model` at `limit` positions, each prediction at most
/// `max_tokens`; its stdout and the JSON report.
fn debugger_eval(
    traces: &std::path::Path,
    model: &str,
    limit: usize,
    max_tokens: usize,
) -> (String, serde_json::Value) {
    let report = traces.with_file_name("report.json");
    let stdout = succeed(cwm_bench().args([
        "debugger-eval",
        "--traces",
        traces.to_str().unwrap(),
        "--model",
        model,
        "--limit",
        &limit.to_string(),
        "--max-tokens",
        &max_tokens.to_string(),
        "--out",
        report.to_str().unwrap(),
    ]));
    let report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (stdout, report)
}

#[test]
fn debugger_eval_scores_smollm2_predictions_of_next_frames() {
    let dir = tempfile::tempdir().unwrap();
    let traces = traces_of("fixtures__paginate-1", dir.path(), 6);
    let model = format!("local:{}", cwm_engine::smollm2_path().display());
    let (stdout, report) = debugger_eval(&traces, &model, 6, 48);
    assert!(
        stdout.contains("next line") && stdout.contains("fixtures/paginate"),
        "{stdout}"
    );
    assert!(stdout.contains("trace tokens: as text"), "{stdout}");
    assert_eq!(report["overall"]["n"], 6, "{report}");
    let scores = report["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 6);
    // The truths are real frames of the traces; the 135M model's guesses are what they are.
    for s in scores {
        let truth = s["truth"].as_str().unwrap();
        assert!(truth.starts_with("<|"), "{truth}");
    }
}

/// The tiny random CWM checkpoint of the engine's tests, given a tokenizer whose vocabulary
/// fits its 256 ids: one token per character of printable ASCII, newline and tab (from id 10,
/// clear of the checkpoint's BOS and EOS ids 1 to 3), and the
/// trace tokens as special tokens, as in CWM's own vocabulary. Ids come from the test, not
/// from CWM; what matters is that each trace token is one token.
fn tiny_cwm_with_trace_tokens(dir: &std::path::Path) -> std::path::PathBuf {
    let source =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("agent/engine/tests/data/tiny_cwm");
    let model = dir.join("tiny_cwm");
    std::fs::create_dir_all(&model).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(source.join(file), model.join(file)).unwrap();
    }
    let chars = (' '..='~').chain(['\n', '\t']);
    let vocab: serde_json::Map<String, serde_json::Value> = chars
        .enumerate()
        .map(|(i, c)| (c.to_string(), (10 + i).into()))
        .chain([("<unk>".to_string(), 120.into())])
        .collect();
    let added: Vec<serde_json::Value> = cwm_bench::pipeline::trace::tokens::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": 240 + i, "content": t, "single_word": false, "lstrip": false,
                               "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": null, "post_processor": null,
        "decoder": {"type": "Fuse"},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": []},
    });
    std::fs::write(model.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    model
}

#[test]
fn debugger_eval_runs_the_tiny_cwm_with_native_trace_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let traces = traces_of("fixtures__paginate-1", dir.path(), 6);
    let model = tiny_cwm_with_trace_tokens(dir.path());
    let (stdout, report) = debugger_eval(&traces, &format!("local:{}", model.display()), 8, 24);
    assert!(stdout.contains("trace tokens: native"), "{stdout}");
    assert_eq!(report["trace_tokens"], "native", "{report}");
    assert_eq!(report["overall"]["n"], 8, "{report}");
    // Random weights: the guesses are noise, but every one was cut at a frame separator
    // token or the token limit, never holding the separator itself.
    for s in report["scores"].as_array().unwrap() {
        assert!(
            !s["predicted"].as_str().unwrap().contains("<|frame_sep|>"),
            "{s}"
        );
    }
}

/// Kills the llama.cpp server when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// llama-cpp-python's OpenAI-compatible server on the SmolLM2 GGUF, on a free port, once it
/// answers `GET /v1/models`: the real `/completions` endpoint for `openai:` models.
fn llama_cpp_server() -> (Server, String) {
    let venv = std::env::var_os("CWM_BENCH_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap())
                .join(".cache/cwm-bench/venv")
        });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(venv.join("bin/python"))
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(cwm_engine::smollm2_path())
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
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("llama_cpp.server starts (scripts/setup-tests installs it)");
    let mut server = Server(child);
    let started = std::time::Instant::now();
    loop {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "llama_cpp.server exited early"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "llama_cpp.server not ready"
        );
        let ready = Command::new("curl")
            .args(["-fs", &format!("http://127.0.0.1:{port}/v1/models")])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return (server, format!("http://127.0.0.1:{port}/v1"));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn debugger_eval_asks_an_openai_completions_server() {
    let dir = tempfile::tempdir().unwrap();
    let traces = traces_of("fixtures__retry-1", dir.path(), 5);
    let (_server, url) = llama_cpp_server();
    let (_, report) = debugger_eval(&traces, &format!("openai:smollm2@{url}"), 4, 32);
    assert_eq!(report["overall"]["n"], 4, "{report}");
    // The server stops at the separator, so no prediction holds one.
    for s in report["scores"].as_array().unwrap() {
        assert!(
            !s["predicted"].as_str().unwrap().contains("<|frame_sep|>"),
            "{s}"
        );
    }
}
