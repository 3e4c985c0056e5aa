//! `[auth]`: what to check and where to ask.
//!
//! ```toml
//! [auth]
//! spf = true                    # also dkim, dmarc, arc (all on by default)
//! nameservers = []              # e.g. ["127.0.0.1:53"]; empty: /etc/resolv.conf
//! dns_timeout_ms = 2000         # one query (each attempt)
//! dns_attempts = 2
//! time_budget_ms = 6000         # the whole check of one message
//! cache_size = 10000            # entries per record kind
//! cache_max_ttl_secs = 3600     # answers are kept at most this long
//! cache_negative_ttl_secs = 300 # "no such name" kept at least this long
//! trusted_networks = []         # clients whose SPF, DMARC and DNSBL are skipped
//! skip_private = true           # same for loopback and private addresses
//! max_uribl_domains = 20
//!
//! [[auth.dnsbl]]
//! zone = "zen.spamhaus.org"
//! name = "RCVD_IN_SBL"          # default RCVD_IN_<first label>: RCVD_IN_ZEN
//! score = 3.0                   # default 3.0
//! codes = ["127.0.0.2", "127.0.0.3", "127.0.0.9"]   # default: any 127.0.0.0/8
//!                               # answer but 127.0.0.1 and 127.255.255.0/24
//!
//! [[auth.uribl]]
//! zone = "dbl.spamhaus.org"     # default name URIBL_<first label>: URIBL_DBL
//! codes = ["127.0.1.0/24"]
//! ```
//!
//! A zone may appear in several entries with different `codes` (and
//! names and scores): it is asked once per client or domain.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use mxguard_policy::rules::config::is_listing_rule_name;

/// The auth checks' configuration (see the module doc for the TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// SPF of the MAIL FROM domain (of the HELO name for `<>`).
    pub spf: bool,
    /// DKIM signatures.
    pub dkim: bool,
    /// DMARC of the From domain (needs SPF and/or DKIM; with `spf = false`
    /// it rests on DKIM alone).
    pub dmarc: bool,
    /// ARC chain (for forwarders and lists).
    pub arc: bool,
    /// Name servers to ask (`IP:PORT`); empty: the system's resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    /// Timeout of one query attempt, milliseconds.
    pub dns_timeout_ms: u64,
    /// Attempts per query.
    pub dns_attempts: usize,
    /// The whole check of one message, milliseconds: what is unfinished
    /// then is `temperror`.
    pub time_budget_ms: u64,
    /// Cached answers per record kind (TXT, A, AAAA, MX, PTR; and the
    /// resolver's own cache of raw answers, which the block lists use).
    pub cache_size: usize,
    /// Longest time an answer is kept, whatever its TTL, seconds.
    pub cache_max_ttl_secs: u64,
    /// Shortest time a "no such name" answer is kept, seconds (most block
    /// list answers are negative).
    pub cache_negative_ttl_secs: u64,
    /// Client networks (CIDR or IP) that SPF, DMARC and the DNSBL skip:
    /// your own relays and internal senders.
    pub trusted_networks: Vec<String>,
    /// Skip SPF, DMARC and the DNSBL for loopback, private (RFC 1918, ULA),
    /// link-local and shared (100.64/10) client addresses too.
    pub skip_private: bool,
    /// Block lists for the client IP.
    pub dnsbl: Vec<ListConfig>,
    /// Block lists for URL domains.
    pub uribl: Vec<ListConfig>,
    /// Most URL domains looked up per message.
    pub max_uribl_domains: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            spf: true,
            dkim: true,
            dmarc: true,
            arc: true,
            nameservers: Vec::new(),
            dns_timeout_ms: 2000,
            dns_attempts: 2,
            time_budget_ms: 6000,
            cache_size: 10_000,
            cache_max_ttl_secs: 3600,
            cache_negative_ttl_secs: 300,
            trusted_networks: Vec::new(),
            skip_private: true,
            dnsbl: Vec::new(),
            uribl: Vec::new(),
            max_uribl_domains: mxguard_policy::auth::MAX_URIBL_DOMAINS,
        }
    }
}

/// Default points of a listing.
pub const DEFAULT_LIST_SCORE: f64 = 3.0;

fn default_list_score() -> f64 {
    DEFAULT_LIST_SCORE
}

/// One block list zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// The zone (`zen.spamhaus.org`).
    pub zone: String,
    /// The rule a listing fires: `RCVD_IN_*` (dnsbl) or `URIBL_*`
    /// (uribl); default the prefix and the zone's first label.
    #[serde(default)]
    pub name: Option<String>,
    /// Points of a listing (the policy's `[auth] scores` may override).
    #[serde(default = "default_list_score")]
    pub score: f64,
    /// Answers that count as listed (IPs or CIDRs); empty: any answer in
    /// 127.0.0.0/8 except 127.0.0.1 and 127.255.255.0/24 (the zones'
    /// error codes: "refused", "rate limited", "open resolver").
    #[serde(default)]
    pub codes: Vec<String>,
}

/// A config mistake with its key path (`auth.dnsbl[1].codes[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AuthConfigError {
    pub path: String,
    pub message: String,
}

/// Whether an A answer is one of a zone's error codes (never a listing).
pub fn is_error_code(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 127 && o[1] == 255 && o[2] == 255
}

/// A list entry, checked and ready.
#[derive(Debug, Clone)]
pub(crate) struct List {
    pub zone: String,
    pub rule: String,
    pub score: f64,
    /// Empty: the default (see [`ListConfig::codes`]).
    pub codes: Vec<Ipv4Net>,
}

impl List {
    pub(crate) fn matches(&self, a: Ipv4Addr) -> bool {
        if is_error_code(a) {
            return false;
        }
        if self.codes.is_empty() {
            a.octets()[0] == 127 && a != Ipv4Addr::new(127, 0, 0, 1)
        } else {
            self.codes.iter().any(|n| n.contains(&a))
        }
    }
}

/// Trusted networks, DNSBL entries, URIBL entries.
pub(crate) type Prepared = (Vec<IpNet>, Vec<List>, Vec<List>);

/// `RCVD_IN_` / `URIBL_` and the zone's first label, uppercased.
pub fn default_rule_name(prefix: &str, zone: &str) -> String {
    let first = zone.trim_matches('.').split('.').next().unwrap_or("");
    let mut out = String::from(prefix);
    for c in first.chars() {
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    out
}

/// Whether `zone` is a plausible DNS zone name.
fn plausible_zone(zone: &str) -> bool {
    let z = zone.trim_end_matches('.');
    !z.is_empty()
        && z.len() <= 200
        && z.contains('.')
        && z.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

impl AuthConfig {
    /// Every mistake, with key paths under `prefix` (`auth`).
    pub fn validate(&self, prefix: &str) -> Vec<AuthConfigError> {
        self.prepare(prefix).err().unwrap_or_default()
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.dns_timeout_ms)
    }

    pub(crate) fn budget(&self) -> Duration {
        Duration::from_millis(self.time_budget_ms)
    }

    /// The trusted networks and the lists, checked.
    pub(crate) fn prepare(&self, prefix: &str) -> Result<Prepared, Vec<AuthConfigError>> {
        let mut errors = Vec::new();
        let mut err =
            |path: String, message: String| errors.push(AuthConfigError { path, message });
        let p = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        for (key, v) in [
            ("dns_timeout_ms", self.dns_timeout_ms),
            ("time_budget_ms", self.time_budget_ms),
            ("dns_attempts", self.dns_attempts as u64),
        ] {
            if v == 0 {
                err(p(key), "must be at least 1".into());
            }
        }
        if self.time_budget_ms > 60_000 {
            err(
                p("time_budget_ms"),
                "at most 60000 (the client waits at end of DATA)".into(),
            );
        }
        let mut nets = Vec::new();
        for (i, n) in self.trusted_networks.iter().enumerate() {
            let v = n.trim();
            match v
                .parse::<IpNet>()
                .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(n) => nets.push(n.trunc()),
                Err(_) => err(
                    format!("{}[{i}]", p("trusted_networks")),
                    format!("`{v}` is not an IP address or CIDR network"),
                ),
            }
        }
        let mut lists = [Vec::new(), Vec::new()];
        let mut names: Vec<String> = Vec::new();
        for (k, (key, entries, rule_prefix)) in [
            ("dnsbl", &self.dnsbl, "RCVD_IN_"),
            ("uribl", &self.uribl, "URIBL_"),
        ]
        .into_iter()
        .enumerate()
        {
            for (i, e) in entries.iter().enumerate() {
                let ep = format!("{}[{i}]", p(key));
                let zone = e.zone.trim().trim_end_matches('.').to_ascii_lowercase();
                if !plausible_zone(&zone) {
                    err(
                        format!("{ep}.zone"),
                        format!("`{}` is not a DNS zone (like zen.spamhaus.org)", e.zone),
                    );
                }
                let rule = e
                    .name
                    .clone()
                    .unwrap_or_else(|| default_rule_name(rule_prefix, &zone));
                if !rule.starts_with(rule_prefix) || !is_listing_rule_name(&rule) {
                    err(
                        format!("{ep}.name"),
                        format!(
                            "`{rule}` must start with {rule_prefix} and hold only A-Z, 0-9 and _"
                        ),
                    );
                } else if names.contains(&rule) {
                    err(
                        format!("{ep}.name"),
                        format!(
                            "rule name `{rule}` is taken by another zone entry; give this one a `name`"
                        ),
                    );
                }
                names.push(rule.clone());
                if !e.score.is_finite() {
                    err(format!("{ep}.score"), "must be a finite number".into());
                }
                let mut codes = Vec::new();
                for (j, c) in e.codes.iter().enumerate() {
                    let v = c.trim();
                    match v
                        .parse::<Ipv4Net>()
                        .or_else(|_| v.parse::<Ipv4Addr>().map(Ipv4Net::from))
                    {
                        Ok(n) => codes.push(n.trunc()),
                        Err(_) => err(
                            format!("{ep}.codes[{j}]"),
                            format!("`{v}` is not an IPv4 address or network (like 127.0.0.2)"),
                        ),
                    }
                }
                lists[k].push(List {
                    zone,
                    rule,
                    score: if e.score.is_finite() { e.score } else { 0.0 },
                    codes,
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let [dnsbl, uribl] = lists;
        Ok((nets, dnsbl, uribl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_toml() {
        let c: AuthConfig = toml::from_str("").unwrap();
        assert_eq!(c, AuthConfig::default());
        assert!(c.spf && c.dkim && c.dmarc && c.arc && c.skip_private);
        let c: AuthConfig = toml::from_str(
            r#"
            nameservers = ["127.0.0.1:5353"]
            [[dnsbl]]
            zone = "zen.spamhaus.org"
            [[dnsbl]]
            zone = "zen.spamhaus.org"
            name = "RCVD_IN_PBL"
            score = 0.5
            codes = ["127.0.0.10/31"]
            [[uribl]]
            zone = "dbl.spamhaus.org."
            "#,
        )
        .unwrap();
        let (_, d, u) = c.prepare("auth").unwrap();
        assert_eq!(d[0].rule, "RCVD_IN_ZEN");
        assert_eq!(d[0].score, DEFAULT_LIST_SCORE);
        assert_eq!(d[1].rule, "RCVD_IN_PBL");
        assert!(d[1].matches(Ipv4Addr::new(127, 0, 0, 11)));
        assert!(!d[1].matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(d[0].matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!d[0].matches(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!d[0].matches(Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!d[0].matches(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(u[0].rule, "URIBL_DBL");
        assert_eq!(u[0].zone, "dbl.spamhaus.org");
        assert!(toml::from_str::<AuthConfig>("spff = true").is_err());
    }

    #[test]
    fn mistakes_have_key_paths() {
        let c: AuthConfig = toml::from_str(
            r#"
            dns_timeout_ms = 0
            trusted_networks = ["10.0.0.0/8", "nope"]
            [[dnsbl]]
            zone = "zen"
            [[dnsbl]]
            zone = "zen.example.org"
            score = nan
            codes = ["127.0.0.2", "x"]
            [[uribl]]
            zone = "multi.one.test"
            [[uribl]]
            zone = "multi.two.test"
            [[uribl]]
            zone = "x.three.test"
            name = "RCVD_IN_X"
            "#,
        )
        .unwrap();
        let e = c.validate("auth");
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "auth.dns_timeout_ms",
                "auth.trusted_networks[1]",
                "auth.dnsbl[0].zone",
                "auth.dnsbl[1].name",
                "auth.dnsbl[1].score",
                "auth.dnsbl[1].codes[1]",
                "auth.uribl[1].name",
                "auth.uribl[2].name",
            ],
            "{e:#?}"
        );
    }
}
