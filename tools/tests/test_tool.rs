//! The `test` tool on the fixture tasks, one per log format they cover (pytest, Django's
//! runner, sympy's bin/test): a failing test is reported failing, a fixed one passing, and a
//! syntax error as an error with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::time::Duration;

use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, REPO_ROOT};
use cwm_parsers::TestRunner;
use cwm_tools::{execute, DockerWorkspace, ToolCall, ToolConfig, ToolName, Workspace};

const OUTPUT_LIMIT: usize = 480 * 1024;

fn fixture(name: &str) -> Instance {
    let id = format!("fixtures__{name}-1");
    cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl())
        .expect("fixtures load")
        .into_iter()
        .find(|i| i.instance_id == id)
        .expect("fixture exists")
}

async fn container(instance: &Instance) -> Container {
    let docker = cwm_env::connect().await.expect("Docker daemon");
    cwm_env::build_fixture_images(&docker)
        .await
        .expect("building the fixture images");
    let run = format!(
        "test-testtool-{}-{}",
        instance.instance_id,
        std::process::id()
    );
    let config = ContainerConfig::new(instance.image_name(), run, &instance.instance_id);
    Container::start(&docker, &config)
        .await
        .expect("starting a container")
}

/// Applies a patch to the working tree, as the model would with its own edits.
async fn apply(ws: &mut DockerWorkspace<'_>, patch: &str) {
    ws.write_file("/tmp/change.diff", patch.as_bytes())
        .await
        .expect("write patch");
    let out = ws
        .run("git apply /tmp/change.diff", Duration::from_secs(60))
        .await
        .expect("git apply");
    assert_eq!(out.exit_code, Some(0), "{out:?}");
}

async fn test(ws: &mut DockerWorkspace<'_>, config: &ToolConfig, targets: &str) -> String {
    let call = ToolCall::new(ToolName::Test, targets);
    let out = execute(ws, &call, config).await.expect("test tool");
    assert!(out.success, "{out:?}");
    out.output
}

/// Runs the three checks on one fixture: `failing` is a target (or a label) that the test
/// patch adds and the gold patch fixes; `broken` is a test file written with a syntax error
/// and `broken_target` its target.
async fn check(name: &str, failing: &str, broken: &str, broken_target: &str) {
    let instance = fixture(name);
    let container = container(&instance).await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .expect("session");
    let runner = TestRunner::for_instance(&instance).expect("a runner");
    let config = ToolConfig {
        command_timeout: Duration::from_secs(120),
        test_runner: Some(runner),
        ..ToolConfig::default()
    };
    apply(&mut ws, &instance.test_patch).await;
    let before = test(&mut ws, &config, failing).await;
    assert!(!before.contains(" 0 failed, 0 errors"), "{name}: {before}");
    assert!(
        before.contains("\nFAILED ") || before.contains("\nERROR "),
        "{name}: {before}"
    );

    apply(&mut ws, &instance.patch).await;
    let after = test(&mut ws, &config, failing).await;
    assert!(after.contains(" 0 failed, 0 errors"), "{name}: {after}");

    ws.write_file(broken, b"def test_x(:\n    pass\n")
        .await
        .expect("write broken test");
    let broken_out = test(&mut ws, &config, broken_target).await;
    assert!(broken_out.contains("\nERROR "), "{name}: {broken_out}");
    assert!(broken_out.contains("SyntaxError"), "{name}: {broken_out}");
    container.remove().await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytest_fixture() {
    check(
        "paginate",
        "tests/test_paginator.py",
        &format!("{REPO_ROOT}/tests/test_broken.py"),
        "tests/test_broken.py",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_fixture() {
    check(
        "daterange",
        "ranges_tests.tests",
        &format!("{REPO_ROOT}/tests/broken_tests/tests.py"),
        "broken_tests.tests",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sympy_fixture() {
    let rational = fixture("rational");
    let test_file = rational
        .test_patch
        .lines()
        .find_map(|l| l.strip_prefix("+++ b/"))
        .expect("the test patch names a file")
        .to_string();
    check(
        "rational",
        &test_file,
        &format!("{REPO_ROOT}/minisym/tests/test_broken.py"),
        "minisym/tests/test_broken.py",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_targets_it_runs_the_changed_test_files() {
    let instance = fixture("paginate");
    let container = container(&instance).await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .expect("session");
    let config = ToolConfig {
        command_timeout: Duration::from_secs(120),
        test_runner: TestRunner::for_instance(&instance),
        ..ToolConfig::default()
    };
    apply(&mut ws, &instance.test_patch).await;
    let out = test(&mut ws, &config, "").await;
    assert!(
        out.starts_with("$ pytest -rA 'tests/test_paginator.py'"),
        "{out}"
    );
    // The hidden test file is not named by the runner itself.
    assert!(!config
        .test_runner
        .as_ref()
        .is_some_and(|r| r.command.contains("test_paginator")));
    container.remove().await.expect("remove");
}
