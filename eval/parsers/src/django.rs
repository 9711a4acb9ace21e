//! Django's test runner (`./tests/runtests.py --verbosity 2`).

use std::sync::LazyLock;

use regex::Regex;

use super::{py_split, py_strip, ParserCrash};
use crate::pytest::re;
use crate::status::{StatusMap, TestStatus};

/// Results interrupted by a multi-line print, then `ok` on its own line (upstream's list;
/// `\s` also covers the separators Python counts as whitespace).
static INTERRUPTED: LazyLock<[Regex; 3]> = LazyLock::new(|| {
    [
        re(
            r"(?m)^(.*?)[\s\x1c-\x1f]\.\.\.[\s\x1c-\x1f]Testing against Django installed in ((?s:.*?)) silenced\)\.\nok$",
        ),
        re(r"(?m)^(.*?)[\s\x1c-\x1f]\.\.\.[\s\x1c-\x1f]Internal Server Error: /(.*)/\nok$"),
        re(
            r"(?m)^(.*?)[\s\x1c-\x1f]\.\.\.[\s\x1c-\x1f]System check identified no issues \(0 silenced\)\nok$",
        ),
    ]
});

const PASS_SUFFIXES: [&str; 3] = [" ... ok", " ... OK", " ...  OK"];

/// `parse_log_django`. A test with a docstring is reported under the docstring's first
/// line; a result printed on a later line (`ok` after other output) goes to the last test
/// seen with ` ... `. A `FAIL:`/`ERROR:` line without a test name is an error, as upstream
/// (see [`ParserCrash`]).
pub fn parse_log_django(log: &str) -> Result<StatusMap, ParserCrash> {
    let mut map = StatusMap::new();
    let mut prev_test: Option<String> = None;
    for raw in log.split('\n') {
        parse_line(py_strip(raw), &mut prev_test, &mut map)?;
    }
    for pattern in INTERRUPTED.iter() {
        for caps in pattern.captures_iter(log) {
            let name = caps.get(1).map_or("", |m| m.as_str());
            map.insert(name.to_string(), TestStatus::Passed);
        }
    }
    Ok(map)
}

fn parse_line(
    line: &str,
    prev_test: &mut Option<String>,
    map: &mut StatusMap,
) -> Result<(), ParserCrash> {
    if line.contains("--version is equivalent to version") {
        map.insert(
            "--version is equivalent to version".to_string(),
            TestStatus::Passed,
        );
    }
    if let Some((head, _)) = line.split_once(" ... ") {
        *prev_test = Some(head.to_string());
    }
    // Upstream reassigns `line` in the pass branch; later checks see the new value.
    let line = parse_pass(line, map);
    if let Some((head, _)) = line.split_once(" ... skipped") {
        map.insert(head.to_string(), TestStatus::Skipped);
    }
    if line.ends_with(" ... FAIL") {
        map.insert(before(line, " ... FAIL"), TestStatus::Failed);
    }
    if line.starts_with("FAIL:") {
        map.insert(second_word(line)?, TestStatus::Failed);
    }
    if line.ends_with(" ... ERROR") {
        map.insert(before(line, " ... ERROR"), TestStatus::Error);
    }
    if line.starts_with("ERROR:") {
        map.insert(second_word(line)?, TestStatus::Error);
    }
    // `test ... <output on several lines>` then `ok`: credit the last test seen.
    if line.starts_with("ok") {
        if let Some(prev) = prev_test {
            map.insert(prev.clone(), TestStatus::Passed);
        }
    }
    Ok(())
}

/// `line.split()[1]`, which raises in Python when there is no second word.
fn second_word(line: &str) -> Result<String, ParserCrash> {
    py_split(line)
        .get(1)
        .map(|name| py_strip(name).to_string())
        .ok_or_else(|| ParserCrash {
            line: line.to_string(),
        })
}

fn parse_pass<'a>(line: &'a str, map: &mut StatusMap) -> &'a str {
    for suffix in PASS_SUFFIXES {
        if !line.ends_with(suffix) {
            continue;
        }
        // Upstream's special case for django__django-7188, where a migration message and
        // the test name share a line.
        let line =
            if line.starts_with("Applying sites.0002_alter_domain_unique...test_no_migrations") {
                py_strip(line.split_once("...").map_or(line, |(_, rest)| rest))
            } else {
                line
            };
        let test = line.rsplit_once(suffix).map_or(line, |(head, _)| head);
        map.insert(test.to_string(), TestStatus::Passed);
        return line;
    }
    line
}

/// Python's `line.split(sep)[0]`.
fn before(line: &str, sep: &str) -> String {
    line.split(sep).next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(map: &'a StatusMap, id: &str) -> Option<&'a str> {
        map.get(id).map(|s| s.as_str())
    }

    /// What the daterange fixture's runner prints (Django's format), with a docstring test,
    /// a skip, a failure and an error.
    const RUNNER: &str = "Testing against Django installed in '/testbed/django'
Importing application ranges_tests
test_basic (ranges_tests.tests.AddMonthsTests) ... ok
test_end_of_month_clamps (ranges_tests.tests.AddMonthsTests) ... ERROR
test_leap_day (ranges_tests.tests.AddMonthsTests) ... FAIL
Monthly ranges anchored on the 31st keep going past short months. ... ERROR
A zero step is rejected instead of looping forever. ... ok
test_windows (ranges_tests.tests.PlatformTests) ... skipped 'windows only'
test_noisy (ranges_tests.tests.NoisyTests) ... Some output printed by the test
that spans lines
ok

======================================================================
ERROR: test_end_of_month_clamps (ranges_tests.tests.AddMonthsTests)
----------------------------------------------------------------------
Traceback (most recent call last):
ValueError: day is out of range for month

======================================================================
FAIL: test_leap_day (ranges_tests.tests.AddMonthsTests)
----------------------------------------------------------------------
AssertionError: datetime.date(2025, 3, 1) != datetime.date(2025, 2, 28)

----------------------------------------------------------------------
Ran 7 tests in 0.003s

FAILED (failures=1, errors=2, skipped=1)";

    #[test]
    fn django_runner_statuses() {
        let map = parse_log_django(RUNNER).expect("parses");
        assert_eq!(
            get(&map, "test_basic (ranges_tests.tests.AddMonthsTests)"),
            Some("PASSED")
        );
        assert_eq!(
            get(
                &map,
                "test_end_of_month_clamps (ranges_tests.tests.AddMonthsTests)"
            ),
            Some("ERROR")
        );
        assert_eq!(
            get(&map, "test_leap_day (ranges_tests.tests.AddMonthsTests)"),
            Some("FAILED")
        );
        assert_eq!(
            get(
                &map,
                "Monthly ranges anchored on the 31st keep going past short months."
            ),
            Some("ERROR")
        );
        assert_eq!(
            get(&map, "A zero step is rejected instead of looping forever."),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "test_windows (ranges_tests.tests.PlatformTests)"),
            Some("SKIPPED")
        );
        assert_eq!(
            get(&map, "test_noisy (ranges_tests.tests.NoisyTests)"),
            Some("PASSED")
        );
        // `FAIL: name (...)` / `ERROR: name (...)` banners record the bare method name.
        assert_eq!(get(&map, "test_leap_day"), Some("FAILED"));
        assert_eq!(get(&map, "test_end_of_month_clamps"), Some("ERROR"));
    }

    #[test]
    fn docstring_spanning_lines_is_reported_under_its_first_line() {
        // With a docstring, the description spans two lines: `test_x (module.Class)`, then
        // the docstring's first line with the result. Only the second line is an id, and
        // output printed by the test pushes `ok` onto a later line.
        let log = "test_anchored_on_31st (ranges_tests.tests.MonthRangeTests)\n\
                   Monthly ranges anchored on the 31st keep going past short months. ... ok\n\
                   test_noisy (ranges_tests.tests.MonthRangeTests)\n\
                   A zero step is rejected instead of looping forever. ... warning: step\n\
                   was zero\n\
                   ok\n";
        let map = parse_log_django(log).expect("parses");
        assert_eq!(
            get(
                &map,
                "Monthly ranges anchored on the 31st keep going past short months."
            ),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "A zero step is rejected instead of looping forever."),
            Some("PASSED")
        );
        assert!(!map.contains_key("test_anchored_on_31st (ranges_tests.tests.MonthRangeTests)"));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn interrupted_results_are_recovered() {
        let log = "test_x (a.B) ... System check identified no issues (0 silenced)\nok\n\
                   test_y (a.B) ... Internal Server Error: /view/\nok";
        let map = parse_log_django(log).expect("parses");
        assert_eq!(get(&map, "test_x (a.B)"), Some("PASSED"));
        assert_eq!(get(&map, "test_y (a.B)"), Some("PASSED"));
    }

    #[test]
    fn version_quirk_and_uppercase_ok() {
        let log = "--version is equivalent to version\ntest_z (a.B) ... OK\ntest_w (a.B) ...  OK";
        let map = parse_log_django(log).expect("parses");
        assert_eq!(
            get(&map, "--version is equivalent to version"),
            Some("PASSED")
        );
        assert_eq!(get(&map, "test_z (a.B)"), Some("PASSED"));
        assert_eq!(get(&map, "test_w (a.B)"), Some("PASSED"));
    }

    #[test]
    fn bare_fail_line_is_a_crash_like_upstream() {
        let err = parse_log_django("test_a (m.T) ... ok\nFAIL:\n").expect_err("must fail");
        assert_eq!(err.line, "FAIL:");
        assert!(parse_log_django("ERROR:x\n").is_err());
        assert!(parse_log_django("ERROR: test_b (m.T)\n").is_ok());
    }
}
