//! The MIME reader: one linear pass over the message with a stack of open
//! multiparts. Each line is looked at once; a line `--boundary` or
//! `--boundary--` is matched against all open boundaries at once through a
//! hash map, so nesting does not make it quadratic, and nothing recurses.
//! Every leaf part is handed to the walk as soon as its end is found.
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
    /// Its declared type and where its body starts (to hand over the body if
    /// no delimiter is ever found).
    declared: String,
    body_start: usize,
}

/// A boundary line: which frame, and whether it closes it.
struct BoundaryHit {
    line_start: usize,
    next: usize,
    frame: usize,
    close: bool,
}

struct Parser<'d, 'e, 'w, 'o, 'v> {
    data: &'d [u8],
    ex: &'e mut Extractor<'w, 'o, 'v>,
    frames: Vec<Frame>,
    index: HashMap<Vec<u8>, usize>,
    nest_limit: usize,
    nest_reported: bool,
    stop: bool,
}

/// Splits a message into its leaf parts (see the module doc); never panics;
/// time and memory linear in the input (plus one decoded part at a time).
pub(crate) fn extract(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let nest_limit = (ex.budget().max_depth as usize).clamp(1, MAX_MULTIPART_NESTING);
    let mut p = Parser {
        data,
        ex,
        frames: Vec::new(),
        index: HashMap::new(),
        nest_limit,
        nest_reported: false,
        stop: false,
    };
    p.run();
}

fn segment(number: &[u32]) -> String {
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
fn body_end(data: &[u8], body_start: usize, line_start: usize) -> usize {
    let mut e = line_start;
    if e > body_start && data.get(e - 1) == Some(&b'\n') {
        e -= 1;
        if e > body_start && data.get(e - 1) == Some(&b'\r') {
            e -= 1;
        }
    }
    e.max(body_start)
}

impl Parser<'_, '_, '_, '_, '_> {
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
            let number = if f.number.is_empty() {
                vec![1]
            } else {
                f.number
            };
            let meta = ChildMeta {
                segment: segment(&number),
                declared_type: Some(f.declared),
                ..Default::default()
            };
            if !body.trim_ascii().is_empty() {
                self.hand_over(meta, Cow::Borrowed(body));
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
            let continuation = line[0] == b' ' || line[0] == b'\t';
            if (first && continuation) || (!continuation && !header::is_field_start(line)) {
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
                    let at = self.frames.len();
                    let shadowed = self.index.insert(boundary.clone(), at);
                    self.frames.push(Frame {
                        boundary,
                        shadowed,
                        number,
                        children: 0,
                        digest: sub == "digest",
                        declared,
                        body_start,
                    });
                    return self.seek(body_start);
                }
                if !self.nest_reported {
                    self.nest_reported = true;
                    let seg = segment(&number);
                    let detail = format!(
                        "multiparts nested deeper than {} levels; the inner one is scanned as one part",
                        self.nest_limit
                    );
                    if self
                        .ex
                        .limit(crate::Limit::MaxRecursion, Some(&seg), &detail)
                        == Flow::Stop
                    {
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
        let number = if number.is_empty() { vec![1] } else { number };
        let body = self.data.get(body_start..end).unwrap_or_default();
        self.leaf(&number, &fields, declared, body);
        hit
    }

    /// Decodes one leaf part and hands it over.
    fn leaf(&mut self, number: &[u32], fields: &Fields, declared: String, body: &[u8]) {
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
            return;
        }
        let name = fields
            .disposition
            .as_deref()
            .and_then(|d| header::param(d, "filename"))
            .or_else(|| {
                fields
                    .content_type
                    .as_deref()
                    .and_then(|c| header::param(c, "name"))
            })
            .or(uu_name)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let mut seg = segment(number);
        if let Some(n) = &name {
            seg.push('/');
            seg.push_str(n);
        }
        let text = if declared.starts_with("text/") && self.ex.wants_text() {
            let cs = fields
                .content_type
                .as_deref()
                .and_then(|c| header::param(c, "charset"));
            Some(decode_charset(&bytes, cs.as_deref()))
        } else {
            None
        };
        let is_message = matches!(declared.as_str(), "message/rfc822" | "message/global");
        let meta = ChildMeta {
            segment: seg,
            name,
            declared_type: Some(declared),
            text,
            kind: is_message.then_some(crate::Kind::Mail),
        };
        self.hand_over(meta, bytes);
    }

    fn hand_over(&mut self, meta: ChildMeta, bytes: Cow<'_, [u8]>) {
        let flow = match bytes {
            Cow::Borrowed(b) => self.ex.child(meta, b),
            Cow::Owned(v) => self.ex.child_owned(meta, v),
        };
        if flow == Flow::Stop || self.ex.done() {
            self.stop = true;
        }
    }
}
