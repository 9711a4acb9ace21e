//! A finished run directory read back for exports and reports: its config, every episode's
//! trajectory, and the eval report next to it when the run was graded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cwm_datasets::Instance;
use cwm_eval::{Hardened, InstanceReport};
use cwm_protocol::{read_trajectory, Trajectory};

use crate::ResultsError;

/// One episode: its trajectory and, when graded, its `report.json` (absent where the
/// official grader writes none) and `hardened.json`.
#[derive(Debug, Clone)]
pub struct Episode {
    pub trajectory: Trajectory,
    pub report: Option<InstanceReport>,
    /// The hardened verdict; its presence means the evaluation finished.
    pub hardened: Option<Hardened>,
    /// The dataset row, when the run's dataset could still be loaded.
    pub instance: Option<Instance>,
}

impl Episode {
    pub fn instance_id(&self) -> &str {
        &self.trajectory.header.instance_id
    }

    /// The final patch (the footer's), `None` for an unfinished episode or no submission.
    pub fn patch(&self) -> Option<&str> {
        self.trajectory.footer.as_ref()?.patch.as_deref()
    }

    pub fn resolved(&self) -> bool {
        self.report.as_ref().is_some_and(|r| r.resolved)
    }

    /// The hardened verdict (false when not evaluated).
    pub fn hardened_resolved(&self) -> bool {
        self.hardened.as_ref().is_some_and(|h| h.resolved)
    }

    /// Whether the evaluation finished (some graded instances have no official report).
    pub fn graded(&self) -> bool {
        self.report.is_some() || self.hardened.is_some()
    }

    /// The hardened verdict raised flags or differs from the official one.
    pub fn flagged(&self) -> bool {
        self.hardened
            .as_ref()
            .is_some_and(|h| !h.flags.is_empty() || h.disagrees())
    }

    /// FAIL_TO_PASS successes over all FAIL_TO_PASS tests; 0 without a graded log.
    pub fn f2p_fraction(&self) -> f64 {
        let Some(status) = self.report.as_ref().and_then(|r| r.tests_status.as_ref()) else {
            return 0.0;
        };
        let f2p = &status.fail_to_pass;
        let total = f2p.success.len() + f2p.failure.len();
        if total == 0 {
            // An empty list counts as all passing, as in the grader.
            return if self.resolved() { 1.0 } else { 0.0 };
        }
        f2p.success.len() as f64 / total as f64
    }

    pub fn patch_applied(&self) -> bool {
        self.report
            .as_ref()
            .is_some_and(|r| r.patch_successfully_applied)
    }

    /// The repository, as the dataset spells it (`owner/name`).
    pub fn repo(&self) -> &str {
        &self.trajectory.header.repo
    }

    pub fn difficulty(&self) -> &str {
        self.instance
            .as_ref()
            .and_then(|i| i.difficulty.as_deref())
            .unwrap_or("unknown")
    }

    /// The footer's status, or `unfinished` when the episode has no footer.
    pub fn status(&self) -> &'static str {
        self.trajectory
            .footer
            .as_ref()
            .map_or("unfinished", |f| f.status.as_str())
    }
}

/// A run directory loaded whole.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub root: PathBuf,
    /// The directory name, which is the run id.
    pub run_id: String,
    /// `config.json` as written by `cwm-bench run` (`null` when absent).
    pub config: serde_json::Value,
    /// Sorted by instance id.
    pub episodes: Vec<Episode>,
}

impl LoadedRun {
    /// Reads `config.json`, `trajectories/*.jsonl` and `eval/<iid>/report.json`. The dataset
    /// named in the config is loaded for instance metadata when it still exists.
    pub fn load(root: &Path) -> Result<Self, ResultsError> {
        let traj_dir = root.join("trajectories");
        if !traj_dir.is_dir() {
            return Err(ResultsError::NotARunDir {
                path: root.to_path_buf(),
            });
        }
        let config = read_config(&root.join("config.json"))?;
        let instances = load_instances(&config);
        let mut episodes = Vec::new();
        for path in trajectory_files(&traj_dir)? {
            let trajectory = read_trajectory(&path)?;
            let id = trajectory.header.instance_id.clone();
            let report = read_report(&root.join("eval").join(&id).join("report.json"))?;
            let hardened = read_hardened(&root.join("eval").join(&id).join("hardened.json"))?;
            let instance = instances.get(&id).cloned();
            episodes.push(Episode {
                trajectory,
                report,
                hardened,
                instance,
            });
        }
        episodes.sort_by(|a, b| a.instance_id().cmp(b.instance_id()));
        let run_id = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string());
        Ok(LoadedRun {
            root: root.to_path_buf(),
            run_id,
            config,
            episodes,
        })
    }

    /// The model name: the config's, else the first trajectory header's.
    pub fn model(&self) -> String {
        if let Some(model) = config_str(&self.config, "backend", "model") {
            return model.to_string();
        }
        self.episodes
            .first()
            .map(|e| e.trajectory.header.model.clone())
            .unwrap_or_else(|| self.run_id.clone())
    }

    /// Every episode has a report.
    pub fn evaluated(&self) -> bool {
        self.episodes.iter().all(|e| e.report.is_some())
    }

    /// The first episode without a report, for error messages.
    pub fn first_ungraded(&self) -> Option<&Episode> {
        self.episodes.iter().find(|e| !e.graded())
    }
}

fn read_config(path: &Path) -> Result<serde_json::Value, ResultsError> {
    if !path.exists() {
        return Ok(serde_json::Value::Null);
    }
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ResultsError::BadFile {
        path: path.to_path_buf(),
        source,
    })
}

fn trajectory_files(dir: &Path) -> Result<Vec<PathBuf>, ResultsError> {
    let io = |source| ResultsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_hardened(path: &Path) -> Result<Option<Hardened>, ResultsError> {
    if !path.exists() {
        return Ok(None);
    }
    Hardened::read(path)
        .map(Some)
        .map_err(|e| ResultsError::Eval {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
}

fn read_report(path: &Path) -> Result<Option<InstanceReport>, ResultsError> {
    if !path.exists() {
        return Ok(None);
    }
    InstanceReport::read(path)
        .map(Some)
        .map_err(|e| ResultsError::Eval {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
}

/// The run's dataset by instance id; empty (with a warning) when it cannot be loaded, since
/// metadata is a nicety and the trajectories alone are enough.
fn load_instances(config: &serde_json::Value) -> BTreeMap<String, Instance> {
    let Some(path) = config_str(config, "dataset", "path") else {
        return BTreeMap::new();
    };
    match cwm_datasets::load(Path::new(path)) {
        Ok(all) => all
            .into_iter()
            .map(|i| (i.instance_id.clone(), i))
            .collect(),
        Err(e) => {
            tracing::warn!("dataset {path} of this run cannot be loaded ({e}); instance metadata and difficulty are left out");
            BTreeMap::new()
        }
    }
}

/// A setting of `config.json`: `section.key` of the settings tree, or (runs from before the
/// tree) the flat key `section` holding a string.
fn config_str<'a>(config: &'a serde_json::Value, section: &str, key: &str) -> Option<&'a str> {
    config
        .get(section)
        .and_then(|s| s.get(key).or(Some(s)))
        .and_then(|v| v.as_str())
        .or_else(|| config.get(key).and_then(|v| v.as_str()))
}
