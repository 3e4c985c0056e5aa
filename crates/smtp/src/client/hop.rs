//! The next hop from the configuration (`[smtp] next_hop`).

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;
use thiserror::Error;

/// Default SMTP port.
pub const SMTP_PORT: u16 = 25;
/// Default LMTP port over TCP (RFC 2033 leaves it open; 24 is the
/// "any private mail system" port everyone uses).
pub const LMTP_PORT: u16 = 24;

/// The dialect spoken to the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RFC 5321 (EHLO, one final reply for the whole message).
    Smtp,
    /// RFC 2033 (LHLO, one final reply per accepted recipient).
    Lmtp,
}

/// Where the delivery client sends mail. Parsed from
/// `smtp://host[:port]`, `lmtp://host[:port]` or `lmtp+unix:/path`
/// (`lmtp+unix:///path` is accepted too); the scheme is case-insensitive.
///
/// `host` is a name, an IPv4 address or a bracketed IPv6 address
/// (`smtp://[2001:db8::1]:2525`). A name is resolved to addresses (A/AAAA),
/// never through MX records: the next hop is a relay host, as in Postfix's
/// `relayhost = [host]`. `maildir` (local delivery) is not a network hop and
/// is refused with [`NextHopError::Maildir`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NextHop {
    Smtp { host: String, port: u16 },
    Lmtp { host: String, port: u16 },
    LmtpUnix { path: PathBuf },
}

impl NextHop {
    pub fn protocol(&self) -> Protocol {
        match self {
            NextHop::Smtp { .. } => Protocol::Smtp,
            NextHop::Lmtp { .. } | NextHop::LmtpUnix { .. } => Protocol::Lmtp,
        }
    }
}

/// Why a next-hop string is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NextHopError {
    #[error("the next hop is empty")]
    Empty,
    #[error("next hop \"maildir\" is local delivery, not an SMTP/LMTP destination")]
    Maildir,
    #[error("next hop {0:?} has an unknown scheme (expected smtp://host[:port], lmtp://host[:port] or lmtp+unix:/path)")]
    UnknownScheme(String),
    #[error("next hop has an invalid host {0:?}")]
    BadHost(String),
    #[error("next hop has an invalid port {0:?} (expected 1-65535)")]
    BadPort(String),
    #[error("next hop lmtp+unix: needs a socket path")]
    MissingPath,
}

impl FromStr for NextHop {
    type Err = NextHopError;

    fn from_str(s: &str) -> Result<NextHop, NextHopError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(NextHopError::Empty);
        }
        if s.eq_ignore_ascii_case("maildir") {
            return Err(NextHopError::Maildir);
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(NextHopError::UnknownScheme(s.to_string()));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "lmtp+unix" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(NextHopError::MissingPath);
                }
                Ok(NextHop::LmtpUnix {
                    path: PathBuf::from(path),
                })
            }
            "smtp" | "lmtp" => {
                let lmtp = scheme.eq_ignore_ascii_case("lmtp");
                let authority = rest
                    .strip_prefix("//")
                    .ok_or_else(|| NextHopError::UnknownScheme(s.to_string()))?;
                let authority = authority.strip_suffix('/').unwrap_or(authority);
                let default = if lmtp { LMTP_PORT } else { SMTP_PORT };
                let (host, port) = split_host_port(authority, default)?;
                Ok(if lmtp {
                    NextHop::Lmtp { host, port }
                } else {
                    NextHop::Smtp { host, port }
                })
            }
            _ => Err(NextHopError::UnknownScheme(s.to_string())),
        }
    }
}

fn split_host_port(a: &str, default: u16) -> Result<(String, u16), NextHopError> {
    let bad_host = || NextHopError::BadHost(a.to_string());
    let (host, port) = if let Some(inner) = a.strip_prefix('[') {
        let (v6, after) = inner.split_once(']').ok_or_else(bad_host)?;
        v6.parse::<Ipv6Addr>().map_err(|_| bad_host())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad_host)?),
        };
        (v6, port)
    } else {
        match a.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        }
    };
    let name_ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
        && (a.starts_with('[') || !host.contains(':'));
    if !name_ok {
        return Err(bad_host());
    }
    let port = match port {
        None => default,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&n| n > 0 && p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| NextHopError::BadPort(p.to_string()))?,
    };
    Ok((host.to_string(), port))
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, host, port) = match self {
            NextHop::LmtpUnix { path } => return write!(f, "lmtp+unix:{}", path.display()),
            NextHop::Smtp { host, port } => ("smtp", host, port),
            NextHop::Lmtp { host, port } => ("lmtp", host, port),
        };
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{port}")
        } else {
            write!(f, "{scheme}://{host}:{port}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(s: &str) -> Result<NextHop, NextHopError> {
        s.parse()
    }

    #[test]
    fn good() {
        let cases = [
            ("smtp://mail.example.com", "smtp://mail.example.com:25"),
            (
                "smtp://mail.example.com:2525",
                "smtp://mail.example.com:2525",
            ),
            ("SMTP://127.0.0.1:26/", "smtp://127.0.0.1:26"),
            ("lmtp://localhost", "lmtp://localhost:24"),
            ("lmtp://[::1]:2424", "lmtp://[::1]:2424"),
            ("smtp://[2001:db8::1]", "smtp://[2001:db8::1]:25"),
            ("lmtp+unix:/run/dovecot/lmtp", "lmtp+unix:/run/dovecot/lmtp"),
            (
                "lmtp+unix:///run/dovecot/lmtp",
                "lmtp+unix:/run/dovecot/lmtp",
            ),
            ("  smtp://a_b-c.d  ", "smtp://a_b-c.d:25"),
        ];
        for (input, shown) in cases {
            let h = hop(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(h.to_string(), shown);
            assert_eq!(hop(shown).unwrap(), h, "round trip of {shown}");
        }
        assert_eq!(hop("lmtp://h").unwrap().protocol(), Protocol::Lmtp);
        assert_eq!(hop("lmtp+unix:/x").unwrap().protocol(), Protocol::Lmtp);
        assert_eq!(hop("smtp://h").unwrap().protocol(), Protocol::Smtp);
    }

    #[test]
    fn bad() {
        use NextHopError::*;
        type Check = fn(&NextHopError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| *e == Empty),
            ("maildir", |e| *e == Maildir),
            ("MAILDIR", |e| *e == Maildir),
            ("http://x", |e| matches!(e, UnknownScheme(_))),
            ("mail.example.com:25", |e| matches!(e, UnknownScheme(_))),
            ("smtp:host", |e| matches!(e, UnknownScheme(_))),
            ("smtp://", |e| matches!(e, BadHost(_))),
            ("smtp://:25", |e| matches!(e, BadHost(_))),
            ("smtp://user@host", |e| matches!(e, BadHost(_))),
            ("smtp://host/path", |e| matches!(e, BadHost(_))),
            ("smtp://::1", |e| matches!(e, BadHost(_))),
            ("smtp://[zz]", |e| matches!(e, BadHost(_))),
            ("smtp://[::1]x", |e| matches!(e, BadHost(_))),
            ("smtp://h:0", |e| matches!(e, BadPort(_))),
            ("smtp://h:65536", |e| matches!(e, BadPort(_))),
            ("smtp://h:+25", |e| matches!(e, BadPort(_))),
            ("smtp://h:", |e| matches!(e, BadPort(_))),
            ("lmtp+unix:", |e| *e == MissingPath),
        ];
        for (input, ok) in cases {
            let e = hop(input).expect_err(input);
            assert!(ok(&e), "{input}: {e:?}");
            assert!(!e.to_string().is_empty());
        }
    }
}
