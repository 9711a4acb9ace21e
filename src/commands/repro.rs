//! `cwm-bench repro`: one instance in the foreground, every turn streamed as it happens, then
//! graded, with the verdict and the failing tests. `--keep` leaves the container to explore.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use console::style;
use cwm_agent::{EpisodeContext, JsonlTrajectoryWriter};
use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, Docker};
use cwm_eval::{EvalOptions, Evaluation};

use super::local_task::{build_image, local_instance, LocalTask};
use super::policies::{build_policy, PolicySettings};
use super::run::episode_config;
use super::run_config::{default_model, RunSettings};

#[derive(clap::Args, Debug)]
pub struct ReproArgs {
    /// Instance id from the dataset (omit with --repo).
    pub instance_id: Option<String>,
    /// Dataset file or directory (default: the bundled fixture tasks).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// `local:PATH`, `openai:MODEL[@URL]`, `replay:FILE` or `oracle`
    /// (default: the local SmolLM2 model when present, else `oracle`).
    #[arg(long)]
    pub model: Option<String>,
    /// Leave the agent's container running and print how to enter it.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub local: LocalTask,
    /// Turn budget.
    #[arg(long, default_value_t = 128)]
    pub max_turns: usize,
    /// Seconds per bash command.
    #[arg(long, default_value_t = 120)]
    pub command_timeout: u64,
    /// Seconds for the eval script.
    #[arg(long, default_value_t = 1800)]
    pub eval_timeout: u64,
    /// Where the trajectory and eval files go (default: runs/repro-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Sampling temperature (default 1.0, CWM's SWE-bench setting; 0 is greedy).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Nucleus sampling threshold (default 0.95, CWM's SWE-bench setting).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f64,
    /// Keep only the K most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub sampling_seed: u64,
}

pub async fn run(args: ReproArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init(None, false)?;
    let (instance, local) = resolve_instance(&args)?;
    let settings = RunSettings {
        model: args.model.clone().unwrap_or_else(default_model),
        max_turns: args.max_turns,
        command_timeout: args.command_timeout,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        sampling_seed: args.sampling_seed,
        ..RunSettings::default()
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&settings.run_id));
    let docker = cwm_env::connect().await?;
    let image = instance.image_name();
    if local {
        build_image(&docker, &args.local, &instance).await?;
    }
    cwm_env::ensure_image(&docker, &image).await?;
    let container = Container::start(
        &docker,
        &ContainerConfig::for_episode(&image, &settings.run_id, &instance.instance_id),
    )
    .await?;
    let patch = solve(&container, &instance, &settings, &out).await;
    if args.keep {
        let id = container.keep();
        println!("container kept: docker exec -it {id} bash   (remove with `docker rm -f {id}`)");
    } else {
        container.remove().await?;
    }
    let patch = patch?;
    let report = grade(
        &docker,
        &instance,
        patch.as_deref(),
        &settings,
        args.eval_timeout,
        &out,
    )
    .await?;
    let resolved = if local {
        print_test_results(&out.join("eval").join(&instance.instance_id))?
    } else {
        print_verdict(&report);
        report.resolved()
    };
    Ok(if resolved {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The dataset row, or an instance made from `--repo` and `--issue`; true for the latter.
fn resolve_instance(args: &ReproArgs) -> anyhow::Result<(Instance, bool)> {
    if args.local.repo.is_some() {
        return Ok((local_instance(&args.local)?, true));
    }
    let id = args
        .instance_id
        .as_deref()
        .context("give an instance id, or --repo DIR --issue FILE for a local repository")?;
    let path = args
        .dataset
        .clone()
        .unwrap_or_else(cwm_datasets::fixtures::fixtures_jsonl);
    let instances =
        cwm_datasets::load(&path).with_context(|| format!("loading dataset {}", path.display()))?;
    let instance = instances
        .into_iter()
        .find(|i| i.instance_id == id)
        .with_context(|| format!("instance {id} is not in {}", path.display()))?;
    Ok((instance, false))
}

async fn solve(
    container: &Container,
    instance: &Instance,
    settings: &RunSettings,
    out: &std::path::Path,
) -> anyhow::Result<Option<String>> {
    let mut policy = build_policy(
        &settings.model,
        &PolicySettings {
            temperature: settings.temperature,
            top_p: settings.top_p,
            top_k: settings.top_k,
            seed: settings.sampling_seed,
            max_action_tokens: settings.max_action_tokens,
            ..PolicySettings::default()
        },
    )?;
    let trajectory = out
        .join("trajectories")
        .join(format!("{}.jsonl", instance.instance_id));
    let mut recorder = JsonlTrajectoryWriter::create(&trajectory)?;
    let outcome = cwm_agent::run_episode(EpisodeContext {
        container,
        instance,
        policy: policy.as_mut(),
        config: &episode_config(settings)?,
        recorder: &mut recorder,
        observer: &mut StreamObserver,
    })
    .await?;
    println!(
        "\n{} {} after {} turns; trajectory: {}",
        style("episode ended:").bold(),
        outcome.status,
        outcome.turns,
        trajectory.display()
    );
    if let Some(error) = &outcome.error {
        println!("{} {error}", style("error:").red());
    }
    Ok(outcome.patch)
}

async fn grade(
    docker: &Docker,
    instance: &Instance,
    patch: Option<&str>,
    settings: &RunSettings,
    eval_timeout: u64,
    out: &std::path::Path,
) -> anyhow::Result<Evaluation> {
    println!("{}", style("grading in a fresh container...").bold());
    let mut options = EvalOptions::new(&settings.run_id);
    options.timeout = Duration::from_secs(eval_timeout);
    let dir = out.join("eval").join(&instance.instance_id);
    Ok(cwm_eval::evaluate(docker, instance, patch, &options, &dir).await?)
}

/// Prints thinking (dimmed), the call, and the observation of every turn.
struct StreamObserver;

impl cwm_agent::EpisodeObserver for StreamObserver {
    fn on_turn(&mut self, turn: &cwm_agent::Turn) {
        println!(
            "\n{}",
            style(format!("── turn {} ──", turn.turn)).cyan().bold()
        );
        if let Some(thinking) = turn.thinking.as_deref().filter(|t| !t.trim().is_empty()) {
            println!("{}", style(thinking.trim()).dim());
        }
        match &turn.call {
            Some(call) => println!("{}", style(call.render()).yellow()),
            None => println!("{}", turn.answer.trim()),
        }
        if let Some(observation) = &turn.observation {
            println!("{}", observation.content.trim_end());
        }
    }
}

fn print_verdict(evaluation: &Evaluation) {
    let resolution = evaluation.report.as_ref().map(|r| r.resolution());
    let verdict =
        format!("{:?}", resolution.unwrap_or(cwm_eval::ResolvedStatus::No)).to_uppercase();
    let headline = if evaluation.resolved() {
        style(format!("RESOLVED ({verdict})")).green().bold()
    } else {
        style(format!("NOT RESOLVED ({verdict})")).red().bold()
    };
    println!("\nverdict: {headline}");
    if let Some(error) = &evaluation.hardened.error {
        println!("  {error}");
    }
    let hardened = &evaluation.hardened;
    if hardened.disagrees() || !hardened.flags.is_empty() {
        println!(
            "  hardened verdict: {} (flags: {:?})",
            if hardened.resolved {
                "resolved"
            } else {
                "not resolved"
            },
            hardened.flags
        );
    }
    let status = evaluation
        .report
        .as_ref()
        .and_then(|r| r.tests_status.as_ref());
    if let Some(status) = status {
        for (kind, tests) in [
            ("FAIL_TO_PASS", &status.fail_to_pass.failure),
            ("PASS_TO_PASS", &status.pass_to_pass.failure),
        ] {
            for test in tests {
                println!("  failing {kind}: {test}");
            }
        }
    }
}

/// A local task has no FAIL_TO_PASS list: show every test's status after the patch instead.
/// It passes when at least one test ran and none failed.
fn print_test_results(eval_dir: &std::path::Path) -> anyhow::Result<bool> {
    let log = std::fs::read_to_string(eval_dir.join("test_output.txt")).unwrap_or_default();
    let parser = cwm_eval::parsers::by_name("parse_log_pytest").context("pytest parser missing")?;
    let statuses = cwm_eval::log::parse_test_log(&log, parser)
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut failing: Vec<_> = statuses
        .iter()
        .filter(|(_, s)| {
            matches!(
                s,
                cwm_eval::TestStatus::Failed | cwm_eval::TestStatus::Error
            )
        })
        .collect();
    failing.sort_by(|a, b| a.0.cmp(b.0));
    for (test, status) in &failing {
        println!("  {} {test}", status.as_str());
    }
    let passed = !statuses.is_empty() && failing.is_empty();
    let headline = if passed {
        style(format!("TESTS PASS ({} tests)", statuses.len()))
            .green()
            .bold()
    } else {
        style(format!(
            "TESTS FAIL ({} of {} failing)",
            failing.len(),
            statuses.len()
        ))
        .red()
        .bold()
    };
    println!("\nverdict: {headline}");
    Ok(passed)
}
