//! Errors of the run pipeline. Each names what went wrong and, where the user can act, what to
//! do; the library crates' errors are kept as sources.

use std::path::PathBuf;

/// What can stop the pipeline, or one instance of it.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A setting out of its range (`setting` is its flag or TOML key).
    #[error("{setting}: {why}")]
    InvalidSetting { setting: String, why: String },
    #[error("config file {}: {detail}; keys are the `run` flags in snake_case, one table per section ([run], [dataset], [episode], [sampling], [backend], [eval])", path.display())]
    ConfigFile { path: PathBuf, detail: String },
    #[error("loading dataset {}", path.display())]
    Dataset {
        path: PathBuf,
        #[source]
        source: cwm_datasets::DatasetError,
    },
    #[error("selecting instances")]
    Filter(#[from] cwm_datasets::DatasetError),
    #[error(transparent)]
    Profile(#[from] cwm_tools::ProfileError),
    #[error(transparent)]
    Policy(#[from] cwm_agent::PolicyError),
    #[error("loading local model {}", path.display())]
    LocalModel {
        path: PathBuf,
        #[source]
        source: cwm_engine::LocalError,
    },
    #[error(transparent)]
    Env(#[from] cwm_env::EnvError),
    #[error(transparent)]
    Eval(#[from] cwm_eval::EvalError),
    #[error(transparent)]
    Agent(#[from] cwm_agent::AgentError),
    #[error(transparent)]
    Trajectory(#[from] cwm_protocol::TrajectoryError),
    #[error(transparent)]
    Results(#[from] cwm_results::ResultsError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serialising {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// The run directory cannot be written any more (a full or read-only disk).
    #[error("the run stopped: {cause}; free space in (or make writable) {}, then run again with --run-id {run_id} to finish", run_dir.display())]
    Stopped {
        cause: String,
        run_dir: PathBuf,
        run_id: String,
    },
    /// An episode ended for a reason that is not the model's: its container stopped under
    /// it (killed, OOM-killed, a daemon restart) or the model server failed.
    #[error("{instance_id}: the {stage} failed, not by the model's doing: {reason}")]
    Infrastructure {
        instance_id: String,
        stage: cwm_results::Stage,
        reason: String,
    },
    /// Ctrl-C, SIGTERM or SIGHUP arrived; what finished is kept. `exit_code` is what shells
    /// report for the signal (128 + its number).
    #[error("interrupted; run again with --run-id {run_id} to finish")]
    Interrupted { run_id: String, exit_code: u8 },
}

impl PipelineError {
    /// Failures of the machine rather than of the model: Docker (the daemon, a container
    /// that stopped, an image that cannot be had), the model server, or an episode that
    /// ended because of one of those. Such an instance is not scored; it is redone.
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self,
            PipelineError::Infrastructure { .. }
                | PipelineError::Env(_)
                | PipelineError::Eval(cwm_eval::EvalError::Env { .. })
        )
    }

    /// Errors after which every later instance would fail the same way: the disk holding the
    /// run is full or read-only.
    pub fn stops_the_run(&self) -> bool {
        use std::error::Error;
        use std::io::ErrorKind;
        let mut cause: Option<&(dyn Error + 'static)> = Some(self);
        while let Some(err) = cause {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    ErrorKind::StorageFull
                        | ErrorKind::QuotaExceeded
                        | ErrorKind::ReadOnlyFilesystem
                ) {
                    return true;
                }
            }
            cause = err.source();
        }
        false
    }
}
