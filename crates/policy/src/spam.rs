//! The spam verdict: points from the classifier (and, later, rules) against
//! a required score, SpamAssassin style: `score >= required` is spam.

use crate::bayes::Model;
use crate::facts::MessageFacts;
use crate::tokens::tokenize;

/// Default points at or above which a message is spam.
pub const DEFAULT_REQUIRED: f64 = 5.0;
/// Default weight of the classifier: it adds `weight × (2p − 1)` points, so
/// no evidence (p = 0.5) is 0 and certainty is ± weight.
pub const DEFAULT_BAYES_WEIGHT: f64 = 6.0;

/// A trained model and how its answer counts.
#[derive(Debug, Clone)]
pub struct SpamFilter {
    pub model: Model,
    pub required: f64,
    pub bayes_weight: f64,
}

/// One rule that contributed points.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHit {
    pub name: String,
    pub points: f64,
}

/// The verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamResult {
    /// Total points, rounded to hundredths.
    pub score: f64,
    pub required: f64,
    pub spam: bool,
    /// The classifier's probability.
    pub probability: f64,
    pub rules: Vec<RuleHit>,
}

impl SpamResult {
    /// `Yes, score=7.32 required=5.0 tests=BAYES` (the X-Spam-Status value).
    pub fn status_header(&self) -> String {
        let tests: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        format!(
            "{}, score={:.2} required={:.1} tests={}",
            if self.spam { "Yes" } else { "No" },
            self.score,
            self.required,
            if tests.is_empty() {
                "none".to_string()
            } else {
                tests.join(",")
            }
        )
    }
}

/// Points for a classifier probability.
pub fn bayes_points(prob: f64, weight: f64) -> f64 {
    weight * (2.0 * prob - 1.0)
}

impl SpamFilter {
    pub fn new(model: Model) -> SpamFilter {
        SpamFilter {
            model,
            required: DEFAULT_REQUIRED,
            bayes_weight: DEFAULT_BAYES_WEIGHT,
        }
    }

    /// Scores a message. Pure; linear in the message's tokens.
    pub fn check(&self, facts: &MessageFacts) -> SpamResult {
        let c = self.model.classify(&tokenize(facts));
        let points = bayes_points(c.prob, self.bayes_weight);
        let score = (points * 100.0).round() / 100.0;
        SpamResult {
            score,
            required: self.required,
            spam: score >= self.required,
            probability: c.prob,
            rules: vec![RuleHit {
                name: "BAYES".into(),
                points: score,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_header() {
        assert_eq!(bayes_points(0.5, 6.0), 0.0);
        assert!(bayes_points(0.99, 6.0) >= DEFAULT_REQUIRED);
        assert!(bayes_points(0.9, 6.0) < DEFAULT_REQUIRED);
        let f = SpamFilter::new(Model::new());
        let r = f.check(&MessageFacts::default());
        assert!(!r.spam);
        assert_eq!(r.status_header(), "No, score=0.00 required=5.0 tests=BAYES");
    }
}
