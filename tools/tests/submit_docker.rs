//! submit against a real task container: what is recorded is exactly a patch that applies to
//! the base commit, and a patch that would not apply is refused while the model can fix it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::time::Duration;

use cwm_env::{Container, ContainerConfig, REPO_ROOT};
use cwm_tools::{execute, DockerWorkspace, ToolCall, ToolConfig, ToolName, ToolOutcome, Workspace};

const TIMEOUT: Duration = Duration::from_secs(60);
const OUTPUT_LIMIT: usize = 480 * 1024;
const IMAGE: &str = "cwm-bench/fixture.paginate:latest";
/// The fixture's bug fix, as a model would make it.
const FIX: &str = "sed -i 's|return total // per_page + 1|return (total + per_page - 1) // per_page|' pagekit/paginator.py";
/// A build artefact the image holds untracked: a copy of the package, not ignored.
const BUILD_COPY: &str = "mkdir -p build/lib && cp -r pagekit build/lib/";

/// A fresh fixture container after `setup` (what the image holds) and the episode's repo
/// hygiene, which records the repo as the episode finds it.
async fn container(test: &str, setup: &str) -> Container {
    let docker = cwm_env::connect().await.expect("Docker daemon");
    cwm_env::build_fixture_images(&docker)
        .await
        .expect("building the fixture images");
    let run = format!("test-submit-{test}-{}", std::process::id());
    let config = ContainerConfig::new(IMAGE, run, "test");
    let container = Container::start(&docker, &config)
        .await
        .expect("starting a container");
    let out = container
        .exec(&format!("cd {REPO_ROOT} && {setup}"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", out.output);
    cwm_env::prepare_repo(&container).await.unwrap();
    container
}

async fn sh(ws: &mut DockerWorkspace<'_>, command: &str) -> String {
    let out = ws.run(command, TIMEOUT).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{command}: {out:?}");
    out.output
}

async fn submit(ws: &mut DockerWorkspace<'_>, path: &str) -> ToolOutcome {
    let call = ToolCall::new(ToolName::Submit, path);
    execute(ws, &call, &ToolConfig::default()).await.unwrap()
}

/// Whether `patch` applies to the base commit (HEAD here), checked in a scratch index.
async fn applies_to_base(ws: &mut DockerWorkspace<'_>, patch: &str) -> bool {
    ws.write_file("/tmp/recorded.diff", patch.as_bytes())
        .await
        .unwrap();
    let out = ws
        .exec(
            "export GIT_INDEX_FILE=$(mktemp) && git read-tree HEAD && git apply --cached --check /tmp/recorded.diff",
            TIMEOUT,
        )
        .await
        .unwrap();
    out.exit_code == Some(0)
}

/// The model's repository state, which a submit must never change.
async fn repo_state(ws: &mut DockerWorkspace<'_>) -> String {
    sh(
        ws,
        "git status --porcelain --untracked-files=all; git ls-files -s | md5sum; git diff HEAD | md5sum",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_without_a_final_newline_is_recorded_with_one() {
    let container = container("newline", "true").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(
        &mut ws,
        &format!("{FIX} && git diff > /tmp/p.diff && truncate -s -1 /tmp/p.diff"),
    )
    .await;
    let out = submit(&mut ws, "/tmp/p.diff").await;
    assert!(out.success, "{out:?}");
    let patch = out.submission.expect("a submission");
    assert!(
        patch.ends_with("def paginate(items, number, per_page, allow_empty_first_page=True):\n"),
        "{patch:?}"
    );
    assert!(applies_to_base(&mut ws, &patch).await, "{patch}");
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_that_does_not_apply_to_the_base_commit_is_refused() {
    let container = container("noapply", "true").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    // The model commits its fix, edits on, and diffs against its own commit.
    sh(
        &mut ws,
        &format!(
            "{FIX} && git -c user.name=m -c user.email=m@x commit -qam wip \
             && sed -i 's|per_page must be positive|per_page must be at least 1|' pagekit/paginator.py \
             && git diff > /tmp/p.diff"
        ),
    )
    .await;
    let before = repo_state(&mut ws).await;
    let out = submit(&mut ws, "/tmp/p.diff").await;
    assert!(!out.success, "{out:?}");
    assert!(out.submission.is_none());
    assert!(
        out.output
            .starts_with("Submission failed: /tmp/p.diff does not apply to the base commit")
            && out.output.contains("pagekit/paginator.py"),
        "{}",
        out.output
    );
    assert_eq!(
        repo_state(&mut ws).await,
        before,
        "the check touched the repo"
    );

    // Against the base commit it applies: the resubmission is recorded.
    sh(&mut ws, "git diff HEAD~1 > /tmp/q.diff").await;
    let out = submit(&mut ws, "/tmp/q.diff").await;
    assert!(out.success, "{out:?}");
    assert!(out.submission.unwrap().contains("must be at least 1"));
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_that_recreates_a_build_artefact_of_the_image_is_refused() {
    let container = container("artefact", BUILD_COPY).await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(
        &mut ws,
        &format!("{FIX} && git add -A && git diff --cached > /tmp/p.diff"),
    )
    .await;
    let out = submit(&mut ws, "/tmp/p.diff").await;
    assert!(!out.success, "{out:?}");
    assert!(
        out.output
            .contains("build/lib/pagekit/paginator.py: already exists")
            && out.output.contains("untracked"),
        "{}",
        out.output
    );
    sh(&mut ws, "git reset -q && git diff > /tmp/q.diff").await;
    let out = submit(&mut ws, "/tmp/q.diff").await;
    assert!(out.success, "{out:?}");
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_files_are_carried_whole_or_left_out_with_a_note() {
    let container = container("binary", "true").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(
        &mut ws,
        &format!(
            "{FIX} && printf '\\000\\001\\377\\376' > data.bin && printf 'caf\\351\\n' > latin1.txt \
             && git add -N . && git diff > /tmp/plain.diff && git diff --binary > /tmp/binary.diff"
        ),
    )
    .await;

    // `git diff` shows the binary file only as "Binary files ... differ", which cannot be
    // applied; the Latin-1 file cannot be carried as text. Both are left out, with a note.
    let out = submit(&mut ws, "/tmp/plain.diff").await;
    assert!(out.success, "{out:?}");
    let patch = out.submission.clone().unwrap();
    assert!(!patch.contains("Binary files"), "{patch}");
    assert!(
        !patch.contains('\u{FFFD}') && !patch.contains("latin1.txt"),
        "{patch}"
    );
    assert!(patch.contains("+    return (total + per_page - 1) // per_page"));
    assert!(applies_to_base(&mut ws, &patch).await, "{patch}");
    assert!(
        out.output.contains("left out")
            && out.output.contains("data.bin")
            && out.output.contains("git diff --binary")
            && out.output.contains("latin1.txt"),
        "{}",
        out.output
    );

    // With --binary the binary file travels whole (base85).
    let out = submit(&mut ws, "/tmp/binary.diff").await;
    assert!(out.success, "{out:?}");
    let patch = out.submission.unwrap();
    assert!(patch.contains("GIT binary patch"), "{patch}");
    assert!(applies_to_base(&mut ws, &patch).await, "{patch}");
    container.remove().await.unwrap();
}
