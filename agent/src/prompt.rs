//! CWM's prompts (our wording, CWM's structure) and its chat rendering.

use crate::message::Message;

/// Everything the system prompt states about the episode's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    pub max_turns: u64,
    pub context_tokens: usize,
    pub command_timeout_secs: u64,
}

/// The `test` tool's entry in the system prompt.
const TEST_TOOL: &str = r#"

<tool: test>
[targets]
</tool>
Runs the repository's own test runner on [targets] (test files, test ids, or Django test labels, one per line) and reports how many passed, failed, errored and were skipped, each failure with its first lines, and the end of the output. With no targets it runs the test files you changed."#;

/// The system prompt: reason in `<think>` first; a persistent Linux container with turn and
/// context limits; the four tools (five with `test`); exactly one call per step.
pub fn system_prompt(limits: PromptLimits, test_tool: bool) -> String {
    let PromptLimits {
        max_turns,
        context_tokens,
        command_timeout_secs,
    } = limits;
    let test = if test_tool { TEST_TOOL } else { "" };
    format!(
        r#"You are a careful software engineering assistant. You always reason before you respond, in this format:

<think>
your private reasoning
</think>
your response

# Environment

You work in a Linux container through a persistent bash session. The session keeps its state between steps, but it is restarted when it breaks, when a command prints too much output, or when a command runs longer than {command_timeout_secs} seconds. Your whole conversation must fit in a context window of {context_tokens} tokens, and you have at most {max_turns} turns. You act through the tools below.

<tool: bash>
[command(s)]
</tool>
Runs [command(s)] in the session: any non-interactive bash, on one line or several.

<tool: edit>
[path]
<<<<<<< SEARCH
[search_lines]
=======
[replacement_lines]
>>>>>>> REPLACE
</tool>
Replaces [search_lines] with [replacement_lines] in the existing file [path]. [search_lines] must be one or more consecutive lines of the file, copied exactly (indentation and whitespace included), and must occur exactly once.

<tool: create>
[path]
[content]
</tool>
Creates the file [path] with [content]. [path] must not exist yet, and its directory must.

<tool: submit>
[path]
</tool>
Submits the patch file at [path] as your result. It must be non-empty and in `git diff` format.{test}

Relative paths are relative to /testbed.

RULES:
* Make exactly one tool call in each step, after your reasoning. Never more than one.
* Every step must contain a tool call until you have submitted.
* After a successful submission, either keep working and submit again, or finish with a final reply that contains no tool call."#
    )
}

/// The user prompt: the issue inside `<issue_description>`, the repository at `/testbed`.
pub fn user_prompt(issue: &str) -> String {
    format!(
        r#"Resolve the issue below by changing the code, then submit a patch file.

<issue_description>
{issue}
</issue_description>

The repository is at /testbed with all dependencies installed, and the bash session starts there. Submit the path of a patch file that holds all your code changes in `git diff` format (for example, write it with `git diff > /tmp/patch.diff`). You may refine your changes and submit again as often as you need; the last submission counts.

Correctness comes first: explore the code base, reproduce the problem, and check your fix with tests, including the existing ones, before you submit.

Once you have submitted and are confident in the fix, end with a final reply without a tool call that summarizes the issue, how you investigated it, what you changed, and how you verified it."#
    )
}

/// Starts every rendered prompt.
pub const BEGIN_OF_TEXT: &str = "<|begin_of_text|>";
/// Ends every message.
pub const EOT: &str = "<|eot_id|>";
/// What the model is prompted with to write its next turn; it starts inside the reasoning.
pub const GENERATION_PREFIX: &str = "<|start_header_id|>assistant<|end_header_id|>\n\n<think>\n";
/// The part of [`GENERATION_PREFIX`] that belongs to the assistant's message content.
pub const THINK_PREFIX: &str = "<think>\n";
/// Token ids CWM stops generating at (`<|end_of_text|>`, `<|eom_id|>`, `<|eot_id|>`).
pub const STOP_TOKEN_IDS: [u32; 3] = [128001, 128008, 128009];

/// One message in CWM's chat format.
pub fn render_cwm_message(message: &Message) -> String {
    format!(
        "<|start_header_id|>{}<|end_header_id|>\n\n{}{EOT}",
        message.role, message.content
    )
}

/// The full CWM prompt for the next assistant turn: `<|begin_of_text|>`, every message, then
/// [`GENERATION_PREFIX`].
///
/// Assistant messages hold their content as generated, starting with `<think>\n` (see
/// [`assistant_content`]), so each turn's prompt extends the previous prompt plus the reply:
/// an engine with a KV cache only prefills the new suffix.
pub fn render_cwm_prompt(messages: &[Message]) -> String {
    let mut out = String::from(BEGIN_OF_TEXT);
    for message in messages {
        out.push_str(&render_cwm_message(message));
    }
    out.push_str(GENERATION_PREFIX);
    out
}

/// The assistant message content for a completion generated after [`GENERATION_PREFIX`]:
/// the `<think>\n` the prompt forced, then the completion.
pub fn assistant_content(completion: &str) -> String {
    if completion.trim_start().starts_with("<think>") {
        completion.to_string()
    } else {
        format!("{THINK_PREFIX}{completion}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cwm_chat_format() {
        let messages = vec![
            Message::system("S"),
            Message::user("U"),
            Message::assistant("<think>\nt\n</think>\n<tool: bash>\nls\n</tool>"),
            Message::tool("bash", "O"),
        ];
        let text = render_cwm_prompt(&messages);
        assert_eq!(
            text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n<think>\nt\n</think>\n<tool: bash>\nls\n</tool><|eot_id|>\
             <|start_header_id|>tool: bash<|end_header_id|>\n\nO<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n<think>\n"
        );
    }

    #[test]
    fn each_prompt_extends_the_previous_one_by_the_completion() {
        let mut messages = vec![Message::system("S"), Message::user("U")];
        let before = render_cwm_prompt(&messages);
        let completion = "t\n</think>\n<tool: bash>\nls\n</tool>";
        messages.push(Message::assistant(assistant_content(completion)));
        let after = render_cwm_prompt(&messages);
        assert!(after.starts_with(&format!("{before}{completion}{EOT}")));
    }

    #[test]
    fn prompts_state_the_protocol() {
        let limits = PromptLimits {
            max_turns: 128,
            context_tokens: 131072,
            command_timeout_secs: 120,
        };
        assert!(!system_prompt(limits, false).contains("<tool: test>"));
        let s = system_prompt(limits, true);
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
        let u = user_prompt("Bug!");
        assert!(
            u.contains("<issue_description>\nBug!\n</issue_description>") && u.contains("/testbed")
        );
    }
}
