//! The pytest `-rA` parsers and their per-repo variants.

use std::sync::LazyLock;

use regex::Regex;

use super::py_split;
use crate::status::{StatusMap, TestStatus, STATUS_WORDS};

/// pytest's `SKIPPED [N] path:line: reason` summary carries a count, not a test id.
static SKIP_SUMMARY_COUNT: LazyLock<Regex> = LazyLock::new(|| re(r"^\[\d+\]$"));
/// `parse_log_pytest_options`: `name[option]`.
static OPTION: LazyLock<Regex> = LazyLock::new(|| re(r"(.*?)\[(.*)\]"));
/// `parse_log_pytest_v2`: colour codes whose ESC byte is removed separately.
static COLOUR: LazyLock<Regex> = LazyLock::new(|| re(r"\[(\d+)m"));

/// Compiles a constant, test-checked pattern (used across the grading crates).
pub fn re(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(regex) => regex,
        // The patterns are literals checked by the unit tests; this cannot happen at run time.
        Err(err) => unreachable!("invalid built-in pattern {pattern}: {err}"),
    }
}

fn starts_with_status(line: &str) -> bool {
    STATUS_WORDS.iter().any(|s| line.starts_with(s))
}

fn is_skip_summary(status: &str, name: &str) -> bool {
    status == "SKIPPED" && SKIP_SUMMARY_COUNT.is_match(name)
}

/// The `(status, id)` of a `-rA` summary line, or `None` for any other line. The id is the
/// first word after the status: ids with spaces are cut there, as the datasets expect.
fn summary_line(line: &str) -> Option<(String, String)> {
    if !starts_with_status(line) {
        return None;
    }
    let line = if line.starts_with("FAILED") {
        line.replace(" - ", " ")
    } else {
        line.to_string()
    };
    let words = py_split(&line);
    if words.len() <= 1 || is_skip_summary(words[0], words[1]) {
        return None;
    }
    Some((words[0].to_string(), words[1].to_string()))
}

/// `parse_log_pytest` (pytest, flask, xarray and others).
pub fn parse_log_pytest(log: &str) -> StatusMap {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some((status, id)) = summary_line(line) {
            map.insert(id, TestStatus::from_word(&status));
        }
    }
    map
}

/// `parse_log_pytest_options` (requests, pylint): long path-like parameters are shortened
/// to their last component, and anything after the closing bracket is dropped.
pub fn parse_log_pytest_options(log: &str) -> StatusMap {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some((status, id)) = summary_line(line) {
            map.insert(shorten_option(&id), TestStatus::from_word(&status));
        }
    }
    map
}

fn shorten_option(id: &str) -> String {
    let Some(caps) = OPTION.captures(id) else {
        return id.to_string();
    };
    let main = caps.get(1).map_or("", |m| m.as_str());
    let mut option = caps.get(2).map_or("", |m| m.as_str()).to_string();
    if option.starts_with('/') && !option.starts_with("//") && !option.contains('*') {
        let last = option.rsplit('/').next().unwrap_or_default().to_string();
        option = format!("/{last}");
    }
    format!("{main}[{option}]")
}

/// `parse_log_pytest_v2` (astropy, scikit-learn, sphinx), as SWE-bench 5.0.2 has it: colour
/// codes and control characters are removed; a `FAILED` line is cut at its first ` - `;
/// the id is every word after the status (so ids keep their spaces); and the old verbose
/// form `id STATUS` takes the last word as the status.
pub fn parse_log_pytest_v2(log: &str) -> StatusMap {
    let mut map = StatusMap::new();
    for raw in log.split('\n') {
        let mut line = strip_colours(raw);
        if starts_with_status(&line) {
            if line.starts_with("FAILED") {
                line = line.split(" - ").next().unwrap_or_default().to_string();
            }
            let words = py_split(&line);
            if words.len() >= 2 && !is_skip_summary(words[0], words[1]) {
                map.insert(words[1..].join(" "), TestStatus::from_word(words[0]));
            }
        } else if STATUS_WORDS.iter().any(|s| line.ends_with(s)) {
            let words = py_split(&line);
            if let Some((status, id)) = words.split_last().filter(|_| words.len() >= 2) {
                map.insert(id.join(" "), TestStatus::from_word(status));
            }
        }
    }
    map
}

fn strip_colours(line: &str) -> String {
    COLOUR
        .replace_all(line, "")
        .chars()
        .filter(|&c| !('\u{1}'..='\u{1f}').contains(&c))
        .collect()
}

/// `parse_log_matplotlib`: `MouseButton.LEFT/RIGHT` in ids become `1`/`3`.
pub fn parse_log_matplotlib(log: &str) -> StatusMap {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let line = line
            .replace("MouseButton.LEFT", "1")
            .replace("MouseButton.RIGHT", "3");
        if let Some((status, id)) = summary_line(&line) {
            map.insert(id, TestStatus::from_word(&status));
        }
    }
    map
}

/// `parse_log_seaborn`: `FAILED id`, `PASSED id`, and the verbose `id PASSED [..]` form.
pub fn parse_log_seaborn(log: &str) -> StatusMap {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let parts = py_split(line);
        if parts.len() < 2 {
            continue;
        }
        if line.starts_with("FAILED") {
            map.insert(parts[1].to_string(), TestStatus::Failed);
        } else if line.contains(" PASSED ") {
            if parts[1] == "PASSED" {
                map.insert(parts[0].to_string(), TestStatus::Passed);
            }
        } else if line.starts_with("PASSED") {
            map.insert(parts[1].to_string(), TestStatus::Passed);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(map: &'a StatusMap, id: &str) -> Option<&'a str> {
        map.get(id).map(|s| s.as_str())
    }

    /// A real `pytest -rA` short summary, as the fixtures' slugify task prints it.
    const SLUGIFY: &str = r"============================= test session starts ==============================
collected 13 items

tests/test_slug.py ......                                                [ 46%]
tests/test_transliteration.py FF.FFF..                                   [100%]

=========================== short test summary info ============================
PASSED tests/test_slug.py::test_basic
PASSED tests/test_transliteration.py::test_transliterates[\xc5ngstr\xf6m-angstrom]
PASSED tests/test_transliteration.py::test_unicode_mode_is_untouched
FAILED tests/test_transliteration.py::test_transliterates[Cr\xe8me Br\xfbl\xe9e-creme-brulee] - AssertionError: assert 'crme-brle' == 'creme-brulee'
FAILED tests/test_transliteration.py::test_transliterates[german sharp s] - AssertionError: assert 'strae' == 'strasse'
FAILED tests/test_transliteration.py::test_transliterates[[polish] l-stroke] - AssertionError
SKIPPED [1] tests/test_slug.py:40: needs icu
XFAIL tests/test_slug.py::test_emoji - reason: not yet
ERROR tests/test_slug.py::test_fixture_broken - ValueError: boom
========================= 3 failed, 9 passed in 0.05s ==========================";

    #[test]
    fn pytest_ids_are_cut_at_the_first_space() {
        let map = parse_log_pytest(SLUGIFY);
        assert_eq!(get(&map, "tests/test_slug.py::test_basic"), Some("PASSED"));
        assert_eq!(
            get(
                &map,
                r"tests/test_transliteration.py::test_transliterates[Cr\xe8me"
            ),
            Some("FAILED")
        );
        assert_eq!(
            get(
                &map,
                "tests/test_transliteration.py::test_transliterates[german"
            ),
            Some("FAILED")
        );
        assert_eq!(
            get(
                &map,
                "tests/test_transliteration.py::test_transliterates[[polish]"
            ),
            Some("FAILED")
        );
        assert_eq!(
            get(
                &map,
                r"tests/test_transliteration.py::test_transliterates[\xc5ngstr\xf6m-angstrom]"
            ),
            Some("PASSED")
        );
        assert_eq!(get(&map, "tests/test_slug.py::test_emoji"), Some("XFAIL"));
        assert_eq!(
            get(&map, "tests/test_slug.py::test_fixture_broken"),
            Some("ERROR")
        );
        // The skip summary's `[1]` is not a test id.
        assert!(!map.contains_key("[1]"));
        assert_eq!(map.len(), 8);
    }

    #[test]
    fn failed_with_dash_in_id_keeps_the_id() {
        // `line.replace(" - ", " ")` only removes the separator, so `a - b` ids split.
        let map =
            parse_log_pytest("FAILED t.py::test_x[a - b] - assert 0\nPASSEDx t.py::y\nPASSED");
        assert_eq!(get(&map, "t.py::test_x[a"), Some("FAILED"));
        assert_eq!(get(&map, "t.py::y"), Some("PASSEDx"));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn options_parser_shortens_paths() {
        let log = "PASSED tests/test_lint.py::test_file[/tmp/abc/def/input.py]\n\
                   PASSED tests/test_lint.py::test_glob[/a/*.py]\n\
                   FAILED tests/test_requests.py::test_url[http://x/y] - AssertionError\n\
                   PASSED tests/test_lint.py::test_plain";
        let map = parse_log_pytest_options(log);
        assert_eq!(
            get(&map, "tests/test_lint.py::test_file[/input.py]"),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "tests/test_lint.py::test_glob[/a/*.py]"),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "tests/test_requests.py::test_url[http://x/y]"),
            Some("FAILED")
        );
        assert_eq!(get(&map, "tests/test_lint.py::test_plain"), Some("PASSED"));
    }

    #[test]
    fn v2_strips_ansi_colours_and_reads_old_form() {
        let log = "\x1b[32mPASSED\x1b[0m astropy/io/tests/test_a.py::\x1b[1mtest_z\x1b[0m\n\
                   \x1b[31mFAILED\x1b[0m astropy/io/tests/test_a.py::test_y[ceci n'est pas] - AssertionError\n\
                   astropy/io/tests/test_b.py::test_old PASSED\n\
                   sklearn/tests/test_c.py::test_spaced[a b] PASSED\n\
                   PASSED\n\
                   SKIPPED [2] astropy/io/tests/test_a.py:10: no scipy";
        let map = parse_log_pytest_v2(log);
        assert_eq!(
            get(&map, "astropy/io/tests/test_a.py::test_z"),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "astropy/io/tests/test_a.py::test_y[ceci n'est pas]"),
            Some("FAILED")
        );
        assert_eq!(
            get(&map, "astropy/io/tests/test_b.py::test_old"),
            Some("PASSED")
        );
        // 5.x keeps the whole id and takes the last word as the status.
        assert_eq!(
            get(&map, "sklearn/tests/test_c.py::test_spaced[a b]"),
            Some("PASSED")
        );
        assert_eq!(map.len(), 4);
    }

    #[test]
    fn matplotlib_rewrites_mouse_buttons() {
        let log = "PASSED lib/matplotlib/tests/test_widgets.py::test_span[MouseButton.LEFT-x]\n\
                   FAILED lib/matplotlib/tests/test_widgets.py::test_span[MouseButton.RIGHT-y] - x";
        let map = parse_log_matplotlib(log);
        assert_eq!(
            get(&map, "lib/matplotlib/tests/test_widgets.py::test_span[1-x]"),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "lib/matplotlib/tests/test_widgets.py::test_span[3-y]"),
            Some("FAILED")
        );
    }

    #[test]
    fn seaborn_reads_verbose_and_summary_forms() {
        let log = "tests/test_core.py::TestA::test_x PASSED [ 10%]\n\
                   PASSED tests/test_core.py::TestA::test_y\n\
                   FAILED tests/test_core.py::TestA::test_z - ValueError\n\
                   FAILED\n\
                   ERROR tests/test_core.py::TestA::test_e";
        let map = parse_log_seaborn(log);
        assert_eq!(
            get(&map, "tests/test_core.py::TestA::test_x"),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "tests/test_core.py::TestA::test_y"),
            Some("PASSED")
        );
        assert_eq!(
            get(&map, "tests/test_core.py::TestA::test_z"),
            Some("FAILED")
        );
        // seaborn's parser ignores ERROR lines.
        assert_eq!(map.len(), 3);
    }
}
