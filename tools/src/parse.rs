//! Parsing one assistant reply: the thinking/answer split and the single `<tool: NAME>` call.

use std::sync::LazyLock;

use minijinja::context;
use regex::Regex;

pub use cwm_protocol::{ToolCall, ToolName};

use crate::profile::Profile;

/// Marks the end of the model's private reasoning. Calls are only parsed after it.
pub const THINK_END: &str = "</think>";
/// Opens the reasoning block (CWM gets it from the generation prefix).
pub const THINK_START: &str = "<think>";
const TOOL_OPEN: &str = "<tool:";
const TOOL_END: &str = "</tool>";

/// A malformed turn. The text the model is shown comes from the prompt profile
/// ([`FormatError::message`]); `Display` is a short description for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// No call after `</think>` (`in_thinking`: one was written inside the thinking).
    #[error("no tool call")]
    NoToolCall { in_thinking: bool },
    #[error("{} tool calls", .names.len())]
    SeveralCalls { names: Vec<String> },
    /// The counts of `<tool:` and `</tool>` differ from the number of complete calls: an
    /// unterminated call, a stray `</tool>` in a body, a malformed header.
    #[error("{opens} `<tool:` and {closes} `</tool>` for {calls} call(s)")]
    TagCountMismatch {
        opens: usize,
        closes: usize,
        calls: usize,
    },
    /// A name outside the episode's tool set (CWM's `NoSuchToolError`).
    #[error("unknown tool `{name}`")]
    UnknownTool { name: String },
    #[error("empty `{name}` call")]
    EmptyBody { name: String },
    /// `</think>` must occur exactly once.
    #[error("{count} `</think>` tags")]
    ThinkCount { count: usize },
}

impl FormatError {
    /// The user message the model receives, from the profile's `format_errors` fields.
    /// `tools` are the names the episode allows.
    pub fn message(&self, profile: &Profile, tools: &[ToolName]) -> String {
        let names: Vec<&str> = tools.iter().map(|t| t.as_str()).collect();
        let tools = names.join(", ");
        match self {
            Self::NoToolCall { in_thinking } => {
                let mut text = profile.render("format_errors.no_tool_call", context! { tools });
                if *in_thinking {
                    text.push_str(&profile.text("format_errors.call_inside_thinking"));
                }
                text
            }
            Self::SeveralCalls { names } => profile.render(
                "format_errors.several_calls",
                context! { count => names.len(), names => names.join(", ") },
            ),
            Self::TagCountMismatch {
                opens,
                closes,
                calls,
            } => profile.render(
                "format_errors.tag_count_mismatch",
                context! { opens, closes, calls },
            ),
            Self::UnknownTool { name } => {
                profile.render("format_errors.unknown_tool", context! { name, tools })
            }
            Self::EmptyBody { name } => {
                profile.render("format_errors.empty_body", context! { name })
            }
            Self::ThinkCount { count } => {
                profile.render("format_errors.think_count", context! { count })
            }
        }
    }

    /// Whether this error ends an episode that already has a submission (CWM: every format
    /// error and unknown tool does, except a wrong `</think>` count).
    pub fn ends_after_submission(&self) -> bool {
        !matches!(self, Self::ThinkCount { .. })
    }
}

/// A reply split at `</think>`. `thinking` excludes the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    pub thinking: Option<&'a str>,
    pub answer: &'a str,
}

/// Splits an assistant message into reasoning and answer. `</think>` must occur exactly
/// once (CWM's check); the thinking is what precedes it, without a leading `<think>`.
pub fn split_thinking(text: &str) -> Result<Reply<'_>, FormatError> {
    let count = text.matches(THINK_END).count();
    let Some((thinking, answer)) = text.split_once(THINK_END).filter(|_| count == 1) else {
        return Err(FormatError::ThinkCount { count });
    };
    let thinking = thinking.trim_start();
    let thinking = thinking.strip_prefix(THINK_START).unwrap_or(thinking);
    Ok(Reply {
        thinking: Some(thinking.trim_matches('\n')),
        answer,
    })
}

/// CWM's call pattern: `<tool:`, one whitespace character, a name of letters and `_`, `>`, a
/// newline, the shortest body, a newline and `</tool>`.
static CALL: LazyLock<Regex> =
    LazyLock::new(|| cwm_parsers::re(r"(?s)<tool:\s([a-zA-Z_]+)>\n(.*?)\n</tool>"));

/// Parses the single tool call of an answer (the text after `</think>`), with CWM's checks
/// in CWM's order: several calls; `<tool:` and `</tool>` counts equal to the calls found;
/// none; an empty body; then the name.
pub fn parse_call(answer: &str) -> Result<ToolCall, FormatError> {
    let calls: Vec<(&str, &str)> = CALL
        .captures_iter(answer)
        .filter_map(|c| Some((c.get(1)?.as_str(), c.get(2)?.as_str())))
        .collect();
    if calls.len() > 1 {
        return Err(FormatError::SeveralCalls {
            names: calls.iter().map(|(n, _)| n.to_string()).collect(),
        });
    }
    let (opens, closes) = (
        answer.matches(TOOL_OPEN).count(),
        answer.matches(TOOL_END).count(),
    );
    if opens != calls.len() || closes != calls.len() {
        return Err(FormatError::TagCountMismatch {
            opens,
            closes,
            calls: calls.len(),
        });
    }
    let Some((name, body)) = calls.first() else {
        return Err(FormatError::NoToolCall { in_thinking: false });
    };
    if body.trim().is_empty() {
        return Err(FormatError::EmptyBody {
            name: name.to_string(),
        });
    }
    let tool = ToolName::from_name(name).ok_or_else(|| FormatError::UnknownTool {
        name: name.to_string(),
    })?;
    Ok(ToolCall::new(tool, *body))
}

/// Splits a full reply and parses its call; the thinking part is never searched for calls.
pub fn parse_reply(text: &str) -> Result<(Reply<'_>, ToolCall), FormatError> {
    let reply = split_thinking(text)?;
    match parse_call(reply.answer) {
        Err(FormatError::NoToolCall { .. }) => Err(FormatError::NoToolCall {
            in_thinking: reply.thinking.is_some_and(|t| t.contains(TOOL_OPEN)),
        }),
        Err(e) => Err(e),
        Ok(call) => Ok((reply, call)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(text: &str) -> Result<ToolCall, FormatError> {
        parse_reply(text).map(|(_, c)| c)
    }

    #[test]
    fn parses_a_bash_call_after_thinking() {
        let text = "<think>\nlook around\n</think>\n<tool: bash>\nls -la\ncat x\n</tool>";
        let (reply, c) = parse_reply(text).unwrap();
        assert_eq!(reply.thinking, Some("look around"));
        assert_eq!(c, ToolCall::new(ToolName::Bash, "ls -la\ncat x"));
        // Prose around the call is allowed.
        let c = call("x</think>I will look.\n<tool: bash>\nls\n</tool>\nDone.").unwrap();
        assert_eq!(c.body, "ls");
    }

    #[test]
    fn body_keeps_trailing_blank_lines_and_empty_body_is_rejected() {
        let c = call("t</think><tool: create>\na.py\nx = 1\n\n</tool>").unwrap();
        assert_eq!(c.body, "a.py\nx = 1\n");
        let err = call("t</think><tool: submit>\n \n</tool>").unwrap_err();
        assert_eq!(
            err,
            FormatError::EmptyBody {
                name: "submit".into()
            }
        );
    }

    #[test]
    fn calls_inside_thinking_are_ignored() {
        let err = call("<think>\n<tool: bash>\nls\n</tool>\n</think>\nI am done.").unwrap_err();
        assert_eq!(err, FormatError::NoToolCall { in_thinking: true });
        let profile = Profile::builtin();
        let message = err.message(&profile, &ToolName::CWM);
        assert!(
            message.starts_with("FormatError: no tool call"),
            "{message}"
        );
        assert!(message.contains("bash, edit, create, submit"), "{message}");
        assert!(message.contains("inside <think>"), "{message}");
    }

    #[test]
    fn every_format_error_case_follows_cwms_checks() {
        let t = |answer: &str| call(&format!("t</think>{answer}")).unwrap_err();
        assert_eq!(
            t("just text"),
            FormatError::NoToolCall { in_thinking: false }
        );
        assert_eq!(
            t("<tool: bash>\nls\n</tool>\n<tool: submit>\np\n</tool>"),
            FormatError::SeveralCalls {
                names: vec!["bash".into(), "submit".into()]
            }
        );
        assert_eq!(
            t("<tool: python>\nprint(1)\n</tool>"),
            FormatError::UnknownTool {
                name: "python".into()
            }
        );
        let mismatch = |opens, closes, calls| FormatError::TagCountMismatch {
            opens,
            closes,
            calls,
        };
        // Unterminated, closed on the same line, a stray `</tool>` in the body, a name with a
        // digit, two spaces after the colon: all are tag-count mismatches, as in CWM.
        assert_eq!(t("<tool: bash>\nls"), mismatch(1, 0, 0));
        assert_eq!(t("<tool: bash>\nls</tool>"), mismatch(1, 1, 0));
        assert_eq!(
            t("<tool: bash>\necho '\n</tool>'\n</tool>"),
            mismatch(1, 2, 1)
        );
        assert_eq!(t("<tool: bash2>\nls\n</tool>"), mismatch(1, 1, 0));
        assert_eq!(t("<tool:  bash>\nls\n</tool>"), mismatch(1, 1, 0));
        assert_eq!(t("see </tool>"), mismatch(0, 1, 0));
        // `</think>` exactly once.
        assert_eq!(
            call("<think>\nhmm").unwrap_err(),
            FormatError::ThinkCount { count: 0 }
        );
        assert_eq!(
            call("<tool: bash>\nls\n</tool>").unwrap_err(),
            FormatError::ThinkCount { count: 0 }
        );
        assert_eq!(
            call("a</think>b</think><tool: bash>\nls\n</tool>").unwrap_err(),
            FormatError::ThinkCount { count: 2 }
        );
        // A tab is whitespace too.
        assert_eq!(
            call("t</think><tool:\tbash>\nls\n</tool>").unwrap().tool,
            ToolName::Bash
        );
    }

    #[test]
    fn only_a_wrong_think_count_keeps_a_submitted_episode_going() {
        assert!(!FormatError::ThinkCount { count: 2 }.ends_after_submission());
        assert!(FormatError::UnknownTool { name: "x".into() }.ends_after_submission());
        assert!(FormatError::NoToolCall { in_thinking: false }.ends_after_submission());
    }
}
