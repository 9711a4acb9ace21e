//! `cwm-bench tts gen-tests|select`: reproduction tests and patch selection over a run's
//! samples ([`cwm_bench::pipeline::tts`], docs/tts.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cwm_bench::config::RunConfig;
use cwm_bench::pipeline::samples::SampleRecord;
use cwm_bench::pipeline::tts::{self, CandidateRun, GeneratedTest, Strategy};
use cwm_bench::pipeline::{with_cleanup, Run};
use cwm_datasets::{Instance, Prediction};
use cwm_results::{read_jsonl, write_atomic, JsonlStore, RunDir};
use serde::Serialize;

#[derive(clap::Subcommand, Debug)]
pub enum TtsCommand {
    /// Write M reproduction tests per instance with test-writing episodes, and keep those
    /// that print "Issue reproduced" on the unpatched repository.
    GenTests {
        #[command(flatten)]
        run: RunArg,
        /// Test-writing episodes per instance.
        #[arg(long)]
        count: usize,
        /// The model that writes them (default: the run's); `{sample}` becomes the test's
        /// index.
        #[arg(long)]
        model: Option<String>,
        /// No live progress display.
        #[arg(long)]
        quiet: bool,
    },
    /// Rank each instance's distinct candidate patches and write the best as the
    /// predictions of a derived run.
    Select {
        #[command(flatten)]
        run: RunArg,
        #[arg(long, value_enum, default_value_t = Strategy::TestsMajority)]
        strategy: Strategy,
        /// The derived run's id (default: `<run-id>-selected`), under the run's runs dir.
        #[arg(long)]
        out_run: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArg {
    /// The run: its directory, or its id under --runs-dir.
    #[arg(long)]
    run: String,
    /// Where run ids are looked up (default: runs).
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
}

impl RunArg {
    fn load(&self) -> anyhow::Result<(PathBuf, RunConfig)> {
        let dir = tts::resolve_run(&self.run, &self.runs_dir);
        let config = tts::load_run_config(&dir)?;
        Ok((dir, config))
    }
}

pub fn run(cmd: TtsCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cmd {
        TtsCommand::GenTests {
            run,
            count,
            model,
            quiet,
        } => runtime.block_on(gen_tests(&run, count, model.as_deref(), quiet)),
        TtsCommand::Select {
            run,
            strategy,
            out_run,
        } => runtime.block_on(select(&run, strategy, out_run)),
    }
}

async fn gen_tests(
    arg: &RunArg,
    count: usize,
    model: Option<&str>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(count > 0, "--count must be at least 1");
    let (dir, config) = arg.load()?;
    let tts_dir = dir.join("tts");
    std::fs::create_dir_all(&tts_dir).with_context(|| format!("creating {}", tts_dir.display()))?;
    cwm_bench::logging::init(Some(&tts_dir.join("gen-tests.log")), quiet)?;
    let mut shutdown = cwm_bench::signals::Shutdown::listen()?;
    let mut instances: Vec<Instance> = Vec::new();
    for m in 0..count {
        let tests = tts::test_config(&config, m, model);
        let episode = tts::test_episode(&tests)?;
        let run = Run::prepare_with(tests, episode)?;
        instances = run.instances().to_vec();
        let outcome = run.execute(quiet, shutdown.recv()).await?;
        if let Some(code) = outcome.interrupted {
            eprintln!("interrupted: run `tts gen-tests` again to finish");
            return Ok(ExitCode::from(code));
        }
    }
    let store_path = dir.join("tts").join("tests.jsonl");
    let mut store = JsonlStore::open(&store_path)?;
    let done: BTreeSet<(String, usize)> = store
        .read_all::<GeneratedTest>()?
        .into_iter()
        .map(|t| (t.instance_id, t.test))
        .collect();
    let docker = cwm_env::connect().await?;
    let label = format!("{}.tts", config.run.run_id);
    remove_leftovers(&docker, &label).await?;
    for m in 0..count {
        let preds = RunDir::open(&tts::test_config(&config, m, model).run_dir())?;
        for instance in &instances {
            let key = (instance.instance_id.clone(), m);
            let Some(patch) = preds
                .finished()
                .get(&key.0)
                .and_then(|p| p.model_patch.clone())
            else {
                continue;
            };
            if done.contains(&key) || patch.trim().is_empty() {
                continue;
            }
            let test = with_cleanup(
                &label,
                tts::validate_test(&docker, instance, &label, m, &patch),
            )
            .await?;
            tracing::info!(instance = %instance.instance_id, test = m, outcome = ?test.outcome, "test validated");
            store.append(&test)?;
        }
    }
    let all: Vec<GeneratedTest> = store.read_all()?;
    let kept = all.iter().filter(|t| t.kept).count();
    let with_kept: BTreeSet<&str> = all
        .iter()
        .filter(|t| t.kept)
        .map(|t| t.instance_id.as_str())
        .collect();
    println!(
        "{} tests written, {kept} kept (they print \"Issue reproduced\" before any fix), for {} of {} instances; {}",
        all.len(),
        with_kept.len(),
        instances.len(),
        store_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Removes containers an earlier, killed `tts` command left (they carry `label`).
async fn remove_leftovers(docker: &cwm_env::Docker, label: &str) -> anyhow::Result<()> {
    let removed = cwm_env::remove_labelled(docker, Some(label)).await?;
    if removed > 0 {
        tracing::warn!("removed {removed} containers left by an earlier, interrupted tts command");
    }
    Ok(())
}

/// One instance's choice, in `selection.json`.
#[derive(Debug, Serialize)]
struct Choice {
    instance_id: String,
    candidate: String,
    sample: usize,
    candidates: usize,
    kept_tests: usize,
    passed: usize,
    votes: usize,
    tokens: usize,
    resolved: Option<bool>,
}

/// `selection.json`.
#[derive(Debug, Serialize)]
struct Selection {
    run: String,
    strategy: Strategy,
    #[serde(flatten)]
    overall: Rates,
    /// The same per repository.
    per_repo: BTreeMap<String, Rates>,
    choices: Vec<Choice>,
}

/// best@k and the oracle over a set of instances with a graded chosen candidate.
#[derive(Debug, Serialize)]
struct Rates {
    /// Instances with a graded chosen candidate (the denominator).
    graded_instances: usize,
    /// The selected patch resolved.
    best_at_k: Option<f64>,
    /// Any sample resolved.
    oracle: Option<f64>,
}

impl Rates {
    fn of(choices: &[&Choice], by_instance: &BTreeMap<&str, Vec<SampleRecord>>) -> Rates {
        let graded: Vec<&&Choice> = choices.iter().filter(|c| c.resolved.is_some()).collect();
        let rate = |n: usize| (!graded.is_empty()).then(|| n as f64 / graded.len() as f64);
        let any = |c: &Choice| {
            by_instance
                .get(c.instance_id.as_str())
                .is_some_and(|r| r.iter().any(|s| s.resolved == Some(true)))
        };
        Rates {
            graded_instances: graded.len(),
            best_at_k: rate(graded.iter().filter(|c| c.resolved == Some(true)).count()),
            oracle: rate(graded.iter().filter(|c| any(c)).count()),
        }
    }
}

async fn select(
    arg: &RunArg,
    strategy: Strategy,
    out_run: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (dir, config) = arg.load()?;
    let samples: Vec<SampleRecord> = read_jsonl(&dir.join("samples.jsonl")).with_context(|| {
        format!(
            "{} has no samples.jsonl: run it with --samples K first",
            dir.display()
        )
    })?;
    let tests: Vec<GeneratedTest> = match strategy {
        Strategy::Majority => Vec::new(),
        _ => read_jsonl(&dir.join("tts").join("tests.jsonl")).with_context(|| {
            format!("{} has no tts/tests.jsonl: run `cwm-bench tts gen-tests --run {}` first, or use --strategy majority", dir.display(), dir.display())
        })?,
    };
    let instances: BTreeMap<String, Instance> = config
        .dataset
        .load()?
        .into_iter()
        .map(|i| (i.instance_id.clone(), i))
        .collect();
    let mut by_instance: BTreeMap<&str, Vec<SampleRecord>> = BTreeMap::new();
    for s in &samples {
        by_instance
            .entry(&s.instance_id)
            .or_default()
            .push(s.clone());
    }
    let runs = run_candidates(&dir, &config, &instances, &by_instance, &tests).await?;
    let mut choices = Vec::new();
    let mut preds = Vec::new();
    for (id, records) in &by_instance {
        let candidates = tts::candidates(records);
        let passed = |c: &tts::Candidate| {
            runs.get(&(id.to_string(), c.hash.clone()))
                .map_or(0, CandidateRun::passed)
        };
        let kept = tests
            .iter()
            .filter(|t| t.kept && t.instance_id == *id)
            .count();
        let chosen = tts::rank(&candidates, passed, strategy);
        let model = records
            .first()
            .map(|r| r.model_name_or_path.clone())
            .unwrap_or_default();
        preds.push(Prediction {
            instance_id: id.to_string(),
            model_name_or_path: model,
            model_patch: chosen.map(|c| c.patch.clone()),
        });
        if let Some(c) = chosen {
            choices.push(Choice {
                instance_id: id.to_string(),
                candidate: c.hash.clone(),
                sample: c.first_sample,
                candidates: candidates.len(),
                kept_tests: kept,
                passed: passed(c),
                votes: c.votes,
                tokens: c.tokens,
                resolved: c.resolved,
            });
        }
    }
    let out_id = out_run.unwrap_or_else(|| format!("{}-selected", config.run.run_id));
    let repos: BTreeMap<String, String> = instances
        .values()
        .map(|i| (i.instance_id.clone(), i.repo.clone()))
        .collect();
    let out = write_derived_run(&dir, &config, &out_id, &preds)?;
    let selection = selection(&dir, strategy, &by_instance, &repos, choices);
    write_atomic(
        &out.join("selection.json"),
        &serde_json::to_vec_pretty(&selection)?,
    )?;
    println!(
        "selected {} patches with --strategy {:?} into run {out_id}",
        preds.len(),
        strategy
    );
    if let (Some(best), Some(oracle)) = (selection.overall.best_at_k, selection.overall.oracle) {
        println!(
            "best@k {:.1}%, oracle (any sample) {:.1}%",
            100.0 * best,
            100.0 * oracle
        );
    }
    println!(
        "grade it with: cwm-bench eval --predictions {} --dataset {}",
        config
            .run
            .runs_dir
            .join(&out_id)
            .join("preds.jsonl")
            .display(),
        config.dataset.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs every distinct candidate with kept tests that has no line in `tts/candidates.jsonl`
/// yet (one container each), and returns every run by (instance, candidate).
async fn run_candidates(
    dir: &Path,
    config: &RunConfig,
    instances: &BTreeMap<String, Instance>,
    by_instance: &BTreeMap<&str, Vec<SampleRecord>>,
    tests: &[GeneratedTest],
) -> anyhow::Result<BTreeMap<(String, String), CandidateRun>> {
    let mut store = JsonlStore::open(&dir.join("tts").join("candidates.jsonl"))?;
    let mut runs: BTreeMap<(String, String), CandidateRun> = store
        .read_all::<CandidateRun>()?
        .into_iter()
        .map(|r| ((r.instance_id.clone(), r.candidate.clone()), r))
        .collect();
    let label = format!("{}.tts", config.run.run_id);
    let mut docker = None;
    for (id, records) in by_instance {
        let kept: Vec<&GeneratedTest> = tests
            .iter()
            .filter(|t| t.kept && t.instance_id == *id)
            .collect();
        let Some(instance) = instances.get(*id) else {
            continue;
        };
        if kept.is_empty() {
            continue;
        }
        for candidate in tts::candidates(records) {
            let key = (id.to_string(), candidate.hash.clone());
            if runs.contains_key(&key) {
                continue;
            }
            if docker.is_none() {
                let connected = cwm_env::connect().await?;
                remove_leftovers(&connected, &label).await?;
                docker = Some(connected);
            }
            let Some(docker) = &docker else { continue };
            let run = with_cleanup(
                &label,
                tts::run_candidate(docker, instance, &label, &candidate, &kept),
            )
            .await?;
            tracing::info!(instance = %id, candidate = %candidate.hash, passed = run.passed(), "candidate run");
            store.append(&run)?;
            runs.insert(key, run);
        }
    }
    Ok(runs)
}

/// Writes the derived run `out_id` (its `config.json` and `preds.jsonl`) beside `dir`;
/// returns its directory.
fn write_derived_run(
    dir: &Path,
    config: &RunConfig,
    out_id: &str,
    preds: &[Prediction],
) -> anyhow::Result<PathBuf> {
    let mut derived = config.clone();
    derived.run.run_id = out_id.to_string();
    derived.run.samples = 1;
    let out = derived.run_dir();
    anyhow::ensure!(out != dir, "--out-run must differ from the run itself");
    let run_dir = RunDir::open(&out)?;
    run_dir.write_config(&serde_json::to_value(&derived)?)?;
    // Whole, or as it was: a selection made again replaces the file in one rename.
    let mut lines = Vec::new();
    for p in preds {
        serde_json::to_writer(&mut lines, p)?;
        lines.push(b'\n');
    }
    write_atomic(&out.join("preds.jsonl"), &lines)?;
    Ok(out)
}

/// `selection.json`'s content: the choices and their rates, overall and per repository.
fn selection(
    dir: &Path,
    strategy: Strategy,
    by_instance: &BTreeMap<&str, Vec<SampleRecord>>,
    repos: &BTreeMap<String, String>,
    choices: Vec<Choice>,
) -> Selection {
    let all: Vec<&Choice> = choices.iter().collect();
    let mut per_repo: BTreeMap<String, Vec<&Choice>> = BTreeMap::new();
    for c in &choices {
        let repo = repos.get(&c.instance_id).cloned().unwrap_or_default();
        per_repo.entry(repo).or_default().push(c);
    }
    Selection {
        run: dir.display().to_string(),
        strategy,
        overall: Rates::of(&all, by_instance),
        per_repo: per_repo
            .into_iter()
            .map(|(repo, c)| (repo, Rates::of(&c, by_instance)))
            .collect(),
        choices,
    }
}
