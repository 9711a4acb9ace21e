//! `report.json`, in the official per-instance schema, and crash-safe file writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, ReportProblem};
use crate::grading::{resolution, ResolvedStatus, TestsStatus};

/// The official verdict for one instance: `report.json` of SWE-bench 5.0.2
/// (`get_eval_report` in `harness/grading.py`), serialised as `{instance_id:
/// {patch_is_None, patch_exists, patch_successfully_applied, resolved, infra_failure,
/// infra_failure_reason?, tests_status?}}`. It exists only where 5.x writes one: a patch
/// that did not apply or tests that timed out leave none (see `Outcome` for why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceReport {
    pub instance_id: String,
    /// The prediction had no patch at all (JSON `null`); nothing was run.
    pub patch_is_none: bool,
    pub patch_exists: bool,
    /// The log was gradable (upstream's meaning: both markers, no bad code, results or a
    /// sign that the suite ran, no contradicting exit code).
    pub patch_successfully_applied: bool,
    pub resolved: bool,
    /// An ungradable log whose text matches an environment-failure signature.
    pub infra_failure: bool,
    /// The signature an ungradable log matched (`out_of_memory`, `no_tests_collected`, ...).
    pub infra_failure_reason: Option<String>,
    /// Absent when there was no gradable log, as upstream.
    pub tests_status: Option<TestsStatus>,
}

#[derive(Serialize, Deserialize)]
struct Body {
    #[serde(rename = "patch_is_None")]
    patch_is_none: bool,
    patch_exists: bool,
    patch_successfully_applied: bool,
    resolved: bool,
    /// 4.x reports lack it.
    #[serde(default)]
    infra_failure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    infra_failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tests_status: Option<TestsStatus>,
}

impl InstanceReport {
    /// A report for an instance whose log was not (yet) graded.
    pub fn ungraded(instance_id: &str, patch_exists: bool) -> Self {
        Self {
            instance_id: instance_id.to_string(),
            patch_is_none: !patch_exists,
            patch_exists,
            patch_successfully_applied: false,
            resolved: false,
            infra_failure: false,
            infra_failure_reason: None,
            tests_status: None,
        }
    }

    /// FULL / PARTIAL / NO (NO when there is nothing graded).
    pub fn resolution(&self) -> ResolvedStatus {
        self.tests_status
            .as_ref()
            .map_or(ResolvedStatus::No, resolution)
    }

    fn body(&self) -> Body {
        Body {
            patch_is_none: self.patch_is_none,
            patch_exists: self.patch_exists,
            patch_successfully_applied: self.patch_successfully_applied,
            resolved: self.resolved,
            infra_failure: self.infra_failure,
            infra_failure_reason: self.infra_failure_reason.clone(),
            tests_status: self.tests_status.clone(),
        }
    }

    /// Reads a `report.json` written by this crate or by the official harness (4.x or 5.x).
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |problem: ReportProblem| EvalError::BadReport {
            path: path.to_path_buf(),
            problem,
        };
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| bad(e.into()))?;
        let mut entries = map.into_iter();
        let (Some((instance_id, value)), None) = (entries.next(), entries.next()) else {
            return Err(bad(ReportProblem::NotOneInstance));
        };
        let body: Body = serde_json::from_value(value).map_err(|e| bad(e.into()))?;
        Ok(Self {
            instance_id,
            patch_is_none: body.patch_is_none,
            patch_exists: body.patch_exists,
            patch_successfully_applied: body.patch_successfully_applied,
            resolved: body.resolved,
            infra_failure: body.infra_failure,
            infra_failure_reason: body.infra_failure_reason,
            tests_status: body.tests_status,
        })
    }

    /// The exact text 5.x writes: `json.dumps(report, indent=4)`, no trailing newline.
    pub fn to_official_json(&self) -> String {
        // Serialised from the structs (not a `Value`) to keep upstream's key order.
        crate::pyjson::dumps_indent4(&BTreeMap::from([(&self.instance_id, self.body())]))
    }

    /// Writes `report.json` atomically.
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        write_atomic(path, self.to_official_json().as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a crash never leaves a half-written file under the final name. The results crate
/// writes its reports through this too.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    let err = |source| EvalError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = tmp_path(path);
    let written = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // A failed write leaves the old file as it was and no temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// Writes and syncs, so a power loss cannot leave an empty file under the final name.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_data()
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InstanceReport {
        InstanceReport {
            instance_id: "a__b-1".into(),
            patch_is_none: false,
            patch_exists: true,
            patch_successfully_applied: true,
            resolved: true,
            infra_failure: false,
            infra_failure_reason: None,
            tests_status: Some(TestsStatus::default()),
        }
    }

    #[test]
    fn official_schema_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x/report.json");
        let report = sample();
        report.write(&path).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        let body = &json["a__b-1"];
        assert_eq!(body["patch_is_None"], false);
        assert_eq!(body["patch_exists"], true);
        assert_eq!(body["patch_successfully_applied"], true);
        assert_eq!(body["resolved"], true);
        assert!(body["tests_status"]["FAIL_TO_PASS"]["success"].is_array());
        assert_eq!(body["infra_failure"], false);
        assert!(body.get("infra_failure_reason").is_none());
        assert!(!text.ends_with('\n'));
        assert!(text.contains("\n    \"a__b-1\""), "{text}");
        // Upstream's key order.
        let at = |key: &str| text.find(key).unwrap_or(usize::MAX);
        assert!(at("patch_is_None") < at("patch_exists"));
        assert!(at("patch_successfully_applied") < at("\"resolved\""));
        assert!(at("\"resolved\"") < at("infra_failure"));
        assert!(at("infra_failure") < at("tests_status"));
        assert!(at("FAIL_TO_PASS") < at("PASS_TO_PASS"));
        assert!(at("PASS_TO_PASS") < at("FAIL_TO_FAIL"));
        assert_eq!(InstanceReport::read(&path).expect("read back"), report);
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().expect("dir"))
                .expect("ls")
                .count(),
            1
        );
    }

    #[test]
    fn bad_report_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.json");
        std::fs::write(&path, "{}").expect("write");
        let err = InstanceReport::read(&path).expect_err("must fail");
        assert!(err.to_string().contains("report.json"), "{err}");
    }
}
