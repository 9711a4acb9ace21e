//! The layout of `runs/<run-id>/` and the crash-safe prediction log inside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cwm_datasets::Prediction;

use crate::store::{write_atomic, JsonlStore};
use crate::ResultsError;

/// `runs/<run-id>/`: `config.json`, `trajectories/<iid>.jsonl`, `preds.jsonl`,
/// `eval/<iid>/...`, `summary.json` and `run.log`.
pub struct RunDir {
    root: PathBuf,
    predictions: JsonlStore,
    finished: BTreeMap<String, Prediction>,
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
        Ok(RunDir {
            root: root.to_path_buf(),
            predictions,
            finished,
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
