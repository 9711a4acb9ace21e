//! Whether a container is still alive, and if not why: the difference between a model
//! failure and an infrastructure failure (the container killed by the OOM killer, from
//! outside, or by a daemon restart) that must not count against the model.

use bollard::errors::Error as BollardError;

use crate::{Container, EnvError};

impl Container {
    /// `None` while the container runs; otherwise why it stopped, in words: its exit code and
    /// whether the kernel's OOM killer ended it, or that it no longer exists. An unreachable
    /// daemon is itself the reason (a daemon restart in progress), not an error.
    pub async fn stopped_reason(&self) -> Option<String> {
        let inspect = match self.docker().inspect_container(self.id(), None).await {
            Ok(inspect) => inspect,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                // Containers with a deadline remove themselves once stopped.
                return Some(
                    "the container is gone (it stopped and removed itself: killed from outside, \
                     OOM-killed, or stopped by a daemon restart)"
                        .into(),
                );
            }
            Err(cause) => return Some(format!("the Docker daemon did not answer ({cause})")),
        };
        let state = inspect.state.unwrap_or_default();
        if state.running == Some(true) {
            return None;
        }
        let code = state.exit_code.unwrap_or_default();
        let why = if state.oom_killed == Some(true) {
            "killed by the kernel's OOM killer"
        } else if code == 137 || code == 143 {
            "killed from outside (`docker kill`, `docker stop` or a daemon restart)"
        } else {
            "its main process ended"
        };
        Some(format!(
            "the container stopped with exit code {code}: {why}"
        ))
    }

    /// [`Container::stopped_reason`], asked again for up to 3 s while the container still
    /// looks alive: after a kill the daemon reports the exit a moment after the exec streams
    /// end. For use once something already failed (it waits 3 s for a healthy container).
    pub async fn stopped_reason_settled(&self) -> Option<String> {
        for _ in 0..10 {
            if let Some(reason) = self.stopped_reason().await {
                return Some(reason);
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        self.stopped_reason().await
    }

    /// `Ok` while the container runs, else [`EnvError::ContainerStopped`] saying why, for
    /// `what` (e.g. `the evaluation`). With `settle`, asks as
    /// [`Container::stopped_reason_settled`] does.
    pub async fn check_running(&self, what: &str, settle: bool) -> Result<(), EnvError> {
        let reason = if settle {
            self.stopped_reason_settled().await
        } else {
            self.stopped_reason().await
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(EnvError::ContainerStopped {
                container: self.id().chars().take(12).collect(),
                what: what.to_string(),
                reason,
            }),
        }
    }
}

/// Waits, up to `max`, for the Docker daemon to answer a ping (a daemon being restarted
/// refuses connections for a few seconds). Returns at once when it answers; `false` when it
/// still did not answer after `max`.
pub async fn wait_for_daemon(docker: &bollard::Docker, max: std::time::Duration) -> bool {
    if docker.ping().await.is_ok() {
        return true;
    }
    tracing::warn!(
        "the Docker daemon does not answer; waiting up to {} s for it to come back",
        max.as_secs()
    );
    let started = std::time::Instant::now();
    while started.elapsed() < max {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if docker.ping().await.is_ok() {
            tracing::info!(
                "the Docker daemon answers again after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            return true;
        }
    }
    false
}
