//! The message as sent after `DATA` (RFC 5321 §4.1.1.4, §4.5.2).
//!
//! [`DataEncoder`] turns a stored message into its wire form in chunks:
//! every line end becomes CRLF (a bare LF, and a bare CR too, becomes CRLF, so
//! the data holds no CR or LF outside a CRLF pair and no next hop can find a
//! different end of data in it: see SMTP smuggling), a line starting with `.`
//! gets another `.`, a missing final line end is added, and `.` CRLF ends the
//! data. Runs between line ends are copied in bulk. Never panics.

/// Encodes one message; call [`DataEncoder::fill`] until it returns `true`.
#[derive(Debug, Clone)]
pub struct DataEncoder<'a> {
    msg: &'a [u8],
    pos: usize,
    line_start: bool,
    done: bool,
}

impl<'a> DataEncoder<'a> {
    pub fn new(message: &'a [u8]) -> DataEncoder<'a> {
        DataEncoder {
            msg: message,
            pos: 0,
            line_start: true,
            done: false,
        }
    }

    /// Appends wire bytes to `out` until it holds at least `max` bytes (at
    /// most a few bytes more) or the data is complete. Returns `true` once the
    /// terminating `.` CRLF has been appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, max: usize) -> bool {
        while !self.done && out.len() < max {
            let rest = &self.msg[self.pos..];
            if rest.is_empty() {
                if !self.line_start {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
                self.done = true;
                break;
            }
            if self.line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            match memchr::memchr2(b'\r', b'\n', rest) {
                Some(0) => {
                    self.pos += if rest.starts_with(b"\r\n") { 2 } else { 1 };
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                }
                found => {
                    let run = found.unwrap_or(rest.len());
                    let n = run.min(max - out.len()).max(1);
                    out.extend_from_slice(&rest[..n]);
                    self.pos += n;
                    self.line_start = false;
                }
            }
        }
        self.done
    }

    /// The whole wire form at once (tests and small messages).
    pub fn encode(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 5);
        DataEncoder::new(message).fill(&mut out, usize::MAX);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
            (b"a\rb", b"a\r\nb\r\n.\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"x\r\n.\r\n..y\r\n", b"x\r\n..\r\n...y\r\n.\r\n"),
            (b"x\n.\n", b"x\r\n..\r\n.\r\n"),
            (b"a.b\r\n .c\r\n", b"a.b\r\n .c\r\n.\r\n"),
            (b"\r\n\r\n", b"\r\n\r\n.\r\n"),
        ];
        for (input, want) in cases {
            assert_eq!(
                DataEncoder::encode(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunked_equals_whole() {
        let mut msg = Vec::new();
        for i in 0..2000u32 {
            msg.extend_from_slice(match i % 5 {
                0 => &b".dot line\n"[..],
                1 => b"plain line\r\n",
                2 => b"..\r",
                3 => b"x",
                _ => b"\r\n.",
            });
        }
        let whole = DataEncoder::encode(&msg);
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let mut enc = DataEncoder::new(&msg);
            let mut all = Vec::new();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let done = enc.fill(&mut buf, chunk);
                assert!(buf.len() <= chunk + 5);
                all.extend_from_slice(&buf);
                if done {
                    break;
                }
            }
            assert_eq!(all, whole, "chunk {chunk}");
        }
    }
}
