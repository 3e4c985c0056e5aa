//! zip: our own central-directory and local-header parser (validated offsets,
//! no allocation sized by a header field), members decompressed as streams:
//! stored (borrowed), deflate (flate2), deflate64 (deflate64), bzip2 (bzip2),
//! lzma (lzma-rs, capped writer), implode ([`super::explode`]).
//!
//! ClamAV's behaviour is followed where it matters: prepended data
//! (self-extractors) is allowed, a missing or damaged central directory falls
//! back to walking the local headers, and central entries whose data overlap
//! (the non-recursive zip bomb) are reported as
//! `Heuristics.Zip.OverlappingFiles` and nothing more is decoded.
use super::{le16, le32, le64, CappedWriter, CrcCheck};
use crate::{ChildMeta, Extractor, Flow};
use memchr::memmem;
use std::io::{Cursor, Read};

const LOCAL_SIG: &[u8] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8] = b"PK\x01\x02";
const EOCD_SIG: &[u8] = b"PK\x05\x06";
const ZIP64_EOCD_SIG: &[u8] = b"PK\x06\x06";
/// The end-of-central-directory record is at most this far from the end
/// (22 bytes + a 65,535-byte comment).
const EOCD_SEARCH: usize = 22 + 65_535;
const LOCAL_LEN: usize = 30;
const CENTRAL_LEN: usize = 46;
/// Longest member name kept (longer ones are cut for the location).
const MAX_NAME: usize = 4096;

/// One member as declared by a central or local header.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u64,
    usize: u64,
    /// Offset of the local header (already shifted by prepended data).
    local: u64,
}

pub(crate) fn zip(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let dir = central(data).and_then(|e| {
        if e.is_empty() && memmem::find(data, LOCAL_SIG).is_some() {
            Err("central directory lists no members, but local headers exist".to_string())
        } else {
            Ok(e)
        }
    });
    match dir {
        Ok(entries) => {
            if let Some(detail) = overlapping(data, &entries) {
                ex.heuristic("Heuristics.Zip.OverlappingFiles", None, &detail);
                return;
            }
            for e in &entries {
                if ex.done() {
                    return;
                }
                let Some((start, _)) = local_data(data, e.local) else {
                    ex.broken(
                        "Zip",
                        &format!("{}: local header missing or damaged", e.name),
                    );
                    continue;
                };
                if member(data, e, start, true, ex) == Flow::Stop {
                    return;
                }
            }
        }
        Err(why) => {
            let found = locals(data, ex);
            if found > 0 || memmem::find(data, LOCAL_SIG).is_some() {
                ex.broken(
                    "Zip",
                    &format!("{why}; local headers walked ({found} members)"),
                );
            } else {
                ex.broken("Zip", &why);
            }
        }
    }
}

/// Parses the central directory. `Err` when it is missing or damaged.
fn central(data: &[u8]) -> Result<Vec<Entry>, String> {
    let from = data.len().saturating_sub(EOCD_SEARCH);
    let eocd = memmem::rfind(&data[from..], EOCD_SIG)
        .map(|i| from + i)
        .ok_or("no end of central directory")?;
    let bad = || "end of central directory truncated".to_string();
    let mut count = le16(data, eocd + 10).ok_or_else(bad)? as u64;
    let mut cd_size = le32(data, eocd + 12).ok_or_else(bad)? as u64;
    let mut cd_off = le32(data, eocd + 16).ok_or_else(bad)? as u64;
    let mut cd_end = eocd as u64;
    if count == 0xffff || cd_size == 0xffff_ffff || cd_off == 0xffff_ffff {
        // Zip64: the locator sits just before the EOCD record.
        if let Some(loc) = eocd.checked_sub(20) {
            if data.get(loc..loc + 4) == Some(b"PK\x06\x07") {
                let rec = le64(data, loc + 8).ok_or_else(bad)?;
                let rec = usize::try_from(rec).map_err(|_| bad())?;
                if data.get(rec..rec.saturating_add(4)) == Some(ZIP64_EOCD_SIG) {
                    count = le64(data, rec + 32).ok_or_else(bad)?;
                    cd_size = le64(data, rec + 40).ok_or_else(bad)?;
                    cd_off = le64(data, rec + 48).ok_or_else(bad)?;
                    cd_end = rec as u64;
                }
            }
        }
    }
    // Prepended data: the directory really starts cd_size bytes before its end.
    let real = cd_end
        .checked_sub(cd_size)
        .ok_or("central directory size larger than the file")?;
    let shift = if data
        .get(cd_off as usize..)
        .is_some_and(|d| d.starts_with(CENTRAL_SIG))
        && cd_off <= real
    {
        0
    } else {
        real.checked_sub(cd_off)
            .ok_or("central directory offset past its end")?
    };
    let start = cd_off + shift;
    if count > 0
        && !data
            .get(start as usize..)
            .is_some_and(|d| d.starts_with(CENTRAL_SIG))
    {
        return Err("central directory not where its end record says".into());
    }
    let mut entries = Vec::new();
    let mut pos = start as usize;
    // Entries are parsed from real bytes (46 bytes each at least), so the
    // vector is bounded by the input whatever `count` says.
    while (entries.len() as u64) < count {
        let h = data
            .get(pos..pos + CENTRAL_LEN)
            .ok_or("central directory truncated")?;
        if &h[..4] != CENTRAL_SIG {
            return Err(format!(
                "central directory damaged after {} entries",
                entries.len()
            ));
        }
        let nlen = le16(h, 28).unwrap_or(0) as usize;
        let xlen = le16(h, 30).unwrap_or(0) as usize;
        let clen = le16(h, 32).unwrap_or(0) as usize;
        let name_at = pos + CENTRAL_LEN;
        let name = data
            .get(name_at..name_at + nlen)
            .ok_or("central directory truncated")?;
        let extra = data
            .get(name_at + nlen..name_at + nlen + xlen)
            .ok_or("central directory truncated")?;
        let mut e = Entry {
            name: name_str(name),
            flags: le16(h, 8).unwrap_or(0),
            method: le16(h, 10).unwrap_or(0),
            crc: le32(h, 16).unwrap_or(0),
            csize: le32(h, 20).unwrap_or(0) as u64,
            usize: le32(h, 24).unwrap_or(0) as u64,
            local: le32(h, 42).unwrap_or(0) as u64,
        };
        zip64_extra(extra, &mut e, true);
        e.local = e.local.saturating_add(shift);
        entries.push(e);
        pos = name_at + nlen + xlen + clen;
    }
    Ok(entries)
}

/// Applies the zip64 extra field (0x0001) and the AES one (0x9901).
fn zip64_extra(extra: &[u8], e: &mut Entry, central: bool) {
    let mut i = 0usize;
    while let (Some(id), Some(len)) = (le16(extra, i), le16(extra, i + 2)) {
        let body = extra.get(i + 4..i + 4 + len as usize).unwrap_or(&[]);
        if id == 0x0001 {
            let mut at = 0;
            let mut next = |v: &mut u64, wide: bool| {
                if wide {
                    if let Some(x) = le64(body, at) {
                        *v = x;
                        at += 8;
                    }
                }
            };
            let (u, c) = (e.usize == 0xffff_ffff, e.csize == 0xffff_ffff);
            next(&mut e.usize, u);
            next(&mut e.csize, c);
            if central {
                let l = e.local == 0xffff_ffff;
                next(&mut e.local, l);
            }
        } else if id == 0x9901 {
            // AES (WinZip): always reported as encrypted, whatever the
            // method field says.
            if body.len() >= 7 {
                e.method = 99;
            }
        }
        i += 4 + len as usize;
    }
}

fn name_str(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_NAME)];
    String::from_utf8(raw.to_vec()).unwrap_or_else(|_| raw.iter().map(|&b| b as char).collect())
}

/// The data start of the member whose local header is at `local`, and its
/// local header's fields.
fn local_data(data: &[u8], local: u64) -> Option<(usize, Entry)> {
    let at = usize::try_from(local).ok()?;
    let h = data.get(at..at.checked_add(LOCAL_LEN)?)?;
    if &h[..4] != LOCAL_SIG {
        return None;
    }
    let nlen = le16(h, 26)? as usize;
    let xlen = le16(h, 28)? as usize;
    let name_at = at + LOCAL_LEN;
    let name = data.get(name_at..name_at + nlen)?;
    let extra = data
        .get(name_at + nlen..name_at + nlen + xlen)
        .unwrap_or(&[]);
    let mut e = Entry {
        name: name_str(name),
        flags: le16(h, 6)?,
        method: le16(h, 8)?,
        crc: le32(h, 14)?,
        csize: le32(h, 18)? as u64,
        usize: le32(h, 22)? as u64,
        local,
    };
    zip64_extra(extra, &mut e, false);
    Some((name_at + nlen + xlen, e))
}

/// Two central entries whose [local header, data end) ranges overlap: the
/// construction of non-recursive zip bombs (ClamAV: `Heuristics.Zip.OverlappingFiles`).
fn overlapping(data: &[u8], entries: &[Entry]) -> Option<String> {
    let mut ranges: Vec<(u64, u64, usize)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let (start, _) = local_data(data, e.local)?;
            Some((e.local, (start as u64).saturating_add(e.csize), i))
        })
        .collect();
    ranges.sort_unstable();
    let mut prev: Option<(u64, u64, usize)> = None;
    for r in ranges {
        if let Some(p) = prev {
            if r.0 < p.1 {
                let (a, b) = (&entries[p.2].name, &entries[r.2].name);
                return Some(format!(
                    "members {a:?} and {b:?} share data (local headers at {} and {}); \
                     a non-recursive zip bomb; not decoded",
                    p.0, r.0
                ));
            }
        }
        if prev.is_none_or(|p| r.1 > p.1) {
            prev = Some(r);
        } else if let Some(p) = prev.as_mut() {
            p.0 = r.0;
        }
    }
    None
}

/// Walks local headers from the first signature (ClamAV's fallback when the
/// central directory is missing or damaged). Returns the members found.
fn locals(data: &[u8], ex: &mut Extractor<'_, '_, '_>) -> usize {
    let mut found = 0;
    let mut pos = match memmem::find(data, LOCAL_SIG) {
        Some(p) => p,
        None => return 0,
    };
    while !ex.done() {
        let Some((start, mut e)) = local_data(data, pos as u64) else {
            break;
        };
        // Sizes in a data descriptor (flag bit 3): the data ends at the next
        // signature; deflate and friends end by themselves anyway.
        let known = e.flags & 0x08 == 0 || e.csize != 0;
        if !known {
            let rest = data.get(start..).unwrap_or(&[]);
            let end = [b"PK\x07\x08".as_slice(), LOCAL_SIG, CENTRAL_SIG]
                .iter()
                .filter_map(|s| memmem::find(rest, s))
                .min()
                .unwrap_or(rest.len());
            e.csize = end as u64;
        }
        found += 1;
        if member(data, &e, start, known, ex) == Flow::Stop {
            break;
        }
        let next_from = start
            .saturating_add(usize::try_from(e.csize).unwrap_or(usize::MAX))
            .min(data.len());
        match memmem::find(&data[next_from..], LOCAL_SIG) {
            Some(i) => pos = next_from + i,
            None => break,
        }
    }
    found
}

fn method_name(m: u16) -> &'static str {
    match m {
        1 => "shrink",
        2..=5 => "reduce",
        6 => "implode",
        10 => "PKWARE DCL implode",
        18 => "IBM TERSE",
        19 => "IBM LZ77",
        20 | 93 => "zstd",
        95 => "xz",
        96 => "JPEG",
        97 => "WavPack",
        98 => "PPMd",
        _ => "unknown",
    }
}

/// Decodes one member whose data starts at `start`. `check_crc`: the CRC in
/// `e` is trustworthy (not deferred to a data descriptor).
fn member(
    data: &[u8],
    e: &Entry,
    start: usize,
    check_crc: bool,
    ex: &mut Extractor<'_, '_, '_>,
) -> Flow {
    if e.name.ends_with('/') || e.name.ends_with('\\') {
        return Flow::Continue;
    }
    let seg = if e.name.is_empty() {
        format!("member@{}", e.local)
    } else {
        e.name.clone()
    };
    if e.flags & 0x01 != 0 || e.method == 99 {
        let how = if e.method == 99 || e.flags & 0x40 != 0 {
            "AES"
        } else {
            "ZipCrypto"
        };
        return ex.encrypted(
            "Zip",
            Some(&seg),
            &format!("member encrypted ({how}); not decoded"),
        );
    }
    let end = start.saturating_add(usize::try_from(e.csize).unwrap_or(usize::MAX));
    let raw = data
        .get(start.min(data.len())..end.min(data.len()))
        .unwrap_or(&[]);
    let truncated = end > data.len();
    let packed = Some(e.csize.max(1));
    let meta = ChildMeta::named(seg.clone());
    let crc = if check_crc { Some(e.crc) } else { None };
    let flow = match e.method {
        0 => {
            let f = ex.child(meta, raw);
            if !truncated && check_crc && f == Flow::Continue {
                let mut c = flate2::Crc::new();
                c.update(raw);
                if c.sum() != e.crc {
                    ex.broken("Zip", &format!("{seg}: bad CRC"));
                }
            }
            f
        }
        8 => stream(
            ex,
            meta,
            flate2::read::DeflateDecoder::new(raw),
            crc,
            packed,
        ),
        9 => stream(ex, meta, deflate64::Deflate64Decoder::new(raw), crc, packed),
        12 => stream(ex, meta, ::bzip2::read::BzDecoder::new(raw), crc, packed),
        14 => lzma(raw, e, meta, ex),
        6 => {
            let mut w = CappedWriter::for_member(ex, e.csize);
            let res = super::explode::explode(raw, e.flags, e.usize, &mut w);
            let full = w.full;
            let f = stream(
                ex,
                meta,
                Cursor::new(w.buf),
                if res.is_ok() { crc } else { None },
                packed,
            );
            if let Err(why) = res {
                if !full && !ex.done() {
                    ex.broken("Zip", &format!("{seg}: implode: {why}"));
                }
            }
            f
        }
        m => ex.unscannable(
            "Zip",
            Some(&seg),
            &format!("compression method {m} ({}) not supported", method_name(m)),
        ),
    };
    if truncated && flow == Flow::Continue {
        return ex.broken(
            "Zip",
            &format!("{seg}: data runs past the end of the archive"),
        );
    }
    flow
}

fn stream<R: Read>(
    ex: &mut Extractor<'_, '_, '_>,
    meta: ChildMeta,
    r: R,
    crc: Option<u32>,
    packed: Option<u64>,
) -> Flow {
    match crc {
        Some(c) => ex.child_reader(meta, &mut CrcCheck::new(r, c), packed),
        None => {
            let mut r = r;
            ex.child_reader(meta, &mut r, packed)
        }
    }
}

/// zip's LZMA (method 14): 2-byte version, 2-byte properties size, the
/// 5-byte LZMA properties, then the raw stream; its end is the declared size,
/// or an end marker when flag bit 1 is set.
fn lzma(raw: &[u8], e: &Entry, meta: ChildMeta, ex: &mut Extractor<'_, '_, '_>) -> Flow {
    let seg = meta.segment.clone();
    let psize = le16(raw, 2).unwrap_or(0) as usize;
    let Some(body) = raw.get(4..).filter(|_| psize == 5) else {
        return ex.broken("Zip", &format!("{seg}: bad LZMA header"));
    };
    let opts = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(if e.flags & 0x02 != 0 {
            None
        } else {
            Some(e.usize)
        }),
        // The dictionary grows with the output, which the writer caps.
        memlimit: None,
        allow_incomplete: false,
    };
    let mut w = CappedWriter::for_member(ex, e.csize);
    let res = lzma_rs::lzma_decompress_with_options(&mut Cursor::new(body), &mut w, &opts);
    let full = w.full;
    let f = ex.child_reader(meta, &mut Cursor::new(w.buf), Some(e.csize.max(1)));
    if let Err(err) = res {
        if !full && !ex.done() {
            return ex.broken("Zip", &format!("{seg}: LZMA: {err:?}"));
        }
    }
    f
}
