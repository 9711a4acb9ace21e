//! Python's `str` whitespace rules, which both CWM's tokenizer input and SWE-bench's log
//! parsers follow.

/// Python's `str.isspace` for one character: Rust's White_Space plus the four ASCII
/// information separators `\x1c`..`\x1f`, which Python also splits on.
pub fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.split()` with no arguments.
pub fn py_split(s: &str) -> Vec<&str> {
    s.split(py_is_space).filter(|w| !w.is_empty()).collect()
}

/// Python's `str.strip()` with no arguments.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_is_space)
}
