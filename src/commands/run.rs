//! `cwm-bench run`: the flags, then [`cwm_bench::pipeline::Run`] does the work.

use std::path::PathBuf;
use std::process::ExitCode;

use cwm_bench::config::{ConfigOverrides, RunConfig};
use cwm_bench::pipeline::{samples, Run};

/// Exit status of a run that finished with instances left unfinished by infrastructure
/// failures (listed in `failures.json`); running it again redoes them.
const INFRA_EXIT: u8 = 3;

/// Every setting of a run. The flags overlay a TOML file (`--config`), which overlays the
/// defaults; the effective settings are saved with the run as `config.json`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// TOML file holding any of these settings, one table per section ([run], [dataset],
    /// [episode], [sampling], [backend], [eval]) with the flag names in snake_case; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: ConfigOverrides,
    /// No live progress display: plain log lines, for CI.
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(flags: RunFlags) -> anyhow::Result<ExitCode> {
    // Listen from the start, so an early Ctrl-C (or SIGTERM, SIGHUP) also takes the clean-up path.
    let mut shutdown = cwm_bench::signals::Shutdown::listen()?;
    let file = flags
        .config
        .as_deref()
        .map(ConfigOverrides::from_file)
        .transpose()?;
    let config = RunConfig::resolve(file, flags.overrides.clone())?;
    config.refuse_unappliable_sampling(&flags.overrides.sampling_given())?;
    if config.run.samples > 1 {
        return run_samples(config, flags.quiet, &mut shutdown).await;
    }
    let run = Run::prepare(config.clone())?;
    cwm_bench::logging::init(Some(&run.log_path()), flags.quiet)?;
    tracing::info!(run_id = %config.run.run_id, model = %config.backend.model, instances = run.instances().len(), "run started");
    let outcome = run.execute(flags.quiet, shutdown.recv()).await?;
    Ok(report(&outcome))
}

/// Prints a finished run's table, failures and verdicts; the exit status it ends with.
fn report(outcome: &cwm_bench::pipeline::RunOutcome) -> ExitCode {
    println!("{}", outcome.table());
    println!("{}", outcome.failures.lines(&outcome.run_id));
    println!("run directory: {}", outcome.run_dir.display());
    if outcome.evaluated {
        println!("{}", outcome.hardened.line());
        println!("{}", outcome.summary.resolved_line());
    }
    if let Some(code) = outcome.interrupted {
        eprintln!(
            "interrupted: run it again with --run-id {} to finish",
            outcome.run_id
        );
        return ExitCode::from(code);
    }
    let unscored = outcome.failures.infrastructure.len();
    if unscored > 0 {
        eprintln!(
            "{unscored} instance(s) hit infrastructure failures and are not scored: run it again with --run-id {} to redo them",
            outcome.run_id
        );
        return ExitCode::from(INFRA_EXIT);
    }
    ExitCode::SUCCESS
}

/// `--samples K`: sample k is a run of its own (see `cwm_bench::pipeline::samples`), run
/// one after the other; then the samples are combined. A sample that ends early (a stop, or
/// infrastructure failures) ends the whole run with its status; starting again resumes.
async fn run_samples(
    config: RunConfig,
    quiet: bool,
    shutdown: &mut cwm_bench::signals::Shutdown,
) -> anyhow::Result<ExitCode> {
    let root = cwm_results::RunDir::open(&config.run_dir())?;
    root.write_config(&serde_json::to_value(&config)?)?;
    cwm_bench::logging::init(Some(&root.log_path()), quiet)?;
    let mut instances = Vec::new();
    for k in 0..config.run.samples {
        let sample = samples::sample_config(&config, k);
        let run = Run::prepare(sample)?;
        instances = run.instances().to_vec();
        tracing::info!(run_id = %config.run.run_id, sample = k, instances = instances.len(), "sample started");
        let outcome = run.execute(quiet, shutdown.recv()).await?;
        println!("\nsample {k} of {}:", config.run.samples);
        let status = report(&outcome);
        if status != ExitCode::SUCCESS {
            return Ok(status);
        }
    }
    let summary = samples::combine(&config, &instances)?;
    println!("\nrun directory: {}", config.run_dir().display());
    println!("samples.jsonl: every sample's patch; preds.jsonl: the majority vote per instance");
    if let Some(summary) = summary {
        println!("{}", summary.lines());
    }
    Ok(ExitCode::SUCCESS)
}
