//! CWM's prompts (our wording, CWM's structure) and its chat rendering.

use cwm_tools::{Profile, ToolName};
use minijinja::context;

/// Everything the system prompt states about the episode's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    pub max_turns: u64,
    pub context_tokens: usize,
    pub command_timeout_secs: u64,
}

/// The system prompt, from the profile's `system.prompt` with the descriptions of the
/// episode's `tools`.
pub fn system_prompt(profile: &Profile, limits: PromptLimits, tools: &[ToolName]) -> String {
    let descriptions: Vec<String> = tools
        .iter()
        .map(|t| profile.text(&format!("tools.{t}")))
        .collect();
    let separator = profile.text("system.tool_separator");
    profile.render(
        "system.prompt",
        context! {
            max_turns => limits.max_turns,
            context_tokens => limits.context_tokens,
            command_timeout => limits.command_timeout_secs,
            tools => descriptions.join(&separator),
        },
    )
}

/// The user prompt: the profile's `user.prompt` with the issue.
pub fn user_prompt(profile: &Profile, issue: &str) -> String {
    profile.render("user.prompt", context! { issue })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_state_the_protocol() {
        let limits = PromptLimits {
            max_turns: 128,
            context_tokens: 131072,
            command_timeout_secs: 120,
        };
        let profile = Profile::builtin();
        assert!(!system_prompt(&profile, limits, &ToolName::CWM).contains("<tool: test>"));
        let s = system_prompt(&profile, limits, &ToolName::ALL);
        assert!(s.contains("<tool: test>"));
        for needle in [
            "<think>",
            "128 turns",
            "131072 tokens",
            "exactly one tool call",
            "<tool: submit>",
        ] {
            assert!(s.contains(needle), "{needle}");
        }
        let u = user_prompt(&Profile::builtin(), "Bug!");
        assert!(
            u.contains("<issue_description>\nBug!\n</issue_description>")
                && u.contains(cwm_env::REPO_ROOT)
        );
    }
}
