//! Test-time scaling after `run --samples K`: reproduction tests and patch selection, as in
//! CWM's paper (its released code has only the majority vote).
//!
//! - `gen-tests` ([`test_config`], [`test_episode`], [`validate_test`]): M test-writing
//!   episodes per instance, each test run of its own under `<run>/tts/tests/`; each test
//!   (a patch adding one Python script) is run in a fresh container on the unpatched
//!   repository and kept when it prints `Issue reproduced`. Results go to
//!   `<run>/tts/tests.jsonl`, one line per (instance, test), appended as they finish.
//! - `select` ([`candidates`], [`run_candidate`], [`rank`]): every distinct non-empty
//!   candidate patch of `samples.jsonl` runs all of its instance's kept tests in one fresh
//!   container (identical patches once); results go to `<run>/tts/candidates.jsonl`; the
//!   best candidate per instance becomes the prediction of a derived run.
//!
//! Both are resumable: a line already in their file is never run again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, Docker, CONDA_ACTIVATE, CONDA_ENV, REPO_ROOT};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::samples::{normalise_patch, SampleRecord};
use crate::config::RunConfig;
use crate::error::PipelineError;

/// How long one generated test may run.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Where a test's patch goes in the container.
const TEST_PATCH: &str = "/tmp/cwm_tts_test.diff";
/// Where a candidate patch goes in the container.
const CANDIDATE_PATCH: &str = "/tmp/cwm_tts_candidate.diff";

/// What a test printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// `Issue reproduced`.
    Reproduced,
    /// `Issue resolved`.
    Resolved,
    /// `Other issues`, or none of the three lines.
    Other,
    /// The test could not run: its patch adds no Python file, or does not apply.
    NotRun,
}

impl TestOutcome {
    /// Reads a test's output: the first of the three lines it printed (a script that prints
    /// none of them is `Other`).
    pub fn of_output(output: &str) -> TestOutcome {
        for line in output.lines().map(str::trim) {
            match line {
                "Issue reproduced" => return TestOutcome::Reproduced,
                "Issue resolved" => return TestOutcome::Resolved,
                "Other issues" => return TestOutcome::Other,
                _ => {}
            }
        }
        TestOutcome::Other
    }
}

/// One line of `tts/tests.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedTest {
    pub instance_id: String,
    /// Which test-writing episode (0 to M-1).
    pub test: usize,
    /// The submitted patch (it adds the script).
    pub patch: String,
    /// The Python file the patch adds, run from the repository root.
    pub script: Option<String>,
    /// What it printed on the unpatched repository.
    pub outcome: TestOutcome,
    /// Kept for selection: it reproduces the issue.
    pub kept: bool,
    /// The last 2,000 characters of its output.
    pub output_tail: String,
}

/// One line of `tts/candidates.jsonl`: a distinct candidate patch run against the kept
/// tests of its instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRun {
    pub instance_id: String,
    /// SHA-256 of the normalised patch.
    pub candidate: String,
    /// Each kept test's outcome, in the order of `tests`.
    pub outcomes: Vec<TestOutcome>,
    /// The kept tests run (their `test` numbers).
    pub tests: Vec<usize>,
}

impl CandidateRun {
    /// Kept tests that print `Issue resolved` with this patch.
    pub fn passed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| **o == TestOutcome::Resolved)
            .count()
    }
}

/// The settings of test-writing run `m` of `config`'s run: its own run under
/// `<run>/tts/tests/<run-id>.t<m>`, ungraded, the sampling seed `seed + m`, and `model`
/// when given (else the run's).
pub fn test_config(config: &RunConfig, m: usize, model: Option<&str>) -> RunConfig {
    let mut tests = config.clone();
    tests.run.runs_dir = config.run_dir().join("tts").join("tests");
    tests.run.run_id = format!("{}.t{m}", config.run.run_id);
    tests.run.samples = 1;
    tests.eval.evaluate = false;
    tests.sampling.seed = config.sampling.seed.wrapping_add(m as u64);
    if let Some(model) = model {
        tests.backend.model = model.to_string();
    }
    tests.backend.model = tests.backend.model.replace("{sample}", &m.to_string());
    tests
}

/// The episode settings of a test-writing episode: the run's, with the user prompt taken
/// from the profile's `tts.reproduction_prompt`.
pub fn test_episode(config: &RunConfig) -> Result<cwm_agent::EpisodeConfig, PipelineError> {
    let mut episode = config.episode_config()?;
    episode
        .profile
        .use_template("user.prompt", "tts.reproduction_prompt");
    Ok(episode)
}

/// The settings a run was made with (`<run>/config.json`, the backend's `policy` aside).
pub fn load_run_config(run_dir: &Path) -> Result<RunConfig, PipelineError> {
    let path = run_dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| PipelineError::Io {
        what: format!(
            "reading {} (is {} a run directory?)",
            path.display(),
            run_dir.display()
        ),
        source,
    })?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| PipelineError::Json {
            what: path.display().to_string(),
            source,
        })?;
    if let Some(map) = value.as_object_mut() {
        map.remove("policy");
    }
    serde_json::from_value(value).map_err(|source| PipelineError::Json {
        what: format!("{} (written by an older cwm-bench?)", path.display()),
        source,
    })
}

/// `run` as a directory when it is one, else `<runs_dir>/<run>`.
pub fn resolve_run(run: &str, runs_dir: &Path) -> PathBuf {
    let path = PathBuf::from(run);
    if path.join("config.json").is_file() {
        path
    } else {
        runs_dir.join(run)
    }
}

/// The Python file a test patch adds (`--- /dev/null` then `+++ b/<path>.py`), if any.
pub fn added_script(patch: &str) -> Option<String> {
    let mut new_file = false;
    for line in patch.lines() {
        if line.starts_with("--- ") {
            new_file = line == "--- /dev/null";
        } else if let Some(path) = line.strip_prefix("+++ b/") {
            if new_file && path.ends_with(".py") {
                return Some(path.trim().to_string());
            }
        }
    }
    None
}

/// A fresh container of `instance`'s image for `tts` work, labelled with `label`.
async fn container(
    docker: &Docker,
    instance: &Instance,
    label: &str,
) -> Result<Container, PipelineError> {
    let image = instance.image_name();
    cwm_env::ensure_image(docker, &image).await?;
    let config =
        ContainerConfig::new(&image, label, &instance.instance_id).with_deadline(TEST_TIMEOUT * 4);
    Ok(Container::start(docker, &config).await?)
}

/// The shell line that runs `script` from the repository root in the task's Python
/// (`python` of the task's environment, else `python3`).
fn run_script(script: &str) -> String {
    format!(
        "cd {REPO_ROOT} && {{ source {CONDA_ACTIVATE} && conda activate {CONDA_ENV}; }} >/dev/null 2>&1; \
         \"$(command -v python || command -v python3)\" '{}'",
        script.replace('\'', "")
    )
}

fn tail(text: &str) -> String {
    let start = text.len().saturating_sub(2_000);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    text[start..].to_string()
}

/// Runs a generated test on the unpatched repository in a fresh container: its outcome and
/// output tail. Kept tests are those whose outcome is [`TestOutcome::Reproduced`].
pub async fn validate_test(
    docker: &Docker,
    instance: &Instance,
    label: &str,
    test: usize,
    patch: &str,
) -> Result<GeneratedTest, PipelineError> {
    let script = added_script(patch);
    let mut generated = GeneratedTest {
        instance_id: instance.instance_id.clone(),
        test,
        patch: patch.to_string(),
        script: script.clone(),
        outcome: TestOutcome::NotRun,
        kept: false,
        output_tail: String::new(),
    };
    let Some(script) = script else {
        generated.output_tail = "the patch adds no Python file".into();
        return Ok(generated);
    };
    let container = container(docker, instance, label).await?;
    let result = async {
        container.write_file(TEST_PATCH, patch.as_bytes()).await?;
        let command = format!(
            "cd {REPO_ROOT} && git apply {TEST_PATCH} && {}",
            run_script(&script)
        );
        container.exec(&command, TEST_TIMEOUT).await
    }
    .await;
    let removed = container.remove().await;
    let out = result?;
    removed?;
    generated.outcome = if out.exit_code.is_some_and(|c| c != 0) && !out.output.contains("Issue ") {
        TestOutcome::Other
    } else {
        TestOutcome::of_output(&out.output)
    };
    generated.kept = generated.outcome == TestOutcome::Reproduced;
    generated.output_tail = tail(&out.output);
    Ok(generated)
}

/// A distinct candidate patch of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// SHA-256 of the normalised patch.
    pub hash: String,
    /// The patch as its lowest sample wrote it.
    pub patch: String,
    /// Samples that wrote it (the majority vote's count).
    pub votes: usize,
    /// Its lowest sample.
    pub first_sample: usize,
    /// Its length in (estimated) tokens.
    pub tokens: usize,
    /// The official verdict of its samples, when graded.
    pub resolved: Option<bool>,
}

/// The distinct non-empty candidate patches among `samples` (one instance's), identical
/// patches after whitespace normalisation merged.
pub fn candidates(samples: &[SampleRecord]) -> Vec<Candidate> {
    let mut by_hash: BTreeMap<String, Candidate> = BTreeMap::new();
    for s in samples {
        let patch = s.model_patch.as_deref().unwrap_or_default();
        let normalised = normalise_patch(patch);
        if normalised.is_empty() {
            continue;
        }
        let hash = hex::encode(Sha256::digest(normalised.as_bytes()));
        let entry = by_hash.entry(hash.clone()).or_insert_with(|| Candidate {
            hash,
            patch: patch.to_string(),
            votes: 0,
            first_sample: s.sample,
            tokens: cwm_tools::approx_tokens(patch),
            resolved: s.resolved,
        });
        entry.votes += 1;
        if s.sample < entry.first_sample {
            entry.first_sample = s.sample;
            entry.patch = patch.to_string();
        }
        entry.resolved = entry.resolved.or(s.resolved);
    }
    by_hash.into_values().collect()
}

/// Runs every kept test of an instance against one candidate patch, all in one fresh
/// container: the candidate is applied once; each test's script is added, run and removed
/// in turn. A candidate that does not apply gets [`TestOutcome::NotRun`] for every test.
pub async fn run_candidate(
    docker: &Docker,
    instance: &Instance,
    label: &str,
    candidate: &Candidate,
    tests: &[&GeneratedTest],
) -> Result<CandidateRun, PipelineError> {
    let container = container(docker, instance, label).await?;
    let result = async {
        container
            .write_file(CANDIDATE_PATCH, candidate.patch.as_bytes())
            .await?;
        let apply = format!("cd {REPO_ROOT} && git apply {CANDIDATE_PATCH}");
        let applied = container.exec(&apply, TEST_TIMEOUT).await?.exit_code == Some(0);
        let mut outcomes = Vec::new();
        for test in tests {
            let Some(script) = &test.script else {
                outcomes.push(TestOutcome::NotRun);
                continue;
            };
            if !applied {
                outcomes.push(TestOutcome::NotRun);
                continue;
            }
            container
                .write_file(TEST_PATCH, test.patch.as_bytes())
                .await?;
            let command = format!(
                "cd {REPO_ROOT} && git apply {TEST_PATCH} && {}; rm -f '{}'",
                run_script(script),
                script.replace('\'', "")
            );
            let out = container.exec(&command, TEST_TIMEOUT).await?;
            outcomes.push(TestOutcome::of_output(&out.output));
        }
        Ok::<_, cwm_env::EnvError>(outcomes)
    }
    .await;
    let removed = container.remove().await;
    let outcomes = result?;
    removed?;
    Ok(CandidateRun {
        instance_id: instance.instance_id.clone(),
        candidate: candidate.hash.clone(),
        outcomes,
        tests: tests.iter().map(|t| t.test).collect(),
    })
}

/// How `select` ranks an instance's candidates.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Most kept tests passed, then fewest tokens.
    Tests,
    /// Most votes (identical patches), then fewest tokens.
    Majority,
    /// Most kept tests passed, then most votes, then fewest tokens (CWM's order).
    #[default]
    #[value(name = "tests+majority")]
    #[serde(rename = "tests+majority")]
    TestsMajority,
}

/// The best candidate under `strategy`; `passed` gives each candidate's kept tests passed.
/// Final ties go to the candidate whose first sample is lowest.
pub fn rank(
    candidates: &[Candidate],
    passed: impl Fn(&Candidate) -> usize,
    strategy: Strategy,
) -> Option<&Candidate> {
    let key = |c: &Candidate| {
        let (tests, votes) = match strategy {
            Strategy::Tests => (passed(c), 0),
            Strategy::Majority => (0, c.votes),
            Strategy::TestsMajority => (passed(c), c.votes),
        };
        (
            tests,
            votes,
            std::cmp::Reverse(c.tokens),
            std::cmp::Reverse(c.first_sample),
        )
    };
    candidates.iter().max_by_key(|c| key(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(hash: &str, votes: usize, tokens: usize, first_sample: usize) -> Candidate {
        Candidate {
            hash: hash.into(),
            patch: String::new(),
            votes,
            first_sample,
            tokens,
            resolved: None,
        }
    }

    #[test]
    fn outcomes_are_read_from_the_first_verdict_line() {
        assert_eq!(
            TestOutcome::of_output("x\nIssue reproduced\n"),
            TestOutcome::Reproduced
        );
        assert_eq!(
            TestOutcome::of_output("  Issue resolved  \nIssue reproduced"),
            TestOutcome::Resolved
        );
        assert_eq!(TestOutcome::of_output("Traceback ..."), TestOutcome::Other);
    }

    #[test]
    fn the_added_script_is_the_new_python_file() {
        let patch = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@\ndiff --git a/t.py b/t.py\nnew file mode 100644\n--- /dev/null\n+++ b/t.py\n@@ -0,0 +1 @@\n+print(1)\n";
        assert_eq!(added_script(patch).as_deref(), Some("t.py"));
        assert_eq!(added_script("--- a/x.py\n+++ b/x.py\n"), None);
    }

    #[test]
    fn ranking_follows_the_strategy() {
        let cs = [
            candidate("a", 3, 50, 0),
            candidate("b", 1, 40, 1),
            candidate("c", 1, 30, 2),
        ];
        let passed = |c: &Candidate| usize::from(c.hash != "a");
        assert_eq!(rank(&cs, passed, Strategy::Majority).unwrap().hash, "a");
        assert_eq!(
            rank(&cs, passed, Strategy::Tests).unwrap().hash,
            "c",
            "fewest tokens"
        );
        assert_eq!(
            rank(&cs, passed, Strategy::TestsMajority).unwrap().hash,
            "c"
        );
        let none = |_: &Candidate| 0;
        assert_eq!(
            rank(&cs, none, Strategy::TestsMajority).unwrap().hash,
            "a",
            "votes"
        );
    }
}
