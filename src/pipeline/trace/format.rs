//! CWM's trace format: the token form of a traced scope and reading it back.
//!
//! Facts from CWM's PROMPTING_GUIDE.md and its debugger demo (`demos/cwmdbg.py`):
//! `<|begin_of_text|><|trace_context_start|>CONTEXT<|frame_sep|>`, then per event
//! `<|call_sep|>LOCALS<|action_sep|>SOURCE<|frame_sep|>`,
//! `<|line_sep|>LOCALS<|action_sep|>SOURCE<|frame_sep|>`,
//! `<|return_sep|><|action_sep|>SOURCE<|arg_sep|>VALUE<|frame_sep|>`,
//! `<|exception_sep|><|action_sep|>SOURCE<|arg_sep|>VALUE<|frame_sep|>`, and `<|end_of_text|>`
//! once the entry function's scope exits. LOCALS and VALUE are written as Python's
//! `json.dumps` writes them with its defaults (the demo builds its prompts that way):
//! `", "` and `": "` separators, every character outside printable ASCII as `\uXXXX`, and the
//! locals in the order the tracer recorded them. A local unchanged since the previous frame
//! of the scope is written `".."`.

use std::collections::BTreeMap;
use std::io;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// CWM's trace tokens (ids 128100 to 128107 in its vocabulary) and the text bounds.
pub mod tokens {
    pub const BEGIN: &str = "<|begin_of_text|>";
    pub const END: &str = "<|end_of_text|>";
    pub const FRAME: &str = "<|frame_sep|>";
    pub const ACTION: &str = "<|action_sep|>";
    pub const RETURN: &str = "<|return_sep|>";
    pub const CALL: &str = "<|call_sep|>";
    pub const LINE: &str = "<|line_sep|>";
    pub const EXCEPTION: &str = "<|exception_sep|>";
    pub const ARG: &str = "<|arg_sep|>";
    pub const CONTEXT: &str = "<|trace_context_start|>";

    /// Every token of the format: in CWM's vocabulary each is one token.
    pub const ALL: [&str; 10] = [
        BEGIN, END, FRAME, ACTION, RETURN, CALL, LINE, EXCEPTION, ARG, CONTEXT,
    ];
}

/// Local variables of a frame: name to repr, in the order the tracer saw them bound (that
/// of CPython's `frame.f_locals`).
pub type Locals = IndexMap<String, String>;

/// One event of a traced scope, as the tracer records it (full locals, never `".."`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// `call`, `line`, `return` or `exception`.
    pub event: String,
    pub line: u64,
    /// The source line at `line` (for `line`: the line about to run).
    pub source: String,
    /// For `call` and `line` (empty for `return` and `exception`).
    pub locals: Locals,
    /// The repr of the returned value or the exception.
    pub value: Option<String>,
    /// Locals whose repr, cut at `--max-repr`, reads as in the previous frame although the
    /// value changed: the token form writes them again instead of `".."`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut_changed: Vec<String>,
}

/// A frame read back from the token form: the event, the locals as written (`".."`
/// included), the source, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFrame {
    pub event: String,
    pub locals: Locals,
    pub source: String,
    pub value: Option<String>,
}

/// The token form of a trace: see the module documentation. `ended`: the scope exited (the
/// trace was not cut by a limit), so the text ends with `<|end_of_text|>`.
pub fn token_text(context: &str, frames: &[Frame], ended: bool) -> String {
    use tokens::*;
    let mut out = format!("{BEGIN}{CONTEXT}{context}{FRAME}");
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    for frame in frames {
        match frame.event.as_str() {
            "call" | "line" => {
                let sep = if frame.event == "call" { CALL } else { LINE };
                let written: Locals = frame
                    .locals
                    .iter()
                    .map(|(k, v)| {
                        let same = previous.get(k.as_str()) == Some(&v.as_str())
                            && !frame.cut_changed.contains(k);
                        (k.clone(), if same { "..".into() } else { v.clone() })
                    })
                    .collect();
                previous = frame
                    .locals
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let locals = python_json(&written);
                out.push_str(&format!("{sep}{locals}{ACTION}{}{FRAME}", frame.source));
            }
            event => {
                let sep = if event == "return" { RETURN } else { EXCEPTION };
                let value = python_json(frame.value.as_deref().unwrap_or_default());
                out.push_str(&format!("{sep}{ACTION}{}{ARG}{value}{FRAME}", frame.source));
            }
        }
    }
    if ended {
        out.push_str(END);
    }
    out
}

/// `value` as Python's `json.dumps(value)` writes it (defaults: `ensure_ascii=True`,
/// separators `", "` and `": "`), so prompts are byte for byte those CWM's demo builds.
pub fn python_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Strings and maps of strings, the only things written here, cannot fail to serialise.
    if value.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact output with Python's separators and ASCII-only strings.
struct PythonFormatter;

/// `", "` before every item of an object or array but the first.
fn item_separator<W: ?Sized + io::Write>(w: &mut W, first: bool) -> io::Result<()> {
    if first {
        Ok(())
    } else {
        w.write_all(b", ")
    }
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(w, first)
    }

    /// serde_json has already escaped quotes, backslashes and controls below 0x20; Python
    /// also escapes DEL and everything beyond ASCII, as UTF-16 code units.
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Reads the token form back: the context, the frames, and whether it ended. Errors name the
/// frame that is malformed.
pub fn parse_token_text(text: &str) -> Result<(String, Vec<ParsedFrame>, bool), String> {
    use tokens::*;
    let rest = text
        .strip_prefix(BEGIN)
        .and_then(|t| t.strip_prefix(CONTEXT))
        .ok_or("no <|begin_of_text|><|trace_context_start|>")?;
    let (rest, ended) = match rest.strip_suffix(END) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let mut parts = rest.split(FRAME);
    let context = parts.next().unwrap_or_default().to_string();
    let mut frames = Vec::new();
    for (i, part) in parts.enumerate() {
        if !part.is_empty() {
            frames.push(parse_frame(part).map_err(|why| format!("frame {i}: {why}"))?);
        }
    }
    Ok((context, frames, ended))
}

/// One frame of the token form, without its `<|frame_sep|>`: the event token, the locals (for
/// call and line), the source, and (for return and exception) the value.
pub fn parse_frame(part: &str) -> Result<ParsedFrame, String> {
    use tokens::*;
    let (head, action) = part.split_once(ACTION).ok_or("no <|action_sep|>")?;
    let (event, locals_text) = [
        (CALL, "call"),
        (LINE, "line"),
        (RETURN, "return"),
        (EXCEPTION, "exception"),
    ]
    .iter()
    .find_map(|(sep, name)| head.strip_prefix(sep).map(|l| (*name, l)))
    .ok_or("no event token")?;
    let (source, value) = match event {
        "call" | "line" => (action.to_string(), None),
        _ => {
            let (source, value) = action.split_once(ARG).ok_or("no <|arg_sep|>")?;
            let value: String = serde_json::from_str(value).map_err(|e| e.to_string())?;
            (source.to_string(), Some(value))
        }
    };
    let locals = if locals_text.is_empty() {
        Locals::new()
    } else {
        serde_json::from_str::<Locals>(locals_text).map_err(|e| e.to_string())?
    };
    Ok(ParsedFrame {
        event: event.to_string(),
        locals,
        source,
        value,
    })
}

/// A frame at line 1 from its parts, for unit tests here and in the debugger evaluation.
#[cfg(test)]
pub(crate) fn frame(
    event: &str,
    locals: &[(&str, &str)],
    source: &str,
    value: Option<&str>,
) -> Frame {
    Frame {
        event: event.into(),
        line: 1,
        source: source.into(),
        locals: locals
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value: value.map(str::to_string),
        cut_changed: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_form_marks_unchanged_locals_and_reads_back() {
        let frames = [
            frame("call", &[("n", "3")], "def f(n):", None),
            frame("line", &[("n", "3")], "    x = n + 1", None),
            frame("line", &[("n", "3"), ("x", "4")], "    return x", None),
            frame("return", &[], "    return x", Some("4")),
        ];
        let text = token_text("def f(n):  # << START_OF_TRACE\n", &frames, true);
        assert!(text.starts_with("<|begin_of_text|><|trace_context_start|>def f(n):"));
        assert!(
            text.contains("<|line_sep|>{\"n\": \"..\"}<|action_sep|>    x = n + 1<|frame_sep|>")
        );
        assert!(text.contains(
            "<|line_sep|>{\"n\": \"..\", \"x\": \"4\"}<|action_sep|>    return x<|frame_sep|>"
        ));
        assert!(text.ends_with(
            "<|return_sep|><|action_sep|>    return x<|arg_sep|>\"4\"<|frame_sep|><|end_of_text|>"
        ));
        let (context, parsed, ended) = parse_token_text(&text).unwrap();
        assert!(ended && context.contains("START_OF_TRACE"));
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[1].locals["n"], "..");
        assert_eq!(parsed[3].value.as_deref(), Some("4"));
    }

    #[test]
    fn a_change_hidden_by_a_cut_repr_is_written_again() {
        let long = "[0, 1, 2, ...";
        let mut grown = frame("line", &[("items", long)], "    items.append(i)", None);
        grown.cut_changed = vec!["items".into()];
        let frames = [
            frame("line", &[("items", long)], "    items.append(i)", None),
            grown,
            frame("line", &[("items", long)], "    items.append(i)", None),
        ];
        let text = token_text("", &frames, false);
        let written: Vec<&str> = text.matches(r#"{"items": "#).collect();
        assert_eq!(written.len(), 3);
        assert_eq!(
            text.matches(r#"{"items": "[0, 1, 2, ..."}"#).count(),
            2,
            "{text}"
        );
        assert_eq!(text.matches(r#"{"items": ".."}"#).count(), 1, "{text}");
    }

    #[test]
    fn locals_keep_the_recorded_order_and_python_escapes() {
        let frames = [frame(
            "call",
            &[("zeta", "'é\u{7f}'"), ("alpha", "'😀'")],
            "def f():",
            None,
        )];
        let text = token_text("", &frames, false);
        assert!(
            text.contains(r#"{"zeta": "'\u00e9\u007f'", "alpha": "'\ud83d\ude00'"}"#),
            "{text}"
        );
        let (_, parsed, _) = parse_token_text(&text).unwrap();
        assert_eq!(parsed[0].locals, frames[0].locals);
        assert_eq!(
            parsed[0].locals.keys().collect::<Vec<_>>(),
            ["zeta", "alpha"]
        );
    }
}
