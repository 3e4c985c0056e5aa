//! Archives and compressed streams.
//!
//! One module per format. Every reader hands members to the [`Extractor`]
//! (which enforces the budget), stops when it says [`Flow::Stop`](crate::Flow)
//! or [`Extractor::done`] is true, and reports what it could not look at
//! (`Heuristics.Unscannable.*`), encrypted members (`Heuristics.Encrypted.*`)
//! and damage (`Heuristics.Broken.*`): nothing is skipped silently.
//!
//! Memory: members are decompressed as streams through
//! [`Extractor::child_reader`] (or borrowed from the input when stored); a
//! decoder that only writes (lzma-rs) writes into a [`CappedWriter`] that stops
//! at [`Extractor::room`] bytes.
pub(crate) use crate::bytes::{le16, le32, le64};
use crate::Extractor;
use std::io::{self, Read, Write};

mod cab;
mod cpio;
mod explode;
mod sevenz;
mod stream;
mod szdd;
mod tar;
mod zip;

pub(crate) use cab::cab;
pub(crate) use cpio::cpio;

mod iso;
mod rar;
pub(crate) use iso::iso;
pub(crate) use rar::rar;
pub(crate) use sevenz::sevenz;
pub(crate) use stream::{bzip2, gzip, xz};
pub(crate) use szdd::szdd;
pub(crate) use tar::tar;
pub(crate) use zip::zip;

/// The last path segment of a declared name (`dir/a.tar.gz` → `a.tar.gz`).
fn basename(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// A writer that keeps at most `cap` bytes and then fails (so a write-only
/// decoder stops), or fails once the output exceeds `max_ratio` times
/// `packed` after [`crate::budget::RATIO_MIN_OUTPUT`] bytes. What it kept is
/// then handed to [`Extractor::child_reader`] through a cursor, which reports
/// the limit the same way as for a streamed member.
pub(crate) struct CappedWriter {
    pub(crate) buf: Vec<u8>,
    cap: u64,
    packed: u64,
    max_ratio: u64,
    /// The writer refused bytes (a limit was reached).
    pub(crate) full: bool,
}

impl CappedWriter {
    /// A writer for one member: keeps `room + 1` bytes at most, so the
    /// extractor can tell "exactly at the limit" from "over it".
    pub(crate) fn for_member(ex: &Extractor<'_, '_, '_>, packed: u64) -> CappedWriter {
        CappedWriter {
            buf: Vec::new(),
            cap: ex.room().saturating_add(1),
            packed: packed.max(1),
            max_ratio: ex.budget().max_ratio,
            full: false,
        }
    }
}

impl Write for CappedWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let have = self.buf.len() as u64;
        let over_ratio =
            have >= crate::budget::RATIO_MIN_OUTPUT && have / self.packed > self.max_ratio;
        if have >= self.cap || over_ratio {
            self.full = true;
            return Err(io::Error::other("output limit reached"));
        }
        let take = (b.len() as u64).min(self.cap - have) as usize;
        self.buf.extend_from_slice(&b[..take]);
        Ok(take)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that counts the bytes it passed on.
pub(crate) struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// A reader that checks a CRC-32 at the end of the stream: a mismatch is a
/// read error ("bad CRC"), which the extractor reports as a broken container.
pub(crate) struct CrcCheck<R> {
    inner: R,
    crc: flate2::Crc,
    expect: u32,
}

impl<R: Read> CrcCheck<R> {
    pub(crate) fn new(inner: R, expect: u32) -> Self {
        CrcCheck {
            inner,
            crc: flate2::Crc::new(),
            expect,
        }
    }
}

impl<R: Read> Read for CrcCheck<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        if n == 0 && !b.is_empty() && self.crc.sum() != self.expect {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "bad CRC (stored {:08x}, computed {:08x})",
                    self.expect,
                    self.crc.sum()
                ),
            ));
        }
        self.crc.update(b.get(..n).unwrap_or(&[]));
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
