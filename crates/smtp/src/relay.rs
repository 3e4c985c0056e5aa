//! Relay control and the client IP lists checked before any data is read.
//!
//! The rule that makes an open relay impossible whatever the configuration:
//! a recipient is accepted only if its domain is one we receive for
//! (`local_domains`, `relay_domains`) or the client is in `trusted_networks`.
//! An empty configuration therefore accepts nothing from anybody.

use std::net::IpAddr;
use thiserror::Error;

/// An IPv4 or IPv6 network in CIDR form (`192.0.2.0/24`, `2001:db8::/32`, or a
/// single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid network {0:?} (expected an address or address/prefix)")]
pub struct CidrError(pub String);

impl std::str::FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_string());
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(err)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// What the configuration says about relaying.
#[derive(Debug, Clone, Default)]
pub struct RelayPolicy {
    /// Domains delivered here (lowercase, no trailing dot).
    pub local_domains: Vec<String>,
    /// Domains we accept and pass on to the next hop.
    pub relay_domains: Vec<String>,
    /// Clients allowed to send to any domain.
    pub trusted_networks: Vec<Cidr>,
}

/// The verdict on one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptDecision {
    /// A local mailbox.
    Local,
    /// A domain we relay for, or any domain from a trusted client.
    Relay,
    /// 550 5.7.1 Relaying denied.
    Denied,
}

fn norm(d: &str) -> String {
    d.trim_end_matches('.').to_ascii_lowercase()
}

impl RelayPolicy {
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_networks.iter().any(|n| n.contains(ip))
    }

    /// Decides whether `domain` (a recipient's domain) is accepted from `client`.
    /// Address literals (`[192.0.2.1]`) are never local or relayed for untrusted clients.
    pub fn rcpt(&self, client: IpAddr, domain: &str) -> RcptDecision {
        let d = norm(domain);
        if !d.starts_with('[') && self.local_domains.iter().any(|l| norm(l) == d) {
            return RcptDecision::Local;
        }
        if !d.starts_with('[') && self.relay_domains.iter().any(|l| norm(l) == d) {
            return RcptDecision::Relay;
        }
        if self.is_trusted(client) {
            return RcptDecision::Relay;
        }
        RcptDecision::Denied
    }
}

/// Client IP lists checked at connect time, allow list first.
#[derive(Debug, Clone, Default)]
pub struct IpLists {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

/// The verdict at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectDecision {
    /// On the allow list: later connection checks (DNSBL) are skipped.
    Allowed,
    /// On the deny list: 554 5.7.1 and close.
    Denied,
    /// Neither: go on with the other checks.
    Neutral,
}

impl IpLists {
    pub fn check(&self, ip: IpAddr) -> ConnectDecision {
        if self.allow.iter().any(|n| n.contains(ip)) {
            ConnectDecision::Allowed
        } else if self.deny.iter().any(|n| n.contains(ip)) {
            ConnectDecision::Denied
        } else {
            ConnectDecision::Neutral
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let n: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(n.contains(ip("192.0.2.77")));
        assert!(!n.contains(ip("192.0.3.1")));
        assert!(n.contains(ip("::ffff:192.0.2.9")), "IPv4-mapped");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.5")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        let one: Cidr = "10.1.2.3".parse().unwrap();
        assert!(one.contains(ip("10.1.2.3")) && !one.contains(ip("10.1.2.4")));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn never_an_open_relay() {
        // The empty configuration accepts nothing from anybody.
        let empty = RelayPolicy::default();
        for client in ["127.0.0.1", "203.0.113.9", "::1"] {
            assert_eq!(empty.rcpt(ip(client), "example.com"), RcptDecision::Denied);
        }
        let p = RelayPolicy {
            local_domains: vec!["Example.com".into()],
            relay_domains: vec!["partner.example".into()],
            trusted_networks: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let outsider = ip("203.0.113.9");
        assert_eq!(p.rcpt(outsider, "example.COM."), RcptDecision::Local);
        assert_eq!(p.rcpt(outsider, "partner.example"), RcptDecision::Relay);
        assert_eq!(p.rcpt(outsider, "elsewhere.example"), RcptDecision::Denied);
        assert_eq!(p.rcpt(outsider, "[192.0.2.1]"), RcptDecision::Denied);
        assert_eq!(
            p.rcpt(outsider, "sub.example.com"),
            RcptDecision::Denied,
            "no implicit subdomains"
        );
        assert_eq!(
            p.rcpt(ip("10.9.8.7"), "elsewhere.example"),
            RcptDecision::Relay
        );
    }

    #[test]
    fn allow_list_wins_over_deny_list() {
        let l = IpLists {
            allow: vec!["192.0.2.10".parse().unwrap()],
            deny: vec!["192.0.2.0/24".parse().unwrap()],
        };
        assert_eq!(l.check(ip("192.0.2.10")), ConnectDecision::Allowed);
        assert_eq!(l.check(ip("192.0.2.11")), ConnectDecision::Denied);
        assert_eq!(l.check(ip("198.51.100.1")), ConnectDecision::Neutral);
    }
}
