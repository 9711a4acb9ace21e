//! Infrastructure-failure signatures in test logs, as SWE-bench 5.0.2's
//! `harness/infra_failure.py` classifies them. Advisory only: a classified instance keeps
//! its verdict; the reason goes into `report.json` and the run summary.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use cwm_parsers::re;

/// How sure the classification is: a broken environment, or either that or a bad patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Cannot plausibly come from a patch (`TIER_ENVIRONMENT`).
    Environment,
    /// An environment fault or a bad patch (`TIER_AMBIGUOUS`).
    Ambiguous,
}

/// Upstream's `(reason, tier, pattern)` list, matched in order with `re.MULTILINE`; the
/// first hit wins.
static SIGNATURES: LazyLock<Vec<(&'static str, Tier, Regex)>> = LazyLock::new(|| {
    use Tier::{Ambiguous, Environment};
    [
        (
            "browser_launch_failed",
            Environment,
            r"Failed to launch|Failed to connect to the bus",
        ),
        (
            "display_unavailable",
            Environment,
            r"cannot open display|Missing X server|unable to open X display",
        ),
        (
            "out_of_memory",
            Environment,
            r"Cannot allocate memory|OutOfMemoryError|^Killed$",
        ),
        (
            "container_unavailable",
            Environment,
            r"Error response from daemon|Cannot connect to the Docker daemon",
        ),
        (
            "network_unreachable",
            Environment,
            r"Could not resolve host|Temporary failure in name resolution",
        ),
        (
            "missing_module",
            Ambiguous,
            r"Cannot find module|MODULE_NOT_FOUND|ModuleNotFoundError",
        ),
        (
            "no_tests_collected",
            Ambiguous,
            r"no tests ran|collected 0 items",
        ),
        (
            "tests_timed_out",
            Ambiguous,
            r"Timeout error: [\d]+ seconds exceeded",
        ),
    ]
    .into_iter()
    .map(|(reason, tier, pattern)| (reason, tier, re(&format!("(?m){pattern}"))))
    .collect()
});

/// `classify_text`: the first matching signature's reason and tier.
pub fn classify_text(text: &str) -> Option<(&'static str, Tier)> {
    SIGNATURES
        .iter()
        .find(|(_, _, pattern)| pattern.is_match(text))
        .map(|(reason, tier, _)| (*reason, *tier))
}

/// `classify_logs`: the files that exist, read as Python's `read_text(errors="replace")`
/// does (universal newlines, invalid UTF-8 replaced), joined with `\n`.
pub fn classify_logs(paths: &[&Path]) -> Option<(&'static str, Tier)> {
    let chunks: Vec<String> = paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| crate::log::normalize_newlines(&String::from_utf8_lossy(&bytes)))
        .collect();
    classify_text(&chunks.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signature_wins_and_killed_needs_its_own_line() {
        assert_eq!(
            classify_text("ModuleNotFoundError\nKilled\n"),
            Some(("out_of_memory", Tier::Environment))
        );
        assert_eq!(classify_text("Process Killed here"), None);
        assert_eq!(
            classify_text("collected 0 items"),
            Some(("no_tests_collected", Tier::Ambiguous))
        );
        assert_eq!(classify_text(""), None);
    }
}
