//! The service extensions a next hop advertises in its EHLO/LHLO reply.

use crate::proto::Reply;

/// What the next hop said it supports. A peer that only answered HELO
/// supports nothing ([`Capabilities::default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `SIZE` (RFC 1870): `Some(limit)`, where 0 means advertised without a
    /// fixed limit.
    pub size: Option<u64>,
    /// `8BITMIME` (RFC 6152).
    pub eightbitmime: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `DSN` (RFC 3461).
    pub dsn: bool,
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `CHUNKING` (RFC 3030). Recorded only: the client always uses DATA.
    pub chunking: bool,
    /// `STARTTLS` (RFC 3207). Recorded only: the client does not use TLS yet.
    pub starttls: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
}

impl Capabilities {
    /// Reads the extension lines of a positive EHLO/LHLO reply (the first
    /// line is the server's name and is skipped). Unknown keywords, blank
    /// lines and a malformed SIZE argument are ignored (a SIZE that is not a
    /// number counts as "no fixed limit").
    pub fn parse(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => {
                    caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                }
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "PIPELINING" => caps.pipelining = true,
                "CHUNKING" => caps.chunking = true,
                "STARTTLS" => caps.starttls = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                _ => {}
            }
        }
        caps
    }

    /// The advertised fixed size limit, if any.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let r = Reply {
            code: 250,
            status: None,
            lines: vec![
                "mx.example.com Hello".into(),
                "pipelining".into(),
                "SIZE 1000".into(),
                "8BITMIME".into(),
                "AUTH PLAIN LOGIN".into(),
                "DSN".into(),
                "".into(),
            ],
        };
        let c = Capabilities::parse(&r);
        assert!(c.pipelining && c.eightbitmime && c.dsn);
        assert!(!c.smtputf8 && !c.chunking && !c.starttls);
        assert_eq!(c.size_limit(), Some(1000));

        let r = Reply {
            code: 250,
            status: None,
            lines: vec!["SIZE 5".into(), "SIZE".into()],
        };
        let c = Capabilities::parse(&r);
        assert_eq!((c.size, c.size_limit()), (Some(0), None));
    }
}
