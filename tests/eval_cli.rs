//! `cwm-bench eval` end to end: real Docker, the fixture images, the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::Path;
use std::process::{Command, Output};

fn cwm_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
        .args(args)
        .output()
        .expect("run cwm-bench")
}

fn stdout_last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn build_fixture_images() {
    let out = cwm_bench(&["images", "build-fixtures"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gold_on_two_fixtures_then_rerun_skips_them() {
    build_fixture_images();
    let runs = tempfile::tempdir().expect("tempdir");
    let runs_dir = runs.path().to_str().expect("utf-8 path");
    let run_id = format!("evalcli-{}", std::process::id());
    let args = [
        "eval",
        "--predictions",
        "gold",
        "--instances",
        "fixtures__paginate-1,fixtures__rational-1",
        "--workers",
        "2",
        "--run-id",
        &run_id,
        "--runs-dir",
        runs_dir,
    ];
    let out = cwm_bench(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_last_line(&out), "resolved 2/2 (100.0%)");
    let run_dir = Path::new(runs_dir).join(&run_id);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json"),
    )
    .expect("summary json");
    assert_eq!(summary["resolved_instances"], 2);
    assert_eq!(summary["completed_instances"], 2);
    assert_eq!(summary["error_instances"], 0);
    assert_eq!(summary["schema_version"], 2);
    for id in ["fixtures__paginate-1", "fixtures__rational-1"] {
        assert!(run_dir.join("eval").join(id).join("report.json").is_file());
    }

    // A second run finds the reports and evaluates nothing again.
    let report = run_dir.join("eval/fixtures__paginate-1/report.json");
    let before = std::fs::metadata(&report)
        .and_then(|m| m.modified())
        .expect("mtime");
    let again = cwm_bench(&args);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(stdout_last_line(&again), "resolved 2/2 (100.0%)");
    let after = std::fs::metadata(&report)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after);
}

#[test]
fn predictions_for_unknown_instances_are_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let preds = dir.path().join("preds.jsonl");
    std::fs::write(
        &preds,
        concat!(
            r#"{"instance_id": "fixtures__paginate-1", "model_name_or_path": "m", "model_patch": ""}"#,
            "\n",
            r#"{"instance_id": "nope__nope-404", "model_name_or_path": "m", "model_patch": "diff"}"#,
            "\n"
        ),
    )
    .expect("write predictions");
    let out = cwm_bench(&[
        "eval",
        "--predictions",
        preds.to_str().expect("utf-8 path"),
        "--runs-dir",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope__nope-404"), "{stderr}");
    assert!(stderr.contains("not in the dataset"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir` named `name`, by instance id.
fn files_named(dir: &Path, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("eval dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let bytes = std::fs::read(e.path().join(name)).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), bytes))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn grade_reproduces_a_finished_runs_reports_byte_for_byte() {
    build_fixture_images();
    let runs = tempfile::tempdir().expect("tempdir");
    let runs_dir = runs.path().to_str().expect("utf-8 path");
    let run_id = format!("gradecli-{}", std::process::id());
    // Gold on three fixtures, one of them with a patch that does not apply.
    let preds = runs.path().join("preds.jsonl");
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).expect("load");
    let mut lines = String::new();
    for (id, patch) in [
        ("fixtures__paginate-1", None),
        ("fixtures__rational-1", None),
        (
            "fixtures__semver-1",
            Some("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"),
        ),
    ] {
        let gold = instances
            .iter()
            .find(|i| i.instance_id == id)
            .expect("fixture");
        let record = serde_json::json!({
            "instance_id": id,
            "model_name_or_path": "gold",
            "model_patch": patch.unwrap_or(&gold.patch),
        });
        lines.push_str(&format!("{record}\n"));
    }
    std::fs::write(&preds, lines).expect("write predictions");
    let preds = preds.to_str().expect("utf-8 path");
    let filter = "fixtures__paginate-1,fixtures__rational-1,fixtures__semver-1";
    let out = cwm_bench(&[
        "eval",
        "--predictions",
        preds,
        "--instances",
        filter,
        "--run-id",
        &run_id,
        "--runs-dir",
        runs_dir,
        "--workers",
        "2",
    ]);
    // The patch that does not apply is a graded outcome (an error in the summary, as
    // upstream counts it), not a failure of the command.
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_last_line(&out), "resolved 2/3 (66.7%)");
    let eval_dir = Path::new(runs_dir).join(&run_id).join("eval");
    let regraded = runs.path().join("regraded");
    let out = cwm_bench(&[
        "grade",
        "--predictions",
        preds,
        "--instances",
        filter,
        "--logs",
        eval_dir.to_str().expect("utf-8"),
        "--out",
        regraded.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_last_line(&out), "resolved 2/3 (66.7%)");
    let original = files_named(&eval_dir, "report.json");
    assert_eq!(original.len(), 2, "no report where 5.x writes none");
    assert_eq!(original, files_named(&regraded, "report.json"));
    let summary = |dir: &Path| std::fs::read(dir.join("summary.json")).expect("summary");
    assert_eq!(
        summary(&Path::new(runs_dir).join(&run_id)),
        summary(&regraded)
    );
    assert_eq!(leftover_containers(&run_id), "");
}

fn leftover_containers(run_id: &str) -> String {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=cwm-bench.run={run_id}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn grade_names_bad_input_and_keeps_what_it_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("eval");
    let write = |id: &str, bytes: &[u8]| {
        std::fs::create_dir_all(logs.join(id)).expect("mkdir");
        std::fs::write(logs.join(id).join("test_output.txt"), bytes).expect("write log");
    };
    let good = "+ : '>>>>> Start Test Output'\nPASSED tests/test_paginator.py::test_page_count_rounds_up\n+ : '>>>>> End Test Output'\n";
    write("fixtures__paginate-1", good.as_bytes());
    write("fixtures__retry-1", b"PASSED \xff\xfe broken\n");
    let preds = dir.path().join("preds.jsonl");
    let record = |id: &str| {
        format!(r#"{{"instance_id": "{id}", "model_name_or_path": "m", "model_patch": "diff"}}"#)
    };
    std::fs::write(
        &preds,
        format!(
            "{}\n{}\n",
            record("fixtures__paginate-1"),
            record("fixtures__retry-1")
        ),
    )
    .expect("write predictions");
    let grade = |preds: &Path| {
        cwm_bench(&[
            "grade",
            "--predictions",
            preds.to_str().expect("utf-8"),
            "--logs",
            logs.to_str().expect("utf-8"),
        ])
    };
    // A log that is not UTF-8: one line naming the file; the other report is written.
    let out = grade(&preds);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("fixtures__retry-1/test_output.txt"),
        "{stderr}"
    );
    assert!(stderr.contains("not UTF-8"), "{stderr}");
    let report = logs.join("fixtures__paginate-1/report.json");
    assert!(report.is_file());
    assert!(!logs.join("fixtures__retry-1/report.json").exists());
    let written = std::fs::read(&report).expect("report");

    // A truncated predictions file: one line naming it; nothing already written changes.
    let truncated = dir.path().join("truncated.jsonl");
    let full = std::fs::read_to_string(&preds).expect("read");
    std::fs::write(&truncated, &full[..full.len() - 20]).expect("write");
    let out = grade(&truncated);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("truncated.jsonl"), "{stderr}");
    assert_eq!(std::fs::read(&report).expect("report"), written);

    // A prediction for an unknown instance.
    let unknown = dir.path().join("unknown.jsonl");
    std::fs::write(&unknown, format!("{}\n", record("nope__nope-1"))).expect("write");
    let stderr = stderr_of(&grade(&unknown));
    assert!(
        stderr.contains("nope__nope-1") && stderr.contains("not in the dataset"),
        "{stderr}"
    );

    // An unknown log_parser in the dataset.
    let dataset = dir.path().join("dataset.jsonl");
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).expect("load");
    let mut row = serde_json::to_value(
        instances
            .iter()
            .find(|i| i.instance_id == "fixtures__paginate-1")
            .expect("fixture"),
    )
    .expect("json");
    row["log_parser"] = "parse_log_cobol".into();
    std::fs::write(&dataset, format!("{row}\n")).expect("write dataset");
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, format!("{}\n", record("fixtures__paginate-1"))).expect("write");
    let out = cwm_bench(&[
        "grade",
        "--dataset",
        dataset.to_str().expect("utf-8"),
        "--predictions",
        one.to_str().expect("utf-8"),
        "--logs",
        logs.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(stderr.contains("parse_log_cobol"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read(&report).expect("report"), written);
}

/// A dataset of three fixtures: one sound, one whose gold patch is empty (so gold cannot
/// resolve it), one with no FAIL_TO_PASS tests (so its base commit already resolves it).
fn validation_dataset(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pick = |id: &str| {
        rows.iter()
            .find(|r| r["instance_id"] == id)
            .unwrap()
            .clone()
    };
    let sound = pick("fixtures__paginate-1");
    let mut no_gold = pick("fixtures__rational-1");
    no_gold["patch"] = "".into();
    let mut no_f2p = pick("fixtures__daterange-1");
    no_f2p["FAIL_TO_PASS"] = serde_json::json!([]);
    let path = dir.join("validation.jsonl");
    let lines: Vec<String> = [sound, no_gold, no_f2p]
        .iter()
        .map(|r| r.to_string())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn validate_lists_broken_instances_and_known_bad_leaves_them_out() {
    build_fixture_images();
    let dir = tempfile::tempdir().unwrap();
    let dataset = validation_dataset(dir.path());
    let runs = dir.path().join("runs");
    let run_id = format!("validate-{}", std::process::id());
    let common = [
        "--dataset",
        dataset.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--workers",
        "2",
    ];
    let refused = cwm_bench(
        &[
            &["eval", "--predictions", "empty", "--validate"][..],
            &common,
        ]
        .concat(),
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--predictions gold"));

    let out = cwm_bench(
        &[
            &[
                "eval",
                "--predictions",
                "gold",
                "--validate",
                "--run-id",
                &run_id,
            ][..],
            &common,
        ]
        .concat(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "validated 3: 1 ok, 1 whose gold patch does not resolve them, 1 resolved with no patch"
        ),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report_path = runs.join(&run_id).join("validation.json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["ok"], serde_json::json!(["fixtures__paginate-1"]));
    assert_eq!(
        report["gold_unresolved"][0]["instance_id"],
        "fixtures__rational-1"
    );
    assert_eq!(
        report["base_resolved"][0]["instance_id"],
        "fixtures__daterange-1"
    );
    assert_eq!(
        report["known_bad"],
        serde_json::json!(["fixtures__daterange-1", "fixtures__rational-1"])
    );
    // The sound instance's base run fails its FAIL_TO_PASS tests, as it should.
    assert!(runs
        .join(&run_id)
        .join("validate-base/fixtures__paginate-1/test_output.txt")
        .exists());

    // Fed back, the list leaves the two out.
    let later = format!("{run_id}-later");
    let out = cwm_bench(
        &[
            &[
                "eval",
                "--predictions",
                "gold",
                "--known-bad",
                report_path.to_str().unwrap(),
                "--run-id",
                &later,
            ][..],
            &common,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_last_line(&out), "resolved 1/1 (100.0%)");
}
