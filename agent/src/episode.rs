//! The episode loop: ask the model, run its one tool call, show it the observation, repeat
//! until it finishes after submitting or a budget runs out.

use std::time::{Duration, Instant};

use cwm_datasets::Instance;
use cwm_env::{Container, REPO_ROOT};
use cwm_tools::{
    clean_patch, execute, format_observation, observation_body, parse_reply, split_thinking,
    tail_within, CleanPatch, DockerWorkspace, EnvFailure, FormatError, LeftOutReason, Profile,
    Remaining, ToolCall, ToolConfig, ToolName, ToolOutcome, Workspace,
};
use serde::{Deserialize, Serialize};

pub use crate::error::AgentError;
use crate::policy::{ModelReply, Policy};
use crate::prompt::{system_prompt, user_prompt, PromptLimits};
use cwm_protocol::chat::{render_cwm_message, render_cwm_prompt};
use cwm_protocol::message::Message;
use cwm_protocol::trajectory::{now, Footer, Header, Record, TrajectorySink, Turn};
use cwm_protocol::trajectory::{HARNESS_VERSION, SCHEMA_VERSION};
use cwm_protocol::{Budgets, ExitStatus, OnBudget};

/// Episode settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeConfig {
    pub budgets: Budgets,
    /// What a budget that runs out leaves as the patch (default: nothing, as CWM).
    pub on_budget: OnBudget,
    /// Strip the repo's history beyond the base commit first (`cwm_env::prepare_repo`).
    pub prepare_repo: bool,
    /// Extra environment variables for the bash session.
    pub shell_env: Vec<(String, String)>,
    /// The tools the model may call: all five by default; [`ToolName::CWM`] is CWM's set. A
    /// call to any other tool is an unknown-tool format error.
    pub tools: Vec<ToolName>,
    /// Every text the model sees.
    #[serde(skip)]
    pub profile: Profile,
}

impl Default for EpisodeConfig {
    fn default() -> Self {
        Self {
            budgets: Budgets::default(),
            on_budget: OnBudget::Fail,
            prepare_repo: true,
            shell_env: Vec::new(),
            tools: ToolName::ALL.to_vec(),
            profile: Profile::builtin(),
        }
    }
}

/// Gets each record as it happens, for live progress (`repro` streams these).
pub trait EpisodeObserver: Send {
    fn on_start(&mut self, _header: &Header) {}
    fn on_turn(&mut self, _turn: &Turn) {}
    fn on_finish(&mut self, _footer: &Footer) {}
}

/// Observes nothing.
#[derive(Debug, Default)]
pub struct NoopObserver;
impl EpisodeObserver for NoopObserver {}

/// Everything one episode needs.
pub struct EpisodeContext<'a> {
    /// A started container of the instance's image.
    pub container: &'a Container,
    pub instance: &'a Instance,
    pub policy: &'a mut dyn Policy,
    pub config: &'a EpisodeConfig,
    pub recorder: &'a mut dyn TrajectorySink,
    pub observer: &'a mut dyn EpisodeObserver,
}

/// What an episode produced: the trajectory's footer record.
pub type EpisodeOutcome = Footer;

/// Runs one episode in `ctx.container`: cleans the repo's history, opens the bash session,
/// and loops until the model finishes or a budget runs out. The trajectory goes to
/// `ctx.recorder` record by record.
pub async fn run_episode(ctx: EpisodeContext<'_>) -> Result<EpisodeOutcome, AgentError> {
    let EpisodeContext {
        container,
        instance,
        policy,
        config,
        recorder,
        observer,
    } = ctx;
    let mut workspace: DockerWorkspace<'_>;
    let ws: Result<&mut dyn Workspace, EnvFailure> = match open_workspace(container, config).await {
        Ok(opened) => {
            workspace = opened;
            Ok(&mut workspace)
        }
        Err(failure) => Err(failure),
    };
    let mut episode = Episode::new(instance, policy, config, recorder, observer);
    episode.run(ws).await
}

async fn open_workspace<'c>(
    container: &'c Container,
    config: &EpisodeConfig,
) -> Result<DockerWorkspace<'c>, EnvFailure> {
    let open = DockerWorkspace::open(
        container,
        config.budgets.output_limit_bytes,
        config.shell_env.clone(),
    );
    if !config.prepare_repo || container.cleans_repo_at_start() {
        // A container that cleans its repo as it starts is waited for by the workspace,
        // before its first use: the hygiene overlaps the session start and the first call.
        return open.await;
    }
    // No command reaches the session before both are done, so they can overlap.
    let hygiene = async {
        cwm_env::prepare_repo(container)
            .await
            .map_err(|e| EnvFailure::new("preparing the repository", e))
    };
    let (hygiene, workspace) = tokio::join!(hygiene, open);
    hygiene?;
    workspace
}

/// The state of one running episode.
pub(crate) struct Episode<'a> {
    instance: &'a Instance,
    policy: &'a mut dyn Policy,
    config: &'a EpisodeConfig,
    recorder: &'a mut dyn TrajectorySink,
    observer: &'a mut dyn EpisodeObserver,
    messages: Vec<Message>,
    turns: u64,
    format_errors: u64,
    format_errors_in_row: u64,
    context: usize,
    tokens_in: u64,
    tokens_out: u64,
    model_time: Duration,
    tool_time: Duration,
    submission: Option<String>,
    error: Option<String>,
    /// The model_error came from the serving infrastructure (`PolicyError::is_infrastructure`).
    infrastructure: bool,
    started: Instant,
    /// What the tools run with, built once per episode.
    tool_config: ToolConfig,
}

/// What a turn decided.
enum Next {
    Continue,
    Stop(ExitStatus),
}

impl<'a> Episode<'a> {
    pub(crate) fn new(
        instance: &'a Instance,
        policy: &'a mut dyn Policy,
        config: &'a EpisodeConfig,
        recorder: &'a mut dyn TrajectorySink,
        observer: &'a mut dyn EpisodeObserver,
    ) -> Self {
        let b = &config.budgets;
        let limits = PromptLimits {
            max_turns: b.max_turns,
            context_tokens: b.context_tokens,
            command_timeout_secs: b.command_timeout_secs,
        };
        let user = user_prompt(&config.profile, &instance.problem_statement);
        let user = cut_user_prompt(&config.profile, user, b.max_prompt_tokens, &*policy);
        let messages = vec![
            Message::system(system_prompt(&config.profile, limits, &config.tools)),
            Message::user(user),
        ];
        let context = policy.count_tokens(&render_cwm_prompt(&messages));
        Self {
            instance,
            policy,
            config,
            recorder,
            observer,
            messages,
            context,
            turns: 0,
            format_errors: 0,
            format_errors_in_row: 0,
            tokens_in: 0,
            tokens_out: 0,
            model_time: Duration::ZERO,
            tool_time: Duration::ZERO,
            submission: None,
            error: None,
            infrastructure: false,
            started: Instant::now(),
            tool_config: ToolConfig {
                command_timeout: Duration::from_secs(b.command_timeout_secs),
                test_runner: config
                    .tools
                    .contains(&ToolName::Test)
                    .then(|| cwm_parsers::TestRunner::for_instance(instance))
                    .flatten(),
                profile: config.profile.clone(),
            },
        }
    }

    /// The loop. `ws` is the container, or why it could not be set up (then the episode
    /// ends at once with `env_error`, the failure's text in the footer).
    pub(crate) async fn run(
        &mut self,
        ws: Result<&mut dyn Workspace, EnvFailure>,
    ) -> Result<EpisodeOutcome, AgentError> {
        self.write_header()?;
        let ws = match ws {
            Ok(ws) => ws,
            Err(e) => {
                return self
                    .finish(None, ExitStatus::EnvError, Some(e.to_string()))
                    .await
            }
        };
        if let Err(e) = self.policy.start_episode(self.instance).await {
            self.infrastructure = e.is_infrastructure();
            return self
                .finish(Some(ws), ExitStatus::ModelError, Some(e.to_string()))
                .await;
        }
        let status = loop {
            if let Some(status) = self.budget_exhausted() {
                break status;
            }
            let reply = match self.ask_model().await {
                Ok(reply) => reply,
                Err(status) => break status,
            };
            match self.take_turn(&mut *ws, reply).await? {
                Next::Continue => {}
                Next::Stop(status) => break status,
            }
        };
        let error = self.error.take();
        self.finish(Some(ws), status, error).await
    }

    fn budget_exhausted(&self) -> Option<ExitStatus> {
        let b = &self.config.budgets;
        if self.turns >= b.max_turns {
            Some(ExitStatus::TurnLimit)
        } else if self.context >= b.context_tokens {
            Some(ExitStatus::ContextLimit)
        } else if self.time_left() == Some(Duration::ZERO) {
            Some(ExitStatus::TimeLimit)
        } else {
            None
        }
    }

    fn time_left(&self) -> Option<Duration> {
        let limit = Duration::from_secs(self.config.budgets.wall_clock_secs?);
        Some(limit.saturating_sub(self.started.elapsed()))
    }

    /// One model call, bounded by the per-action, context and wall-clock budgets.
    async fn ask_model(&mut self) -> Result<ModelReply, ExitStatus> {
        let b = &self.config.budgets;
        let max_tokens = b
            .max_action_tokens
            .min(b.context_tokens.saturating_sub(self.context));
        let time_left = self.time_left();
        let call = self.policy.respond(&self.messages, max_tokens);
        let result = match time_left {
            Some(left) => tokio::time::timeout(left, call)
                .await
                .map_err(|_| ExitStatus::TimeLimit)?,
            None => call.await,
        };
        result.map_err(|e| {
            self.error = Some(e.to_string());
            self.infrastructure = e.is_infrastructure();
            ExitStatus::ModelError
        })
    }

    /// Records the reply, runs its call (or reports its format error) and appends the result.
    async fn take_turn(
        &mut self,
        ws: &mut dyn Workspace,
        reply: ModelReply,
    ) -> Result<Next, AgentError> {
        let started_at = now();
        self.turns += 1;
        let (tokens_in, tokens_out) = self.account_reply(&reply);
        self.messages.push(Message::assistant(reply.text.clone()));
        let mut turn = new_turn(self.turns, started_at, &reply, tokens_in, tokens_out);
        // CWM checks both before the reply is parsed, so the reply that reaches a limit is
        // never executed: with 128 turns, at most 127 replies act.
        if self.context > self.config.budgets.context_tokens {
            return self.end_turn(turn, Next::Stop(ExitStatus::ContextLimit));
        }
        if self.turns >= self.config.budgets.max_turns {
            return self.end_turn(turn, Next::Stop(ExitStatus::TurnLimit));
        }
        let parsed = parse_reply(&reply.text).and_then(|(_, call)| self.enabled(call));
        let call = match parsed {
            Ok(call) => call,
            // CWM: after a submission, anything but one valid call ends the episode (a wrong
            // `</think>` count excepted) and the last submission is graded.
            Err(error) if self.submission.is_some() && error.ends_after_submission() => {
                return self.end_turn(turn, Next::Stop(ExitStatus::Submitted));
            }
            Err(error) => return self.format_error(turn, error),
        };
        self.format_errors_in_row = 0;
        turn.call = Some(call.clone());
        let outcome = match self.run_tool(ws, &call).await {
            Ok(outcome) => outcome,
            Err(failure) => {
                self.error = Some(failure.to_string());
                return self.end_turn(turn, Next::Stop(ExitStatus::EnvError));
            }
        };
        self.observe(&mut turn, &call, outcome);
        self.end_turn(turn, Next::Continue)
    }

    /// The call, or an unknown-tool error when its tool is not in this episode's set.
    fn enabled(&self, call: ToolCall) -> Result<ToolCall, FormatError> {
        if self.config.tools.contains(&call.tool) {
            Ok(call)
        } else {
            Err(FormatError::UnknownTool {
                name: call.tool.to_string(),
            })
        }
    }

    /// Updates token totals and the context size from a reply; returns (in, out).
    fn account_reply(&mut self, reply: &ModelReply) -> (usize, usize) {
        let tokens_out = reply
            .completion_tokens
            .unwrap_or_else(|| self.policy.count_tokens(&reply.text));
        let tokens_in = reply.prompt_tokens.unwrap_or(self.context);
        self.context = tokens_in + tokens_out;
        self.tokens_in += tokens_in as u64;
        self.tokens_out += tokens_out as u64;
        self.model_time += reply.latency;
        (tokens_in, tokens_out)
    }

    fn error_message(&self, error: &FormatError) -> String {
        error.message(&self.config.profile, &self.config.tools)
    }

    fn format_error(&mut self, mut turn: Turn, error: FormatError) -> Result<Next, AgentError> {
        self.format_errors += 1;
        self.format_errors_in_row += 1;
        let text = self.error_message(&error);
        turn.format_error = Some(text.clone());
        self.push_observation(&mut turn, Message::user(text));
        let limit = self.config.budgets.max_format_errors;
        let next = if limit.is_some_and(|n| self.format_errors_in_row >= n) {
            Next::Stop(ExitStatus::FormatErrorLimit)
        } else {
            Next::Continue
        };
        self.end_turn(turn, next)
    }

    async fn run_tool(
        &mut self,
        ws: &mut dyn Workspace,
        call: &ToolCall,
    ) -> Result<ToolOutcome, EnvFailure> {
        let outcome = execute(ws, call, &self.tool_config).await?;
        self.tool_time += outcome.duration;
        Ok(outcome)
    }

    /// Formats the tool result as CWM does (the restart notice replaces the output; the whole
    /// message is cut from the right) and appends it to the conversation.
    fn observe(&mut self, turn: &mut Turn, call: &ToolCall, outcome: ToolOutcome) {
        let b = &self.config.budgets;
        let profile = &self.config.profile;
        let turns_left = b.max_turns.saturating_sub(self.turns);
        let counter = |text: &str| self.policy.count_tokens(text);
        let name = call.tool.as_str();
        let overhead = counter(&render_cwm_message(&Message::tool(name, "")));
        let body = observation_body(
            profile,
            &outcome.output,
            outcome.notice.as_deref(),
            outcome.restarted,
        );
        // Format once to measure the observation, then again with the resulting budget.
        let draft_remaining = Remaining {
            turns: turns_left,
            tokens: 0,
        };
        let max = b.max_observation_tokens;
        let (draft, _) =
            format_observation(profile, &body, draft_remaining, max, overhead, &counter);
        let draft_tokens = counter(&render_cwm_message(&Message::tool(name, draft)));
        let tokens_left = b.context_tokens as i64 - (self.context + draft_tokens) as i64;
        let remaining = Remaining {
            turns: turns_left,
            tokens: tokens_left,
        };
        let (text, truncated) =
            format_observation(profile, &body, remaining, max, overhead, &counter);
        if let Some(patch) = &outcome.submission {
            self.submission = Some(patch.clone());
        }
        turn.exit_code = outcome.exit_code;
        turn.success = Some(outcome.success);
        turn.restarted = outcome.restarted;
        turn.truncated = truncated;
        turn.submission = outcome.submission;
        turn.tool_latency_ms = millis(outcome.duration);
        self.push_observation(turn, Message::tool(call.tool.as_str(), text));
    }

    fn push_observation(&mut self, turn: &mut Turn, message: Message) {
        self.context += self.policy.count_tokens(&render_cwm_message(&message));
        turn.observation = Some(message.clone());
        self.messages.push(message);
    }

    fn end_turn(&mut self, mut turn: Turn, next: Next) -> Result<Next, AgentError> {
        turn.context_tokens = self.context;
        turn.finished_at = now();
        self.recorder.write(&Record::Turn(Box::new(turn.clone())))?;
        self.observer.on_turn(&turn);
        Ok(next)
    }

    fn write_header(&mut self) -> Result<(), AgentError> {
        let header = Header {
            schema_version: SCHEMA_VERSION,
            harness_version: HARNESS_VERSION.into(),
            instance_id: self.instance.instance_id.clone(),
            repo: self.instance.repo.clone(),
            base_commit: self.instance.base_commit.clone(),
            image: self.instance.image_name(),
            model: self.policy.name(),
            policy: self.policy.config(),
            budgets: self.config.budgets.clone(),
            autosubmit: self.config.on_budget == OnBudget::Autosubmit,
            on_budget: self.config.on_budget,
            tools: self.config.tools.clone(),
            messages: self.messages.clone(),
            started_at: now(),
        };
        self.recorder
            .write(&Record::Header(Box::new(header.clone())))?;
        self.observer.on_start(&header);
        Ok(())
    }

    async fn finish(
        &mut self,
        ws: Option<&mut dyn Workspace>,
        status: ExitStatus,
        error: Option<String>,
    ) -> Result<EpisodeOutcome, AgentError> {
        let mut patch = self.submission.clone();
        let mut error = error;
        if status.is_budget() {
            match (self.config.on_budget, ws) {
                // CWM: a budget that runs out is a failure; its submission is not graded.
                (OnBudget::Fail, _) => patch = None,
                (OnBudget::LastSubmission, _) | (OnBudget::Autosubmit, None) => {}
                (OnBudget::Autosubmit, Some(ws)) => {
                    if let Some(diff) = working_tree_diff(ws, &self.instance.base_commit).await {
                        if let Some(note) = left_out_note(&diff) {
                            error = Some(error.map_or(note.clone(), |e| format!("{e}; {note}")));
                        }
                        if !diff.text.is_empty() {
                            patch = Some(diff.text);
                        }
                    }
                }
            }
        }
        let footer = Footer {
            status,
            patch,
            error,
            infrastructure: status == ExitStatus::ModelError && self.infrastructure,
            turns: self.turns,
            format_errors: self.format_errors,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            context_tokens: self.context,
            model_time_ms: millis(self.model_time),
            tool_time_ms: millis(self.tool_time),
            wall_time_ms: millis(self.started.elapsed()),
            finished_at: now(),
        };
        self.recorder
            .write(&Record::Footer(Box::new(footer.clone())))?;
        self.observer.on_finish(&footer);
        Ok(footer)
    }
}

/// CWM cuts the user prompt from the left when the whole message is longer than
/// `max_tokens`: the cut marker, then the end of the prompt.
fn cut_user_prompt(
    profile: &Profile,
    prompt: String,
    max_tokens: usize,
    policy: &dyn Policy,
) -> String {
    let counter = |text: &str| policy.count_tokens(text);
    let whole = counter(&render_cwm_message(&Message::user(prompt.clone())));
    if whole <= max_tokens {
        return prompt;
    }
    let marker = profile.text("observation.cut_marker");
    let overhead = counter(&render_cwm_message(&Message::user(String::new())));
    let keep = max_tokens.saturating_sub(overhead + counter(&marker));
    format!("{marker}{}", tail_within(&prompt, keep, &counter))
}

fn new_turn(
    number: u64,
    started_at: String,
    reply: &ModelReply,
    tokens_in: usize,
    tokens_out: usize,
) -> Turn {
    let (thinking, answer) = match split_thinking(&reply.text) {
        Ok(r) => (r.thinking.map(str::to_string), r.answer.to_string()),
        Err(_) => (None, reply.text.clone()),
    };
    Turn {
        turn: number,
        started_at,
        finished_at: String::new(),
        raw: reply.text.clone(),
        thinking,
        answer,
        call: None,
        observation: None,
        exit_code: None,
        success: None,
        format_error: None,
        restarted: false,
        truncated: false,
        submission: None,
        tokens_in,
        tokens_out,
        context_tokens: 0,
        finish_reason: reply.finish_reason.clone(),
        model_latency_ms: millis(reply.latency),
        tool_latency_ms: 0,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The working tree against `base` as a patch that applies there: new files included, the
/// files untracked when the episode started (an image's build artefacts) left out, binary
/// files as base85, file parts that cannot be carried as text left out
/// ([`CleanPatch::left_out`]). None when nothing changed or the diff failed.
pub async fn working_tree_diff(ws: &mut dyn Workspace, base: &str) -> Option<CleanPatch> {
    let bytes = match diff_through_session(ws, base).await {
        Some(bytes) => bytes,
        None => diff_through_exec(ws, base).await?,
    };
    bytes.starts_with(b"diff").then(|| clean_patch(&bytes))
}

/// The one-line trajectory note on what the autosubmitted patch left out.
fn left_out_note(diff: &CleanPatch) -> Option<String> {
    let files: Vec<String> = diff
        .left_out
        .iter()
        .map(|l| match l.reason {
            LeftOutReason::NotUtf8 => format!("{} (not UTF-8 text)", l.file),
            LeftOutReason::BinaryWithoutData => format!("{} (binary, no data)", l.file),
        })
        .collect();
    (!files.is_empty()).then(|| format!("the autosubmitted patch leaves out {}", files.join(", ")))
}

/// Where the diff is written; read back by transfer, so every byte survives.
const FINAL_DIFF: &str = "/tmp/.cwm-bench-final.diff";

/// Bound on taking the working-tree diff (each of the two ways).
const DIFF_TIMEOUT: Duration = Duration::from_secs(120);

/// Writes the patch to [`FINAL_DIFF`]. A scratch index holds `base` plus the new files
/// (intent to add): the untracked files that are not ignored, except those recorded at the
/// start. The model's index stays as it is, and its global git config is ignored.
fn diff_to_file(base: &str) -> String {
    let base = cwm_tools::shell_quote(base);
    let untracked = cwm_env::UNTRACKED_AT_START_FILE;
    let script = format!(
        r#"export GIT_CONFIG_GLOBAL=/dev/null LC_ALL=C
git() {{ command git -c safe.directory={REPO_ROOT} -c core.quotepath=false "$@"; }}
index=$(mktemp) && new=$(mktemp) || exit 1
trap 'rm -f "$index" "$new"' EXIT
cp "$(git rev-parse --git-path index)" "$index" 2>/dev/null
export GIT_INDEX_FILE="$index"
git read-tree -m {base} 2>/dev/null || git read-tree {base} || exit 1
git ls-files -z --others --exclude-standard | sort -z \
    | comm -z -23 - <(sort -z {untracked} 2>/dev/null) >"$new" || exit 1
if [ -s "$new" ]; then
    git --literal-pathspecs add -N --pathspec-from-file="$new" --pathspec-file-nul || exit 1
fi
git diff --no-color --no-ext-diff --no-textconv --binary {base} --"#
    );
    format!(
        "bash -c {} >{FINAL_DIFF} 2>/dev/null",
        cwm_tools::shell_quote(&script)
    )
}

/// A fresh exec: immune to whatever the model did to its session, but ~100 ms.
async fn diff_through_exec(ws: &mut dyn Workspace, base: &str) -> Option<Vec<u8>> {
    let out = ws.exec(&diff_to_file(base), DIFF_TIMEOUT).await.ok()?;
    if out.exit_code != Some(0) {
        return None;
    }
    ws.read_file(FINAL_DIFF).await.ok()
}

/// Through the live session in a clean environment, into a file, so output of the model's
/// background jobs cannot mix in. None when anything looks off.
async fn diff_through_session(ws: &mut dyn Workspace, base: &str) -> Option<Vec<u8>> {
    let script = format!(
        "(builtin cd {REPO_ROOT} && command env -i HOME=\"$HOME\" PATH={CLEAN_PATH} {})",
        diff_to_file(base)
    );
    let out = ws.run(&script, DIFF_TIMEOUT).await.ok()?;
    if out.exit_code != Some(0) || out.restarted || out.timed_out || out.truncated {
        return None;
    }
    ws.read_file(FINAL_DIFF).await.ok()
}

/// What a fresh exec in the base image sees.
const CLEAN_PATH: &str = cwm_env::DEFAULT_PATH;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use async_trait::async_trait;
    use cwm_tools::{CommandOutput, PathKind};

    use super::*;
    use crate::policy::ReplayPolicy;
    use cwm_protocol::trajectory::Record;

    /// Files in memory; bash echoes the command back; an exec writing the final diff writes one.
    #[derive(Default)]
    struct FakeWorkspace {
        files: HashMap<String, Vec<u8>>,
    }

    #[async_trait]
    impl Workspace for FakeWorkspace {
        async fn run(&mut self, command: &str, _t: Duration) -> Result<CommandOutput, EnvFailure> {
            if command == "die" {
                return Err(EnvFailure::new("running", "container gone"));
            }
            if let Some(rest) = command.strip_prefix("write ") {
                let (path, content) = rest.split_once(' ').unwrap_or((rest, ""));
                self.files
                    .insert(path.to_string(), content.as_bytes().to_vec());
            }
            Ok(CommandOutput {
                exit_code: Some(0),
                output: format!("ran {command}\n"),
                ..CommandOutput::default()
            })
        }
        async fn exec(&mut self, script: &str, _t: Duration) -> Result<CommandOutput, EnvFailure> {
            if script.contains(FINAL_DIFF) {
                let diff = b"diff --git a/x b/x\n".to_vec();
                self.files.insert(FINAL_DIFF.to_string(), diff);
            }
            Ok(CommandOutput {
                exit_code: Some(0),
                output: "diff --git a/x b/x\n".into(),
                ..CommandOutput::default()
            })
        }
        async fn path_kind(&mut self, path: &str) -> Result<PathKind, EnvFailure> {
            Ok(if self.files.contains_key(path) {
                PathKind::File
            } else if path == REPO_ROOT || path == "/tmp" {
                PathKind::Dir
            } else {
                PathKind::Missing
            })
        }
        async fn read_file(&mut self, path: &str) -> Result<Vec<u8>, EnvFailure> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| EnvFailure::new("reading", path))
        }
        async fn write_file(&mut self, path: &str, content: &[u8]) -> Result<(), EnvFailure> {
            self.files.insert(path.to_string(), content.to_vec());
            Ok(())
        }
    }

    fn instance() -> Instance {
        serde_json::from_value(serde_json::json!({"instance_id": "a__b-1", "repo": "a/b", "base_commit": "abc", "problem_statement": "It breaks."})).unwrap()
    }

    async fn play(turns: &[&str], config: &EpisodeConfig) -> (EpisodeOutcome, Vec<Record>) {
        let instance = instance();
        // Scripted turns are answers: each gets the one `</think>` a reply needs.
        let turns: Vec<String> = turns.iter().map(|t| format!("t\n</think>\n{t}")).collect();
        let mut policy = ReplayPolicy::from_script(&turns.join("\n---\n"), "t");
        let mut records = Vec::new();
        let mut ws = FakeWorkspace::default();
        let mut observer = NoopObserver;
        let mut episode = Episode::new(&instance, &mut policy, config, &mut records, &mut observer);
        let outcome = episode.run(Ok(&mut ws)).await.unwrap();
        (outcome, records)
    }

    fn observation(records: &[Record], turn: usize) -> String {
        let turns: Vec<_> = records
            .iter()
            .filter_map(|r| {
                if let Record::Turn(t) = r {
                    Some(t)
                } else {
                    None
                }
            })
            .collect();
        turns[turn]
            .observation
            .as_ref()
            .map(|m| m.content.clone())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn submits_then_ends_on_a_reply_without_a_call() {
        let turns = [
            "<tool: bash>\nwrite /tmp/p.diff diff --git a/x b/x\n</tool>",
            "<tool: submit>\n/tmp/p.diff\n</tool>",
            "Done.",
        ];
        let (o, records) = play(&turns, &EpisodeConfig::default()).await;
        assert_eq!(o.status, ExitStatus::Submitted);
        assert_eq!(
            o.patch.as_deref(),
            Some("diff --git a/x b/x\n"),
            "the final newline is added"
        );
        assert_eq!(o.turns, 3);
        assert!(observation(&records, 0).starts_with("<output>\nran write"));
        assert!(observation(&records, 0).contains("* Remaining turns: 127\n"));
        assert!(
            observation(&records, 1).contains("<submission>\ndiff --git a/x b/x\n</submission>")
        );
        assert!(
            matches!(records.first(), Some(Record::Header(_)))
                && matches!(records.last(), Some(Record::Footer(_)))
        );
    }

    #[tokio::test]
    async fn a_budget_that_runs_out_is_not_graded_unless_asked() {
        let turns = [
            "<tool: bash>\nwrite /tmp/p.diff diff --git a/x b/x\n</tool>",
            "<tool: submit>\n/tmp/p.diff\n</tool>",
            "<tool: bash>\nls\n</tool>",
            "<tool: bash>\nls\n</tool>",
        ];
        let mut config = EpisodeConfig::default();
        config.budgets.max_turns = 3;
        let (o, records) = play(&turns, &config).await;
        // The third reply reaches the limit and is never executed, as in CWM.
        assert_eq!((o.status, o.turns), (ExitStatus::TurnLimit, 3));
        assert!(observation(&records, 2).is_empty());
        assert_eq!(o.patch, None, "CWM grades nothing after a budget failure");
        config.on_budget = OnBudget::LastSubmission;
        let (o, _) = play(&turns, &config).await;
        assert_eq!(o.patch.as_deref(), Some("diff --git a/x b/x\n"));
    }

    #[tokio::test]
    async fn budgets_end_the_episode() {
        let mut config = EpisodeConfig::default();
        config.budgets.max_turns = 2;
        config.on_budget = OnBudget::Autosubmit;
        let (o, _) = play(&["<tool: bash>\nls\n</tool>"; 3], &config).await;
        assert_eq!((o.status, o.turns), (ExitStatus::TurnLimit, 2));
        assert_eq!(
            o.patch.as_deref(),
            Some("diff --git a/x b/x\n"),
            "autosubmit takes the working-tree diff"
        );

        let mut config = EpisodeConfig::default();
        config.budgets.max_format_errors = Some(3);
        let (o, records) = play(&["a", "b", "c", "d"], &config).await;
        assert_eq!(
            (o.status, o.turns, o.format_errors),
            (ExitStatus::FormatErrorLimit, 3, 3)
        );
        assert!(observation(&records, 0).starts_with("FormatError: no tool call"));

        let (o, _) = play(&["<tool: bash>\ndie\n</tool>"], &EpisodeConfig::default()).await;
        assert_eq!(o.status, ExitStatus::EnvError);
        assert!(o.error.unwrap().contains("container gone"));

        let (o, _) = play(&["<tool: bash>\nls\n</tool>"], &EpisodeConfig::default()).await;
        assert_eq!(o.status, ExitStatus::ModelError);

        let mut config = EpisodeConfig::default();
        config.budgets.context_tokens = 1200;
        let long = format!("<tool: bash>\n{}\n</tool>", "x".repeat(4000));
        let (o, _) = play(&[&long, "<tool: bash>\nls\n</tool>"], &config).await;
        assert_eq!(o.status, ExitStatus::ContextLimit);
    }
}
