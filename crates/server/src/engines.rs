//! The shared engine holder: the current scanner built from `[engine]`,
//! replaced as a whole on reload. Front-ends take an `Arc<Scanner>` per scan,
//! so a reload never disturbs scans in progress; the old scanner is freed
//! when its last scan ends.
//!
//! Every reload (clamd `RELOAD`, the console, SIGUSR2, changed database
//! files) goes through [`Engines::reload`]; the SMTP gateway, the milter and
//! the mailbox check follow it through [`Engines::on_reload`].

use crate::config::EngineConfig;
use anyhow::{Context, Result};
use mxguard_engine::{load_signatures, Scanner, SignatureConfig, SignatureEngine};
use mxguard_sigs::SignatureSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// One loaded generation of signatures.
pub struct Loaded {
    pub scanner: Arc<Scanner>,
    /// [`sigs_version`](crate::serve::sigs_version): the same on every node with the same databases.
    pub sigs_version: String,
    /// Signatures loaded.
    pub count: usize,
    /// The database version clamd clients see: the `daily` container's
    /// version when one is loaded, else the highest container version, else
    /// the signature count.
    pub db_version: u64,
    pub loaded_at: SystemTime,
    /// Approximate bytes of the compiled signatures.
    pub memory: u64,
    /// What the load found (for the console's signatures page).
    pub report: SigReport,
}

/// What a load found: counts by kind, lines not loaded and why.
#[derive(Debug, Clone, Default)]
pub struct SigReport {
    pub hash_sigs: u64,
    pub body_sigs: u64,
    pub logical_sigs: u64,
    pub allow_list: u64,
    pub ignored_sigs: u64,
    pub flevel_skipped: u64,
    pub invalid: u64,
    pub unsupported: u64,
    /// The first 500 problems, as `mxguard sigs info` prints them.
    pub problems: Vec<String>,
    /// CVD/CLD containers and their versions.
    pub containers: Vec<(String, u32)>,
}

/// Called with each new generation once it is current.
pub type ReloadListener = Box<dyn Fn(&Loaded) + Send + Sync>;

/// The current scanner and how to build the next one.
pub struct Engines {
    engine: EngineConfig,
    sig_cfg: SignatureConfig,
    current: RwLock<Arc<Loaded>>,
    /// One reload at a time.
    reloading: Mutex<()>,
    listeners: Mutex<Vec<ReloadListener>>,
}

fn db_version(set: &SignatureSet) -> u64 {
    let v = set.versions();
    v.iter()
        .find(|(n, _)| n == "daily")
        .or_else(|| v.iter().max_by_key(|(_, n)| *n))
        .map(|(_, n)| u64::from(*n))
        .unwrap_or(set.len() as u64)
}

impl Engines {
    /// The signature sources of `[engine]`, with the compiled cache in `cache_dir`.
    pub fn signature_config(engine: &EngineConfig, cache_dir: Option<PathBuf>) -> SignatureConfig {
        SignatureConfig {
            paths: engine.signatures.clone(),
            builtin: engine.builtin,
            cache_dir,
        }
    }

    /// Wraps a set that was just loaded from `sig_cfg` (start-up loads once for
    /// every front-end). Fails when the set is empty or `[engine]` is invalid.
    pub fn from_set(
        engine: &EngineConfig,
        sig_cfg: SignatureConfig,
        set: SignatureSet,
        sigs_version: String,
    ) -> Result<Engines> {
        let loaded = build(engine, set, sigs_version)?;
        Ok(Engines {
            engine: engine.clone(),
            sig_cfg,
            current: RwLock::new(Arc::new(loaded)),
            reloading: Mutex::new(()),
            listeners: Mutex::new(Vec::new()),
        })
    }

    pub fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn scanner(&self) -> Arc<Scanner> {
        self.current().scanner.clone()
    }

    /// `f` runs after every successful reload, with the new generation.
    pub fn on_reload(&self, f: ReloadListener) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    /// The signature files now (path, size, modification time), to notice
    /// an update (freshclam, `mxguard sigs` tools, a copy) without reading
    /// the files. Directories are listed one level deep, as the loader reads
    /// them.
    pub fn fingerprint(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let mut out = Vec::new();
        let mut add = |p: &std::path::Path| {
            if let Ok(m) = std::fs::metadata(p) {
                out.push((p.to_path_buf(), m.len(), m.modified().ok()));
            }
        };
        for p in &self.sig_cfg.paths {
            if p.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                    .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                    .unwrap_or_default();
                files.sort();
                for f in files.iter().filter(|f| f.is_file()) {
                    add(f);
                }
            } else {
                add(p);
            }
        }
        out
    }

    /// Loads the databases again and makes them current (blocking). On any
    /// failure the current generation stays. Concurrent calls run one after
    /// the other.
    pub fn reload(&self) -> Result<Arc<Loaded>> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        for p in &self.sig_cfg.paths {
            std::fs::metadata(p).with_context(|| format!("signature database {}", p.display()))?;
        }
        let (set, info) = load_signatures(&self.sig_cfg);
        if let Some(n) = &info.cache_note {
            tracing::warn!("signatures: {n}");
        }
        let v = crate::serve::sigs_version(&set, &self.sig_cfg.paths);
        let loaded = Arc::new(build(&self.engine, set, v)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded.clone();
        for f in self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            f(&loaded);
        }
        tracing::info!(count = loaded.count, version = %loaded.sigs_version, "signatures reloaded");
        Ok(loaded)
    }
}

fn build(engine: &EngineConfig, set: SignatureSet, sigs_version: String) -> Result<Loaded> {
    if set.is_empty() {
        anyhow::bail!("no signatures loaded: enable engine.builtin or list engine.signatures");
    }
    let count = set.len();
    let db_version = db_version(&set);
    let memory = set.stats().approx_memory as u64;
    let (r, st) = (set.report(), set.stats());
    let report = SigReport {
        hash_sigs: st.hash_sigs as u64,
        body_sigs: st.body_sigs as u64,
        logical_sigs: st.logical_sigs as u64,
        allow_list: st.allow_list as u64,
        ignored_sigs: r.ignored_sigs as u64,
        flevel_skipped: r.flevel_skipped as u64,
        invalid: r.invalid() as u64,
        unsupported: r.unsupported() as u64,
        problems: r.problems.iter().take(500).map(|p| p.to_string()).collect(),
        containers: set.versions().to_vec(),
    };
    let scanner = Arc::new(Scanner::with_decoder(
        vec![Box::new(SignatureEngine::new(Arc::new(set)))],
        crate::serve::decoder(engine)?,
    ));
    Ok(Loaded {
        scanner,
        sigs_version,
        count,
        db_version,
        loaded_at: SystemTime::now(),
        memory,
        report,
    })
}

impl mxguard_clamd::ScanService for Engines {
    fn scanner(&self) -> Arc<Scanner> {
        Engines::scanner(self)
    }

    /// `mxguard 0.1.0/27000/Mon Nov 23 05:26:37 2026` (UTC load time).
    fn version(&self) -> String {
        let l = self.current();
        let t = l
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!(
            "mxguard {}/{}/{}",
            env!("CARGO_PKG_VERSION"),
            l.db_version,
            mxguard_clamd::proto::ctime_utc(t)
        )
    }

    fn reload(&self) -> Result<(), String> {
        Engines::reload(self)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    }

    fn memory(&self) -> u64 {
        self.current().memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxguard_clamd::ScanService;
    use mxguard_types::ScanOptions;

    fn load(engine: &EngineConfig) -> Result<Engines> {
        let sig_cfg = Engines::signature_config(engine, None);
        let (set, _) = load_signatures(&sig_cfg);
        let v = crate::serve::sigs_version(&set, &sig_cfg.paths);
        Engines::from_set(engine, sig_cfg, set, v)
    }

    #[test]
    fn reload_picks_up_changed_databases_and_keeps_old_scanners_alive() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("t.ndb");
        std::fs::write(&db, "Test.One-1:0:*:6f6e652074776f\n").unwrap();
        let cfg = EngineConfig {
            signatures: vec![db.clone()],
            builtin: false,
            ..Default::default()
        };
        let e = load(&cfg).unwrap();
        let old = e.scanner();
        let hit = |s: &Scanner| {
            s.scan_bytes(b"xx one two xx", ScanOptions::default())
                .findings
                .first()
                .map(|f| f.name.clone())
        };
        assert_eq!(hit(&old).as_deref(), Some("Test.One-1"));
        assert!(e.version().starts_with("mxguard "));
        assert_eq!(e.version().split('/').nth(1), Some("1"), "{}", e.version());
        std::fs::write(
            &db,
            "Test.Two-1:0:*:6f6e652074776f\nTest.Other-1:0:*:7a7a7a7a7a7a\n",
        )
        .unwrap();
        ScanService::reload(&e).unwrap();
        assert_eq!(hit(&e.scanner()).as_deref(), Some("Test.Two-1"));
        assert_eq!(
            hit(&old).as_deref(),
            Some("Test.One-1"),
            "old scans keep theirs"
        );
        assert_eq!(e.version().split('/').nth(1), Some("2"));
        // A broken reload keeps the current generation.
        std::fs::remove_file(&db).unwrap();
        assert!(ScanService::reload(&e).is_err());
        assert_eq!(hit(&e.scanner()).as_deref(), Some("Test.Two-1"));
    }
}
