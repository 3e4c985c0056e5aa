//! A statistical spam classifier: token counts learned from ham and spam,
//! combined with Gary Robinson's chi-squared method (as in SpamBayes), and
//! a logistic regression on the same tokens ([`crate::linear`]).
//!
//! For each token the model knows in how many spam and ham messages it was
//! seen. Its spam probability is `(s/S) / (s/S + h/H)`, pulled towards 0.5
//! when it was seen rarely (`f = (x·a + n·p) / (a + n)`, a = 0.2, x = 0.5).
//! The [`MAX_CLUES`] (30) tokens farthest from 0.5 (at least
//! [`MIN_STRENGTH`] away) are combined: `S = 1 − χ²Q(−2 Σ ln(1−f), 2n)`
//! (spam evidence), `H = 1 − χ²Q(−2 Σ ln f, 2n)` (ham evidence), and the
//! chi-squared probability is `(S − H + 1) / 2`, near 0 or 1 when the
//! evidence agrees and near 0.5 when it conflicts or there is none.
//!
//! The message's log-odds is `SCALE × (logit(chi²) + 0.3 × linear)`: the
//! chi-squared answer is sharp but saturates (many messages at exactly 0,
//! 0.5 or 1); the linear model's log-odds orders the messages inside those
//! ties. The mix, the clue count and the prior strength were chosen by
//! cross-validation inside each training half of the SpamAssassin corpus
//! (`examples/spam_eval.rs`, `bench/results/spam-latest.md`).
//!
//! The counts are plain counts: training is adding. The linear weights are
//! learned in passes over a batch ([`Model::learn_batch`]) or one message at
//! a time ([`Model::train`]). Serialized as a small binary file
//! ([`Model::to_bytes`], version 3); reading never panics, refuses anything
//! that is not a model of this version, and says to retrain a version 1 or 2
//! model ([`ModelError::OldVersion`]).

use crate::linear::{Linear, LinearParams};
use crate::tokens::Tokens;
use std::collections::HashMap;

/// Most tokens combined per message.
pub const MAX_CLUES: usize = 30;
/// Tokens whose probability is closer than this to 0.5 are not clues.
pub const MIN_STRENGTH: f64 = 0.1;
/// Strength of the prior for rarely seen tokens (SpamBayes' unknown_word_strength).
const PRIOR_STRENGTH: f64 = 0.2;
/// The prior itself (unknown_word_prob).
const PRIOR: f64 = 0.5;

const MAGIC: &[u8; 8] = b"MXGBAYS3";
/// Models of older versions, refused with a message saying to retrain: 1
/// (token counts only), 2 (linear weights learned at the old rate, which the
/// version 3 decision cut would under-score).
const MAGIC_OLD: [&[u8; 8]; 2] = [b"MXGBAYS1", b"MXGBAYS2"];

/// How token probabilities are combined (SpamBayes' names in brackets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Most tokens combined per message [max_discriminators].
    pub max_clues: usize,
    /// Tokens closer than this to 0.5 are ignored [minimum_prob_strength].
    pub min_strength: f64,
    /// Strength of the prior for rarely seen tokens [unknown_word_strength].
    pub prior_strength: f64,
    /// The prior [unknown_word_prob].
    pub prior: f64,
    /// Weight of the chi-squared probability's log-odds in the combined score.
    pub bayes_mix: f64,
    /// Weight of the linear model's log-odds in the combined score.
    pub linear_mix: f64,
    /// The combined log-odds is multiplied by this before the logistic.
    pub scale: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_clues: MAX_CLUES,
            min_strength: MIN_STRENGTH,
            prior_strength: PRIOR_STRENGTH,
            prior: PRIOR,
            bayes_mix: BAYES_MIX,
            linear_mix: LINEAR_MIX,
            scale: SCALE,
        }
    }
}

/// Weight of the chi-squared log-odds in the combined score.
pub const BAYES_MIX: f64 = 1.0;
/// Weight of the linear model's log-odds in the combined score.
pub const LINEAR_MIX: f64 = 0.3;
/// The combined log-odds where the default decision falls (5 of 6 points):
/// the cut that gave 0.2% false positives on ham in 10-fold
/// cross-validation inside each training half of the SpamAssassin corpus
/// (see `bench/results/spam-method.md`).
pub const CUT: f64 = 3.29;
/// The combined log-odds is multiplied by this before the logistic, so
/// that [`CUT`] gives p = 11/12 (5 points of 6: ln 11 / CUT) while no
/// evidence stays p = 0.5 (0 points).
pub const SCALE: f64 = 0.7288;

/// Token counts and the linear model's weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    pub spam_messages: u32,
    pub ham_messages: u32,
    counts: HashMap<u64, (u32, u32)>,
    linear: Linear,
}

/// Why bytes are not a model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("not an mxguard spam model (bad magic or version)")]
    BadMagic,
    #[error("a spam model made by an older mxguard: train a new one with `mxguard spam train --fresh --ham DIR --spam DIR`")]
    OldVersion,
    #[error("truncated spam model")]
    Truncated,
}

/// One token that weighed in a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Clue {
    pub token: u64,
    /// Its spam probability.
    pub prob: f64,
}

/// The classifier's answer for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// 0.0 (ham) ..= 1.0 (spam); 0.5 when there is no evidence: the
    /// logistic of the combined log-odds.
    pub prob: f64,
    /// The chi-squared combining's probability alone.
    pub bayes: f64,
    /// The linear model's log-odds alone.
    pub margin: f64,
    /// The tokens used, strongest first.
    pub clues: Vec<Clue>,
}

/// χ² survival function for an even number of degrees of freedom.
fn chi2q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// Distinct tokens known.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Learns one message (its tokens once each): its counts, and the
    /// linear model's steps until it is on its side.
    pub fn train(&mut self, tokens: &Tokens, spam: bool) {
        self.count(tokens, spam);
        let v: Vec<u64> = tokens.hashes().collect();
        self.linear.learn(&v, spam, &LinearParams::incremental());
    }

    /// A model learned from a whole set of messages at once (several
    /// interleaved passes for the linear model: better than one
    /// [`Model::train`] after another).
    pub fn trained(set: &[(&Tokens, bool)]) -> Model {
        Model::trained_with(set, &LinearParams::default())
    }

    /// [`Model::trained`] with other learning parameters.
    pub fn trained_with(set: &[(&Tokens, bool)], p: &LinearParams) -> Model {
        let mut m = Model::new();
        m.learn_batch_with(set, p);
        m
    }

    /// Adds a set of messages to this model: their counts, and several
    /// interleaved passes of the linear model over them (starting from its
    /// current weights).
    pub fn learn_batch(&mut self, set: &[(&Tokens, bool)]) {
        self.learn_batch_with(set, &LinearParams::default());
    }

    fn learn_batch_with(&mut self, set: &[(&Tokens, bool)], p: &LinearParams) {
        let mut v: Vec<(Vec<u64>, bool)> = Vec::with_capacity(set.len());
        for (t, spam) in set {
            self.count(t, *spam);
            let mut h: Vec<u64> = t.hashes().collect();
            // A fixed order: the weights do not depend on hash-set order.
            h.sort_unstable();
            v.push((h, *spam));
        }
        self.linear.train_batch(&v, p);
    }

    fn count(&mut self, tokens: &Tokens, spam: bool) {
        if spam {
            self.spam_messages = self.spam_messages.saturating_add(1);
        } else {
            self.ham_messages = self.ham_messages.saturating_add(1);
        }
        for h in tokens.hashes() {
            let e = self.counts.entry(h).or_insert((0, 0));
            if spam {
                e.0 = e.0.saturating_add(1);
            } else {
                e.1 = e.1.saturating_add(1);
            }
        }
    }

    /// Unlearns a message's counts learned with the same label (a
    /// correction). The linear model's weights are not reverted: learning
    /// the message with its right label moves them.
    pub fn untrain(&mut self, tokens: &Tokens, spam: bool) {
        if spam {
            self.spam_messages = self.spam_messages.saturating_sub(1);
        } else {
            self.ham_messages = self.ham_messages.saturating_sub(1);
        }
        for h in tokens.hashes() {
            if let Some(e) = self.counts.get_mut(&h) {
                if spam {
                    e.0 = e.0.saturating_sub(1);
                } else {
                    e.1 = e.1.saturating_sub(1);
                }
                if *e == (0, 0) {
                    self.counts.remove(&h);
                    self.linear.w.remove(&h);
                }
            }
        }
    }

    /// Adds another model's counts to this one; the linear weights become
    /// the average of both, weighted by the messages each learned.
    pub fn merge(&mut self, other: &Model) {
        let (a, b) = (
            f64::from(self.spam_messages) + f64::from(self.ham_messages),
            f64::from(other.spam_messages) + f64::from(other.ham_messages),
        );
        let (wa, wb) = if a + b > 0.0 {
            ((a / (a + b)) as f32, (b / (a + b)) as f32)
        } else {
            (0.5, 0.5)
        };
        for w in self.linear.w.values_mut() {
            *w *= wa;
        }
        for (h, w) in &other.linear.w {
            *self.linear.w.entry(*h).or_insert(0.0) += wb * w;
        }
        self.linear.bias = self.linear.bias * wa + other.linear.bias * wb;
        self.spam_messages = self.spam_messages.saturating_add(other.spam_messages);
        self.ham_messages = self.ham_messages.saturating_add(other.ham_messages);
        for (h, (s, n)) in &other.counts {
            let e = self.counts.entry(*h).or_insert((0, 0));
            e.0 = e.0.saturating_add(*s);
            e.1 = e.1.saturating_add(*n);
        }
    }

    /// The spam probability of one token, `None` when never seen.
    pub fn token_prob(&self, h: u64) -> Option<f64> {
        self.token_prob_with(h, &Params::default())
    }

    fn token_prob_with(&self, h: u64, params: &Params) -> Option<f64> {
        let &(s, n) = self.counts.get(&h)?;
        let ns = f64::from(self.spam_messages.max(1));
        let nh = f64::from(self.ham_messages.max(1));
        let sr = f64::from(s) / ns;
        let hr = f64::from(n) / nh;
        if sr + hr == 0.0 {
            return None;
        }
        let p = sr / (sr + hr);
        let total = f64::from(s) + f64::from(n);
        Some((params.prior_strength * params.prior + total * p) / (params.prior_strength + total))
    }

    /// Classifies a message's tokens. Linear in the number of tokens.
    pub fn classify(&self, tokens: &Tokens) -> Classification {
        self.classify_with(tokens, &Params::default())
    }

    /// [`Model::classify`] with other combining parameters.
    pub fn classify_with(&self, tokens: &Tokens, params: &Params) -> Classification {
        let mut clues: Vec<Clue> = tokens
            .hashes()
            .filter_map(|h| {
                let p = self.token_prob_with(h, params)?;
                ((p - 0.5).abs() >= params.min_strength).then_some(Clue { token: h, prob: p })
            })
            .collect();
        // Strongest first; ties by token so the result does not depend on hash order.
        clues.sort_by(|a, b| {
            (b.prob - 0.5)
                .abs()
                .total_cmp(&(a.prob - 0.5).abs())
                .then(a.token.cmp(&b.token))
        });
        clues.truncate(params.max_clues.max(1));
        let v: Vec<u64> = tokens.hashes().collect();
        let margin = if self.linear.w.is_empty() {
            0.0
        } else {
            self.linear.margin(&v)
        };
        let bayes = self.chi2(&clues);
        let logit = |p: f64| {
            let p = p.clamp(1e-4, 1.0 - 1e-4);
            (p / (1.0 - p)).ln()
        };
        let z = params.scale * (params.bayes_mix * logit(bayes) + params.linear_mix * margin);
        let prob = if self.is_empty() {
            0.5
        } else {
            1.0 / (1.0 + (-z).exp())
        };
        Classification {
            prob,
            bayes,
            margin,
            clues,
        }
    }

    /// Robinson's chi-squared combining of the clues: 0.5 when there are none.
    fn chi2(&self, clues: &[Clue]) -> f64 {
        if clues.is_empty() {
            return 0.5;
        }
        // Sums of logs (products underflow with 150 clues).
        let (mut ln_s, mut ln_h) = (0.0f64, 0.0f64);
        for c in clues {
            let p = c.prob.clamp(1e-9, 1.0 - 1e-9);
            ln_s += (1.0 - p).ln();
            ln_h += p.ln();
        }
        let n = clues.len() * 2;
        let s = 1.0 - chi2q(-2.0 * ln_s, n);
        let h = 1.0 - chi2q(-2.0 * ln_h, n);
        ((s - h + 1.0) / 2.0).clamp(0.0, 1.0)
    }

    /// The model as bytes: magic (version 3), message counts, the linear
    /// model's bias, then (token, spam count, ham count, weight) records
    /// sorted by token, all little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v: Vec<(&u64, &(u32, u32))> = self.counts.iter().collect();
        v.sort_unstable_by_key(|(h, _)| **h);
        let mut out = Vec::with_capacity(28 + v.len() * 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.spam_messages.to_le_bytes());
        out.extend_from_slice(&self.ham_messages.to_le_bytes());
        out.extend_from_slice(&self.linear.bias.to_le_bytes());
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for (h, (s, n)) in v {
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
            let w = self.linear.w.get(h).copied().unwrap_or(0.0);
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Reads [`Model::to_bytes`] output. Never panics; memory is bounded by
    /// the input's length. A model of version 1 or 2 is
    /// [`ModelError::OldVersion`] (retrain).
    pub fn from_bytes(b: &[u8]) -> Result<Model, ModelError> {
        if MAGIC_OLD.iter().any(|m| b.starts_with(*m)) {
            return Err(ModelError::OldVersion);
        }
        let rest = b.strip_prefix(MAGIC).ok_or(ModelError::BadMagic)?;
        if rest.len() < 20 {
            return Err(ModelError::Truncated);
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let spam_messages = u32_at(0);
        let ham_messages = u32_at(4);
        let bias = f32::from_bits(u32_at(8));
        let mut n8 = [0u8; 8];
        n8.copy_from_slice(&rest[12..20]);
        let n = u64::from_le_bytes(n8);
        let body = &rest[20..];
        if (body.len() as u64) != n.saturating_mul(20) {
            return Err(ModelError::Truncated);
        }
        let mut counts = HashMap::with_capacity(body.len() / 20);
        let mut w = HashMap::with_capacity(body.len() / 20);
        for rec in body.chunks_exact(20) {
            let mut h = [0u8; 8];
            h.copy_from_slice(&rec[..8]);
            let h = u64::from_le_bytes(h);
            let s = u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]);
            let m = u32::from_le_bytes([rec[12], rec[13], rec[14], rec[15]]);
            let x = f32::from_le_bytes([rec[16], rec[17], rec[18], rec[19]]);
            counts.insert(h, (s, m));
            if x != 0.0 && x.is_finite() {
                w.insert(h, x);
            }
        }
        Ok(Model {
            spam_messages,
            ham_messages,
            counts,
            linear: Linear {
                bias: if bias.is_finite() { bias } else { 0.0 },
                w,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{MessageFacts, TextPart};
    use crate::tokens::tokenize;

    fn facts(subject: &str, body: &str) -> MessageFacts {
        MessageFacts {
            subject: subject.into(),
            texts: vec![TextPart {
                text: body.into(),
                html: false,
                tags: vec![],
                html_features: vec![],
                declared_type: None,
            }],
            ..Default::default()
        }
    }

    fn trained() -> Model {
        let mut m = Model::new();
        for i in 0..20 {
            m.train(
                &tokenize(&facts(
                    "cheap viagra",
                    &format!("buy cheap pills now offer {i} click unsubscribe"),
                )),
                true,
            );
            m.train(
                &tokenize(&facts(
                    "meeting notes",
                    &format!("the patch for the kernel build {i} review tomorrow"),
                )),
                false,
            );
        }
        m
    }

    #[test]
    fn separates_what_it_learned() {
        let m = trained();
        let spam = m.classify(&tokenize(&facts("cheap offer", "buy pills click now")));
        let ham = m.classify(&tokenize(&facts(
            "kernel review",
            "the patch build tomorrow",
        )));
        assert!(spam.prob > 0.95, "{}", spam.prob);
        assert!(ham.prob < 0.05, "{}", ham.prob);
        let unknown = m.classify(&tokenize(&facts("zzzz", "qqqq wwww")));
        assert!((unknown.prob - 0.5).abs() < 0.2, "{}", unknown.prob);
        assert!((unknown.bayes - 0.5).abs() < 0.2, "{}", unknown.bayes);
        assert!(spam.clues.len() <= MAX_CLUES);
    }

    #[test]
    fn bytes_round_trip_and_garbage() {
        let m = trained();
        let b = m.to_bytes();
        assert_eq!(Model::from_bytes(&b).unwrap(), m);
        assert_eq!(Model::from_bytes(b"nope"), Err(ModelError::BadMagic));
        assert_eq!(
            Model::from_bytes(&b[..b.len() - 3]),
            Err(ModelError::Truncated)
        );
        let mut huge = b[..28].to_vec();
        huge[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Model::from_bytes(&huge), Err(ModelError::Truncated));
        for magic in [b"MXGBAYS1", b"MXGBAYS2"] {
            let mut old = b.clone();
            old[..8].copy_from_slice(magic);
            assert_eq!(Model::from_bytes(&old), Err(ModelError::OldVersion));
        }
    }

    #[test]
    fn untrain_and_merge() {
        let mut m = trained();
        let t = tokenize(&facts("one more", "unique words here"));
        let before = m.clone();
        m.train(&t, true);
        m.untrain(&t, true);
        // The counts are back; the linear weights are not reverted.
        assert_eq!(m.counts, before.counts);
        assert_eq!(
            (m.spam_messages, m.ham_messages),
            (before.spam_messages, before.ham_messages)
        );
        let mut a = Model::new();
        a.merge(&before);
        assert_eq!(a, before);
    }

    #[test]
    fn chi2q_is_a_survival_function() {
        assert!((chi2q(0.0, 4) - 1.0).abs() < 1e-12);
        assert!(chi2q(1000.0, 4) < 1e-12);
        // Mean of chi2 with 10 degrees of freedom: about half the mass beyond.
        let q = chi2q(9.34, 10);
        assert!((q - 0.5).abs() < 0.01, "{q}");
    }
}
