//! `cwm-bench export RUN_DIR... --format sft|rl|cwm [--only resolved|all] --out FILE`:
//! training data from finished runs (schemas in docs/exports.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cwm_results::export::{export_with, Format, Only, Verdict};
use cwm_results::LoadedRun;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    /// `{"messages": [...]}` chat transcripts (TRL, torchtune, LLaMA-Factory).
    Sft,
    /// One episode per line with per-turn actions, observations, tokens and rewards.
    Rl,
    /// CWM's trajectory dump: `{"rollouts": [{"traj": {"transitions": [...]}, ...}]}`.
    Cwm,
    /// `{"text": ...}` per example of `cwm-bench trace` output files (given instead of run
    /// directories): CWM's trace token form, ready to tokenize with its vocabulary.
    Trace,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum OnlyArg {
    /// Only episodes whose patch resolved the task (the runs must be evaluated).
    Resolved,
    #[default]
    All,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum RewardArg {
    #[default]
    Hardened,
    Official,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Run directories written by `cwm-bench run` (e.g. runs/<run-id>); with `--format
    /// trace`, files written by `cwm-bench trace`.
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Which episodes of the runs (default: all); not with `--format trace`.
    #[arg(long, value_enum)]
    pub only: Option<OnlyArg>,
    /// The verdict rewards and `--only resolved` follow: `hardened` (cannot be forged by the
    /// patch; the default) or `official` (SWE-bench 5.0.2's report.json); not with `--format
    /// trace`.
    #[arg(long, value_enum)]
    pub reward: Option<RewardArg>,
    /// The JSON Lines file to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        FormatArg::Sft => Format::Sft,
        FormatArg::Rl => Format::Rl,
        FormatArg::Cwm => Format::Cwm,
        FormatArg::Trace => {
            // Flags of run exports mean nothing to trace files: refused, not ignored.
            let run_only = [
                ("--only", args.only.is_some()),
                ("--reward", args.reward.is_some()),
            ];
            if let Some((flag, _)) = run_only.iter().find(|(_, given)| *given) {
                anyhow::bail!(
                    "{flag} applies to run directories, not to --format trace (trace files \
                     are exported whole); leave it out"
                );
            }
            return export_traces(&args.run_dirs, &args.out);
        }
    };
    let runs = load_runs(&args.run_dirs)?;
    let only = match args.only.unwrap_or_default() {
        OnlyArg::Resolved => Only::Resolved,
        OnlyArg::All => Only::All,
    };
    let verdict = match args.reward.unwrap_or_default() {
        RewardArg::Hardened => Verdict::Hardened,
        RewardArg::Official => Verdict::Official,
    };
    let stats = export_with(&runs, format, only, verdict, &args.out)?;
    println!(
        "wrote {} episodes to {} ({} unfinished and {} unresolved left out)",
        stats.written,
        args.out.display(),
        stats.unfinished,
        stats.unresolved
    );
    Ok(ExitCode::SUCCESS)
}

/// `--format trace`: the token form of every example of the trace files, one
/// `{"text": ...}` per line, the output written whole.
fn export_traces(files: &[PathBuf], out: &std::path::Path) -> anyhow::Result<ExitCode> {
    let mut lines = Vec::new();
    let mut written = 0;
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "reading trace file {} (written by `cwm-bench trace`)",
                file.display()
            )
        })?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let example: cwm_bench::pipeline::trace::TraceExample = serde_json::from_str(line)
                .with_context(|| {
                    format!("{} line {}: not a trace example", file.display(), n + 1)
                })?;
            serde_json::to_writer(&mut lines, &serde_json::json!({"text": example.text}))?;
            lines.push(b'\n');
            written += 1;
        }
    }
    cwm_results::write_atomic(out, &lines)?;
    println!("wrote {written} trace examples to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Loads every run directory, naming the one that failed.
pub fn load_runs(dirs: &[PathBuf]) -> anyhow::Result<Vec<LoadedRun>> {
    dirs.iter()
        .map(|d| {
            LoadedRun::load(d).with_context(|| format!("reading run directory {}", d.display()))
        })
        .collect()
}
