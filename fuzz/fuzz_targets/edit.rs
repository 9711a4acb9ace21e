//! The `edit` and `create` body parsers, and applying a parsed edit to file text. The input
//! is the body, then (after the first NUL byte) the file's content.
#![no_main]

use cwm_tools::edit::{apply_edit, parse_create, parse_edit};
use cwm_tools::Profile;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static PROFILE: LazyLock<Profile> = LazyLock::new(Profile::builtin);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (body, content) = text.split_once('\0').unwrap_or((&text, ""));
    match parse_edit(body) {
        Ok(spec) => match apply_edit(content, &spec) {
            Ok(edited) => {
                assert_eq!(edited.new_lines, spec.replace.len());
                let _ = edited.message(&PROFILE, &spec.path);
            }
            Err(err) => {
                let _ = err.message(&PROFILE);
            }
        },
        Err(err) => {
            let _ = err.message(&PROFILE);
        }
    }
    match parse_create(body) {
        Ok((path, _)) => assert!(!path.is_empty()),
        Err(err) => {
            let _ = err.message(&PROFILE);
        }
    }
});
