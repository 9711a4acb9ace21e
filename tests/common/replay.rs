//! Reading and checking trace examples, shared by tests/trace.rs and tests/trace_pythons.rs.

use cwm_bench::pipeline::trace::{parse_token_text, Locals, TraceExample};

/// The token form read back equals the recorded frames once `".."` is expanded.
pub fn check_replay(e: &TraceExample) {
    let (context, parsed, ended) =
        parse_token_text(&e.text).unwrap_or_else(|err| panic!("{}: {err}\n{}", e.qualname, e.text));
    assert_eq!(context, e.context);
    assert_eq!(ended, e.truncated.is_none());
    assert_eq!(parsed.len(), e.frames.len(), "{}", e.text);
    let mut scope = Locals::new();
    for (p, f) in parsed.iter().zip(&e.frames) {
        assert_eq!((&p.event, &p.source), (&f.event, &f.source));
        assert_eq!(p.value, f.value);
        if p.event == "call" || p.event == "line" {
            let expanded: Locals = p
                .locals
                .iter()
                .map(|(k, v)| {
                    let v = if v == ".." {
                        scope[k].clone()
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect();
            assert_eq!(expanded, f.locals, "{}", e.text);
            assert!(
                expanded.keys().eq(f.locals.keys()),
                "the token form keeps the recorded order of locals: {}",
                e.text
            );
            scope = expanded;
        }
    }
    if ended {
        assert_eq!(
            parsed.last().unwrap().event,
            "return",
            "a trace ends when its scope exits"
        );
    }
}

/// The examples `cwm-bench trace` wrote to `path`.
pub fn read_examples(path: &std::path::Path) -> Vec<TraceExample> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every FAIL_TO_PASS test of `instance` has at least one example; `what` names the run.
pub fn assert_each_test_traced(
    examples: &[TraceExample],
    instance: &cwm_datasets::Instance,
    what: &str,
) {
    for test in &instance.fail_to_pass {
        assert!(
            examples
                .iter()
                .any(|e| e.instance_id == instance.instance_id && &e.test_id == test),
            "{what}: no example of {} {test}",
            instance.instance_id
        );
    }
}
