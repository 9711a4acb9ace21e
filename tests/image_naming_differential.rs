//! Image names against SWE-bench 5.0.2 itself: `ImageSpec(...).name` from
//! `swebench/image_builder/image_spec.py`, run in the venv `scripts/setup-tests` installs, on
//! every SWE-bench Verified and Lite instance id and on generated ids and namespaces (mixed
//! case, dunders, registry hosts with ports), for both architectures, must equal
//! `cwm_datasets::official_image_name` with `--arch` mapped by `image_arch`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

mod common;
use common::official_python;

const OFFICIAL: &str = r#"
import json, sys
from swebench.image_builder.image_spec import ImageSpec
for line in sys.stdin:
    case = json.loads(line)
    spec = ImageSpec(instance_id=case["id"], dockerfile="FROM scratch",
                     namespace=case["namespace"], arch=case["arch"])
    print(json.dumps(spec.name))
"#;

fn dataset_ids(name: &str) -> Vec<String> {
    let path = cwm_datasets::fixtures::shared_datasets_dir().join(name);
    cwm_datasets::load(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|i| i.instance_id)
        .collect()
}

/// Generated ids and namespaces: the shapes of real ones with case and dunders mixed in.
fn generated(n: usize) -> Vec<(String, String)> {
    let id = "[A-Za-z][A-Za-z0-9_-]{0,12}__[A-Za-z0-9_.-]{1,16}-[0-9]{1,5}";
    let namespace = prop_oneof![
        Just("swebench".to_string()),
        "[a-z0-9]{1,10}(/[A-Za-z0-9_]{1,8})?",
        "(localhost|reg[a-z]{0,4}\\.example)(:[0-9]{2,5})?/[A-Za-z_]{1,10}",
    ];
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| {
            let value = (namespace.clone(), id).new_tree(&mut runner).unwrap();
            value.current()
        })
        .collect()
}

#[test]
fn official_image_names_equal_swebench_5_0_2_image_spec_names() {
    let mut cases: Vec<(String, String)> = Vec::new();
    for id in dataset_ids("swe-bench-verified.jsonl")
        .into_iter()
        .chain(dataset_ids("swe-bench-lite.jsonl"))
    {
        cases.push(("swebench".into(), id.clone()));
        cases.push(("localhost:5000/SWEbench".into(), id));
    }
    cases.extend(generated(2_000));
    let mut input = String::new();
    let mut expected = Vec::new();
    for (namespace, id) in &cases {
        for arch in ["amd64", "arm64"] {
            let case = serde_json::json!({"id": id, "namespace": namespace, "arch": arch});
            input.push_str(&format!("{case}\n"));
            let ours = cwm_datasets::official_image_name(
                namespace,
                cwm_datasets::image_arch(arch).unwrap(),
                id,
            );
            expected.push((case, ours));
        }
    }
    let mut child = Command::new(official_python())
        .args(["-c", OFFICIAL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Written from a thread: the answers fill the stdout pipe while the input is still going in.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "the official ImageSpec failed");
    let official: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(official.len(), expected.len());
    let differing: Vec<String> = expected
        .iter()
        .zip(&official)
        .filter(|((_, ours), theirs)| ours != *theirs)
        .map(|((case, ours), theirs)| format!("{case}: ours {ours}, official {theirs}"))
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} names differ, e.g.:\n{}",
        differing.len(),
        expected.len(),
        differing[..differing.len().min(10)].join("\n")
    );
}
