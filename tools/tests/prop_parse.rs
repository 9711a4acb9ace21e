#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the tool-call parser (`parse_call`, `parse_reply`, `split_thinking`):
//! no input makes it panic, every refusal is a `FormatError` value the profile can render,
//! and a call rendered in CWM's syntax parses back to the same call.

use cwm_tools::{
    parse_call, parse_reply, split_thinking, FormatError, Profile, ToolCall, ToolName, THINK_END,
};
use proptest::prelude::*;

/// Pieces of the real syntax, so that concatenations reach every check of the parser.
const PIECES: &[&str] = &[
    "<tool:",
    "<tool: ",
    "<tool:\t",
    "<tool:  ",
    "bash",
    "edit",
    "create",
    "submit",
    "test",
    "python",
    "bash2",
    ">",
    ">\n",
    "\n",
    "\r\n",
    " ",
    "</tool>",
    "\n</tool>",
    "</tool",
    "<think>",
    "</think>",
    "</think",
    "ls -la",
    "x",
    "é",
    "\u{0}",
    "\u{2028}",
];

/// Text built from syntax pieces and a little free text.
fn near_valid() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(PIECES).prop_map(str::to_string),
        1 => ".{0,6}",
    ];
    proptest::collection::vec(piece, 0..32).prop_map(|parts| parts.concat())
}

/// Free text that holds no tag, so it cannot change what the parser finds.
fn prose() -> impl Strategy<Value = String> {
    ".{0,40}".prop_filter("no tags", |s| {
        !s.contains("<tool:") && !s.contains("</tool>") && !s.contains(THINK_END)
    })
}

/// A body the parser must return unchanged: not blank, no tag in it.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        "(?s).{1,80}",
        proptest::collection::vec("[ -~]{0,20}", 1..6).prop_map(|l| l.join("\n")),
    ]
    .prop_filter("a real body", |b| {
        !b.trim().is_empty() && !b.contains("<tool:") && !b.contains("</tool>")
    })
}

fn tool() -> impl Strategy<Value = ToolName> {
    proptest::sample::select(ToolName::ALL.to_vec())
}

/// The model-facing message of every error renders with the built-in profile.
fn renders(err: &FormatError) {
    let profile = Profile::builtin();
    assert!(!err.message(&profile, &ToolName::ALL).is_empty());
    let _ = err.ends_after_submission();
    assert!(!err.to_string().is_empty());
}

/// What holds for any outcome of `parse_call` on `answer`.
fn check_call(answer: &str, outcome: &Result<ToolCall, FormatError>) {
    match outcome {
        Ok(call) => {
            // One complete call, and its body is text of the answer.
            assert_eq!(answer.matches("<tool:").count(), 1);
            assert_eq!(answer.matches("</tool>").count(), 1);
            assert!(!call.body.trim().is_empty());
            assert!(answer.contains(&format!(">\n{}\n</tool>", call.body)));
        }
        Err(err) => renders(err),
    }
}

proptest! {
    #[test]
    fn parse_reply_never_panics_on_any_text(text in any::<String>()) {
        match parse_reply(&text) {
            Ok((reply, call)) => {
                assert_eq!(text.matches(THINK_END).count(), 1);
                check_call(reply.answer, &Ok(call));
            }
            Err(err) => renders(&err),
        }
        let outcome = parse_call(&text);
        check_call(&text, &outcome);
    }

    #[test]
    fn parse_reply_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_reply(&text);
        let outcome = parse_call(&text);
        check_call(&text, &outcome);
    }

    #[test]
    fn near_valid_replies_give_a_call_or_a_format_error(text in near_valid()) {
        if let Ok(reply) = split_thinking(&text) {
            assert!(text.ends_with(reply.answer));
            assert!(text.contains(reply.thinking.unwrap_or_default()));
        }
        match parse_reply(&text) {
            Ok((reply, call)) => check_call(reply.answer, &Ok(call)),
            Err(err) => renders(&err),
        }
        let outcome = parse_call(&text);
        check_call(&text, &outcome);
    }

    #[test]
    fn a_rendered_call_parses_back_to_the_same_call(
        tool in tool(),
        body in body(),
        before in prose(),
        after in prose(),
        thinking in prose(),
    ) {
        let call = ToolCall::new(tool, body);
        let answer = format!("{before}{}{after}", call.render());
        prop_assert_eq!(parse_call(&answer), Ok(call.clone()));
        let text = format!("<think>\n{thinking}\n{THINK_END}{answer}");
        let (reply, parsed) = parse_reply(&text).unwrap();
        prop_assert_eq!(parsed, call);
        prop_assert_eq!(reply.answer, answer.as_str());
    }

    #[test]
    fn a_name_outside_the_tool_set_is_an_unknown_tool(name in "[a-zA-Z_]{1,12}", body in body()) {
        prop_assume!(ToolName::from_name(&name).is_none());
        let answer = format!("<tool: {name}>\n{body}\n</tool>");
        prop_assert_eq!(parse_call(&answer), Err(FormatError::UnknownTool { name }));
    }

    #[test]
    fn two_rendered_calls_are_several_calls(a in tool(), b in tool(), x in body(), y in body()) {
        let answer = format!("{}\n{}", ToolCall::new(a, x).render(), ToolCall::new(b, y).render());
        let names = vec![a.as_str().to_string(), b.as_str().to_string()];
        prop_assert_eq!(parse_call(&answer), Err(FormatError::SeveralCalls { names }));
    }

    #[test]
    fn a_call_inside_the_thinking_is_never_taken(tool in tool(), body in body(), after in prose()) {
        let call = ToolCall::new(tool, body).render();
        let text = format!("<think>\n{call}\n{THINK_END}{after}");
        prop_assert_eq!(
            parse_reply(&text).map(|(_, c)| c),
            Err(FormatError::NoToolCall { in_thinking: true })
        );
    }
}
