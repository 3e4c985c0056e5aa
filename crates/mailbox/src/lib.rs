//! mxguard's mailbox tier. Today: durable delivery into Maildir.
//!
//! [`Maildir::deliver`] follows the Maildir protocol (write under `tmp/`, then
//! rename into `new/`) and makes the result durable before it returns: the
//! file is fsynced before the rename and the `new/` directory after it, so a
//! caller may answer SMTP 250 once `deliver` returned `Ok`, and a crash at any
//! point leaves either no message or the whole message, never a partial one in
//! `new/`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// Longest mailbox (user) name accepted, in bytes after encoding.
pub const MAX_USER: usize = 128;

#[derive(Debug, Error)]
pub enum DeliveryError {
    /// The recipient's local part cannot name a mailbox (empty, or too long).
    #[error("invalid mailbox name {0:?}")]
    InvalidUser(String),
    /// Disk full, permissions, I/O error: a temporary failure (SMTP 451/452).
    #[error("cannot write to {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DeliveryError {
    /// True when retrying later may succeed (every I/O error), false for a bad name.
    pub fn is_temporary(&self) -> bool {
        matches!(self, DeliveryError::Io { .. })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeliveryError + '_ {
    move |source| DeliveryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A root holding one Maildir per user: `<root>/<user>/{tmp,new,cur}`.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
    host: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory name for a local part: lowercased; characters outside
/// `[a-z0-9._+-]` and a leading dot percent-encoded, so no name can climb out
/// of the root (`..`, `/`) or hide (`.x`).
pub fn mailbox_name(local: &str) -> Result<String, DeliveryError> {
    let mut out = String::new();
    for (i, b) in local.to_lowercase().bytes().enumerate() {
        let plain =
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-') || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    if out.is_empty() || out.len() > MAX_USER || out.contains("..") {
        return Err(DeliveryError::InvalidUser(local.to_string()));
    }
    Ok(out)
}

impl Maildir {
    /// Mailboxes under `root` (created on first delivery). `host` goes into file names.
    pub fn new(root: impl Into<PathBuf>, host: impl Into<String>) -> Maildir {
        let host: String = host.into();
        // '/' and ':' are not allowed in Maildir unique names.
        let host = host.replace('/', "\\057").replace(':', "\\072");
        Maildir {
            root: root.into(),
            host,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates `dir` and its missing parents, fsyncing each parent that got a new entry.
    fn ensure_dir(dir: &Path) -> Result<(), DeliveryError> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            Self::ensure_dir(parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(io(dir)(e)),
        }
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Delivers `message` into `user`'s `new/` and returns its path. Durable on
    /// `Ok` (see the crate docs); on `Err` nothing was delivered and nothing is
    /// left in `new/` (a stray file in `tmp/` may remain after an I/O error, as
    /// the Maildir protocol allows).
    pub fn deliver(&self, user: &str, message: &[u8]) -> Result<PathBuf, DeliveryError> {
        let name = mailbox_name(user)?;
        let base = self.root.join(&name);
        for sub in ["tmp", "new", "cur"] {
            Self::ensure_dir(&base.join(sub))?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let unique = format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            self.host
        );
        let tmp = base.join("tmp").join(&unique);
        let new = base.join("new").join(&unique);
        let write = || -> std::io::Result<()> {
            let mut f: File = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(message)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        if let Err(e) = fs::rename(&tmp, &new) {
            let _ = fs::remove_file(&tmp);
            return Err(io(&new)(e));
        }
        sync_dir(&base.join("new"))?;
        Ok(new)
    }
}

/// fsync of a directory, which makes entries created or renamed in it durable.
fn sync_dir(dir: &Path) -> Result<(), DeliveryError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_into_new_with_the_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::new(dir.path().join("maildir"), "mx.example.com");
        let msg = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n";
        let p1 = md.deliver("User", msg).unwrap();
        let p2 = md.deliver("user", msg).unwrap();
        assert_ne!(p1, p2, "unique names");
        assert_eq!(fs::read(&p1).unwrap(), msg);
        let user = dir.path().join("maildir/user");
        assert_eq!(fs::read_dir(user.join("new")).unwrap().count(), 2);
        assert_eq!(fs::read_dir(user.join("tmp")).unwrap().count(), 0);
        assert!(user.join("cur").is_dir());
        assert!(p1
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with(".mx.example.com"));
    }

    #[test]
    fn names_cannot_escape_the_root() {
        assert_eq!(mailbox_name("John.Doe+tag").unwrap(), "john.doe+tag");
        assert_eq!(mailbox_name("../etc").unwrap(), "%2e.%2fetc");
        assert_eq!(mailbox_name(".hidden").unwrap(), "%2ehidden");
        assert_eq!(mailbox_name("a b/c").unwrap(), "a%20b%2fc");
        assert!(mailbox_name("").is_err());
        assert!(mailbox_name(&"x".repeat(200)).is_err());
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::new(dir.path(), "h");
        let e = md.deliver("../../evil", b"x").unwrap_err();
        assert!(!e.is_temporary(), "a bad name is a permanent error: {e}");
        let p = md.deliver("a/b", b"x").unwrap();
        assert!(p.starts_with(dir.path().join("a%2fb")));
    }

    #[test]
    fn an_unwritable_root_is_a_temporary_error_and_delivers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let md = Maildir::new(file.join("maildir"), "h");
        let e = md.deliver("user", b"msg").unwrap_err();
        assert!(e.is_temporary(), "{e}");
    }
}
