//! Parsing signature lines into a [`Database`] (not yet compiled).
//!
//! One bad line never stops a database from loading: it is recorded in the
//! [`LoadReport`] with file, line and reason, and skipped. A line this engine
//! cannot honour (PCRE, byte compare, macros, image hashes, icon groups) is
//! recorded as unsupported and its whole signature is left out, never half-applied.

use crate::error::{LineError, LoadReport};
use crate::hex::{self, Node};
use crate::offset::Offset;
use crate::pattern::{self, Arena, Compiled, Modifiers};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::path::Path;

/// The ClamAV functionality level this engine evaluates signatures for
/// (ClamAV 1.4's). Signatures whose `MinFL..MaxFL` range excludes it are skipped,
/// as ClamAV skips them, and counted in [`LoadReport::flevel_skipped`].
pub const FLEVEL: u32 = 216;

/// Texts at least this large are parsed on several threads.
pub const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// Most subsignatures in one logical signature (ClamAV's limit).
pub const MAX_SUBSIGS: usize = 64;

/// Longest signature name accepted.
pub const MAX_NAME: usize = 512;

/// Signature names, stored compactly (about 12 bytes a name on ClamAV-style
/// databases, against 30+ for plain strings).
///
/// Names like `Win.Trojan.Agent-1234567-0` share long prefixes, so each name is
/// one record: a LEB128 header `(prefix id + 1) << 1 | packed` followed by the
/// name's own part, either UTF-8 or (when it is only digits and `-._`) 4-bit
/// codes two to a byte. Record ends are kept as 16-bit offsets from a 32-bit
/// base per block of [`NAME_BLOCK`] names.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub(crate) rest: Vec<u8>,
    pub(crate) bases: Vec<u32>,
    pub(crate) deltas: Vec<u16>,
    pub(crate) prefixes: Vec<String>,
    pub(crate) index: HashMap<String, u32, crate::pattern::FastHash>,
    /// The last prefix looked up (database files list related names together).
    pub(crate) last: Option<u32>,
}

/// Names per block of [`Names`] (a block's records must fit 65,535 bytes:
/// 64 × the longest record, [`MAX_NAME`] plus a header, does).
pub const NAME_BLOCK: usize = 64;
const NIBBLE_CHARS: &[u8; 13] = b"0123456789-._";
const NIBBLE_END: u8 = 15;

fn nibble_of(b: u8) -> Option<u8> {
    NIBBLE_CHARS.iter().position(|&c| c == b).map(|p| p as u8)
}

impl Names {
    fn split(name: &str) -> (&str, &str) {
        let first_digit = name
            .bytes()
            .position(|b| b.is_ascii_digit())
            .unwrap_or(name.len());
        match name[..first_digit].rfind(['.', '-', '_']) {
            Some(i) if i > 0 => name.split_at(i + 1),
            _ => ("", name),
        }
    }

    fn prefix_id(&mut self, p: &str) -> u32 {
        if let Some(id) = self.last {
            if self.prefixes[id as usize] == p {
                return id;
            }
        }
        let id = match self.index.get(p) {
            Some(&id) => id,
            None => {
                let id = self.prefixes.len() as u32;
                self.prefixes.push(p.to_string());
                self.index.insert(p.to_string(), id);
                id
            }
        };
        self.last = Some(id);
        id
    }

    /// Starts a record; the caller appends the body and calls `end_record`.
    fn begin_record(&mut self, header: u64) {
        if self.deltas.len() % NAME_BLOCK == 0 {
            self.bases.push(self.rest.len() as u32);
        }
        let mut h = header;
        loop {
            let b = (h & 0x7f) as u8;
            h >>= 7;
            if h == 0 {
                self.rest.push(b);
                break;
            }
            self.rest.push(b | 0x80);
        }
    }

    fn end_record(&mut self) {
        let base = *self.bases.last().unwrap_or(&0);
        self.deltas.push((self.rest.len() as u32 - base) as u16);
    }

    pub fn push(&mut self, name: &str) -> u32 {
        let (p, r) = Self::split(name);
        let pid = if p.is_empty() {
            0
        } else {
            self.prefix_id(p) as u64 + 1
        };
        let packed = r.len() >= 4 && r.bytes().all(|b| nibble_of(b).is_some());
        self.begin_record((pid << 1) | packed as u64);
        if packed {
            let mut it = r.bytes().filter_map(nibble_of);
            while let Some(hi) = it.next() {
                let lo = it.next().unwrap_or(NIBBLE_END);
                self.rest.push((hi << 4) | lo);
            }
        } else {
            self.rest.extend_from_slice(r.as_bytes());
        }
        self.end_record();
        self.deltas.len() as u32 - 1
    }

    /// The record of name `id`: (prefix id + 1, packed, body). `None` if the
    /// tables are inconsistent (a corrupt cache): never panics.
    fn record(&self, id: u32) -> Option<(u64, bool, &[u8])> {
        let i = id as usize;
        let base = *self.bases.get(i / NAME_BLOCK)? as usize;
        let start = if i % NAME_BLOCK == 0 {
            base
        } else {
            base + *self.deltas.get(i - 1)? as usize
        };
        let end = base + *self.deltas.get(i)? as usize;
        let rec = self.rest.get(start..end)?;
        let (mut h, mut shift, mut k) = (0u64, 0u32, 0usize);
        loop {
            let b = *rec.get(k)?;
            h |= ((b & 0x7f) as u64) << shift;
            k += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 35 {
                return None;
            }
        }
        Some((h >> 1, h & 1 == 1, &rec[k..]))
    }

    /// The name with id `id` (`?` for an id this table does not hold).
    pub fn get(&self, id: u32) -> std::borrow::Cow<'_, str> {
        let Some((pid, packed, body)) = self.record(id) else {
            return std::borrow::Cow::Borrowed("?");
        };
        let prefix = match pid {
            0 => "",
            p => self
                .prefixes
                .get(p as usize - 1)
                .map_or("?", String::as_str),
        };
        if !packed {
            let r = std::str::from_utf8(body).unwrap_or("?");
            if prefix.is_empty() {
                return std::borrow::Cow::Borrowed(r);
            }
            return std::borrow::Cow::Owned(format!("{prefix}{r}"));
        }
        let mut out = String::with_capacity(prefix.len() + body.len() * 2);
        out.push_str(prefix);
        for &b in body {
            for n in [b >> 4, b & 15] {
                if let Some(&c) = NIBBLE_CHARS.get(n as usize) {
                    out.push(c as char);
                }
            }
        }
        std::borrow::Cow::Owned(out)
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.rest.len()
            + self.deltas.len() * 2
            + self.bases.len() * 4
            + self.prefixes.iter().map(|p| p.len() + 24).sum::<usize>()
    }

    /// Appends `other`'s names (prefix ids remapped); returns the id offset to add
    /// to `other`'s ids.
    fn absorb(&mut self, other: Names) -> u32 {
        let base = self.len() as u32;
        let map: Vec<u32> = other.prefixes.iter().map(|p| self.prefix_id(p)).collect();
        for id in 0..other.len() as u32 {
            let (pid, packed, body) = other.record(id).unwrap_or((0, false, b"?"));
            let pid = match pid {
                0 => 0,
                p => map.get(p as usize - 1).map_or(0, |&m| m as u64 + 1),
            };
            self.begin_record((pid << 1) | packed as u64);
            self.rest.extend_from_slice(body);
            self.end_record();
        }
        base
    }

    fn reserve(&mut self, names: usize, text: usize) {
        self.deltas.reserve(names);
        self.bases.reserve(names / NAME_BLOCK + 1);
        self.rest.reserve(text);
    }

    /// Drops load-time indexes and spare capacity.
    pub fn finish(&mut self) {
        self.index = HashMap::default();
        self.last = None;
        self.rest.shrink_to_fit();
        self.deltas.shrink_to_fit();
        self.bases.shrink_to_fit();
    }

    /// An empty table sharing this one's prefixes (for [`Names::copy_from`]).
    pub(crate) fn empty_like(&self) -> Names {
        Names {
            prefixes: self.prefixes.clone(),
            ..Names::default()
        }
    }

    /// Appends name `id` of `from`, which must share this table's prefixes
    /// (see [`Names::empty_like`]); returns its new id.
    pub(crate) fn copy_from(&mut self, from: &Names, id: u32) -> u32 {
        let (pid, packed, body) = from.record(id).unwrap_or((0, false, b"?"));
        self.begin_record((pid << 1) | packed as u64);
        self.rest.extend_from_slice(body);
        self.end_record();
        self.deltas.len() as u32 - 1
    }

    /// Structural check of tables read from a cache: every record lies in `rest`.
    pub(crate) fn consistent(&self) -> bool {
        self.bases.len() == self.deltas.len().div_ceil(NAME_BLOCK)
            && (0..self.len() as u32).all(|i| {
                let b = self.bases[i as usize / NAME_BLOCK] as usize;
                b + self.deltas[i as usize] as usize <= self.rest.len()
                    && (i as usize % NAME_BLOCK == 0
                        || self.deltas[i as usize - 1] <= self.deltas[i as usize])
            })
    }
}

/// Size value meaning "any size" (`*`) in a [`HashEntry`].
pub const ANY_SIZE: u32 = u32::MAX;

/// A file hash entry (24 bytes for MD5). `size == ANY_SIZE` means any size (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HashEntry<const N: usize> {
    pub size: u32,
    pub name: u32,
    pub hash: [u8; N],
}

/// Hash entries of the three digest kinds.
#[derive(Debug, Default, Clone)]
pub struct HashLists {
    pub md5: Vec<HashEntry<16>>,
    pub sha1: Vec<HashEntry<20>>,
    pub sha256: Vec<HashEntry<32>>,
}

impl HashLists {
    /// Appends `o`'s entries, adding `base` to their name ids.
    fn absorb(&mut self, o: HashLists, base: u32) {
        fn rebased<const N: usize>(dst: &mut Vec<HashEntry<N>>, src: Vec<HashEntry<N>>, base: u32) {
            dst.extend(src.into_iter().map(|e| HashEntry {
                name: e.name + base,
                ..e
            }));
        }
        rebased(&mut self.md5, o.md5, base);
        rebased(&mut self.sha1, o.sha1, base);
        rebased(&mut self.sha256, o.sha256, base);
    }

    pub fn len(&self) -> usize {
        self.md5.len() + self.sha1.len() + self.sha256.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An `.ndb` body signature.
#[derive(Debug, Clone)]
pub struct BodySig {
    pub name: u32,
    pub target: u8,
    pub offset: Offset,
    /// The compiled pattern, in [`Database::arena`].
    pub(crate) pat: Compiled,
}

/// Comparison in a logical expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gt,
    Lt,
}

/// A logical expression, with ClamAV's grouping (the first top-level operator
/// splits the expression; no precedence between `&` and `|`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Subsignature `id`, optionally with a count condition.
    Sub { id: u8, cmp: Option<(Cmp, u32)> },
    /// `l & r` / `l | r`, optionally as a block with count (and distinct-count) condition.
    Op {
        and: bool,
        l: Box<Expr>,
        r: Box<Expr>,
        cmp: Option<(Cmp, u32, u32)>,
    },
}

/// One subsignature of a logical signature.
#[derive(Debug, Clone)]
pub struct SubSig {
    pub offset: Offset,
    /// Compiled variants (two for `::wa`: wide and ASCII), in [`Database::arena`].
    pub(crate) pats: Vec<Compiled>,
    pub mods: Modifiers,
}

/// Target description block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tdb {
    pub target: u8,
    pub file_size: Option<(u64, u64)>,
    pub entry_point: Option<(u64, u64)>,
    pub sections: Option<(u64, u64)>,
    /// `Container:CL_TYPE_*`: the type of the containing file (`CL_TYPE_ANY`: not contained).
    pub container: Option<String>,
    /// `Intermediates:` chain of container types, top-down.
    pub intermediates: Option<Vec<String>>,
}

/// An `.ldb` logical signature.
#[derive(Debug, Clone)]
pub struct LogicalSig {
    pub name: u32,
    pub tdb: Tdb,
    pub expr: Expr,
    pub subsigs: Vec<SubSig>,
}

/// Everything parsed from the loaded files, before compilation.
#[derive(Debug, Default)]
pub struct Database {
    pub names: Names,
    pub hashes: HashLists,
    /// `.fp` / `.sfp` allow list: files with these hashes are never reported.
    pub allow: HashLists,
    pub bodies: Vec<BodySig>,
    pub logicals: Vec<LogicalSig>,
    /// Compiled body patterns of `bodies` and `logicals`.
    pub(crate) arena: Arena,
    /// `.ign2` entries: name → optional MD5 of the signature's database line.
    pub ignore: HashMap<String, Vec<Option<[u8; 16]>>>,
    /// Versions of loaded containers (`daily` → 27000).
    pub versions: Vec<(String, u32)>,
    pub report: LoadReport,
}

const fn hex_table() -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
}
static HEX: [u8; 256] = hex_table();

fn hexdigest<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        let h = HEX[b[2 * i] as usize];
        let l = HEX[b[2 * i + 1] as usize];
        if h | l == 0xff {
            return None;
        }
        *o = (h << 4) | l;
    }
    Some(out)
}

fn parse_flevel(min: Option<&str>, max: Option<&str>) -> Result<bool, LineError> {
    let num = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| LineError::syntax(format!("invalid functionality level '{s}'")))
    };
    if let Some(m) = min.filter(|s| !s.is_empty()) {
        if num(m)? > FLEVEL {
            return Ok(false);
        }
    }
    if let Some(m) = max.filter(|s| !s.is_empty()) {
        if num(m)? < FLEVEL {
            return Ok(false);
        }
    }
    Ok(true)
}

fn check_name(name: &str) -> Result<(), LineError> {
    if name.is_empty() {
        return Err(LineError::syntax("empty signature name"));
    }
    if name.len() > MAX_NAME {
        return Err(LineError::syntax("signature name too long"));
    }
    if name.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(LineError::syntax(
            "signature name contains whitespace or control characters",
        ));
    }
    Ok(())
}

/// What a line produced.
enum Parsed {
    Added,
    Skipped,
}

/// Kinds of database files, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Hdb,
    Hsb,
    Fp,
    Sfp,
    Ndb,
    Ldb,
    Ign2,
    Ign,
    Cvd,
    Cld,
    /// Known ClamAV database kinds this engine does not use yet (counted, reported).
    Unsupported(&'static str),
    /// PUA variants (`.hdu`, `.ndu`, ...), not loaded by default (as clamscan).
    Pua,
    /// Files in a database directory that hold no signatures (`.info`, `.cfg`, ...).
    Other,
}

impl DbKind {
    pub fn from_path(path: &Path) -> Option<DbKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "hdb" => DbKind::Hdb,
            "hsb" => DbKind::Hsb,
            "fp" => DbKind::Fp,
            "sfp" => DbKind::Sfp,
            "ndb" => DbKind::Ndb,
            "ldb" => DbKind::Ldb,
            "ign2" => DbKind::Ign2,
            "ign" => DbKind::Ign,
            "cvd" | "cud" => DbKind::Cvd,
            "cld" => DbKind::Cld,
            "mdb" | "msb" => DbKind::Unsupported("PE section hashes"),
            "imp" => DbKind::Unsupported("PE import table hashes"),
            "db" => DbKind::Unsupported("old-style body signatures"),
            "cdb" => DbKind::Unsupported("container metadata signatures"),
            "cbc" => DbKind::Unsupported("bytecode signatures"),
            "pdb" | "gdb" | "wdb" => DbKind::Unsupported("phishing URL signatures"),
            "idb" => DbKind::Unsupported("icon signatures"),
            "crb" => DbKind::Unsupported("Authenticode rules"),
            "yar" | "yara" => DbKind::Unsupported("YARA rules (use the YARA engine)"),
            "ftm" => DbKind::Unsupported("file type magic (the built-in table is used)"),
            "hdu" | "hsu" | "ndu" | "ldu" | "mdu" | "msu" => DbKind::Pua,
            "info" | "cfg" | "sign" | "cat" | "crl" | "ign3" => DbKind::Other,
            _ => return None,
        })
    }
}

impl Database {
    pub fn new() -> Database {
        Database::default()
    }

    fn ignored(&self, name: &str, line: &str) -> bool {
        if self.ignore.is_empty() {
            return false;
        }
        match self.ignore.get(name) {
            None => false,
            Some(list) => list.iter().any(|e| match e {
                None => true,
                Some(md5) => Md5::digest(line.as_bytes()).as_slice() == md5,
            }),
        }
    }

    /// Loads the lines of one database text. `file` names it in problems.
    pub fn load_text(&mut self, file: &Path, kind: DbKind, text: &[u8]) {
        self.report.files += 1;
        if let DbKind::Unsupported(what) = kind {
            let n = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
                .count();
            if n > 0 {
                self.report.problem(
                    file,
                    0,
                    LineError::unsupported(format!("{n} {what} not used")),
                );
            }
            return;
        }
        self.load_block(file, kind, text, 0);
    }

    /// Loads a block of whole lines whose first line is line `first_line + 1` of `file`.
    /// Large blocks are split at line boundaries and parsed on all cores; the result
    /// is the same as a sequential parse (same order, same line numbers).
    pub fn load_block(&mut self, file: &Path, kind: DbKind, text: &[u8], first_line: usize) {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        if threads < 2
            || text.len() < PARALLEL_MIN_BYTES
            || matches!(kind, DbKind::Ign | DbKind::Ign2)
        {
            self.parse_lines(file, kind, text, first_line);
            return;
        }
        // Cut into `threads` chunks at newlines, remembering each chunk's first line number.
        let mut chunks = Vec::with_capacity(threads);
        let mut start = 0usize;
        let mut line = first_line;
        for k in 1..=threads {
            let mut end = if k == threads {
                text.len()
            } else {
                (text.len() * k / threads).max(start)
            };
            if end < text.len() {
                end = memchr::memchr(b'\n', &text[end..]).map_or(text.len(), |o| end + o + 1);
            }
            chunks.push((start, end, line));
            line += memchr::memchr_iter(b'\n', &text[start..end]).count();
            start = end;
            if start >= text.len() {
                break;
            }
        }
        let ignore = &self.ignore;
        let parts: Vec<Database> = std::thread::scope(|sc| {
            let hs: Vec<_> = chunks
                .iter()
                .map(|&(a, b, l)| {
                    sc.spawn(move || {
                        let mut d = Database {
                            ignore: ignore.clone(),
                            ..Database::default()
                        };
                        d.parse_lines(file, kind, &text[a..b], l);
                        d
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for p in parts {
            self.absorb(p);
        }
    }

    /// Reserves room for a database text of `bytes` bytes (shortest plausible lines).
    pub(crate) fn reserve_for(&mut self, kind: DbKind, bytes: usize) {
        let lines = bytes / 40;
        match kind {
            DbKind::Hdb => self.hashes.md5.reserve(lines),
            DbKind::Hsb => self.hashes.sha256.reserve(bytes / 80),
            DbKind::Fp => self.allow.md5.reserve(lines),
            _ => return,
        }
        self.names.reserve(lines, bytes / 4);
    }

    /// Appends a partial database parsed from a later part of the same input.
    fn absorb(&mut self, p: Database) {
        let base = self.names.absorb(p.names);
        let rebase = self.arena.absorb(p.arena);
        self.hashes.absorb(p.hashes, base);
        self.allow.absorb(p.allow, base);
        self.bodies.extend(p.bodies.into_iter().map(|mut b| {
            b.name += base;
            b.pat.start += rebase;
            b
        }));
        self.logicals.extend(p.logicals.into_iter().map(|mut l| {
            l.name += base;
            for s in &mut l.subsigs {
                for c in &mut s.pats {
                    c.start += rebase;
                }
            }
            l
        }));
        let r = p.report;
        self.report.hash_sigs += r.hash_sigs;
        self.report.body_sigs += r.body_sigs;
        self.report.logical_sigs += r.logical_sigs;
        self.report.allow_list += r.allow_list;
        self.report.ignored_sigs += r.ignored_sigs;
        self.report.flevel_skipped += r.flevel_skipped;
        self.report.problems.extend(r.problems);
    }

    fn parse_lines(&mut self, file: &Path, kind: DbKind, text: &[u8], first_line: usize) {
        let mut start = 0usize;
        let mut lineno = first_line;
        while start < text.len() {
            let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |o| start + o);
            let raw = &text[start..end];
            start = end + 1;
            lineno += 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() || raw.starts_with(b"#") {
                continue;
            }
            let line = match std::str::from_utf8(raw) {
                Ok(l) => l,
                Err(_) => {
                    self.report
                        .problem(file, lineno, LineError::syntax("line is not valid UTF-8"));
                    continue;
                }
            };
            let r = match kind {
                DbKind::Hdb | DbKind::Hsb => self.hash_line(line, false),
                DbKind::Fp | DbKind::Sfp => self.hash_line(line, true),
                DbKind::Ndb => self.ndb_line(line),
                DbKind::Ldb => self.ldb_line(line),
                DbKind::Ign2 | DbKind::Ign => self.ign_line(line, kind == DbKind::Ign),
                _ => Ok(Parsed::Skipped),
            };
            if let Err(e) = r {
                self.report.problem(file, lineno, e);
            }
        }
    }

    fn ign_line(&mut self, line: &str, old: bool) -> Result<Parsed, LineError> {
        let parts: Vec<&str> = line.split(':').collect();
        let (name, md5) = match (old, parts.as_slice()) {
            (false, [n]) => (*n, None),
            (false, [n, h]) => (
                *n,
                Some(
                    hexdigest::<16>(h)
                        .ok_or_else(|| LineError::syntax("invalid MD5 in ignore entry"))?,
                ),
            ),
            // Old `.ign`: db:line:name
            (true, [_, _, n]) => (*n, None),
            (_, [_, _, n]) => (*n, None),
            _ => return Err(LineError::syntax("expected Name or Name:MD5")),
        };
        check_name(name)?;
        self.ignore.entry(name.to_string()).or_default().push(md5);
        self.report.ignored_names += 1;
        Ok(Parsed::Added)
    }

    fn hash_line(&mut self, line: &str, allow: bool) -> Result<Parsed, LineError> {
        // Hand-split on ':' (this runs millions of times per load).
        let mut fields: [&str; 6] = [""; 6];
        let mut n = 0usize;
        let mut rest = line;
        loop {
            if n == fields.len() {
                return Err(LineError::syntax("too many fields"));
            }
            match memchr::memchr(b':', rest.as_bytes()) {
                Some(i) => {
                    fields[n] = &rest[..i];
                    rest = &rest[i + 1..];
                    n += 1;
                }
                None => {
                    fields[n] = rest;
                    n += 1;
                    break;
                }
            }
        }
        if n < 3 {
            return Err(LineError::syntax("expected Hash:Size:Name"));
        }
        let (hash, size, name) = (fields[0], fields[1], fields[2]);
        let minfl = (n > 3).then_some(fields[3]);
        let maxfl = (n > 4).then_some(fields[4]);
        check_name(name)?;
        let size = if size == "*" {
            ANY_SIZE
        } else {
            match size.parse::<u32>() {
                Ok(v) if v != ANY_SIZE => v,
                _ => return Err(LineError::syntax(format!("invalid size '{size}'"))),
            }
        };
        if !parse_flevel(minfl, maxfl)? {
            self.report.flevel_skipped += 1;
            return Ok(Parsed::Skipped);
        }
        if !allow && self.ignored(name, line) {
            self.report.ignored_sigs += 1;
            return Ok(Parsed::Skipped);
        }
        let lists = if allow {
            &mut self.allow
        } else {
            &mut self.hashes
        };
        let bad = || {
            LineError::syntax(format!(
                "invalid hash '{hash}' (need 32, 40 or 64 hex digits)"
            ))
        };
        fn add<const N: usize>(
            list: &mut Vec<HashEntry<N>>,
            names: &mut Names,
            hash: &str,
            size: u32,
            name: &str,
        ) -> Option<()> {
            let hash = hexdigest::<N>(hash)?;
            let name = names.push(name);
            list.push(HashEntry { size, hash, name });
            Some(())
        }
        let names = &mut self.names;
        match hash.len() {
            32 => add(&mut lists.md5, names, hash, size, name).ok_or_else(bad)?,
            40 => add(&mut lists.sha1, names, hash, size, name).ok_or_else(bad)?,
            64 => add(&mut lists.sha256, names, hash, size, name).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
        if allow {
            self.report.allow_list += 1;
        } else {
            self.report.hash_sigs += 1;
        }
        Ok(Parsed::Added)
    }

    fn ndb_line(&mut self, line: &str) -> Result<Parsed, LineError> {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || f.len() > 6 {
            return Err(LineError::syntax(
                "expected Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]]",
            ));
        }
        check_name(f[0])?;
        let target = parse_target(f[1])?;
        let offset = Offset::parse(f[2])?;
        if offset.needs_exe() && !matches!(target, 1 | 6 | 9) {
            return Err(LineError::syntax(
                "EP/section offsets need target type 1, 6 or 9",
            ));
        }
        let nodes = hex::parse(f[3])?;
        if !parse_flevel(f.get(4).copied(), f.get(5).copied())? {
            self.report.flevel_skipped += 1;
            return Ok(Parsed::Skipped);
        }
        if self.ignored(f[0], line) {
            self.report.ignored_sigs += 1;
            return Ok(Parsed::Skipped);
        }
        let name = self.names.push(f[0]);
        let pat = self.arena.compile(&nodes, false);
        self.bodies.push(BodySig {
            name,
            target,
            offset,
            pat,
        });
        self.report.body_sigs += 1;
        Ok(Parsed::Added)
    }

    fn ldb_line(&mut self, line: &str) -> Result<Parsed, LineError> {
        let f: Vec<&str> = line.split(';').collect();
        if f.len() < 4 {
            return Err(LineError::syntax(
                "expected Name;TargetDescriptionBlock;LogicalExpression;Subsig0[;Subsig1...]",
            ));
        }
        check_name(f[0])?;
        let (tdb, flevel_ok) = parse_tdb(f[1])?;
        let nsub = f.len() - 3;
        if nsub > MAX_SUBSIGS {
            return Err(LineError::syntax(format!(
                "more than {MAX_SUBSIGS} subsignatures"
            )));
        }
        let expr = parse_expr(f[2])?;
        let max_id = expr_max_id(&expr);
        if max_id as usize >= nsub {
            return Err(LineError::syntax(format!(
                "expression names subsignature {max_id} but only {nsub} exist"
            )));
        }
        let mut parsed = Vec::with_capacity(nsub);
        for (k, s) in f[3..].iter().enumerate() {
            parsed.push(parse_subsig(s, tdb.target).map_err(|e| match e {
                LineError::Syntax(m) => LineError::Syntax(format!("subsignature {k}: {m}")),
                LineError::Unsupported(m) => {
                    LineError::Unsupported(format!("subsignature {k}: {m}"))
                }
            })?);
        }
        if !flevel_ok {
            self.report.flevel_skipped += 1;
            return Ok(Parsed::Skipped);
        }
        if self.ignored(f[0], line) {
            self.report.ignored_sigs += 1;
            return Ok(Parsed::Skipped);
        }
        let name = self.names.push(f[0]);
        let subsigs = parsed
            .into_iter()
            .map(|(offset, nodes, mods)| {
                let pats = pattern::variants(&nodes, mods)
                    .iter()
                    .map(|v| self.arena.compile(v, mods.nocase))
                    .collect();
                SubSig { offset, pats, mods }
            })
            .collect();
        self.logicals.push(LogicalSig {
            name,
            tdb,
            expr,
            subsigs,
        });
        self.report.logical_sigs += 1;
        Ok(Parsed::Added)
    }
}

fn parse_target(s: &str) -> Result<u8, LineError> {
    match s.parse::<u8>() {
        Ok(t) if t <= 14 => Ok(t),
        _ => Err(LineError::syntax(format!("invalid target type '{s}'"))),
    }
}

fn parse_range(s: &str) -> Result<(u64, u64), LineError> {
    let bad = || LineError::syntax(format!("invalid range '{s}'"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a = a.parse::<u64>().map_err(|_| bad())?;
    let b = b.parse::<u64>().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses a target description block; the bool says whether `Engine` admits this engine.
fn parse_tdb(s: &str) -> Result<(Tdb, bool), LineError> {
    let mut tdb = Tdb::default();
    let mut target = None;
    let mut flevel_ok = true;
    for (i, kv) in s.split(',').enumerate() {
        let (k, v) = kv
            .split_once(':')
            .ok_or_else(|| LineError::syntax(format!("TDB entry '{kv}' has no value")))?;
        match k {
            "Engine" => {
                if i != 0 {
                    return Err(LineError::syntax("Engine must be the first TDB keyword"));
                }
                let (lo, hi) = parse_range(v)?;
                flevel_ok = lo <= FLEVEL as u64 && FLEVEL as u64 <= hi;
            }
            "Target" => target = Some(parse_target(v)?),
            "FileSize" => tdb.file_size = Some(parse_range(v)?),
            "EntryPoint" => tdb.entry_point = Some(parse_range(v)?),
            "NumberOfSections" => tdb.sections = Some(parse_range(v)?),
            "Container" => {
                if !v.starts_with("CL_TYPE_") {
                    return Err(LineError::syntax(format!("invalid container type '{v}'")));
                }
                tdb.container = Some(v.to_string());
            }
            "Intermediates" => {
                let chain: Vec<String> = v.split('>').map(str::to_string).collect();
                if chain.is_empty()
                    || chain.len() > 16
                    || chain.iter().any(|t| !t.starts_with("CL_TYPE_"))
                {
                    return Err(LineError::syntax(format!("invalid Intermediates '{v}'")));
                }
                tdb.intermediates = Some(chain);
            }
            "IconGroup1" | "IconGroup2" => {
                return Err(LineError::unsupported("icon group matching"))
            }
            "HandlerType" => {
                return Err(LineError::unsupported(
                    "HandlerType (rescan as another type)",
                ))
            }
            _ => return Err(LineError::syntax(format!("unknown TDB keyword '{k}'"))),
        }
    }
    tdb.target = target.ok_or_else(|| LineError::syntax("TDB has no Target"))?;
    Ok((tdb, flevel_ok))
}

fn parse_subsig(s: &str, target: u8) -> Result<(Offset, Vec<Node>, Modifiers), LineError> {
    if s.is_empty() {
        return Err(LineError::syntax("empty subsignature"));
    }
    if s.starts_with("${") || s.contains('$') {
        return Err(LineError::unsupported("macro subsignatures"));
    }
    if s.starts_with("fuzzy_img#") {
        return Err(LineError::unsupported("image fuzzy hash subsignatures"));
    }
    if s.contains('/') {
        return Err(LineError::unsupported("PCRE subsignatures"));
    }
    if s.contains('#') {
        return Err(LineError::unsupported("byte compare subsignatures"));
    }
    let (body, mods) = match s.split_once("::") {
        Some((b, m)) => (b, Modifiers::parse(m)?),
        None => (s, Modifiers::default()),
    };
    let (offset, hexsig) = match body.split_once(':') {
        Some((o, h)) => (Offset::parse(o)?, h),
        None => (Offset::ANY, body),
    };
    if offset.needs_exe() && !matches!(target, 1 | 6 | 9) {
        return Err(LineError::syntax(
            "EP/section offsets need target type 1, 6 or 9",
        ));
    }
    let nodes = hex::parse(hexsig)?;
    Ok((offset, nodes, mods))
}

/// Most nesting in a logical expression.
pub const MAX_EXPR_DEPTH: usize = 64;

/// Parses a logical expression. Never panics; depth bounded by [`MAX_EXPR_DEPTH`].
pub fn parse_expr(s: &str) -> Result<Expr, LineError> {
    let b = s.as_bytes();
    let (e, used) = expr_at(b, 0, 0)?;
    if used != b.len() {
        return Err(LineError::syntax(format!(
            "unexpected '{}' in logical expression",
            b[used] as char
        )));
    }
    Ok(e)
}

fn expr_at(b: &[u8], i: usize, depth: usize) -> Result<(Expr, usize), LineError> {
    if depth > MAX_EXPR_DEPTH {
        return Err(LineError::syntax("logical expression nested too deeply"));
    }
    let (l, i) = term_at(b, i, depth)?;
    match b.get(i) {
        Some(&c @ (b'&' | b'|')) => {
            let (r, j) = expr_at(b, i + 1, depth + 1)?;
            Ok((
                Expr::Op {
                    and: c == b'&',
                    l: Box::new(l),
                    r: Box::new(r),
                    cmp: None,
                },
                j,
            ))
        }
        _ => Ok((l, i)),
    }
}

fn number_at(b: &[u8], mut i: usize) -> Result<(u32, usize), LineError> {
    let s = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if s == i {
        return Err(LineError::syntax("number expected in logical expression"));
    }
    let n = std::str::from_utf8(&b[s..i])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| LineError::syntax("number too large"))?;
    Ok((n, i))
}

fn cmp_at(b: &[u8], i: usize) -> Result<(Option<(Cmp, u32, Option<u32>)>, usize), LineError> {
    let c = match b.get(i) {
        Some(b'=') => Cmp::Eq,
        Some(b'>') => Cmp::Gt,
        Some(b'<') => Cmp::Lt,
        _ => return Ok((None, i)),
    };
    let (x, mut j) = number_at(b, i + 1)?;
    let mut y = None;
    if b.get(j) == Some(&b',') {
        let (v, k) = number_at(b, j + 1)?;
        y = Some(v);
        j = k;
    }
    Ok((Some((c, x, y)), j))
}

fn term_at(b: &[u8], i: usize, depth: usize) -> Result<(Expr, usize), LineError> {
    match b.get(i) {
        Some(b'(') => {
            let (inner, j) = expr_at(b, i + 1, depth + 1)?;
            if b.get(j) != Some(&b')') {
                return Err(LineError::syntax("missing ')' in logical expression"));
            }
            let (cmp, k) = cmp_at(b, j + 1)?;
            let e = match (inner, cmp) {
                (e, None) => e,
                (Expr::Op { and, l, r, .. }, Some((c, x, y))) => Expr::Op {
                    and,
                    l,
                    r,
                    cmp: Some((c, x, y.unwrap_or(0))),
                },
                (Expr::Sub { id, cmp: None }, Some((c, x, _))) => Expr::Sub {
                    id,
                    cmp: Some((c, x)),
                },
                (Expr::Sub { .. }, Some(_)) => {
                    return Err(LineError::syntax("two counts on one subsignature"))
                }
            };
            Ok((e, k))
        }
        Some(c) if c.is_ascii_digit() => {
            let (id, j) = number_at(b, i)?;
            if id as usize >= MAX_SUBSIGS {
                return Err(LineError::syntax(format!(
                    "subsignature index {id} out of range"
                )));
            }
            let (cmp, k) = cmp_at(b, j)?;
            Ok((
                Expr::Sub {
                    id: id as u8,
                    cmp: cmp.map(|(c, x, _)| (c, x)),
                },
                k,
            ))
        }
        _ => Err(LineError::syntax(
            "subsignature index or '(' expected in logical expression",
        )),
    }
}

fn expr_max_id(e: &Expr) -> u8 {
    match e {
        Expr::Sub { id, .. } => *id,
        Expr::Op { l, r, .. } => expr_max_id(l).max(expr_max_id(r)),
    }
}

/// Evaluates an expression over per-subsignature match counts, exactly as ClamAV
/// does (`cli_ac_chklsig`): returns (true?, total count, bitmask of matched ids).
pub fn eval(e: &Expr, counts: &[u32]) -> (bool, u64, u64) {
    match e {
        Expr::Sub { id, cmp } => {
            let v = counts.get(*id as usize).copied().unwrap_or(0);
            let ok = match cmp {
                None => v > 0,
                Some((Cmp::Eq, x)) => v == *x,
                Some((Cmp::Gt, x)) => v > *x,
                Some((Cmp::Lt, x)) => v < *x,
            };
            if ok {
                (true, v as u64, 1u64 << id)
            } else {
                (false, 0, 0)
            }
        }
        Expr::Op { and, l, r, cmp } => {
            let (lv, lc, li) = eval(l, counts);
            let (rv, rc, ri) = eval(r, counts);
            let ok = if *and { lv && rv } else { lv || rv };
            let Some((c, x, y)) = cmp else {
                return if ok {
                    (true, lc + rc, li | ri)
                } else {
                    (false, 0, 0)
                };
            };
            let (tc, ti) = if ok { (lc + rc, li | ri) } else { (0, 0) };
            let pass = match c {
                Cmp::Eq => tc == *x as u64,
                Cmp::Gt => tc > *x as u64,
                Cmp::Lt => tc < *x as u64,
            };
            if !pass || (*y > 0 && ti.count_ones() < *y) {
                return (false, 0, 0);
            }
            (true, tc, ti)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn load(kind: DbKind, text: &str) -> Database {
        let mut db = Database::new();
        db.load_text(&PathBuf::from("t"), kind, text.as_bytes());
        db
    }

    #[test]
    fn names_round_trip_in_every_storage_form() {
        let list = [
            "Win.Trojan.Agent-1234567-0",
            "Win.Trojan.Agent-7654321-1",
            "Eicar-Test-Signature",
            "X",
            "Html.Phishing.Bank-1.2_3",
            "Unicode.Näme-12345",
            "12345678",
            "a-1",
        ];
        let mut n = Names::default();
        let ids: Vec<u32> = list.iter().map(|s| n.push(s)).collect();
        let mut m = Names::default();
        m.push("Other-99999");
        let base = m.absorb(n);
        for (id, want) in ids.iter().zip(list) {
            assert_eq!(m.get(id + base), want);
        }
        assert_eq!(m.get(0), "Other-99999");
        // Across block boundaries, on both sides of an absorb.
        let mk = |i: usize| format!("Fam{}.Sig-{}-{}", i % 7, i * 7919, i % 3);
        let mut a = Names::default();
        for i in 0..70 {
            a.push(&mk(i));
        }
        let mut b = Names::default();
        for i in 70..300 {
            b.push(&mk(i));
        }
        assert_eq!(a.absorb(b), 70);
        assert!(a.consistent());
        for i in 0..300 {
            assert_eq!(a.get(i as u32), mk(i));
        }
        assert_eq!(a.get(300), "?");
    }

    #[test]
    fn hash_lines() {
        let db = load(
            DbKind::Hdb,
            "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test\n\
             44d88612fea8a8f36de82e1278abb02f:*:Eicar-Any:73\n\
             3395856ce81f2b7382dee72602f798b642f14140:68:Sha1\n\
             275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:Sha256\n\
             bad:68:X\n\
             44d88612fea8a8f36de82e1278abb02f:68:Future:999\n",
        );
        assert_eq!(db.hashes.md5.len(), 2);
        assert_eq!(db.hashes.md5[1].size, ANY_SIZE);
        assert_eq!(db.hashes.sha1.len(), 1);
        assert_eq!(db.hashes.sha256.len(), 1);
        assert_eq!(db.report.invalid(), 1);
        assert_eq!(db.report.problems[0].line, 5);
        assert_eq!(db.report.flevel_skipped, 1);
    }

    #[test]
    fn ignore_lists_apply_with_and_without_md5() {
        let mut db = Database::new();
        let line = "Sig.B:0:*:41424344";
        let md5 = Md5::digest(line.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        db.load_text(
            &PathBuf::from("x.ign2"),
            DbKind::Ign2,
            format!("Sig.A\nSig.B:{md5}\nSig.C:00000000000000000000000000000000\n").as_bytes(),
        );
        db.load_text(
            &PathBuf::from("x.ndb"),
            DbKind::Ndb,
            format!("Sig.A:0:*:41424344\n{line}\nSig.C:0:*:41424344\nSig.D:0:*:41424344\n")
                .as_bytes(),
        );
        let names: Vec<String> = db
            .bodies
            .iter()
            .map(|b| db.names.get(b.name).into_owned())
            .collect();
        assert_eq!(names, vec!["Sig.C", "Sig.D"]);
        assert_eq!(db.report.ignored_sigs, 2);
    }

    #[test]
    fn ldb_lines() {
        let db = load(
            DbKind::Ldb,
            "A;Engine:81-255,Target:0;0&1;41414141::i;424242424242::wa\n\
             B;Target:1,FileSize:10-20;(0|1)>2,1;EP+0:4d5a;S1+4,3:9090\n\
             C;Engine:81-255,Target:0;0&1;41414141;0/abc/\n\
             D;Target:0;0&2;41414141;42424242\n\
             E;Engine:300-400,Target:0;0;41414141\n",
        );
        assert_eq!(db.logicals.len(), 2);
        assert!(db.logicals[0].subsigs[1].mods.wide && db.logicals[0].subsigs[1].mods.ascii);
        assert_eq!(db.logicals[1].tdb.file_size, Some((10, 20)));
        assert_eq!(db.report.unsupported(), 1);
        assert_eq!(db.report.invalid(), 1);
        assert_eq!(db.report.flevel_skipped, 1);
    }

    #[test]
    fn expressions_group_like_clamav() {
        let e = parse_expr("0&1|2").unwrap();
        // The first top-level operator splits: 0 & (1 | 2).
        assert!(
            matches!(&e, Expr::Op { and: true, r, .. } if matches!(**r, Expr::Op { and: false, .. }))
        );
        assert!(eval(&e, &[1, 0, 1]).0);
        assert!(!eval(&e, &[0, 1, 1]).0);
        let e = parse_expr("((0|1|2)>5,2)&(3|1)").unwrap();
        assert!(eval(&e, &[3, 3, 0, 1]).0);
        assert!(
            !eval(&e, &[6, 0, 0, 1]).0,
            "needs two distinct subsignatures"
        );
        assert!(!eval(&e, &[2, 3, 0, 0]).0 || eval(&e, &[2, 3, 0, 0]).0 == (5 < 5));
        let e = parse_expr("0=0&1").unwrap();
        assert!(eval(&e, &[0, 1]).0);
        assert!(!eval(&e, &[1, 1]).0);
        let e = parse_expr("0<2").unwrap();
        assert!(eval(&e, &[1]).0 && !eval(&e, &[2]).0);
        for bad in ["", "(", "0&", "&1", "0>", "a", "(0|1", "0)", "0>1,", "99"] {
            assert!(parse_expr(bad).is_err() || bad == "99", "{bad}");
        }
    }
}
