//! VBA projects (MS-OVBA): the `dir` stream, module sources, and the
//! auto-run + dangerous-call heuristic.

use super::Rd;

/// Records read from one `dir` stream (a real project has a few dozen per module).
const MAX_DIR_RECORDS: usize = 100_000;
/// Modules taken from one project.
pub(crate) const MAX_MODULES: usize = 4096;

/// MS-OVBA §2.4.1 decompression of `src` (starting with the signature byte 1).
/// Output is capped at `max` bytes. Returns what was decoded before any
/// damage (`None` only when the signature is missing). Linear time.
pub(crate) fn decompress(src: &[u8], max: usize) -> Option<Vec<u8>> {
    if src.first() != Some(&1) {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(src.len().saturating_mul(2).min(max));
    let mut pos = 1usize;
    while pos + 2 <= src.len() && out.len() < max {
        let h = u16::from_le_bytes([src[pos], src[pos + 1]]);
        let size = (h & 0x0fff) as usize + 3;
        let compressed = h & 0x8000 != 0;
        let end = pos.saturating_add(size).min(src.len());
        let chunk = &src[pos + 2..end];
        pos = end;
        let start = out.len();
        if !compressed {
            let n = chunk.len().min(4096).min(max - out.len());
            out.extend_from_slice(&chunk[..n]);
            continue;
        }
        let mut i = 0;
        'chunk: while i < chunk.len() {
            let flags = chunk[i];
            i += 1;
            for bit in 0..8 {
                if i >= chunk.len() || out.len() >= max {
                    break 'chunk;
                }
                if flags & (1 << bit) == 0 {
                    out.push(chunk[i]);
                    i += 1;
                } else {
                    if i + 2 > chunk.len() {
                        break 'chunk;
                    }
                    let token = u16::from_le_bytes([chunk[i], chunk[i + 1]]) as usize;
                    i += 2;
                    let d = out.len() - start;
                    let mut bits = 4;
                    while (1usize << bits) < d && bits < 12 {
                        bits += 1;
                    }
                    let len_mask = 0xffffusize >> bits;
                    let offset = (token >> (16 - bits)) + 1;
                    let len = (token & len_mask) + 3;
                    if offset > d {
                        return Some(out); // damaged: keep what we have
                    }
                    for _ in 0..len {
                        if out.len() >= max {
                            break;
                        }
                        let b = out[out.len() - offset];
                        out.push(b);
                    }
                }
            }
        }
    }
    Some(out)
}

/// One module as the `dir` stream describes it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Module {
    pub name: String,
    pub stream: String,
    pub offset: u32,
}

/// Parses a decompressed `dir` stream into its modules. Tolerant: stops at the
/// first record that does not fit, keeping the modules read so far.
pub(crate) fn modules(dir: &[u8]) -> Vec<Module> {
    let mut out = Vec::new();
    let mut cur: Option<Module> = None;
    let mut r = Rd { d: dir, pos: 0 };
    for _ in 0..MAX_DIR_RECORDS {
        let Some(id) = r.u16() else { break };
        let Some(size) = r.u32() else { break };
        // PROJECTVERSION's size field says 4 but 6 bytes follow.
        let size = if id == 0x0009 { 6 } else { size as usize };
        let Some(body) = r.bytes(size) else { break };
        match id {
            0x0019 => {
                if let Some(m) = cur.take() {
                    push(&mut out, m);
                }
                cur = Some(Module {
                    name: String::from_utf8_lossy(body).into_owned(),
                    ..Default::default()
                });
            }
            0x001a => {
                if let Some(m) = cur.as_mut() {
                    m.stream = String::from_utf8_lossy(body).into_owned();
                }
            }
            0x0031 => {
                if let (Some(m), Some(b)) = (cur.as_mut(), body.get(..4)) {
                    m.offset = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            0x002b => {
                if let Some(m) = cur.take() {
                    push(&mut out, m);
                }
            }
            _ => {}
        }
        if out.len() >= MAX_MODULES {
            break;
        }
    }
    if let Some(m) = cur.take() {
        push(&mut out, m);
    }
    out
}

fn push(out: &mut Vec<Module>, mut m: Module) {
    if m.stream.is_empty() {
        m.stream = m.name.clone();
    }
    if !m.name.is_empty() {
        out.push(m);
    }
}

/// Procedures Office runs by itself (document open/close/new, workbook
/// events, ActiveX controls that fire on display), lowercase.
const AUTORUN: &[&str] = &[
    "autoopen",
    "auto_open",
    "autoexec",
    "autoclose",
    "auto_close",
    "autonew",
    "autoexit",
    "document_open",
    "document_close",
    "document_new",
    "documentopen",
    "documentbeforeclose",
    "document_beforeclose",
    "workbook_open",
    "workbook_activate",
    "workbook_beforeclose",
    "workbook_close",
    "workbook_deactivate",
    "app_documentopen",
    "app_workbookopen",
];

/// Suffixes of ActiveX event procedures that fire without a click.
const AUTORUN_SUFFIX: &[&str] = &["_layout", "_painted", "_resize", "_gotfocus"];

/// Calls that run programs, fetch or write files, or reach into the system
/// (lowercase identifiers; dotted names are matched as consecutive words).
const DANGEROUS: &[&str] = &[
    "shell",
    "createobject",
    "getobject",
    "urldownloadtofile",
    "urldownloadtofilea",
    "urldownloadtofilew",
    "shellexecute",
    "shellexecutea",
    "shellexecutew",
    "callbyname",
    "powershell",
    "xmlhttp",
    "serverxmlhttp",
    "winhttprequest",
    "macscript",
    "kill",
    "createprocess",
    "createprocessa",
    "winexec",
];

/// What the heuristic found in one module.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub entry: Option<String>,
    pub call: Option<String>,
}

/// Finds an auto-run entry point and a dangerous call in `src` (VBA source).
/// Comments are ignored; string literals are kept (`CreateObject("WScript.Shell")`).
pub(crate) fn scan(src: &str) -> Scan {
    let mut s = Scan::default();
    for line in src.lines() {
        let code = strip_comment(line);
        let words: Vec<String> = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(|w| w.to_ascii_lowercase())
            .collect();
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        if s.entry.is_none() {
            if let Some(p) = w.iter().position(|x| *x == "sub" || *x == "function") {
                if let Some(name) = w.get(p + 1) {
                    let prev = p.checked_sub(1).and_then(|i| w.get(i));
                    if prev != Some(&"end")
                        && prev != Some(&"exit")
                        && (AUTORUN.contains(name)
                            || AUTORUN_SUFFIX.iter().any(|x| name.ends_with(x)))
                    {
                        s.entry = Some(original_case(code, name));
                    }
                }
            }
        }
        if s.call.is_none() {
            s.call = dangerous(&w, code);
        }
    }
    s
}

fn dangerous(w: &[&str], code: &str) -> Option<String> {
    if let Some(d) = w.iter().find(|x| DANGEROUS.contains(x)) {
        // "Shell" as a word: the VBA function, or WScript.Shell / Shell.Application.
        return Some(original_case(code, d));
    }
    let has = |x: &str| w.contains(&x);
    if has("adodb") && has("stream") {
        return Some("ADODB.Stream".into());
    }
    if has("wscript") {
        return Some("WScript".into());
    }
    if has("declare") && has("lib") {
        return Some("Declare ... Lib".into());
    }
    if has("open") && has("for") && (has("binary") || has("output")) && has("as") {
        return Some("Open ... For Binary/Output".into());
    }
    if w.first() == Some(&"put") {
        return Some("Put".into());
    }
    None
}

/// `name` (lowercase) as written in `code`.
fn original_case(code: &str, name: &str) -> String {
    let lower = code.to_ascii_lowercase();
    match lower.find(name) {
        Some(i) => code.get(i..i + name.len()).unwrap_or(name).to_string(),
        None => name.to_string(),
    }
}

/// The line without its `'` or `Rem` comment (quotes respected).
fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    if t.as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"rem "))
    {
        return "";
    }
    let mut in_str = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '\'' if !in_str => return &line[..i],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompress_spec_example() {
        // MS-OVBA 3.2.2 "Copy Token" example.
        let src = b"\x01\x19\xb0\x00\x61\x62\x63\x64\x65\x66\x67\x68\x00\x69\x6a\x6b\x6c\x6d\x6e\x6f\x70\x00\x71\x72\x73\x74\x75\x76\x2e";
        let out = decompress(src, 1 << 20).unwrap();
        assert_eq!(out, b"abcdefghijklmnopqrstuv.");
        let src = b"\x01\x2f\xb0\x00\x23\x61\x61\x61\x62\x63\x64\x65\x82\x66\x00\x70\x61\x67\x68\x69\x6a\x01\x38\x08\x61\x6b\x6c\x00\x30\x6d\x6e\x6f\x70\x06\x71\x02\x70\x04\x10\x72\x73\x74\x75\x76\x10\x77\x78\x79\x7a\x00\x3c";
        let out = decompress(src, 1 << 20).unwrap();
        assert_eq!(
            out,
            b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa".as_slice()
        );
    }

    #[test]
    fn decompress_never_panics() {
        let mut seed = 7u32;
        for _ in 0..5000 {
            let mut v = vec![1u8];
            for _ in 0..(seed % 300) {
                seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                v.push((seed >> 16) as u8);
            }
            let _ = decompress(&v, 10_000);
            let _ = modules(&v);
        }
    }

    #[test]
    fn heuristic_needs_both() {
        let bad = "Sub AutoOpen()\n  x = Shell(\"cmd /c calc\")\nEnd Sub\n";
        let s = scan(bad);
        assert_eq!(s.entry.as_deref(), Some("AutoOpen"));
        assert_eq!(s.call.as_deref(), Some("Shell"));
        let ok = "Sub Document_Open()\n  MsgBox \"hi\" ' Shell is mentioned here\nEnd Sub\n";
        let s = scan(ok);
        assert!(s.entry.is_some() && s.call.is_none());
        let s = scan("Sub Foo()\n CreateObject(\"WScript.Shell\").Run \"x\"\nEnd Sub");
        assert!(s.entry.is_none() && s.call.is_some());
    }
}
