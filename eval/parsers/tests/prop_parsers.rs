#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of every test-log parser (pytest and its variants, Django, sympy, through
//! `by_name` and `TestRunner::parse`) and of the eval-script reading of `TestRunner`: no log
//! makes them panic, only Django's parser refuses a log (as a `ParserCrash` value naming a
//! line of it), and well-formed result lines come out as the statuses they state.

use cwm_datasets::Instance;
use cwm_parsers::{
    by_name, parse_log_django, parse_log_matplotlib, parse_log_pytest, parse_log_pytest_options,
    parse_log_pytest_v2, parse_log_seaborn, parse_log_sympy, py_strip, TestRunner, TestStatus,
};
use proptest::prelude::*;

/// Every name `by_name` knows.
const NAMES: &[&str] = &[
    "parse_log_pytest",
    "parse_log_flask",
    "parse_log_xarray",
    "parse_log_astroid",
    "parse_log_marshmallow",
    "parse_log_pvlib",
    "parse_log_pyvista",
    "parse_log_sqlfluff",
    "parse_log_pytest_options",
    "parse_log_requests",
    "parse_log_pylint",
    "parse_log_pydicom",
    "parse_log_pytest_v2",
    "parse_log_astropy",
    "parse_log_scikit",
    "parse_log_sphinx",
    "parse_log_django",
    "parse_log_sympy",
    "parse_log_matplotlib",
    "parse_log_seaborn",
];

/// Pieces of pytest, Django and sympy output, so that concatenations reach every branch.
const PIECES: &[&str] = &[
    "PASSED",
    "FAILED",
    "SKIPPED",
    "ERROR",
    "XFAIL",
    "PASSEDx",
    " PASSED ",
    "SKIPPED [1] ",
    "[",
    "]",
    "[/tmp/a/b.py]",
    "[//x*]",
    " - ",
    "::",
    "tests/test_a.py",
    "test_x",
    "test_",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\u{a0}",
    "\x1c",
    "\x1b[32m",
    "\x1b[0m",
    "[1m",
    "MouseButton.LEFT",
    "MouseButton.RIGHT",
    " ... ",
    " ... ok",
    " ... OK",
    " ...  OK",
    " ... FAIL",
    " ... ERROR",
    " ... skipped 'x'",
    "FAIL:",
    "ERROR:",
    "FAIL: test_y (m.T)",
    "ok",
    "...",
    "Applying sites.0002_alter_domain_unique...test_no_migrations",
    "--version is equivalent to version",
    "Testing against Django installed in '/testbed' (0 silenced).\nok",
    "Internal Server Error: /view/\nok",
    "System check identified no issues (0 silenced)\nok",
    "________ ",
    " ________",
    ".py:",
    "sympy/core/tests/test_a.py:test_b",
    " E",
    " F",
    " ok",
    "é",
];

fn near_valid_log() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        5 => proptest::sample::select(PIECES).prop_map(str::to_string),
        1 => ".{0,6}",
    ];
    proptest::collection::vec(piece, 0..48).prop_map(|parts| parts.concat())
}

/// Runs every parser on `log`: only Django's may refuse it, with a line of the log.
fn parse_with_all(log: &str) {
    for name in NAMES {
        let parser = by_name(name).unwrap();
        match parser(log) {
            Ok(map) => {
                // Ids come from single lines.
                for id in map.keys() {
                    assert!(!id.contains('\n'), "{name}: {id:?}");
                }
            }
            Err(crash) => {
                assert_eq!(*name, "parse_log_django");
                assert!(crash.line.starts_with("FAIL:") || crash.line.starts_with("ERROR:"));
                assert!(log.split('\n').any(|l| py_strip(l) == crash.line));
                assert!(!crash.to_string().is_empty());
            }
        }
        let runner = TestRunner {
            command: String::new(),
            parser: name.to_string(),
            django_labels: *name == "parse_log_django",
        };
        assert_eq!(runner.parse(log), parser(log));
    }
    let _ = parse_log_pytest(log);
    let _ = parse_log_pytest_options(log);
    let _ = parse_log_pytest_v2(log);
    let _ = parse_log_matplotlib(log);
    let _ = parse_log_seaborn(log);
    let _ = parse_log_sympy(log);
    let _ = parse_log_django(log);
}

fn instance(
    eval_script: Option<String>,
    test_patch: String,
    log_parser: Option<String>,
) -> Instance {
    serde_json::from_value(serde_json::json!({
        "instance_id": "o__r-1",
        "repo": "django/django",
        "base_commit": "abc",
        "test_patch": test_patch,
        "eval_script": eval_script,
        "log_parser": log_parser,
    }))
    .unwrap()
}

fn status() -> impl Strategy<Value = TestStatus> {
    proptest::sample::select(vec![
        TestStatus::Passed,
        TestStatus::Failed,
        TestStatus::Skipped,
        TestStatus::Error,
        TestStatus::Xfail,
    ])
}

/// A pytest node id without whitespace or the characters the variants rewrite.
fn node_id() -> impl Strategy<Value = String> {
    "[a-z_/]{1,12}\\.py::test_[a-z0-9_]{1,12}"
}

proptest! {
    #[test]
    fn no_log_makes_a_parser_panic(log in any::<String>()) {
        parse_with_all(&log);
    }

    #[test]
    fn no_bytes_make_a_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        parse_with_all(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn near_valid_logs_are_parsed_or_refused(log in near_valid_log()) {
        parse_with_all(&log);
    }

    #[test]
    fn the_runner_reads_any_eval_script(
        script in proptest::option::of(near_valid_log().prop_map(|l| format!(": '>>>>> Start Test Output'\n{l}"))),
        patch in prop_oneof![
            any::<String>(),
            "(diff --git a/[a-z/]{1,8}\\.py b/[a-z/ ]{0,8}(\\.py)?\n){0,3}",
        ],
        parser in proptest::option::of(prop_oneof![proptest::sample::select(NAMES).prop_map(str::to_string), ".{0,8}"]),
        path in ".{0,24}",
    ) {
        let runner = TestRunner::for_instance(&instance(script, patch, parser)).unwrap();
        prop_assert!(by_name(&runner.parser).is_some());
        let _ = runner.target_for_file(&path);
        let _ = runner.is_test_file(&path);
        let _ = runner.parse(&path);
    }

    #[test]
    fn pytest_summary_lines_give_their_statuses(
        results in proptest::collection::vec((status(), node_id(), ".{0,12}"), 1..12),
    ) {
        let log: String = results
            .iter()
            .map(|(s, id, reason)| match s {
                TestStatus::Failed => format!("{s} {id} - {reason}\n"),
                _ => format!("{s} {id}\n"),
            })
            .collect();
        for name in ["parse_log_pytest", "parse_log_pytest_options", "parse_log_pytest_v2", "parse_log_matplotlib"] {
            let map = by_name(name).unwrap()(&log).unwrap();
            for (status, id, _) in &results {
                // A later line for the same id wins.
                let last = results.iter().rev().find(|(_, i, _)| i == id).map(|(s, _, _)| s);
                prop_assert_eq!(map.get(id.as_str()), last, "{} {} {}", name, status, id);
            }
        }
    }

    #[test]
    fn django_result_lines_give_their_statuses(
        results in proptest::collection::vec(("test_[a-z]{1,8} \\([a-z]{1,6}\\.[A-Z][a-z]{1,6}\\)", 0..4usize), 1..12),
    ) {
        let words = [" ... ok", " ... FAIL", " ... ERROR", " ... skipped 'why'"];
        let statuses = [TestStatus::Passed, TestStatus::Failed, TestStatus::Error, TestStatus::Skipped];
        let log: String = results.iter().map(|(name, w)| format!("{name}{}\n", words[*w])).collect();
        let map = parse_log_django(&log).unwrap();
        for (name, _) in &results {
            let last = results.iter().rev().find(|(n, _)| n == name).map(|(_, w)| &statuses[*w]);
            prop_assert_eq!(map.get(name.as_str()), last);
        }
    }

    #[test]
    fn sympy_result_lines_give_their_statuses(
        results in proptest::collection::vec(("test_[a-zA-Z0-9_]{1,12}", 0..3usize), 1..12),
    ) {
        let words = [" ok", " F", " E"];
        let statuses = [TestStatus::Passed, TestStatus::Failed, TestStatus::Error];
        let log: String = results.iter().map(|(name, w)| format!("{name}{}\n", words[*w])).collect();
        let map = parse_log_sympy(&log);
        for (name, _) in &results {
            let last = results.iter().rev().find(|(n, _)| n == name).map(|(_, w)| &statuses[*w]);
            prop_assert_eq!(map.get(name.as_str()), last);
        }
    }
}
