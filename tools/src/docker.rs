//! [`Workspace`] over a real task container: the persistent `cwm_env::Shell` for bash, file
//! transfer for edit/create/submit, one-off execs for checks the model's shell must not affect.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cwm_env::{Container, EnvError, Shell, ShellConfig, ShellOutput, REPO_ROOT};

use crate::error::{EnvFailure, EnvFailureCause};
use crate::workspace::{shell_quote, CommandOutput, PathKind, Workspace};

/// Waiting for the start-up hygiene: its own limit ([`cwm_env::HYGIENE_TIMEOUT`]) plus a
/// margin, so that the hygiene's own timeout message is what the wait reports.
const HYGIENE_WAIT_TIMEOUT: Duration = Duration::from_secs(cwm_env::HYGIENE_TIMEOUT.as_secs() + 10);

/// Budget for the small bookkeeping execs (`test -e`).
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// A task container with its open bash session.
pub struct DockerWorkspace<'c> {
    container: &'c Container,
    shell: Shell,
    hygiene: Hygiene,
}

/// The repo hygiene the container started with ([`Container::cleans_repo_at_start`]).
/// Nothing reaches the container before it is known to be done, but the model's first
/// call can overlap it: on a large repository the repack takes seconds.
enum Hygiene {
    Done,
    Pending,
    /// The hygiene failed; every later use fails with the same error.
    Failed(Arc<EnvError>),
}

impl<'c> DockerWorkspace<'c> {
    /// Opens the session. The model sees at most `output_limit_bytes` of a command's output
    /// (head and tail); a command is only killed, and the session restarted, past the much
    /// larger [`ShellConfig::default`] kill threshold (64 MiB, the guard against `yes`), so a
    /// verbose build or test run still finishes.
    pub async fn open(
        container: &'c Container,
        output_limit_bytes: usize,
        env: Vec<(String, String)>,
    ) -> Result<Self, EnvFailure> {
        let config = ShellConfig {
            output_limit_bytes,
            env,
            ..ShellConfig::default()
        };
        Self::open_with_config(container, config).await
    }

    /// Opens the session with explicit limits, e.g. CWM's own behaviour of killing a command
    /// as soon as its output passes the observation limit (`kill_after_bytes` equal to
    /// `output_limit_bytes`).
    pub async fn open_with_config(
        container: &'c Container,
        config: ShellConfig,
    ) -> Result<Self, EnvFailure> {
        let shell = Shell::open(container, config)
            .await
            .map_err(|e| EnvFailure::new("opening the bash session", e))?;
        let hygiene = if container.cleans_repo_at_start() {
            Hygiene::Pending
        } else {
            Hygiene::Done
        };
        Ok(Self {
            container,
            shell,
            hygiene,
        })
    }

    /// Waits for the start-up hygiene once; its failure fails every later use.
    async fn settle(&mut self) -> Result<(), EnvFailure> {
        const ACTION: &str = "preparing the repository";
        match &self.hygiene {
            Hygiene::Done => return Ok(()),
            Hygiene::Failed(err) => return Err(EnvFailure::new(ACTION, Arc::clone(err))),
            Hygiene::Pending => {}
        }
        let waited = self
            .shell
            .run(&cwm_env::hygiene_wait_script(), HYGIENE_WAIT_TIMEOUT)
            .await
            .and_then(|out| {
                cwm_env::check_hygiene(out.exit_code.map(i64::from), out.timed_out, &out.output)
            });
        match waited {
            Ok(()) => {
                self.hygiene = Hygiene::Done;
                Ok(())
            }
            Err(err) => {
                let err = Arc::new(err);
                self.hygiene = Hygiene::Failed(Arc::clone(&err));
                Err(EnvFailure::new(ACTION, err))
            }
        }
    }

    pub fn container(&self) -> &Container {
        self.container
    }
}

#[async_trait]
impl Workspace for DockerWorkspace<'_> {
    async fn run(&mut self, command: &str, timeout: Duration) -> Result<CommandOutput, EnvFailure> {
        self.settle().await?;
        let out = self
            .shell
            .run(command, timeout)
            .await
            .map_err(|e| EnvFailure::new("running a bash command", e))?;
        // CWM's session is replaced after a timeout or an output overflow; the env shell only
        // kills the command, so restart here to keep that contract.
        let killed = out.timed_out || (out.truncated && out.exit_code.is_none());
        let restarted = out.restarted || killed;
        if killed && !out.restarted {
            self.shell
                .restart()
                .await
                .map_err(|e| EnvFailure::new("restarting the bash session", e))?;
        }
        Ok(to_command_output(out, restarted))
    }

    async fn exec(&mut self, script: &str, timeout: Duration) -> Result<CommandOutput, EnvFailure> {
        self.settle().await?;
        let out = self
            .container
            .exec(&format!("cd {REPO_ROOT}\n{script}"), timeout)
            .await
            .map_err(|e| EnvFailure::new("running a one-off command", e))?;
        Ok(CommandOutput {
            exit_code: out.exit_code,
            output: out.output,
            timed_out: out.timed_out,
            truncated: false,
            restarted: false,
            disk_limit: None,
        })
    }

    async fn path_kind(&mut self, path: &str) -> Result<PathKind, EnvFailure> {
        let p = shell_quote(path);
        let script = format!(
            "if [ -d {p} ]; then echo dir; elif [ -f {p} ]; then echo file; elif [ -e {p} ] || [ -L {p} ]; then echo other; else echo missing; fi"
        );
        let out = self.exec(&script, CHECK_TIMEOUT).await?;
        match out.output.trim() {
            "dir" => Ok(PathKind::Dir),
            "file" => Ok(PathKind::File),
            "other" => Ok(PathKind::Other),
            "missing" => Ok(PathKind::Missing),
            other => Err(EnvFailure::new(
                format!("checking {path}"),
                EnvFailureCause::UnexpectedOutput {
                    output: other.to_string(),
                },
            )),
        }
    }

    async fn read_file(&mut self, path: &str) -> Result<Vec<u8>, EnvFailure> {
        self.settle().await?;
        self.container
            .read_file(path)
            .await
            .map_err(|e| EnvFailure::new(format!("reading {path}"), e))
    }

    async fn write_file(&mut self, path: &str, content: &[u8]) -> Result<(), EnvFailure> {
        self.settle().await?;
        self.container
            .write_file(path, content)
            .await
            .map_err(|e| EnvFailure::new(format!("writing {path}"), e))
    }
}

fn to_command_output(out: ShellOutput, restarted: bool) -> CommandOutput {
    CommandOutput {
        exit_code: out.exit_code.map(i64::from),
        output: out.output,
        timed_out: out.timed_out,
        truncated: out.truncated,
        restarted,
        disk_limit: out.disk_limit,
    }
}
