//! Token sampling: temperature, top-k, top-p, seeded.

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep the smallest set of tokens whose probability reaches this (1.0: all).
    pub top_p: f32,
    /// Keep only the k most likely tokens (0: all).
    pub top_k: usize,
    pub seed: u64,
    pub max_new_tokens: usize,
    /// Generation stops after producing any of these (they are not part of the text).
    /// Empty: use the model's own end-of-sequence ids.
    pub stop_tokens: Vec<u32>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            max_new_tokens: 256,
            stop_tokens: Vec::new(),
        }
    }
}

/// A small deterministic generator (SplitMix64): same seed, same tokens.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Picks the next token from `logits` (one row, vocab wide).
pub fn sample(logits: &[f32], p: &SamplingParams, rng: &mut Rng) -> u32 {
    if p.temperature <= 0.0 || logits.is_empty() {
        return argmax(logits);
    }
    let mut cands: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| (i as u32, v))
        .collect();
    if cands.is_empty() {
        return argmax(logits);
    }
    let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1);
    if p.top_k > 0 && p.top_k < cands.len() {
        cands.select_nth_unstable_by(p.top_k - 1, by_logit);
        cands.truncate(p.top_k);
    }
    cands.sort_unstable_by(by_logit);
    let max = cands[0].1;
    let mut total = 0f32;
    for c in cands.iter_mut() {
        c.1 = ((c.1 - max) / p.temperature).exp();
        total += c.1;
    }
    // Nucleus: keep the head of the sorted list until its mass reaches top_p.
    let mut kept = cands.len();
    if p.top_p < 1.0 {
        let mut acc = 0f32;
        for (i, c) in cands.iter().enumerate() {
            acc += c.1 / total;
            if acc >= p.top_p {
                kept = i + 1;
                break;
            }
        }
    }
    let mass: f32 = cands[..kept].iter().map(|c| c.1).sum();
    let mut r = rng.next_f32() * mass;
    for c in &cands[..kept] {
        if r < c.1 {
            return c.0;
        }
        r -= c.1;
    }
    cands[kept - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_max() {
        let p = SamplingParams::default();
        assert_eq!(sample(&[0.1, 3.0, -1.0], &p, &mut Rng::new(0)), 1);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        };
        for s in 0..20 {
            assert_eq!(sample(&[0.1, 3.0, 2.9], &p, &mut Rng::new(s)), 1);
        }
    }

    #[test]
    fn top_p_cuts_the_tail_and_seed_repeats() {
        let p = SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            ..Default::default()
        };
        let logits = [5.0, 0.0, 0.0, 0.0];
        let mut rng = Rng::new(9);
        assert!((0..50).all(|_| sample(&logits, &p, &mut rng) == 0));
        let q = SamplingParams { top_p: 1.0, ..p };
        let a: Vec<u32> = {
            let mut r = Rng::new(5);
            (0..30)
                .map(|_| sample(&[1.0, 1.0, 1.0], &q, &mut r))
                .collect()
        };
        let b: Vec<u32> = {
            let mut r = Rng::new(5);
            (0..30)
                .map(|_| sample(&[1.0, 1.0, 1.0], &q, &mut r))
                .collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|&t| t != a[0]), "temperature 1 should vary");
    }
}
