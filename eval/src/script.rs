//! Building an eval script the way SWE-bench's `make_eval_script_list_py`
//! (`swebench/harness/test_spec/python.py`) does, for datasets that carry no `eval_script`.
//! The reference output is the `eval_script` column of the last SWE-bench Verified release.

use std::sync::LazyLock;

use blake2::{Blake2b512, Digest};
use cwm_datasets::Instance;
use cwm_env::{CONDA_ACTIVATE, CONDA_ENV, REPO_ROOT};
use regex::Regex;

use crate::error::EvalError;
use crate::log::{END_TEST_OUTPUT, START_TEST_OUTPUT};
use crate::specs::{pre_test_commands, spec_for_parser, verified_spec, RepoSpec};
use cwm_parsers::re;

/// Files the test patch touches that are not tests (upstream's `NON_TEST_EXTS`, including
/// its `csv` without a dot).
const NON_TEST_EXTS: [&str; 11] = [
    ".json", ".png", "csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml",
];

/// The heredoc delimiter around the test patch: a fixed string in `make_eval_script_list_py`
/// and in all 500 Verified scripts.
pub const HEREDOC_DELIMITER: &str = "EOF_114329324912";

static DIFF_HEADER: LazyLock<Regex> = LazyLock::new(|| re(r"diff --git a/.* b/(.*)"));

/// The instance's eval script: the dataset's own when it has one, else a generated one.
pub fn eval_script(instance: &Instance) -> Result<String, EvalError> {
    match instance.eval_script.as_deref() {
        Some(script) if !script.trim().is_empty() => Ok(script.to_string()),
        _ => build_eval_script(instance),
    }
}

/// Generates the eval script: reset the test files to the base commit (so a patch that
/// edits tests cannot help itself), apply the test patch, run the repo's test command on
/// the test files between the output markers, then reset the test files again.
pub fn build_eval_script(instance: &Instance) -> Result<String, EvalError> {
    let spec = repo_spec(instance)?;
    let mut lines = setup_lines(&spec, &instance.base_commit);
    lines.extend(test_lines(instance, &spec));
    Ok(lines.join("\n") + "\n")
}

/// Everything before the test files are touched: environment, a record of the repo state,
/// and the re-install that makes the patched package the one imported.
fn setup_lines(spec: &RepoSpec, base_commit: &str) -> Vec<String> {
    let activate = [
        format!("source {CONDA_ACTIVATE}"),
        format!("conda activate {CONDA_ENV}"),
    ];
    let mut lines = vec!["#!/bin/bash".to_string(), "set -uxo pipefail".into()];
    lines.extend(activate.iter().cloned());
    lines.push(format!("cd {REPO_ROOT}"));
    lines.extend(spec.eval_commands.iter().map(|c| c.to_string()));
    lines.extend([
        format!("git config --global --add safe.directory {REPO_ROOT}"),
        format!("cd {REPO_ROOT}"),
        "git status".into(),
        "git show".into(),
        format!("git -c core.fileMode=false diff {base_commit}"),
    ]);
    lines.extend(activate);
    lines.extend(spec.install.map(str::to_string));
    lines
}

/// Reset, test patch, per-instance pre-test lines, the marked test run, and reset again.
fn test_lines(instance: &Instance, spec: &RepoSpec) -> Vec<String> {
    let patch = &instance.test_patch;
    let reset = reset_command(&instance.base_commit, patch);
    let delimiter = heredoc_delimiter(patch);
    let directives = test_directives(patch, spec.django_directives);
    let test_cmd = std::iter::once(spec.test_cmd.to_string())
        .chain(directives)
        .collect::<Vec<_>>()
        .join(" ");
    let mut lines: Vec<String> = reset.iter().cloned().collect();
    lines.push(format!(
        "git apply -v - <<'{delimiter}'\n{patch}\n{delimiter}"
    ));
    let pre_test = pre_test_commands(&instance.instance_id);
    lines.extend(pre_test.iter().map(|c| c.to_string()));
    lines.extend([
        format!(": '{START_TEST_OUTPUT}'"),
        test_cmd,
        format!(": '{END_TEST_OUTPUT}'"),
    ]);
    lines.extend(reset);
    lines
}

fn repo_spec(instance: &Instance) -> Result<RepoSpec, EvalError> {
    if let Some(spec) = verified_spec(&instance.repo, &instance.version) {
        return Ok(spec);
    }
    instance
        .log_parser
        .as_deref()
        .and_then(spec_for_parser)
        .ok_or_else(|| EvalError::NoTestCommand {
            instance_id: instance.instance_id.clone(),
            repo: instance.repo.clone(),
        })
}

/// `get_test_directives`: the paths after `b/` in the patch's `diff --git` headers, minus
/// non-test files; for Django, as dotted module paths relative to `tests/`.
pub fn test_directives(test_patch: &str, django: bool) -> Vec<String> {
    patched_files(test_patch)
        .into_iter()
        .filter(|d| !NON_TEST_EXTS.iter().any(|ext| d.ends_with(ext)))
        .map(|d| if django { django_module(&d) } else { d })
        .collect()
}

fn django_module(path: &str) -> String {
    let path = path.strip_suffix(".py").unwrap_or(path);
    let path = path.strip_prefix("tests/").unwrap_or(path);
    path.replace('/', ".")
}

/// The command that resets the test files to the base commit, before the test patch goes in
/// and after the tests ran. Verified's scripts name every path the test patch touches (its
/// `diff --git` targets, new files included), so a patch that only adds files never yields a
/// bare `git checkout <base>`, which would detach HEAD and drop the image's setup commits
/// (SWE-bench issue #518). Git refuses the whole checkout when a path is missing at the base,
/// so with a new file listed the reset changes nothing; the script has no `set -e` and goes
/// on. `None` only for a patch without file headers.
pub fn reset_command(base_commit: &str, test_patch: &str) -> Option<String> {
    let files = patched_files(test_patch);
    (!files.is_empty()).then(|| format!("git checkout {base_commit} {}", files.join(" ")))
}

/// The post-image paths of a patch's `diff --git` headers, in patch order.
pub fn patched_files(patch: &str) -> Vec<String> {
    DIFF_HEADER
        .captures_iter(patch)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect()
}

/// The delimiter for a heredoc holding `content`: upstream's fixed [`HEREDOC_DELIMITER`]. Only
/// if the content contains that line does it fall back to upstream's
/// `generate_heredoc_delimiter` (`swebench/utils.py`): `EOF_` plus 12 hex digits of BLAKE2b,
/// rehashed until absent, since the fixed one would end the heredoc early.
pub fn heredoc_delimiter(content: &str) -> String {
    if !content.contains(HEREDOC_DELIMITER) {
        return HEREDOC_DELIMITER.to_string();
    }
    let hash = |bytes: &[u8]| hex::encode(Blake2b512::digest(bytes))[..12].to_string();
    let mut delimiter = format!("EOF_{}", hash(content.as_bytes()));
    while content.contains(&delimiter) {
        let salted = [content.as_bytes(), delimiter.as_bytes()].concat();
        delimiter = format!("EOF_{}", hash(&salted));
    }
    delimiter
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str =
        "diff --git a/tests/auth_tests/test_views.py b/tests/auth_tests/test_views.py
index 1..2 100644
--- a/tests/auth_tests/test_views.py
+++ b/tests/auth_tests/test_views.py
@@ -1,3 +1,3 @@
 x
--- a/not/a/header.py
+++ b/still/content.py
 y
diff --git a/tests/new_test.py b/tests/new_test.py
new file mode 100644
--- /dev/null
+++ b/tests/new_test.py
@@ -0,0 +1 @@
+z
diff --git a/tests/data/fixture.json b/tests/data/fixture.json
--- a/tests/data/fixture.json
+++ b/tests/data/fixture.json
@@ -1 +1 @@
-{}
+[]
";

    #[test]
    fn directives_and_patched_files() {
        assert_eq!(
            test_directives(PATCH, false),
            vec!["tests/auth_tests/test_views.py", "tests/new_test.py"]
        );
        assert_eq!(
            test_directives(PATCH, true),
            vec!["auth_tests.test_views", "new_test"]
        );
        assert_eq!(
            patched_files(PATCH),
            vec![
                "tests/auth_tests/test_views.py",
                "tests/new_test.py",
                "tests/data/fixture.json"
            ]
        );
    }

    const NEW_FILE_ONLY: &str = "diff --git a/tests/test_new.py b/tests/test_new.py
new file mode 100644
--- /dev/null
+++ b/tests/test_new.py
@@ -0,0 +1 @@
+def test_x(): pass
";

    fn instance(test_patch: &str) -> Instance {
        let row = serde_json::json!({
            "instance_id": "pytest-dev__pytest-1", "repo": "pytest-dev/pytest",
            "base_commit": "abc123", "version": "8.0", "test_patch": test_patch,
        });
        serde_json::from_value(row).expect("instance")
    }

    #[test]
    fn new_file_only_patch_resets_named_paths_not_the_whole_tree() {
        let expected = "git checkout abc123 tests/test_new.py";
        assert_eq!(
            reset_command("abc123", NEW_FILE_ONLY).as_deref(),
            Some(expected)
        );
        let script = build_eval_script(&instance(NEW_FILE_ONLY)).expect("script");
        let checkouts: Vec<&str> = script
            .lines()
            .filter(|l| l.starts_with("git checkout"))
            .collect();
        assert_eq!(checkouts, vec![expected, expected]);
        assert_eq!(reset_command("abc123", ""), None);
    }

    #[test]
    fn delimiter_is_upstreams_fixed_one() {
        assert_eq!(heredoc_delimiter(PATCH), "EOF_114329324912");
        let script = build_eval_script(&instance(PATCH)).expect("script");
        assert!(script.contains("git apply -v - <<'EOF_114329324912'\n"));
        assert!(script.contains("\nEOF_114329324912\n: '>>>>> Start Test Output'"));
    }

    #[test]
    fn delimiter_falls_back_to_a_hash_when_the_content_holds_the_fixed_one() {
        let content = format!("+echo {HEREDOC_DELIMITER}");
        let d = heredoc_delimiter(&content);
        assert_ne!(d, HEREDOC_DELIMITER);
        assert_eq!(d, heredoc_delimiter(&content));
        assert_eq!(d.len(), "EOF_".len() + 12);
        assert!(!content.contains(&d));
        let tricky = format!("{content} {d}");
        assert!(!tricky.contains(&heredoc_delimiter(&tricky)));
    }
}
