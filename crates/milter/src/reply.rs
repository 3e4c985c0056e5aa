//! SMTP replies a filter asks the MTA to send (`SMFIR_REPLYCODE`).
//!
//! The MTA passes the text through a `printf`-like formatter (libmilter's
//! documented contract: a single `%` makes Sendmail drop the text), so every
//! `%` is doubled on the wire. Multi-line replies use the SMTP continuation
//! form: `550-5.7.1 first\r\n550 5.7.1 last`.

use crate::consts::{MAX_REPLY_LINE, MAX_REPLY_LINES};
use std::fmt;

/// Why an [`SmtpReply`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply code {0} is not a 4xx or 5xx code (the milter protocol allows only those)")]
    BadCode(u16),
    #[error("enhanced status code {0:?} is not of the form C.SSS.DDD with C = 4 or 5")]
    BadEnhanced(String),
    #[error("enhanced status code {enhanced} does not match reply code {code}")]
    ClassMismatch { code: u16, enhanced: String },
}

/// A 4xx or 5xx SMTP reply with an optional enhanced status code (RFC 3463)
/// and one or more lines of text.
///
/// Guarantees: the code is 400..=599; the enhanced code, when present, has
/// the same class as the code; the text holds at most [`MAX_REPLY_LINES`]
/// lines of at most [`MAX_REPLY_LINE`] octets each on the wire, with no CR,
/// LF or NUL inside a line (longer text is cut, extra lines are dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    code: u16,
    enhanced: Option<String>,
    lines: Vec<String>,
}

impl SmtpReply {
    /// A reply; `text` may hold several lines separated by LF or CRLF.
    pub fn new(code: u16, enhanced: Option<&str>, text: &str) -> Result<SmtpReply, ReplyError> {
        if !(400..=599).contains(&code) {
            return Err(ReplyError::BadCode(code));
        }
        let enhanced = match enhanced {
            None => None,
            Some(e) => {
                if !valid_enhanced(e) {
                    return Err(ReplyError::BadEnhanced(e.to_string()));
                }
                if e.as_bytes()[0] - b'0' != (code / 100) as u8 {
                    return Err(ReplyError::ClassMismatch {
                        code,
                        enhanced: e.to_string(),
                    });
                }
                Some(e.to_string())
            }
        };
        let mut lines: Vec<String> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .map(|l| {
                l.chars()
                    .map(|c| if c == '\r' || c == '\0' { ' ' } else { c })
                    .collect::<String>()
            })
            .collect();
        // "a\n" means one line, not a line and an empty one.
        if lines.len() > 1 && lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines.truncate(MAX_REPLY_LINES);
        for l in &mut lines {
            cut_escaped(l, MAX_REPLY_LINE);
        }
        Ok(SmtpReply {
            code,
            enhanced,
            lines,
        })
    }

    /// `550 5.7.1 <text>`: a permanent rejection.
    pub fn reject(enhanced: &str, text: &str) -> Result<SmtpReply, ReplyError> {
        SmtpReply::new(550, Some(enhanced), text)
    }

    /// `451 4.x.x <text>`: a temporary failure.
    pub fn tempfail(enhanced: &str, text: &str) -> Result<SmtpReply, ReplyError> {
        SmtpReply::new(451, Some(enhanced), text)
    }

    pub fn code(&self) -> u16 {
        self.code
    }
    pub fn enhanced(&self) -> Option<&str> {
        self.enhanced.as_deref()
    }
    /// The text lines as given (not escaped).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
    /// A 4xx reply.
    pub fn is_temporary(&self) -> bool {
        self.code < 500
    }
    /// A 5xx reply.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The `SMFIR_REPLYCODE` payload without its NUL: `%` doubled, lines
    /// joined with CRLF in SMTP continuation form.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push_str("\r\n");
            }
            out.push_str(&self.code.to_string());
            out.push(if i + 1 < n { '-' } else { ' ' });
            if let Some(e) = &self.enhanced {
                out.push_str(e);
                if !line.is_empty() {
                    out.push(' ');
                }
            }
            out.push_str(&escape_percent(line));
        }
        out
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = &self.enhanced {
            write!(f, " {e}")?;
        }
        write!(f, " {}", self.lines.join(" / "))
    }
}

/// Doubles every `%` (the MTA formats the text like `printf`).
pub fn escape_percent(s: &str) -> String {
    s.replace('%', "%%")
}

/// Shortens `l` until its escaped form fits in `max` octets, on a char boundary.
fn cut_escaped(l: &mut String, max: usize) {
    let mut len = 0;
    let mut cut = None;
    for (i, c) in l.char_indices() {
        let w = if c == '%' { 2 } else { c.len_utf8() };
        if len + w > max {
            cut = Some(i);
            break;
        }
        len += w;
    }
    if let Some(i) = cut {
        l.truncate(i);
    }
}

fn valid_enhanced(e: &str) -> bool {
    let parts: Vec<&str> = e.split('.').collect();
    parts.len() == 3
        && (parts[0] == "4" || parts[0] == "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_percent() {
        let r = SmtpReply::reject("5.7.1", "100% spam").unwrap();
        assert_eq!(r.to_wire(), "550 5.7.1 100%% spam");
        assert!(r.is_permanent());
    }

    #[test]
    fn multi_line() {
        let r = SmtpReply::new(554, Some("5.7.0"), "Rejected\r\nsee https://x/a%20b\n").unwrap();
        assert_eq!(
            r.to_wire(),
            "554-5.7.0 Rejected\r\n554 5.7.0 see https://x/a%%20b"
        );
        assert_eq!(r.lines().len(), 2);
    }

    #[test]
    fn without_enhanced_code() {
        let r = SmtpReply::new(451, None, "later").unwrap();
        assert_eq!(r.to_wire(), "451 later");
        assert!(r.is_temporary());
    }

    #[test]
    fn invalid_codes() {
        assert_eq!(
            SmtpReply::new(250, None, "x"),
            Err(ReplyError::BadCode(250))
        );
        assert_eq!(
            SmtpReply::new(600, None, "x"),
            Err(ReplyError::BadCode(600))
        );
        assert!(matches!(
            SmtpReply::new(550, Some("4.7.1"), "x"),
            Err(ReplyError::ClassMismatch { .. })
        ));
        for bad in ["5.7", "5.7.1.2", "2.0.0", "5.a.1", "5.1234.1", "5..1"] {
            assert!(
                matches!(
                    SmtpReply::new(550, Some(bad), "x"),
                    Err(ReplyError::BadEnhanced(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn control_characters_and_limits() {
        let r = SmtpReply::new(550, None, "a\rb\0c").unwrap();
        assert_eq!(r.to_wire(), "550 a b c");
        let many = vec!["l"; 40].join("\n");
        assert_eq!(
            SmtpReply::new(550, None, &many).unwrap().lines().len(),
            MAX_REPLY_LINES
        );
        let long = "%".repeat(2000);
        let r = SmtpReply::new(550, None, &long).unwrap();
        assert_eq!(r.lines()[0].len(), MAX_REPLY_LINE / 2);
        assert_eq!(r.to_wire().len(), 4 + MAX_REPLY_LINE);
    }
}
