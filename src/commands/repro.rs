//! `cwm-bench repro`: one instance in the foreground, every turn streamed as it happens, then
//! graded, with the verdict and the failing tests. `--keep` leaves the container to explore.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use console::style;
use cwm_agent::JsonlTrajectoryWriter;
use cwm_bench::config::{
    BackendOverrides, ConfigOverrides, EpisodeOverrides, EvalOverrides, RunConfig,
    SamplingOverrides,
};
use cwm_bench::pipeline::{grade, solve, with_cleanup, Task};
use cwm_bench::PipelineError;
use cwm_datasets::Instance;
use cwm_eval::Evaluation;

use super::local_task::{build_image, local_instance, LocalTask};

#[derive(clap::Args, Debug)]
pub struct ReproArgs {
    /// Instance id from the dataset (omit with --repo).
    pub instance_id: Option<String>,
    /// Dataset file or directory (default: the bundled fixture tasks).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Leave the agent's container running and print how to enter it.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub local: LocalTask,
    /// Where the trajectory and eval files go (default: runs/repro-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendOverrides,
    #[command(flatten)]
    pub episode: EpisodeOverrides,
    #[command(flatten)]
    pub sampling: SamplingOverrides,
    /// Seconds for the eval script (default 1800).
    #[arg(long)]
    pub eval_timeout: Option<u64>,
}

impl ReproArgs {
    /// The run settings tree, as `run` resolves it.
    fn config(&self) -> anyhow::Result<RunConfig> {
        let overrides = ConfigOverrides {
            backend: self.backend.clone(),
            episode: self.episode.clone(),
            sampling: self.sampling.clone(),
            eval: EvalOverrides {
                evaluate: Some(true),
                eval_timeout: self.eval_timeout,
                ..EvalOverrides::default()
            },
            ..ConfigOverrides::default()
        };
        let mut config = RunConfig::resolve(None, overrides.clone())?;
        config.run.run_id = format!("repro-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
        config.refuse_unappliable_sampling(&overrides.sampling_given())?;
        Ok(config)
    }
}

pub async fn run(args: ReproArgs) -> anyhow::Result<ExitCode> {
    cwm_bench::logging::init(None, false)?;
    let (instance, local) = resolve_instance(&args)?;
    let config = args.config()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&config.run.run_id));
    let docker = cwm_env::connect().await?;
    if local {
        build_image(&docker, &args.local, &instance).await?;
    }
    let episode = config.episode_config()?;
    let task = Task {
        docker: &docker,
        instance: &instance,
        run_id: &config.run.run_id,
        episode: &episode,
        keep: args.keep,
    };
    let patch = with_cleanup(&config.run.run_id, solve_streamed(&task, &config, &out)).await?;
    println!("{}", style("grading in a fresh container...").bold());
    let dir = out.join("eval").join(&instance.instance_id);
    let report = with_cleanup(
        &config.run.run_id,
        grade(
            &docker,
            &instance,
            patch.as_deref(),
            &config.eval_options(),
            &dir,
        ),
    )
    .await?;
    let resolved = if local {
        print_test_results(&dir)?
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

/// Runs the episode, streaming every turn; returns the patch.
async fn solve_streamed(
    task: &Task<'_>,
    config: &RunConfig,
    out: &std::path::Path,
) -> Result<Option<String>, PipelineError> {
    let mut policy = config.policy()?;
    let trajectory = out
        .join("trajectories")
        .join(format!("{}.jsonl", task.instance.instance_id));
    let mut recorder = JsonlTrajectoryWriter::create(&trajectory)?;
    let solved = solve(task, policy.as_mut(), &mut recorder, &mut StreamObserver).await?;
    let footer = solved.footer;
    println!(
        "\n{} {} after {} turns; trajectory: {}",
        style("episode ended:").bold(),
        footer.status,
        footer.turns,
        trajectory.display()
    );
    if let Some(error) = &footer.error {
        println!("{} {error}", style("error:").red());
    }
    if let Some(id) = solved.kept {
        println!("container kept: docker exec -it {id} bash   (remove with `docker rm -f {id}`)");
    }
    Ok(footer.patch)
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
