//! `run --samples K` end to end on the fixtures: one scripted model per sample (through
//! `{sample}` in `--model`), some writing the gold patch and some a wrong one, graded in
//! real containers; the combined files and pass@k, majority and oracle figures must be the
//! ones the samples imply.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;
use common::*;

const SOLVED: &str = "fixtures__daterange-1";
const UNSOLVED: &str = "fixtures__iniparse-1";

#[test]
fn samples_are_runs_of_their_own_combined_into_pass_at_k_majority_and_oracle() {
    let runs = tempfile::tempdir().unwrap();
    let scripts = runs.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let gold = gold_patch(SOLVED);
    let wrong = "diff --git a/wrong.txt b/wrong.txt\nnew file mode 100644\n--- /dev/null\n+++ b/wrong.txt\n@@ -0,0 +1 @@\n+wrong\n";
    // Samples 0 and 2 write the gold patch of SOLVED (which does not fit UNSOLVED), 1 a
    // wrong one.
    submitting(&scripts, "script-0.txt", &gold);
    submitting(&scripts, "script-1.txt", wrong);
    submitting(&scripts, "script-2.txt", &gold);
    let run_id = unique("samples");
    let mut args = run_args(runs.path(), &run_id);
    args.extend(
        [
            "--model",
            &format!("replay:{}/script-{{sample}}.txt", scripts.display()),
            "--samples",
            "3",
            "--evaluate",
            "--instances",
            &format!("{SOLVED},{UNSOLVED}"),
        ]
        .map(String::from),
    );
    let out = output(cwm_bench().args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = runs.path().join(&run_id);
    for k in 0..3 {
        let sample = run_dir.join("samples").join(format!("{run_id}.s{k}"));
        assert_eq!(pred_ids(&sample).len(), 2, "sample {k} is a run of its own");
    }

    let samples: Vec<serde_json::Value> = std::fs::read_to_string(run_dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 6);
    let resolved: Vec<(String, u64, bool)> = samples
        .iter()
        .map(|s| {
            (
                s["instance_id"].as_str().unwrap().to_string(),
                s["sample"].as_u64().unwrap(),
                s["resolved"].as_bool().unwrap(),
            )
        })
        .collect();
    for (id, k, ok) in &resolved {
        assert_eq!(*ok, id == SOLVED && *k != 1, "{id} sample {k}");
    }
    // The majority vote: SOLVED's gold patch (samples 0 and 2) wins; one line per instance.
    let preds = std::fs::read_to_string(run_dir.join("preds.jsonl")).unwrap();
    let preds: Vec<serde_json::Value> = preds
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(preds.len(), 2);
    let solved = preds.iter().find(|p| p["instance_id"] == SOLVED).unwrap();
    assert_eq!(solved["model_patch"].as_str().unwrap().trim(), gold.trim());

    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("samples_summary.json")).unwrap(),
    )
    .unwrap();
    let close = |v: &serde_json::Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(
        close(&summary["pass_at_1"]["mean"], (2.0 / 3.0) / 2.0),
        "{summary}"
    );
    assert!(close(&summary["pass_at_k"]["2"], 0.5), "{summary}");
    assert!(close(&summary["pass_at_k"]["3"], 0.5), "{summary}");
    assert!(close(&summary["majority"], 0.5), "{summary}");
    assert!(close(&summary["oracle"], 0.5), "{summary}");
    assert!(
        close(&summary["per_repo"]["fixtures/daterange"]["oracle"], 1.0),
        "{summary}"
    );
    assert!(
        close(
            &summary["per_repo"]["fixtures/iniparse"]["pass_at_1"]["mean"],
            0.0
        ),
        "{summary}"
    );
    assert!(stdout.contains("pass@1 33.3%"), "{stdout}");
    assert!(
        stdout.contains("majority vote 50.0%, oracle (any sample) 50.0%"),
        "{stdout}"
    );
    assert_eq!(containers_of(&format!("{run_id}.s0")), 0);

    // Starting again resumes every sample and rewrites the same combined files.
    let before = std::fs::read_to_string(run_dir.join("samples.jsonl")).unwrap();
    let out = output(cwm_bench().args(&args));
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(run_dir.join("samples.jsonl")).unwrap(),
        before
    );
}
