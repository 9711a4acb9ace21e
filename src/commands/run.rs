//! `cwm-bench run`: the flags, then [`cwm_bench::pipeline::Run`] does the work.

use std::path::PathBuf;
use std::process::ExitCode;

use cwm_bench::config::{ConfigOverrides, RunConfig};
use cwm_bench::pipeline::Run;

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
    let run = Run::prepare(config.clone())?;
    cwm_bench::logging::init(Some(&run.log_path()), flags.quiet)?;
    tracing::info!(run_id = %config.run.run_id, model = %config.backend.model, instances = run.instances().len(), "run started");
    let outcome = run.execute(flags.quiet, shutdown.recv()).await?;
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
        return Ok(ExitCode::from(code));
    }
    let unscored = outcome.failures.infrastructure.len();
    if unscored > 0 {
        eprintln!(
            "{unscored} instance(s) hit infrastructure failures and are not scored: run it again with --run-id {} to redo them",
            outcome.run_id
        );
        return Ok(ExitCode::from(INFRA_EXIT));
    }
    Ok(ExitCode::SUCCESS)
}
