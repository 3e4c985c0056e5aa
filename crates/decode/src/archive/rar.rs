//! RAR archives, formats 1.5–4.x ("RAR4") and 5.0 ("RAR5"): the headers are
//! parsed, the compressed data is not (the RAR decompression algorithm is not
//! reimplemented here).
//!
//! - Stored members are handed over, borrowed from the input (their data CRC32
//!   is checked; a mismatch is reported as broken after the member is handed over).
//! - Compressed members: their names go through the name heuristics and
//!   `Heuristics.Unscannable.Rar` is reported at their location.
//! - Encrypted members: `Heuristics.Encrypted.Rar` at their location;
//!   encrypted headers (`rar -hp`): `Heuristics.Encrypted.Rar` at the archive.
//! - Members split across volumes: `Heuristics.Unscannable.Rar`.
//! - Damage (bad header CRC, a header or data past the end): `Heuristics.Broken.Rar`
//!   after the members before it were handed over.
//!
//! A self-extracting archive (an `MZ` stub) is read from the first RAR marker in
//! its first [`SFX_SEARCH`] bytes.
use crate::bytes::{le16, le32};
use crate::{ChildMeta, Extractor, Flow};

/// RAR 1.5–4.x marker block.
const SIG4: &[u8] = b"Rar!\x1a\x07\x00";
/// RAR 5.0 signature.
const SIG5: &[u8] = b"Rar!\x1a\x07\x01\x00";
/// How far into an executable stub the RAR marker is looked for.
const SFX_SEARCH: usize = 1 << 20;
/// Most headers read from one archive (the rest is reported unscannable).
const MAX_BLOCKS: usize = 1 << 20;
/// Longest member name kept, in bytes (longer names are cut).
const MAX_NAME: usize = 4096;
/// RAR5 headers are at most 2 MiB (format limit); larger is damage.
const MAX_HEADER5: u64 = 2 << 20;
/// Most extra-area records read from one RAR5 header.
const MAX_EXTRA_RECORDS: usize = 64;

/// CRC-32 (IEEE, reflected, polynomial 0xEDB88320), table built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 of `d` (the checksum RAR, zip and gzip use). Linear, never panics.
pub(crate) fn crc32(d: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in d {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// What one file header says about its member.
struct Member {
    name: String,
    /// Absolute offset of the packed data in the input.
    start: usize,
    /// Packed size.
    packed: u64,
    /// Compression method: 0 = stored, 1..=5 compressed.
    method: u32,
    encrypted: bool,
    dir: bool,
    /// Continued from or into another volume.
    split: bool,
    crc: Option<u32>,
}

/// Where a reader goes after a member.
enum Next {
    Continue,
    Stop,
}

/// Reads the RAR archive in `data` (a RAR marker at offset 0, or within the
/// first [`SFX_SEARCH`] bytes after an `MZ` stub) and hands its members to
/// `ex` as described in the module documentation. Never panics; time is
/// linear in the input, memory is bounded by [`MAX_NAME`] per name.
pub(crate) fn rar(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let Some(at) = find_marker(data) else {
        ex.broken("Rar", "no RAR marker");
        return;
    };
    let rest = &data[at..];
    if rest.starts_with(SIG5) {
        rar5(data, at + SIG5.len(), ex);
    } else if rest.starts_with(SIG4) {
        rar4(data, at + SIG4.len(), ex);
    } else {
        ex.unscannable("Rar", None, "unknown RAR format version");
    }
}

/// Offset of the RAR marker: 0 when the data starts with `Rar!\x1a\x07`, else
/// the first full marker within [`SFX_SEARCH`] bytes of an `MZ` stub.
fn find_marker(data: &[u8]) -> Option<usize> {
    if data.starts_with(&SIG4[..6]) {
        return Some(0);
    }
    if !data.starts_with(b"MZ") {
        return None;
    }
    let head = &data[..data.len().min(SFX_SEARCH)];
    let a = memchr::memmem::find(head, SIG4);
    let b = memchr::memmem::find(head, SIG5);
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// A member name: cut to [`MAX_NAME`] bytes, `\` becomes `/`, leading `/`
/// removed; empty names get `member[N]`.
fn clean_name(name: String, index: usize) -> String {
    let mut n = name.replace('\\', "/");
    if n.len() > MAX_NAME {
        let mut cut = MAX_NAME;
        while !n.is_char_boundary(cut) {
            cut -= 1;
        }
        n.truncate(cut);
    }
    let n = n.trim_start_matches('/');
    if n.is_empty() {
        format!("member[{index}]")
    } else {
        n.to_string()
    }
}

/// Hands one member over (or reports why not). `Next::Stop` when the walk must
/// end or the archive cannot be followed past this member (data past the end).
fn member(data: &[u8], m: Member, ex: &mut Extractor<'_, '_, '_>) -> Next {
    let end = (m.start as u64).saturating_add(m.packed);
    let short = end > data.len() as u64;
    let flow = if m.dir {
        Flow::Continue
    } else if m.encrypted {
        ex.encrypted("Rar", Some(&m.name), "member is encrypted")
    } else if m.split {
        let meta = ChildMeta::named(m.name.clone());
        ex.member_unscannable(
            "Rar",
            &meta,
            "member is split across volumes; only this part is here",
        )
    } else if m.method != 0 {
        let meta = ChildMeta::named(m.name.clone());
        let detail = format!("RAR compression (method {}) is not decoded", m.method);
        ex.member_unscannable("Rar", &meta, &detail)
    } else {
        let s = m.start.min(data.len());
        let e = end.min(data.len() as u64) as usize;
        let bytes = data.get(s..e).unwrap_or(&[]);
        let crc_bad = !short && m.crc.is_some_and(|c| crc32(bytes) != c);
        let f = ex.child(ChildMeta::named(m.name.clone()), bytes);
        if crc_bad && f == Flow::Continue {
            ex.broken("Rar", &format!("{}: data CRC mismatch", m.name))
        } else {
            f
        }
    };
    if short {
        ex.broken(
            "Rar",
            &format!("{}: data runs past the end of the archive", m.name),
        );
        return Next::Stop;
    }
    if flow == Flow::Stop {
        Next::Stop
    } else {
        Next::Continue
    }
}

// ---------------------------------------------------------------- RAR 1.5–4.x

const R4_MAIN: u8 = 0x73;
const R4_FILE: u8 = 0x74;
const R4_NEWSUB: u8 = 0x7a;
const R4_END: u8 = 0x7b;
/// MAIN_HEAD: archive comment present (old archives: not covered by the CRC).
const R4_MAIN_COMMENT: u16 = 0x0002;
/// MAIN_HEAD: headers are encrypted.
const R4_MAIN_PASSWORD: u16 = 0x0080;
const R4_SPLIT_BEFORE: u16 = 0x0001;
const R4_SPLIT_AFTER: u16 = 0x0002;
const R4_ENCRYPTED: u16 = 0x0004;
const R4_DIR_MASK: u16 = 0x00e0;
const R4_LARGE: u16 = 0x0100;
const R4_UNICODE: u16 = 0x0200;
/// A block with ADD_SIZE (data after the header).
const R4_LONG_BLOCK: u16 = 0x8000;

/// Walks RAR4 blocks from `pos` (just after the marker).
fn rar4(data: &[u8], mut pos: usize, ex: &mut Extractor<'_, '_, '_>) {
    let mut index = 0usize;
    for _ in 0..MAX_BLOCKS {
        if ex.done() || pos >= data.len() {
            // No end block: RAR 2.x and older do not write one.
            return;
        }
        let (Some(crc), Some(&ty), Some(flags), Some(size)) = (
            le16(data, pos),
            data.get(pos + 2),
            le16(data, pos + 3),
            le16(data, pos + 5),
        ) else {
            ex.broken("Rar", &format!("truncated header at offset {pos}"));
            return;
        };
        let size = size as usize;
        if size < 7 {
            ex.broken("Rar", &format!("bad header size at offset {pos}"));
            return;
        }
        let Some(hdr) = pos.checked_add(size).and_then(|e| data.get(pos..e)) else {
            ex.broken("Rar", &format!("truncated header at offset {pos}"));
            return;
        };
        let checked = match ty {
            R4_MAIN => flags & R4_MAIN_COMMENT == 0,
            R4_FILE | R4_NEWSUB | R4_END => true,
            _ => false,
        };
        if checked && crc32(&hdr[2..]) as u16 != crc {
            ex.broken("Rar", &format!("bad header CRC at offset {pos}"));
            return;
        }
        let mut skip = if flags & R4_LONG_BLOCK != 0 {
            match le32(hdr, 7) {
                Some(n) => n as u64,
                None => {
                    ex.broken("Rar", &format!("bad header at offset {pos}"));
                    return;
                }
            }
        } else {
            0
        };
        match ty {
            R4_MAIN if flags & R4_MAIN_PASSWORD != 0 => {
                ex.encrypted("Rar", None, "archive headers are encrypted");
                return;
            }
            R4_END => return,
            R4_FILE | R4_NEWSUB => {
                let Some(m) = file4(hdr, flags, pos + size, index + 1) else {
                    ex.broken("Rar", &format!("bad file header at offset {pos}"));
                    return;
                };
                skip = m.packed;
                if ty == R4_FILE {
                    index += 1;
                    if let Next::Stop = member(data, m, ex) {
                        return;
                    }
                }
            }
            _ => {}
        }
        let next = (pos as u64)
            .checked_add(size as u64)
            .and_then(|n| n.checked_add(skip));
        match next {
            Some(n) if n <= data.len() as u64 => pos = n as usize,
            _ => {
                ex.broken(
                    "Rar",
                    &format!("block at offset {pos} runs past the end of the archive"),
                );
                return;
            }
        }
    }
    ex.unscannable(
        "Rar",
        None,
        &format!("more than {MAX_BLOCKS} headers; the rest is not read"),
    );
}

/// Parses a RAR4 FILE_HEAD / NEWSUB_HEAD `hdr` (the whole header); `start` is
/// the absolute offset of its data. `None` when a field lies outside the header.
fn file4(hdr: &[u8], flags: u16, start: usize, index: usize) -> Option<Member> {
    let pack_lo = le32(hdr, 7)? as u64;
    let crc = le32(hdr, 16)?;
    let method = *hdr.get(25)?;
    let name_size = le16(hdr, 26)? as usize;
    let mut off: usize = 32;
    let mut packed = pack_lo;
    if flags & R4_LARGE != 0 {
        packed |= (le32(hdr, 32)? as u64) << 32;
        off = 40;
    }
    let raw = hdr.get(off..off.checked_add(name_size)?)?;
    let name = if flags & R4_UNICODE != 0 {
        match raw.iter().position(|&b| b == 0) {
            Some(z) => decode_unicode_name(&raw[..z], &raw[z + 1..]),
            None => String::from_utf8_lossy(raw).into_owned(),
        }
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    Some(Member {
        name: clean_name(name, index),
        start,
        packed,
        method: (method as u32).saturating_sub(0x30),
        encrypted: flags & R4_ENCRYPTED != 0,
        dir: flags & R4_DIR_MASK == R4_DIR_MASK,
        split: flags & (R4_SPLIT_BEFORE | R4_SPLIT_AFTER) != 0,
        crc: Some(crc),
    })
}

/// Decodes the RAR 3.x Unicode name: `oem` is the 8-bit name, `enc` the
/// encoded UTF-16 (a high byte, then groups of four 2-bit opcodes: low byte
/// only; low byte with the high byte; both bytes; a run copied from `oem`,
/// optionally with a correction added). At most `oem.len()` (and
/// [`MAX_NAME`]) code units; bytes missing at the end end the name.
fn decode_unicode_name(oem: &[u8], enc: &[u8]) -> String {
    let limit = oem.len().min(MAX_NAME);
    let mut out: Vec<u16> = Vec::with_capacity(limit);
    let Some(&high) = enc.first() else {
        return String::from_utf8_lossy(oem).into_owned();
    };
    let high = (high as u16) << 8;
    let mut p = 1usize;
    let mut flags = 0u8;
    let mut bits = 0u32;
    let next = |p: &mut usize| -> Option<u8> {
        let b = enc.get(*p).copied();
        *p += 1;
        b
    };
    'outer: while out.len() < limit {
        if bits == 0 {
            match next(&mut p) {
                Some(f) => flags = f,
                None => break,
            }
            bits = 8;
        }
        match flags >> 6 {
            0 => match next(&mut p) {
                Some(b) => out.push(b as u16),
                None => break,
            },
            1 => match next(&mut p) {
                Some(b) => out.push(b as u16 | high),
                None => break,
            },
            2 => match (next(&mut p), next(&mut p)) {
                (Some(lo), Some(hi)) => out.push(lo as u16 | (hi as u16) << 8),
                _ => break,
            },
            _ => {
                let Some(len) = next(&mut p) else { break };
                let run = (len & 0x7f) as usize + 2;
                if len & 0x80 != 0 {
                    let Some(corr) = next(&mut p) else { break };
                    for _ in 0..run {
                        let Some(&o) = oem.get(out.len()) else {
                            break 'outer;
                        };
                        if out.len() >= limit {
                            break 'outer;
                        }
                        out.push(o.wrapping_add(corr) as u16 | high);
                    }
                } else {
                    for _ in 0..run {
                        let Some(&o) = oem.get(out.len()) else {
                            break 'outer;
                        };
                        if out.len() >= limit {
                            break 'outer;
                        }
                        out.push(o as u16);
                    }
                }
            }
        }
        flags <<= 2;
        bits -= 2;
    }
    if out.is_empty() {
        return String::from_utf8_lossy(oem).into_owned();
    }
    String::from_utf16_lossy(&out)
}

// ------------------------------------------------------------------- RAR 5.0

const R5_MAIN: u64 = 1;
const R5_FILE: u64 = 2;
const R5_CRYPT: u64 = 4;
const R5_END: u64 = 5;
const R5_H_EXTRA: u64 = 0x0001;
const R5_H_DATA: u64 = 0x0002;
const R5_H_SPLIT_BEFORE: u64 = 0x0008;
const R5_H_SPLIT_AFTER: u64 = 0x0010;
const R5_F_DIR: u64 = 0x0001;
const R5_F_TIME: u64 = 0x0002;
const R5_F_CRC: u64 = 0x0004;
/// File encryption record in the extra area.
const R5_X_CRYPT: u64 = 0x01;

/// A bounded reader over one header.
struct Rd<'a> {
    d: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    /// A RAR5 variable-length integer (7 bits per byte, low first, at most 10 bytes).
    fn vint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.d.get(self.p)?;
            self.p += 1;
            v |= ((b & 0x7f) as u64).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn u32(&mut self) -> Option<u32> {
        let v = le32(self.d, self.p)?;
        self.p += 4;
        Some(v)
    }
    fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let s = self.d.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
}

/// Walks RAR5 headers from `pos` (just after the signature).
fn rar5(data: &[u8], mut pos: usize, ex: &mut Extractor<'_, '_, '_>) {
    let mut index = 0usize;
    for _ in 0..MAX_BLOCKS {
        if ex.done() {
            return;
        }
        if pos >= data.len() {
            ex.broken("Rar", "no end-of-archive header");
            return;
        }
        let Some(crc) = le32(data, pos) else {
            ex.broken("Rar", &format!("truncated header at offset {pos}"));
            return;
        };
        let mut r = Rd {
            d: data,
            p: pos + 4,
        };
        let Some(hsize) = r.vint().filter(|&n| n > 0 && n <= MAX_HEADER5) else {
            ex.broken("Rar", &format!("bad header size at offset {pos}"));
            return;
        };
        let hstart = r.p;
        let hend = hstart + hsize as usize;
        let Some(hdr) = data.get(hstart..hend) else {
            ex.broken("Rar", &format!("truncated header at offset {pos}"));
            return;
        };
        if crc32(&data[pos + 4..hend]) != crc {
            ex.broken("Rar", &format!("bad header CRC at offset {pos}"));
            return;
        }
        let parsed = header5(hdr, hend, index + 1);
        let Some((ty, data_size, m)) = parsed else {
            ex.broken("Rar", &format!("bad header at offset {pos}"));
            return;
        };
        match ty {
            R5_CRYPT => {
                ex.encrypted("Rar", None, "archive headers are encrypted");
                return;
            }
            R5_END => return,
            R5_FILE => {
                if let Some(m) = m {
                    index += 1;
                    if let Next::Stop = member(data, m, ex) {
                        return;
                    }
                }
            }
            // The main header (volume flags are seen on each member) is skipped.
            R5_MAIN => {}
            // Service (CMT, QO, ACL, STM, RR) and unknown headers: skipped.
            _ => {}
        }
        match (hend as u64).checked_add(data_size) {
            Some(n) if n <= data.len() as u64 => pos = n as usize,
            _ => {
                ex.broken(
                    "Rar",
                    &format!("block at offset {pos} runs past the end of the archive"),
                );
                return;
            }
        }
    }
    ex.unscannable(
        "Rar",
        None,
        &format!("more than {MAX_BLOCKS} headers; the rest is not read"),
    );
}

/// Parses one RAR5 header `hdr` (from its type field to its end; its data
/// area starts at absolute offset `data_start`). Returns the header type, the
/// data area size, and for a file header its member. `None` when a field lies
/// outside the header.
fn header5(hdr: &[u8], data_start: usize, index: usize) -> Option<(u64, u64, Option<Member>)> {
    let mut r = Rd { d: hdr, p: 0 };
    let ty = r.vint()?;
    let hflags = r.vint()?;
    let extra_size = if hflags & R5_H_EXTRA != 0 {
        r.vint()?
    } else {
        0
    };
    let data_size = if hflags & R5_H_DATA != 0 {
        r.vint()?
    } else {
        0
    };
    if ty != R5_FILE {
        return Some((ty, data_size, None));
    }
    let extra_at = (hdr.len() as u64).checked_sub(extra_size)? as usize;
    let fflags = r.vint()?;
    let _unpacked = r.vint()?;
    let _attributes = r.vint()?;
    if fflags & R5_F_TIME != 0 {
        r.u32()?;
    }
    let crc = if fflags & R5_F_CRC != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    let comp = r.vint()?;
    let _host = r.vint()?;
    let name_len = r.vint()?;
    let raw = r.bytes(name_len)?;
    if r.p > extra_at {
        return None;
    }
    let name = String::from_utf8_lossy(raw).into_owned();
    let encrypted = extra_has(&hdr[extra_at..], R5_X_CRYPT);
    let m = Member {
        name: clean_name(name, index),
        start: data_start,
        packed: data_size,
        method: ((comp >> 7) & 7) as u32,
        encrypted,
        dir: fflags & R5_F_DIR != 0,
        split: hflags & (R5_H_SPLIT_BEFORE | R5_H_SPLIT_AFTER) != 0,
        crc,
    };
    Some((ty, data_size, Some(m)))
}

/// True when the RAR5 extra area `extra` holds a record of type `want` (at most
/// [`MAX_EXTRA_RECORDS`] records are read; a damaged area ends the search).
fn extra_has(extra: &[u8], want: u64) -> bool {
    let mut r = Rd { d: extra, p: 0 };
    for _ in 0..MAX_EXTRA_RECORDS {
        let Some(size) = r.vint() else { return false };
        let Some(rec) = r.bytes(size) else {
            return false;
        };
        let mut rr = Rd { d: rec, p: 0 };
        if rr.vint() == Some(want) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Kind};

    fn v(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn block4(ty: u8, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut h = vec![ty];
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&((body.len() + 7) as u16).to_le_bytes());
        h.extend_from_slice(body);
        let mut out = (crc32(&h) as u16).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out
    }

    fn file4(name: &[u8], flags: u16, method: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        b.push(2);
        b.extend_from_slice(&crc32(payload).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(29);
        b.push(method);
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(&0x20u32.to_le_bytes());
        b.extend_from_slice(name);
        let mut out = block4(R4_FILE, flags | R4_LONG_BLOCK, &b);
        out.extend_from_slice(payload);
        out
    }

    fn rar4_sample() -> Vec<u8> {
        let mut a = SIG4.to_vec();
        a.extend(block4(R4_MAIN, 0, &[0; 6]));
        a.extend(file4(b"dir\\a.txt", 0, 0x30, b"hello stored marker"));
        a.extend(file4(b"b.txt", R4_ENCRYPTED, 0x30, b"xxxxxxxx"));
        a.extend(file4(b"c.txt", 0, 0x33, b"compressed?"));
        a.extend(file4(b"dir", R4_DIR_MASK, 0x30, b""));
        a.extend(block4(R4_END, 0x4000, &[]));
        a
    }

    fn head5(ty: u64, hflags: u64, fields: &[u8], extra: &[u8], data_size: u64) -> Vec<u8> {
        let mut body = Vec::new();
        v(ty, &mut body);
        v(hflags, &mut body);
        if hflags & R5_H_EXTRA != 0 {
            v(extra.len() as u64, &mut body);
        }
        if hflags & R5_H_DATA != 0 {
            v(data_size, &mut body);
        }
        body.extend_from_slice(fields);
        body.extend_from_slice(extra);
        let mut sized = Vec::new();
        v(body.len() as u64, &mut sized);
        sized.extend(body);
        let mut out = crc32(&sized).to_le_bytes().to_vec();
        out.extend(sized);
        out
    }

    fn file5(name: &str, method: u64, encrypted: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        v(R5_F_CRC, &mut f);
        v(payload.len() as u64, &mut f);
        v(0x20, &mut f);
        f.extend_from_slice(&crc32(payload).to_le_bytes());
        v(method << 7, &mut f);
        v(0, &mut f);
        v(name.len() as u64, &mut f);
        f.extend_from_slice(name.as_bytes());
        let mut extra = Vec::new();
        let mut hflags = R5_H_DATA;
        if encrypted {
            let rec = [1u8, 0, 0, 15];
            v(rec.len() as u64, &mut extra);
            extra.extend_from_slice(&rec);
            hflags |= R5_H_EXTRA;
        }
        let mut out = head5(R5_FILE, hflags, &f, &extra, payload.len() as u64);
        out.extend_from_slice(payload);
        out
    }

    fn rar5_sample() -> Vec<u8> {
        let mut a = SIG5.to_vec();
        a.extend(head5(R5_MAIN, 0, &[0], &[], 0));
        a.extend(file5("dir/a.txt", 0, false, b"hello stored marker"));
        a.extend(file5("b.txt", 0, true, b"xxxxxxxx"));
        a.extend(file5("c.txt", 3, false, b"compressed?"));
        a.extend(head5(R5_END, 0, &[0], &[], 0));
        a
    }

    fn names(d: &crate::Decoded<'_>) -> Vec<String> {
        d.findings
            .iter()
            .map(|f| format!("{} at {}", f.name, f.location))
            .collect()
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn both_formats_members_and_findings() {
        for a in [rar4_sample(), rar5_sample()] {
            let d = Decoder::default().decode(&a);
            let objs: Vec<_> = d.objects.iter().map(|o| o.location.as_str()).collect();
            assert_eq!(objs, ["", "dir/a.txt"], "{:?}", names(&d));
            assert_eq!(d.objects[1].data.as_ref(), b"hello stored marker");
            let f = names(&d);
            assert!(
                f.contains(&"Heuristics.Encrypted.Rar at b.txt".to_string()),
                "{f:?}"
            );
            assert!(
                f.contains(&"Heuristics.Unscannable.Rar at c.txt".to_string()),
                "{f:?}"
            );
            assert!(!f.iter().any(|n| n.contains("Broken")), "{f:?}");
        }
    }

    #[test]
    fn encrypted_headers() {
        let mut a = SIG4.to_vec();
        a.extend(block4(R4_MAIN, R4_MAIN_PASSWORD, &[0; 6]));
        a.extend_from_slice(&[0x55; 64]);
        let d = Decoder::default().decode(&a);
        assert_eq!(names(&d), ["Heuristics.Encrypted.Rar at "]);
        let mut b = SIG5.to_vec();
        b.extend(head5(R5_CRYPT, 0, &[0, 0, 15], &[], 0));
        b.extend_from_slice(&[0x55; 64]);
        let d = Decoder::default().decode(&b);
        assert_eq!(names(&d), ["Heuristics.Encrypted.Rar at "]);
    }

    #[test]
    fn unicode_name_decoding() {
        // OEM "abc", all three as low bytes with high byte 0x04 (Cyrillic).
        assert_eq!(
            decode_unicode_name(b"abc", &[0x04, 0b0101_0100, 0x30, 0x31, 0x32]),
            "\u{430}\u{431}\u{432}"
        );
        // A run copied from the OEM name.
        assert_eq!(decode_unicode_name(b"abcd", &[0, 0b1100_0000, 2]), "abcd");
        // Garbage never panics and stays bounded.
        let _ = decode_unicode_name(b"ab", &[0xff; 40]);
        let _ = decode_unicode_name(b"", &[]);
    }

    #[test]
    fn sfx_stub_is_skipped() {
        let mut a = b"MZ\x90\x00 stub ".to_vec();
        a.extend(rar5_sample());
        let d = Decoder::default().walk_as_decoded(Kind::Rar, &a);
        assert!(d.iter().any(|l| l == "dir/a.txt"), "{d:?}");
    }

    #[test]
    fn truncations_and_garbling_never_panic() {
        for a in [rar4_sample(), rar5_sample()] {
            for n in 0..a.len() {
                let d = Decoder::default().walk_as_decoded(Kind::Rar, &a[..n]);
                let _ = d;
            }
            for i in 0..a.len() {
                for x in [0x00u8, 0xff, 0x80, 0x01] {
                    let mut b = a.clone();
                    b[i] ^= x;
                    let _ = Decoder::default().walk_as_decoded(Kind::Rar, &b);
                }
            }
        }
        // A truncated archive is reported broken.
        let a = rar5_sample();
        let d = Decoder::default().decode(&a[..a.len() - 20]);
        assert!(names(&d)
            .iter()
            .any(|n| n.starts_with("Heuristics.Broken.Rar")));
    }

    /// Test helper: the object locations of a forced walk.
    trait WalkAs {
        fn walk_as_decoded(&self, k: Kind, data: &[u8]) -> Vec<String>;
    }

    impl WalkAs for Decoder {
        fn walk_as_decoded(&self, k: Kind, data: &[u8]) -> Vec<String> {
            struct V(Vec<String>);
            impl crate::Visitor for V {
                fn object(&mut self, o: &crate::ScanObject<'_>) -> Flow {
                    self.0.push(o.location.clone());
                    Flow::Continue
                }
                fn finding(&mut self, _: mxguard_types::Finding) -> Flow {
                    Flow::Continue
                }
            }
            let mut v = V(Vec::new());
            self.walk_as(k, data, &mut v);
            v.0
        }
    }
}
