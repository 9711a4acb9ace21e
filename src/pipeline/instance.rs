//! One instance: the episode in its own container, and grading in a fresh one.

use std::path::Path;
use std::time::{Duration, Instant};

use cwm_agent::{EpisodeConfig, EpisodeContext, EpisodeObserver, Policy};
use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, Docker};
use cwm_eval::{EvalOptions, Evaluation};
use cwm_protocol::{ExitStatus, Footer, TrajectorySink};

use crate::error::PipelineError;

/// How long a container may outlive its episode's own time limit, so a SIGKILLed run cannot
/// leave it running for long.
const CONTAINER_MARGIN: Duration = Duration::from_secs(600);

/// What one episode needs besides the model and the recorder.
pub struct Task<'a> {
    pub docker: &'a Docker,
    pub instance: &'a Instance,
    /// Labels the container, so a later attempt (or `cwm-bench clean`) finds leftovers.
    pub run_id: &'a str,
    pub episode: &'a EpisodeConfig,
    /// Leave the container running afterwards (`repro --keep`).
    pub keep: bool,
}

/// Where an episode's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Creating and starting the container.
    pub start: Duration,
    /// The episode itself (repo hygiene, model and tools).
    pub episode: Duration,
    /// Removing the container (zero when kept).
    pub remove: Duration,
}

/// A finished episode.
#[derive(Debug, Clone)]
pub struct Solved {
    /// The trajectory's last record: exit status, patch, counts.
    pub footer: Footer,
    /// The kept container's id (with [`Task::keep`]).
    pub kept: Option<String>,
    /// For an episode that ended `env_error` because its container stopped under it (not
    /// the model's doing): why it stopped ([`cwm_env::Container::stopped_reason`]).
    pub container_stopped: Option<String>,
    pub timings: Timings,
}

impl Solved {
    /// Why this episode is an infrastructure failure rather than the model's, if it is one:
    /// the model server failed (a `model_error` the footer marks as `infrastructure`), or the
    /// container stopped under the episode.
    pub fn infrastructure_failure(&self) -> Option<String> {
        let detail = self.footer.error.as_deref().unwrap_or("no detail");
        match (self.footer.status, &self.container_stopped) {
            (ExitStatus::ModelError, _) if self.footer.infrastructure => {
                Some(format!("model_error: {detail}"))
            }
            (ExitStatus::EnvError, Some(stopped)) => {
                Some(format!("env_error: {detail}; {stopped}"))
            }
            _ => None,
        }
    }
}

/// Runs the episode in a fresh container of the instance's image (pulled or built when
/// missing), then removes the container, even when the episode failed. Errors: the image or
/// container cannot be had, or the trajectory cannot be written. A removal that fails (the
/// daemon restarting) is logged and left to the run's removal of its labelled containers,
/// so a finished episode is never lost to it.
pub async fn solve(
    task: &Task<'_>,
    policy: &mut dyn Policy,
    recorder: &mut dyn TrajectorySink,
    observer: &mut dyn EpisodeObserver,
) -> Result<Solved, PipelineError> {
    let image = task.instance.image_name();
    cwm_env::ensure_image(task.docker, &image).await?;
    let started = Instant::now();
    let deadline = task
        .episode
        .budgets
        .wall_clock_secs
        .map_or(CONTAINER_MARGIN, |s| {
            Duration::from_secs(s) + CONTAINER_MARGIN
        });
    let config = ContainerConfig::for_episode(&image, task.run_id, &task.instance.instance_id)
        .with_deadline(deadline);
    let container = Container::start(task.docker, &config).await?;
    let start = started.elapsed();
    let episode_started = Instant::now();
    let outcome = cwm_agent::run_episode(EpisodeContext {
        container: &container,
        instance: task.instance,
        policy,
        config: task.episode,
        recorder,
        observer,
    })
    .await;
    let episode = episode_started.elapsed();
    let container_stopped = match &outcome {
        Ok(footer) if footer.status == ExitStatus::EnvError => {
            container.stopped_reason_settled().await
        }
        _ => None,
    };
    let remove_started = Instant::now();
    let kept = if task.keep {
        Some(container.keep())
    } else {
        let id = container.id().to_string();
        if let Err(e) = container.remove().await {
            tracing::warn!(
                "could not remove container {id} (removed with the run's leftovers): {e}"
            );
        }
        None
    };
    let remove = if kept.is_some() {
        Duration::ZERO
    } else {
        remove_started.elapsed()
    };
    Ok(Solved {
        footer: outcome?,
        kept,
        container_stopped,
        timings: Timings {
            start,
            episode,
            remove,
        },
    })
}

/// Grades `patch` in a fresh container, writing the official files to `out_dir`; an
/// evaluation already finished there is read back instead of run again.
pub async fn grade(
    docker: &Docker,
    instance: &Instance,
    patch: Option<&str>,
    options: &EvalOptions,
    out_dir: &Path,
) -> Result<Evaluation, PipelineError> {
    if let Some(done) = Evaluation::read(out_dir)? {
        return Ok(done);
    }
    Ok(cwm_eval::evaluate(docker, instance, patch, options, out_dir).await?)
}
