//! A whole run: every selected instance goes container → repo hygiene → episode → patch →
//! prediction, and with `eval.evaluate` on to grading in a fresh container. A worker pool
//! bounds concurrency (one policy per worker); a run directory makes it resumable; a stop
//! signal or a full disk ends it with no container left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cwm_agent::{EpisodeConfig, JsonlTrajectoryWriter, Policy};
use cwm_datasets::{Instance, Prediction};
use cwm_env::Docker;
use cwm_eval::hardened::{HardenedSummary, HARDENED_FILE, HARDENED_SUMMARY_FILE};
use cwm_eval::{EvalOptions, RunSummary};
use cwm_results::{InfraFailure, LoadedRun, RunDir, Stage};
use tokio::task::JoinSet;

use super::failures::Failures;
use super::instance::{grade, solve, Task};
use crate::config::{CacheLevel, RunConfig};
use crate::error::PipelineError;
use crate::progress::{InstanceLine, RunProgress};

/// How long an instance waits for an unanswering Docker daemon (being restarted) before it
/// is tried anyway (and fails as an infrastructure failure).
const DAEMON_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A run ready to start: its settings, its instances and its directory.
pub struct Run {
    config: RunConfig,
    episode: EpisodeConfig,
    instances: Vec<Instance>,
    run_dir: RunDir,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// `<runs_dir>/<run_id>`.
    pub run_dir: PathBuf,
    pub run_id: String,
    /// The exit code of the stop signal that ended it early (128 + signal number), if any.
    pub interrupted: Option<u8>,
    /// `summary.json`, as SWE-bench 5.0.2's `make_run_report`.
    pub summary: RunSummary,
    /// `hardened_summary.json`.
    pub hardened: HardenedSummary,
    /// One row per selected instance with a finished trajectory.
    pub rows: Vec<SummaryRow>,
    /// The run graded its patches.
    pub evaluated: bool,
    /// Infrastructure failures (unfinished, not scored) and model failures, as written to
    /// `failures.json`.
    pub failures: Failures,
}

/// One finished episode, for the run's closing table.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub instance_id: String,
    pub repo: String,
    /// The exit status (`submitted`, `turn_limit`, ...).
    pub status: String,
    pub turns: u64,
    /// Prompt plus generated tokens.
    pub tokens: u64,
    pub seconds: f64,
    /// None when not graded.
    pub resolved: Option<bool>,
}

impl Run {
    /// Loads the prompt profile and the dataset, opens (or resumes) the run directory and
    /// saves the settings as `config.json`. Errors name the bad file or setting.
    pub fn prepare(config: RunConfig) -> Result<Self, PipelineError> {
        let episode = config.episode_config()?;
        Self::prepare_with(config, episode)
    }

    /// [`Run::prepare`] with episode settings of the caller's (e.g. `tts gen-tests`, whose
    /// episodes get another user prompt).
    pub fn prepare_with(config: RunConfig, episode: EpisodeConfig) -> Result<Self, PipelineError> {
        let instances = config.dataset.load()?;
        let run_dir = RunDir::open(&config.run_dir())?;
        run_dir.write_config(&to_json(&config)?)?;
        Ok(Self {
            config,
            episode,
            instances,
            run_dir,
        })
    }

    /// Where the run's log goes.
    pub fn log_path(&self) -> PathBuf {
        self.run_dir.log_path()
    }

    /// The selected instances, finished ones included.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Runs every instance not finished yet. `quiet` hides the progress display (log lines
    /// instead); `stop` resolving (to an exit code) stops the run cleanly.
    pub async fn execute(
        self,
        quiet: bool,
        stop: impl Future<Output = u8>,
    ) -> Result<RunOutcome, PipelineError> {
        let Run {
            config,
            episode,
            instances,
            run_dir,
        } = self;
        let run_id = config.run.run_id.clone();
        let docker = cwm_env::connect().await?;
        // A previous attempt killed with SIGKILL could not remove its containers.
        let leftovers = cwm_env::remove_labelled(&docker, Some(&run_id)).await?;
        if leftovers > 0 {
            tracing::warn!("removed {leftovers} containers left by an earlier attempt of this run");
        }
        let budget = match config.run.max_disk {
            Some(max) => Some(super::disk::ImageBudget::preflight(&docker, max).await?),
            None => None,
        };
        let todo: Vec<Instance> = instances
            .iter()
            .filter(|i| !is_done(&run_dir, i, config.eval.evaluate))
            .cloned()
            .collect();
        let progress = RunProgress::new(instances.len(), instances.len() - todo.len(), quiet);
        let mut workers = Workers::new(&config, todo.len())?;
        if !todo.is_empty() {
            workers.check_ready().await?;
        }
        // What the backend really applies (e.g. the sampling fields sent), beside the settings.
        let mut saved = to_json(&config)?;
        saved["policy"] = workers.policy_config.clone();
        run_dir.write_config(&saved)?;
        let shared = Arc::new(Shared {
            docker,
            eval: config.eval_options(),
            config,
            run_dir: Mutex::new(run_dir),
            progress: progress.clone(),
            fatal: Mutex::new(None),
            fatal_set: tokio::sync::Notify::new(),
            episode,
            budget,
            prefetched: Mutex::new(BTreeSet::new()),
        });
        let interrupted = schedule(shared.clone(), todo, workers, stop).await;
        progress.finish();
        remove_leftovers(&shared.docker, &run_id, interrupted.is_some()).await?;
        finish(&shared, &instances, interrupted)
    }
}

fn to_json(config: &RunConfig) -> Result<serde_json::Value, PipelineError> {
    serde_json::to_value(config).map_err(|source| PipelineError::Json {
        what: "the run settings".into(),
        source,
    })
}

/// Nothing of this run may outlive it: a container whose creation was cut short (by the stop
/// signal, or by an earlier attempt's SIGKILL, which the daemon may finish late) is found by
/// its label.
async fn remove_leftovers(
    docker: &Docker,
    run_id: &str,
    interrupted: bool,
) -> Result<(), PipelineError> {
    let leftovers = if interrupted {
        super::cleanup::remove_run_containers(run_id).await?
    } else {
        cwm_env::remove_labelled(docker, Some(run_id)).await?
    };
    if leftovers > 0 {
        tracing::warn!("removed {leftovers} leftover containers of this run");
    }
    Ok(())
}

/// Finished means a prediction is recorded (and, when grading, the evaluation finished:
/// `hardened.json` is its last file).
fn is_done(run_dir: &RunDir, instance: &Instance, evaluate: bool) -> bool {
    run_dir.finished().contains_key(&instance.instance_id)
        && (!evaluate
            || run_dir
                .eval_dir(&instance.instance_id)
                .join(HARDENED_FILE)
                .exists())
}

/// What every worker task shares.
struct Shared {
    docker: Docker,
    config: RunConfig,
    eval: EvalOptions,
    run_dir: Mutex<RunDir>,
    progress: RunProgress,
    /// The first error that stops the whole run (the run directory cannot be written).
    fatal: Mutex<Option<String>>,
    /// Wakes the scheduler when `fatal` is set.
    fatal_set: tokio::sync::Notify,
    /// The episode settings every instance runs with (the prompt profile loaded once).
    episode: EpisodeConfig,
    /// `--max-disk`: the images this run pulled and their budget.
    budget: Option<super::disk::ImageBudget>,
    /// Images pulled ahead by `--prefetch` (this run's to remove with `--cache-level none`).
    prefetched: Mutex<BTreeSet<String>>,
}

impl Shared {
    /// Logs an instance's failure, or, when it means no instance can succeed any more (the
    /// run directory's disk is full or read-only), records it once and stops the run.
    fn failed(&self, iid: &str, what: &str, err: &PipelineError) {
        let line = crate::logging::error_line(err);
        if !err.stops_the_run() {
            tracing::error!(instance = %iid, "{what}{line}");
            return;
        }
        if let Ok(mut fatal) = self.fatal.lock() {
            if fatal.is_none() {
                *fatal = Some(line);
                self.fatal_set.notify_one();
            }
        }
    }

    /// Logs and records an infrastructure failure of `iid` in `infra_failures.jsonl`.
    fn infra_failed(&self, iid: &str, err: &PipelineError) {
        let (stage, reason) = match err {
            PipelineError::Infrastructure { stage, reason, .. } => (*stage, reason.clone()),
            PipelineError::Eval(_) => (Stage::Evaluation, crate::logging::error_line(err)),
            _ => (Stage::Episode, crate::logging::error_line(err)),
        };
        tracing::warn!(instance = %iid, "infrastructure failure in the {stage}: {reason}");
        let failure = InfraFailure {
            instance_id: iid.to_string(),
            stage,
            reason,
            at: chrono::Utc::now().to_rfc3339(),
        };
        let recorded = self
            .run_dir()
            .and_then(|mut d| Ok(d.record_infra_failure(&failure)?));
        if let Err(e) = recorded {
            self.failed(iid, "recording an infrastructure failure: ", &e);
        }
    }

    fn run_dir(&self) -> Result<std::sync::MutexGuard<'_, RunDir>, PipelineError> {
        self.run_dir.lock().map_err(|_| PipelineError::Io {
            what: "the run directory's lock".into(),
            source: std::io::Error::other("poisoned by a panicked worker"),
        })
    }
}

/// One policy per worker, handed out to tasks and given back, which also bounds concurrency.
struct Workers {
    idle: tokio::sync::mpsc::Sender<Box<dyn Policy>>,
    queue: tokio::sync::mpsc::Receiver<Box<dyn Policy>>,
    /// The first policy's own settings (`Policy::config`).
    policy_config: serde_json::Value,
}

impl Workers {
    fn new(config: &RunConfig, todo: usize) -> Result<Self, PipelineError> {
        let count = config.run.workers.min(todo.max(1));
        let (idle, queue) = tokio::sync::mpsc::channel(count);
        let mut policy_config = serde_json::Value::Null;
        for _ in 0..count {
            let policy = config.policy()?;
            if policy_config.is_null() {
                policy_config = policy.config();
            }
            // The channel holds `count` policies, so this cannot be full.
            let _ = idle.try_send(policy);
        }
        Ok(Workers {
            idle,
            queue,
            policy_config,
        })
    }

    /// Asks one policy whether its backend answers at all ([`Policy::check_ready`]).
    async fn check_ready(&mut self) -> Result<(), PipelineError> {
        let Some(mut policy) = self.queue.recv().await else {
            return Ok(());
        };
        let ready = policy.check_ready().await;
        let _ = self.idle.try_send(policy);
        Ok(ready?)
    }
}

/// Runs every instance, at most one per idle policy. Returns the exit code of the stop
/// signal that ended it early, if one did (1 for a fatal error).
async fn schedule(
    shared: Arc<Shared>,
    todo: Vec<Instance>,
    mut workers: Workers,
    stop: impl Future<Output = u8>,
) -> Option<u8> {
    let mut tasks = JoinSet::new();
    let mut pending = todo.into_iter();
    let mut prefetched = BTreeSet::new();
    tokio::pin!(stop);
    while pending.len() > 0 || !tasks.is_empty() {
        tokio::select! {
            code = &mut stop => {
                tracing::warn!("interrupted: stopping in-flight episodes and removing their containers");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Some(code);
            }
            () = shared.fatal_set.notified() => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Some(1);
            }
            policy = workers.queue.recv(), if pending.len() > 0 => {
                let (Some(policy), Some(instance)) = (policy, pending.next()) else { continue };
                prefetch(&shared, pending.as_slice(), &mut prefetched, &mut tasks);
                let idle = workers.idle.clone();
                let shared = shared.clone();
                tasks.spawn(async move {
                    let policy = process_instance(&shared, &instance, policy).await;
                    let _ = idle.send(policy).await;
                });
            }
            joined = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Err(e)) = joined {
                    tracing::error!("an instance task failed: {e}");
                }
            }
        }
    }
    None
}

/// Starts background pulls of the next `prefetch` instances' images not asked for yet. They
/// run as tasks of the scheduler's set, so a stop aborts them with the episodes.
fn prefetch(
    shared: &Arc<Shared>,
    next: &[Instance],
    asked: &mut BTreeSet<String>,
    tasks: &mut JoinSet<()>,
) {
    for instance in next.iter().take(shared.config.run.prefetch) {
        let image = instance.image_name();
        if !asked.insert(image.clone()) {
            continue;
        }
        let shared = shared.clone();
        tasks.spawn(async move {
            let docker = &shared.docker;
            let present = cwm_env::image_exists(docker, &image).await.unwrap_or(true);
            if present {
                return;
            }
            let pulled = match &shared.budget {
                Some(budget) => budget
                    .acquire(docker, &image)
                    .await
                    .map(|()| budget.release(&image)),
                None => {
                    let quiet = cwm_env::PullOptions {
                        quiet: true,
                        ..Default::default()
                    };
                    cwm_env::pull_image(docker, &image, &quiet)
                        .await
                        .map(|_| ())
                        .map_err(Into::into)
                }
            };
            match pulled {
                Ok(()) => {
                    tracing::info!("prefetched {image}");
                    if let Ok(mut prefetched) = shared.prefetched.lock() {
                        prefetched.insert(image);
                    }
                }
                Err(e) => tracing::warn!(
                    "prefetching {image} failed ({}); its instance will try again",
                    crate::logging::error_line(&e)
                ),
            }
        });
    }
}

/// One instance end to end. Failures are recorded and logged, never propagated: one bad
/// instance must not stop the run.
async fn process_instance(
    shared: &Shared,
    instance: &Instance,
    mut policy: Box<dyn Policy>,
) -> Box<dyn Policy> {
    let iid = &instance.instance_id;
    let line = shared.progress.start_instance(iid);
    let image = instance.image_name();
    // Only what this run pulls is its to remove.
    let prefetched = shared.prefetched.lock().is_ok_and(|p| p.contains(&image));
    let pulled_here = shared.config.run.cache_level == CacheLevel::None
        && (prefetched
            || !cwm_env::image_exists(&shared.docker, &image)
                .await
                .unwrap_or(true));
    let acquired = match &shared.budget {
        Some(budget) => budget.acquire(&shared.docker, &image).await,
        None => Ok(()),
    };
    let result = match acquired {
        Ok(()) => attempt_with_retry(shared, instance, policy.as_mut(), &line).await,
        Err(e) => Err(e),
    };
    let (resolved, error) = match result {
        Ok(verdict) => verdict,
        Err(e) if e.is_infrastructure() && !e.stops_the_run() => {
            shared.infra_failed(iid, &e);
            (None, true)
        }
        Err(e) => {
            shared.failed(iid, "", &e);
            (None, true)
        }
    };
    if let Some(budget) = &shared.budget {
        budget.release(&image);
    }
    if pulled_here {
        match cwm_env::remove_image(&shared.docker, &image).await {
            Ok(_) => tracing::info!(instance = %iid, "removed image {image} (--cache-level none)"),
            Err(e) => tracing::warn!(instance = %iid, "could not remove image {image}: {e}"),
        }
    }
    shared.progress.finish_instance(resolved, error);
    policy
}

/// [`attempt_instance`], and with `--retry-infra` once more after an infrastructure failure
/// (which is recorded). Each try first waits for an unanswering daemon (a restart), rather
/// than failing every instance that follows it.
async fn attempt_with_retry(
    shared: &Shared,
    instance: &Instance,
    policy: &mut dyn Policy,
    line: &InstanceLine,
) -> Result<(Option<bool>, bool), PipelineError> {
    let attempts = if shared.config.run.retry_infra { 2 } else { 1 };
    let mut attempt = 1;
    loop {
        cwm_env::wait_for_daemon(&shared.docker, DAEMON_WAIT).await;
        match attempt_instance(shared, instance, policy, line).await {
            Err(e) if e.is_infrastructure() && !e.stops_the_run() && attempt < attempts => {
                shared.infra_failed(&instance.instance_id, &e);
                tracing::warn!(instance = %instance.instance_id, "--retry-infra: trying the instance once more");
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// One try at an instance: its episode (unless its prediction is recorded), then its
/// evaluation when the run grades. `Ok((resolved, error))`: the verdict (`None` ungraded)
/// and whether the evaluation gave no official report.
async fn attempt_instance(
    shared: &Shared,
    instance: &Instance,
    policy: &mut dyn Policy,
    line: &InstanceLine,
) -> Result<(Option<bool>, bool), PipelineError> {
    let recorded = shared
        .run_dir()?
        .finished()
        .get(&instance.instance_id)
        .cloned();
    let prediction = match recorded {
        Some(prediction) => prediction,
        None => solve_and_record(shared, instance, policy, line).await?,
    };
    if !shared.config.eval.evaluate {
        return Ok((None, false));
    }
    line.set("evaluating");
    match grade_one(shared, instance, &prediction).await {
        Ok(evaluation) => Ok((Some(evaluation.resolved()), evaluation.report.is_none())),
        Err(e) if e.is_infrastructure() => Err(e),
        Err(e) => {
            shared.failed(&instance.instance_id, "evaluation failed: ", &e);
            Ok((Some(false), true))
        }
    }
}

/// Runs the episode in its own container and records the prediction.
async fn solve_and_record(
    shared: &Shared,
    instance: &Instance,
    policy: &mut dyn Policy,
    line: &InstanceLine,
) -> Result<Prediction, PipelineError> {
    let iid = &instance.instance_id;
    let trajectory = {
        let run_dir = shared.run_dir()?;
        run_dir.set_aside_trajectory(iid)?;
        run_dir.trajectory_path(iid)
    };
    let mut recorder = JsonlTrajectoryWriter::create(&trajectory)?;
    let task = Task {
        docker: &shared.docker,
        instance,
        run_id: &shared.config.run.run_id,
        episode: &shared.episode,
        keep: false,
    };
    let solved = solve(&task, policy, &mut recorder, &mut LineObserver(line)).await?;
    if let Some(reason) = solved.infrastructure_failure() {
        return Err(PipelineError::Infrastructure {
            instance_id: iid.clone(),
            stage: Stage::Episode,
            reason,
        });
    }
    let footer = solved.footer;
    tracing::info!(instance = %iid, status = %footer.status, turns = footer.turns, "episode finished");
    let prediction = Prediction {
        instance_id: iid.clone(),
        model_name_or_path: policy.name(),
        model_patch: footer.patch,
    };
    shared.run_dir()?.record_prediction(prediction.clone())?;
    Ok(prediction)
}

async fn grade_one(
    shared: &Shared,
    instance: &Instance,
    prediction: &Prediction,
) -> Result<cwm_eval::Evaluation, PipelineError> {
    let out_dir = shared.run_dir()?.eval_dir(&instance.instance_id);
    let patch = prediction.model_patch.as_deref();
    grade(&shared.docker, instance, patch, &shared.eval, &out_dir).await
}

/// Shows the turn number and last action on the instance's progress line.
struct LineObserver<'a>(&'a InstanceLine);

impl cwm_agent::EpisodeObserver for LineObserver<'_> {
    fn on_turn(&mut self, turn: &cwm_agent::Turn) {
        let action = match &turn.call {
            Some(call) => {
                let first_line = call.body.lines().next().unwrap_or("");
                format!("{} {}", call.tool.as_str(), first_line)
            }
            None if turn.format_error.is_some() => "format error".into(),
            None => "final reply".into(),
        };
        self.0
            .set(format!("turn {} · {}", turn.turn, truncate(&action, 60)));
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Writes `summary.json` and `hardened_summary.json`, and collects the closing table.
fn finish(
    shared: &Shared,
    instances: &[Instance],
    interrupted: Option<u8>,
) -> Result<RunOutcome, PipelineError> {
    let run_id = shared.config.run.run_id.clone();
    let fatal = shared.fatal.lock().ok().and_then(|f| f.clone());
    if let Some(cause) = fatal {
        // Nothing more can be written; what was written is intact (failed appends are undone).
        return Err(PipelineError::Stopped {
            cause,
            run_dir: shared.config.run_dir(),
            run_id,
        });
    }
    let run_dir = shared.run_dir()?;
    let ids: Vec<String> = instances.iter().map(|i| i.instance_id.clone()).collect();
    let (summary, hardened) = summarise(&ids, run_dir.finished(), run_dir.root())?;
    let evaluate = shared.config.eval.evaluate;
    let done = |id: &str| {
        instances
            .iter()
            .find(|i| i.instance_id == id)
            .is_some_and(|i| is_done(&run_dir, i, evaluate))
    };
    let failures = Failures::collect(&run_dir, &ids, evaluate, done)?;
    failures.write(run_dir.root())?;
    Ok(RunOutcome {
        run_dir: run_dir.root().to_path_buf(),
        run_id,
        interrupted,
        summary,
        hardened,
        rows: summary_rows(run_dir.root(), &ids),
        evaluated: evaluate,
        failures,
    })
}

/// Writes the run's `summary.json` (SWE-bench 5.0.2's `make_run_report`) and
/// `hardened_summary.json` from the files under `<run_dir>/eval`. `predictions` are every
/// prediction given, `ids` the instances selected.
pub fn summarise(
    ids: &[String],
    predictions: &cwm_eval::predictions::Predictions,
    run_dir: &Path,
) -> Result<(RunSummary, HardenedSummary), PipelineError> {
    let eval_root = run_dir.join("eval");
    let summary = RunSummary::from_eval_dir(ids, predictions, &eval_root);
    summary.write(&run_dir.join("summary.json"))?;
    let hardened = HardenedSummary::from_eval_dir(ids, &eval_root)?;
    hardened.write(&run_dir.join(HARDENED_SUMMARY_FILE))?;
    Ok((summary, hardened))
}

/// The finished episodes among `ids`, as `cwm-results` loads the run. Best effort: a run
/// that cannot be loaded (a damaged trajectory) gives no rows, and says why in the log.
pub fn summary_rows(run_dir: &Path, ids: &[String]) -> Vec<SummaryRow> {
    let loaded = match LoadedRun::load(run_dir) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::warn!("the closing table is left out: {e}");
            return Vec::new();
        }
    };
    let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    loaded
        .episodes
        .iter()
        .filter(|e| wanted.contains(e.instance_id()))
        .filter_map(|e| {
            let footer = e.trajectory.footer.as_ref()?;
            Some(SummaryRow {
                instance_id: e.instance_id().to_string(),
                repo: e.trajectory.header.repo.clone(),
                status: footer.status.to_string(),
                turns: footer.turns,
                tokens: footer.tokens_in + footer.tokens_out,
                seconds: footer.wall_time_ms as f64 / 1000.0,
                resolved: e.report.as_ref().map(|r| r.resolved),
            })
        })
        .collect()
}

impl RunOutcome {
    /// The closing table: episodes (and resolved) per repo, exit statuses, and mean turns,
    /// tokens and seconds per episode.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let resolved_head = if self.evaluated { "resolved" } else { "" };
        out.push_str(&format!(
            "\n{:<32} {:>9} {:>9}\n",
            "repo", "episodes", resolved_head
        ));
        let mut per_repo: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
        for row in &self.rows {
            let entry = per_repo.entry(&row.repo).or_default();
            entry.0 += 1;
            entry.1 += usize::from(row.resolved == Some(true));
            *statuses.entry(&row.status).or_default() += 1;
        }
        for (repo, (episodes, resolved)) in &per_repo {
            let resolved = if self.evaluated {
                resolved.to_string()
            } else {
                String::new()
            };
            out.push_str(&format!("{repo:<32} {episodes:>9} {resolved:>9}\n"));
        }
        let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        out.push_str(&format!("\nexit statuses: {}\n", statuses.join(", ")));
        let n = self.rows.len().max(1) as f64;
        let mean = |f: fn(&SummaryRow) -> f64| self.rows.iter().map(f).sum::<f64>() / n;
        out.push_str(&format!(
            "mean per episode: {:.1} turns, {:.0} tokens, {:.1} s",
            mean(|r| r.turns as f64),
            mean(|r| r.tokens as f64),
            mean(|r| r.seconds)
        ));
        out
    }
}
