//! Gold validation: every selected instance's gold patch must resolve it, and its base commit
//! (no patch) must not. Instances that break either rule have broken images or flaky tests;
//! listing them before a run saves model time. The list can be fed back as `--known-bad`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cwm_datasets::Instance;
use cwm_env::Docker;
use cwm_eval::{EvalOptions, Evaluation};
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;

/// `validation.json`: what the gold and base-commit runs showed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// Instances validated.
    pub instances: usize,
    /// Gold resolves and the base commit does not.
    pub ok: Vec<String>,
    /// The gold patch does not resolve the instance.
    pub gold_unresolved: Vec<Problem>,
    /// The base commit, with no patch, already resolves the instance.
    pub base_resolved: Vec<Problem>,
    /// Every instance above, once, sorted: the list `--known-bad` reads.
    pub known_bad: Vec<String>,
}

/// One instance that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub instance_id: String,
    /// The grader's error (no report: the patch did not apply, the tests timed out, ...), or
    /// `tests` when the report names failing tests.
    pub reason: String,
    /// FAIL_TO_PASS tests that failed (gold) or passed (base).
    #[serde(rename = "FAIL_TO_PASS")]
    pub fail_to_pass: Vec<String>,
    /// PASS_TO_PASS tests that failed.
    #[serde(rename = "PASS_TO_PASS")]
    pub pass_to_pass: Vec<String>,
}

/// Where the base-commit runs of a validation go: `<run_dir>/validate-base/<iid>/`.
pub fn base_dir(run_dir: &Path, instance_id: &str) -> PathBuf {
    run_dir.join("validate-base").join(instance_id)
}

/// Runs the instance's tests on its base commit (or reads the finished run back).
pub async fn validate_base(
    docker: &Docker,
    instance: &Instance,
    options: &EvalOptions,
    run_dir: &Path,
) -> Result<Evaluation, PipelineError> {
    let dir = base_dir(run_dir, &instance.instance_id);
    if let Some(done) = Evaluation::read(&dir)? {
        return Ok(done);
    }
    Ok(cwm_eval::evaluate_base(docker, instance, options, &dir).await?)
}

impl ValidationReport {
    /// Builds the report from the gold evaluations in `<run_dir>/eval/` and the base runs in
    /// `<run_dir>/validate-base/`; an instance missing either was not validated and is left
    /// out of `ok`.
    pub fn from_run_dir(instances: &[Instance], run_dir: &Path) -> Result<Self, PipelineError> {
        let mut report = ValidationReport {
            instances: instances.len(),
            ..Self::default()
        };
        for instance in instances {
            let iid = &instance.instance_id;
            let gold = Evaluation::read(&run_dir.join("eval").join(iid))?;
            let base = Evaluation::read(&base_dir(run_dir, iid))?;
            let (Some(gold), Some(base)) = (gold, base) else {
                continue;
            };
            let gold_ok = gold.resolved();
            let base_ok = !base.resolved();
            if !gold_ok {
                report.gold_unresolved.push(problem(iid, &gold, false));
            }
            if !base_ok {
                report.base_resolved.push(problem(iid, &base, true));
            }
            if gold_ok && base_ok {
                report.ok.push(iid.clone());
            }
        }
        let bad: BTreeSet<String> = report
            .gold_unresolved
            .iter()
            .chain(&report.base_resolved)
            .map(|p| p.instance_id.clone())
            .collect();
        report.known_bad = bad.into_iter().collect();
        Ok(report)
    }

    /// Writes `validation.json` in `run_dir`.
    pub fn write(&self, run_dir: &Path) -> Result<PathBuf, PipelineError> {
        let path = run_dir.join("validation.json");
        let text = serde_json::to_string_pretty(self).map_err(|source| PipelineError::Json {
            what: "the validation report".into(),
            source,
        })?;
        cwm_results::write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }

    /// One line: how many were validated and how many are bad.
    pub fn line(&self) -> String {
        format!(
            "validated {}: {} ok, {} whose gold patch does not resolve them, {} resolved with no patch",
            self.instances,
            self.ok.len(),
            self.gold_unresolved.len(),
            self.base_resolved.len()
        )
    }
}

/// Why `evaluation` broke the rule. `base`: the run had no patch, so the FAIL_TO_PASS tests
/// that *passed* are the problem.
fn problem(instance_id: &str, evaluation: &Evaluation, base: bool) -> Problem {
    let status = evaluation
        .report
        .as_ref()
        .and_then(|r| r.tests_status.as_ref());
    let (fail_to_pass, pass_to_pass) = match status {
        Some(s) if base => (s.fail_to_pass.success.clone(), Vec::new()),
        Some(s) => (
            s.fail_to_pass.failure.clone(),
            s.pass_to_pass.failure.clone(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let reason = evaluation
        .hardened
        .error
        .clone()
        .unwrap_or_else(|| "tests".into());
    Problem {
        instance_id: instance_id.to_string(),
        reason,
        fail_to_pass,
        pass_to_pass,
    }
}

/// Reads a known-bad list: a `validation.json` (its `known_bad`), a JSON list of ids, or one
/// id per line (`#` starts a comment). Errors name the file.
pub fn read_known_bad(path: &Path) -> Result<BTreeSet<String>, PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
        what: format!("reading the known-bad list {}", path.display()),
        source,
    })?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum List {
            Report { known_bad: Vec<String> },
            Ids(Vec<String>),
        }
        let list: List =
            serde_json::from_str(&text).map_err(|e| PipelineError::InvalidSetting {
                setting: format!("--known-bad {}", path.display()),
                why: format!("not a validation.json or a JSON list of instance ids ({e})"),
            })?;
        let (List::Report { known_bad: ids } | List::Ids(ids)) = list;
        return Ok(ids.into_iter().collect());
    }
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bad_reads_reports_lists_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("validation.json");
        std::fs::write(&report, r#"{"instances": 2, "known_bad": ["a__b-1"]}"#).unwrap();
        assert_eq!(
            read_known_bad(&report).unwrap(),
            BTreeSet::from(["a__b-1".into()])
        );
        let list = dir.path().join("list.json");
        std::fs::write(&list, r#"["x", "y"]"#).unwrap();
        assert_eq!(read_known_bad(&list).unwrap().len(), 2);
        let lines = dir.path().join("bad.txt");
        std::fs::write(&lines, "# flaky\nx  # times out\n\ny\n").unwrap();
        assert_eq!(
            read_known_bad(&lines).unwrap(),
            BTreeSet::from(["x".into(), "y".into()])
        );
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{nope").unwrap();
        let err = read_known_bad(&broken).unwrap_err().to_string();
        assert!(err.contains("broken.json"), "{err}");
    }
}
