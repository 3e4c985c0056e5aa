//! The quarantine folder: `data_dir/quarantine/<id>.eml` plus `<id>.json`
//! (envelope, reason, findings, action). It stands in until the store
//! (SQLite/PostgreSQL) takes over quarantine; its writes are durable (file and
//! directory fsynced) before the SMTP answer that depends on them.

use mxguard_types::Finding;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What is recorded next to a quarantined message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineRecord {
    pub id: String,
    pub time: u64,
    pub node: String,
    pub client_ip: String,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub subject: String,
    /// `infected`, `suspicious`, `unscannable`, or `backup` (original kept before clean/tag).
    pub reason: String,
    pub action: String,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone)]
pub struct Quarantine {
    dir: PathBuf,
}

fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)
}

impl Quarantine {
    pub fn open(dir: &Path) -> io::Result<Quarantine> {
        fs::create_dir_all(dir)?;
        Ok(Quarantine {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores the message and its record; returns after both and the directory are fsynced.
    pub fn store(&self, rec: &QuarantineRecord, message: &[u8]) -> io::Result<()> {
        if !crate::spool::valid_id(&rec.id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad quarantine id",
            ));
        }
        write_synced(&self.dir.join(format!("{}.eml", rec.id)), message)?;
        let json = serde_json::to_vec_pretty(rec).map_err(io::Error::other)?;
        write_synced(&self.dir.join(format!("{}.json", rec.id)), &json)?;
        File::open(&self.dir)?.sync_all()
    }

    /// All records, oldest first.
    pub fn list(&self) -> io::Result<Vec<QuarantineRecord>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.extension().and_then(|x| x.to_str()) == Some("json") {
                if let Ok(r) = fs::read(&p)
                    .map_err(|_| ())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|_| ()))
                {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a: &QuarantineRecord, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn message(&self, id: &str) -> io::Result<Vec<u8>> {
        if !crate::spool::valid_id(id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad quarantine id",
            ));
        }
        fs::read(self.dir.join(format!("{id}.eml")))
    }
}
