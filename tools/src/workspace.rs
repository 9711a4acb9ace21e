//! What the tools need from a running task container, as a trait: the real implementation
//! ([`crate::DockerWorkspace`]) wraps a `cwm-env` container and its persistent shell, and tests
//! can substitute an in-memory one.

use std::time::Duration;

use async_trait::async_trait;

pub use crate::error::EnvFailure;
pub use cwm_env::REPO_ROOT;

/// `$HOME` when the session does not say otherwise (root's, as in SWE-bench images).
const DEFAULT_HOME: &str = "/root";

/// How long the session may take to print its working directory and `$HOME`.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The container's files passed its disk limit and the session's processes were killed.
    pub disk_limit: Option<cwm_env::DiskLimitHit>,
}

/// What is at a path in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    File,
    Dir,
    Other,
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
    resolve_from(path, REPO_ROOT, DEFAULT_HOME)
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
            RESOLVE_TIMEOUT,
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
        .unwrap_or(DEFAULT_HOME);
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
        assert_eq!(resolve_from("~/p.diff", REPO_ROOT, "/root"), "/root/p.diff");
        assert_eq!(resolve_from("~", REPO_ROOT, "/root"), "/root");
        assert_eq!(
            resolve_from("~x/p", REPO_ROOT, "/root"),
            format!("{REPO_ROOT}/~x/p")
        );
        assert_eq!(resolve_from("/abs", REPO_ROOT, "/root"), "/abs");
    }

    #[test]
    fn paths_resolve_under_the_repo() {
        assert_eq!(resolve_path("a/b.py"), format!("{REPO_ROOT}/a/b.py"));
        assert_eq!(resolve_path("./a.py"), format!("{REPO_ROOT}/a.py"));
        assert_eq!(resolve_path(" /tmp/p.diff "), "/tmp/p.diff");
        assert_eq!(
            parent_dir(&format!("{REPO_ROOT}/a/b.py")),
            format!("{REPO_ROOT}/a")
        );
        assert_eq!(parent_dir("/x"), "/");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
