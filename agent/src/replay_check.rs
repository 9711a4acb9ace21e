//! The reproducibility check behind `cwm-bench replay`: play a recorded trajectory's turns
//! against a fresh container and compare every observation with the recorded one.

use std::path::Path;

use cwm_datasets::Instance;
use cwm_env::Container;
use similar::TextDiff;

use crate::episode::{run_episode, AgentError, EpisodeConfig, EpisodeContext, NoopObserver};
use crate::policy::ReplayPolicy;
use cwm_protocol::message::Message;
use cwm_protocol::trajectory::{Record, Trajectory};
use cwm_protocol::ExitStatus;

/// One difference between the recording and the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// 1-based turn, or 0 for episode-level differences.
    pub turn: u64,
    pub what: String,
    /// A unified diff (recorded -> replayed) or a one-line description.
    pub detail: String,
}

/// The result of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub turns_recorded: usize,
    pub turns_replayed: usize,
    pub status_recorded: Option<ExitStatus>,
    pub status_replayed: ExitStatus,
    pub mismatches: Vec<Mismatch>,
}

impl ReplayReport {
    pub fn identical(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Replays `trajectory` (recorded from `instance`) in `container` under the recorded budgets.
pub async fn replay_and_compare(
    container: &Container,
    instance: &Instance,
    trajectory: &Trajectory,
    source: &Path,
) -> Result<ReplayReport, AgentError> {
    let mut policy = ReplayPolicy::from_trajectory(trajectory, source.to_path_buf());
    let config = EpisodeConfig {
        budgets: trajectory.header.budgets.clone(),
        on_budget: if trajectory.header.autosubmit {
            cwm_protocol::OnBudget::Autosubmit
        } else {
            trajectory.header.on_budget
        },
        tools: trajectory.header.tools.clone(),
        ..EpisodeConfig::default()
    };
    let mut records: Vec<Record> = Vec::new();
    let outcome = run_episode(EpisodeContext {
        container,
        instance,
        policy: &mut policy,
        config: &config,
        recorder: &mut records,
        observer: &mut NoopObserver,
    })
    .await?;
    let replayed: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Turn(t) => Some(t.observation.clone()),
            _ => None,
        })
        .collect();
    let recorded: Vec<_> = trajectory
        .turns
        .iter()
        .map(|t| t.observation.clone())
        .collect();
    let mut mismatches = compare_observations(&recorded, &replayed);
    let status_recorded = trajectory.footer.as_ref().map(|f| f.status);
    if status_recorded.is_some_and(|s| s != outcome.status) {
        mismatches.push(Mismatch {
            turn: 0,
            what: "exit status".into(),
            detail: format!(
                "recorded {:?}, replayed {}",
                status_recorded, outcome.status
            ),
        });
    }
    Ok(ReplayReport {
        turns_recorded: recorded.len(),
        turns_replayed: replayed.len(),
        status_recorded,
        status_replayed: outcome.status,
        mismatches,
    })
}

/// Turn-by-turn comparison of observations.
pub fn compare_observations(
    recorded: &[Option<Message>],
    replayed: &[Option<Message>],
) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    for (i, (a, b)) in recorded.iter().zip(replayed).enumerate() {
        if a != b {
            mismatches.push(Mismatch {
                turn: i as u64 + 1,
                what: "observation".into(),
                detail: diff(a, b),
            });
        }
    }
    if recorded.len() != replayed.len() {
        mismatches.push(Mismatch {
            turn: 0,
            what: "turn count".into(),
            detail: format!(
                "recorded {} turns, replayed {}",
                recorded.len(),
                replayed.len()
            ),
        });
    }
    mismatches
}

fn diff(a: &Option<Message>, b: &Option<Message>) -> String {
    let show = |m: &Option<Message>| match m {
        Some(m) => format!("[{}]\n{}\n", m.role, m.content),
        None => "(no observation)\n".to_string(),
    };
    let (a, b) = (show(a), show(b));
    TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header("recorded", "replayed")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_changed_and_missing_observations() {
        let a = vec![Some(Message::tool("bash", "x\ny")), None];
        let b = vec![Some(Message::tool("bash", "x\nz"))];
        let m = compare_observations(&a, &b);
        assert_eq!(m.len(), 2);
        assert!(
            m[0].detail.contains("-y") && m[0].detail.contains("+z"),
            "{}",
            m[0].detail
        );
        assert_eq!(m[1].what, "turn count");
        assert!(compare_observations(&a, &a).is_empty());
    }
}
