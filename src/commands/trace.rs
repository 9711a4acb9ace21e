//! `cwm-bench trace`: CWM-format execution traces of the selected instances' tests
//! ([`cwm_bench::pipeline::trace`], docs/traces.md).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cwm_bench::pipeline::trace::{self, TraceLimits};
use cwm_bench::pipeline::with_cleanup;

use super::shared::DatasetArgs;

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The code to trace: `gold` (the dataset's fixes, the default), `none` (the base commit)
    /// or a predictions file (a run's `preds.jsonl`: why its patches fail, seen from inside).
    #[arg(long, default_value = "gold")]
    pub predictions: String,
    /// Test ids to trace, comma separated (default: each instance's FAIL_TO_PASS).
    #[arg(long, value_delimiter = ',')]
    pub tests: Option<Vec<String>>,
    /// JSON Lines output, one example per line (replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Events per example before it is cut.
    #[arg(long, default_value_t = TraceLimits::default().max_events)]
    pub max_events: usize,
    /// Characters of a repr before it is cut.
    #[arg(long, default_value_t = TraceLimits::default().max_repr)]
    pub max_repr: usize,
    /// Nesting of traced repository calls beyond which calls are not traced.
    #[arg(long, default_value_t = TraceLimits::default().max_depth)]
    pub max_depth: usize,
    /// Examples per test before tracing stops.
    #[arg(long, default_value_t = TraceLimits::default().max_examples)]
    pub max_examples: usize,
    /// Seconds per test before tracing stops.
    #[arg(long, default_value_t = TraceLimits::default().timeout.as_secs())]
    pub timeout: u64,
}

pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    cwm_bench::logging::init(None, true)?;
    let (all, selected) = args.dataset.load_both()?;
    anyhow::ensure!(
        !selected.is_empty(),
        "no instance is selected; check --dataset and the filters"
    );
    let preds = match args.predictions.as_str() {
        "none" => None,
        other => Some(super::shared::load_predictions(
            other, &selected, &all, false,
        )?),
    };
    let limits = TraceLimits {
        max_events: args.max_events,
        max_repr: args.max_repr,
        max_depth: args.max_depth,
        max_examples: args.max_examples,
        timeout: Duration::from_secs(args.timeout),
    };
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let label = format!("trace-{}", std::process::id());
    let (mut examples, mut tests, mut truncated) = (0, 0, 0);
    for instance in &selected {
        let ids = args
            .tests
            .clone()
            .unwrap_or_else(|| instance.fail_to_pass.clone());
        let patch = preds
            .as_ref()
            .and_then(|p| p.get(&instance.instance_id))
            .and_then(|p| p.model_patch.clone());
        let traced = runtime.block_on(with_cleanup(&label, async {
            let docker = cwm_env::connect().await?;
            trace::trace_instance(&docker, instance, patch.as_deref(), &ids, &limits, &label).await
        }))?;
        tests += ids.len();
        for example in &traced {
            truncated += usize::from(example.truncated.is_some());
            serde_json::to_writer(&mut out, example)?;
            out.write_all(b"\n")?;
        }
        examples += traced.len();
        out.flush()?;
        println!(
            "{}: {} examples from {} tests",
            instance.instance_id,
            traced.len(),
            ids.len()
        );
    }
    println!(
        "{examples} examples from {tests} tests of {} instances ({truncated} cut by a limit) in {}",
        selected.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
