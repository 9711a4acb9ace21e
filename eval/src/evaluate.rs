//! Evaluating one instance in a fresh container, as SWE-bench 5.0.2's `run_instance`
//! (`harness/run_evaluation.py`): apply the patch with the official cascade, run the eval
//! script under a timeout, grade the log; plus the hardened verdict beside it.

use std::path::Path;
use std::time::Duration;

use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, Docker};

use cwm_datasets::Prediction;

use crate::error::EvalError;
use crate::grading::EvalType;
use crate::hardened::{self, Flag, Hardened, HARDENED_FILE};
use crate::official::{eval_type_for, official_eval_script, parser_for, report_for_log};
use crate::parsers::Parser;
use crate::report::{write_atomic, InstanceReport};
use crate::script::eval_script;
use crate::summary::{INSTANCE_LOG_FILE, REPORT_FILE, TEST_OUTPUT_FILE};

/// Where the patch goes inside the container, as upstream.
pub const CONTAINER_PATCH_FILE: &str = "/tmp/patch.diff";
const CONTAINER_EVAL_SCRIPT: &str = "/eval.sh";
/// The official apply cascade, tried in order until one succeeds.
pub const APPLY_COMMANDS: [&str; 4] = [
    "git apply --verbose",
    "git apply --verbose --3way",
    "git apply --verbose --reject",
    "patch --batch --forward --fuzz=5 -p1 -i",
];
/// When every command failed, the patch may already be in the tree (5.x accepts that).
const ALREADY_APPLIED: &str = "git apply --check --reverse";
/// A failed attempt (notably `--reject`) leaves partial changes; start the next from a clean tree.
const RESET_TREE: &str = "git checkout -- . ; git clean -fd";
/// Applying a patch is quick; this only bounds a wedged `git`.
const APPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// How long an eval script may run before its tests count as timed out: the official
/// harness's default (`--timeout 1800`, in seconds). [`EvalOptions::new`] starts from it.
pub const DEFAULT_EVAL_TIMEOUT: Duration = Duration::from_secs(1800);

/// How instances are evaluated.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Labels every container, so `cwm-bench clean` can find leftovers.
    pub run_id: String,
    /// For the eval script ([`DEFAULT_EVAL_TIMEOUT`], upstream's 1800 s, by default).
    pub timeout: Duration,
    /// Docker's default network (upstream's behaviour); when off, pip is told not to use an
    /// index or build isolation, so reinstall steps work offline.
    pub network: bool,
    /// Memory limit of the eval container in bytes; 0 is none (the official harness sets none).
    pub memory_bytes: i64,
    /// CPU limit in billionths of a CPU; 0 is none (the official harness sets none).
    pub nano_cpus: i64,
}

impl EvalOptions {
    /// The official harness's settings for run `run_id`: [`DEFAULT_EVAL_TIMEOUT`], Docker's
    /// default network, and no memory or CPU limit (`run_instances` in SWE-bench 5.0.2 starts
    /// its containers without one; heavy suites need it).
    pub fn new(run_id: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            timeout: DEFAULT_EVAL_TIMEOUT,
            network: true,
            memory_bytes: 0,
            nano_cpus: 0,
        }
    }
}

/// What evaluating one instance produced: the official report (absent where 5.x writes
/// none) and the hardened verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub report: Option<InstanceReport>,
    pub hardened: Hardened,
}

impl Evaluation {
    /// The official verdict (false without a report).
    pub fn resolved(&self) -> bool {
        self.report.as_ref().is_some_and(|r| r.resolved)
    }

    /// Reads a finished evaluation from its directory; `None` when it has not finished
    /// (`hardened.json` is written last).
    pub fn read(dir: &Path) -> Result<Option<Self>, EvalError> {
        let hardened_path = dir.join(HARDENED_FILE);
        if !hardened_path.exists() {
            return Ok(None);
        }
        let hardened = Hardened::read(&hardened_path)?;
        let report_path = dir.join(REPORT_FILE);
        let report = if report_path.exists() {
            Some(InstanceReport::read(&report_path)?)
        } else {
            None
        };
        Ok(Some(Self { report, hardened }))
    }

    fn write(&self, dir: &Path) -> Result<(), EvalError> {
        if let Some(report) = &self.report {
            report.write(&dir.join(REPORT_FILE))?;
        }
        self.hardened.write(&dir.join(HARDENED_FILE))
    }
}

/// Evaluates `patch` on `instance` and writes, under `out_dir`, `patch.diff`, `eval.sh`,
/// `run_instance.log` (the apply steps), `test_output.txt`, then `report.json` where 5.x
/// writes one, and last `hardened.json` (its presence marks the instance done).
///
/// An empty or missing patch is not run (5.x skips it and counts an empty patch); a
/// whitespace-only one cannot apply. A patch that does not apply, tests that time out, or a
/// log the official parser fails on leave no `report.json` and set `hardened.error`. `Err`
/// means the evaluation itself could not be carried out (Docker, disk): nothing is marked
/// done.
pub async fn evaluate(
    docker: &Docker,
    instance: &Instance,
    patch: Option<&str>,
    opts: &EvalOptions,
    out_dir: &Path,
) -> Result<Evaluation, EvalError> {
    let parser = parser_for(instance)?;
    let eval_type = eval_type_for(instance)?;
    let patch = patch.unwrap_or_default();
    if patch.is_empty() {
        let evaluation = unrun(instance, "empty patch: not evaluated, as SWE-bench 5.x");
        evaluation.write(out_dir)?;
        return Ok(evaluation);
    }
    let script = official_eval_script(&eval_script(instance)?);
    write_atomic(&out_dir.join("patch.diff"), patch.as_bytes())?;
    write_atomic(&out_dir.join("eval.sh"), script.as_bytes())?;
    let run = Run {
        docker,
        instance,
        patch,
        script: &script,
        opts,
        apply: true,
    };
    let nonce = hardened::new_nonce();
    let official = run.attempt(&nonce, &[]).await?;
    write_atomic(
        &out_dir.join(INSTANCE_LOG_FILE),
        official.apply_log.as_bytes(),
    )?;
    if let Some(log) = &official.log {
        write_atomic(&out_dir.join(TEST_OUTPUT_FILE), log.as_bytes())?;
    }
    let (report, error) = official_verdict(instance, patch, &official, opts);
    let mut flags = Vec::new();
    let protected = protected_paths(instance, patch, &mut flags);
    let hardened_run = if protected.is_empty() || official.log.is_none() {
        (nonce, official)
    } else {
        let nonce = hardened::new_nonce();
        let second = run.attempt(&nonce, &protected).await?;
        if let Some(log) = &second.log {
            write_atomic(&out_dir.join("test_output.hardened.txt"), log.as_bytes())?;
        }
        (nonce, second)
    };
    let resolved = hardened_verdict(&hardened_run, parser, instance, eval_type, &mut flags);
    flags.sort();
    flags.dedup();
    let evaluation = Evaluation {
        hardened: Hardened {
            instance_id: instance.instance_id.clone(),
            resolved,
            official_resolved: report.as_ref().is_some_and(|r| r.resolved),
            flags,
            error,
        },
        report,
    };
    evaluation.write(out_dir)?;
    Ok(evaluation)
}

/// Runs the instance's tests on its base commit, with no patch (the eval script still applies
/// the test patch), and grades the log as the official grader would a patch's. This is
/// cwm-bench's own step, not SWE-bench's (5.x does not run an empty patch): gold validation
/// uses it to find instances whose tests already pass without a fix. Files are written to
/// `out_dir` as [`evaluate`] writes them; the hardened verdict is the official one.
pub async fn evaluate_base(
    docker: &Docker,
    instance: &Instance,
    opts: &EvalOptions,
    out_dir: &Path,
) -> Result<Evaluation, EvalError> {
    parser_for(instance)?;
    let script = official_eval_script(&eval_script(instance)?);
    write_atomic(&out_dir.join("eval.sh"), script.as_bytes())?;
    let run = Run {
        docker,
        instance,
        patch: "",
        script: &script,
        opts,
        apply: false,
    };
    let attempt = run.attempt(&hardened::new_nonce(), &[]).await?;
    write_atomic(
        &out_dir.join(INSTANCE_LOG_FILE),
        attempt.apply_log.as_bytes(),
    )?;
    if let Some(log) = &attempt.log {
        write_atomic(&out_dir.join(TEST_OUTPUT_FILE), log.as_bytes())?;
    }
    let (report, error) = official_verdict(instance, "", &attempt, opts);
    let resolved = report.as_ref().is_some_and(|r| r.resolved);
    let evaluation = Evaluation {
        hardened: Hardened {
            instance_id: instance.instance_id.clone(),
            resolved,
            official_resolved: resolved,
            flags: Vec::new(),
            error,
        },
        report,
    };
    evaluation.write(out_dir)?;
    Ok(evaluation)
}

fn unrun(instance: &Instance, why: &str) -> Evaluation {
    Evaluation {
        report: None,
        hardened: Hardened {
            instance_id: instance.instance_id.clone(),
            resolved: false,
            official_resolved: false,
            flags: Vec::new(),
            error: Some(why.to_string()),
        },
    }
}

/// The official report and, where there is none, why.
fn official_verdict(
    instance: &Instance,
    patch: &str,
    attempt: &Attempt,
    opts: &EvalOptions,
) -> (Option<InstanceReport>, Option<String>) {
    let Some(log) = &attempt.log else {
        let why = format!(
            "patch failed: none of {} applied it (see run_instance.log)",
            APPLY_COMMANDS.join(", ")
        );
        return (None, Some(why));
    };
    if attempt.timed_out {
        let why = format!(
            "tests timed out after {} s; the partial log is in test_output.txt",
            opts.timeout.as_secs()
        );
        return (None, Some(why));
    }
    let prediction = Prediction {
        instance_id: instance.instance_id.clone(),
        model_name_or_path: String::new(),
        model_patch: Some(patch.to_string()),
    };
    match report_for_log(instance, &prediction, log) {
        Ok(report) => (Some(report), None),
        Err(err) => (None, Some(err.to_string())),
    }
}

fn hardened_verdict(
    (nonce, attempt): &(String, Attempt),
    parser: Parser,
    instance: &Instance,
    eval_type: EvalType,
    flags: &mut Vec<Flag>,
) -> bool {
    match &attempt.log {
        Some(log) if !attempt.timed_out => {
            hardened::grade_log(log, nonce, parser, instance, eval_type, flags)
        }
        _ => false,
    }
}

/// The protected paths the patch touches, each flagged.
fn protected_paths(instance: &Instance, patch: &str, flags: &mut Vec<Flag>) -> Vec<String> {
    let test_patch = hardened::patch_paths(&instance.test_patch);
    let created: Vec<String> = test_patch
        .iter()
        .filter(|(_, new)| *new)
        .map(|(p, _)| p.clone())
        .collect();
    let touched: Vec<String> = test_patch.into_iter().map(|(p, _)| p).collect();
    let mut paths = Vec::new();
    for (path, _) in hardened::patch_paths(patch) {
        if let Some(flag) = hardened::protected_flag(&path, &created, &touched) {
            flags.push(flag);
            paths.push(path);
        }
    }
    paths
}

/// One container's worth of evaluation.
struct Run<'a> {
    docker: &'a Docker,
    instance: &'a Instance,
    patch: &'a str,
    script: &'a str,
    opts: &'a EvalOptions,
    /// Apply `patch` first; off for a base-commit run ([`evaluate_base`]).
    apply: bool,
}

/// What one attempt produced: the apply log, and the test log when the patch applied.
struct Attempt {
    apply_log: String,
    log: Option<String>,
    timed_out: bool,
    /// The script ended without an exit code or by SIGKILL/SIGTERM (its container may have
    /// been killed).
    killed: bool,
}

impl Run<'_> {
    /// Starts a fresh container, applies the patch, puts `revert` paths back as the base
    /// commit has them, runs the script with `nonce` markers, and removes the container.
    async fn attempt(&self, nonce: &str, revert: &[String]) -> Result<Attempt, EvalError> {
        let env_err = |source| EvalError::Env {
            instance_id: self.instance.instance_id.clone(),
            source,
        };
        let image = self.instance.image_name();
        cwm_env::ensure_image(self.docker, &image)
            .await
            .map_err(env_err)?;
        let config = container_config(self.instance, &image, self.opts);
        let container = Container::start(self.docker, &config)
            .await
            .map_err(env_err)?;
        let mut outcome = self.run_in(&container, nonce, revert).await;
        // A log cut short by a killed container is no verdict on the patch.
        // A failed step or a killed script: give the daemon a moment to report the exit.
        let suspect = match &outcome {
            Err(_) => true,
            Ok(attempt) => attempt.killed,
        };
        if let Err(stopped) = container.check_running("the evaluation", suspect).await {
            outcome = Err(stopped);
        }
        // Removed before any verdict is written: a verdict means nothing is left running.
        let removed = container.remove().await.map_err(env_err);
        let outcome = outcome.map_err(env_err)?;
        removed?;
        Ok(outcome)
    }

    async fn run_in(
        &self,
        container: &Container,
        nonce: &str,
        revert: &[String],
    ) -> Result<Attempt, cwm_env::EnvError> {
        let (applied, apply_log) = if !self.apply {
            (true, "base commit: no patch applied\n".into())
        } else if self.patch.trim().is_empty() {
            (
                false,
                "the patch holds only whitespace; nothing to apply\n".into(),
            )
        } else {
            container
                .write_file(CONTAINER_PATCH_FILE, self.patch.as_bytes())
                .await?;
            apply_cascade(container).await?
        };
        if !applied {
            return Ok(Attempt {
                apply_log,
                log: None,
                timed_out: false,
                killed: false,
            });
        }
        if !revert.is_empty() {
            container
                .exec(&hardened::revert_command(revert), APPLY_TIMEOUT)
                .await?;
        }
        let script = hardened::add_markers(self.script, CONTAINER_EVAL_SCRIPT, nonce);
        container
            .write_file(CONTAINER_EVAL_SCRIPT, script.as_bytes())
            .await?;
        let run = container
            .exec(
                &format!("/bin/bash {CONTAINER_EVAL_SCRIPT}"),
                self.opts.timeout,
            )
            .await?;
        let mut log = run.output;
        if run.timed_out {
            // Upstream's note, appended to the partial log.
            log.push_str(&format!(
                "\n\nTimeout error: {} seconds exceeded.",
                self.opts.timeout.as_secs()
            ));
        }
        Ok(Attempt {
            apply_log,
            log: Some(log),
            timed_out: run.timed_out,
            killed: !run.timed_out && matches!(run.exit_code, None | Some(137) | Some(143)),
        })
    }
}

fn container_config(instance: &Instance, image: &str, opts: &EvalOptions) -> ContainerConfig {
    // Outlives the eval timeout only by a margin, so a SIGKILLed harness cannot leave it
    // running for long.
    let deadline = opts.timeout + APPLY_TIMEOUT * 6;
    let mut config =
        ContainerConfig::new(image, &opts.run_id, &instance.instance_id).with_deadline(deadline);
    config.network = opts.network;
    config.memory_bytes = opts.memory_bytes;
    config.nano_cpus = opts.nano_cpus;
    if !opts.network {
        // pip's inverted flag: PIP_NO_BUILD_ISOLATION=0 turns build isolation *off*.
        config.env = vec!["PIP_NO_INDEX=1".into(), "PIP_NO_BUILD_ISOLATION=0".into()];
    }
    config
}

/// Tries each apply command in turn from a clean tree, then the already-applied check;
/// returns whether the patch is in and the combined output.
async fn apply_cascade(container: &Container) -> Result<(bool, String), cwm_env::EnvError> {
    let mut log = String::new();
    for (attempt, cmd) in APPLY_COMMANDS.iter().enumerate() {
        if attempt > 0 {
            container.exec(RESET_TREE, APPLY_TIMEOUT).await?;
        }
        if run_logged(container, cmd, &mut log).await? {
            log.push_str(">>>>> Applied Patch\n");
            return Ok((true, log));
        }
    }
    if run_logged(container, ALREADY_APPLIED, &mut log).await? {
        log.push_str(">>>>> Applied Patch: verified already applied\n");
        return Ok((true, log));
    }
    log.push_str(">>>>> Patch Apply Failed\n");
    Ok((false, log))
}

/// Runs `cmd` on the patch file, appends its output to `log`, and says whether it succeeded.
async fn run_logged(
    container: &Container,
    cmd: &str,
    log: &mut String,
) -> Result<bool, cwm_env::EnvError> {
    let out = container
        .exec(&format!("{cmd} {CONTAINER_PATCH_FILE}"), APPLY_TIMEOUT)
        .await?;
    let exit = out
        .exit_code
        .map_or_else(|| "none (timed out)".to_string(), |c| c.to_string());
    log.push_str(&format!(
        "$ {cmd} {CONTAINER_PATCH_FILE}\n{}\n[exit {exit}]\n",
        out.output
    ));
    Ok(out.exit_code == Some(0) && !out.timed_out)
}
