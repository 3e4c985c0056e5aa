//! A discriminative companion to the token counts: logistic regression on
//! the same hashed binary tokens (each message's vector scaled to unit
//! length), trained by stochastic gradient descent, as in Goodman & Yih,
//! "Online Discriminative Spam Filter Training" (CEAS 2006), and Sculley &
//! Wachman's online filters for the TREC spam track.
//!
//! Training a batch ([`Linear::train_batch`]) runs several passes over the
//! messages in an order that interleaves ham and spam (an online learner
//! must not see all ham, then all spam), and averages the weights of
//! several such runs, each in its own order (the large steps leave noise
//! that depends on the order; the average keeps one model of the same
//! size). Learning one message later (a report, a release) is one gradient
//! step, repeated while the message is still on the wrong side of the
//! margin ([`Linear::learn`]).

use std::collections::HashMap;

/// How the weights are learned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearParams {
    /// Step size of one gradient step.
    pub rate: f64,
    /// Passes over a batch.
    pub epochs: usize,
    /// L2 shrinkage per step (0: none).
    pub l2: f64,
    /// Batch training only: how many runs, each over its own interleaved
    /// order, are averaged into the weights (1: one run).
    pub ensemble: usize,
}

impl Default for LinearParams {
    /// Batch training (chosen by 10-fold cross-validation inside each
    /// training half of the SpamAssassin corpus: rates 2, 8, 32, 64;
    /// ensembles of 1, 5, 10, 20 runs).
    fn default() -> Self {
        LinearParams {
            rate: 64.0,
            epochs: 5,
            l2: 0.0,
            ensemble: 10,
        }
    }
}

impl LinearParams {
    /// Learning one message later (a report, a release): smaller steps, so
    /// that one message does not swing the weights of the tokens every
    /// message has (not chosen by cross-validation: the earlier rate).
    pub fn incremental() -> Self {
        LinearParams {
            rate: 8.0,
            ..LinearParams::default()
        }
    }
}

/// Most extra steps spent on one message learned later ([`Linear::learn`]).
const MAX_LEARN_STEPS: usize = 10;

/// The weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Linear {
    pub(crate) bias: f32,
    pub(crate) w: HashMap<u64, f32>,
}

/// Fixed-point scale of the ensemble's sums (2^32: far below an f32's
/// precision at the weights' magnitudes, far from overflowing an i64).
const FIXED: f64 = 4_294_967_296.0;

fn to_fixed(w: f32) -> i64 {
    (f64::from(w) * FIXED).round() as i64
}

/// The mean of `runs` weights added up by [`to_fixed`].
fn from_fixed(sum: i64, runs: usize) -> f32 {
    (sum as f64 / FIXED / runs as f64) as f32
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Linear {
    /// The log-odds of spam for a message's token hashes.
    pub fn margin(&self, tokens: &[u64]) -> f64 {
        if tokens.is_empty() {
            return f64::from(self.bias);
        }
        let scale = 1.0 / (tokens.len() as f64).sqrt();
        let sum: f64 = tokens
            .iter()
            .filter_map(|h| self.w.get(h))
            .map(|w| f64::from(*w))
            .sum();
        f64::from(self.bias) + sum * scale
    }

    /// One gradient step of the logistic loss; returns the margin before it.
    fn step(&mut self, tokens: &[u64], spam: bool, p: &LinearParams) -> f64 {
        let m = self.margin(tokens);
        let y = if spam { 1.0 } else { 0.0 };
        let g = p.rate * (y - sigmoid(m));
        let scale = 1.0 / (tokens.len().max(1) as f64).sqrt();
        let d = (g * scale) as f32;
        let shrink = (1.0 - p.rate * p.l2) as f32;
        for h in tokens {
            let w = self.w.entry(*h).or_insert(0.0);
            if p.l2 > 0.0 {
                *w *= shrink;
            }
            *w += d;
        }
        self.bias += (g * 0.1) as f32;
        m
    }

    /// Learns a batch: `epochs` passes in an interleaved, deterministic
    /// order, starting from the current weights. With `ensemble` > 1, that
    /// many runs, each in its own order, are averaged: the result is still
    /// one linear model (same size, same speed to apply), with less of the
    /// noise that large steps in one particular order leave in the weights.
    /// Deterministic: the same batch gives the same weights.
    pub fn train_batch(&mut self, set: &[(Vec<u64>, bool)], p: &LinearParams) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.train_batch_on(set, p, threads);
    }

    /// [`Linear::train_batch`] with the runs spread over `threads` threads.
    /// The runs' weights are added up in fixed point (integer addition
    /// does not depend on the order), so the result is the same for any
    /// number of threads.
    fn train_batch_on(&mut self, set: &[(Vec<u64>, bool)], p: &LinearParams, threads: usize) {
        let runs = p.ensemble.max(1);
        if runs == 1 {
            self.run(set, p, 0);
            return;
        }
        let threads = threads.clamp(1, runs);
        let start = &*self;
        let partial = |t: usize| {
            let mut sum: HashMap<u64, i64> = HashMap::with_capacity(start.w.len());
            let mut bias = 0i64;
            for r in (t..runs).step_by(threads) {
                let mut m = start.clone();
                m.run(set, p, r as u64);
                for (h, w) in m.w {
                    *sum.entry(h).or_insert(0) += to_fixed(w);
                }
                bias += to_fixed(m.bias);
            }
            (sum, bias)
        };
        let parts: Vec<(HashMap<u64, i64>, i64)> = if threads == 1 {
            vec![partial(0)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || partial(t))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let mut sum: HashMap<u64, i64> = HashMap::new();
        let mut bias = 0i64;
        for (part, b) in parts {
            if sum.is_empty() {
                sum = part;
            } else {
                for (h, w) in part {
                    *sum.entry(h).or_insert(0) += w;
                }
            }
            bias += b;
        }
        self.w = sum
            .into_iter()
            .map(|(h, w)| (h, from_fixed(w, runs)))
            .collect();
        self.bias = from_fixed(bias, runs);
    }

    /// `epochs` passes over `set` in the interleaved order of run `run`.
    fn run(&mut self, set: &[(Vec<u64>, bool)], p: &LinearParams, run: u64) {
        let order = interleaved(set, run);
        for _ in 0..p.epochs {
            for &i in &order {
                let (t, spam) = &set[i];
                self.step(t, *spam, p);
            }
        }
    }

    /// Learns one message: gradient steps until it is on its side with a
    /// margin of at least 2 (p ≈ 0.12 / 0.88), at most a few.
    pub fn learn(&mut self, tokens: &[u64], spam: bool, p: &LinearParams) {
        for _ in 0..MAX_LEARN_STEPS {
            let m = self.step(tokens, spam, p);
            if (spam && m >= 2.0) || (!spam && m <= -2.0) {
                break;
            }
        }
    }
}

/// Indices of `set` with ham and spam interleaved in proportion, each
/// class in a fixed pseudo-random order that depends on `run` only (so a
/// batch is learned the same way every time).
fn interleaved(set: &[(Vec<u64>, bool)], run: u64) -> Vec<usize> {
    let mut rng: u64 = (0x9e37_79b9_7f4a_7c15 ^ run.wrapping_mul(0x2545_f491_4f6c_dd1d)) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut spam: Vec<usize> = (0..set.len()).filter(|&i| set[i].1).collect();
    let mut ham: Vec<usize> = (0..set.len()).filter(|&i| !set[i].1).collect();
    for v in [&mut spam, &mut ham] {
        for i in (1..v.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
    let (ns, nh) = (spam.len(), ham.len());
    let mut out = Vec::with_capacity(ns + nh);
    let (mut i, mut j) = (0, 0);
    while i < ns || j < nh {
        // Take from the class that is behind its share.
        if j >= nh || (i < ns && (i as u64) * (nh as u64) <= (j as u64) * (ns as u64)) {
            out.push(spam[i]);
            i += 1;
        } else {
            out.push(ham[j]);
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_in_proportion() {
        let set: Vec<(Vec<u64>, bool)> = (0..30).map(|i| (vec![i], i < 10)).collect();
        let o = interleaved(&set, 0);
        assert_eq!(o.len(), 30);
        let mut seen = o.clone();
        seen.sort();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());
        // Every window of 6 holds 2 spam.
        for w in o.chunks(6) {
            assert_eq!(w.iter().filter(|&&i| i < 10).count(), 2, "{o:?}");
        }
    }

    #[test]
    fn learns_a_separable_set() {
        let set: Vec<(Vec<u64>, bool)> = (0..40)
            .map(|i| {
                let spam = i % 2 == 0;
                (vec![if spam { 1 } else { 2 }, 100 + i], spam)
            })
            .collect();
        let mut l = Linear::default();
        l.train_batch(&set, &LinearParams::default());
        assert!(l.margin(&[1, 999]) > 1.0, "{}", l.margin(&[1, 999]));
        assert!(l.margin(&[2, 999]) < -1.0);
        // Deterministic, and an ensemble of one is one run.
        let mut again = Linear::default();
        again.train_batch(&set, &LinearParams::default());
        assert_eq!(l, again);
        let one = LinearParams {
            ensemble: 1,
            ..LinearParams::default()
        };
        let mut a = Linear::default();
        a.train_batch(&set, &one);
        let mut b = Linear::default();
        b.run(&set, &one, 0);
        assert_eq!(a, b);
        assert_ne!(a, l, "ten runs in ten orders average to other weights");
        // The same weights on any number of threads.
        for threads in [1, 3, 16] {
            let mut t = Linear::default();
            t.train_batch_on(&set, &LinearParams::default(), threads);
            assert_eq!(t, l, "{threads} threads");
        }
        let mut l2 = l.clone();
        l2.learn(&[3], true, &LinearParams::incremental());
        assert!(l2.margin(&[3]) >= 2.0);
    }
}
