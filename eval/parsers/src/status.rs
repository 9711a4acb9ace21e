//! Test statuses as the official log parsers record them.

use std::fmt;

/// One test's status. The official parsers store the status word verbatim, so a word that
/// is not one of the five (e.g. `PASSEDx` from a line that merely starts with `PASSED`) is
/// kept as [`TestStatus::Other`]: it grades as neither passing nor failing, like upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TestStatus {
    Passed,
    Failed,
    Skipped,
    Error,
    Xfail,
    Other(String),
}

/// The five status words, in the order of SWE-bench's `TestStatus` enum.
pub const STATUS_WORDS: [&str; 5] = ["FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL"];

impl TestStatus {
    /// The status for a word taken from a log line.
    pub fn from_word(word: &str) -> Self {
        match word {
            "PASSED" => Self::Passed,
            "FAILED" => Self::Failed,
            "SKIPPED" => Self::Skipped,
            "ERROR" => Self::Error,
            "XFAIL" => Self::Xfail,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Passed => "PASSED",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
            Self::Error => "ERROR",
            Self::Xfail => "XFAIL",
            Self::Other(word) => word,
        }
    }
}

impl fmt::Display for TestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Test id → status, as parsed from one log. Later lines overwrite earlier ones, but an id
/// keeps the position of its first line: that is a Python dict's order, which 5.x's
/// `_resolve_case` depends on when a truncated id matches several parsed ids.
pub type StatusMap = indexmap::IndexMap<String, TestStatus>;
