//! The `replay` policy: plays back assistant turns from a recorded trajectory or a script.
//!
//! Script format (a plain text file): the assistant turns in order, separated by lines that
//! are exactly `---`. A turn's text is the lines between two separators, joined with `\n`
//! (the newline before a separator is not part of the turn). A line `\---` stands for a
//! literal `---` line. A final separator at the end of the file is allowed. Example:
//!
//! ```text
//! <think>
//! Look at the repo.
//! </think>
//! <tool: bash>
//! ls
//! </tool>
//! ---
//! <tool: submit>
//! /tmp/patch.diff
//! </tool>
//! ---
//! Done.
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::{ModelReply, Policy, PolicyError};
use cwm_protocol::message::{assistant_turns, Message};
use cwm_protocol::trajectory::{read_trajectory, Trajectory};

/// Plays recorded assistant turns, one per call, in order.
#[derive(Debug, Clone)]
pub struct ReplayPolicy {
    source: String,
    turns: Vec<ModelReply>,
    /// Pause before each reply (for tests of the wall-clock budget).
    delay: Duration,
}

impl ReplayPolicy {
    /// Loads a trajectory (`.jsonl` whose first line is a header) or a script file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::ReplayFile {
            path: path.to_path_buf(),
            source,
        })?;
        if text.trim_start().starts_with("{\"type\":\"header\"") {
            let trajectory = read_trajectory(path)?;
            Ok(Self::from_trajectory(&trajectory, path.to_path_buf()))
        } else {
            Ok(Self::from_script(&text, path.display().to_string()))
        }
    }

    /// Plays the turns of `trajectory`, with their recorded token counts, so budget numbers
    /// in the observations come out the same.
    pub fn from_trajectory(trajectory: &Trajectory, path: PathBuf) -> Self {
        let turns = trajectory
            .turns
            .iter()
            .map(|t| ModelReply {
                text: t.raw.clone(),
                prompt_tokens: Some(t.tokens_in),
                completion_tokens: Some(t.tokens_out),
                latency: Duration::ZERO,
                finish_reason: t.finish_reason.clone(),
            })
            .collect();
        Self {
            source: path.display().to_string(),
            turns,
            delay: Duration::ZERO,
        }
    }

    /// Plays the turns of a script (see the module docs for the format).
    pub fn from_script(script: &str, source: impl Into<String>) -> Self {
        let turns = parse_script(script)
            .into_iter()
            .map(|text| ModelReply {
                text,
                ..ModelReply::default()
            })
            .collect();
        Self {
            source: source.into(),
            turns,
            delay: Duration::ZERO,
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn len(&self) -> usize {
        self.turns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

/// Splits a script into turns.
pub fn parse_script(script: &str) -> Vec<String> {
    let mut turns = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in script.lines() {
        if line == "---" {
            turns.push(current.join("\n"));
            current.clear();
        } else if line == "\\---" {
            current.push("---");
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        turns.push(current.join("\n"));
    }
    turns
}

#[async_trait]
impl Policy for ReplayPolicy {
    async fn respond(
        &mut self,
        messages: &[Message],
        _max_tokens: usize,
    ) -> Result<ModelReply, PolicyError> {
        // The turn index comes from the conversation, so the policy itself stays stateless.
        let turn = assistant_turns(messages);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.turns
            .get(turn)
            .cloned()
            .ok_or(PolicyError::ReplayExhausted {
                turn: turn + 1,
                available: self.turns.len(),
            })
    }

    fn name(&self) -> String {
        format!("replay:{}", self.source)
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({"kind": "replay", "source": self.source, "turns": self.turns.len()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_on_separator_lines() {
        let turns = parse_script("a\nb\n---\n\\---\nc\n---\n\n---\n");
        assert_eq!(turns, ["a\nb", "---\nc", ""]);
        assert_eq!(parse_script("x"), ["x"]);
    }
}
