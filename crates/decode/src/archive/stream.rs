//! Single-stream compressors: gzip, bzip2, xz. Each yields one child.
use super::{basename, CappedWriter};
use crate::{ChildMeta, Extractor};
use std::io::{self, Cursor, Read};

/// One member decoder over a slice that gives back what it did not use.
trait Member<'a>: Read {
    fn open(d: &'a [u8]) -> Self;
    fn rest(self) -> &'a [u8];
}

impl<'a> Member<'a> for flate2::bufread::GzDecoder<&'a [u8]> {
    fn open(d: &'a [u8]) -> Self {
        flate2::bufread::GzDecoder::new(d)
    }
    fn rest(self) -> &'a [u8] {
        self.into_inner()
    }
}

impl<'a> Member<'a> for ::bzip2::bufread::BzDecoder<&'a [u8]> {
    fn open(d: &'a [u8]) -> Self {
        ::bzip2::bufread::BzDecoder::new(d)
    }
    fn rest(self) -> &'a [u8] {
        self.into_inner()
    }
}

/// Concatenated members (`cat a.gz b.gz`), read as one stream. After the
/// last member, bytes that do not start another member (zero padding to a
/// tape block, trailing junk) end the stream without an error, as `gzip -d`
/// and ClamAV treat them; the container itself is scanned raw anyway.
struct Members<'a, D> {
    cur: Option<D>,
    magic: &'static [u8],
    _d: std::marker::PhantomData<&'a [u8]>,
}

impl<'a, D: Member<'a>> Members<'a, D> {
    fn new(data: &'a [u8], magic: &'static [u8]) -> Self {
        Members {
            cur: Some(D::open(data)),
            magic,
            _d: std::marker::PhantomData,
        }
    }
}

impl<'a, D: Member<'a>> Read for Members<'a, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(d) = self.cur.as_mut() else {
                return Ok(0);
            };
            let n = d.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let rest = match self.cur.take() {
                Some(d) => d.rest(),
                None => return Ok(0),
            };
            if rest.starts_with(self.magic) {
                self.cur = Some(D::open(rest));
            }
        }
    }
}

/// Longest gzip `FNAME` taken as a member name; longer ones are cut.
const MAX_GZIP_NAME: usize = 255;

/// The segment of the one decompressed child: the stored name if any, else
/// the container's name without its compression suffix, else `decompressed`.
fn stream_segment(
    ex: &Extractor<'_, '_, '_>,
    stored: Option<String>,
    suffixes: &[(&str, &str)],
) -> ChildMeta {
    if let Some(n) = stored.filter(|n| !n.is_empty()) {
        return ChildMeta::named(n);
    }
    if let Some(name) = ex.container_name() {
        let base = basename(name);
        let lower = base.to_ascii_lowercase();
        for (suf, repl) in suffixes {
            if lower.len() > suf.len() && lower.ends_with(suf) {
                if let Some(stem) = base.get(..base.len() - suf.len()) {
                    return ChildMeta::named(format!("{stem}{repl}"));
                }
            }
        }
    }
    ChildMeta::at("decompressed")
}

/// The gzip header's `FNAME` (RFC 1952), basename only, if present.
fn gzip_fname(d: &[u8]) -> Option<String> {
    let flags = *d.get(3)?;
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let xlen = super::le16(d, at)? as usize;
        at = at.checked_add(2 + xlen)?;
    }
    if flags & 0x08 == 0 {
        return None;
    }
    let rest = d.get(at..)?;
    let end = memchr::memchr(0, rest)?;
    let raw = &rest[..end.min(MAX_GZIP_NAME)];
    let s: String = raw.iter().map(|&b| b as char).collect(); // ISO 8859-1
    Some(basename(&s).to_string())
}

/// gzip (all members of a multi-member stream): one child, streamed, with
/// the input length as the packed size. Damage after some output keeps that
/// output and reports `Heuristics.Broken.Gzip`.
pub(crate) fn gzip(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let meta = stream_segment(
        ex,
        gzip_fname(data),
        &[(".tgz", ".tar"), (".gz", ""), (".z", "")],
    );
    let mut r = Members::<flate2::bufread::GzDecoder<&[u8]>>::new(data, b"\x1f\x8b");
    ex.child_reader(meta, &mut r, Some(data.len() as u64));
}

/// bzip2 (all concatenated streams): one child, streamed.
pub(crate) fn bzip2(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let meta = stream_segment(
        ex,
        None,
        &[(".tbz2", ".tar"), (".tbz", ".tar"), (".bz2", "")],
    );
    let mut r = Members::<::bzip2::bufread::BzDecoder<&[u8]>>::new(data, b"BZh");
    ex.child_reader(meta, &mut r, Some(data.len() as u64));
}

/// Most xz streams in one file (`cat a.xz b.xz`); later ones are not decoded
/// and reported unscannable.
const MAX_XZ_STREAMS: usize = 64;
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
/// Failed decodes (a stream magic inside compressed data) before giving up:
/// each one may decode up to the member limit again.
const MAX_XZ_RETRIES: usize = 4;

/// xz: one child (all concatenated streams). lzma-rs only writes, so it
/// writes into a [`CappedWriter`] that stops at the member limit (or the ratio
/// limit); what it kept is then handed over like a stream, so the same limits
/// are reported. lzma-rs decodes one stream and rejects anything after it, so
/// the input is split at stream magics first (a split that does not decode
/// is joined with the next part) and trailing zero padding is dropped.
pub(crate) fn xz(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let meta = stream_segment(ex, None, &[(".txz", ".tar"), (".xz", "")]);
    let end = data.len() - data.iter().rev().take_while(|&&b| b == 0).count();
    let data_nz = &data[..end];
    let mut w = CappedWriter::for_member(ex, data.len() as u64);
    let mut starts: Vec<usize> = memchr::memmem::find_iter(data_nz, XZ_MAGIC)
        .filter(|&p| p > 0)
        .take(MAX_XZ_STREAMS * 4)
        .collect();
    starts.push(end);
    let mut from = 0usize;
    let mut err: Option<String> = None;
    let mut streams = 0usize;
    let mut retries = 0usize;
    for &to in &starts {
        if to <= from {
            continue;
        }
        let part = &data_nz[from..to];
        let part = &part[..part.len() - part.iter().rev().take_while(|&&b| b == 0).count()];
        let before = w.buf.len();
        match lzma_rs::xz_decompress(&mut Cursor::new(part), &mut w) {
            Ok(()) => {
                err = None;
                from = to;
                streams += 1;
                if streams >= MAX_XZ_STREAMS && to < end {
                    err = Some(format!(
                        "more than {MAX_XZ_STREAMS} streams; the rest not decoded"
                    ));
                    break;
                }
            }
            Err(e) => {
                if w.full {
                    break;
                }
                // A magic inside compressed data: try again up to the next one.
                w.buf.truncate(before);
                err = Some(format!("{e:?}"));
                retries += 1;
                if retries > MAX_XZ_RETRIES {
                    break;
                }
            }
        }
    }
    let full = w.full;
    let seg = meta.segment.clone();
    let mut cur = Cursor::new(w.buf);
    ex.child_reader(meta, &mut cur, Some(data.len() as u64));
    if let Some(e) = err {
        if !full && !ex.done() {
            ex.broken("Xz", &format!("{seg}: {e}"));
        }
    }
}
