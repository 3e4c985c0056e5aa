//! PKWARE "implode" (zip method 6) decompression, from the APPNOTE
//! description: up to three Shannon-Fano trees (literals if flag bit 2,
//! lengths, distances), a 4 KiB or 8 KiB window (flag bit 1), bits read
//! least-significant first.
//!
//! Shannon-Fano codes as built by the APPNOTE are canonical Huffman codes with
//! every bit inverted, so decoding is `puff`-style canonical decoding of the
//! inverted bits. Memory is fixed (the window and the trees); output goes to
//! a writer that may refuse more (the member limit).
use std::io::Write;

/// Longest code in a tree.
const MAX_BITS: usize = 16;
/// Output is handed to the writer in pieces of this size.
const FLUSH: usize = 32 << 10;

struct Bits<'a> {
    d: &'a [u8],
    pos: usize,
    bit: u32,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, String> {
        let byte = *self.d.get(self.pos).ok_or("compressed data ends early")?;
        let b = (byte >> self.bit) & 1;
        self.bit += 1;
        if self.bit == 8 {
            self.bit = 0;
            self.pos += 1;
        }
        Ok(b as u32)
    }
    fn bits(&mut self, n: u32) -> Result<u32, String> {
        let mut v = 0;
        for i in 0..n {
            v |= self.bit()? << i;
        }
        Ok(v)
    }
}

/// A canonical decoding table: codes per length and symbols by (length, value).
struct Tree {
    count: [u16; MAX_BITS + 1],
    symbol: Vec<u16>,
}

impl Tree {
    /// Reads a tree of `n` symbols: a byte with the number of description
    /// bytes minus one, then bytes of (count - 1) << 4 | (length - 1).
    fn read(d: &[u8], pos: &mut usize, n: usize) -> Result<Tree, String> {
        let k = *d.get(*pos).ok_or("tree truncated")? as usize + 1;
        *pos += 1;
        let desc = d.get(*pos..*pos + k).ok_or("tree truncated")?;
        *pos += k;
        let mut lens = Vec::with_capacity(n);
        for &b in desc {
            let len = (b & 0x0f) + 1;
            let cnt = (b >> 4) as usize + 1;
            for _ in 0..cnt {
                if lens.len() >= n {
                    return Err("tree describes too many codes".into());
                }
                lens.push(len);
            }
        }
        if lens.len() != n {
            return Err("tree describes too few codes".into());
        }
        let mut count = [0u16; MAX_BITS + 1];
        for &l in &lens {
            count[l as usize] += 1;
        }
        let mut offs = [0u16; MAX_BITS + 2];
        for l in 1..=MAX_BITS {
            offs[l + 1] = offs[l] + count[l];
        }
        let mut symbol = vec![0u16; n];
        for (s, &l) in lens.iter().enumerate() {
            let o = &mut offs[l as usize];
            symbol[*o as usize] = s as u16;
            *o += 1;
        }
        Ok(Tree { count, symbol })
    }

    fn decode(&self, b: &mut Bits<'_>) -> Result<u16, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=MAX_BITS {
            code |= (b.bit()? ^ 1) as i32;
            let count = self.count[len] as i32;
            if code - first < count {
                return self
                    .symbol
                    .get((index + code - first) as usize)
                    .copied()
                    .ok_or_else(|| "bad code".to_string());
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("invalid Shannon-Fano code".into())
    }
}

/// Decompresses an imploded member of `size` bytes (`0`: until the data
/// ends) into `out`. Stops without error when `out` refuses more bytes
/// (a limit); `Err` describes damage.
pub(crate) fn explode(
    data: &[u8],
    flags: u16,
    size: u64,
    out: &mut dyn Write,
) -> Result<(), String> {
    let big_window = flags & 0x02 != 0;
    let literals = flags & 0x04 != 0;
    let mut pos = 0usize;
    let lit = if literals {
        Some(Tree::read(data, &mut pos, 256)?)
    } else {
        None
    };
    let lens = Tree::read(data, &mut pos, 64)?;
    let dists = Tree::read(data, &mut pos, 64)?;
    let min_len: u32 = if literals { 3 } else { 2 };
    let low_bits: u32 = if big_window { 7 } else { 6 };
    let mut b = Bits {
        d: data,
        pos,
        bit: 0,
    };
    const WIN: usize = 8192;
    let mut win = vec![0u8; WIN];
    let mut total: u64 = 0;
    let mut pending: Vec<u8> = Vec::with_capacity(FLUSH);
    let unlimited = size == 0;
    let mut emit = |c: u8,
                    win: &mut Vec<u8>,
                    total: &mut u64,
                    pending: &mut Vec<u8>|
     -> Result<bool, String> {
        win[(*total as usize) % WIN] = c;
        *total += 1;
        pending.push(c);
        if pending.len() >= FLUSH {
            if out.write_all(pending).is_err() {
                return Ok(false);
            }
            pending.clear();
        }
        Ok(true)
    };
    'outer: while unlimited || total < size {
        let flag = match b.bit() {
            Ok(f) => f,
            Err(e) if unlimited => {
                let _ = e;
                break;
            }
            Err(e) => return flush_then(out, &pending, Err(e)),
        };
        let step: Result<(), String> = (|| {
            if flag == 1 {
                let c = match &lit {
                    Some(t) => t.decode(&mut b)? as u8,
                    None => b.bits(8)? as u8,
                };
                if !emit(c, &mut win, &mut total, &mut pending)? {
                    return Err(String::new());
                }
            } else {
                let low = b.bits(low_bits)?;
                let high = dists.decode(&mut b)? as u32;
                let dist = ((high << low_bits) | low) as u64 + 1;
                let mut len = lens.decode(&mut b)? as u32;
                if len == 63 {
                    len += b.bits(8)?;
                }
                len += min_len;
                for _ in 0..len {
                    if !unlimited && total >= size {
                        break;
                    }
                    // Before the start of the output: zeros (as Info-ZIP).
                    let c = if dist > total {
                        0
                    } else {
                        win[((total - dist) as usize) % WIN]
                    };
                    if !emit(c, &mut win, &mut total, &mut pending)? {
                        return Err(String::new());
                    }
                }
            }
            Ok(())
        })();
        match step {
            Ok(()) => {}
            Err(e) if e.is_empty() => return Ok(()), // the writer refused: a limit
            Err(_) if unlimited => break 'outer,
            Err(e) => return flush_then(out, &pending, Err(e)),
        }
    }
    flush_then(out, &pending, Ok(()))
}

fn flush_then(out: &mut dyn Write, pending: &[u8], r: Result<(), String>) -> Result<(), String> {
    // A refused flush is a limit, not damage.
    let _ = out.write_all(pending);
    r
}
