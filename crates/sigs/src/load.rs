//! Loading databases from files, directories and `.cvd`/`.cld` containers.

use crate::cvd;
use crate::db::{Database, DbKind};
use crate::error::LineError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes of a text database read and parsed at a time.
pub const READ_BLOCK: usize = 16 << 20;

/// The signatures built into the binary, so a scan works with no database at all.
/// Names follow ClamAV's official ones for the same content.
pub const BUILTIN: &[(&str, DbKind, &str)] = &[
    // The 68-byte EICAR test file, as ClamAV's official database names it.
    ("builtin.hdb", DbKind::Hdb, "44d88612fea8a8f36de82e1278abb02f:68:Win.Test.EICAR_HDB-1\n"),
    // The EICAR string at the start of a file padded with whitespace up to 128 bytes,
    // which the EICAR standard also calls a test file.
    (
        "builtin.ldb",
        DbKind::Ldb,
        "Win.Test.EICAR_NDB-1;Engine:51-255,Target:0,FileSize:69-128;0;0:58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a\n",
    ),
];

impl Database {
    /// Adds the built-in signatures.
    pub fn load_builtin(&mut self) {
        for (name, kind, text) in BUILTIN {
            self.load_text(Path::new(name), *kind, text.as_bytes());
        }
    }

    /// Loads files and directories (a directory's database files, not recursive,
    /// as ClamAV does). Ignore lists anywhere among them apply to all. Problems are
    /// recorded in the report; nothing here fails as a whole.
    pub fn load_paths(&mut self, paths: &[PathBuf]) {
        let mut files: Vec<(PathBuf, DbKind)> = Vec::new();
        for p in paths {
            if p.is_dir() {
                match std::fs::read_dir(p) {
                    Ok(_) => files.extend(dir_databases(p)),
                    Err(e) => self.report.problem(
                        p,
                        0,
                        LineError::syntax(format!("cannot read directory: {e}")),
                    ),
                }
            } else {
                match DbKind::from_path(p) {
                    Some(k) => files.push((p.clone(), k)),
                    None => self.report.problem(
                        p,
                        0,
                        LineError::syntax("unknown database file extension"),
                    ),
                }
            }
        }
        // Ignore lists first, so they apply to every other file.
        files.sort_by_key(|(_, k)| !matches!(k, DbKind::Ign | DbKind::Ign2));
        for (path, kind) in files {
            if matches!(kind, DbKind::Pua | DbKind::Other) {
                continue;
            }
            let r = match kind {
                DbKind::Cvd | DbKind::Cld => std::fs::read(&path)
                    .map(|data| self.load_container(&path, &data, kind == DbKind::Cvd)),
                DbKind::Unsupported(_) => {
                    std::fs::read(&path).map(|data| self.load_text(&path, kind, &data))
                }
                _ => self.load_file(&path, kind),
            };
            if let Err(e) = r {
                self.report
                    .problem(&path, 0, LineError::syntax(format!("cannot read: {e}")));
            }
        }
    }

    /// Streams a text database in blocks of whole lines, so memory stays bounded by
    /// [`READ_BLOCK`] whatever the file's size.
    pub fn load_file(&mut self, path: &Path, kind: DbKind) -> std::io::Result<()> {
        let mut f = std::fs::File::open(path)?;
        self.report.files += 1;
        // Reserve for the whole file up front: capacity that is never touched costs no
        // memory, and it saves the copies (and the doubled peak) of growing vectors.
        let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
        self.reserve_for(kind, len);
        let mut buf = vec![0u8; READ_BLOCK];
        let mut filled = 0usize;
        let mut line = 0usize;
        loop {
            let n = f.read(&mut buf[filled..])?;
            filled += n;
            let eof = n == 0;
            // Parse up to the last newline (everything at EOF).
            let cut = if eof {
                filled
            } else {
                memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1)
            };
            if cut == 0 && !eof && filled == buf.len() {
                // A single line longer than the buffer: grow for it.
                buf.resize(buf.len() * 2, 0);
                continue;
            }
            if cut > 0 {
                self.load_block(path, kind, &buf[..cut], line);
                line += memchr::memchr_iter(b'\n', &buf[..cut]).count();
                buf.copy_within(cut..filled, 0);
                filled -= cut;
            }
            if eof {
                return Ok(());
            }
        }
    }

    /// Loads a `.cvd`/`.cld` container's member databases.
    pub fn load_container(&mut self, path: &Path, data: &[u8], verify_md5: bool) {
        let c = match cvd::read(data, verify_md5) {
            Ok(c) => c,
            Err(e) => {
                self.report.problem(
                    path,
                    0,
                    LineError::syntax(format!("cannot read container: {e}")),
                );
                return;
            }
        };
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("db")
            .to_string();
        self.versions.push((stem, c.header.version));
        let mut members: Vec<(PathBuf, DbKind, &[u8])> = c
            .files
            .iter()
            .filter_map(|(name, bytes)| {
                let p = path.join(name);
                DbKind::from_path(Path::new(name)).map(|k| (p, k, bytes.as_slice()))
            })
            .collect();
        members.sort_by_key(|(_, k, _)| !matches!(k, DbKind::Ign | DbKind::Ign2));
        for (p, k, bytes) in members {
            match k {
                DbKind::Pua | DbKind::Other | DbKind::Cvd | DbKind::Cld => {}
                _ => self.load_text(&p, k, bytes),
            }
        }
    }
}

/// The database files of a directory, sorted by name (not recursive, as ClamAV).
fn dir_databases(dir: &Path) -> Vec<(PathBuf, DbKind)> {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => return Vec::new(),
    };
    entries.sort();
    entries
        .into_iter()
        .filter_map(|e| DbKind::from_path(&e).map(|k| (e, k)))
        .collect()
}

/// Every file [`Database::load_paths`] would read for `paths` (directories
/// expanded), in order. Used to fingerprint a compiled cache.
pub fn source_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.push(p.clone());
            out.extend(dir_databases(p).into_iter().map(|(f, _)| f));
        } else {
            out.push(p.clone());
        }
    }
    out
}
