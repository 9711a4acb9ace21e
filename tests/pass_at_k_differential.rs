//! pass@k against its reference: the numpy estimator of Chen et al. 2021
//! (`1 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))`, with 1.0 when `n - c < k`), run
//! with the numpy of the venv `scripts/setup-tests` installs, on every (n, c, k) with n up to
//! 12 and 3,000 generated ones up to n = 400.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::io::Write;
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};

mod common;
use common::official_python;

const REFERENCE: &str = r#"
import sys
import numpy as np
def pass_at_k(n, c, k):
    if n - c < k:
        return 1.0
    return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))
for line in sys.stdin:
    n, c, k = map(int, line.split())
    print(repr(float(pass_at_k(n, c, k))))
"#;

#[test]
fn pass_at_k_equals_the_numpy_reference() {
    let mut cases = Vec::new();
    for n in 1..=12usize {
        for c in 0..=n {
            for k in 1..=n {
                cases.push((n, c, k));
            }
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    for _ in 0..3_000 {
        let n = rng.gen_range(1..=400usize);
        cases.push((n, rng.gen_range(0..=n), rng.gen_range(1..=n)));
    }
    let input: String = cases
        .iter()
        .map(|(n, c, k)| format!("{n} {c} {k}\n"))
        .collect();
    let mut child = Command::new(official_python())
        .args(["-c", REFERENCE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let reference: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(reference.len(), cases.len());
    for ((n, c, k), theirs) in cases.iter().zip(reference) {
        let ours = cwm_results::metrics::pass_at_k(*n, *c, *k);
        assert!(
            (ours - theirs).abs() <= 1e-12,
            "pass@{k} with n={n}, c={c}: ours {ours}, numpy {theirs}"
        );
    }
}
