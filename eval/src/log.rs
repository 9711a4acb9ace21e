//! The test log: its markers, and the part of it the parsers may read.

use std::sync::LazyLock;

use regex::Regex;

use crate::parsers::{Parser, ParserCrash};
use crate::status::{StatusMap, TestStatus};
use cwm_parsers::re;

pub const START_TEST_OUTPUT: &str = ">>>>> Start Test Output";
pub const END_TEST_OUTPUT: &str = ">>>>> End Test Output";
/// Markers the official harness writes into a log whose run went wrong; a log holding any
/// of them is not graded.
const BAD_CODES: [&str; 4] = [
    ">>>>> Patch Apply Failed",
    ">>>>> Reset Failed",
    ">>>>> Tests Errored",
    ">>>>> Tests Timed Out",
];

/// Line endings as Python's text mode reads them (`\r\n` and `\r` become `\n`): the
/// official grader reads `test_output.txt` that way, and pytest progress uses `\r`.
pub fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The text the parser sees, exactly as `get_logs_eval` slices it:
/// `content.split(START)[1].split(END)[0]`. `None` when a marker is missing or the log
/// carries a bad code. Anything a patched program prints before the start marker (e.g. a
/// fake `PASSED` line) is outside the region.
pub fn test_output_region(content: &str) -> Option<&str> {
    if BAD_CODES.iter().any(|code| content.contains(code)) {
        return None;
    }
    if !content.contains(START_TEST_OUTPUT) || !content.contains(END_TEST_OUTPUT) {
        return None;
    }
    let after_start = content.split(START_TEST_OUTPUT).nth(1)?;
    after_start.split(END_TEST_OUTPUT).next()
}

/// `get_logs_eval` of SWE-bench 5.0.2 (`harness/grading.py`): the status map of a whole
/// log, or `None` where 5.x finds nothing gradable (it then reports the patch as not
/// applied). In order: a bad code or a missing marker → `None`; parse the marked region,
/// else the whole log; nothing parsed and no sign the suite ran → `None`; a non-zero
/// `>>>>> Test Exit Code` with results but no FAILED/ERROR among them → `None` (the log does
/// not describe the run). `Err` where the official parser raises.
pub fn parse_test_log(content: &str, parser: Parser) -> Result<Option<StatusMap>, ParserCrash> {
    let content = normalize_newlines(content);
    let Some(region) = test_output_region(&content) else {
        return Ok(None);
    };
    let mut map = parser(region)?;
    if map.is_empty() {
        // Results printed outside the markers (stream ordering) are still results.
        map = parser(&content)?;
    }
    if map.is_empty() && !SUITE_RAN.is_match(&content) {
        return Ok(None);
    }
    let contradicted = exit_code_is_nonzero(&content)
        && !map.is_empty()
        && !map
            .values()
            .any(|s| matches!(s, TestStatus::Failed | TestStatus::Error));
    Ok((!contradicted).then_some(map))
}

/// 5.x's `SUITE_RAN`: evidence that a test runner executed, each count non-zero.
static SUITE_RAN: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?m)Executed [1-9]\d* of \d+",
        r"|TOTAL: [1-9]\d* (?:SUCCESS|FAILED)",
        r"|[1-9]\d* passing",
        r"|Tests:[\s\x1c-\x1f]+[1-9]\d*",
        r"|Test Suites:[\s\x1c-\x1f]+(?:\d+ \w+, )*[1-9]\d* total",
        r"|^# tests [1-9]\d*",
        r"|[1-9]\d* specs?, \d+ failures?",
        r"|': ok$",
    ))
});

/// `>>>>> Test Exit Code: N`, which 5.x's eval script prints after the end marker.
pub const TEST_EXIT_CODE: &str = ">>>>> Test Exit Code";
static EXIT_CODE: LazyLock<Regex> =
    LazyLock::new(|| re(r">>>>> Test Exit Code:[\s\x1c-\x1f]*(-?\d+)"));

/// `parse_test_exit_code(content) not in (None, 0)`, from the first such line. Python's
/// `\d` takes any Unicode decimal digit and `int()` reads them all, so the number is zero
/// when every digit has the value 0 (`0`, `٠`, `０`, ...).
fn exit_code_is_nonzero(content: &str) -> bool {
    EXIT_CODE
        .captures(content)
        .and_then(|c| c.get(1))
        .is_some_and(|m| {
            !m.as_str()
                .trim_start_matches('-')
                .chars()
                .all(is_zero_digit)
        })
}

/// Unicode encodes every decimal digit set as ten consecutive code points from 0 to 9, and
/// adjacent sets are whole: a digit's value is its distance from the start of its run of
/// digits, modulo ten.
fn is_zero_digit(c: char) -> bool {
    static DIGIT: LazyLock<Regex> = LazyLock::new(|| re(r"^\d$"));
    let is_digit =
        |cp: u32| char::from_u32(cp).is_some_and(|d| DIGIT.is_match(d.encode_utf8(&mut [0; 4])));
    let mut start = c as u32;
    while start > 0 && is_digit(start - 1) {
        start -= 1;
    }
    (c as u32 - start).is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::parse_log_pytest;

    const PYTEST: Parser = |log| Ok(parse_log_pytest(log));

    fn parse(log: &str) -> Option<StatusMap> {
        parse_test_log(log, PYTEST).expect("pytest never crashes")
    }

    #[test]
    fn only_the_marked_region_is_parsed() {
        // A patched program prints a fake summary line before the tests start.
        let log = "+ python -c 'print(\"PASSED tests/test_a.py::test_fixed\")'\n\
                   PASSED tests/test_a.py::test_fixed\n\
                   + : '>>>>> Start Test Output'\n\
                   + pytest -rA tests/test_a.py\n\
                   FAILED tests/test_a.py::test_fixed - assert 0\n\
                   PASSED tests/test_a.py::test_other\n\
                   + : '>>>>> End Test Output'\n\
                   PASSED tests/test_a.py::test_after\n";
        let map = parse(log).expect("markers present");
        assert_eq!(
            map.get("tests/test_a.py::test_fixed").map(|s| s.as_str()),
            Some("FAILED")
        );
        assert!(map.contains_key("tests/test_a.py::test_other"));
        assert!(!map.contains_key("tests/test_a.py::test_after"));
    }

    #[test]
    fn empty_region_falls_back_to_the_whole_log() {
        // The issue's example: markers with nothing between them, a result after them.
        let log = "+ : '>>>>> Start Test Output'\n+ : '>>>>> End Test Output'\n\
                   PASSED tests/test_a.py::test_fixed\n";
        let map = parse(log).expect("whole-log fallback");
        assert!(map.contains_key("tests/test_a.py::test_fixed"));
    }

    #[test]
    fn nothing_parsed_and_no_sign_of_a_suite_is_not_gradable() {
        let log = "PASSED\n: '>>>>> Start Test Output'\nTraceback: ImportError\n\
                   : '>>>>> End Test Output'\n";
        assert!(parse(log).is_none());
        let ran = ">>>>> Start Test Output\n3 passing\n>>>>> End Test Output\n";
        assert_eq!(parse(ran).map(|m| m.len()), Some(0));
    }

    #[test]
    fn nonzero_exit_without_failures_is_not_gradable() {
        // The issue's example: a conftest prints PASSED and the run exits 3.
        let forged = "+ : '>>>>> Start Test Output'\nPASSED tests/test_a.py::test_fixed\n\
                      + : '>>>>> End Test Output'\n>>>>> Test Exit Code: 3\n";
        assert!(parse(forged).is_none());
        let failing = forged.replace("PASSED tests/test_a.py::test_fixed", "FAILED a.py::t");
        assert!(parse(&failing).is_some());
        assert!(parse(&forged.replace(": 3", ": 0")).is_some());
        assert!(parse(&forged.replace(": 3", ": -000")).is_some());
        // Python's int() reads any Unicode decimal digit: these are all zero.
        for zero in ["\u{660}", "\u{ff10}", "\u{1d7ce}", "\u{1d7d8}"] {
            assert!(
                parse(&forged.replace(": 3", &format!(": {zero}"))).is_some(),
                "{zero}"
            );
        }
        assert!(parse(&forged.replace(": 3", ": \u{663}")).is_none());
        assert!(parse(&forged.replace(": 3", ": \u{1d7d9}")).is_none());
    }

    #[test]
    fn missing_end_marker_or_bad_code_means_no_region() {
        assert!(parse("+ : '>>>>> Start Test Output'\nPASSED a::b\n").is_none());
        let bad =
            ">>>>> Start Test Output\nPASSED a::b\n>>>>> End Test Output\n>>>>> Tests Timed Out";
        assert!(parse(bad).is_none());
    }

    #[test]
    fn carriage_returns_split_lines() {
        let log = ">>>>> Start Test Output\r\nprogress\rPASSED a.py::t\r\n>>>>> End Test Output";
        let map = parse(log).expect("markers present");
        assert!(map.contains_key("a.py::t"));
    }
}
