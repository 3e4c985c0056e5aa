//! Which reader opens an object: decided by magic bytes only (ClamAV's type
//! table in `mxguard_sigs::filetype`, plus a few formats it leaves to its
//! scanners), never by the declared name or Content-Type.

use mxguard_sigs::filetype::{self, FileType};

/// The container formats the decoder opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Mail,
    /// Several messages, each after a `From ` line.
    Mbox,
    /// Text holding `begin NNN name` uuencoded blocks.
    Uuencode,
    BinHex,
    /// MS-TNEF (`winmail.dat`).
    Tnef,
    Zip,
    Gzip,
    Bzip2,
    Xz,
    Tar,
    SevenZ,
    Cpio,
    Cab,
    /// RAR 4 and 5: member names, encryption and stored members (the
    /// decompression algorithm is not free to reimplement under our licence).
    Rar,
    /// ISO 9660 disc images (with Joliet names).
    Iso,
    /// MS-DOS `COMPRESS.EXE` (SZDD) files.
    Szdd,
    Ole2,
    Pdf,
    Rtf,
    Html,
}

/// The true type of `data` (magic bytes; bounded prefix).
pub fn true_type(data: &[u8]) -> FileType {
    filetype::detect(data)
}

/// How far into a text object a uuencoded or BinHex block is looked for.
const TEXT_MARKER_SCAN: usize = 4 << 20;

/// The reader for an object of type `ft`, if it is a container. Never panics.
pub fn container_kind(data: &[u8], ft: FileType) -> Option<Kind> {
    Some(match ft {
        FileType::Mail | FileType::Mhtml => {
            if data.starts_with(b"From ") {
                Kind::Mbox
            } else {
                Kind::Mail
            }
        }
        FileType::Zip => Kind::Zip,
        FileType::Gzip => Kind::Gzip,
        FileType::Bzip2 => Kind::Bzip2,
        FileType::Xz => Kind::Xz,
        FileType::Tar => Kind::Tar,
        FileType::SevenZ => Kind::SevenZ,
        FileType::Cab => Kind::Cab,
        FileType::Rar => Kind::Rar,
        FileType::Ole2 => Kind::Ole2,
        FileType::Pdf => Kind::Pdf,
        FileType::Rtf => Kind::Rtf,
        FileType::Html | FileType::HtmlUtf16 => Kind::Html,
        FileType::Other | FileType::Binary => {
            if data.starts_with(b"SZDD\x88\xf0\x27\x33") {
                return Some(Kind::Szdd);
            }
            if data.starts_with(b"\x78\x9f\x3e\x22") {
                return Some(Kind::Tnef);
            }
            if is_cpio(data) {
                return Some(Kind::Cpio);
            }
            if data.get(0x8001..0x8006) == Some(b"CD001") {
                return Some(Kind::Iso);
            }
            return text_kind(data);
        }
        FileType::Text => return text_kind(data),
        // A self-extracting zip: an executable stub with a zip appended, whose
        // end-of-central-directory record sits in the last 64 KiB (the zip
        // reader accounts for the prepended stub).
        FileType::Pe | FileType::Elf | FileType::MachO if has_zip_tail(data) => Kind::Zip,
        _ => return None,
    })
}

/// The end-of-central-directory record can be this far from the end (22 bytes
/// plus a comment of up to 65,535).
const EOCD_SEARCH: usize = 22 + 65_535;

/// True when the last [`EOCD_SEARCH`] bytes hold a consistent end-of-central-
/// directory record: its comment fits in the file, and the central directory
/// it describes ends right before it and starts with a central header. Stray
/// `PK\x05\x06` bytes in an executable do not qualify.
fn has_zip_tail(data: &[u8]) -> bool {
    use crate::bytes::{le16, le32};
    let start = data.len().saturating_sub(EOCD_SEARCH);
    let Some(rel) = memchr::memmem::rfind(&data[start..], b"PK\x05\x06") else {
        return false;
    };
    let pos = start + rel;
    let (Some(entries), Some(cd_size), Some(comment)) = (
        le16(data, pos + 10),
        le32(data, pos + 12),
        le16(data, pos + 20),
    ) else {
        return false;
    };
    let comment_ok = pos + 22 + comment as usize <= data.len();
    let cd_start = pos.checked_sub(cd_size as usize);
    comment_ok && entries > 0 && cd_start.is_some_and(|c| data.get(c..c + 4) == Some(b"PK\x01\x02"))
}

fn is_cpio(data: &[u8]) -> bool {
    data.starts_with(b"070701")
        || data.starts_with(b"070702")
        || data.starts_with(b"070707")
        || data.starts_with(b"\xc7\x71")
        || data.starts_with(b"\x71\xc7")
}

/// Text that carries an encoded file: a BinHex header, or a `begin NNN ` line.
fn text_kind(data: &[u8]) -> Option<Kind> {
    let head = &data[..data.len().min(TEXT_MARKER_SCAN)];
    if memchr::memmem::find(head, b"(This file must be converted with BinHex").is_some() {
        return Some(Kind::BinHex);
    }
    if has_uuencode_begin(head) {
        return Some(Kind::Uuencode);
    }
    None
}

/// Container formats ClamAV's type table recognises that we do not open, by
/// ClamAV type name, with the name used in `Heuristics.Unscannable.<name>`.
const UNSUPPORTED: [(&str, &str); 10] = [
    ("CL_TYPE_ARJ", "Arj"),
    ("CL_TYPE_MSCHM", "Chm"),
    ("CL_TYPE_ALZ", "Alz"),
    ("CL_TYPE_EGG", "Egg"),
    ("CL_TYPE_XAR", "Xar"),
    ("CL_TYPE_LHA_LZH", "Lha"),
    ("CL_TYPE_SIS", "Sis"),
    ("CL_TYPE_UDF", "Udf"),
    ("CL_TYPE_DMG", "Dmg"),
    ("CL_TYPE_ONENOTE", "OneNote"),
];

/// For an object no reader opens: the name of the container format it is, when
/// it is one we know we cannot open (so its members are reported unscanned,
/// never passed as clean). Only objects typed binary/other are looked at.
pub fn unsupported_container(data: &[u8], ft: FileType) -> Option<&'static str> {
    if !matches!(ft, FileType::Binary | FileType::Other) {
        return None;
    }
    let name = filetype::clamav_type_name(data);
    UNSUPPORTED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, what)| *what)
}

/// True when some line is `begin <octal mode> <name>`.
pub(crate) fn has_uuencode_begin(data: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&data[from..], b"begin ") {
        let at = from + i;
        if at == 0 || data[at - 1] == b'\n' {
            let rest = &data[at + 6..];
            let digits = rest
                .iter()
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            if (3..=4).contains(&digits) && rest.get(digits) == Some(&b' ') {
                return true;
            }
        }
        from = at + 6;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_magic_not_name() {
        assert_eq!(
            container_kind(b"PK\x03\x04rest", FileType::Zip),
            Some(Kind::Zip)
        );
        assert_eq!(
            container_kind(b"hello\nbegin 644 a.exe\nM\nend\n", FileType::Text),
            Some(Kind::Uuencode)
        );
        assert_eq!(
            container_kind(b"hello\nbeginning 644\n", FileType::Text),
            None
        );
        assert_eq!(
            container_kind(b"070701000", FileType::Other),
            Some(Kind::Cpio)
        );
        assert_eq!(container_kind(b"MZ\x90\x00", FileType::Pe), None);
        let arj = b"\x60\xea\x26\x00\x1e\x06\x01\x10\x00\x02rest of an arj header";
        assert_eq!(unsupported_container(arj, true_type(arj)), Some("Arj"));
        assert_eq!(
            unsupported_container(b"ITSF\x03\x00\x00\x00", true_type(b"ITSF\x03\x00\x00\x00")),
            Some("Chm")
        );
        assert_eq!(
            unsupported_container(b"plain bytes", FileType::Binary),
            None
        );
    }
}
