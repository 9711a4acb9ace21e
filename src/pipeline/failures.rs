//! The run's failures, split so that a score is never silently lowered by a broken machine:
//! infrastructure failures (not scored; the next start of the run redoes them) and model
//! failures (scored: the instance finished and was not resolved). Written as
//! `failures.json` and printed after the closing table.

use std::collections::BTreeMap;
use std::path::Path;

use cwm_eval::hardened::{Hardened, HARDENED_FILE};
use cwm_protocol::{read_trajectory, ExitStatus};
use cwm_results::{write_atomic, InfraFailure, RunDir};
use serde::Serialize;

use crate::error::PipelineError;

/// Instances listed on the terminal per kind; `failures.json` has them all.
const SHOWN: usize = 10;

/// `failures.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Failures {
    /// The last infrastructure failure of each selected instance still unfinished.
    pub infrastructure: Vec<InfraFailure>,
    /// Finished, selected instances that were not resolved (graded runs) or whose episode
    /// ended without a submission (ungraded runs).
    pub model: Vec<ModelFailure>,
}

/// A finished instance the model did not solve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFailure {
    pub instance_id: String,
    /// The episode's exit status (`submitted`, `turn_limit`, ...).
    pub status: String,
    /// Why it is not resolved, in words.
    pub reason: String,
}

impl Failures {
    /// Collects the failures of `ids` from the run directory. `done` says which instances
    /// are finished (prediction recorded and, when grading, graded).
    pub fn collect(
        run_dir: &RunDir,
        ids: &[String],
        evaluate: bool,
        done: impl Fn(&str) -> bool,
    ) -> Result<Self, PipelineError> {
        let mut last: BTreeMap<String, InfraFailure> = BTreeMap::new();
        for failure in run_dir.infra_failures()? {
            last.insert(failure.instance_id.clone(), failure);
        }
        let mut failures = Failures::default();
        for id in ids {
            if !done(id) {
                failures.infrastructure.extend(last.remove(id));
            } else if let Some(model) = model_failure(run_dir, id, evaluate) {
                failures.model.push(model);
            }
        }
        Ok(failures)
    }

    /// Writes `failures.json` into the run directory, atomically.
    pub fn write(&self, run_dir: &Path) -> Result<(), PipelineError> {
        let path = run_dir.join("failures.json");
        let text = serde_json::to_vec_pretty(self).map_err(|source| PipelineError::Json {
            what: path.display().to_string(),
            source,
        })?;
        Ok(write_atomic(&path, &text)?)
    }

    /// The lines printed after the closing table: both counts, and up to [`SHOWN`] instances
    /// of each kind.
    pub fn lines(&self, run_id: &str) -> String {
        let mut out = format!(
            "infrastructure failures: {} (not scored",
            self.infrastructure.len()
        );
        if self.infrastructure.is_empty() {
            out.push_str(")\n");
        } else {
            out.push_str(&format!(
                "; run again with --run-id {run_id} to redo them, or use --retry-infra)\n"
            ));
        }
        for f in self.infrastructure.iter().take(SHOWN) {
            out.push_str(&format!(
                "  {} ({}): {}\n",
                f.instance_id, f.stage, f.reason
            ));
        }
        more(&mut out, self.infrastructure.len());
        out.push_str(&format!("model failures: {}\n", self.model.len()));
        for f in self.model.iter().take(SHOWN) {
            out.push_str(&format!(
                "  {} ({}): {}\n",
                f.instance_id, f.status, f.reason
            ));
        }
        more(&mut out, self.model.len());
        out.trim_end().to_string()
    }
}

fn more(out: &mut String, n: usize) {
    if n > SHOWN {
        out.push_str(&format!("  ... and {} more in failures.json\n", n - SHOWN));
    }
}

/// Why finished instance `id` is a model failure, or `None` when it is not one.
fn model_failure(run_dir: &RunDir, id: &str, evaluate: bool) -> Option<ModelFailure> {
    let footer = read_trajectory(&run_dir.trajectory_path(id))
        .ok()
        .and_then(|t| t.footer);
    let status = footer
        .as_ref()
        .map_or("unknown".to_string(), |f| f.status.to_string());
    let empty = run_dir.finished().get(id).is_none_or(|p| {
        p.model_patch
            .as_deref()
            .unwrap_or_default()
            .trim()
            .is_empty()
    });
    let reason = if evaluate {
        let hardened = read_hardened(&run_dir.eval_dir(id))?;
        if hardened.resolved {
            return None;
        }
        match hardened.error {
            Some(error) => error,
            None if empty => "empty patch".to_string(),
            None => "the tests did not pass".to_string(),
        }
    } else {
        match footer.as_ref().map(|f| f.status) {
            Some(ExitStatus::Submitted) if !empty => return None,
            Some(ExitStatus::Submitted) => "submitted an empty patch".to_string(),
            _ if empty => "no patch".to_string(),
            _ => "ended without a submission (budget patch kept)".to_string(),
        }
    };
    Some(ModelFailure {
        instance_id: id.to_string(),
        status,
        reason,
    })
}

fn read_hardened(dir: &Path) -> Option<Hardened> {
    let text = std::fs::read_to_string(dir.join(HARDENED_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}
