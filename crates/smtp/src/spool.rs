//! The durable spool: accepted messages waiting for delivery.
//!
//! One file per message, `queue/<id>`: a JSON envelope on the first line, then
//! the message bytes. It is written under `tmp/`, fsynced, renamed into
//! `queue/`, and `queue/` itself is fsynced, all before the SMTP 250: a file in
//! `queue/` is complete, and a crash at any moment leaves either a complete
//! entry or a stray temp file that the next start removes. Delivery progress
//! (per-recipient results, attempts, next try) lives in a small `<id>.state`
//! file replaced atomically after each attempt; losing it in a crash means a
//! recipient may get the message twice, never that it gets lost.
//!
//! Guarantees: [`Spool::store`] returns only after the entry is durable;
//! entries are removed only after every recipient has a final result.

use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A queue id: 16 hex digits of microseconds, then a per-process counter and the pid.
pub fn new_queue_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    format!(
        "{us:013X}{:04X}{:05X}",
        n & 0xFFFF,
        *PID.get_or_init(std::process::id) & 0xFFFFF
    )
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Ids are only ever ours: hex digits, so a crafted id cannot name another path.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// One recipient of a spooled message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpoolRcpt {
    pub address: String,
    /// In `local_domains` (delivered into Maildir when the next hop is `maildir`).
    pub local: bool,
    /// RFC 3461 NOTIFY as received (`SUCCESS,FAILURE`...), passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
}

/// The envelope of a spooled message (first line of its file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolEnvelope {
    pub id: String,
    /// Empty for the null sender.
    pub mail_from: String,
    pub rcpts: Vec<SpoolRcpt>,
    pub received: u64,
    pub client_ip: String,
    #[serde(default)]
    pub helo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    /// `FULL` or `HDRS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<String>,
    #[serde(default)]
    pub body_8bit: bool,
    #[serde(default)]
    pub smtputf8: bool,
    /// This message is a delivery status notification we made (never bounced itself).
    #[serde(default)]
    pub dsn: bool,
    /// What the scan decided, for `mxguard queue show` and logs.
    #[serde(default)]
    pub verdict: String,
}

/// Where one recipient stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum RcptState {
    Pending {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
    },
    Delivered {
        reply: String,
    },
    Failed {
        reply: String,
    },
}

/// Delivery progress of one entry (`<id>.state`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SpoolState {
    pub attempts: u32,
    /// Unix seconds of the next attempt (0: as soon as possible).
    pub next_attempt: u64,
    /// Per recipient, same order as the envelope; empty = all pending.
    pub rcpts: Vec<RcptState>,
}

impl SpoolState {
    pub fn rcpt(&self, i: usize) -> RcptState {
        self.rcpts
            .get(i)
            .cloned()
            .unwrap_or(RcptState::Pending { last_error: None })
    }
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    queue: PathBuf,
    tmp: PathBuf,
    /// fsyncs of `queue/`, shared by concurrent writers (group commit).
    dir_sync: std::sync::Arc<DirSync>,
}

/// Group commit of a directory's fsync: a writer that renamed its file into
/// the directory takes a ticket and waits until an fsync that *started after*
/// its rename has completed. One fsync then covers every rename made before it
/// started, so concurrent sessions share directory syncs instead of queueing
/// one each, and no writer returns before its own entry is durable.
#[derive(Debug)]
struct DirSync {
    fd: File,
    state: std::sync::Mutex<SyncState>,
    done: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Tickets handed out so far.
    issued: u64,
    /// Every ticket below this is durable.
    covered: u64,
    running: bool,
}

impl DirSync {
    fn new(dir: &Path) -> io::Result<DirSync> {
        Ok(DirSync {
            fd: File::open(dir)?,
            state: std::sync::Mutex::new(SyncState::default()),
            done: std::sync::Condvar::new(),
        })
    }

    /// Returns once the directory was fsynced after this call began.
    fn sync(&self) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = st.issued;
        st.issued += 1;
        loop {
            if st.covered > ticket {
                return Ok(());
            }
            if !st.running {
                // Become the syncer for everything issued so far.
                st.running = true;
                let upto = st.issued;
                drop(st);
                let r = self.fd.sync_all();
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.running = false;
                if r.is_ok() && upto > st.covered {
                    st.covered = upto;
                }
                self.done.notify_all();
                // On error only this writer fails; waiters retry with their own fsync.
                r?;
                continue;
            }
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Writes `parts` to `tmp`, fsyncs, renames to `dest`. Directory sync is the caller's.
fn write_durable(tmp: &Path, dest: &Path, parts: &[&[u8]], sync: bool) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    let r = (|| {
        for p in parts {
            f.write_all(p)?;
        }
        if sync {
            f.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        drop(f);
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    drop(f);
    if let Err(e) = fs::rename(tmp, dest) {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    Ok(())
}

impl Spool {
    /// Opens (creating) the spool under `dir`.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        let queue = dir.join("queue");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&queue)?;
        fs::create_dir_all(&tmp)?;
        let dir_sync = std::sync::Arc::new(DirSync::new(&queue)?);
        Ok(Spool {
            queue,
            tmp,
            dir_sync,
        })
    }

    /// At server start, before any session: removes the temp files of writes
    /// a crash interrupted (none of them was answered 250) and state files
    /// whose message is gone. Returns how many files were removed.
    pub fn recover(&self) -> io::Result<usize> {
        let mut n = 0;
        for e in fs::read_dir(&self.tmp)? {
            if fs::remove_file(e?.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n + self.sweep()?)
    }

    pub fn dir(&self) -> &Path {
        &self.queue
    }

    fn path(&self, id: &str) -> PathBuf {
        self.queue.join(id)
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.queue.join(format!("{id}.state"))
    }

    /// Stores a message durably (file and directory fsynced) and returns after that.
    pub fn store(&self, env: &SpoolEnvelope, message: &[u8]) -> io::Result<()> {
        if !valid_id(&env.id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad queue id"));
        }
        let mut head = serde_json::to_vec(env).map_err(io::Error::other)?;
        head.push(b'\n');
        write_durable(
            &self.tmp.join(&env.id),
            &self.path(&env.id),
            &[&head, message],
            true,
        )?;
        self.dir_sync.sync()
    }

    /// The ids in the queue, oldest first (ids sort by time).
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut ids: Vec<String> = fs::read_dir(&self.queue)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_id(n))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The envelope only (reads the first line).
    pub fn envelope(&self, id: &str) -> io::Result<SpoolEnvelope> {
        if !valid_id(id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad queue id"));
        }
        let mut r = BufReader::new(File::open(self.path(id))?);
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line)?;
        serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Envelope and message.
    pub fn load(&self, id: &str) -> io::Result<(SpoolEnvelope, Vec<u8>)> {
        if !valid_id(id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad queue id"));
        }
        let mut data = Vec::new();
        File::open(self.path(id))?.read_to_end(&mut data)?;
        let nl = memchr::memchr(b'\n', &data)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no envelope line"))?;
        let env = serde_json::from_slice(&data[..nl])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        data.drain(..=nl);
        Ok((env, data))
    }

    /// The delivery state (default: nothing tried yet).
    pub fn state(&self, id: &str) -> SpoolState {
        fs::read(self.state_path(id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Replaces the state atomically (fsynced: a permanent failure recorded
    /// here must not bounce twice after a crash).
    pub fn set_state(&self, id: &str, st: &SpoolState) -> io::Result<()> {
        let body = serde_json::to_vec(st).map_err(io::Error::other)?;
        let tmp = self.tmp.join(format!("{id}.state"));
        let _ = fs::remove_file(&tmp);
        write_durable(&tmp, &self.state_path(id), &[&body], true)
    }

    /// Removes a finished entry (message first; a state file left by a crash
    /// in between is swept at the next start). `has_state`: a state file may
    /// exist (saves a failing unlink per message when none was ever written).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        self.remove_entry(id, true)
    }

    pub fn remove_entry(&self, id: &str, has_state: bool) -> io::Result<()> {
        if !valid_id(id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad queue id"));
        }
        match fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if has_state {
            let _ = fs::remove_file(self.state_path(id));
        }
        Ok(())
    }

    /// State files whose message is gone (after a crash between the two removals).
    pub fn sweep(&self) -> io::Result<usize> {
        let mut n = 0;
        for e in fs::read_dir(&self.queue)? {
            let name = e?.file_name().into_string().unwrap_or_default();
            if let Some(id) = name.strip_suffix(".state") {
                if !self.path(id).exists() {
                    let _ = fs::remove_file(self.queue.join(&name));
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(id: &str) -> SpoolEnvelope {
        SpoolEnvelope {
            id: id.into(),
            mail_from: "a@b.test".into(),
            rcpts: vec![SpoolRcpt {
                address: "u@example.com".into(),
                local: true,
                notify: None,
                orcpt: None,
            }],
            received: 1,
            client_ip: "127.0.0.1".into(),
            helo: "x".into(),
            envid: None,
            ret: None,
            body_8bit: false,
            smtputf8: false,
            dsn: false,
            verdict: "clean".into(),
        }
    }

    #[test]
    fn store_load_state_remove() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let id = new_queue_id();
        s.store(&env(&id), b"Subject: x\r\n\r\nbody\n").unwrap();
        assert_eq!(s.list().unwrap(), vec![id.clone()]);
        let (e, m) = s.load(&id).unwrap();
        assert_eq!(e.mail_from, "a@b.test");
        assert_eq!(m, b"Subject: x\r\n\r\nbody\n");
        assert_eq!(s.envelope(&id).unwrap().rcpts.len(), 1);
        let st = SpoolState {
            attempts: 2,
            next_attempt: 99,
            rcpts: vec![RcptState::Failed {
                reply: "550 no".into(),
            }],
        };
        s.set_state(&id, &st).unwrap();
        assert_eq!(s.state(&id).attempts, 2);
        assert_eq!(
            s.state(&id).rcpt(0),
            RcptState::Failed {
                reply: "550 no".into()
            }
        );
        assert_eq!(s.list().unwrap().len(), 1, "state files are not entries");
        s.remove(&id).unwrap();
        assert!(s.list().unwrap().is_empty());
        assert_eq!(s.sweep().unwrap(), 0);
    }

    #[test]
    fn concurrent_stores_share_directory_syncs_and_all_land() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        s.store(&env(&new_queue_id()), b"x").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.list().unwrap().len(), 200);
        let st = s.dir_sync.state.lock().unwrap();
        assert_eq!(st.issued, 200);
        assert_eq!(st.covered, 200);
        assert!(!st.running);
    }

    #[test]
    fn ids_are_unique_and_ordered() {
        let a: Vec<String> = (0..1000).map(|_| new_queue_id()).collect();
        let mut b = a.clone();
        b.sort();
        b.dedup();
        assert_eq!(b.len(), 1000);
        assert!(a.iter().all(|i| valid_id(i)));
        assert!(!valid_id("../x") && !valid_id(""));
    }

    #[test]
    fn stray_temp_files_are_removed_on_open() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("tmp")).unwrap();
        fs::write(d.path().join("tmp/ABC"), b"half").unwrap();
        let s = Spool::open(d.path()).unwrap();
        assert!(
            d.path().join("tmp/ABC").exists(),
            "open alone must not touch temp files (the CLI opens the spool too)"
        );
        assert_eq!(s.recover().unwrap(), 1);
        assert!(s.list().unwrap().is_empty());
        assert!(!d.path().join("tmp/ABC").exists());
    }
}
