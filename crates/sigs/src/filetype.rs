//! True file type from magic bytes (never from names), the way ClamAV's
//! built-in file type table classifies a file before matching.
//!
//! # What this reproduces
//!
//! ClamAV 1.4 (`cli_determine_fmap_type`, engine f-level 216, built-in table
//! used when no `daily.ftm` is loaded, which is what `clamscan -d x.ndb` does)
//! types a file from its first 1024 bytes in three steps:
//!
//! 1. **Fixed-offset magic** (`MAGIC` below): the first entry whose bytes sit at its
//!    offset wins. ClamAV prepends each entry to a list while loading, so the
//!    *last* entry of its table is tried first; `MAGIC` is stored in that
//!    tried-first order. Examples of consequences that surprise people: a file
//!    starting `BM` is a bitmap and `MM` a big-endian TIFF (both "graphics"),
//!    `From ` / `To: ` / `Subject: ` make a mail, `ID3` is an MP3 and is
//!    *ignored* (never scanned).
//! 2. **Text detection** when no magic matched (`cli_texttype`): every byte in
//!    the ASCII/ISO-8859/"extended ASCII" class (all bytes ≥ 0x80, the C0
//!    controls BEL BS HT LF FF CR ESC, and 0x20..0x7e) makes "ASCII text"; so
//!    UTF-8 text is ASCII text too. Otherwise UTF-16 (with a BOM, or without one
//!    if every 16-bit big-endian unit after the first is a plain text
//!    character), otherwise binary data. A binary prefix with a valid tar
//!    header checksum is a tar archive.
//! 3. **Pattern ("on the fly") detection** for text and binary data only: the
//!    table's partial-match patterns (`FT_SIGS` below, e.g. `<html>`, `<script`,
//!    `<a ` … `href`, `MZ{60-300}PE\0\0`, `%PDF-?.`, the mail header pairs
//!    with offsets `0,1024`, MIME-Version + Content-Type for MHTML) are run over
//!    the same 1024-byte prefix. The winner follows ClamAV's matcher rule: a
//!    later match replaces the current type if its type code is higher, or if
//!    it is an executable or an "SFX"-class type (which always replace). The
//!    SFX results themselves are discarded at this stage. If nothing was
//!    found, the prefix is decoded as UTF-16LE (`cli_utf16toascii`) and then,
//!    for UTF-16/UCS-4 byte order marks, exactly; an HTML hit there makes
//!    "HTML in UTF-16" (resp. HTML).
//!
//! The same patterns are run again by `scanraw` over the *whole* file; that
//! later result decides whether an ASCII text file is additionally handled as
//! HTML or mail (see [`crate::target`]); `raw_scan_type` reproduces it.
//!
//! # Known differences
//!
//! * Matches ending at the same offset are processed in table order; ClamAV's
//!   order there follows its Aho-Corasick trie.
//! * For files over 128 KiB ClamAV matches in 128 KiB windows that overlap by
//!   the longest pattern of the loaded database; we attribute matches to
//!   disjoint 128 KiB windows by their end offset.
//! * OOXML (zip) refinement and MBR/GPT checks are not reproduced: those all
//!   map to container types with no signature target anyway.
//!
//! Verified: the ClamAV type ([`clamav_type_name`]) agrees with `clamscan
//! --gen-json` on 886 generated files (every magic entry, every pattern at and
//! around its offset limits, text, UTF-16/32, random data, and texts packed
//! with competing markers).
//!
//! All functions here look at a bounded prefix (1024 bytes) except
//! `raw_scan_type`, which is linear in the file size; none can panic.

use memchr::memmem;
use std::sync::OnceLock;

/// A file's true type as far as signature targeting is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// Anything not recognised (ClamAV's CL_TYPE_BINARY_DATA, also compiled
    /// Python, which ClamAV scans the same way).
    Binary,
    /// Plain text (ASCII or UTF-8/16), ClamAV's CL_TYPE_TEXT_*.
    Text,
    Html,
    /// HTML encoded as UTF-16LE (CL_TYPE_HTML_UTF16): scanned raw with target 0
    /// only, then decoded and normalised as HTML.
    HtmlUtf16,
    Mail,
    /// MIME-Version + Content-Type headers (CL_TYPE_MHTML): parsed as mail but
    /// its raw bytes are matched by target 0 only.
    Mhtml,
    Pe,
    Elf,
    /// Mach-O, including universal ("fat") binaries.
    MachO,
    Ole2,
    Pdf,
    Graphics,
    Flash,
    Java,
    /// ClamAV's internal JSON properties documents (target 13).
    Internal,
    Zip,
    Gzip,
    Bzip2,
    Xz,
    SevenZ,
    Rar,
    Cab,
    Tar,
    Rtf,
    /// Types ClamAV never scans (MP3, Ogg, SQLite, ...): no signature applies.
    Ignored,
    /// A type ClamAV recognises that has no signature target (ARJ, CPIO,
    /// BinHex, UUencode, TNEF, CHM, ISO 9660, ...): target 0 only.
    Other,
}

impl FileType {
    /// A short lowercase name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FileType::Binary => "binary",
            FileType::Text => "text",
            FileType::Html => "html",
            FileType::HtmlUtf16 => "html-utf16",
            FileType::Mail => "mail",
            FileType::Mhtml => "mhtml",
            FileType::Pe => "pe",
            FileType::Elf => "elf",
            FileType::MachO => "macho",
            FileType::Ole2 => "ole2",
            FileType::Pdf => "pdf",
            FileType::Graphics => "graphics",
            FileType::Flash => "flash",
            FileType::Java => "java",
            FileType::Internal => "internal",
            FileType::Zip => "zip",
            FileType::Gzip => "gzip",
            FileType::Bzip2 => "bzip2",
            FileType::Xz => "xz",
            FileType::SevenZ => "7z",
            FileType::Rar => "rar",
            FileType::Cab => "cab",
            FileType::Tar => "tar",
            FileType::Rtf => "rtf",
            FileType::Ignored => "ignored",
            FileType::Other => "other",
        }
    }
}

impl FileType {
    /// ClamAV's type name for a container of this type, as `Container:` conditions
    /// name it (`CL_TYPE_ZIP`). Coarse where [`FileType`] is: an OOXML document is
    /// a zip here, and text is `CL_TYPE_TEXT_ASCII`.
    pub fn clamav_container_name(self) -> &'static str {
        match self {
            FileType::Binary => "CL_TYPE_BINARY_DATA",
            FileType::Text => "CL_TYPE_TEXT_ASCII",
            FileType::Html => "CL_TYPE_HTML",
            FileType::HtmlUtf16 => "CL_TYPE_HTML_UTF16",
            FileType::Mail => "CL_TYPE_MAIL",
            FileType::Mhtml => "CL_TYPE_MHTML",
            FileType::Pe => "CL_TYPE_MSEXE",
            FileType::Elf => "CL_TYPE_ELF",
            FileType::MachO => "CL_TYPE_MACHO",
            FileType::Ole2 => "CL_TYPE_MSOLE2",
            FileType::Pdf => "CL_TYPE_PDF",
            FileType::Graphics => "CL_TYPE_GRAPHICS",
            FileType::Flash => "CL_TYPE_SWF",
            FileType::Java => "CL_TYPE_JAVA",
            FileType::Internal => "CL_TYPE_INTERNAL",
            FileType::Zip => "CL_TYPE_ZIP",
            FileType::Gzip => "CL_TYPE_GZ",
            FileType::Bzip2 => "CL_TYPE_BZ",
            FileType::Xz => "CL_TYPE_XZ",
            FileType::SevenZ => "CL_TYPE_7Z",
            FileType::Rar => "CL_TYPE_RAR",
            FileType::Cab => "CL_TYPE_MSCAB",
            FileType::Tar => "CL_TYPE_POSIX_TAR",
            FileType::Rtf => "CL_TYPE_RTF",
            FileType::Ignored | FileType::Other => "CL_TYPE_BINARY_DATA",
        }
    }
}

/// Classifies `data` by magic bytes. Never panics, looks at a bounded prefix
/// (1024 bytes, like ClamAV).
pub fn detect(data: &[u8]) -> FileType {
    classify(data).file_type()
}

/// ClamAV's own name for the type it gives `data` (`CL_TYPE_TEXT_ASCII`,
/// `CL_TYPE_MSEXE`, ...), finer than [`FileType`]; for diagnostics and for
/// comparing with `clamscan --gen-json`. Same bounds as [`detect`].
pub fn clamav_type_name(data: &[u8]) -> String {
    classify(data).clamav_name()
}

/// How many leading bytes ClamAV's typing looks at.
pub(crate) const PREFIX: usize = 1024;

/// ClamAV's internal file type codes, declared in ClamAV's order. The order is
/// significant: the pattern matcher keeps the highest code it sees.
#[allow(dead_code)] // some codes only exist to keep the order right
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Cli {
    Any,
    TextAscii,
    TextUtf8,
    TextUtf16Le,
    TextUtf16Be,
    BinaryData,
    Error,
    Msexe,
    Elf,
    Macho,
    MachoUnibin,
    PosixTar,
    OldTar,
    CpioOld,
    CpioOdc,
    CpioNewc,
    CpioCrc,
    Gz,
    Zip,
    Bz,
    Rar,
    Arj,
    Msszdd,
    Msole2,
    Mscab,
    Mschm,
    Sis,
    Screnc,
    Graphics,
    Gif,
    Png,
    Jpeg,
    Tiff,
    Riff,
    Binhex,
    Tnef,
    Cryptff,
    Pdf,
    Uuencoded,
    Script,
    HtmlUtf16,
    Rtf,
    SevenZ,
    Swf,
    Java,
    Xar,
    Xz,
    OoxmlWord,
    OoxmlPpt,
    OoxmlXl,
    Internal,
    Hwp3,
    OoxmlHwp,
    Ps,
    Egg,
    Onenote,
    PythonCompiled,
    LhaLzh,
    PartAny,
    PartHfsplus,
    Mbr,
    Html,
    Mail,
    Sfx,
    Zipsfx,
    Rarsfx,
    SevenZSfx,
    Cabsfx,
    Arjsfx,
    Eggsfx,
    Nulsft,
    Autoit,
    IshieldMsi,
    Iso9660,
    Dmg,
    Gpt,
    Apm,
    Xdp,
    XmlWord,
    XmlXl,
    XmlHwp,
    Hwpole2,
    Mhtml,
    Lnk,
    Udf,
    Alz,
    Other,
    Ignored,
}

impl Cli {
    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            Cli::TextAscii | Cli::TextUtf8 | Cli::TextUtf16Le | Cli::TextUtf16Be
        )
    }

    /// Types that replace the current one whatever their code (matcher rule).
    fn overrides(self) -> bool {
        self >= Cli::Sfx || self == Cli::Msexe
    }

    fn is_sfx(self) -> bool {
        matches!(
            self,
            Cli::Zipsfx | Cli::Arjsfx | Cli::Rarsfx | Cli::Eggsfx | Cli::Cabsfx | Cli::SevenZSfx
        )
    }

    pub(crate) fn clamav_name(self) -> String {
        let special = match self {
            Cli::SevenZ => Some("CL_TYPE_7Z"),
            Cli::SevenZSfx => Some("CL_TYPE_7ZSFX"),
            Cli::Msexe => Some("CL_TYPE_MSEXE"),
            Cli::TextUtf16Le => Some("CL_TYPE_TEXT_UTF16LE"),
            Cli::TextUtf16Be => Some("CL_TYPE_TEXT_UTF16BE"),
            _ => None,
        };
        if let Some(s) = special {
            return s.to_string();
        }
        let mut out = String::from("CL_TYPE_");
        for (i, ch) in format!("{self:?}").chars().enumerate() {
            if ch.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_uppercase());
        }
        out
    }

    pub(crate) fn file_type(self) -> FileType {
        match self {
            Cli::TextAscii | Cli::TextUtf8 | Cli::TextUtf16Le | Cli::TextUtf16Be => FileType::Text,
            Cli::BinaryData | Cli::PythonCompiled | Cli::Any | Cli::Error => FileType::Binary,
            Cli::Html => FileType::Html,
            Cli::HtmlUtf16 => FileType::HtmlUtf16,
            Cli::Mail => FileType::Mail,
            Cli::Mhtml => FileType::Mhtml,
            Cli::Msexe => FileType::Pe,
            Cli::Elf => FileType::Elf,
            Cli::Macho | Cli::MachoUnibin => FileType::MachO,
            Cli::Msole2 => FileType::Ole2,
            Cli::Pdf => FileType::Pdf,
            Cli::Graphics | Cli::Gif | Cli::Png | Cli::Jpeg | Cli::Tiff => FileType::Graphics,
            Cli::Swf => FileType::Flash,
            Cli::Java => FileType::Java,
            Cli::Internal => FileType::Internal,
            Cli::Zip | Cli::OoxmlWord | Cli::OoxmlPpt | Cli::OoxmlXl | Cli::OoxmlHwp => {
                FileType::Zip
            }
            Cli::Gz => FileType::Gzip,
            Cli::Bz => FileType::Bzip2,
            Cli::Xz => FileType::Xz,
            Cli::SevenZ => FileType::SevenZ,
            Cli::Rar => FileType::Rar,
            Cli::Mscab => FileType::Cab,
            Cli::PosixTar | Cli::OldTar => FileType::Tar,
            Cli::Rtf => FileType::Rtf,
            Cli::Ignored => FileType::Ignored,
            _ => FileType::Other,
        }
    }
}

/// ClamAV's `cli_determine_fmap_type` for a file (not a partition).
/// Bounded: looks at the first [`PREFIX`] bytes only.
pub(crate) fn classify(data: &[u8]) -> Cli {
    let buf = &data[..data.len().min(PREFIX)];
    let mut ret = magic_type(buf).unwrap_or_else(|| texttype(buf));
    if ret == Cli::BinaryData {
        match is_tar(buf) {
            1 => return Cli::OldTar,
            2 => return Cli::PosixTar,
            _ => {}
        }
    }
    if ret.is_text() || ret == Cli::BinaryData {
        let found = ft_scan_buffer(buf);
        if found != Cli::Any && !found.is_sfx() {
            ret = found;
        } else {
            if let Some(decoded) = utf16_to_ascii(buf) {
                if ft_scan_buffer(&decoded) == Cli::Html {
                    ret = Cli::HtmlUtf16;
                }
            }
            if ret != Cli::HtmlUtf16 {
                if let Some(decoded) = bom_to_ascii(buf) {
                    if !decoded.is_empty() && ft_scan_buffer(&decoded) == Cli::Html {
                        ret = Cli::Html;
                    }
                }
            }
        }
    }
    ret
}

fn magic_type(buf: &[u8]) -> Option<Cli> {
    MAGIC.iter().find_map(|&(off, magic, ty)| {
        let end = off.checked_add(magic.len())?;
        (buf.get(off..end)? == magic).then_some(ty)
    })
}

/// Character classes of ClamAV's text detector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextClass {
    /// Never appears in text.
    Never,
    /// Plain ASCII text.
    Plain,
    /// ISO-8859 or non-ISO extended ASCII.
    Extended,
}

fn text_class(b: u8) -> TextClass {
    match b {
        // BEL BS HT LF FF CR, ESC, printable ASCII
        7..=10 | 12 | 13 | 27 | 0x20..=0x7e => TextClass::Plain,
        // NEL is listed as plain text in ClamAV's table
        0x85 => TextClass::Plain,
        0x80..=0xff => TextClass::Extended,
        _ => TextClass::Never,
    }
}

/// ClamAV's `cli_texttype` on a (bounded) prefix.
pub(crate) fn texttype(buf: &[u8]) -> Cli {
    if buf.iter().all(|&b| text_class(b) != TextClass::Never) {
        Cli::TextAscii
    } else if is_utf8(buf) {
        Cli::TextUtf8
    } else {
        match utf16_kind(buf) {
            1 => Cli::TextUtf16Le,
            2 => Cli::TextUtf16Be,
            _ => Cli::BinaryData,
        }
    }
}

/// UTF-8 check as ClamAV does it: ASCII bytes must be plain text characters,
/// at least one multi-byte sequence, a sequence cut by the end counts.
fn is_utf8(buf: &[u8]) -> bool {
    let mut i = 0;
    let mut got_one = false;
    while i < buf.len() {
        let b = buf[i];
        if b & 0x80 == 0 {
            if text_class(b) != TextClass::Plain {
                return false;
            }
        } else if b & 0x40 == 0 {
            return false;
        } else {
            let following = match b {
                _ if b & 0x20 == 0 => 1,
                _ if b & 0x10 == 0 => 2,
                _ if b & 0x08 == 0 => 3,
                _ if b & 0x04 == 0 => 4,
                _ if b & 0x02 == 0 => 5,
                _ => return false,
            };
            for _ in 0..following {
                i += 1;
                let Some(&c) = buf.get(i) else { return got_one };
                if c & 0x80 == 0 || c & 0x40 != 0 {
                    return false;
                }
            }
            got_one = true;
        }
        i += 1;
    }
    got_one
}

/// 0: not UTF-16; 1: little endian; 2: big endian (also BOM-less text).
fn utf16_kind(buf: &[u8]) -> u8 {
    if buf.len() < 2 {
        return 0;
    }
    let (big_endian, bom) = match (buf[0], buf[1]) {
        (0xff, 0xfe) => (false, true),
        (0xfe, 0xff) => (true, true),
        _ => (true, false),
    };
    let mut bad = 0usize;
    let mut i = 2;
    while i + 1 < buf.len() {
        let c = if big_endian {
            u16::from(buf[i]) << 8 | u16::from(buf[i + 1])
        } else {
            u16::from(buf[i + 1]) << 8 | u16::from(buf[i])
        };
        if c == 0xfffe {
            return 0;
        }
        if c < 128 && text_class(c as u8) != TextClass::Plain {
            if !bom {
                return 0;
            }
            bad += 1;
        }
        i += 2;
    }
    if bom && bad >= buf.len() / 2 {
        return 0;
    }
    if big_endian {
        2
    } else {
        1
    }
}

/// ClamAV's `is_tar`: 0 not tar, 1 old tar, 2 GNU ("ustar  ") tar.
fn is_tar(buf: &[u8]) -> u8 {
    let Some(header) = buf.get(..512) else {
        return 0;
    };
    let Some(recsum) = tar_octal(&header[148..156]) else {
        return 0;
    };
    let sum: i64 = header.iter().map(|&b| i64::from(b)).sum::<i64>()
        - header[148..156].iter().map(|&b| i64::from(b)).sum::<i64>()
        + 8 * i64::from(b' ');
    if sum != recsum {
        return 0;
    }
    // strcmp against "ustar  ": the field must hold exactly that then NUL
    if &header[257..265] == b"ustar  \0" {
        2
    } else {
        1
    }
}

/// ClamAV's tar `from_oct`: skips leading whitespace, reads octal digits, must
/// end on whitespace or NUL. `None` for an all-blank or malformed field.
fn tar_octal(field: &[u8]) -> Option<i64> {
    let mut i = 0;
    let mut digs = field.len();
    while i < field.len() && is_c_space(field[i]) {
        i += 1;
        digs = digs.checked_sub(1)?;
        if digs == 0 {
            return None;
        }
    }
    let mut value: i64 = 0;
    while digs > 0 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
        value = (value << 3) | i64::from(field[i] - b'0');
        i += 1;
        digs -= 1;
    }
    if digs > 0 && i < field.len() && field[i] != 0 && !is_c_space(field[i]) {
        return None;
    }
    Some(value)
}

/// C `isspace` in the C locale.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// ClamAV's `cli_utf16toascii`: every byte pair (lo, hi) becomes `(hi << 4) + lo`.
pub(crate) fn utf16_to_ascii(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() < 2 {
        return None;
    }
    Some(
        buf.chunks_exact(2)
            .map(|p| (p[1] << 4).wrapping_add(p[0]))
            .collect(),
    )
}

/// The byte-order-mark path of ClamAV's type detection: UTF-16 and UCS-4 text
/// announced by a BOM (or by `<?` in that encoding) is converted exactly and
/// folded to one byte per character (`(high << 4) + low` of each UTF-16BE
/// unit, zero results dropped). `None` when no such encoding is announced.
fn bom_to_ascii(buf: &[u8]) -> Option<Vec<u8>> {
    #[derive(Clone, Copy)]
    enum Enc {
        U16Be,
        U16Le,
        U32Be,
        U32Le,
    }
    if buf.len() < 4 {
        return None;
    }
    let enc = match (buf[0], buf[1], buf[2], buf[3]) {
        (0, 0, 0xfe, 0xff) | (0, 0, 0, 0x3c) => Enc::U32Be,
        // "UCS4" / "UCS-4" in iconv are big endian as well
        (0, 0, 0xff, 0xfe) | (0, 0, 0x3c, 0) | (0, 0x3c, 0, 0) | (0xfe, 0xff, 0, 0) => Enc::U32Be,
        (0, 0x3c, 0, 0x3f) => Enc::U16Be,
        (0xff, 0xfe, 0, 0) | (0x3c, 0, 0, 0) => Enc::U32Le,
        (0xff, 0xfe, _, _) | (0x3c, 0, 0x3f, 0) => Enc::U16Le,
        (0xfe, 0xff, _, _) => Enc::U16Be,
        _ => return None,
    };
    let mut units: Vec<u16> = Vec::with_capacity(buf.len());
    match enc {
        Enc::U16Be | Enc::U16Le => {
            for p in buf.chunks_exact(2) {
                let u = match enc {
                    Enc::U16Be => u16::from(p[0]) << 8 | u16::from(p[1]),
                    _ => u16::from(p[1]) << 8 | u16::from(p[0]),
                };
                units.push(u);
            }
        }
        Enc::U32Be | Enc::U32Le => {
            for p in buf.chunks_exact(4) {
                let cp = match enc {
                    Enc::U32Be => u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
                    _ => u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
                };
                match cp {
                    0..=0xffff => units.push(cp as u16),
                    0x1_0000..=0x10_ffff => {
                        let v = cp - 0x1_0000;
                        units.push(0xd800 | (v >> 10) as u16);
                        units.push(0xdc00 | (v & 0x3ff) as u16);
                    }
                    // iconv stops at an invalid character
                    _ => break,
                }
            }
        }
    }
    Some(
        units
            .into_iter()
            .map(|u| (((u >> 8) as u8) << 4).wrapping_add(u as u8))
            .filter(|&c| c != 0)
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Pattern ("on the fly") type detection.

/// One element of a pattern part.
#[derive(Debug, Clone, PartialEq, Eq)]
enum El {
    Byte(u8),
    /// `??`, or a half-known byte `x?` / `?x`.
    Masked {
        mask: u8,
        value: u8,
    },
    /// `(aa|bb|...)`.
    Alt(Vec<u8>),
}

impl El {
    fn matches(&self, b: u8) -> bool {
        match self {
            El::Byte(v) => b == *v,
            El::Masked { mask, value } => b & mask == *value,
            El::Alt(set) => set.contains(&b),
        }
    }
}

/// A fixed-length run of elements, found via its longest literal run.
#[derive(Debug)]
struct Part {
    els: Vec<El>,
    /// Position of the longest run of plain bytes inside the part, and a finder for it.
    anchor_at: usize,
    anchor: memmem::Finder<'static>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigOffset {
    Any,
    /// Start within `min..=max`.
    Abs {
        min: usize,
        max: usize,
    },
    /// Start exactly `n` bytes before the end of the file (only when the file
    /// size is known, as in `scanraw`).
    EofMinus(usize),
}

#[derive(Debug)]
struct FtSig {
    offset: SigOffset,
    parts: Vec<Part>,
    /// Allowed gap before part `i + 1`: (min, max), 0 meaning unbounded.
    gaps: Vec<(usize, usize)>,
    ty: Cli,
}

fn ft_sigs() -> &'static [FtSig] {
    static SIGS: OnceLock<Vec<FtSig>> = OnceLock::new();
    SIGS.get_or_init(|| {
        FT_SIGS
            .iter()
            .filter_map(|&(off, hex, ty)| {
                let sig = parse_ft_sig(off, hex, ty);
                debug_assert!(sig.is_some(), "bad built-in pattern {hex}");
                sig
            })
            .collect()
    })
}

fn parse_ft_sig(off: &str, hex: &str, ty: Cli) -> Option<FtSig> {
    let offset = if off == "*" {
        SigOffset::Any
    } else if let Some(n) = off.strip_prefix("EOF-") {
        SigOffset::EofMinus(n.parse().ok()?)
    } else if let Some((a, b)) = off.split_once(',') {
        let min: usize = a.parse().ok()?;
        SigOffset::Abs {
            min,
            max: min.checked_add(b.parse().ok()?)?,
        }
    } else {
        let n = off.parse().ok()?;
        SigOffset::Abs { min: n, max: n }
    };
    // `{n}` with 0 < n < 128 is plain wildcards, as long as it is the first
    // brace of the (rewritten) pattern; every other brace and `*` splits parts.
    let mut hex = hex.to_string();
    while let Some(open) = hex.find('{') {
        let close = open + hex[open..].find('}')?;
        match hex[open + 1..close].parse::<usize>() {
            Ok(n) if n > 0 && n < 128 => {
                hex = format!("{}{}{}", &hex[..open], "??".repeat(n), &hex[close + 1..]);
            }
            _ => break,
        }
    }
    let mut parts = Vec::new();
    let mut gaps = Vec::new();
    let mut rest = hex.as_str();
    loop {
        let cut = rest.find(['{', '*']);
        let (body, tail) = match cut {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        parts.push(parse_part(body)?);
        if tail.is_empty() {
            break;
        }
        if let Some(t) = tail.strip_prefix('*') {
            gaps.push((0, 0));
            rest = t;
        } else {
            let close = tail.find('}')?;
            let range = &tail[1..close];
            let gap = match range.split_once('-') {
                None => {
                    let n = range.parse().ok()?;
                    (n, n)
                }
                Some((a, b)) => (
                    if a.is_empty() { 0 } else { a.parse().ok()? },
                    if b.is_empty() { 0 } else { b.parse().ok()? },
                ),
            };
            gaps.push(gap);
            rest = &tail[close + 1..];
        }
    }
    Some(FtSig {
        offset,
        parts,
        gaps,
        ty,
    })
}

fn parse_part(s: &str) -> Option<Part> {
    let b = s.as_bytes();
    let nib = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let mut els = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'(' {
            let close = i + s[i..].find(')')?;
            let set = s[i + 1..close]
                .split('|')
                .map(|h| u8::from_str_radix(h, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            els.push(El::Alt(set));
            i = close + 1;
            continue;
        }
        let (h, l) = (*b.get(i)?, *b.get(i + 1)?);
        els.push(match (h, l) {
            (b'?', b'?') => El::Masked { mask: 0, value: 0 },
            (b'?', l) => El::Masked {
                mask: 0x0f,
                value: nib(l)?,
            },
            (h, b'?') => El::Masked {
                mask: 0xf0,
                value: nib(h)? << 4,
            },
            (h, l) => El::Byte(nib(h)? << 4 | nib(l)?),
        });
        i += 2;
    }
    // longest run of plain bytes
    let (mut best_at, mut best_len, mut run_at, mut run_len) = (0, 0, 0, 0);
    for (k, e) in els.iter().enumerate() {
        if matches!(e, El::Byte(_)) {
            if run_len == 0 {
                run_at = k;
            }
            run_len += 1;
            if run_len > best_len {
                best_at = run_at;
                best_len = run_len;
            }
        } else {
            run_len = 0;
        }
    }
    if best_len == 0 {
        return None;
    }
    let literal: Vec<u8> = els[best_at..best_at + best_len]
        .iter()
        .map(|e| if let El::Byte(v) = e { *v } else { 0 })
        .collect();
    Some(Part {
        els,
        anchor_at: best_at,
        anchor: memmem::Finder::new(&literal).into_owned(),
    })
}

impl Part {
    fn len(&self) -> usize {
        self.els.len()
    }

    /// Start of the next occurrence starting at or after `from` (overlapping
    /// occurrences are all found).
    fn next_match(&self, data: &[u8], from: usize) -> Option<usize> {
        let mut search = from.checked_add(self.anchor_at)?;
        while search <= data.len() {
            let hit = search + self.anchor.find(data.get(search..)?)?;
            let start = hit - self.anchor_at;
            if let Some(window) = data.get(start..start + self.len()) {
                if self.els.iter().zip(window).all(|(e, &b)| e.matches(b)) {
                    return Some(start);
                }
            } else {
                return None;
            }
            search = hit + 1;
        }
        None
    }
}

/// ClamAV's per-part match memory: the first hit and a ring of the 8 latest.
#[derive(Clone, Copy, Default)]
struct Track {
    slots: [Option<usize>; 9],
    cursor: usize,
}

impl Track {
    fn record(&mut self, end: usize) {
        if self.cursor == 9 {
            self.cursor = 1;
        }
        self.cursor += 1;
        self.slots[self.cursor - 1] = Some(end);
    }

    fn accepts(&self, start: usize, (min, max): (usize, usize)) -> bool {
        self.slots.iter().map_while(|s| *s).any(|end| {
            start >= end && (max == 0 || start - end <= max) && (min == 0 || start - end >= min)
        })
    }
}

impl FtSig {
    fn start_ok(&self, start: usize, file_size: Option<usize>) -> bool {
        match self.offset {
            SigOffset::Any => true,
            SigOffset::Abs { min, max } => (min..=max).contains(&start),
            SigOffset::EofMinus(n) => file_size.and_then(|s| s.checked_sub(n)) == Some(start),
        }
    }
}

/// ClamAV's scan window.
const SCANBUFF: usize = 128 * 1024;

/// Runs the pattern table over `data` the way ClamAV's matcher does in
/// file-type mode: every part match of every pattern is processed in order of
/// its end offset; a completed pattern replaces the current type when its code
/// is higher or it is an executable/SFX type, and only a *replacing* match
/// clears the pattern's memory of partial matches. `file_size` resolves
/// `EOF-n` offsets (unknown while typing the prefix). With `window`, the type
/// starts afresh in each window of that many bytes (by match end) and the
/// highest window result is returned, as `cli_scan_fmap` does.
///
/// Time linear in the number of pattern occurrences; memory bounded by the
/// number of pattern parts.
fn ft_scan(data: &[u8], file_size: Option<usize>, window: Option<usize>) -> Cli {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let sigs = ft_sigs();
    // pending match of each (signature, part): (end, signature, part, start)
    let mut heap: BinaryHeap<Reverse<(usize, usize, usize, usize)>> = BinaryHeap::new();
    for (i, sig) in sigs.iter().enumerate() {
        for (k, part) in sig.parts.iter().enumerate() {
            if let Some(s) = part.next_match(data, 0) {
                heap.push(Reverse((s + part.len(), i, k, s)));
            }
        }
    }
    let mut tracks: Vec<Vec<Track>> = sigs
        .iter()
        .map(|s| vec![Track::default(); s.parts.len() - 1])
        .collect();
    let mut ty = Cli::Any;
    let mut found = Cli::Any;
    let mut current_window = 0usize;
    while let Some(Reverse((end, i, k, start))) = heap.pop() {
        let sig = &sigs[i];
        let part = &sig.parts[k];
        if let Some(s) = part.next_match(data, start + 1) {
            heap.push(Reverse((s + part.len(), i, k, s)));
        }
        if let Some(w) = window {
            let wi = end.saturating_sub(1) / w;
            if wi != current_window {
                found = found.max(ty);
                ty = Cli::Any;
                current_window = wi;
            }
        }
        let n = sig.parts.len();
        let complete = if k == 0 {
            if !sig.start_ok(start, file_size) {
                continue;
            }
            if n > 1 {
                tracks[i][0].record(end);
            }
            n == 1
        } else if tracks[i][k - 1].accepts(start, sig.gaps[k - 1]) {
            if k + 1 < n {
                tracks[i][k].record(end);
                false
            } else {
                true
            }
        } else {
            false
        };
        if complete {
            if sig.ty == Cli::Ignored {
                return Cli::Ignored;
            }
            if sig.ty > ty || sig.ty.overrides() {
                ty = sig.ty;
                tracks[i].iter_mut().for_each(|t| *t = Track::default());
            }
        }
    }
    found.max(ty)
}

/// Pattern typing of the typing prefix (relative offsets do not resolve).
fn ft_scan_buffer(buf: &[u8]) -> Cli {
    ft_scan(buf, None, None)
}

/// The type `scanraw` finds by running the pattern table over the whole file
/// (ClamAV keeps the highest result of its 128 KiB windows). ClamAV uses it to
/// handle an ASCII text file (or a GIF) as HTML, or an ASCII text file as
/// mail, when that is the result. Linear in `data.len()`, bounded memory.
pub(crate) fn raw_scan_type(data: &[u8]) -> Cli {
    ft_scan(data, Some(data.len()), Some(SCANBUFF))
}

/// Magic entries compared at a fixed offset, in the order they are tried.
const MAGIC: &[(usize, &[u8], Cli)] = &[
    (0, b"\x41\x4c\x5a\x01", Cli::Alz), // ALZ
    (0, b"\x50\x01\x0d\x0a", Cli::PythonCompiled), // PyPy 3.9 byte-compiled (.pyc)
    (0, b"\x00\x01\x0d\x0a", Cli::PythonCompiled), // PyPy 3.8 byte-compiled (.pyc)
    (0, b"\xf0\x0d\x0d\x0a", Cli::PythonCompiled), // PyPy 3.7 byte-compiled (.pyc)
    (0, b"\x3f\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.7 byte-compiled (.pyc)
    (0, b"\x3e\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.7 byte-compiled (.pyc)
    (0, b"\x33\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x32\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x31\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x30\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x2f\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x2d\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x2c\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x2b\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x2a\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x21\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x20\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.6 byte-compiled (.pyc)
    (0, b"\x17\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.5.2+ byte-compiled (.pyc)
    (0, b"\x16\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.5.1- byte-compiled (.pyc)
    (0, b"\x0c\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.5.1- byte-compiled (.pyc)
    (0, b"\x02\x0d\x0d\x0a", Cli::PythonCompiled), // Python 3.5.1- byte-compiled (.pyc)
    (0, b"\xf8\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.5.1- byte-compiled (.pyc)
    (0, b"\xee\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.4 byte-compiled (.pyc)
    (0, b"\xe4\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.4 byte-compiled (.pyc)
    (0, b"\xda\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.4 byte-compiled (.pyc)
    (0, b"\xd0\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.4 byte-compiled (.pyc)
    (0, b"\xc6\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.4 byte-compiled (.pyc)
    (0, b"\xbc\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.4 byte-compiled (.pyc)
    (0, b"\xb2\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.4 byte-compiled (.pyc)
    (0, b"\x9e\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.3 byte-compiled (.pyc)
    (0, b"\x94\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.3 byte-compiled (.pyc)
    (0, b"\x8a\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.3 byte-compiled (.pyc)
    (0, b"\x80\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.3 byte-compiled (.pyc)
    (0, b"\x76\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.3 byte-compiled (.pyc)
    (0, b"\x6c\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.2 byte-compiled (.pyc)
    (0, b"\x62\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.2 byte-compiled (.pyc)
    (0, b"\x58\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.2 byte-compiled (.pyc)
    (0, b"\x4f\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.1 byte-compiled (.pyc)
    (0, b"\x45\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.1 byte-compiled (.pyc)
    (0, b"\x3b\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\x27\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\x1f\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\x1d\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\x13\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\x09\x0c\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xff\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xf5\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xf4\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xea\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xe0\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xd6\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xcc\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xc2\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\xb8\x0b\x0d\x0a", Cli::PythonCompiled), // Python 3.0 byte-compiled (.pyc)
    (0, b"\x0a\xf3\x0d\x0a", Cli::PythonCompiled), // PyPy 2.7 byte-compiled (.pyc)
    (0, b"\x04\xf3\x0d\x0a", Cli::PythonCompiled), // Python 2.7 byte-compiled (.pyc)
    (0, b"\x03\xf3\x0d\x0a", Cli::PythonCompiled), // Python 2.7 byte-compiled (.pyc)
    (0, b"\xf9\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.7 byte-compiled (.pyc)
    (0, b"\xef\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.7 byte-compiled (.pyc)
    (0, b"\xe5\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.7 byte-compiled (.pyc)
    (0, b"\xdb\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.7 byte-compiled (.pyc)
    (0, b"\xd2\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.6 byte-compiled (.pyc)
    (0, b"\xd1\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.6 byte-compiled (.pyc)
    (0, b"\xc7\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.6 byte-compiled (.pyc)
    (0, b"\xb4\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\xb3\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\xa9\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\x9f\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\x95\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\x8c\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\x8b\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\x81\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\x77\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.5 byte-compiled (.pyc)
    (0, b"\x6e\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.4 byte-compiled (.pyc)
    (0, b"\x6d\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.4 byte-compiled (.pyc)
    (0, b"\x63\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.4 byte-compiled (.pyc)
    (0, b"\x59\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.4 byte-compiled (.pyc)
    (0, b"\x45\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.3 byte-compiled (.pyc)
    (0, b"\x3c\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.3 byte-compiled (.pyc)
    (0, b"\x3b\xf2\x0d\x0a", Cli::PythonCompiled), // Python 2.3 byte-compiled (.pyc)
    (0, b"\x2e\xed\x0d\x0a", Cli::PythonCompiled), // Python 2.2 byte-compiled (.pyc)
    (0, b"\x2d\xed\x0d\x0a", Cli::PythonCompiled), // Python 2.2 byte-compiled (.pyc)
    (0, b"\x2b\xeb\x0d\x0a", Cli::PythonCompiled), // Python 2.1 byte-compiled (.pyc)
    (0, b"\x2a\xeb\x0d\x0a", Cli::PythonCompiled), // Python 2.1 byte-compiled (.pyc)
    (0, b"\x88\xc6\x0d\x0a", Cli::PythonCompiled), // Python 2.0 byte-compiled (.pyc)
    (0, b"\x87\xc6\x0d\x0a", Cli::PythonCompiled), // Python 2.0 byte-compiled (.pyc)
    (0, b"\xfd\xc4\x0d\x0a", Cli::PythonCompiled), // Python 1.6 byte-compiled (.pyc)
    (0, b"\xfc\xc4\x0d\x0a", Cli::PythonCompiled), // Python 1.6 byte-compiled (.pyc)
    (0, b"\x99\x4e\x0d\x0a", Cli::PythonCompiled), // Python 1.5 byte-compiled (.pyc)
    (0, b"\x04\x17\x0d\x0a", Cli::PythonCompiled), // Python 1.4 byte-compiled (.pyc)
    (0, b"\x89\x2e\x0d\x0a", Cli::PythonCompiled), // Python 1.3 byte-compiled (.pyc)
    (0, b"\x03\x09\x99\x00", Cli::PythonCompiled), // Python 1.1/1.2 byte-compiled (.pyc)
    (0, b"\x02\x09\x99\x00", Cli::PythonCompiled), // Python 1.0 byte-compiled (.pyc)
    (0, b"\xe4\x52\x5c\x7b\x8c\xd8\xa7\x4d\xae\xb1\x53\x78\xd0\x29\x96\xd3", Cli::Onenote), // Microsoft OneNote Document
    (0, b"\x5a\x57\x53", Cli::Swf), // SWF (LZMA compressed)
    (0, b"\x7b\x0a\x20\x20\x22\x4d\x61\x67\x69\x63\x22\x3a\x22\x43\x4c\x41\x4d\x4a\x53\x4f\x4e\x76\x30\x22", Cli::Internal), // Internal properties
    (0, b"\x4d\x4d", Cli::Tiff), // TIFF Big Endian
    (0, b"\x49\x49\x2a\x00", Cli::Tiff), // TIFF Little Endian
    (0, b"\xff\xd8\xff", Cli::Jpeg), // JPEG
    (0, b"\x47\x49\x46", Cli::Gif), // GIF
    (0, b"\x89\x50\x4e\x47", Cli::Png), // PNG
    (0, b"\x45\x47\x47\x41", Cli::Egg), // Egg Archive
    (0, b"\x43\x57\x53", Cli::Swf), // SWF (zlib compressed)
    (0, b"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46", Cli::Lnk), // Microsoft Windows Shortcut File
    (0, b"\x25\x21\x50\x53\x2d\x41\x64\x6f\x62\x65\x2d", Cli::Ps), // PostScript
    (0, b"\x7b\x5c\x72\x74", Cli::Rtf), // RTF
    (0, b"\x48\x57\x50\x20\x44\x6f\x63\x75\x6d\x65\x6e\x74\x20\x46\x69\x6c\x65\x20\x56\x33\x2e\x30\x30\x20\x1a\x01\x02\x03\x04\x05", Cli::Hwp3), // HWP3 Document
    (4, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Cli::Hwpole2), // HWP embedded OLE2
    (512, b"\x45\x46\x49\x20\x50\x41\x52\x54", Cli::Gpt), // Disk Image - GUID Partition Table
    (0, b"\xfd\x37\x7a\x58\x5a\x00", Cli::Xz), // XZ container file
    (0, b"\x78\x61\x72\x21", Cli::Xar), // XAR container file
    (0, b"\x00\x00\x01\xba", Cli::BinaryData), // MPEG sys stream
    (0, b"\x00\x00\x01\xb3", Cli::BinaryData), // MPEG video stream
    (0, b"\x00\x00\x00\x0c\x6a\x50\x20\x20\x0d\x0a\x87\x0a", Cli::Graphics), // JPEG2000
    (0, b"\x5b\x61\x6c\x69\x61\x73\x65\x73\x5d", Cli::PosixTar), // TAR-POSIX-CVE-2012-1419
    (0, b"\x4d\x53\x43\x46\x00\x00\x00\x00", Cli::Mscab), // MS CAB
    (0, b"\x46\x57\x53", Cli::Swf), // SWF (uncompressed)
    (0, b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7", Cli::Ignored), // SQLite journal
    (0, b"\x53\x51\x4c\x69\x74\x65\x20\x66\x6f\x72\x6d\x61\x74\x20\x33\x00", Cli::Ignored), // SQLite database
    (0, b"\x37\x7f\x06\x83\x00\x2d\xe2\x18", Cli::Ignored), // SQLite WAL
    (0, b"\x37\x7f\x06\x82\x00\x2d\xe2\x18", Cli::Ignored), // SQLite WAL
    (0, b"\x53\x59\x4d\x43\x01\x00", Cli::Ignored), // SYM DATFILE
    (0, b"\x25\x50\x44\x46\x2d", Cli::Pdf), // PDF document
    (0, b"\xc7\x71", Cli::CpioOld), // CPIO OLD BINARY LE
    (0, b"\x71\xc7", Cli::CpioOld), // CPIO OLD BINARY BE
    (0, b"\x30\x37\x30\x37\x30\x37", Cli::CpioOdc), // CPIO ODC
    (0, b"\x30\x37\x30\x37\x30\x32", Cli::CpioCrc), // CPIO CRC
    (0, b"\x30\x37\x30\x37\x30\x31", Cli::CpioNewc), // CPIO NEWC
    (0, b"\x52\x65\x63\x65\x69\x76\x65\x64\x2d\x53\x50\x46\x3a\x20", Cli::Mail), // Mail file
    (0, b"\x37\x7a\xbc\xaf\x27\x1c", Cli::SevenZ), // 7zip
    (0, b"\xfe\xed\xfa\xcf", Cli::Macho), // Mach-O BE 64-bit
    (0, b"\xfe\xed\xfa\xce", Cli::Macho), // Mach-O BE
    (0, b"\xcf\xfa\xed\xfe", Cli::Macho), // Mach-O LE 64-bit
    (0, b"\xce\xfa\xed\xfe", Cli::Macho), // Mach-O LE
    (0, b"\x5b\x61\x6c\x69\x61\x73\x65\x73\x5d", Cli::Script), // mirc ini
    (257, b"\x75\x73\x74\x61\x72", Cli::PosixTar), // TAR-POSIX
    (0, b"\x53\x49\x50\x2d\x48\x49\x54\x20\x28\x53\x49\x50\x2f\x48", Cli::Ignored), // SIP log
    (0, b"\xff\xfb\x90", Cli::Ignored), // MP3
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Cli::Msole2), // OLE2 container
    (0, b"\xb6\xb9\xac\xae\xfe\xff\xff\xff", Cli::Cryptff), // CryptFF
    (0, b"\x7f\x45\x4c\x46", Cli::Elf), // ELF
    (0, b"\x78\x9f\x3e\x22", Cli::Tnef), // TNEF
    (0, b"\x76\x3a\x0d\x0a\x52\x65\x63\x65\x69\x76\x65\x64\x3a\x20", Cli::Mail), // VPOP3 Mail (DOS)
    (0, b"\x76\x3a\x0a\x52\x65\x63\x65\x69\x76\x65\x64\x3a\x20", Cli::Mail), // VPOP3 Mail (UNIX)
    (0, b"\x62\x65\x67\x69\x6e\x20", Cli::Uuencoded), // UUencoded
    (0, b"\x60\xea", Cli::Arj), // ARJ
    (0, b"\x58\x2d\x55\x49\x44\x4c\x3a\x20", Cli::Mail), // Mail
    (0, b"\x58\x2d\x53\x79\x6d\x61\x6e\x74\x65\x63\x2d", Cli::Mail), // Symantec
    (0, b"\x58\x2d\x53\x69\x65\x76\x65\x3a\x20", Cli::Mail), // Mail
    (0, b"\x58\x2d\x52\x65\x61\x6c\x2d\x54\x6f\x3a\x20", Cli::Mail), // Mail
    (0, b"\x58\x2d\x4f\x72\x69\x67\x69\x6e\x61\x6c\x2d\x54\x6f\x3a\x20", Cli::Mail), // Mail
    (0, b"\x58\x2d\x45\x6e\x76\x65\x6c\x6f\x70\x65\x2d\x46\x72\x6f\x6d\x3a\x20", Cli::Mail), // Mail
    (0, b"\x58\x2d\x45\x56\x53", Cli::Mail), // EVS mail
    (0, b"\x58\x2d\x41\x70\x70\x61\x72\x65\x6e\x74\x6c\x79\x2d\x54\x6f\x3a\x20", Cli::Mail), // Mail
    (0, b"\x54\x6f\x3a\x20", Cli::Mail), // Mail
    (0, b"\x53\x75\x62\x6a\x65\x63\x74\x3a\x20", Cli::Mail), // Mail
    (0, b"\x53\x5a\x44\x44", Cli::Msszdd), // compress.exed
    (0, b"\x52\x65\x74\x75\x72\x6e\x2d\x70\x61\x74\x68\x3a\x20", Cli::Mail), // Maildir
    (0, b"\x52\x65\x74\x75\x72\x6e\x2d\x50\x61\x74\x68\x3a\x20", Cli::Mail), // Maildir
    (0, b"\x52\x65\x63\x65\x69\x76\x65\x64\x3a\x20", Cli::Mail), // Raw mail
    (0, b"\x52\x61\x72\x21", Cli::Rar), // RAR
    (0, b"\x52\x49\x46\x58", Cli::Riff), // RIFX
    (0, b"\x52\x49\x46\x46", Cli::Riff), // RIFF
    (0, b"\x50\x4b\x30\x30\x50\x4b\x03\x04", Cli::Zip), // ZIP
    (0, b"\x50\x4b\x03\x04", Cli::Zip), // ZIP
    (0, b"\x4f\x67\x67\x53", Cli::Ignored), // Ogg Stream
    (0, b"\x4d\x65\x73\x73\x61\x67\x65\x2d\x49\x64\x3a\x20", Cli::Mail), // Mail
    (0, b"\x4d\x65\x73\x73\x61\x67\x65\x2d\x49\x44\x3a\x20", Cli::Mail), // Mail
    (0, b"\x4d\x5a", Cli::Msexe), // MS-EXE/DLL
    (0, b"\x49\x54\x53\x46", Cli::Mschm), // MS CHM
    (0, b"\x49\x44\x33", Cli::Ignored), // MP3
    (0, b"\x48\x69\x2e\x20\x54\x68\x69\x73\x20\x69\x73\x20\x74\x68\x65\x20\x71\x6d\x61\x69\x6c\x2d\x73\x65\x6e\x64", Cli::Mail), // Qmail bounce
    (0, b"\x46\x72\x6f\x6d\x3a\x20", Cli::Mail), // Exim mail
    (0, b"\x46\x72\x6f\x6d\x20", Cli::Mail), // MBox
    (0, b"\x46\x6f\x72\x3a\x20", Cli::Mail), // Eserv mail
    (0, b"\x45\x6e\x76\x65\x6c\x6f\x70\x65\x2d\x74\x6f\x3a\x20", Cli::Mail), // Mail
    (0, b"\x44\x65\x6c\x69\x76\x65\x72\x79\x2d\x64\x61\x74\x65\x3a\x20", Cli::Mail), // Mail
    (0, b"\x44\x65\x6c\x69\x76\x65\x72\x65\x64\x2d\x54\x6f\x3a\x20", Cli::Mail), // Mail
    (0, b"\x44\x61\x74\x65\x3a\x20", Cli::Mail), // Mail
    (0, b"\x42\x5a\x68", Cli::Bz), // BZip
    (0, b"\x42\x4d", Cli::Graphics), // BMP
    (0, b"\x3e\x46\x72\x6f\x6d\x20", Cli::Mail), // Mail
    (0, b"\x2e\x52\x4d\x46", Cli::Ignored), // Real Media File
    (0, b"\x28\x54\x68\x69\x73\x20\x66\x69\x6c\x65\x20\x6d\x75\x73\x74\x20\x62\x65\x20\x63\x6f\x6e\x76\x65\x72\x74\x65\x64\x20\x77\x69\x74\x68\x20\x42\x69\x6e\x48\x65\x78\x20\x34\x2e\x30\x29", Cli::Binhex), // BinHex
    (0, b"\x23\x40\x7e\x5e", Cli::Screnc), // SCRENC
    (0, b"\x1f\x8b", Cli::Gz), // GZip
];

/// Pattern entries matched anywhere (subject to their offset), in ClamAV body-signature syntax.
const FT_SIGS: &[(&str, &str, Cli)] = &[
    ("*", "3c4120*(68|48)(72|52)4546", Cli::Html), // HTML data
    ("*", "3c4120*(68|48)(72|52)6566", Cli::Html), // HTML data
    ("*", "3c484541443e", Cli::Html), // HTML data
    ("*", "3c48544d4c3e", Cli::Html), // HTML data
    ("*", "3c486561643e", Cli::Html), // HTML data
    ("*", "3c48746d6c3e", Cli::Html), // HTML data
    ("*", "3c494652414d45", Cli::Html), // HTML data
    ("*", "3c494d47", Cli::Html), // HTML data
    ("*", "3c496d67", Cli::Html), // HTML data
    ("*", "3c4f424a454354", Cli::Html), // HTML data
    ("*", "3c4f626a656374", Cli::Html), // HTML data
    ("*", "3c534352495054", Cli::Html), // HTML data
    ("*", "3c536372697074", Cli::Html), // HTML data
    ("*", "3c5441424c45", Cli::Html), // HTML data
    ("*", "3c6120*(68|48)(72|52)4546", Cli::Html), // HTML data
    ("*", "3c6120*(68|48)(72|52)6566", Cli::Html), // HTML data
    ("*", "3c686561643e", Cli::Html), // HTML data
    ("*", "3c68746d6c3e", Cli::Html), // HTML data
    ("*", "3c696672616d65", Cli::Html), // HTML data
    ("*", "3c696d67", Cli::Html), // HTML data
    ("*", "3c6f626a656374", Cli::Html), // HTML data
    ("*", "3c736372697074", Cli::Html), // HTML data
    ("*", "3c7461626c65", Cli::Html), // HTML data
    ("*", "4d5a{60-300}50450000", Cli::Msexe), // PE
    ("*", "504b0304", Cli::Zipsfx), // ZIP-SFX
    ("*", "526172211a0700", Cli::Rarsfx), // RAR-SFX
    ("*", "60ea{7}0002", Cli::Arjsfx), // ARJ-SFX
    ("*", "60ea{7}0102", Cli::Arjsfx), // ARJ-SFX
    ("*", "60ea{7}0202", Cli::Arjsfx), // ARJ-SFX
    ("*", "a3484bbe986c4aa9994c530a86d6487d41553321454130(35|36)", Cli::Autoit), // AUTOIT
    ("*", "efbeadde4e756c6c736f6674496e7374", Cli::Nulsft), // NSIS
    ("0", "3c2540204c414e4755414745203d", Cli::Html), // HTML data
    ("0,1024", "0a(46|66)726f6d3a20{-1024}0a(4d|6d)(49|69)(4d|6d)(45|65)2d(56|76)657273696f6e3a20", Cli::Mail), // Mail file
    ("0,1024", "0a(46|66)726f6d3a20{-2048}0a(43|63)6f6e74656e742d(54|74)7970653a20", Cli::Mail), // Mail file
    ("0,1024", "0a(4d|6d)(49|69)(4d|6d)(45|65)2d(56|76)657273696f6e3a20{-2048}0a(43|63)6f6e74656e742d(54|74)7970653a20", Cli::Mail), // Mail file
    ("0,1024", "0a(4d|6d)6573736167652d(49|69)643a20{-1024}0a(43|63)6f6e74656e742d(54|74)7970653a20", Cli::Mail), // Mail file
    ("0,2048", "0a(52|72)656365697665643a20{-2048}0a(43|63)6f6e74656e742d(54|74)7970653a20", Cli::Mail), // Mail file
    ("*", "496e7374616c6c536869656c6400{292}0600000000000000????????????????0000000001", Cli::IshieldMsi), // ISHIELD-MSI
    ("*", "255044462d??2e", Cli::Pdf), // PDF
    ("*", "257064662d??2e", Cli::Pdf), // PDF
    ("0,128", "2f5247420a49440affffffffffffffffffffffffffffffffffffffffffffffff", Cli::Ignored), // PDF image
    ("*", "4d53434600000000", Cli::Cabsfx), // CAB-SFX
    ("*", "014344303031{2043-2443}4344303031", Cli::Iso9660), // ISO9660
    ("0,32768", "004245413031", Cli::Udf), // UDF
    ("8,12", "19040010", Cli::Sis), // SIS
    ("0,1024", "44656c6976657265642d546f3a{-256}52656365697665643a", Cli::Mail), // Mail file
    ("0", "cafebabe0000000?", Cli::MachoUnibin), // Universal Binary
    ("0", "cafebabe0000001?", Cli::MachoUnibin), // Universal Binary
    ("0", "cafebabe0000002?", Cli::Java), // Java class file
    ("0", "cafebabe0000003?", Cli::Java), // Java class file
    ("EOF-512", "6b6f6c79", Cli::Dmg), // DMG container file
    ("0", "3c3f786d6c2076657273696f6e3d22312e3022{0-1024}3c576f726b626f6f6b", Cli::XmlXl), // Microsoft Excel 2003 XML Document
    ("0", "3c3f786d6c2076657273696f6e3d22312e3022{0-1024}3c776f7264446f63756d656e74", Cli::XmlWord), // Microsoft Word 2003 XML Document
    ("0", "3c3f786d6c2076657273696f6e3d22312e3022{0-1024}3c??3a576f726b626f6f6b", Cli::XmlXl), // Microsoft Excel 2003 XML Document
    ("0", "3c3f786d6c2076657273696f6e3d22312e3022{0-1024}3c??3a776f7264446f63756d656e74", Cli::XmlWord), // Microsoft Word 2003 XML Document
    ("*", "3c7864703a786470", Cli::Xdp), // Adobe XDP - Embedded PDF
    ("0", "4552{510}504d0000", Cli::Apm), // Disk Image - Apple Partition Map
    ("510", "55aa", Cli::Mbr), // Disk Image - Master Boot Record
    ("0", "efbbbf3c3f786d6c2076657273696f6e3d22312e3022*3c4857504d4c", Cli::XmlHwp), // HWPML Document
    ("0", "(4d|6d)(49|69)(4d|6d)(45|65)2d(56|76)657273696f6e3a20{-1024}0a(43|63)6f6e74656e742d(54|74)7970653a20", Cli::Mhtml), // MHTML file
    ("*", "0a(4d|6d)(49|69)(4d|6d)(45|65)2d(56|76)657273696f6e3a20{-1024}0a(43|63)6f6e74656e742d(54|74)7970653a20", Cli::Mhtml), // MHTML file
    ("*", "377abcaf271c", Cli::SevenZSfx), // 7zip-SFX
    ("0", "3c3f786d6c2076657273696f6e3d22312e3022{0-1024}70726f6769643d22576f72642e446f63756d656e74223f3e", Cli::XmlWord), // Microsoft Word 2003 XML Document
    ("0", "??0d0d0a", Cli::PythonCompiled), // Python 3.7 or newer byte-compiled (.pyc)
    ("2", "2d6c68(30|31|32|33|34|35|36|37|64|78)2d", Cli::LhaLzh), // LHA or LZH archive
    ("2", "2d6c7a(73|34|35)2d", Cli::LhaLzh), // LHA archive using .LZS extension
    ("2", "2d706d302d", Cli::LhaLzh), // LHA archive using PMarc (.PMA) extension
];

#[cfg(test)]
mod tests {
    use super::*;

    fn name(data: &[u8]) -> String {
        clamav_type_name(data)
    }

    #[test]
    fn fixed_offset_magic() {
        let cases: &[(&[u8], FileType)] = &[
            (b"MZ\x90\x00rest of a dos header", FileType::Pe),
            (b"\x7fELF\x02\x01\x01\x00", FileType::Elf),
            (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01", FileType::MachO),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", FileType::Ole2),
            (b"%PDF-1.7\n%\xe2\xe3", FileType::Pdf),
            (b"GIF89a\x01\x00\x01\x00", FileType::Graphics),
            (b"\x89PNG\r\n\x1a\n\x00", FileType::Graphics),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF", FileType::Graphics),
            (b"FWS\x09\x00\x00\x00", FileType::Flash),
            (b"CWS\x09\x00\x00\x00", FileType::Flash),
            (b"PK\x03\x04\x14\x00\x00\x00", FileType::Zip),
            (b"\x1f\x8b\x08\x00\x00\x00", FileType::Gzip),
            (b"BZh91AY&SY", FileType::Bzip2),
            (b"\xfd7zXZ\x00\x00\x04", FileType::Xz),
            (b"7z\xbc\xaf\x27\x1c\x00\x04", FileType::SevenZ),
            (b"Rar!\x1a\x07\x00\xcf", FileType::Rar),
            (b"MSCF\x00\x00\x00\x00\x10\x00", FileType::Cab),
            (b"{\\rtf1\\ansi", FileType::Rtf),
            (b"From someone@example.com Sat", FileType::Mail),
            (b"Subject: hello there", FileType::Mail),
            (b"Received: from x by y", FileType::Mail),
        ];
        for (data, want) in cases {
            assert_eq!(detect(data), *want, "{:?}", String::from_utf8_lossy(data));
        }
    }

    /// Verified with clamscan: a typed target-5 signature fires on these text
    /// files and the target-7 one does not; nothing fires on the "MP3".
    #[test]
    fn surprising_magic_verified_with_clamscan() {
        assert_eq!(detect(b"BMW hello world payload\n"), FileType::Graphics);
        assert_eq!(detect(b"MM hello world payload\n"), FileType::Graphics);
        assert_eq!(name(b"MM hello world payload\n"), "CL_TYPE_TIFF");
        assert_eq!(detect(b"ID3 hello world payload\n"), FileType::Ignored);
        assert_eq!(detect(b"OggS\x00\x02"), FileType::Ignored);
        assert_eq!(detect(b"SQLite format 3\x00..."), FileType::Ignored);
    }

    #[test]
    fn text_detection() {
        assert_eq!(
            name(b"plain text\r\n\twith controls \x07\x1b and ISO \xe9\xff"),
            "CL_TYPE_TEXT_ASCII"
        );
        // UTF-8 falls in the ASCII class (every byte >= 0x80 is allowed)
        assert_eq!(
            name("caf\u{e9} \u{4e2d}\u{6587}\n".as_bytes()),
            "CL_TYPE_TEXT_ASCII"
        );
        // a NUL makes it binary unless it parses as UTF-16, which is lenient
        // (both verified with clamscan)
        assert_eq!(name(b"hello\x00world\x01\x02 x"), "CL_TYPE_TEXT_UTF16BE");
        assert_eq!(name(b"ab\x00\x00\x00\x01abcdef"), "CL_TYPE_BINARY_DATA");
        let le: Vec<u8> = "Plain text in UTF-16\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        // without a BOM ClamAV calls little-endian UTF-16 "UTF16BE"
        assert_eq!(name(&le), "CL_TYPE_TEXT_UTF16BE");
        let mut bom = vec![0xff, 0xfe];
        bom.extend_from_slice(&le);
        assert_eq!(name(&bom), "CL_TYPE_TEXT_UTF16LE");
        assert_eq!(detect(&bom), FileType::Text);
        assert_eq!(detect(b"Just some words.\n"), FileType::Text);
    }

    #[test]
    fn html_markers_in_the_first_kilobyte() {
        assert_eq!(detect(b"<html><body>x</body></html>"), FileType::Html);
        assert_eq!(
            detect(b"abc <html> MORE Text  <b>Bold</b>\n"),
            FileType::Html
        );
        assert_eq!(detect(b"x <SCRIPT y"), FileType::Html);
        assert_eq!(detect(b"x <img src=a>"), FileType::Html);
        // "<a " ... "href" may be far apart (verified with clamscan)
        let mut a = b"see <a ".to_vec();
        a.extend_from_slice(&[b'y'; 500]);
        a.extend_from_slice(b" HrEF=x> hello world payload\n");
        assert_eq!(detect(&a), FileType::Html);
        // <b>, <p>, <div> are not markers
        assert_eq!(detect(b"<p>Some <b>bold</b> text</p>\n"), FileType::Text);
        // a marker after byte 1024 does not make the file HTML...
        let mut late = vec![b'x'; 1100];
        late.extend_from_slice(b"\nSome <b>Bold</b> text <html> MORE Text\n");
        assert_eq!(detect(&late), FileType::Text);
        // ...but the whole-file scan sees it
        assert_eq!(raw_scan_type(&late), Cli::Html);
    }

    #[test]
    fn html_in_utf16() {
        let le: Vec<u8> = "<html><body>Hello</body></html>\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(detect(&le), FileType::HtmlUtf16);
        let mut be = vec![0xfe, 0xff];
        be.extend(
            "<html>Hello</html>\n"
                .encode_utf16()
                .flat_map(u16::to_be_bytes),
        );
        assert_eq!(detect(&be), FileType::Html);
        let mut u32be = vec![0, 0, 0xfe, 0xff];
        u32be.extend(
            "<html>Hello</html>\n"
                .chars()
                .flat_map(|c| (c as u32).to_be_bytes()),
        );
        assert_eq!(detect(&u32be), FileType::Html);
    }

    #[test]
    fn mail_and_mhtml_patterns() {
        assert_eq!(
            detect(b"hello\nFrom: x@y\nMIME-Version: 1.0\n\nBody TEXT\n"),
            FileType::Mail
        );
        // MIME-Version followed by Content-Type is MHTML (a higher type)
        assert_eq!(
            detect(b"hello\nFrom: x@y\nMIME-Version: 1.0\nContent-Type: text/plain\n\nBody\n"),
            FileType::Mhtml
        );
        // the Received pattern may start up to byte 2048: only the whole-file scan sees it
        let mut recv = vec![b'x'; 1100];
        recv.extend_from_slice(b"\nReceived: x\nContent-Type: text/plain\n\nBody TEXT\n");
        assert_eq!(detect(&recv), FileType::Text);
        assert_eq!(raw_scan_type(&recv), Cli::Mail);
        // a mail header pair starting after 1024 is not mail for the first pattern set
        let mut late = vec![b'x'; 1100];
        late.extend_from_slice(b"\nFrom: x\nContent-Type: text/plain\n\nBody\n");
        assert_eq!(raw_scan_type(&late), Cli::Any);
    }

    #[test]
    fn executables_and_java_by_pattern() {
        let mut pe = b"text then MZ".to_vec();
        pe.extend_from_slice(&[b'a'; 100]);
        pe.extend_from_slice(b"PE\x00\x00 more");
        assert_eq!(detect(&pe), FileType::Pe);
        assert_eq!(
            detect(b"\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x10"),
            FileType::Java
        );
        assert_eq!(
            name(b"\xca\xfe\xba\xbe\x00\x00\x00\x02\x00\x10"),
            "CL_TYPE_MACHO_UNIBIN"
        );
        // Java 21 (major 65) is not in ClamAV 1.4's table
        assert_eq!(
            detect(b"\xca\xfe\xba\xbe\x00\x00\x00\x41\x00\x10"),
            FileType::Binary
        );
        // Python >= 3.7 bytecode magic "??\r\r\n": scanned like binary data
        assert_eq!(name(b"X\r\r\nsome text"), "CL_TYPE_PYTHON_COMPILED");
        assert_eq!(detect(b"X\r\r\nsome text"), FileType::Binary);
    }

    #[test]
    fn tar_detection() {
        let mut h = [0u8; 512];
        h[..8].copy_from_slice(b"file.txt");
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(b"00000000005\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut data = h.to_vec();
        data.extend_from_slice(b"hello");
        assert_eq!(name(&data), "CL_TYPE_OLD_TAR");
        assert_eq!(detect(&data), FileType::Tar);
        data[257..262].copy_from_slice(b"ustar");
        assert_eq!(name(&data), "CL_TYPE_POSIX_TAR");
        // a wrong checksum is not tar
        let mut bad = h.to_vec();
        bad[0] = b'g';
        bad.push(0);
        assert_eq!(detect(&bad), FileType::Binary);
    }

    /// The matcher rule: executables and SFX types always replace the current
    /// type, others only when higher, and a pattern whose match did not
    /// replace keeps its partial matches (verified against clamscan on such a file).
    #[test]
    fn competing_markers_follow_the_matcher_rule() {
        let mut d =
            b"Plain start Rar!\x1a\x07\x00 x\nFrom: a@b\nContent-Type: text/plain\n".to_vec();
        d.extend_from_slice(b" MZ");
        d.extend_from_slice(&[b'z'; 60]);
        d.extend_from_slice(b"PE\x00\x00 and\nContent-Type: again\n");
        // Rar-SFX (ignored at this stage) beats Mail at the first Content-Type,
        // the PE pattern replaces it, and the second Content-Type completes the
        // mail pattern from the remembered From: and replaces MSEXE
        assert_eq!(name(&d), "CL_TYPE_MAIL");
        // without the second Content-Type the PE wins
        let cut = d.len() - b" and\nContent-Type: again\n".len();
        assert_eq!(name(&d[..cut]), "CL_TYPE_MSEXE");
    }

    #[test]
    fn looks_only_at_the_prefix() {
        let mut d = b"Plain text.\n".repeat(100);
        let before = detect(&d);
        d.extend_from_slice(b"\x00\x00\x00<html>MZ\x7fELF");
        assert_eq!(detect(&d), before);
        assert_eq!(detect(b""), FileType::Text);
    }

    #[test]
    fn never_panics_on_random_input() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"<>aAhHrReEfF \n\x00MZPE%DF-.\xca\xfe\xba\xbe\x7fELF:Fromt";
        for round in 0..400 {
            let len = (next() % 3000) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    if round % 2 == 0 {
                        next() as u8
                    } else {
                        alphabet[(next() as usize) % alphabet.len()]
                    }
                })
                .collect();
            let _ = detect(&data);
            let _ = raw_scan_type(&data);
        }
    }

    #[test]
    fn builtin_patterns_all_parse() {
        assert_eq!(ft_sigs().len(), FT_SIGS.len());
        assert!(MAGIC.iter().all(|(_, m, _)| !m.is_empty()));
    }
}
