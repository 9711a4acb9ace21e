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
//! The token form ([`token_text`]) follows CWM's PROMPTING_GUIDE.md and debugger demo:
//! `<|begin_of_text|><|trace_context_start|>CONTEXT<|frame_sep|>`, then per event
//! `<|call_sep|>LOCALS<|action_sep|>SOURCE<|frame_sep|>`,
//! `<|line_sep|>LOCALS<|action_sep|>SOURCE<|frame_sep|>`,
//! `<|return_sep|><|action_sep|>SOURCE<|arg_sep|>VALUE<|frame_sep|>`,
//! `<|exception_sep|><|action_sep|>SOURCE<|arg_sep|>VALUE<|frame_sep|>`, and
//! `<|end_of_text|>` once the entry function's scope exits. LOCALS is a JSON object of reprs,
//! a value unchanged since the previous frame of the scope written `".."`; VALUE is a JSON
//! string.

use std::collections::BTreeMap;
use std::time::Duration;

use cwm_datasets::Instance;
use cwm_env::{Container, ContainerConfig, Docker, CONDA_ACTIVATE, CONDA_ENV, REPO_ROOT};
use cwm_parsers::TestRunner;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;

/// The tracer, copied into each container.
pub const TRACER: &str = include_str!("cwm_tracer.py");
const TRACER_PATH: &str = "/tmp/cwm_tracer.py";
const TRACE_OUT: &str = "/tmp/cwm_trace.jsonl";
const PATCH_PATH: &str = "/tmp/cwm_trace_patch.diff";
const TEST_PATCH_PATH: &str = "/tmp/cwm_trace_test_patch.diff";

/// CWM's trace tokens (ids 128100 to 128107 in its vocabulary).
pub mod tokens {
    pub const BEGIN: &str = "<|begin_of_text|>";
    pub const END: &str = "<|end_of_text|>";
    pub const FRAME: &str = "<|frame_sep|>";
    pub const ACTION: &str = "<|action_sep|>";
    pub const RETURN: &str = "<|return_sep|>";
    pub const CALL: &str = "<|call_sep|>";
    pub const LINE: &str = "<|line_sep|>";
    pub const EXCEPTION: &str = "<|exception_sep|>";
    pub const ARG: &str = "<|arg_sep|>";
    pub const CONTEXT: &str = "<|trace_context_start|>";
}

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

/// One event of a traced scope, as the tracer records it (full locals, never `".."`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// `call`, `line`, `return` or `exception`.
    pub event: String,
    pub line: u64,
    /// The source line at `line` (for `line`: the line about to run).
    pub source: String,
    /// Name to repr, for `call` and `line` (empty for `return` and `exception`).
    pub locals: BTreeMap<String, String>,
    /// The repr of the returned value or the exception.
    pub value: Option<String>,
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
}

/// The token form of a trace: see the module documentation.
pub fn token_text(context: &str, frames: &[Frame], ended: bool) -> String {
    use tokens::*;
    let mut out = format!("{BEGIN}{CONTEXT}{context}{FRAME}");
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    for frame in frames {
        match frame.event.as_str() {
            "call" | "line" => {
                let sep = if frame.event == "call" { CALL } else { LINE };
                let locals: serde_json::Map<String, serde_json::Value> = frame
                    .locals
                    .iter()
                    .map(|(k, v)| {
                        let same = previous.get(k.as_str()) == Some(&v.as_str());
                        (k.clone(), (if same { ".." } else { v.as_str() }).into())
                    })
                    .collect();
                previous = frame
                    .locals
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let locals = serde_json::Value::Object(locals);
                out.push_str(&format!("{sep}{locals}{ACTION}{}{FRAME}", frame.source));
            }
            event => {
                let sep = if event == "return" { RETURN } else { EXCEPTION };
                let value = serde_json::Value::from(frame.value.clone().unwrap_or_default());
                out.push_str(&format!("{sep}{ACTION}{}{ARG}{value}{FRAME}", frame.source));
            }
        }
    }
    if ended {
        out.push_str(END);
    }
    out
}

/// A frame read back from the token form: the event, the locals as written (`".."`
/// included), the source, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFrame {
    pub event: String,
    pub locals: BTreeMap<String, String>,
    pub source: String,
    pub value: Option<String>,
}

/// Reads the token form back: the context, the frames, and whether it ended. Errors name the
/// frame that is malformed.
pub fn parse_token_text(text: &str) -> Result<(String, Vec<ParsedFrame>, bool), String> {
    use tokens::*;
    let rest = text
        .strip_prefix(BEGIN)
        .and_then(|t| t.strip_prefix(CONTEXT))
        .ok_or("no <|begin_of_text|><|trace_context_start|>")?;
    let (rest, ended) = match rest.strip_suffix(END) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let mut parts = rest.split(FRAME);
    let context = parts.next().unwrap_or_default().to_string();
    let mut frames = Vec::new();
    for (i, part) in parts.enumerate() {
        if !part.is_empty() {
            frames.push(parse_frame(part).map_err(|why| format!("frame {i}: {why}"))?);
        }
    }
    Ok((context, frames, ended))
}

/// One frame of the token form, without its `<|frame_sep|>`: the event token, the locals (for
/// call and line), the source, and (for return and exception) the value.
pub fn parse_frame(part: &str) -> Result<ParsedFrame, String> {
    use tokens::*;
    let (head, action) = part.split_once(ACTION).ok_or("no <|action_sep|>")?;
    let (event, locals_text) = [
        (CALL, "call"),
        (LINE, "line"),
        (RETURN, "return"),
        (EXCEPTION, "exception"),
    ]
    .iter()
    .find_map(|(sep, name)| head.strip_prefix(sep).map(|l| (*name, l)))
    .ok_or("no event token")?;
    let (source, value) = match event {
        "call" | "line" => (action.to_string(), None),
        _ => {
            let (source, value) = action.split_once(ARG).ok_or("no <|arg_sep|>")?;
            let value: String = serde_json::from_str(value).map_err(|e| e.to_string())?;
            (source.to_string(), Some(value))
        }
    };
    let locals = if locals_text.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(locals_text).map_err(|e| e.to_string())?
    };
    Ok(ParsedFrame {
        event: event.to_string(),
        locals,
        source,
        value,
    })
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
    let config = ContainerConfig::new(&image, label, &instance.instance_id)
        .with_deadline(limits.timeout * (tests.len() as u32 + 2));
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
            .exec(&command, limits.timeout + Duration::from_secs(30))
            .await?;
        let read = container
            .exec(
                &format!("cat {TRACE_OUT} 2>/dev/null; rm -f {TRACE_OUT}"),
                Duration::from_secs(60),
            )
            .await?;
        if read.output.trim().is_empty() && run.exit_code.is_some_and(|c| c != 0) {
            tracing::warn!(instance = %iid, test = %test, "the traced test produced no example: {}", run.output.lines().last().unwrap_or_default());
        }
        for line in read.output.lines().filter(|l| l.starts_with('{')) {
            let raw: Raw = serde_json::from_str(line)
                .map_err(|e| failed(format!("a tracer line is not an example ({e})")))?;
            let ended = raw.truncated.is_none();
            examples.push(TraceExample {
                instance_id: iid.clone(),
                test_id: test.clone(),
                text: token_text(&raw.context, &raw.frames, ended),
                qualname: raw.qualname,
                file: raw.file,
                line: raw.line,
                context: raw.context,
                frames: raw.frames,
                truncated: raw.truncated,
            });
        }
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: &str, locals: &[(&str, &str)], source: &str, value: Option<&str>) -> Frame {
        Frame {
            event: event.into(),
            line: 1,
            source: source.into(),
            locals: locals
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn the_token_form_marks_unchanged_locals_and_reads_back() {
        let frames = [
            frame("call", &[("n", "3")], "def f(n):", None),
            frame("line", &[("n", "3")], "    x = n + 1", None),
            frame("line", &[("n", "3"), ("x", "4")], "    return x", None),
            frame("return", &[], "    return x", Some("4")),
        ];
        let text = token_text("def f(n):  # << START_OF_TRACE\n", &frames, true);
        assert!(text.starts_with("<|begin_of_text|><|trace_context_start|>def f(n):"));
        assert!(text.contains("<|line_sep|>{\"n\":\"..\"}<|action_sep|>    x = n + 1<|frame_sep|>"));
        assert!(text.contains(
            "<|line_sep|>{\"n\":\"..\",\"x\":\"4\"}<|action_sep|>    return x<|frame_sep|>"
        ));
        assert!(text.ends_with(
            "<|return_sep|><|action_sep|>    return x<|arg_sep|>\"4\"<|frame_sep|><|end_of_text|>"
        ));
        let (context, parsed, ended) = parse_token_text(&text).unwrap();
        assert!(ended && context.contains("START_OF_TRACE"));
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[1].locals["n"], "..");
        assert_eq!(parsed[3].value.as_deref(), Some("4"));
    }

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
