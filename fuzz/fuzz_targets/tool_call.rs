//! The tool-call parser: `parse_reply`, `parse_call` and `split_thinking` on any text. A call
//! that parses renders back to text that parses to the same call.
#![no_main]

use cwm_tools::{parse_call, parse_reply, split_thinking, Profile, ToolName};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static PROFILE: LazyLock<Profile> = LazyLock::new(Profile::builtin);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = split_thinking(&text);
    match parse_reply(&text) {
        Ok((reply, call)) => {
            assert_eq!(parse_call(reply.answer).as_ref(), Ok(&call));
        }
        Err(err) => {
            let _ = err.message(&PROFILE, &ToolName::ALL);
        }
    }
    match parse_call(&text) {
        Ok(call) => assert_eq!(parse_call(&call.render()).as_ref(), Ok(&call)),
        Err(err) => {
            let _ = err.message(&PROFILE, &ToolName::CWM);
        }
    }
});
