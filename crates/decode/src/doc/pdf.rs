//! PDF: a tolerant parser of our own (no trust in the xref), stream filters,
//! object streams, JavaScript, embedded files, actions, links, and the
//! standard security handler with the empty user password.

use super::pdfcrypt::{Crypt, Method, Params};
use crate::{ChildMeta, Extractor, Flow, Link};
use std::collections::HashMap;
use std::io::Read;

/// Indirect objects read from one document (regular and in object streams).
const MAX_OBJECTS: usize = 200_000;
/// Nesting of arrays and dictionaries.
const MAX_NESTING: usize = 64;
/// Values parsed in one document (bounds memory at a few dozen bytes each).
const MAX_VALUES: usize = 2_000_000;
/// Filters in one `/Filter` chain.
const MAX_FILTERS: usize = 8;
/// Indirect references followed from one value.
const MAX_REF_HOPS: usize = 16;
/// Object streams opened per document.
const MAX_OBJSTMS: usize = 10_000;
/// Nodes visited in a name tree or `/Next` action chain.
const MAX_TREE_NODES: usize = 10_000;
/// Links reported per document.
const MAX_LINKS: usize = 10_000;
/// Decoded streams kept for reuse, and the largest one kept.
const MAX_CACHED: usize = 256;
const MAX_CACHED_LEN: usize = 64 << 10;
/// Longest string or name (longer ones are cut).
const MAX_TOKEN: usize = 64 << 20;

/// A PDF value.
#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Vec<(Vec<u8>, Obj)>),
    Ref(u32, u16),
}

impl Obj {
    fn get(&self, key: &[u8]) -> Option<&Obj> {
        match self {
            Obj::Dict(d) => d.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(n) => Some(n),
            _ => None,
        }
    }
    fn int(&self) -> Option<i64> {
        match self {
            Obj::Int(i) => Some(*i),
            Obj::Real(r) if r.is_finite() => Some(*r as i64),
            _ => None,
        }
    }
}

/// One indirect object.
struct IndObj {
    gen: u16,
    value: Obj,
    /// The raw stream bytes (`start..end` in the input).
    stream: Option<(usize, usize)>,
    /// Read from inside an object stream (its strings are not encrypted separately).
    in_objstm: bool,
}

struct Parser<'a> {
    d: &'a [u8],
    pos: usize,
    values: usize,
}

fn is_ws(c: u8) -> bool {
    matches!(c, 0 | 9 | 10 | 12 | 13 | 32)
}
fn is_delim(c: u8) -> bool {
    matches!(
        c,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}
fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl<'a> Parser<'a> {
    fn new(d: &'a [u8], pos: usize) -> Self {
        Parser { d, pos, values: 0 }
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.d.get(self.pos) {
            if is_ws(c) {
                self.pos += 1;
            } else if c == b'%' {
                while let Some(&c) = self.d.get(self.pos) {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// A bare word (keyword or number) at the cursor, without moving.
    fn word_at(&self, pos: usize) -> &'a [u8] {
        let pos = pos.min(self.d.len());
        let mut e = pos;
        while e < self.d.len() && !is_ws(self.d[e]) && !is_delim(self.d[e]) {
            e += 1;
        }
        &self.d[pos..e]
    }

    /// Parses one value. `None` at end of input or at something that is not a
    /// value (a keyword like `endobj`, a stray delimiter): the cursor is left there.
    fn value(&mut self, depth: usize) -> Option<Obj> {
        self.skip_ws();
        self.values += 1;
        if self.values > MAX_VALUES || depth > MAX_NESTING {
            return None;
        }
        let c = *self.d.get(self.pos)?;
        match c {
            b'/' => {
                self.pos += 1;
                Some(Obj::Name(self.name_body()))
            }
            b'(' => {
                self.pos += 1;
                Some(Obj::Str(self.literal()))
            }
            b'<' if self.d.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    match self.d.get(self.pos) {
                        None => break,
                        Some(b'>') => {
                            self.pos += 1;
                            if self.d.get(self.pos) == Some(&b'>') {
                                self.pos += 1;
                            }
                            break;
                        }
                        Some(b'/') => {
                            self.pos += 1;
                            let k = self.name_body();
                            let v = self.value(depth + 1).unwrap_or(Obj::Null);
                            entries.push((k, v));
                        }
                        Some(_) => {
                            // Junk in a dictionary: skip a value or a byte.
                            let before = self.pos;
                            if self.value(depth + 1).is_none() {
                                if self.word_at(before) == b"endobj"
                                    || self.word_at(before) == b"stream"
                                {
                                    break;
                                }
                                self.pos = before + 1;
                            }
                        }
                    }
                    if self.values > MAX_VALUES {
                        break;
                    }
                }
                Some(Obj::Dict(entries))
            }
            b'<' => {
                self.pos += 1;
                Some(Obj::Str(self.hex()))
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.d.get(self.pos) {
                        None => break,
                        Some(b']') => {
                            self.pos += 1;
                            break;
                        }
                        Some(_) => {
                            let before = self.pos;
                            match self.value(depth + 1) {
                                Some(v) => items.push(v),
                                None => {
                                    let w = self.word_at(before);
                                    if w == b"endobj" || w == b"stream" || self.values > MAX_VALUES
                                    {
                                        break;
                                    }
                                    self.pos = before + 1;
                                }
                            }
                        }
                    }
                }
                Some(Obj::Array(items))
            }
            _ => {
                let w = self.word_at(self.pos);
                if w.is_empty() {
                    return None;
                }
                match w {
                    b"true" => {
                        self.pos += 4;
                        Some(Obj::Bool(true))
                    }
                    b"false" => {
                        self.pos += 5;
                        Some(Obj::Bool(false))
                    }
                    b"null" => {
                        self.pos += 4;
                        Some(Obj::Null)
                    }
                    _ => {
                        let s = std::str::from_utf8(w).ok()?;
                        if let Ok(i) = s.parse::<i64>() {
                            self.pos += w.len();
                            // `N G R`?
                            let save = self.pos;
                            self.skip_ws();
                            let g = self.word_at(self.pos);
                            if !g.is_empty() && g.iter().all(u8::is_ascii_digit) {
                                let gp = self.pos + g.len();
                                let mut p2 = Parser::new(self.d, gp);
                                p2.skip_ws();
                                if self.d.get(p2.pos) == Some(&b'R')
                                    && self
                                        .d
                                        .get(p2.pos + 1)
                                        .is_none_or(|&c| is_ws(c) || is_delim(c))
                                {
                                    if let (Ok(n), Ok(gen)) = (
                                        u32::try_from(i),
                                        std::str::from_utf8(g).unwrap_or("x").parse::<u16>(),
                                    ) {
                                        self.pos = p2.pos + 1;
                                        return Some(Obj::Ref(n, gen));
                                    }
                                }
                            }
                            self.pos = save;
                            Some(Obj::Int(i))
                        } else if let Ok(r) = s.parse::<f64>() {
                            self.pos += w.len();
                            Some(Obj::Real(r))
                        } else {
                            None
                        }
                    }
                }
            }
        }
    }

    /// A name after its `/`, with `#xx` escapes decoded.
    fn name_body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(&c) = self.d.get(self.pos) {
            if is_ws(c) || is_delim(c) {
                break;
            }
            self.pos += 1;
            if c == b'#' {
                if let (Some(h), Some(l)) = (
                    self.d.get(self.pos).copied().and_then(hexval),
                    self.d.get(self.pos + 1).copied().and_then(hexval),
                ) {
                    self.pos += 2;
                    out.push(h << 4 | l);
                    continue;
                }
            }
            if out.len() < MAX_TOKEN {
                out.push(c);
            }
        }
        out
    }

    /// A literal string after its `(`: nesting, escapes, octal, line continuation.
    fn literal(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        while let Some(&c) = self.d.get(self.pos) {
            self.pos += 1;
            let b = match c {
                b'(' => {
                    depth += 1;
                    b'('
                }
                b')' => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                    b')'
                }
                b'\\' => {
                    let Some(&e) = self.d.get(self.pos) else {
                        break;
                    };
                    self.pos += 1;
                    match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'f' => 12,
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.d.get(self.pos) {
                                    Some(&o @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(o - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            v as u8
                        }
                        b'\r' => {
                            if self.d.get(self.pos) == Some(&b'\n') {
                                self.pos += 1;
                            }
                            continue;
                        }
                        b'\n' => continue,
                        other => other,
                    }
                }
                other => other,
            };
            if out.len() < MAX_TOKEN {
                out.push(b);
            }
        }
        out
    }

    /// A hex string after its `<`.
    fn hex(&mut self) -> Vec<u8> {
        let rest = self.d.get(self.pos..).unwrap_or_default();
        let end = memchr::memchr(b'>', rest).map_or(rest.len(), |e| e + 1);
        self.pos += end;
        ascii_hex(&rest[..end])
    }
}

/// After a dictionary: `stream` + EOL → the start of the stream data.
fn stream_start(d: &[u8], pos: usize) -> Option<usize> {
    let mut p = Parser::new(d, pos);
    p.skip_ws();
    if !d.get(p.pos..)?.starts_with(b"stream") {
        return None;
    }
    let mut s = p.pos + 6;
    if d.get(s) == Some(&b'\r') {
        s += 1;
    }
    if d.get(s) == Some(&b'\n') {
        s += 1;
    }
    Some(s)
}

/// Does `endstream` follow `end` (after optional whitespace)?
fn endstream_at(d: &[u8], end: usize) -> bool {
    let mut p = end;
    while p < d.len() && p < end + 4 && is_ws(d[p]) {
        p += 1;
    }
    d.get(p..).is_some_and(|r| r.starts_with(b"endstream"))
}

/// The document, parsed.
struct Doc<'a> {
    d: &'a [u8],
    objs: HashMap<u32, IndObj>,
    /// Object numbers in file order (the order children are handed over).
    order: Vec<u32>,
    trailers: Vec<Obj>,
    crypt: Option<Crypt>,
    values: usize,
}

/// Finds every `N G obj` (in file order; a later definition replaces an
/// earlier one, as incremental updates do) and every `trailer` dictionary.
/// Stream data is skipped over, so the scan is linear.
fn scan(d: &[u8]) -> Doc<'_> {
    let mut doc = Doc {
        d,
        objs: HashMap::new(),
        order: Vec::new(),
        trailers: Vec::new(),
        crypt: None,
        values: 0,
    };
    let obj_f = memchr::memmem::Finder::new(b"obj");
    let trailer_f = memchr::memmem::Finder::new(b"trailer");
    let mut pos = 0usize;
    let mut next_trailer = trailer_f.find(d);
    while let Some(i) = obj_f.find(&d[pos..]) {
        let at = pos + i;
        pos = at + 3;
        // Trailers before this point.
        while let Some(t) = next_trailer {
            if t >= at {
                break;
            }
            let mut p = Parser::new(d, t + 7);
            if let Some(v @ Obj::Dict(_)) = p.value(0) {
                doc.trailers.push(v);
            }
            doc.values += p.values;
            next_trailer = trailer_f.find(&d[t + 7..]).map(|x| x + t + 7);
        }
        if d.get(pos).is_some_and(|&c| !is_ws(c) && !is_delim(c)) {
            continue; // `objects`, `endobj` is excluded below
        }
        let Some((num, gen)) = header_before(d, at) else {
            continue;
        };
        if doc.objs.len() >= MAX_OBJECTS || doc.values > MAX_VALUES {
            break;
        }
        let mut p = Parser::new(d, pos);
        p.values = doc.values;
        let value = p.value(0).unwrap_or(Obj::Null);
        doc.values = p.values;
        let mut stream = None;
        if matches!(value, Obj::Dict(_)) {
            if let Some(s) = stream_start(d, p.pos) {
                let direct = value.get(b"Length").and_then(Obj::int);
                let end = direct
                    .and_then(|l| usize::try_from(l).ok())
                    .and_then(|l| s.checked_add(l))
                    .filter(|&e| e <= d.len() && endstream_at(d, e))
                    .or_else(|| {
                        memchr::memmem::find(&d[s..], b"endstream").map(|x| {
                            let mut e = s + x;
                            // The EOL before `endstream` is not data.
                            if e > s && d[e - 1] == b'\n' {
                                e -= 1;
                            }
                            if e > s && d[e - 1] == b'\r' {
                                e -= 1;
                            }
                            e
                        })
                    })
                    .unwrap_or(d.len());
                stream = Some((s, end));
                p.pos = end;
            }
        }
        pos = pos.max(p.pos);
        if doc
            .objs
            .insert(
                num,
                IndObj {
                    gen,
                    value,
                    stream,
                    in_objstm: false,
                },
            )
            .is_none()
        {
            doc.order.push(num);
        }
    }
    while let Some(t) = next_trailer {
        let mut p = Parser::new(d, t + 7);
        if let Some(v @ Obj::Dict(_)) = p.value(0) {
            doc.trailers.push(v);
        }
        next_trailer = trailer_f.find(&d[t + 7..]).map(|x| x + t + 7);
    }
    doc
}

/// `N G` right before `obj` at `at` (with whitespace between), excluding `endobj`.
fn header_before(d: &[u8], at: usize) -> Option<(u32, u16)> {
    let mut p = at;
    let back_ws = |p: &mut usize| {
        let s = *p;
        while *p > 0 && is_ws(d[*p - 1]) && s - *p < 64 {
            *p -= 1;
        }
        s != *p
    };
    let back_digits = |p: &mut usize| {
        let e = *p;
        while *p > 0 && d[*p - 1].is_ascii_digit() && e - *p < 10 {
            *p -= 1;
        }
        std::str::from_utf8(&d[*p..e])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
    };
    if !back_ws(&mut p) {
        return None;
    }
    let gen = back_digits(&mut p)?;
    if !back_ws(&mut p) {
        return None;
    }
    let num = back_digits(&mut p)?;
    if p > 0 && !is_ws(d[p - 1]) && !is_delim(d[p - 1]) {
        return None;
    }
    Some((u32::try_from(num).ok()?, u16::try_from(gen).ok()?))
}

impl Doc<'_> {
    fn resolve<'b>(&'b self, mut v: &'b Obj) -> &'b Obj {
        for _ in 0..MAX_REF_HOPS {
            match v {
                Obj::Ref(n, _) => match self.objs.get(n) {
                    Some(o) => v = &o.value,
                    None => return &Obj::Null,
                },
                _ => return v,
            }
        }
        &Obj::Null
    }

    /// Stream `/Length` when indirect: the raw range, corrected when the
    /// referenced length is confirmed by `endstream`.
    fn fix_lengths(&mut self) {
        let d = self.d;
        let mut fixes = Vec::new();
        for (&n, o) in &self.objs {
            if let (Some((s, _)), Some(Obj::Ref(..))) = (o.stream, o.value.get(b"Length")) {
                let l = o
                    .value
                    .get(b"Length")
                    .map(|v| self.resolve(v))
                    .and_then(Obj::int);
                if let Some(e) = l
                    .and_then(|l| usize::try_from(l).ok())
                    .and_then(|l| s.checked_add(l))
                    .filter(|&e| e <= d.len() && endstream_at(d, e))
                {
                    fixes.push((n, s, e));
                }
            }
        }
        for (n, s, e) in fixes {
            if let Some(o) = self.objs.get_mut(&n) {
                o.stream = Some((s, e));
            }
        }
    }
}

/// Decrypts every string inside `v` (object `num gen`).
fn decrypt_strings(c: &Crypt, num: u32, gen: u16, v: &mut Obj) {
    match v {
        Obj::Str(s) => *s = c.decrypt(num, gen, s, false),
        Obj::Array(a) => a.iter_mut().for_each(|x| decrypt_strings(c, num, gen, x)),
        Obj::Dict(d) => d
            .iter_mut()
            .for_each(|(_, x)| decrypt_strings(c, num, gen, x)),
        _ => {}
    }
}

/// Opens a PDF. Hands over each decoded non-image stream (`obj[N]`),
/// JavaScript (`obj[N]/javascript`, text) and embedded files (named by their
/// filespec), reports `/URI` links, `Heuristics.PDF.JavaScript.AutoRun`,
/// `Heuristics.PDF.Launch`, filters it lacks (`Heuristics.Unscannable.PDF`) and
/// encryption it cannot open. Never panics; linear scan; every decoded stream
/// capped by `ex.room()`.
pub(crate) fn pdf(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let mut doc = scan(data);
    doc.fix_lengths();
    if doc.objs.is_empty() {
        ex.broken("Pdf", "no objects found");
        return;
    }
    // XRef streams carry the trailer keys too.
    let xref_dicts: Vec<Obj> = doc
        .order
        .iter()
        .filter_map(|n| doc.objs.get(n))
        .filter(|o| o.value.get(b"Type").and_then(Obj::name) == Some(b"XRef"))
        .map(|o| o.value.clone())
        .collect();
    doc.trailers.extend(xref_dicts);
    let encrypt = doc
        .trailers
        .iter()
        .rev()
        .find_map(|t| t.get(b"Encrypt").cloned());
    let mut encrypt_num = None;
    if let Some(e) = encrypt {
        if let Obj::Ref(n, _) = e {
            encrypt_num = Some(n);
        }
        let ed = doc.resolve(&e).clone();
        let id0 = doc
            .trailers
            .iter()
            .rev()
            .find_map(|t| match t.get(b"ID") {
                Some(Obj::Array(a)) => match a.first() {
                    Some(Obj::Str(s)) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            })
            .unwrap_or_default();
        match open_encryption(&doc, &ed, id0) {
            Ok(c) => doc.crypt = Some(c),
            Err(why) => {
                ex.encrypted("PDF", None, &why);
                return;
            }
        }
    }
    if let Some(c) = doc.crypt.clone() {
        for (&n, o) in doc.objs.iter_mut() {
            if Some(n) == encrypt_num || o.value.get(b"Type").and_then(Obj::name) == Some(b"XRef") {
                continue;
            }
            decrypt_strings(&c, n, o.gen, &mut o.value);
        }
    }
    let mut cache: HashMap<u32, Vec<u8>> = HashMap::new();
    expand_objstms(&mut doc, ex, &mut cache, encrypt_num);
    if ex.done() {
        return;
    }
    analyse(&doc, ex);
    if ex.done() {
        return;
    }
    // Embedded files by their filespec name; JavaScript streams.
    let mut names: HashMap<u32, String> = HashMap::new();
    for o in doc.objs.values() {
        if let Some(Obj::Dict(ef)) = o.value.get(b"EF").map(|v| doc.resolve(v)) {
            let fname = [&b"UF"[..], b"F", b"DOS", b"Unix"]
                .iter()
                .find_map(|k| match o.value.get(k).map(|v| doc.resolve(v)) {
                    Some(Obj::Str(s)) => Some(text_string(s)),
                    _ => None,
                })
                .unwrap_or_else(|| "embedded".into());
            for (_, v) in ef {
                if let Obj::Ref(n, _) = v {
                    names.entry(*n).or_insert_with(|| super::file_name(&fname));
                }
            }
        }
    }
    let order = doc.order.clone();
    for n in order {
        if ex.done() {
            return;
        }
        let Some(o) = doc.objs.get(&n) else { continue };
        if o.stream.is_none() || Some(n) == encrypt_num {
            continue;
        }
        let ty = o.value.get(b"Type").and_then(Obj::name);
        if ty == Some(b"ObjStm") || ty == Some(b"XRef") {
            continue;
        }
        if o.value.get(b"Subtype").and_then(Obj::name) == Some(b"Image") {
            continue;
        }
        let seg = format!("obj[{n}]");
        let Some(bytes) = decode_stream(&doc, n, ex, &seg, &mut cache) else {
            continue;
        };
        let packed = o.stream.map(|(s, e)| (e - s) as u64);
        let meta = match names.get(&n) {
            Some(name) => ChildMeta::named(name.clone()),
            None => ChildMeta::at(seg),
        };
        if ex.child_reader(meta, &mut std::io::Cursor::new(&bytes[..]), packed) == Flow::Stop {
            return;
        }
    }
}

/// The `/Encrypt` dictionary → a decryptor for the empty user password, or
/// why the document stays closed.
fn open_encryption(doc: &Doc<'_>, e: &Obj, id0: Vec<u8>) -> Result<Crypt, String> {
    let filter = e.get(b"Filter").and_then(Obj::name).unwrap_or(b"");
    if filter != b"Standard" {
        return Err(format!(
            "encrypted with the {} security handler",
            String::from_utf8_lossy(filter)
        ));
    }
    let int = |k: &[u8]| e.get(k).map(|v| doc.resolve(v)).and_then(Obj::int);
    let bytes = |k: &[u8]| match e.get(k).map(|v| doc.resolve(v)) {
        Some(Obj::Str(s)) => s.clone(),
        _ => Vec::new(),
    };
    let cfm = |k: &[u8]| -> Option<Method> {
        let name = e.get(k).and_then(Obj::name)?;
        if name == b"Identity" {
            return Some(Method::Identity);
        }
        let cf = doc.resolve(e.get(b"CF")?);
        let f = doc.resolve(cf.get(name)?);
        Some(match f.get(b"CFM").and_then(Obj::name) {
            Some(b"AESV2") => Method::Aes128,
            Some(b"AESV3") => Method::Aes256,
            Some(b"V2") => Method::Rc4,
            _ => Method::Identity,
        })
    };
    let p = Params {
        v: int(b"V").unwrap_or(0),
        r: int(b"R").unwrap_or(0),
        length_bits: int(b"Length").unwrap_or(0),
        o: bytes(b"O"),
        u: bytes(b"U"),
        ue: bytes(b"UE"),
        p: int(b"P").unwrap_or(0),
        id0,
        encrypt_metadata: !matches!(e.get(b"EncryptMetadata"), Some(Obj::Bool(false))),
        stm: cfm(b"StmF"),
        str_: cfm(b"StrF"),
    };
    Crypt::open(&p).ok_or_else(|| {
        format!(
            "encrypted (V{} R{}) with a user password; content not scanned",
            p.v, p.r
        )
    })
}

/// Parses the objects inside every `/Type /ObjStm` stream. An object defined
/// both directly and in an object stream keeps the direct definition.
fn expand_objstms(
    doc: &mut Doc<'_>,
    ex: &mut Extractor<'_, '_, '_>,
    cache: &mut HashMap<u32, Vec<u8>>,
    encrypt_num: Option<u32>,
) {
    let streams: Vec<u32> = doc
        .order
        .iter()
        .copied()
        .filter(|n| {
            doc.objs.get(n).is_some_and(|o| {
                o.stream.is_some() && o.value.get(b"Type").and_then(Obj::name) == Some(b"ObjStm")
            })
        })
        .take(MAX_OBJSTMS)
        .collect();
    for n in streams {
        if ex.done() {
            return;
        }
        let seg = format!("obj[{n}]");
        let Some(bytes) = decode_stream(doc, n, ex, &seg, cache) else {
            continue;
        };
        let Some(o) = doc.objs.get(&n) else { continue };
        let count = o.value.get(b"N").and_then(Obj::int).unwrap_or(0).max(0) as usize;
        let first = o.value.get(b"First").and_then(Obj::int).unwrap_or(0).max(0) as usize;
        let mut p = Parser::new(&bytes, 0);
        let mut pairs = Vec::new();
        for _ in 0..count.min(MAX_OBJECTS) {
            let (Some(Obj::Int(num)), Some(Obj::Int(off))) = (p.value(0), p.value(0)) else {
                break;
            };
            pairs.push((num, off));
        }
        let mut new = Vec::new();
        for (num, off) in pairs {
            let (Ok(num), Ok(off)) = (u32::try_from(num), usize::try_from(off)) else {
                continue;
            };
            if doc.objs.contains_key(&num) || Some(num) == encrypt_num {
                continue;
            }
            let Some(at) = first.checked_add(off).filter(|&a| a < bytes.len()) else {
                continue;
            };
            let mut p = Parser::new(&bytes, at);
            p.values = doc.values;
            let v = p.value(0).unwrap_or(Obj::Null);
            doc.values = p.values;
            new.push((num, v));
            if doc.objs.len() + new.len() >= MAX_OBJECTS || doc.values > MAX_VALUES {
                break;
            }
        }
        for (num, v) in new {
            doc.objs.entry(num).or_insert(IndObj {
                gen: 0,
                value: v,
                stream: None,
                in_objstm: true,
            });
            doc.order.push(num);
        }
    }
}

/// PDF text strings: UTF-16BE with a BOM, UTF-8 with a BOM, else Latin-1.
fn text_string(s: &[u8]) -> String {
    if let Some(b) = s.strip_prefix(b"\xfe\xff") {
        let u: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&u);
    }
    if let Some(b) = s.strip_prefix(b"\xef\xbb\xbf") {
        return String::from_utf8_lossy(b).into_owned();
    }
    s.iter().map(|&c| c as char).collect()
}

/// Filters that only ever hold images: skipped, not reported.
fn is_image_filter(f: &[u8]) -> bool {
    matches!(
        f,
        b"DCTDecode" | b"DCT" | b"JPXDecode" | b"JBIG2Decode" | b"CCITTFaxDecode" | b"CCF"
    )
}

/// Decrypts and decodes stream `n` through its filter chain, each stage capped
/// at `ex.room()` + 1. `None` for images and for filters we lack (reported).
/// Results are cached (object streams and JavaScript reuse them).
fn decode_stream(
    doc: &Doc<'_>,
    n: u32,
    ex: &mut Extractor<'_, '_, '_>,
    seg: &str,
    cache: &mut HashMap<u32, Vec<u8>>,
) -> Option<Vec<u8>> {
    if let Some(v) = cache.get(&n) {
        return Some(v.clone());
    }
    let o = doc.objs.get(&n)?;
    let (s, e) = o.stream?;
    let raw = doc.d.get(s..e)?;
    let max = ex.room().min(usize::MAX as u64 - 1) as usize + 1;
    let mut data = match &doc.crypt {
        Some(c) if !o.in_objstm => c.decrypt(n, o.gen, raw, true),
        _ => raw.to_vec(),
    };
    let filters: Vec<Vec<u8>> = match o.value.get(b"Filter").map(|v| doc.resolve(v)) {
        Some(Obj::Name(f)) => vec![f.clone()],
        Some(Obj::Array(a)) => a
            .iter()
            .filter_map(|v| doc.resolve(v).name().map(<[u8]>::to_vec))
            .collect(),
        _ => Vec::new(),
    };
    let parms: Vec<Obj> = match o
        .value
        .get(b"DecodeParms")
        .or(o.value.get(b"DP"))
        .map(|v| doc.resolve(v))
    {
        Some(Obj::Array(a)) => a.iter().map(|v| doc.resolve(v).clone()).collect(),
        Some(d @ Obj::Dict(_)) => vec![d.clone()],
        _ => Vec::new(),
    };
    if filters.len() > MAX_FILTERS {
        ex.unscannable("PDF", Some(seg), "more than 8 filters in a chain");
        return None;
    }
    for (i, f) in filters.iter().enumerate() {
        if is_image_filter(f) {
            return None;
        }
        let parm = parms.get(i).unwrap_or(&Obj::Null);
        data = match f.as_slice() {
            b"FlateDecode" | b"Fl" => {
                let out = inflate(&data, max);
                predict(out, parm, max)
            }
            b"LZWDecode" | b"LZW" => {
                let early = parm.get(b"EarlyChange").and_then(Obj::int).unwrap_or(1) != 0;
                predict(lzw(&data, max, early), parm, max)
            }
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(&data),
            b"ASCII85Decode" | b"A85" => ascii85(&data, max),
            b"RunLengthDecode" | b"RL" => run_length(&data, max),
            b"Crypt" => data,
            other => {
                ex.unscannable(
                    "PDF",
                    Some(seg),
                    &format!(
                        "stream filter /{} not supported",
                        String::from_utf8_lossy(other)
                    ),
                );
                return None;
            }
        };
    }
    // Small results are kept (JavaScript streams are decoded twice); large
    // ones are not: the cache holds at most MAX_CACHED × MAX_CACHED_LEN bytes.
    if cache.len() < MAX_CACHED && data.len() <= MAX_CACHED_LEN {
        cache.insert(n, data.clone());
    }
    Some(data)
}

/// zlib (or raw deflate) up to `max` bytes; keeps what decodes before damage.
fn inflate(d: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let limit = max as u64;
    let zlib =
        d.len() >= 2 && (u16::from(d[0]) << 8 | u16::from(d[1])) % 31 == 0 && d[0] & 0x0f == 8;
    if zlib {
        let _ = flate2::read::ZlibDecoder::new(d)
            .take(limit)
            .read_to_end(&mut out);
    }
    if out.is_empty() {
        out.clear();
        let _ = flate2::read::DeflateDecoder::new(d)
            .take(limit)
            .read_to_end(&mut out);
    }
    out
}

/// PNG (10..15) and TIFF (2) predictors from `/DecodeParms`.
fn predict(data: Vec<u8>, parm: &Obj, max: usize) -> Vec<u8> {
    let pred = parm.get(b"Predictor").and_then(Obj::int).unwrap_or(1);
    if pred < 2 {
        return data;
    }
    let colors = parm
        .get(b"Colors")
        .and_then(Obj::int)
        .unwrap_or(1)
        .clamp(1, 32) as usize;
    let bpc = parm
        .get(b"BitsPerComponent")
        .and_then(Obj::int)
        .unwrap_or(8)
        .clamp(1, 16) as usize;
    let columns = parm
        .get(b"Columns")
        .and_then(Obj::int)
        .unwrap_or(1)
        .clamp(1, 1 << 20) as usize;
    let bpp = (colors * bpc).div_ceil(8).max(1);
    let row = (colors * bpc * columns).div_ceil(8);
    if row == 0 || row > data.len().max(1) {
        return data; // a row longer than the data: nothing to undo, no big allocation
    }
    if pred == 2 {
        if bpc != 8 {
            return data;
        }
        let mut out = data;
        for r in out.chunks_mut(row.max(1)) {
            for i in bpp..r.len() {
                r[i] = r[i].wrapping_add(r[i - bpp]);
            }
        }
        return out;
    }
    let mut out = Vec::with_capacity(data.len().min(max));
    let mut prev = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        let Some((&ty, line)) = chunk.split_first() else {
            break;
        };
        let mut cur = line.to_vec();
        cur.resize(row, 0);
        for i in 0..row {
            let a = if i >= bpp { cur[i - bpp] } else { 0 };
            let b = prev[i];
            let c = if i >= bpp { prev[i - bpp] } else { 0 };
            cur[i] = match ty {
                1 => cur[i].wrapping_add(a),
                2 => cur[i].wrapping_add(b),
                3 => cur[i].wrapping_add(((u16::from(a) + u16::from(b)) / 2) as u8),
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    let pr = if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    };
                    cur[i].wrapping_add(pr)
                }
                _ => cur[i],
            };
        }
        let take = line.len().min(row).min(max.saturating_sub(out.len()));
        out.extend_from_slice(&cur[..take]);
        prev = cur;
        if out.len() >= max {
            break;
        }
    }
    out
}

/// LZW as PDF uses it (MSB-first, 9..12-bit codes, 256 clear, 257 end).
fn lzw(d: &[u8], max: usize, early: bool) -> Vec<u8> {
    let mut out = Vec::new();
    // Dictionary as (prefix code, last byte, length), rebuilt per entry on output.
    let mut dict: Vec<(u16, u8, u32)> = (0..=255u16).map(|b| (u16::MAX, b as u8, 1)).collect();
    dict.push((0, 0, 0));
    dict.push((0, 0, 0));
    let mut width = 9u32;
    let mut bitbuf = 0u32;
    let mut nbits = 0u32;
    let mut prev: Option<u16> = None;
    let mut tmp = Vec::new();
    let emit = |code: u16, dict: &Vec<(u16, u8, u32)>, tmp: &mut Vec<u8>| {
        tmp.clear();
        let mut c = code;
        while (c as usize) < dict.len() && tmp.len() < 4096 + 1 {
            let (p, b, _) = dict[c as usize];
            tmp.push(b);
            if p == u16::MAX {
                break;
            }
            c = p;
        }
        tmp.reverse();
    };
    for &byte in d {
        bitbuf = (bitbuf << 8) | u32::from(byte);
        nbits += 8;
        while nbits >= width {
            let code = ((bitbuf >> (nbits - width)) & ((1 << width) - 1)) as u16;
            nbits -= width;
            bitbuf &= (1u32 << nbits).wrapping_sub(1);
            if code == 256 {
                dict.truncate(258);
                width = 9;
                prev = None;
                continue;
            }
            if code == 257 {
                return out;
            }
            let first;
            if (code as usize) < dict.len() {
                emit(code, &dict, &mut tmp);
                first = tmp.first().copied().unwrap_or(0);
                out.extend_from_slice(&tmp);
            } else if code as usize == dict.len() {
                let Some(p) = prev else { return out };
                emit(p, &dict, &mut tmp);
                first = tmp.first().copied().unwrap_or(0);
                tmp.push(first);
                out.extend_from_slice(&tmp);
            } else {
                return out;
            }
            if let Some(p) = prev {
                if dict.len() < 4096 {
                    let len = dict.get(p as usize).map_or(1, |e| e.2) + 1;
                    dict.push((p, first, len));
                }
            }
            prev = Some(code);
            let limit = dict.len() + usize::from(early);
            width = if limit >= 2048 {
                12
            } else if limit >= 1024 {
                11
            } else if limit >= 512 {
                10
            } else {
                9
            };
            if out.len() >= max {
                out.truncate(max);
                return out;
            }
        }
    }
    out
}

fn ascii_hex(d: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len() / 2);
    let mut half: Option<u8> = None;
    for &c in d {
        if c == b'>' {
            break;
        }
        if let Some(v) = hexval(c) {
            match half.take() {
                Some(h) => out.push(h << 4 | v),
                None => half = Some(v),
            }
        }
    }
    if let Some(h) = half {
        out.push(h << 4);
    }
    out
}

fn ascii85(d: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.len().min(max));
    let mut group = [0u8; 5];
    let mut n = 0;
    let d = d.strip_prefix(b"<~").unwrap_or(d);
    for &c in d {
        if out.len() >= max {
            break;
        }
        match c {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = c - b'!';
                n += 1;
                if n == 5 {
                    let v = group.iter().fold(0u64, |a, &g| a * 85 + u64::from(g));
                    out.extend_from_slice(&(v as u32).to_be_bytes());
                    n = 0;
                }
            }
            _ => {}
        }
    }
    if n > 1 {
        for g in group.iter_mut().skip(n) {
            *g = 84;
        }
        let v = group.iter().fold(0u64, |a, &g| a * 85 + u64::from(g));
        out.extend_from_slice(&(v as u32).to_be_bytes()[..n - 1]);
    }
    out
}

fn run_length(d: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < d.len() && out.len() < max {
        let l = d[i];
        i += 1;
        if l == 128 {
            break;
        } else if l < 128 {
            let n = l as usize + 1;
            let end = (i + n).min(d.len());
            out.extend_from_slice(&d[i..end]);
            i = end;
        } else {
            let Some(&b) = d.get(i) else { break };
            i += 1;
            out.resize(out.len() + (257 - l as usize), b);
        }
    }
    out.truncate(max);
    out
}

/// Actions and links: JavaScript run on open, `/Launch`, `/URI`, and
/// JavaScript children.
fn analyse(doc: &Doc<'_>, ex: &mut Extractor<'_, '_, '_>) {
    let heur = ex.heuristics().pdf;
    let mut links: Vec<Link> = Vec::new();
    let mut launch: Option<u32> = None;
    let mut js: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut cache = HashMap::new();
    for &n in &doc.order {
        let Some(o) = doc.objs.get(&n) else { continue };
        let mut stack: Vec<(&Obj, usize)> = vec![(&o.value, 0)];
        while let Some((v, depth)) = stack.pop() {
            match v {
                Obj::Dict(entries) => {
                    if v.get(b"S").and_then(Obj::name) == Some(b"Launch") && launch.is_none() {
                        launch = Some(n);
                    }
                    if let Some(Obj::Str(u)) = v.get(b"URI").map(|x| doc.resolve(x)) {
                        if links.len() < MAX_LINKS {
                            let href = text_string(u).trim().to_string();
                            if !href.is_empty() && !links.iter().any(|l| l.href == href) {
                                links.push(Link { href, text: None });
                            }
                        }
                    }
                    if let Some(j) = v.get(b"JS") {
                        match doc.resolve(j) {
                            Obj::Str(s) => js.push((n, s.clone())),
                            _ => {
                                if let Obj::Ref(r, _) = j {
                                    if let Some(b) =
                                        decode_stream(doc, *r, ex, &format!("obj[{r}]"), &mut cache)
                                    {
                                        js.push((n, b));
                                    }
                                }
                            }
                        }
                    }
                    if depth < MAX_NESTING {
                        stack.extend(entries.iter().map(|(_, x)| (x, depth + 1)));
                    }
                }
                Obj::Array(a) if depth < MAX_NESTING => {
                    stack.extend(a.iter().map(|x| (x, depth + 1)));
                }
                _ => {}
            }
        }
    }
    for (i, (n, src)) in js.into_iter().enumerate() {
        if ex.done() {
            return;
        }
        let seg = if i == 0 {
            format!("obj[{n}]/javascript")
        } else {
            format!("obj[{n}]/javascript[{i}]")
        };
        let text = text_string(&src);
        let meta = ChildMeta {
            segment: seg,
            text: Some(text),
            ..Default::default()
        };
        if ex.child_owned(meta, src) == Flow::Stop {
            return;
        }
    }
    ex.links(links);
    if !heur {
        return;
    }
    if let Some(n) = launch {
        if ex.heuristic(
            "Heuristics.PDF.Launch",
            Some(&format!("obj[{n}]")),
            "a /Launch action starts a program or opens a file",
        ) == Flow::Stop
        {
            return;
        }
    }
    if let Some((n, how)) = autorun_js(doc) {
        ex.heuristic(
            "Heuristics.PDF.JavaScript.AutoRun",
            Some(&format!("obj[{n}]")),
            &format!("JavaScript runs when the document opens ({how})"),
        );
    }
}

/// Is `action` (or an action in its `/Next` chain) JavaScript?
fn is_js_action(doc: &Doc<'_>, action: &Obj) -> bool {
    let mut queue = vec![action];
    let mut seen = 0;
    while let Some(a) = queue.pop() {
        seen += 1;
        if seen > MAX_TREE_NODES {
            break;
        }
        let a = doc.resolve(a);
        match a {
            Obj::Dict(_) => {
                if a.get(b"S").and_then(Obj::name) == Some(b"JavaScript") || a.get(b"JS").is_some()
                {
                    return true;
                }
                if let Some(n) = a.get(b"Next") {
                    queue.push(n);
                }
            }
            Obj::Array(items) => queue.extend(items.iter()),
            _ => {}
        }
    }
    false
}

/// JavaScript that runs on open: the catalog's `/OpenAction`, document or page
/// `/AA` actions, or the document-level `/Names /JavaScript` tree.
fn autorun_js(doc: &Doc<'_>) -> Option<(u32, &'static str)> {
    for &n in &doc.order {
        let Some(o) = doc.objs.get(&n) else { continue };
        let v = &o.value;
        let ty = v.get(b"Type").and_then(Obj::name);
        let is_catalog = ty == Some(b"Catalog") || v.get(b"OpenAction").is_some();
        if is_catalog {
            if let Some(a) = v.get(b"OpenAction") {
                if is_js_action(doc, a) {
                    return Some((n, "/OpenAction"));
                }
            }
        }
        if is_catalog || ty == Some(b"Page") {
            if let Obj::Dict(aa) = doc.resolve(v.get(b"AA").unwrap_or(&Obj::Null)) {
                if aa.iter().any(|(_, a)| is_js_action(doc, a)) {
                    return Some((n, "/AA"));
                }
            }
        }
        if ty == Some(b"Catalog") {
            let names = doc.resolve(v.get(b"Names").unwrap_or(&Obj::Null));
            if let Some(tree) = names.get(b"JavaScript") {
                let mut queue = vec![tree];
                let mut seen = 0;
                while let Some(t) = queue.pop() {
                    seen += 1;
                    if seen > MAX_TREE_NODES {
                        break;
                    }
                    let t = doc.resolve(t);
                    if let Some(Obj::Array(a)) = t.get(b"Names").map(|x| doc.resolve(x)) {
                        if a.iter().skip(1).step_by(2).any(|x| is_js_action(doc, x)) {
                            return Some((n, "/Names /JavaScript"));
                        }
                    }
                    if let Some(Obj::Array(k)) = t.get(b"Kids").map(|x| doc.resolve(x)) {
                        queue.extend(k.iter());
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_strings_refs() {
        let mut p = Parser::new(
            b"<< /J#61vaScript (a\\(b\\)\\101\\\n) /R 12 0 R /H <41 4> /A [1 2.5 /x] >>",
            0,
        );
        let v = p.value(0).unwrap();
        assert_eq!(v.get(b"JavaScript"), Some(&Obj::Str(b"a(b)A".to_vec())));
        assert_eq!(v.get(b"R"), Some(&Obj::Ref(12, 0)));
        assert_eq!(v.get(b"H"), Some(&Obj::Str(b"A@".to_vec())));
    }

    #[test]
    fn filters() {
        assert_eq!(ascii85(b"<~87cURD]i,\"Ebo80~>", 100), b"Hello World!");
        assert_eq!(run_length(b"\x02abc\xfdz\x80", 100), b"abczzzz");
        assert_eq!(ascii_hex(b"41 42 4>"), b"AB@");
        // "-----A---B" LZW-encoded (PDF reference example).
        assert_eq!(
            lzw(
                &[0x80, 0x0b, 0x60, 0x50, 0x22, 0x0c, 0x0c, 0x85, 0x01],
                100,
                true
            ),
            b"-----A---B"
        );
    }

    #[test]
    fn deep_nesting_and_junk_do_not_panic() {
        let mut d = b"1 0 obj ".to_vec();
        d.extend(std::iter::repeat_n(b'[', 100_000));
        let doc = scan(&d);
        assert!(doc.objs.len() <= 1);
        let mut seed = 1u32;
        for _ in 0..2000 {
            let mut v = b"%PDF-1.4\n1 0 obj <<".to_vec();
            for _ in 0..(seed % 200) {
                seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                v.push(b"<>[]()/#0 1Robjstream\\"[(seed >> 16) as usize % 22]);
            }
            let doc = scan(&v);
            let _ = doc.objs.len();
        }
    }
}
