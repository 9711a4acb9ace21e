//! The test command of an instance, for running its own tests during an episode (the
//! agent's `test` tool): the runner and flags the instance's eval script uses, without the
//! targets the hidden test patch adds.

use cwm_datasets::Instance;
use serde::{Deserialize, Serialize};

use crate::{by_name, name_for_repo, ParserCrash, StatusMap};

/// The marker line after which SWE-bench eval scripts run their test command.
const START_TEST_OUTPUT: &str = ">>>>> Start Test Output";

/// How to run an instance's tests and read their output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRunner {
    /// The runner and its flags, e.g. `pytest -rA` or
    /// `./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1`; run in the
    /// repository root with the targets appended.
    pub command: String,
    /// An official `log_parser` name (`parse_log_pytest`, ...).
    pub parser: String,
    /// Targets are Django test labels (`app.tests`) rather than file paths.
    pub django_labels: bool,
}

impl TestRunner {
    /// The runner for `instance`: the command of its eval script minus the test patch's
    /// files (never revealed to the model), else the plain runner for its log format.
    /// `None` when no log parser is known for it.
    pub fn for_instance(instance: &Instance) -> Option<Self> {
        let parser = instance
            .log_parser
            .clone()
            .filter(|p| by_name(p).is_some())
            .or_else(|| name_for_repo(&instance.repo).map(str::to_string))?;
        let django_labels = parser == "parse_log_django";
        let command = instance
            .eval_script
            .as_deref()
            .and_then(script_test_line)
            .map(|line| without_hidden_targets(line, &instance.test_patch))
            .unwrap_or_else(|| default_command(&parser).to_string());
        Some(Self {
            command,
            parser,
            django_labels,
        })
    }

    /// Parses the runner's output (the whole output: it has no markers).
    pub fn parse(&self, output: &str) -> Result<StatusMap, ParserCrash> {
        match by_name(&self.parser) {
            Some(parser) => parser(output),
            None => Ok(StatusMap::new()),
        }
    }

    /// A changed file as a target: Django's runner takes module labels relative to `tests/`.
    pub fn target_for_file(&self, path: &str) -> String {
        if !self.django_labels {
            return path.to_string();
        }
        let path = path.strip_suffix(".py").unwrap_or(path);
        path.strip_prefix("tests/")
            .unwrap_or(path)
            .replace('/', ".")
    }

    /// Whether a changed file looks like a test file this runner can take as a target.
    pub fn is_test_file(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        let in_tests = path.split('/').any(|d| d == "tests" || d == "testing");
        name.ends_with(".py")
            && (name.starts_with("test") || name.ends_with("_test.py") || in_tests)
    }
}

/// The first command line after the start marker.
fn script_test_line(script: &str) -> Option<&str> {
    let mut lines = script
        .lines()
        .skip_while(|l| !l.contains(START_TEST_OUTPUT));
    lines.next()?;
    lines.map(str::trim).find(|l| !l.is_empty())
}

/// The test command with every word naming a file of the test patch (or its Django label)
/// removed.
fn without_hidden_targets(line: &str, test_patch: &str) -> String {
    let hidden: Vec<String> = test_patch
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .filter_map(|l| l.split_once(" b/").map(|(_, b)| b.to_string()))
        .flat_map(|path| {
            let stem = path.strip_suffix(".py").unwrap_or(&path).to_string();
            let label = stem
                .strip_prefix("tests/")
                .unwrap_or(&stem)
                .replace('/', ".");
            [path, label]
        })
        .collect();
    line.split_whitespace()
        .filter(|word| !hidden.iter().any(|h| h == word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn default_command(parser: &str) -> &'static str {
    match parser {
        "parse_log_django" => "./tests/runtests.py --verbosity 2",
        "parse_log_sympy" => "bin/test -C --verbose",
        _ => "pytest -rA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_targets_are_removed_from_the_script_command() {
        let patch =
            "diff --git a/tests/auth_tests/test_views.py b/tests/auth_tests/test_views.py\n";
        assert_eq!(
            without_hidden_targets(
                "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 auth_tests.test_views",
                patch
            ),
            "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1"
        );
        let patch = "diff --git a/astropy/io/tests/test_a.py b/astropy/io/tests/test_a.py\n";
        assert_eq!(
            without_hidden_targets("pytest -rA astropy/io/tests/test_a.py", patch),
            "pytest -rA"
        );
        let script = "git apply\n: '>>>>> Start Test Output'\nbin/test -C --verbose sympy/core/tests/test_x.py\n";
        assert_eq!(
            script_test_line(script),
            Some("bin/test -C --verbose sympy/core/tests/test_x.py")
        );
    }

    #[test]
    fn django_targets_are_labels() {
        let runner = TestRunner {
            command: String::new(),
            parser: "parse_log_django".into(),
            django_labels: true,
        };
        assert_eq!(
            runner.target_for_file("tests/admin_views/tests.py"),
            "admin_views.tests"
        );
        assert!(runner.is_test_file("tests/admin_views/tests.py"));
        assert!(!runner.is_test_file("django/db/models/query.py"));
    }
}
