//! The few pieces of RFC 5322 the stamp needs: the header/body split, the
//! top-level header fields, unfolding, and the canonical body hash.
//!
//! Everything here works on raw bytes, accepts any input and never panics:
//! lines end at LF, with one CR before it dropped, so CRLF, LF and a mix of
//! both read the same.

use memchr::memchr;
use sha2::{Digest, Sha256};

/// Space or horizontal tab: the whitespace of folding.
fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// One line starting at `pos`: `(content, next)`, where `content` excludes the
/// LF and one CR before it, and `next` is where the following line starts (the
/// message's length for the last line). `None` at the end of `bytes`.
fn line_at(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if pos >= bytes.len() {
        return None;
    }
    let rest = &bytes[pos..];
    Some(match memchr(b'\n', rest) {
        Some(i) => {
            let content = &rest[..i];
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            (content, pos + i + 1)
        }
        None => (rest, bytes.len()),
    })
}

/// Where the header block ends and the body starts: the first empty line
/// (CRLF CRLF, LF LF or a mix) separates them. Returns `(header_end,
/// body_start)`: the header block is `message[..header_end]` (its last line's
/// terminator included), the body `message[body_start..]`. A message without
/// an empty line is all header and has an empty body.
pub(crate) fn split(message: &[u8]) -> (usize, usize) {
    let mut pos = 0;
    while let Some((content, next)) = line_at(message, pos) {
        if content.is_empty() {
            return (pos, next);
        }
        pos = next;
    }
    (message.len(), message.len())
}

/// Where a new first header field goes: normally 0, after any lines starting
/// with whitespace at the very top (not valid RFC 5322, but they would
/// otherwise read as continuation lines of the new field). 0 again when the
/// message is nothing but such lines and has no final line break.
pub(crate) fn top(message: &[u8]) -> usize {
    let mut pos = 0;
    while let Some((content, next)) = line_at(message, pos) {
        if !content.first().copied().is_some_and(is_wsp) {
            return pos;
        }
        if next == message.len() && !message.ends_with(b"\n") {
            return 0;
        }
        pos = next;
    }
    pos
}

/// The body: everything after the first empty line (empty when there is none).
pub(crate) fn body(message: &[u8]) -> &[u8] {
    &message[split(message).1..]
}

/// One field of the top-level header block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// Byte range of the whole field in the message, continuation lines and
    /// their terminators included.
    pub start: usize,
    pub end: usize,
    /// The name before the first `:` of the first line, trailing whitespace
    /// removed (RFC 5322 obsolete syntax allows `Name :`). `None` for a line
    /// without a colon, or continuation lines with no field before them.
    pub name: Option<&'a [u8]>,
    /// Everything after the colon up to `end`, line breaks included.
    pub raw_value: &'a [u8],
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// The fields of the top-level header block, in order. Fields of attached
/// messages and MIME parts are in the body and never returned.
pub(crate) fn fields(message: &[u8]) -> Vec<Field<'_>> {
    let (header_end, _) = split(message);
    let header = &message[..header_end];
    // (start, end, name, value_start) per field; slices are cut at the end.
    let mut spans: Vec<(usize, usize, Option<&[u8]>, usize)> = Vec::new();
    let mut pos = 0;
    while let Some((content, next)) = line_at(header, pos) {
        let continuation = content.first().copied().is_some_and(is_wsp);
        match spans.last_mut() {
            Some(last) if continuation => last.1 = next,
            _ => {
                let colon = if continuation {
                    None
                } else {
                    memchr(b':', content)
                };
                let (name, value_start) = match colon {
                    Some(c) => (Some(trim_end(&content[..c])), pos + c + 1),
                    None => (None, next),
                };
                spans.push((pos, next, name, value_start));
            }
        }
        pos = next;
    }
    spans
        .into_iter()
        .map(|(start, end, name, value_start)| Field {
            start,
            end,
            name,
            raw_value: match name {
                Some(_) => &header[value_start..end],
                None => &header[end..end],
            },
        })
        .collect()
}

fn trim_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && is_wsp(b[end - 1]) {
        end -= 1;
    }
    &b[..end]
}

/// A field value unfolded (every CR and LF removed), runs of spaces and tabs
/// collapsed into one space, and trimmed.
pub(crate) fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut space = false;
    for &b in raw {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space && !out.is_empty() {
                    out.push(b' ');
                }
                space = false;
                out.push(b);
            }
        }
    }
    out
}

/// The first top-level `Message-ID` field's value, unfolded and trimmed;
/// empty when the message has none.
pub(crate) fn message_id(message: &[u8]) -> Vec<u8> {
    fields(message)
        .iter()
        .find(|f| f.is("Message-ID"))
        .map(|f| unfold(f.raw_value))
        .unwrap_or_default()
}

/// The first top-level field `name`'s value, unfolded and trimmed like
/// [`message_id`]; empty when absent.
pub(crate) fn header(message: &[u8], name: &str) -> Vec<u8> {
    fields(message)
        .iter()
        .find(|f| f.is(name))
        .map(|f| unfold(f.raw_value))
        .unwrap_or_default()
}

/// SHA-256 of the body in its canonical form: every line ended by CRLF
/// (whether it ended with CRLF, LF or nothing in the message) and trailing
/// empty lines removed, like DKIM "simple" body canonicalisation applied to
/// CRLF-normalised text. An empty body (or one of empty lines only) hashes
/// the empty string. A CR that is not followed by LF is content.
pub(crate) fn body_hash(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut pending_empty: usize = 0;
    let mut pos = 0;
    while pos < body.len() {
        let rest = &body[pos..];
        let (line, next) = match memchr(b'\n', rest) {
            Some(i) => {
                let l = &rest[..i];
                (l.strip_suffix(b"\r").unwrap_or(l), pos + i + 1)
            }
            None => (rest, body.len()),
        };
        if line.is_empty() {
            pending_empty += 1;
        } else {
            for _ in 0..pending_empty {
                h.update(b"\r\n");
            }
            pending_empty = 0;
            h.update(line);
            h.update(b"\r\n");
        }
        pos = next;
    }
    h.finalize().into()
}
