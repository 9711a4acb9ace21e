//! CWM's chat format: how messages are rendered into the text CWM is prompted with.

use crate::message::{Message, Role};
use crate::pystr::py_strip;

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
/// System and user bodies are stripped of surrounding whitespace, as CWM's tokenizer
/// encodes a dialog; tool bodies are kept as they are, and assistant bodies as generated.
pub fn render_cwm_message(message: &Message) -> String {
    let body = match message.role {
        Role::System | Role::User => py_strip(&message.content),
        _ => message.content.as_str(),
    };
    format!(
        "<|start_header_id|>{}<|end_header_id|>\n\n{body}{EOT}",
        message.role
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
}
