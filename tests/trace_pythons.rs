//! The tracer on every Python version SWE-bench images use (3.5 to 3.11): CPython 3.5 to 3.10
//! from Ubuntu's packages, cached by `scripts/setup-pythons`, and the machine's 3.11.
//!
//! - On a corpus of programs (tests/data/trace_corpus/corpus.py): every example re-parses and
//!   replays, every line event's source is that line of the file, and the examples agree
//!   across versions where the language does (calls, arguments, return values).
//! - Differentially against CPython itself: on the corpus and on a workload over the standard
//!   library, the order the tracer gives the locals is `frame.f_locals`'s own (3.6 and later;
//!   3.5's dicts keep no order, and the tracer gives it the same order), and on 3.11 the
//!   qualified names it derives from the source for older versions are `co_qualname`.
//! - `cwm-bench trace` end to end on the fixtures in images whose `python` is 3.6 to 3.10.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::{Path, PathBuf};
use std::process::Command;

use cwm_bench::pipeline::trace::{parse_token_text, TraceExample, TRACER};

mod common;
use common::replay::{assert_each_test_traced, check_replay, read_examples};
use common::*;

const VERSIONS: [&str; 6] = ["3.5", "3.6", "3.7", "3.8", "3.9", "3.10"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trace_corpus")
}

/// Every version: the cached ones (all six must be there, unless scripts/setup-tests
/// recorded that Ubuntu's archive could not be reached) and the machine's python3.
fn pythons() -> Vec<(String, PathBuf)> {
    let cached = cached_pythons();
    let have: Vec<&str> = cached.iter().map(|(v, _)| v.as_str()).collect();
    let unavailable = python_cache().join("UNAVAILABLE");
    if let Ok(why) = std::fs::read_to_string(&unavailable) {
        eprintln!(
            "WARNING: only the machine's Python is tested: {}",
            why.trim()
        );
    } else {
        assert_eq!(
            have,
            VERSIONS,
            "CPython 3.5 to 3.10 are not all in {}: run scripts/setup-pythons",
            python_cache().display()
        );
    }
    let mut all = cached;
    all.push(("3.11".into(), "python3".into()));
    all
}

/// The tracer as the harness ships it, and a copy of the corpus, in `dir`.
fn staged(dir: &Path) -> (PathBuf, PathBuf) {
    let tracer = dir.join("cwm_tracer.py");
    std::fs::write(&tracer, TRACER).unwrap();
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    for file in ["corpus.py", "order_check.py", "stdlib_work.py", "limits.py"] {
        std::fs::copy(corpus_dir().join(file), corpus.join(file)).unwrap();
    }
    (tracer, corpus)
}

fn examples_of(out: &Path) -> Vec<TraceExample> {
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| TraceExample::from_tracer_line("corpus", "run", l).unwrap())
        .collect()
}

/// What every version must agree on: per example, the function, its arguments, how it
/// ended, and each order of the locals it went through. (Which lines report events differs:
/// 3.8 and 3.10 changed it.)
fn summary(examples: &[TraceExample]) -> Vec<String> {
    examples
        .iter()
        .map(|e| {
            let first = &e.frames[0];
            let last = e.frames.last().unwrap();
            let mut orders: Vec<Vec<&String>> =
                e.frames.iter().map(|f| f.locals.keys().collect()).collect();
            orders.retain(|o| !o.is_empty());
            orders.dedup();
            let text = format!(
                "{} {:?} -> {} {:?}; locals {:?}",
                e.qualname, first.locals, last.event, last.value, orders
            );
            without_addresses(&text)
        })
        .collect()
}

/// `<function f at 0x7f...>` → `<function f at 0x?>`: addresses differ from run to run.
fn without_addresses(text: &str) -> String {
    let mut parts = text.split(" at 0x");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        out.push_str(" at 0x?");
        out.push_str(part.trim_start_matches(|c: char| c.is_ascii_hexdigit()));
    }
    out
}

#[test]
fn the_tracer_replays_the_corpus_on_every_python_and_agrees_across_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (tracer, corpus) = staged(dir.path());
    let source: Vec<String> = std::fs::read_to_string(corpus.join("corpus.py"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut summaries = Vec::new();
    for (version, python) in pythons() {
        let out = dir.path().join(format!("corpus-{version}.jsonl"));
        let run = Command::new(&python)
            .arg(&tracer)
            .args(["--out", out.to_str().unwrap(), "--root"])
            .arg(&corpus)
            .arg("--")
            .arg(corpus.join("corpus.py"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "python {version}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let examples = examples_of(&out);
        assert_eq!(examples.len(), 27, "python {version}: {examples:#?}");
        for e in &examples {
            check_replay(e);
            for f in e.frames.iter().filter(|f| f.event == "line") {
                assert_eq!(f.source, source[f.line as usize - 1], "python {version}");
            }
        }
        // grow(60)'s list passes the 200-character repr limit: each later append changes it
        // behind the cut, and the token form must say so instead of writing "..".
        let grow = examples.iter().find(|e| e.qualname == "grow").unwrap();
        let hidden = grow
            .frames
            .iter()
            .filter(|f| !f.cut_changed.is_empty())
            .count();
        assert!(hidden > 20, "python {version}: {hidden} hidden changes");
        let (_, written, _) = parse_token_text(&grow.text).unwrap();
        for (f, w) in grow.frames.iter().zip(&written) {
            for name in &f.cut_changed {
                assert_ne!(w.locals[name], "..", "python {version}: {}", grow.text);
            }
        }
        summaries.push((version, summary(&examples)));
    }
    let (newest, reference) = summaries.last().unwrap().clone();
    for (version, s) in &summaries {
        assert_eq!(s, &reference, "python {version} against {newest}");
    }
}

/// The tracer on `limits.py ARGS` with `flags`: its examples.
fn traced_limits(python: &Path, dir: &Path, flags: &[&str], args: &[&str]) -> Vec<TraceExample> {
    let (tracer, corpus) = staged(dir);
    let out = dir.join("limits.jsonl");
    let run = Command::new(python)
        .arg(&tracer)
        .args(["--out", out.to_str().unwrap(), "--root"])
        .arg(&corpus)
        .args(flags)
        .arg("--")
        .arg(corpus.join("limits.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    examples_of(&out)
}

#[test]
fn a_limit_writes_the_examples_still_open_and_says_which_limit_cut_them() {
    for (version, python) in pythons() {
        let dir = tempfile::tempdir().unwrap();
        // Wall time: the one call never returns within the second it has.
        let spun = traced_limits(&python, dir.path(), &["--timeout", "1"], &["spin", "3"]);
        assert_eq!(spun.len(), 1, "python {version}");
        assert_eq!(
            spun[0].truncated.as_deref(),
            Some("wall time"),
            "python {version}"
        );
        assert!(spun[0].frames.len() > 3 && !spun[0].text.ends_with("<|end_of_text|>"));
        check_replay(&spun[0]);
        // Examples: four helper calls finish; the fifth example is the open caller.
        let many = traced_limits(
            &python,
            dir.path(),
            &["--max-examples", "5"],
            &["many", "50"],
        );
        let names: Vec<(&str, Option<&str>)> = many
            .iter()
            .map(|e| (e.qualname.as_str(), e.truncated.as_deref()))
            .collect();
        let mut want = vec![("helper", None); 4];
        want.push(("many", Some("examples")));
        assert_eq!(names, want, "python {version}");
        many.iter().for_each(check_replay);
    }
}

/// `checked N WHAT, M mismatches` of order_check.py as (N, M).
fn checked(stderr: &str, what: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("checked ") && l.contains(what))
        .unwrap_or_else(|| panic!("no count of {what}: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

#[test]
fn the_order_of_locals_and_qualnames_are_cpythons_own_on_every_python() {
    let dir = tempfile::tempdir().unwrap();
    let (tracer, corpus) = staged(dir.path());
    // 3.5's dicts keep no order, and 3.6 copies a frame's variables into f_locals in reverse
    // (3.7 turned the loop around); on both the tracer writes the order of 3.7 and later, the
    // Pythons CWM's traces come from, which the cross-version test checks.
    let ordered = pythons()
        .into_iter()
        .filter(|(v, _)| v != "3.5" && v != "3.6");
    for (version, python) in ordered {
        let stdlib = Command::new(&python)
            .args(["-c", "import os; print(os.path.dirname(os.__file__))"])
            .output()
            .unwrap();
        let stdlib = String::from_utf8(stdlib.stdout).unwrap().trim().to_string();
        let workloads = [
            (corpus.clone(), "corpus.py"),
            (stdlib.into(), "stdlib_work.py"),
        ];
        for (root, script) in workloads {
            let run = Command::new(&python)
                .arg(corpus.join("order_check.py"))
                .arg(&tracer)
                .arg(&root)
                .arg(dir.path().join("order.jsonl"))
                .arg(corpus.join(script))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert!(run.status.success(), "python {version}: {stderr}");
            let (events, mismatches) = checked(&stderr, "events");
            eprintln!("python {version} {script}: {events} events");
            assert!(events > 100, "python {version} {script}: {stderr}");
            assert_eq!(mismatches, 0, "python {version} {script}: {stderr}");
            let (names, mismatches) = checked(&stderr, "qualnames");
            assert_eq!(mismatches, 0, "python {version} {script}: {stderr}");
            if version == "3.11" {
                assert!(names > 20, "python {version} {script}: {stderr}");
            }
        }
    }
}

/// Which fixtures each version traces end to end: every fixture once, each within the range
/// of Pythons its repository supports (as a task image's Python is): f-strings need 3.6,
/// paginate's dataclasses 3.7 and rational's `math.isqrt` 3.8. (tests/trace.rs runs them all
/// on 3.11.)
const ROTATION: [(&str, &[&str]); 6] = [
    ("3.5", &["daterange", "slugify"]),
    ("3.6", &["iniparse", "jsonpointer"]),
    ("3.7", &["paginate", "retry"]),
    ("3.8", &["rational"]),
    ("3.9", &["semver"]),
    ("3.10", &["sizeparse"]),
];

/// Images made for the test, removed when it ends.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&self.0)
                .output();
        }
    }
}

fn docker(args: &[&str]) -> String {
    let out = output(Command::new("docker").args(args));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The fixture's image with the cached interpreter at /opt/py and `python` on PATH pointing
/// at it: the harness's tracer runs `python` of the task's environment.
fn image_with_python(fixture: &str, version: &str, tree: &Path, scratch: &Path) -> String {
    let tag = format!(
        "cwm-bench-test/py{version}.{fixture}:{}",
        std::process::id()
    );
    let link = scratch.join(format!("python{version}"));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(format!("/opt/py/usr/bin/python{version}"), &link).unwrap();
    let container = docker(&["create", &format!("cwm-bench/fixture.{fixture}")]);
    docker(&[
        "cp",
        &format!("{}/.", tree.display()),
        &format!("{container}:/opt/py"),
    ]);
    docker(&[
        "cp",
        link.to_str().unwrap(),
        &format!("{container}:/usr/local/bin/python"),
    ]);
    docker(&["commit", &container, &tag]);
    docker(&["rm", &container]);
    tag
}

#[test]
fn cwm_bench_trace_runs_the_fixtures_under_python_3_5_to_3_10() {
    let dir = tempfile::tempdir().unwrap();
    let pythons = pythons();
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(cwm_datasets::fixtures::fixtures_jsonl())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    let mut images = Images(Vec::new());
    for (version, fixtures) in ROTATION {
        let Some((_, python)) = pythons.iter().find(|(v, _)| v == version) else {
            continue; // recorded as unavailable on this machine
        };
        let tree = python.ancestors().nth(3).unwrap();
        let dataset = dir.path().join(format!("py{version}.jsonl"));
        let mut lines = String::new();
        for &fixture in fixtures {
            let image = image_with_python(fixture, version, tree, dir.path());
            images.0.push(image.clone());
            let id = format!("fixtures__{fixture}-1");
            let mut row = rows
                .iter()
                .find(|r| r["instance_id"] == id)
                .unwrap()
                .clone();
            row["image"] = image.into();
            lines.push_str(&format!("{row}\n"));
        }
        std::fs::write(&dataset, lines).unwrap();
        let out_file = dir.path().join(format!("traces{version}.jsonl"));
        succeed(cwm_bench().args([
            "trace",
            "--dataset",
            dataset.to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ]));
        let examples = read_examples(&out_file);
        for &fixture in fixtures {
            let id = format!("fixtures__{fixture}-1");
            let instance = instances.iter().find(|i| i.instance_id == id).unwrap();
            assert_each_test_traced(&examples, instance, &format!("python {version}"));
        }
        for e in &examples {
            let ran = e.python.as_deref().unwrap_or_default();
            assert!(
                ran.starts_with(&format!("{version}.")),
                "{ran} is not {version}"
            );
            check_replay(e);
        }
        eprintln!("python {version}: {} examples", examples.len());
    }
}
