//! Parsing one assistant reply: the thinking/answer split and the single `<tool: NAME>` call.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Marks the end of the model's private reasoning. Calls are only parsed after it.
pub const THINK_END: &str = "</think>";
/// Opens the reasoning block (CWM gets it from the generation prefix).
pub const THINK_START: &str = "<think>";
const TOOL_OPEN: &str = "<tool:";
const TOOL_CLOSE: &str = "\n</tool>";

/// The tools a model may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolName {
    Bash,
    Edit,
    Create,
    Submit,
    /// Runs the repository's own tests and reports parsed results (not one of CWM's tools).
    Test,
}

impl ToolName {
    pub const ALL: [ToolName; 5] = [
        Self::Bash,
        Self::Edit,
        Self::Create,
        Self::Submit,
        Self::Test,
    ];
    /// CWM's own four tools: the `cwm` preset, for reproducing CWM's numbers.
    pub const CWM: [ToolName; 4] = [Self::Bash, Self::Edit, Self::Create, Self::Submit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bash => "bash",
            Self::Edit => "edit",
            Self::Create => "create",
            Self::Submit => "submit",
            Self::Test => "test",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed tool call: `<tool: NAME>\nBODY\n</tool>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool: ToolName,
    pub body: String,
}

impl ToolCall {
    pub fn new(tool: ToolName, body: impl Into<String>) -> Self {
        Self {
            tool,
            body: body.into(),
        }
    }

    /// The call as the model writes it.
    pub fn render(&self) -> String {
        format!("<tool: {}>\n{}\n</tool>", self.tool, self.body)
    }
}

/// A malformed turn. Its `Display` is the text after `FormatError: ` that the model is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("no tool call found after </think>. Make exactly one call per step in the form `<tool: NAME>\\n...\\n</tool>`, with NAME one of bash, edit, create, submit.{}", if *.in_thinking { " A call written inside <think> ... </think> is not executed: put it after </think>." } else { "" })]
    NoToolCall { in_thinking: bool },
    #[error("found {} tool calls ({}), but exactly one is allowed per step. Make one call, wait for its output, then make the next.", .names.len(), .names.join(", "))]
    SeveralCalls { names: Vec<String> },
    #[error("unknown tool `{name}`. The available tools are bash, edit, create and submit.")]
    UnknownTool { name: String },
    #[error("the `<tool: {name}>` block is not terminated. End the call with `</tool>` on a line of its own.")]
    Unterminated { name: String },
    #[error("malformed tool header `{header}`. A call starts with `<tool: NAME>` followed by a newline.")]
    BadHeader { header: String },
    #[error("the `{name}` call has an empty body. Put its argument between the `<tool: {name}>` line and `</tool>`.")]
    EmptyBody { name: String },
    #[error("found {count} `</think>` tags, but the reasoning must be closed exactly once, before the tool call.")]
    SeveralThinkEnds { count: usize },
    #[error(
        "the reasoning block was never closed. Finish it with `</think>`, then make one tool call."
    )]
    UnclosedThinking,
}

impl FormatError {
    /// The user message the model receives for this error.
    pub fn message(&self) -> String {
        format!("FormatError: {self}")
    }
}

/// A reply split at `</think>`. `thinking` excludes the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    pub thinking: Option<&'a str>,
    pub answer: &'a str,
}

/// Splits an assistant message into reasoning and answer.
///
/// A reply with no `</think>` is all answer, unless it opens `<think>`: then it is unclosed.
pub fn split_thinking(text: &str) -> Result<Reply<'_>, FormatError> {
    let count = text.matches(THINK_END).count();
    if count > 1 {
        return Err(FormatError::SeveralThinkEnds { count });
    }
    match text.split_once(THINK_END) {
        Some((thinking, answer)) => {
            let thinking = thinking.trim_start();
            let thinking = thinking.strip_prefix(THINK_START).unwrap_or(thinking);
            Ok(Reply {
                thinking: Some(thinking.trim_matches('\n')),
                answer,
            })
        }
        None if text.trim_start().starts_with(THINK_START) => Err(FormatError::UnclosedThinking),
        None => Ok(Reply {
            thinking: None,
            answer: text,
        }),
    }
}

/// Parses the single tool call of an answer (the text after `</think>`).
pub fn parse_call(answer: &str) -> Result<ToolCall, FormatError> {
    let blocks = scan_blocks(answer)?;
    match blocks.as_slice() {
        [] => Err(FormatError::NoToolCall { in_thinking: false }),
        [(name, body)] => to_call(name, body),
        several => Err(FormatError::SeveralCalls {
            names: several.iter().map(|(n, _)| n.to_string()).collect(),
        }),
    }
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

fn to_call(name: &str, body: &str) -> Result<ToolCall, FormatError> {
    let tool = ToolName::from_name(name).ok_or_else(|| FormatError::UnknownTool {
        name: name.to_string(),
    })?;
    if body.trim().is_empty() {
        return Err(FormatError::EmptyBody {
            name: name.to_string(),
        });
    }
    Ok(ToolCall::new(tool, body))
}

/// Finds every `<tool: NAME>\nBODY\n</tool>` block, in order.
fn scan_blocks(text: &str) -> Result<Vec<(&str, &str)>, FormatError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(TOOL_OPEN) {
        let after_open = &rest[start + TOOL_OPEN.len()..];
        let (name, after_header) = parse_header(after_open)?;
        // An empty body is `<tool: x>\n</tool>`: the header's newline doubles as the close's.
        let body_and_close = format!("\n{after_header}");
        let Some(end) = body_and_close.find(TOOL_CLOSE) else {
            return Err(FormatError::Unterminated {
                name: name.to_string(),
            });
        };
        let body = &after_header[..end.saturating_sub(1)];
        blocks.push((name, body));
        rest = &after_header[(end + TOOL_CLOSE.len()).saturating_sub(1)..];
    }
    Ok(blocks)
}

/// Parses ` NAME>\n` right after `<tool:`; returns the name and the text after the newline.
fn parse_header(text: &str) -> Result<(&str, &str), FormatError> {
    let line_end = text.find('\n').unwrap_or(text.len());
    let line = &text[..line_end];
    let bad = || FormatError::BadHeader {
        header: format!("{TOOL_OPEN}{}", line.chars().take(60).collect::<String>()),
    };
    let name = line.strip_suffix('>').ok_or_else(bad)?.trim();
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(bad());
    }
    if line_end == text.len() {
        return Err(FormatError::Unterminated {
            name: name.to_string(),
        });
    }
    Ok((name, &text[line_end + 1..]))
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
    }

    #[test]
    fn body_keeps_trailing_blank_lines_and_empty_body_is_rejected() {
        let c = call("<tool: create>\na.py\nx = 1\n\n</tool>").unwrap();
        assert_eq!(c.body, "a.py\nx = 1\n");
        let err = call("<tool: submit>\n</tool>").unwrap_err();
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
        assert!(err.message().starts_with("FormatError: no tool call"));
        assert!(err.message().contains("inside <think>"));
    }

    #[test]
    fn every_format_error_case() {
        assert_eq!(
            call("just text").unwrap_err(),
            FormatError::NoToolCall { in_thinking: false }
        );
        let two = call("<tool: bash>\nls\n</tool>\n<tool: submit>\np\n</tool>").unwrap_err();
        assert_eq!(
            two,
            FormatError::SeveralCalls {
                names: vec!["bash".into(), "submit".into()]
            }
        );
        assert!(two
            .to_string()
            .contains("found 2 tool calls (bash, submit)"));
        assert_eq!(
            call("<tool: python>\nprint(1)\n</tool>").unwrap_err(),
            FormatError::UnknownTool {
                name: "python".into()
            }
        );
        assert_eq!(
            call("<tool: bash>\nls").unwrap_err(),
            FormatError::Unterminated {
                name: "bash".into()
            }
        );
        assert_eq!(
            call("<tool: bash>\nls</tool>").unwrap_err(),
            FormatError::Unterminated {
                name: "bash".into()
            }
        );
        assert!(matches!(
            call("<tool: ba sh>\nls\n</tool>").unwrap_err(),
            FormatError::BadHeader { .. }
        ));
        assert_eq!(
            call("<think>\nhmm").unwrap_err(),
            FormatError::UnclosedThinking
        );
        assert_eq!(
            call("a</think>b</think><tool: bash>\nls\n</tool>").unwrap_err(),
            FormatError::SeveralThinkEnds { count: 2 }
        );
    }

    #[test]
    fn text_around_the_call_is_allowed() {
        let c = call("</think>\nLet me check.\n<tool: bash>\nls\n</tool>\nthanks").unwrap();
        assert_eq!(c.body, "ls");
        assert_eq!(
            call(&c.render()).unwrap(),
            ToolCall::new(ToolName::Bash, "ls")
        );
    }
}
