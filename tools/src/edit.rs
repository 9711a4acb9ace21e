//! The pure parts of `edit` and `create`: parsing their bodies and applying a SEARCH/REPLACE
//! block to file text. I/O lives in [`crate::exec`]. Errors and outcomes are typed; their
//! `message` methods render them with the prompt profile's `edit.*` and `create.*` texts.
//!
//! An edit works on whole lines, compared without their line endings: `x = 1` never matches
//! inside `x = 10`, and CRLF files match text written with plain newlines. The replacement
//! lines take the ending of the lines they replace, so a file keeps its own endings.

use minijinja::context;

use crate::profile::Profile;

const SEARCH: &str = "<<<<<<< SEARCH";
const DIVIDER: &str = "=======";
const REPLACE: &str = ">>>>>>> REPLACE";
/// Lines of context shown before and after a successful edit (CWM's `SNIPPET_LINES`).
const SNIPPET_LINES: usize = 8;

/// A parsed `edit` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditSpec {
    /// The file, as the model wrote it.
    pub path: String,
    /// The lines to find, without line endings; never empty.
    pub search: Vec<String>,
    /// The lines to put in their place; none deletes the search lines.
    pub replace: Vec<String>,
}

/// Why an edit was refused; [`EditError::message`] renders it with the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The body does not have the edit form.
    Malformed(Malformed),
    /// More than one SEARCH/REPLACE block.
    SeveralBlocks { count: usize },
    /// Several lines are exactly `=======`.
    Ambiguous { dividers: usize },
    /// No search lines, or one blank line.
    EmptySearch,
    /// The search lines occur nowhere in the file.
    NoMatch {
        path: String,
        hint: Option<NoMatchHint>,
    },
    /// The search lines occur at each of `lines` (1-based).
    SeveralMatches { path: String, lines: Vec<usize> },
}

/// What is wrong with a malformed edit body (the `edit.reason_*` texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    OneLine,
    NoPath,
    NoSearchMarker,
    NoDivider,
    NoReplaceMarker,
    TextAfterReplace,
}

/// The likeliest reason a search missed (the `edit.hint_*` texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMatchHint {
    /// The search lines carry `cat -n` line numbers.
    LineNumbers,
    /// The first search line is file line `line` apart from indentation.
    Indentation { line: usize },
    /// The first search line is only part of file line `line`.
    LongerLine { line: usize },
}

impl EditError {
    /// The message for the model.
    pub fn message(&self, profile: &Profile) -> String {
        match self {
            Self::Malformed(why) => profile.render(
                "edit.parse_error",
                context! { reason => profile.text(why.key()), format => profile.text("edit.format") },
            ),
            Self::SeveralBlocks { count } => {
                profile.render("edit.several_blocks", context! { count })
            }
            Self::Ambiguous { dividers } => profile.render("edit.ambiguous", context! { dividers }),
            Self::EmptySearch => profile.text("edit.empty_search"),
            Self::NoMatch { path, hint } => {
                let hint = hint.map(|h| h.message(profile)).unwrap_or_default();
                profile.render("edit.no_match", context! { path, hint })
            }
            Self::SeveralMatches { path, lines } => profile.render(
                "edit.several_matches",
                context! { path, lines, count => lines.len() },
            ),
        }
    }
}

impl Malformed {
    fn key(self) -> &'static str {
        match self {
            Self::OneLine => "edit.reason_one_line",
            Self::NoPath => "edit.reason_no_path",
            Self::NoSearchMarker => "edit.reason_no_search_marker",
            Self::NoDivider => "edit.reason_no_divider",
            Self::NoReplaceMarker => "edit.reason_no_replace_marker",
            Self::TextAfterReplace => "edit.reason_text_after_replace",
        }
    }
}

impl NoMatchHint {
    fn message(self, profile: &Profile) -> String {
        match self {
            Self::LineNumbers => profile.text("edit.hint_line_numbers"),
            Self::Indentation { line } => {
                profile.render("edit.hint_indentation", context! { line })
            }
            Self::LongerLine { line } => profile.render("edit.hint_longer_line", context! { line }),
        }
    }
}

/// Parses `PATH\n<<<<<<< SEARCH\n...\n=======\n...\n>>>>>>> REPLACE`.
pub fn parse_edit(body: &str) -> Result<EditSpec, EditError> {
    let lines: Vec<&str> = body.split('\n').map(without_cr).collect();
    let [path, open, block @ ..] = lines.as_slice() else {
        return Err(EditError::Malformed(Malformed::OneLine));
    };
    let path = path.trim();
    if path.is_empty() {
        return Err(EditError::Malformed(Malformed::NoPath));
    }
    if !is_marker(open, SEARCH) {
        return Err(EditError::Malformed(Malformed::NoSearchMarker));
    }
    let inner = block_lines(block)?;
    let (search, replace) = split_at_divider(inner)?;
    // A lone blank line is how an empty section reads in CWM's format.
    if search.is_empty() || search == [""] {
        return Err(EditError::EmptySearch);
    }
    Ok(EditSpec {
        path: path.to_string(),
        search: search.iter().map(|l| l.to_string()).collect(),
        replace: replace.iter().map(|l| l.to_string()).collect(),
    })
}

/// The lines between `<<<<<<< SEARCH` and the one `>>>>>>> REPLACE`.
fn block_lines<'a, 'b>(block: &'a [&'b str]) -> Result<&'a [&'b str], EditError> {
    let closes = marker_lines(block, REPLACE);
    if closes.len() > 1 || block.iter().any(|l| is_marker(l, SEARCH)) {
        return Err(EditError::SeveralBlocks {
            count: closes.len().max(2),
        });
    }
    let Some(&close) = closes.first() else {
        return Err(EditError::Malformed(Malformed::NoReplaceMarker));
    };
    if block[close + 1..].iter().any(|l| !l.trim().is_empty()) {
        return Err(EditError::Malformed(Malformed::TextAfterReplace));
    }
    Ok(&block[..close])
}

/// Splits at the one `=======` line. A second one makes the split ambiguous: a
/// reStructuredText underline in the search text must not silently become the divider.
fn split_at_divider<'a, 'b>(
    inner: &'a [&'b str],
) -> Result<(&'a [&'b str], &'a [&'b str]), EditError> {
    match marker_lines(inner, DIVIDER).as_slice() {
        [] => Err(EditError::Malformed(Malformed::NoDivider)),
        [at] => Ok((&inner[..*at], &inner[at + 1..])),
        many => Err(EditError::Ambiguous {
            dividers: many.len(),
        }),
    }
}

/// A marker line, allowing trailing whitespace.
fn is_marker(line: &str, marker: &str) -> bool {
    line.trim_end() == marker
}

fn marker_lines(lines: &[&str], marker: &str) -> Vec<usize> {
    (0..lines.len())
        .filter(|&i| is_marker(lines[i], marker))
        .collect()
}

fn without_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// A line's ending: `\r\n`, `\n`, or nothing on an unterminated last line.
fn ending(line: &str) -> &str {
    if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

/// A line without its ending.
fn text(line: &str) -> &str {
    &line[..line.len() - ending(line).len()]
}

/// A successful edit: the new content and where the new lines are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub content: String,
    /// The first new line (1-based).
    pub line: usize,
    /// How many lines replaced the search lines.
    pub new_lines: usize,
}

impl Edited {
    /// The success message. The context is shown as it is in the file, without line
    /// numbers, so the model can copy it into its next search unchanged.
    pub fn message(&self, profile: &Profile, path: &str) -> String {
        let line = self.line;
        let lines: Vec<&str> = self.content.lines().collect();
        let first = line.saturating_sub(SNIPPET_LINES).max(1);
        let last = (line + self.new_lines + SNIPPET_LINES - 1).min(lines.len());
        if first > last {
            return profile.render("edit.emptied", context! { path, line });
        }
        let snippet_lines = &lines[first - 1..last];
        profile.render(
            "edit.success",
            context! {
                path, line, first, last, snippet_lines,
                total => lines.len(),
                snippet => snippet_lines.join("\n"),
            },
        )
    }
}

/// Applies the edit to `content`.
pub fn apply_edit(content: &str, spec: &EditSpec) -> Result<Edited, EditError> {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    match find_block(&lines, &spec.search).as_slice() {
        [] => Err(EditError::NoMatch {
            path: spec.path.clone(),
            hint: no_match_hint(&lines, &spec.search),
        }),
        [at] => Ok(Edited {
            content: replace_block(&lines, *at, spec),
            line: at + 1,
            new_lines: spec.replace.len(),
        }),
        many => Err(EditError::SeveralMatches {
            path: spec.path.clone(),
            lines: many.iter().map(|at| at + 1).collect(),
        }),
    }
}

/// Indices of every (possibly overlapping) run of whole lines equal to `search`.
fn find_block(lines: &[&str], search: &[String]) -> Vec<usize> {
    if search.is_empty() {
        return Vec::new();
    }
    let matches = |window: &[&str]| {
        window
            .iter()
            .zip(search)
            .all(|(line, want)| text(line) == without_cr(want))
    };
    lines
        .windows(search.len())
        .enumerate()
        .filter(|(_, window)| matches(window))
        .map(|(at, _)| at)
        .collect()
}

/// The content with the matched lines at `at` replaced. New lines take the ending of the
/// lines they replace; the last one keeps the last replaced line's ending (none at the end
/// of a file without a final newline).
fn replace_block(lines: &[&str], at: usize, spec: &EditSpec) -> String {
    let end = at + spec.search.len();
    let eol = lines[at..end]
        .iter()
        .chain(lines)
        .map(|l| ending(l))
        .find(|e| !e.is_empty())
        .unwrap_or("\n");
    let last_eol = ending(lines[end - 1]);
    let mut new: String = lines[..at].concat();
    for (i, line) in spec.replace.iter().enumerate() {
        new.push_str(without_cr(line));
        new.push_str(if i + 1 == spec.replace.len() {
            last_eol
        } else {
            eol
        });
    }
    new.push_str(&lines[end..].concat());
    new
}

/// The likeliest reason a search missed, when one can be seen.
fn no_match_hint(lines: &[&str], search: &[String]) -> Option<NoMatchHint> {
    let numbered = search.iter().any(|l| has_line_number(l));
    if numbered && search.iter().all(|l| l.is_empty() || has_line_number(l)) {
        return Some(NoMatchHint::LineNumbers);
    }
    let first = search[0].trim();
    if first.is_empty() {
        return None;
    }
    if let Some(n) = lines.iter().position(|l| text(l).trim() == first) {
        return Some(NoMatchHint::Indentation { line: n + 1 });
    }
    let n = lines.iter().position(|l| text(l).contains(first))?;
    Some(NoMatchHint::LongerLine { line: n + 1 })
}

/// `   12\tcode`, as `cat -n` and `nl` number lines.
fn has_line_number(line: &str) -> bool {
    line.trim_start()
        .split_once('\t')
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a create body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// The first line holds no path.
    NoPath,
}

impl CreateError {
    /// The message for the model.
    pub fn message(self, profile: &Profile) -> String {
        match self {
            Self::NoPath => profile.text("create.no_path"),
        }
    }
}

/// Parses a `create` body: the path, then the content (possibly empty).
pub fn parse_create(body: &str) -> Result<(String, String), CreateError> {
    let (path, content) = body.split_once('\n').unwrap_or((body, ""));
    let path = path.trim();
    if path.is_empty() {
        return Err(CreateError::NoPath);
    }
    Ok((path.to_string(), content.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses, rendering an error with the built-in profile.
    fn parse(body: &str) -> Result<EditSpec, String> {
        parse_edit(body).map_err(|e| e.message(&Profile::builtin()))
    }

    /// Applies, rendering the outcome's message with the built-in profile.
    fn apply(content: &str, spec: &EditSpec) -> Result<(String, String), String> {
        let profile = Profile::builtin();
        match apply_edit(content, spec) {
            Ok(edited) => {
                let message = edited.message(&profile, &spec.path);
                Ok((edited.content, message))
            }
            Err(e) => Err(e.message(&profile)),
        }
    }

    fn spec(search: &str, replace: &[&str]) -> EditSpec {
        EditSpec {
            path: "a.py".into(),
            search: search.split('\n').map(String::from).collect(),
            replace: replace.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn parses_an_edit_body() {
        let body =
            "a.py\n<<<<<<< SEARCH\n    x = 1\n=======\n    x = 2\n    y = 3\n>>>>>>> REPLACE";
        assert_eq!(
            parse(body).unwrap(),
            spec("    x = 1", &["    x = 2", "    y = 3"])
        );
        let deletion = "a.py\n<<<<<<< SEARCH\nx\n=======\n>>>>>>> REPLACE";
        assert_eq!(parse(deletion).unwrap(), spec("x", &[]));
        let blank = "a.py\n<<<<<<< SEARCH\nx\n=======\n\n>>>>>>> REPLACE\n";
        assert_eq!(parse(blank).unwrap(), spec("x", &[""]));
        let crlf = "a.py\r\n<<<<<<< SEARCH\r\nx\r\n=======\r\ny\r\n>>>>>>> REPLACE\r\n";
        assert_eq!(parse(crlf).unwrap(), spec("x", &["y"]));
    }

    #[test]
    fn rejects_bad_edit_bodies() {
        assert!(parse("a.py").unwrap_err().contains("only one line"));
        assert!(parse("a.py\nx\n=======\ny\n>>>>>>> REPLACE")
            .unwrap_err()
            .contains("SEARCH"));
        assert!(parse("a.py\n<<<<<<< SEARCH\nx\ny\n>>>>>>> REPLACE")
            .unwrap_err()
            .contains("======="));
        assert!(parse("a.py\n<<<<<<< SEARCH\nx\n=======\ny")
            .unwrap_err()
            .contains("REPLACE"));
        let two = "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nz\n=======\nw\n>>>>>>> REPLACE";
        assert!(parse(two).unwrap_err().contains("Only one"));
        for empty in [
            "a.py\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE",
            "a.py\n<<<<<<< SEARCH\n\n=======\nx\n>>>>>>> REPLACE",
        ] {
            assert!(parse(empty).unwrap_err().contains("search lines are empty"));
        }
    }

    #[test]
    fn a_divider_inside_the_block_is_ambiguous() {
        let body = "doc.rst\n<<<<<<< SEARCH\nTitle\n=======\n=======\nNew\n===\n>>>>>>> REPLACE";
        let err = parse(body).unwrap_err();
        assert!(
            err.contains("ambiguous") && err.contains("2 lines"),
            "{err}"
        );
        // Longer underlines are ordinary lines.
        let body = "doc.rst\n<<<<<<< SEARCH\nTitle\n=====\n=======\nNew\n===\n>>>>>>> REPLACE";
        assert_eq!(parse(body).unwrap().search, ["Title", "====="]);
    }

    #[test]
    fn applies_exactly_once_and_reports_counts() {
        let content = "def f():\n    x = 1\n    return x\n";
        let (new, msg) = apply(content, &spec("    x = 1", &["    x = 2"])).unwrap();
        assert_eq!(new, "def f():\n    x = 2\n    return x\n");
        assert!(msg.contains("at line 2"), "{msg}");
        let none = apply(content, &spec("x = 1", &["x = 2"])).unwrap_err();
        assert!(
            none.contains("occur 0 times") && none.contains("indentation"),
            "{none}"
        );
        let twice = apply("a\nb\na\n", &spec("a", &["c"])).unwrap_err();
        assert!(
            twice.contains("occur 2 times") && twice.contains("lines 1, 3"),
            "{twice}"
        );
    }

    #[test]
    fn matches_whole_lines_only() {
        let content = "x = 10\ny = 2\n";
        let err = apply(content, &spec("x = 1", &["x = 2"])).unwrap_err();
        assert!(err.contains("longer line (line 1)"), "{err}");
        let (new, _) = apply("x = 10\nx = 1\n", &spec("x = 1", &["x = 2"])).unwrap();
        assert_eq!(new, "x = 10\nx = 2\n");
        let err = apply(content, &spec("y = 2\nz", &["q"])).unwrap_err();
        assert!(err.contains("occur 0 times"), "{err}");
    }

    #[test]
    fn keeps_each_files_line_endings() {
        let crlf = "a\r\nb\r\nc\r\n";
        let (new, _) = apply(crlf, &spec("b", &["B", "B2"])).unwrap();
        assert_eq!(new, "a\r\nB\r\nB2\r\nc\r\n");
        let (new, _) = apply(crlf, &spec("a\nb", &[])).unwrap();
        assert_eq!(new, "c\r\n");
        // The last line without a newline stays without one.
        let (new, _) = apply("a\r\nb", &spec("b", &["B", "B2"])).unwrap();
        assert_eq!(new, "a\r\nB\r\nB2");
        let (new, _) = apply("a\nb\n", &spec("a", &["", "A"])).unwrap();
        assert_eq!(new, "\nA\nb\n");
    }

    #[test]
    fn context_is_shown_as_it_is_in_the_file() {
        let content: String = (1..=30).map(|i| format!("\tline {i}\r\n")).collect();
        let (_, msg) = apply(&content, &spec("\tline 10", &["\tline ten"])).unwrap();
        let shown: Vec<&str> = msg.lines().collect();
        let mut expected: Vec<String> = (2..=9).map(|i| format!("\tline {i}")).collect();
        expected.push("\tline ten".into());
        expected.extend((11..=18).map(|i| format!("\tline {i}")));
        assert_eq!(shown[1..shown.len() - 1], expected);
        assert!(shown[0].contains("Lines 2-18"), "{msg}");
        let (_, msg) = apply("a\n", &spec("a", &[])).unwrap();
        assert!(msg.contains("now empty"), "{msg}");
    }

    #[test]
    fn numbered_search_lines_get_a_hint() {
        let content = "def f():\n    return 1\n";
        let err = apply(
            content,
            &spec("     1\tdef f():\n     2\t    return 1", &["x"]),
        )
        .unwrap_err();
        assert!(err.contains("line numbers"), "{err}");
    }

    #[test]
    fn a_profile_sees_the_match_lines_as_a_list() {
        let mut profile = Profile::builtin();
        let text = "[edit]\nseveral_matches = \"{{ count }} in {{ path }}: {{ lines }}\"\n";
        profile.overlay(text, "test").expect("valid");
        let err = apply_edit("a\nb\na\n", &spec("a", &["c"])).unwrap_err();
        assert_eq!(err.message(&profile), "2 in a.py: [1, 3]");
    }

    #[test]
    fn parses_create_bodies() {
        assert_eq!(
            parse_create("x.py\nprint(1)\n").unwrap(),
            ("x.py".into(), "print(1)\n".into())
        );
        assert_eq!(
            parse_create("x.py").unwrap(),
            ("x.py".into(), String::new())
        );
    }
}
