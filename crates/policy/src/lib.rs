//! mxguard's policy layer: what an administrator decides about a message
//! beyond viruses (spam, phishing, content rules), as pure functions over the
//! facts of a decoded message. No I/O: models and rules come in as values,
//! results go out as values; front-ends load, store and act.
//!
//! - [`facts`]: one walk of the decoder gathers headers, text, links and
//!   attachments ([`MessageFacts`]).
//! - [`tokens`], [`bayes`] and [`linear`]: the statistical spam classifier
//!   (token counts with Robinson's chi-squared combining, mixed with a
//!   logistic regression on the same tokens); [`spam`]: its points against
//!   a required score.
//! - [`auth`]: SPF, DKIM, DMARC, ARC and DNS block list results as facts
//!   (looked up by `mxguard-auth`, read by the rules).
//! - [`rules`]: the rules engine: a TOML policy (lists, synonyms, rules,
//!   per-direction and per-recipient policies, built-in phishing checks)
//!   compiled into one matcher per field ([`CompiledPolicy`]) and
//!   evaluated into one [`PolicyVerdict`] per policy.
//!
//! # DESIGN
//! The classifier's quality is measured, not assumed: `bench/spam.sh`
//! trains on one half of the SpamAssassin public corpus and tests on the
//! other (and the reverse), and runs SpamAssassin on the same test halves.

pub mod auth;
pub mod bayes;
pub mod facts;
pub mod linear;
pub mod rules;
pub mod spam;
pub mod tokens;

pub use auth::{
    AuthResult, AuthResults, DkimCheck, DmarcCheck, DmarcPolicy, DnsListing, SpfCheck, SpfIdentity,
    UriListing,
};
pub use bayes::{Classification, Clue, Model, ModelError};
pub use facts::{FactsCollector, MessageFacts};
pub use rules::{
    Action, CompiledPolicy, ConfigError, Envelope, PolicyAction, PolicyConfig, PolicyHit,
    PolicyVerdict,
};
pub use spam::{RuleHit, SpamFilter, SpamResult};
pub use tokens::{tokenize, tokenize_named, Tokens};
