//! The MIME reader: one linear pass over the message with a stack of open
//! multiparts. Each line is looked at once; a line `--boundary` or
//! `--boundary--` is matched against all open boundaries at once through a
//! hash map, so nesting does not make it quadratic, and nothing recurses.
//! Every leaf part is handed to the walk as soon as its end is found.
//!
//! The splitter reports to a [`Sink`]: the walk's sink decodes each leaf and
//! hands it to the [`Extractor`]; the rewrite's (`crate::rewrite`) records where
//! the entities it was asked about lie, so both number parts identically.
//!
//! Why not mail-parser's structure: it recurses into encoded attached messages
//! only 3 levels deep, flattens unencoded ones into the parent, and mis-splits
//! some malformed input. Its charset tables are used for text parts.

use super::header::{self, FieldCollector, Fields};
use super::uu;
use crate::codec::{base64_lenient, decode_charset, quoted_printable, Lines};
use crate::{ChildMeta, Extractor, Flow};
use std::borrow::Cow;
use std::collections::HashMap;

/// Multiparts nested deeper than this (or than the budget's `max_depth`, if
/// lower) inside one message are not split further: the inner multipart is
/// handed over as one part, and `Heuristics.Limits.Exceeded.MaxRecursion` is reported.
pub(crate) const MAX_MULTIPART_NESTING: usize = 64;

/// One open multipart.
struct Frame {
    boundary: Vec<u8>,
    /// The index map's previous entry for the same boundary (an inner part reusing it).
    shadowed: Option<usize>,
    /// IMAP section number of the multipart itself (empty at the top).
    number: Vec<u32>,
    children: u32,
    digest: bool,
    /// Its declared type, header fields, and where the entity and its body
    /// start (to hand over the body if no delimiter is ever found).
    declared: String,
    fields: Fields,
    start: usize,
    body_start: usize,
}

/// A boundary line: which frame, and whether it closes it.
struct BoundaryHit {
    line_start: usize,
    next: usize,
    frame: usize,
    close: bool,
}

/// One entity the splitter found, as a [`Sink`] sees it.
pub(crate) struct Entity<'a> {
    /// IMAP section number; empty for the message itself.
    pub number: &'a [u32],
    /// Where its first header line starts (just after the boundary line).
    pub start: usize,
    /// Where its body starts: after the blank line, or at the first line that
    /// is not a header field.
    pub body_start: usize,
    /// Where its body ends: before the line break that belongs to the next
    /// boundary line, or the end of the input.
    pub end: usize,
    pub fields: &'a Fields,
    /// `type/subtype` from Content-Type, lowercased, or the default
    /// (`text/plain`; `message/rfc822` inside a `multipart/digest`).
    pub declared: &'a str,
}

/// Receives what the splitter finds, in input order.
pub(crate) trait Sink {
    /// A leaf part; `body` is its raw (still transfer-encoded) body.
    fn leaf(&mut self, e: &Entity<'_>, body: &[u8]) -> Flow;
    /// A multipart in which no boundary line of its own was ever found: its
    /// body (raw) stands for the one part it holds.
    fn undivided(&mut self, e: &Entity<'_>, body: &[u8]) -> Flow;
    /// A multipart was opened; its parts follow (`end` is unknown yet: it is
    /// `body_start` here).
    fn multipart(&mut self, e: &Entity<'_>) {
        let _ = e;
    }
    /// Multiparts nest deeper than `limit` at `number` (reported once).
    fn too_deep(&mut self, number: &[u32], limit: usize) -> Flow;
}

struct Parser<'d, S> {
    data: &'d [u8],
    sink: S,
    frames: Vec<Frame>,
    index: HashMap<Vec<u8>, usize>,
    nest_limit: usize,
    nest_reported: bool,
    stop: bool,
}

/// Splits a message into its leaf parts (see the module doc); never panics;
/// time and memory linear in the input (plus one decoded part at a time).
pub(crate) fn extract(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let nest_limit = nest_limit(ex.budget().max_depth);
    split(data, nest_limit, WalkSink { ex });
}

/// How deep multiparts are split for a budget's `max_depth`.
pub(crate) fn nest_limit(max_depth: u32) -> usize {
    (max_depth as usize).clamp(1, MAX_MULTIPART_NESTING)
}

/// Runs the splitter over `data`, reporting to `sink`. Never panics; linear.
pub(crate) fn split<S: Sink>(data: &[u8], nest_limit: usize, sink: S) -> S {
    let mut p = Parser {
        data,
        sink,
        frames: Vec::new(),
        index: HashMap::new(),
        nest_limit,
        nest_reported: false,
        stop: false,
    };
    p.run();
    p.sink
}

/// What one header-block line is, by the same rules for every entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderLine {
    /// An empty line: the body starts after it.
    Blank,
    /// `Name: value`.
    Field,
    /// A folded continuation of the field before.
    Continuation,
    /// Not a header line: the body starts at this line.
    Body,
}

/// Classifies `line` (without its line end); `first`: no field was seen yet
/// in this entity.
pub(crate) fn header_line(line: &[u8], first: bool) -> HeaderLine {
    let Some(&c) = line.first() else {
        return HeaderLine::Blank;
    };
    let continuation = c == b' ' || c == b'\t';
    if continuation {
        if first {
            HeaderLine::Body
        } else {
            HeaderLine::Continuation
        }
    } else if header::is_field_start(line) {
        HeaderLine::Field
    } else {
        HeaderLine::Body
    }
}

/// The declared file name of a part: Content-Disposition `filename`, else
/// Content-Type `name`, decoded and trimmed.
pub(crate) fn declared_name(fields: &Fields) -> Option<String> {
    trimmed_name(declared_name_raw(fields))
}

/// Content-Disposition `filename`, else Content-Type `name`, decoded.
fn declared_name_raw(fields: &Fields) -> Option<String> {
    fields
        .disposition
        .as_deref()
        .and_then(|d| header::param(d, "filename"))
        .or_else(|| {
            fields
                .content_type
                .as_deref()
                .and_then(|c| header::param(c, "name"))
        })
}

fn trimmed_name(n: Option<String>) -> Option<String> {
    n.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

pub(crate) fn segment(number: &[u32]) -> String {
    let mut s = String::from("part[");
    for (i, n) in number.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&n.to_string());
    }
    s.push(']');
    s
}

/// The end of a body that is followed by a boundary line at `line_start`: the
/// line break before the boundary belongs to the boundary.
pub(crate) fn body_end(data: &[u8], body_start: usize, line_start: usize) -> usize {
    let mut e = line_start;
    if e > body_start && data.get(e - 1) == Some(&b'\n') {
        e -= 1;
        if e > body_start && data.get(e - 1) == Some(&b'\r') {
            e -= 1;
        }
    }
    e.max(body_start)
}

impl<S: Sink> Parser<'_, S> {
    fn run(&mut self) {
        // The next entity to parse: (start, section number).
        let mut entity: Option<(usize, Vec<u32>)> = Some((0, Vec::new()));
        let mut pos = 0usize;
        while !self.stop {
            let hit = if let Some((start, number)) = entity.take() {
                self.entity(start, number)
            } else {
                self.seek(pos)
            };
            let Some(hit) = hit else { break };
            pos = hit.next;
            // Frames inside the one this boundary belongs to end here.
            while self.frames.len() > hit.frame + 1 {
                self.pop(hit.line_start);
            }
            if hit.close {
                self.pop_closed();
            } else if let Some(f) = self.frames.get_mut(hit.frame) {
                f.children = f.children.saturating_add(1);
                let mut n = f.number.clone();
                n.push(f.children);
                entity = Some((hit.next, n));
            }
        }
        while !self.stop && !self.frames.is_empty() {
            self.pop(self.data.len());
        }
    }

    /// The frame at the top is closed by its `--boundary--` line.
    fn pop_closed(&mut self) {
        if let Some(f) = self.frames.pop() {
            self.unindex(&f, self.frames.len());
        }
    }

    /// The frame at the top ends without its closing line, at `end`. If no part
    /// of it was ever found, its body is handed over as one part.
    fn pop(&mut self, end: usize) {
        let Some(f) = self.frames.pop() else { return };
        self.unindex(&f, self.frames.len());
        if f.children == 0 {
            let e = body_end(self.data, f.body_start, end);
            let body = self.data.get(f.body_start..e).unwrap_or_default();
            let entity = Entity {
                number: &f.number,
                start: f.start,
                body_start: f.body_start,
                end: e,
                fields: &f.fields,
                declared: &f.declared,
            };
            if self.sink.undivided(&entity, body) == Flow::Stop {
                self.stop = true;
            }
        }
    }

    fn unindex(&mut self, f: &Frame, at: usize) {
        if self.index.get(&f.boundary) == Some(&at) {
            match f.shadowed {
                Some(prev) => {
                    self.index.insert(f.boundary.clone(), prev);
                }
                None => {
                    self.index.remove(&f.boundary);
                }
            }
        }
    }

    /// Is the line `[s, e)` a boundary of an open multipart?
    fn boundary_at(&self, s: usize, e: usize) -> Option<(usize, bool)> {
        if self.index.is_empty() {
            return None;
        }
        let line = self.data.get(s..e)?;
        let rest = line.strip_prefix(b"--")?.trim_ascii_end();
        if let Some(&k) = self.index.get(rest) {
            return Some((k, false));
        }
        let inner = rest.strip_suffix(b"--")?;
        self.index.get(inner).map(|&k| (k, true))
    }

    /// Skips lines (a preamble or epilogue) up to the next boundary line.
    fn seek(&self, from: usize) -> Option<BoundaryHit> {
        if self.index.is_empty() {
            return None;
        }
        for (s, e, next) in Lines::new(self.data, from) {
            if let Some((frame, close)) = self.boundary_at(s, e) {
                return Some(BoundaryHit {
                    line_start: s,
                    next,
                    frame,
                    close,
                });
            }
        }
        None
    }

    /// Parses the entity at `start`: a multipart opens a frame; a leaf is read
    /// to the next boundary and handed over. Returns that boundary.
    fn entity(&mut self, start: usize, number: Vec<u32>) -> Option<BoundaryHit> {
        let mut fc = FieldCollector::new();
        let mut body_start = self.data.len();
        let mut first = true;
        for (s, e, next) in Lines::new(self.data, start) {
            let line = self.data.get(s..e).unwrap_or_default();
            if line.is_empty() {
                body_start = next;
                break;
            }
            if let Some((frame, close)) = self.boundary_at(s, e) {
                // A part with headers only.
                return Some(BoundaryHit {
                    line_start: s,
                    next,
                    frame,
                    close,
                });
            }
            if header_line(line, first) == HeaderLine::Body {
                // No (more) header fields: the body starts here.
                body_start = s;
                break;
            }
            first = false;
            fc.line(line);
        }
        let fields = fc.fields;
        let parent_digest = self.frames.last().is_some_and(|f| f.digest);
        let declared = fields
            .content_type
            .as_deref()
            .and_then(header::mime_type)
            .unwrap_or_else(|| {
                if parent_digest {
                    "message/rfc822".into()
                } else {
                    "text/plain".into()
                }
            });
        if let Some(sub) = declared.strip_prefix("multipart/") {
            let boundary = fields
                .content_type
                .as_deref()
                .and_then(|v| header::param(v, "boundary"))
                .map(|b| b.trim_end().as_bytes().to_vec())
                .filter(|b| !b.is_empty());
            if let Some(boundary) = boundary {
                if self.frames.len() < self.nest_limit {
                    self.sink.multipart(&Entity {
                        number: &number,
                        start,
                        body_start,
                        end: body_start,
                        fields: &fields,
                        declared: &declared,
                    });
                    let at = self.frames.len();
                    let shadowed = self.index.insert(boundary.clone(), at);
                    let digest = sub == "digest";
                    self.frames.push(Frame {
                        boundary,
                        shadowed,
                        number,
                        children: 0,
                        digest,
                        declared,
                        fields,
                        start,
                        body_start,
                    });
                    return self.seek(body_start);
                }
                if !self.nest_reported {
                    self.nest_reported = true;
                    if self.sink.too_deep(&number, self.nest_limit) == Flow::Stop {
                        self.stop = true;
                        return None;
                    }
                }
            }
        }
        // A leaf: its body runs to the next boundary of an open multipart.
        let mut hit = None;
        let mut end = self.data.len();
        if !self.index.is_empty() {
            for (s, e, next) in Lines::new(self.data, body_start) {
                if let Some((frame, close)) = self.boundary_at(s, e) {
                    end = body_end(self.data, body_start, s);
                    hit = Some(BoundaryHit {
                        line_start: s,
                        next,
                        frame,
                        close,
                    });
                    break;
                }
            }
        }
        let body = self.data.get(body_start..end).unwrap_or_default();
        let entity = Entity {
            number: &number,
            start,
            body_start,
            end,
            fields: &fields,
            declared: &declared,
        };
        if self.sink.leaf(&entity, body) == Flow::Stop {
            self.stop = true;
        }
        hit
    }
}

/// The walk's sink: decodes each part and hands it to the [`Extractor`].
struct WalkSink<'e, 'w, 'o, 'v> {
    ex: &'e mut Extractor<'w, 'o, 'v>,
}

/// The section number a part is located by: the message's own body is `part[1]`.
fn part_number(number: &[u32]) -> &[u32] {
    if number.is_empty() {
        &[1]
    } else {
        number
    }
}

impl Sink for WalkSink<'_, '_, '_, '_> {
    /// Decodes one leaf part and hands it over.
    fn leaf(&mut self, e: &Entity<'_>, body: &[u8]) -> Flow {
        let fields = e.fields;
        let encoding = fields
            .encoding
            .as_deref()
            .map(header::token)
            .unwrap_or_default();
        let mut uu_name = None;
        let bytes: Cow<'_, [u8]> = match encoding.as_str() {
            "base64" => Cow::Owned(base64_lenient(body).0),
            "quoted-printable" => Cow::Owned(quoted_printable(body)),
            "x-uuencode" | "uuencode" | "x-uue" | "uue" => {
                let block = uu::first_block(body);
                uu_name = block.name;
                Cow::Owned(block.data)
            }
            // 7bit, 8bit, binary, and unknown encodings as 7bit.
            _ => Cow::Borrowed(body),
        };
        if bytes.is_empty() {
            return Flow::Continue;
        }
        let name = trimmed_name(declared_name_raw(fields).or(uu_name));
        let mut seg = segment(part_number(e.number));
        if let Some(n) = &name {
            seg.push('/');
            seg.push_str(n);
        }
        let text = if e.declared.starts_with("text/") && self.ex.wants_text() {
            let cs = fields
                .content_type
                .as_deref()
                .and_then(|c| header::param(c, "charset"));
            Some(decode_charset(&bytes, cs.as_deref()))
        } else {
            None
        };
        let is_message = matches!(e.declared, "message/rfc822" | "message/global");
        let meta = ChildMeta {
            segment: seg,
            name,
            declared_type: Some(e.declared.to_string()),
            text,
            kind: is_message.then_some(crate::Kind::Mail),
        };
        self.hand_over(meta, bytes)
    }

    /// The raw body, unless it is blank.
    fn undivided(&mut self, e: &Entity<'_>, body: &[u8]) -> Flow {
        if body.trim_ascii().is_empty() {
            return Flow::Continue;
        }
        let meta = ChildMeta {
            segment: segment(part_number(e.number)),
            declared_type: Some(e.declared.to_string()),
            ..Default::default()
        };
        self.hand_over(meta, Cow::Borrowed(body))
    }

    fn too_deep(&mut self, number: &[u32], limit: usize) -> Flow {
        let seg = segment(number);
        let detail = format!(
            "multiparts nested deeper than {limit} levels; the inner one is scanned as one part"
        );
        self.ex
            .limit(crate::Limit::MaxRecursion, Some(&seg), &detail)
    }
}

impl WalkSink<'_, '_, '_, '_> {
    fn hand_over(&mut self, meta: ChildMeta, bytes: Cow<'_, [u8]>) -> Flow {
        let flow = match bytes {
            Cow::Borrowed(b) => self.ex.child(meta, b),
            Cow::Owned(v) => self.ex.child_owned(meta, v),
        };
        if flow == Flow::Stop || self.ex.done() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}
