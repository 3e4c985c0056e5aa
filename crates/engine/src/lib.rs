//! The [`Scanner`]: one pipeline for every front-end (SMTP, milter, clamd
//! socket, mailbox delivery, store scans, `mxguard scan`).
//!
//! A scan takes bytes, runs every configured [`Engine`] over them and returns a
//! [`ScanReport`]. Engines see scan objects, never sockets or SMTP. The decoder
//! (MIME, archives, documents) plugs in between the input and the engines in a
//! later step; today each input is one object.

use mxguard_sigs::{Database, MatchOptions, Scratch, SignatureSet};
use mxguard_types::{EngineKind, Finding, ScanOptions, ScanReport, Severity};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// One object to scan: bytes plus where they sit inside the input.
#[derive(Debug, Clone, Copy)]
pub struct ScanObject<'a> {
    pub data: &'a [u8],
    /// Location inside the input (`part[2]/invoice.zip/a.exe`); empty for the input itself.
    pub location: &'a str,
}

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("engine {engine} failed: {reason}")]
    Failed {
        engine: &'static str,
        reason: String,
    },
}

/// A detection engine. Implementations must be cheap to call concurrently.
pub trait Engine: Send + Sync {
    fn kind(&self) -> EngineKind;
    /// Appends findings for `obj` to `out`. An error means the object was not
    /// (fully) scanned by this engine; the scanner reports it, never as clean.
    fn scan(
        &self,
        obj: ScanObject<'_>,
        opts: ScanOptions,
        out: &mut Vec<Finding>,
    ) -> Result<(), EngineError>;
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The built-in signature engine over a compiled [`SignatureSet`].
pub struct SignatureEngine {
    set: Arc<SignatureSet>,
}

impl SignatureEngine {
    pub fn new(set: Arc<SignatureSet>) -> Self {
        SignatureEngine { set }
    }
    pub fn set(&self) -> &Arc<SignatureSet> {
        &self.set
    }
}

impl Engine for SignatureEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Signatures
    }

    fn scan(
        &self,
        obj: ScanObject<'_>,
        opts: ScanOptions,
        out: &mut Vec<Finding>,
    ) -> Result<(), EngineError> {
        let mo = MatchOptions {
            all_match: opts.all_match,
        };
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            for d in self.set.scan(obj.data, mo, &mut s) {
                out.push(Finding {
                    name: d.name.to_string(),
                    engine: EngineKind::Signatures,
                    severity: Severity::Infected,
                    location: obj.location.to_string(),
                });
            }
        });
        Ok(())
    }
}

/// Where signatures come from.
#[derive(Debug, Clone, Default)]
pub struct SignatureConfig {
    /// Files or directories of signature databases.
    pub paths: Vec<PathBuf>,
    /// Include the signatures built into the binary (EICAR).
    pub builtin: bool,
}

/// Loads and compiles the configured signatures.
pub fn load_signatures(cfg: &SignatureConfig) -> SignatureSet {
    let mut db = Database::new();
    if cfg.builtin {
        db.load_builtin();
    }
    db.load_paths(&cfg.paths);
    SignatureSet::compile(db)
}

/// Runs engines over inputs. Cheap to share (`Arc`) between threads.
pub struct Scanner {
    engines: Vec<Box<dyn Engine>>,
}

impl Scanner {
    pub fn new(engines: Vec<Box<dyn Engine>>) -> Self {
        Scanner { engines }
    }

    /// Scans one in-memory input.
    pub fn scan_bytes(&self, data: &[u8], opts: ScanOptions) -> ScanReport {
        let mut report = ScanReport {
            size: data.len() as u64,
            ..Default::default()
        };
        let obj = ScanObject { data, location: "" };
        for e in &self.engines {
            if let Err(err) = e.scan(obj, opts, &mut report.findings) {
                report.error = Some(err.to_string());
            }
            if !opts.all_match && !report.findings.is_empty() {
                break;
            }
        }
        report
    }

    /// Scans one file. An unreadable file is an error report, never clean.
    pub fn scan_file(&self, path: &Path, opts: ScanOptions) -> ScanReport {
        match std::fs::read(path) {
            Ok(data) => self.scan_bytes(&data, opts),
            Err(e) => ScanReport {
                error: Some(io_reason(&e)),
                ..Default::default()
            },
        }
    }
}

/// A short clamscan-like reason for an I/O error.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Access denied".into(),
        _ => format!("Can't read file ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxguard_types::Verdict;

    const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    fn scanner() -> Scanner {
        let set = load_signatures(&SignatureConfig {
            paths: vec![],
            builtin: true,
        });
        Scanner::new(vec![Box::new(SignatureEngine::new(Arc::new(set)))])
    }

    #[test]
    fn builtin_eicar_is_found_and_clean_is_clean() {
        let s = scanner();
        let r = s.scan_bytes(EICAR, ScanOptions::default());
        assert_eq!(r.verdict(), Verdict::Infected);
        assert_eq!(r.findings[0].name, "Win.Test.EICAR_HDB-1");
        let mut padded = EICAR.to_vec();
        padded.extend_from_slice(b"\r\n");
        let r = s.scan_bytes(&padded, ScanOptions { all_match: true });
        assert_eq!(
            r.findings
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
            vec!["Win.Test.EICAR_NDB-1"]
        );
        assert_eq!(
            s.scan_bytes(b"hello world", ScanOptions::default())
                .verdict(),
            Verdict::Clean
        );
    }

    #[test]
    fn unreadable_file_is_an_error_not_clean() {
        let r = scanner().scan_file(Path::new("/nonexistent/file"), ScanOptions::default());
        assert_eq!(r.verdict(), Verdict::Error);
    }
}
