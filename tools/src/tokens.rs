//! Token counting and token-bounded truncation of tool output.

/// Counts tokens the way the model's tokenizer does (or approximates it).
pub trait TokenCounter {
    fn count_tokens(&self, text: &str) -> usize;
}

/// A tokenizer-free estimate: one token per four bytes, rounded up. Deterministic, so a
/// replay cuts output at the same place as the recording.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproxCounter;

impl TokenCounter for ApproxCounter {
    fn count_tokens(&self, text: &str) -> usize {
        approx_tokens(text)
    }
}

/// The estimate [`ApproxCounter`] uses.
pub fn approx_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

impl<F: Fn(&str) -> usize> TokenCounter for F {
    fn count_tokens(&self, text: &str) -> usize {
        self(text)
    }
}

/// The longest head of `text` within `max_tokens`.
pub fn head_within<'a>(text: &'a str, max_tokens: usize, counter: &dyn TokenCounter) -> &'a str {
    let ends = char_ends(text);
    // Binary search: token counts grow with the prefix.
    let fits = |k: usize| counter.count_tokens(&text[..ends[k]]) <= max_tokens;
    &text[..ends[longest(ends.len() - 1, fits)]]
}

/// The longest tail of `text` within `max_tokens`.
pub fn tail_within<'a>(text: &'a str, max_tokens: usize, counter: &dyn TokenCounter) -> &'a str {
    let starts = char_ends(text);
    let last = starts.len() - 1;
    let fits = |k: usize| counter.count_tokens(&text[starts[last - k]..]) <= max_tokens;
    &text[starts[last - longest(last, fits)]..]
}

/// Byte offsets of every char boundary, the end included.
fn char_ends(text: &str) -> Vec<usize> {
    let mut ends: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    ends.push(text.len());
    ends
}

/// The largest `k` in `0..=max` with `fits(k)`, for a `fits` that holds up to some point.
fn longest(max: usize, fits: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, max);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Keeps the head of `text` within `max_tokens` (the mark included) and appends `marker`.
/// Returns the text unchanged when it fits.
pub fn truncate_tokens(
    text: &str,
    max_tokens: usize,
    marker: &str,
    counter: &dyn TokenCounter,
) -> (String, bool) {
    if counter.count_tokens(text) <= max_tokens {
        return (text.to_string(), false);
    }
    let budget = max_tokens.saturating_sub(counter.count_tokens(marker));
    (
        format!("{}{marker}", head_within(text, budget, counter)),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(
            truncate_tokens("abc", 10, "[...]", &ApproxCounter),
            ("abc".into(), false)
        );
    }

    #[test]
    fn long_text_is_cut_within_budget_and_marked() {
        let text = "é".repeat(1000);
        let (cut, was_cut) = truncate_tokens(&text, 50, "[...]", &ApproxCounter);
        assert!(was_cut);
        assert!(cut.ends_with("é[...]"));
        assert!(ApproxCounter.count_tokens(&cut) <= 50, "{}", cut.len());
        assert!(ApproxCounter.count_tokens(&cut) >= 45);
    }

    #[test]
    fn tails_keep_the_end() {
        let text = format!("{}END", "x".repeat(100));
        let tail = tail_within(&text, 2, &ApproxCounter);
        assert_eq!(tail, "xxxxxEND");
        assert_eq!(head_within(&text, 1, &ApproxCounter), "xxxx");
    }
}
