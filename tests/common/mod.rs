//! Helpers shared by the end-to-end tests of the `cwm-bench` binary (tests/run.rs,
//! tests/faults.rs): the binary, run arguments, waiting, and reading a run directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // not every test file uses every helper

pub mod replay;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn cwm_bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
}

pub fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("cwm-bench runs")
}

pub fn fixture_count() -> usize {
    cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl())
        .unwrap()
        .len()
}

/// Containers still carrying this run's label.
pub fn containers_of(run_id: &str) -> usize {
    let out = output(Command::new("docker").args([
        "ps",
        "-aq",
        "--filter",
        &format!("label=cwm-bench.run={run_id}"),
    ]));
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Run ids unique to this test process, so a leftover of an earlier test run never matches.
pub fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

pub fn run_args(runs: &Path, run_id: &str) -> Vec<String> {
    [
        "run",
        "--quiet",
        "--runs-dir",
        &runs.display().to_string(),
        "--run-id",
        run_id,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn pred_ids(run_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run_dir.join("preds.jsonl")).unwrap_or_default();
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
            value["instance_id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A replay script whose first turn sleeps, so an episode is in flight for a while.
pub fn slow_script(dir: &Path) -> PathBuf {
    let path = dir.join("slow.txt");
    std::fs::write(
        &path,
        "ok\n</think>\n<tool: bash>\nsleep 3 && echo slow\n</tool>\n---\nok\n</think>\n<tool: bash>\nprintf 'diff --git a/slow.txt b/slow.txt\\nnew file mode 100644\\n--- /dev/null\\n+++ b/slow.txt\\n@@ -0,0 +1 @@\\n+slow\\n' > /tmp/patch.diff\n</tool>\n---\nok\n</think>\n<tool: submit>\n/tmp/patch.diff\n</tool>\n---\nok\n</think>\ndone\n",
    )
    .unwrap();
    path
}

/// A replay script whose first turn sleeps `secs` in the container, then submits a patch
/// adding a file.
pub fn sleeping_script(dir: &Path, secs: u32) -> PathBuf {
    let path = dir.join(format!("sleep-{secs}.txt"));
    std::fs::write(
        &path,
        format!(
            "ok\n</think>\n<tool: bash>\nsleep {secs} && echo awake\n</tool>\n---\nok\n</think>\n<tool: bash>\n\
             printf 'diff --git a/slept.txt b/slept.txt\\nnew file mode 100644\\n--- /dev/null\\n+++ b/slept.txt\\n@@ -0,0 +1 @@\\n+slept\\n' > /tmp/patch.diff\n\
             </tool>\n---\nok\n</think>\n<tool: submit>\n/tmp/patch.diff\n</tool>\n---\nok\n</think>\ndone\n"
        ),
    )
    .unwrap();
    path
}

/// The python of the venv holding the official grader.
pub fn official_python() -> PathBuf {
    let venv = std::env::var_os("CWM_BENCH_SWEBENCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/cwm-bench/swebench-5.0.2")
        });
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "the official SWE-bench grader is not installed: no {} (run scripts/setup-tests, \
         which installs swebench==5.0.2 into {}; CWM_BENCH_SWEBENCH_VENV overrides the place)",
        python.display(),
        venv.display()
    );
    python
}

pub fn gold_patch(id: &str) -> String {
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    instances
        .into_iter()
        .find(|i| i.instance_id == id)
        .unwrap()
        .patch
}

/// A replay script that writes `patch` to /tmp/patch.diff with a quoted heredoc and submits
/// it (on an instance the patch does not fit, the submission is refused and the episode
/// ends without one).
pub fn submitting(dir: &Path, name: &str, patch: &str) -> PathBuf {
    // A line that is exactly `---` would end the turn; the script format escapes it.
    let body: String = patch
        .lines()
        .map(|l| {
            if l == "---" {
                "\\---".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "ok\n</think>\n<tool: bash>\ncat > /tmp/patch.diff <<'CWM_PATCH_END'\n{body}\nCWM_PATCH_END\n</tool>\n---\n\
             ok\n</think>\n<tool: submit>\n/tmp/patch.diff\n</tool>\n---\nok\n</think>\ndone\n"
        ),
    )
    .unwrap();
    path
}

/// The interpreters `scripts/setup-pythons` cached (CPython 3.5 to 3.10 from Ubuntu's
/// packages), as (version, path of the interpreter), oldest first. A tree without its
/// `.complete` marker is an interrupted download and is left out.
pub fn cached_pythons() -> Vec<(String, PathBuf)> {
    let root = python_cache();
    let mut found: Vec<(u32, String, PathBuf)> = std::fs::read_dir(&root)
        .map(|entries| entries.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|dir| dir.join(".complete").is_file())
        .filter_map(|dir| {
            let version = dir.file_name()?.to_str()?.to_string();
            let minor = version.strip_prefix("3.")?.parse().ok()?;
            let python = dir.join(format!("usr/bin/python{version}"));
            python.is_file().then_some((minor, version, python))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, v, p)| (v, p)).collect()
}

/// Where `scripts/setup-pythons` keeps its interpreters.
pub fn python_cache() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".cache/cwm-bench/pythons")
}

/// Runs `cmd` and fails the test, showing both streams, unless it succeeds; its stdout.
pub fn succeed(cmd: &mut Command) -> String {
    let out = output(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{:?} failed ({}):\n{stdout}\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
