//! The `clean` action's message rewrite: parts the scan found harmful are
//! taken out of a message and a short text notice is left in their place.
//!
//! ```
//! use mxguard_decode::rewrite::{remove_parts, RemovedPart};
//!
//! let msg = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
//! --b\r\n\r\nhello\r\n--b\r\nContent-Type: application/zip; name=invoice.zip\r\n\
//! Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n";
//! let notice = |p: &RemovedPart| {
//!     format!("{} was removed.", p.name.as_deref().unwrap_or("An attachment"))
//! };
//! let cleaned = remove_parts(msg, &["part[2]/invoice.zip/a.exe"], &notice).unwrap();
//! assert_eq!(cleaned.removed[0].location, "part[2]");
//! assert_eq!(
//!     cleaned.message,
//!     b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
//! --b\r\n\r\nhello\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\
//! Content-Transfer-Encoding: 7bit\r\nContent-Disposition: inline\r\n\r\n\
//! invoice.zip was removed.\r\n--b--\r\n"
//! );
//! ```
//!
//! # Locations
//! A location is what [`Decoder::walk`](crate::Decoder::walk) reported for an
//! object of the message given as its input (`ScanObject::location`,
//! `Finding::location`). Each one is reduced to the MIME entity of the message
//! that holds it, by its first segment `part[N.M...]` (IMAP section numbers,
//! counted by the very splitter the walk uses):
//! - `part[2]`, `part[2]/invoice.zip`, `part[2]/invoice.zip/a.exe`: entity 2;
//! - `part[1.2]`, `part[1.2]/a.exe`: part 2 of the multipart that is part 1;
//! - `part[3]/part[1]`, `part[3]/fwd.eml/part[2]/x.zip/a.exe`: anything inside an
//!   attached message (`message/rfc822`, also the default type of a
//!   `multipart/digest` part): the whole attached message, entity 3;
//! - a multipart in which no boundary line was found is walked as one part
//!   (`part[N]`): the whole multipart entity;
//! - `""` (the message itself), and `part[1]` when the message is not
//!   multipart (its body is `part[1]`) or is a multipart without any boundary
//!   line: the whole body is replaced (see below).
//!
//! Anything else is an error ([`RewriteError`]), never a silent no-op: a
//! location that is not of this shape (`msg[1]/...` from an mbox, a prefix such
//! as `mail/`), a section the message does not have, a section that is a
//! multipart whose parts the walk reported one by one, or `part[...]` when the
//! input is not walked as a message at all (its first bytes are not a mail
//! header, or it starts with an mbox `From ` line). The caller then
//! quarantines the whole message instead.
//!
//! # Guarantees
//! - **Same numbering as the walk**: the entities are found by the walk's own
//!   MIME splitter (`mime::split`), with the same multipart nesting limit when
//!   given the same [`DecodeBudget`] ([`remove_parts_with`]).
//! - **Everything else byte for byte**: only the bytes of the removed entities
//!   change (from the first byte after the boundary line before one to the
//!   line break that belongs to the boundary line after it, or the end of the
//!   message). Boundary lines, preamble, epilogue, all other parts and their
//!   headers are copied unchanged, so every other part is walked again at the
//!   same location with the same bytes. No header is added to the message
//!   (the caller adds its own).
//! - **A removed entity becomes one part**, in the same place (the section
//!   numbers of all parts stay as they were):
//!   `Content-Type: text/plain; charset=utf-8`, `Content-Transfer-Encoding:
//!   7bit` (the notice is ASCII in short lines) or `quoted-printable`,
//!   `Content-Disposition: inline`, then the notice text. Its lines end like
//!   the message's first line (CRLF or LF). A notice line can never be read as
//!   a boundary line: in 7bit no line starts with `--`, in quoted-printable a
//!   `-` that starts a line is written `=2D` (notices may quote attachment
//!   names, which the sender chose).
//! - **The whole body**: the message's header fields are kept byte for byte,
//!   except `Content-Type`, `Content-Transfer-Encoding` and
//!   `Content-Disposition` (every occurrence, with their folded lines), which
//!   are replaced by the notice's; `MIME-Version: 1.0` is added when missing.
//!   The body becomes the notice. Every other location is then included.
//! - **Never panics**; time linear in the size of the message and of the
//!   locations, plus sorting the removed parts (fuzzed:
//!   `fuzz/fuzz_targets/decode_rewrite.rs`).

use super::header;
use super::mime::{self, Entity, HeaderLine, Sink};
use crate::codec::Lines;
use crate::{DecodeBudget, Flow, Kind};
use std::collections::{HashMap, HashSet};

/// One entity taken out of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedPart {
    /// The entity's own location (`part[2]`, `part[1.2]`), or `""` when the
    /// whole body of the message was replaced.
    pub location: String,
    /// The locations given that were reduced to this entity, in the order
    /// given, without repeats (`part[2]/invoice.zip/a.exe`; with the whole body,
    /// every location given).
    pub found: Vec<String>,
    /// The entity's declared file name (Content-Disposition `filename`, else
    /// Content-Type `name`; RFC 2047/2231 decoded, trimmed), if any.
    pub name: Option<String>,
    /// Its declared type, lowercased, without parameters (`application/zip`),
    /// or the MIME default (`text/plain`; `message/rfc822` in a digest).
    pub content_type: String,
}

/// The rewritten message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub message: Vec<u8>,
    /// The entities taken out, in the order they appear in the message (one
    /// entry with location `""` when the whole body was replaced; empty only
    /// when no location was given, and then `message` is the input).
    pub removed: Vec<RemovedPart>,
}

/// Why a message could not be cleaned. The caller must not deliver it as
/// cleaned (quarantine it instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// Not a location the walk gives to a part of a message (`msg[1]/...`,
    /// `mail/part[2]`, `part[0]`, ...).
    #[error("`{0}` is not a location of a part of a message (expected `part[N...]...` or an empty location)")]
    BadLocation(String),
    /// The input would not be walked as a message, so no location in it names a MIME part.
    #[error("`{0}` names a MIME part, but the input is not walked as a message")]
    NotMail(String),
    /// The message has no such part.
    #[error("the message has no part `{0}`")]
    NoSuchPart(String),
    /// The section is a multipart whose parts the walk reports one by one: no
    /// object of the walk has this location (was the message walked with
    /// another budget?).
    #[error("`{0}` is a multipart whose parts are walked one by one; no object has this location")]
    Multipart(String),
    /// The splitter found two entities with this section number (it never
    /// should; refused rather than guessed).
    #[error("two parts of the message are numbered `{0}`")]
    Ambiguous(String),
}

/// Removes the entities holding `locations` from `message`, leaving the text
/// `notice` returns for each in its place (see the [module](self) doc for
/// which entity a location names and what is kept). The walk's multipart
/// nesting limit is the default budget's; use [`remove_parts_with`] when the
/// message was walked with another budget. Never panics.
pub fn remove_parts(
    message: &[u8],
    locations: &[&str],
    notice: &dyn Fn(&RemovedPart) -> String,
) -> Result<Cleaned, RewriteError> {
    remove_parts_with(&DecodeBudget::default(), message, locations, notice)
}

/// [`remove_parts`] for a message walked with `budget` (its `max_depth` sets
/// how deep the walk split nested multiparts, which section numbers depend on).
pub fn remove_parts_with(
    budget: &DecodeBudget,
    message: &[u8],
    locations: &[&str],
    notice: &dyn Fn(&RemovedPart) -> String,
) -> Result<Cleaned, RewriteError> {
    if locations.is_empty() {
        return Ok(Cleaned {
            message: message.to_vec(),
            removed: Vec::new(),
        });
    }
    // Parse every location first: the first bad one is the error.
    let mut wanted: Vec<(&str, Vec<u32>)> = Vec::with_capacity(locations.len());
    let mut walked_as_mail: Option<bool> = None;
    for &loc in locations {
        let number = parse_location(loc).ok_or_else(|| RewriteError::BadLocation(loc.into()))?;
        if !number.is_empty() && !*walked_as_mail.get_or_insert_with(|| is_walked_as_mail(message))
        {
            return Err(RewriteError::NotMail(loc.into()));
        }
        wanted.push((loc, number));
    }
    let mut targets: HashMap<Vec<u32>, Slot> = HashMap::new();
    for (_, n) in &wanted {
        if !n.is_empty() {
            targets.entry(n.clone()).or_default();
        }
    }
    let rec = mime::split(
        message,
        mime::nest_limit(budget.max_depth),
        Recorder { targets, top: None },
    );
    let Some(top) = rec.top else {
        // Cannot happen: the splitter always reads the message's own headers first.
        return Err(RewriteError::NoSuchPart(String::new()));
    };

    // Reduce each location to the whole body or to one entity.
    let mut whole = false;
    let mut parts: Vec<(&Found, Vec<&str>)> = Vec::new();
    let mut index: HashMap<&[u32], usize> = HashMap::new();
    for (loc, number) in &wanted {
        let is_whole = number.is_empty() || (top.single && number[..] == [1]);
        if is_whole {
            whole = true;
            continue;
        }
        let slot = rec.targets.get(number);
        let found = match slot {
            Some(Slot { twice: true, .. }) => {
                return Err(RewriteError::Ambiguous(location_of(number)))
            }
            Some(Slot { found: Some(f), .. }) => f,
            Some(Slot {
                multipart: true, ..
            }) => return Err(RewriteError::Multipart(location_of(number))),
            _ => return Err(RewriteError::NoSuchPart(location_of(number))),
        };
        match index.get(&number[..]) {
            Some(&i) => parts[i].1.push(loc),
            None => {
                index.insert(&number[..], parts.len());
                parts.push((found, vec![loc]));
            }
        }
    }

    let eol: &[u8] = line_end(message);
    if whole {
        // Every other location lies in the body.
        let removed = RemovedPart {
            location: String::new(),
            found: distinct(wanted.iter().map(|(l, _)| *l)),
            name: top.name.clone(),
            content_type: top.declared.clone(),
        };
        let text = notice(&removed);
        let mut out = Vec::with_capacity(top.body_start + text.len() + 256);
        kept_headers(message, top.body_start, eol, &mut out);
        notice_part(&text, eol, &mut out);
        out.extend_from_slice(eol);
        return Ok(Cleaned {
            message: out,
            removed: vec![removed],
        });
    }

    parts.sort_by_key(|(f, _)| f.start);
    let mut out = Vec::with_capacity(message.len() + 256 * parts.len());
    let mut removed = Vec::with_capacity(parts.len());
    let mut pos = 0usize;
    for (f, locs) in parts {
        // Distinct leaves never overlap; refuse rather than guess if they did.
        if f.start < pos || f.end < f.start || f.end > message.len() {
            return Err(RewriteError::NoSuchPart(f.location.clone()));
        }
        let part = RemovedPart {
            location: f.location.clone(),
            found: distinct(locs),
            name: f.name.clone(),
            content_type: f.declared.clone(),
        };
        let text = notice(&part);
        out.extend_from_slice(&message[pos..f.start]);
        // The entity starts a line and is followed by a line break (the
        // boundary line's), or by a line start, or by the end.
        if f.start > 0 && message[f.start - 1] != b'\n' {
            out.extend_from_slice(eol);
        }
        notice_part(&text, eol, &mut out);
        if f.end == message.len() || f.end == f.start || message[f.end - 1] == b'\n' {
            out.extend_from_slice(eol);
        }
        pos = f.end;
        removed.push(part);
    }
    out.extend_from_slice(&message[pos..]);
    Ok(Cleaned {
        message: out,
        removed,
    })
}

/// The locations in their first order, without repeats.
fn distinct<'a>(locs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    locs.into_iter()
        .filter(|l| seen.insert(*l))
        .map(str::to_string)
        .collect()
}

/// `part[1.2]`
fn location_of(number: &[u32]) -> String {
    mime::segment(number)
}

/// The section number a location starts with (`part[1.2]/x` → `[1, 2]`), or
/// empty for `""`. Only the form the walk writes (no zeros, no leading zeros,
/// nothing but `/` after the bracket) is accepted.
fn parse_location(loc: &str) -> Option<Vec<u32>> {
    if loc.is_empty() {
        return Some(Vec::new());
    }
    let rest = loc.strip_prefix("part[")?;
    let close = rest.find(']')?;
    let (inner, after) = (&rest[..close], &rest[close + 1..]);
    if !(after.is_empty() || after.starts_with('/')) {
        return None;
    }
    let mut number = Vec::new();
    for n in inner.split('.') {
        if n.is_empty() || n.starts_with('0') || !n.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        number.push(n.parse::<u32>().ok()?);
    }
    Some(number)
}

/// Whether [`Decoder::walk`](crate::Decoder::walk) opens `message` with the
/// MIME reader (and so names its parts `part[...]`).
fn is_walked_as_mail(message: &[u8]) -> bool {
    crate::kind::container_kind(message, crate::kind::true_type(message)) == Some(Kind::Mail)
}

/// The message's line end: that of its first line (CRLF when it has none).
fn line_end(message: &[u8]) -> &'static [u8] {
    match memchr::memchr(b'\n', message) {
        Some(i) if i == 0 || message[i - 1] != b'\r' => b"\n",
        _ => b"\r\n",
    }
}

/// What the message says about itself.
struct Top {
    body_start: usize,
    name: Option<String>,
    declared: String,
    /// Its body is one part (`part[1]`): not multipart, or a multipart without
    /// any boundary line.
    single: bool,
}

/// Where one wanted entity lies.
struct Found {
    location: String,
    start: usize,
    end: usize,
    name: Option<String>,
    declared: String,
}

#[derive(Default)]
struct Slot {
    found: Option<Found>,
    /// The section is a multipart whose parts follow.
    multipart: bool,
    /// Found more than once.
    twice: bool,
}

/// The rewrite's sink: remembers the message's own headers and where the
/// wanted entities are.
struct Recorder {
    targets: HashMap<Vec<u32>, Slot>,
    top: Option<Top>,
}

impl Recorder {
    fn part(&mut self, e: &Entity<'_>) {
        if e.number.is_empty() {
            if let Some(top) = self.top.as_mut() {
                top.single = true;
            }
            return;
        }
        if let Some(slot) = self.targets.get_mut(e.number) {
            slot.twice |= slot.found.is_some();
            slot.found = Some(Found {
                location: location_of(e.number),
                start: e.start,
                end: e.end,
                name: mime::declared_name(e.fields),
                declared: e.declared.to_string(),
            });
        }
    }

    fn top(&mut self, e: &Entity<'_>) {
        if e.number.is_empty() && self.top.is_none() {
            self.top = Some(Top {
                body_start: e.body_start,
                name: mime::declared_name(e.fields),
                declared: e.declared.to_string(),
                single: false,
            });
        }
    }
}

impl Sink for Recorder {
    fn leaf(&mut self, e: &Entity<'_>, _body: &[u8]) -> Flow {
        self.top(e);
        self.part(e);
        Flow::Continue
    }

    fn undivided(&mut self, e: &Entity<'_>, _body: &[u8]) -> Flow {
        self.part(e);
        Flow::Continue
    }

    fn multipart(&mut self, e: &Entity<'_>) {
        self.top(e);
        if let Some(slot) = self.targets.get_mut(e.number) {
            slot.multipart = true;
        }
    }

    fn too_deep(&mut self, _number: &[u32], _limit: usize) -> Flow {
        Flow::Continue
    }
}

/// Is this one of the fields the notice replaces?
fn replaced_field(name: &[u8]) -> bool {
    [
        &b"content-type"[..],
        b"content-transfer-encoding",
        b"content-disposition",
    ]
    .iter()
    .any(|f| name.eq_ignore_ascii_case(f))
}

/// Copies the message's header fields (up to `body_start`) except the ones
/// the notice replaces, adding `MIME-Version` if missing. Ends after the last
/// field's line break.
fn kept_headers(message: &[u8], body_start: usize, eol: &[u8], out: &mut Vec<u8>) {
    let mut first = true;
    let mut keep = false;
    let mut mime_version = false;
    for (s, e, next) in Lines::new(message, 0) {
        if s >= body_start {
            break;
        }
        let line = &message[s..e];
        match mime::header_line(line, first) {
            HeaderLine::Blank | HeaderLine::Body => break,
            HeaderLine::Field => {
                first = false;
                let name = header::split_field(line).map_or(&b""[..], |(n, _)| n);
                keep = !replaced_field(name);
                mime_version |= name.eq_ignore_ascii_case(b"mime-version");
            }
            HeaderLine::Continuation => {}
        }
        if keep {
            out.extend_from_slice(&message[s..next]);
            if next == e {
                // The last line of the input, without a line break.
                out.extend_from_slice(eol);
            }
        }
    }
    if !mime_version {
        out.extend_from_slice(b"MIME-Version: 1.0");
        out.extend_from_slice(eol);
    }
}

/// The notice part: its header fields, a blank line and the text (no line
/// break after the last line).
fn notice_part(text: &str, eol: &[u8], out: &mut Vec<u8>) {
    let text = text.trim_end_matches(['\r', '\n']);
    let lines: Vec<&[u8]> = if text.is_empty() {
        Vec::new()
    } else {
        text.as_bytes()
            .split(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    };
    let plain = lines.iter().all(|l| {
        l.len() <= QP_LINE
            && !l.starts_with(b"--")
            && l.iter().all(|&c| c == b'\t' || (b' '..=b'~').contains(&c))
    });
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8");
    out.extend_from_slice(eol);
    out.extend_from_slice(b"Content-Transfer-Encoding: ");
    out.extend_from_slice(if plain {
        &b"7bit"[..]
    } else {
        b"quoted-printable"
    });
    out.extend_from_slice(eol);
    out.extend_from_slice(b"Content-Disposition: inline");
    out.extend_from_slice(eol);
    out.extend_from_slice(eol);
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(eol);
        }
        if plain {
            out.extend_from_slice(l);
        } else {
            qp_line(l, eol, out);
        }
    }
}

/// Longest encoded line, before a soft line break's `=` (RFC 2045 allows 76 in all).
const QP_LINE: usize = 75;

/// One line of text as quoted-printable, with soft line breaks. A `-` that
/// would start a physical line is encoded, so no line reads as a boundary.
fn qp_line(line: &[u8], eol: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut col = 0usize;
    for (i, &c) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        let literal = |col: usize| match c {
            b'=' => false,
            b'-' => col > 0,
            b'!'..=b'~' => true,
            b' ' | b'\t' => !last,
            _ => false,
        };
        let width = |col: usize| if literal(col) { 1 } else { 3 };
        if col + width(col) > QP_LINE {
            out.push(b'=');
            out.extend_from_slice(eol);
            col = 0;
        }
        if literal(col) {
            out.push(c);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        }
        col += width(col);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_only_in_the_walks_form() {
        assert_eq!(parse_location(""), Some(vec![]));
        assert_eq!(parse_location("part[2]"), Some(vec![2]));
        assert_eq!(parse_location("part[1.2]/a.exe"), Some(vec![1, 2]));
        assert_eq!(parse_location("part[3]/part[1]/x]"), Some(vec![3]));
        for bad in [
            "part[]",
            "part[0]",
            "part[01]",
            "part[1.]",
            "part[1]x",
            "part[1",
            "msg[1]/part[1]",
            "mail/part[1]",
            "part[+1]",
            "part[99999999999]",
            " part[1]",
            "/",
        ] {
            assert_eq!(parse_location(bad), None, "{bad}");
        }
    }

    #[test]
    fn quoted_printable_never_starts_a_line_with_a_dash() {
        let mut out = Vec::new();
        let long = format!("{}--boundary", "x".repeat(74));
        qp_line(long.as_bytes(), b"\n", &mut out);
        for l in out.split(|&c| c == b'\n') {
            assert!(!l.starts_with(b"-"), "{}", String::from_utf8_lossy(&out));
            assert!(l.len() <= 76);
        }
        assert_eq!(crate::codec::quoted_printable(&out), long.as_bytes());
        let mut out = Vec::new();
        qp_line("--b café = ".as_bytes(), b"\r\n", &mut out);
        assert_eq!(out, b"=2D-b caf=C3=A9 =3D=20");
    }

    #[test]
    fn notice_chooses_7bit_for_short_ascii_lines() {
        let mut out = Vec::new();
        notice_part("one\r\ntwo\n\n", b"\r\n", &mut out);
        assert_eq!(
            out,
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\nContent-Disposition: inline\r\n\r\none\r\ntwo"
        );
        let mut out = Vec::new();
        notice_part("x\n--b--", b"\n", &mut out);
        assert!(out.ends_with(b"quoted-printable\nContent-Disposition: inline\n\nx\n=2D-b--"));
    }
}
