//! Grading a status map against FAIL_TO_PASS / PASS_TO_PASS, as `grading.py` does.

use serde::{Deserialize, Serialize};

use crate::status::{StatusMap, TestStatus};

/// The tests of one category that passed and failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessFailure {
    pub success: Vec<String>,
    pub failure: Vec<String>,
}

/// `tests_status` of `report.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestsStatus {
    #[serde(rename = "FAIL_TO_PASS")]
    pub fail_to_pass: SuccessFailure,
    #[serde(rename = "PASS_TO_PASS")]
    pub pass_to_pass: SuccessFailure,
    #[serde(rename = "FAIL_TO_FAIL")]
    pub fail_to_fail: SuccessFailure,
    #[serde(rename = "PASS_TO_FAIL")]
    pub pass_to_fail: SuccessFailure,
}

/// FULL, PARTIAL or NO; only FULL counts as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedStatus {
    Full,
    Partial,
    No,
}

impl ResolvedStatus {
    /// The official spelling (`RESOLVED_FULL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "RESOLVED_FULL",
            Self::Partial => "RESOLVED_PARTIAL",
            Self::No => "RESOLVED_NO",
        }
    }
}

/// How a test list is graded (`EvalType`; every Verified instance is `pass_and_fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvalType {
    /// PASSED/XFAIL pass; FAILED, ERROR, SKIPPED (FAIL_TO_PASS only) or missing fail.
    #[default]
    PassAndFail,
    /// Only a recorded FAILED fails; anything else, missing included, passes.
    FailOnly,
}

impl EvalType {
    /// The dataset's `eval_type` value (`pass_and_fail` or `fail_only`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "pass_and_fail" => Some(Self::PassAndFail),
            "fail_only" => Some(Self::FailOnly),
            _ => None,
        }
    }
}

fn passing(status: &TestStatus) -> bool {
    matches!(status, TestStatus::Passed | TestStatus::Xfail)
}

/// `_resolve_case` of 5.0.2's `grading.py`: the exact id, else — for an id with more `[`
/// than `]` (a parametrized id truncated in the dataset) — the first parsed id it is a
/// prefix of, when all such ids agree on passing versus not passing.
pub fn resolve_case<'a>(case: &str, map: &'a StatusMap) -> Option<&'a TestStatus> {
    if let Some(status) = map.get(case) {
        return Some(status);
    }
    if case.matches('[').count() <= case.matches(']').count() {
        return None;
    }
    let mut matches = map.iter().filter(|(id, _)| id.starts_with(case));
    let (_, first) = matches.next()?;
    let outcome = passing(first);
    matches
        .all(|(_, status)| passing(status) == outcome)
        .then_some(first)
}

/// Missing counts as failed; so does SKIPPED, because a skipped FAIL_TO_PASS test is not a
/// resolution (a skipped PASS_TO_PASS test is caught earlier, as maintained).
fn failed(status: Option<&TestStatus>) -> bool {
    matches!(
        status,
        None | Some(TestStatus::Failed | TestStatus::Error | TestStatus::Skipped)
    )
}

/// Sorts FAIL_TO_PASS and PASS_TO_PASS into success and failure (`get_eval_tests_report`
/// without the to-fail lists). A test whose status is an unknown word lands in neither list,
/// as upstream.
pub fn grade(
    map: &StatusMap,
    fail_to_pass: &[String],
    pass_to_pass: &[String],
    eval_type: EvalType,
) -> TestsStatus {
    let mut report = TestsStatus::default();
    for (tests, out, maintained) in [
        (fail_to_pass, &mut report.fail_to_pass, false),
        (pass_to_pass, &mut report.pass_to_pass, true),
    ] {
        for test in tests {
            let status = resolve_case(test, map);
            let success = match eval_type {
                // `check_fail_only` looks the id up exactly, without `_resolve_case`.
                EvalType::FailOnly => map.get(test) != Some(&TestStatus::Failed),
                EvalType::PassAndFail => {
                    status.is_some_and(passing)
                        || (maintained && status == Some(&TestStatus::Skipped))
                }
            };
            if success {
                out.success.push(test.clone());
            } else if eval_type == EvalType::FailOnly || failed(status) {
                out.failure.push(test.clone());
            }
        }
    }
    report
}

/// `get_resolution_status`: FULL when every graded FAIL_TO_PASS and PASS_TO_PASS test
/// passes (an empty category counts as all passing), PARTIAL when some but not all
/// FAIL_TO_PASS pass and every PASS_TO_PASS passes, else NO.
pub fn resolution(report: &TestsStatus) -> ResolvedStatus {
    let f2p = &report.fail_to_pass;
    let p2p_all = report.pass_to_pass.failure.is_empty();
    if f2p.failure.is_empty() && p2p_all {
        ResolvedStatus::Full
    } else if !f2p.success.is_empty() && !f2p.failure.is_empty() && p2p_all {
        ResolvedStatus::Partial
    } else {
        ResolvedStatus::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> StatusMap {
        entries
            .iter()
            .map(|(id, s)| (id.to_string(), TestStatus::from_word(s)))
            .collect()
    }

    fn grade_pf(m: &StatusMap, f2p: &[String], p2p: &[String]) -> TestsStatus {
        grade(m, f2p, p2p, EvalType::PassAndFail)
    }

    #[test]
    fn truncated_ids_resolve_when_their_matches_agree() {
        let m = map(&[
            ("t[0.1-a]", "FAILED"),
            ("t[0.1-b]", "SKIPPED"),
            ("u[x-1]", "PASSED"),
            ("u[x-2]", "FAILED"),
            ("v[1]", "XFAIL"),
            ("v[2]", "PASSED"),
        ]);
        assert_eq!(resolve_case("t[0.1", &m), Some(&TestStatus::Failed));
        assert_eq!(resolve_case("u[x", &m), None);
        assert_eq!(resolve_case("v[", &m), Some(&TestStatus::Xfail));
        // Balanced brackets never fall back to a prefix.
        assert_eq!(resolve_case("v", &m), None);
        let r = grade_pf(&m, &ids(&["v[", "u[x"]), &ids(&["t[0.1"]));
        assert_eq!(r.fail_to_pass.success, ids(&["v["]));
        assert_eq!(r.fail_to_pass.failure, ids(&["u[x"]));
        assert_eq!(r.pass_to_pass.failure, ids(&["t[0.1"]));
    }

    #[test]
    fn fail_only_fails_only_recorded_failures() {
        let m = map(&[("a", "FAILED"), ("b", "ERROR")]);
        let r = grade(&m, &ids(&["a", "b", "c"]), &[], EvalType::FailOnly);
        assert_eq!(r.fail_to_pass.success, ids(&["b", "c"]));
        assert_eq!(r.fail_to_pass.failure, ids(&["a"]));
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pass_xfail_pass_and_missing_fails() {
        let m = map(&[
            ("a", "PASSED"),
            ("b", "XFAIL"),
            ("c", "FAILED"),
            ("d", "ERROR"),
        ]);
        let r = grade_pf(&m, &ids(&["a", "b"]), &ids(&["c", "d", "e"]));
        assert_eq!(r.fail_to_pass.success, ids(&["a", "b"]));
        assert_eq!(r.pass_to_pass.failure, ids(&["c", "d", "e"]));
        assert_eq!(resolution(&r), ResolvedStatus::No);
    }

    #[test]
    fn skipped_fails_f2p_but_passes_p2p() {
        let m = map(&[("f", "SKIPPED"), ("p", "SKIPPED")]);
        let r = grade_pf(&m, &ids(&["f"]), &ids(&["p"]));
        assert_eq!(r.fail_to_pass.failure, ids(&["f"]));
        assert_eq!(r.pass_to_pass.success, ids(&["p"]));
        assert_eq!(resolution(&r), ResolvedStatus::No);
    }

    #[test]
    fn full_partial_no() {
        let m = map(&[
            ("f1", "PASSED"),
            ("f2", "FAILED"),
            ("p", "PASSED"),
            ("q", "FAILED"),
        ]);
        assert_eq!(
            resolution(&grade_pf(&m, &ids(&["f1"]), &ids(&["p"]))),
            ResolvedStatus::Full
        );
        assert_eq!(
            resolution(&grade_pf(&m, &ids(&["f1", "f2"]), &ids(&["p"]))),
            ResolvedStatus::Partial
        );
        assert_eq!(
            resolution(&grade_pf(&m, &ids(&["f1"]), &ids(&["q"]))),
            ResolvedStatus::No
        );
        assert_eq!(
            resolution(&grade_pf(&m, &ids(&["f2"]), &ids(&["p"]))),
            ResolvedStatus::No
        );
        // Empty lists count as all passing.
        assert_eq!(resolution(&grade_pf(&m, &[], &[])), ResolvedStatus::Full);
    }

    #[test]
    fn unknown_status_is_in_neither_list() {
        let m = map(&[("f1", "PASSED"), ("f2", "b]")]);
        let r = grade_pf(&m, &ids(&["f1", "f2"]), &[]);
        assert_eq!(r.fail_to_pass.success, ids(&["f1"]));
        assert!(r.fail_to_pass.failure.is_empty());
        assert_eq!(resolution(&r), ResolvedStatus::Full);
    }

    #[test]
    fn tests_status_uses_official_keys() {
        let json = serde_json::to_value(TestsStatus::default()).unwrap_or_default();
        for key in [
            "FAIL_TO_PASS",
            "PASS_TO_PASS",
            "FAIL_TO_FAIL",
            "PASS_TO_FAIL",
        ] {
            assert!(json[key]["success"].is_array(), "{key}");
            assert!(json[key]["failure"].is_array(), "{key}");
        }
    }
}
