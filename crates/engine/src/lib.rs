//! The [`Scanner`]: one pipeline for every front-end (SMTP, milter, clamd
//! socket, mailbox delivery, store scans, `mxguard scan`).
//!
//! A scan takes bytes, decodes them into scan objects (`mxguard_decode`: MIME
//! parts, archive members, document streams, under a `DecodeBudget`), runs
//! every configured [`Engine`] over each object, and returns a [`ScanReport`]
//! holding the engines' findings plus the decoder's heuristic and limit
//! findings, each with the object's location.

pub use mxguard_decode::{DecodeBudget, DecodeOptions, HeuristicsConfig, ScanObject};
use mxguard_decode::{Decoder, Flow, Visitor};
use mxguard_sigs::{Database, MatchOptions, Scratch, SignatureSet};
use mxguard_types::{EngineKind, Finding, ScanOptions, ScanReport, Severity};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

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
        obj: &ScanObject<'_>,
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
        obj: &ScanObject<'_>,
        opts: ScanOptions,
        out: &mut Vec<Finding>,
    ) -> Result<(), EngineError> {
        let mo = MatchOptions {
            all_match: opts.all_match,
            container: obj.container.map(|c| c.clamav_container_name()),
        };
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            for d in self.set.scan_typed(&obj.data, obj.file_type, mo, &mut s) {
                out.push(Finding {
                    name: d.name.to_string(),
                    engine: EngineKind::Signatures,
                    severity: Severity::Infected,
                    location: obj.location.clone(),
                    detail: String::new(),
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
    /// Keep a compiled copy of the databases here and reuse it while the
    /// databases are unchanged (`None`: always parse and compile).
    pub cache_dir: Option<PathBuf>,
}

/// How a signature set was obtained.
#[derive(Debug, Clone, Default)]
pub struct LoadInfo {
    /// Read from the compiled cache.
    pub from_cache: bool,
    /// Why the cache could not be read or written (a warning: the set is complete anyway).
    pub cache_note: Option<String>,
}

/// Loads and compiles the configured signatures, through the compiled cache when
/// one is configured: a valid cache for exactly these sources is used, anything
/// else (missing, stale, corrupt) is rebuilt from the databases and rewritten.
pub fn load_signatures(cfg: &SignatureConfig) -> (SignatureSet, LoadInfo) {
    let mut info = LoadInfo::default();
    let cache = cfg.cache_dir.as_ref().map(|d| {
        let key = mxguard_sigs::fingerprint(&cfg.paths, cfg.builtin);
        // One cache file per list of sources; the fingerprint inside says whether it is current.
        let mut who = String::new();
        for p in &cfg.paths {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            who.push_str(&abs.to_string_lossy());
            who.push('\n');
        }
        who.push_str(if cfg.builtin { "builtin" } else { "no-builtin" });
        let id = fnv(who.as_bytes());
        (d.join(format!("sigs-{id:016x}.mxc")), key)
    });
    if let Some((path, key)) = &cache {
        match SignatureSet::read_cache(path, *key) {
            Ok(set) => {
                info.from_cache = true;
                // Mark it used, so pruning keeps caches that are read but not rewritten.
                if let Ok(f) = std::fs::File::options().write(true).open(path) {
                    let _ = f.set_modified(std::time::SystemTime::now());
                }
                return (set, info);
            }
            // Missing or built from other databases (an update): just rebuild.
            Err(mxguard_sigs::CacheError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(mxguard_sigs::CacheError::Stale) => {}
            Err(e) => info.cache_note = Some(format!("{}: {e}; rebuilt", path.display())),
        }
    }
    let mut db = Database::new();
    if cfg.builtin {
        db.load_builtin();
    }
    db.load_paths(&cfg.paths);
    let set = SignatureSet::compile(db);
    if let Some((path, key)) = &cache {
        if let Err(e) = set.write_cache(path, *key) {
            info.cache_note = Some(format!("cannot write cache {}: {e}", path.display()));
        }
        prune_caches(path);
    }
    (set, info)
}

/// Caches unused for this long are deleted when another is written (one cache
/// file exists per list of database paths, so ad-hoc paths would otherwise pile up).
pub const CACHE_MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Best effort: removes `sigs-*.mxc` files beside `keep` idle for [`CACHE_MAX_IDLE`].
fn prune_caches(keep: &Path) {
    let Some(dir) = keep.parent() else { return };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if p == keep || !name.starts_with("sigs-") || !name.ends_with(".mxc") {
            continue;
        }
        let idle = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok());
        if idle.is_some_and(|d| d > CACHE_MAX_IDLE) {
            let _ = std::fs::remove_file(&p);
        }
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs the decoder and the engines over inputs. Cheap to share (`Arc`) between threads.
pub struct Scanner {
    engines: Vec<Box<dyn Engine>>,
    decoder: Decoder,
}

/// Feeds each decoded object to the engines and collects findings.
struct EngineVisitor<'s, 'x> {
    engines: &'s [Box<dyn Engine>],
    opts: ScanOptions,
    report: ScanReport,
    /// Sees every object before the engines (the policy layer's facts).
    extra: Option<&'x mut dyn Visitor>,
}

impl EngineVisitor<'_, '_> {
    fn flow(&self) -> Flow {
        let infected = self
            .report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Infected);
        if infected && !self.opts.all_match {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

impl Visitor for EngineVisitor<'_, '_> {
    fn object(&mut self, obj: &ScanObject<'_>) -> Flow {
        if let Some(x) = self.extra.as_mut() {
            x.object(obj);
        }
        for e in self.engines {
            if let Err(err) = e.scan(obj, self.opts, &mut self.report.findings) {
                let at = if obj.location.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", obj.location)
                };
                self.report.error = Some(format!("{err}{at}"));
            }
            if self.flow() == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn finding(&mut self, finding: Finding) -> Flow {
        self.report.findings.push(finding);
        self.flow()
    }

    fn links(&mut self, location: &str, links: Vec<mxguard_decode::Link>) {
        if let Some(x) = self.extra.as_mut() {
            x.links(location, links);
        }
    }
}

impl Scanner {
    /// A scanner with the default decoder (default budget, all heuristics on).
    pub fn new(engines: Vec<Box<dyn Engine>>) -> Self {
        Scanner::with_decoder(engines, Decoder::default())
    }

    pub fn with_decoder(engines: Vec<Box<dyn Engine>>, decoder: Decoder) -> Self {
        Scanner { engines, decoder }
    }

    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Scans one in-memory input: decodes it and runs every engine on every
    /// object. Without `all_match` it stops at the first infection; heuristic
    /// findings never stop it (a signature hit deeper down still counts).
    pub fn scan_bytes(&self, data: &[u8], opts: ScanOptions) -> ScanReport {
        self.scan_named(data, None, opts)
    }

    /// Like [`scan_bytes`](Self::scan_bytes) with the input's declared name
    /// (used by name heuristics and single-stream decompressors).
    pub fn scan_named(&self, data: &[u8], name: Option<&str>, opts: ScanOptions) -> ScanReport {
        self.scan_walk(data, name, opts, None)
    }

    /// Like [`scan_named`](Self::scan_named), and `extra` sees every decoded
    /// object of the same walk (before the engines do), so the policy layer
    /// reads the message without decoding it a second time. The walk stops
    /// early only as a scan does (an infection without `all_match`).
    pub fn scan_with(
        &self,
        data: &[u8],
        name: Option<&str>,
        opts: ScanOptions,
        extra: &mut dyn Visitor,
    ) -> ScanReport {
        self.scan_walk(data, name, opts, Some(extra))
    }

    fn scan_walk(
        &self,
        data: &[u8],
        name: Option<&str>,
        opts: ScanOptions,
        extra: Option<&mut dyn Visitor>,
    ) -> ScanReport {
        let mut v = EngineVisitor {
            engines: &self.engines,
            opts,
            report: ScanReport {
                size: data.len() as u64,
                ..Default::default()
            },
            extra,
        };
        self.decoder.walk(data, name, &mut v);
        v.report
    }

    /// Scans one file. An unreadable file is an error report, never clean.
    pub fn scan_file(&self, path: &Path, opts: ScanOptions) -> ScanReport {
        match std::fs::read(path) {
            Ok(data) => {
                let name = path.file_name().map(|n| n.to_string_lossy());
                self.scan_named(&data, name.as_deref(), opts)
            }
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
        let (set, _) = load_signatures(&SignatureConfig {
            paths: vec![],
            builtin: true,
            cache_dir: None,
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
    fn compiled_cache_is_reused_only_while_current_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("local.ndb");
        std::fs::write(&db, "Test.Cache-1:0:*:6361636865206d65\n").unwrap();
        let cfg = SignatureConfig {
            paths: vec![db.clone()],
            builtin: true,
            cache_dir: Some(dir.path().join("cache")),
        };
        let names = |set: SignatureSet| {
            let s = Scanner::new(vec![Box::new(SignatureEngine::new(Arc::new(set)))]);
            let mut v: Vec<String> = s
                .scan_bytes(b"please cache me!", ScanOptions { all_match: true })
                .findings
                .into_iter()
                .map(|f| f.name)
                .collect();
            v.extend(
                s.scan_bytes(EICAR, ScanOptions::default())
                    .findings
                    .into_iter()
                    .map(|f| f.name),
            );
            v
        };
        let (a, ia) = load_signatures(&cfg);
        assert!(!ia.from_cache && ia.cache_note.is_none(), "{ia:?}");
        let (b, ib) = load_signatures(&cfg);
        assert!(ib.from_cache, "{ib:?}");
        let (na, nb) = (names(a), names(b));
        assert_eq!(na, vec!["Test.Cache-1", "Win.Test.EICAR_HDB-1"]);
        assert_eq!(na, nb);
        // A changed database invalidates the cache.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&db, "Test.Cache-2:0:*:6361636865206d65\n").unwrap();
        let (c, ic) = load_signatures(&cfg);
        assert!(!ic.from_cache);
        assert_eq!(names(c)[0], "Test.Cache-2");
        // A corrupt cache is rebuilt, never trusted.
        let file = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&file).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&file, &bytes).unwrap();
        let (d, id) = load_signatures(&cfg);
        assert!(!id.from_cache && id.cache_note.is_some());
        assert_eq!(names(d)[0], "Test.Cache-2");
        let (_, ie) = load_signatures(&cfg);
        assert!(ie.from_cache);
    }

    #[test]
    fn writing_a_cache_prunes_long_unused_ones() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("sigs-00000000000000aa.mxc");
        let recent = dir.path().join("sigs-00000000000000bb.mxc");
        let other = dir.path().join("notes.txt");
        for p in [&old, &recent, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let long_ago =
            std::time::SystemTime::now() - CACHE_MAX_IDLE - std::time::Duration::from_secs(3600);
        for p in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let cfg = SignatureConfig {
            paths: vec![],
            builtin: true,
            cache_dir: Some(dir.path().to_path_buf()),
        };
        let _ = load_signatures(&cfg);
        assert!(!old.exists(), "idle cache pruned");
        assert!(
            recent.exists() && other.exists(),
            "recent caches and other files kept"
        );
    }

    fn scanner_with(db_name: &str, text: &str) -> (tempfile::TempDir, Scanner) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(db_name);
        std::fs::write(&db, text).unwrap();
        let (set, _) = load_signatures(&SignatureConfig {
            paths: vec![db],
            builtin: true,
            cache_dir: None,
        });
        (
            dir,
            Scanner::new(vec![Box::new(SignatureEngine::new(Arc::new(set)))]),
        )
    }

    #[test]
    fn findings_inside_a_message_carry_their_location_and_container_conditions_hold() {
        // "mxguard-container-test" in hex; one signature for any file, one only inside mail.
        let hex = "6d7867756172642d636f6e7461696e65722d74657374";
        let (_d, s) = scanner_with(
            "c.ldb",
            &format!(
                "Test.Anywhere;Engine:51-255,Target:0;0;{hex}\nTest.InMail;Engine:51-255,Container:CL_TYPE_MAIL,Target:0;0;{hex}\n"
            ),
        );
        let payload = b"xx mxguard-container-test xx";
        let names = |r: &ScanReport| {
            let mut v: Vec<(String, String)> = r
                .findings
                .iter()
                .map(|f| (f.name.clone(), f.location.clone()))
                .collect();
            v.sort();
            v
        };
        let all = ScanOptions { all_match: true };
        // Top level: the container is CL_TYPE_ANY.
        assert_eq!(
            names(&s.scan_bytes(payload, all)),
            vec![("Test.Anywhere".to_string(), String::new())]
        );
        let b64 = "eHggbXhndWFyZC1jb250YWluZXItdGVzdCB4eA==";
        let msg = format!(
            "From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
             --b1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
        );
        let r = s.scan_bytes(msg.as_bytes(), all);
        assert_eq!(
            names(&r),
            vec![
                ("Test.Anywhere".to_string(), "part[2]/data.bin".to_string()),
                ("Test.InMail".to_string(), "part[2]/data.bin".to_string()),
            ]
        );
        assert_eq!(r.verdict(), Verdict::Infected);
        // Without all_match the scan stops at the first hit.
        assert_eq!(
            s.scan_bytes(msg.as_bytes(), ScanOptions::default())
                .findings
                .len(),
            1
        );
    }

    #[test]
    fn unreadable_file_is_an_error_not_clean() {
        let r = scanner().scan_file(Path::new("/nonexistent/file"), ScanOptions::default());
        assert_eq!(r.verdict(), Verdict::Error);
    }
}
