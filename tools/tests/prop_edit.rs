#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the `edit` and `create` body parsers and of applying an edit: no body
//! or file makes them panic, refusals are values whose messages render, and a body written
//! in the SEARCH/REPLACE form parses back to the lines it was written from.

use cwm_tools::edit::{apply_edit, parse_create, parse_edit, EditError, EditSpec};
use cwm_tools::Profile;
use proptest::prelude::*;

const SEARCH: &str = "<<<<<<< SEARCH";
const DIVIDER: &str = "=======";
const REPLACE: &str = ">>>>>>> REPLACE";

/// Lines of the real syntax, and lines close to it.
const LINES: &[&str] = &[
    SEARCH,
    DIVIDER,
    REPLACE,
    "<<<<<<< SEARCH  ",
    "======= ",
    ">>>>>>> REPLACE\t",
    "<<<<<<<SEARCH",
    "========",
    "=====",
    "",
    " ",
    "\r",
    "a.py",
    "  a.py  ",
    "x = 1",
    "    x = 1",
    "x = 10",
    "     1\tx = 1",
    "é",
];

fn near_valid_body() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => proptest::sample::select(LINES).prop_map(str::to_string),
        1 => ".{0,8}",
    ];
    let eol = prop_oneof![Just("\n"), Just("\r\n")];
    proptest::collection::vec((line, eol), 0..16).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(line, eol)| format!("{line}{eol}"))
            .collect()
    })
}

/// A line that is none of the markers and keeps its bytes through the parser.
fn plain_line() -> impl Strategy<Value = String> {
    "[^\n]{0,24}".prop_filter("not a marker", |l| {
        let t = l.trim_end();
        !l.ends_with('\r') && t != SEARCH && t != DIVIDER && t != REPLACE
    })
}

fn path() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_./-]{1,30}"
}

fn spec() -> impl Strategy<Value = EditSpec> {
    (
        path(),
        proptest::collection::vec(plain_line(), 1..6),
        proptest::collection::vec(plain_line(), 0..6),
    )
        .prop_filter("search is not one blank line", |(_, search, _)| {
            search.as_slice() != [""]
        })
        .prop_map(|(path, search, replace)| EditSpec {
            path,
            search,
            replace,
        })
}

/// `spec` written as a model writes an edit body.
fn render(spec: &EditSpec) -> String {
    let mut body = format!("{}\n{SEARCH}\n", spec.path);
    for line in &spec.search {
        body.push_str(line);
        body.push('\n');
    }
    body.push_str(DIVIDER);
    body.push('\n');
    for line in &spec.replace {
        body.push_str(line);
        body.push('\n');
    }
    body.push_str(REPLACE);
    body
}

fn renders(err: &EditError) {
    assert!(!err.message(&Profile::builtin()).is_empty());
}

/// Parses, then applies to `content`: whatever comes back is a value, and messages render.
fn parse_and_apply(body: &str, content: &str) {
    let profile = Profile::builtin();
    match parse_edit(body) {
        Ok(spec) => {
            assert!(!spec.path.is_empty());
            assert!(!spec.search.is_empty());
            match apply_edit(content, &spec) {
                Ok(edited) => {
                    assert!(edited.line >= 1);
                    assert_eq!(edited.new_lines, spec.replace.len());
                    assert!(!edited.message(&profile, &spec.path).is_empty());
                }
                Err(err) => renders(&err),
            }
        }
        Err(err) => renders(&err),
    }
    match parse_create(body) {
        Ok((path, created)) => {
            assert!(!path.is_empty() && !path.contains('\n'));
            assert!(body.ends_with(&created));
        }
        Err(err) => assert!(!err.message(&profile).is_empty()),
    }
}

proptest! {
    #[test]
    fn any_text_is_parsed_or_refused(body in any::<String>(), content in any::<String>()) {
        parse_and_apply(&body, &content);
    }

    #[test]
    fn any_bytes_are_parsed_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let body = String::from_utf8_lossy(&bytes);
        parse_and_apply(&body, &body);
    }

    #[test]
    fn near_valid_bodies_are_parsed_or_refused(body in near_valid_body(), content in near_valid_body()) {
        parse_and_apply(&body, &content);
    }

    #[test]
    fn a_written_edit_parses_back(spec in spec(), crlf in any::<bool>(), trailing in "[ \t\n]{0,4}") {
        let mut body = render(&spec);
        if crlf {
            body = body.replace('\n', "\r\n");
        }
        body.push_str(&trailing);
        prop_assert_eq!(parse_edit(&body), Ok(spec));
    }

    #[test]
    fn an_edit_of_a_unique_block_replaces_exactly_it(
        spec in spec(),
        before in proptest::collection::vec("[a-z ]{0,10}", 0..8),
        after in proptest::collection::vec("[a-z ]{0,10}", 0..8),
    ) {
        // A token no other line has makes the block occur once.
        let mut spec = spec;
        spec.search[0].push_str(" \u{2603}");
        let lines: Vec<&String> = before.iter().chain(&spec.search).chain(&after).collect();
        let content: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let edited = apply_edit(&content, &spec).unwrap();
        let expected: String = before
            .iter()
            .chain(&spec.replace)
            .chain(&after)
            .map(|l| format!("{l}\n"))
            .collect();
        prop_assert_eq!(&edited.content, &expected);
        prop_assert_eq!(edited.line, before.len() + 1);
        prop_assert!(!edited.message(&Profile::builtin(), &spec.path).is_empty());
    }

    #[test]
    fn a_written_create_parses_back(path in path(), content in any::<String>()) {
        let body = format!("{path}\n{content}");
        prop_assert_eq!(parse_create(&body), Ok((path, content)));
    }
}
