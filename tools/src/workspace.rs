//! What the tools need from a running task container, as a trait: the real implementation
//! ([`crate::DockerWorkspace`]) wraps a `cwm-env` container and its persistent shell, and tests
//! can substitute an in-memory one.

use std::time::Duration;

use async_trait::async_trait;

/// The repository root inside every task container.
pub const REPO_ROOT: &str = "/testbed";

/// The result of one command in the persistent session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// `None` when the command did not finish (timeout, output cap, session died).
    pub exit_code: Option<i64>,
    /// stdout and stderr interleaved, lossily decoded as UTF-8.
    pub output: String,
    pub timed_out: bool,
    /// The output passed the session's byte cap and was cut there.
    pub truncated: bool,
    /// The session was killed and a fresh one started (timeout, output cap, or it exited).
    pub restarted: bool,
}

/// What is at a path in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    File,
    Dir,
    Other,
}

/// An infrastructure failure: the container or the Docker daemon is gone, not a tool
/// misuse by the model. It ends the episode with `env_error`.
#[derive(Debug, thiserror::Error)]
#[error("container environment failed while {action}: {detail}")]
pub struct EnvFailure {
    pub action: String,
    pub detail: String,
}

impl EnvFailure {
    pub fn new(action: impl Into<String>, detail: impl ToString) -> Self {
        Self {
            action: action.into(),
            detail: detail.to_string(),
        }
    }
}

/// The task container as the tools see it. Paths are absolute.
#[async_trait]
pub trait Workspace: Send {
    /// Runs `command` in the persistent bash session.
    async fn run(&mut self, command: &str, timeout: Duration) -> Result<CommandOutput, EnvFailure>;
    /// Runs a one-off script outside the session (it cannot be disturbed by the model's
    /// shell state), in [`REPO_ROOT`].
    async fn exec(&mut self, script: &str, timeout: Duration) -> Result<CommandOutput, EnvFailure>;
    async fn path_kind(&mut self, path: &str) -> Result<PathKind, EnvFailure>;
    async fn read_file(&mut self, path: &str) -> Result<Vec<u8>, EnvFailure>;
    async fn write_file(&mut self, path: &str, content: &[u8]) -> Result<(), EnvFailure>;
}

/// Resolves a model-given path: absolute paths stay, relative ones are under [`REPO_ROOT`].
pub fn resolve_path(path: &str) -> String {
    resolve_from(path, REPO_ROOT, "/root")
}

/// Resolves a model-given path as the session would: `~` and `~/...` against its `$HOME`,
/// relative paths against its current directory (CWM runs its tools inside the session, so
/// a `cd` moves them too). One round trip to the session.
pub async fn resolve_in_session(ws: &mut dyn Workspace, path: &str) -> Result<String, EnvFailure> {
    let path = path.trim();
    if path.starts_with('/') {
        return Ok(path.to_string());
    }
    let out = ws
        .run(
            "builtin printf '%s\\n%s' \"$PWD\" \"$HOME\"",
            Duration::from_secs(10),
        )
        .await?;
    let mut lines = out.output.lines();
    let cwd = lines
        .next()
        .filter(|d| d.starts_with('/'))
        .unwrap_or(REPO_ROOT);
    let home = lines
        .next()
        .filter(|d| d.starts_with('/'))
        .unwrap_or("/root");
    Ok(resolve_from(path, cwd, home))
}

fn resolve_from(path: &str, cwd: &str, home: &str) -> String {
    let path = path.trim();
    if path.starts_with('/') {
        return path.to_string();
    }
    let (base, relative) = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            (home, rest.trim_start_matches('/'))
        }
        _ => (cwd, path),
    };
    let relative = relative.trim_start_matches("./");
    if relative.is_empty() || relative == "." {
        base.to_string()
    } else {
        format!("{}/{relative}", base.trim_end_matches('/'))
    }
}

/// The parent directory of an absolute path.
pub fn parent_dir(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    }
}

/// Single-quotes `text` for bash.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_session() {
        assert_eq!(resolve_from("a.py", "/tmp", "/root"), "/tmp/a.py");
        assert_eq!(resolve_from("./a.py", "/", "/root"), "/a.py");
        assert_eq!(
            resolve_from("~/p.diff", "/testbed", "/root"),
            "/root/p.diff"
        );
        assert_eq!(resolve_from("~", "/testbed", "/root"), "/root");
        assert_eq!(resolve_from("~x/p", "/testbed", "/root"), "/testbed/~x/p");
        assert_eq!(resolve_from("/abs", "/testbed", "/root"), "/abs");
    }

    #[test]
    fn paths_resolve_under_the_repo() {
        assert_eq!(resolve_path("a/b.py"), "/testbed/a/b.py");
        assert_eq!(resolve_path("./a.py"), "/testbed/a.py");
        assert_eq!(resolve_path(" /tmp/p.diff "), "/tmp/p.diff");
        assert_eq!(parent_dir("/testbed/a/b.py"), "/testbed/a");
        assert_eq!(parent_dir("/x"), "/");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
