//! Execution traces of a task's tests in CWM's trace format: what makes CWM a world model.
//!
//! The tracer (`cwm_tracer.py`, standard library only, Python 3.5 syntax) is copied into a
//! fresh container of the instance's image, with the patch (gold, or a run's prediction) and
//! the test patch applied; each selected test runs in-process under `sys.settrace`, and every
//! call of a plain function defined in the repository (not the standard library, not
//! site-packages; neither generators nor coroutines) becomes one [`TraceExample`]: the
//! function's source with `# << START_OF_TRACE` on its first line as the context, and the
//! frames of its own scope.
//!
//! The token form of each example is [`format`]'s: CWM's trace format, byte for byte.

pub mod format;

use std::time::Duration;

use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, Docker, CONDA_ACTIVATE, CONDA_ENV, REPO_ROOT};
use cwm_parsers::TestRunner;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;

pub use format::{
    parse_frame, parse_token_text, python_json, token_text, tokens, Frame, Locals, ParsedFrame,
};

/// The tracer, copied into each container.
pub const TRACER: &str = include_str!("cwm_tracer.py");
const TRACER_PATH: &str = "/tmp/cwm_tracer.py";
const TRACE_OUT: &str = "/tmp/cwm_trace.jsonl";
const PATCH_PATH: &str = "/tmp/cwm_trace_patch.diff";
const TEST_PATCH_PATH: &str = "/tmp/cwm_trace_test_patch.diff";
/// How long a test may run on after its tracing stopped at the timeout.
const TEST_GRACE: Duration = Duration::from_secs(30);
/// Starting the container, copying the tracer in and applying the patches.
const SETUP_TIME: Duration = Duration::from_secs(180);

/// The limits of one trace, each a `trace` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLimits {
    /// Events recorded per example before it is cut (`truncated: "events"`).
    pub max_events: usize,
    /// Characters of a repr before it is cut (with `...`).
    pub max_repr: usize,
    /// Nesting of traced repository calls beyond which calls are not traced.
    pub max_depth: usize,
    /// Examples per test before tracing stops (`truncated: "examples"`).
    pub max_examples: usize,
    /// Wall time per test before tracing stops (`truncated: "wall time"`).
    pub timeout: Duration,
}

impl Default for TraceLimits {
    fn default() -> Self {
        TraceLimits {
            max_events: 2_000,
            max_repr: 200,
            max_depth: 20,
            max_examples: 500,
            timeout: Duration::from_secs(120),
        }
    }
}

/// One line of `trace`'s output: a traced call of a repository function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceExample {
    pub instance_id: String,
    pub test_id: String,
    pub qualname: String,
    /// Relative to the repository root.
    pub file: String,
    /// First line of the function.
    pub line: u64,
    /// The function's source with the entry marker.
    pub context: String,
    pub frames: Vec<Frame>,
    /// The limit that cut the trace, if one did (then the text has no end token).
    pub truncated: Option<String>,
    /// The token form ([`token_text`]).
    pub text: String,
    /// The version of the Python that ran the test (`3.6.9`); absent in files written before
    /// the tracer recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
}

impl TraceExample {
    /// The example of one line the tracer wrote while running `test_id` of `instance_id`,
    /// with its token form. Errors say why the line is not an example.
    pub fn from_tracer_line(
        instance_id: &str,
        test_id: &str,
        line: &str,
    ) -> Result<TraceExample, String> {
        let raw: Raw = serde_json::from_str(line)
            .map_err(|e| format!("a tracer line is not an example ({e})"))?;
        let ended = raw.truncated.is_none();
        Ok(TraceExample {
            instance_id: instance_id.to_string(),
            test_id: test_id.to_string(),
            text: token_text(&raw.context, &raw.frames, ended),
            qualname: raw.qualname,
            file: raw.file,
            line: raw.line,
            context: raw.context,
            frames: raw.frames,
            truncated: raw.truncated,
            python: raw.python,
        })
    }
}

/// What the tracer writes per example (the fields the harness adds come after).
#[derive(Debug, Deserialize)]
struct Raw {
    qualname: String,
    file: String,
    line: u64,
    context: String,
    frames: Vec<Frame>,
    truncated: Option<String>,
    python: Option<String>,
}

/// The target that selects one test for the instance's runner: the node id for pytest, the
/// dotted label for Django (`name (module.Class)` → `module.Class.name`; a test Django's
/// verbose runner names by its docstring is looked up in the test patch); `None` for runners
/// that run whole files (then the test's function is called directly, see [`tracer_command`]).
fn runner_target(runner: &TestRunner, test_id: &str, test_patch: &str) -> Option<String> {
    match runner.parser.as_str() {
        // An id the official log parser cut at a space (`f.py::t[a b]` → `f.py::t[a`) cannot
        // be selected: its function is, with all its parameters.
        "parse_log_pytest" | "parse_log_pytest_v2" | "parse_log_pytest_options" => {
            let balanced = test_id.matches('[').count() == test_id.matches(']').count();
            Some(match test_id.split_once('[') {
                Some((function, params)) if !params.ends_with(']') || !balanced => {
                    function.to_string()
                }
                _ => test_id.to_string(),
            })
        }
        "parse_log_django" => Some(match test_id.split_once(" (") {
            Some((name, rest)) if !name.contains(' ') => {
                format!("{}.{name}", rest.trim_end_matches(')'))
            }
            _ => {
                docstring_label(runner, test_patch, test_id).unwrap_or_else(|| test_id.to_string())
            }
        }),
        _ => None,
    }
}

/// The Django label of the test whose docstring starts with `doc`, from the test patch: the
/// file's module label, the enclosing class and the `def` above the docstring.
fn docstring_label(runner: &TestRunner, test_patch: &str, doc: &str) -> Option<String> {
    let (mut file, mut class, mut def) = (None, None, None);
    for line in test_patch.lines() {
        if let Some(path) = line.strip_prefix("+++ b/") {
            file = Some(path.trim().to_string());
            continue;
        }
        // A hunk header ends with the enclosing line (`@@ -63,6 +73,13 @@ class T(...)`).
        let code = match line.strip_prefix("@@") {
            Some(rest) => rest.split_once("@@").map_or("", |(_, c)| c).trim_start(),
            None => line.get(1..).unwrap_or_default().trim_start(),
        };
        if let Some(rest) = code.strip_prefix("class ") {
            class = rest.split(['(', ':']).next().map(str::to_string);
        } else if let Some(rest) = code.strip_prefix("def ") {
            def = rest.split('(').next().map(str::to_string);
        } else if code.trim_start_matches(['"', '\'', 'r']).starts_with(doc) {
            let module = runner.target_for_file(file.as_deref()?);
            return Some(format!("{module}.{}.{}", class.clone()?, def.clone()?));
        }
    }
    None
}

/// The file of the test patch that defines `def name(`, for runners without test selection.
fn defining_file(test_patch: &str, name: &str) -> Option<String> {
    let mut file = None;
    for line in test_patch.lines() {
        if let Some(path) = line.strip_prefix("+++ b/") {
            file = Some(path.trim().to_string());
        } else if line
            .trim_start_matches(['+', ' '])
            .trim_start()
            .starts_with(&format!("def {name}("))
        {
            return file;
        }
    }
    None
}

/// The last lines the test wrote before the tracer's own closing line: why it gave no
/// example (an unknown test id, an import error, ...).
fn last_words(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("cwm-tracer:"))
        .collect();
    lines[lines.len().saturating_sub(4)..].join("\n")
}

/// The tracer's command line for one test: `-m pytest ... ID`, `SCRIPT ... LABEL`, or
/// `--call FILE::NAME` for runners that only run whole files.
pub fn tracer_command(
    instance: &Instance,
    test_id: &str,
    limits: &TraceLimits,
) -> Result<String, String> {
    let runner = TestRunner::for_instance(instance).ok_or_else(|| {
        format!(
            "{}: no test runner is known for this repository",
            instance.instance_id
        )
    })?;
    let argv = match runner_target(&runner, test_id, &instance.test_patch) {
        Some(target) => {
            let mut words = shlex::split(&runner.command)
                .ok_or_else(|| format!("cannot split the test command {:?}", runner.command))?;
            words.push(target);
            python_argv(words)?
        }
        None => {
            let file = defining_file(&instance.test_patch, test_id)
                .ok_or_else(|| format!("{test_id}: its runner cannot select one test, and the test patch does not define it"))?;
            vec!["--call".to_string(), format!("{file}::{test_id}")]
        }
    };
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| {
            shlex::try_quote(a)
                .map(|q| q.into_owned())
                .unwrap_or_default()
        })
        .collect();
    Ok(format!(
        "cd {REPO_ROOT} && {{ source {CONDA_ACTIVATE} && conda activate {CONDA_ENV}; }} >/dev/null 2>&1; \
         \"$(command -v python || command -v python3)\" {TRACER_PATH} --out {TRACE_OUT} --root {REPO_ROOT} \
         --max-events {} --max-repr {} --max-depth {} --max-examples {} --timeout {} -- {}",
        limits.max_events,
        limits.max_repr,
        limits.max_depth,
        limits.max_examples,
        limits.timeout.as_secs(),
        quoted.join(" ")
    ))
}

/// A test command's words as the tracer's Python arguments: `pytest ...` → `-m pytest ...`,
/// `python X ...` → `X ...`, `SCRIPT.py ...` or `./bin/x ...` → itself.
fn python_argv(words: Vec<String>) -> Result<Vec<String>, String> {
    let Some(first) = words.first() else {
        return Err("an empty test command".into());
    };
    let name = first.rsplit('/').next().unwrap_or(first);
    Ok(match name {
        "pytest" | "py.test" => [
            vec!["-m".to_string(), "pytest".to_string()],
            words[1..].to_vec(),
        ]
        .concat(),
        n if n.starts_with("python") => words[1..].to_vec(),
        _ => words,
    })
}

/// Traces `tests` of `instance` with `patch` applied (none: the base commit) and the test
/// patch, in one fresh container labelled `label`. Examples come back in the order the
/// tracer wrote them, test by test.
pub async fn trace_instance(
    docker: &Docker,
    instance: &Instance,
    patch: Option<&str>,
    tests: &[String],
    limits: &TraceLimits,
    label: &str,
) -> Result<Vec<TraceExample>, PipelineError> {
    let image = instance.image_name();
    cwm_env::ensure_image(docker, &image).await?;
    // Tracing stops at the timeout, but the test then runs on untraced until its command's
    // own limit: the container lives as long as all of those together, plus setting up.
    let per_test = limits.timeout + TEST_GRACE;
    let config = ContainerConfig::new(&image, label, &instance.instance_id)
        .with_deadline(per_test * tests.len() as u32 + SETUP_TIME);
    let container = Container::start(docker, &config).await?;
    let result = trace_in(&container, instance, patch, tests, limits).await;
    let removed = container.remove().await;
    let examples = result?;
    removed?;
    Ok(examples)
}

async fn trace_in(
    container: &Container,
    instance: &Instance,
    patch: Option<&str>,
    tests: &[String],
    limits: &TraceLimits,
) -> Result<Vec<TraceExample>, PipelineError> {
    let iid = &instance.instance_id;
    let failed = |what: String| PipelineError::InvalidSetting {
        setting: format!("trace {iid}"),
        why: what,
    };
    container.write_file(TRACER_PATH, TRACER.as_bytes()).await?;
    container
        .write_file(TEST_PATCH_PATH, instance.test_patch.as_bytes())
        .await?;
    let mut apply = format!("cd {REPO_ROOT} && git apply {TEST_PATCH_PATH}");
    if let Some(patch) = patch.filter(|p| !p.trim().is_empty()) {
        container.write_file(PATCH_PATH, patch.as_bytes()).await?;
        apply = format!("cd {REPO_ROOT} && git apply {PATCH_PATH} && git apply {TEST_PATCH_PATH}");
    }
    let applied = container.exec(&apply, Duration::from_secs(120)).await?;
    if applied.exit_code != Some(0) {
        return Err(failed(format!(
            "the patches do not apply: {}",
            applied.output.trim()
        )));
    }
    let mut examples = Vec::new();
    for test in tests {
        let command = tracer_command(instance, test, limits).map_err(failed)?;
        let run = container
            .exec(&command, limits.timeout + TEST_GRACE)
            .await?;
        let read = container
            .exec(
                &format!("cat {TRACE_OUT} 2>/dev/null; rm -f {TRACE_OUT}"),
                Duration::from_secs(60),
            )
            .await?;
        if read.output.trim().is_empty() {
            tracing::warn!(instance = %iid, test = %test, "the traced test produced no example; it ended with:\n{}", last_words(&run.output));
        }
        for line in read.output.lines().filter(|l| l.starts_with('{')) {
            examples.push(TraceExample::from_tracer_line(iid, test, line).map_err(failed)?);
        }
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ids_become_runner_targets() {
        let runner = |parser: &str| TestRunner {
            command: String::new(),
            parser: parser.into(),
            django_labels: false,
        };
        assert_eq!(
            runner_target(&runner("parse_log_django"), "test_a (app.tests.T)", "").as_deref(),
            Some("app.tests.T.test_a")
        );
        let django = TestRunner {
            command: String::new(),
            parser: "parse_log_django".into(),
            django_labels: true,
        };
        let patch = "+++ b/tests/app/tests.py\n@@ -1,2 +1,4 @@ class T(TestCase):\n+    def test_b(self):\n+        \"\"\"Does the thing.\"\"\"\n";
        assert_eq!(
            runner_target(&django, "Does the thing.", patch).as_deref(),
            Some("app.tests.T.test_b")
        );
        assert_eq!(
            runner_target(&runner("parse_log_pytest"), "t.py::x", "").as_deref(),
            Some("t.py::x")
        );
        assert_eq!(
            runner_target(&runner("parse_log_sympy"), "test_a", ""),
            None
        );
        assert_eq!(
            python_argv(vec!["pytest".into(), "-rA".into()]).unwrap(),
            vec!["-m", "pytest", "-rA"]
        );
        let patch = "+++ b/pkg/tests/test_n.py\n@@\n+def test_a():\n";
        assert_eq!(
            defining_file(patch, "test_a").as_deref(),
            Some("pkg/tests/test_n.py")
        );
    }
}
