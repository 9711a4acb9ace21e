//! The persistent shell session: one long-lived bash per container, fed over an attached exec.
//!
//! Protocol: each command goes to bash as one line, `eval $'<command>' </dev/null` followed by
//! a `printf` of a random sentinel and `$?`. We read the merged stdout+stderr stream up to the
//! sentinel, so a round trip costs one write and one read (well under a millisecond), and
//! background jobs that keep the pipe open do not block us. The command runs in the shell
//! itself, so `cd`, variables and functions persist; its stdin is /dev/null, so REPLs, pagers
//! and editors get EOF instead of waiting.
//!
//! Timeouts: a second bash (the "warden") is started next to the session's bash and kept idle.
//! On a timeout it kills every process in the session's process session except bash itself,
//! and every process that left it with `setsid` but still carries the session's marker
//! variable ([`SESSION_MARK_VAR`]), using builtins only (see `killer.rs`), so it works even
//! when a fork bomb has used up the pids limit. If bash does not come back, or dies (`exit`, `kill -9 $$`), a fresh one is started and
//! the result says `restarted`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::container::{attach_exec, short};
use crate::error::{ShellFailure, WardenError};
use crate::killer::KILLER_FN;
use crate::output::Capped;
use crate::{Container, EnvError, CONDA_ACTIVATE, CONDA_ENV, REPO_ROOT};

/// After the warden killed a command (at its timeout, or for printing too much), how long
/// the session's bash gets to print its sentinel before the session counts as hung and is
/// restarted. Not the one-shot exec's `DRAIN_GRACE` (container.rs): here bash itself
/// survives the kill and answers within milliseconds once its child is gone, and the model
/// waits on this after every timed-out command, so it is kept short.
const SENTINEL_GRACE: Duration = Duration::from_millis(1500);
/// While a command runs, how often we check that bash is still alive (a dead bash whose
/// background jobs still hold the pipe open would otherwise look like a long command).
const ALIVE_POLL: Duration = Duration::from_secs(1);
/// Budget for starting bash and for the session's start-up script.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Budget for one warden request (a kill of even a full pids limit takes well under this).
const WARDEN_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the disk watchdog measures the container's writable layer (see [`DiskWatch`]) at
/// most. Docker walks the container's whole file tree (the image's files included) to
/// answer, which takes seconds on a large image or a busy daemon, so the pause after a
/// measure is also at least [`DISK_POLL_FACTOR`] times what it took: the watchdog keeps the
/// daemon busy for at most a quarter of the time. A writer overshoots the limit by what it
/// writes in one pause and two measures.
const DISK_POLL: Duration = Duration::from_secs(1);
const DISK_POLL_FACTOR: u32 = 3;

/// Put before a command's output when its predecessors' background processes were killed.
const RUNAWAY_NOTE: &str =
    "[cwm-bench: background processes were killed: they had used up the container's process limit]\n";

/// The variable that marks every process a session started, even in a new process session.
pub const SESSION_MARK_VAR: &str = "CWM_BENCH_SESSION";

/// Non-interactive defaults: pagers print, editors return at once, Python does not buffer.
const SESSION_ENV: &[(&str, &str)] = &[
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("MANPAGER", "cat"),
    ("SYSTEMD_PAGER", "cat"),
    ("TERM", "dumb"),
    ("EDITOR", "true"),
    ("VISUAL", "true"),
    ("GIT_EDITOR", "true"),
    ("PYTHONUNBUFFERED", "1"),
    ("PIP_PROGRESS_BAR", "off"),
    ("DEBIAN_FRONTEND", "noninteractive"),
];

/// Runs once in each fresh bash: the SWE-bench environment, then the repo at [`REPO_ROOT`].
static SESSION_INIT: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"if [ -f {CONDA_ACTIVATE} ]; then
    source {CONDA_ACTIVATE} && conda activate {CONDA_ENV}
fi
cd {REPO_ROOT} 2>/dev/null || cd /
# Trust {REPO_ROOT} in ~/.gitconfig, as `git config --global --add safe.directory` would, with
# builtins only: three git processes here cost ~20 ms of every session start.
__cwm_trusted=0
if [ -r "$HOME/.gitconfig" ]; then
    while IFS= read -r __cwm_line; do
        case "$__cwm_line" in *"directory = {REPO_ROOT}") __cwm_trusted=1 ;; esac
    done < "$HOME/.gitconfig"
fi
[ "$__cwm_trusted" = 1 ] || builtin printf '[safe]\n\tdirectory = {REPO_ROOT}\n' >> "$HOME/.gitconfig"
unset __cwm_trusted __cwm_line
# Full-screen editors wait for keys that never come; say so at once instead of at the timeout.
for editor in vi vim view nano emacs; do
    eval "$editor() {{ echo \"$editor: no terminal in this session; edit files with the edit tool, sed or python\" >&2; return 1; }}"
done
"#
    )
});

/// How a session is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellConfig {
    /// Output kept per command, head and tail; the cut is marked `[...]`.
    pub output_limit_bytes: usize,
    /// Extra environment variables for the session.
    pub env: Vec<(String, String)>,
    /// A command that prints more than this is killed at once instead of at its timeout
    /// (its result is `truncated`, neither finished nor timed out).
    pub kill_after_bytes: u64,
}

impl Default for ShellConfig {
    /// CWM's output limit ([`cwm_protocol::Budgets::default`]'s `output_limit_bytes`), no
    /// extra environment variables, and a 64 MiB kill threshold.
    fn default() -> Self {
        ShellConfig {
            output_limit_bytes: cwm_protocol::Budgets::default().output_limit_bytes,
            env: Vec::new(),
            kill_after_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The result of one command in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutput {
    /// None when the command did not finish by itself (timeout, output kill, shell died).
    pub exit_code: Option<i32>,
    pub output: String,
    pub duration: Duration,
    pub timed_out: bool,
    /// Output was cut to the limit (the text holds a `[...]` marker).
    pub truncated: bool,
    /// The shell died or hung and a fresh one was started: cwd, variables and functions are
    /// back to their start-up state.
    pub restarted: bool,
    /// Since the previous command, the container's files passed its disk limit and the
    /// session's processes (this command, background jobs) were killed; bash itself lives on.
    pub disk_limit: Option<DiskLimitHit>,
}

/// The container's writable layer passed [`crate::Container::disk_limit`]: the disk
/// watchdog killed every process the session had started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimitHit {
    pub limit_bytes: u64,
    /// The layer's size when the processes were killed.
    pub used_bytes: u64,
}

type OutputStream = crate::container::ExecStream;
type InputSink = crate::container::ExecInput;

/// A bash process behind an attached exec.
struct Bash {
    /// Pid inside the container; also its session id (exec processes lead a session).
    pid: i64,
    input: InputSink,
    output: OutputStream,
}

/// A persistent shell session in one container.
pub struct Shell {
    docker: Docker,
    container_id: String,
    config: ShellConfig,
    /// The sentinel is printed as `\x1e` + `token_a` + `token_b` + exit code + newline; the
    /// two halves never appear joined in the command line, so even `set -x` cannot fake it.
    token_a: String,
    token_b: String,
    /// `SESSION_MARK_VAR=<random>`: the environment entry of this session's processes.
    mark: String,
    main: Option<Bash>,
    warden: Option<Warden>,
    /// Bytes that arrived after the last sentinel (late output of background jobs).
    carry: Vec<u8>,
    /// The pid of the session's bash (0 before it starts), for the disk watchdog.
    session_pid: Arc<AtomicI64>,
    /// Running while the container has a disk limit.
    disk: Option<DiskWatch>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("container", &short(&self.container_id))
            .field("pid", &self.main.as_ref().map(|m| m.pid))
            .finish()
    }
}

/// How a command's output stream ended.
struct Ending {
    exit_code: Option<i32>,
    timed_out: bool,
    /// bash printed its sentinel and is ready for the next command.
    healthy: bool,
    /// The command was not run: processes left running had nearly used up the pids limit.
    runaway: bool,
}

impl Shell {
    /// Starts the session's bash (and its warden) in `container`.
    pub async fn open(container: &Container, config: ShellConfig) -> Result<Shell, EnvError> {
        let mut shell = Shell {
            docker: container.docker().clone(),
            container_id: container.id().to_string(),
            config,
            token_a: random_hex(),
            token_b: random_hex(),
            mark: format!("{SESSION_MARK_VAR}={}", random_hex()),
            main: None,
            warden: None,
            carry: Vec::new(),
            session_pid: Arc::new(AtomicI64::new(0)),
            disk: None,
        };
        shell.start_main().await?;
        if let Some(limit) = container.disk_limit() {
            shell.disk = Some(DiskWatch::start(
                container,
                limit,
                shell.mark.clone(),
                Arc::clone(&shell.session_pid),
            ));
        }
        Ok(shell)
    }

    /// Runs one command. Never hangs: it returns by `timeout` plus a couple of seconds.
    pub async fn run(&mut self, command: &str, timeout: Duration) -> Result<ShellOutput, EnvError> {
        let started = Instant::now();
        let mut restarted = false;
        if self.main.is_none() {
            self.restart().await?;
            restarted = true;
        }
        let mut out = Capped::new(self.config.output_limit_bytes);
        let mut ending = self
            .send_and_collect(command, true, &mut out, started + timeout, &mut restarted)
            .await?;
        if ending.runaway {
            // Background processes are eating the pids limit: kill them, say so, run again.
            let pid = self.main.as_ref().map_or(0, |m| m.pid);
            self.kill_command(pid).await;
            out.push(RUNAWAY_NOTE.as_bytes());
            ending = self
                .send_and_collect(command, false, &mut out, started + timeout, &mut restarted)
                .await?;
        }
        if !ending.healthy {
            self.restart().await?;
            restarted = true;
        }
        let (output, truncated) = out.into_text();
        Ok(ShellOutput {
            exit_code: ending.exit_code,
            output,
            duration: started.elapsed(),
            timed_out: ending.timed_out,
            truncated,
            restarted,
            disk_limit: self.disk.as_ref().and_then(DiskWatch::take_hit),
        })
    }

    async fn send_and_collect(
        &mut self,
        command: &str,
        guard: bool,
        out: &mut Capped,
        deadline: Instant,
        restarted: &mut bool,
    ) -> Result<Ending, EnvError> {
        let line = command_line(command, &self.token_a, &self.token_b, guard);
        if self.send(&line).await.is_err() {
            // bash died between commands (e.g. killed by a background job): start afresh.
            self.restart().await?;
            *restarted = true;
            self.send(&line).await?;
        }
        self.collect(out, deadline).await
    }

    /// Kills the session's bash and everything it started (in new process sessions too), and
    /// starts a fresh one.
    pub async fn restart(&mut self) -> Result<(), EnvError> {
        if let Some(old) = self.main.take() {
            // Best effort: the warden may be gone too (e.g. after `kill -9 -1`).
            let _ = self.warden_kill(old.pid, 0).await;
        }
        self.carry.clear();
        self.start_main().await
    }

    /// Id of the container the session runs in.
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    async fn start_main(&mut self) -> Result<(), EnvError> {
        let env = self.session_env();
        // Each exec costs a daemon round trip and a runc start; run the two side by side.
        let existing = self.warden.take();
        let warden = async {
            match existing {
                Some(w) => Ok(w),
                None => Warden::start(&self.docker, &self.container_id).await,
            }
        };
        let (warden, spawned) =
            tokio::join!(warden, spawn_bash(&self.docker, &self.container_id, env));
        let warden = warden.map_err(|e| self.unavailable(ShellFailure::StartingWarden(e)))?;
        self.warden = Some(warden);
        let (input, output) = spawned?;
        let mut bash = Bash {
            pid: 0,
            input,
            output,
        };
        let hello = format!(
            "exec 2>&1; builtin printf '\\036{}%s%d\\n' '{}' \"$$\"\n",
            self.token_a, self.token_b
        );
        let pid = self.handshake(&mut bash, &hello).await?;
        bash.pid = i64::from(pid);
        self.session_pid.store(bash.pid, Ordering::SeqCst);
        self.main = Some(bash);
        let init = self.run_init().await?;
        if !init.healthy {
            return Err(self.unavailable(ShellFailure::StartupUnfinished));
        }
        Ok(())
    }

    /// Sends the first line to a fresh bash and reads its pid back.
    async fn handshake(&mut self, bash: &mut Bash, hello: &str) -> Result<i32, EnvError> {
        write_line(&mut bash.input, hello)
            .await
            .map_err(|e| self.unavailable(ShellFailure::WritingToBash(e)))?;
        let mut scanner = Scanner::new(self.token());
        let mut sink = Capped::new(4096);
        let read = async {
            while let Some(Ok(frame)) = bash.output.next().await {
                if let Some(pid) = scanner.feed(&frame.into_bytes(), &mut sink) {
                    return pid.parse::<i32>().ok();
                }
            }
            None
        };
        match tokio::time::timeout(START_TIMEOUT, read).await {
            Ok(Some(pid)) => Ok(pid),
            Ok(None) => Err(self.unavailable(ShellFailure::ExitedAtStart)),
            Err(_) => Err(self.unavailable(ShellFailure::NoAnswerAtStart {
                after: START_TIMEOUT,
            })),
        }
    }

    async fn run_init(&mut self) -> Result<Ending, EnvError> {
        let line = command_line(&SESSION_INIT, &self.token_a, &self.token_b, false);
        self.send(&line).await?;
        let mut sink = Capped::new(64 * 1024);
        let ending = self
            .collect(&mut sink, Instant::now() + START_TIMEOUT)
            .await?;
        Ok(ending)
    }

    fn session_env(&self) -> Vec<String> {
        let defaults = SESSION_ENV.iter().map(|(k, v)| format!("{k}={v}"));
        let extra = self.config.env.iter().map(|(k, v)| format!("{k}={v}"));
        defaults
            .chain(extra)
            .chain(std::iter::once(self.mark.clone()))
            .collect()
    }

    async fn send(&mut self, line: &str) -> Result<(), EnvError> {
        let Some(main) = self.main.as_mut() else {
            return Err(self.unavailable(ShellFailure::NotRunning));
        };
        if let Err(err) = write_line(&mut main.input, line).await {
            self.main = None;
            return Err(self.unavailable(ShellFailure::WritingToBash(err)));
        }
        Ok(())
    }

    /// Reads the session's output up to the sentinel, enforcing the deadline and output cap.
    async fn collect(&mut self, out: &mut Capped, deadline: Instant) -> Result<Ending, EnvError> {
        let Some(mut main) = self.main.take() else {
            return Err(self.unavailable(ShellFailure::NotRunning));
        };
        let ending = self.collect_from(&mut main, out, deadline).await;
        // Put it back even when unhealthy: restart() needs its pid to kill its session.
        self.main = Some(main);
        Ok(ending)
    }

    async fn collect_from(
        &mut self,
        main: &mut Bash,
        out: &mut Capped,
        deadline: Instant,
    ) -> Ending {
        let mut scanner = Scanner::new(self.token());
        let carried = std::mem::take(&mut self.carry);
        if let Some(payload) = scanner.feed(&carried, out) {
            // Cannot happen (the sentinel of a finished command is consumed), but be exact.
            self.carry = scanner.rest;
            return finished(&payload);
        }
        let mut watch = Watch {
            deadline,
            next_check: Instant::now() + ALIVE_POLL,
            killed: None,
        };
        loop {
            let step = tokio::select! {
                frame = main.output.next() => match frame {
                    Some(Ok(frame)) => self.on_output(&frame.into_bytes(), main.pid, &mut scanner, out, &mut watch).await,
                    _ => Some(died(watch.killed.is_some_and(|k| k.timed_out))),
                },
                _ = tokio::time::sleep_until(watch.wake().into()) => self.on_timer(main.pid, &mut watch).await,
            };
            if let Some(ending) = step {
                return ending;
            }
        }
    }

    /// New output: done at the sentinel; past the output limit, kill the command.
    async fn on_output(
        &mut self,
        bytes: &[u8],
        pid: i64,
        scanner: &mut Scanner,
        out: &mut Capped,
        watch: &mut Watch,
    ) -> Option<Ending> {
        if let Some(payload) = scanner.feed(bytes, out) {
            self.carry = std::mem::take(&mut scanner.rest);
            return Some(match watch.killed {
                None => finished(&payload),
                Some(kill) => Ending {
                    exit_code: None,
                    timed_out: kill.timed_out,
                    healthy: true,
                    runaway: false,
                },
            });
        }
        if watch.killed.is_none() && out.total() > self.config.kill_after_bytes {
            if !self.kill_command(pid).await {
                return Some(died(false));
            }
            watch.killed = Some(Kill::now(false));
        }
        None
    }

    /// A timer fired: the grace after a kill ran out, the deadline came, or it is time to
    /// check that bash still lives.
    async fn on_timer(&mut self, pid: i64, watch: &mut Watch) -> Option<Ending> {
        if let Some(kill) = watch.killed {
            return Some(Ending {
                exit_code: None,
                timed_out: kill.timed_out,
                healthy: false,
                runaway: false,
            });
        }
        if Instant::now() >= watch.deadline {
            if !self.kill_command(pid).await {
                return Some(died(true));
            }
            watch.killed = Some(Kill::now(true));
            return None;
        }
        watch.next_check = Instant::now() + ALIVE_POLL;
        if !self.main_alive(pid).await {
            return Some(died(false));
        }
        None
    }

    /// Kills everything bash started; returns whether bash itself is still alive.
    async fn kill_command(&mut self, pid: i64) -> bool {
        self.warden_kill(pid, pid).await.unwrap_or(false)
    }

    async fn main_alive(&mut self, pid: i64) -> bool {
        let check = format!(
            "if builtin kill -0 {pid} 2>/dev/null; then builtin printf 'alive\\n'; else builtin printf 'dead\\n'; fi\n"
        );
        self.warden_request(&check)
            .await
            .map(|answer| answer == "alive")
            .unwrap_or(true)
    }

    async fn warden_kill(&mut self, sid: i64, spare: i64) -> Result<bool, EnvError> {
        let request = format!(
            "__cwm_kill {sid} {spare} {}; if builtin kill -0 {spare} 2>/dev/null; then builtin printf 'alive\\n'; else builtin printf 'dead\\n'; fi\n",
            self.mark
        );
        let answer = self.warden_request(&request).await?;
        Ok(spare != 0 && answer == "alive")
    }

    /// Sends one request line to the warden and reads its one-line answer, (re)starting the
    /// warden when needed.
    async fn warden_request(&mut self, request: &str) -> Result<String, EnvError> {
        self.ensure_warden().await?;
        let Some(warden) = self.warden.as_mut() else {
            return Err(self.unavailable(ShellFailure::NoWarden));
        };
        match warden.request(request).await {
            Ok(answer) => Ok(answer),
            Err(err) => {
                self.warden = None;
                Err(self.unavailable(ShellFailure::Warden(err)))
            }
        }
    }

    async fn ensure_warden(&mut self) -> Result<(), EnvError> {
        if self.warden.is_none() {
            let warden = Warden::start(&self.docker, &self.container_id)
                .await
                .map_err(|e| self.unavailable(ShellFailure::StartingWarden(e)))?;
            self.warden = Some(warden);
        }
        Ok(())
    }

    fn token(&self) -> Vec<u8> {
        let mut token = vec![0x1e];
        token.extend_from_slice(self.token_a.as_bytes());
        token.extend_from_slice(self.token_b.as_bytes());
        token
    }

    fn unavailable(&self, cause: ShellFailure) -> EnvError {
        EnvError::ShellUnavailable {
            container: short(&self.container_id).to_string(),
            cause,
        }
    }
}

/// The timers of a running command.
struct Watch {
    deadline: Instant,
    next_check: Instant,
    killed: Option<Kill>,
}

impl Watch {
    fn wake(&self) -> Instant {
        match self.killed {
            Some(kill) => kill.grace,
            None => self.deadline.min(self.next_check),
        }
    }
}

/// The command was killed (at its timeout, or for too much output); bash has until `grace`
/// to print its sentinel.
#[derive(Clone, Copy)]
struct Kill {
    timed_out: bool,
    grace: Instant,
}

impl Kill {
    fn now(timed_out: bool) -> Kill {
        Kill {
            timed_out,
            grace: Instant::now() + SENTINEL_GRACE,
        }
    }
}

/// The sentinel's payload is the exit status, or `R` when the pids guard refused to run.
fn finished(payload: &str) -> Ending {
    Ending {
        exit_code: payload.parse().ok(),
        timed_out: false,
        healthy: true,
        runaway: payload == "R",
    }
}

fn died(timed_out: bool) -> Ending {
    Ending {
        exit_code: None,
        timed_out,
        healthy: false,
        runaway: false,
    }
}

/// The disk watchdog: a task that measures the container's writable layer (Docker's
/// `SizeRw`) every [`DISK_POLL`] or so, during commands and between them alike, and once it is
/// past the limit and still growing kills every process of the session but bash itself, in
/// a one-shot exec (background writers included). The next [`ShellOutput`] reports it. The
/// bound is the layer's size, so it holds on any storage driver (Docker's own
/// `--storage-opt size` works only on some).
struct DiskWatch {
    hit: Arc<Mutex<Option<DiskLimitHit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DiskWatch {
    fn start(container: &Container, limit: u64, mark: String, pid: Arc<AtomicI64>) -> DiskWatch {
        let hit = Arc::new(Mutex::new(None));
        let task = tokio::spawn(watch_disk(
            container.docker().clone(),
            container.id().to_string(),
            limit,
            mark,
            pid,
            Arc::clone(&hit),
        ));
        DiskWatch { hit, task }
    }

    fn take_hit(&self) -> Option<DiskLimitHit> {
        self.hit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl Drop for DiskWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_disk(
    docker: Docker,
    container_id: String,
    limit: u64,
    mark: String,
    pid: Arc<AtomicI64>,
    hit: Arc<Mutex<Option<DiskLimitHit>>>,
) {
    // The size after the last kill: files left behind do not trigger another kill, more do.
    // It is the first size measured once the kill is done (a measurement taken before it
    // misses what the killed writers wrote meanwhile, and would make the next look like
    // growth, killing the model's next command).
    let mut killed_at: Option<u64> = None;
    let mut after_kill = false;
    let options = bollard::query_parameters::InspectContainerOptionsBuilder::new()
        .size(true)
        .build();
    let mut pause = DISK_POLL;
    loop {
        tokio::time::sleep(pause).await;
        let measuring = Instant::now();
        let measured = docker
            .inspect_container(&container_id, Some(options.clone()))
            .await;
        pause = DISK_POLL.max(measuring.elapsed() * DISK_POLL_FACTOR);
        let used = match measured {
            Ok(inspect) => inspect.size_rw.unwrap_or(0).max(0) as u64,
            // The container is gone: nothing left to watch.
            Err(err) if crate::error::is_not_found(&err) => return,
            Err(_) => continue,
        };
        if used <= limit {
            killed_at = None;
            after_kill = false;
            continue;
        }
        if after_kill {
            killed_at = Some(used);
            after_kill = false;
            continue;
        }
        if killed_at.is_some_and(|at| used <= at) {
            continue;
        }
        let sid = pid.load(Ordering::SeqCst);
        if sid <= 0 {
            continue;
        }
        // Recorded before the kill, so the command it ends already reports it.
        *hit.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(DiskLimitHit {
            limit_bytes: limit,
            used_bytes: used,
        });
        killed_at = Some(used);
        let script = format!("{KILLER_FN}__cwm_kill {sid} {sid} {mark}\n");
        run_script(&docker, &container_id, &script).await;
        after_kill = true;
        tracing::warn!(
            "container {}: its files take {used} bytes, past the disk limit of {limit}; killed the session's processes",
            short(&container_id)
        );
    }
}

/// Runs `bash -c script` in the container and waits for it (at most [`WARDEN_TIMEOUT`]);
/// best effort.
async fn run_script(docker: &Docker, container_id: &str, script: &str) {
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(vec!["bash", "-c", script]),
        ..Default::default()
    };
    let Ok(created) = docker.create_exec(container_id, options).await else {
        return;
    };
    if let Ok(StartExecResults::Attached { mut output, .. }) =
        docker.start_exec(&created.id, None).await
    {
        let drain = async { while output.next().await.is_some() {} };
        let _ = tokio::time::timeout(WARDEN_TIMEOUT, drain).await;
    }
}

/// The idle helper bash that kills on behalf of the session (see the module docs).
struct Warden {
    input: InputSink,
    output: OutputStream,
    pending: Vec<u8>,
}

impl Warden {
    async fn start(docker: &Docker, container_id: &str) -> Result<Warden, WardenError> {
        let (input, output) = spawn_bash(docker, container_id, Vec::new())
            .await
            .map_err(|e| WardenError::Spawn(Box::new(e)))?;
        let mut warden = Warden {
            input,
            output,
            pending: Vec::new(),
        };
        let setup = format!("{KILLER_FN}builtin printf 'ready\\n'\n");
        match warden.request(&setup).await?.as_str() {
            "ready" => Ok(warden),
            other => Err(WardenError::UnexpectedAnswer(other.to_string())),
        }
    }

    async fn request(&mut self, line: &str) -> Result<String, WardenError> {
        write_line(&mut self.input, line)
            .await
            .map_err(WardenError::Writing)?;
        match tokio::time::timeout(WARDEN_TIMEOUT, self.read_line()).await {
            Ok(result) => result,
            Err(_) => Err(WardenError::NoAnswer {
                after: WARDEN_TIMEOUT,
            }),
        }
    }

    async fn read_line(&mut self) -> Result<String, WardenError> {
        loop {
            if let Some(newline) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=newline).collect();
                return Ok(String::from_utf8_lossy(&line).trim().to_string());
            }
            match self.output.next().await {
                Some(Ok(LogOutput::StdOut { message })) => self.pending.extend_from_slice(&message),
                Some(Ok(_)) => {} // stderr: diagnostics of kill/read races, not answers
                Some(Err(e)) => return Err(WardenError::Reading(e)),
                None => return Err(WardenError::Exited),
            }
        }
    }
}

/// Finds the sentinel in a stream, passing everything before it to the output buffer.
/// Memory stays bounded: only a token's length of unmatched bytes is held back.
struct Scanner {
    token: Vec<u8>,
    buf: Vec<u8>,
    found: bool,
    /// Bytes after the sentinel line.
    rest: Vec<u8>,
}

impl Scanner {
    fn new(token: Vec<u8>) -> Self {
        Scanner {
            token,
            buf: Vec::new(),
            found: false,
            rest: Vec::new(),
        }
    }

    /// Feeds bytes; returns what follows the sentinel once its line is complete.
    fn feed(&mut self, bytes: &[u8], out: &mut Capped) -> Option<String> {
        self.buf.extend_from_slice(bytes);
        if !self.found {
            match find(&self.buf, &self.token) {
                Some(pos) => {
                    out.push(&self.buf[..pos]);
                    self.buf.drain(..pos);
                    self.found = true;
                }
                None => {
                    let keep = self.held_back();
                    out.push(&self.buf[..self.buf.len() - keep]);
                    self.buf.drain(..self.buf.len() - keep);
                    return None;
                }
            }
        }
        let after = &self.buf[self.token.len()..];
        let newline = after.iter().position(|&b| b == b'\n')?;
        let payload = String::from_utf8_lossy(&after[..newline])
            .trim()
            .to_string();
        self.rest = after[newline + 1..].to_vec();
        Some(payload)
    }

    /// How many trailing bytes could be the start of a sentinel split across reads.
    fn held_back(&self) -> usize {
        let max = (self.token.len() - 1).min(self.buf.len());
        let tail = &self.buf[self.buf.len() - max..];
        match tail.iter().rposition(|&b| b == self.token[0]) {
            Some(pos) if self.token.starts_with(&tail[pos..]) => max - pos,
            _ => 0,
        }
    }
}

/// Position of `token` in `hay`; jumps between occurrences of its first byte (a control
/// character, rare in real output), so scanning `yes` output stays cheap.
fn find(hay: &[u8], token: &[u8]) -> Option<usize> {
    let first = token[0];
    let mut start = 0;
    while let Some(offset) = hay[start..].iter().position(|&b| b == first) {
        let pos = start + offset;
        if hay[pos..].starts_with(token) {
            return Some(pos);
        }
        start = pos + 1;
    }
    None
}

/// The line bash reads for one command: the command as an ANSI-C quoted string given to
/// `eval` (so a syntax error cannot swallow the sentinel), stdin from /dev/null, then the
/// sentinel with the exit status.
///
/// With `guard`, the command only runs while the container's pids cgroup is below 90% of its
/// limit; otherwise the sentinel says `R` (runaway), e.g. when a fork bomb was left running
/// in the background. The guard reads two cgroup files with builtins (v2 path, then v1), which
/// costs microseconds, and is safe under the user's `set -eu`.
fn command_line(command: &str, token_a: &str, token_b: &str, guard: bool) -> String {
    let run = format!(
        "eval {} </dev/null; builtin printf '\\036{token_a}%s%s\\n' '{token_b}' \"$?\"",
        ansi_c_quote(command)
    );
    if !guard {
        return format!("{run}\n");
    }
    // No `{ ...; }` group here: after an eval syntax error inside the if below, bash 5.2
    // fails to parse a next line that starts with `{`. `2>/dev/null` goes first so that it
    // also silences the failed `<` (cgroup v1 has no v2 path and vice versa).
    let read = "read -r __cwm_p 2>/dev/null </sys/fs/cgroup/pids.current \
                || read -r __cwm_p 2>/dev/null </sys/fs/cgroup/pids/pids.current || __cwm_p=0; \
                read -r __cwm_m 2>/dev/null </sys/fs/cgroup/pids.max \
                || read -r __cwm_m 2>/dev/null </sys/fs/cgroup/pids/pids.max || __cwm_m=max";
    let full = "[[ ${__cwm_m:-max} != max && ${__cwm_p:-0} -ge ${__cwm_m:-max}*9/10 ]]";
    format!(
        "{read}; if {full}; then builtin printf '\\036{token_a}%sR\\n' '{token_b}'; else {run}; fi\n"
    )
}

/// `$'...'` quoting that keeps the whole command on one line and any bytes intact.
fn ansi_c_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 3);
    quoted.push_str("$'");
    for byte in text.bytes() {
        match byte {
            0 => {} // bash strings cannot hold NUL
            b' '..=b'~' if byte != b'\'' && byte != b'\\' => quoted.push(byte as char),
            _ => quoted.push_str(&format!("\\x{byte:02x}")),
        }
    }
    quoted.push('\'');
    quoted
}

async fn write_line(input: &mut InputSink, line: &str) -> std::io::Result<()> {
    input.write_all(line.as_bytes()).await?;
    input.flush().await
}

/// Starts `bash --noprofile --norc` with stdin, stdout and stderr attached.
async fn spawn_bash(
    docker: &Docker,
    container_id: &str,
    env: Vec<String>,
) -> Result<(InputSink, OutputStream), EnvError> {
    let options = CreateExecOptions {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        env: Some(env),
        cmd: Some(vec![
            "bash".to_string(),
            "--noprofile".to_string(),
            "--norc".to_string(),
        ]),
        ..Default::default()
    };
    let action = || format!("starting bash in container {}", short(container_id));
    let (_, input, output) = attach_exec(docker, container_id, options, action).await?;
    Ok((input, output))
}

/// 64 random bits as hex, from the standard library's per-process random hasher keys.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_one_line_and_all_bytes() {
        assert_eq!(ansi_c_quote("echo 'a'\n"), "$'echo \\x27a\\x27\\x0a'");
        assert_eq!(ansi_c_quote("é"), "$'\\xc3\\xa9'");
    }

    #[test]
    fn scanner_finds_a_sentinel_split_across_reads() {
        let token = b"\x1eAB".to_vec();
        let mut scanner = Scanner::new(token);
        let mut out = Capped::new(100);
        assert_eq!(scanner.feed(b"hello\x1e", &mut out), None);
        assert_eq!(scanner.feed(b"A", &mut out), None);
        assert_eq!(scanner.feed(b"B12", &mut out), None);
        assert_eq!(scanner.feed(b"7\nlate", &mut out).as_deref(), Some("127"));
        assert_eq!(scanner.rest, b"late");
        assert_eq!(out.into_text().0, "hello");
    }

    #[test]
    fn scanner_passes_lookalikes_through() {
        let mut scanner = Scanner::new(b"\x1eAB".to_vec());
        let mut out = Capped::new(100);
        assert_eq!(scanner.feed(b"x\x1eAy\x1e", &mut out), None);
        assert_eq!(scanner.feed(b"AB0\n", &mut out).as_deref(), Some("0"));
        assert_eq!(out.into_text().0, "x\x1eAy");
    }
}
