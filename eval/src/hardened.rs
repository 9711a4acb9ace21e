//! The hardened verdict: grading that a patch cannot forge, computed beside the official
//! one and never changing it. It feeds RL rewards.
//!
//! What it closes (each is a way to make the official 5.x grader say "resolved"):
//! - the eval script echoes the model patch (`git diff`) before the tests, so marker text
//!   inside the patch moves the official region into the patch: here the region comes
//!   only from markers carrying a random per-evaluation nonce;
//! - a conftest or test file that reports every test passed, and a file created at a path
//!   the test patch adds (it survives the test-patch apply): protected paths the patch
//!   touched are reverted before a second, hardened test run;
//! - output that claims passes while the test command failed: the exit status travels in
//!   the nonce marker and is cross-checked; no whole-log fallback.
//!
//! Known limit: code running during the tests could read the nonce from the eval script
//! through `/proc`; the script removes itself first, which stops a plain file read.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::grading::{grade, resolution, ResolvedStatus};
use crate::log::{normalize_newlines, START_TEST_OUTPUT};
use crate::official::TEST_EXIT_CODE_VAR;
use crate::parsers::Parser;
use crate::report::write_atomic;
use crate::status::TestStatus;

/// The file beside `report.json`.
pub const HARDENED_FILE: &str = "hardened.json";

/// Why the hardened verdict distrusts part of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The official start marker occurs before the harness's own, so the official region
    /// was taken from text the patch controls (e.g. the echoed diff).
    ForgedMarkers,
    /// The test command exited non-zero while the log reports no failure or error.
    ExitCodeContradiction,
    /// The harness's own region holds no test results.
    NoTestResults,
    /// The patch changed a test file (reverted for the hardened run).
    TestFileModified,
    /// The patch changed or added a `conftest.py` (reverted).
    ConftestModified,
    /// The patch changed test settings: pytest.ini, tox.ini, setup.cfg, pyproject.toml,
    /// .coveragerc (reverted).
    TestConfigModified,
    /// The patch created a file at a path the test patch adds (removed).
    TestPatchPathCreated,
}

/// `hardened.json`: the hardened verdict, the official one for comparison, the flags, and
/// why there is no official report when there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardened {
    pub instance_id: String,
    pub resolved: bool,
    /// `resolved` of `report.json` (false when 5.x writes no report).
    pub official_resolved: bool,
    pub flags: Vec<Flag>,
    /// Why the instance has no official report (patch failed, timeout, parser failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Hardened {
    /// Whether the two verdicts differ.
    pub fn disagrees(&self) -> bool {
        self.resolved != self.official_resolved
    }

    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| EvalError::BadReport {
            path: path.to_path_buf(),
            problem: e.into(),
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| EvalError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(path, format!("{text}\n").as_bytes())
    }
}

/// The file beside the run summary.
pub const HARDENED_SUMMARY_FILE: &str = "hardened_summary.json";

/// cwm-bench's own counts over a run's hardened verdicts, kept out of the official summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardenedSummary {
    /// Instances with a finished evaluation.
    pub evaluated_instances: usize,
    pub resolved_instances: usize,
    pub official_resolved_instances: usize,
    /// Instances where the official and hardened verdicts differ.
    pub disagreement_instances: usize,
    pub resolved_ids: Vec<String>,
    pub disagreement_ids: Vec<String>,
    /// Instance id → flags raised, for flagged instances only.
    pub flags: std::collections::BTreeMap<String, Vec<Flag>>,
}

impl HardenedSummary {
    /// Reads `eval_dir/<iid>/hardened.json` for each id that has one.
    pub fn from_eval_dir(ids: &[String], eval_dir: &Path) -> Result<Self, EvalError> {
        let mut summary = Self::default();
        for id in ids {
            let path = eval_dir.join(id).join(HARDENED_FILE);
            if !path.exists() {
                continue;
            }
            let verdict = Hardened::read(&path)?;
            summary.evaluated_instances += 1;
            summary.official_resolved_instances += usize::from(verdict.official_resolved);
            if verdict.resolved {
                summary.resolved_ids.push(id.clone());
            }
            if verdict.disagrees() {
                summary.disagreement_ids.push(id.clone());
            }
            if !verdict.flags.is_empty() {
                summary.flags.insert(id.clone(), verdict.flags);
            }
        }
        summary.resolved_instances = summary.resolved_ids.len();
        summary.disagreement_instances = summary.disagreement_ids.len();
        Ok(summary)
    }

    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| EvalError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(path, format!("{text}\n").as_bytes())
    }

    /// `hardened: resolved R/N; differs from the official verdict on D`.
    pub fn line(&self) -> String {
        format!(
            "hardened: resolved {}/{}; differs from the official verdict on {}",
            self.resolved_instances, self.evaluated_instances, self.disagreement_instances
        )
    }
}

/// A fresh random nonce for one evaluation's markers.
pub fn new_nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn start_marker(nonce: &str) -> String {
    format!(">>>>> cwm-bench start {nonce}")
}

fn end_marker(nonce: &str) -> String {
    format!(">>>>> cwm-bench end {nonce} exit=")
}

/// Adds the nonce markers to a script already rewritten by
/// [`crate::official::official_eval_script`]: the start marker right after the official one,
/// the end marker (with the saved exit status) right after `SWEBENCH_TEST_EXIT_CODE=$?`, and
/// a first line that deletes the script file. The official markers and exit-code line stay
/// as they are, so the official verdict reads the log exactly as 5.x would.
pub fn add_markers(script: &str, script_path: &str, nonce: &str) -> String {
    let mut out = Vec::new();
    for (i, line) in script.split('\n').enumerate() {
        out.push(line.to_string());
        if i == 1 {
            out.push(format!("rm -f {script_path}"));
        }
        if line.contains(START_TEST_OUTPUT) {
            out.push(format!(": '{}'", start_marker(nonce)));
        }
        if line == format!("{TEST_EXIT_CODE_VAR}=$?") {
            out.push(format!(": \"{}${TEST_EXIT_CODE_VAR}\"", end_marker(nonce)));
        }
    }
    out.join("\n")
}

/// The harness's own region of a log and the exit status recorded with it.
struct Region<'a> {
    text: &'a str,
    exit_code: Option<i64>,
}

fn region<'a>(log: &'a str, nonce: &str) -> Option<Region<'a>> {
    let start = start_marker(nonce);
    let end = end_marker(nonce);
    let after = &log[log.find(&start)? + start.len()..];
    // The xtrace line of the start marker ends with a quote; the region starts after it.
    let after = after.split_once('\n').map_or("", |(_, rest)| rest);
    let end_at = after.find(&end)?;
    let code: String = after[end_at + end.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    // Up to the start of the end marker's line.
    let text = &after[..after[..end_at].rfind('\n').map_or(0, |i| i + 1)];
    Some(Region {
        text,
        exit_code: code.parse().ok(),
    })
}

/// Grades one hardened test log. `flags` gathers what was seen; the result is the
/// hardened `resolved`.
pub fn grade_log(
    log: &str,
    nonce: &str,
    parser: Parser,
    instance: &cwm_datasets::Instance,
    eval_type: crate::grading::EvalType,
    flags: &mut Vec<Flag>,
) -> bool {
    let log = normalize_newlines(log);
    if let Some(own) = log.find(&start_marker(nonce)) {
        // Our marker follows the real official one; another before it came from the patch.
        if log[..own].matches(START_TEST_OUTPUT).count() > 1 {
            flags.push(Flag::ForgedMarkers);
        }
    }
    let Some(region) = region(&log, nonce) else {
        flags.push(Flag::NoTestResults);
        return false;
    };
    let Ok(map) = parser(region.text) else {
        flags.push(Flag::NoTestResults);
        return false;
    };
    if map.is_empty() {
        flags.push(Flag::NoTestResults);
        return false;
    }
    let failures = map
        .values()
        .any(|s| matches!(s, TestStatus::Failed | TestStatus::Error));
    if region.exit_code != Some(0) && !failures {
        flags.push(Flag::ExitCodeContradiction);
        return false;
    }
    let status = grade(
        &map,
        &instance.fail_to_pass,
        &instance.pass_to_pass,
        eval_type,
    );
    resolution(&status) == ResolvedStatus::Full
}

/// The flag for a path the model patch changed, if it is protected test infrastructure.
/// `test_patch_files` are the paths the test patch touches; `created` says whether the
/// model patch created the path.
pub fn protected_flag(
    path: &str,
    test_patch_new: &[String],
    test_patch_files: &[String],
) -> Option<Flag> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if test_patch_new.iter().any(|p| p == path) {
        return Some(Flag::TestPatchPathCreated);
    }
    if name == "conftest.py" {
        return Some(Flag::ConftestModified);
    }
    if matches!(
        name,
        "pytest.ini" | "tox.ini" | "setup.cfg" | "pyproject.toml" | ".coveragerc"
    ) {
        return Some(Flag::TestConfigModified);
    }
    let in_test_dir = path
        .split('/')
        .rev()
        .skip(1)
        .any(|d| matches!(d, "tests" | "test" | "testing"));
    let test_name = name.starts_with("test_") || name.ends_with("_test.py") || name == "tests.py";
    (test_patch_files.iter().any(|p| p == path) || in_test_dir || test_name)
        .then_some(Flag::TestFileModified)
}

/// The files a patch touches, as `(path, created)`: from its `--- a/X` / `+++ b/Y` header
/// pairs (`/dev/null` on the old side means created) and `rename from/to` lines.
pub fn patch_paths(patch: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut push = |path: &str, created: bool| {
        let path = path
            .split('\t')
            .next()
            .unwrap_or(path)
            .trim_end()
            .to_string();
        if !out.iter().any(|(p, _)| *p == path) {
            out.push((path, created));
        }
    };
    let lines: Vec<&str> = patch.lines().collect();
    for pair in lines.windows(2) {
        let (Some(old), Some(new)) = (pair[0].strip_prefix("--- "), pair[1].strip_prefix("+++ "))
        else {
            continue;
        };
        let created = old.starts_with("/dev/null");
        if let Some(path) = old.strip_prefix("a/") {
            push(path, false);
        }
        if let Some(path) = new.strip_prefix("b/") {
            push(path, created);
        }
    }
    for line in &lines {
        if let Some(path) = line
            .strip_prefix("rename to ")
            .or(line.strip_prefix("rename from "))
        {
            push(path, false);
        }
    }
    out
}

/// The shell command that puts protected `paths` back as the base commit has them
/// (removing those the base commit lacks).
pub fn revert_command(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| {
            let q = shell_quote(p);
            format!("git checkout HEAD -- {q} 2>/dev/null || rm -rf -- {q}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_carry_the_nonce_and_exit_status() {
        let script = crate::official::official_eval_script(
            "#!/bin/bash\nset -uxo pipefail\n: '>>>>> Start Test Output'\npytest\n: '>>>>> End Test Output'\n",
        );
        let hardened = add_markers(&script, "/eval.sh", "abc");
        assert!(
            hardened.contains("set -uxo pipefail\nrm -f /eval.sh\n"),
            "{hardened}"
        );
        assert!(hardened.contains(": '>>>>> Start Test Output'\n: '>>>>> cwm-bench start abc'\npytest\nSWEBENCH_TEST_EXIT_CODE=$?\n: \">>>>> cwm-bench end abc exit=$SWEBENCH_TEST_EXIT_CODE\"\n"), "{hardened}");
        let log = "+ : '>>>>> Start Test Output'\n+ : '>>>>> cwm-bench start abc'\n+ pytest\nPASSED a.py::t\n\
                   + SWEBENCH_TEST_EXIT_CODE=0\n+ : '>>>>> cwm-bench end abc exit=0'\n";
        let r = region(log, "abc").expect("region");
        assert_eq!(
            r.text,
            "+ pytest\nPASSED a.py::t\n+ SWEBENCH_TEST_EXIT_CODE=0\n"
        );
        assert_eq!(r.exit_code, Some(0));
        assert!(region(log, "abd").is_none());
    }

    #[test]
    fn protected_paths() {
        let new = vec!["tests/test_new.py".to_string()];
        let touched = vec!["pkg/tests/test_a.py".to_string()];
        assert_eq!(
            protected_flag("tests/test_new.py", &new, &touched),
            Some(Flag::TestPatchPathCreated)
        );
        assert_eq!(
            protected_flag("conftest.py", &new, &touched),
            Some(Flag::ConftestModified)
        );
        assert_eq!(
            protected_flag("a/b/conftest.py", &new, &touched),
            Some(Flag::ConftestModified)
        );
        assert_eq!(
            protected_flag("tox.ini", &new, &touched),
            Some(Flag::TestConfigModified)
        );
        assert_eq!(
            protected_flag("pkg/tests/helpers.py", &new, &touched),
            Some(Flag::TestFileModified)
        );
        assert_eq!(
            protected_flag("pkg/test_x.py", &new, &touched),
            Some(Flag::TestFileModified)
        );
        assert_eq!(protected_flag("pkg/core.py", &new, &touched), None);
        assert_eq!(protected_flag("pkg/testing_utils.py", &new, &touched), None);
        let paths = patch_paths("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n\
                                 diff --git a/n b/n\nnew file mode 100644\n--- /dev/null\n+++ b/n\t\n");
        assert_eq!(
            paths,
            vec![("x".to_string(), false), ("n".to_string(), true)]
        );
        assert_eq!(
            revert_command(&["a b'c".into()]),
            "git checkout HEAD -- 'a b'\\''c' 2>/dev/null || rm -rf -- 'a b'\\''c'"
        );
    }
}
