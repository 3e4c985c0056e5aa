//! RTF: embedded OLE objects (`\objdata`), decoded the way Word reads them.

use super::{parse_package, Rd};
use crate::{ChildMeta, Extractor, Flow};

/// `\objdata` groups taken from one document.
const MAX_OBJECTS: usize = 1000;
/// Longest control word (RTF says 32 letters) and parameter we accept.
const MAX_WORD: usize = 32;
const MAX_PARAM_DIGITS: usize = 10;
/// Longest class/topic/item name in an OLE1 header.
const MAX_OLE1_NAME: usize = 4096;

/// Finds every `\objdata` destination, decodes its hex (whitespace, control
/// words, `\'hh` escapes and `{\*...}` groups between digits are skipped, as
/// Word does; `\binN` runs are taken raw), and hands over the OLE1 object's
/// native data as `objdata[N]` (the whole decoded bytes when the OLE1 header
/// does not parse). A `Package` object's file also comes as
/// `objdata[N]/<label>`. Linear time; output capped by `ex.room()`.
pub(crate) fn rtf(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let finder = memchr::memmem::Finder::new(b"\\objdata");
    let mut from = 0usize;
    let mut n = 0usize;
    while let Some(i) = finder.find(&data[from..]) {
        let start = from + i + b"\\objdata".len();
        // `\objdata` must end the control word (not `\objdatax`).
        if data.get(start).is_some_and(|c| c.is_ascii_alphabetic()) {
            from = start;
            continue;
        }
        if n >= MAX_OBJECTS || ex.done() {
            return;
        }
        let max = ex.room().min(usize::MAX as u64) as usize;
        let (bytes, end) = decode_objdata(data, start, max);
        from = end.max(start);
        if bytes.is_empty() {
            continue;
        }
        if emit(bytes, n, ex) == Flow::Stop {
            return;
        }
        n += 1;
    }
}

/// Decodes the hex of one `\objdata` destination starting at `pos` (just after
/// the control word) until its group closes. Returns the bytes (at most
/// `max + 1`) and where decoding stopped.
fn decode_objdata(d: &[u8], mut pos: usize, max: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut half: Option<u8> = None;
    let mut depth = 0usize; // nested groups inside the destination
    let mut skip_depth: Option<usize> = None; // inside an ignorable `{\*` group
    while pos < d.len() && out.len() <= max {
        // (`max + 1` bytes at most: the extractor sees and reports an overflow.)
        let c = d[pos];
        match c {
            b'{' => {
                depth += 1;
                pos += 1;
                if skip_depth.is_none() && d.get(pos..pos + 2) == Some(b"\\*") {
                    skip_depth = Some(depth);
                }
            }
            b'}' => {
                if depth == 0 {
                    return (out, pos + 1);
                }
                if skip_depth == Some(depth) {
                    skip_depth = None;
                }
                depth -= 1;
                pos += 1;
            }
            b'\\' => {
                pos += 1;
                let Some(&n) = d.get(pos) else { break };
                if n.is_ascii_alphabetic() {
                    let ws = pos;
                    while pos < d.len() && pos - ws < MAX_WORD && d[pos].is_ascii_alphabetic() {
                        pos += 1;
                    }
                    let word = &d[ws..pos];
                    let ps = pos;
                    if d.get(pos) == Some(&b'-') {
                        pos += 1;
                    }
                    while pos < d.len() && pos - ps < MAX_PARAM_DIGITS && d[pos].is_ascii_digit() {
                        pos += 1;
                    }
                    let param: u64 = std::str::from_utf8(&d[ps..pos])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if d.get(pos) == Some(&b' ') {
                        pos += 1;
                    }
                    if word == b"bin" {
                        let len = usize::try_from(param).unwrap_or(usize::MAX);
                        let end = pos.saturating_add(len).min(d.len());
                        if skip_depth.is_none() {
                            let take = (end - pos).min(max.saturating_add(1) - out.len());
                            out.extend_from_slice(&d[pos..pos + take]);
                            half = None;
                        }
                        pos = end;
                    }
                } else if n == b'\'' {
                    // `\'hh`: Word does not take it as data here.
                    pos = (pos + 3).min(d.len());
                } else {
                    pos += 1; // control symbol
                }
            }
            _ => {
                pos += 1;
                if skip_depth.is_some() {
                    continue;
                }
                let v = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => continue,
                };
                match half.take() {
                    Some(h) => out.push(h << 4 | v),
                    None => half = Some(v),
                }
            }
        }
    }
    (out, pos)
}

/// Parses the OLE1 header (`OLEVersion`, `FormatID`, class, topic, item,
/// native size) and hands over the native data; the raw bytes otherwise.
fn emit(bytes: Vec<u8>, n: usize, ex: &mut Extractor<'_, '_, '_>) -> Flow {
    let seg = format!("objdata[{n}]");
    let Some((class, native)) = ole1(&bytes) else {
        return ex.child_owned(ChildMeta::at(seg), bytes);
    };
    let native = native.to_vec();
    if class.eq_ignore_ascii_case("Package") {
        if let Some(pkg) = parse_package(&native) {
            let meta = ChildMeta {
                segment: format!("{seg}/{}", pkg.label),
                name: Some(pkg.label.clone()),
                ..Default::default()
            };
            if ex.child(meta, pkg.data) == Flow::Stop {
                return Flow::Stop;
            }
        }
    }
    ex.child_owned(ChildMeta::at(seg), native)
}

/// `(class name, native data)` of an embedded OLE1 object.
fn ole1(d: &[u8]) -> Option<(String, &[u8])> {
    let mut r = Rd { d, pos: 0 };
    let _version = r.u32()?;
    let format = r.u32()?;
    if format != 2 {
        return None; // 1 = linked, 3 = presentation: no native data
    }
    let mut name = || -> Option<String> {
        let len = r.u32()? as usize;
        if len > MAX_OLE1_NAME {
            return None;
        }
        let b = r.bytes(len)?;
        let b = b.split(|&c| c == 0).next().unwrap_or(b);
        Some(String::from_utf8_lossy(b).into_owned())
    };
    let class = name()?;
    let _topic = name()?;
    let _item = name()?;
    let size = r.u32()? as usize;
    let rest = d.get(r.pos..)?;
    Some((class, &rest[..size.min(rest.len())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obfuscated_hex() {
        let d = b"{\\*\\objdata 4d{\\*\\junk 00}5a\\par 90\\'41 0\r\n0\\bin2 AB}rest";
        let (out, end) = decode_objdata(d, 11, 100);
        assert_eq!(out, b"MZ\x90\x00AB");
        assert_eq!(&d[end..], b"rest");
    }
}
