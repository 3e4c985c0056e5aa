//! `mxguard scan`: on-demand scanning with clamscan-like output.

use crate::DbArgs;
use anyhow::Result;
use mxguard_engine::{io_reason, load_signatures, Scanner, SignatureEngine};
use mxguard_types::{ScanOptions, ScanReport, Verdict};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Report every matching signature, not only the first.
    #[arg(long)]
    pub all_match: bool,
    /// One JSON object per scanned file.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print a summary at the end, like clamscan.
    #[arg(long)]
    pub summary: bool,
    /// Do not print `PATH: OK` lines for clean files.
    #[arg(long)]
    pub infected: bool,
    /// Turn off the decoder's heuristics (encrypted members, name tricks, macros,
    /// PDF actions, HTML smuggling, spoofed links, broken containers). Exceeded limits
    /// and content that could not be decoded (`Heuristics.Unscannable.*`) are still reported.
    #[arg(long)]
    pub no_heuristics: bool,
    /// Do not open containers (mail, archives, documents): scan each file as one object.
    #[arg(long)]
    pub no_decode: bool,
    /// Containers nested deeper than this are not opened.
    #[arg(long, value_name = "N", default_value_t = mxguard_decode::budget::DEFAULT_MAX_DEPTH)]
    pub max_recursion: u32,
    /// Objects per scanned file.
    #[arg(long, value_name = "N", default_value_t = mxguard_decode::budget::DEFAULT_MAX_OBJECTS)]
    pub max_files: usize,
    /// Bytes of one decoded object.
    #[arg(long, value_name = "BYTES", default_value_t = mxguard_decode::budget::DEFAULT_MAX_OBJECT_SIZE)]
    pub max_filesize: u64,
    /// Decoded bytes per scanned file.
    #[arg(long, value_name = "BYTES", default_value_t = mxguard_decode::budget::DEFAULT_MAX_TOTAL_SIZE)]
    pub max_scansize: u64,
    /// Milliseconds per scanned file.
    #[arg(long, value_name = "MS", default_value_t = mxguard_decode::budget::DEFAULT_MAX_TIME.as_millis() as u64)]
    pub max_scantime: u64,
    /// Files or directories to scan.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Serialize)]
struct JsonThreat<'a> {
    name: &'a str,
    engine: &'a str,
    location: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    detail: &'a str,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    path: String,
    verdict: &'a str,
    threats: Vec<JsonThreat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    size: u64,
    elapsed_us: u64,
}

/// Collects files under `paths`, recursively; directory read errors become error results.
fn collect(paths: &[PathBuf], files: &mut Vec<PathBuf>, errors: &mut Vec<(PathBuf, String)>) {
    for p in paths {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => walk(p, files, errors),
            Ok(_) => files.push(p.clone()),
            Err(e) => errors.push((p.clone(), io_reason(&e))),
        }
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<(PathBuf, String)>) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push((dir.to_path_buf(), io_reason(&e)));
            return;
        }
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        match e.file_type() {
            // Symlinked directories are not followed (no loops); symlinked files are scanned.
            Ok(t) if t.is_dir() => walk(&p, files, errors),
            Ok(t) if t.is_symlink() => {
                if p.is_file() {
                    files.push(p)
                }
            }
            Ok(t) if t.is_file() => files.push(p),
            Ok(_) => {}
            Err(e) => errors.push((p, io_reason(&e))),
        }
    }
}

/// The decoder the command line asks for: the same construction as the
/// gateway's `[engine]`; `--no-heuristics` here also silences the
/// encrypted/broken reports, which the gateway always keeps (it must never
/// pass unscannable content silently).
fn decoder_for(a: &ScanArgs) -> Result<mxguard_decode::Decoder> {
    let engine = crate::config::EngineConfig {
        max_recursion: Some(a.max_recursion),
        max_files: Some(a.max_files),
        max_filesize: Some(a.max_filesize),
        max_scansize: Some(a.max_scansize),
        max_scantime: Some(a.max_scantime),
        heuristics: !(a.no_heuristics || a.no_decode),
        ..Default::default()
    };
    let mut opts = crate::serve::decoder(&engine)?.options().clone();
    if a.no_heuristics || a.no_decode {
        opts.heuristics.encrypted = false;
        opts.heuristics.broken = false;
    }
    opts.raw_only = a.no_decode;
    Ok(mxguard_decode::Decoder::new(opts))
}

pub fn run(a: ScanArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    a.db.check()?;
    let (set, info) = load_signatures(&a.db.config());
    if let Some(n) = &info.cache_note {
        eprintln!("mxguard: warning: {n}");
    }
    let report = set.report();
    for p in report.problems.iter().take(20) {
        eprintln!("mxguard: warning: {p}");
    }
    if report.problems.len() > 20 {
        eprintln!(
            "mxguard: warning: {} more database problems (see `mxguard sigs info`)",
            report.problems.len() - 20
        );
    }
    let known = set.len();
    let load_time = t0.elapsed();
    if known == 0 {
        eprintln!("mxguard: no signatures loaded");
        return Ok(ExitCode::from(2));
    }
    let decoder = decoder_for(&a)?;
    let scanner = Arc::new(Scanner::with_decoder(
        vec![Box::new(SignatureEngine::new(Arc::new(set)))],
        decoder,
    ));
    let opts = ScanOptions {
        all_match: a.all_match,
    };

    let mut files = Vec::new();
    let mut walk_errors = Vec::new();
    collect(&a.paths, &mut files, &mut walk_errors);
    let total = files.len();
    let files = Arc::new(files);
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let (tx, rx) = mpsc::channel::<(usize, ScanReport, Duration)>();
    let mut handles = Vec::new();
    for _ in 0..threads.min(total.max(1)) {
        let (files, next, scanner, tx, bytes) = (
            files.clone(),
            next.clone(),
            scanner.clone(),
            tx.clone(),
            bytes.clone(),
        );
        handles.push(std::thread::spawn(move || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = files.get(i) else { break };
            let t = Instant::now();
            let r = scanner.scan_file(path, opts);
            bytes.fetch_add(r.size, Ordering::Relaxed);
            if tx.send((i, r, t.elapsed())).is_err() {
                break;
            }
        }));
    }
    drop(tx);

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let progress = std::io::stderr().is_terminal() && !a.json;
    let (mut found, mut errors, mut done) = (0usize, 0usize, 0usize);
    let mut last_progress = Instant::now();
    for (path, reason) in &walk_errors {
        errors += 1;
        print_one(
            &mut out,
            a.json,
            a.infected,
            path,
            &ScanReport {
                error: Some(reason.clone()),
                ..Default::default()
            },
            Duration::ZERO,
        )?;
    }
    for (i, r, el) in rx {
        done += 1;
        match r.verdict() {
            Verdict::Clean => {}
            Verdict::Error => errors += 1,
            _ => found += 1,
        }
        if r.error.is_some() && !r.findings.is_empty() {
            errors += 1;
        }
        print_one(&mut out, a.json, a.infected, &files[i], &r, el)?;
        if progress && last_progress.elapsed() > Duration::from_millis(200) {
            out.flush()?;
            eprint!(
                "\r\x1b[2K{done}/{total} files, {:.1} MB",
                bytes.load(Ordering::Relaxed) as f64 / 1e6
            );
            last_progress = Instant::now();
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if progress {
        eprint!("\r\x1b[2K");
    }
    if a.summary && !a.json {
        let el = t0.elapsed();
        writeln!(out, "\n----------- SCAN SUMMARY -----------")?;
        writeln!(out, "Known viruses: {known}")?;
        writeln!(out, "Engine version: mxguard {}", env!("CARGO_PKG_VERSION"))?;
        writeln!(out, "Scanned files: {done}")?;
        writeln!(out, "Infected files: {found}")?;
        if errors > 0 {
            writeln!(out, "Total errors: {errors}")?;
        }
        writeln!(
            out,
            "Data scanned: {:.2} MB",
            bytes.load(Ordering::Relaxed) as f64 / 1e6
        )?;
        writeln!(out, "Load time: {:.3} sec", load_time.as_secs_f64())?;
        writeln!(out, "Time: {:.3} sec", el.as_secs_f64())?;
    }
    out.flush()?;
    Ok(ExitCode::from(if errors > 0 {
        2
    } else if found > 0 {
        1
    } else {
        0
    }))
}

fn print_one(
    out: &mut impl Write,
    json: bool,
    infected_only: bool,
    path: &Path,
    r: &ScanReport,
    el: Duration,
) -> Result<()> {
    let verdict = r.verdict();
    if json {
        let j = JsonResult {
            path: path.display().to_string(),
            verdict: verdict.as_str(),
            threats: r
                .findings
                .iter()
                .map(|f| JsonThreat {
                    name: &f.name,
                    engine: f.engine.as_str(),
                    location: &f.location,
                    detail: &f.detail,
                })
                .collect(),
            error: r.error.as_deref(),
            size: r.size,
            elapsed_us: el.as_micros() as u64,
        };
        serde_json::to_writer(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(());
    }
    for f in &r.findings {
        writeln!(out, "{}: {} FOUND", path.display(), f.name)?;
    }
    if let Some(e) = &r.error {
        writeln!(out, "{}: {} ERROR", path.display(), e)?;
    } else if r.findings.is_empty() && !infected_only {
        writeln!(out, "{}: OK", path.display())?;
    }
    Ok(())
}
