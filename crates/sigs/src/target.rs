//! Which bytes each target type's signatures see.
//!
//! ClamAV does not match every signature against the raw file. What it
//! matches depends on the file type, and a buffer is always matched by the
//! *generic* (target 0) signatures together with at most one typed target.
//! [`views`] returns the buffers `clamscan` 1.4 matches for one file (before
//! any archive, document or mail decoding, which produce further files) and,
//! for each, the target types whose body signatures apply to it.
//!
//! # What ClamAV 1.4 does, per file type
//!
//! Established from `cli_magic_scan`/`scanraw`/`cli_scanscript`/`cli_scanhtml`
//! (`scanners.c`), `cli_scan_fmap`/`cli_scan_buff` (`matcher.c`) and checked
//! with `clamscan --allmatch` and one-line `.ndb` signatures of targets 0, 3,
//! 4, 5, 7 and 14 (the cases are unit tests below):
//!
//! | file type | buffers matched, with targets |
//! |---|---|
//! | any file of 5 bytes or less | nothing at all |
//! | ignored types (MP3, Ogg, ...) | nothing at all |
//! | text (ASCII, UTF-8, UTF-16) | raw bytes {0}; then the text normalisation of [`crate::textnorm`] {0, 7} |
//! | ASCII text whose *whole-file* pattern scan says HTML (an HTML marker after byte 1024) | raw bytes {0}; then the HTML documents {0, 3} (no text normalisation) |
//! | ASCII text whose whole-file pattern scan says mail | raw bytes {0}; normalised text {0, 7}; raw bytes again {0, 4} |
//! | HTML | **not the raw bytes**; `nocomment` {0, 3}, `notags` {0, 3}, `javascript` {0, 3} and again {0, 7} ([`crate::htmlnorm`]) |
//! | HTML in UTF-16 | raw bytes {0}; then the HTML documents of its UTF-16 → ASCII folding |
//! | mail | raw bytes {0, 4} |
//! | MHTML | raw bytes {0} |
//! | binary data (also compiled Python) | raw bytes {0}; raw bytes again {0, 14} |
//! | PE / OLE2 / graphics / ELF / Mach-O / PDF / Flash / Java / internal | raw bytes {0, t} with t = 1 / 2 / 5 / 6 / 9 / 10 / 11 / 12 / 13 |
//! | GIF whose whole-file pattern scan says HTML | raw bytes {0, 5}; then the HTML documents |
//! | archives, RTF, everything else | raw bytes {0} |
//!
//! Consequences worth knowing:
//!
//! * A target-0 signature is reported once per view it matches: a plain text
//!   file containing `abc def` is reported twice by `clamscan --allmatch`
//!   for a signature on `abc def` (raw and normalised), a binary file twice
//!   (raw, then the target-14 pass), an HTML file once per document.
//!   Within one view, `clamscan --allmatch` prints an `.ndb` signature once
//!   per occurrence (three occurrences in a text file: six lines) but an
//!   `.ldb` signature once.
//! * Target-7 signatures never see raw text, and target-3 signatures never
//!   see raw HTML.
//! * Relative offsets do not always resolve; see [`RelOffsets`].
//!
//! # Not covered here, or different
//!
//! * Files ClamAV derives from a file are the decoders' job and not views:
//!   MIME parts of mail and MHTML (also of ASCII text that scans as mail),
//!   PDF streams, OLE2 streams and macros, archive members, unpacked PEs,
//!   and the embedded files `scanraw` finds at an offset (`PK\3\4`, `Rar!`,
//!   `MSCF`, `7z`, ARJ, NSIS, AutoIt, an `MZ...PE` inside a PE/zip/OLE2),
//!   `data:` URIs and `<style>` images of HTML.
//! * Absolute offsets of *target-0* signatures on the normalised text view
//!   drift in ClamAV after the first 128 KiB of normalised text (its
//!   in-memory path counts the carried-over overlap twice); we use plain
//!   offsets into the view.
//! * Empty normalised buffers are omitted (ClamAV scans them, nothing can match).
//! * See [`crate::filetype`], [`crate::textnorm`] and [`crate::htmlnorm`] for
//!   the typing and normalisation details that are approximated.

use crate::exe::{self, ExeInfo};
use crate::filetype::{self, Cli, FileType};
use crate::{htmlnorm, textnorm};
use std::borrow::Cow;

/// A set of ClamAV target type numbers (0..=15), one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TargetMask(pub u16);

impl TargetMask {
    pub const fn of(t: u8) -> TargetMask {
        TargetMask(1 << t)
    }
    pub const fn with(self, t: u8) -> TargetMask {
        TargetMask(self.0 | (1 << t))
    }
    pub const fn contains(self, t: u8) -> bool {
        t < 16 && self.0 & (1 << t) != 0
    }
}

/// ClamAV's target type number for a file type: the typed signatures that
/// are matched for files of this type (besides target 0), on the buffers
/// [`views`] lists (raw bytes, except target 3 which only sees normalised
/// HTML and target 7 which only sees normalised text or script). `None` when
/// no typed signature applies.
pub fn target_of(ft: FileType) -> Option<u8> {
    Some(match ft {
        FileType::Pe => 1,
        FileType::Ole2 => 2,
        FileType::Html => 3,
        FileType::Mail => 4,
        FileType::Graphics => 5,
        FileType::Elf => 6,
        FileType::Text => 7,
        FileType::MachO => 9,
        FileType::Pdf => 10,
        FileType::Flash => 11,
        FileType::Java => 12,
        FileType::Internal => 13,
        FileType::Binary => 14,
        FileType::HtmlUtf16
        | FileType::Mhtml
        | FileType::Zip
        | FileType::Gzip
        | FileType::Bzip2
        | FileType::Xz
        | FileType::SevenZ
        | FileType::Rar
        | FileType::Cab
        | FileType::Tar
        | FileType::Rtf
        | FileType::Ignored
        | FileType::Other => return None,
    })
}

/// What a view's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewKind {
    /// The file's own bytes.
    Raw,
    /// Text normalised for target 7 ([`crate::textnorm`]).
    NormalizedText,
    /// HTML without comments (`nocomment.html`).
    HtmlNoComment,
    /// HTML reduced to its text (`notags.html`).
    HtmlNoTags,
    /// Normalised scripts (`javascript`).
    HtmlScript,
}

/// How relative offsets (`EOF-n`, `EP±n`, `Sx+n`, `SEx`, `SL+n`) resolve for
/// signatures matched against a view. Absolute offsets and `*` always work
/// (in ClamAV, `EP`/`S` offsets are only accepted for targets 1, 6 and 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelOffsets {
    /// `EOF-n` counts from the end of the view; no executable offsets.
    Eof,
    /// Executable view with parsed headers: `EOF-n` from the end of the view,
    /// `EP`/`S` offsets from this information.
    Exe(ExeInfo),
    /// Executable view whose headers ClamAV fails to parse (a DOS `MZ` file,
    /// a fat Mach-O, a truncated ELF...): *no* relative offset resolves, not
    /// even `EOF-n`, so such subsignatures never match (verified: an `EOF-8`
    /// target-0 signature does not match a bare `MZ` file that a `*` one does).
    Unresolved,
    /// The normalised text view: `EOF-n` counts from the end of the view for
    /// target-7 subsignatures. For target-0 subsignatures ClamAV resolves
    /// relative offsets here only when the database holds at least one
    /// target-7 (sub)signature with a relative offset; otherwise they never
    /// match this view (verified with clamscan both ways).
    NormalizedText,
}

/// One buffer to match and the target types whose signatures apply to it.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub data: Cow<'a, [u8]>,
    pub targets: TargetMask,
    /// True when `data` is a normalised copy rather than the file's bytes
    /// (offsets such as `EOF-n` then refer to the normalised buffer).
    pub normalized: bool,
    pub kind: ViewKind,
    /// How relative offsets resolve in this view.
    pub offsets: RelOffsets,
}

impl<'a> View<'a> {
    fn raw(data: &'a [u8], targets: TargetMask, offsets: RelOffsets) -> View<'a> {
        View {
            data: Cow::Borrowed(data),
            targets,
            normalized: false,
            kind: ViewKind::Raw,
            offsets,
        }
    }

    fn normalized(
        data: Vec<u8>,
        targets: TargetMask,
        kind: ViewKind,
        offsets: RelOffsets,
    ) -> View<'a> {
        View {
            data: Cow::Owned(data),
            targets,
            normalized: true,
            kind,
            offsets,
        }
    }
}

/// Files up to this size are scanned at all (`cli_magic_scan` ignores files
/// of 5 bytes or less).
pub const MIN_SCANNED_SIZE: usize = 6;
/// HTML larger than this is not normalised (`MaxHTMLNormalize`), hence not
/// matched at all.
pub const MAX_HTML_NORMALIZE: usize = 40 << 20;
/// HTML larger than this gets no `notags` view (`MaxHTMLNoTags`).
pub const MAX_HTML_NOTAGS: usize = 8 << 20;

const T0: TargetMask = TargetMask::of(0);

/// The buffers clamscan would match for a file of type `ft` (no archive or
/// document decoding: that is the decoder's job), in ClamAV's order. The raw
/// file comes first when it is matched at all; HTML, ignored types and files
/// of 5 bytes or less have no raw view. A target-0 signature matching in
/// several views is reported once per view by `clamscan --allmatch`.
///
/// `ft` is normally [`filetype::detect`]'s answer; details it does not carry
/// (ASCII or UTF-16 text, GIF among graphics, HTML or mail markers beyond the
/// first 1024 bytes) are derived from `data`. Never panics. Memory: at most
/// one normalised copy per view, each a small multiple of the input.
pub fn views(data: &[u8], ft: FileType) -> Vec<View<'_>> {
    let mut out = Vec::new();
    if data.len() < MIN_SCANNED_SIZE {
        return out;
    }
    match ft {
        FileType::Ignored => {}
        FileType::Html => html_views(data, &mut out),
        FileType::HtmlUtf16 => {
            out.push(View::raw(data, T0, RelOffsets::Eof));
            if let Some(decoded) = filetype::utf16_to_ascii(data) {
                html_views(&decoded, &mut out);
            }
        }
        FileType::Text => {
            out.push(View::raw(data, T0, RelOffsets::Eof));
            let prefix = &data[..data.len().min(filetype::PREFIX)];
            let ascii = filetype::texttype(prefix) == Cli::TextAscii;
            let found = if ascii {
                filetype::raw_scan_type(data)
            } else {
                Cli::Any
            };
            if found == Cli::Html {
                html_views(data, &mut out);
            } else {
                if data.len() <= textnorm::MAX_SCRIPT_NORMALIZE {
                    let norm = textnorm::normalize(data);
                    if !norm.is_empty() {
                        out.push(View::normalized(
                            norm,
                            T0.with(7),
                            ViewKind::NormalizedText,
                            RelOffsets::NormalizedText,
                        ));
                    }
                }
                if found == Cli::Mail {
                    out.push(View::raw(data, T0.with(4), RelOffsets::Eof));
                }
            }
        }
        FileType::Binary => {
            out.push(View::raw(data, T0, RelOffsets::Eof));
            out.push(View::raw(data, T0.with(14), RelOffsets::Eof));
        }
        FileType::Pe => out.push(View::raw(
            data,
            T0.with(1),
            exe_offsets(exe::parse_pe(data)),
        )),
        FileType::Elf => out.push(View::raw(
            data,
            T0.with(6),
            exe_offsets(exe::parse_elf(data)),
        )),
        FileType::MachO => out.push(View::raw(
            data,
            T0.with(9),
            exe_offsets(exe::parse_macho(data)),
        )),
        FileType::Graphics => {
            out.push(View::raw(data, T0.with(5), RelOffsets::Eof));
            if data.starts_with(b"GIF") && filetype::raw_scan_type(data) == Cli::Html {
                html_views(data, &mut out);
            }
        }
        other => {
            let targets = target_of(other).map_or(T0, |t| T0.with(t));
            out.push(View::raw(data, targets, RelOffsets::Eof));
        }
    }
    out
}

fn exe_offsets(info: Option<ExeInfo>) -> RelOffsets {
    info.map_or(RelOffsets::Unresolved, RelOffsets::Exe)
}

/// `cli_scanhtml`: the normalised documents, each matched by targets 0 and 3,
/// the scripts once more by targets 0 and 7.
fn html_views<'a>(doc: &[u8], out: &mut Vec<View<'a>>) {
    if doc.len() > MAX_HTML_NORMALIZE {
        // clamscan matches nothing at all here (it neither normalises nor scans the raw
        // bytes). We never leave content unscanned: the raw document gets the
        // generic and HTML signatures instead. A deliberate difference, for HTML
        // over `MAX_HTML_NORMALIZE` only.
        out.push(View::normalized(
            doc.to_vec(),
            T0.with(3),
            ViewKind::Raw,
            RelOffsets::Eof,
        ));
        return;
    }
    let n = htmlnorm::normalize(doc);
    let html = T0.with(3);
    if !n.nocomment.is_empty() {
        out.push(View::normalized(
            n.nocomment,
            html,
            ViewKind::HtmlNoComment,
            RelOffsets::Eof,
        ));
    }
    if doc.len() <= MAX_HTML_NOTAGS && !n.notags.is_empty() {
        out.push(View::normalized(
            n.notags,
            html,
            ViewKind::HtmlNoTags,
            RelOffsets::Eof,
        ));
    }
    if let Some(js) = n.javascript.filter(|j| !j.is_empty()) {
        out.push(View::normalized(
            js.clone(),
            html,
            ViewKind::HtmlScript,
            RelOffsets::Eof,
        ));
        out.push(View::normalized(
            js,
            T0.with(7),
            ViewKind::HtmlScript,
            RelOffsets::Eof,
        ));
    }
}

#[cfg(test)]
mod tests {
    //! Each case below was run through `clamscan --allmatch` with one-line
    //! signatures of targets 0, 3, 4, 5, 7 and 14 on the same bytes; the
    //! expected views are what those runs showed. Beyond these, ~850 files
    //! (fuzzed HTML, texts with competing markers, binaries) were checked with
    //! random substrings of every view as logical signatures of all targets:
    //! clamscan reported each exactly once per predicted view (extra reports
    //! only came from decoded children: mail parts, embedded archives).
    use super::*;
    #[test]
    fn oversized_html_is_still_scanned_raw() {
        let mut doc = b"<html><body>".to_vec();
        doc.resize(MAX_HTML_NORMALIZE + 1, b'a');
        let v = views(&doc, FileType::Html);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].data.len(), doc.len());
        assert!(v[0].targets.contains(0) && v[0].targets.contains(3));
    }

    use crate::filetype::detect;

    fn summary(data: &[u8]) -> Vec<(ViewKind, Vec<u8>)> {
        views(data, detect(data))
            .iter()
            .map(|v| (v.kind, (0..16).filter(|t| v.targets.contains(*t)).collect()))
            .collect()
    }

    #[test]
    fn text_raw_for_target_0_normalised_for_0_and_7() {
        let data = b"Hello World this is a TEST file\nwith   some   spaces\n";
        let v = views(data, detect(data));
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].kind, v[0].targets, v[0].normalized),
            (ViewKind::Raw, TargetMask::of(0), false)
        );
        assert_eq!(&v[0].data[..], &data[..]);
        assert_eq!(
            (v[1].kind, v[1].targets, v[1].normalized),
            (ViewKind::NormalizedText, TargetMask::of(0).with(7), true)
        );
        assert_eq!(
            &v[1].data[..],
            b"hello world this is a test file with some spaces "
        );
        assert_eq!(v[1].offsets, RelOffsets::NormalizedText);
        // a target-0 signature on "abc def ghi" is reported twice by clamscan
        let both = b"abc def ghi\n";
        let hits = views(both, detect(both))
            .iter()
            .filter(|v| v.data.windows(11).any(|w| w == b"abc def ghi"))
            .count();
        assert_eq!(hits, 2);
    }

    #[test]
    fn utf16_text_is_normalised_too() {
        let data: Vec<u8> = "Plain Hello World payload text\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let v = views(&data, detect(&data));
        assert_eq!(v.len(), 2);
        assert_eq!(&v[1].data[..], b"plain hello world payload text ");
    }

    #[test]
    fn html_is_never_matched_raw() {
        let doc = b"<html><head><title>Foo BAR</title></head>\n<!-- a comment HERE -->\n<body>Hello   <b>World</b>\n<script>var X = \"Evil\";</script>\n</body></html>\n";
        assert_eq!(
            summary(doc),
            vec![
                (ViewKind::HtmlNoComment, vec![0, 3]),
                (ViewKind::HtmlNoTags, vec![0, 3]),
                (ViewKind::HtmlScript, vec![0, 3]),
                (ViewKind::HtmlScript, vec![0, 7]),
            ]
        );
        let v = views(doc, FileType::Html);
        assert_eq!(&v[1].data[..], b" foo bar hello world ");
        assert!(v
            .iter()
            .all(|v| v.normalized && v.offsets == RelOffsets::Eof));
    }

    #[test]
    fn text_with_late_html_marker_is_handled_as_html() {
        let mut data = vec![b'x'; 1100];
        data.extend_from_slice(b"\nSome <b>Bold</b> text <html> MORE Text\n");
        assert_eq!(
            summary(&data),
            vec![
                (ViewKind::Raw, vec![0]),
                (ViewKind::HtmlNoComment, vec![0, 3]),
                (ViewKind::HtmlNoTags, vec![0, 3])
            ]
        );
    }

    #[test]
    fn text_with_late_mail_marker_is_also_matched_as_mail() {
        let mut data = vec![b'x'; 1100];
        data.extend_from_slice(b"\nReceived: x\nContent-Type: text/plain\n\nBody TEXT\n");
        assert_eq!(
            summary(&data),
            vec![
                (ViewKind::Raw, vec![0]),
                (ViewKind::NormalizedText, vec![0, 7]),
                (ViewKind::Raw, vec![0, 4])
            ]
        );
    }

    #[test]
    fn mail_and_mhtml() {
        assert_eq!(
            summary(b"hello\nFrom: x@y\nMIME-Version: 1.0\n\nBody TEXT\n"),
            vec![(ViewKind::Raw, vec![0, 4])]
        );
        assert_eq!(
            summary(b"From: a@b.example\nSubject: Hello World\n\nBody\n"),
            vec![(ViewKind::Raw, vec![0, 4])]
        );
        assert_eq!(
            summary(
                b"hello\nFrom: x@y\nMIME-Version: 1.0\nContent-Type: text/plain\n\nBody TEXT\n"
            ),
            vec![(ViewKind::Raw, vec![0])]
        );
    }

    #[test]
    fn binary_is_matched_twice() {
        assert_eq!(
            summary(b"ab\x00\x01\x02cdPAYLOAD here\x00\x00"),
            vec![(ViewKind::Raw, vec![0]), (ViewKind::Raw, vec![0, 14])]
        );
    }

    #[test]
    fn graphics_and_gif_with_html() {
        assert_eq!(
            summary(b"BMW hello world payload\n"),
            vec![(ViewKind::Raw, vec![0, 5])]
        );
        let gif = b"GIF89a\x01\x00\x01\x00 junk <html><body>Hello World payload</body></html>\n";
        assert_eq!(
            summary(gif),
            vec![
                (ViewKind::Raw, vec![0, 5]),
                (ViewKind::HtmlNoComment, vec![0, 3]),
                (ViewKind::HtmlNoTags, vec![0, 3])
            ]
        );
        let png = b"\x89PNG\r\n\x1a\n junk <html><body>Hello World payload</body></html>\n";
        assert_eq!(summary(png), vec![(ViewKind::Raw, vec![0, 5])]);
    }

    #[test]
    fn html_in_utf16_is_decoded() {
        let data: Vec<u8> = "<html><body>Hello World payload</body></html>\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let v = views(&data, detect(&data));
        assert_eq!(v[0].kind, ViewKind::Raw);
        assert_eq!(v[0].targets, TargetMask::of(0));
        assert_eq!(&v[2].data[..], b" hello world payload ");
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn nothing_for_tiny_or_ignored_files() {
        assert!(views(b"abcde", FileType::Text).is_empty());
        assert_eq!(views(b"abcdef", FileType::Text).len(), 2);
        assert!(views(
            b"ID3 hello world payload\n",
            detect(b"ID3 hello world payload\n")
        )
        .is_empty());
    }

    #[test]
    fn executables_carry_offset_information() {
        let mut dos = b"MZ".to_vec();
        dos.extend_from_slice(&[0u8; 100]);
        dos.extend_from_slice(b"TAILMARK");
        let v = views(&dos, detect(&dos));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].targets, TargetMask::of(0).with(1));
        // verified: an EOF-8 target-0 signature does not match this file
        assert_eq!(v[0].offsets, RelOffsets::Unresolved);
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        elf[58] = 64; // standard section header size, no sections, no program headers
        let v = views(&elf, detect(&elf));
        assert_eq!(v[0].targets, TargetMask::of(0).with(6));
        assert_eq!(
            v[0].offsets,
            RelOffsets::Exe(ExeInfo {
                entry_point: Some(0),
                sections: vec![]
            })
        );
    }

    #[test]
    fn typed_raw_views() {
        let cases: &[(&[u8], u8)] = &[
            (b"%PDF-1.4\n1 0 obj", 10),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", 2),
            (b"FWS\x09\x00\x00\x00\x00", 11),
            (b"\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x10", 12),
        ];
        for (data, t) in cases {
            assert_eq!(summary(data), vec![(ViewKind::Raw, vec![0, *t])]);
        }
        assert_eq!(
            summary(b"PK\x03\x04\x14\x00\x00\x00\x08\x00"),
            vec![(ViewKind::Raw, vec![0])]
        );
    }

    #[test]
    fn target_numbers() {
        assert_eq!(target_of(FileType::Pe), Some(1));
        assert_eq!(target_of(FileType::Text), Some(7));
        assert_eq!(target_of(FileType::Binary), Some(14));
        assert_eq!(target_of(FileType::Mhtml), None);
        assert_eq!(target_of(FileType::Zip), None);
        let m = TargetMask::of(0).with(7);
        assert!(m.contains(0) && m.contains(7) && !m.contains(3) && !m.contains(16));
    }

    #[test]
    fn never_panics() {
        let mut seed = 0x5151_7272_9393_a4a4u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"<html><script>var x=1;</script>\nFrom: a\nContent-Type: b\nMZPE\x00\x00GIF89a\x7fELF abc";
        for i in 0..200 {
            let len = (next() % 4000) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    if i % 2 == 0 {
                        next() as u8
                    } else {
                        alphabet[(next() as usize) % alphabet.len()]
                    }
                })
                .collect();
            for ft in [
                detect(&data),
                FileType::Text,
                FileType::Html,
                FileType::HtmlUtf16,
                FileType::Pe,
                FileType::Graphics,
            ] {
                let _ = views(&data, ft);
            }
        }
    }
}
