//! Compiled body patterns and their verifier.
//!
//! A parsed hex signature ([`crate::hex::Node`]) is compiled into a flat list
//! of tokens stored in a shared [`Arena`] (one allocation for the whole
//! database, not one per signature). The prefilter proposes a position for one
//! literal token of a pattern, its *anchor*; the verifier then checks the
//! tokens after the anchor forwards and the tokens before it backwards.
//!
//! Guarantees:
//! - The verifier is exact: it reports a match at an anchor position if and
//!   only if some assignment of the gaps and alternatives matches the whole
//!   pattern with the anchor there and the start inside the offset window.
//! - Work is bounded: every (token, position) pair of a gap branch is explored
//!   at most once per verification (failures are memoised), so a verification
//!   costs at most `tokens × buffer length` steps even for hostile patterns.
//! - It never panics on any input and never allocates per scanned byte (the
//!   memo is reused across verifications).

use crate::hex::{Class, Node, Side};
use std::collections::{HashMap, HashSet};

/// Unbounded gap maximum.
pub(crate) const INF: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Exact bytes `arena.bytes[off..off+len]`.
    Lit { off: u32, len: u32 },
    /// ASCII case-insensitive bytes, stored lowercased.
    LitI { off: u32, len: u32 },
    /// One byte under a mask (`mask == 0`: any byte).
    Mask { val: u8, mask: u8 },
    /// `n` arbitrary bytes.
    Skip(u32),
    /// One byte in set `arena.sets[idx]`.
    Set(u32),
    /// `count` strings of `len` bytes at `arena.bytes[off..]`; match one (or, negated, none).
    Strs {
        off: u32,
        len: u16,
        count: u16,
        negated: bool,
        nocase: bool,
    },
    /// Generic alternates: `arena.alts[first..first+count]` are token ranges.
    Alt { first: u32, count: u32 },
    /// Between `min` and `max` bytes (`max == INF`: unbounded).
    Gap { min: u32, max: u32 },
    /// A consuming character class.
    Class { class: Class, negated: bool },
    /// A zero-width class check at a part's left or right edge.
    Edge {
        class: Class,
        negated: bool,
        left: bool,
    },
    /// `[x-y]`: zero-width check that a byte sits `min..=max` bytes outside this edge.
    Near {
        val: u8,
        mask: u8,
        min: u8,
        max: u8,
        left: bool,
    },
}

/// Storage shared by all compiled patterns of one signature set.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    pub bytes: Vec<u8>,
    pub toks: Vec<Tok>,
    pub sets: Vec<[u64; 4]>,
    pub alts: Vec<(u32, u32)>,
}

/// Compile options from `.ldb` subsignature modifiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modifiers {
    pub nocase: bool,
    pub wide: bool,
    pub ascii: bool,
    pub fullword: bool,
}

impl Modifiers {
    pub fn parse(s: &str) -> Result<Modifiers, crate::error::LineError> {
        let mut m = Modifiers::default();
        for c in s.chars() {
            match c {
                'i' => m.nocase = true,
                'w' => m.wide = true,
                'a' => m.ascii = true,
                'f' => m.fullword = true,
                _ => {
                    return Err(crate::error::LineError::syntax(format!(
                        "unknown subsignature modifier '{c}'"
                    )))
                }
            }
        }
        Ok(m)
    }
}

/// A compiled pattern: a token range plus where its anchor is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compiled {
    pub start: u32,
    pub len: u32,
    /// Index (within the pattern) of the literal token used as anchor, if any.
    pub anchor_tok: Option<u32>,
}

/// Node lists for the variants a subsignature matches (two with `::wa`).
pub(crate) fn variants(nodes: &[Node], m: Modifiers) -> Vec<Vec<Node>> {
    let mut base: Vec<Node> = nodes.to_vec();
    if m.fullword {
        base = near_to_gap(&base);
        base.insert(
            0,
            Node::Class {
                class: Class::Word,
                negated: false,
            },
        );
        base.push(Node::Class {
            class: Class::Word,
            negated: false,
        });
    }
    let mut out = Vec::new();
    if m.wide {
        out.push(widen(&near_to_gap(&base)));
        if m.ascii {
            out.push(base);
        }
    } else {
        out.push(base);
    }
    out
}

/// ClamAV rewrites `[x-y]` as `{x-y}` under `f` and `w`.
fn near_to_gap(nodes: &[Node]) -> Vec<Node> {
    let mut out = Vec::with_capacity(nodes.len() + 2);
    for n in nodes {
        match *n {
            Node::Near {
                val,
                mask,
                min,
                max,
                side,
            } => {
                let gap: Vec<Node> = if min == max {
                    (0..min).map(|_| Node::Byte { val: 0, mask: 0 }).collect()
                } else {
                    vec![Node::Gap {
                        min: min as u32,
                        max: Some(max as u32),
                    }]
                };
                if side == Side::Left {
                    out.push(Node::Byte { val, mask });
                    out.extend(gap);
                } else {
                    out.extend(gap);
                    out.push(Node::Byte { val, mask });
                }
            }
            ref other => out.push(other.clone()),
        }
    }
    out
}

/// ClamAV's wide transform: every byte position is followed by `00`; gaps and classes unchanged.
fn widen(nodes: &[Node]) -> Vec<Node> {
    let mut out = Vec::with_capacity(nodes.len() * 2);
    for n in nodes {
        match n {
            Node::Byte { .. } => {
                out.push(n.clone());
                out.push(Node::Byte { val: 0, mask: 0xff });
            }
            Node::Alt { alts, negated } => out.push(Node::Alt {
                alts: alts.iter().map(|a| widen(a)).collect(),
                negated: *negated,
            }),
            other => out.push(other.clone()),
        }
    }
    out
}

fn fold(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

impl Arena {
    /// Compiles one node list. `nocase` folds ASCII letters.
    pub(crate) fn compile(&mut self, nodes: &[Node], nocase: bool) -> Compiled {
        let toks = self.compile_seq(nodes, nocase);
        let start = self.toks.len() as u32;
        let len = toks.len() as u32;
        self.toks.extend(toks);
        Compiled {
            start,
            len,
            anchor_tok: None,
        }
    }

    /// Compiles a sequence into a fresh token list; alternatives go into the arena.
    fn compile_seq(&mut self, nodes: &[Node], nocase: bool) -> Vec<Tok> {
        let mut out = Vec::with_capacity(nodes.len());
        let n = nodes.len();
        for (i, node) in nodes.iter().enumerate() {
            let part_start = i == 0 || matches!(nodes[i - 1], Node::Gap { .. });
            let part_end = i + 1 == n || matches!(nodes[i + 1], Node::Gap { .. });
            match node {
                Node::Byte { val, mask } => self.push_byte(&mut out, *val, *mask, nocase),
                Node::Gap { min, max } => out.push(Tok::Gap {
                    min: *min,
                    max: max.unwrap_or(INF),
                }),
                Node::Class { class, negated } => out.push(if part_start {
                    Tok::Edge {
                        class: *class,
                        negated: *negated,
                        left: true,
                    }
                } else if part_end {
                    Tok::Edge {
                        class: *class,
                        negated: *negated,
                        left: false,
                    }
                } else {
                    Tok::Class {
                        class: *class,
                        negated: *negated,
                    }
                }),
                Node::Near {
                    val,
                    mask,
                    min,
                    max,
                    side,
                } => out.push(Tok::Near {
                    val: *val,
                    mask: *mask,
                    min: *min,
                    max: *max,
                    left: *side == Side::Left,
                }),
                Node::Alt { alts, negated } => {
                    let t = self.alt_tok(alts, *negated, nocase);
                    out.push(t)
                }
            }
        }
        out
    }

    fn push_byte(&mut self, out: &mut Vec<Tok>, val: u8, mask: u8, nocase: bool) {
        if mask == 0 {
            if let Some(Tok::Skip(k)) = out.last_mut() {
                *k += 1;
            } else {
                out.push(Tok::Skip(1));
            }
            return;
        }
        if mask != 0xff {
            out.push(Tok::Mask { val, mask });
            return;
        }
        // Under `nocase` every literal byte is stored folded (non-letters fold to themselves).
        let end = self.bytes.len() as u32;
        match out.last_mut() {
            Some(Tok::Lit { off, len }) if !nocase && *off + *len == end => {
                *len += 1;
                self.bytes.push(val);
                return;
            }
            Some(Tok::LitI { off, len }) if nocase && *off + *len == end => {
                *len += 1;
                self.bytes.push(fold(val));
                return;
            }
            _ => {}
        }
        if nocase {
            out.push(Tok::LitI { off: end, len: 1 });
            self.bytes.push(fold(val));
        } else {
            out.push(Tok::Lit { off: end, len: 1 });
            self.bytes.push(val);
        }
    }

    fn alt_tok(&mut self, alts: &[Vec<Node>], negated: bool, nocase: bool) -> Tok {
        let plain = |a: &Vec<Node>| a.iter().all(|n| matches!(n, Node::Byte { mask: 0xff, .. }));
        let len0 = alts[0].len();
        if alts.iter().all(|a| a.len() == 1 && plain(a)) {
            let mut set = [0u64; 4];
            for a in alts {
                if let Node::Byte { val, .. } = a[0] {
                    let vs = if nocase {
                        [val.to_ascii_lowercase(), val.to_ascii_uppercase()]
                    } else {
                        [val, val]
                    };
                    for v in vs {
                        set[(v >> 6) as usize] |= 1 << (v & 63);
                    }
                }
            }
            if negated {
                for w in &mut set {
                    *w = !*w;
                }
            }
            self.sets.push(set);
            return Tok::Set(self.sets.len() as u32 - 1);
        }
        if len0 <= u16::MAX as usize
            && alts.len() <= u16::MAX as usize
            && alts.iter().all(|a| a.len() == len0 && plain(a))
        {
            let off = self.bytes.len() as u32;
            for a in alts {
                for n in a {
                    if let Node::Byte { val, .. } = n {
                        self.bytes.push(if nocase { fold(*val) } else { *val });
                    }
                }
            }
            return Tok::Strs {
                off,
                len: len0 as u16,
                count: alts.len() as u16,
                negated,
                nocase,
            };
        }
        // Generic alternates: each alternative becomes its own token range in the arena.
        let mut ranges = Vec::with_capacity(alts.len());
        for a in alts {
            let c = self.compile(a, nocase);
            ranges.push((c.start, c.len));
        }
        let first = self.alts.len() as u32;
        self.alts.extend(ranges);
        Tok::Alt {
            first,
            count: alts.len() as u32,
        }
    }

    /// Appends another arena; returns the offset to add to its patterns' `start`.
    /// Every index inside the moved tokens is rebased.
    pub(crate) fn absorb(&mut self, o: Arena) -> u32 {
        let (b, t, s, a) = (
            self.bytes.len() as u32,
            self.toks.len() as u32,
            self.sets.len() as u32,
            self.alts.len() as u32,
        );
        self.bytes.extend_from_slice(&o.bytes);
        self.sets.extend_from_slice(&o.sets);
        self.alts.extend(o.alts.iter().map(|&(st, l)| (st + t, l)));
        self.toks.extend(o.toks.iter().map(|&tok| match tok {
            Tok::Lit { off, len } => Tok::Lit { off: off + b, len },
            Tok::LitI { off, len } => Tok::LitI { off: off + b, len },
            Tok::Set(i) => Tok::Set(i + s),
            Tok::Strs {
                off,
                len,
                count,
                negated,
                nocase,
            } => Tok::Strs {
                off: off + b,
                len,
                count,
                negated,
                nocase,
            },
            Tok::Alt { first, count } => Tok::Alt {
                first: first + a,
                count,
            },
            other => other,
        }));
        t
    }

    /// Releases spare capacity once loading is done.
    pub(crate) fn finish(&mut self) {
        self.bytes.shrink_to_fit();
        self.toks.shrink_to_fit();
        self.sets.shrink_to_fit();
        self.alts.shrink_to_fit();
    }

    pub(crate) fn slice(&self, c: &Compiled) -> &[Tok] {
        &self.toks[c.start as usize..(c.start + c.len) as usize]
    }
}

/// Most failure entries memoised in one verification. Past this the verifier
/// stays exact but stops remembering (bounded memory on hostile input).
pub const MEMO_CAP: usize = 1 << 16;

/// Per-scan search state reused across verifications: failure memo, and
/// cached literal searches behind unbounded gaps.
#[derive(Default)]
pub(crate) struct Memo {
    failed: HashSet<(u32, usize, bool), FastHash>,
    /// Forward: absolute token index → (searched from, first occurrence at or after it).
    next_occ: HashMap<u32, (usize, Option<usize>), FastHash>,
    /// Backward: absolute token index → (searched up to end, last occurrence ending at or before it).
    prev_occ: HashMap<u32, (usize, Option<usize>), FastHash>,
}

/// A fast, non-cryptographic hasher for small integer keys (FxHash's mixing).
/// The keys are positions and token indexes we chose, not attacker-chosen strings,
/// and the maps are capped, so flooding is not a concern.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl std::hash::Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            self.write_u64(u64::from_le_bytes([
                w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
            ]));
        }
        for &b in c.remainder() {
            self.write_u64(b as u64);
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastHash = std::hash::BuildHasherDefault<Fx>;

impl Memo {
    /// Forgets the failures of the last verification (occurrence caches stay valid for the buffer).
    pub fn clear(&mut self) {
        if !self.failed.is_empty() {
            self.failed.clear();
        }
    }

    /// Forgets everything about the buffer: call before scanning another one.
    pub fn reset_buffer(&mut self) {
        self.clear();
        if !self.next_occ.is_empty() {
            self.next_occ.clear();
        }
        if !self.prev_occ.is_empty() {
            self.prev_occ.clear();
        }
    }

    fn failed(&self, key: &(u32, usize, bool)) -> bool {
        self.failed.contains(key)
    }

    fn fail(&mut self, key: (u32, usize, bool)) {
        if self.failed.len() < MEMO_CAP {
            self.failed.insert(key);
        }
    }
}

// ClamAV's boundary table for (B): 1 = boundary on the left side only, 2 = right only, 3 = both.
const fn boundary_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    t[b'\n' as usize] = 2;
    t[b'\r' as usize] = 2;
    t[b' ' as usize] = 3;
    t[b'"' as usize] = 2;
    t[b'\'' as usize] = 2;
    t[b'-' as usize] = 3;
    t[b'.' as usize] = 1;
    t[b'/' as usize] = 3;
    t[b'<' as usize] = 1;
    t[b'=' as usize] = 2;
    t[b'>' as usize] = 2;
    t[b'@' as usize] = 1;
    t[b'_' as usize] = 3;
    t
}
static BOUNDARY: [u8; 256] = boundary_table();

/// Checks whether `data` matches `toks`; one side of an anchor at a time.
pub(crate) struct Verifier<'a> {
    pub ar: &'a Arena,
    pub data: &'a [u8],
    pub memo: &'a mut Memo,
}

#[inline]
fn eq_nocase(a: &[u8], lower: &[u8]) -> bool {
    a.len() == lower.len() && a.iter().zip(lower).all(|(x, y)| fold(*x) == *y)
}

impl<'a> Verifier<'a> {
    /// Literal bytes of a token, for the prefilter.
    #[inline]
    fn lit_ok(&self, tok: &Tok, at: usize) -> bool {
        match *tok {
            Tok::Lit { off, len } => {
                let l = &self.ar.bytes[off as usize..(off + len) as usize];
                self.data.get(at..at + len as usize) == Some(l)
            }
            Tok::LitI { off, len } => {
                let l = &self.ar.bytes[off as usize..(off + len) as usize];
                self.data
                    .get(at..at + len as usize)
                    .is_some_and(|d| eq_nocase(d, l))
            }
            _ => false,
        }
    }

    /// Does the anchor token literally match at `at`?
    pub fn anchor_ok(&self, tok: &Tok, at: usize) -> bool {
        self.lit_ok(tok, at)
    }

    /// Width-deterministic token check: `Some(width)` if `tok` matches the bytes
    /// starting at `at` (forward). Returns `None` for branching tokens too: callers
    /// handle those first.
    #[inline]
    fn fixed_at(&self, tok: &Tok, at: usize) -> Option<usize> {
        let d = self.data;
        match *tok {
            Tok::Lit { len, .. } | Tok::LitI { len, .. } => {
                self.lit_ok(tok, at).then_some(len as usize)
            }
            Tok::Mask { val, mask } => (*d.get(at)? & mask == val).then_some(1),
            Tok::Skip(n) => (at.checked_add(n as usize)? <= d.len()).then_some(n as usize),
            Tok::Set(i) => {
                let b = *d.get(at)?;
                (self.ar.sets[i as usize][(b >> 6) as usize] >> (b & 63) & 1 == 1).then_some(1)
            }
            Tok::Strs {
                off,
                len,
                count,
                negated,
                nocase,
            } => {
                let l = len as usize;
                let s = d.get(at..at.checked_add(l)?)?;
                let base = off as usize;
                let hit = (0..count as usize).any(|k| {
                    let cand = &self.ar.bytes[base + k * l..base + (k + 1) * l];
                    if nocase {
                        eq_nocase(s, cand)
                    } else {
                        s == cand
                    }
                });
                (hit != negated).then_some(l)
            }
            _ => None,
        }
    }

    fn edge_ok(&self, class: Class, negated: bool, left: bool, pos: usize) -> bool {
        let d = self.data;
        let hit = if left {
            pos == 0
                || match class {
                    Class::Boundary => matches!(BOUNDARY[d[pos - 1] as usize], 1 | 3),
                    Class::Line => d[pos - 1] == b'\n',
                    Class::Word => !d[pos - 1].is_ascii_alphanumeric(),
                }
        } else {
            pos >= d.len()
                || match class {
                    Class::Boundary => BOUNDARY[d[pos] as usize] >= 2,
                    Class::Line => {
                        d[pos] == b'\n' || (d[pos] == b'\r' && d.get(pos + 1) == Some(&b'\n'))
                    }
                    Class::Word => !d[pos].is_ascii_alphanumeric(),
                }
        };
        hit != negated
    }

    fn near_ok(&self, val: u8, mask: u8, min: u8, max: u8, left: bool, pos: usize) -> bool {
        let d = self.data;
        (min..=max).any(|i| {
            let at = if left {
                pos.checked_sub(1 + i as usize)
            } else {
                pos.checked_add(i as usize)
            };
            at.and_then(|a| d.get(a)).is_some_and(|b| b & mask == val)
        })
    }

    /// Zero-width checks (`Edge`, `Near`) at `pos`; true for any other token.
    #[inline]
    fn zero_width_ok(&self, tok: &Tok, pos: usize) -> bool {
        match *tok {
            Tok::Edge {
                class,
                negated,
                left,
            } => self.edge_ok(class, negated, left, pos),
            Tok::Near {
                val,
                mask,
                min,
                max,
                left,
            } => self.near_ok(val, mask, min, max, left, pos),
            _ => true,
        }
    }

    /// Widths a consuming class may take at `at` (forward): up to two options.
    fn class_widths(&self, class: Class, negated: bool, at: usize) -> [Option<usize>; 2] {
        let d = self.data;
        let Some(&b) = d.get(at) else {
            return [None, None];
        };
        match class {
            Class::Line => {
                let crlf = b == b'\r' && d.get(at + 1) == Some(&b'\n');
                let lf = b == b'\n';
                if negated {
                    [(!lf && !crlf).then_some(1), None]
                } else {
                    [lf.then_some(1), crlf.then_some(2)]
                }
            }
            Class::Boundary => [((BOUNDARY[b as usize] != 0) != negated).then_some(1), None],
            Class::Word => [(!b.is_ascii_alphanumeric() != negated).then_some(1), None],
        }
    }

    /// Next to a gap: fixed-width, non-branching tokens of total width `w`, then an
    /// exact literal, walking `toks` in the order `order` gives (rightwards after
    /// a gap, leftwards before one). Returns (w, absolute token index, literal).
    fn jump_lit(
        &self,
        toks: &[Tok],
        order: impl Iterator<Item = usize>,
    ) -> Option<(usize, u32, &'a [u8])> {
        let mut w = 0usize;
        for k in order {
            let t = toks[k];
            match t {
                Tok::Lit { off, len } => {
                    return Some((
                        w,
                        self.abs_index(toks, k),
                        &self.ar.bytes[off as usize..(off + len) as usize],
                    ));
                }
                Tok::LitI { .. }
                | Tok::Mask { .. }
                | Tok::Skip(_)
                | Tok::Set(_)
                | Tok::Strs { .. } => w += fixed_width(&t),
                Tok::Edge { .. } | Tok::Near { .. } => {}
                _ => return None,
            }
        }
        None
    }

    /// Index of `toks[k]` in the arena, or `u32::MAX` if `toks` is not an arena slice.
    fn abs_index(&self, toks: &[Tok], k: usize) -> u32 {
        let base = self.ar.toks.as_ptr() as usize;
        let here = toks.as_ptr() as usize;
        let sz = std::mem::size_of::<Tok>();
        if here >= base && here < base + self.ar.toks.len() * sz {
            ((here - base) / sz + k) as u32
        } else {
            u32::MAX
        }
    }

    /// First occurrence of `lit` at or after `from`, cached per token: a later query
    /// from a position not past the cached answer reuses it (each byte searched once).
    fn next_occ_cached(&mut self, abs: u32, lit: &[u8], from: usize) -> Option<usize> {
        if abs != u32::MAX {
            if let Some(&(f, r)) = self.memo.next_occ.get(&abs) {
                match r {
                    None if from >= f => return None,
                    Some(o) if from >= f && from <= o => return Some(o),
                    _ => {}
                }
            }
        }
        let r = if from >= self.data.len() {
            None
        } else {
            memchr::memmem::find(&self.data[from..], lit).map(|o| from + o)
        };
        if abs != u32::MAX {
            self.memo.next_occ.insert(abs, (from, r));
        }
        r
    }

    /// End of the last occurrence of `lit` ending at or before `upto`, cached likewise.
    fn prev_occ_cached(&mut self, abs: u32, lit: &[u8], upto: usize) -> Option<usize> {
        let upto = upto.min(self.data.len());
        if abs != u32::MAX {
            if let Some(&(u, r)) = self.memo.prev_occ.get(&abs) {
                match r {
                    None if upto <= u => return None,
                    Some(e) if upto <= u && upto >= e => return Some(e),
                    _ => {}
                }
            }
        }
        let r = memchr::memmem::rfind(&self.data[..upto], lit).map(|o| o + lit.len());
        if abs != u32::MAX {
            self.memo.prev_occ.insert(abs, (upto, r));
        }
        r
    }

    /// Forward: can `toks[i..]` match starting at `pos`, ending at or before `end_max`?
    /// `memo` enables failure memoisation for top-level sequences (None inside alternates).
    pub fn fwd(
        &mut self,
        toks: &[Tok],
        i: usize,
        pos: usize,
        end_max: usize,
        memo: bool,
        k: &mut dyn FnMut(&mut Self, usize) -> bool,
    ) -> bool {
        let mut i = i;
        let mut pos = pos;
        loop {
            let Some(tok) = toks.get(i) else {
                return pos <= end_max && k(self, pos);
            };
            match *tok {
                Tok::Gap { min, max } => {
                    let lo = pos.saturating_add(min as usize);
                    let hi = if max == INF {
                        end_max
                    } else {
                        pos.saturating_add(max as usize).min(end_max)
                    };
                    if lo > hi {
                        return false;
                    }
                    // Jump between occurrences of the next literal (after any fixed-width
                    // tokens of width `w`) instead of trying every position.
                    let jump = self.jump_lit(toks, i + 1..toks.len());
                    let mut p = lo;
                    while p <= hi {
                        if let Some((w, abs, lit)) = jump {
                            let from = p + w;
                            let occ = if max == INF {
                                self.next_occ_cached(abs, lit, from)
                            } else {
                                let end = hi.saturating_add(w + lit.len()).min(self.data.len());
                                if from >= end {
                                    None
                                } else {
                                    memchr::memmem::find(&self.data[from..end], lit)
                                        .map(|o| from + o)
                                }
                            };
                            match occ {
                                Some(o) if o - w <= hi => p = o - w,
                                _ => return false,
                            }
                        }
                        let key = (i as u32 + 1, p, true);
                        if !memo || !self.memo.failed(&key) {
                            if self.fwd(toks, i + 1, p, end_max, memo, k) {
                                return true;
                            }
                            if memo {
                                self.memo.fail(key);
                            }
                        }
                        p += 1;
                    }
                    return false;
                }
                Tok::Alt { first, count } => {
                    for a in first..first + count {
                        let (s, l) = self.ar.alts[a as usize];
                        let alt = &self.ar.toks[s as usize..(s + l) as usize];
                        let mut cont =
                            |v: &mut Self, p: usize| v.fwd(toks, i + 1, p, end_max, memo, k);
                        if self.fwd(alt, 0, pos, end_max, false, &mut cont) {
                            return true;
                        }
                    }
                    return false;
                }
                Tok::Class { class, negated } => {
                    let ws = self.class_widths(class, negated, pos);
                    match ws {
                        [Some(w), None] | [None, Some(w)] => pos += w,
                        [Some(a), Some(b)] => {
                            return self.fwd(toks, i + 1, pos + a, end_max, memo, k)
                                || self.fwd(toks, i + 1, pos + b, end_max, memo, k);
                        }
                        [None, None] => return false,
                    }
                }
                Tok::Edge { .. } | Tok::Near { .. } => {
                    if !self.zero_width_ok(&tok, pos) {
                        return false;
                    }
                }
                _ => match self.fixed_at(tok, pos) {
                    Some(w) => pos += w,
                    None => return false,
                },
            }
            i += 1;
        }
    }

    /// Backward: can `toks[..j]` match ending exactly at `pos` (so the match starts
    /// at some `s <= pos`) with `k(s)` accepting the start?
    pub fn bwd(
        &mut self,
        toks: &[Tok],
        j: usize,
        pos: usize,
        memo: bool,
        k: &mut dyn FnMut(&mut Self, usize) -> bool,
    ) -> bool {
        let mut j = j;
        let mut pos = pos;
        loop {
            if j == 0 {
                return k(self, pos);
            }
            let tok = toks[j - 1];
            match tok {
                Tok::Gap { min, max } => {
                    // p is where the preceding tokens end; walk from the nearest.
                    let Some(hi) = pos.checked_sub(min as usize) else {
                        return false;
                    };
                    let lo = if max == INF {
                        0
                    } else {
                        pos.saturating_sub(max as usize)
                    };
                    let jump = self.jump_lit(toks, (0..j - 1).rev());
                    let mut p = hi;
                    loop {
                        if let Some((w, abs, lit)) = jump {
                            // The literal must end at p - w.
                            let Some(upto) = p.checked_sub(w) else {
                                return false;
                            };
                            let occ = if max == INF {
                                self.prev_occ_cached(abs, lit, upto)
                            } else {
                                let ws = lo.saturating_sub(w + lit.len());
                                if upto < ws + lit.len() {
                                    None
                                } else {
                                    memchr::memmem::rfind(&self.data[ws..upto], lit)
                                        .map(|o| ws + o + lit.len())
                                }
                            };
                            match occ {
                                Some(e) if e + w >= lo => p = e + w,
                                _ => return false,
                            }
                        }
                        let key = (j as u32, p, false);
                        if !memo || !self.memo.failed(&key) {
                            if self.bwd(toks, j - 1, p, memo, k) {
                                return true;
                            }
                            if memo {
                                self.memo.fail(key);
                            }
                        }
                        if p <= lo {
                            return false;
                        }
                        p -= 1;
                    }
                }
                Tok::Alt { first, count } => {
                    // An alternative ends at pos; try every start it could have.
                    for a in first..first + count {
                        let (s, l) = self.ar.alts[a as usize];
                        let alt = &self.ar.toks[s as usize..(s + l) as usize];
                        let mut cont = |v: &mut Self, p: usize| v.bwd(toks, j - 1, p, memo, k);
                        if self.bwd(alt, alt.len(), pos, false, &mut cont) {
                            return true;
                        }
                    }
                    return false;
                }
                Tok::Class { class, negated } => {
                    for w in [1usize, 2] {
                        let Some(s) = pos.checked_sub(w) else {
                            continue;
                        };
                        if self.class_widths(class, negated, s).contains(&Some(w))
                            && self.bwd(toks, j - 1, s, memo, k)
                        {
                            return true;
                        }
                    }
                    return false;
                }
                Tok::Edge { .. } | Tok::Near { .. } => {
                    if !self.zero_width_ok(&tok, pos) {
                        return false;
                    }
                }
                Tok::Skip(n) => match pos.checked_sub(n as usize) {
                    Some(p) => pos = p,
                    None => return false,
                },
                _ => {
                    let w = fixed_width(&tok);
                    let Some(s) = pos.checked_sub(w) else {
                        return false;
                    };
                    match self.fixed_at(&tok, s) {
                        Some(_) => pos = s,
                        None => return false,
                    }
                }
            }
            j -= 1;
        }
    }
}

/// Width of a fixed-width token (0 for zero-width and branching tokens).
pub(crate) fn fixed_width(tok: &Tok) -> usize {
    match *tok {
        Tok::Lit { len, .. } | Tok::LitI { len, .. } => len as usize,
        Tok::Mask { .. } | Tok::Set(_) => 1,
        Tok::Skip(n) => n as usize,
        Tok::Strs { len, .. } => len as usize,
        _ => 0,
    }
}
