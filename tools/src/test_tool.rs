//! The `test` tool: runs the repository's own test runner (as the instance's eval script
//! runs it) on the targets the model names, in the live session, and answers with a compact
//! summary read by the same log parser as grading. Only the working tree's tests run: the
//! hidden tests of the test patch are never named or revealed.

use cwm_parsers::{StatusMap, TestRunner, TestStatus};

use minijinja::context;

use crate::exec::ToolOutcome;
use crate::profile::Profile;
use crate::workspace::{shell_quote, EnvFailure, Workspace, REPO_ROOT};
use crate::ToolConfig;

/// Failing tests listed with details; the rest are counted.
const MAX_FAILURES_SHOWN: usize = 20;
/// Lines of detail per failing test.
const DETAIL_LINES: usize = 6;
/// Lines of raw output at the end of the summary.
const TAIL_LINES: usize = 30;
/// Bound on the `git status` that finds the changed test files.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the tests named in `body` (one target per line: a file, a test id, or a Django test
/// label); with no targets, the test files the model changed, else the runner's default.
pub async fn run_tests(
    ws: &mut dyn Workspace,
    body: &str,
    config: &ToolConfig,
) -> Result<ToolOutcome, EnvFailure> {
    let Some(runner) = &config.test_runner else {
        return Ok(ToolOutcome::done(
            false,
            config.profile.text("test.no_runner"),
        ));
    };
    let mut targets: Vec<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if targets.is_empty() {
        targets = changed_test_targets(ws, runner).await?;
    }
    let quoted: Vec<String> = targets.iter().map(|t| shell_quote(t)).collect();
    let command = format!("{} {}", runner.command, quoted.join(" "));
    // A subshell, so the model's working directory stays where it was.
    let out = ws
        .run(
            &format!("(cd {REPO_ROOT} && {command})"),
            config.command_timeout,
        )
        .await?;
    let summary = summarize(&config.profile, runner, command.trim_end(), &out.output);
    Ok(ToolOutcome::from_session(summary, &out, config))
}

/// The test files changed in the working tree (tracked or new), as runner targets.
async fn changed_test_targets(
    ws: &mut dyn Workspace,
    runner: &TestRunner,
) -> Result<Vec<String>, EnvFailure> {
    let status = ws
        .exec(
            "git status --porcelain=v1 --untracked-files=all",
            STATUS_TIMEOUT,
        )
        .await?;
    Ok(status
        .output
        .lines()
        .filter_map(|l| l.get(3..))
        .map(|p| p.rsplit(" -> ").next().unwrap_or(p).trim_matches('"'))
        .filter(|p| runner.is_test_file(p))
        .map(|p| runner.target_for_file(p))
        .collect())
}

/// Counts, each failing test with the first lines of its failure, and the output's tail.
fn summarize(profile: &Profile, runner: &TestRunner, command: &str, output: &str) -> String {
    let end = profile.text("test.end_of_output");
    let map = match runner.parse(output) {
        Ok(map) => map,
        Err(crash) => return format!("$ {command}\n{crash}\n\n{}", tail(output)),
    };
    if map.is_empty() {
        return match last_exception(output) {
            Some(error) => format!(
                "$ {command}\n{}\n\nERROR {error}\n\n{end}\n{}",
                profile.text("test.runner_failed"),
                tail(output)
            ),
            None => format!(
                "$ {command}\n{}\n\n{}",
                profile.text("test.nothing_parsed"),
                tail(output)
            ),
        };
    }
    let mut text = format!("$ {command}\n{}\n", counts(profile, &map));
    let failing: Vec<(&String, &TestStatus)> = map
        .iter()
        .filter(|(_, s)| matches!(s, TestStatus::Failed | TestStatus::Error))
        .collect();
    for (id, status) in failing.iter().take(MAX_FAILURES_SHOWN) {
        text.push_str(&format!("\n{status} {id}\n"));
        for line in failure_detail(output, id) {
            text.push_str(&format!("    {line}\n"));
        }
    }
    if failing.len() > MAX_FAILURES_SHOWN {
        let count = failing.len() - MAX_FAILURES_SHOWN;
        let more = profile.render("test.more_failing", context! { count });
        text.push_str(&format!("\n{more}\n"));
    }
    format!("{text}\n{end}\n{}", tail(output))
}

fn counts(profile: &Profile, map: &StatusMap) -> String {
    let count = |wanted: &[TestStatus]| map.values().filter(|s| wanted.contains(s)).count();
    profile.render(
        "test.counts",
        context! {
            passed => count(&[TestStatus::Passed, TestStatus::Xfail]),
            failed => count(&[TestStatus::Failed]),
            errors => count(&[TestStatus::Error]),
            skipped => count(&[TestStatus::Skipped]),
            tests => map.len(),
        },
    )
}

/// The lines that explain one failure: pytest's `E` lines of its section, else the end of
/// the section (Django's and sympy's tracebacks), plus the summary line's message.
fn failure_detail<'a>(output: &'a str, id: &str) -> Vec<&'a str> {
    let name = short_name(id);
    let lines: Vec<&str> = output.lines().collect();
    let header = lines
        .iter()
        .position(|l| is_section_header(l) && l.contains(name));
    let mut detail: Vec<&str> = match header {
        Some(start) => {
            let section: Vec<&str> = lines[start + 1..]
                .iter()
                .take_while(|l| !is_section_header(l) && !l.starts_with("===="))
                .copied()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("----"))
                .collect();
            let e_lines: Vec<&str> = section
                .iter()
                .copied()
                .filter(|l| l.starts_with("E "))
                .collect();
            let pick = if e_lines.is_empty() { section } else { e_lines };
            let skip = pick.len().saturating_sub(DETAIL_LINES);
            pick[skip..].to_vec()
        }
        None => Vec::new(),
    };
    if detail.is_empty() {
        // pytest's `-rA` line carries the message after ` - `.
        detail.extend(
            lines
                .iter()
                .filter(|l| l.contains(id) && l.contains(" - "))
                .filter_map(|l| l.split_once(" - ").map(|(_, m)| m))
                .take(1),
        );
    }
    detail
}

/// The last Python exception line of a traceback (`SyntaxError: ...`), when there is one.
fn last_exception(output: &str) -> Option<&str> {
    if !output.contains("Traceback (most recent call last)") {
        return None;
    }
    output.lines().rev().map(str::trim).find(|line| {
        let name = line.split(':').next().unwrap_or_default();
        line.contains(": ")
            && !name.contains(' ')
            && (name.ends_with("Error") || name.ends_with("Exception"))
    })
}

fn is_section_header(line: &str) -> bool {
    line.starts_with("__") || line.starts_with("FAIL:") || line.starts_with("ERROR:")
}

/// `path::Class::test[x]` → `test[x]`; Django's `test_x (app.tests.T)` → `test_x`.
fn short_name(id: &str) -> &str {
    let last = id.rsplit("::").next().unwrap_or(id);
    last.split_whitespace().next().unwrap_or(last)
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let skip = lines.len().saturating_sub(TAIL_LINES);
    lines[skip..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pytest() -> TestRunner {
        TestRunner {
            command: "pytest -rA".into(),
            parser: "parse_log_pytest".into(),
            django_labels: false,
        }
    }

    #[test]
    fn summary_counts_and_explains_failures() {
        let output = "\
============================= test session starts ==============================
collected 3 items

tests/test_a.py .F.                                                      [100%]

=================================== FAILURES ===================================
___________________________________ test_two ___________________________________

    def test_two():
>       assert add(1, 1) == 3
E       assert 2 == 3
E        +  where 2 = add(1, 1)

tests/test_a.py:7: AssertionError
=========================== short test summary info ============================
PASSED tests/test_a.py::test_one
FAILED tests/test_a.py::test_two - assert 2 == 3
PASSED tests/test_a.py::test_three
========================= 1 failed, 2 passed in 0.02s ==========================";
        let text = summarize(
            &Profile::builtin(),
            &pytest(),
            "pytest -rA tests/test_a.py",
            output,
        );
        assert!(
            text.contains("2 passed, 1 failed, 0 errors, 0 skipped (3 tests)"),
            "{text}"
        );
        assert!(
            text.contains("FAILED tests/test_a.py::test_two\n    E       assert 2 == 3\n"),
            "{text}"
        );
        assert!(text.ends_with("1 failed, 2 passed in 0.02s =========================="));
    }

    #[test]
    fn nothing_parsed_says_so_and_shows_the_tail() {
        let text = summarize(
            &Profile::builtin(),
            &pytest(),
            "pytest -rA",
            "bash: pytest: command not found",
        );
        assert!(
            text.contains(&Profile::builtin().text("test.nothing_parsed")),
            "{text}"
        );
        assert!(text.ends_with("command not found"), "{text}");
    }

    #[test]
    fn a_runner_that_crashes_is_an_error_with_its_message() {
        let output = "Traceback (most recent call last):\n  File \"t.py\", line 1\n    def x(:\n          ^\nSyntaxError: invalid syntax\n";
        let text = summarize(&Profile::builtin(), &pytest(), "pytest -rA", output);
        assert!(
            text.contains("\nERROR SyntaxError: invalid syntax\n"),
            "{text}"
        );
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("a.py::T::test_x[1 2]"), "test_x[1");
        assert_eq!(short_name("test_x (app.tests.T)"), "test_x");
    }
}
