//! Message data after `DATA` (dot-terminated, dot-stuffed) and after `BDAT`
//! (length-delimited chunks).
//!
//! [`DataReceiver`] is a streaming state machine: feed it whatever the socket
//! gave, it appends the unstuffed message to a buffer and says where the data
//! ended, so the rest of the input (pipelined commands) stays with the session.
//! Only `CRLF . CRLF` ends the data. A bare LF or a bare CR anywhere in the
//! data is the raw material of SMTP smuggling (a next hop that ends the data at
//! `LF . LF` would see a second message): the receiver keeps reading to the real
//! end and then reports [`DataError::BareNewline`], so the whole message is
//! refused and nothing inside it is ever taken for commands. Never panics;
//! memory is bounded by the size limit.

use thiserror::Error;

/// Why received data is refused (the session answers after the end of data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DataError {
    /// 550 5.6.0: a CR or LF not part of CRLF.
    #[error("message contains a bare CR or LF (RFC 5321 §2.3.8)")]
    BareNewline,
    /// 552 5.3.4: larger than the size limit.
    #[error("message exceeds the size limit")]
    TooBig,
}

impl DataError {
    pub fn code(self) -> (u16, &'static str) {
        match self {
            DataError::BareNewline => (550, "5.6.0"),
            DataError::TooBig => (552, "5.3.4"),
        }
    }
}

/// Result of one [`DataReceiver::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// All input consumed; the data goes on.
    More,
    /// The data ended after `consumed` bytes of this input (the rest is commands).
    Done { consumed: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// At the start of a line.
    LineStart,
    /// Inside a line.
    Mid,
    /// Saw CR inside a line.
    Cr,
    /// The line started with a dot.
    Dot,
    /// Saw `.` CR at the start of a line.
    DotCr,
}

/// Receives one message after `DATA`.
#[derive(Debug, Clone)]
pub struct DataReceiver {
    st: St,
    max: usize,
    error: Option<DataError>,
}

impl DataReceiver {
    /// A receiver that keeps at most `max` bytes of message.
    pub fn new(max: usize) -> DataReceiver {
        DataReceiver {
            st: St::LineStart,
            max,
            error: None,
        }
    }

    /// What went wrong so far (final once [`Feed::Done`] was returned).
    pub fn error(&self) -> Option<DataError> {
        self.error
    }

    fn bad(&mut self, e: DataError) {
        // A bare newline outranks size: it is the one that must never be relayed.
        if self.error != Some(DataError::BareNewline) {
            self.error = Some(e);
        }
    }

    fn push(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if out.len() + bytes.len() > self.max {
            self.bad(DataError::TooBig);
            return;
        }
        out.extend_from_slice(bytes);
    }

    /// Consumes `input`, appending the unstuffed message (CRLF line ends, the
    /// final `.` line excluded) to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Feed {
        let mut i = 0;
        while i < input.len() {
            match self.st {
                St::Mid => {
                    // Copy the run up to the next CR or LF in one go.
                    let run = memchr::memchr2(b'\r', b'\n', &input[i..]).unwrap_or(input.len() - i);
                    self.push(out, &input[i..i + run]);
                    i += run;
                    if i < input.len() {
                        let c = input[i];
                        i += 1;
                        if c == b'\r' {
                            self.st = St::Cr;
                        } else {
                            self.bad(DataError::BareNewline);
                            self.push(out, b"\n");
                        }
                    }
                }
                St::LineStart => {
                    let c = input[i];
                    i += 1;
                    match c {
                        b'.' => self.st = St::Dot,
                        b'\r' => self.st = St::Cr,
                        b'\n' => {
                            self.bad(DataError::BareNewline);
                            self.push(out, b"\n");
                        }
                        _ => {
                            self.push(out, &[c]);
                            self.st = St::Mid;
                        }
                    }
                }
                St::Cr => {
                    let c = input[i];
                    i += 1;
                    if c == b'\n' {
                        self.push(out, b"\r\n");
                        self.st = St::LineStart;
                    } else {
                        self.bad(DataError::BareNewline);
                        self.push(out, b"\r");
                        // Re-read this byte inside the line.
                        i -= 1;
                        self.st = St::Mid;
                    }
                }
                St::Dot => {
                    let c = input[i];
                    if c == b'\r' {
                        i += 1;
                        self.st = St::DotCr;
                    } else {
                        // Dot-stuffing: the leading dot is dropped; the byte is re-read.
                        if c == b'\n' {
                            self.bad(DataError::BareNewline);
                        }
                        self.st = St::Mid;
                    }
                }
                St::DotCr => {
                    let c = input[i];
                    i += 1;
                    if c == b'\n' {
                        self.st = St::LineStart;
                        return Feed::Done { consumed: i };
                    }
                    // `.` CR x: a bare CR in a dot-stuffed line.
                    self.bad(DataError::BareNewline);
                    self.push(out, b"\r");
                    i -= 1;
                    self.st = St::Mid;
                }
            }
        }
        Feed::More
    }
}

/// Receives one `BDAT` chunk of a known size: no stuffing, no terminator.
#[derive(Debug, Clone)]
pub struct BdatReceiver {
    left: u64,
    max: usize,
    error: Option<DataError>,
}

impl BdatReceiver {
    /// A chunk of `size` bytes, appended while the message stays within `max`.
    pub fn new(size: u64, max: usize) -> BdatReceiver {
        BdatReceiver {
            left: size,
            max,
            error: None,
        }
    }

    pub fn error(&self) -> Option<DataError> {
        self.error
    }

    /// Consumes up to the chunk's remaining size from `input`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Feed {
        let take = (self.left.min(input.len() as u64)) as usize;
        if self.error.is_none() {
            if out.len() + take > self.max {
                self.error = Some(DataError::TooBig);
            } else {
                out.extend_from_slice(&input[..take]);
            }
        }
        self.left -= take as u64;
        if self.left == 0 {
            Feed::Done { consumed: take }
        } else {
            Feed::More
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns message, error, bytes left over.
    fn run(input: &[u8], step: usize, max: usize) -> (Vec<u8>, Option<DataError>, Vec<u8>) {
        let mut r = DataReceiver::new(max);
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + step).min(input.len());
            match r.feed(&input[pos..end], &mut out) {
                Feed::More => pos = end,
                Feed::Done { consumed } => {
                    return (out, r.error(), input[pos + consumed..].to_vec());
                }
            }
        }
        panic!("no end of data in {:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn dot_stuffing_and_the_end_marker_whatever_the_chunking() {
        let input = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nnot the end\r\n.\r\nQUIT\r\n";
        for step in [1, 2, 3, 5, 7, 64] {
            let (msg, err, rest) = run(input, step, 1 << 20);
            assert_eq!(err, None, "step {step}");
            assert_eq!(msg, b"Subject: x\r\n\r\n.leading dot\r\n", "step {step}");
            assert_eq!(rest, b"not the end\r\n.\r\nQUIT\r\n", "step {step}");
        }
        let (msg, err, _) = run(b".\r\n", 1, 100);
        assert_eq!((msg.as_slice(), err), (&b""[..], None));
    }

    #[test]
    fn smuggling_attempts_are_refused_and_never_end_the_data_early() {
        // Each hides a fake end of data using a bare LF or CR; only the final CRLF.CRLF ends it.
        for hidden in [
            &b"\n.\n"[..],
            b"\r\n.\n",
            b"\n.\r\n",
            b"\r.\r",
            b"\r\n.\r",
            b"x\ry",
        ] {
            let mut input = b"Subject: a\r\n\r\nbody".to_vec();
            input.extend_from_slice(hidden);
            input.extend_from_slice(b"MAIL FROM:<evil@example.com>\r\n.\r\nNOOP\r\n");
            for step in [1, 4, 100] {
                let (msg, err, rest) = run(&input, step, 1 << 20);
                assert_eq!(err, Some(DataError::BareNewline), "{hidden:?} step {step}");
                assert_eq!(rest, b"NOOP\r\n", "{hidden:?} step {step}");
                // Nothing after the error is kept: the message is refused whole.
                assert!(memchr::memmem::find(&msg, b"MAIL FROM").is_none());
            }
        }
    }

    #[test]
    fn size_limit_reads_to_the_end_and_reports() {
        let mut input = vec![b'a'; 5000];
        input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
        let (msg, err, rest) = run(&input, 512, 1000);
        assert_eq!(err, Some(DataError::TooBig));
        assert!(msg.len() <= 1000);
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn bdat_chunks_are_exact() {
        let mut out = Vec::new();
        let mut r = BdatReceiver::new(5, 100);
        assert_eq!(r.feed(b"abc", &mut out), Feed::More);
        assert_eq!(r.feed(b"de\r\nQUIT", &mut out), Feed::Done { consumed: 2 });
        assert_eq!(out, b"abcde");
        let mut r = BdatReceiver::new(0, 100);
        assert_eq!(r.feed(b"QUIT", &mut out), Feed::Done { consumed: 0 });
        let mut r = BdatReceiver::new(10, 3);
        let mut small = Vec::new();
        assert_eq!(r.feed(&[b'x'; 10], &mut small), Feed::Done { consumed: 10 });
        assert_eq!(r.error(), Some(DataError::TooBig));
    }

    #[test]
    fn random_input_never_panics_and_stays_bounded() {
        let mut x: u64 = 42;
        for _ in 0..2000 {
            let mut r = DataReceiver::new(256);
            let mut out = Vec::new();
            let input: Vec<u8> = (0..300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"\r\n.ab"[(x % 5) as usize]
                })
                .collect();
            let _ = r.feed(&input, &mut out);
            assert!(out.len() <= 256);
        }
    }
}
