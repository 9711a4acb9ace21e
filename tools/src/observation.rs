//! Formatting a tool result into the observation message the model reads.

use minijinja::context;

use crate::profile::Profile;
use crate::tokens::{truncate_tokens, TokenCounter};

/// What is left of the episode's budgets, shown after every observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub turns: u64,
    /// May go negative at the very end of an episode; it is shown as it is.
    pub tokens: i64,
}

/// The observation's body: the output, with a notice after it; or, when the session was
/// restarted, the notice alone (CWM replaces the partial output with it).
pub fn observation_body(
    profile: &Profile,
    output: &str,
    notice: Option<&str>,
    restarted: bool,
) -> String {
    match notice {
        Some(notice) if restarted || output.is_empty() => notice.to_string(),
        Some(notice) => format!(
            "{output}{}{notice}",
            profile.text("observation.notice_separator")
        ),
        None => output.to_string(),
    }
}

/// The tool message content: `body` in the profile's wrapper with the budget block. When the
/// whole message (its `overhead_tokens` of header and end-of-turn included) is longer than
/// `max_message_tokens`, its head is kept and the cut marker appended, as CWM cuts (the budget
/// block can be cut off). Returns the text and whether it was cut.
pub fn format_observation(
    profile: &Profile,
    body: &str,
    remaining: Remaining,
    max_message_tokens: usize,
    overhead_tokens: usize,
    counter: &dyn TokenCounter,
) -> (String, bool) {
    let budget = budget_block(profile, remaining);
    let text = profile.render("observation.wrapper", context! { output => body, budget });
    let marker = profile.text("observation.cut_marker");
    truncate_tokens(
        &text,
        max_message_tokens.saturating_sub(overhead_tokens),
        &marker,
        counter,
    )
}

/// The `<budget>` block alone.
pub fn budget_block(profile: &Profile, remaining: Remaining) -> String {
    profile.render(
        "observation.budget",
        context! { turns => remaining.turns, tokens => remaining.tokens },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::ApproxCounter;

    #[test]
    fn observation_has_output_and_budget_blocks() {
        let profile = Profile::builtin();
        let remaining = Remaining {
            turns: 3,
            tokens: 900,
        };
        let (text, cut) = format_observation(&profile, "hi", remaining, 100, 10, &ApproxCounter);
        assert!(!cut);
        assert_eq!(
            text,
            "<output>\nhi\n</output>\n\n<budget>\n* Remaining turns: 3\n* Remaining tokens: 900\n</budget>"
        );
    }

    #[test]
    fn the_whole_message_is_cut_from_the_right_like_cwm() {
        let profile = Profile::builtin();
        let remaining = Remaining {
            turns: 1,
            tokens: 1,
        };
        let (long, cut) = format_observation(
            &profile,
            &"x".repeat(1000),
            remaining,
            30,
            10,
            &ApproxCounter,
        );
        assert!(cut);
        assert!(
            long.starts_with("<output>\nxxx") && long.ends_with("x[...]"),
            "{long}"
        );
        assert!(ApproxCounter.count_tokens(&long) <= 20);
    }

    #[test]
    fn a_restart_notice_replaces_the_output() {
        let profile = Profile::builtin();
        assert_eq!(observation_body(&profile, "partial", Some("N"), true), "N");
        assert_eq!(
            observation_body(&profile, "out", Some("N"), false),
            "out\n\nN"
        );
        assert_eq!(observation_body(&profile, "out", None, false), "out");
    }
}
