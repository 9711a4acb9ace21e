//! Bounded output capture: keep the head and a ring of the tail, count the rest.

use std::collections::VecDeque;

/// The marker put, on a line of its own, where a command's output was cut to the session's
/// byte limit (CWM's `[...]`). The built-in prompt profile's `observation.cut_marker`, which
/// marks the token cut of an observation, is the same text (a unit test of `cwm-tools`
/// checks it); a user profile may change that one only.
pub const CUT_MARKER: &str = "[...]";

/// Holds at most `head_cap + tail_cap` bytes however much is pushed, so a command like
/// `yes` cannot grow the harness's memory.
#[derive(Debug)]
pub(crate) struct Capped {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl Capped {
    /// A buffer keeping `limit` bytes in all: half from the start, half from the end.
    pub(crate) fn new(limit: usize) -> Self {
        let head_cap = limit / 2;
        Capped {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap,
            tail_cap: limit - head_cap,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let take = (self.head_cap - self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        let rest = &bytes[take..];
        if rest.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&rest[rest.len() - self.tail_cap..]);
            return;
        }
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(self.tail_cap);
        self.tail.drain(..excess);
    }

    /// Bytes pushed so far, kept or not.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail.len()) as u64
    }

    /// The text, with [`CUT_MARKER`] where bytes were dropped; invalid UTF-8 is dropped, as CWM's
    /// session decodes with `errors="ignore"`.
    pub(crate) fn into_text(self) -> (String, bool) {
        let truncated = self.truncated();
        let (front, back) = self.tail.as_slices();
        if !truncated {
            let mut all = self.head;
            all.extend_from_slice(front);
            all.extend_from_slice(back);
            return (utf8_dropping_invalid(&all), false);
        }
        let mut tail = Vec::with_capacity(front.len() + back.len());
        tail.extend_from_slice(front);
        tail.extend_from_slice(back);
        let text = format!(
            "{}\n{CUT_MARKER}\n{}",
            utf8_dropping_invalid(&self.head),
            utf8_dropping_invalid(&tail)
        );
        (text, true)
    }
}

/// The valid UTF-8 of `bytes`, invalid sequences left out.
pub(crate) fn utf8_dropping_invalid(bytes: &[u8]) -> String {
    bytes.utf8_chunks().map(|chunk| chunk.valid()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_dropped_not_replaced() {
        assert_eq!(
            utf8_dropping_invalid(b"caf\xe9 ok \xff\xfe\xe2\x82\xac"),
            "caf ok \u{20ac}"
        );
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = Capped::new(10);
        c.push(b"abc");
        c.push(b"def");
        assert_eq!(c.into_text(), ("abcdef".to_string(), false));
    }

    #[test]
    fn large_output_keeps_head_and_tail() {
        let mut c = Capped::new(6);
        for chunk in [&b"0123"[..], b"456789", b"abcdef"] {
            c.push(chunk);
        }
        assert_eq!(c.total(), 16);
        assert_eq!(c.into_text(), (format!("012\n{CUT_MARKER}\ndef"), true));
    }

    #[test]
    fn invalid_utf8_is_dropped_from_the_text() {
        let mut c = Capped::new(100);
        c.push(&[b'a', 0xff, b'b']);
        assert_eq!(c.into_text().0, "ab");
    }
}
