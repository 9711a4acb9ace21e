//! The layout of `runs/<run-id>/` and the crash-safe prediction log inside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cwm_datasets::Prediction;
use serde::{Deserialize, Serialize};

use crate::store::{write_atomic, JsonlStore};
use crate::ResultsError;

/// `runs/<run-id>/`: `config.json`, `trajectories/<iid>.jsonl` (earlier attempts of an
/// instance under `trajectories/attempts/`), `preds.jsonl`, `infra_failures.jsonl`,
/// `eval/<iid>/...`, `summary.json`, `failures.json` and `run.log`.
pub struct RunDir {
    root: PathBuf,
    predictions: JsonlStore,
    finished: BTreeMap<String, Prediction>,
    infra: JsonlStore,
}

/// Where in an instance's work an infrastructure failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The episode (its container, the daemon, or the model server failed).
    Episode,
    /// The evaluation of the prediction (its container or the daemon failed).
    Evaluation,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Episode => "episode",
            Stage::Evaluation => "evaluation",
        })
    }
}

/// One line of `infra_failures.jsonl`: an attempt at an instance that failed for a reason
/// that is not the model's. The instance stays unfinished (no prediction, or no verdict), so
/// the next start of the run redoes it; the log keeps every such attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraFailure {
    pub instance_id: String,
    pub stage: Stage,
    /// What failed, one line (e.g. the container's exit code and the OOM flag).
    pub reason: String,
    /// UTC time, RFC 3339.
    pub at: String,
}

impl RunDir {
    /// Opens or creates the run directory, repairing a torn `preds.jsonl`.
    pub fn open(root: &Path) -> Result<Self, ResultsError> {
        std::fs::create_dir_all(root.join("trajectories")).map_err(|source| ResultsError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let predictions = JsonlStore::open(&root.join("preds.jsonl"))?;
        let finished = predictions
            .read_all::<Prediction>()?
            .into_iter()
            .map(|p| (p.instance_id.clone(), p))
            .collect();
        let infra = JsonlStore::open(&root.join("infra_failures.jsonl"))?;
        Ok(RunDir {
            root: root.to_path_buf(),
            predictions,
            finished,
            infra,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Instances whose prediction is already recorded; a resumed run skips them.
    pub fn finished(&self) -> &BTreeMap<String, Prediction> {
        &self.finished
    }

    /// Records a prediction, once per instance: a repeat is ignored, never duplicated.
    pub fn record_prediction(&mut self, prediction: Prediction) -> Result<(), ResultsError> {
        if self.finished.contains_key(&prediction.instance_id) {
            return Ok(());
        }
        self.predictions.append(&prediction)?;
        self.finished
            .insert(prediction.instance_id.clone(), prediction);
        Ok(())
    }

    /// Appends an infrastructure failure to `infra_failures.jsonl` (crash-safe, as
    /// predictions are).
    pub fn record_infra_failure(&mut self, failure: &InfraFailure) -> Result<(), ResultsError> {
        self.infra.append(failure)
    }

    /// Every infrastructure failure recorded, oldest first, across starts of the run.
    pub fn infra_failures(&self) -> Result<Vec<InfraFailure>, ResultsError> {
        self.infra.read_all()
    }

    /// Moves an earlier attempt's trajectory of `instance_id` (an infrastructure failure, or
    /// a start cut short by a crash) to `trajectories/attempts/<iid>.<n>.jsonl`, so that a new
    /// episode does not overwrite it. Does nothing when there is none.
    pub fn set_aside_trajectory(&self, instance_id: &str) -> Result<(), ResultsError> {
        let current = self.trajectory_path(instance_id);
        if !current.exists() {
            return Ok(());
        }
        let dir = self.root.join("trajectories").join("attempts");
        let io = |source| ResultsError::Io {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut n = 1;
        while dir.join(format!("{instance_id}.{n}.jsonl")).exists() {
            n += 1;
        }
        std::fs::rename(&current, dir.join(format!("{instance_id}.{n}.jsonl"))).map_err(io)
    }

    pub fn trajectory_path(&self, instance_id: &str) -> PathBuf {
        self.root
            .join("trajectories")
            .join(format!("{instance_id}.jsonl"))
    }

    pub fn eval_dir(&self, instance_id: &str) -> PathBuf {
        self.root.join("eval").join(instance_id)
    }

    pub fn summary_path(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("run.log")
    }

    /// Saves the effective configuration of this run.
    pub fn write_config(&self, config: &serde_json::Value) -> Result<(), ResultsError> {
        let text = serde_json::to_vec_pretty(config).map_err(|source| ResultsError::Encode {
            path: self.root.join("config.json"),
            source,
        })?;
        write_atomic(&self.root.join("config.json"), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(id: &str) -> Prediction {
        Prediction {
            instance_id: id.into(),
            model_name_or_path: "m".into(),
            model_patch: Some("diff --git a/x b/x\n".into()),
        }
    }

    #[test]
    fn predictions_survive_reopen_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = RunDir::open(dir.path()).unwrap();
        run.record_prediction(prediction("a")).unwrap();
        run.record_prediction(prediction("a")).unwrap();
        drop(run);
        let mut run = RunDir::open(dir.path()).unwrap();
        run.record_prediction(prediction("b")).unwrap();
        assert_eq!(run.finished().keys().collect::<Vec<_>>(), ["a", "b"]);
        let lines = std::fs::read_to_string(dir.path().join("preds.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 2);
    }
}
