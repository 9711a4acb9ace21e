//! `cwm-bench run`: every selected instance goes container → repo hygiene → episode → patch →
//! prediction, and with `--evaluate` straight on to grading in a fresh container.
//! Resumable, crash-safe, and Ctrl-C leaves no container behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use cwm_agent::{EpisodeConfig, EpisodeContext, JsonlTrajectoryWriter, Policy};
use cwm_datasets::{Instance, Prediction};
use cwm_env::{Container, ContainerConfig, Docker};
use cwm_eval::hardened::HardenedSummary;
use cwm_eval::{EvalOptions, Evaluation, InstanceReport, RunSummary};
use cwm_results::RunDir;
use tokio::task::JoinSet;

use super::policies::{build_policy, PolicySettings};
use super::run_config::{RunFlags, RunSettings};
use super::summary_table::{collect_rows, print_table};
use crate::progress::{InstanceLine, RunProgress};

pub async fn run(flags: RunFlags) -> anyhow::Result<ExitCode> {
    // Listen from the start, so an early Ctrl-C (or SIGTERM, SIGHUP) also takes the clean-up path.
    let mut shutdown = crate::signals::Shutdown::listen()?;
    let settings = flags.resolve()?;
    // Built once: a bad prompt profile stops the run before anything starts.
    let episode = episode_config(&settings)?;
    let instances = load_instances(&settings)?;
    let run_dir = RunDir::open(&settings.runs_dir.join(&settings.run_id))?;
    run_dir.write_config(&serde_json::to_value(&settings)?)?;
    crate::logging::init(Some(&run_dir.log_path()), flags.quiet)?;
    tracing::info!(run_id = %settings.run_id, model = %settings.model, instances = instances.len(), "run started");

    let docker = cwm_env::connect().await?;
    // A previous attempt killed with SIGKILL could not remove its containers.
    let leftovers = cwm_env::remove_labelled(&docker, Some(&settings.run_id)).await?;
    if leftovers > 0 {
        tracing::warn!("removed {leftovers} containers left by an earlier attempt of this run");
    }
    let todo: Vec<Instance> = instances
        .iter()
        .filter(|i| !is_done(&run_dir, i, settings.evaluate))
        .cloned()
        .collect();
    let progress = RunProgress::new(instances.len(), instances.len() - todo.len(), flags.quiet);
    refuse_unappliable_sampling(&flags, &settings)?;
    let workers = Workers::new(&settings, flags.api_key.clone(), todo.len())?;
    // What the backend really applies (e.g. the sampling fields sent), beside the settings.
    let mut config = serde_json::to_value(&settings)?;
    config["policy"] = workers.policy_config.clone();
    run_dir.write_config(&config)?;
    let shared = Arc::new(Shared {
        docker,
        settings: settings.clone(),
        run_dir: Mutex::new(run_dir),
        progress: progress.clone(),
        fatal: Mutex::new(None),
        fatal_set: tokio::sync::Notify::new(),
        episode,
    });

    let interrupted = schedule(shared.clone(), todo, workers, shutdown.recv()).await;
    progress.finish();
    if interrupted.is_some() {
        cwm_env::remove_all_live().await;
    }
    // Nothing of this run may outlive it: a container whose creation was cut short (by Ctrl-C
    // here, or by an earlier attempt's SIGKILL, which the daemon may finish late) is found by
    // its label.
    let leftovers = match interrupted {
        // A create cut short by the signal may still complete in the daemon.
        Some(_) => {
            let quiet = std::time::Duration::from_secs(1);
            cwm_env::remove_labelled_settled(&shared.docker, &settings.run_id, quiet).await?
        }
        None => cwm_env::remove_labelled(&shared.docker, Some(&settings.run_id)).await?,
    };
    if leftovers > 0 {
        tracing::warn!("removed {leftovers} leftover containers of this run");
    }
    finish_run(&shared, &instances, interrupted)
}

fn load_instances(settings: &RunSettings) -> anyhow::Result<Vec<Instance>> {
    let all = cwm_datasets::load(&settings.dataset)
        .with_context(|| format!("loading dataset {}", settings.dataset.display()))?;
    let filter = cwm_datasets::Filter {
        instances: settings.instances.clone(),
        repo: settings.repo.clone(),
        difficulty: settings.difficulty.clone(),
        shuffle_seed: settings.shuffle.then_some(settings.seed),
        slice: settings
            .slice
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    Ok(filter.apply(all)?)
}

/// Finished means a prediction is recorded (and, with `--evaluate`, the evaluation
/// finished: `hardened.json` is its last file).
fn is_done(run_dir: &RunDir, instance: &Instance, evaluate: bool) -> bool {
    run_dir.finished().contains_key(&instance.instance_id)
        && (!evaluate
            || run_dir
                .eval_dir(&instance.instance_id)
                .join(cwm_eval::hardened::HARDENED_FILE)
                .exists())
}

/// How long a container may outlive its episode's or evaluation's own time limit.
const CONTAINER_MARGIN: Duration = Duration::from_secs(600);

/// What every worker task shares.
struct Shared {
    docker: Docker,
    settings: RunSettings,
    run_dir: Mutex<RunDir>,
    progress: RunProgress,
    /// The first error that stops the whole run (the run directory cannot be written).
    fatal: Mutex<Option<String>>,
    /// Wakes the scheduler when `fatal` is set.
    fatal_set: tokio::sync::Notify,
    /// The episode settings every instance runs with (the prompt profile loaded once).
    episode: EpisodeConfig,
}

impl Shared {
    /// Logs an instance's failure, or, when it means no instance can succeed any more (the
    /// run directory's disk is full or read-only), records it once and stops the run.
    fn failed(&self, iid: &str, what: &str, err: &anyhow::Error) {
        if !stops_the_run(err) {
            let line = crate::logging::error_line(err);
            tracing::error!(instance = %iid, "{what}{line}");
            return;
        }
        if let Ok(mut fatal) = self.fatal.lock() {
            if fatal.is_none() {
                *fatal = Some(crate::logging::error_line(err));
                self.fatal_set.notify_one();
            }
        }
    }
}

/// Errors after which every later instance would fail the same way.
fn stops_the_run(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind;
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::ReadOnlyFilesystem
            )
        })
    })
}

/// One policy per worker, handed out to tasks and given back, which also bounds concurrency.
struct Workers {
    idle: tokio::sync::mpsc::Sender<Box<dyn Policy>>,
    queue: tokio::sync::mpsc::Receiver<Box<dyn Policy>>,
    /// The first policy's own settings (`Policy::config`).
    policy_config: serde_json::Value,
}

impl Workers {
    fn new(settings: &RunSettings, api_key: Option<String>, todo: usize) -> anyhow::Result<Self> {
        let count = settings.workers.min(todo.max(1));
        let (idle, queue) = tokio::sync::mpsc::channel(count);
        let policy_settings = PolicySettings {
            temperature: settings.temperature,
            top_p: settings.top_p,
            top_k: settings.top_k,
            seed: settings.sampling_seed,
            max_action_tokens: settings.max_action_tokens,
            extra_body: settings.extra_body.clone(),
            tool_role: settings.tool_role.clone(),
            api_key,
            tokenizer: settings.tokenizer.clone(),
        };
        let mut policy_config = serde_json::Value::Null;
        for _ in 0..count {
            let policy = build_policy(&settings.model, &policy_settings)?;
            if policy_config.is_null() {
                policy_config = policy.config();
            }
            idle.try_send(policy)
                .map_err(|_| anyhow::anyhow!("worker pool is full"))?;
        }
        Ok(Workers {
            idle,
            queue,
            policy_config,
        })
    }
}

/// Runs every instance, at most one per idle policy. Returns the exit code of the stop
/// signal that ended it early, if one did.
async fn schedule(
    shared: Arc<Shared>,
    todo: Vec<Instance>,
    mut workers: Workers,
    stop: impl std::future::Future<Output = u8>,
) -> Option<u8> {
    let mut tasks = JoinSet::new();
    let mut pending = todo.into_iter();
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

/// One instance end to end. Failures are recorded and logged, never propagated: one bad
/// instance must not stop the run.
async fn process_instance(
    shared: &Shared,
    instance: &Instance,
    mut policy: Box<dyn Policy>,
) -> Box<dyn Policy> {
    let iid = &instance.instance_id;
    let line = shared.progress.start_instance(iid);
    let recorded = shared
        .run_dir
        .lock()
        .ok()
        .and_then(|d| d.finished().get(iid).cloned());
    let prediction = match recorded {
        Some(prediction) => Ok(prediction),
        None => solve(shared, instance, policy.as_mut(), &line).await,
    };
    let (resolved, error) = match prediction {
        Ok(prediction) if shared.settings.evaluate => {
            line.set("evaluating");
            match grade(shared, instance, &prediction).await {
                Ok(evaluation) => (Some(evaluation.resolved()), evaluation.report.is_none()),
                Err(e) => {
                    shared.failed(iid, "evaluation failed: ", &e);
                    (Some(false), true)
                }
            }
        }
        Ok(_) => (None, false),
        Err(e) => {
            shared.failed(iid, "", &e);
            (None, true)
        }
    };
    shared.progress.finish_instance(resolved, error);
    policy
}

/// Runs the episode in its own container and records the prediction.
async fn solve(
    shared: &Shared,
    instance: &Instance,
    policy: &mut dyn Policy,
    line: &InstanceLine,
) -> anyhow::Result<Prediction> {
    let iid = &instance.instance_id;
    let image = instance.image_name();
    cwm_env::ensure_image(&shared.docker, &image).await?;
    // Outlives the episode's own time limit only by a margin, so a SIGKILLed run cannot
    // leave it running for long.
    let deadline = Duration::from_secs(shared.settings.time_limit) + CONTAINER_MARGIN;
    let config =
        ContainerConfig::for_episode(&image, &shared.settings.run_id, iid).with_deadline(deadline);
    let container = Container::start(&shared.docker, &config).await?;
    let trajectory = shared
        .run_dir
        .lock()
        .map_err(|_| anyhow::anyhow!("run directory lock poisoned"))?
        .trajectory_path(iid);
    let outcome = run_episode(shared, &container, instance, policy, &trajectory, line).await;
    container.remove().await?;
    let outcome = outcome?;
    tracing::info!(instance = %iid, status = %outcome.status, turns = outcome.turns, "episode finished");
    let prediction = Prediction {
        instance_id: iid.clone(),
        model_name_or_path: policy.name(),
        model_patch: outcome.patch,
    };
    shared
        .run_dir
        .lock()
        .map_err(|_| anyhow::anyhow!("run directory lock poisoned"))?
        .record_prediction(prediction.clone())?;
    Ok(prediction)
}

async fn run_episode(
    shared: &Shared,
    container: &Container,
    instance: &Instance,
    policy: &mut dyn Policy,
    trajectory: &Path,
    line: &InstanceLine,
) -> anyhow::Result<cwm_agent::EpisodeOutcome> {
    let mut recorder = JsonlTrajectoryWriter::create(trajectory)?;
    let mut observer = LineObserver(line);
    let config = &shared.episode;
    let outcome = cwm_agent::run_episode(EpisodeContext {
        container,
        instance,
        policy,
        config,
        recorder: &mut recorder,
        observer: &mut observer,
    })
    .await?;
    Ok(outcome)
}

/// The oracle and replay models do not sample: a sampling flag given for them is an error
/// rather than a setting silently recorded and ignored.
fn refuse_unappliable_sampling(flags: &RunFlags, settings: &RunSettings) -> anyhow::Result<()> {
    let samples = !(settings.model == "oracle" || settings.model.starts_with("replay:"));
    let given: Vec<&str> = [
        ("--temperature", flags.temperature.is_some()),
        ("--top-p", flags.top_p.is_some()),
        ("--top-k", flags.top_k.is_some()),
        ("--sampling-seed", flags.sampling_seed.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect();
    anyhow::ensure!(
        samples || given.is_empty(),
        "model `{}` does not sample, so {} cannot be applied; drop {}",
        settings.model,
        given.join(", "),
        if given.len() == 1 { "it" } else { "them" }
    );
    Ok(())
}

/// The episode settings of a run; fails when the prompt profile cannot be loaded.
pub fn episode_config(settings: &RunSettings) -> anyhow::Result<EpisodeConfig> {
    let profile = match &settings.prompts {
        Some(path) => cwm_tools::Profile::load(path)?,
        None => cwm_tools::Profile::builtin(),
    };
    let mut config = EpisodeConfig {
        on_budget: if settings.autosubmit {
            cwm_agent::OnBudget::Autosubmit
        } else {
            settings.on_budget.to_agent()
        },
        tools: settings.tools.tools(),
        profile,
        ..EpisodeConfig::default()
    };
    let budgets = &mut config.budgets;
    budgets.max_turns = settings.max_turns as u64;
    budgets.context_tokens = settings.max_context_tokens;
    budgets.max_action_tokens = settings.max_action_tokens;
    budgets.command_timeout_secs = settings.command_timeout;
    budgets.wall_clock_secs = Some(settings.time_limit);
    budgets.max_format_errors = settings.max_format_errors;
    Ok(config)
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

async fn grade(
    shared: &Shared,
    instance: &Instance,
    prediction: &Prediction,
) -> anyhow::Result<Evaluation> {
    let mut options = EvalOptions::new(&shared.settings.run_id);
    options.timeout = Duration::from_secs(shared.settings.eval_timeout);
    let out_dir = shared
        .run_dir
        .lock()
        .map_err(|_| anyhow::anyhow!("run directory lock poisoned"))?
        .eval_dir(&instance.instance_id);
    let evaluation = cwm_eval::evaluate(
        &shared.docker,
        instance,
        prediction.model_patch.as_deref(),
        &options,
        &out_dir,
    )
    .await?;
    Ok(evaluation)
}

/// Writes the summary, prints the table, and picks the exit code.
fn finish_run(
    shared: &Shared,
    instances: &[Instance],
    interrupted: Option<u8>,
) -> anyhow::Result<ExitCode> {
    let fatal = shared.fatal.lock().ok().and_then(|f| f.clone());
    if let Some(error) = fatal {
        // Nothing more can be written; what was written is intact (failed appends are undone).
        anyhow::bail!(
            "the run stopped: {error}; free space in (or make writable) {}, then run again with --run-id {} to finish",
            shared.settings.runs_dir.join(&shared.settings.run_id).display(),
            shared.settings.run_id
        );
    }
    let run_dir = shared
        .run_dir
        .lock()
        .map_err(|_| anyhow::anyhow!("run directory lock poisoned"))?;
    let ids: Vec<String> = instances.iter().map(|i| i.instance_id.clone()).collect();
    let predictions: BTreeMap<String, Prediction> = run_dir.finished().clone();
    let reports = load_reports(&run_dir, &ids);
    let eval_root = run_dir.root().join("eval");
    let summary = RunSummary::from_eval_dir(&ids, &predictions, &eval_root);
    summary.write(&run_dir.summary_path())?;
    let hardened = HardenedSummary::from_eval_dir(&ids, &eval_root)?;
    hardened.write(
        &run_dir
            .root()
            .join(cwm_eval::hardened::HARDENED_SUMMARY_FILE),
    )?;
    let rows = collect_rows(&run_dir, instances, &reports);
    print_table(&rows, shared.settings.evaluate);
    println!("run directory: {}", run_dir.root().display());
    if shared.settings.evaluate {
        println!("{}", hardened.line());
        println!("{}", summary.resolved_line());
    }
    if let Some(code) = interrupted {
        eprintln!(
            "interrupted: run it again with --run-id {} to finish",
            shared.settings.run_id
        );
        return Ok(ExitCode::from(code));
    }
    Ok(ExitCode::SUCCESS)
}

fn load_reports(run_dir: &RunDir, ids: &[String]) -> BTreeMap<String, InstanceReport> {
    ids.iter()
        .filter_map(|id| {
            let path = run_dir.eval_dir(id).join("report.json");
            let report = InstanceReport::read(&path).ok()?;
            Some((id.clone(), report))
        })
        .collect()
}
