//! `cwm-bench eval`: grade predictions in fresh containers, exactly as the official
//! SWE-bench harness does, writing `runs/<run-id>/eval/<iid>/` and `runs/<run-id>/summary.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cwm_bench::config::EvalSettings;
use cwm_bench::pipeline::validate::{read_known_bad, ValidationReport};
use cwm_bench::pipeline::with_cleanup;
use cwm_bench::pipeline::{grade_all, Grading};
use cwm_datasets::Instance;
use cwm_eval::predictions::Predictions;
use cwm_eval::EvalOptions;
use indicatif::{ProgressBar, ProgressStyle};

use super::shared::DatasetArgs;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Predictions file (JSONL, JSON list, or JSON dict keyed by instance id), or `gold`
    /// (the dataset's own fixes) or `empty` (no change: the base commit's tests).
    #[arg(long)]
    pub predictions: String,
    /// Run id; outputs go to <runs-dir>/<run-id>/. Re-using one skips finished instances.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Instances evaluated at once.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Eval script timeout in seconds (default 1800, as the official harness).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// `none` runs eval containers without a network (pip then uses no index).
    #[arg(long, value_enum, default_value_t = EvalNetwork::Default)]
    pub eval_network: EvalNetwork,
    /// Directory holding the run directories.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// With `--predictions gold`: also run every instance's tests on its base commit (no
    /// patch), and write `validation.json` listing instances whose gold patch does not
    /// resolve them or whose base commit already does (broken images, flaky tests).
    #[arg(long)]
    pub validate: bool,
    /// Leave out the instances this file lists (a `validation.json`, a JSON list of ids, or
    /// one id per line).
    #[arg(long)]
    pub known_bad: Option<PathBuf>,
    /// CPUs an eval container may use, e.g. 2 or 0.5 (default: no limit, as the official
    /// harness).
    #[arg(long, value_parser = cwm_bench::config::parse_cpus)]
    pub eval_cpus: Option<f64>,
    /// Memory an eval container may use, e.g. 8GiB (default: no limit, as the official
    /// harness).
    #[arg(long)]
    pub eval_memory: Option<bytesize::ByteSize>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalNetwork {
    /// Docker's default network, as the official harness.
    Default,
    /// No network at all.
    None,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.workers > 0, "--workers must be at least 1");
    anyhow::ensure!(
        !args.validate || args.predictions == "gold",
        "--validate checks the dataset's gold patches; give --predictions gold"
    );
    anyhow::ensure!(
        args.timeout != Some(0),
        "--timeout must be at least 1 second"
    );
    let (selected, preds) = load_inputs(&args)?;
    let to_run: Vec<Instance> = selected
        .iter()
        .filter(|i| preds.contains_key(&i.instance_id))
        .cloned()
        .collect();
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("eval-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")));
    let mut opts = EvalOptions::new(&run_id);
    if let Some(secs) = args.timeout {
        opts.timeout = Duration::from_secs(secs);
    }
    opts.network = args.eval_network == EvalNetwork::Default;
    let limits = EvalSettings {
        cpus: args.eval_cpus,
        memory: args.eval_memory,
        ..EvalSettings::default()
    };
    limits.limit(&mut opts);
    let run_dir = args.runs_dir.join(&run_id);
    let runtime = tokio::runtime::Runtime::new()?;
    let failures = runtime.block_on(with_cleanup(
        &run_id,
        evaluate_all(
            &to_run,
            &preds,
            &opts,
            &run_dir,
            args.workers,
            args.validate,
        ),
    ))?;
    let ids: Vec<String> = selected.iter().map(|i| i.instance_id.clone()).collect();
    let (summary, hardened) = cwm_bench::pipeline::summarise(&ids, &preds, &run_dir)?;
    println!("{}", hardened.line());
    println!("{}", summary.resolved_line());
    if args.validate {
        let report = ValidationReport::from_run_dir(&to_run, &run_dir)?;
        let path = report.write(&run_dir)?;
        println!("{}", report.line());
        println!(
            "validation report: {} (pass it as --known-bad to leave those out)",
            path.display()
        );
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The selected instances and every prediction given. Predictions naming an instance the
/// dataset does not hold at all are an error; ones for instances filtered out are not
/// evaluated but, as upstream, still count as submitted in the summary.
fn load_inputs(args: &EvalArgs) -> anyhow::Result<(Vec<Instance>, Predictions)> {
    let (all, mut selected) = args.dataset.load_both()?;
    if let Some(path) = &args.known_bad {
        let bad = read_known_bad(path)?;
        selected.retain(|i| !bad.contains(&i.instance_id));
    }
    let preds = super::shared::load_predictions(&args.predictions, &selected, &all, true)?;
    anyhow::ensure!(
        selected.iter().any(|i| preds.contains_key(&i.instance_id)),
        "none of the {} selected instances has a prediction; check --predictions and the filters",
        selected.len()
    );
    Ok((selected, preds))
}

/// Grades every instance, drawing a progress bar. Returns how many could not be graded
/// (each is reported on stderr).
async fn evaluate_all(
    instances: &[Instance],
    preds: &Predictions,
    opts: &EvalOptions,
    run_dir: &Path,
    workers: usize,
    validate: bool,
) -> anyhow::Result<usize> {
    let docker = cwm_env::connect().await?;
    let bar = progress_bar(instances.len());
    let mut resolved = 0usize;
    let grading = Grading {
        docker: &docker,
        options: opts,
        run_dir,
        workers,
        validate,
    };
    let failures = grade_all(&grading, instances, preds, |instance, result| {
        match result {
            Ok(evaluation) => resolved += usize::from(evaluation.resolved()),
            // Not `bar.println`: it prints nothing when the bar is hidden (no terminal).
            Err(err) => bar.suspend(|| eprintln!("error: {}: {err}", instance.instance_id)),
        }
        bar.set_message(format!("resolved {resolved}"));
        bar.inc(1);
    })
    .await;
    bar.finish_and_clear();
    Ok(failures)
}

fn progress_bar(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
