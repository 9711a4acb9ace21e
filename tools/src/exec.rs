//! Running one parsed tool call against a [`Workspace`].

use std::time::{Duration, Instant};

use minijinja::context;
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
    /// Per-command timeout of `bash` and `test` (by default CWM's 120 s, the
    /// `command_timeout_secs` of [`cwm_protocol::Budgets::default`]).
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
            command_timeout: Duration::from_secs(
                cwm_protocol::Budgets::default().command_timeout_secs,
            ),
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
    /// The outcome of a command in the session: `output` for the model, and the restart
    /// notice when the command broke the session.
    pub(crate) fn from_session(output: String, out: &CommandOutput, config: &ToolConfig) -> Self {
        Self {
            output,
            success: !out.restarted,
            exit_code: out.exit_code,
            restarted: out.restarted,
            notice: session_notice(out, config),
            submission: None,
            duration: Duration::ZERO,
        }
    }

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
        ToolName::Edit => edit(ws, &call.body, &config.profile).await?,
        ToolName::Create => create(ws, &call.body, &config.profile).await?,
        ToolName::Submit => crate::submit::submit(ws, &call.body, &config.profile).await?,
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
    Ok(ToolOutcome::from_session(text, &out, config))
}

/// What the model is told about its session beyond the output: that it was replaced, and
/// that the disk watchdog killed its processes.
fn session_notice(out: &CommandOutput, config: &ToolConfig) -> Option<String> {
    let profile = &config.profile;
    let restart = out
        .restarted
        .then(|| restart_notice(profile, out, config.command_timeout));
    let disk = out.disk_limit.map(|hit| {
        profile.render(
            "session.disk_limit",
            context! { limit => human_bytes(hit.limit_bytes), used => human_bytes(hit.used_bytes) },
        )
    });
    match (restart, disk) {
        (Some(restart), Some(disk)) => Some(format!(
            "{restart}{}{disk}",
            profile.text("observation.notice_separator")
        )),
        (restart, disk) => restart.or(disk),
    }
}

/// `1.5 GiB`, `300.0 MiB`, `12 KiB`: sizes in a notice.
fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB * KIB {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// Tells the model its session was replaced, and why (the profile's `session` texts).
pub(crate) fn restart_notice(profile: &Profile, out: &CommandOutput, timeout: Duration) -> String {
    let reason = if out.timed_out {
        profile.render(
            "session.reason_timeout",
            context! { seconds => timeout.as_secs() },
        )
    } else if out.truncated {
        profile.text("session.reason_output")
    } else {
        profile.text("session.reason_exited")
    };
    profile.render(
        "session.restart_notice",
        context! { reason, repo => crate::workspace::REPO_ROOT },
    )
}

async fn edit(
    ws: &mut dyn Workspace,
    body: &str,
    profile: &Profile,
) -> Result<ToolOutcome, EnvFailure> {
    let fail =
        |key: &str, path: &str| ToolOutcome::done(false, profile.render(key, context! { path }));
    let mut spec = match parse_edit(body) {
        Ok(spec) => spec,
        Err(err) => return Ok(ToolOutcome::done(false, err.message(profile))),
    };
    let path = resolve_in_session(ws, &spec.path).await?;
    spec.path.clone_from(&path);
    match ws.path_kind(&path).await? {
        PathKind::File => {}
        PathKind::Missing => return Ok(fail("edit.missing", &path)),
        _ => return Ok(fail("edit.not_a_file", &path)),
    }
    let bytes = ws.read_file(&path).await?;
    let Ok(content) = String::from_utf8(bytes) else {
        return Ok(fail("edit.not_utf8", &path));
    };
    match apply_edit(&content, &spec) {
        Ok(edited) => {
            ws.write_file(&path, edited.content.as_bytes()).await?;
            Ok(ToolOutcome::done(true, edited.message(profile, &path)))
        }
        Err(err) => Ok(ToolOutcome::done(false, err.message(profile))),
    }
}

async fn create(
    ws: &mut dyn Workspace,
    body: &str,
    profile: &Profile,
) -> Result<ToolOutcome, EnvFailure> {
    let (path, content) = match parse_create(body) {
        Ok(parsed) => parsed,
        Err(err) => return Ok(ToolOutcome::done(false, err.message(profile))),
    };
    let path = resolve_in_session(ws, &path).await?;
    if ws.path_kind(&path).await? != PathKind::Missing {
        let message = profile.render("create.exists", context! { path });
        return Ok(ToolOutcome::done(false, message));
    }
    let parent = parent_dir(&path);
    if ws.path_kind(parent).await? != PathKind::Dir {
        let message = profile.render("create.no_parent", context! { path, parent });
        return Ok(ToolOutcome::done(false, message));
    }
    ws.write_file(&path, content.as_bytes()).await?;
    let lines = content.lines().count();
    let message = profile.render("create.success", context! { path, lines });
    Ok(ToolOutcome::done(true, message))
}

/// The echo of an accepted patch, followed by `notes` (the profile's `submit.echo`).
pub fn submission_message(profile: &Profile, patch: &str, notes: &[String]) -> String {
    let patch = patch.strip_suffix('\n').unwrap_or(patch);
    profile.render("submit.echo", context! { patch, notes })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;

    use super::*;
    use crate::parse::parse_call;
    use crate::REPO_ROOT;

    /// Files in memory; every path is absolute, so no command ever runs.
    #[derive(Default)]
    struct MemoryWorkspace {
        files: BTreeMap<String, Vec<u8>>,
    }

    #[async_trait]
    impl Workspace for MemoryWorkspace {
        async fn run(&mut self, _: &str, _: Duration) -> Result<CommandOutput, EnvFailure> {
            Err(EnvFailure::new("running a command", "not in this test"))
        }
        async fn exec(&mut self, _: &str, _: Duration) -> Result<CommandOutput, EnvFailure> {
            Err(EnvFailure::new("running a script", "not in this test"))
        }
        async fn path_kind(&mut self, path: &str) -> Result<PathKind, EnvFailure> {
            Ok(match path {
                _ if self.files.contains_key(path) => PathKind::File,
                "/" | REPO_ROOT | "/tmp" => PathKind::Dir,
                _ => PathKind::Missing,
            })
        }
        async fn read_file(&mut self, path: &str) -> Result<Vec<u8>, EnvFailure> {
            Ok(self.files.get(path).cloned().unwrap_or_default())
        }
        async fn write_file(&mut self, path: &str, content: &[u8]) -> Result<(), EnvFailure> {
            self.files.insert(path.into(), content.to_vec());
            Ok(())
        }
    }

    async fn output(config: &ToolConfig, reply: &str) -> String {
        let call = parse_call(reply).expect("one call");
        let mut ws = MemoryWorkspace::default();
        ws.files
            .insert(format!("{REPO_ROOT}/a.py"), b"x = 1\n".to_vec());
        ws.files.insert("/tmp/empty.diff".into(), b"\n".to_vec());
        execute(&mut ws, &call, config).await.expect("runs").output
    }

    #[tokio::test]
    async fn a_user_profile_changes_the_edit_and_submit_messages() {
        let edit = &format!("<tool: edit>\n{REPO_ROOT}/a.py\n<<<<<<< SEARCH\ny = 1\n=======\ny = 2\n>>>>>>> REPLACE\n</tool>");
        let submit = "<tool: submit>\n/tmp/empty.diff\n</tool>";
        let builtin = ToolConfig::default();
        assert!(output(&builtin, edit)
            .await
            .starts_with("No replacement was made"));
        assert!(output(&builtin, submit)
            .await
            .starts_with("Submission failed"));

        let mut config = ToolConfig::default();
        let overrides = "[edit]\nno_match = \"NO MATCH in {{ path }}\"\n\n[submit]\nempty = \"Failed to submit {{ path }}.\"\n";
        config.profile.overlay(overrides, "test").expect("valid");
        assert_eq!(
            output(&config, edit).await,
            format!("NO MATCH in {REPO_ROOT}/a.py")
        );
        assert_eq!(
            output(&config, submit).await,
            "Failed to submit /tmp/empty.diff."
        );
    }

    #[test]
    fn the_disk_notice_comes_from_the_profile_and_follows_a_restart_notice() {
        let config = ToolConfig::default();
        let hit = cwm_env::DiskLimitHit {
            limit_bytes: 64 << 20,
            used_bytes: 100 << 20,
        };
        let out = CommandOutput {
            exit_code: Some(137),
            disk_limit: Some(hit),
            ..CommandOutput::default()
        };
        let outcome = ToolOutcome::from_session("partial".into(), &out, &config);
        let notice = outcome.notice.expect("a notice");
        assert!(
            notice.contains("take 100.0 MiB, more than its disk limit of 64.0 MiB"),
            "{notice}"
        );
        assert!(outcome.success && !outcome.restarted);

        let restarted = CommandOutput {
            restarted: true,
            ..out
        };
        let notice = ToolOutcome::from_session(String::new(), &restarted, &config)
            .notice
            .expect("a notice");
        assert!(notice.starts_with("The session was terminated"), "{notice}");
        assert!(
            notice.ends_with("any command that writes more is killed."),
            "{notice}"
        );
        assert_eq!(human_bytes(10 << 30), "10.0 GiB");
        assert_eq!(human_bytes(1500), "2 KiB");
    }
}
