//! Heuristics on one member's name and true type, run for every member any
//! reader hands over (MIME attachments, archive members, embedded files).

use crate::{DecodeOptions, FileType, ScanObject};
use mxguard_types::Finding;

/// Extensions that run code when opened on Windows (and a few elsewhere).
const EXECUTABLE_EXT: [&str; 30] = [
    "exe",
    "scr",
    "com",
    "pif",
    "bat",
    "cmd",
    "vbs",
    "vbe",
    "js",
    "jse",
    "wsf",
    "wsh",
    "hta",
    "lnk",
    "msi",
    "msp",
    "ps1",
    "psm1",
    "jar",
    "cpl",
    "reg",
    "dll",
    "sys",
    "scf",
    "inf",
    "gadget",
    "application",
    "appref-ms",
    "msc",
    "sct",
];

/// Extensions of documents, media and archives: files people open expecting to read them.
const DOCUMENT_EXT: [&str; 36] = [
    "pdf", "doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "rtf", "txt", "csv", "odt",
    "ods", "odp", "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "mp3", "mp4", "avi", "mov",
    "wav", "zip", "rar", "7z", "gz", "html", "htm", "xml", "eml", "ics",
];

/// Characters that change how a name is displayed: bidirectional overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069), marks (U+200E/U+200F), zero-width
/// characters, and the Hangul filler that renders as a space.
fn deceptive_char(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}' | '\u{FEFF}' | '\u{3164}' | '\u{115F}'
    )
}

/// The last `n` extensions of a file name, lowercased, last one first.
fn extensions(name: &str, n: usize) -> Vec<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut parts: Vec<&str> = base.split('.').collect();
    if parts.len() < 2 {
        return Vec::new();
    }
    parts.remove(0);
    parts
        .iter()
        .rev()
        .take(n)
        .map(|e| e.trim().to_ascii_lowercase())
        .collect()
}

fn is_executable_type(ft: FileType) -> bool {
    matches!(ft, FileType::Pe | FileType::Elf | FileType::MachO)
}

/// Name and type checks for one member. Calls `report` for each finding.
pub(crate) fn name_checks(
    opts: &DecodeOptions,
    obj: &ScanObject<'_>,
    report: &mut dyn FnMut(Finding),
) {
    let Some(name) = obj.name.as_deref() else {
        return;
    };
    let h = &opts.heuristics;
    let loc = obj.location.as_str();
    if h.deceptive_names {
        if let Some(c) = name.chars().find(|&c| deceptive_char(c)) {
            report(Finding::heuristic(
                "Heuristics.Attachment.DeceptiveName",
                loc,
                format!(
                    "name contains U+{:04X}, which changes how it is displayed",
                    c as u32
                ),
            ));
        } else if name.contains("     .") {
            report(Finding::heuristic(
                "Heuristics.Attachment.DeceptiveName",
                loc,
                "name hides its extension behind a run of spaces",
            ));
        }
    }
    let ext = extensions(name, 2);
    if h.double_extension && ext.len() == 2 {
        let (last, prev) = (&ext[0], &ext[1]);
        if EXECUTABLE_EXT.contains(&last.as_str()) && DOCUMENT_EXT.contains(&prev.as_str()) {
            report(Finding::heuristic(
                "Heuristics.Attachment.DoubleExtension",
                loc,
                format!("'{name}' looks like a .{prev} but is a .{last}"),
            ));
        }
    }
    if h.type_mismatch && is_executable_type(obj.file_type) {
        let by_name = ext.first().filter(|e| DOCUMENT_EXT.contains(&e.as_str()));
        let by_type = obj.declared_type.as_deref().filter(|t| {
            t.starts_with("image/")
                || t.starts_with("text/")
                || *t == "application/pdf"
                || t.starts_with("audio/")
                || t.starts_with("video/")
        });
        if by_name.is_some() || by_type.is_some() {
            let claimed = by_name
                .map(|e| format!(".{e}"))
                .or(by_type.map(str::to_string))
                .unwrap_or_default();
            report(Finding::heuristic(
                "Heuristics.Attachment.TrueTypeMismatch",
                loc,
                format!(
                    "'{name}' claims {claimed} but is an executable ({})",
                    obj.file_type.name()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn check(name: &str, data: &[u8], declared: Option<&str>) -> Vec<String> {
        let obj = ScanObject {
            data: Cow::Borrowed(data),
            file_type: crate::kind::true_type(data),
            container: None,
            name: Some(name.into()),
            declared_type: declared.map(str::to_string),
            location: "part[2]".into(),
            depth: 1,
            text: None,
            links: Vec::new(),
        };
        let mut out = Vec::new();
        name_checks(&DecodeOptions::default(), &obj, &mut |f| out.push(f.name));
        out
    }

    #[test]
    fn names_and_types() {
        let pe = {
            let mut v = b"MZ".to_vec();
            v.resize(0x40, 0);
            v[0x3c] = 0x40;
            v.extend_from_slice(b"PE\0\0");
            v.resize(0x200, 0);
            v
        };
        assert_eq!(
            check("invoice.pdf.exe", b"x", None),
            vec!["Heuristics.Attachment.DoubleExtension"]
        );
        assert!(check("archive.tar.gz", b"x", None).is_empty());
        assert!(check("setup.exe", &pe, None).is_empty());
        assert_eq!(
            check("scan.pdf", &pe, None),
            vec!["Heuristics.Attachment.TrueTypeMismatch"]
        );
        assert_eq!(
            check("photo", &pe, Some("image/jpeg")),
            vec!["Heuristics.Attachment.TrueTypeMismatch"]
        );
        assert_eq!(
            check("invoice\u{202E}fdp.exe", b"x", None),
            vec!["Heuristics.Attachment.DeceptiveName"]
        );
        assert!(check("report.final.pdf", b"%PDF-1.4", None).is_empty());
    }
}
