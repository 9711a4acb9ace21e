//! Flag checks of `debugger-eval`, `export --format trace` and `--instances` that fail (or
//! succeed) before any model, container or run is needed: each error names the flag.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;
use common::*;

use std::path::Path;

/// One trace example with frames to predict, in `dir`.
fn traces(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("traces.jsonl");
    let frame = |event: &str, line: u64, source: &str| serde_json::json!({"event": event, "line": line, "locals": {"n": "3"}, "source": source});
    let example = serde_json::json!({
        "instance_id": "a__b-1", "test_id": "t", "qualname": "f", "file": "f.py", "line": 1,
        "context": "def f(n):  # << START_OF_TRACE\n    return n\n",
        "frames": [frame("call", 1, "def f(n):"), frame("line", 2, "    return n")],
        "text": "",
    });
    std::fs::write(&path, format!("{example}\n")).unwrap();
    path
}

/// `debugger-eval` with `args` after `--traces FILE`; it must fail. Its stderr.
fn debugger_eval_fails(dir: &Path, args: &[&str]) -> String {
    let traces = traces(dir);
    let out = output(
        cwm_bench()
            .args(["debugger-eval", "--traces", traces.to_str().unwrap()])
            .args(args),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    stderr
}

#[test]
fn debugger_eval_refuses_an_out_it_cannot_write_before_loading_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let missing_model = dir.path().join("no-such-model");
    let model = format!("local:{}", missing_model.display());
    // A directory as --out: named, before the (missing) model is looked at.
    let err = debugger_eval_fails(
        dir.path(),
        &["--model", &model, "--out", dir.path().to_str().unwrap()],
    );
    assert!(
        err.contains("--out") && err.contains("is a folder") && !err.contains("no-such-model"),
        "{err}"
    );
    // A place under a file cannot be created.
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("report.json");
    let err = debugger_eval_fails(
        dir.path(),
        &["--model", &model, "--out", under_file.to_str().unwrap()],
    );
    assert!(
        err.contains("--out") && !err.contains("no-such-model"),
        "{err}"
    );
    // A writable --out gets past the check (its directory created) to the model.
    let fine = dir.path().join("new/report.json");
    let err = debugger_eval_fails(
        dir.path(),
        &["--model", &model, "--out", fine.to_str().unwrap()],
    );
    assert!(err.contains("no-such-model"), "{err}");
    assert!(fine.parent().unwrap().is_dir() && !fine.exists());
    let left: Vec<_> = std::fs::read_dir(fine.parent().unwrap()).unwrap().collect();
    assert!(left.is_empty(), "the probe file was left behind: {left:?}");
}

#[test]
fn debugger_eval_refuses_zero_counts_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--limit", "--max-tokens"] {
        let err = debugger_eval_fails(dir.path(), &["--model", "openai:m", flag, "0"]);
        assert!(err.contains(flag) && !err.contains("no frame"), "{err}");
    }
}

#[test]
fn debugger_eval_says_which_models_it_takes() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, wrong) in [
        ("foo:bar", "unknown kind \"foo\""),
        ("oracle", "replay and oracle"),
        ("replay:t.jsonl", "replay and oracle"),
        ("openai:m@host:8000", "@http://HOST:PORT/v1"),
    ] {
        let err = debugger_eval_fails(dir.path(), &["--model", spec]);
        assert!(
            err.contains(wrong)
                && err.contains("local:PATH or openai:MODEL[@URL]")
                && !err.contains("replay:FILE"),
            "{spec}: {err}"
        );
    }
}

#[test]
fn export_of_traces_refuses_run_flags() {
    let dir = tempfile::tempdir().unwrap();
    let traces = traces(dir.path());
    let out_file = dir.path().join("out.jsonl");
    for flag in [["--only", "resolved"], ["--reward", "official"]] {
        let out = output(
            cwm_bench()
                .args(["export", "--format", "trace", "--out"])
                .arg(&out_file)
                .args(flag)
                .arg(&traces),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(flag[0]) && err.contains("--format trace"),
            "{flag:?}: {err}"
        );
        assert!(!out_file.exists());
    }
    succeed(
        cwm_bench()
            .args(["export", "--format", "trace", "--out"])
            .arg(&out_file)
            .arg(&traces),
    );
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().lines().count(),
        1
    );
}

#[test]
fn instance_ids_are_trimmed() {
    let stdout = succeed(cwm_bench().args([
        "dataset",
        "stats",
        "--instances",
        "fixtures__paginate-1, fixtures__semver-1,",
    ]));
    assert!(stdout.contains("total 2"), "{stdout}");
}
