//! The pure parts of `edit` and `create`: parsing their bodies and applying a SEARCH/REPLACE
//! block to file text. I/O lives in [`crate::exec`].
//!
//! An edit works on whole lines, compared without their line endings: `x = 1` never matches
//! inside `x = 10`, and CRLF files match text written with plain newlines. The replacement
//! lines take the ending of the lines they replace, so a file keeps its own endings.

const SEARCH: &str = "<<<<<<< SEARCH";
const DIVIDER: &str = "=======";
const REPLACE: &str = ">>>>>>> REPLACE";
/// Lines of context shown before and after a successful edit (CWM's `SNIPPET_LINES`).
const SNIPPET_LINES: usize = 8;

/// The format reminder shown when an edit body cannot be parsed.
pub const EDIT_FORMAT: &str = "<tool: edit>\n[path]\n<<<<<<< SEARCH\n[search_lines]\n=======\n[replacement_lines]\n>>>>>>> REPLACE\n</tool>";

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

/// Parses `PATH\n<<<<<<< SEARCH\n...\n=======\n...\n>>>>>>> REPLACE`. Errors are the message
/// for the model.
pub fn parse_edit(body: &str) -> Result<EditSpec, String> {
    let lines: Vec<&str> = body.split('\n').map(without_cr).collect();
    let [path, open, block @ ..] = lines.as_slice() else {
        return Err(bad_edit("there is only one line"));
    };
    let path = path.trim();
    if path.is_empty() {
        return Err(bad_edit("the first line must be the file path"));
    }
    if !is_marker(open, SEARCH) {
        return Err(bad_edit("the second line must be `<<<<<<< SEARCH`"));
    }
    let inner = block_lines(block)?;
    let (search, replace) = split_at_divider(inner)?;
    // A lone blank line is how an empty section reads in CWM's format.
    if search.is_empty() || search == [""] {
        return Err("The search lines are empty. Copy at least one existing line to anchor the edit; use create for new files.".into());
    }
    Ok(EditSpec {
        path: path.to_string(),
        search: search.iter().map(|l| l.to_string()).collect(),
        replace: replace.iter().map(|l| l.to_string()).collect(),
    })
}

fn bad_edit(why: &str) -> String {
    format!("Could not parse the edit: {why}. Use exactly this form:\n\n{EDIT_FORMAT}")
}

/// The lines between `<<<<<<< SEARCH` and the one `>>>>>>> REPLACE`.
fn block_lines<'a, 'b>(block: &'a [&'b str]) -> Result<&'a [&'b str], String> {
    let closes = marker_lines(block, REPLACE);
    if closes.len() > 1 || block.iter().any(|l| is_marker(l, SEARCH)) {
        return Err(format!(
            "Only one SEARCH/REPLACE block is allowed per edit call; found {}. Make one edit per call.",
            closes.len().max(2)
        ));
    }
    let Some(&close) = closes.first() else {
        return Err(bad_edit("the closing `>>>>>>> REPLACE` line is missing"));
    };
    if block[close + 1..].iter().any(|l| !l.trim().is_empty()) {
        return Err(bad_edit("there is text after `>>>>>>> REPLACE`"));
    }
    Ok(&block[..close])
}

/// Splits at the one `=======` line. A second one makes the split ambiguous: a
/// reStructuredText underline in the search text must not silently become the divider.
fn split_at_divider<'a, 'b>(
    inner: &'a [&'b str],
) -> Result<(&'a [&'b str], &'a [&'b str]), String> {
    match marker_lines(inner, DIVIDER).as_slice() {
        [] => Err(bad_edit(
            "the `=======` line between the search and replacement lines is missing",
        )),
        [at] => Ok((&inner[..*at], &inner[at + 1..])),
        many => Err(format!(
            "No replacement was made: the edit has {} lines that are exactly `=======`, so it is ambiguous which one separates the search lines from the replacement lines. Exactly one such line is allowed: neither the search lines nor the replacement lines may contain one. If the file has such a line (e.g. a reStructuredText underline), choose search lines that end before it or start after it, or make this change with bash.",
            many.len()
        )),
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

/// Applies the edit to `content`. Ok holds the new content and the model's success message.
pub fn apply_edit(content: &str, spec: &EditSpec) -> Result<(String, String), String> {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let starts = find_block(&lines, &spec.search);
    let path = &spec.path;
    match starts.as_slice() {
        [] => Err(no_match_message(&lines, spec)),
        [at] => {
            let new = replace_block(&lines, *at, spec);
            let message = success_message(&new, path, at + 1, spec.replace.len());
            Ok((new, message))
        }
        many => {
            let lines: Vec<String> = many.iter().map(|at| (at + 1).to_string()).collect();
            Err(format!(
                "No replacement was made: the search lines occur {} times in {path} (at lines {}). Include more surrounding lines so that they match exactly once.",
                many.len(),
                lines.join(", ")
            ))
        }
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

fn no_match_message(lines: &[&str], spec: &EditSpec) -> String {
    let mut message = format!(
        "No replacement was made: the search lines occur 0 times in {}. They must match one or more consecutive whole lines of the file exactly, including indentation and whitespace.",
        spec.path
    );
    if let Some(hint) = no_match_hint(lines, &spec.search) {
        message.push(' ');
        message.push_str(&hint);
    }
    message
}

/// The likeliest reason a search missed, when one can be seen.
fn no_match_hint(lines: &[&str], search: &[String]) -> Option<String> {
    let numbered = search.iter().any(|l| has_line_number(l));
    if numbered && search.iter().all(|l| l.is_empty() || has_line_number(l)) {
        return Some("The search lines start with line numbers, as `cat -n` prints them. The numbers are not part of the file: leave them out.".into());
    }
    let first = search[0].trim();
    if first.is_empty() {
        return None;
    }
    if let Some(n) = lines.iter().position(|l| text(l).trim() == first) {
        return Some(format!("The first search line does occur in the file (line {}), so check its indentation and the lines after it.", n + 1));
    }
    let n = lines.iter().position(|l| text(l).contains(first))?;
    Some(format!("The first search line occurs only as part of a longer line (line {}). A search matches whole lines: copy each line completely.", n + 1))
}

/// `   12\tcode`, as `cat -n` and `nl` number lines.
fn has_line_number(line: &str) -> bool {
    line.trim_start()
        .split_once('\t')
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The success message. The context is shown as it is in the file, without line numbers,
/// so the model can copy it into its next search unchanged.
fn success_message(new: &str, path: &str, line: usize, replaced_lines: usize) -> String {
    let lines: Vec<&str> = new.lines().collect();
    let first = line.saturating_sub(SNIPPET_LINES).max(1);
    let last = (line + replaced_lines + SNIPPET_LINES - 1).min(lines.len());
    if first > last {
        return format!("Edited {path} at line {line}; the file is now empty.");
    }
    format!(
        "Edited {path} at line {line}; the file now has {} lines. Lines {first}-{last} after the edit, exactly as in the file (no line numbers, so they can be copied into a later search):\n{}\nCheck that the change is what you intended.",
        lines.len(),
        lines[first - 1..last].join("\n")
    )
}

/// Parses a `create` body: the path, then the content (possibly empty).
pub fn parse_create(body: &str) -> Result<(String, String), String> {
    let (path, content) = body.split_once('\n').unwrap_or((body, ""));
    let path = path.trim();
    if path.is_empty() {
        return Err("The first line of a create call must be the path of the new file.".into());
    }
    Ok((path.to_string(), content.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            parse_edit(body).unwrap(),
            spec("    x = 1", &["    x = 2", "    y = 3"])
        );
        let deletion = "a.py\n<<<<<<< SEARCH\nx\n=======\n>>>>>>> REPLACE";
        assert_eq!(parse_edit(deletion).unwrap(), spec("x", &[]));
        let blank = "a.py\n<<<<<<< SEARCH\nx\n=======\n\n>>>>>>> REPLACE\n";
        assert_eq!(parse_edit(blank).unwrap(), spec("x", &[""]));
        let crlf = "a.py\r\n<<<<<<< SEARCH\r\nx\r\n=======\r\ny\r\n>>>>>>> REPLACE\r\n";
        assert_eq!(parse_edit(crlf).unwrap(), spec("x", &["y"]));
    }

    #[test]
    fn rejects_bad_edit_bodies() {
        assert!(parse_edit("a.py").unwrap_err().contains("only one line"));
        assert!(parse_edit("a.py\nx\n=======\ny\n>>>>>>> REPLACE")
            .unwrap_err()
            .contains("SEARCH"));
        assert!(parse_edit("a.py\n<<<<<<< SEARCH\nx\ny\n>>>>>>> REPLACE")
            .unwrap_err()
            .contains("======="));
        assert!(parse_edit("a.py\n<<<<<<< SEARCH\nx\n=======\ny")
            .unwrap_err()
            .contains("REPLACE"));
        let two = "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nz\n=======\nw\n>>>>>>> REPLACE";
        assert!(parse_edit(two).unwrap_err().contains("Only one"));
        for empty in [
            "a.py\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE",
            "a.py\n<<<<<<< SEARCH\n\n=======\nx\n>>>>>>> REPLACE",
        ] {
            assert!(parse_edit(empty)
                .unwrap_err()
                .contains("search lines are empty"));
        }
    }

    #[test]
    fn a_divider_inside_the_block_is_ambiguous() {
        let body = "doc.rst\n<<<<<<< SEARCH\nTitle\n=======\n=======\nNew\n===\n>>>>>>> REPLACE";
        let err = parse_edit(body).unwrap_err();
        assert!(
            err.contains("ambiguous") && err.contains("2 lines"),
            "{err}"
        );
        // Longer underlines are ordinary lines.
        let body = "doc.rst\n<<<<<<< SEARCH\nTitle\n=====\n=======\nNew\n===\n>>>>>>> REPLACE";
        assert_eq!(parse_edit(body).unwrap().search, ["Title", "====="]);
    }

    #[test]
    fn applies_exactly_once_and_reports_counts() {
        let content = "def f():\n    x = 1\n    return x\n";
        let (new, msg) = apply_edit(content, &spec("    x = 1", &["    x = 2"])).unwrap();
        assert_eq!(new, "def f():\n    x = 2\n    return x\n");
        assert!(msg.contains("at line 2"), "{msg}");
        let none = apply_edit(content, &spec("x = 1", &["x = 2"])).unwrap_err();
        assert!(
            none.contains("occur 0 times") && none.contains("indentation"),
            "{none}"
        );
        let twice = apply_edit("a\nb\na\n", &spec("a", &["c"])).unwrap_err();
        assert!(
            twice.contains("occur 2 times") && twice.contains("lines 1, 3"),
            "{twice}"
        );
    }

    #[test]
    fn matches_whole_lines_only() {
        let content = "x = 10\ny = 2\n";
        let err = apply_edit(content, &spec("x = 1", &["x = 2"])).unwrap_err();
        assert!(err.contains("longer line (line 1)"), "{err}");
        let (new, _) = apply_edit("x = 10\nx = 1\n", &spec("x = 1", &["x = 2"])).unwrap();
        assert_eq!(new, "x = 10\nx = 2\n");
        let err = apply_edit(content, &spec("y = 2\nz", &["q"])).unwrap_err();
        assert!(err.contains("occur 0 times"), "{err}");
    }

    #[test]
    fn keeps_each_files_line_endings() {
        let crlf = "a\r\nb\r\nc\r\n";
        let (new, _) = apply_edit(crlf, &spec("b", &["B", "B2"])).unwrap();
        assert_eq!(new, "a\r\nB\r\nB2\r\nc\r\n");
        let (new, _) = apply_edit(crlf, &spec("a\nb", &[])).unwrap();
        assert_eq!(new, "c\r\n");
        // The last line without a newline stays without one.
        let (new, _) = apply_edit("a\r\nb", &spec("b", &["B", "B2"])).unwrap();
        assert_eq!(new, "a\r\nB\r\nB2");
        let (new, _) = apply_edit("a\nb\n", &spec("a", &["", "A"])).unwrap();
        assert_eq!(new, "\nA\nb\n");
    }

    #[test]
    fn context_is_shown_as_it_is_in_the_file() {
        let content: String = (1..=30).map(|i| format!("\tline {i}\r\n")).collect();
        let (_, msg) = apply_edit(&content, &spec("\tline 10", &["\tline ten"])).unwrap();
        let shown: Vec<&str> = msg.lines().collect();
        let mut expected: Vec<String> = (2..=9).map(|i| format!("\tline {i}")).collect();
        expected.push("\tline ten".into());
        expected.extend((11..=18).map(|i| format!("\tline {i}")));
        assert_eq!(shown[1..shown.len() - 1], expected);
        assert!(shown[0].contains("Lines 2-18"), "{msg}");
        let (_, msg) = apply_edit("a\n", &spec("a", &[])).unwrap();
        assert!(msg.contains("now empty"), "{msg}");
    }

    #[test]
    fn numbered_search_lines_get_a_hint() {
        let content = "def f():\n    return 1\n";
        let err = apply_edit(
            content,
            &spec("     1\tdef f():\n     2\t    return 1", &["x"]),
        )
        .unwrap_err();
        assert!(err.contains("line numbers"), "{err}");
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
