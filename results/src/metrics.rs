//! Metrics over k samples per instance: pass@k with the unbiased estimator of Chen et al.
//! 2021 ("Evaluating Large Language Models Trained on Code", the numpy form
//! `1 - prod(1 - k / arange(n - c + 1, n + 1))`), a mean over instances with a 95%
//! confidence interval (normal approximation over instances), and a proportion of 0/1
//! outcomes with its 95% Wilson score interval.

use serde::Serialize;

/// The unbiased estimate of pass@k for one instance with `n` samples of which `c` are
/// correct: 1 - C(n-c, k) / C(n, k), computed as a product so that large `n` does not
/// overflow. `k` larger than `n` is clamped to `n`; `n == 0` gives 0.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    let k = k.min(n);
    if n == 0 || k == 0 {
        return 0.0;
    }
    let c = c.min(n);
    if n - c < k {
        return 1.0;
    }
    let none_correct: f64 = ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product();
    1.0 - none_correct
}

/// A mean with its 95% confidence interval, in [0, 1] for rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub mean: f64,
    /// Lower and upper bound of the 95% interval (mean ± 1.96 standard errors, clamped to
    /// [0, 1]); both equal the mean with fewer than two values.
    pub low: f64,
    pub high: f64,
    /// How many values (instances) the mean is over.
    pub n: usize,
}

impl Estimate {
    /// The mean of `values` (one per instance) and its interval.
    pub fn of(values: &[f64]) -> Estimate {
        let n = values.len();
        if n == 0 {
            return Estimate {
                mean: 0.0,
                low: 0.0,
                high: 0.0,
                n,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let half = if n < 2 {
            0.0
        } else {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            1.96 * (var / n as f64).sqrt()
        };
        Estimate {
            mean,
            low: (mean - half).max(0.0),
            high: (mean + half).min(1.0),
            n,
        }
    }

    /// The proportion `successes / n` of 0/1 outcomes with its 95% Wilson score interval
    /// (Wilson 1927, "Probable inference, the law of succession, and statistical inference",
    /// JASA 22(158):209-212; recommended for small `n` by Brown, Cai and DasGupta 2001,
    /// "Interval estimation for a binomial proportion", Statistical Science 16(2):101-133).
    /// With p = successes / n and z = 1.96 the bounds are
    ///
    /// ```text
    /// (p + z²/(2n) ± z·sqrt(p(1 - p)/n + z²/(4n²))) / (1 + z²/n)
    /// ```
    ///
    /// the two proportions a score test at the 5% level does not reject. Unlike the normal
    /// approximation of [`Estimate::of`], the interval does not collapse to a point at 0 or
    /// `n` successes (0 of 5 gives 0.0-43.4%). `None` when `n` is 0: nothing was measured.
    /// `successes` above `n` is clamped to `n`.
    pub fn of_proportion(successes: usize, n: usize) -> Option<Estimate> {
        if n == 0 {
            return None;
        }
        let z = 1.96_f64;
        let n_f = n as f64;
        let p = successes.min(n) as f64 / n_f;
        let z2n = z * z / n_f;
        let center = (p + z2n / 2.0) / (1.0 + z2n);
        let half = z * (p * (1.0 - p) / n_f + z2n / (4.0 * n_f)).sqrt() / (1.0 + z2n);
        Some(Estimate {
            mean: p,
            // Clamped: at p = 0 or 1 rounding can put a bound a hair outside [0, 1].
            low: (center - half).clamp(0.0, p),
            high: (center + half).clamp(p, 1.0),
            n,
        })
    }

    /// `41.2% (95% CI 35.0-47.4%)`.
    pub fn percent(&self) -> String {
        format!(
            "{:.1}% (95% CI {:.1}-{:.1}%)",
            100.0 * self.mean,
            100.0 * self.low,
            100.0 * self.high
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_cases() {
        assert_eq!(pass_at_k(0, 0, 1), 0.0);
        assert_eq!(pass_at_k(5, 0, 3), 0.0);
        assert_eq!(pass_at_k(5, 5, 1), 1.0);
        assert_eq!(pass_at_k(5, 3, 3), 1.0, "n - c < k");
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12, "pass@1 is c/n");
        assert_eq!(pass_at_k(4, 1, 9), 1.0, "k clamped to n");
    }

    #[test]
    fn estimates() {
        let e = Estimate::of(&[1.0, 0.0, 1.0, 0.0]);
        assert_eq!(e.mean, 0.5);
        assert!(e.low < 0.5 && e.high > 0.5 && e.low >= 0.0 && e.high <= 1.0);
        assert_eq!(Estimate::of(&[1.0]).low, 1.0);
        assert_eq!(Estimate::of(&[]).n, 0);
    }

    fn wilson(k: usize, n: usize) -> (f64, f64) {
        let e = Estimate::of_proportion(k, n).unwrap();
        assert_eq!(e.n, n);
        assert!((e.mean - k as f64 / n as f64).abs() < 1e-15);
        (e.low, e.high)
    }

    #[test]
    fn wilson_intervals_match_published_values() {
        // Newcombe 1998, "Two-sided confidence intervals for the single proportion:
        // comparison of seven methods", Statistics in Medicine 17:857-872, Table II, method 3
        // (Wilson score interval without continuity correction), to 4 decimals.
        for (k, n, low, high) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let (l, h) = wilson(k, n);
            assert!(
                (l - low).abs() < 5e-5 && (h - high).abs() < 5e-5,
                "{k}/{n}: {l} {h}"
            );
        }
        assert_eq!(Estimate::of_proportion(0, 0), None);
        // Never a point at 0% or 100%.
        let (l, h) = wilson(0, 3);
        assert!(l == 0.0 && h > 0.4, "{l} {h}");
        let (l, h) = wilson(3, 3);
        assert!(l < 0.6 && h == 1.0, "{l} {h}");
    }

    /// Compares with python3 solving the score test's quadratic
    /// `(p̂ - p)² = z² p (1 - p) / n` for p (the definition, not the closed form above).
    #[test]
    fn wilson_intervals_match_python() {
        let pairs: Vec<(usize, usize)> = [1, 2, 3, 5, 8, 13, 40, 200, 1001]
            .into_iter()
            .flat_map(|n| {
                let step = (n / 7).max(1);
                (0..=n).step_by(step).chain([n]).map(move |k| (k, n))
            })
            .collect();
        let script = r#"
import json, math, sys
z = 1.96
for k, n in json.load(sys.stdin):
    p = k / n
    a, b, c = 1 + z * z / n, -(2 * p + z * z / n), p * p
    d = math.sqrt(max(b * b - 4 * a * c, 0.0))
    print(json.dumps([k, n, (-b - d) / (2 * a), (-b + d) / (2 * a)]))
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            serde_json::to_string(&pairs).unwrap().as_bytes(),
        )
        .unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python3 failed");
        let rows: Vec<(usize, usize, f64, f64)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), pairs.len());
        for (k, n, low, high) in rows {
            let (l, h) = wilson(k, n);
            assert!(
                (l - low.max(0.0)).abs() < 1e-9 && (h - high.min(1.0)).abs() < 1e-9,
                "{k}/{n}: ours {l} {h}, python {low} {high}"
            );
        }
    }
}
