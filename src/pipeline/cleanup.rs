//! Container work that a stop signal must not leave behind.

use std::future::Future;
use std::time::Duration;

use crate::error::PipelineError;
use crate::signals::Shutdown;

/// Runs `work`; if Ctrl-C, SIGTERM or SIGHUP arrives first, removes this process's containers
/// (and, given `run_id`, any of that run whose creation the daemon finishes late) and returns
/// [`PipelineError::Interrupted`].
pub async fn with_cleanup<T, E>(
    run_id: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    E: From<PipelineError>,
{
    let mut shutdown = Shutdown::listen().map_err(|source| PipelineError::Io {
        what: "listening for stop signals".into(),
        source,
    })?;
    tokio::select! {
        result = work => result,
        exit_code = shutdown.recv() => {
            remove_run_containers(run_id).await?;
            Err(PipelineError::Interrupted { run_id: run_id.into(), exit_code }.into())
        }
    }
}

/// Removes every live container of this process, then any labelled with `run_id` once the
/// daemon has been quiet for a second (a create cut short may still complete there).
pub(crate) async fn remove_run_containers(run_id: &str) -> Result<usize, PipelineError> {
    cwm_env::remove_all_live().await;
    let docker = cwm_env::connect().await?;
    let quiet = Duration::from_secs(1);
    Ok(cwm_env::remove_labelled_settled(&docker, run_id, quiet).await?)
}
