//! Compiled-database cache: a [`SignatureSet`] written to disk and read back,
//! so a restart, a reload or the next `mxguard scan` skips parsing and
//! compiling (milliseconds instead of seconds for millions of signatures).
//!
//! Format: magic, format version, the caller's fingerprint of the source
//! databases, then every table in a fixed order (little-endian integers,
//! length-prefixed vectors), then a 64-bit checksum of everything before it.
//!
//! Guarantees:
//! - A cache is used only if its fingerprint equals the caller's (source
//!   files' paths, sizes, modification times and inodes, the built-in flag,
//!   the engine version) and its checksum verifies; otherwise reading fails
//!   and the caller rebuilds from the databases. A stale or corrupt cache
//!   can cost time, never detections.
//! - Reading never panics and never allocates more than the file's size for
//!   any vector (lengths are checked against the bytes that remain).
//! - Writing is atomic (temporary file, fsync, rename): readers see the old
//!   cache or the new one, never half of one.

use super::*;
use crate::db::{Cmp, Expr, Tdb};
use crate::error::{Problem, ProblemKind};
use crate::hex::Class;
use crate::offset::Base;
use std::io::{self, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"MXGSIGS\0";
/// Bumped whenever the layout of any cached structure changes.
pub const CACHE_FORMAT: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache I/O: {0}")]
    Io(#[from] io::Error),
    #[error("not a cache file, or another format version")]
    Format,
    #[error("cache was built from other databases")]
    Stale,
    #[error("cache is corrupt: {0}")]
    Corrupt(&'static str),
}

type R<T> = Result<T, CacheError>;

/// 64-bit running checksum (word-at-a-time multiply-rotate mix; detects
/// corruption and truncation, not an adversary). The result does not depend on
/// how the bytes are split across `update` calls.
#[derive(Clone, Copy)]
struct Sum {
    h: u64,
    len: u64,
    pend: [u8; 8],
    npend: usize,
}

impl Sum {
    fn new() -> Sum {
        Sum {
            h: 0x243F_6A88_85A3_08D3,
            len: 0,
            pend: [0; 8],
            npend: 0,
        }
    }
    #[inline]
    fn word(&mut self, v: u64) {
        self.h = (self.h ^ v)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    fn update(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        if self.npend > 0 {
            let k = (8 - self.npend).min(bytes.len());
            self.pend[self.npend..self.npend + k].copy_from_slice(&bytes[..k]);
            self.npend += k;
            bytes = &bytes[k..];
            if self.npend < 8 {
                return;
            }
            let v = u64::from_le_bytes(self.pend);
            self.word(v);
            self.npend = 0;
        }
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            self.word(u64::from_le_bytes([
                w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
            ]));
        }
        let r = c.remainder();
        self.pend[..r.len()].copy_from_slice(r);
        self.npend = r.len();
    }
    fn value(&self) -> u64 {
        let mut s = *self;
        if s.npend > 0 {
            let mut last = [0u8; 8];
            last[..s.npend].copy_from_slice(&s.pend[..s.npend]);
            s.word(u64::from_le_bytes(last) ^ 0xff);
        }
        (s.h ^ s.len).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
    }
}

struct Writer<W: Write> {
    w: W,
    buf: Vec<u8>,
    sum: Sum,
}

impl<W: Write> Writer<W> {
    fn flush_buf(&mut self) -> io::Result<()> {
        self.sum.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 1 << 20 {
            self.flush_buf()?;
        }
        Ok(())
    }
}

struct Reader<Rd: Read> {
    r: Rd,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Body bytes not yet read from the file (the checksum trailer excluded).
    unread: u64,
    /// Bytes not yet consumed (buffered or unread); bounds every allocation.
    remaining: u64,
    /// Checksum of every body byte read so far.
    sum: Sum,
}

impl<Rd: Read> Reader<Rd> {
    fn refill(&mut self) -> R<()> {
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        let room = (self.buf.len() - self.len).min(self.unread as usize);
        if room == 0 {
            return Err(CacheError::Corrupt("truncated"));
        }
        let k = self.r.read(&mut self.buf[self.len..self.len + room])?;
        if k == 0 {
            return Err(CacheError::Corrupt("truncated"));
        }
        self.sum.update(&self.buf[self.len..self.len + k]);
        self.len += k;
        self.unread -= k as u64;
        Ok(())
    }

    /// Next `n` bytes (n at most the buffer size: fixed-size items only).
    #[inline]
    fn take(&mut self, n: usize) -> R<&[u8]> {
        if (n as u64) > self.remaining || n > self.buf.len() {
            return Err(CacheError::Corrupt("truncated"));
        }
        while self.len - self.pos < n {
            self.refill()?;
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        self.remaining -= n as u64;
        Ok(s)
    }

    /// Next `n` bytes as a vector, copied straight from the stream.
    fn take_vec(&mut self, n: usize) -> R<Vec<u8>> {
        if (n as u64) > self.remaining {
            return Err(CacheError::Corrupt("truncated"));
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.pos == self.len {
                self.refill()?;
            }
            let k = (n - out.len()).min(self.len - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            self.remaining -= k as u64;
        }
        Ok(out)
    }
}

trait Codec: Sized {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()>;
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self>;
    /// Smallest encoded size, to bound vector lengths before allocating.
    const MIN: u64 = 1;
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
                w.put(&self.to_le_bytes())
            }
            fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
                let b = r.take(std::mem::size_of::<$t>())?;
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                Ok(<$t>::from_le_bytes(a))
            }
            const MIN: u64 = std::mem::size_of::<$t>() as u64;
        }
    )*};
}
int_codec!(u8, u16, u32, u64, i64);

impl Codec for usize {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        (*self as u64).enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        usize::try_from(u64::dec(r)?).map_err(|_| CacheError::Corrupt("size"))
    }
    const MIN: u64 = 8;
}

impl Codec for bool {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        (*self as u8).enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        match u8::dec(r)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CacheError::Corrupt("bool")),
        }
    }
}

fn dec_len<Rd: Read>(r: &mut Reader<Rd>, min: u64) -> R<usize> {
    let n = u64::dec(r)?;
    if n.saturating_mul(min.max(1)) > r.remaining {
        return Err(CacheError::Corrupt("length"));
    }
    Ok(n as usize)
}

impl Codec for String {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        (self.len() as u64).enc(w)?;
        w.put(self.as_bytes())
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let n = dec_len(r, 1)?;
        String::from_utf8(r.take_vec(n)?).map_err(|_| CacheError::Corrupt("utf-8"))
    }
    const MIN: u64 = 8;
}

impl<T: Codec> Codec for Vec<T> {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        (self.len() as u64).enc(w)?;
        self.iter().try_for_each(|x| x.enc(w))
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let n = dec_len(r, T::MIN)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::dec(r)?);
        }
        Ok(v)
    }
    const MIN: u64 = 8;
}

impl<T: Codec> Codec for Option<T> {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        match self {
            None => 0u8.enc(w),
            Some(x) => {
                1u8.enc(w)?;
                x.enc(w)
            }
        }
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok(if bool::dec(r)? {
            Some(T::dec(r)?)
        } else {
            None
        })
    }
}

impl<A: Codec, B: Codec> Codec for (A, B) {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.0.enc(w)?;
        self.1.enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok((A::dec(r)?, B::dec(r)?))
    }
    const MIN: u64 = A::MIN + B::MIN;
}

impl<A: Codec, B: Codec, C: Codec> Codec for (A, B, C) {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.0.enc(w)?;
        self.1.enc(w)?;
        self.2.enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok((A::dec(r)?, B::dec(r)?, C::dec(r)?))
    }
    const MIN: u64 = A::MIN + B::MIN + C::MIN;
}

impl Codec for [u64; 4] {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.iter().try_for_each(|x| x.enc(w))
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok([u64::dec(r)?, u64::dec(r)?, u64::dec(r)?, u64::dec(r)?])
    }
    const MIN: u64 = 32;
}

impl<const N: usize> Codec for HashKey<N> {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.size.enc(w)?;
        w.put(&self.hash)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let b = r.take(4 + N)?;
        let mut hash = [0u8; N];
        hash.copy_from_slice(&b[4..]);
        Ok(HashKey {
            size: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            hash,
        })
    }
    const MIN: u64 = 4 + N as u64;
}

/// Implements Codec for a struct by listing its fields in order.
macro_rules! struct_codec {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl Codec for $t {
            fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
                $(self.$f.enc(w)?;)*
                Ok(())
            }
            fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
                Ok(Self { $($f: Codec::dec(r)?,)* ..Default::default() })
            }
        }
    };
}

impl<const N: usize> Codec for HashTable<N> {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.entries.enc(w)?;
        self.any_from.enc(w)?;
        self.first_name.enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let entries = Vec::<HashKey<N>>::dec(r)?;
        let any_from = usize::dec(r)?;
        let first_name = u32::dec(r)?;
        if any_from > entries.len() {
            return Err(CacheError::Corrupt("hash table"));
        }
        Ok(HashTable {
            entries,
            any_from,
            first_name,
        })
    }
}

struct_codec!(Hashes { md5, sha1, sha256 });
impl Codec for Names {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        (self.rest.len() as u64).enc(w)?;
        w.put(&self.rest)?;
        self.bases.enc(w)?;
        self.deltas.enc(w)?;
        self.prefixes.enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let n = dec_len(r, 1)?;
        Ok(Names {
            rest: r.take_vec(n)?,
            bases: Codec::dec(r)?,
            deltas: Codec::dec(r)?,
            prefixes: Codec::dec(r)?,
            ..Default::default()
        })
    }
}
struct_codec!(AnchorTable { slots, ids, bits });
struct_codec!(Filter4 { bits, shift, table });
struct_codec!(SetStats {
    hash_sigs,
    allow_list,
    body_sigs,
    logical_sigs,
    patterns,
    anchored4,
    anchored2,
    positioned,
    unanchored,
    filter_bytes,
    approx_memory
});
struct_codec!(LoadReport {
    files,
    hash_sigs,
    body_sigs,
    logical_sigs,
    allow_list,
    ignored_names,
    ignored_sigs,
    flevel_skipped,
    problems
});
struct_codec!(Tdb {
    target,
    file_size,
    entry_point,
    sections,
    container,
    intermediates
});

impl Codec for Problem {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.file.to_string_lossy().into_owned().enc(w)?;
        self.line.enc(w)?;
        matches!(self.kind, ProblemKind::Unsupported).enc(w)?;
        self.reason.enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok(Problem {
            file: String::dec(r)?.into(),
            line: usize::dec(r)?,
            kind: if bool::dec(r)? {
                ProblemKind::Unsupported
            } else {
                ProblemKind::Invalid
            },
            reason: String::dec(r)?,
        })
    }
}

impl Codec for Arena {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.bytes.enc(w)?;
        self.toks.enc(w)?;
        self.sets.enc(w)?;
        self.alts.enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let a = Arena {
            bytes: Codec::dec(r)?,
            toks: Codec::dec(r)?,
            sets: Codec::dec(r)?,
            alts: Codec::dec(r)?,
        };
        // Every index a token or alternative holds must stay inside the arena, so a
        // corrupt cache cannot make the verifier index out of bounds.
        let (nb, nt, ns, na) = (
            a.bytes.len() as u64,
            a.toks.len() as u64,
            a.sets.len() as u64,
            a.alts.len() as u64,
        );
        let ok = a.toks.iter().all(|t| match *t {
            Tok::Lit { off, len } | Tok::LitI { off, len } => off as u64 + len as u64 <= nb,
            Tok::Strs {
                off, len, count, ..
            } => off as u64 + len as u64 * count as u64 <= nb,
            Tok::Set(i) => (i as u64) < ns,
            Tok::Alt { first, count } => first as u64 + count as u64 <= na,
            _ => true,
        }) && a.alts.iter().all(|&(s, l)| s as u64 + l as u64 <= nt);
        if !ok {
            return Err(CacheError::Corrupt("arena index"));
        }
        Ok(a)
    }
}

fn class_code(c: Class) -> u8 {
    match c {
        Class::Boundary => 0,
        Class::Line => 1,
        Class::Word => 2,
    }
}

fn class_of(v: u8) -> R<Class> {
    Ok(match v {
        0 => Class::Boundary,
        1 => Class::Line,
        2 => Class::Word,
        _ => return Err(CacheError::Corrupt("class")),
    })
}

impl Codec for Tok {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        match *self {
            Tok::Lit { off, len } => (0u8, off, len).enc(w),
            Tok::LitI { off, len } => (1u8, off, len).enc(w),
            Tok::Mask { val, mask } => (2u8, val, mask).enc(w),
            Tok::Skip(n) => (3u8, n).enc(w),
            Tok::Set(i) => (4u8, i).enc(w),
            Tok::Strs {
                off,
                len,
                count,
                negated,
                nocase,
            } => {
                (5u8, off, len).enc(w)?;
                (count, negated, nocase).enc(w)
            }
            Tok::Alt { first, count } => (6u8, first, count).enc(w),
            Tok::Gap { min, max } => (7u8, min, max).enc(w),
            Tok::Class { class, negated } => (8u8, class_code(class), negated).enc(w),
            Tok::Edge {
                class,
                negated,
                left,
            } => {
                (9u8, class_code(class)).enc(w)?;
                (negated, left).enc(w)
            }
            Tok::Near {
                val,
                mask,
                min,
                max,
                left,
            } => {
                (10u8, val, mask).enc(w)?;
                (min, max, left).enc(w)
            }
        }
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok(match u8::dec(r)? {
            0 => Tok::Lit {
                off: u32::dec(r)?,
                len: u32::dec(r)?,
            },
            1 => Tok::LitI {
                off: u32::dec(r)?,
                len: u32::dec(r)?,
            },
            2 => Tok::Mask {
                val: u8::dec(r)?,
                mask: u8::dec(r)?,
            },
            3 => Tok::Skip(u32::dec(r)?),
            4 => Tok::Set(u32::dec(r)?),
            5 => Tok::Strs {
                off: u32::dec(r)?,
                len: u16::dec(r)?,
                count: u16::dec(r)?,
                negated: bool::dec(r)?,
                nocase: bool::dec(r)?,
            },
            6 => Tok::Alt {
                first: u32::dec(r)?,
                count: u32::dec(r)?,
            },
            7 => Tok::Gap {
                min: u32::dec(r)?,
                max: u32::dec(r)?,
            },
            8 => Tok::Class {
                class: class_of(u8::dec(r)?)?,
                negated: bool::dec(r)?,
            },
            9 => Tok::Edge {
                class: class_of(u8::dec(r)?)?,
                negated: bool::dec(r)?,
                left: bool::dec(r)?,
            },
            10 => Tok::Near {
                val: u8::dec(r)?,
                mask: u8::dec(r)?,
                min: u8::dec(r)?,
                max: u8::dec(r)?,
                left: bool::dec(r)?,
            },
            _ => return Err(CacheError::Corrupt("token")),
        })
    }
}

impl Codec for Offset {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        let (tag, x) = match self.base {
            Base::Any => (0u8, 0u32),
            Base::Abs => (1, 0),
            Base::Eof => (2, 0),
            Base::Ep => (3, 0),
            Base::Section(x) => (4, x),
            Base::SectionEntire(x) => (5, x),
            Base::LastSection => (6, 0),
        };
        (tag, x).enc(w)?;
        (self.n, self.shift).enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let (tag, x) = <(u8, u32)>::dec(r)?;
        let base = match tag {
            0 => Base::Any,
            1 => Base::Abs,
            2 => Base::Eof,
            3 => Base::Ep,
            4 => Base::Section(x),
            5 => Base::SectionEntire(x),
            6 => Base::LastSection,
            _ => return Err(CacheError::Corrupt("offset")),
        };
        Ok(Offset {
            base,
            n: i64::dec(r)?,
            shift: u32::dec(r)?,
        })
    }
}

impl Codec for Expr {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        let cmp_code = |c: Cmp| match c {
            Cmp::Eq => 0u8,
            Cmp::Gt => 1,
            Cmp::Lt => 2,
        };
        match self {
            Expr::Sub { id, cmp } => {
                (0u8, *id).enc(w)?;
                cmp.map(|(c, x)| (cmp_code(c), x)).enc(w)
            }
            Expr::Op { and, l, r, cmp } => {
                (1u8, *and).enc(w)?;
                cmp.map(|(c, x, y)| (cmp_code(c), x, y)).enc(w)?;
                l.enc(w)?;
                r.enc(w)
            }
        }
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        dec_expr(r, 0)
    }
}

fn cmp_of(v: u8) -> R<Cmp> {
    Ok(match v {
        0 => Cmp::Eq,
        1 => Cmp::Gt,
        2 => Cmp::Lt,
        _ => return Err(CacheError::Corrupt("comparison")),
    })
}

fn dec_expr<Rd: Read>(r: &mut Reader<Rd>, depth: usize) -> R<Expr> {
    if depth > crate::db::MAX_EXPR_DEPTH * 2 {
        return Err(CacheError::Corrupt("expression depth"));
    }
    Ok(match u8::dec(r)? {
        0 => {
            let id = u8::dec(r)?;
            let cmp = match Option::<(u8, u32)>::dec(r)? {
                Some((c, x)) => Some((cmp_of(c)?, x)),
                None => None,
            };
            Expr::Sub { id, cmp }
        }
        1 => {
            let and = bool::dec(r)?;
            let cmp = match Option::<(u8, u32, u32)>::dec(r)? {
                Some((c, x, y)) => Some((cmp_of(c)?, x, y)),
                None => None,
            };
            let l = Box::new(dec_expr(r, depth + 1)?);
            let rr = Box::new(dec_expr(r, depth + 1)?);
            Expr::Op { and, l, r: rr, cmp }
        }
        _ => return Err(CacheError::Corrupt("expression")),
    })
}

impl Codec for Pat {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        (self.c.start, self.c.len, self.c.anchor_tok).enc(w)?;
        match self.owner {
            Owner::Body(b) => (0u8, b, 0u32).enc(w)?,
            Owner::Sub { lsig, sub } => (1u8, lsig, sub).enc(w)?,
        }
        self.offset.enc(w)?;
        (self.target, self.anchor_skip).enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        let (start, len, anchor_tok) = Codec::dec(r)?;
        let owner = match <(u8, u32, u32)>::dec(r)? {
            (0, b, _) => Owner::Body(b),
            (1, lsig, sub) => Owner::Sub { lsig, sub },
            _ => return Err(CacheError::Corrupt("owner")),
        };
        Ok(Pat {
            c: Compiled {
                start,
                len,
                anchor_tok,
            },
            owner,
            offset: Offset::dec(r)?,
            target: u8::dec(r)?,
            anchor_skip: u32::dec(r)?,
        })
    }
}

impl Codec for BodyMeta {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.name.enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok(BodyMeta { name: u32::dec(r)? })
    }
}

impl Codec for LsigMeta {
    fn enc<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.name.enc(w)?;
        self.tdb.enc(w)?;
        self.expr.enc(w)?;
        (self.first_sub, self.nsub).enc(w)?;
        (self.true_when_empty, self.counts).enc(w)
    }
    fn dec<Rd: Read>(r: &mut Reader<Rd>) -> R<Self> {
        Ok(LsigMeta {
            name: u32::dec(r)?,
            tdb: Tdb::dec(r)?,
            expr: Expr::dec(r)?,
            first_sub: u32::dec(r)?,
            nsub: u32::dec(r)?,
            true_when_empty: bool::dec(r)?,
            counts: bool::dec(r)?,
        })
    }
}

impl SignatureSet {
    /// Writes the compiled set to `path` atomically, tagged with `fingerprint`.
    pub fn write_cache(&self, path: &Path, fingerprint: u64) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
            std::process::id()
        ));
        let result = (|| {
            let f = std::fs::File::create(&tmp)?;
            let mut w = Writer {
                w: io::BufWriter::new(f),
                buf: Vec::with_capacity(1 << 20),
                sum: Sum::new(),
            };
            w.put(MAGIC)?;
            CACHE_FORMAT.enc(&mut w)?;
            fingerprint.enc(&mut w)?;
            self.encode(&mut w)?;
            w.flush_buf()?;
            let sum = w.sum.value();
            let mut inner = w.w;
            inner.write_all(&sum.to_le_bytes())?;
            let f = inner.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn encode<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        self.names.enc(w)?;
        self.hashes.enc(w)?;
        self.allow.enc(w)?;
        self.arena.enc(w)?;
        self.pats.enc(w)?;
        self.bodies.enc(w)?;
        self.lsigs.enc(w)?;
        self.f4.enc(w)?;
        self.f2.enc(w)?;
        self.f2_bits.enc(w)?;
        self.f2_ids.enc(w)?;
        self.positioned.enc(w)?;
        self.unanchored.enc(w)?;
        self.always_eval.enc(w)?;
        self.t7_relative.enc(w)?;
        self.versions.enc(w)?;
        self.report.enc(w)?;
        self.stats.enc(w)
    }

    /// Reads a cache written by [`write_cache`](Self::write_cache) if its
    /// fingerprint is `fingerprint` and it is intact.
    pub fn read_cache(path: &Path, fingerprint: u64) -> Result<SignatureSet, CacheError> {
        let f = std::fs::File::open(path)?;
        let size = f.metadata()?.len();
        if size < 8 + 4 + 8 + 8 {
            return Err(CacheError::Format);
        }
        let body = size - 8;
        let mut r = Reader {
            r: f,
            buf: vec![0; 1 << 20],
            pos: 0,
            len: 0,
            unread: body,
            remaining: body,
            sum: Sum::new(),
        };
        if r.take(8)? != MAGIC || u32::dec(&mut r)? != CACHE_FORMAT {
            return Err(CacheError::Format);
        }
        if u64::dec(&mut r)? != fingerprint {
            return Err(CacheError::Stale);
        }
        let set = Self::decode(&mut r)?;
        if r.remaining != 0 {
            return Err(CacheError::Corrupt("trailing bytes"));
        }
        let mut trailer = [0u8; 8];
        r.r.read_exact(&mut trailer)?;
        if u64::from_le_bytes(trailer) != r.sum.value() {
            return Err(CacheError::Corrupt("checksum"));
        }
        set.validate()?;
        Ok(set)
    }

    fn decode<Rd: Read>(r: &mut Reader<Rd>) -> R<SignatureSet> {
        Ok(SignatureSet {
            names: Codec::dec(r)?,
            hashes: Codec::dec(r)?,
            allow: Codec::dec(r)?,
            arena: Codec::dec(r)?,
            pats: Codec::dec(r)?,
            bodies: Codec::dec(r)?,
            lsigs: Codec::dec(r)?,
            f4: Codec::dec(r)?,
            f2: Codec::dec(r)?,
            f2_bits: Codec::dec(r)?,
            f2_ids: Codec::dec(r)?,
            positioned: Codec::dec(r)?,
            unanchored: Codec::dec(r)?,
            always_eval: Codec::dec(r)?,
            t7_relative: Codec::dec(r)?,
            versions: Codec::dec(r)?,
            report: Codec::dec(r)?,
            stats: Codec::dec(r)?,
        })
    }

    /// Cross-table indexes must hold, so a scan can never index out of bounds.
    fn validate(&self) -> R<()> {
        let bad = |m| Err(CacheError::Corrupt(m));
        let names = self.names.len() as u64;
        if !self.names.consistent() {
            return bad("names");
        }
        let name_ok = |n: u32| (n as u64) < names;
        let table_ok = |first: u32, len: usize| first as u64 + len as u64 <= names;
        if !table_ok(self.hashes.md5.first_name, self.hashes.md5.len())
            || !table_ok(self.hashes.sha1.first_name, self.hashes.sha1.len())
            || !table_ok(self.hashes.sha256.first_name, self.hashes.sha256.len())
            || !self.bodies.iter().all(|b| name_ok(b.name))
            || !self.lsigs.iter().all(|l| name_ok(l.name))
        {
            return bad("name index");
        }
        let nt = self.arena.toks.len() as u64;
        let nsubs: u64 = self.lsigs.iter().map(|l| l.nsub as u64).sum();
        for p in &self.pats {
            if p.c.start as u64 + p.c.len as u64 > nt
                || p.c.anchor_tok.is_some_and(|a| a >= p.c.len)
                || p.target > 15
            {
                return bad("pattern");
            }
            match p.owner {
                Owner::Body(b) if (b as usize) < self.bodies.len() => {}
                Owner::Sub { lsig, sub }
                    if (lsig as usize) < self.lsigs.len()
                        && sub < self.lsigs[lsig as usize].nsub => {}
                _ => return bad("pattern owner"),
            }
        }
        for l in &self.lsigs {
            if l.first_sub as u64 + l.nsub as u64 > nsubs
                || l.nsub as usize > crate::db::MAX_SUBSIGS
                || l.tdb.target > 15
            {
                return bad("logical signature");
            }
        }
        let np = self.pats.len() as u32;
        let ids_ok = |v: &[u32]| v.iter().all(|&i| i < np);
        if !ids_ok(&self.positioned)
            || !ids_ok(&self.unanchored)
            || !ids_ok(&self.f4.table.ids)
            || !ids_ok(&self.f2_ids)
        {
            return bad("pattern ids");
        }
        if !self
            .always_eval
            .iter()
            .all(|&i| (i as usize) < self.lsigs.len())
        {
            return bad("logical ids");
        }
        let t = &self.f4.table;
        if !t.slots.is_empty()
            && (!t.slots.len().is_power_of_two() || 1usize << t.bits != t.slots.len())
        {
            return bad("anchor table");
        }
        if t.slots
            .iter()
            .any(|&(_, s, l)| s as u64 + l as u64 > t.ids.len() as u64)
        {
            return bad("anchor table range");
        }
        if !self.f4.bits.is_empty()
            && (!self.f4.bits.len().is_power_of_two()
                || 64 - self.f4.bits.len().trailing_zeros() != self.f4.shift)
        {
            return bad("prefilter");
        }
        if !(self.f2.is_empty() || self.f2.len() == 1 << 16)
            || !(self.f2_bits.is_empty() || self.f2_bits.len() == 1024)
            || self.f2.is_empty() != self.f2_bits.is_empty()
        {
            return bad("short prefilter");
        }
        if self
            .f2
            .iter()
            .any(|&(s, l)| s as u64 + l as u64 > self.f2_ids.len() as u64)
        {
            return bad("short prefilter range");
        }
        Ok(())
    }
}

/// Identifies a set of database sources: each file's path, size, modification
/// time and inode (directories expanded the way the loader reads them), the
/// built-in flag, and this engine's version and cache format. Any change gives
/// another value (a 64-bit mix; collisions are not a security boundary here: the
/// cache lives with the databases and has their trust).
pub fn fingerprint(paths: &[std::path::PathBuf], builtin: bool) -> u64 {
    let mut s = Sum::new();
    s.update(env!("CARGO_PKG_VERSION").as_bytes());
    s.update(&CACHE_FORMAT.to_le_bytes());
    s.update(&crate::db::FLEVEL.to_le_bytes());
    s.update(&[builtin as u8]);
    // The running binary too: a rebuilt engine rebuilds its cache once.
    let exe = std::env::current_exe().ok();
    for f in exe.into_iter().chain(crate::load::source_files(paths)) {
        s.update(f.as_os_str().as_encoded_bytes());
        match std::fs::metadata(&f) {
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                s.update(&m.len().to_le_bytes());
                s.update(&m.mtime().to_le_bytes());
                s.update(&m.mtime_nsec().to_le_bytes());
                s.update(&m.ino().to_le_bytes());
                s.update(&m.dev().to_le_bytes());
            }
            Err(_) => s.update(b"\xffmissing"),
        }
    }
    s.value()
}
