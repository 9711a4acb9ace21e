//! Every test-log parser (each official `log_parser` name) on any log, and the test runner's
//! reading of an eval script. Only Django's parser may refuse a log.
#![no_main]

use cwm_datasets::Instance;
use cwm_parsers::{by_name, TestRunner};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 20] = [
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

/// The parsers that differ in code (the others are aliases of these).
const DISTINCT: [&str; 7] = [
    "parse_log_pytest",
    "parse_log_pytest_options",
    "parse_log_pytest_v2",
    "parse_log_django",
    "parse_log_sympy",
    "parse_log_matplotlib",
    "parse_log_seaborn",
];

fuzz_target!(|data: &[u8]| {
    let log = String::from_utf8_lossy(data);
    for name in DISTINCT {
        let Some(parser) = by_name(name) else {
            panic!("{name} is not registered");
        };
        if let Err(crash) = parser(&log) {
            assert_eq!(name, "parse_log_django");
            assert!(crash.line.starts_with("FAIL:") || crash.line.starts_with("ERROR:"));
        }
    }
    // The eval script and test patch an instance carries, cut from the same bytes.
    let (script, patch) = log.split_once('\0').unwrap_or((&log, ""));
    let name = NAMES[data.first().map_or(0, |b| usize::from(*b) % NAMES.len())];
    let instance: Result<Instance, _> = serde_json::from_value(serde_json::json!({
        "instance_id": "o__r-1",
        "repo": "o/r",
        "base_commit": "0",
        "eval_script": script,
        "test_patch": patch,
        "log_parser": name,
    }));
    if let Some(runner) = instance.ok().as_ref().and_then(TestRunner::for_instance) {
        let _ = runner.parse(patch);
        let _ = runner.target_for_file(patch);
        let _ = runner.is_test_file(patch);
    }
});
