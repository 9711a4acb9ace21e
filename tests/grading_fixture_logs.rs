//! Real test logs against the official grader: every fixture task is evaluated in its
//! container (gold, a patch that changes nothing, and the fixtures' careless and half
//! patches), and each captured `test_output.txt` is graded by cwm-bench and by
//! `swebench==5.0.2`'s `get_eval_report`; the `report.json` texts must be the same bytes.
//! The generated corpus (`grading_differential.rs`) covers the formats' corners; this covers
//! what the real runners print.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::{Path, PathBuf};
use std::process::Command;

use cwm_datasets::{Instance, Prediction};
use cwm_eval::{report_for_log, EvalOptions};
use serde_json::{json, Value};

fn official_python() -> PathBuf {
    let venv = std::env::var_os("CWM_BENCH_SWEBENCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/cwm-bench/swebench-5.0.2")
        });
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no {}: run scripts/setup-tests",
        python.display()
    );
    python
}

/// A patch that changes nothing the tests see, so the base commit's tests run.
const NOOP: &str = "diff --git a/NOTES.txt b/NOTES.txt\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES.txt\n@@ -0,0 +1 @@\n+n\n";

/// Every (case id, instance, patch) to evaluate.
fn jobs(instances: &[Instance]) -> Vec<(String, Instance, String)> {
    let dir = cwm_datasets::fixtures::fixtures_dir();
    let mut jobs = Vec::new();
    for inst in instances {
        let name = inst
            .instance_id
            .trim_start_matches("fixtures__")
            .trim_end_matches("-1");
        let mut patches = vec![("gold", inst.patch.clone()), ("noop", NOOP.to_string())];
        for extra in ["careless", "half"] {
            if let Ok(patch) =
                std::fs::read_to_string(dir.join(name).join(format!("{extra}.patch")))
            {
                patches.push((extra, patch));
            }
        }
        for (kind, patch) in patches {
            jobs.push((format!("{}:{kind}", inst.instance_id), inst.clone(), patch));
        }
    }
    jobs
}

/// Runs every job in a fresh container; returns (case id, instance, patch, test output).
fn capture(
    jobs: Vec<(String, Instance, String)>,
    dir: &Path,
) -> Vec<(String, Instance, String, String)> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let docker = cwm_env::connect().await.expect("Docker");
        cwm_env::build_fixture_images(&docker)
            .await
            .expect("fixture images");
        let mut opts = EvalOptions::new(format!("fixture-logs-{}", std::process::id()));
        // The retry fixture hangs on its base commit; a short timeout keeps that log short.
        opts.timeout = std::time::Duration::from_secs(20);
        let mut out = Vec::new();
        for (id, inst, patch) in jobs {
            let case_dir = dir.join(id.replace(':', "_"));
            cwm_eval::evaluate(&docker, &inst, Some(&patch), &opts, &case_dir)
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            if let Ok(log) = std::fs::read_to_string(case_dir.join("test_output.txt")) {
                out.push((id, inst, patch, log));
            }
        }
        out
    })
}

#[test]
fn real_fixture_logs_grade_the_same_as_the_official_grader() {
    let instances =
        cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).expect("fixtures");
    let tmp = tempfile::tempdir().expect("tempdir");
    let captured = capture(jobs(&instances), tmp.path());
    assert!(
        captured.len() >= 20,
        "only {} logs captured",
        captured.len()
    );

    // The official make_test_spec needs these fields; the fixtures' values are cwm-bench's.
    let rows: String = instances
        .iter()
        .map(|inst| {
            let mut row = serde_json::to_value(inst).expect("row");
            row["image"] = json!(inst.image_name());
            row["eval_type"] = json!("pass_and_fail");
            format!("{row}\n")
        })
        .collect();
    let dataset = tmp.path().join("fixtures.jsonl");
    std::fs::write(&dataset, rows).expect("dataset");
    let cases: Vec<Value> = captured
        .iter()
        .map(|(id, inst, patch, log)| {
            json!({
                "id": id, "instance_id": inst.instance_id, "run_id": "fixtures",
                "prediction": {"instance_id": inst.instance_id, "model_name_or_path": "m", "model_patch": patch},
                "test_output": log, "instance_log": null, "report_file": "graded", "junk": null,
            })
        })
        .collect();
    let cases_path = tmp.path().join("cases.json");
    std::fs::write(&cases_path, json!({"cases": cases, "runs": []}).to_string()).expect("cases");
    let out_path = tmp.path().join("official.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/official_grade.py");
    let run = Command::new(official_python())
        .args([&script, &cases_path, &dataset, &out_path])
        .output()
        .expect("python");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let official: Value =
        serde_json::from_slice(&std::fs::read(&out_path).expect("out")).expect("json");

    let mut differences = Vec::new();
    for (id, inst, patch, log) in &captured {
        let prediction = Prediction {
            instance_id: inst.instance_id.clone(),
            model_name_or_path: "m".into(),
            model_patch: Some(patch.clone()),
        };
        let ours = report_for_log(inst, &prediction, log)
            .ok()
            .map(|r| r.to_official_json());
        let theirs = official["reports"][id].as_str().map(str::to_string);
        if ours != theirs {
            differences.push(format!("{id}:\nofficial {theirs:?}\nours     {ours:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differ:\n{}",
        differences.len(),
        differences.join("\n\n")
    );
    // The logs cover both verdicts.
    let resolved = captured
        .iter()
        .filter(|(id, ..)| {
            official["reports"][id]
                .as_str()
                .is_some_and(|t| t.contains("\"resolved\": true"))
        })
        .count();
    assert!(
        resolved >= 9 && resolved < captured.len(),
        "{resolved} of {} resolved",
        captured.len()
    );
}
