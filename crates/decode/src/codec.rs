//! Lenient transfer decoders shared by the readers (mail, HTML): base64,
//! quoted-printable, uuencode lines, charsets. All are single-pass, never
//! panic, and produce at most as many bytes as they read.

/// The value of a base64 alphabet character, or `None`.
fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Base64 as mail clients decode it. Characters outside the alphabet are
/// skipped; `=` ends a quantum (its whole bytes are kept and decoding goes on,
/// so concatenated encodings work); a truncated final quantum keeps its whole
/// bytes. Returns the bytes and the number of skipped non-whitespace characters.
pub(crate) fn base64_lenient(input: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut n = 0u8;
    let mut junk = 0usize;
    for &c in input {
        if let Some(v) = b64_value(c) {
            acc = (acc << 6) | v;
            n += 1;
            if n == 4 {
                out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                acc = 0;
                n = 0;
            }
        } else if c == b'=' {
            flush_quantum(&mut out, acc, n);
            acc = 0;
            n = 0;
        } else if !c.is_ascii_whitespace() {
            junk += 1;
        }
    }
    flush_quantum(&mut out, acc, n);
    (out, junk)
}

/// Emits the whole bytes of a partial quantum of `n` sextets held in `acc`.
fn flush_quantum(out: &mut Vec<u8>, acc: u32, n: u8) {
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable: `=XX` (either case), soft line breaks `=` + CRLF/LF (also
/// with whitespace between), trailing whitespace on a line removed; a stray
/// `=` is kept as is.
pub(crate) fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        match c {
            b'=' => {
                let a = input.get(i + 1).copied();
                let b = input.get(i + 2).copied();
                if let (Some(h), Some(l)) = (a.and_then(hex_value), b.and_then(hex_value)) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                // Soft break: `=`, optional blanks, line end.
                let mut j = i + 1;
                while j < input.len() && (input[j] == b' ' || input[j] == b'\t') {
                    j += 1;
                }
                if j < input.len() && input[j] == b'\r' && input.get(j + 1) == Some(&b'\n') {
                    i = j + 2;
                } else if j < input.len() && input[j] == b'\n' {
                    i = j + 1;
                } else if j >= input.len() {
                    i = j;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
            b' ' | b'\t' => {
                // Drop blanks that end a line.
                let mut j = i;
                while j < input.len() && (input[j] == b' ' || input[j] == b'\t') {
                    j += 1;
                }
                let at_eol = j >= input.len()
                    || input[j] == b'\n'
                    || (input[j] == b'\r' && input.get(j + 1) == Some(&b'\n'));
                if !at_eol {
                    out.extend_from_slice(&input[i..j]);
                }
                i = j;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// One uuencoded line (without its line end): the length character, then
/// groups of four characters. Short lines (trailing blanks stripped by a mail
/// system) are padded with zero sextets; both space and backquote are zero.
/// `None` when the line is not uuencoded data (a character outside the uu
/// range); `Some(empty)` for a zero-length line.
pub(crate) fn uu_line(line: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let (&first, rest) = line.split_first()?;
    if !(0x20..=0x60).contains(&first) {
        return None;
    }
    let n = usize::from((first - 0x20) & 0x3f);
    if rest.iter().any(|&c| !(0x20..=0x60).contains(&c)) {
        return None;
    }
    let sextet = |i: usize| u32::from(rest.get(i).map_or(0, |&c| (c - 0x20) & 0x3f));
    let mut written = 0;
    let mut g = 0;
    while written < n {
        let v = sextet(g) << 18 | sextet(g + 1) << 12 | sextet(g + 2) << 6 | sextet(g + 3);
        for k in 0..3 {
            if written < n {
                out.push((v >> (16 - 8 * k)) as u8);
                written += 1;
            }
        }
        g += 4;
    }
    Some(n)
}

/// Decodes `bytes` from `charset` to UTF-8 (mail-parser's charset tables);
/// unknown charsets: UTF-8 with replacement characters.
pub(crate) fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    if let Some(f) = charset
        .and_then(|c| mail_parser::decoders::charsets::map::charset_decoder(c.trim().as_bytes()))
    {
        return f(bytes);
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Bytes of unknown charset (a raw 8-bit header): UTF-8 when valid, else Windows-1252.
pub(crate) fn decode_unknown(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => decode_charset(bytes, Some("windows-1252")),
    }
}

/// Iterates lines as `(start, end_without_line_break, next_start)`.
pub(crate) struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Lines<'a> {
        Lines { data, pos }
    }
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize, usize);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let rest = self.data.get(start..)?;
        let (mut end, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (start + i, start + i + 1),
            None => (self.data.len(), self.data.len()),
        };
        if end > start && self.data.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        self.pos = next;
        Some((start, end, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_junk_and_keeps_partial_quantum() {
        assert_eq!(base64_lenient(b"aGVsbG8=").0, b"hello");
        assert_eq!(base64_lenient(b"aGV\r\nsb!G8").0, b"hello");
        assert_eq!(base64_lenient(b"aGV*sbG8").1, 1);
        // truncated final quantum: 3 sextets -> 2 bytes
        assert_eq!(base64_lenient(b"aGVsbG").0, b"hell");
        // concatenated encodings
        assert_eq!(base64_lenient(b"YQ==Yg==").0, b"ab");
        assert_eq!(base64_lenient(b"").0, b"");
        assert_eq!(base64_lenient(b"Y").0, b"");
    }

    #[test]
    fn qp_soft_breaks_and_hex() {
        assert_eq!(quoted_printable(b"a=3Db=3db"), b"a=b=b");
        assert_eq!(quoted_printable(b"long=\r\nline=\nend"), b"longlineend");
        assert_eq!(quoted_printable(b"soft= \t\nbreak"), b"softbreak");
        assert_eq!(quoted_printable(b"trail  \r\nx"), b"trail\r\nx");
        assert_eq!(quoted_printable(b"a = b =zz ="), b"a = b =zz ");
        assert_eq!(quoted_printable(b"=E9t=E9"), b"\xe9t\xe9");
    }

    #[test]
    fn uu_lines() {
        let mut out = Vec::new();
        assert_eq!(uu_line(b"#86)C", &mut out), Some(3));
        assert_eq!(out, b"abc");
        out.clear();
        // short line: missing chars are zero
        assert_eq!(uu_line(b"#86", &mut out), Some(3));
        assert_eq!(&out[..1], b"a");
        out.clear();
        assert_eq!(uu_line(b"`", &mut out), Some(0));
        assert_eq!(uu_line(b" ", &mut out), Some(0));
        assert_eq!(uu_line(b"end", &mut out), None);
        assert_eq!(uu_line(b"", &mut out), None);
    }

    #[test]
    fn lines_crlf_and_lf() {
        let d = b"a\r\nb\nc";
        let v: Vec<_> = Lines::new(d, 0).map(|(s, e, _)| &d[s..e]).collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"c"]);
    }
}
