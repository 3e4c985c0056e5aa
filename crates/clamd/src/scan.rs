//! Blocking scan work run on the pool: reports into clamd reply lines, and
//! SCAN / CONTSCAN / ALLMATCHSCAN / MULTISCAN over files and directories with
//! clamd's walking and reply rules (checked against clamd 1.4.6):
//!
//! - the path is used as given, trailing slashes removed and a run of leading
//!   slashes reduced to one; directories are walked recursively (in name
//!   order here; clamd uses the directory's order);
//! - symbolic links are never followed, at the top or inside directories
//!   (clamd's `FollowFileSymlinks`/`FollowDirectorySymlinks` default `no`):
//!   they count as visited and are skipped silently;
//! - other special files are skipped; at the top level clamd answers
//!   `path: Not supported file type ERROR` (then `path: OK`, as it does);
//! - SCAN and ALLMATCHSCAN stop at the first infected or failed file, CONTSCAN
//!   and MULTISCAN go on; ALLMATCHSCAN lists every finding of that file;
//! - at the end, `TOP: OK` when nothing was found and not everything visited
//!   failed.

use crate::pool::TaskCtx;
use crate::proto::{text, Line};
use mxguard_engine::Scanner;
use mxguard_types::{ScanOptions, ScanReport, Severity, Verdict};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What one scanned object came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    /// Threat names to report, in order (one unless all-match).
    Found(Vec<String>),
    Error(String),
}

/// The name clamd reports for a report without all-match: the first
/// signature hit, else the first heuristic or limit finding.
pub fn primary_finding(r: &ScanReport) -> Option<&str> {
    r.findings
        .iter()
        .find(|f| f.severity == Severity::Infected)
        .or(r.findings.first())
        .map(|f| f.name.as_str())
}

/// A report as clamd answers it: any finding is `FOUND` (signature hits
/// first; heuristic and limit findings too, as clamd reports heuristic
/// alerts); otherwise an error is `ERROR`; otherwise `OK`. With `all_match`
/// every finding is listed.
pub fn outcome(r: &ScanReport, all_match: bool) -> Outcome {
    if r.findings.is_empty() {
        return match (&r.error, r.verdict()) {
            (Some(e), _) => Outcome::Error(e.clone()),
            (None, Verdict::Error) => Outcome::Error("Scan error".into()),
            _ => Outcome::Clean,
        };
    }
    if all_match {
        Outcome::Found(r.findings.iter().map(|f| f.name.clone()).collect())
    } else {
        Outcome::Found(primary_finding(r).map(String::from).into_iter().collect())
    }
}

/// The reply lines for one object (`path: OK` included when clean).
pub fn outcome_lines(path: &[u8], o: &Outcome) -> Vec<Line> {
    match o {
        Outcome::Clean => vec![Line::ok(path)],
        Outcome::Found(names) => names.iter().map(|n| Line::found(path, n)).collect(),
        Outcome::Error(e) => vec![Line::error(Some(path), e)],
    }
}

/// `strerror` text of an I/O error ("No such file or directory"), without
/// Rust's " (os error N)" suffix.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Reads and scans one file as clamd reports it (`Access denied.` or
/// `Can't open file or directory` when it cannot be read).
pub fn scan_one_file(scanner: &Scanner, path: &[u8], all_match: bool) -> Outcome {
    let p = Path::new(OsStr::from_bytes(path));
    let data = match std::fs::File::open(p).and_then(|mut f| {
        let mut v = Vec::new();
        f.read_to_end(&mut v).map(|_| v)
    }) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Outcome::Error(text::ACCESS_DENIED.into())
        }
        Err(_) => return Outcome::Error(text::CANT_OPEN.into()),
    };
    let name = p.file_name().map(|n| n.to_string_lossy());
    let r = scanner.scan_named(&data, name.as_deref(), ScanOptions { all_match });
    outcome(&r, all_match)
}

/// Trailing slashes off (but `/` stays), leading runs of slashes to one.
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    while p.starts_with(b"//") {
        p = &p[1..];
    }
    p.to_vec()
}

/// The path commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    Scan,
    Cont,
    AllMatch,
    /// Walk only: files are returned to be scanned in parallel.
    Multi,
}

/// Counters behind the final `OK` (clamd's `scandata`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub errors: u64,
    pub infected: u64,
}

impl Counts {
    /// clamd prints `TOP: OK` when nothing was found and not everything failed.
    pub fn ok(&self) -> bool {
        self.infected == 0 && self.errors != self.total
    }
}

/// Walks `top` for a path command. Emits reply lines through `emit` (which
/// returns false when the client is gone: the walk stops). In
/// [`PathMode::Multi`] regular files are not scanned but collected into
/// `files` (the caller scans them in parallel and completes the counts).
/// Never follows symbolic links.
pub fn walk(
    scanner: &Scanner,
    top: &[u8],
    mode: PathMode,
    ctx: Option<&TaskCtx>,
    files: &mut Vec<Vec<u8>>,
    emit: &mut dyn FnMut(Line) -> bool,
) -> Counts {
    let mut c = Counts::default();
    let p = Path::new(OsStr::from_bytes(top));
    match std::fs::symlink_metadata(p) {
        Err(e) => {
            c.total += 1;
            c.errors += 1;
            emit(path_check(top, &e));
        }
        Ok(m) if m.file_type().is_symlink() => c.total += 1,
        Ok(m) if m.is_dir() => {
            c.total += 1;
            let mut w = Walker {
                scanner,
                mode,
                ctx,
                files,
                emit,
                c: &mut c,
            };
            let _ = w.dir(top);
        }
        Ok(m) if m.is_file() => {
            let mut w = Walker {
                scanner,
                mode,
                ctx,
                files,
                emit,
                c: &mut c,
            };
            let _ = w.file(top);
        }
        Ok(_) => {
            c.total += 1;
            emit(Line::error(Some(top), text::NOT_SUPPORTED_TYPE));
        }
    }
    c
}

fn path_check(path: &[u8], e: &std::io::Error) -> Line {
    Line::error(
        Some(path),
        &format!("{} {}.", text::PATH_CHECK, strerror(e)),
    )
}

struct Walker<'a> {
    scanner: &'a Scanner,
    mode: PathMode,
    ctx: Option<&'a TaskCtx>,
    files: &'a mut Vec<Vec<u8>>,
    emit: &'a mut dyn FnMut(Line) -> bool,
    c: &'a mut Counts,
}

/// Stop walking (SCAN's first hit, or the client went away).
struct Stop;

impl Walker<'_> {
    fn dir(&mut self, dir: &[u8]) -> Result<(), Stop> {
        let rd = match std::fs::read_dir(Path::new(OsStr::from_bytes(dir))) {
            Ok(rd) => rd,
            Err(e) => {
                self.c.total += 1;
                self.c.errors += 1;
                return self.say(path_check(dir, &e));
            }
        };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let mut full = dir.to_vec();
            if !full.ends_with(b"/") {
                full.push(b'/');
            }
            full.extend_from_slice(e.file_name().as_bytes());
            match e.file_type() {
                Ok(t) if t.is_dir() => self.dir(&full)?,
                Ok(t) if t.is_file() => self.file(&full)?,
                // Links and special files inside directories: skipped silently.
                Ok(_) => self.c.total += 1,
                Err(err) => {
                    self.c.total += 1;
                    self.c.errors += 1;
                    self.say(path_check(&full, &err))?;
                }
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &[u8]) -> Result<(), Stop> {
        if self.mode == PathMode::Multi {
            self.files.push(path.to_vec());
            return Ok(());
        }
        self.c.total += 1;
        if let Some(ctx) = self.ctx {
            ctx.set_file(&String::from_utf8_lossy(path));
        }
        let all = self.mode == PathMode::AllMatch;
        let o = scan_one_file(self.scanner, path, all);
        let stop_on_hit = matches!(self.mode, PathMode::Scan | PathMode::AllMatch);
        match &o {
            Outcome::Clean => Ok(()),
            Outcome::Found(_) => {
                self.c.infected += 1;
                for l in outcome_lines(path, &o) {
                    self.say(l)?;
                }
                if stop_on_hit {
                    Err(Stop)
                } else {
                    Ok(())
                }
            }
            Outcome::Error(_) => {
                self.c.errors += 1;
                for l in outcome_lines(path, &o) {
                    self.say(l)?;
                }
                if stop_on_hit {
                    Err(Stop)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn say(&mut self, l: Line) -> Result<(), Stop> {
        if (self.emit)(l) {
            Ok(())
        } else {
            Err(Stop)
        }
    }
}
