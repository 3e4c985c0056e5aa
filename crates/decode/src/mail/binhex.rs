//! BinHex 4.0: 6-bit text between `:` marks, 0x90 run-length encoding, a
//! header (name, fork lengths, CRC), the data fork and the resource fork, each
//! followed by a CRC-16/XMODEM.
use crate::bytes::{be16, be32};

use crate::{ChildMeta, Extractor};

/// The marker line that starts BinHex data.
const MARKER: &[u8] = b"(This file must be converted with BinHex";
/// The 64 characters of BinHex's 6-bit alphabet.
const ALPHABET: &[u8; 64] = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";
/// The run-length marker byte.
const RLE: u8 = 0x90;

/// CRC-16/XMODEM (polynomial 0x1021, initial 0), as BinHex uses it.
pub(crate) fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Decodes the 6-bit text from `data` (which starts after the opening `:`) up
/// to the closing `:`; whitespace skipped; stops at an invalid character.
/// Returns the bytes and whether the closing `:` was found.
fn decode6(data: &[u8]) -> (Vec<u8>, bool) {
    let mut map = [0xffu8; 256];
    for (i, &c) in ALPHABET.iter().enumerate() {
        map[usize::from(c)] = i as u8;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in data {
        if c == b':' {
            return (out, true);
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        let v = map[usize::from(c)];
        if v == 0xff {
            return (out, false);
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (out, false)
}

/// Expands 0x90 runs: `c 0x90 n` is `c` repeated `n` times; `0x90 0x00` is a
/// literal 0x90. Stops at `cap` bytes (returns `true` if it had to).
pub(crate) fn unrle(data: &[u8], cap: usize) -> (Vec<u8>, bool) {
    let mut out: Vec<u8> = Vec::with_capacity(data.len().min(cap));
    let mut i = 0;
    while i < data.len() {
        if out.len() >= cap {
            return (out, true);
        }
        let c = data[i];
        if c == RLE {
            let n = data.get(i + 1).copied().unwrap_or(0);
            i += 2;
            if n == 0 {
                out.push(RLE);
            } else if let Some(&last) = out.last() {
                let extra = (usize::from(n) - 1).min(cap.saturating_sub(out.len()));
                out.extend(std::iter::repeat_n(last, extra));
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    (out, false)
}

/// Hands over the data fork (named by the header) and, if not empty, the
/// resource fork (`<name>/resource`). Bad CRCs or a short file are reported
/// as `Heuristics.Broken.BinHex`, after what could be read was handed over.
/// Output is capped by the extractor's room; never panics.
pub(crate) fn extract_binhex(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let Some(m) = memchr::memmem::find(data, MARKER) else {
        return;
    };
    // The data starts at the first ':' at the start of a line after the marker.
    let mut p = m + MARKER.len();
    let start = loop {
        match memchr::memchr(b':', data.get(p..).unwrap_or_default()) {
            Some(i) => {
                let at = p + i;
                if at == 0 || matches!(data.get(at - 1), Some(b'\n') | Some(b'\r')) {
                    break Some(at + 1);
                }
                p = at + 1;
            }
            None => break None,
        }
    };
    let Some(start) = start else {
        ex.broken("BinHex", "no data after the BinHex marker");
        return;
    };
    let (raw, closed) = decode6(data.get(start..).unwrap_or_default());
    // Header + two forks + CRCs can be at most twice the room plus the header.
    let cap =
        usize::try_from(ex.room().saturating_mul(2).saturating_add(1024)).unwrap_or(usize::MAX);
    let (bytes, capped) = unrle(&raw, cap);
    let mut problems: Vec<String> = Vec::new();
    if !closed {
        problems.push("the closing ':' is missing".into());
    }
    let Some(&nlen) = bytes.first() else {
        ex.broken("BinHex", "empty BinHex data");
        return;
    };
    let nlen = usize::from(nlen);
    let name_bytes = bytes.get(1..1 + nlen).unwrap_or_default();
    let name = crate::codec::decode_charset(name_bytes, Some("macintosh"));
    // name, version(1), type(4), creator(4), flags(2)
    let hdr_end = 1 + nlen + 1 + 4 + 4 + 2;
    let (Some(dlen), Some(rlen), Some(hcrc)) = (
        be32(&bytes, hdr_end),
        be32(&bytes, hdr_end + 4),
        be16(&bytes, hdr_end + 8),
    ) else {
        ex.broken("BinHex", "the header is cut short");
        return;
    };
    if crc16(&bytes[..hdr_end + 8]) != hcrc {
        problems.push("header CRC mismatch".into());
    }
    let name = if name.trim().is_empty() {
        "binhex".to_string()
    } else {
        name
    };
    let dstart = hdr_end + 10;
    let forks = [
        (dlen, name.clone(), Some(name.clone()), "data"),
        (rlen, format!("{name}/resource"), None, "resource"),
    ];
    let mut at = dstart;
    for (len, segment, member_name, what) in forks {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let end = at.saturating_add(len);
        let avail = bytes.get(at..end.min(bytes.len())).unwrap_or_default();
        if avail.len() < len {
            problems.push(format!(
                "{what} fork: {len} bytes declared, {} present{}",
                avail.len(),
                if capped { " (output capped)" } else { "" }
            ));
        } else if let Some(c) = be16(&bytes, end) {
            if crc16(avail) != c {
                problems.push(format!("{what} fork CRC mismatch"));
            }
        } else if len > 0 || what == "data" {
            problems.push(format!("{what} fork CRC missing"));
        }
        if !avail.is_empty() || (what == "data" && len == 0) {
            let meta = ChildMeta {
                segment,
                name: member_name,
                ..Default::default()
            };
            if !avail.is_empty() && (ex.child(meta, avail) == crate::Flow::Stop || ex.done()) {
                return;
            }
        }
        at = end.saturating_add(2);
    }
    if !problems.is_empty() {
        ex.broken("BinHex", &problems.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_xmodem() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn rle_runs_literal_and_cap() {
        assert_eq!(unrle(b"a\x90\x04b", 100).0, b"aaaab");
        assert_eq!(unrle(b"\x90\x00x", 100).0, b"\x90x");
        assert_eq!(unrle(b"\x90\x05", 100).0, b""); // run with nothing before
        let (v, capped) = unrle(b"a\x90\xffb\x90\xff", 10);
        assert!(v.len() <= 11 && capped);
    }

    #[test]
    fn six_bit_decoding() {
        // "!!!" -> three zero sextets = 18 bits -> 2 bytes
        assert_eq!(decode6(b"!!!:").0, vec![0, 0]);
        assert!(decode6(b"!!!:").1);
        assert!(!decode6(b"!!!").1);
    }
}
