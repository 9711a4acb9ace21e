//! Metrics over k samples per instance: pass@k with the unbiased estimator of Chen et al.
//! 2021 ("Evaluating Large Language Models Trained on Code", the numpy form
//! `1 - prod(1 - k / arange(n - c + 1, n + 1))`), and a mean over instances with a 95%
//! confidence interval (normal approximation over instances).

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
}
