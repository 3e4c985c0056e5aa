//! ISO 9660 disc images, with Joliet names. Files are borrowed from the input.
//!
//! The volume descriptors from sector 16 name the primary tree and, when a
//! supplementary descriptor carries a Joliet escape sequence, the Joliet tree
//! (UCS-2 names). The Joliet tree is walked first; then the primary tree, for
//! files that are not in the Joliet tree (a file hidden from Joliet readers is
//! still scanned). A file is handed over once, under its first path.
//!
//! Bounds: [`MAX_DIRS`] directories, [`MAX_ENTRIES`] directory records,
//! [`MAX_DEPTH`] levels, [`MAX_EXTENTS`] parts per multi-extent file; a
//! directory extent seen twice is a loop and is not read again.
use crate::bytes::le32;
use crate::{ChildMeta, Extractor, Flow};
use std::collections::HashSet;

/// Physical sector size; directory records never cross a sector.
const SECTOR: usize = 2048;
/// The first volume descriptor's sector.
const FIRST_VD: usize = 16;
/// Most volume descriptors read.
const MAX_DESCRIPTORS: usize = 64;
/// Most directories read per image (both trees).
const MAX_DIRS: usize = 10_000;
/// Most directory records read per image (both trees).
const MAX_ENTRIES: usize = 200_000;
/// Deepest directory nesting followed.
const MAX_DEPTH: usize = 64;
/// Most extents joined into one multi-extent file.
const MAX_EXTENTS: usize = 64;
/// Longest path kept, in bytes.
const MAX_PATH: usize = 4096;
/// Directory record flags.
const F_DIR: u8 = 0x02;
const F_MULTI: u8 = 0x80;

/// A tree's root: its extent and the logical block size LBAs count in.
#[derive(Clone, Copy)]
struct Root {
    lba: u64,
    len: u64,
    block: u64,
}

/// State shared by both tree walks.
struct Walk {
    /// `(offset, size)` of files handed over.
    files: HashSet<(u64, u64)>,
    dirs: usize,
    entries: usize,
    /// One report each for these conditions.
    reported_short: bool,
    reported_loop: bool,
    reported_depth: bool,
}

/// Reads the ISO 9660 image in `data` and hands every file to `ex` under its
/// path (Joliet names when present). Files running past the end are handed
/// over cut and reported as `Heuristics.Broken.Iso`; bounds reached are
/// reported as `Heuristics.Unscannable.Iso`. Never panics; memory is bounded
/// by the constants above (multi-extent files that are not contiguous are
/// copied, at most [`Extractor::room`] bytes).
pub(crate) fn iso(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let mut primary = None;
    let mut joliet = None;
    let mut ended = false;
    for i in 0..MAX_DESCRIPTORS {
        let off = (FIRST_VD + i) * SECTOR;
        let Some(vd) = data.get(off..off + SECTOR) else {
            break;
        };
        if &vd[1..6] != b"CD001" {
            break;
        }
        match vd[0] {
            1 if primary.is_none() => primary = root(vd),
            2 if joliet.is_none() && is_joliet(vd) => joliet = root(vd),
            255 => {
                ended = true;
                break;
            }
            _ => {}
        }
    }
    if primary.is_none() && joliet.is_none() {
        ex.broken("Iso", "no readable primary volume descriptor");
        return;
    }
    if !ended {
        // Not fatal: the trees may still be readable.
        ex.broken("Iso", "volume descriptor set is not terminated");
    }
    let mut w = Walk {
        files: HashSet::new(),
        dirs: 0,
        entries: 0,
        reported_short: false,
        reported_loop: false,
        reported_depth: false,
    };
    for (r, is_joliet) in [(joliet, true), (primary, false)] {
        if let Some(r) = r {
            if tree(data, r, is_joliet, &mut w, ex) == Flow::Stop {
                return;
            }
        }
    }
}

/// The root directory record of a primary or supplementary descriptor.
fn root(vd: &[u8]) -> Option<Root> {
    let rec = vd.get(156..190)?;
    let block = match crate::bytes::le16(vd, 128)? {
        b @ (512 | 1024 | 2048) => b as u64,
        _ => SECTOR as u64,
    };
    Some(Root {
        lba: le32(rec, 2)? as u64,
        len: le32(rec, 10)? as u64,
        block,
    })
}

/// A supplementary descriptor whose escape sequences (offset 88) name UCS-2
/// level 1, 2 or 3 (`%/@`, `%/C`, `%/E`).
fn is_joliet(vd: &[u8]) -> bool {
    let esc = vd.get(88..120).unwrap_or(&[]);
    [b"%/@", b"%/C", b"%/E"]
        .iter()
        .any(|s| memchr::memmem::find(esc, &s[..]).is_some())
}

/// A record's name: UCS-2BE for Joliet, else bytes (UTF-8 lossy); the `;N`
/// version suffix and a trailing `.` removed.
fn entry_name(raw: &[u8], joliet: bool) -> String {
    let mut s = if joliet {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    if let Some(i) = s.rfind(';') {
        if s[i + 1..].bytes().all(|b| b.is_ascii_digit()) {
            s.truncate(i);
        }
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// `parent/name`, cut to [`MAX_PATH`] bytes.
fn join(parent: &str, name: &str) -> String {
    let mut p = if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    };
    if p.len() > MAX_PATH {
        let mut cut = MAX_PATH;
        while !p.is_char_boundary(cut) {
            cut -= 1;
        }
        p.truncate(cut);
    }
    p
}

/// Walks one directory tree depth-first; `Flow::Stop` when the walk must end.
fn tree(data: &[u8], r: Root, joliet: bool, w: &mut Walk, ex: &mut Extractor<'_, '_, '_>) -> Flow {
    let mut visited: HashSet<u64> = HashSet::new();
    visited.insert(r.lba);
    let mut stack: Vec<(u64, u64, String, usize)> = vec![(r.lba, r.len, String::new(), 0)];
    while let Some((lba, len, path, depth)) = stack.pop() {
        if ex.done() {
            return Flow::Stop;
        }
        w.dirs += 1;
        if w.dirs > MAX_DIRS {
            return ex.unscannable(
                "Iso",
                None,
                &format!("more than {MAX_DIRS} directories; the rest is not read"),
            );
        }
        let start = lba.saturating_mul(r.block);
        let end = start.saturating_add(len);
        if end > data.len() as u64 {
            short(w, ex, if path.is_empty() { "/" } else { &path });
        }
        let (start, end) = (
            start.min(data.len() as u64) as usize,
            end.min(data.len() as u64) as usize,
        );
        let mut subdirs = Vec::new();
        // Multi-extent parts waiting for their last record.
        let mut pending: Vec<(u64, u64)> = Vec::new();
        let mut p = start;
        while p < end {
            let rl = data[p] as usize;
            if rl == 0 {
                // Padding up to the next sector of this extent.
                p = start + ((p - start) / SECTOR + 1) * SECTOR;
                continue;
            }
            let Some(rec) = data.get(p..p + rl).filter(|_| rl >= 34 && p + rl <= end) else {
                ex.broken("Iso", &format!("bad directory record in '/{path}'"));
                break;
            };
            p += rl;
            w.entries += 1;
            if w.entries > MAX_ENTRIES {
                return ex.unscannable(
                    "Iso",
                    None,
                    &format!("more than {MAX_ENTRIES} directory records; the rest is not read"),
                );
            }
            let (Some(elba), Some(esize)) = (le32(rec, 2), le32(rec, 10)) else {
                break;
            };
            let flags = rec[25];
            let nl = rec[32] as usize;
            let Some(raw) = rec.get(33..33 + nl) else {
                ex.broken("Iso", &format!("bad directory record in '/{path}'"));
                break;
            };
            if nl == 1 && (raw[0] == 0 || raw[0] == 1) {
                continue;
            }
            let name = entry_name(raw, joliet);
            let name = if name.is_empty() {
                format!("entry[{}]", w.entries)
            } else {
                name
            };
            let full = join(&path, &name);
            if flags & F_DIR != 0 {
                if depth + 1 > MAX_DEPTH {
                    if !w.reported_depth {
                        w.reported_depth = true;
                        ex.unscannable(
                            "Iso",
                            Some(&full),
                            &format!("directories nested deeper than {MAX_DEPTH}; not read"),
                        );
                    }
                } else if visited.insert(elba as u64) {
                    subdirs.push((elba as u64, esize as u64, full, depth + 1));
                } else if !w.reported_loop {
                    w.reported_loop = true;
                    ex.broken("Iso", &format!("directory loop at '/{full}'"));
                }
                continue;
            }
            if pending.len() < MAX_EXTENTS {
                pending.push((elba as u64, esize as u64));
            }
            if flags & F_MULTI != 0 {
                continue;
            }
            let parts = std::mem::take(&mut pending);
            if file(data, r.block, &parts, full, w, ex) == Flow::Stop {
                return Flow::Stop;
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Flow::Continue
}

/// Reports (once) a file or directory running past the end of the image.
fn short(w: &mut Walk, ex: &mut Extractor<'_, '_, '_>, what: &str) {
    if !w.reported_short {
        w.reported_short = true;
        ex.broken(
            "Iso",
            &format!("'{what}' runs past the end of the image (truncated?)"),
        );
    }
}

/// Hands one file (its extents `parts`, in order) to `ex`: borrowed when the
/// parts are contiguous, else copied up to [`Extractor::room`] + 1 bytes.
/// A file already handed over (same first extent and size) is skipped.
fn file(
    data: &[u8],
    block: u64,
    parts: &[(u64, u64)],
    path: String,
    w: &mut Walk,
    ex: &mut Extractor<'_, '_, '_>,
) -> Flow {
    let Some(&(first, _)) = parts.first() else {
        return Flow::Continue;
    };
    let total: u64 = parts.iter().fold(0u64, |a, p| a.saturating_add(p.1));
    let off = first.saturating_mul(block);
    if !w.files.insert((off, total)) {
        return Flow::Continue;
    }
    let len = data.len() as u64;
    let mut contiguous = true;
    let mut at = off;
    for &(l, s) in parts {
        if l.saturating_mul(block) != at {
            contiguous = false;
        }
        at = l.saturating_mul(block).saturating_add(s);
    }
    let mut missing = false;
    let flow = if contiguous {
        let end = off.saturating_add(total);
        missing = end > len;
        let bytes = data
            .get(off.min(len) as usize..end.min(len) as usize)
            .unwrap_or(&[]);
        ex.child(ChildMeta::named(path.clone()), bytes)
    } else {
        let cap = ex.room().saturating_add(1);
        let mut buf = Vec::new();
        for &(l, s) in parts {
            let o = l.saturating_mul(block);
            let e = o.saturating_add(s);
            missing |= e > len;
            let part = data
                .get(o.min(len) as usize..e.min(len) as usize)
                .unwrap_or(&[]);
            let take = (cap.saturating_sub(buf.len() as u64)).min(part.len() as u64) as usize;
            buf.extend_from_slice(&part[..take]);
        }
        ex.child_owned(ChildMeta::named(path.clone()), buf)
    };
    if missing {
        short(w, ex, &path);
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Kind, ScanObject, Visitor};
    use mxguard_types::Finding;

    /// A directory record.
    fn rec(name: &[u8], lba: u32, size: u32, flags: u8) -> Vec<u8> {
        let mut len = 33 + name.len();
        len += len % 2;
        let mut r = vec![0u8; len];
        r[0] = len as u8;
        r[2..6].copy_from_slice(&lba.to_le_bytes());
        r[6..10].copy_from_slice(&lba.to_be_bytes());
        r[10..14].copy_from_slice(&size.to_le_bytes());
        r[14..18].copy_from_slice(&size.to_be_bytes());
        r[25] = flags;
        r[32] = name.len() as u8;
        r[33..33 + name.len()].copy_from_slice(name);
        r
    }

    fn ucs2(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
    }

    /// Sectors: 16 PVD, 17 SVD (Joliet), 18 terminator, 19 primary root,
    /// 20 primary SUB, 21 Joliet root, 22 Joliet sub, 23 file A, 24 file B
    /// (only in the primary tree), 25 a multi-extent part.
    fn image() -> Vec<u8> {
        let mut d = vec![0u8; 26 * SECTOR];
        let sec = |n: usize| n * SECTOR;
        for (n, ty) in [(16, 1u8), (17, 2), (18, 255)] {
            d[sec(n)] = ty;
            d[sec(n) + 1..sec(n) + 6].copy_from_slice(b"CD001");
            d[sec(n) + 6] = 1;
            d[sec(n) + 128..sec(n) + 130].copy_from_slice(&2048u16.to_le_bytes());
        }
        d[sec(17) + 88..sec(17) + 91].copy_from_slice(b"%/E");
        let pr = rec(&[0], 19, 2048, F_DIR);
        d[sec(16) + 156..sec(16) + 156 + 34].copy_from_slice(&pr);
        let jr = rec(&[0], 21, 2048, F_DIR);
        d[sec(17) + 156..sec(17) + 156 + 34].copy_from_slice(&jr);
        let put = |d: &mut Vec<u8>, s: usize, recs: Vec<Vec<u8>>| {
            let mut p = sec(s);
            for r in recs {
                d[p..p + r.len()].copy_from_slice(&r);
                p += r.len();
            }
        };
        put(
            &mut d,
            19,
            vec![
                rec(&[0], 19, 2048, F_DIR),
                rec(&[1], 19, 2048, F_DIR),
                rec(b"SUB", 20, 2048, F_DIR),
                rec(b"HIDDEN.TXT;1", 24, 11, 0),
                rec(b"LOOP", 19, 2048, F_DIR),
            ],
        );
        put(
            &mut d,
            20,
            vec![rec(&[0], 20, 2048, F_DIR), rec(b"A.TXT;1", 23, 9, 0)],
        );
        put(
            &mut d,
            21,
            vec![
                rec(&[0], 21, 2048, F_DIR),
                rec(&[1], 21, 2048, F_DIR),
                rec(&ucs2("sub dir"), 22, 2048, F_DIR),
            ],
        );
        put(
            &mut d,
            22,
            vec![
                rec(&ucs2("a long name.txt;1"), 23, 9, 0),
                rec(&ucs2("multi.bin"), 25, 4, F_MULTI),
                rec(&ucs2("multi.bin"), 23, 4, 0),
            ],
        );
        d[sec(23)..sec(23) + 9].copy_from_slice(b"file A!!!");
        d[sec(24)..sec(24) + 11].copy_from_slice(b"hidden file");
        d[sec(25)..sec(25) + 4].copy_from_slice(b"PART");
        d
    }

    #[derive(Default)]
    struct V {
        objs: Vec<(String, Vec<u8>)>,
        findings: Vec<String>,
    }
    impl Visitor for V {
        fn object(&mut self, o: &ScanObject<'_>) -> Flow {
            self.objs.push((o.location.clone(), o.data.to_vec()));
            Flow::Continue
        }
        fn finding(&mut self, f: Finding) -> Flow {
            self.findings.push(format!("{} at {}", f.name, f.location));
            Flow::Continue
        }
    }

    fn run(d: &[u8]) -> V {
        let mut v = V::default();
        Decoder::default().walk_as(Kind::Iso, d, &mut v);
        v
    }

    #[test]
    fn joliet_then_hidden_primary_files() {
        let v = run(&image());
        let got: Vec<(&str, &[u8])> = v
            .objs
            .iter()
            .skip(1)
            .map(|(l, d)| (l.as_str(), d.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("sub dir/a long name.txt", &b"file A!!!"[..]),
                ("sub dir/multi.bin", b"PARTfile"),
                ("HIDDEN.TXT", b"hidden file"),
            ]
        );
        assert_eq!(v.findings, ["Heuristics.Broken.Iso at "], "the LOOP entry");
    }

    #[test]
    fn truncated_image_is_broken_and_keeps_what_is_there() {
        let d = image();
        let v = run(&d[..23 * SECTOR + 4]);
        assert!(v
            .objs
            .iter()
            .any(|(l, b)| l == "sub dir/a long name.txt" && b == b"file"));
        assert!(v
            .findings
            .iter()
            .any(|f| f.starts_with("Heuristics.Broken.Iso")));
    }

    #[test]
    fn truncations_and_garbling_never_panic() {
        let d = image();
        for n in (0..d.len())
            .step_by(97)
            .chain([16 * SECTOR + 1, 19 * SECTOR + 40])
        {
            run(&d[..n]);
        }
        // Garble the descriptors and directory sectors.
        for i in (16 * SECTOR + 120..16 * SECTOR + 200)
            .chain(19 * SECTOR..19 * SECTOR + 200)
            .chain(22 * SECTOR..22 * SECTOR + 120)
        {
            for x in [0xffu8, 0x80, 0x01] {
                let mut b = d.clone();
                b[i] ^= x;
                run(&b);
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(entry_name(b"README.TXT;1", false), "README.TXT");
        assert_eq!(entry_name(b"NOEXT.;1", false), "NOEXT");
        assert_eq!(entry_name(&ucs2("x;y"), true), "x;y");
        assert_eq!(entry_name(&[0xd8, 0x00, 0x00], true), "\u{fffd}");
    }
}
