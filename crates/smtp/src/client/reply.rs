//! Reading the next hop's replies (RFC 5321 §4.2): `250-first`, `250 last`.
//!
//! [`ReplyParser`] is sans-IO: feed it whatever the socket gave, it consumes
//! complete lines and hands back a [`Reply`] once the last line (`ddd SP` or a
//! bare `ddd`) has arrived. It never panics, whatever the bytes, and one reply
//! is bounded by [`MAX_REPLY_LEN`].
//!
//! Parsed replies are returned as the crate's [`Reply`] with `status: None`
//! and each line's text exactly as received, so an enhanced status code
//! (`5.1.1`) stays at the start of the text; [`enhanced_status`] finds it.

use crate::proto::Reply;
use thiserror::Error;

/// Longest reply accepted from a next hop, all lines and line ends counted.
/// RFC 5321 allows 512 bytes per line; EHLO replies with many extensions are
/// the longest seen in practice (a few KiB).
pub const MAX_REPLY_LEN: usize = 64 * 1024;

/// Why bytes from the next hop are not a reply. A session that meets one
/// gives up (the peer is not speaking SMTP, or not any more).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// A line that does not start with a valid three-digit reply code
    /// (`[2-5][0-5][0-9]`) followed by a space, a hyphen or the line end.
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    /// The lines of one multiline reply carry different codes.
    #[error("multiline reply changes its code from {first} to {then}")]
    Inconsistent { first: u16, then: u16 },
    /// More than [`MAX_REPLY_LEN`] bytes without the reply ending.
    #[error("reply longer than {MAX_REPLY_LEN} bytes")]
    TooLong,
}

/// Incremental reply parser; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
    /// Bytes of the lines taken so far (line ends included).
    len: usize,
}

impl ReplyParser {
    pub fn new() -> ReplyParser {
        ReplyParser::default()
    }

    /// Consumes complete lines from `input`. Returns the number of bytes
    /// consumed and, when the reply is complete, the reply (the parser is then
    /// ready for the next one; bytes after it are not consumed). A partial
    /// line at the end is left unconsumed: call again with it and more bytes.
    /// Line ends are CRLF; a bare LF is tolerated.
    pub fn feed(&mut self, input: &[u8]) -> Result<(Option<Reply>, usize), ReplyError> {
        let mut pos = 0;
        while let Some(nl) = memchr::memchr(b'\n', &input[pos..]) {
            let end = pos + nl + 1;
            self.len += end - pos;
            if self.len > MAX_REPLY_LEN {
                return Err(ReplyError::TooLong);
            }
            let mut line = &input[pos..pos + nl];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            pos = end;
            let (code, last, text) = parse_line(line)?;
            match self.code {
                None => self.code = Some(code),
                Some(first) if first != code => {
                    return Err(ReplyError::Inconsistent { first, then: code })
                }
                Some(_) => {}
            }
            self.lines.push(String::from_utf8_lossy(text).into_owned());
            if last {
                let reply = Reply {
                    code,
                    status: None,
                    lines: std::mem::take(&mut self.lines),
                };
                *self = ReplyParser::default();
                return Ok((Some(reply), pos));
            }
        }
        if self.len + (input.len() - pos) > MAX_REPLY_LEN {
            return Err(ReplyError::TooLong);
        }
        Ok((None, pos))
    }
}

/// One line without its line end: (code, is the last line, text).
fn parse_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ReplyError> {
    let bad = || {
        let shown = &line[..line.len().min(80)];
        ReplyError::Malformed(String::from_utf8_lossy(shown).into_owned())
    };
    if line.len() < 3 {
        return Err(bad());
    }
    let (d0, d1, d2) = (line[0], line[1], line[2]);
    if !(b'2'..=b'5').contains(&d0) || !(b'0'..=b'5').contains(&d1) || !d2.is_ascii_digit() {
        return Err(bad());
    }
    let code = u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0');
    match line.get(3) {
        None => Ok((code, true, &[])),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(bad()),
    }
}

/// The enhanced status code (RFC 3463, `class.subject.detail`) of a reply:
/// its `status` if set, else the one at the start of the first line's text
/// when its class matches the reply code's first digit.
pub fn enhanced_status(reply: &Reply) -> Option<&str> {
    if let Some(s) = reply.status {
        return Some(s);
    }
    let first = reply.lines.first()?;
    let word = first.split(' ').next()?;
    let mut parts = word.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let class_ok = matches!(class, "2" | "4" | "5")
        && class.as_bytes()[0] as u16 - u16::from(b'0') == reply.code / 100;
    if parts.next().is_none() && class_ok && digits(subject, 3) && digits(detail, 3) {
        Some(word)
    } else {
        None
    }
}

/// A reply as one line of text for logs and bounce messages:
/// `550 5.1.1 no such user` (multiline replies joined with ` / `).
pub fn reply_text(reply: &Reply) -> String {
    let mut s = reply.code.to_string();
    if let Some(st) = reply.status {
        s.push(' ');
        s.push_str(st);
    }
    for (i, l) in reply.lines.iter().enumerate() {
        s.push_str(if i == 0 { " " } else { " / " });
        s.push_str(l);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> Result<(Option<Reply>, usize), ReplyError> {
        ReplyParser::new().feed(input)
    }

    #[test]
    fn single_and_multiline() {
        let (r, n) = one(b"250 2.1.0 Ok\r\nrest").unwrap();
        let r = r.unwrap();
        assert_eq!(n, 14);
        assert_eq!(
            (r.code, r.lines.clone()),
            (250, vec!["2.1.0 Ok".to_string()])
        );
        assert_eq!(enhanced_status(&r), Some("2.1.0"));

        let (r, n) = one(b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n").unwrap();
        assert_eq!(n, 37);
        assert_eq!(r.unwrap().lines, ["mx", "PIPELINING", "SIZE 10"]);

        // A bare code is a last line; a bare LF is tolerated.
        let (r, _) = one(b"250-a\n250\n").unwrap();
        assert_eq!(r.unwrap().lines, ["a", ""]);
    }

    #[test]
    fn incremental() {
        let mut p = ReplyParser::new();
        let (r, n) = p.feed(b"220-first li").unwrap();
        assert!(r.is_none());
        assert_eq!(n, 0);
        let (r, n) = p.feed(b"220-first line\r\n220 sec").unwrap();
        assert!(r.is_none());
        assert_eq!(n, 16);
        let (r, n) = p.feed(b"220 second\r\n").unwrap();
        assert_eq!(n, 12);
        assert_eq!(r.unwrap().lines, ["first line", "second"]);
    }

    #[test]
    fn garbage() {
        for bad in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"25\r\n",
            b"250x\r\n",
            b"650 no\r\n",
            b"\xff\xfe\xfd\r\n",
            b"\r\n",
        ] {
            assert!(matches!(one(bad), Err(ReplyError::Malformed(_))), "{bad:?}");
        }
        assert_eq!(
            one(b"250-a\r\n550 b\r\n").unwrap_err(),
            ReplyError::Inconsistent {
                first: 250,
                then: 550
            }
        );
        let long = vec![b'2'; MAX_REPLY_LEN + 1];
        assert_eq!(one(&long).unwrap_err(), ReplyError::TooLong);
        let mut many = Vec::new();
        while many.len() <= MAX_REPLY_LEN {
            many.extend_from_slice(b"250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
        }
        assert_eq!(one(&many).unwrap_err(), ReplyError::TooLong);
    }

    #[test]
    fn status_and_text() {
        let r = |code, t: &str| Reply {
            code,
            status: None,
            lines: vec![t.to_string()],
        };
        assert_eq!(
            enhanced_status(&r(550, "5.1.1 no such user")),
            Some("5.1.1")
        );
        assert_eq!(enhanced_status(&r(550, "4.1.1 class mismatch")), None);
        assert_eq!(enhanced_status(&r(250, "mx.example.com")), None);
        assert_eq!(enhanced_status(&r(250, "2.0.0")), Some("2.0.0"));
        assert_eq!(enhanced_status(&r(250, "2.0.0.1 x")), None);
        assert_eq!(enhanced_status(&r(250, "")), None);
        let m = Reply {
            code: 550,
            status: None,
            lines: vec!["5.7.1 a".into(), "b".into()],
        };
        assert_eq!(reply_text(&m), "550 5.7.1 a / b");
    }
}
