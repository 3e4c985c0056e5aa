//! Sender authentication and DNS reputation as facts: what SPF, DKIM,
//! DMARC, ARC and the DNS block lists said about a message, as plain data.
//! The lookups themselves happen elsewhere (`mxguard-auth`, the only crate
//! with DNS I/O for this); the policy only reads the results, so it stays
//! pure and its tests are data files.
//!
//! The results travel on [`crate::MessageFacts::auth`]: the gateway gathers
//! the facts, runs the checks (with [`crate::MessageFacts::url_domains`] for
//! the URIBL), sets `facts.auth = Some(results)` and evaluates. `None`
//! means the checks did not run (a file checked from the command line, a
//! front-end without them): then no auth test matches, not even
//! `spf = ["none"]`.
//!
//! Result names are those of RFC 8601 (`pass`, `fail`, `softfail`,
//! `neutral`, `none`, `temperror`, `permerror`). A DNS timeout or failure
//! is always `temperror`, never `pass` nor `none`.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::rules::domain::{ip_literal, registrable, split_url};

/// Most URL domains looked up in URI block lists per message (see
/// [`crate::MessageFacts::url_domains`]).
pub const MAX_URIBL_DOMAINS: usize = 20;

/// One method's result (RFC 8601 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl AuthResult {
    pub const ALL: [AuthResult; 7] = [
        AuthResult::Pass,
        AuthResult::Fail,
        AuthResult::SoftFail,
        AuthResult::Neutral,
        AuthResult::None,
        AuthResult::TempError,
        AuthResult::PermError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }

    pub fn from_name(s: &str) -> Option<AuthResult> {
        AuthResult::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// Which identity SPF checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfIdentity {
    /// The MAIL FROM domain.
    #[default]
    MailFrom,
    /// The HELO name (MAIL FROM was `<>`).
    Helo,
}

/// The SPF result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpfCheck {
    pub result: AuthResult,
    /// The domain checked.
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub identity: SpfIdentity,
}

/// One DKIM signature's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimCheck {
    pub result: AuthResult,
    /// The signing domain (`d=`), lowercase; empty when the signature did
    /// not parse.
    #[serde(default)]
    pub domain: String,
    /// The selector (`s=`).
    #[serde(default)]
    pub selector: String,
}

/// A DMARC policy (`p=`, or `sp=`/`np=` for subdomains, as in effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

impl DmarcPolicy {
    pub const ALL: [DmarcPolicy; 3] = [
        DmarcPolicy::None,
        DmarcPolicy::Quarantine,
        DmarcPolicy::Reject,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }

    pub fn from_name(s: &str) -> Option<DmarcPolicy> {
        DmarcPolicy::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// The DMARC result for the From domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmarcCheck {
    /// `pass` (SPF or DKIM passed and aligned), `fail`, `none` (no record
    /// or no single From domain), `temperror`, `permerror`.
    pub result: AuthResult,
    /// The From (RFC 5322) domain.
    #[serde(default)]
    pub domain: String,
    /// The policy in effect for that domain (the subdomain policy for a
    /// subdomain, one level lower in test mode `t=y`), when it has a
    /// record.
    #[serde(default)]
    pub policy: Option<DmarcPolicy>,
}

/// The client IP listed on a DNS block list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsListing {
    /// The zone asked (`zen.spamhaus.org`).
    pub zone: String,
    /// The rule name the listing fires (`RCVD_IN_ZEN`).
    pub rule: String,
    /// The A answer (`127.0.0.2`).
    pub answer: Ipv4Addr,
    /// The zone's points (from the auth config; the policy's `[auth]
    /// scores` override them by rule name).
    pub score: f64,
}

// Scores are finite (both configs refuse NaN and infinities).
impl Eq for DnsListing {}

/// A URL domain listed on a URI block list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UriListing {
    /// The registrable domain looked up (`bad.example`).
    pub domain: String,
    pub zone: String,
    pub rule: String,
    pub answer: Ipv4Addr,
    pub score: f64,
}

impl Eq for UriListing {}

/// Everything the checks found. Each method is `None` when it did not run
/// (disabled, or skipped for a trusted or private client: SPF, DMARC and
/// DNSBL are skipped there, see [`AuthResults::skipped`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthResults {
    pub spf: Option<SpfCheck>,
    /// One entry per DKIM signature (empty: the message is not signed).
    pub dkim: Option<Vec<DkimCheck>>,
    /// The ARC chain's result (`none` without ARC headers).
    pub arc: Option<AuthResult>,
    pub dmarc: Option<DmarcCheck>,
    /// Listings of the client IP, in zone order.
    pub dnsbl: Vec<DnsListing>,
    /// Listings of URL domains, in domain order.
    pub uribl: Vec<UriListing>,
    /// Lookups that failed, one line each (`dnsbl zen.spamhaus.org:
    /// timeout`, `dnsbl zen.spamhaus.org: error code 127.255.255.254`):
    /// such a list counts as not listed, SPF/DKIM/DMARC as `temperror`.
    pub errors: Vec<String>,
    /// Why SPF, DMARC and DNSBL were skipped (`trusted client`, `private
    /// client address`), when they were.
    pub skipped: Option<String>,
    /// An `Authentication-Results` header value (RFC 8601, without the
    /// field name) for the gateway to prepend; empty when not made.
    pub header: String,
}

impl AuthResults {
    /// Whether some DKIM signature has result `r`.
    pub fn dkim_has(&self, r: AuthResult) -> bool {
        self.dkim
            .as_ref()
            .is_some_and(|v| v.iter().any(|d| d.result == r))
    }
}

impl crate::MessageFacts {
    /// The registrable domains of the message's web links, for URI block
    /// lists: `http`, `https`, `ftp` and scheme-less links, IP literals
    /// left out, each once in order of first appearance, at most `max`.
    pub fn url_domains(&self, max: usize) -> Vec<String> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        for l in &self.links {
            if out.len() >= max {
                break;
            }
            let Some(p) = split_url(&l.href) else {
                continue;
            };
            if !matches!(p.scheme.as_str(), "http" | "https" | "ftp" | "") {
                continue;
            }
            // Scheme-less text with an `@` is an address, not a link.
            if p.scheme.is_empty() && p.credentials {
                continue;
            }
            if ip_literal(&p.host).is_some() || !p.host.contains('.') {
                continue;
            }
            let reg = registrable(&p.host);
            // Unicode hosts would need punycode first: not looked up.
            let plain = reg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !plain || reg.starts_with('.') || reg.contains("..") {
                continue;
            }
            if seen.insert(reg.to_string()) {
                out.push(reg.to_string());
            }
        }
        out
    }
}
