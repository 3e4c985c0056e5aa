//! Parity with ClamAV: `mxguard scan --all-match` must report exactly the
//! (file, signature name) pairs that `clamscan --allmatch` reports, for the
//! same signature databases and the same files.
//!
//! Every case is one data file in `tests/parity/cases/*.case` (the format is
//! described in `tests/parity/README.md`): signature lines for one or more
//! database files, and the files to generate, each with the names it is
//! expected to trigger. The test generates everything into a temporary
//! directory, runs `clamscan` and `mxguard` once per case, and checks:
//!
//! 1. parity: the set of (file, name) pairs is the same for both tools, and
//!    so is the exit status (0 nothing found, 1 something found);
//! 2. each file's `expect:` line is met by clamscan (the case still tests what
//!    its author meant, and a case where neither tool finds a planted
//!    signature is visible) and by mxguard;
//! 3. `mxguard scan --json` agrees with the text output.
//!
//! The test never skips: without `clamscan` it fails. Environment knobs:
//! `PARITY_CASES=a,b` runs only the cases whose name contains one of the
//! substrings; `PARITY_CLAMSCAN_ONLY=1` checks the expectations against
//! clamscan alone (for writing cases; mxguard is not run); `PARITY_KEEP=1`
//! keeps the generated directory (it is always kept when the test fails);
//! `PARITY_CLAMSCAN=/path/to/clamscan` picks another clamscan.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The suite must not shrink silently: at least this many cases must run
/// (when no `PARITY_CASES` filter is set).
const MIN_CASES: usize = 54;

/// Database extensions a case may declare (no archives and no containers here).
const DB_EXTS: &[&str] = &["hdb", "hsb", "fp", "sfp", "ign2", "ndb", "ldb"];

// ---------------------------------------------------------------------------
// Case files
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Both tools run on the case's databases; results must be equal.
    Parity,
    /// Only mxguard runs, with its built-in database and no `--db`
    /// (clamscan here has no official database to compare with).
    MxguardBuiltin,
}

#[derive(Debug)]
struct Case {
    name: String,
    source: PathBuf,
    mode: Mode,
    dbs: Vec<Db>,
    files: Vec<FileSpec>,
}

#[derive(Debug)]
struct Db {
    /// File name, e.g. `sigs.ndb`.
    name: String,
    /// Signature lines as written (placeholders not yet expanded), with their line numbers.
    lines: Vec<(usize, String)>,
}

#[derive(Debug)]
struct FileSpec {
    name: String,
    line: usize,
    bytes: Vec<u8>,
    /// Expected signature names (`expect: none` is the empty set).
    expect: BTreeSet<String>,
    /// A deliberate, documented difference: what mxguard reports instead of
    /// clamscan's `expect` (`differs: NAMES -- reason`).
    differs: Option<BTreeSet<String>>,
}

fn err_at(case: &Path, line: usize, msg: impl std::fmt::Display) -> String {
    format!("{}:{}: {}", case.display(), line, msg)
}

fn valid_file_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

enum Section {
    None,
    Case,
    Db(usize),
    File(usize, FileBuilder),
}

fn parse_case(path: &Path, text: &str) -> Result<Case, String> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_string();
    let mut case = Case {
        name,
        source: path.to_path_buf(),
        mode: Mode::Parity,
        dbs: vec![],
        files: vec![],
    };
    let mut section = Section::None;
    let mut expects: Vec<Option<BTreeSet<String>>> = vec![];

    fn finish(section: &mut Section, case: &mut Case, path: &Path) -> Result<(), String> {
        if let Section::File(i, b) = std::mem::replace(section, Section::None) {
            let line = case.files[i].line;
            case.files[i].bytes = b.build().map_err(|e| err_at(path, line, e))?;
        }
        Ok(())
    }

    for (idx, raw) in text.lines().enumerate() {
        let lno = idx + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            finish(&mut section, &mut case, path)?;
            let inner = trimmed[1..trimmed.len() - 1].trim();
            let (kind, arg) = match inner.split_once(char::is_whitespace) {
                Some((k, a)) => (k, a.trim()),
                None => (inner, ""),
            };
            match kind {
                "case" => section = Section::Case,
                "db" => {
                    let ext = arg.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
                    if !valid_file_name(arg) || !DB_EXTS.contains(&ext) {
                        return Err(err_at(
                            path,
                            lno,
                            format!("bad database name `{arg}` (extensions: {DB_EXTS:?})"),
                        ));
                    }
                    if case.dbs.iter().any(|d| d.name == arg) {
                        return Err(err_at(
                            path,
                            lno,
                            format!("database `{arg}` declared twice"),
                        ));
                    }
                    case.dbs.push(Db {
                        name: arg.to_string(),
                        lines: vec![],
                    });
                    section = Section::Db(case.dbs.len() - 1);
                }
                "file" => {
                    if !valid_file_name(arg) {
                        return Err(err_at(path, lno, format!("bad file name `{arg}`")));
                    }
                    if case.files.iter().any(|f| f.name == arg) {
                        return Err(err_at(path, lno, format!("file `{arg}` declared twice")));
                    }
                    case.files.push(FileSpec {
                        name: arg.to_string(),
                        line: lno,
                        bytes: vec![],
                        expect: BTreeSet::new(),
                        differs: None,
                    });
                    expects.push(None);
                    section = Section::File(case.files.len() - 1, FileBuilder::default());
                }
                _ => return Err(err_at(path, lno, format!("unknown section `[{inner}]`"))),
            }
            continue;
        }
        match &mut section {
            Section::None => {
                return Err(err_at(
                    path,
                    lno,
                    "text outside of a [case], [db] or [file] section",
                ))
            }
            Section::Case => {
                let (k, v) = trimmed
                    .split_once(':')
                    .ok_or_else(|| err_at(path, lno, "expected `key: value` in [case]"))?;
                match (k.trim(), v.trim()) {
                    ("mode", "parity") => case.mode = Mode::Parity,
                    ("mode", "mxguard-builtin") => case.mode = Mode::MxguardBuiltin,
                    (k, v) => {
                        return Err(err_at(
                            path,
                            lno,
                            format!("unknown [case] setting `{k}: {v}`"),
                        ))
                    }
                }
            }
            Section::Db(i) => case.dbs[*i].lines.push((lno, trimmed.to_string())),
            Section::File(i, builder) => {
                if let Some(rest) = trimmed.strip_prefix("differs:") {
                    let (names, reason) = rest
                        .split_once(" -- ")
                        .ok_or_else(|| err_at(path, lno, "`differs:` needs `NAMES -- reason`"))?;
                    if reason.trim().is_empty() {
                        return Err(err_at(path, lno, "`differs:` needs a reason"));
                    }
                    let names: BTreeSet<String> = names
                        .split_whitespace()
                        .filter(|n| *n != "none")
                        .map(str::to_string)
                        .collect();
                    case.files[*i].differs = Some(names);
                } else if let Some(rest) = trimmed.strip_prefix("expect:") {
                    if expects[*i].is_some() {
                        return Err(err_at(path, lno, "second `expect:` line for this file"));
                    }
                    let names: BTreeSet<String> =
                        rest.split_whitespace().map(str::to_string).collect();
                    let names = if names.len() == 1 && names.contains("none") {
                        BTreeSet::new()
                    } else {
                        names
                    };
                    if names.contains("none") {
                        return Err(err_at(path, lno, "`expect: none` cannot list names too"));
                    }
                    if names.is_empty() && rest.trim() != "none" {
                        return Err(err_at(path, lno, "`expect:` needs names, or `none`"));
                    }
                    expects[*i] = Some(names);
                } else {
                    builder.line(trimmed).map_err(|e| err_at(path, lno, e))?;
                }
            }
        }
    }
    finish(&mut section, &mut case, path)?;
    for (f, e) in case.files.iter_mut().zip(expects) {
        f.expect = e.ok_or_else(|| {
            err_at(
                path,
                f.line,
                format!("file `{}` has no `expect:` line", f.name),
            )
        })?;
    }
    if case.files.is_empty() {
        return Err(err_at(path, 1, "case declares no [file]"));
    }
    match case.mode {
        Mode::Parity if case.dbs.is_empty() => {
            return Err(err_at(path, 1, "parity case declares no [db]"))
        }
        Mode::MxguardBuiltin if !case.dbs.is_empty() => {
            return Err(err_at(
                path,
                1,
                "mode mxguard-builtin uses the built-in database only; remove the [db]",
            ))
        }
        _ => {}
    }
    Ok(case)
}

// ---------------------------------------------------------------------------
// File contents: a tiny language (see README.md)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExeKind {
    Pe32,
    Elf32,
    Elf64,
}

/// An executable's entry point.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// `S<index>+<offset>`: in a section (index as ClamAV counts it).
    Section { section: usize, offset: u64 },
    /// `0x...`: a raw RVA (PE only), e.g. inside the headers.
    Rva(u64),
}

/// One `@section` and its optional header overrides (PE only).
#[derive(Debug, Default)]
struct Sect {
    name: String,
    data: Vec<u8>,
    /// `ptr=`: PointerToRawData as written in the header (the data stays where
    /// the builder puts it).
    ptr: Option<u32>,
    /// `rawsize=`: SizeOfRawData as written in the header.
    rawsize: Option<u32>,
}

#[derive(Debug, Default)]
struct FileBuilder {
    /// Raw file bytes, or the overlay of an executable.
    raw: Vec<u8>,
    exe: Option<(ExeKind, Option<Entry>)>,
    sections: Vec<Sect>,
    in_overlay: bool,
}

impl FileBuilder {
    fn current(&mut self) -> Result<&mut Vec<u8>, String> {
        if self.exe.is_some() && !self.in_overlay {
            match self.sections.last_mut() {
                Some(s) => Ok(&mut s.data),
                None => Err("executable content before the first @section".into()),
            }
        } else {
            Ok(&mut self.raw)
        }
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        if let Some(d) = line.strip_prefix('@') {
            return self.directive(d);
        }
        let mut rest = line;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                return Ok(());
            }
            let (item, after) = parse_item(rest)?;
            let buf = self.current()?;
            match item {
                Item::Bytes(b, times) => {
                    for _ in 0..times {
                        buf.extend_from_slice(&b);
                    }
                }
                Item::Pad(to, byte) => {
                    if buf.len() > to {
                        return Err(format!("pad({to}): already {} bytes long", buf.len()));
                    }
                    buf.resize(to, byte);
                }
            }
            rest = after;
        }
    }

    fn directive(&mut self, d: &str) -> Result<(), String> {
        let mut words = d.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        match cmd {
            "pe32" | "elf32" | "elf64" => {
                if self.exe.is_some() || !self.raw.is_empty() {
                    return Err(format!("@{cmd} must come first in a [file]"));
                }
                let kind = match cmd {
                    "pe32" => ExeKind::Pe32,
                    "elf32" => ExeKind::Elf32,
                    _ => ExeKind::Elf64,
                };
                let mut entry = None;
                for a in args {
                    let v = a
                        .strip_prefix("entry=")
                        .ok_or_else(|| format!("unknown @{cmd} argument `{a}`"))?;
                    entry = Some(match v.strip_prefix('S') {
                        Some(v) => {
                            let (s, o) = v
                                .split_once('+')
                                .ok_or("entry must look like S<section>+<offset> or 0x<rva>")?;
                            Entry::Section {
                                section: parse_num(s)? as usize,
                                offset: parse_num(o)?,
                            }
                        }
                        None if kind == ExeKind::Pe32 => Entry::Rva(parse_num(v)?),
                        None => return Err("ELF entry must look like S<section>+<offset>".into()),
                    });
                }
                self.exe = Some((kind, entry));
                Ok(())
            }
            "section" => {
                if self.exe.is_none() || self.in_overlay {
                    return Err(
                        "@section needs a preceding @pe32/@elf32/@elf64 and no @overlay".into(),
                    );
                }
                let mut sect = Sect::default();
                for (i, a) in args.iter().enumerate() {
                    let pe = matches!(self.exe, Some((ExeKind::Pe32, _)));
                    match a.split_once('=') {
                        None if i == 0 => sect.name = a.to_string(),
                        Some(("ptr", v)) if pe => sect.ptr = Some(parse_num(v)? as u32),
                        Some(("rawsize", v)) if pe => sect.rawsize = Some(parse_num(v)? as u32),
                        _ => return Err(format!("unknown @section argument `{a}`")),
                    }
                }
                if sect.name.len() > 8 {
                    return Err(format!("section name `{}` longer than 8 bytes", sect.name));
                }
                self.sections.push(sect);
                Ok(())
            }
            "overlay" => {
                if self.exe.is_none() {
                    return Err("@overlay needs a preceding @pe32/@elf32/@elf64".into());
                }
                self.in_overlay = true;
                Ok(())
            }
            _ => Err(format!("unknown directive `@{cmd}`")),
        }
    }

    fn build(self) -> Result<Vec<u8>, String> {
        match self.exe {
            None => Ok(self.raw),
            Some((ExeKind::Pe32, entry)) => build_pe32(&self.sections, entry, &self.raw),
            Some((kind, entry)) => {
                build_elf(kind == ExeKind::Elf64, &self.sections, entry, &self.raw)
            }
        }
    }
}

enum Item {
    Bytes(Vec<u8>, usize),
    Pad(usize, u8),
}

fn parse_num(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("bad number `{s}`"))
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let n = parse_num(s)?;
    u8::try_from(n).map_err(|_| format!("byte value {n} out of range"))
}

/// Parses a `"..."` literal at the start of `s`; returns its bytes and the rest.
fn parse_string(s: &str) -> Result<(Vec<u8>, &str), String> {
    let body = s.strip_prefix('"').ok_or("expected a string literal")?;
    let mut out = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated escape")?;
                match e {
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    '0' => out.push(0),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'x' => {
                        let h: String = (0..2)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        out.push(
                            u8::from_str_radix(&h, 16).map_err(|_| format!("bad escape \\x{h}"))?,
                        );
                    }
                    _ => return Err(format!("unknown escape \\{e}")),
                }
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    Err("unterminated string literal".into())
}

fn parse_hex(s: &str) -> Result<(Vec<u8>, &str), String> {
    let body = s.strip_prefix("x\"").ok_or("expected x\"...\"")?;
    let end = body.find('"').ok_or("unterminated hex literal")?;
    let digits: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in x\"{}\"", &body[..end]));
    }
    let bytes = (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("bad hex `{}`", &digits[i..i + 2]))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    Ok((bytes, &body[end + 1..]))
}

/// One content item and its optional `*N` repetition.
fn parse_item(s: &str) -> Result<(Item, &str), String> {
    let (item, rest) = if s.starts_with('"') {
        let (b, r) = parse_string(s)?;
        (Item::Bytes(b, 1), r)
    } else if s.starts_with("x\"") {
        let (b, r) = parse_hex(s)?;
        (Item::Bytes(b, 1), r)
    } else {
        let open = s.find('(').ok_or_else(|| format!("cannot parse `{s}`"))?;
        let func = &s[..open];
        // Arguments: string literals or bare words, separated by commas.
        let mut args: Vec<Result<Vec<u8>, String>> = vec![];
        let mut r = &s[open + 1..];
        loop {
            r = r.trim_start();
            if let Some(after) = r.strip_prefix(')') {
                r = after;
                break;
            }
            if r.starts_with('"') {
                let (b, after) = parse_string(r)?;
                args.push(Ok(b));
                r = after;
            } else {
                let end = r
                    .find([',', ')'])
                    .ok_or_else(|| format!("unterminated {func}("))?;
                args.push(Err(r[..end].trim().to_string()));
                r = &r[end..];
            }
            r = r.trim_start();
            if let Some(after) = r.strip_prefix(',') {
                r = after;
            }
        }
        let word = |i: usize| -> Result<&str, String> {
            match args.get(i) {
                Some(Err(w)) => Ok(w.as_str()),
                _ => Err(format!("{func}(): argument {} must be a number", i + 1)),
            }
        };
        let item = match (func, args.len()) {
            ("fill", 1 | 2) => {
                let n = parse_num(word(0)?)? as usize;
                let b = if args.len() == 2 {
                    parse_byte(word(1)?)?
                } else {
                    0
                };
                Item::Bytes(vec![b; n], 1)
            }
            ("rand", 2) => Item::Bytes(
                pseudo_random(parse_num(word(0)?)? as usize, parse_num(word(1)?)?),
                1,
            ),
            ("pad", 1 | 2) => {
                let b = if args.len() == 2 {
                    parse_byte(word(1)?)?
                } else {
                    0
                };
                Item::Pad(parse_num(word(0)?)? as usize, b)
            }
            ("wide", 1) => match &args[0] {
                Ok(s) => Item::Bytes(s.iter().flat_map(|&c| [c, 0]).collect(), 1),
                Err(_) => return Err("wide() takes a string literal".into()),
            },
            _ => {
                return Err(format!(
                    "unknown function {func}() with {} argument(s)",
                    args.len()
                ))
            }
        };
        (item, r)
    };
    if let Some(after) = rest.strip_prefix('*') {
        let end = after
            .find(|c: char| c.is_whitespace())
            .unwrap_or(after.len());
        let times = parse_num(&after[..end])? as usize;
        return match item {
            Item::Bytes(b, _) => Ok((Item::Bytes(b, times), &after[end..])),
            Item::Pad(..) => Err("pad() cannot be repeated".into()),
        };
    }
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return Err(format!("unexpected `{rest}`"));
    }
    Ok((item, rest))
}

/// Deterministic filler: xorshift64* from `seed`.
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn align(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A minimal valid PE32 (i386, GUI subsystem): DOS header, PE header, one
/// section header per `@section`; file alignment 0x200, section alignment
/// 0x1000; each section's raw data is its content padded with zeros to 0x200.
/// Sections are numbered from 0. The overlay follows the last section.
fn build_pe32(sections: &[Sect], entry: Option<Entry>, overlay: &[u8]) -> Result<Vec<u8>, String> {
    const FA: usize = 0x200;
    const SA: usize = 0x1000;
    if sections.is_empty() {
        return Err("@pe32 needs at least one @section".into());
    }
    let e_lfanew = 0x40;
    let opt_size = 0xE0;
    let sec_table = e_lfanew + 4 + 20 + opt_size;
    let headers = align(sec_table + 40 * sections.len(), FA);
    let mut raw_off = vec![];
    let mut raw_size = vec![];
    let mut off = headers;
    for sect in sections {
        let sz = align(sect.data.len().max(1), FA);
        raw_off.push(off);
        raw_size.push(sz);
        off += sz;
    }
    let va = |i: usize| SA * (i + 1);
    let image_size = va(sections.len() - 1) + align(raw_size[sections.len() - 1], SA);
    let ep_rva = match entry {
        None => va(0),
        Some(Entry::Rva(rva)) => rva as usize,
        Some(Entry::Section { section, offset }) => {
            if section >= sections.len() {
                return Err(format!("entry section S{section} does not exist"));
            }
            va(section) + offset as usize
        }
    };
    let mut f = vec![0u8; off];
    // DOS header.
    f[0] = b'M';
    f[1] = b'Z';
    put16(&mut f, 0x02, 0x90); // bytes on last page
    put16(&mut f, 0x04, 3); // pages
    put16(&mut f, 0x08, 4); // header paragraphs
    put16(&mut f, 0x0C, 0xFFFF); // max alloc
    put16(&mut f, 0x10, 0xB8); // sp
    put16(&mut f, 0x18, 0x40); // relocation table offset
    put32(&mut f, 0x3C, e_lfanew as u32);
    // PE signature and COFF header.
    f[e_lfanew..e_lfanew + 4].copy_from_slice(b"PE\0\0");
    let coff = e_lfanew + 4;
    put16(&mut f, coff, 0x14C); // i386
    put16(&mut f, coff + 2, sections.len() as u16);
    put16(&mut f, coff + 16, opt_size as u16);
    put16(&mut f, coff + 18, 0x0102); // executable image, 32-bit machine
                                      // Optional header (PE32).
    let o = coff + 20;
    put16(&mut f, o, 0x10B);
    f[o + 2] = 6; // linker version
    let code: usize = raw_size.iter().sum();
    put32(&mut f, o + 4, code as u32); // SizeOfCode
    put32(&mut f, o + 16, ep_rva as u32);
    put32(&mut f, o + 20, va(0) as u32); // BaseOfCode
    put32(&mut f, o + 24, va(0) as u32); // BaseOfData
    put32(&mut f, o + 28, 0x40_0000); // ImageBase
    put32(&mut f, o + 32, SA as u32);
    put32(&mut f, o + 36, FA as u32);
    put16(&mut f, o + 40, 4); // OS version
    put16(&mut f, o + 48, 4); // subsystem version
    put32(&mut f, o + 56, image_size as u32);
    put32(&mut f, o + 60, headers as u32);
    put16(&mut f, o + 68, 2); // GUI
    put32(&mut f, o + 72, 0x10_0000); // stack reserve
    put32(&mut f, o + 76, 0x1000); // stack commit
    put32(&mut f, o + 80, 0x10_0000); // heap reserve
    put32(&mut f, o + 84, 0x1000); // heap commit
    put32(&mut f, o + 92, 16); // NumberOfRvaAndSizes
                               // Section headers and data.
    for (i, sect) in sections.iter().enumerate() {
        let h = sec_table + 40 * i;
        f[h..h + sect.name.len()].copy_from_slice(sect.name.as_bytes());
        put32(&mut f, h + 8, raw_size[i] as u32); // VirtualSize
        put32(&mut f, h + 12, va(i) as u32);
        put32(&mut f, h + 16, sect.rawsize.unwrap_or(raw_size[i] as u32));
        put32(&mut f, h + 20, sect.ptr.unwrap_or(raw_off[i] as u32));
        let chr = if i == 0 { 0x6000_0020 } else { 0xC000_0040 };
        put32(&mut f, h + 36, chr);
        f[raw_off[i]..raw_off[i] + sect.data.len()].copy_from_slice(&sect.data);
    }
    f.extend_from_slice(overlay);
    Ok(f)
}

/// A minimal little-endian ELF executable (i386 or x86-64): one PT_LOAD
/// segment mapping the whole file at 0x08048000, the sections' data from
/// offset 0x100 (each padded to 16 bytes), then the section header table
/// (a null section 0, then one PROGBITS section per `@section`: ClamAV counts
/// the null section, so the first `@section` is S1), then the overlay.
fn build_elf(
    is64: bool,
    sections: &[Sect],
    entry: Option<Entry>,
    overlay: &[u8],
) -> Result<Vec<u8>, String> {
    const BASE: u64 = 0x0804_8000;
    let (ehsize, phsize, shsize) = if is64 { (64, 56, 64) } else { (52, 32, 40) };
    let mut off = 0x100usize;
    let mut offs = vec![];
    for sect in sections {
        offs.push(off);
        off += align(sect.data.len(), 16);
    }
    let shoff = off;
    let shnum = sections.len() + 1;
    let total = shoff + shsize * shnum + overlay.len();
    let entry_off = match entry {
        None => offs.first().copied().unwrap_or(0x100) as u64,
        Some(Entry::Section { section, offset }) => {
            if section == 0 || section > sections.len() {
                return Err(format!(
                    "entry section S{section} does not exist (ELF user sections are S1..)"
                ));
            }
            offs[section - 1] as u64 + offset
        }
        Some(Entry::Rva(_)) => return Err("ELF entry must look like S<section>+<offset>".into()),
    };
    let mut f = vec![0u8; shoff + shsize * shnum];
    f[0..4].copy_from_slice(b"\x7fELF");
    f[4] = if is64 { 2 } else { 1 };
    f[5] = 1; // little endian
    f[6] = 1; // version
    put16(&mut f, 16, 2); // ET_EXEC
    put16(&mut f, 18, if is64 { 62 } else { 3 });
    put32(&mut f, 20, 1);
    if is64 {
        put64(&mut f, 24, BASE + entry_off);
        put64(&mut f, 32, ehsize as u64); // phoff
        put64(&mut f, 40, shoff as u64);
        put16(&mut f, 52, ehsize as u16);
        put16(&mut f, 54, phsize as u16);
        put16(&mut f, 56, 1);
        put16(&mut f, 58, shsize as u16);
        put16(&mut f, 60, shnum as u16);
        // Program header.
        let p = ehsize;
        put32(&mut f, p, 1); // PT_LOAD
        put32(&mut f, p + 4, 5); // R+X
        put64(&mut f, p + 16, BASE);
        put64(&mut f, p + 24, BASE);
        put64(&mut f, p + 32, total as u64);
        put64(&mut f, p + 40, total as u64);
        put64(&mut f, p + 48, 0x1000);
    } else {
        put32(&mut f, 24, (BASE + entry_off) as u32);
        put32(&mut f, 28, ehsize as u32);
        put32(&mut f, 32, shoff as u32);
        put16(&mut f, 40, ehsize as u16);
        put16(&mut f, 42, phsize as u16);
        put16(&mut f, 44, 1);
        put16(&mut f, 46, shsize as u16);
        put16(&mut f, 48, shnum as u16);
        let p = ehsize;
        put32(&mut f, p, 1);
        put32(&mut f, p + 8, BASE as u32);
        put32(&mut f, p + 12, BASE as u32);
        put32(&mut f, p + 16, total as u32);
        put32(&mut f, p + 20, total as u32);
        put32(&mut f, p + 24, 5);
        put32(&mut f, p + 28, 0x1000);
    }
    for (i, sect) in sections.iter().enumerate() {
        f[offs[i]..offs[i] + sect.data.len()].copy_from_slice(&sect.data);
        let h = shoff + shsize * (i + 1);
        let size = align(sect.data.len(), 16) as u64;
        put32(&mut f, h + 4, 1); // SHT_PROGBITS
        if is64 {
            put64(&mut f, h + 8, 6); // ALLOC | EXECINSTR
            put64(&mut f, h + 16, BASE + offs[i] as u64);
            put64(&mut f, h + 24, offs[i] as u64);
            put64(&mut f, h + 32, size);
            put64(&mut f, h + 48, 16);
        } else {
            put32(&mut f, h + 8, 6);
            put32(&mut f, h + 12, (BASE + offs[i] as u64) as u32);
            put32(&mut f, h + 16, offs[i] as u32);
            put32(&mut f, h + 20, size as u32);
            put32(&mut f, h + 32, 16);
        }
    }
    f.extend_from_slice(overlay);
    Ok(f)
}

// ---------------------------------------------------------------------------
// Generating a case on disk
// ---------------------------------------------------------------------------

/// Hex digest of `data` by a coreutils tool (`md5sum`, `sha1sum`, `sha256sum`).
fn digest(tool: &str, data: &[u8]) -> String {
    let mut child = Command::new(tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} (coreutils) for signature placeholders: {e}")
        });
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{tool} failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The name a database line declares (first field; `;` for .ldb, `:` otherwise).
fn sig_name(db_name: &str, line: &str) -> String {
    let sep = if db_name.ends_with(".ldb") { ';' } else { ':' };
    let fields: Vec<&str> = line.split(sep).collect();
    if db_name.ends_with(".hdb")
        || db_name.ends_with(".hsb")
        || db_name.ends_with(".fp")
        || db_name.ends_with(".sfp")
    {
        fields.get(2).copied().unwrap_or("").to_string()
    } else {
        fields[0].to_string()
    }
}

/// Expands `${md5:FILE}`, `${sha1:FILE}`, `${sha256:FILE}` (upper-case hex
/// with `MD5`, `SHA1`, `SHA256`), `${size:FILE}` and `${md5line:SIGNAME}`
/// (MD5 of the expanded database line declaring SIGNAME).
fn expand(
    case: &Case,
    line: &str,
    lno: usize,
    lines_done: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| err_at(&case.source, lno, "unterminated ${"))?
            + start;
        let inner = &rest[start + 2..end];
        let (what, arg) = inner
            .split_once(':')
            .ok_or_else(|| err_at(&case.source, lno, format!("bad placeholder ${{{inner}}}")))?;
        let value = if what == "md5line" {
            lines_done
                .get(arg)
                .map(|l| digest("md5sum", l.as_bytes()))
                .ok_or_else(|| {
                    err_at(
                        &case.source,
                        lno,
                        format!("${{md5line:{arg}}}: no earlier database line declares `{arg}`"),
                    )
                })?
        } else {
            let f = case.files.iter().find(|f| f.name == arg).ok_or_else(|| {
                err_at(&case.source, lno, format!("${{{inner}}}: no [file {arg}]"))
            })?;
            match what {
                "md5" => digest("md5sum", &f.bytes),
                "sha1" => digest("sha1sum", &f.bytes),
                "sha256" => digest("sha256sum", &f.bytes),
                "MD5" => digest("md5sum", &f.bytes).to_uppercase(),
                "SHA1" => digest("sha1sum", &f.bytes).to_uppercase(),
                "SHA256" => digest("sha256sum", &f.bytes).to_uppercase(),
                "size" => f.bytes.len().to_string(),
                _ => {
                    return Err(err_at(
                        &case.source,
                        lno,
                        format!("unknown placeholder ${{{inner}}}"),
                    ))
                }
            }
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Generated {
    db_dir: PathBuf,
    files: Vec<PathBuf>,
}

fn generate(case: &Case, dir: &Path) -> Result<Generated, String> {
    let db_dir = dir.join("db");
    let files_dir = dir.join("files");
    std::fs::create_dir_all(&db_dir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&files_dir).map_err(|e| e.to_string())?;
    let mut files = vec![];
    for f in &case.files {
        let p = files_dir.join(&f.name);
        std::fs::write(&p, &f.bytes).map_err(|e| e.to_string())?;
        files.push(p);
    }
    // Databases in declaration order, so `${md5line:X}` can refer to an earlier one.
    let mut lines_done: BTreeMap<String, String> = BTreeMap::new();
    for db in &case.dbs {
        let mut text = String::new();
        for (lno, line) in &db.lines {
            let l = expand(case, line, *lno, &lines_done)?;
            if !db.name.ends_with(".ign2") {
                lines_done
                    .entry(sig_name(&db.name, &l))
                    .or_insert_with(|| l.clone());
            }
            text.push_str(&l);
            text.push('\n');
        }
        std::fs::write(db_dir.join(&db.name), text).map_err(|e| e.to_string())?;
    }
    Ok(Generated { db_dir, files })
}

// ---------------------------------------------------------------------------
// Running the tools
// ---------------------------------------------------------------------------

/// What one tool said about one file.
#[derive(Debug, Default, Clone)]
struct FileResult {
    names: BTreeSet<String>,
    ok_line: bool,
    errors: Vec<String>,
}

#[derive(Debug, Default)]
struct ToolRun {
    per_file: BTreeMap<String, FileResult>,
    /// Output lines that name no input file, or say something unexpected.
    stray: Vec<String>,
    exit: Option<i32>,
    stderr: String,
    command: String,
}

fn command_line(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().to_string();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Parses clamscan-style output: `PATH: NAME FOUND`, `PATH: OK`, `PATH: REASON ERROR`.
fn parse_output(out: &Output, files: &[PathBuf], command: String) -> ToolRun {
    let mut run = ToolRun {
        exit: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command,
        ..Default::default()
    };
    for f in files {
        run.per_file.insert(file_key(f), FileResult::default());
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.trim().is_empty() {
            continue;
        }
        let hit = files.iter().find_map(|f| {
            let p = f.to_string_lossy();
            line.strip_prefix(p.as_ref())
                .and_then(|r| r.strip_prefix(": "))
                .map(|r| (file_key(f), r))
        });
        let Some((key, rest)) = hit else {
            run.stray.push(line.to_string());
            continue;
        };
        let r = run.per_file.get_mut(&key).unwrap();
        if let Some(name) = rest.strip_suffix(" FOUND") {
            r.names
                .insert(name.strip_suffix(".UNOFFICIAL").unwrap_or(name).to_string());
        } else if rest == "OK" {
            r.ok_line = true;
        } else if rest.ends_with(" ERROR") {
            r.errors.push(rest.to_string());
        } else {
            run.stray.push(line.to_string());
        }
    }
    run
}

fn file_key(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn clamscan_bin() -> String {
    std::env::var("PARITY_CLAMSCAN").unwrap_or_else(|_| "clamscan".to_string())
}

fn run_clamscan(g: &Generated) -> ToolRun {
    let mut cmd = Command::new(clamscan_bin());
    cmd.args(["--allmatch", "--no-summary", "-d"])
        .arg(&g.db_dir)
        .args(&g.files);
    let line = command_line(&cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"));
    parse_output(&out, &g.files, line)
}

fn mxguard_cmd(case: &Case, g: &Generated, json: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mxguard"));
    // Every case has its own temporary databases: keep no compiled cache of them.
    cmd.arg("scan").arg("--no-cache");
    // clamscan's heuristic alerts (--alert-broken, --alert-encrypted, ...) are off
    // by default; ours are on. Signature parity is what this suite compares.
    cmd.arg("--no-heuristics");
    if case.mode == Mode::Parity {
        cmd.arg("--db").arg(&g.db_dir).arg("--no-builtin");
    }
    cmd.arg("--all-match");
    if json {
        cmd.arg("--json");
    }
    cmd.args(&g.files);
    cmd
}

fn run_mxguard(case: &Case, g: &Generated) -> ToolRun {
    let mut cmd = mxguard_cmd(case, g, false);
    let line = command_line(&cmd);
    match cmd.output() {
        Ok(out) => parse_output(&out, &g.files, line),
        Err(e) => ToolRun {
            stray: vec![format!("cannot run: {e}")],
            command: line,
            ..Default::default()
        },
    }
}

/// `mxguard scan --json`: one object per input. Returns problems found.
fn check_json(case: &Case, g: &Generated, text: &ToolRun) -> Vec<String> {
    let mut cmd = mxguard_cmd(case, g, true);
    let line = command_line(&cmd);
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return vec![format!("cannot run `{line}`: {e}")],
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut problems = vec![];
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for v in serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>() {
        let v = match v {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("`{line}` printed invalid JSON: {e}"));
                break;
            }
        };
        let path = v.get("path").and_then(|p| p.as_str()).unwrap_or("");
        let Some(f) = g.files.iter().find(|f| f.to_string_lossy() == path) else {
            problems.push(format!("JSON object for an unknown path: {v}"));
            continue;
        };
        let names: BTreeSet<String> = v
            .get("threats")
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let verdict = v.get("verdict").and_then(|x| x.as_str()).unwrap_or("");
        let want = if names.is_empty() {
            "clean"
        } else {
            "infected"
        };
        if verdict != want {
            problems.push(format!(
                "{}: JSON verdict `{verdict}` with threats {names:?}",
                file_key(f)
            ));
        }
        seen.insert(file_key(f), names);
    }
    for (key, r) in &text.per_file {
        match seen.get(key) {
            None => problems.push(format!("{key}: no JSON object")),
            Some(n) if *n != r.names => problems.push(format!(
                "{key}: JSON threats {:?} but text output {:?}",
                n, r.names
            )),
            _ => {}
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------

fn fmt_set(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "(none)".to_string()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

/// Problems with one tool's run as such (exit status, errors, stray output).
fn run_problems(tool: &str, run: &ToolRun) -> Vec<String> {
    let mut p = vec![];
    let any = run.per_file.values().any(|r| !r.names.is_empty());
    let want = if any { 1 } else { 0 };
    if run.exit != Some(want) {
        p.push(format!(
            "{tool} exited {:?}, expected {want} (findings: {any})",
            run.exit
        ));
    }
    for (f, r) in &run.per_file {
        if !r.errors.is_empty() {
            p.push(format!(
                "{tool} reported an error for {f}: {}",
                r.errors.join("; ")
            ));
        }
        if r.names.is_empty() && !r.ok_line && r.errors.is_empty() {
            p.push(format!("{tool} printed no line for {f}"));
        }
        if !r.names.is_empty() && r.ok_line {
            p.push(format!("{tool} printed both OK and findings for {f}"));
        }
    }
    for s in &run.stray {
        p.push(format!("{tool} printed an unexpected line: {s}"));
    }
    if !p.is_empty() {
        p.push(format!("  command: {}", run.command));
        if !run.stderr.trim().is_empty() {
            let tail: Vec<&str> = run.stderr.lines().rev().take(8).collect();
            p.push(format!(
                "  stderr (last lines):\n{}",
                tail.into_iter()
                    .rev()
                    .map(|l| format!("    {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    p
}

struct Outcome {
    report: String,
    failed: bool,
    /// (file, name) pairs clamscan found.
    pairs: usize,
    /// Parity differences: pairs only one tool found.
    only_clamscan: usize,
    only_mxguard: usize,
}

fn check_case(case: &Case, base: &Path, clamscan_only: bool) -> Outcome {
    let mut report = String::new();
    let mut failed = false;
    let dir = base.join(&case.name);
    let g = match generate(case, &dir) {
        Ok(g) => g,
        Err(e) => {
            let report = format!("  generation failed: {e}\n");
            return Outcome {
                report,
                failed: true,
                pairs: 0,
                only_clamscan: 0,
                only_mxguard: 0,
            };
        }
    };
    let clam = (case.mode == Mode::Parity).then(|| run_clamscan(&g));
    let mx = (!clamscan_only).then(|| run_mxguard(case, &g));

    if let Some(c) = &clam {
        for p in run_problems("clamscan", c) {
            failed = true;
            let _ = writeln!(report, "  [clamscan run] {p}");
        }
    }
    if let Some(m) = &mx {
        for p in run_problems("mxguard", m) {
            failed = true;
            let _ = writeln!(report, "  [mxguard run] {p}");
        }
        if m.stray.is_empty() && m.exit.is_some() {
            for p in check_json(case, &g, m) {
                failed = true;
                let _ = writeln!(report, "  [mxguard --json] {p}");
            }
        }
    }

    let empty = FileResult::default();
    let (mut pairs, mut only_clamscan, mut only_mxguard) = (0, 0, 0);
    for f in &case.files {
        let c = clam
            .as_ref()
            .map(|r| &r.per_file.get(&f.name).unwrap_or(&empty).names);
        let m = mx
            .as_ref()
            .map(|r| &r.per_file.get(&f.name).unwrap_or(&empty).names);
        let mut lines = vec![];
        if let Some(c) = c {
            pairs += c.len();
            if *c != f.expect {
                lines.push(format!(
                    "CASE: expected {}, clamscan found {} (fix the case, or clamscan changed)",
                    fmt_set(&f.expect),
                    fmt_set(c)
                ));
            }
        }
        if let (Some(d), Some(m)) = (&f.differs, m) {
            // A documented deliberate difference: mxguard must report exactly `d`.
            if m != d {
                lines.push(format!(
                    "DIFFERS: mxguard should report {} (documented difference), found {}",
                    fmt_set(d),
                    fmt_set(m)
                ));
            }
        }
        match (c, m) {
            _ if f.differs.is_some() => {}
            (Some(c), Some(m)) if c != m => {
                let only_c: BTreeSet<String> = c.difference(m).cloned().collect();
                let only_m: BTreeSet<String> = m.difference(c).cloned().collect();
                only_clamscan += only_c.len();
                only_mxguard += only_m.len();
                let mut parts = vec![];
                if !only_c.is_empty() {
                    parts.push(format!("only clamscan: {}", fmt_set(&only_c)));
                }
                if !only_m.is_empty() {
                    parts.push(format!("only mxguard: {}", fmt_set(&only_m)));
                }
                lines.push(format!("PARITY: {}", parts.join("; ")));
            }
            (None, Some(m)) if *m != f.expect => {
                lines.push(format!(
                    "expected {}, mxguard found {}",
                    fmt_set(&f.expect),
                    fmt_set(m)
                ));
            }
            _ => {}
        }
        if !lines.is_empty() {
            failed = true;
            let _ = writeln!(
                report,
                "  {} (line {}): {}",
                f.name,
                f.line,
                lines.join("\n      ")
            );
        }
    }
    if clamscan_only {
        for f in &case.files {
            let shown = match clam.as_ref().and_then(|r| r.per_file.get(&f.name)) {
                Some(c) => fmt_set(&c.names),
                None => "(mxguard-only case: not run)".to_string(),
            };
            let _ = writeln!(report, "    {:<28} clamscan: {shown}", f.name);
        }
    }
    Outcome {
        report,
        failed,
        pairs,
        only_clamscan,
        only_mxguard,
    }
}

fn load_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity/cases");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    paths.sort();
    let mut errors = vec![];
    let mut cases = vec![];
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
        match parse_case(&p, &text) {
            Ok(c) => cases.push(c),
            Err(e) => errors.push(e),
        }
    }
    assert!(
        errors.is_empty(),
        "malformed parity case file(s):\n{}",
        errors.join("\n")
    );
    cases
}

fn check_clamscan_present() -> String {
    let bin = clamscan_bin();
    match Command::new(&bin).arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => panic!(
            "`{bin} --version` failed ({}): the parity suite needs a working clamscan \
             (Debian/Ubuntu: apt-get install clamav). It never skips.\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "cannot run `{bin}` ({e}): the parity suite needs clamscan on PATH \
             (Debian/Ubuntu: apt-get install clamav; or set PARITY_CLAMSCAN). It never skips."
        ),
    }
}

#[test]
fn mxguard_matches_clamscan_allmatch() {
    let started = Instant::now();
    let version = check_clamscan_present();
    let clamscan_only = std::env::var("PARITY_CLAMSCAN_ONLY").is_ok_and(|v| v == "1");
    let filter: Vec<String> = std::env::var("PARITY_CASES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();

    let all = load_cases();
    let total = all.len();
    let cases: Vec<Case> = all
        .into_iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if filter.is_empty() {
        assert!(
            total >= MIN_CASES,
            "only {total} parity cases found; at least {MIN_CASES} must run"
        );
    } else {
        assert!(!cases.is_empty(), "PARITY_CASES={filter:?} selects no case");
    }

    let base = std::env::temp_dir().join(format!(
        "mxguard-parity-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&base).unwrap();

    // Cases are independent: run them on a few threads.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(vec![]);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let o = check_case(case, &base, clamscan_only);
                results.lock().unwrap().push((i, o));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);

    let mut report = String::new();
    let mut failed_cases = 0;
    let (mut pairs, mut files, mut only_c, mut only_m) = (0, 0, 0, 0);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (i, o) in &results {
        let case = &cases[*i];
        pairs += o.pairs;
        only_c += o.only_clamscan;
        only_m += o.only_mxguard;
        files += case.files.len();
        if o.failed {
            failed_cases += 1;
        }
        if o.failed || clamscan_only {
            let mode = if case.mode == Mode::MxguardBuiltin {
                " [mxguard built-in database only]"
            } else {
                ""
            };
            let source = case.source.strip_prefix(manifest).unwrap_or(&case.source);
            let _ = writeln!(report, "case {} ({}){mode}:", case.name, source.display());
            report.push_str(&o.report);
        }
    }
    let keep = failed_cases > 0 || std::env::var("PARITY_KEEP").is_ok_and(|v| v == "1");
    let summary = format!(
        "parity: {} case(s), {files} file(s), {pairs} (file, name) pair(s) found by clamscan; {failed_cases} failing \
         case(s), {only_c} pair(s) only clamscan found, {only_m} only mxguard found; {:.1}s; {version}{}{}",
        cases.len(),
        started.elapsed().as_secs_f64(),
        if clamscan_only { "; PARITY_CLAMSCAN_ONLY: mxguard NOT run" } else { "" },
        if keep { format!("; generated files kept in {}", base.display()) } else { String::new() },
    );
    if !keep {
        let _ = std::fs::remove_dir_all(&base);
    }
    eprintln!("{summary}");
    if failed_cases > 0 {
        panic!("\n{report}\n{summary}");
    } else if clamscan_only {
        eprintln!("{report}");
    }
}

/// The case language itself: items, repetition, padding, escapes, and the
/// executable builders' layout (what the README promises case authors).
#[test]
fn case_language_builds_the_documented_bytes() {
    let build = |lines: &[&str]| {
        let mut b = FileBuilder::default();
        for l in lines {
            b.line(l).unwrap();
        }
        b.build().unwrap()
    };
    assert_eq!(
        build(&[r#"x"00 4d5a" "a\x41\n\\\"" fill(2, 0x7f) "ab"*2 pad(16) wide("hi")"#]),
        b"\x00MZaA\n\\\"\x7f\x7fabab\x00\x00h\x00i\x00"
    );
    assert_eq!(pseudo_random(16, 7), pseudo_random(16, 7));
    assert_ne!(pseudo_random(16, 7), pseudo_random(16, 8));
    assert!(FileBuilder::default().line("pad(1) pad(0)").is_err());

    let pe = build(&[
        "@pe32 entry=S1+3",
        "@section .text",
        "\"code\"",
        "@section .data",
        "\"data\"",
        "@overlay",
        "\"tail\"",
    ]);
    assert_eq!(&pe[..2], b"MZ");
    assert_eq!(&pe[0x40..0x44], b"PE\0\0");
    assert_eq!(&pe[0x200..0x204], b"code");
    assert_eq!(&pe[0x400..0x404], b"data");
    assert_eq!(&pe[0x600..], b"tail");
    let ep_rva = u32::from_le_bytes(pe[0x40 + 24 + 16..0x40 + 24 + 20].try_into().unwrap());
    assert_eq!(ep_rva, 0x2000 + 3);

    let odd = build(&[
        "@pe32 entry=0x40",
        "@section .text ptr=0x210 rawsize=0x10000",
        "\"code\"",
    ]);
    let (sect, opt) = (0x40 + 24 + 0xE0, 0x40 + 24);
    assert_eq!(
        u32::from_le_bytes(odd[opt + 16..opt + 20].try_into().unwrap()),
        0x40
    );
    assert_eq!(
        u32::from_le_bytes(odd[sect + 16..sect + 20].try_into().unwrap()),
        0x10000
    );
    assert_eq!(
        u32::from_le_bytes(odd[sect + 20..sect + 24].try_into().unwrap()),
        0x210
    );
    assert_eq!(&odd[0x200..0x204], b"code");

    let elf = build(&["@elf64 entry=S1+2", "@section .text", "\"code\""]);
    assert_eq!(&elf[..5], b"\x7fELF\x02");
    assert_eq!(&elf[0x100..0x104], b"code");
    let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
    assert_eq!(entry, 0x0804_8000 + 0x102);
    let shnum = u16::from_le_bytes(elf[60..62].try_into().unwrap());
    assert_eq!(shnum, 2);
}
