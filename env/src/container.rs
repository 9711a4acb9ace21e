//! Container lifecycle: start with labels and limits, one-shot exec, guaranteed removal.

use std::collections::{BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::hygiene::startup_command;
use crate::killer::kill_session_script;
use crate::output::Capped;
use crate::{EnvError, REPO_ROOT};

/// Label carrying the run id on every container the harness creates.
pub const RUN_LABEL: &str = "cwm-bench.run";
/// Label carrying the instance id.
pub const INSTANCE_LABEL: &str = "cwm-bench.instance";

/// One-shot exec output is kept up to this many bytes (head and tail); eval logs are far smaller.
const EXEC_OUTPUT_LIMIT: usize = 64 * 1024 * 1024;
/// After a one-shot exec was killed at its timeout, how long to keep reading what it printed
/// before it died; its stream ends once no process holds its output. Nothing is restarted
/// afterwards (unlike the shell's `SENTINEL_GRACE`, which decides whether the session's bash
/// is hung), and the tail of an eval script's log is what gets graded, so it waits a little
/// longer than the shell does.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Ids of containers this process created and has not removed or kept (for Ctrl-C).
static LIVE: LazyLock<Mutex<BTreeSet<String>>> = LazyLock::new(|| Mutex::new(BTreeSet::new()));

/// Container creations under way (see [`create_uncancellable`]).
static CREATING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Creates the container in a task of its own and records it in [`LIVE`] when it exists.
/// Cancelling the caller (Ctrl-C aborts a run's tasks) therefore cannot leave the daemon
/// finishing a create that nobody knows about: [`remove_all_live`] waits for creations
/// under way and then removes what they made.
async fn create_uncancellable(
    docker: &Docker,
    config: &ContainerConfig,
) -> Result<bollard::models::ContainerCreateResponse, bollard::errors::Error> {
    use std::sync::atomic::Ordering;
    let docker = docker.clone();
    let body = config.create_body();
    CREATING.fetch_add(1, Ordering::SeqCst);
    let task = tokio::spawn(async move {
        let options = CreateContainerOptionsBuilder::new().build();
        let created = docker.create_container(Some(options), body).await;
        if let Ok(created) = &created {
            live().insert(created.id.clone());
        }
        CREATING.fetch_sub(1, Ordering::SeqCst);
        created
    });
    match task.await {
        Ok(created) => created,
        Err(join) => Err(bollard::errors::Error::IOError {
            err: std::io::Error::other(join),
        }),
    }
}

fn live() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    // A panic while holding this lock cannot leave the set inconsistent; keep using it.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How to create a task container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    pub image: String,
    pub run_id: String,
    pub instance_id: String,
    /// Docker's default bridge network when true; no network at all when false.
    pub network: bool,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    /// `KEY=VALUE` entries for the container environment.
    pub env: Vec<String>,
    /// Clean the git history of [`REPO_ROOT`] as the container starts (see [`crate::prepare_repo`]),
    /// so that it overlaps with opening the session; [`crate::hygiene_wait_script`] waits.
    pub repo_hygiene: bool,
    /// When set, pid 1 exits this long after the start and Docker removes the container, so
    /// a harness killed with SIGKILL leaves nothing running for long (`clean` is still the
    /// way to remove leftovers at once). Whole seconds.
    pub deadline: Option<Duration>,
    /// How much the container's writable layer (every file written or changed, on the
    /// daemon's disk) may take. A [`crate::Shell`] in the container watches it and kills the
    /// session's processes past it; `None` leaves it unbounded.
    pub disk_limit_bytes: Option<u64>,
}

/// The default [`ContainerConfig::disk_limit_bytes`] of an episode container: far above what
/// a task writes (a rebuilt package, test caches), far below a full disk.
pub const EPISODE_DISK_LIMIT: u64 = 10 << 30;

impl ContainerConfig {
    /// Defaults: no network, 4 GiB of memory, 2 CPUs, 1024 pids.
    pub fn new(
        image: impl Into<String>,
        run_id: impl Into<String>,
        instance_id: impl Into<String>,
    ) -> Self {
        ContainerConfig {
            image: image.into(),
            run_id: run_id.into(),
            instance_id: instance_id.into(),
            network: false,
            memory_bytes: 4 << 30,
            nano_cpus: 2_000_000_000,
            pids_limit: 1024,
            env: Vec::new(),
            repo_hygiene: false,
            deadline: None,
            disk_limit_bytes: None,
        }
    }

    /// Sets [`ContainerConfig::disk_limit_bytes`].
    pub fn with_disk_limit(mut self, limit: Option<u64>) -> Self {
        self.disk_limit_bytes = limit;
        self
    }

    /// Sets [`ContainerConfig::deadline`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// An agent episode's container: [`ContainerConfig::new`] with the repo hygiene started
    /// at once and the disk bounded by [`EPISODE_DISK_LIMIT`].
    pub fn for_episode(
        image: impl Into<String>,
        run_id: impl Into<String>,
        instance_id: impl Into<String>,
    ) -> Self {
        Self {
            repo_hygiene: true,
            disk_limit_bytes: Some(EPISODE_DISK_LIMIT),
            ..Self::new(image, run_id, instance_id)
        }
    }

    fn command(&self) -> Vec<String> {
        let idle = match self.deadline {
            Some(deadline) => idle_until(deadline),
            None => IDLE_LOOP.to_string(),
        };
        let script = if self.repo_hygiene {
            format!("{}; {idle}", startup_command())
        } else {
            idle
        };
        vec!["-c".to_string(), script]
    }

    fn create_body(&self) -> ContainerCreateBody {
        let labels = HashMap::from([
            (RUN_LABEL.to_string(), self.run_id.clone()),
            (INSTANCE_LABEL.to_string(), self.instance_id.clone()),
        ]);
        let host_config = HostConfig {
            network_mode: Some(if self.network { "bridge" } else { "none" }.to_string()),
            memory: Some(self.memory_bytes),
            nano_cpus: Some(self.nano_cpus),
            pids_limit: Some(self.pids_limit),
            // Our own pid 1 (see `IDLE_LOOP`) reaps orphans, so no tini.
            init: Some(false),
            // A container that outlives its deadline removes itself.
            auto_remove: Some(self.deadline.is_some()),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            labels: Some(labels),
            working_dir: Some(REPO_ROOT.to_string()),
            // Both set explicitly, so neither the image's ENTRYPOINT nor its CMD leaks in.
            entrypoint: Some(vec!["/bin/sh".to_string()]),
            cmd: Some(self.command()),
            env: Some(self.env.clone()),
            tty: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

/// The container's pid 1 until removal. As pid 1 it cannot be killed from inside (a model's
/// `kill -9 -1` used to kill `sleep infinity` under tini and with it the container); a
/// killed sleep is simply restarted; and its `wait` reaps every orphan, so killed fork
/// bombs do not stay behind as zombies holding the pids limit.
const IDLE_LOOP: &str = "trap '' HUP INT TERM; while :; do sleep 86400 & wait; done";

/// [`IDLE_LOOP`] that exits `deadline` after the start. An image without `date` idles
/// forever, as without a deadline.
fn idle_until(deadline: Duration) -> String {
    let secs = deadline.as_secs().max(1);
    format!(
        "if command -v date >/dev/null 2>&1; then trap '' HUP INT TERM; \
         end=$(( $(date +%s) + {secs} )); \
         while now=$(date +%s); [ \"$now\" -lt \"$end\" ]; do sleep $(( end - now )) & wait; done; \
         else {IDLE_LOOP}; fi"
    )
}

/// The result of a one-shot exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// None when the command was killed at its timeout.
    pub exit_code: Option<i64>,
    /// stdout and stderr merged in the order they were written.
    pub output: String,
    pub timed_out: bool,
    pub duration: Duration,
}

/// A started container. It is removed when dropped unless [`Container::keep`] was called.
#[derive(Debug)]
pub struct Container {
    id: String,
    docker: Docker,
    armed: bool,
    repo_hygiene: bool,
    disk_limit: Option<u64>,
}

impl Container {
    /// Creates and starts a container that idles (see `IDLE_LOOP`) until removed.
    pub async fn start(docker: &Docker, config: &ContainerConfig) -> Result<Container, EnvError> {
        let created = create_uncancellable(docker, config)
            .await
            .map_err(EnvError::docker(format!(
                "creating a container from image {}",
                config.image
            )))?;
        // From here on, Drop removes the container if starting fails.
        let container = Container {
            id: created.id,
            docker: docker.clone(),
            armed: true,
            repo_hygiene: config.repo_hygiene,
            disk_limit: config.disk_limit_bytes,
        };
        docker
            .start_container(&container.id, None)
            .await
            .map_err(EnvError::docker(format!(
                "starting a container from image {}",
                config.image
            )))?;
        Ok(container)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Whether the repo hygiene was started with the container ([`ContainerConfig::repo_hygiene`]).
    pub fn cleans_repo_at_start(&self) -> bool {
        self.repo_hygiene
    }

    /// The bound on the writable layer ([`ContainerConfig::disk_limit_bytes`]).
    pub fn disk_limit(&self) -> Option<u64> {
        self.disk_limit
    }

    /// Runs `bash -c script` once. Output merges stdout and stderr in order. At the timeout,
    /// the script and everything it started are killed and `timed_out` is set.
    pub async fn exec(&self, script: &str, timeout: Duration) -> Result<ExecOutput, EnvError> {
        let started = Instant::now();
        // The first line is the exec's pid (its session id), needed to kill it on timeout.
        let wrapped = format!("builtin printf '%d\\n' \"$$\"\nexec 2>&1\n{script}");
        let (exec_id, mut stream) = self.start_exec(vec!["bash", "-c", &wrapped]).await?;
        let mut reader = ExecReader::new();
        let deadline = tokio::time::Instant::from_std(started + timeout);
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(frame)) => reader.push(&frame.into_bytes()),
                    Some(Err(cause)) => return Err(EnvError::Docker { action: "reading exec output".into(), cause }),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    self.kill_session(reader.pid).await;
                    return Ok(drain_after_kill(stream, reader, started).await);
                }
            }
        }
        let exit_code = self.exec_exit_code(&exec_id).await?;
        let (output, _) = reader.output.into_text();
        Ok(ExecOutput {
            exit_code,
            output,
            timed_out: false,
            duration: started.elapsed(),
        })
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, EnvError> {
        let inspect = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(EnvError::docker("reading an exec's exit code"))?;
        Ok(inspect.exit_code)
    }

    /// Creates and starts an attached exec (stdout and stderr, no stdin, no TTY).
    async fn start_exec(&self, cmd: Vec<&str>) -> Result<(String, ExecStream), EnvError> {
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd),
            ..Default::default()
        };
        let action = || format!("running a command in container {}", short(&self.id));
        let (id, _, output) = attach_exec(&self.docker, &self.id, options, action).await?;
        Ok((id, output))
    }

    /// Kills every process of session `sid` through a separate exec. Best effort: if even
    /// that exec cannot start (e.g. the pids limit is used up), the caller still returns.
    pub(crate) async fn kill_session(&self, sid: Option<i64>) {
        let Some(sid) = sid else { return };
        let script = kill_session_script(sid);
        let Ok((_, mut stream)) = self.start_exec(vec!["bash", "-c", &script]).await else {
            return;
        };
        let wait = async { while stream.next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
    }

    /// Stops and deletes the container now.
    pub async fn remove(mut self) -> Result<(), EnvError> {
        self.armed = false;
        live().remove(&self.id);
        force_remove(&self.docker, &self.id).await
    }

    /// Disarms automatic removal (for `repro --keep`) and returns the container id.
    pub fn keep(mut self) -> String {
        self.armed = false;
        live().remove(&self.id);
        std::mem::take(&mut self.id)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.armed || !live().remove(&self.id) {
            return;
        }
        // Drop may run inside a current-thread runtime that we must not block on, so remove
        // from a helper thread with its own runtime and its own client, and wait for it: the
        // container must be gone when drop returns.
        let id = std::mem::take(&mut self.id);
        let handle = std::thread::spawn(move || remove_blocking(&id));
        if let Ok(Err(err)) = handle.join() {
            tracing::warn!("{err}");
        }
    }
}

fn remove_blocking(id: &str) -> Result<(), EnvError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EnvError::io("starting a runtime to remove a container"))?;
    runtime.block_on(async {
        let docker = crate::connect().await?;
        force_remove(&docker, id).await
    })
}

/// What an attached exec writes (stdout and stderr frames).
pub(crate) type ExecStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;
/// An attached exec's stdin.
pub(crate) type ExecInput = std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// Creates and starts an exec with `options` in the container, attached: its id, stdin and
/// output. Errors name `action()`, the daemon's detaching included.
pub(crate) async fn attach_exec<T>(
    docker: &Docker,
    container_id: &str,
    options: CreateExecOptions<T>,
    action: impl Fn() -> String,
) -> Result<(String, ExecInput, ExecStream), EnvError>
where
    T: Into<String> + serde::Serialize,
{
    let created = docker
        .create_exec(container_id, options)
        .await
        .map_err(EnvError::docker(action()))?;
    match docker.start_exec(&created.id, None).await {
        Ok(StartExecResults::Attached { output, input }) => Ok((created.id, input, output)),
        Ok(StartExecResults::Detached) => Err(EnvError::CommandFailed {
            what: action(),
            detail: "the daemon detached the exec".into(),
        }),
        Err(cause) => Err(EnvError::Docker {
            action: action(),
            cause,
        }),
    }
}

/// After a timeout kill: collect what is still in flight, for at most [`DRAIN_GRACE`].
async fn drain_after_kill(
    mut stream: ExecStream,
    mut reader: ExecReader,
    started: Instant,
) -> ExecOutput {
    let grace = tokio::time::sleep(DRAIN_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(frame)) => reader.push(&frame.into_bytes()),
                _ => break,
            },
            _ = &mut grace => break,
        }
    }
    let (output, _) = reader.output.into_text();
    ExecOutput {
        exit_code: None,
        output,
        timed_out: true,
        duration: started.elapsed(),
    }
}

/// Splits the pid line off the front of a one-shot exec's output.
struct ExecReader {
    pid: Option<i64>,
    pid_line: Vec<u8>,
    output: Capped,
}

impl ExecReader {
    fn new() -> Self {
        ExecReader {
            pid: None,
            pid_line: Vec::new(),
            output: Capped::new(EXEC_OUTPUT_LIMIT),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.pid.is_some() {
            return self.output.push(bytes);
        }
        let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
            return self.pid_line.extend_from_slice(bytes);
        };
        self.pid_line.extend_from_slice(&bytes[..newline]);
        self.pid = String::from_utf8_lossy(&self.pid_line).trim().parse().ok();
        self.pid.get_or_insert(0);
        self.output.push(&bytes[newline + 1..]);
    }
}

/// The first 12 characters of a container id, as `docker ps` shows it.
pub(crate) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

async fn force_remove(docker: &Docker, id: &str) -> Result<(), EnvError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if crate::error::is_not_found(&err) => Ok(()),
        // 409: removal already in progress (e.g. a concurrent `clean`).
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(cause) => Err(EnvError::Docker {
            action: format!("removing container {}", short(id)),
            cause,
        }),
    }
}

/// Removes every container created by this process that is still owned (the Ctrl-C path).
/// Errors are logged, not returned: this runs while shutting down.
pub async fn remove_all_live() {
    // Creations under way finish first (at most 30 s), so what they make is removed too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while CREATING.load(std::sync::atomic::Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<String> = std::mem::take(&mut *live()).into_iter().collect();
    if ids.is_empty() {
        return;
    }
    let docker = match crate::connect().await {
        Ok(docker) => docker,
        Err(err) => return tracing::warn!("{err}"),
    };
    let removals = ids.iter().map(|id| force_remove(&docker, id));
    for result in futures_util::future::join_all(removals).await {
        if let Err(err) = result {
            tracing::warn!("{err}");
        }
    }
}

/// Removes all containers carrying the run label (of run `run_id`, or of any run) and
/// returns how many were removed.
pub async fn remove_labelled(docker: &Docker, run_id: Option<&str>) -> Result<usize, EnvError> {
    let label = match run_id {
        Some(run) => format!("{RUN_LABEL}={run}"),
        None => RUN_LABEL.to_string(),
    };
    let filters = HashMap::from([("label".to_string(), vec![label])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let found = docker
        .list_containers(Some(options))
        .await
        .map_err(EnvError::docker("listing labelled containers"))?;
    let ids: Vec<String> = found.into_iter().filter_map(|c| c.id).collect();
    for id in &ids {
        live().remove(id);
        force_remove(docker, id).await?;
    }
    Ok(ids.len())
}

/// [`remove_labelled`] until none has appeared for `quiet`: after an interruption the daemon
/// may still finish a create that was cut short, seconds later, so one pass can miss it.
/// Gives up waiting after ten quiet periods. Returns how many were removed in all.
pub async fn remove_labelled_settled(
    docker: &Docker,
    run_id: &str,
    quiet: Duration,
) -> Result<usize, EnvError> {
    let mut removed = remove_labelled(docker, Some(run_id)).await?;
    let step = quiet / 4;
    let mut calm = Duration::ZERO;
    let deadline = Instant::now() + quiet * 10;
    while calm < quiet && Instant::now() < deadline {
        tokio::time::sleep(step).await;
        let found = remove_labelled(docker, Some(run_id)).await?;
        removed += found;
        calm = if found == 0 {
            calm + step
        } else {
            Duration::ZERO
        };
    }
    Ok(removed)
}
