//! Training-data exports of finished runs: SFT chat transcripts, RL episodes with rewards, and
//! CWM's own trajectory dump shape. The schemas are documented in `docs/exports.md`.

use std::collections::BTreeMap;
use std::path::Path;

use cwm_protocol::chat::{
    render_cwm_message, render_cwm_prompt, EOT, GENERATION_PREFIX, THINK_PREFIX,
};
use cwm_protocol::{Message, Role, Turn};
use serde::{Deserialize, Serialize};

use crate::loaded::{Episode, LoadedRun};
use crate::report::write_file;
use crate::ResultsError;

/// Which export to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sft,
    Rl,
    Cwm,
}

/// Which episodes to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Episodes whose patch resolved the task (needs eval reports).
    Resolved,
    All,
}

/// Which verdict rewards (and `--only resolved`) follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    /// cwm-bench's hardened verdict, which a patch cannot forge (the default for RL).
    #[default]
    Hardened,
    /// The official SWE-bench 5.0.2 verdict of `report.json`.
    Official,
}

impl Verdict {
    /// Whether `episode` counts as resolved under this verdict.
    pub fn resolved(self, episode: &Episode) -> bool {
        match self {
            Self::Hardened => episode.hardened_resolved(),
            Self::Official => episode.resolved(),
        }
    }
}

/// What an export wrote and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub written: usize,
    /// Episodes without a footer (the run was killed mid-episode).
    pub unfinished: usize,
    /// Episodes dropped by `--only resolved`.
    pub unresolved: usize,
}

/// `sft`: one conversation per line, exactly as the model saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftRecord {
    pub messages: Vec<Message>,
}

/// `rl`: one episode per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlRecord {
    pub run_id: String,
    pub instance_id: String,
    pub model: String,
    pub instance: RlInstance,
    /// The system and user prompts.
    pub prompt: Vec<Message>,
    pub steps: Vec<RlStep>,
    pub rewards: Rewards,
    /// The footer's exit status.
    pub status: String,
    pub patch: Option<String>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// The run's `config.json`.
    pub config: serde_json::Value,
}

/// Instance metadata carried by an RL record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlInstance {
    pub repo: String,
    pub base_commit: String,
    pub image: String,
    pub version: Option<String>,
    pub created_at: Option<String>,
    pub difficulty: Option<String>,
    #[serde(rename = "FAIL_TO_PASS")]
    pub fail_to_pass: Vec<String>,
    #[serde(rename = "PASS_TO_PASS")]
    pub pass_to_pass: Vec<String>,
}

/// One agent step of an RL record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlStep {
    pub turn: u64,
    /// The assistant message as generated (`raw`).
    pub action: String,
    /// The reply's role (`tool: bash`, or `user` for a FormatError); null when the turn ended
    /// the episode.
    pub observation_role: Option<String>,
    pub observation: Option<String>,
    pub tokens_in: usize,
    pub tokens_out: usize,
    pub context_tokens: usize,
    pub exit_code: Option<i64>,
    pub format_error: bool,
}

/// Episode-level rewards, from the eval report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rewards {
    /// 1 when resolved under `verdict`, else 0.
    pub resolved: f64,
    /// `hardened` (default) or `official`: the verdict `resolved` follows.
    pub verdict: String,
    /// The official SWE-bench verdict, whatever `verdict` is.
    pub official_resolved: bool,
    /// What the hardened grader distrusted (empty when nothing, or not evaluated).
    pub hardened_flags: Vec<cwm_eval::Flag>,
    /// FAIL_TO_PASS tests passing over all FAIL_TO_PASS tests.
    pub f2p_fraction: f64,
    pub patch_applied: bool,
    /// Whether the episode was evaluated; without that every reward is 0.
    pub evaluated: bool,
}

/// `cwm`: CWM's trajectory dump (`cwm/rl/lib/dump_traj.py`, minimal mode), one rollout per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwmDump {
    pub rollouts: Vec<CwmRollout>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwmRollout {
    pub traj: CwmTraj,
    pub outcomes: CwmOutcomes,
    /// What the episode started from (CWM's `start_args`).
    pub start_args: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwmTraj {
    pub transitions: Vec<CwmTransition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwmOutcomes {
    pub pass: bool,
}

/// CWM's `Transition` without token ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwmTransition {
    pub action_str: String,
    pub observation_str: String,
    /// One reward, on the action's last token (per-token lists need token ids, not kept).
    pub rewards: Vec<f64>,
    pub terminal: bool,
    pub context_switch: bool,
    /// `{"pass": bool}` on the terminal transition, else empty.
    pub outcomes: BTreeMap<String, bool>,
    pub info: CwmInfo,
}

/// CWM's `make_info_dict` fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwmInfo {
    pub source: String,
    pub instance_id: String,
    pub message: String,
    pub eval_duration: f64,
    pub pred_patch: Option<String>,
}

/// Writes every kept episode of `runs` to `out` as JSON Lines (atomically), rewarding the
/// hardened verdict.
pub fn export(
    runs: &[LoadedRun],
    format: Format,
    only: Only,
    out: &Path,
) -> Result<ExportStats, ResultsError> {
    export_with(runs, format, only, Verdict::Hardened, out)
}

/// [`export`] with the verdict that rewards and `--only resolved` follow.
pub fn export_with(
    runs: &[LoadedRun],
    format: Format,
    only: Only,
    verdict: Verdict,
    out: &Path,
) -> Result<ExportStats, ResultsError> {
    let mut stats = ExportStats::default();
    let mut text = String::new();
    for run in runs {
        if only == Only::Resolved {
            if let Some(e) = run.first_ungraded() {
                return Err(ResultsError::NotEvaluated {
                    run: run.run_id.clone(),
                    instance_id: e.instance_id().to_string(),
                });
            }
        }
        for episode in &run.episodes {
            if episode.trajectory.footer.is_none() {
                stats.unfinished += 1;
                continue;
            }
            if only == Only::Resolved && !verdict.resolved(episode) {
                stats.unresolved += 1;
                continue;
            }
            text.push_str(&encode_line(run, episode, format, verdict, out)?);
            text.push('\n');
            stats.written += 1;
        }
    }
    write_file(out, text.as_bytes())?;
    Ok(stats)
}

fn encode_line(
    run: &LoadedRun,
    episode: &Episode,
    format: Format,
    verdict: Verdict,
    out: &Path,
) -> Result<String, ResultsError> {
    let encoded = match format {
        Format::Sft => serde_json::to_string(&sft_record(episode)),
        Format::Rl => serde_json::to_string(&rl_record(run, episode, verdict)),
        Format::Cwm => serde_json::to_string(&cwm_dump(episode, verdict)),
    };
    encoded.map_err(|source| ResultsError::Encode {
        path: out.to_path_buf(),
        source,
    })
}

/// The whole conversation: prompts, then each turn's reply and what came back.
pub fn conversation(episode: &Episode) -> Vec<Message> {
    let traj = &episode.trajectory;
    let mut messages = traj.header.messages.clone();
    for turn in &traj.turns {
        messages.push(Message::new(Role::Assistant, turn.raw.clone()));
        messages.extend(turn.observation.clone());
    }
    messages
}

pub fn sft_record(episode: &Episode) -> SftRecord {
    SftRecord {
        messages: conversation(episode),
    }
}

pub fn rl_record(run: &LoadedRun, episode: &Episode, verdict: Verdict) -> RlRecord {
    let traj = &episode.trajectory;
    let footer = traj.footer.as_ref();
    RlRecord {
        run_id: run.run_id.clone(),
        instance_id: episode.instance_id().to_string(),
        model: traj.header.model.clone(),
        instance: rl_instance(episode),
        prompt: traj.header.messages.clone(),
        steps: traj.turns.iter().map(rl_step).collect(),
        rewards: rewards(episode, verdict),
        status: episode.status().to_string(),
        patch: episode.patch().map(str::to_string),
        tokens_in: footer.map_or(0, |f| f.tokens_in),
        tokens_out: footer.map_or(0, |f| f.tokens_out),
        config: run.config.clone(),
    }
}

pub fn rewards(episode: &Episode, verdict: Verdict) -> Rewards {
    Rewards {
        resolved: if verdict.resolved(episode) { 1.0 } else { 0.0 },
        verdict: match verdict {
            Verdict::Hardened => "hardened",
            Verdict::Official => "official",
        }
        .to_string(),
        official_resolved: episode.resolved(),
        hardened_flags: episode
            .hardened
            .as_ref()
            .map(|h| h.flags.clone())
            .unwrap_or_default(),
        f2p_fraction: episode.f2p_fraction(),
        patch_applied: episode.patch_applied(),
        evaluated: episode.graded(),
    }
}

fn rl_instance(episode: &Episode) -> RlInstance {
    let header = &episode.trajectory.header;
    let instance = episode.instance.as_ref();
    let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
    RlInstance {
        repo: header.repo.clone(),
        base_commit: header.base_commit.clone(),
        image: header.image.clone(),
        version: instance.and_then(|i| non_empty(&i.version)),
        created_at: instance.and_then(|i| non_empty(&i.created_at)),
        difficulty: instance.and_then(|i| i.difficulty.clone()),
        fail_to_pass: instance.map(|i| i.fail_to_pass.clone()).unwrap_or_default(),
        pass_to_pass: instance.map(|i| i.pass_to_pass.clone()).unwrap_or_default(),
    }
}

fn rl_step(turn: &Turn) -> RlStep {
    RlStep {
        turn: turn.turn,
        action: turn.raw.clone(),
        observation_role: turn.observation.as_ref().map(|m| m.role.as_string()),
        observation: turn.observation.as_ref().map(|m| m.content.clone()),
        tokens_in: turn.tokens_in,
        tokens_out: turn.tokens_out,
        context_tokens: turn.context_tokens,
        exit_code: turn.exit_code,
        format_error: turn.format_error.is_some(),
    }
}

/// One rollout in CWM's shape. Concatenating every transition's `observation_str` and
/// `action_str` in order gives back the exact CWM prompt text of the conversation.
pub fn cwm_dump(episode: &Episode, verdict: Verdict) -> CwmDump {
    let traj = &episode.trajectory;
    let header = &traj.header;
    let mut transitions = vec![CwmTransition {
        action_str: String::new(),
        observation_str: render_cwm_prompt(&header.messages),
        rewards: Vec::new(),
        terminal: false,
        context_switch: false,
        outcomes: BTreeMap::new(),
        info: cwm_info(episode, String::new(), None),
    }];
    let last = traj.turns.len();
    for (i, turn) in traj.turns.iter().enumerate() {
        transitions.push(cwm_transition(episode, turn, i + 1 == last, verdict));
    }
    let start_args = BTreeMap::from([
        ("instance_id".to_string(), header.instance_id.clone()),
        ("repo".to_string(), header.repo.clone()),
        ("base_commit".to_string(), header.base_commit.clone()),
        ("image".to_string(), header.image.clone()),
    ]);
    CwmDump {
        rollouts: vec![CwmRollout {
            traj: CwmTraj { transitions },
            outcomes: CwmOutcomes {
                pass: verdict.resolved(episode),
            },
            start_args,
        }],
    }
}

fn cwm_transition(
    episode: &Episode,
    turn: &Turn,
    is_last: bool,
    verdict: Verdict,
) -> CwmTransition {
    let terminal = is_last && episode.trajectory.footer.is_some();
    // The prompt already ends with the generation prefix, so the action is what follows it.
    let action_str = turn
        .raw
        .strip_prefix(THINK_PREFIX)
        .unwrap_or(&turn.raw)
        .to_string();
    let observation_str = match &turn.observation {
        Some(message) => format!("{EOT}{}{GENERATION_PREFIX}", render_cwm_message(message)),
        None => String::new(),
    };
    let reward = if terminal && verdict.resolved(episode) {
        1.0
    } else {
        0.0
    };
    let (outcomes, info) = if terminal {
        let message = terminal_message(episode);
        let patch = episode.patch().map(str::to_string);
        (
            BTreeMap::from([("pass".to_string(), verdict.resolved(episode))]),
            cwm_info(episode, message, patch),
        )
    } else {
        (BTreeMap::new(), cwm_info(episode, String::new(), None))
    };
    CwmTransition {
        action_str,
        observation_str,
        rewards: vec![reward],
        terminal,
        context_switch: false,
        outcomes,
        info,
    }
}

fn cwm_info(episode: &Episode, message: String, pred_patch: Option<String>) -> CwmInfo {
    CwmInfo {
        source: "cwm-bench".to_string(),
        instance_id: episode.instance_id().to_string(),
        message,
        eval_duration: -1.0,
        pred_patch,
    }
}

/// The exit status, and the error when there was one.
fn terminal_message(episode: &Episode) -> String {
    let error = episode
        .trajectory
        .footer
        .as_ref()
        .and_then(|f| f.error.as_deref());
    match error {
        Some(error) => format!("{}: {error}", episode.status()),
        None => episode.status().to_string(),
    }
}
