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
    // Written beside the output and renamed over it at the end, so a failed run leaves an
    // earlier file as it was.
    let dir = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".cwm-bench-trace-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a file in {} for the output", dir.display()))?;
    let mut out = std::io::BufWriter::new(temp);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let label = format!("trace-{}", std::process::id());
    let mut tally = Tally::default();
    for instance in &selected {
        let iid = &instance.instance_id;
        let patch = match &preds {
            None => None,
            Some(p) => match p.get(iid) {
                Some(pred) => pred.model_patch.clone(),
                None => {
                    tally.skip(
                        iid,
                        format!("{} has no prediction for it", args.predictions),
                    );
                    continue;
                }
            },
        };
        if preds.is_some() && patch.as_deref().is_none_or(|p| p.trim().is_empty()) {
            println!("{iid}: the prediction is empty, so this is the base commit's trace");
        }
        let ids = args
            .tests
            .clone()
            .unwrap_or_else(|| instance.fail_to_pass.clone());
        let traced = runtime.block_on(with_cleanup(&label, async {
            let docker = cwm_env::connect().await?;
            trace::trace_instance(&docker, instance, patch.as_deref(), &ids, &limits, &label).await
        }));
        let traced = match traced {
            Ok(traced) => traced,
            Err(err) if err.is_infrastructure() => return Err(err.into()),
            Err(err) => {
                tally.skip(iid, err.to_string());
                continue;
            }
        };
        for example in &traced {
            serde_json::to_writer(&mut out, example)?;
            out.write_all(b"\n")?;
        }
        tally.add(iid, &ids, &traced);
    }
    let temp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing the examples beside {}", args.out.display()))?;
    temp.persist(&args.out)
        .with_context(|| format!("moving the examples into {}", args.out.display()))?;
    Ok(tally.report(&args.out, selected.len()))
}

/// What the run traced, and the instances it could not.
#[derive(Default)]
struct Tally {
    examples: usize,
    tests: usize,
    truncated: usize,
    silent_tests: usize,
    skipped: Vec<(String, String)>,
}

impl Tally {
    fn add(&mut self, iid: &str, tests: &[String], traced: &[trace::TraceExample]) {
        let silent = tests
            .iter()
            .filter(|t| !traced.iter().any(|e| &e.test_id == *t))
            .count();
        println!(
            "{iid}: {} examples from {} tests{}",
            traced.len(),
            tests.len(),
            if silent > 0 {
                format!(" ({silent} gave none: the log above says why)")
            } else {
                String::new()
            }
        );
        self.examples += traced.len();
        self.tests += tests.len();
        self.silent_tests += silent;
        self.truncated += traced.iter().filter(|e| e.truncated.is_some()).count();
    }

    fn skip(&mut self, iid: &str, why: String) {
        println!("{iid}: not traced: {why}");
        self.skipped.push((iid.to_string(), why));
    }

    /// The closing lines; the exit status is 1 when an instance could not be traced.
    fn report(&self, out: &std::path::Path, selected: usize) -> ExitCode {
        println!(
            "{} examples from {} tests of {} instances ({} cut by a limit; {} tests gave none) in {}",
            self.examples,
            self.tests,
            selected - self.skipped.len(),
            self.truncated,
            self.silent_tests,
            out.display()
        );
        if self.skipped.is_empty() {
            return ExitCode::SUCCESS;
        }
        println!("not traced: {} instances", self.skipped.len());
        for (iid, why) in &self.skipped {
            println!("  {iid}: {why}");
        }
        ExitCode::FAILURE
    }
}
