//! Evaluation against the real Docker daemon and the fixture images.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use cwm_datasets::Instance;
use cwm_eval::{evaluate, EvalOptions, Evaluation, Flag, InstanceReport, ResolvedStatus};
use futures_util::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// Builds the fixture images once per test binary (cached by the env crate across runs).
fn fixture_images() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        runtime().block_on(async {
            let docker = cwm_env::connect().await.map_err(|e| e.to_string())?;
            cwm_env::build_fixture_images(&docker)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    });
    if let Err(err) = ready {
        panic!("fixture images unavailable: {err}");
    }
}

fn fixtures() -> Vec<Instance> {
    cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).expect("fixtures load")
}

fn fixture(name: &str) -> Instance {
    let id = format!("fixtures__{name}-1");
    fixtures()
        .into_iter()
        .find(|i| i.instance_id == id)
        .expect("fixture exists")
}

fn fixture_file(name: &str, file: &str) -> String {
    let path = cwm_datasets::fixtures::fixtures_dir().join(name).join(file);
    std::fs::read_to_string(path).expect("fixture patch")
}

fn unique_run_id(tag: &str) -> String {
    format!("evaltest-{tag}-{}", std::process::id())
}

/// Evaluates each `(instance, patch)` with two at a time; results in input order.
fn evaluate_all(
    jobs: Vec<(Instance, Option<String>)>,
    opts: &EvalOptions,
    dir: &Path,
) -> Vec<Evaluation> {
    fixture_images();
    runtime().block_on(async {
        let docker = cwm_env::connect().await.expect("docker");
        let docker = &docker;
        let futures = jobs.iter().map(|(instance, patch)| async move {
            let out = dir.join(&instance.instance_id);
            evaluate(docker, instance, patch.as_deref(), opts, &out)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", instance.instance_id))
        });
        futures_util::stream::iter(futures)
            .buffered(2)
            .collect::<Vec<_>>()
            .await
    })
}

fn leftover_containers(run_id: &str) -> String {
    let out = std::process::Command::new("docker")
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

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn gold_resolves_every_fixture() {
    let dir = tempdir();
    let opts = EvalOptions::new(unique_run_id("gold"));
    let jobs = fixtures().into_iter().map(|i| {
        let patch = i.patch.clone();
        (i, Some(patch))
    });
    let evaluations = evaluate_all(jobs.collect(), &opts, dir.path());
    assert_eq!(evaluations.len(), 9);
    for evaluation in &evaluations {
        let report = official(evaluation);
        assert!(report.resolved, "{report:?}");
        assert_eq!(report.resolution(), ResolvedStatus::Full);
        // Gold is resolved under the hardened verdict too, with nothing flagged.
        assert!(evaluation.hardened.resolved, "{evaluation:?}");
        assert!(evaluation.hardened.flags.is_empty(), "{evaluation:?}");
        let files = dir.path().join(&report.instance_id);
        for file in [
            "patch.diff",
            "eval.sh",
            "run_instance.log",
            "test_output.txt",
            "report.json",
            "hardened.json",
        ] {
            assert!(
                files.join(file).is_file(),
                "{} lacks {file}",
                report.instance_id
            );
        }
    }
    assert_eq!(leftover_containers(&opts.run_id), "");
}

/// The official report, which the test expects to exist.
fn official(evaluation: &Evaluation) -> &InstanceReport {
    evaluation
        .report
        .as_ref()
        .unwrap_or_else(|| panic!("no report.json: {evaluation:?}"))
}

/// A patch that changes nothing the tests see: the base commit's tests run.
fn noop_patch() -> String {
    "diff --git a/NOTES.txt b/NOTES.txt\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES.txt\n\
     @@ -0,0 +1 @@\n+nothing to see\n"
        .to_string()
}

#[test]
fn empty_patches_are_not_run_like_upstream() {
    let dir = tempdir();
    let opts = EvalOptions::new(unique_run_id("empty"));
    let jobs = vec![
        (fixture("paginate"), Some(String::new())),
        (fixture("slugify"), None),
        (fixture("semver"), Some(" \n\t\n".to_string())),
    ];
    let evaluations = evaluate_all(jobs, &opts, dir.path());
    for evaluation in &evaluations {
        assert!(evaluation.report.is_none(), "{evaluation:?}");
        assert!(!evaluation.hardened.resolved);
        assert!(evaluation.hardened.error.is_some());
    }
    assert!(!dir
        .path()
        .join("fixtures__paginate-1/test_output.txt")
        .exists());
    let whitespace = evaluations[2].hardened.error.as_deref().unwrap_or("");
    assert!(whitespace.starts_with("patch failed"), "{whitespace}");
    assert_eq!(leftover_containers(&opts.run_id), "");
}

#[test]
fn base_commit_resolves_none_and_the_hanging_fixture_times_out() {
    let dir = tempdir();
    let mut opts = EvalOptions::new(unique_run_id("base"));
    opts.timeout = Duration::from_secs(15);
    let jobs = fixtures().into_iter().map(|i| (i, Some(noop_patch())));
    let evaluations = evaluate_all(jobs.collect(), &opts, dir.path());
    for evaluation in &evaluations {
        assert!(!evaluation.resolved(), "{evaluation:?}");
        assert!(!evaluation.hardened.resolved, "{evaluation:?}");
    }
    let retry = evaluations
        .iter()
        .find(|e| e.hardened.instance_id == "fixtures__retry-1")
        .expect("retry evaluated");
    // 5.x writes no report for a timeout.
    assert!(retry.report.is_none());
    let error = retry
        .hardened
        .error
        .as_deref()
        .expect("timeout recorded as an error");
    assert!(error.contains("timed out after 15 s"), "{error}");
    let log = std::fs::read_to_string(dir.path().join("fixtures__retry-1/test_output.txt"))
        .expect("partial log kept");
    assert!(log.contains(">>>>> Start Test Output"), "{log}");
    assert!(
        log.ends_with("Timeout error: 15 seconds exceeded."),
        "{log}"
    );
    // Every other fixture ran to the end and was graded.
    for evaluation in evaluations
        .iter()
        .filter(|e| e.hardened.instance_id != "fixtures__retry-1")
    {
        assert!(evaluation.hardened.error.is_none(), "{evaluation:?}");
        assert!(
            official(evaluation).tests_status.is_some(),
            "{evaluation:?}"
        );
    }
    assert_eq!(leftover_containers(&opts.run_id), "");
}

fn evaluate_one(
    instance: Instance,
    patch: &str,
    tag: &str,
) -> (Evaluation, PathBuf, tempfile::TempDir) {
    let dir = tempdir();
    let opts = EvalOptions::new(unique_run_id(tag));
    let id = instance.instance_id.clone();
    let mut reports = evaluate_all(vec![(instance, Some(patch.to_string()))], &opts, dir.path());
    assert_eq!(leftover_containers(&opts.run_id), "");
    let out = dir.path().join(id);
    (reports.remove(0), out, dir)
}

#[test]
fn careless_patch_breaks_pass_to_pass_and_is_graded_no() {
    let (evaluation, _, _dir) = evaluate_one(
        fixture("paginate"),
        &fixture_file("paginate", "careless.patch"),
        "careless",
    );
    let report = official(&evaluation);
    let status = report.tests_status.clone().expect("graded");
    assert!(status.fail_to_pass.failure.is_empty(), "{status:?}");
    assert!(!status.pass_to_pass.failure.is_empty(), "{status:?}");
    assert_eq!(report.resolution(), ResolvedStatus::No);
    assert!(!report.resolved);
}

#[test]
fn half_fix_is_graded_partial() {
    let (evaluation, _, _dir) = evaluate_one(
        fixture("slugify"),
        &fixture_file("slugify", "half.patch"),
        "half",
    );
    let report = official(&evaluation);
    assert_eq!(report.resolution(), ResolvedStatus::Partial, "{report:?}");
    let status = report.tests_status.clone().expect("graded");
    assert_eq!(status.fail_to_pass.failure.len(), 4, "{status:?}");
    assert!(!report.resolved);
}

#[test]
fn garbage_patch_is_reported_as_patch_failed() {
    let garbage = "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1,2 +1,2 @@\n-old line\n+new line\n context\n";
    let (evaluation, out, _dir) = evaluate_one(fixture("paginate"), garbage, "garbage");
    // 5.x writes no report for a patch that does not apply.
    assert!(evaluation.report.is_none(), "{evaluation:?}");
    assert!(!out.join("report.json").exists());
    assert!(!evaluation.hardened.resolved);
    assert!(
        evaluation
            .hardened
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("patch failed"),
        "{evaluation:?}"
    );
    let log = std::fs::read_to_string(out.join("run_instance.log")).expect("apply log");
    assert!(
        log.contains("patch --batch --forward --fuzz=5 -p1 -i"),
        "{log}"
    );
    assert!(log.contains("git apply --check --reverse"), "{log}");
    assert!(!out.join("test_output.txt").exists());
}

#[test]
fn patch_that_edits_tests_cannot_help_itself() {
    // The "fix" is appended to the existing test file (it monkeypatches the library from
    // the tests). The eval script checks test files out at the base commit before applying
    // the test patch, so it is gone by the time the tests run.
    let cheat = include_str!("data/daterange_cheat.patch");
    let (evaluation, _, _dir) = evaluate_one(fixture("daterange"), cheat, "cheat");
    let report = official(&evaluation);
    assert!(report.patch_successfully_applied, "{report:?}");
    assert!(!report.resolved, "{report:?}");
    assert!(!evaluation.hardened.resolved, "{evaluation:?}");

    // Control: without that reset, the same patch would have resolved the task.
    let mut unguarded = fixture("daterange");
    let script = unguarded.eval_script.clone().expect("fixture script");
    let reset = format!(
        "git checkout {} tests/ranges_tests/tests.py\n",
        unguarded.base_commit
    );
    unguarded.eval_script = Some(script.replacen(&reset, "", 1));
    let (control, _, _dir) = evaluate_one(unguarded, cheat, "cheat-control");
    assert!(control.resolved(), "{control:?}");
    // The hardened run reverts the test file the patch touched, so it is not fooled.
    assert!(!control.hardened.resolved, "{control:?}");
    assert!(control.hardened.flags.contains(&Flag::TestFileModified));
}

#[test]
fn generated_eval_scripts_grade_gold_like_the_shipped_ones() {
    let dir = tempdir();
    let opts = EvalOptions::new(unique_run_id("generated"));
    let jobs = ["daterange", "rational", "slugify"].iter().map(|name| {
        let mut instance = fixture(name);
        instance.eval_script = None;
        let patch = instance.patch.clone();
        (instance, Some(patch))
    });
    for evaluation in evaluate_all(jobs.collect(), &opts, dir.path()) {
        assert!(evaluation.resolved(), "{evaluation:?}");
    }
}

#[test]
fn network_off_tells_pip_to_stay_offline() {
    let dir = tempdir();
    let mut opts = EvalOptions::new(unique_run_id("nonet"));
    opts.network = false;
    let mut instance = fixture("paginate");
    instance.eval_script = Some(
        "#!/bin/bash\necho \"pip_no_index=$PIP_NO_INDEX isolation=$PIP_NO_BUILD_ISOLATION\"\n\
         ls /sys/class/net\n: '>>>>> Start Test Output'\n: '>>>>> End Test Output'\n"
            .to_string(),
    );
    evaluate_all(vec![(instance, Some(noop_patch()))], &opts, dir.path());
    let log = std::fs::read_to_string(dir.path().join("fixtures__paginate-1/test_output.txt"))
        .expect("log");
    assert!(log.contains("pip_no_index=1 isolation=0"), "{log}");
    assert!(!log.contains("eth0"), "{log}");
}

/// Adds `text` (with `\r` line breaks, which the grader reads as newlines but `git diff`
/// prints inside one diff line) to the fixture's README, so the eval script's `git diff`
/// echoes it before the tests.
fn forged_log_patch(instance: &Instance) -> String {
    let mut forged = String::from(">>>>> Start Test Output");
    for id in instance.fail_to_pass.iter().chain(&instance.pass_to_pass) {
        forged.push_str(&format!("\rPASSED {id}"));
    }
    forged.push_str("\r>>>>> End Test Output\r>>>>> Test Exit Code: 0");
    let readme = fixture_file("paginate", "repo/README.md");
    let last = readme.lines().last().unwrap_or_default();
    let count = readme.lines().count();
    format!(
        "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n\
         @@ -{count},1 +{count},2 @@\n {last}\n+{forged}\n"
    )
}

#[test]
fn forged_markers_in_the_echoed_diff_fool_only_the_official_verdict() {
    let instance = fixture("paginate");
    let patch = forged_log_patch(&instance);
    let (evaluation, _, _dir) = evaluate_one(instance, &patch, "forged-markers");
    assert!(evaluation.resolved(), "5.x is fooled: {evaluation:?}");
    assert!(!evaluation.hardened.resolved, "{evaluation:?}");
    assert!(
        evaluation.hardened.flags.contains(&Flag::ForgedMarkers),
        "{evaluation:?}"
    );
}

#[test]
fn conftest_that_passes_everything_fools_only_the_official_verdict() {
    let conftest = fixture_file("paginate", "repo/conftest.py");
    let count = conftest.lines().count();
    let last = conftest.lines().last().unwrap_or_default();
    let hook = [
        "",
        "import pytest as _pytest",
        "",
        "",
        "@_pytest.hookimpl(hookwrapper=True)",
        "def pytest_runtest_makereport(item, call):",
        "    outcome = yield",
        "    outcome.get_result().outcome = \"passed\"",
    ];
    let added: String = hook.iter().map(|l| format!("+{l}\n")).collect();
    let patch = format!(
        "diff --git a/conftest.py b/conftest.py\n--- a/conftest.py\n+++ b/conftest.py\n\
         @@ -{count},1 +{count},{} @@\n {last}\n{added}",
        hook.len() + 1
    );
    let (evaluation, out, _dir) = evaluate_one(fixture("paginate"), &patch, "conftest");
    assert!(evaluation.resolved(), "5.x is fooled: {evaluation:?}");
    assert!(!evaluation.hardened.resolved, "{evaluation:?}");
    assert!(
        evaluation.hardened.flags.contains(&Flag::ConftestModified),
        "{evaluation:?}"
    );
    assert!(out.join("test_output.hardened.txt").is_file());
}

#[test]
fn file_at_a_test_patch_path_fools_only_the_official_verdict() {
    // slugify's test patch creates tests/test_transliteration.py (kept alone here, with a
    // generated eval script). The model creates that file first, with every assertion made
    // vacuous; the real test patch then fails to apply and the model's copy runs.
    let mut instance = fixture("slugify");
    let start = instance
        .test_patch
        .find("diff --git a/tests/test_transliteration.py")
        .expect("the test patch adds the file");
    instance.test_patch = instance.test_patch[start..].to_string();
    // The generated script runs only the files the test patch touches.
    instance
        .pass_to_pass
        .retain(|id| id.starts_with("tests/test_transliteration.py"));
    instance.eval_script = None;
    let patch = instance
        .test_patch
        .replace("+    assert ", "+    assert True or ");
    let (evaluation, _, _dir) = evaluate_one(instance, &patch, "test-path");
    assert!(evaluation.resolved(), "5.x is fooled: {evaluation:?}");
    assert!(!evaluation.hardened.resolved, "{evaluation:?}");
    assert!(
        evaluation
            .hardened
            .flags
            .contains(&Flag::TestPatchPathCreated),
        "{evaluation:?}"
    );
}

#[test]
fn hunk_already_in_the_image_is_skipped_not_reversed() {
    // The gold fix plus a README hunk whose change the image already has, with no `index`
    // lines (so `--3way` cannot help): every `git apply` fails; `patch --forward` applies
    // the fix and skips the README hunk, and the already-applied check accepts the result.
    // Without `--forward`, `patch --batch` would silently take the README hunk back out.
    let instance = fixture("paginate");
    let gold: String = instance
        .patch
        .lines()
        .filter(|l| !l.starts_with("index "))
        .map(|l| format!("{l}\n"))
        .collect();
    let readme = "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n\
                  @@ -1,2 +1,3 @@\n # pagekit\n+\n Tiny helpers to split a sequence into numbered pages.\n";
    let patch = format!("{gold}{readme}");
    let (evaluation, out, _dir) = evaluate_one(instance, &patch, "forward");
    assert!(evaluation.resolved(), "{evaluation:?}");
    let log = std::fs::read_to_string(out.join("run_instance.log")).expect("apply log");
    assert!(log.contains("verified already applied"), "{log}");
}
