//! Assembles headers and body chunks into one RFC 5322 message, within a size limit.

/// Why a message could not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message is over the size limit of {limit} bytes")]
pub struct Oversize {
    pub limit: usize,
}

/// Collects one message.
///
/// Guarantees: the buffer never holds more than `max` bytes (on the first
/// byte over, it is freed and every later call returns [`Oversize`]); the
/// bytes are appended once each (amortised linear, reserved up front from
/// the `SIZE=` hint when there is one, capped at `max`).
#[derive(Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    max: usize,
    leading_space: bool,
    in_body: bool,
    over: bool,
}

impl MessageBuilder {
    /// A builder for a message of at most `max` bytes. `leading_space`: the
    /// MTA passes header values with their leading space (`SMFIP_HDR_LEADSPC`
    /// negotiated), so none is added after the colon. `size_hint`: the
    /// sender's `SIZE=` declaration.
    pub fn new(max: usize, leading_space: bool, size_hint: Option<u64>) -> MessageBuilder {
        let mut buf = Vec::new();
        if let Some(h) = size_hint {
            // The MTA adds its own headers; a little slack avoids one regrowth.
            let want = (h as usize).saturating_add(4096).min(max);
            buf.reserve(want);
        }
        MessageBuilder {
            buf,
            max,
            leading_space,
            in_body: false,
            over: false,
        }
    }

    /// Whether the limit was passed.
    pub fn is_oversize(&self) -> bool {
        self.over
    }

    /// Bytes collected so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn room(&mut self, n: usize) -> Result<(), Oversize> {
        if self.over || self.buf.len().saturating_add(n) > self.max {
            self.over = true;
            self.buf = Vec::new();
            return Err(Oversize { limit: self.max });
        }
        Ok(())
    }

    /// Appends `name: value\r\n`. Bare LFs inside a folded value become CRLF.
    /// A header after the body started is appended to the body as is: the
    /// MTA does not send one.
    pub fn header(&mut self, name: &str, value: &[u8]) -> Result<(), Oversize> {
        let lone_lf = count_lone_lf(value);
        let sep = if self.leading_space { 1 } else { 2 };
        self.room(name.len() + sep + value.len() + lone_lf + 2)?;
        self.buf.extend_from_slice(name.as_bytes());
        self.buf
            .extend_from_slice(if self.leading_space { b":" } else { b": " });
        if lone_lf == 0 {
            self.buf.extend_from_slice(value);
        } else {
            let mut prev = 0u8;
            for &b in value {
                if b == b'\n' && prev != b'\r' {
                    self.buf.push(b'\r');
                }
                self.buf.push(b);
                prev = b;
            }
        }
        self.buf.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Ends the header section (the blank line); later calls do nothing.
    pub fn end_of_headers(&mut self) -> Result<(), Oversize> {
        if self.in_body {
            return if self.over {
                Err(Oversize { limit: self.max })
            } else {
                Ok(())
            };
        }
        self.room(2)?;
        self.buf.extend_from_slice(b"\r\n");
        self.in_body = true;
        Ok(())
    }

    /// Appends a body chunk as received (ending the headers first if EOH was skipped).
    pub fn body(&mut self, chunk: &[u8]) -> Result<(), Oversize> {
        self.end_of_headers()?;
        self.room(chunk.len())?;
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// The message (ending the headers if the MTA sent no body).
    pub fn finish(mut self) -> Result<Vec<u8>, Oversize> {
        self.end_of_headers()?;
        Ok(self.buf)
    }
}

fn count_lone_lf(v: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', v)
        .filter(|&i| i == 0 || v[i - 1] != b'\r')
        .count()
}

/// The `SIZE=` ESMTP argument of MAIL FROM, if any.
pub fn size_hint(args: &[String]) -> Option<u64> {
    args.iter().find_map(|a| {
        let (k, v) = a.split_once('=')?;
        if k.eq_ignore_ascii_case("SIZE") {
            v.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_headers_and_body() {
        let mut b = MessageBuilder::new(1000, false, None);
        b.header("Subject", b"hi").unwrap();
        b.header("X-Folded", b"a\n\tb\r\n\tc").unwrap();
        b.end_of_headers().unwrap();
        b.body(b"line 1\r\n").unwrap();
        b.body(b"line 2\r\n").unwrap();
        assert_eq!(
            b.finish().unwrap(),
            b"Subject: hi\r\nX-Folded: a\r\n\tb\r\n\tc\r\n\r\nline 1\r\nline 2\r\n"
        );
    }

    #[test]
    fn leading_space_kept_as_received() {
        let mut b = MessageBuilder::new(1000, true, None);
        b.header("Subject", b" hi").unwrap();
        b.header("X-Tight", b"x").unwrap();
        assert_eq!(b.finish().unwrap(), b"Subject: hi\r\nX-Tight:x\r\n\r\n");
    }

    #[test]
    fn missing_eoh_and_body() {
        let mut b = MessageBuilder::new(1000, false, None);
        b.header("A", b"1").unwrap();
        b.body(b"x").unwrap();
        b.end_of_headers().unwrap();
        assert_eq!(b.finish().unwrap(), b"A: 1\r\n\r\nx");
        let b = MessageBuilder::new(1000, false, None);
        assert_eq!(b.finish().unwrap(), b"\r\n");
    }

    #[test]
    fn size_limit_is_exact_and_frees_memory() {
        // "A: 1\r\n" (6) + "\r\n" (2) + 2 body bytes = 10
        let mut b = MessageBuilder::new(10, false, Some(1 << 40));
        assert!(b.buf.capacity() <= 10);
        b.header("A", b"1").unwrap();
        b.body(b"xy").unwrap();
        assert_eq!(b.len(), 10);
        assert_eq!(b.body(b"z"), Err(Oversize { limit: 10 }));
        assert!(b.is_oversize());
        assert_eq!(b.buf.capacity(), 0);
        assert!(b.body(b"").is_err());
        assert!(b.header("B", b"").is_err());
        assert!(b.finish().is_err());
    }

    #[test]
    fn size_hint_parsing() {
        assert_eq!(
            size_hint(&["BODY=8BITMIME".into(), "size=1234".into()]),
            Some(1234)
        );
        assert_eq!(size_hint(&["SIZE=x".into()]), None);
        assert_eq!(size_hint(&[]), None);
    }
}
