//! OLE2 compound files (Word/Excel/PowerPoint 97-2003, `vbaProject.bin`,
//! embedded `oleObject*.bin`, MSI): every stream, VBA sources, OLE1 packages,
//! PowerPoint embedded objects, encryption.

use super::{parse_package, vba};
use crate::{ChildMeta, Extractor, Flow};
use std::io::{Cursor, Read};

/// Streams and storages listed from one compound file.
const MAX_ENTRIES: usize = 100_000;
/// Records walked in one `PowerPoint Document` stream.
const MAX_PPT_RECORDS: usize = 1_000_000;
/// Records looked at for an Excel `FILEPASS` before giving up.
const MAX_XLS_RECORDS: usize = 64;

const HEADER_LEN: usize = 512;
const FREE: u32 = 0xffff_ffff;
const END_OF_CHAIN: u32 = 0xffff_fffe;
const MAX_REGULAR: u32 = 0xffff_fffa;

/// Checks what the `cfb` crate would trust: the sector shift, and that the
/// DIFAT lists each FAT sector once and no more FAT sectors than the file has
/// sectors (otherwise `cfb` reads a FAT up to ~127 times the file size).
/// `Err` names the damage. Linear in the file size.
pub(crate) fn precheck(d: &[u8]) -> Result<(), String> {
    if d.len() < HEADER_LEN {
        return Err("shorter than a header".into());
    }
    let u16at = |o: usize| u16::from_le_bytes([d[o], d[o + 1]]);
    let u32at = |o: usize| u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
    let shift = u16at(30);
    let sector = match shift {
        9 => 512usize,
        12 => 4096usize,
        s => return Err(format!("sector shift {s}")),
    };
    let nsect = (d.len().saturating_sub(sector) / sector + 1) as u64;
    let mut seen = std::collections::HashSet::new();
    let mut count = 0u64;
    let mut add = |s: u32| -> Result<(), String> {
        if s == FREE || s == END_OF_CHAIN {
            return Ok(());
        }
        if s > MAX_REGULAR || u64::from(s) >= nsect {
            return Err(format!("FAT sector {s} outside the file"));
        }
        if !seen.insert(s) {
            return Err(format!("FAT sector {s} listed twice"));
        }
        count += 1;
        Ok(())
    };
    for i in 0..109 {
        add(u32at(76 + 4 * i))?;
    }
    let mut next = u32at(68);
    let mut difat_seen = std::collections::HashSet::new();
    while next != END_OF_CHAIN && next != FREE {
        if next > MAX_REGULAR || u64::from(next) >= nsect || !difat_seen.insert(next) {
            return Err(format!("bad DIFAT sector {next}"));
        }
        let off = (next as usize + 1) * sector;
        let Some(s) = d.get(off..off + sector) else {
            return Err(format!("DIFAT sector {next} truncated"));
        };
        let n = sector / 4;
        for i in 0..n - 1 {
            let o = 4 * i;
            add(u32::from_le_bytes([s[o], s[o + 1], s[o + 2], s[o + 3]]))?;
        }
        let o = 4 * (n - 1);
        next = u32::from_le_bytes([s[o], s[o + 1], s[o + 2], s[o + 3]]);
    }
    if count > nsect {
        return Err(format!("{count} FAT sectors in a file of {nsect}"));
    }
    Ok(())
}

/// Opens an OLE2 compound file. Hands over every stream (segment = its path,
/// `Macros/VBA/Module1`), then for each VBA project the module sources
/// (`vba/<Module>`, text), OLE1 packages from `\x01Ole10Native` streams
/// (named by their label), PowerPoint embedded objects
/// (`PowerPoint Document/ExOleObjStg[N]`), and reports encryption and the
/// macro heuristic. Never panics; every stream is read up to `ex.room()`.
pub(crate) fn ole2(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    if let Err(e) = precheck(data) {
        ex.broken("Ole2", &format!("not a readable compound file: {e}"));
        return;
    }
    let mut cf = match cfb::CompoundFile::open(Cursor::new(data)) {
        Ok(cf) => cf,
        Err(e) => {
            ex.broken("Ole2", &format!("not a readable compound file: {e}"));
            return;
        }
    };
    let mut streams: Vec<String> = Vec::new();
    let mut vba_dirs: Vec<String> = Vec::new();
    for e in cf.walk().take(MAX_ENTRIES) {
        let p = e.path().to_string_lossy().into_owned();
        if e.is_stream() {
            if e.name().eq_ignore_ascii_case("dir") {
                if let Some(parent) = p.rsplit_once('/').map(|(a, _)| a.to_string()) {
                    if parent
                        .rsplit('/')
                        .next()
                        .is_some_and(|n| n.eq_ignore_ascii_case("VBA"))
                    {
                        vba_dirs.push(parent);
                    }
                }
            }
            streams.push(p);
        }
    }
    let has = |name: &str| streams.iter().any(|s| s.eq_ignore_ascii_case(name));
    if has("/EncryptionInfo")
        && has("/EncryptedPackage")
        && ex.encrypted(
            "Office",
            None,
            "encrypted Office Open XML document (EncryptionInfo, EncryptedPackage)",
        ) == Flow::Stop
    {
        return;
    }
    for path in &streams {
        if ex.done() {
            return;
        }
        let Some(bytes) = read_stream(&mut cf, path, ex.room()) else {
            ex.broken("Ole2", &format!("{}: stream unreadable", segment(path)));
            continue;
        };
        let seg = segment(path);
        let name = path.rsplit('/').next().unwrap_or("");
        if name == "WordDocument" && word_encrypted(&bytes) {
            ex.encrypted("Office", None, "Word document encrypted (FIB fEncrypted)");
        }
        if (name == "Workbook" || name == "Book") && xls_encrypted(&bytes) {
            ex.encrypted("Office", None, "Excel workbook encrypted (FILEPASS)");
        }
        if name == "\u{1}Ole10Native" {
            if let Some(pkg) = bytes.get(4..).and_then(parse_package) {
                let meta = ChildMeta {
                    segment: format!("{seg}/{}", pkg.label),
                    name: Some(pkg.label.clone()),
                    ..Default::default()
                };
                if ex.child(meta, pkg.data) == Flow::Stop {
                    return;
                }
            }
        }
        if name == "PowerPoint Document" && ppt_objects(&bytes, &seg, ex) == Flow::Stop {
            return;
        }
        if ex.child_owned(ChildMeta::at(seg), bytes) == Flow::Stop {
            return;
        }
    }
    for dir in &vba_dirs {
        if ex.done() {
            return;
        }
        vba_project(&mut cf, dir, &streams, ex);
    }
}

/// A stream path as a location segment: without the leading `/`, control
/// characters written as `\xNN` (`ObjectPool/_1/\x01Ole10Native`).
fn segment(path: &str) -> String {
    let p = path.trim_start_matches('/');
    let mut s = String::with_capacity(p.len());
    for c in p.chars() {
        if c.is_control() {
            s.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            s.push(c);
        }
    }
    s
}

/// Reads at most `max` bytes of a stream (`None`: unreadable). The buffer
/// grows with what is read, so a lying length field allocates nothing.
fn read_stream<F: Read + std::io::Seek>(
    cf: &mut cfb::CompoundFile<F>,
    path: &str,
    max: u64,
) -> Option<Vec<u8>> {
    let s = cf.open_stream(path).ok()?;
    let mut out = Vec::new();
    // Read one more byte than allowed so the extractor sees and reports the overflow.
    match s.take(max.saturating_add(1)).read_to_end(&mut out) {
        Ok(_) => Some(out),
        Err(_) if !out.is_empty() => Some(out),
        Err(_) => None,
    }
}

/// Word FIB: `wIdent` 0xA5EC and the `fEncrypted` bit.
fn word_encrypted(d: &[u8]) -> bool {
    d.len() >= 12 && d[0] == 0xec && d[1] == 0xa5 && (d[11] & 0x01) != 0
}

/// Excel BIFF8: a `FILEPASS` record (0x002F) among the first records of the globals.
fn xls_encrypted(d: &[u8]) -> bool {
    let mut pos = 0usize;
    for _ in 0..MAX_XLS_RECORDS {
        let Some(h) = d.get(pos..pos + 4) else {
            return false;
        };
        let ty = u16::from_le_bytes([h[0], h[1]]);
        let len = u16::from_le_bytes([h[2], h[3]]) as usize;
        if ty == 0x002f {
            return true;
        }
        if ty == 0x000a {
            return false;
        }
        pos += 4 + len;
    }
    false
}

/// PowerPoint: walks the records of the `PowerPoint Document` stream, and
/// hands over each `ExOleObjStg` (0x1011) — zlib-compressed (instance 1,
/// after a `u32` size) or stored — as `…/ExOleObjStg[N]`. Linear: containers
/// are entered, atoms skipped.
fn ppt_objects(d: &[u8], seg: &str, ex: &mut Extractor<'_, '_, '_>) -> Flow {
    let mut pos = 0usize;
    let mut n = 0usize;
    for _ in 0..MAX_PPT_RECORDS {
        let Some(h) = d.get(pos..pos + 8) else {
            break;
        };
        let ver_inst = u16::from_le_bytes([h[0], h[1]]);
        let ty = u16::from_le_bytes([h[2], h[3]]);
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        pos += 8;
        if ver_inst & 0x000f == 0x000f {
            continue; // container: its children follow
        }
        let end = pos.saturating_add(len).min(d.len());
        let body = &d[pos..end];
        pos = end;
        if ty != 0x1011 {
            continue;
        }
        let meta = ChildMeta::at(format!("{seg}/ExOleObjStg[{n}]"));
        n += 1;
        let flow = if ver_inst >> 4 == 1 && body.len() > 4 {
            let packed = &body[4..];
            let mut z = flate2::read::ZlibDecoder::new(packed);
            ex.child_reader(meta, &mut z, Some(packed.len() as u64))
        } else {
            ex.child(meta, body)
        };
        if flow == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// One VBA project: the `dir` stream of storage `vba` (a path), its modules'
/// sources as `vba/<Module>`, then the macro heuristic.
fn vba_project<F: Read + std::io::Seek>(
    cf: &mut cfb::CompoundFile<F>,
    vba: &str,
    streams: &[String],
    ex: &mut Extractor<'_, '_, '_>,
) {
    let room = ex.room().min(usize::MAX as u64) as usize;
    let Some(raw) = read_stream(cf, &format!("{vba}/dir"), room as u64) else {
        ex.broken("Ole2", &format!("{}/dir unreadable", segment(vba)));
        return;
    };
    let Some(dir) = vba::decompress(&raw, room) else {
        ex.broken(
            "Ole2",
            &format!("{}/dir is not compressed VBA", segment(vba)),
        );
        return;
    };
    let mut entry: Option<(String, String)> = None; // (module segment, entry point)
    let mut call: Option<(String, String)> = None; // (module name, call)
    for m in vba::modules(&dir) {
        if ex.done() {
            return;
        }
        let path = format!("{vba}/{}", m.stream);
        let path = streams
            .iter()
            .find(|s| s.eq_ignore_ascii_case(&path))
            .cloned()
            .unwrap_or(path);
        let Some(bytes) = read_stream(cf, &path, ex.room()) else {
            ex.broken("Ole2", &format!("VBA module {} missing", m.name));
            continue;
        };
        let max = ex.room().min(usize::MAX as u64) as usize;
        let Some(src) = bytes
            .get(m.offset as usize..)
            .and_then(|b| vba::decompress(b, max))
        else {
            ex.broken("Ole2", &format!("VBA module {}: source not found", m.name));
            continue;
        };
        let text = String::from_utf8_lossy(&src).into_owned();
        let seg = format!("vba/{}", super::file_name(&m.name));
        if ex.heuristics().macros {
            let s = vba::scan(&text);
            if let (Some(e), None) = (s.entry, &entry) {
                entry = Some((seg.clone(), e));
            }
            if let (Some(c), None) = (s.call, &call) {
                call = Some((m.name.clone(), c));
            }
        }
        let meta = ChildMeta {
            segment: seg,
            name: Some(m.name.clone()),
            text: Some(text),
            ..Default::default()
        };
        if ex.child_owned(meta, src) == Flow::Stop {
            return;
        }
    }
    if let (Some((seg, e)), Some((module, c))) = (entry, call) {
        ex.heuristic(
            "Heuristics.Macro.AutoRun.Dangerous",
            Some(&seg),
            &format!("macro {e} runs on open and the project calls {c} (module {module})"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck_rejects_fat_amplification() {
        let mut d = vec![0u8; 4096];
        d[..8].copy_from_slice(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1");
        d[30] = 9;
        for i in 0..109 {
            d[76 + 4 * i..80 + 4 * i].copy_from_slice(&1u32.to_le_bytes());
        }
        d[68..72].copy_from_slice(&END_OF_CHAIN.to_le_bytes());
        assert!(precheck(&d).is_err());
        d[30] = 10;
        assert!(precheck(&d).is_err());
    }
}
