//! The error type of the crate.

/// The official parser raised on a line of the log. Only Django's does: a `FAIL:` or
/// `ERROR:` line with no test name after it is an `IndexError` in
/// `log_parsers/python.py`. cwm-bench matches that (no report.json; the instance counts as
/// an error) rather than guessing a verdict the official grader never gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log line `{line}` has no test name after its status, and SWE-bench 5.0.2's parser fails on it")]
pub struct ParserCrash {
    /// The offending log line, as it appears in the log.
    pub line: String,
}
