//! Microsoft Cabinet through the `cab` crate: stored, MSZIP and LZX folders
//! (Quantum is reported as unscannable). Members are streamed.
//!
//! The crate panics (index out of bounds) when a file's offset lies beyond
//! its folder's data blocks, or when a stored block's sizes disagree, so we
//! walk the headers ourselves first ([`layout`]) and only ask the crate for
//! files that lie inside their folder. The crate also re-decompresses a
//! folder from its start for every file it opens; that work is capped by
//! [`MAX_SEEK_WORK`].
use super::{le16, le32};
use crate::{ChildMeta, Extractor, Flow};
use std::io::Cursor;

/// Uncompressed bytes the crate may decompress (in all) only to reach the
/// start of the files it opens; the rest is reported unscannable.
const MAX_SEEK_WORK: u64 = 1 << 30;

/// What our own header walk found.
struct Layout {
    /// Per folder: the uncompressed bytes its complete data blocks hold, and
    /// whether its blocks are consistent (stored blocks: packed == unpacked).
    folders: Vec<(u64, bool)>,
    /// Per file, in directory order: (name, folder index, offset, size).
    files: Vec<(String, u16, u64, u64)>,
}

fn layout(d: &[u8]) -> Option<Layout> {
    let coff_files = le32(d, 16)? as usize;
    let nfolders = le16(d, 26)? as usize;
    let nfiles = le16(d, 28)? as usize;
    let flags = le16(d, 30)?;
    let mut at = 36usize;
    let (mut folder_res, mut data_res) = (0usize, 0usize);
    if flags & 0x0004 != 0 {
        let hres = le16(d, 36)? as usize;
        folder_res = *d.get(38)? as usize;
        data_res = *d.get(39)? as usize;
        at = 40 + hres;
    }
    for bit in [0x0001u16, 0x0002] {
        if flags & bit != 0 {
            // previous / next cabinet: two NUL-terminated strings each
            for _ in 0..2 {
                at += memchr::memchr(0, d.get(at..)?)? + 1;
            }
        }
    }
    let mut folders = Vec::with_capacity(nfolders);
    for _ in 0..nfolders {
        let first = le32(d, at)? as usize;
        let nblocks = le16(d, at + 4)? as usize;
        let stored = le16(d, at + 6)? & 0x000f == 0;
        at = at.checked_add(8 + folder_res)?;
        let (mut total, mut ok, mut p) = (0u64, true, first);
        for _ in 0..nblocks {
            let (Some(packed), Some(unpacked)) = (le16(d, p + 4), le16(d, p + 6)) else {
                break;
            };
            let end = p.checked_add(8 + data_res + packed as usize)?;
            if end > d.len() {
                break;
            }
            ok &= !stored || packed == unpacked;
            total += unpacked as u64;
            p = end;
        }
        folders.push((total, ok));
    }
    let mut files = Vec::with_capacity(nfiles);
    let mut p = coff_files;
    for _ in 0..nfiles {
        let size = le32(d, p)? as u64;
        let off = le32(d, p + 4)? as u64;
        let folder = le16(d, p + 8)?;
        let rest = d.get(p + 16..)?;
        let n = memchr::memchr(0, rest)?;
        files.push((
            String::from_utf8_lossy(&rest[..n]).into_owned(),
            folder,
            off,
            size,
        ));
        p += 16 + n + 1;
    }
    Some(Layout { folders, files })
}

/// Every file of every folder is streamed through [`Extractor::child_reader`];
/// the whole cabinet's size is the packed size for the ratio limit (a cabinet
/// does not say how many compressed bytes one file takes). Headers that do not
/// parse, files outside their folder's data and read errors are reported as
/// broken; files in other volumes of a set, Quantum folders and files beyond
/// the seek-work cap as unscannable.
pub(crate) fn cab(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let Some(lay) = layout(data) else {
        ex.broken("Cab", "headers truncated or damaged");
        return;
    };
    let mut cabinet = match ::cab::Cabinet::new(Cursor::new(data)) {
        Ok(c) => c,
        Err(e) => {
            if lay.files.iter().any(|f| f.1 >= 0xfffd) {
                ex.unscannable(
                    "Cab",
                    None,
                    "files continued from or into another cabinet of a set",
                );
            } else {
                ex.broken("Cab", &e.to_string());
            }
            return;
        }
    };
    let quantum: Vec<bool> = cabinet
        .folder_entries()
        .map(|f| matches!(f.compression_type(), ::cab::CompressionType::Quantum(..)))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut work = 0u64;
    for (name, folder, off, size) in lay.files {
        if ex.done() {
            return;
        }
        let seg = name.replace('\\', "/");
        let (total, consistent) = lay
            .folders
            .get(folder as usize)
            .copied()
            .unwrap_or((0, false));
        let why_not = if quantum.get(folder as usize).copied().unwrap_or(false) {
            Some((true, "Quantum compression not supported".to_string()))
        } else if !seen.insert(name.clone()) {
            // The crate opens files by name: a second one cannot be reached.
            Some((
                true,
                "duplicate member name; only the first is decoded".to_string(),
            ))
        } else if !consistent || off.saturating_add(size) > total {
            Some((false, format!("{seg}: lies outside its folder's data")))
        } else if work.saturating_add(off) > MAX_SEEK_WORK {
            Some((true, format!("not decoded: reaching it takes more than {MAX_SEEK_WORK} bytes of decompression")))
        } else {
            None
        };
        let flow = match why_not {
            Some((true, why)) => ex.unscannable("Cab", Some(&seg), &why),
            Some((false, why)) => ex.broken("Cab", &why),
            None => {
                work += off;
                match cabinet.read_file(&name) {
                    Ok(mut r) => {
                        ex.child_reader(ChildMeta::named(seg), &mut r, Some(data.len() as u64))
                    }
                    Err(e) => ex.broken("Cab", &format!("{seg}: {e}")),
                }
            }
        };
        if flow == Flow::Stop {
            return;
        }
    }
}
