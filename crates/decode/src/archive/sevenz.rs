//! 7z through `sevenz-rust2`, after our own checks of what it would allocate.
//!
//! The crate sizes buffers from header fields (the next-header size, the
//! decoded-header size, entry and stream counts, LZMA dictionaries). Before
//! handing it the archive we parse the start header and the stream
//! descriptions ourselves and refuse (as unscannable, with the reason)
//! anything beyond [`MAX_HEADER`], [`MAX_DICT`] or [`MAX_COUNT`]; an encoded
//! (compressed) header is decoded by us first, capped, to check its counts.
use super::{le32, le64};
use crate::{ChildMeta, Extractor};
use std::io::{self, Cursor, Read};

/// Largest (decoded) header we accept.
const MAX_HEADER: u64 = 16 << 20;
/// Largest LZMA/LZMA2 dictionary we let the crate allocate (7-Zip's `-mx9`).
const MAX_DICT: u64 = 64 << 20;
/// Largest count (files, folders, streams, coders) in a header; beyond it
/// the crate's per-item vectors could be huge.
const MAX_COUNT: u64 = 1 << 20;
/// Bytes of a solid block skipped after a member cut by a limit, to reach the
/// next member; beyond it the rest of the block is reported unscannable.
const MAX_SOLID_SKIP: u64 = 256 << 20;

const SIG: &[u8] = b"7z\xbc\xaf\x27\x1c";
const AES: &[u8] = &[0x06, 0xf1, 0x07, 0x01];
const LZMA: &[u8] = &[0x03, 0x01, 0x01];
const LZMA2: &[u8] = &[0x21];

/// A cursor over header bytes with 7z's variable-length numbers.
struct H<'a> {
    d: &'a [u8],
    i: usize,
}

impl H<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.d.get(self.i).ok_or("header truncated")?;
        self.i += 1;
        Ok(b)
    }
    fn num(&mut self) -> Result<u64, String> {
        let first = self.byte()?;
        let mut mask = 0x80u8;
        let mut v = 0u64;
        for i in 0..8 {
            if first & mask == 0 {
                let high = (first & mask.wrapping_sub(1)) as u64;
                return Ok(v | high.checked_shl(8 * i).unwrap_or(0));
            }
            v |= (self.byte()? as u64) << (8 * i);
            mask >>= 1;
        }
        Ok(v)
    }
    fn count(&mut self, what: &str) -> Result<u64, String> {
        let n = self.num()?;
        let left = (self.d.len() - self.i.min(self.d.len())) as u64;
        // Every item takes at least one bit of the header.
        if n > MAX_COUNT || n > left.saturating_mul(8).saturating_add(8) {
            return Err(format!("header declares {n} {what}"));
        }
        Ok(n)
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let n = usize::try_from(n).map_err(|_| "header truncated")?;
        self.i = self
            .i
            .checked_add(n)
            .filter(|&e| e <= self.d.len())
            .ok_or("header truncated")?;
        Ok(())
    }
    fn bits(&mut self, n: u64) -> Result<(), String> {
        let all = self.byte()?;
        if all == 0 {
            self.skip(n.div_ceil(8))?;
        }
        Ok(())
    }
}

/// What the stream descriptions say.
#[derive(Default)]
struct Streams {
    coders: Vec<(Vec<u8>, Vec<u8>)>,
    unpack: Vec<u64>,
    pack_pos: u64,
    pack_sizes: Vec<u64>,
    folders: u64,
}

fn streams_info(h: &mut H<'_>, s: &mut Streams) -> Result<(), String> {
    loop {
        match h.byte()? {
            0x00 => return Ok(()),
            0x06 => {
                s.pack_pos = h.num()?;
                let n = h.count("packed streams")?;
                loop {
                    match h.byte()? {
                        0x00 => break,
                        0x09 => {
                            for _ in 0..n {
                                s.pack_sizes.push(h.num()?);
                            }
                        }
                        0x0a => {
                            h.bits(n)?;
                            h.skip(n.saturating_mul(4))?;
                        }
                        _ => return Err("bad pack info".into()),
                    }
                }
            }
            0x07 => {
                if h.byte()? != 0x0b {
                    return Err("bad unpack info".into());
                }
                let folders = h.count("folders")?;
                s.folders = folders;
                if h.byte()? != 0 {
                    return Err("external folders not supported".into());
                }
                let mut outs = Vec::new();
                for _ in 0..folders {
                    let ncoders = h.count("coders")?;
                    let (mut tin, mut tout) = (0u64, 0u64);
                    for _ in 0..ncoders {
                        let flags = h.byte()?;
                        let idlen = (flags & 0x0f) as usize;
                        let id =
                            h.d.get(h.i..h.i + idlen)
                                .ok_or("header truncated")?
                                .to_vec();
                        h.skip(idlen as u64)?;
                        if flags & 0x10 != 0 {
                            tin = tin.saturating_add(h.count("coder inputs")?);
                            tout = tout.saturating_add(h.count("coder outputs")?);
                        } else {
                            tin += 1;
                            tout += 1;
                        }
                        let mut props = Vec::new();
                        if flags & 0x20 != 0 {
                            let n = h.count("property bytes")?;
                            props =
                                h.d.get(h.i..h.i + n as usize)
                                    .ok_or("header truncated")?
                                    .to_vec();
                            h.skip(n)?;
                        }
                        s.coders.push((id, props));
                    }
                    let pairs = tout.checked_sub(1).ok_or("folder without outputs")?;
                    for _ in 0..pairs {
                        h.num()?;
                        h.num()?;
                    }
                    let packed = tin.checked_sub(pairs).ok_or("bad folder")?;
                    if packed > 1 {
                        for _ in 0..packed {
                            h.num()?;
                        }
                    }
                    outs.push(tout);
                }
                if h.byte()? != 0x0c {
                    return Err("bad unpack sizes".into());
                }
                for n in outs {
                    for _ in 0..n {
                        s.unpack.push(h.num()?);
                    }
                }
                loop {
                    match h.byte()? {
                        0x00 => break,
                        0x0a => {
                            h.bits(folders)?;
                            h.skip(folders.saturating_mul(4))?;
                        }
                        _ => return Err("bad unpack info".into()),
                    }
                }
            }
            0x08 => {
                // Sub-streams: one count per folder first; only the counts
                // can make the crate allocate, so the sizes are not parsed.
                if h.byte()? == 0x0d {
                    let mut total = 0u64;
                    for _ in 0..s.folders {
                        total = total.saturating_add(h.count("sub-streams")?);
                    }
                    if total > MAX_COUNT {
                        return Err(format!("header declares {total} sub-streams"));
                    }
                }
                return Ok(());
            }
            _ => return Err("unknown property in stream info".into()),
        }
    }
}

/// The checks on one stream description; `Err` = refuse, with the reason.
fn check_coders(s: &Streams) -> Result<bool, String> {
    let mut encrypted = false;
    for (id, props) in &s.coders {
        if id == AES {
            encrypted = true;
        } else if id == LZMA {
            let d = props
                .get(1..5)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
                .unwrap_or(0);
            if d > MAX_DICT {
                return Err(format!("LZMA dictionary of {d} bytes (limit {MAX_DICT})"));
            }
        } else if id == LZMA2 {
            let bits = props.first().copied().unwrap_or(0) as u32;
            let d = if bits >= 40 {
                u64::MAX
            } else {
                (2 | (bits as u64 & 1)) << (bits / 2 + 11)
            };
            if d > MAX_DICT {
                return Err(format!("LZMA2 dictionary of {d} bytes (limit {MAX_DICT})"));
            }
        }
    }
    Ok(encrypted)
}

/// Checks a plain header (`0x01`): main stream info and the number of files.
fn check_header(d: &[u8]) -> Result<bool, String> {
    let mut h = H { d, i: 1 };
    let mut enc = false;
    loop {
        match h.byte()? {
            0x00 => return Ok(enc),
            0x02 => {
                // archive properties
                loop {
                    if h.byte()? == 0 {
                        break;
                    }
                    let n = h.num()?;
                    h.skip(n)?;
                }
            }
            0x04 => {
                let mut s = Streams::default();
                streams_info(&mut h, &mut s)?;
                enc |= check_coders(&s)?;
                if s.coders.len() as u64 > MAX_COUNT {
                    return Err("too many coders".into());
                }
                // Sub-stream parsing stops early; the file list follows it.
                return Ok(enc);
            }
            0x05 => {
                h.count("files")?;
                return Ok(enc);
            }
            _ => return Err("unknown property in header".into()),
        }
    }
}

/// Outcome of the pre-checks.
enum Pre {
    Ok,
    Encrypted(&'static str),
}

fn precheck(data: &[u8]) -> Result<Pre, (bool, String)> {
    let off = le64(data, 12).ok_or((true, "start header truncated".to_string()))?;
    let size = le64(data, 20).ok_or((true, "start header truncated".to_string()))?;
    if le32(data, 8) == Some(0) && data.get(12..32).is_some_and(|b| b.iter().all(|&x| x == 0)) {
        // An unfinished archive: the crate searches the end for a header, of
        // at most the input's size.
        return Ok(Pre::Ok);
    }
    let start = 32u64
        .checked_add(off)
        .ok_or((true, "bad header offset".to_string()))?;
    let end = start
        .checked_add(size)
        .ok_or((true, "bad header size".to_string()))?;
    if end > data.len() as u64 || size == 0 {
        return Err((
            true,
            format!(
                "header at {start}..{end} is past the end ({} bytes): truncated",
                data.len()
            ),
        ));
    }
    let hdr = &data[start as usize..end as usize];
    if hdr.first() == Some(&0x17) {
        let mut h = H { d: hdr, i: 1 };
        let mut s = Streams::default();
        streams_info(&mut h, &mut s).map_err(|e| (false, e))?;
        if check_coders(&s).map_err(|e| (false, e))? {
            return Ok(Pre::Encrypted(
                "headers encrypted (AES); nothing can be listed",
            ));
        }
        let total: u64 = s.unpack.iter().copied().max().unwrap_or(0);
        if total > MAX_HEADER {
            return Err((
                false,
                format!("encoded header of {total} bytes (limit {MAX_HEADER})"),
            ));
        }
        // Decode it ourselves (LZMA only; other coders: the crate's own
        // size limits apply) and check its counts.
        if let ([(id, props)], Some(&packed)) = (s.coders.as_slice(), s.pack_sizes.first()) {
            if id == LZMA && props.len() == 5 {
                let p0 = 32u64.saturating_add(s.pack_pos);
                let p1 = p0.saturating_add(packed);
                let src = data
                    .get(p0 as usize..p1.min(data.len() as u64) as usize)
                    .unwrap_or(&[]);
                let mut input = Cursor::new(props.clone()).chain(src);
                let mut br = io::BufReader::new(&mut input);
                let mut out = Vec::new();
                let opts = lzma_rs::decompress::Options {
                    unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(Some(total)),
                    memlimit: Some(MAX_HEADER as usize),
                    allow_incomplete: false,
                };
                if lzma_rs::lzma_decompress_with_options(&mut br, &mut out, &opts).is_ok()
                    && out.first() == Some(&0x01)
                    && check_header(&out).map_err(|e| (false, e))?
                {
                    return Ok(Pre::Encrypted("members encrypted (AES)"));
                }
            }
        }
        return Ok(Pre::Ok);
    }
    if hdr.first() == Some(&0x01) && check_header(hdr).map_err(|e| (false, e))? {
        return Ok(Pre::Encrypted("members encrypted (AES)"));
    }
    Ok(Pre::Ok)
}

/// Lists and streams the members (solid blocks in sequence). Encrypted
/// archives are reported (`Heuristics.Encrypted.7z`) and not decoded;
/// archives beyond our allocation limits are unscannable; damage is broken.
pub(crate) fn sevenz(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    if !data.starts_with(SIG) {
        ex.broken("7z", "bad signature");
        return;
    }
    match precheck(data) {
        Ok(Pre::Ok) => {}
        Ok(Pre::Encrypted(why)) => {
            ex.encrypted("7z", None, why);
            return;
        }
        Err((true, why)) => {
            ex.broken("7z", &why);
            return;
        }
        Err((false, why)) => {
            ex.unscannable("7z", None, &format!("not opened: {why}"));
            return;
        }
    }
    // lzma-rust2 0.2 can panic on crafted LZMA data (an unchecked match
    // distance in `LZDecoder::get_byte`, found by our garbling test). We
    // cannot validate the compressed stream before decoding, so a panic in
    // the crate is caught here and reported as a broken archive, never hidden.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(data, ex)));
    if caught.is_err() && !ex.done() {
        ex.broken(
            "7z",
            "the 7z decoder (sevenz-rust2/lzma-rust2) panicked on this input; the rest is not decoded",
        );
    }
}

fn decode(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let mut reader =
        match sevenz_rust2::SevenZReader::new(Cursor::new(data), sevenz_rust2::Password::empty()) {
            Ok(r) => r,
            Err(e) => {
                let s = format!("{e:?}");
                if s.contains("Password") || s.contains("password") {
                    ex.encrypted("7z", None, &format!("encrypted: {e}"));
                } else if s.contains("Unsupported") {
                    ex.unscannable("7z", None, &e.to_string());
                } else {
                    ex.broken("7z", &e.to_string());
                }
                return;
            }
        };
    // Coders the crate cannot decode (built without bzip2, deflate, PPMd...),
    // and encryption that only shows in the decoded header.
    let mut unsupported = None;
    for f in &reader.archive().folders {
        for c in &f.coders {
            let id = c.decompression_method_id();
            if id == AES {
                ex.encrypted("7z", None, "members encrypted (AES)");
                return;
            }
            if sevenz_rust2::SevenZMethod::by_id(id).is_none() || !supported(id) {
                unsupported = Some(format!("{id:02x?}"));
            }
            let s = Streams {
                coders: vec![(id.to_vec(), c.properties.clone())],
                ..Default::default()
            };
            if let Err(why) = check_coders(&s) {
                ex.unscannable("7z", None, &format!("not opened: {why}"));
                return;
            }
        }
    }
    if let Some(id) = unsupported {
        ex.unscannable("7z", None, &format!("coder {id} not supported"));
        return;
    }
    let mut failed_after_limit = false;
    let res = reader.for_each_entries(|entry, r| {
        if ex.done() {
            return Ok(false);
        }
        if entry.is_directory() || !entry.has_stream() {
            return Ok(true);
        }
        let name = entry.name().to_string();
        let mut c = super::Counting { inner: r, n: 0 };
        // The crate knows packed sizes per solid block, not per member: the
        // ratio is judged against the whole archive (still stops a bomb).
        let flow = ex.child_reader(
            ChildMeta::named(name.clone()),
            &mut c,
            Some(data.len() as u64),
        );
        if flow == crate::Flow::Stop {
            return Ok(false);
        }
        // Reach the next member of a solid block: skip what the limit left.
        let left = entry.size().saturating_sub(c.n);
        if left > 0 {
            if left > MAX_SOLID_SKIP {
                failed_after_limit = true;
                ex.unscannable(
                    "7z",
                    Some(&name),
                    "rest of the solid block not decoded after a member over the limits",
                );
                return Ok(false);
            }
            io::copy(&mut c.inner.take(left), &mut io::sink())?;
        }
        Ok(true)
    });
    if let Err(e) = res {
        if !failed_after_limit && !ex.done() {
            ex.broken("7z", &e.to_string());
        }
    }
}

/// Coders this build of `sevenz-rust2` decodes (default features off).
fn supported(id: &[u8]) -> bool {
    use sevenz_rust2::SevenZMethod as M;
    [
        M::ID_COPY,
        M::ID_LZMA,
        M::ID_LZMA2,
        M::ID_DELTA,
        M::ID_BCJ_X86,
        M::ID_BCJ2,
        M::ID_BCJ_PPC,
        M::ID_BCJ_ARM,
        M::ID_BCJ_ARM_THUMB,
        M::ID_BCJ_SPARC,
    ]
    .contains(&id)
}
