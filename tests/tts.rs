//! `tts gen-tests` and `tts select` end to end on a fixture: three scripted samples (two
//! identical wrong patches, one gold), two scripted test writers (one test that reproduces
//! the issue, one that claims it resolved and must be dropped), then selection by majority
//! (the wrong patch) and by tests (the gold one), the derived run graded by `eval`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::Path;

mod common;
use common::*;

const ID: &str = "fixtures__daterange-1";

/// A replay script that writes `script` as /testbed/reproduce_issue.py and submits a patch
/// adding it.
fn test_writer(dir: &Path, name: &str, script: &str) {
    std::fs::write(
        dir.join(name),
        format!(
            "ok\n</think>\n<tool: bash>\ncat > reproduce_issue.py <<'CWM_TEST_END'\n{script}\nCWM_TEST_END\n\
             git add -N reproduce_issue.py && git diff -- reproduce_issue.py > /tmp/test.diff\n</tool>\n---\n\
             ok\n</think>\n<tool: submit>\n/tmp/test.diff\n</tool>\n---\nok\n</think>\ndone\n"
        ),
    )
    .unwrap();
}

const REPRODUCES: &str = "import datetime as dt\n\
try:\n    from calrange import add_months\n    result = add_months(dt.date(2024, 1, 31), 1)\n\
except ValueError:\n    print(\"Issue reproduced\")\n\
else:\n    print(\"Issue resolved\" if result == dt.date(2024, 2, 29) else \"Other issues\")";

const CLAIMS_RESOLVED: &str = "print(\"Issue resolved\")";

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run_ok(args: &[String]) -> String {
    let out = output(cwm_bench().args(args));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn tests_pick_the_gold_patch_where_the_majority_picks_the_wrong_one() {
    let runs = tempfile::tempdir().unwrap();
    let scripts = runs.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let wrong = "diff --git a/wrong.txt b/wrong.txt\nnew file mode 100644\n--- /dev/null\n+++ b/wrong.txt\n@@ -0,0 +1 @@\n+wrong\n";
    submitting(&scripts, "sample-0.txt", wrong);
    submitting(&scripts, "sample-1.txt", wrong);
    submitting(&scripts, "sample-2.txt", &gold_patch(ID));
    test_writer(&scripts, "test-0.txt", REPRODUCES);
    test_writer(&scripts, "test-1.txt", CLAIMS_RESOLVED);
    let run_id = unique("tts");
    let runs_dir = runs.path().display().to_string();
    let mut args = run_args(runs.path(), &run_id);
    args.extend(
        [
            "--model",
            &format!("replay:{}/sample-{{sample}}.txt", scripts.display()),
            "--samples",
            "3",
            "--evaluate",
            "--instances",
            ID,
        ]
        .map(String::from),
    );
    let stdout = run_ok(&args);
    assert!(
        stdout.contains("majority vote 0.0%, oracle (any sample) 100.0%"),
        "{stdout}"
    );

    let gen = |count: &str| {
        run_ok(
            &[
                "tts",
                "gen-tests",
                "--quiet",
                "--run",
                &run_id,
                "--runs-dir",
                &runs_dir,
                "--count",
                count,
                "--model",
                &format!("replay:{}/test-{{sample}}.txt", scripts.display()),
            ]
            .map(String::from),
        )
    };
    let stdout = gen("2");
    let run_dir = runs.path().join(&run_id);
    assert!(
        stdout.contains("2 tests written, 1 kept"),
        "{stdout}\n{:?}",
        json_lines(&run_dir.join("tts/tests.jsonl"))
    );
    let tests = json_lines(&run_dir.join("tts/tests.jsonl"));
    assert_eq!(tests.len(), 2);
    for t in &tests {
        let expected = if t["test"] == 0 {
            "reproduced"
        } else {
            "resolved"
        };
        assert_eq!(t["outcome"], expected, "{t}");
        assert_eq!(t["kept"], t["test"] == 0);
        assert_eq!(t["script"], "reproduce_issue.py");
    }
    // Again: nothing is validated twice.
    gen("2");
    assert_eq!(json_lines(&run_dir.join("tts/tests.jsonl")).len(), 2);

    let select = |strategy: &str, out: &str| {
        run_ok(
            &[
                "tts",
                "select",
                "--run",
                &run_id,
                "--runs-dir",
                &runs_dir,
                "--strategy",
                strategy,
                "--out-run",
                out,
            ]
            .map(String::from),
        )
    };
    let stdout = select("majority", "by-majority");
    assert!(
        stdout.contains("best@k 0.0%, oracle (any sample) 100.0%"),
        "{stdout}"
    );
    assert!(
        json_lines(&run_dir.join("tts/candidates.jsonl")).is_empty(),
        "the majority vote runs no test"
    );
    let stdout = select("tests+majority", "by-tests");
    assert!(stdout.contains("best@k 100.0%"), "{stdout}");
    let candidates = json_lines(&run_dir.join("tts/candidates.jsonl"));
    assert_eq!(
        candidates.len(),
        2,
        "one container per distinct patch: {candidates:?}"
    );
    let passed: Vec<usize> = candidates
        .iter()
        .map(|c| {
            c["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| *o == "resolved")
                .count()
        })
        .collect();
    assert_eq!(
        {
            let mut p = passed.clone();
            p.sort();
            p
        },
        vec![0, 1]
    );
    select("tests", "by-tests-2");
    assert_eq!(
        json_lines(&run_dir.join("tts/candidates.jsonl")).len(),
        2,
        "resumed, not rerun"
    );

    // SIGKILLed at seeded random moments, then run to the end: every candidate is recorded
    // once, with the same result, and nothing is left running.
    std::fs::remove_file(run_dir.join("tts/candidates.jsonl")).unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..6 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = cwm_bench()
            .args([
                "tts",
                "select",
                "--run",
                &run_id,
                "--runs-dir",
                &runs_dir,
                "--out-run",
                "killed",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200 + rng % 2_000));
        let _ = child.kill();
        child.wait().unwrap();
    }
    select("tests+majority", "killed");
    let again = json_lines(&run_dir.join("tts/candidates.jsonl"));
    let mut hashes: Vec<&str> = again
        .iter()
        .map(|c| c["candidate"].as_str().unwrap())
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!((again.len(), hashes.len()), (2, 2), "{again:?}");
    let sorted = |runs: &[serde_json::Value]| {
        let mut r: Vec<String> = runs
            .iter()
            .map(|c| format!("{}{}", c["candidate"], c["outcomes"]))
            .collect();
        r.sort();
        r
    };
    assert_eq!(
        sorted(&again),
        sorted(&candidates),
        "the same results as before"
    );

    // The report puts the figures side by side: pass@1, pass@k, majority, best@k, oracle.
    let report = runs.path().join("report");
    run_ok(&[
        "report".to_string(),
        run_dir.display().to_string(),
        "--out".into(),
        report.display().to_string(),
    ]);
    let leaderboard = std::fs::read_to_string(report.join("leaderboard.md")).unwrap();
    let line = leaderboard
        .lines()
        .find(|l| l.starts_with(&format!("| {run_id} | all |")))
        .unwrap_or_else(|| panic!("{leaderboard}"));
    assert!(
        line.contains("| 3 | 1 | 33.3% (")
            && line.contains("@3 100.0%")
            && line.contains("| 0.0% |")
            && line.contains("tests+majority: 100.0%")
            && line.contains("majority: 0.0%")
            && line.ends_with("| 100.0% |"),
        "{line}"
    );
    assert!(leaderboard.contains(&format!("| {run_id} | fixtures/daterange |")));
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(index.contains("<table id=\"tts\">"));

    // The derived run holds the gold patch, and `eval` grades it as any predictions file.
    let preds = json_lines(&runs.path().join("by-tests/preds.jsonl"));
    assert_eq!(preds.len(), 1);
    assert_eq!(
        preds[0]["model_patch"].as_str().unwrap().trim(),
        gold_patch(ID).trim()
    );
    let stdout = run_ok(
        &[
            "eval",
            "--predictions",
            &runs
                .path()
                .join("by-tests/preds.jsonl")
                .display()
                .to_string(),
            "--instances",
            ID,
            "--run-id",
            &unique("tts-eval"),
            "--runs-dir",
            &runs_dir,
        ]
        .map(String::from),
    );
    assert!(stdout.contains("resolved 1/1"), "{stdout}");
    assert_eq!(containers_of(&format!("{run_id}.tts")), 0);
}

#[test]
fn the_whole_pipeline_runs_with_the_local_smollm2_model() {
    let model = format!("local:{}", cwm_engine::smollm2_path().display());
    let runs = tempfile::tempdir().unwrap();
    let runs_dir = runs.path().display().to_string();
    let run_id = unique("tts-smollm2");
    let budget = ["--max-turns", "3", "--max-action-tokens", "48"];
    let mut args = run_args(runs.path(), &run_id);
    args.extend(
        [
            "--model",
            &model,
            "--samples",
            "2",
            "--evaluate",
            "--instances",
            ID,
        ]
        .map(String::from),
    );
    args.extend(budget.map(String::from));
    let out = output(cwm_bench().args(&args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A 135M model rarely submits anything; the plumbing is what is checked.
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 samples per instance"), "{stdout}");
    let run_dir = runs.path().join(&run_id);
    assert_eq!(json_lines(&run_dir.join("samples.jsonl")).len(), 2);

    // The test-writing episodes take the run's settings (its short budgets included).
    let stdout = run_ok(
        &[
            "tts",
            "gen-tests",
            "--quiet",
            "--run",
            &run_id,
            "--runs-dir",
            &runs_dir,
            "--count",
            "1",
        ]
        .map(String::from),
    );
    assert!(stdout.contains("tests written"), "{stdout}");
    let trajectories = run_dir.join(format!("tts/tests/{run_id}.t0/trajectories"));
    let episode = std::fs::read_dir(&trajectories)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let recorded = std::fs::read_to_string(episode).unwrap();
    assert!(
        recorded.contains("Issue reproduced"),
        "the test-writing prompt reached the model"
    );

    let stdout =
        run_ok(&["tts", "select", "--run", &run_id, "--runs-dir", &runs_dir].map(String::from));
    assert!(stdout.contains("into run"), "{stdout}");
    let preds = json_lines(&runs.path().join(format!("{run_id}-selected/preds.jsonl")));
    assert_eq!(preds.len(), 1);
    assert_eq!(containers_of(&format!("{run_id}.tts")), 0);
}
