//! The compiled, immutable [`SignatureSet`] and its scan.
//!
//! # Design
//!
//! *Hash signatures* sit in tables sorted by (size, digest). A digest kind is
//! computed for a file only when some signature of that kind has the file's
//! size (or size `*`), so most files are never hashed at all.
//!
//! *Body signatures* (`.ndb` and `.ldb` subsignatures) are compiled to token
//! lists ([`crate::pattern`]). Each gets one of three strategies:
//!
//! 1. **Anchored**: the rarest 4-byte window of its literal bytes (by a static
//!    byte-frequency score) becomes its anchor. One pass over the data hashes
//!    every 4-byte window (ASCII letters folded) into a bitmap sized for the
//!    cache; only set bits look up the exact anchor table, and only exact
//!    anchor hits run the verifier. Patterns whose longest literal is 2 or 3
//!    bytes use a 2-byte direct table the same way. An anchored pattern with
//!    an offset is verified only when its start can lie in the offset's window.
//! 2. **Positioned**: no 4-byte literal, but an offset that pins the start to
//!    a small window (`n`, `n,shift`, `EOF-n`, `EP+n`, `Sx+n`, `SL+n` with a
//!    shift of at most [`POSITIONED_MAX_SHIFT`]). Verified in place (jumping
//!    between occurrences of a leading literal): no scanning.
//! 3. **Unanchored**: no literal of 2 bytes or more and no pinned offset
//!    (e.g. `4?4?4?4?`). Verified at every position: slow, so they are counted
//!    in [`SetStats::unanchored`] for `mxguard sigs info`.
//!
//! **No false negatives from the filter**: every position where an anchored
//! pattern can match has its anchor's bytes there; those bytes hash to a bit
//! that compilation set, and their exact key is in the table. The filter only
//! removes positions where the anchor cannot be.

use crate::db::{self, Database, HashEntry, LogicalSig, Names};
use crate::error::LoadReport;
use crate::exe::ExeInfo;
use crate::filetype::{self, FileType};
use crate::offset::{Base, Offset};
use crate::pattern::{self, Arena, Compiled, Memo, Tok, Verifier};
use crate::target::{self, RelOffsets, TargetMask};
use md5::{Digest, Md5};

pub mod cache;

/// Offsets whose window is at most this wide are verified in place, not through the filter.
pub const POSITIONED_MAX_SHIFT: u32 = 256;

/// What a pattern belongs to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Body(u32),
    Sub { lsig: u32, sub: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Pat {
    c: Compiled,
    owner: Owner,
    offset: Offset,
    target: u8,
    /// Offset of the filter window inside the anchor token.
    anchor_skip: u32,
}

#[derive(Debug)]
struct LsigMeta {
    name: u32,
    tdb: db::Tdb,
    expr: db::Expr,
    first_sub: u32,
    nsub: u32,
    /// True when the expression holds even with no subsignature matched.
    true_when_empty: bool,
    /// The expression counts matches; otherwise one match per subsignature is enough.
    counts: bool,
}

#[derive(Debug, Clone, Copy)]
struct BodyMeta {
    name: u32,
}

/// Exact-anchor table: key → range of pattern ids.
#[derive(Debug, Default)]
struct AnchorTable {
    /// Open addressing over `(key, start, len)`; `len == 0` marks an empty slot.
    slots: Vec<(u32, u32, u32)>,
    ids: Vec<u32>,
    bits: u32,
}

impl AnchorTable {
    fn build(mut pairs: Vec<(u32, u32)>) -> AnchorTable {
        pairs.sort_unstable();
        let mut distinct = 0usize;
        for (i, p) in pairs.iter().enumerate() {
            if i == 0 || pairs[i - 1].0 != p.0 {
                distinct += 1;
            }
        }
        let cap = (distinct * 2).next_power_of_two().max(16);
        let bits = cap.trailing_zeros();
        let mut slots = vec![(0u32, 0u32, 0u32); cap];
        let ids: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let mut i = 0;
        while i < pairs.len() {
            let key = pairs[i].0;
            let mut j = i;
            while j < pairs.len() && pairs[j].0 == key {
                j += 1;
            }
            let mut h = Self::slot(key, bits);
            while slots[h].2 != 0 {
                h = (h + 1) & (cap - 1);
            }
            slots[h] = (key, i as u32, (j - i) as u32);
            i = j;
        }
        AnchorTable { slots, ids, bits }
    }

    #[inline]
    fn slot(key: u32, bits: u32) -> usize {
        (key.wrapping_mul(0x85EB_CA6B)
            .rotate_left(13)
            .wrapping_mul(0xC2B2_AE35)
            >> (32 - bits)) as usize
    }

    #[inline]
    fn get(&self, key: u32) -> &[u32] {
        if self.slots.is_empty() {
            return &[];
        }
        let mask = self.slots.len() - 1;
        let mut h = Self::slot(key, self.bits);
        loop {
            let (k, s, l) = self.slots[h];
            if l == 0 {
                return &[];
            }
            if k == key {
                return &self.ids[s as usize..(s + l) as usize];
            }
            h = (h + 1) & mask;
        }
    }
}

/// Letters fold to upper case (and a few punctuation pairs collide: harmless, the
/// verifier is exact).
const FOLD4: u32 = 0xDFDF_DFDF;
const FOLD2: u16 = 0xDFDF;

/// Bitmap prefilter over 4-byte windows.
#[derive(Debug, Default)]
struct Filter4 {
    bits: Vec<u64>,
    shift: u32,
    table: AnchorTable,
}

impl Filter4 {
    /// Blocked Bloom probe: one 64-bit word and two bits in it (one memory access,
    /// about a tenth of the false candidates of a one-bit bitmap of the same size).
    #[inline]
    fn probe(x: u32, shift: u32) -> (usize, u64) {
        let h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let word = (h >> shift) as usize;
        let mask = (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63));
        (word, mask)
    }
}

/// Statistics about a compiled set, for `mxguard sigs info`.
#[derive(Debug, Clone, Default)]
pub struct SetStats {
    pub hash_sigs: usize,
    pub allow_list: usize,
    pub body_sigs: usize,
    pub logical_sigs: usize,
    pub patterns: usize,
    pub anchored4: usize,
    pub anchored2: usize,
    pub positioned: usize,
    pub unanchored: usize,
    pub filter_bytes: usize,
    pub approx_memory: usize,
}

/// A compiled hash entry (20 bytes for MD5): the name is implicit, see [`HashTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HashKey<const N: usize> {
    pub size: u32,
    pub hash: [u8; N],
}

/// Hash entries of one digest length in one vector sorted by (size, digest
/// prefix); entries of size `*` ([`db::ANY_SIZE`]) sort last. Entry `i` has name
/// id `first_name + i`: compilation lays the names out in entry order.
#[derive(Debug, Default)]
struct HashTable<const N: usize> {
    entries: Vec<HashKey<N>>,
    /// Index of the first `*`-size entry.
    any_from: usize,
    first_name: u32,
}

#[inline]
fn prefix64<const N: usize>(h: &[u8; N]) -> u64 {
    u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
}

impl<const N: usize> HashTable<N> {
    /// Sorts and deduplicates; with `names`, copies each kept entry's name from
    /// `from` into `names` in entry order (allow lists need no names).
    fn build(mut entries: Vec<HashEntry<N>>, from: &Names, names: Option<&mut Names>) -> Self {
        // Names are numbered in load order. For one (size, digest) ClamAV keeps only the
        // last loaded entry; so do we: sort with the name as tiebreak, keep the last.
        entries.sort_unstable_by_key(|e| {
            ((e.size as u128) << 96) | ((prefix64(&e.hash) as u128) << 32) | e.name as u128
        });
        let mut keep = vec![true; entries.len()];
        let mut r = 0usize;
        while r < entries.len() {
            let mut e = r + 1;
            while e < entries.len()
                && entries[e].size == entries[r].size
                && prefix64(&entries[e].hash) == prefix64(&entries[r].hash)
            {
                e += 1;
            }
            for a in r..e {
                // Runs of one (size, digest prefix) are tiny: quadratic is fine.
                if (a + 1..e).any(|b| entries[b].hash == entries[a].hash) {
                    keep[a] = false;
                }
            }
            r = e;
        }
        let kept = keep.iter().filter(|&&k| k).count();
        let mut keys = Vec::with_capacity(kept);
        let first_name = names.as_ref().map_or(0, |n| n.len() as u32);
        let mut names = names;
        for (e, k) in entries.iter().zip(&keep) {
            if *k {
                keys.push(HashKey {
                    size: e.size,
                    hash: e.hash,
                });
                if let Some(n) = names.as_deref_mut() {
                    n.copy_from(from, e.name);
                }
            }
        }
        drop(entries);
        let any_from = keys.partition_point(|e| e.size != db::ANY_SIZE);
        HashTable {
            entries: keys,
            any_from,
            first_name,
        }
    }

    /// Does any entry need this digest for a file of `size` bytes?
    fn wanted(&self, size: u64) -> bool {
        if self.any_from < self.entries.len() {
            return true;
        }
        let Ok(size) = u32::try_from(size) else {
            return false;
        };
        let sized = &self.entries[..self.any_from];
        let i = sized.partition_point(|e| e.size < size);
        sized.get(i).is_some_and(|e| e.size == size)
    }

    fn lookup_in(&self, from: usize, to: usize, size: u32, hash: &[u8; N], out: &mut Vec<u32>) {
        let list = &self.entries[from..to];
        let key = (size, prefix64(hash));
        let i = list.partition_point(|e| (e.size, prefix64(&e.hash)) < key);
        for (k, e) in list[i..].iter().enumerate() {
            if (e.size, prefix64(&e.hash)) != key {
                break;
            }
            if e.hash == *hash {
                out.push(self.first_name + (from + i + k) as u32);
            }
        }
    }

    fn lookup(&self, size: u64, hash: &[u8; N], out: &mut Vec<u32>) {
        if let Ok(size) = u32::try_from(size) {
            if size != db::ANY_SIZE {
                self.lookup_in(0, self.any_from, size, hash, out);
            }
        }
        self.lookup_in(self.any_from, self.entries.len(), db::ANY_SIZE, hash, out);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Debug, Default)]
struct Hashes {
    md5: HashTable<16>,
    sha1: HashTable<20>,
    sha256: HashTable<32>,
}

impl Hashes {
    fn build(l: db::HashLists, from: &Names, mut names: Option<&mut Names>) -> Hashes {
        Hashes {
            md5: HashTable::build(l.md5, from, names.as_deref_mut()),
            sha1: HashTable::build(l.sha1, from, names.as_deref_mut()),
            sha256: HashTable::build(l.sha256, from, names.as_deref_mut()),
        }
    }
    fn len(&self) -> usize {
        self.md5.len() + self.sha1.len() + self.sha256.len()
    }
}

/// A compiled signature database. Immutable; share it between threads with `Arc`.
#[derive(Debug)]
pub struct SignatureSet {
    names: Names,
    hashes: Hashes,
    allow: Hashes,
    arena: Arena,
    pats: Vec<Pat>,
    bodies: Vec<BodyMeta>,
    lsigs: Vec<LsigMeta>,
    f4: Filter4,
    /// 2-byte anchors: direct table indexed by the folded u16.
    f2: Vec<(u32, u32)>,
    /// One bit per folded u16 that has 2-byte anchors (8 KiB, stays in L1).
    f2_bits: Vec<u64>,
    f2_ids: Vec<u32>,
    positioned: Vec<u32>,
    unanchored: Vec<u32>,
    /// Logical signatures that must be evaluated even when nothing matched.
    always_eval: Vec<u32>,
    /// Some target-7 (sub)signature has a relative offset: ClamAV then matches the
    /// normalised text of a text file as a file of its own (offsets, sizes and
    /// hashes refer to it). See [`RelOffsets::NormalizedText`].
    t7_relative: bool,
    versions: Vec<(String, u32)>,
    report: LoadReport,
    stats: SetStats,
}

/// A signature that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection<'a> {
    pub name: std::borrow::Cow<'a, str>,
    pub kind: SigKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigKind {
    Hash,
    Body,
    Logical,
}

/// Per-thread scratch space reused across scans (no allocation per scanned byte,
/// few per scan).
#[derive(Default)]
pub struct Scratch {
    memo: Memo,
    body_done: Vec<u64>,
    touched_bodies: Vec<u32>,
    sub_count: Vec<u32>,
    sub_last: Vec<u32>,
    touched_subs: Vec<u32>,
    touched_lsigs: Vec<u32>,
    lsig_seen: Vec<u64>,
    names: Vec<u32>,
}

/// Per-scan matching options.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchOptions {
    /// Report every matching signature (otherwise stop at the first).
    pub all_match: bool,
    /// ClamAV's type name of the container the buffer was taken from
    /// (`CL_TYPE_ZIP`), for `Container:` conditions; `None` for a top-level file,
    /// which ClamAV calls `CL_TYPE_ANY`.
    pub container: Option<&'static str>,
}

/// Static commonness of a byte in executables and text (higher = more common).
fn byte_cost(b: u8) -> u32 {
    match b {
        0x00 => 40,
        0xff => 20,
        b' ' => 16,
        // Frequent x86 opcode and ModRM bytes (mov, push/pop ebp, call, ret, jcc, sub esp).
        0x8b | 0x89 | 0x55 | 0x5d | 0xc3 | 0xe8 | 0x83 | 0xec | 0xe5 | 0xc0 | 0x85 | 0xeb
        | 0xcc | 0x90 => 8,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b'h' | b'l' => 10,
        b'a'..=b'z' => 7,
        b'\n' | b'\r' | b'\t' => 10,
        0x01..=0x0f => 8,
        b'0'..=b'9' => 6,
        b'A'..=b'Z' => 5,
        0x80..=0xfe => 3,
        b'<' | b'>' | b'/' | b'=' | b'"' | b'.' | b',' | b'(' | b')' | b';' | b':' => 7,
        _ => 4,
    }
}

/// Static cost of a window: commonness of its bytes, repeated bytes penalised
/// (runs like `00000000` or `AAAA` are common in data).
fn window_cost(win: &[u8]) -> u32 {
    let c: u32 = win.iter().map(|&b| byte_cost(b)).sum();
    let repeats = (1..win.len())
        .filter(|&k| win[..k].contains(&win[k]))
        .count() as u32;
    c + repeats * 12
}

/// Best window of `w` bytes in `bytes`: lowest [`window_cost`].
fn best_window(bytes: &[u8], w: usize) -> Option<(usize, u32)> {
    if bytes.len() < w {
        return None;
    }
    (0..=bytes.len() - w)
        .map(|i| (i, window_cost(&bytes[i..i + w])))
        .min_by_key(|&(i, c)| (c, i))
}

/// Extra cost of a 4-byte anchor that `n` patterns could use: a gram many
/// signatures contain (a common x86 prologue, a common API name) is likely
/// common in scanned data too, and every hit on it verifies all of them.
fn popularity_cost(n: u32) -> u32 {
    16 * (32 - n.leading_zeros())
}

fn fold_key4(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & FOLD4
}
fn fold_key2(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]]) & FOLD2
}

impl SignatureSet {
    /// Compiles a parsed database. Deterministic; memory proportional to the database.
    pub fn compile(db: Database) -> SignatureSet {
        let Database {
            mut names,
            hashes,
            allow,
            bodies,
            logicals,
            mut arena,
            versions,
            report,
            ..
        } = db;
        names.finish();
        arena.finish();
        let mut pats: Vec<Pat> = Vec::with_capacity(bodies.len() + logicals.len() * 3);
        let mut body_meta = Vec::with_capacity(bodies.len());
        for (i, b) in bodies.into_iter().enumerate() {
            body_meta.push(BodyMeta { name: b.name });
            pats.push(Pat {
                c: b.pat,
                owner: Owner::Body(i as u32),
                offset: b.offset,
                target: b.target,
                anchor_skip: 0,
            });
        }
        let mut lsigs = Vec::with_capacity(logicals.len());
        let mut nsubs = 0u32;
        for (li, l) in logicals.into_iter().enumerate() {
            let LogicalSig {
                name,
                tdb,
                expr,
                subsigs,
            } = l;
            let nsub = subsigs.len() as u32;
            for (k, s) in subsigs.iter().enumerate() {
                for &c in &s.pats {
                    pats.push(Pat {
                        c,
                        owner: Owner::Sub {
                            lsig: li as u32,
                            sub: k as u32,
                        },
                        offset: s.offset,
                        target: tdb.target,
                        anchor_skip: 0,
                    });
                }
            }
            let zeros = vec![0u32; nsub as usize];
            let true_when_empty = db::eval(&expr, &zeros).0;
            let counts = expr_counts(&expr);
            lsigs.push(LsigMeta {
                name,
                tdb,
                expr,
                first_sub: nsubs,
                nsub,
                true_when_empty,
                counts,
            });
            nsubs += nsub;
        }

        // Strategy per pattern.
        let mut a4: Vec<(u32, u32)> = Vec::new();
        let mut a2: Vec<(u16, u32)> = Vec::new();
        let mut positioned = Vec::new();
        let mut unanchored = Vec::new();
        // About how many patterns contain each 4-byte gram (counted once per pattern;
        // hashed counters, so collisions can only overstate: a heuristic input).
        const POP_BITS: u32 = 22;
        let pop_slot = |g: u32| (g.wrapping_mul(0x9E37_79B1) >> (32 - POP_BITS)) as usize;
        let mut popularity: Vec<u16> = vec![0; 1 << POP_BITS];
        let mut grams: Vec<u32> = Vec::new();
        for p in &pats {
            grams.clear();
            for t in arena.slice(&p.c) {
                if let Tok::Lit { off, len } | Tok::LitI { off, len } = *t {
                    let b = &arena.bytes[off as usize..(off + len) as usize];
                    grams.extend(b.windows(4).map(fold_key4));
                }
            }
            grams.sort_unstable();
            grams.dedup();
            for &g in &grams {
                let c = &mut popularity[pop_slot(g)];
                *c = c.saturating_add(1);
            }
        }
        for (pi, p) in pats.iter_mut().enumerate() {
            let pi = pi as u32;
            let pinned = !matches!(p.offset.base, Base::Any | Base::SectionEntire(_))
                && p.offset.shift <= POSITIONED_MAX_SHIFT;
            let toks = arena.slice(&p.c);
            let popular = |k: u32| popularity[pop_slot(k)].max(1) as u32;
            let mut best4: Option<(u32, usize, u32, usize)> = None;
            let mut best2: Option<(u32, usize, u32, usize)> = None;
            for (ti, t) in toks.iter().enumerate() {
                let (off, len) = match *t {
                    Tok::Lit { off, len } | Tok::LitI { off, len } => (off as usize, len as usize),
                    _ => continue,
                };
                let bytes = &arena.bytes[off..off + len];
                if len >= 4 {
                    for skip in 0..=len - 4 {
                        let win = &bytes[skip..skip + 4];
                        let cost = window_cost(win) + popularity_cost(popular(fold_key4(win)));
                        if best4.is_none_or(|b| cost < b.0) {
                            best4 = Some((cost, ti, skip as u32, off + skip));
                        }
                    }
                } else if let Some((skip, cost)) = best_window(bytes, 2) {
                    if best2.is_none_or(|b| cost < b.0) {
                        best2 = Some((cost, ti, skip as u32, off + skip));
                    }
                }
            }
            // A 4-byte anchor costs nothing per scanned file; a pinned offset without
            // one is cheaper to check in place than through the 2-byte table.
            if let Some((_, ti, skip, at)) = best4 {
                p.c.anchor_tok = Some(ti as u32);
                p.anchor_skip = skip;
                a4.push((fold_key4(&arena.bytes[at..at + 4]), pi));
            } else if pinned {
                positioned.push(pi);
            } else if let Some((_, ti, skip, at)) = best2 {
                p.c.anchor_tok = Some(ti as u32);
                p.anchor_skip = skip;
                a2.push((fold_key2(&arena.bytes[at..at + 2]), pi));
            } else {
                unanchored.push(pi);
            }
        }

        // Bloom words sized at ~32 bits per anchor, between 64 Kibit and 32 Mibit.
        let nbits = (a4.len() * 32).next_power_of_two().clamp(1 << 16, 1 << 25);
        let nwords = nbits / 64;
        let mut bits = vec![0u64; nwords];
        let shift = 64 - nwords.trailing_zeros();
        for &(k, _) in &a4 {
            let (w, m) = Filter4::probe(k, shift);
            bits[w] |= m;
        }
        let stats_a4 = a4.len();
        let table = AnchorTable::build(a4);
        let f4 = Filter4 { bits, shift, table };

        let stats_a2 = a2.len();
        let mut f2_bits = vec![0u64; if a2.is_empty() { 0 } else { 1024 }];
        for &(k, _) in &a2 {
            f2_bits[(k >> 6) as usize] |= 1 << (k & 63);
        }
        let (f2, f2_ids) = if a2.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            a2.sort_unstable();
            let mut f2 = vec![(0u32, 0u32); 1 << 16];
            let ids: Vec<u32> = a2.iter().map(|p| p.1).collect();
            let mut i = 0;
            while i < a2.len() {
                let mut j = i;
                while j < a2.len() && a2[j].0 == a2[i].0 {
                    j += 1;
                }
                f2[a2[i].0 as usize] = (i as u32, (j - i) as u32);
                i = j;
            }
            (f2, ids)
        };

        let t7_relative = pats
            .iter()
            .any(|p| p.target == 7 && !matches!(p.offset.base, Base::Any | Base::Abs));
        let always_eval = lsigs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.true_when_empty)
            .map(|(i, _)| i as u32)
            .collect();
        // Lay the names out anew: hash signatures' names in their tables' order (so
        // entries need no name field), then the body and logical signatures'.
        let mut laid = names.empty_like();
        let hashes = Hashes::build(hashes, &names, Some(&mut laid));
        let allow = Hashes::build(allow, &names, None);
        for b in &mut body_meta {
            b.name = laid.copy_from(&names, b.name);
        }
        for l in &mut lsigs {
            l.name = laid.copy_from(&names, l.name);
        }
        drop(names);
        let mut names = laid;
        names.finish();
        let mut stats = SetStats {
            hash_sigs: hashes.len(),
            allow_list: allow.len(),
            body_sigs: body_meta.len(),
            logical_sigs: lsigs.len(),
            patterns: pats.len(),
            anchored4: stats_a4,
            anchored2: stats_a2,
            positioned: positioned.len(),
            unanchored: unanchored.len(),
            filter_bytes: f4.bits.len() * 8
                + f4.table.slots.len() * 12
                + f4.table.ids.len() * 4
                + f2.len() * 8,
            approx_memory: 0,
        };
        stats.approx_memory = stats.filter_bytes
            + names.bytes()
            + (hashes.md5.len() + allow.md5.len()) * std::mem::size_of::<HashKey<16>>()
            + (hashes.sha1.len() + allow.sha1.len()) * std::mem::size_of::<HashKey<20>>()
            + (hashes.sha256.len() + allow.sha256.len()) * std::mem::size_of::<HashKey<32>>()
            + arena.bytes.len()
            + arena.toks.len() * std::mem::size_of::<Tok>()
            + pats.len() * std::mem::size_of::<Pat>();
        SignatureSet {
            names,
            hashes,
            allow,
            arena,
            pats,
            bodies: body_meta,
            lsigs,
            f4,
            f2,
            f2_bits,
            f2_ids,
            positioned,
            unanchored,
            always_eval,
            t7_relative,
            versions,
            report,
            stats,
        }
    }

    /// The load report of the database this set was compiled from.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    pub fn stats(&self) -> &SetStats {
        &self.stats
    }

    /// Container versions (`daily` → 27000) loaded into this set.
    pub fn versions(&self) -> &[(String, u32)] {
        &self.versions
    }

    /// Total number of usable signatures.
    pub fn len(&self) -> usize {
        self.stats.hash_sigs + self.stats.body_sigs + self.stats.logical_sigs
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Scans one buffer (a whole file or object). Detects its type by magic bytes,
    /// parses executable headers when offsets need them, checks hashes, then body
    /// and logical signatures on each view the type calls for.
    ///
    /// Guarantees: no false negatives from the prefilter; never panics; allocation
    /// bounded by the number of matches plus one normalised copy per view.
    pub fn scan<'s>(
        &'s self,
        data: &[u8],
        opts: MatchOptions,
        scratch: &mut Scratch,
    ) -> Vec<Detection<'s>> {
        self.scan_typed(data, filetype::detect(data), opts, scratch)
    }

    /// Like [`scan`](Self::scan) with the type already known.
    ///
    /// Hashes are checked on the file's bytes (never for HTML, whose raw bytes
    /// clamscan does not match) and, when the database puts text normalisation in
    /// "file" mode (see [`target::RelOffsets::NormalizedText`]), on the normalised text.
    pub fn scan_typed<'s>(
        &'s self,
        data: &[u8],
        ft: FileType,
        opts: MatchOptions,
        scratch: &mut Scratch,
    ) -> Vec<Detection<'s>> {
        let mut out = Vec::new();
        let views = target::views(data, ft);
        // Buffers whose hashes are checked: the raw file when some view is raw, the
        // normalised text in file mode.
        let mut hashed: Vec<&[u8]> = Vec::new();
        if views.iter().any(|v| !v.normalized)
            || (views.is_empty() && !matches!(ft, FileType::Html | FileType::Ignored))
        {
            hashed.push(data);
        }
        if self.t7_relative {
            for v in &views {
                if v.kind == target::ViewKind::NormalizedText {
                    hashed.push(&v.data);
                }
            }
        }
        // Allow list first: an allow-listed file reports nothing.
        for h in &hashed {
            if self.hash_check(&self.allow, h, &mut scratch.names) {
                scratch.names.clear();
                return out;
            }
        }
        for h in &hashed {
            self.hash_check(&self.hashes, h, &mut scratch.names);
        }
        for &n in &scratch.names {
            out.push(Detection {
                name: self.names.get(n),
                kind: SigKind::Hash,
            });
            if !opts.all_match {
                scratch.names.clear();
                return out;
            }
        }
        scratch.names.clear();
        if self.pats.is_empty() && self.always_eval.is_empty() {
            return out;
        }
        for view in &views {
            // FileSize sees the normalised size only in file mode.
            let file_size = if view.kind == target::ViewKind::NormalizedText && !self.t7_relative {
                data.len()
            } else {
                view.data.len()
            };
            self.scan_view(
                &view.data,
                view.targets,
                &view.offsets,
                file_size,
                opts,
                scratch,
                &mut out,
            );
            if !opts.all_match && !out.is_empty() {
                break;
            }
        }
        // The same signature may fire in several views (clamscan prints it once per
        // view): report it once.
        let mut seen = std::collections::HashSet::new();
        out.retain(|d| seen.insert((d.name.clone(), d.kind)));
        out
    }

    /// Computes only the digests some entry needs for this size; pushes matching names.
    fn hash_check(&self, h: &Hashes, data: &[u8], names: &mut Vec<u32>) -> bool {
        let size = data.len() as u64;
        let before = names.len();
        if h.md5.wanted(size) {
            let d: [u8; 16] = Md5::digest(data).into();
            h.md5.lookup(size, &d, names);
        }
        if h.sha1.wanted(size) {
            let d: [u8; 20] = sha1::Sha1::digest(data).into();
            h.sha1.lookup(size, &d, names);
        }
        if h.sha256.wanted(size) {
            let d: [u8; 32] = sha2::Sha256::digest(data).into();
            h.sha256.lookup(size, &d, names);
        }
        names.len() > before
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_view<'s>(
        &'s self,
        data: &[u8],
        targets: TargetMask,
        offsets: &RelOffsets,
        file_size: usize,
        opts: MatchOptions,
        sc: &mut Scratch,
        out: &mut Vec<Detection<'s>>,
    ) {
        // Reset scratch state.
        sc.memo.reset_buffer();
        let nb = self.bodies.len().div_ceil(64);
        if sc.body_done.len() != nb {
            sc.body_done = vec![0; nb];
        }
        let ns: usize = self.lsigs.iter().map(|l| l.nsub as usize).sum();
        if sc.sub_count.len() != ns {
            sc.sub_count = vec![0; ns];
            sc.sub_last = vec![u32::MAX; ns];
        }
        let nl = self.lsigs.len().div_ceil(64);
        if sc.lsig_seen.len() != nl {
            sc.lsig_seen = vec![0; nl];
        }
        let exe = match offsets {
            RelOffsets::Exe(info) => Some(info),
            _ => None,
        };
        let mut ctx = Ctx {
            set: self,
            data,
            targets,
            offsets,
            exe,
            file_size,
            all: opts.all_match,
            container: opts.container.unwrap_or("CL_TYPE_ANY"),
            stop: false,
            out,
            sc,
        };

        ctx.run_positioned();
        if !ctx.stop {
            ctx.run_filters();
        }
        if !ctx.stop {
            for &pi in &self.unanchored {
                ctx.run_everywhere(pi);
                if ctx.stop {
                    break;
                }
            }
        }
        if !ctx.stop {
            ctx.eval_lsigs();
        }
        ctx.reset();
    }
}

/// Whether an expression uses counts (then every match of every subsignature matters).
fn expr_counts(e: &db::Expr) -> bool {
    match e {
        db::Expr::Sub { cmp, .. } => cmp.is_some(),
        db::Expr::Op { l, r, cmp, .. } => cmp.is_some() || expr_counts(l) || expr_counts(r),
    }
}

struct Ctx<'s, 'd, 'o, 'x> {
    set: &'s SignatureSet,
    data: &'d [u8],
    targets: TargetMask,
    offsets: &'x RelOffsets,
    exe: Option<&'x ExeInfo>,
    /// The size `FileSize` conditions compare with.
    file_size: usize,
    all: bool,
    /// The container's ClamAV type name (`CL_TYPE_ANY` at the top).
    container: &'static str,
    stop: bool,
    out: &'o mut Vec<Detection<'s>>,
    sc: &'o mut Scratch,
}

impl<'s> Ctx<'s, '_, '_, '_> {
    /// Is there still a reason to verify pattern `pi`?
    #[inline]
    fn wanted(&self, pi: u32) -> bool {
        let p = &self.set.pats[pi as usize];
        if !self.targets.contains(p.target) {
            return false;
        }
        match p.owner {
            Owner::Body(b) => self.sc.body_done[(b >> 6) as usize] >> (b & 63) & 1 == 0,
            Owner::Sub { lsig, sub } => {
                let l = &self.set.lsigs[lsig as usize];
                l.counts || self.sc.sub_count[(l.first_sub + sub) as usize] == 0
            }
        }
    }

    fn record(&mut self, pi: u32, start: usize) {
        let p = &self.set.pats[pi as usize];
        match p.owner {
            Owner::Body(b) => {
                let w = &mut self.sc.body_done[(b >> 6) as usize];
                if *w >> (b & 63) & 1 == 0 {
                    *w |= 1 << (b & 63);
                    self.sc.touched_bodies.push(b);
                    let name = self.set.names.get(self.set.bodies[b as usize].name);
                    self.out.push(Detection {
                        name,
                        kind: SigKind::Body,
                    });
                    if !self.all {
                        self.stop = true;
                    }
                }
            }
            Owner::Sub { lsig, sub } => {
                let l = &self.set.lsigs[lsig as usize];
                let si = (l.first_sub + sub) as usize;
                let start = start as u32;
                let last = self.sc.sub_last[si];
                // ClamAV counts a subsignature match only at a later start than the last one.
                if self.sc.sub_count[si] == 0 || last == u32::MAX || start > last {
                    if self.sc.sub_count[si] == 0 {
                        self.sc.touched_subs.push(si as u32);
                    }
                    self.sc.sub_count[si] += 1;
                    self.sc.sub_last[si] = start;
                    let w = &mut self.sc.lsig_seen[(lsig >> 6) as usize];
                    if *w >> (lsig & 63) & 1 == 0 {
                        *w |= 1 << (lsig & 63);
                        self.sc.touched_lsigs.push(lsig);
                    }
                }
            }
        }
    }

    /// Where pattern `p` may match in this view, following how ClamAV resolves
    /// relative offsets there (see [`RelOffsets`]); `None`: it cannot match.
    fn window(&self, p: &Pat) -> Option<crate::offset::Window> {
        let off = &p.offset;
        let relative = !matches!(off.base, Base::Any | Base::Abs);
        if relative {
            let ok = match self.offsets {
                RelOffsets::Eof => off.base == Base::Eof,
                RelOffsets::Exe(_) => true,
                RelOffsets::Unresolved => false,
                RelOffsets::NormalizedText => {
                    off.base == Base::Eof && (p.target == 7 || self.set.t7_relative)
                }
            };
            if !ok {
                return None;
            }
        }
        off.window(self.data.len(), self.exe)
    }

    /// Positioned patterns: verify at each start of their window.
    fn run_positioned(&mut self) {
        for &pi in &self.set.positioned {
            if !self.wanted(pi) {
                continue;
            }
            let p = self.set.pats[pi as usize];
            let Some(w) = self.window(&p) else {
                continue;
            };
            let toks = self.set.arena.slice(&p.c);
            let lead = match toks.first() {
                Some(Tok::Lit { off, len }) => {
                    Some(&self.set.arena.bytes[*off as usize..(*off + *len) as usize])
                }
                _ => None,
            };
            let mut s = w.start_lo;
            while s <= w.start_hi {
                if let Some(l) = lead {
                    // Only starts where the leading literal is.
                    let end = w.start_hi.saturating_add(l.len()).min(self.data.len());
                    match (s < end)
                        .then(|| memchr::memmem::find(&self.data[s..end], l))
                        .flatten()
                    {
                        Some(o) => s += o,
                        None => break,
                    }
                }
                let at = s;
                s += 1;
                self.sc.memo.clear();
                let mut v = Verifier {
                    ar: &self.set.arena,
                    data: self.data,
                    memo: &mut self.sc.memo,
                };
                if v.fwd(toks, 0, at, w.end_max, true, &mut |_, _| true) {
                    self.record(pi, at);
                    if self.stop || !self.wanted(pi) {
                        break;
                    }
                }
            }
            if self.stop {
                return;
            }
        }
    }

    /// Verifies pattern `pi` with its anchor token starting at `at`.
    #[inline]
    fn verify_anchored(&mut self, pi: u32, at: usize) {
        let p = self.set.pats[pi as usize];
        let Some(a) = p.c.anchor_tok else { return };
        let toks = self.set.arena.slice(&p.c);
        let a = a as usize;
        let tok = toks[a];
        let Some(w) = (if p.offset.is_any() {
            Some(crate::offset::Window {
                start_lo: 0,
                start_hi: self.data.len(),
                end_max: self.data.len(),
            })
        } else {
            self.window(&p)
        }) else {
            return;
        };
        self.sc.memo.clear();
        let mut v = Verifier {
            ar: &self.set.arena,
            data: self.data,
            memo: &mut self.sc.memo,
        };
        if !v.anchor_ok(&tok, at) {
            return;
        }
        let after = at + pattern::fixed_width(&tok);
        if after > w.end_max || !v.fwd(&toks[a + 1..], 0, after, w.end_max, true, &mut |_, _| true)
        {
            return;
        }
        let mut start = None;
        let found = v.bwd(&toks[..a], a, at, true, &mut |_, s| {
            if s >= w.start_lo && s <= w.start_hi {
                start = Some(s);
                true
            } else {
                false
            }
        });
        if found {
            self.record(pi, start.unwrap_or(at));
        }
    }

    fn run_filters(&mut self) {
        let set = self.set;
        let data = self.data;
        let f4 = &set.f4;
        if !f4.table.ids.is_empty() && data.len() >= 4 {
            let bits = &f4.bits[..];
            let shift = f4.shift;
            for (i, w) in data.windows(4).enumerate() {
                let x = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) & FOLD4;
                let (wi, m) = Filter4::probe(x, shift);
                if bits[wi] & m != m {
                    continue;
                }
                for &pi in f4.table.get(x) {
                    if !self.wanted(pi) {
                        continue;
                    }
                    let skip = set.pats[pi as usize].anchor_skip as usize;
                    if i >= skip {
                        self.verify_anchored(pi, i - skip);
                        if self.stop {
                            return;
                        }
                    }
                }
            }
        }
        if !set.f2_ids.is_empty() && data.len() >= 2 {
            for (i, w) in data.windows(2).enumerate() {
                let x = u16::from_le_bytes([w[0], w[1]]) & FOLD2;
                if set.f2_bits[(x >> 6) as usize] >> (x & 63) & 1 == 0 {
                    continue;
                }
                let (s, l) = set.f2[x as usize];
                if l == 0 {
                    continue;
                }
                for &pi in &set.f2_ids[s as usize..(s + l) as usize] {
                    if !self.wanted(pi) {
                        continue;
                    }
                    let skip = set.pats[pi as usize].anchor_skip as usize;
                    if i >= skip {
                        self.verify_anchored(pi, i - skip);
                        if self.stop {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Slow path for patterns with no anchor: try every start.
    fn run_everywhere(&mut self, pi: u32) {
        if !self.wanted(pi) {
            return;
        }
        let p = self.set.pats[pi as usize];
        let Some(w) = self.window(&p) else {
            return;
        };
        let toks = self.set.arena.slice(&p.c);
        for s in w.start_lo..=w.start_hi.min(self.data.len()) {
            self.sc.memo.clear();
            let mut v = Verifier {
                ar: &self.set.arena,
                data: self.data,
                memo: &mut self.sc.memo,
            };
            if v.fwd(toks, 0, s, w.end_max, true, &mut |_, _| true) {
                self.record(pi, s);
                if self.stop || !self.wanted(pi) {
                    return;
                }
            }
        }
    }

    fn tdb_ok(&self, tdb: &db::Tdb) -> bool {
        if !self.targets.contains(tdb.target) {
            return false;
        }
        let size = self.file_size as u64;
        if let Some((lo, hi)) = tdb.file_size {
            if size < lo || size > hi {
                return false;
            }
        }
        if let Some((lo, hi)) = tdb.entry_point {
            match self.exe.and_then(|e| e.entry_point) {
                Some(ep) if ep >= lo && ep <= hi => {}
                _ => return false,
            }
        }
        if let Some((lo, hi)) = tdb.sections {
            match self.exe.map(|e| e.sections.len() as u64) {
                Some(n) if n >= lo && n <= hi => {}
                _ => return false,
            }
        }
        // `Container:` names the immediate container's type; a top-level file's is CL_TYPE_ANY.
        // The `Intermediates` chain is not tracked: such signatures never match.
        if let Some(c) = &tdb.container {
            if c != self.container {
                return false;
            }
        }
        if tdb.intermediates.is_some() {
            return false;
        }
        true
    }

    fn eval_lsigs(&mut self) {
        let set = self.set;
        let mut cand: Vec<u32> = self.sc.touched_lsigs.clone();
        cand.extend_from_slice(&set.always_eval);
        cand.sort_unstable();
        cand.dedup();
        for li in cand {
            let l = &set.lsigs[li as usize];
            if !self.tdb_ok(&l.tdb) {
                continue;
            }
            let counts = &self.sc.sub_count[l.first_sub as usize..(l.first_sub + l.nsub) as usize];
            if db::eval(&l.expr, counts).0 {
                self.out.push(Detection {
                    name: set.names.get(l.name),
                    kind: SigKind::Logical,
                });
                if !self.all {
                    return;
                }
            }
        }
    }

    fn reset(&mut self) {
        for b in self.sc.touched_bodies.drain(..) {
            self.sc.body_done[(b >> 6) as usize] = 0;
        }
        for s in self.sc.touched_subs.drain(..) {
            self.sc.sub_count[s as usize] = 0;
            self.sc.sub_last[s as usize] = u32::MAX;
        }
        for l in self.sc.touched_lsigs.drain(..) {
            self.sc.lsig_seen[(l >> 6) as usize] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn set_of(kind: DbKind, text: &str) -> SignatureSet {
        let mut db = Database::new();
        db.load_text(Path::new("t"), kind, text.as_bytes());
        assert!(db.report.problems.is_empty(), "{:?}", db.report.problems);
        SignatureSet::compile(db)
    }

    /// Data must be 6 bytes or more: like clamscan, smaller buffers get no body scan.
    fn hits(set: &SignatureSet, data: &[u8]) -> Vec<String> {
        let mut sc = Scratch::default();
        let mut v: Vec<String> = set
            .scan_typed(
                data,
                FileType::Binary,
                MatchOptions {
                    all_match: true,
                    container: None,
                },
                &mut sc,
            )
            .into_iter()
            .map(|d| d.name.to_string())
            .collect();
        v.sort();
        v
    }

    use crate::db::DbKind;

    /// (hex signature, data, should match)
    const NDB: &[(&str, &[u8], bool)] = &[
        ("41424344", b"xxABCDxx", true),
        ("41424344", b"xxABCxDxx", false),
        ("4142??4445", b"..ABzDE..", true),
        ("41424?44", b"..ABCD", true),
        ("41424?44", b"..ABSD", false),
        ("4142?344", b"..ABSD", true),
        ("41424344*45464748", b"ABCD....lots....EFGH", true),
        ("41424344*45464748", b"EFGH ABCD", false),
        ("41424344{2}45464748", b"ABCDxxEFGH", true),
        ("41424344{2}45464748", b"ABCDxEFGH", false),
        ("41424344{-2}45464748", b"ABCDEFGH", true),
        ("41424344{-2}45464748", b"ABCDxxxEFGH", false),
        ("41424344{2-}45464748", b"ABCDxEFGH", false),
        ("41424344{2-}45464748", b"ABCDxxxxxxEFGH", true),
        ("41424344{1-3}45464748", b"ABCDxxEFGH", true),
        ("41424344{1-3}45464748", b"ABCDxxxxEFGH", false),
        ("41424344(45|46)4748", b"ABCDFGH", true),
        ("41424344(45|46)4748", b"ABCDXGH", false),
        ("41424344(4546|5859)4748", b"ABCDXYGH", true),
        ("41424344!(45|46)4748", b"ABCDXGH", true),
        ("41424344!(45|46)4748", b"ABCDEGH", false),
        ("41424344(45|4647)4849", b"ABCDFGHI", true),
        ("41424344(45|4647)4849", b"ABCDEHI", true),
        ("41424344(45|4647)4849", b"ABCDFHI", false),
        ("61[2-3]41424344", b"axxABCD", true),
        ("61[2-3]41424344", b"axxxxABCD", false),
        ("41424344[1-2]7a", b"ABCDxz", true),
        ("41424344[1-2]7a", b"ABCDz", false),
        ("(B)41424344", b"ABCD..", true),
        ("(B)41424344", b" ABCD.", true),
        ("(B)41424344", b"xABCD.", false),
        ("41424344(B)", b"ABCD x", true),
        ("41424344(L)", b"ABCD\r\nx", true),
        ("41424344(L)", b"ABCDx", false),
        ("4142(L)4344", b"AB\r\nCD", true),
        ("4142(L)4344", b"AB\nCD.", true),
        ("4142(W)4344", b"AB-CD.", true),
        ("4142(W)4344", b"ABxCD.", false),
        ("(W)41424344(W)", b"(ABCD)", true),
        ("(W)41424344(W)", b"xABCD)", false),
        ("41424344*(B)45464748", b"ABCD, EFGH", true),
    ];

    #[test]
    fn ndb_features() {
        for (i, (sig, data, want)) in NDB.iter().enumerate() {
            let set = set_of(DbKind::Ndb, &format!("S{i}:0:*:{sig}\n"));
            let got = !hits(&set, data).is_empty();
            assert_eq!(
                got,
                *want,
                "case {i}: {sig} on {:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn offsets() {
        let set = set_of(
            DbKind::Ndb,
            "Abs:0:2:41424344\nFloat:0:1,3:41424344\nEof:0:EOF-4:41424344\nShortAny:0:*:4142\n",
        );
        assert_eq!(
            hits(&set, b"xxABCD"),
            vec!["Abs", "Eof", "Float", "ShortAny"]
        );
        assert_eq!(hits(&set, b"xxxxxABCDx"), vec!["ShortAny"]);
        assert_eq!(hits(&set, b"xxxxABCDx"), vec!["Float", "ShortAny"]);
    }

    #[test]
    fn logical_counts_and_modifiers() {
        let set = set_of(
            DbKind::Ldb,
            "Two;Engine:81-255,Target:0;0>1;41424344\n\
             NoCase;Engine:81-255,Target:0;0;6162636465::i\n\
             Wide;Engine:81-255,Target:0;0;6162636465::w\n\
             WideAscii;Engine:81-255,Target:0;0;6162636465::wa\n\
             Full;Engine:81-255,Target:0;0;6162636465::f\n\
             Block;Engine:81-255,Target:0;(0|1)>2,2;5a5a5a5a;59595959\n\
             Size;Engine:81-255,Target:0,FileSize:1-8;0;41424344\n",
        );
        assert_eq!(hits(&set, b"ABCD ABCD"), vec!["Two"]);
        assert_eq!(hits(&set, b"xxABCDE"), vec!["NoCase", "Size"]);
        assert_eq!(hits(&set, b"a\0b\0c\0d\0e\0"), vec!["Wide", "WideAscii"]);
        assert_eq!(hits(&set, b"(abcde)"), vec!["Full", "NoCase", "WideAscii"]);
        assert_eq!(hits(&set, b"xabcdex"), vec!["NoCase", "WideAscii"]);
        assert_eq!(hits(&set, b"ZZZZ ZZZZ YYYY"), vec!["Block"]);
        assert_eq!(hits(&set, b"ZZZZ ZZZZ ZZZZ"), Vec::<String>::new());
        assert_eq!(hits(&set, b"ABCD  "), vec!["Size"]);
    }

    #[test]
    fn hashes_only_when_size_matches_and_allow_list_wins() {
        let mut db = Database::new();
        db.load_text(
            Path::new("t.hdb"),
            DbKind::Hdb,
            b"5eb63bbbe01eeed093cb22bb8f5acdc3:11:Hello.Md5\n",
        );
        db.load_text(
            Path::new("t.ndb"),
            DbKind::Ndb,
            b"Hello.Body:0:*:68656c6c6f\n",
        );
        let set = SignatureSet::compile(db);
        assert_eq!(hits(&set, b"hello world"), vec!["Hello.Body", "Hello.Md5"]);
        assert!(set.hashes.md5.wanted(11) && !set.hashes.md5.wanted(12));
        let mut db = Database::new();
        db.load_text(
            Path::new("t.ndb"),
            DbKind::Ndb,
            b"Hello.Body:0:*:68656c6c6f\n",
        );
        db.load_text(
            Path::new("t.fp"),
            DbKind::Fp,
            b"5eb63bbbe01eeed093cb22bb8f5acdc3:11:whatever\n",
        );
        let set = SignatureSet::compile(db);
        assert!(hits(&set, b"hello world").is_empty());
        assert_eq!(hits(&set, b"hello world!"), vec!["Hello.Body"]);
    }
}
