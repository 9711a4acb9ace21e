//! The token form of traces against its reference: CWM's debugger demo (`demos/cwmdbg.py`)
//! builds a trace prompt from the event token, `json.dumps(local_vars)`, `<|action_sep|>`, the
//! source line and, for return and exception frames, `<|arg_sep|>` and `json.dumps(arg)`. The
//! reference below does exactly that with Python's own `json`, on 3,000 generated traces whose
//! names, reprs and source lines hold quotes, backslashes, control characters, DEL, accented
//! letters, CJK and characters beyond the BMP; `token_text` must write the same bytes. It runs
//! under the machine's python3 and under every interpreter `scripts/setup-pythons` cached.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cwm_bench::pipeline::trace::{parse_token_text, token_text, Frame, Locals};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

/// Our reading of the demo's prompt construction, plus the `".."` rule of the trace format
/// (a local unchanged since the previous call or line frame of the scope).
const REFERENCE: &str = r#"
import json, sys
SEP = {"call": "<|call_sep|>", "line": "<|line_sep|>",
       "return": "<|return_sep|>", "exception": "<|exception_sep|>"}
def text(trace):
    out = "<|begin_of_text|><|trace_context_start|>" + trace["context"] + "<|frame_sep|>"
    previous = {}
    for f in trace["frames"]:
        out += SEP[f["event"]]
        if f["event"] in ("call", "line"):
            pairs = f["locals"]
            shown = [(k, ".." if previous.get(k) == v else v) for k, v in pairs]
            out += json.dumps(dict_in_order(shown))
            previous = dict(pairs)
        out += "<|action_sep|>" + f["source"]
        if f["event"] in ("return", "exception"):
            out += "<|arg_sep|>" + json.dumps(f["value"])
        out += "<|frame_sep|>"
    return out + ("<|end_of_text|>" if trace["ended"] else "")
def dict_in_order(pairs):
    import collections  # 3.5's dict keeps no order
    return collections.OrderedDict(pairs)
for line in sys.stdin:
    sys.stdout.write(json.dumps(text(json.loads(line))) + "\n")
"#;

const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    " ",
    "_",
    "'",
    "\"",
    "\\",
    "\\n",
    "{",
    "}",
    ":",
    ",",
    "..",
    "\n",
    "\t",
    "\r",
    "\u{0}",
    "\u{1f}",
    "\u{7f}",
    "\u{80}",
    "é",
    "ß",
    "Ω",
    "变量",
    "😀",
    "\u{10ffff}",
    "\u{2028}",
    "\u{feff}",
    "<",
    "|",
    ">",
];

fn text(rng: &mut ChaCha8Rng, max: usize) -> String {
    (0..rng.gen_range(0..=max))
        .map(|_| *PIECES.choose(rng).unwrap())
        .collect()
}

fn name(rng: &mut ChaCha8Rng) -> String {
    ["x", "n", "self", "é", "变量", "_tmp", "value_1", "Ω"]
        .choose(rng)
        .unwrap()
        .to_string()
}

fn locals(rng: &mut ChaCha8Rng, previous: &Locals) -> Locals {
    let mut out = Locals::new();
    for (k, v) in previous {
        match rng.gen_range(0..4) {
            0 => {}
            1 => {
                out.insert(k.clone(), text(rng, 6));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for _ in 0..rng.gen_range(0..3) {
        let v = text(rng, 8);
        out.entry(name(rng)).or_insert(v);
    }
    out
}

/// A trace: a call, lines, maybe exceptions, a return (unless it was cut).
fn trace(rng: &mut ChaCha8Rng) -> (String, Vec<Frame>, bool) {
    let mut frames = Vec::new();
    let mut scope = Locals::new();
    for i in 0..rng.gen_range(1..12) {
        let event = match (i, rng.gen_range(0..10)) {
            (0, _) => "call",
            (_, 0) => "exception",
            (_, 1) => "return",
            _ => "line",
        };
        let has_locals = matches!(event, "call" | "line");
        if has_locals {
            scope = locals(rng, &scope);
        }
        frames.push(Frame {
            event: event.into(),
            line: rng.gen_range(1..500),
            source: text(rng, 10).replace('\n', " "),
            locals: if has_locals {
                scope.clone()
            } else {
                Locals::new()
            },
            value: (!has_locals).then(|| text(rng, 8)),
            cut_changed: Vec::new(),
        });
    }
    (text(rng, 30), frames, rng.gen_bool(0.7))
}

fn reference(python: &Path, input: String) -> Vec<String> {
    let mut child = Command::new(python)
        .args(["-c", REFERENCE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{} failed", python.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_token_form_is_byte_for_byte_the_demo_construction() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let traces: Vec<_> = (0..3_000).map(|_| trace(&mut rng)).collect();
    let input: String = traces
        .iter()
        .map(|(context, frames, ended)| {
            let frames: Vec<_> = frames
                .iter()
                .map(|f| {
                    let pairs: Vec<(&String, &String)> = f.locals.iter().collect();
                    serde_json::json!({"event": f.event, "source": f.source,
                                       "locals": pairs, "value": f.value})
                })
                .collect();
            serde_json::json!({"context": context, "frames": frames, "ended": ended}).to_string()
                + "\n"
        })
        .collect();
    let mut pythons = vec![("python3".to_string(), "python3".into())];
    pythons.extend(common::cached_pythons());
    for (version, python) in pythons {
        let expected = reference(&python, input.clone());
        assert_eq!(expected.len(), traces.len(), "python {version}");
        for ((context, frames, ended), want) in traces.iter().zip(&expected) {
            let got = token_text(context, frames, *ended);
            assert_eq!(&got, want, "python {version}: {frames:?}");
            let (back_context, back, back_ended) = parse_token_text(&got).unwrap();
            assert_eq!((&back_context, back_ended), (context, *ended));
            assert_eq!(back.len(), frames.len());
        }
    }
}
