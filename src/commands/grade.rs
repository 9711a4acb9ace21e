//! `cwm-bench grade`: grade existing test logs without containers (the official harness's
//! `--rewrite_reports`), e.g. to re-grade an old run after a parser fix, or to grade the
//! official harness's own `test_output.txt` files.

use std::path::PathBuf;
use std::process::ExitCode;

use super::shared::DatasetArgs;

#[derive(clap::Args, Debug)]
pub struct GradeArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Predictions file (JSONL, JSON list, or JSON dict keyed by instance id), or `gold`.
    #[arg(long)]
    pub predictions: String,
    /// Directory laid out like a run's `eval/`: `<instance_id>/test_output.txt`.
    #[arg(long)]
    pub logs: PathBuf,
    /// Where `<instance_id>/report.json` and `summary.json` go (default: the logs directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: GradeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.logs.is_dir(),
        "--logs {}: not a directory; give the run's eval/ directory (DIR/<instance_id>/test_output.txt)",
        args.logs.display()
    );
    let (all, selected) = args.dataset.load_both()?;
    let preds = super::shared::load_predictions(&args.predictions, &selected, &all, false)?;
    let out = args.out.unwrap_or_else(|| args.logs.clone());
    let done = cwm_eval::regrade::regrade(&selected, &preds, &args.logs, &out)?;
    for error in &done.errors {
        eprintln!("error: {error}");
    }
    if !done.missing_logs.is_empty() {
        eprintln!(
            "note: {} instance(s) with a prediction have no test_output.txt and were not graded: {}",
            done.missing_logs.len(),
            done.missing_logs.join(", ")
        );
    }
    println!(
        "wrote {} report(s) and {}",
        done.reports,
        out.join("summary.json").display()
    );
    println!("{}", done.summary.resolved_line());
    Ok(if done.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
