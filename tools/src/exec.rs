//! Running one parsed tool call against a [`Workspace`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::edit::{apply_edit, parse_create, parse_edit};
use crate::parse::{ToolCall, ToolName};
use crate::profile::Profile;
use crate::workspace::{
    parent_dir, resolve_in_session, CommandOutput, EnvFailure, PathKind, Workspace,
};

/// Settings for tool execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolConfig {
    /// Per-command timeout of `bash` and `test` (CWM: 120 s).
    pub command_timeout: Duration,
    /// How the `test` tool runs this instance's tests; `None` when none is known.
    pub test_runner: Option<cwm_parsers::TestRunner>,
    /// The texts the model sees.
    #[serde(skip)]
    pub profile: Profile,
}

impl Default for ToolConfig {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(120),
            test_runner: None,
            profile: Profile::builtin(),
        }
    }
}

/// What a tool call produced, before it is formatted into an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutcome {
    /// The text for the model (not yet truncated, without the `<output>` wrapper).
    pub output: String,
    /// The tool did what was asked (for bash: the session survived; see `exit_code`).
    pub success: bool,
    /// bash: the command's exit status; edit/create/submit: 0 on success, 1 on failure.
    pub exit_code: Option<i64>,
    /// The bash session was restarted during this call.
    pub restarted: bool,
    /// A notice shown after the output, never cut with it (the session restart).
    pub notice: Option<String>,
    /// The patch, when this was a successful submit.
    pub submission: Option<String>,
    pub duration: Duration,
}

impl ToolOutcome {
    pub(crate) fn done(success: bool, output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            success,
            exit_code: Some(if success { 0 } else { 1 }),
            restarted: false,
            notice: None,
            submission: None,
            duration: Duration::ZERO,
        }
    }
}

/// Runs `call`. `Err` only for infrastructure failures; every mistake of the model is an
/// unsuccessful outcome with a message saying what to fix.
pub async fn execute(
    ws: &mut dyn Workspace,
    call: &ToolCall,
    config: &ToolConfig,
) -> Result<ToolOutcome, EnvFailure> {
    let start = Instant::now();
    let mut outcome = match call.tool {
        ToolName::Bash => bash(ws, &call.body, config).await?,
        ToolName::Edit => edit(ws, &call.body).await?,
        ToolName::Create => create(ws, &call.body).await?,
        ToolName::Submit => submit(ws, &call.body).await?,
        ToolName::Test => crate::test_tool::run_tests(ws, &call.body, config).await?,
    };
    outcome.duration = start.elapsed();
    Ok(outcome)
}

async fn bash(
    ws: &mut dyn Workspace,
    command: &str,
    config: &ToolConfig,
) -> Result<ToolOutcome, EnvFailure> {
    let out = ws.run(command, config.command_timeout).await?;
    let text = out
        .output
        .strip_suffix('\n')
        .unwrap_or(&out.output)
        .to_string();
    Ok(ToolOutcome {
        output: text,
        success: !out.restarted,
        exit_code: out.exit_code,
        restarted: out.restarted,
        notice: out
            .restarted
            .then(|| restart_notice(&config.profile, &out, config.command_timeout)),
        submission: None,
        duration: Duration::ZERO,
    })
}

/// Tells the model its session was replaced, and why (the profile's `session` texts).
pub(crate) fn restart_notice(profile: &Profile, out: &CommandOutput, timeout: Duration) -> String {
    let reason = if out.timed_out {
        profile.render(
            "session.reason_timeout",
            minijinja::context! { seconds => timeout.as_secs() },
        )
    } else if out.truncated {
        profile.text("session.reason_output")
    } else {
        profile.text("session.reason_exited")
    };
    profile.render(
        "session.restart_notice",
        minijinja::context! { reason, repo => crate::workspace::REPO_ROOT },
    )
}

async fn edit(ws: &mut dyn Workspace, body: &str) -> Result<ToolOutcome, EnvFailure> {
    let mut spec = match parse_edit(body) {
        Ok(spec) => spec,
        Err(message) => return Ok(ToolOutcome::done(false, message)),
    };
    let path = resolve_in_session(ws, &spec.path).await?;
    spec.path.clone_from(&path);
    match ws.path_kind(&path).await? {
        PathKind::File => {}
        PathKind::Missing => {
            return Ok(ToolOutcome::done(false, format!("The path {path} does not exist. Edit an existing file, or use create for a new one.")))
        }
        _ => return Ok(ToolOutcome::done(false, format!("{path} is not a regular file, so it cannot be edited."))),
    }
    let bytes = ws.read_file(&path).await?;
    let Ok(content) = String::from_utf8(bytes) else {
        return Ok(ToolOutcome::done(
            false,
            format!("{path} is not valid UTF-8 text, so it cannot be edited; use bash instead."),
        ));
    };
    match apply_edit(&content, &spec) {
        Ok((new, message)) => {
            ws.write_file(&path, new.as_bytes()).await?;
            Ok(ToolOutcome::done(true, message))
        }
        Err(message) => Ok(ToolOutcome::done(false, message)),
    }
}

async fn create(ws: &mut dyn Workspace, body: &str) -> Result<ToolOutcome, EnvFailure> {
    let (path, content) = match parse_create(body) {
        Ok(parsed) => parsed,
        Err(message) => return Ok(ToolOutcome::done(false, message)),
    };
    let path = resolve_in_session(ws, &path).await?;
    if ws.path_kind(&path).await? != PathKind::Missing {
        return Ok(ToolOutcome::done(
            false,
            format!("{path} already exists, and create never overwrites. Use edit to change it."),
        ));
    }
    let parent = parent_dir(&path);
    if ws.path_kind(parent).await? != PathKind::Dir {
        return Ok(ToolOutcome::done(false, format!("Cannot create {path}: the directory {parent} does not exist. Create it first with bash (mkdir -p).")));
    }
    ws.write_file(&path, content.as_bytes()).await?;
    let lines = content.lines().count();
    Ok(ToolOutcome::done(
        true,
        format!("Created {path} ({lines} lines)."),
    ))
}

/// See [`crate::submit`].
async fn submit(ws: &mut dyn Workspace, body: &str) -> Result<ToolOutcome, EnvFailure> {
    crate::submit::submit(ws, body).await
}

/// The echo of an accepted patch.
pub fn submission_message(patch: &str) -> String {
    format!(
        "This patch is now recorded as your final submission:\n\n<submission>\n{}\n</submission>\n\nCheck that it resolves the issue. You may keep improving it and submit again; the last submission counts.",
        patch.strip_suffix('\n').unwrap_or(patch)
    )
}
