//! `cwm-bench dataset ...` as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::process::{Command, Output};

fn cwm_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
        .args(args)
        .output()
        .expect("the cwm-bench binary runs")
}

fn shared(name: &str) -> String {
    cwm_datasets::fixtures::shared_datasets_dir()
        .join(name)
        .display()
        .to_string()
}

#[test]
fn stats_on_verified_parquet_and_jsonl() {
    for file in ["swe-bench-verified.parquet", "swe-bench-verified.jsonl"] {
        let out = cwm_bench(&["dataset", "stats", &shared(file)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[0], "total 500");
        assert!(lines.contains(&"django/django 231"), "{stdout}");
        assert!(lines.contains(&"<15 min fix 194"), "{stdout}");
    }
}

#[test]
fn stats_with_filters_and_on_lite() {
    let out = cwm_bench(&[
        "dataset",
        "stats",
        &shared("swe-bench-lite.parquet"),
        "--repo",
        "django/django",
        "--slice",
        "0:10",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("total 10\n"), "{stdout}");
}

#[test]
fn show_prints_one_instance() {
    let out = cwm_bench(&[
        "dataset",
        "show",
        "django__django-11099",
        "--dataset",
        &shared("swe-bench-verified.jsonl"),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("instance_id: django__django-11099"));
    assert!(stdout.contains("--- problem_statement ---"));
    assert!(stdout.contains("image: swebench/sweb.eval.x86_64.django_1776_django-11099:latest"));
}

#[test]
fn bad_input_is_one_clear_error() {
    let out = cwm_bench(&["dataset", "show", "nope__nope-1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("nope__nope-1") && stderr.contains("dataset stats"),
        "{stderr}"
    );

    let out = cwm_bench(&["dataset", "stats", "/nonexistent/data.jsonl"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("does not exist"));
}
