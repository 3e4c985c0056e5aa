//! Stamp keys, key files and key rings.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Shortest key accepted, in bytes (HMAC-SHA256's output size).
pub const MIN_KEY_LEN: usize = 32;
/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Length of keys made by [`StampKey::generate`], in bytes.
pub const GENERATED_KEY_LEN: usize = 32;
/// Largest key file read, in bytes (base64 of [`MAX_KEY_LEN`] plus whitespace).
pub const MAX_KEY_FILE: u64 = 4096;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("a stamp key needs {MIN_KEY_LEN} to {MAX_KEY_LEN} bytes, got {len}")]
    Length { len: usize },
    #[error("a stamp key must be written in base64 (standard alphabet, padded)")]
    Base64,
    /// A key file exists but does not hold a key; it is never overwritten.
    #[error("key file {path} holds no valid key: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },
    #[error("cannot read or write key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system gave no random bytes: {0}")]
    Random(getrandom::Error),
    #[error("a key ring needs at least one key")]
    EmptyRing,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A secret HMAC-SHA256 key shared by the nodes of one organisation.
///
/// `Debug` shows only the [fingerprint](StampKey::fingerprint), never the key.
/// There is deliberately no `PartialEq` (compare fingerprints).
#[derive(Clone)]
pub struct StampKey {
    bytes: Box<[u8]>,
}

impl StampKey {
    /// A new random key of [`GENERATED_KEY_LEN`] bytes from the operating
    /// system's generator.
    pub fn generate() -> Result<StampKey, KeyError> {
        let mut bytes = vec![0u8; GENERATED_KEY_LEN];
        getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
        StampKey::from_bytes(&bytes)
    }

    /// A key from raw bytes: [`MIN_KEY_LEN`] to [`MAX_KEY_LEN`] of them.
    pub fn from_bytes(bytes: &[u8]) -> Result<StampKey, KeyError> {
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&bytes.len()) {
            return Err(KeyError::Length { len: bytes.len() });
        }
        Ok(StampKey {
            bytes: bytes.into(),
        })
    }

    /// A key from its base64 text (standard alphabet with padding, as in key
    /// files); surrounding ASCII whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<StampKey, KeyError> {
        let bytes = STANDARD
            .decode(text.trim_ascii())
            .map_err(|_| KeyError::Base64)?;
        StampKey::from_bytes(&bytes)
    }

    /// The key in base64, the key file format (without the final newline).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.bytes)
    }

    /// A short public name for the key (16 hex digits of a SHA-256 over a
    /// fixed label and the key), for logs and for checking that two nodes
    /// hold the same key. It reveals nothing usable about the key.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mxguard-stamp key fingerprint\n");
        h.update(&self.bytes);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Reads a key file: the key in base64 (standard alphabet, padded) on one
    /// line; surrounding whitespace is ignored. Use it for the keys of a ring
    /// that this node only verifies with.
    pub fn load(path: impl AsRef<Path>) -> Result<StampKey, KeyError> {
        let path = path.as_ref();
        let meta = fs::metadata(path).map_err(io(path))?;
        if !meta.is_file() || meta.len() > MAX_KEY_FILE {
            return Err(KeyError::BadKeyFile {
                path: path.to_path_buf(),
                reason: format!("not a regular file of at most {MAX_KEY_FILE} bytes"),
            });
        }
        let text = fs::read(path).map_err(io(path))?;
        let bad = |reason: String| KeyError::BadKeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::str::from_utf8(&text).map_err(|_| bad("not text".into()))?;
        StampKey::from_base64(text).map_err(|e| bad(e.to_string()))
    }

    /// Reads the key file at `path`, or, when there is none, generates a key
    /// and writes it there durably: into a temporary file in the same
    /// directory (mode 0600 on unix), fsynced, linked to `path` (which fails
    /// rather than replace a key another process created meanwhile; where the
    /// file system has no hard links it is renamed instead), and the directory
    /// fsynced. Missing parent directories are created. A file that exists but
    /// holds no valid key is an error and is left as it is: a key is never
    /// overwritten.
    ///
    /// The file holds the key in base64 and a newline, so it can be copied to
    /// the organisation's other nodes by hand or by configuration management.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<StampKey, KeyError> {
        let path = path.as_ref();
        match StampKey::load(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            other => return other,
        }
        let key = StampKey::generate()?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        ensure_dir(&dir)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "stamp.key".into());
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(KeyError::Random)?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = dir.join(format!(".{file_name}.{}.{nonce}.tmp", std::process::id()));

        let write = || -> std::io::Result<()> {
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f: File = opts.open(&tmp)?;
            #[cfg(unix)]
            {
                // The umask can only have removed bits; make it exactly 0600.
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(fs::Permissions::from_mode(0o600))?;
            }
            let mut text = key.to_base64();
            text.push('\n');
            f.write_all(text.as_bytes())?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        let placed = match fs::hard_link(&tmp, path) {
            Ok(()) => {
                let _ = fs::remove_file(&tmp);
                Ok(true)
            }
            // Another process created the key first: use theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&tmp);
                Ok(false)
            }
            // No hard links here (some network or FAT file systems).
            Err(_) => fs::rename(&tmp, path).map(|()| true).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                io(path)(e)
            }),
        }?;
        sync_dir(&dir)?;
        if placed {
            Ok(key)
        } else {
            StampKey::load(path)
        }
    }
}

impl fmt::Debug for StampKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StampKey({})", self.fingerprint())
    }
}

/// Creates `dir` and its missing parents, fsyncing each parent that got a new entry.
fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            ensure_dir(parent)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// fsync of a directory, which makes entries created or renamed in it durable.
fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The keys a node uses: the first signs, every key verifies.
///
/// Rotation across the nodes of an organisation: add the new key as a second
/// key everywhere, then make it the first everywhere, then drop the old one
/// once the stamps made with it no longer matter (see `max_age` in
/// [`verify`](crate::verify)).
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<StampKey>,
}

impl KeyRing {
    /// A ring of `keys`, the first of which signs. At least one key.
    pub fn new(keys: Vec<StampKey>) -> Result<KeyRing, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::EmptyRing);
        }
        Ok(KeyRing { keys })
    }

    /// The key new stamps are made with.
    pub fn signing_key(&self) -> &StampKey {
        &self.keys[0]
    }

    /// Every key, the signing key first.
    pub fn keys(&self) -> &[StampKey] {
        &self.keys
    }

    /// Adds a key that verifies but does not sign.
    pub fn push(&mut self, key: StampKey) {
        self.keys.push(key);
    }
}

impl From<StampKey> for KeyRing {
    fn from(key: StampKey) -> KeyRing {
        KeyRing { keys: vec![key] }
    }
}
