//! The run summary, exactly as SWE-bench 5.0.2's `make_run_report`
//! (`harness/reporting.py`, schema version 2) builds it from the files of a run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::infra::{classify_logs, Tier};
use crate::predictions::Predictions;
use crate::report::write_atomic;

/// The official run summary. Field order is upstream's, so the JSON text matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub total_instances: usize,
    /// Every prediction given, whether or not its instance was selected (upstream counts
    /// `len(predictions)`).
    pub submitted_instances: usize,
    pub completed_instances: usize,
    pub resolved_instances: usize,
    pub unresolved_instances: usize,
    #[serde(default)]
    pub infra_failure_instances: usize,
    #[serde(default)]
    pub ambiguous_failure_instances: usize,
    pub empty_patch_instances: usize,
    pub error_instances: usize,
    pub completed_ids: Vec<String>,
    pub incomplete_ids: Vec<String>,
    pub empty_patch_ids: Vec<String>,
    pub submitted_ids: Vec<String>,
    pub resolved_ids: Vec<String>,
    pub unresolved_ids: Vec<String>,
    #[serde(default)]
    pub infra_failure_ids: Vec<String>,
    #[serde(default)]
    pub ambiguous_failure_ids: Vec<String>,
    /// Instance id → infra-failure signature, for unresolved and errored instances.
    #[serde(default)]
    pub failure_reasons: BTreeMap<String, String>,
    pub error_ids: Vec<String>,
    pub schema_version: u32,
}

#[derive(Default)]
struct Sets {
    completed: BTreeSet<String>,
    incomplete: BTreeSet<String>,
    empty_patch: BTreeSet<String>,
    resolved: BTreeSet<String>,
    unresolved: BTreeSet<String>,
    error: BTreeSet<String>,
    infra: BTreeSet<String>,
    ambiguous: BTreeSet<String>,
    reasons: BTreeMap<String, String>,
}

/// The files of one instance under an eval directory.
pub const REPORT_FILE: &str = "report.json";
pub const TEST_OUTPUT_FILE: &str = "test_output.txt";
pub const INSTANCE_LOG_FILE: &str = "run_instance.log";

impl RunSummary {
    /// Classifies every dataset instance from `eval_dir/<iid>/`: no prediction → incomplete;
    /// an empty or null patch → empty patch (never run); a readable `report.json` →
    /// completed and resolved or unresolved; an empty or unreadable one → completed and
    /// error; none → error. Unresolved and errored instances are then classified from
    /// `test_output.txt` and `run_instance.log` (advisory; counts are unchanged).
    pub fn from_eval_dir(
        dataset_ids: &[String],
        predictions: &Predictions,
        eval_dir: &Path,
    ) -> Self {
        Self::from_dirs(dataset_ids, predictions, eval_dir, eval_dir)
    }

    /// [`Self::from_eval_dir`] with the reports in `reports_dir` and the logs that classify
    /// failures in `logs_dir`.
    pub fn from_dirs(
        dataset_ids: &[String],
        predictions: &Predictions,
        reports_dir: &Path,
        logs_dir: &Path,
    ) -> Self {
        let mut sets = Sets::default();
        for id in dataset_ids {
            let Some(prediction) = predictions.get(id) else {
                sets.incomplete.insert(id.clone());
                continue;
            };
            if prediction.model_patch.as_deref().unwrap_or("").is_empty() {
                sets.empty_patch.insert(id.clone());
                continue;
            }
            classify_report(id, &reports_dir.join(id).join(REPORT_FILE), &mut sets);
        }
        let failed: Vec<String> = sets.unresolved.union(&sets.error).cloned().collect();
        for id in failed {
            let dir = logs_dir.join(&id);
            let logs = [dir.join(TEST_OUTPUT_FILE), dir.join(INSTANCE_LOG_FILE)];
            if let Some((reason, tier)) = classify_logs(&[&logs[0], &logs[1]]) {
                sets.reasons.insert(id.clone(), reason.to_string());
                match tier {
                    Tier::Environment => sets.infra.insert(id),
                    Tier::Ambiguous => sets.ambiguous.insert(id),
                };
            }
        }
        let submitted = predictions.keys().cloned().collect();
        Self::from_sets(dataset_ids.len(), submitted, sets)
    }

    fn from_sets(total: usize, submitted_ids: Vec<String>, sets: Sets) -> Self {
        let list = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        Self {
            total_instances: total,
            submitted_instances: submitted_ids.len(),
            completed_instances: sets.completed.len(),
            resolved_instances: sets.resolved.len(),
            unresolved_instances: sets.unresolved.len(),
            infra_failure_instances: sets.infra.len(),
            ambiguous_failure_instances: sets.ambiguous.len(),
            empty_patch_instances: sets.empty_patch.len(),
            error_instances: sets.error.len(),
            completed_ids: list(sets.completed),
            incomplete_ids: list(sets.incomplete),
            empty_patch_ids: list(sets.empty_patch),
            submitted_ids,
            resolved_ids: list(sets.resolved),
            unresolved_ids: list(sets.unresolved),
            infra_failure_ids: list(sets.infra),
            ambiguous_failure_ids: list(sets.ambiguous),
            failure_reasons: sets.reasons,
            error_ids: list(sets.error),
            schema_version: 2,
        }
    }

    /// The exact text `make_run_report` writes: `json.dumps(report, indent=4)` and a newline.
    pub fn to_official_json(&self) -> String {
        crate::pyjson::dumps_indent4(self) + "\n"
    }

    /// Writes the summary atomically.
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        write_atomic(path, self.to_official_json().as_bytes())
    }

    /// `resolved R/N (P%)`, N being the instances submitted for evaluation.
    pub fn resolved_line(&self) -> String {
        let n = self.submitted_instances;
        let pct = if n == 0 {
            0.0
        } else {
            100.0 * self.resolved_instances as f64 / n as f64
        };
        format!("resolved {}/{n} ({pct:.1}%)", self.resolved_instances)
    }
}

/// Upstream reads `report[iid]["resolved"]` with Python truthiness; an empty file, bad
/// JSON or a missing key is an error (while the instance still counts as completed).
fn classify_report(id: &str, path: &Path, sets: &mut Sets) {
    let Ok(bytes) = std::fs::read(path) else {
        sets.error.insert(id.to_string());
        return;
    };
    sets.completed.insert(id.to_string());
    let text = String::from_utf8_lossy(&bytes);
    let text = cwm_parsers::py_strip(&text);
    // Python's json.loads also reads NaN and Infinity, both truthy.
    let resolved = serde_json::from_str::<serde_json::Value>(text)
        .or_else(|_| serde_json::from_str(&python_constants_as_one(text)))
        .ok()
        .and_then(|v| v.get(id).and_then(|r| r.get("resolved")).map(truthy));
    match resolved {
        Some(true) => sets.resolved.insert(id.to_string()),
        Some(false) => sets.unresolved.insert(id.to_string()),
        None => sets.error.insert(id.to_string()),
    };
}

/// `NaN`, `Infinity` and `-Infinity` outside strings replaced by `1` (as truthy as they are
/// in Python), so the text parses as strict JSON.
fn python_constants_as_one(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_string {
            let word = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|w| rest.starts_with(w));
            if let Some(word) = word {
                out.push('1');
                rest = &rest[word.len()..];
                continue;
            }
        }
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Python's `bool(value)` for a JSON value.
fn truthy(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predictions::Prediction;

    fn write(dir: &Path, id: &str, file: &str, text: &str) {
        let path = dir.join(id).join(file);
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn classifies_like_upstream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let eval = dir.path();
        let ids: Vec<String> = ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut preds = Predictions::new();
        for (id, patch) in [
            ("a", Some("diff")),
            ("b", Some("diff")),
            ("c", Some("")),
            ("d", Some("diff")),
            ("f", None),
            ("g", Some("diff")),
            ("h", Some("diff")),
            ("z", Some("diff")),
        ] {
            let p = Prediction {
                instance_id: id.into(),
                model_name_or_path: "m".into(),
                model_patch: patch.map(str::to_string),
            };
            preds.insert(id.into(), p);
        }
        write(eval, "a", REPORT_FILE, r#"{"a": {"resolved": true}}"#);
        write(eval, "b", REPORT_FILE, r#"{"b": {"resolved": 0}}"#);
        write(eval, "b", TEST_OUTPUT_FILE, "collected 0 items\n");
        write(eval, "d", INSTANCE_LOG_FILE, "Killed\n");
        write(eval, "g", REPORT_FILE, "  ");
        write(
            eval,
            "h",
            REPORT_FILE,
            "\u{a0}{\"h\": {\"resolved\": NaN, \"x\": \"NaN\"}}\u{1c}\n",
        );
        let s = RunSummary::from_eval_dir(&ids, &preds, eval);
        assert_eq!(s.total_instances, 8);
        assert_eq!(s.submitted_instances, 8);
        assert_eq!(s.resolved_ids, vec!["a", "h"]);
        assert_eq!(s.unresolved_ids, vec!["b"]);
        assert_eq!(s.error_ids, vec!["d", "g"]);
        assert_eq!(s.completed_ids, vec!["a", "b", "g", "h"]);
        assert_eq!(s.empty_patch_ids, vec!["c", "f"]);
        assert_eq!(s.incomplete_ids, vec!["e"]);
        assert_eq!(s.infra_failure_ids, vec!["d"]);
        assert_eq!(s.ambiguous_failure_ids, vec!["b"]);
        assert_eq!(s.failure_reasons["d"], "out_of_memory");
        assert_eq!(s.schema_version, 2);
        assert_eq!(s.resolved_line(), "resolved 2/8 (25.0%)");
        let text = s.to_official_json();
        assert!(text.ends_with("}\n"));
        assert!(text.find("error_instances") < text.find("completed_ids"));
    }
}
