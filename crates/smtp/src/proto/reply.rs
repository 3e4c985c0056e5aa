//! Replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034).

use std::fmt::Write as _;

/// One reply: a code, an optional enhanced status code, and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `2.1.0` etc.; `None` where RFC 2034 says none is sent (greeting, EHLO).
    pub status: Option<&'static str>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: Option<&'static str>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    /// A 2xx or 3xx reply.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// The wire form: `250-first\r\n250 last\r\n`, the enhanced code on every
    /// line. CR and LF inside a text line are replaced by spaces, so a reply can
    /// never inject another.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut s = String::new();
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            let sep = if i + 1 < n { '-' } else { ' ' };
            let _ = write!(s, "{}{}", self.code, sep);
            if let Some(st) = self.status {
                let _ = write!(s, "{st} ");
            }
            for c in text.chars() {
                s.push(if c == '\r' || c == '\n' { ' ' } else { c });
            }
            s.push_str("\r\n");
        }
        s.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let r = Reply {
            code: 250,
            status: None,
            lines: vec![
                "mx.example.com".into(),
                "PIPELINING".into(),
                "SIZE 1000".into(),
            ],
        };
        assert_eq!(
            r.to_wire(),
            b"250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
        );
        let r = Reply::new(550, Some("5.7.1"), "Relaying denied\r\n250 fake");
        assert_eq!(r.to_wire(), b"550 5.7.1 Relaying denied  250 fake\r\n");
        assert!(!r.is_positive());
    }
}
