//! SMTP command lines (RFC 5321 §4.1, with the ESMTP parameters of RFC 1870
//! SIZE, RFC 6152 8BITMIME, RFC 3030 CHUNKING, RFC 3461 DSN, RFC 6531 SMTPUTF8).
//!
//! [`parse`] takes one line without its CRLF and returns a typed [`Command`] or
//! a [`ParseError`] that maps to the reply the client should get. It never
//! panics and allocates only for the addresses and parameters it returns.

use thiserror::Error;

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest path (`<local@domain>`, brackets included; RFC 5321 §4.5.3.1.3).
pub const MAX_PATH: usize = 256;
/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;
/// Longest domain (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;

/// A mailbox from a path: `local@domain`, both as received (the local part
/// unquoted; case kept). `domain` may be an address literal (`[192.0.2.1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let needs_quotes = self.local.is_empty()
            || self.local.starts_with('.')
            || self.local.ends_with('.')
            || self.local.contains("..")
            || !self.local.chars().all(is_atext_or_dot);
        if needs_quotes {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        } else {
            f.write_str(&self.local)?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// `BODY=` (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
    BinaryMime,
}

/// `RET=` (RFC 3461).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

/// Parameters of `MAIL FROM`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// Declared message size (`SIZE=`).
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// `ENVID=` as received (xtext, not decoded: passed on as is).
    pub envid: Option<String>,
    /// `AUTH=` as received.
    pub auth: Option<String>,
}

/// `NOTIFY=` of a recipient (RFC 3461): `None` in [`RcptParams::notify`] means
/// the client did not say; an empty set means NEVER.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// Parameters of `RCPT TO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// `ORCPT=` as received (`rfc822;xtext`), passed on as is.
    pub orcpt: Option<String>,
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `MAIL FROM:<path>`; `None` is the null reverse-path `<>`.
    Mail(Option<Address>, MailParams),
    Rcpt(Address, RcptParams),
    Data,
    /// `BDAT size [LAST]`.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    StartTls,
    Vrfy(String),
    Expn(String),
    Help,
    Auth(String),
}

/// Why a line is not a valid command, with the reply it deserves.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// 500 5.5.1: no such command.
    #[error("unrecognized command")]
    Unknown,
    /// 501 5.5.2: a known command with bad arguments.
    #[error("syntax error in arguments: {0}")]
    Syntax(&'static str),
    /// 500 5.5.2: the line is longer than the limit ([`MAX_COMMAND_LINE`] by default).
    #[error("line too long")]
    TooLong,
    /// 555 5.5.4: a MAIL/RCPT parameter we do not know or accept.
    #[error("unsupported parameter {0}")]
    Parameter(String),
    /// 553 5.1.3 (5.1.7 for senders): a path that is not a valid address.
    #[error("bad address syntax: {0}")]
    Address(&'static str),
}

impl ParseError {
    /// The reply code and enhanced status code this error calls for.
    pub fn code(&self, sender: bool) -> (u16, &'static str) {
        match self {
            ParseError::Unknown => (500, "5.5.1"),
            ParseError::Syntax(_) => (501, "5.5.2"),
            ParseError::TooLong => (500, "5.5.2"),
            ParseError::Parameter(_) => (555, "5.5.4"),
            ParseError::Address(_) if sender => (553, "5.1.7"),
            ParseError::Address(_) => (553, "5.1.3"),
        }
    }
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_atext_or_dot(c: char) -> bool {
    is_atext(c) || c == '.'
}

/// RFC 3461 §5 raises the MAIL and RCPT line limits (ENVID, ORCPT): by 500
/// octets here for both.
pub const DSN_LINE_ALLOWANCE: usize = 500;

/// Parses one command line (without CRLF) with the RFC 5321 limit of
/// [`MAX_COMMAND_LINE`] (plus [`DSN_LINE_ALLOWANCE`] for MAIL and RCPT).
/// Verbs are case-insensitive.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    parse_limited(line, MAX_COMMAND_LINE)
}

/// [`parse`] with another base limit (the line with its CRLF), for a server
/// configured to accept longer command lines.
pub fn parse_limited(line: &[u8], limit: usize) -> Result<Command, ParseError> {
    let verb_is = |v: &[u8]| line.len() >= 4 && line[..4].eq_ignore_ascii_case(v);
    let limit = if verb_is(b"MAIL") || verb_is(b"RCPT") {
        limit.saturating_add(DSN_LINE_ALLOWANCE)
    } else {
        limit
    };
    if line.len() + 2 > limit {
        return Err(ParseError::TooLong);
    }
    // Commands are ASCII; UTF-8 is allowed in addresses with SMTPUTF8 (RFC 6531).
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("not UTF-8"))?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let no_args = |c: Command| {
        if rest.trim().is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Syntax("this command takes no arguments"))
        }
    };
    match verb.as_str() {
        "EHLO" | "HELO" => {
            let host = rest.trim();
            if host.is_empty() || host.contains(' ') {
                return Err(ParseError::Syntax(
                    "a domain or address literal is required",
                ));
            }
            Ok(if verb == "EHLO" {
                Command::Ehlo(host.to_string())
            } else {
                Command::Helo(host.to_string())
            })
        }
        "MAIL" => {
            let args = strip_keyword(rest, "FROM:")
                .ok_or(ParseError::Syntax("expected MAIL FROM:<address>"))?;
            let (path, params) = split_path(args)?;
            let addr = if path == "<>" {
                None
            } else {
                Some(parse_path(path)?)
            };
            Ok(Command::Mail(addr, mail_params(params)?))
        }
        "RCPT" => {
            let args = strip_keyword(rest, "TO:")
                .ok_or(ParseError::Syntax("expected RCPT TO:<address>"))?;
            let (path, params) = split_path(args)?;
            // RFC 5321 §4.1.1.3: <Postmaster> without a domain is accepted.
            let addr = if path.eq_ignore_ascii_case("<postmaster>") {
                Address {
                    local: "postmaster".into(),
                    domain: String::new(),
                }
            } else {
                parse_path(path)?
            };
            Ok(Command::Rcpt(addr, rcpt_params(params)?))
        }
        "DATA" => no_args(Command::Data),
        "BDAT" => {
            let mut it = rest.split(' ').filter(|s| !s.is_empty());
            let size = it
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(ParseError::Syntax("BDAT needs a chunk size"))?;
            let last = match it.next() {
                None => false,
                Some(s) if s.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(ParseError::Syntax("expected BDAT size [LAST]")),
            };
            if it.next().is_some() {
                return Err(ParseError::Syntax("expected BDAT size [LAST]"));
            }
            Ok(Command::Bdat { size, last })
        }
        "RSET" => no_args(Command::Rset),
        // NOOP and HELP may carry an argument, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        "VRFY" => Ok(Command::Vrfy(rest.trim().to_string())),
        "EXPN" => Ok(Command::Expn(rest.trim().to_string())),
        "AUTH" => Ok(Command::Auth(rest.trim().to_string())),
        _ => Err(ParseError::Unknown),
    }
}

/// `FROM:` / `TO:` after the verb, case-insensitive, spaces allowed after the colon.
fn strip_keyword<'a>(rest: &'a str, kw: &str) -> Option<&'a str> {
    let r = rest.trim_start();
    let head = r.get(..kw.len())?;
    head.eq_ignore_ascii_case(kw)
        .then(|| r[kw.len()..].trim_start())
}

/// Splits `<path> params` at the path's closing bracket (a quoted local part
/// may hold spaces and `>`).
fn split_path(s: &str) -> Result<(&str, &str), ParseError> {
    if !s.starts_with('<') {
        return Err(ParseError::Syntax("the address must be in angle brackets"));
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let rest = &s[i + 1..];
                if !rest.is_empty() && !rest.starts_with(' ') {
                    return Err(ParseError::Syntax("a space must follow the address"));
                }
                return Ok((&s[..=i], rest.trim()));
            }
            _ => {}
        }
    }
    Err(ParseError::Syntax("unterminated address"))
}

/// Parses `<[@route,@route:]local@domain>`; source routes are accepted and
/// ignored (RFC 5321 §4.1.2, Appendix C).
fn parse_path(path: &str) -> Result<Address, ParseError> {
    if path.len() > MAX_PATH {
        return Err(ParseError::Address("path too long"));
    }
    let inner = &path[1..path.len() - 1];
    let inner = if inner.starts_with('@') {
        inner
            .split_once(':')
            .map(|(_, a)| a)
            .ok_or(ParseError::Address("bad source route"))?
    } else {
        inner
    };
    let (local, domain) = if let Some(q) = inner.strip_prefix('"') {
        // Quoted-string local part.
        let mut out = String::new();
        let mut chars = q.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) if (' '..='~').contains(&e) || !e.is_ascii() => out.push(e),
                    _ => return Err(ParseError::Address("bad escape in quoted local part")),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c if (' '..='~').contains(&c) || !c.is_ascii() => out.push(c),
                _ => return Err(ParseError::Address("control character in local part")),
            }
        }
        let end = end.ok_or(ParseError::Address("unterminated quoted local part"))?;
        let after = &q[end + 1..];
        let domain = after
            .strip_prefix('@')
            .ok_or(ParseError::Address("missing @domain"))?;
        (out, domain)
    } else {
        let (l, d) = inner
            .rsplit_once('@')
            .ok_or(ParseError::Address("missing @domain"))?;
        if l.is_empty()
            || l.starts_with('.')
            || l.ends_with('.')
            || l.contains("..")
            || !l.chars().all(is_atext_or_dot)
        {
            return Err(ParseError::Address("bad local part"));
        }
        (l.to_string(), d)
    };
    if local.len() > MAX_LOCAL_PART {
        return Err(ParseError::Address("local part too long"));
    }
    if !valid_domain(domain) {
        return Err(ParseError::Address("bad domain"));
    }
    Ok(Address {
        local,
        domain: domain.to_string(),
    })
}

/// A domain name (letters, digits, hyphens, UTF-8 labels with SMTPUTF8) or an
/// address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
fn valid_domain(d: &str) -> bool {
    if d.is_empty() || d.len() > MAX_DOMAIN {
        return false;
    }
    if let Some(lit) = d.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return match lit.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("IPv6:") => {
                lit[5..].parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => lit.parse::<std::net::Ipv4Addr>().is_ok(),
        };
    }
    d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
    })
}

/// `KEY[=VALUE]` words after the path.
fn params(s: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (w.to_ascii_uppercase(), None),
        })
}

fn mail_params(s: &str) -> Result<MailParams, ParseError> {
    let mut p = MailParams::default();
    for (k, v) in params(s) {
        match (k.as_str(), v) {
            ("SIZE", Some(v)) => {
                p.size = Some(
                    v.parse()
                        .map_err(|_| ParseError::Syntax("SIZE must be a number"))?,
                )
            }
            ("BODY", Some(v)) => {
                p.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(ParseError::Parameter(format!("BODY={v}"))),
                })
            }
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("RET", Some(v)) => {
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Headers,
                    _ => return Err(ParseError::Parameter(format!("RET={v}"))),
                })
            }
            ("ENVID", Some(v)) => p.envid = Some(v.to_string()),
            ("AUTH", Some(v)) => p.auth = Some(v.to_string()),
            _ => return Err(ParseError::Parameter(k)),
        }
    }
    Ok(p)
}

fn rcpt_params(s: &str) -> Result<RcptParams, ParseError> {
    let mut p = RcptParams::default();
    for (k, v) in params(s) {
        match (k.as_str(), v) {
            ("NOTIFY", Some(v)) => {
                let mut n = Notify::default();
                for word in v.split(',') {
                    match word.to_ascii_uppercase().as_str() {
                        "NEVER" if v.split(',').count() == 1 => {}
                        "SUCCESS" => n.success = true,
                        "FAILURE" => n.failure = true,
                        "DELAY" => n.delay = true,
                        _ => return Err(ParseError::Parameter(format!("NOTIFY={v}"))),
                    }
                }
                p.notify = Some(n);
            }
            ("ORCPT", Some(v)) => p.orcpt = Some(v.to_string()),
            _ => return Err(ParseError::Parameter(k)),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(l: &str, d: &str) -> Address {
        Address {
            local: l.into(),
            domain: d.into(),
        }
    }

    #[test]
    fn commands_parse_as_rfc_5321_says() {
        let ok: &[(&[u8], Command)] = &[
            (b"EHLO client.example.org", Command::Ehlo("client.example.org".into())),
            (b"helo [192.0.2.1]", Command::Helo("[192.0.2.1]".into())),
            (b"MAIL FROM:<>", Command::Mail(None, MailParams::default())),
            (
                b"mail from: <a.b@example.com> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x+2By",
                Command::Mail(
                    Some(addr("a.b", "example.com")),
                    MailParams {
                        size: Some(1000),
                        body: Some(Body::EightBitMime),
                        smtputf8: true,
                        ret: Some(Ret::Headers),
                        envid: Some("x+2By".into()),
                        auth: None,
                    },
                ),
            ),
            (
                b"RCPT TO:<@relay.example:user@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;user@example.com",
                Command::Rcpt(
                    addr("user", "example.com"),
                    RcptParams {
                        notify: Some(Notify {
                            success: false,
                            failure: true,
                            delay: true,
                        }),
                        orcpt: Some("rfc822;user@example.com".into()),
                    },
                ),
            ),
            (b"RCPT TO:<\"john doe>\"@example.com>", Command::Rcpt(addr("john doe>", "example.com"), RcptParams::default())),
            (b"RCPT TO:<Postmaster>", Command::Rcpt(addr("postmaster", ""), RcptParams::default())),
            (b"RCPT TO:<u@[IPv6:2001:db8::1]>", Command::Rcpt(addr("u", "[IPv6:2001:db8::1]"), RcptParams::default())),
            (b"RCPT TO:<j\xc3\xb6rg@b\xc3\xbccher.example>", Command::Rcpt(addr("jörg", "bücher.example"), RcptParams::default())),
            (b"DATA", Command::Data),
            (b"BDAT 1000 LAST", Command::Bdat { size: 1000, last: true }),
            (b"bdat 0", Command::Bdat { size: 0, last: false }),
            (b"NOOP anything", Command::Noop),
            (b"QUIT", Command::Quit),
            (b"StartTLS", Command::StartTls),
        ];
        for (line, want) in ok {
            assert_eq!(
                parse(line).as_ref(),
                Ok(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn bad_commands_get_the_right_error() {
        let bad: &[(&[u8], ParseError)] = &[
            (b"HELLO there", ParseError::Unknown),
            (
                b"EHLO",
                ParseError::Syntax("a domain or address literal is required"),
            ),
            (
                b"MAIL FROM:a@example.com",
                ParseError::Syntax("the address must be in angle brackets"),
            ),
            (
                b"MAIL FROM:<a@example.com>SIZE=1",
                ParseError::Syntax("a space must follow the address"),
            ),
            (
                b"MAIL FROM:<a@example.com> SIZE=big",
                ParseError::Syntax("SIZE must be a number"),
            ),
            (
                b"MAIL FROM:<a@example.com> XFOO=1",
                ParseError::Parameter("XFOO".into()),
            ),
            (
                b"RCPT TO:<a..b@example.com>",
                ParseError::Address("bad local part"),
            ),
            (
                b"RCPT TO:<a@exa_mple.com>",
                ParseError::Address("bad domain"),
            ),
            (
                b"RCPT TO:<a@[300.1.1.1]>",
                ParseError::Address("bad domain"),
            ),
            (
                b"RCPT TO:<nodomain>",
                ParseError::Address("missing @domain"),
            ),
            (
                b"RCPT TO:<a@example.com",
                ParseError::Syntax("unterminated address"),
            ),
            (
                b"DATA now",
                ParseError::Syntax("this command takes no arguments"),
            ),
            (b"BDAT x", ParseError::Syntax("BDAT needs a chunk size")),
            (
                b"BDAT 10 FIRST",
                ParseError::Syntax("expected BDAT size [LAST]"),
            ),
            (
                b"MAIL FROM:<\xff@example.com>",
                ParseError::Syntax("not UTF-8"),
            ),
        ];
        for (line, want) in bad {
            assert_eq!(
                parse(line).as_ref(),
                Err(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(parse(&[b'A'; 600]), Err(ParseError::TooLong));
        let long_local = format!("RCPT TO:<{}@example.com>", "a".repeat(65));
        assert_eq!(
            parse(long_local.as_bytes()),
            Err(ParseError::Address("local part too long"))
        );
    }

    #[test]
    fn addresses_print_back_quoted_when_needed() {
        assert_eq!(addr("a.b", "example.com").to_string(), "a.b@example.com");
        assert_eq!(
            addr("john doe", "example.com").to_string(),
            "\"john doe\"@example.com"
        );
        assert_eq!(
            addr("a\"b", "x.example").to_string(),
            "\"a\\\"b\"@x.example"
        );
    }

    #[test]
    fn never_panics_on_junk() {
        let mut x: u64 = 0x1234_5678_9abc_def0;
        for n in 0..20_000 {
            let len = n % 80;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let a: &[u8] = b"MAILRCPTFROM:TO:<>@\". \\=,[]:SIZEBODYx\xc3\xa9";
                    a[(x % a.len() as u64) as usize]
                })
                .collect();
            let _ = parse(&line);
        }
    }
}
