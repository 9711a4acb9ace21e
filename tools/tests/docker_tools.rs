//! edit and bash against a real task container: each failure users reported, as a regression.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::time::Duration;

use cwm_env::{Container, ContainerConfig, ShellConfig, REPO_ROOT};
use cwm_tools::{execute, DockerWorkspace, ToolCall, ToolConfig, ToolName, ToolOutcome, Workspace};

const TIMEOUT: Duration = Duration::from_secs(60);
const OUTPUT_LIMIT: usize = 480 * 1024;

/// A fresh fixture container; the fixture images are built once (cheap when up to date).
async fn container(test: &str) -> Container {
    let docker = cwm_env::connect().await.expect("Docker daemon");
    cwm_env::build_fixture_images(&docker)
        .await
        .expect("building the fixture images");
    let run = format!("test-tools-{test}-{}", std::process::id());
    let config = ContainerConfig::new("cwm-bench/fixture.paginate:latest", run, "test");
    Container::start(&docker, &config)
        .await
        .expect("starting a container")
}

async fn sh(ws: &mut DockerWorkspace<'_>, command: &str) -> String {
    let out = ws.run(command, TIMEOUT).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{command}: {out:?}");
    out.output
}

async fn edit(ws: &mut DockerWorkspace<'_>, body: &str) -> ToolOutcome {
    let call = ToolCall::new(ToolName::Edit, body);
    execute(ws, &call, &ToolConfig::default()).await.unwrap()
}

fn body(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_matches_whole_lines_only() {
    let container = container("wholelines").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(&mut ws, "printf 'x = 10\\ny = 2\\n' > w.py").await;
    let out = edit(&mut ws, &body("w.py", "x = 1", "x = 2")).await;
    assert!(!out.success, "`x = 1` must not match `x = 10`: {out:?}");
    assert!(out.output.contains("longer line"), "{}", out.output);
    assert_eq!(sh(&mut ws, "cat w.py").await, "x = 10\ny = 2\n");

    sh(&mut ws, "printf 'x = 10\\nx = 1\\n' > w.py").await;
    let out = edit(&mut ws, &body("w.py", "x = 1", "x = 2")).await;
    assert!(out.success, "{out:?}");
    assert_eq!(sh(&mut ws, "cat w.py").await, "x = 10\nx = 2\n");
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_files_are_edited_and_keep_their_endings() {
    let container = container("crlf").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(
        &mut ws,
        "printf 'a = 1\\r\\nb = 2\\r\\nc = 3\\r\\n' > crlf.py",
    )
    .await;
    let out = edit(
        &mut ws,
        &body("crlf.py", "a = 1\nb = 2", "a = 1\nb = 20\nb2 = 4"),
    )
    .await;
    assert!(out.success, "{out:?}");
    let bytes = ws.read_file(&format!("{REPO_ROOT}/crlf.py")).await.unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "a = 1\r\nb = 20\r\nb2 = 4\r\nc = 3\r\n"
    );
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_divider_line_is_rejected_as_ambiguous() {
    let container = container("divider").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    let rst = "Title\n=======\n\nText\n";
    sh(
        &mut ws,
        &format!("printf '{}' > doc.rst", rst.replace('\n', "\\n")),
    )
    .await;
    // An rST title underlined with exactly seven `=`: which `=======` is the divider?
    let out = edit(
        &mut ws,
        &body("doc.rst", "Title\n=======", "Better title\n============"),
    )
    .await;
    assert!(!out.success, "{out:?}");
    assert!(out.output.contains("ambiguous"), "{}", out.output);
    assert_eq!(sh(&mut ws, "cat doc.rst").await, rst);
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_through_a_symlink_write_the_target_and_keep_its_mode() {
    let container = container("symlink").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(
        &mut ws,
        &format!(
            "mkdir -p sub && printf 'x = 1\\n' > sub/real.py && chmod 750 sub/real.py \
             && ln -s sub/real.py rel.py && ln -s {REPO_ROOT}/rel.py chain.py"
        ),
    )
    .await;
    for (link, to) in [("rel.py", "x = 2"), ("chain.py", "x = 3")] {
        let from = sh(&mut ws, "cat sub/real.py").await;
        let out = edit(&mut ws, &body(link, from.trim_end(), to)).await;
        assert!(out.success, "{link}: {out:?}");
        assert_eq!(sh(&mut ws, "cat sub/real.py").await, format!("{to}\n"));
    }
    let kinds = sh(&mut ws, "stat -c '%n %F %a' sub/real.py rel.py chain.py").await;
    assert_eq!(
        kinds,
        "sub/real.py regular file 750\nrel.py symbolic link 777\nchain.py symbolic link 777\n"
    );
    assert_eq!(sh(&mut ws, "readlink rel.py").await, "sub/real.py\n");
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_after_an_edit_can_be_copied_into_the_next_search() {
    let container = container("context").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(
        &mut ws,
        "for i in $(seq 1 30); do echo \"    line_$i = $i\"; done > ctx.py",
    )
    .await;
    let out = edit(
        &mut ws,
        &body("ctx.py", "    line_15 = 15", "    line_15 = 150"),
    )
    .await;
    assert!(out.success, "{out:?}");
    // The message is a header line, the lines around the edit, and a closing line.
    let lines: Vec<&str> = out.output.lines().collect();
    assert!(lines.len() > 4, "{}", out.output);
    let shown = lines[1..lines.len() - 1].join("\n");
    assert!(shown.contains("line_15 = 150"), "{}", out.output);
    let out = edit(&mut ws, &body("ctx.py", &shown, "    pass")).await;
    assert!(
        out.success,
        "the shown context must match as it is: {out:?}"
    );
    // The seventeen lines shown (8 before, the edit, 8 after) are now one `pass`.
    assert_eq!(sh(&mut ws, "grep -c line_ ctx.py").await.trim(), "13");
    assert_eq!(sh(&mut ws, "sed -n 7p ctx.py").await, "    pass\n");
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_output_finish_and_show_head_and_tail() {
    let container = container("verbose").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    // About 10.9 MB, far past the 480 KB kept for the model.
    let out = ws.run("seq 1 1500000; echo done", TIMEOUT).await.unwrap();
    assert_eq!(
        out.exit_code,
        Some(0),
        "{:?}",
        (out.timed_out, out.truncated)
    );
    assert!(!out.restarted && out.truncated);
    assert!(out.output.starts_with("1\n2\n3\n"));
    assert!(out.output.ends_with("1499999\n1500000\ndone\n"));
    assert!(out.output.contains("\n[...]\n") && out.output.len() < OUTPUT_LIMIT + 100);
    // `yes` is still stopped by the kill threshold, long before the timeout.
    let out = ws.run("yes", TIMEOUT).await.unwrap();
    assert!(out.truncated && out.restarted && !out.timed_out, "{out:?}");
    assert_eq!(sh(&mut ws, "echo ok").await, "ok\n");
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_threshold_is_configurable() {
    let container = container("killat").await;
    let config = ShellConfig {
        output_limit_bytes: OUTPUT_LIMIT,
        kill_after_bytes: 1 << 20,
        ..ShellConfig::default()
    };
    let mut ws = DockerWorkspace::open_with_config(&container, config)
        .await
        .unwrap();
    let out = ws.run("seq 1 1500000", TIMEOUT).await.unwrap();
    assert!(out.exit_code.is_none() && out.restarted, "{out:?}");
    container.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_follow_the_sessions_directory_and_tilde_expands() {
    let container = container("cwd").await;
    let mut ws = DockerWorkspace::open(&container, OUTPUT_LIMIT, Vec::new())
        .await
        .unwrap();
    sh(&mut ws, "mkdir -p /tmp/work && cd /tmp/work").await;
    let create = ToolCall::new(ToolName::Create, "notes.txt\nhello");
    let out = execute(&mut ws, &create, &ToolConfig::default())
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert_eq!(sh(&mut ws, "cat /tmp/work/notes.txt").await, "hello");
    let out = edit(&mut ws, &body("notes.txt", "hello", "hello world")).await;
    assert!(out.success, "{out:?}");
    assert_eq!(sh(&mut ws, "cat /tmp/work/notes.txt").await, "hello world");
    // `~` is the session's $HOME.
    let create = ToolCall::new(ToolName::Create, "~/home-note.txt\nhi");
    let out = execute(&mut ws, &create, &ToolConfig::default())
        .await
        .unwrap();
    assert!(out.success, "{out:?}");
    assert_eq!(sh(&mut ws, "cat \"$HOME/home-note.txt\"").await, "hi");
    container.remove().await.unwrap();
}
