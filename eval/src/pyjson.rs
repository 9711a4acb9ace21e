//! JSON text exactly as Python's `json.dumps(value, indent=4)` writes it, which is how the
//! official harness writes `report.json` and the run summary.

use serde::Serialize;

/// `json.dumps(value, indent=4)`: 4-space indent, `": "` between key and value, and
/// `ensure_ascii` (every non-ASCII character as `\uXXXX`, astral ones as surrogate pairs).
/// Keys come out in the order the value serialises them.
pub fn dumps_indent4(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if let Err(err) = value.serialize(&mut ser) {
        // Only maps with non-string keys fail, and no report type has one.
        unreachable!("report types always serialise: {err}");
    }
    let text = String::from_utf8_lossy(&out);
    ensure_ascii(&text)
}

/// Python escapes everything outside `' '..='~'`; serde_json has already escaped the
/// control characters, which leaves DEL and non-ASCII. Those only occur inside JSON strings,
/// so escaping them everywhere is the same as escaping them in strings.
fn ensure_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_python() {
        let value = serde_json::json!({"k": ["é", "😀", "\u{1b}[0m", "\u{7f}"], "e": [], "o": {}});
        let text = dumps_indent4(&value);
        assert!(text.contains(r#""\u00e9""#), "{text}");
        assert!(text.contains(r#""\ud83d\ude00""#), "{text}");
        assert!(text.contains(r#""\u001b[0m""#), "{text}");
        assert!(text.contains(r#""\u007f""#), "{text}");
        assert!(text.contains("\"e\": []"), "{text}");
        assert!(text.contains("\"o\": {}"), "{text}");
        assert!(text.starts_with("{\n    \""), "{text}");
    }
}
