//! `cwm-bench trace`: CWM-format execution traces of the selected instances' tests
//! ([`cwm_bench::pipeline::trace`], docs/traces.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cwm_bench::pipeline::trace::{self, TraceLimits};
use cwm_bench::pipeline::with_cleanup;
use cwm_bench::PipelineError;

use super::shared::{at_least, temp_beside, DatasetArgs};

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The code to trace: `gold` (the dataset's fixes, the default), `none` (the base commit)
    /// or a predictions file (a run's `preds.jsonl`: why its patches fail, seen from inside).
    #[arg(long, default_value = "gold")]
    pub predictions: String,
    /// Test ids to trace, comma separated (default: each instance's FAIL_TO_PASS).
    #[arg(long, value_delimiter = ',', value_parser = test_id)]
    pub tests: Option<Vec<String>>,
    /// JSON Lines output, one example per line (replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Events per example before it is cut (at least 1).
    #[arg(long, default_value_t = TraceLimits::default().max_events, value_parser = at_least(1usize))]
    pub max_events: usize,
    /// Characters of a repr before it is cut, with `...` (at least 8).
    #[arg(long, default_value_t = TraceLimits::default().max_repr, value_parser = at_least(8usize))]
    pub max_repr: usize,
    /// Nesting of traced repository calls beyond which calls are not traced (at least 1).
    #[arg(long, default_value_t = TraceLimits::default().max_depth, value_parser = at_least(1usize))]
    pub max_depth: usize,
    /// Examples per test before tracing stops (at least 1).
    #[arg(long, default_value_t = TraceLimits::default().max_examples, value_parser = at_least(1usize))]
    pub max_examples: usize,
    /// Seconds per test before tracing stops; the test may then run on untraced for 30 s
    /// more (at least 1).
    #[arg(long, default_value_t = TraceLimits::default().timeout.as_secs(), value_parser = at_least(1u64))]
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
    let temp = temp_beside(&args.out)?;
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
            Err(PipelineError::Interrupted { exit_code, .. }) => {
                eprintln!(
                    "{iid}: interrupted; its containers are removed and {} is as it was",
                    args.out.display()
                );
                return Ok(ExitCode::from(exit_code));
            }
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

/// A `--tests` id: not empty, without surrounding blanks.
fn test_id(text: &str) -> Result<String, String> {
    let id = text.trim();
    if id.is_empty() {
        return Err(
            "an empty test id; give ids such as tests/test_a.py::test_b, comma separated".into(),
        );
    }
    Ok(id.to_string())
}

/// What the run traced, the instances it could not, and the tests that gave no example.
#[derive(Default)]
struct Tally {
    examples: usize,
    tests: usize,
    truncated: usize,
    silent: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
}

impl Tally {
    fn add(&mut self, iid: &str, tests: &[String], traced: &[trace::TraceExample]) {
        let silent: Vec<&String> = tests
            .iter()
            .filter(|t| !traced.iter().any(|e| &e.test_id == *t))
            .collect();
        println!(
            "{iid}: {} examples from {} tests{}",
            traced.len(),
            tests.len(),
            if silent.is_empty() {
                String::new()
            } else {
                format!(" ({} gave none: the warning above says why)", silent.len())
            }
        );
        self.examples += traced.len();
        self.tests += tests.len();
        self.truncated += traced.iter().filter(|e| e.truncated.is_some()).count();
        self.silent
            .extend(silent.into_iter().map(|t| (iid.to_string(), t.clone())));
    }

    fn skip(&mut self, iid: &str, why: String) {
        println!("{iid}: not traced: {why}");
        self.skipped.push((iid.to_string(), why));
    }

    /// The closing lines. The exit status is 1 when an instance could not be traced or a test
    /// gave no example (an unknown test id, a test that fails to import, ...).
    fn report(&self, out: &Path, selected: usize) -> ExitCode {
        println!(
            "{} examples from {} tests of {} instances ({} cut by a limit) in {}",
            self.examples,
            self.tests,
            selected - self.skipped.len(),
            self.truncated,
            out.display()
        );
        if !self.silent.is_empty() {
            println!("tests that gave no example: {}", self.silent.len());
            for (iid, test) in &self.silent {
                println!("  {iid}: {test}");
            }
        }
        if !self.skipped.is_empty() {
            println!("not traced: {} instances", self.skipped.len());
            for (iid, why) in &self.skipped {
                println!("  {iid}: {why}");
            }
        }
        if self.silent.is_empty() && self.skipped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
