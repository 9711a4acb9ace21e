//! The neural-debugger evaluation: given a trace's prompt and its frames so far, how well a
//! model predicts the next frame (CWM's "neural debugger"). Positions are sampled from
//! `cwm-bench trace` examples; each prediction is scored on the next source line, the
//! changed locals, the return or exception value, the whole frame, and whether the
//! predicted line is a line of the function at all (a cheap validity check).

use std::collections::BTreeMap;

use cwm_results::metrics::Estimate;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::trace::{parse_frame, token_text, tokens, ParsedFrame, TraceExample};

/// A place to predict: frame `frame` (from 1: the call frame is always given) of example
/// `example`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub example: usize,
    pub frame: usize,
}

/// At most `limit` positions over all examples, sampled without replacement with `seed`.
pub fn positions(examples: &[TraceExample], limit: usize, seed: u64) -> Vec<Position> {
    let mut all: Vec<Position> = examples
        .iter()
        .enumerate()
        .flat_map(|(example, e)| (1..e.frames.len()).map(move |frame| Position { example, frame }))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    all.shuffle(&mut rng);
    all.truncate(limit);
    all
}

/// The prompt (the trace up to and including the separator before the frame) and the true
/// frame text (without its separator).
pub fn prompt_and_truth(example: &TraceExample, frame: usize) -> (String, String) {
    let text = token_text(&example.context, &example.frames, false);
    let parts: Vec<&str> = text.split(tokens::FRAME).collect();
    let prompt = format!("{}{}", parts[..=frame].join(tokens::FRAME), tokens::FRAME);
    (
        prompt,
        parts
            .get(frame + 1)
            .copied()
            .unwrap_or_default()
            .to_string(),
    )
}

/// How one prediction scored, and which frame of which example it predicted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub instance_id: String,
    pub repo: String,
    /// The example's test and traced function ([`TraceExample::test_id`],
    /// [`TraceExample::qualname`]).
    pub test_id: String,
    pub qualname: String,
    /// The predicted frame's index in the example's `frames` (from 1; frame 0, the call, is
    /// always given).
    pub frame: usize,
    /// The true frame's event.
    pub event: String,
    pub predicted: String,
    pub truth: String,
    /// The predicted frame parses as a frame.
    pub parsed: bool,
    /// Same event and same source line.
    pub next_line: bool,
    /// For call and line frames: the same changed locals (those not written `".."`).
    pub changed_locals: Option<bool>,
    /// For return and exception frames: the same value.
    pub value: Option<bool>,
    /// The whole frame text is the same.
    pub whole_frame: bool,
    /// The predicted source line is a line of the function (the context).
    pub valid_line: bool,
}

/// Scores `predicted` (the model's text, cut at the first frame separator) against `truth`,
/// frame `frame` of `example`.
pub fn score(example: &TraceExample, frame: usize, truth: &str, predicted: &str) -> Score {
    let predicted = predicted
        .split(tokens::FRAME)
        .next()
        .unwrap_or_default()
        .to_string();
    let true_frame = parse_frame(truth).ok();
    let guess = parse_frame(&predicted).ok();
    let event = true_frame
        .as_ref()
        .map_or("?".to_string(), |f| f.event.clone());
    let same = |f: &dyn Fn(&ParsedFrame, &ParsedFrame) -> bool| match (&true_frame, &guess) {
        (Some(t), Some(g)) => f(t, g),
        _ => false,
    };
    let changed = |f: &ParsedFrame| -> BTreeMap<String, String> {
        f.locals
            .iter()
            .filter(|(_, v)| *v != "..")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let locals_kind = matches!(event.as_str(), "call" | "line");
    let context_lines: Vec<&str> = example
        .context
        .lines()
        .map(|l| l.strip_suffix("  # << START_OF_TRACE").unwrap_or(l))
        .collect();
    Score {
        instance_id: example.instance_id.clone(),
        repo: repo_of(&example.instance_id),
        test_id: example.test_id.clone(),
        qualname: example.qualname.clone(),
        frame,
        parsed: guess.is_some(),
        next_line: same(&|t, g| t.event == g.event && t.source == g.source),
        changed_locals: locals_kind
            .then(|| same(&|t, g| t.event == g.event && changed(t) == changed(g))),
        value: (!locals_kind).then(|| same(&|t, g| t.event == g.event && t.value == g.value)),
        whole_frame: predicted == truth,
        valid_line: guess
            .as_ref()
            .is_some_and(|g| context_lines.contains(&g.source.as_str())),
        event,
        predicted,
        truth: truth.to_string(),
    }
}

/// `owner__repo-123` → `owner/repo`.
fn repo_of(instance_id: &str) -> String {
    let name = instance_id.rsplit_once('-').map_or(instance_id, |(n, _)| n);
    name.replacen("__", "/", 1)
}

/// A rate of right answers with its 95% Wilson interval ([`Estimate::of_proportion`]);
/// `None` (`null` in JSON, `-` in the table) when no score of the group has the field, so a
/// rate never measured does not read as 0%.
pub type Rate = Option<Estimate>;

/// The rate of `true` among `outcomes`.
fn rate_of(outcomes: impl IntoIterator<Item = bool>) -> Rate {
    let (mut hits, mut n) = (0, 0);
    for right in outcomes {
        n += 1;
        hits += usize::from(right);
    }
    Estimate::of_proportion(hits, n)
}

/// `41.2% (95% CI 35.0-47.4%)`, or `-` when nothing was measured.
fn percent(rate: &Rate) -> String {
    rate.map_or_else(|| "-".to_string(), |e| e.percent())
}

/// Rates of a group of scores, each with its 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    pub n: usize,
    pub next_line: Rate,
    /// Over the group's call and line frames.
    pub changed_locals: Rate,
    /// Over the group's return and exception frames.
    pub value: Rate,
    pub whole_frame: Rate,
    pub valid_line: Rate,
}

impl Rates {
    pub fn of(scores: &[&Score]) -> Rates {
        let rate = |f: &dyn Fn(&Score) -> Option<bool>| rate_of(scores.iter().filter_map(|s| f(s)));
        Rates {
            n: scores.len(),
            next_line: rate(&|s| Some(s.next_line)),
            changed_locals: rate(&|s| s.changed_locals),
            value: rate(&|s| s.value),
            whole_frame: rate(&|s| Some(s.whole_frame)),
            valid_line: rate(&|s| Some(s.valid_line)),
        }
    }
}

/// How the model read the trace tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceTokens {
    /// Each trace token is one token of the model's vocabulary (CWM), as in its training.
    Native,
    /// The vocabulary lacks them: the in-process engine splits them into ordinary tokens.
    Text,
    /// Sent as text to a server, whose tokenizer decides.
    ServerText,
}

impl std::fmt::Display for TraceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TraceTokens::Native => "native (one token each in the model's vocabulary)",
            TraceTokens::Text => "as text (the model's vocabulary lacks them)",
            TraceTokens::ServerText => "sent as text (the server's tokenizer reads them)",
        })
    }
}

/// The report: overall, per event type and per repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub trace_tokens: TraceTokens,
    pub overall: Rates,
    pub per_event: BTreeMap<String, Rates>,
    pub per_repo: BTreeMap<String, Rates>,
    pub scores: Vec<Score>,
}

impl Report {
    pub fn of(scores: Vec<Score>, trace_tokens: TraceTokens) -> Report {
        let group = |key: &dyn Fn(&Score) -> String| {
            let mut groups: BTreeMap<String, Vec<&Score>> = BTreeMap::new();
            for s in &scores {
                groups.entry(key(s)).or_default().push(s);
            }
            groups
                .into_iter()
                .map(|(k, v)| (k, Rates::of(&v)))
                .collect()
        };
        Report {
            trace_tokens,
            overall: Rates::of(&scores.iter().collect::<Vec<_>>()),
            per_event: group(&|s| s.event.clone()),
            per_repo: group(&|s| s.repo.clone()),
            scores: scores.clone(),
        }
    }

    /// A plain-text table: one row per group.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<28} {:>5}  {:>24}  {:>24}  {:>24}  {:>24}  {:>24}\n",
            "group", "n", "next line", "changed locals", "value", "whole frame", "valid line"
        );
        let row = |name: &str, r: &Rates| {
            format!(
                "{:<28} {:>5}  {:>24}  {:>24}  {:>24}  {:>24}  {:>24}\n",
                name,
                r.n,
                percent(&r.next_line),
                percent(&r.changed_locals),
                percent(&r.value),
                percent(&r.whole_frame),
                percent(&r.valid_line)
            )
        };
        out.push_str(&row("all", &self.overall));
        for (event, r) in &self.per_event {
            out.push_str(&row(&format!("event {event}"), r));
        }
        for (repo, r) in &self.per_repo {
            out.push_str(&row(repo, r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::trace::format::frame;
    use super::*;

    fn example() -> TraceExample {
        let frames = vec![
            frame("call", &[("n", "3")], "def f(n):", None),
            frame("line", &[("n", "3")], "    x = n + 1", None),
            frame("line", &[("n", "3"), ("x", "4")], "    return x", None),
            frame("return", &[], "    return x", Some("4")),
        ];
        let context = "def f(n):  # << START_OF_TRACE\n    x = n + 1\n    return x\n".to_string();
        TraceExample {
            instance_id: "a__b-1".into(),
            test_id: "t".into(),
            qualname: "f".into(),
            file: "f.py".into(),
            line: 1,
            text: token_text(&context, &frames, true),
            context,
            frames,
            truncated: None,
            python: Some("3.11.2".into()),
        }
    }

    #[test]
    fn prompts_end_before_the_frame_and_truths_are_the_frame() {
        let e = example();
        let (prompt, truth) = prompt_and_truth(&e, 2);
        assert!(prompt.ends_with("    x = n + 1<|frame_sep|>"), "{prompt}");
        assert_eq!(
            truth,
            "<|line_sep|>{\"n\": \"..\", \"x\": \"4\"}<|action_sep|>    return x"
        );
        assert_eq!(positions(std::slice::from_ref(&e), 10, 1).len(), 3);
        assert_eq!(positions(&[e], 2, 1).len(), 2);
    }

    #[test]
    fn predictions_are_scored_field_by_field() {
        let e = example();
        let (_, truth) = prompt_and_truth(&e, 2);
        let exact = score(&e, 2, &truth, &format!("{truth}<|frame_sep|>junk"));
        assert!(
            exact.whole_frame
                && exact.next_line
                && exact.changed_locals == Some(true)
                && exact.valid_line
        );
        let wrong_value = score(
            &e,
            2,
            &truth,
            "<|line_sep|>{\"n\": \"..\", \"x\": \"5\"}<|action_sep|>    return x",
        );
        assert!(
            wrong_value.next_line
                && wrong_value.changed_locals == Some(false)
                && !wrong_value.whole_frame
        );
        let garbage = score(&e, 2, &truth, "hello");
        assert!(!garbage.parsed && !garbage.next_line && !garbage.valid_line);
        let (_, ret) = prompt_and_truth(&e, 3);
        let returned = score(&e, 3, &ret, &ret);
        assert_eq!(
            (returned.event.as_str(), returned.value),
            ("return", Some(true))
        );
        let report = Report::of(
            vec![exact, wrong_value, garbage, returned],
            TraceTokens::Text,
        );
        assert_eq!(report.overall.n, 4);
        assert_eq!(report.per_event["line"].n, 3);
        assert_eq!(report.per_repo["a/b"].n, 4);
    }

    #[test]
    fn scores_name_their_example_and_frame() {
        let e = example();
        let (_, truth) = prompt_and_truth(&e, 2);
        let s = score(&e, 2, &truth, &truth);
        assert_eq!(
            (s.test_id.as_str(), s.qualname.as_str(), s.frame),
            ("t", "f", 2)
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            (&json["test_id"], &json["qualname"], &json["frame"]),
            (&"t".into(), &"f".into(), &2.into())
        );
    }

    #[test]
    fn rates_have_wilson_intervals_and_are_absent_when_unmeasured() {
        let e = example();
        let (_, truth) = prompt_and_truth(&e, 2);
        let right = score(&e, 2, &truth, &truth);
        // Three line frames, all right: no collapse to 100.0-100.0%.
        let report = Report::of(vec![right.clone(), right.clone(), right], TraceTokens::Text);
        let all = &report.overall;
        let next_line = all.next_line.unwrap();
        assert_eq!((next_line.n, next_line.mean, next_line.high), (3, 1.0, 1.0));
        assert!(next_line.low < 0.6, "{next_line:?}");
        // No return or exception frame: the value rate was not measured.
        assert_eq!(all.value, None);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["overall"]["value"].is_null(), "{json}");
        assert_eq!(json["overall"]["next_line"]["mean"], 1.0);
        let table = report.table();
        let row = table.lines().nth(1).unwrap();
        assert!(row.starts_with("all"), "{table}");
        // next line, changed locals, whole frame and valid line measured; value is "-".
        assert_eq!(row.matches("100.0% (95% CI").count(), 4, "{table}");
        assert_eq!(
            row.split_whitespace().filter(|c| *c == "-").count(),
            1,
            "{table}"
        );
    }
}
