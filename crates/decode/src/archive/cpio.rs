//! cpio: new ASCII (`070701`), new CRC (`070702`), old ASCII (`070707`) and
//! old binary (`070707` octal as a 16-bit word, either byte order). Members are
//! borrowed from the input.
use crate::{ChildMeta, Extractor, Flow};

/// Longest member name kept (longer names are cut; the data is still found).
const MAX_NAME: usize = 4096;
/// `S_IFMT` and the types we skip.
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

struct Header {
    mode: u32,
    namesize: usize,
    filesize: usize,
    header_len: usize,
    /// Alignment of the name end and the data end.
    align: usize,
}

fn num(field: &[u8], radix: u32) -> Option<usize> {
    let s = std::str::from_utf8(field).ok()?;
    usize::from_str_radix(s.trim_matches(|c| c == ' ' || c == '\0'), radix).ok()
}

fn parse(d: &[u8]) -> Option<Header> {
    let magic = d.get(..6)?;
    if magic == b"070701" || magic == b"070702" {
        let h = d.get(..110)?;
        let f = |i: usize| num(&h[6 + i * 8..6 + i * 8 + 8], 16);
        return Some(Header {
            mode: f(1)? as u32,
            filesize: f(6)?,
            namesize: f(11)?,
            header_len: 110,
            align: 4,
        });
    }
    if magic == b"070707" {
        let h = d.get(..76)?;
        return Some(Header {
            mode: num(&h[18..24], 8)? as u32,
            namesize: num(&h[59..65], 8)?,
            filesize: num(&h[65..76], 8)?,
            header_len: 76,
            align: 1,
        });
    }
    let h = d.get(..26)?;
    let w: fn([u8; 2]) -> u16 = match (h[0], h[1]) {
        (0xc7, 0x71) => u16::from_le_bytes,
        (0x71, 0xc7) => u16::from_be_bytes,
        _ => return None,
    };
    let word = |i: usize| w([h[i * 2], h[i * 2 + 1]]) as usize;
    Some(Header {
        mode: word(3) as u32,
        namesize: word(10),
        filesize: (word(11) << 16) | word(12),
        header_len: 26,
        align: 2,
    })
}

fn align_up(n: usize, a: usize) -> Option<usize> {
    n.checked_add(a - 1).map(|v| v / a * a)
}

/// Walks the headers until `TRAILER!!!`; regular members (not directories or
/// symlinks) are handed over, borrowed, under their stored name. A header
/// that does not parse or data past the end is reported as broken after
/// the members before it were handed over.
pub(crate) fn cpio(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let mut pos = 0usize;
    let mut members = 0usize;
    while pos < data.len() && !ex.done() {
        let rest = &data[pos..];
        let Some(h) = parse(rest) else {
            if members == 0 || rest.iter().any(|&b| b != 0) {
                ex.broken("Cpio", &format!("bad header at offset {pos}"));
            }
            return;
        };
        let name_start = pos + h.header_len;
        let Some(name_end) = name_start.checked_add(h.namesize) else {
            return;
        };
        let Some(raw_name) = data.get(name_start..name_end) else {
            ex.broken("Cpio", &format!("truncated name at offset {pos}"));
            return;
        };
        let raw_name = raw_name.split(|&b| b == 0).next().unwrap_or(&[]);
        let name = String::from_utf8_lossy(&raw_name[..raw_name.len().min(MAX_NAME)]).into_owned();
        if name == "TRAILER!!!" {
            return;
        }
        let Some(data_start) = align_up(name_end, h.align) else {
            return;
        };
        let Some(data_end) = data_start.checked_add(h.filesize) else {
            return;
        };
        let ftype = h.mode & S_IFMT;
        let avail = data
            .get(data_start.min(data.len())..data_end.min(data.len()))
            .unwrap_or(&[]);
        if ftype != S_IFDIR && ftype != S_IFLNK && h.filesize > 0 {
            members += 1;
            let seg = if name.is_empty() {
                format!("member[{members}]")
            } else {
                name.clone()
            };
            if ex.child(ChildMeta::named(seg), avail) == Flow::Stop {
                return;
            }
        }
        if data_end > data.len() {
            ex.broken(
                "Cpio",
                &format!("{name}: data runs past the end of the archive"),
            );
            return;
        }
        let Some(next) = align_up(data_end, h.align) else {
            return;
        };
        pos = next;
    }
}
