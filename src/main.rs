//! `cwm-bench`: run and train code agents on SWE-bench. This binary only parses flags and
//! prints; the work is in the `cwm_bench` library (the run pipeline) and the stage crates.
//! Each subcommand's adapter lives in `commands/`.

#![forbid(unsafe_code)]

mod commands;

use cwm_bench::logging;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cwm-bench",
    version,
    about = "Run code agents (CWM and any Llama-family model) on SWE-bench"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent on every selected instance: the main job. Resumable by --run-id.
    Run(Box<commands::run::RunFlags>),
    /// Run one instance in the foreground, streaming every turn, then grade it.
    Repro(Box<commands::repro::ReproArgs>),
    /// Inspect SWE-bench datasets.
    #[command(subcommand)]
    Dataset(commands::dataset::DatasetCommand),
    /// Build the offline images, or pull task images.
    #[command(subcommand)]
    Images(commands::images::ImagesCommand),
    /// Grade predictions in fresh containers, like the official SWE-bench harness.
    Eval(commands::eval::EvalArgs),
    /// Grade existing test logs without containers (re-grade a run, or the official harness's logs).
    Grade(commands::grade::GradeArgs),
    /// Remove leftover task containers (by label).
    Clean(commands::clean::CleanArgs),
    /// Replay a trajectory in a fresh container and check every observation is the same.
    Replay(commands::replay::ReplayArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Export finished runs as SFT, RL or CWM-format training data (JSON Lines).
    Export(commands::export::ExportArgs),
    /// CWM-format execution traces of the selected instances' tests, run in their containers.
    Trace(commands::trace::TraceArgs),
    /// Score a model's next-frame predictions on execution traces (a neural debugger).
    DebuggerEval(commands::debugger_eval::DebuggerEvalArgs),
    /// Test-time scaling over a run's samples: reproduction tests, patch selection.
    #[command(subcommand)]
    Tts(commands::tts::TtsCommand),
    /// Write a leaderboard, an HTML report with charts and trajectory pages, and submission files.
    Report(commands::report::ReportArgs),
    /// The prompt profile: dump the built-in one, or check a file.
    #[command(subcommand)]
    Prompts(commands::prompts::PromptsCommand),
}

/// Runs an async subcommand on a multi-threaded runtime.
fn block_on<F: std::future::Future<Output = anyhow::Result<std::process::ExitCode>>>(
    future: F,
) -> anyhow::Result<std::process::ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(flags) => block_on(commands::run::run(*flags)),
        Command::Repro(args) => block_on(commands::repro::run(*args)),
        Command::Dataset(cmd) => commands::dataset::run(cmd),
        Command::Images(cmd) => commands::images::run(cmd),
        Command::Eval(args) => commands::eval::run(args),
        Command::Grade(args) => commands::grade::run(args),
        Command::Clean(args) => commands::clean::run(args),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Replay(args) => block_on(commands::replay::run(args)),
        Command::Export(args) => commands::export::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Tts(cmd) => commands::tts::run(cmd),
        Command::Trace(args) => commands::trace::run(args),
        Command::DebuggerEval(args) => commands::debugger_eval::run(args),
        Command::Prompts(cmd) => commands::prompts::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", logging::error_line(err.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
