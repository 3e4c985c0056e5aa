//! Documents: OLE2 (+VBA), PDF, RTF. OOXML is a zip: its members (`vbaProject.bin`,
//! `oleObject1.bin`) arrive through the zip reader as OLE2 objects.
//!
//! Every reader here is tolerant (it hands over what it can read and reports
//! real damage with `Heuristics.Broken.*`), never panics, and caps every
//! allocation by [`Extractor::room`] or a named constant.

mod ole2;
mod pdf;
mod pdfcrypt;
mod rtf;
mod vba;

pub(crate) use ole2::ole2;
pub(crate) use pdf::pdf;
pub(crate) use rtf::rtf;

/// Longest label or path read from an OLE1 Package header.
const MAX_PACKAGE_STRING: usize = 4096;

/// An OLE1 "Package" (the payload of a `\x01Ole10Native` stream after its
/// size prefix, or an RTF `\objdata` object of class `Package`).
pub(crate) struct Package<'a> {
    /// The label the user sees (usually the file name).
    pub label: String,
    /// The payload, cut to what the input holds.
    pub data: &'a [u8],
}

/// Parses an OLE1 Package: `u16 2`, label\0, source path\0, `u16 0`, `u16 type`
/// (3 = embedded file), `u32` temp-path length, temp path, `u32` data size, data.
/// `None` when it is not one (a link, garbage). Never panics; borrows only.
pub(crate) fn parse_package(d: &[u8]) -> Option<Package<'_>> {
    let mut r = Rd { d, pos: 0 };
    let _sig = r.u16()?;
    let label = r.cstr()?;
    let source = r.cstr()?;
    let _reserved = r.u16()?;
    let kind = r.u16()?;
    if kind != 3 {
        return None;
    }
    let tlen = r.u32()? as usize;
    r.skip(tlen)?;
    let size = r.u32()? as usize;
    let rest = d.get(r.pos..)?;
    let data = &rest[..size.min(rest.len())];
    let mut label = String::from_utf8_lossy(label).into_owned();
    if label.trim().is_empty() {
        label = String::from_utf8_lossy(source).into_owned();
    }
    Some(Package {
        label: file_name(&label),
        data,
    })
}

/// The last path component of `s` (`C:\x\a.exe` → `a.exe`), without control
/// characters, never empty.
pub(crate) fn file_name(s: &str) -> String {
    let base = s.rsplit(['\\', '/']).next().unwrap_or(s);
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    if clean.trim().is_empty() {
        "package".to_string()
    } else {
        clean
    }
}

/// A bounds-checked little-endian reader.
pub(crate) struct Rd<'a> {
    pub d: &'a [u8],
    pub pos: usize,
}

impl<'a> Rd<'a> {
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.d.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }
    pub fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A NUL-terminated string of at most [`MAX_PACKAGE_STRING`] bytes.
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.d.get(self.pos..)?;
        let n = memchr::memchr(0, &rest[..rest.len().min(MAX_PACKAGE_STRING)])?;
        self.pos += n + 1;
        Some(&rest[..n])
    }
}

#[cfg(test)]
mod clamav_testfiles;
