//! The rules engine: administrator-defined policies over the facts of a
//! message (envelope, headers, decoded body text, attachments, URLs,
//! size), each leading to points toward the spam score and/or an action.
//!
//! ```text
//! policy TOML ──PolicyConfig::parse──▶ PolicyConfig ──CompiledPolicy::compile──▶ CompiledPolicy (Arc, shared)
//! MessageFacts + Envelope + Option<SpamResult> ──CompiledPolicy::evaluate──▶ Vec<PolicyVerdict> (one per policy)
//! ```
//!
//! - [`config`]: the TOML format (lists, synonyms, rules, policies,
//!   `[phishing]`, `[urls]`, `[auth]`), every error at once with its key
//!   path.
//! - [`fold`]: the text folding shared by keywords and text (NFKD,
//!   lowercase, homoglyphs, leetspeak, spaced-out words).
//! - [`domain`]: URLs, IP literals, registrable domains, punycode.
//! - [`phishing`]: the built-in phishing checks.
//! - [`verdict`]: [`Envelope`] in, [`PolicyVerdict`] out.
//!
//! # Config
//! `crates/policy/examples/policy.toml` is a complete, commented example
//! (compiled by a test, so it stays true). In mxguard's config file the
//! same keys sit under `[policy]`: `CompiledPolicy::from_toml(text,
//! "policy")`, and error paths read `policy.rules[3].match.body.regex[0]`.
//! Regexes use the `regex` crate's syntax with `\b` as an ASCII word
//! boundary (see [`compile`]).
//!
//! # DESIGN
//! Many rules, one pass per field. Compilation numbers every test of
//! every rule (a *leaf*) and puts all keywords over one field (subject,
//! body, a named header...) into one aho-corasick automaton and all
//! regexes, globs, address and domain patterns over one field into one
//! `RegexSet`, each pattern mapped back to its leaf. Evaluation builds
//! each field's value once, folds it once, runs its automaton and set once
//! and sets the leaves that hold; attachments, URLs and recipients run
//! their item fields once per item. Rules are then boolean trees over
//! leaves, walked per policy — no regex runs per rule and no work grows
//! with the number of policies except those walks.
//!
//! Keywords match folded text on whole words by default (the folded text
//! is ` word word `; a keyword is ` keyword `), so `F.R.E.E`, `ｆｒｅｅ`,
//! `fr3e` and `frее` (Cyrillic) all match `free`; synonyms expand each
//! word of a keyword to its variants at compile time. Regexes run on the
//! decoded text as it is (case-insensitive unless asked) or, with
//! `fold = true`, on the folded text.
//!
//! Per-recipient policies: each recipient gets the first policy whose
//! direction and recipient patterns fit, else the implicit `default`
//! (every rule). Recipients sharing a policy share one verdict; the
//! message-level work (phase 1) is done once whatever the number of
//! policies.
//!
//! Authentication and block lists: `auth`, `dnsbl` and `uribl` tests read
//! [`crate::MessageFacts::auth`] (looked up by `mxguard-auth`); the
//! built-in auth rules (`SPF_FAIL`... see [`config::AuthRule`]) are
//! compiled like the phishing ones, and the two list rules
//! (`RCVD_IN_DNSBL`, `URIBL_LISTED`) fire as one hit per listing rule
//! (`RCVD_IN_ZEN`), named and scored by the auth config's zones.
//!
//! The classifier is one rule among the others: the BAYES points of a
//! [`crate::SpamResult`] add to the rules' points, and `score >=
//! required` applies the policy's `spam_action`.

pub mod compile;
pub mod config;
pub mod domain;
pub mod error;
mod eval;
pub mod fold;
pub mod phishing;
pub mod verdict;

pub use compile::CompiledPolicy;
pub use config::{
    ActionKind, ActionSpec, Direction, DirectionFilter, NoticeTarget, PhishCheck, PolicyConfig,
};
pub use error::{format_errors, ConfigError, ErrorKind};
pub use eval::{MAX_FIELD_BYTES, MAX_RECIPIENTS, MAX_URLS};
pub use verdict::{Action, Envelope, Notice, PolicyAction, PolicyHit, PolicyVerdict};

impl CompiledPolicy {
    /// True when evaluating cannot fire anything: no rules (the built-in
    /// phishing rules included) and no configured policies. The gateway
    /// then skips gathering facts unless the classifier needs them.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.policies.is_empty()
    }
}
