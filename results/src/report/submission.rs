//! `submission/<run>/`: the files the SWE-bench experiments repository asks for, in the
//! official formats: `all_preds.jsonl`, the run report `<model>.<run_id>.json`, `logs/<iid>/`
//! (report.json, patch.diff, test_output.txt) and `trajs/<iid>.jsonl`.

use std::path::{Path, PathBuf};

use cwm_eval::predictions::{Prediction, Predictions};
use cwm_eval::RunSummary;

use super::html::slug;
use crate::loaded::LoadedRun;
use crate::report::write_file;
use crate::ResultsError;

/// Per-instance eval files copied into `logs/<iid>/` when they exist.
const LOG_FILES: [&str; 5] = [
    "report.json",
    "patch.diff",
    "test_output.txt",
    "run_instance.log",
    "eval.sh",
];

/// Predictions of every finished episode, as `preds.jsonl` records them.
pub fn predictions(run: &LoadedRun) -> Predictions {
    run.episodes
        .iter()
        .filter_map(|e| {
            let footer = e.trajectory.footer.as_ref()?;
            let prediction = Prediction {
                instance_id: e.instance_id().to_string(),
                model_name_or_path: e.trajectory.header.model.clone(),
                model_patch: footer.patch.clone(),
            };
            Some((prediction.instance_id.clone(), prediction))
        })
        .collect()
}

/// The official run summary over the run's episodes.
pub fn summary(run: &LoadedRun) -> RunSummary {
    let ids: Vec<String> = run
        .episodes
        .iter()
        .map(|e| e.instance_id().to_string())
        .collect();
    RunSummary::from_eval_dir(&ids, &predictions(run), &run.root.join("eval"))
}

/// The file name upstream's `make_run_report` uses: `<model>.<run_id>.json`.
pub fn summary_file_name(run: &LoadedRun) -> String {
    format!("{}.{}.json", slug(&run.model()), slug(&run.run_id))
}

/// Writes `dir` for one run; returns the directory.
pub fn write(run: &LoadedRun, dir: &Path) -> Result<PathBuf, ResultsError> {
    let encode = |path: &Path, source: serde_json::Error| ResultsError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let preds_path = dir.join("all_preds.jsonl");
    let mut lines = String::new();
    for p in predictions(run).values() {
        lines.push_str(&serde_json::to_string(p).map_err(|e| encode(&preds_path, e))?);
        lines.push('\n');
    }
    write_file(&preds_path, lines.as_bytes())?;
    let summary_path = dir.join(summary_file_name(run));
    let text = serde_json::to_string_pretty(&summary(run)).map_err(|e| encode(&summary_path, e))?;
    write_file(&summary_path, format!("{text}\n").as_bytes())?;
    for e in &run.episodes {
        let id = e.instance_id();
        for name in LOG_FILES {
            copy_if_exists(
                &run.root.join("eval").join(id).join(name),
                &dir.join("logs").join(id).join(name),
            )?;
        }
        let traj = run.root.join("trajectories").join(format!("{id}.jsonl"));
        copy_if_exists(&traj, &dir.join("trajs").join(format!("{id}.jsonl")))?;
    }
    Ok(dir.to_path_buf())
}

fn copy_if_exists(from: &Path, to: &Path) -> Result<(), ResultsError> {
    if !from.exists() {
        return Ok(());
    }
    let bytes = std::fs::read(from).map_err(|source| ResultsError::Io {
        path: from.to_path_buf(),
        source,
    })?;
    write_file(to, &bytes)
}
