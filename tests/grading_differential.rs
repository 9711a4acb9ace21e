//! cwm-bench's grading against the official SWE-bench grader (PyPI `swebench==5.0.2`), case
//! by case: the same test log, instance and prediction go through `cwm_eval` and through
//! `get_eval_report`, and the two `report.json` texts must be byte for byte the same (both
//! absent when the official grader raises). Runs of cases are then summarised by
//! `RunSummary` and by `make_run_report`, and those files must match too.
//!
//! The corpus (`grading_corpus/`) is generated from the real SWE-bench Verified instances with
//! a fixed seed; the official side runs once over all of it (`reference/official_grade.py`)
//! in the venv that `scripts/setup-tests` installs (`CWM_BENCH_SWEBENCH_VENV` overrides its
//! place). `CWM_BENCH_GRADING_CORPUS_DUMP=DIR` keeps the corpus and both sides' outputs there
//! (`cases.json`, `official.json`, `ours.json`) for a look by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;
mod grading_corpus;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::official_python;
use cwm_datasets::Instance;
use cwm_eval::predictions::Predictions;
use grading_corpus::{Case, Corpus, ReportFile, Run, PARSERS, SEED};
use serde_json::{json, Value};

fn verified_path() -> PathBuf {
    cwm_datasets::fixtures::shared_datasets_dir().join("swe-bench-verified.jsonl")
}

fn report_file_json(file: &ReportFile) -> Value {
    match file {
        ReportFile::Graded => json!("graded"),
        ReportFile::Absent => json!("absent"),
        ReportFile::Text(text) => json!({ "text": text }),
    }
}

fn corpus_json(corpus: &Corpus) -> Value {
    let cases: Vec<Value> = corpus
        .cases
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "instance_id": c.instance_id,
                "run_id": c.run_id,
                "prediction": c.prediction,
                "test_output": c.test_output,
                "instance_log": c.instance_log,
                "report_file": report_file_json(&c.report_file),
                "junk": c.junk,
            })
        })
        .collect();
    let runs: Vec<Value> = corpus
        .runs
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id,
                "dataset_ids": r.dataset_ids,
                "predictions": r.predictions,
            })
        })
        .collect();
    json!({ "cases": cases, "runs": runs })
}

/// What the official grader made of the corpus.
struct Official {
    reports: BTreeMap<String, Option<String>>,
    report_errors: BTreeMap<String, String>,
    runs: BTreeMap<String, Option<String>>,
    run_errors: BTreeMap<String, String>,
    seconds: f64,
}

fn run_official(corpus: &Corpus, dir: &Path) -> Official {
    let python = official_python();
    let cases_path = dir.join("cases.json");
    let out_path = dir.join("official.json");
    std::fs::write(
        &cases_path,
        serde_json::to_vec(&corpus_json(corpus)).expect("corpus as JSON"),
    )
    .expect("write the cases file");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/official_grade.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&cases_path)
        .arg(verified_path())
        .arg(&out_path)
        .output()
        .expect("start the official grader's python");
    assert!(
        out.status.success(),
        "the official grader failed ({}); if swebench is missing or the wrong version, run \
         scripts/setup-tests\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value =
        serde_json::from_slice(&std::fs::read(&out_path).expect("read the official results"))
            .expect("official results are JSON");
    assert_eq!(value["version"], "5.0.2", "wrong swebench version");
    let texts = |key: &str| -> BTreeMap<String, Option<String>> {
        serde_json::from_value(value[key].clone()).expect("a map of texts")
    };
    let errors = |key: &str| -> BTreeMap<String, String> {
        serde_json::from_value(value[key].clone()).expect("a map of errors")
    };
    Official {
        reports: texts("reports"),
        report_errors: errors("report_errors"),
        runs: texts("runs"),
        run_errors: errors("run_errors"),
        seconds: value["seconds"].as_f64().unwrap_or_default(),
    }
}

/// cwm-bench's `report.json` text for one case; `None` where it gives no report.
fn our_report(inst: &Instance, case: &Case) -> Option<Result<String, String>> {
    let log = case.test_output.as_deref()?;
    Some(
        cwm_eval::official::report_for_log(inst, &case.prediction, log)
            .map(|r| r.to_official_json())
            .map_err(|e| e.to_string()),
    )
}

/// cwm-bench's run summary text, from a run directory laid out like the one `run --evaluate`
/// writes (`<iid>/{report.json,test_output.txt,run_instance.log}`); `graded` gives the
/// report.json text of a graded case.
fn our_summary(
    run: &Run,
    corpus: &Corpus,
    graded: &dyn Fn(&Case) -> Option<String>,
    root: &Path,
) -> Result<String, String> {
    let eval_dir = root.join(&run.run_id);
    for &idx in &run.cases {
        let case = &corpus.cases[idx];
        let dir = eval_dir.join(&case.instance_id);
        std::fs::create_dir_all(&dir).expect("instance dir");
        if let Some(log) = &case.test_output {
            std::fs::write(dir.join("test_output.txt"), log).expect("write test_output.txt");
        }
        if let Some(log) = &case.instance_log {
            std::fs::write(dir.join("run_instance.log"), log).expect("write run_instance.log");
        }
        let report = match &case.report_file {
            ReportFile::Graded => graded(case),
            ReportFile::Absent => None,
            ReportFile::Text(text) => Some(text.clone()),
        };
        if let Some(text) = report {
            std::fs::write(dir.join("report.json"), text).expect("write report.json");
        }
        if let Some(junk) = case.junk {
            for file in ["test_output.txt", "run_instance.log"] {
                let path = dir.join(file);
                if path.exists() {
                    let mut bytes = std::fs::read(&path).expect("read a log back");
                    bytes.extend_from_slice(junk);
                    std::fs::write(&path, bytes).expect("write the binary tail");
                }
            }
        }
    }
    let predictions: Predictions = run
        .predictions
        .iter()
        .map(|p| (p.instance_id.clone(), p.clone()))
        .collect();
    Ok(
        cwm_eval::RunSummary::from_eval_dir(&run.dataset_ids, &predictions, &eval_dir)
            .to_official_json(),
    )
}

/// Control characters and odd spaces made visible, one log line per output line.
fn visible(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c == '\t'
                || (!c.is_control()
                    && !matches!(
                        c,
                        '\u{a0}' | '\u{2000}'
                            ..='\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{3000}' | '\u{feff}'
                    ))
            {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// The log's marker lines (anything holding `>>>>>`) and the start of its marked region,
/// numbered.
fn log_snippet(log: &str) -> String {
    let lines: Vec<&str> = log.split('\n').collect();
    let start = lines
        .iter()
        .position(|l| l.contains(">>>>> Start Test Output"))
        .unwrap_or(0);
    let from = start.saturating_sub(2);
    let mut shown: Vec<usize> = (from..lines.len().min(from + 30)).collect();
    shown.extend(
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(">>>>>"))
            .map(|(k, _)| k),
    );
    shown.sort_unstable();
    shown.dedup();
    let mut out = String::new();
    let mut last = None;
    for k in shown {
        if last.is_some_and(|l: usize| k > l + 1) {
            out.push_str("          ...\n");
        }
        out.push_str(&format!("    {:5} | {}\n", k + 1, visible(lines[k])));
        last = Some(k);
    }
    out.push_str(&format!("    ({} lines in all)\n", lines.len()));
    out
}

fn show(text: &Option<String>) -> String {
    match text {
        Some(t) => t.clone(),
        None => "(no report)".to_string(),
    }
}

fn difference(official: &Option<String>, ours: &Option<String>) -> String {
    match (official, ours) {
        (Some(a), Some(b)) => similar::TextDiff::from_lines(a.as_str(), b.as_str())
            .unified_diff()
            .context_radius(2)
            .header("official", "cwm-bench")
            .to_string(),
        _ => format!(
            "official:\n{}\ncwm-bench:\n{}\n",
            show(official),
            show(ours)
        ),
    }
}

fn tally<'a>(counts: &mut BTreeMap<&'a str, usize>, key: &'a str) {
    *counts.entry(key).or_default() += 1;
}

#[test]
fn grading_matches_official_swebench_5_0_2() {
    // Fail early and loudly when the reference is missing, before any work.
    official_python();
    let started = Instant::now();
    let instances = cwm_datasets::load(&verified_path()).expect("SWE-bench Verified dataset");
    assert_eq!(instances.len(), 500, "SWE-bench Verified has 500 instances");
    let by_id: HashMap<&str, &Instance> = instances
        .iter()
        .map(|i| (i.instance_id.as_str(), i))
        .collect();
    let corpus = grading_corpus::generate(&instances, SEED);
    let generated = started.elapsed();

    let mut per_parser: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_mutation: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &corpus.cases {
        tally(&mut per_parser, case.parser.as_str());
        for m in &case.mutations {
            tally(&mut per_mutation, m.label());
        }
    }
    let mut per_shape: BTreeMap<&str, usize> = BTreeMap::new();
    for run in &corpus.runs {
        for shape in &run.shapes {
            tally(&mut per_shape, shape);
        }
    }
    assert!(
        corpus.cases.len() >= 2000,
        "corpus too small: {}",
        corpus.cases.len()
    );
    for parser in PARSERS {
        assert!(
            per_parser.get(parser).copied().unwrap_or(0) >= 100,
            "few cases for {parser}"
        );
    }

    let scratch = tempfile::tempdir().expect("tempdir");
    let official_started = Instant::now();
    let official = run_official(&corpus, scratch.path());
    let official_wall = official_started.elapsed();
    if let Some(dump) = std::env::var_os("CWM_BENCH_GRADING_CORPUS_DUMP") {
        // For a look at the corpus and the official verdicts by hand.
        let dump = PathBuf::from(dump);
        std::fs::create_dir_all(&dump).expect("dump dir");
        for file in ["cases.json", "official.json"] {
            std::fs::copy(scratch.path().join(file), dump.join(file)).expect("copy for the dump");
        }
    }

    let ours_started = Instant::now();
    let ours: HashMap<&str, Option<Result<String, String>>> = corpus
        .cases
        .iter()
        .map(|c| (c.id.as_str(), our_report(by_id[c.instance_id.as_str()], c)))
        .collect();
    // End to end: each side's run directory holds its own reports.
    let own_reports = |case: &Case| match ours.get(case.id.as_str()) {
        Some(Some(Ok(text))) => Some(text.clone()),
        _ => None,
    };
    let our_runs: BTreeMap<&str, Result<String, String>> = corpus
        .runs
        .iter()
        .map(|r| {
            let summary = our_summary(r, &corpus, &own_reports, &scratch.path().join("ours"));
            (r.run_id.as_str(), summary)
        })
        .collect();
    // The summary alone: cwm-bench reads the reports the official grader wrote.
    let official_reports = |case: &Case| official.reports.get(&case.id).cloned().flatten();
    let our_runs_on_official: BTreeMap<&str, Result<String, String>> = corpus
        .runs
        .iter()
        .map(|r| {
            let summary = our_summary(
                r,
                &corpus,
                &official_reports,
                &scratch.path().join("ours-on-official"),
            );
            (r.run_id.as_str(), summary)
        })
        .collect();
    let ours_wall = ours_started.elapsed();

    if let Some(dump) = std::env::var_os("CWM_BENCH_GRADING_CORPUS_DUMP") {
        let text = |r: &Result<String, String>| r.as_ref().ok().cloned();
        let ours_json = json!({
            "reports": ours
                .iter()
                .map(|(id, r)| (id.to_string(), r.as_ref().and_then(text)))
                .collect::<BTreeMap<_, _>>(),
            "runs": our_runs.iter().map(|(id, r)| (id.to_string(), text(r))).collect::<BTreeMap<_, _>>(),
            "runs_on_official": our_runs_on_official
                .iter()
                .map(|(id, r)| (id.to_string(), text(r)))
                .collect::<BTreeMap<_, _>>(),
        });
        std::fs::write(
            PathBuf::from(dump).join("ours.json"),
            serde_json::to_vec(&ours_json).expect("ours as JSON"),
        )
        .expect("write ours.json");
    }

    // Case by case.
    let mut disagreements = Vec::new();
    let mut disagreement_ids = Vec::new();
    let mut bad_by_parser: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bad_by_mutation: BTreeMap<&str, usize> = BTreeMap::new();
    let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &corpus.cases {
        let Some(mine) = &ours[case.id.as_str()] else {
            continue;
        };
        let theirs = official
            .reports
            .get(&case.id)
            .unwrap_or_else(|| panic!("no official result for {}", case.id));
        tally(
            &mut verdicts,
            match theirs {
                None => "no report (grader raised)",
                Some(t) if t.contains("\"resolved\": true") => "resolved",
                Some(t) if t.contains("\"patch_successfully_applied\": false") => {
                    "not applied / no gradable log"
                }
                Some(_) => "unresolved",
            },
        );
        let mine_text = mine.as_ref().ok().cloned();
        if &mine_text != theirs {
            disagreement_ids.push(case.id.as_str());
            tally(&mut bad_by_parser, case.parser.as_str());
            for m in &case.mutations {
                tally(&mut bad_by_mutation, m.label());
            }
            disagreements.push(format!(
                "case {} (parser {}, mutations {:?})\n  our error: {}\n  official error: {}\n  log:\n{}  reports:\n{}",
                case.id,
                case.parser,
                case.mutations.iter().map(|m| m.label()).collect::<Vec<_>>(),
                mine.as_ref().err().map_or("-", String::as_str),
                official
                    .report_errors
                    .get(&case.id)
                    .map_or("-", |e| e.trim_end().lines().last().unwrap_or("-")),
                log_snippet(case.test_output.as_deref().unwrap_or_default()),
                difference(theirs, &mine_text),
            ));
        }
    }
    // Run by run, end to end and on the official reports.
    let mut run_disagreements = Vec::new();
    for (mode, summaries) in [
        ("end to end", &our_runs),
        ("on the official report.json files", &our_runs_on_official),
    ] {
        for run in &corpus.runs {
            let theirs = official
                .runs
                .get(&run.run_id)
                .unwrap_or_else(|| panic!("no official summary for {}", run.run_id));
            let mine = &summaries[run.run_id.as_str()];
            let mine_text = mine.as_ref().ok().cloned();
            if &mine_text != theirs {
                run_disagreements.push(format!(
                    "run {} summarised {mode} (shapes {:?}, {} cases, {} dataset ids, {} predictions)\n  our error: {}\n  official error: {}\n{}",
                    run.run_id,
                    run.shapes,
                    run.cases.len(),
                    run.dataset_ids.len(),
                    run.predictions.len(),
                    mine.as_ref().err().map_or("-", String::as_str),
                    official
                        .run_errors
                        .get(&run.run_id)
                        .map_or("-", |e| e.trim_end().lines().last().unwrap_or("-")),
                    difference(theirs, &mine_text),
                ));
            }
        }
    }

    eprintln!(
        "grading corpus: {} cases, {} runs (seed {SEED:#x}); generated in {:.1?}, official grader {:.1?} \
         ({:.1} s inside python), cwm-bench {:.1?}",
        corpus.cases.len(),
        corpus.runs.len(),
        generated,
        official_wall,
        official.seconds,
        ours_wall
    );
    eprintln!("cases per parser: {per_parser:?}");
    eprintln!("cases per mutation: {per_mutation:?}");
    eprintln!("run shapes: {per_shape:?}");
    eprintln!("official verdicts: {verdicts:?}");
    if disagreements.is_empty() && run_disagreements.is_empty() {
        return;
    }
    eprintln!("disagreeing cases per parser: {bad_by_parser:?}");
    eprintln!("disagreeing cases per mutation: {bad_by_mutation:?}");
    for d in disagreements.iter().take(5) {
        eprintln!("\n{d}");
    }
    for d in run_disagreements.iter().take(3) {
        eprintln!("\n{d}");
    }
    if !disagreement_ids.is_empty() {
        eprintln!("\nall disagreeing cases:");
        for id in disagreement_ids.iter().take(100) {
            eprintln!("  {id}");
        }
    }
    panic!(
        "cwm-bench's grading differs from swebench 5.0.2 on {} of {} cases and {} of {} run \
         summaries (end to end and on the official reports; first ones above)",
        disagreements.len(),
        ours.values().filter(|o| o.is_some()).count(),
        run_disagreements.len(),
        2 * corpus.runs.len()
    );
}
