//! Generated eval scripts against the ones the datasets ship (no Docker needed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::PathBuf;

use cwm_datasets::Instance;
use cwm_eval::script::build_eval_script;

fn shared_dataset(name: &str) -> Option<PathBuf> {
    let path = cwm_datasets::fixtures::shared_datasets_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing; set CWM_BENCH_DATASETS",
        path.display()
    );
    Some(path)
}

fn without_script(instance: &Instance) -> Instance {
    Instance {
        eval_script: None,
        ..instance.clone()
    }
}

/// First differing line, for a readable failure.
fn first_diff(expected: &str, got: &str) -> String {
    let pair = expected
        .lines()
        .zip(got.lines())
        .find(|(e, g)| e != g)
        .unwrap_or(("<length differs>", ""));
    format!("expected {:?}\n     got {:?}", pair.0, pair.1)
}

#[test]
fn generated_scripts_equal_verified_eval_scripts() {
    let Some(path) = shared_dataset("swe-bench-verified.jsonl") else {
        eprintln!("SWE-bench Verified not found beside the project; skipping");
        return;
    };
    let instances = cwm_datasets::load(&path).expect("load Verified");
    assert_eq!(instances.len(), 500);
    let mut mismatches = Vec::new();
    for instance in &instances {
        let expected = instance
            .eval_script
            .clone()
            .expect("Verified ships eval scripts");
        let got = build_eval_script(&without_script(instance)).expect("known repo");
        if got != expected {
            mismatches.push(format!(
                "{}: {}",
                instance.instance_id,
                first_diff(&expected, &got)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of 500 differ, e.g.\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
}

#[test]
fn verified_log_parsers_match_the_repo_table() {
    let Some(path) = shared_dataset("swe-bench-verified.jsonl") else {
        return;
    };
    for instance in cwm_datasets::load(&path).expect("load Verified") {
        let name = instance.log_parser.as_deref().expect("log_parser");
        assert!(cwm_eval::parsers::by_name(name).is_some(), "{name}");
        assert_eq!(
            cwm_eval::parsers::name_for_repo(&instance.repo),
            Some(name),
            "{}",
            instance.instance_id
        );
    }
}

#[test]
fn generated_fixture_scripts_equal_the_shipped_ones_but_for_new_files_in_the_reset() {
    let instances =
        cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).expect("load fixtures");
    for instance in &instances {
        let expected = instance
            .eval_script
            .clone()
            .expect("fixtures ship eval scripts");
        let got = build_eval_script(&without_script(instance)).expect("fixture parser known");
        // The fixtures were made before the reset named new files too.
        let got = drop_from_resets(&got, &new_files(&instance.test_patch));
        // The fixtures may list test files in another order; the command is the same.
        let (got, expected) = (sort_test_command(&got), sort_test_command(&expected));
        assert_eq!(
            got,
            expected,
            "{}: {}",
            instance.instance_id,
            first_diff(&expected, &got)
        );
    }
}

/// The paths a patch creates: a `diff --git` header followed by `new file mode`.
fn new_files(patch: &str) -> Vec<String> {
    let mut target = None;
    let mut created = Vec::new();
    for line in patch.lines() {
        if let Some((_, b)) = line
            .strip_prefix("diff --git a/")
            .and_then(|h| h.split_once(" b/"))
        {
            target = Some(b.to_string());
        } else if line.starts_with("new file mode") {
            created.extend(target.take());
        }
    }
    created
}

/// The script with `paths` taken out of its `git checkout` lines.
fn drop_from_resets(script: &str, paths: &[String]) -> String {
    let lines = script.split('\n').map(|line| {
        if !line.starts_with("git checkout ") {
            return line.to_string();
        }
        let words = line.split(' ').filter(|w| !paths.iter().any(|p| p == w));
        words.collect::<Vec<_>>().join(" ")
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// The script with the words of its test command (the line after the start marker) sorted.
fn sort_test_command(script: &str) -> String {
    let mut lines: Vec<String> = script.lines().map(str::to_string).collect();
    if let Some(i) = lines
        .iter()
        .position(|l| l.contains(">>>>> Start Test Output"))
    {
        if let Some(cmd) = lines.get_mut(i + 1) {
            let mut words: Vec<&str> = cmd.split(' ').collect();
            words.sort_unstable();
            *cmd = words.join(" ");
        }
    }
    lines.join("\n")
}
