//! `[clamd]`: the socket's configuration, validated, then turned into
//! [`ServerOptions`](crate::server::ServerOptions). Names follow clamd.conf
//! (`MaxThreads` → `max_threads`, …) and so do the defaults.

use crate::pool::{PoolConfig, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_QUEUE, DEFAULT_MAX_THREADS};
use crate::proto::DEFAULT_STREAM_MAX_LENGTH;
use crate::server::{ListenAddr, ServerOptions};
use crate::session::{SessionConfig, DEFAULT_COMMAND_READ_TIMEOUT, DEFAULT_READ_TIMEOUT};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// clamd's `MaxConnectionQueueLength` default (the listen backlog).
pub const DEFAULT_MAX_CONNECTION_QUEUE: u32 = 200;
/// Connections served at once; more wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Permissions of a Unix socket (clamd's `LocalSocketMode`), as octal text.
pub const DEFAULT_UNIX_SOCKET_MODE: &str = "660";

/// Upper bounds that catch typos (a 64-bit seconds value is not a timeout).
pub const MAX_THREADS_LIMIT: usize = 1024;
pub const MAX_QUEUE_LIMIT: usize = 1 << 20;
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;
/// clamd refuses `StreamMaxLength` of 4 GiB or more.
pub const MAX_STREAM_MAX_LENGTH: u64 = (4 << 30) - 1;

/// `[clamd]` in the mxguard config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClamdConfig {
    /// `"127.0.0.1:3310"`, `"[::1]:3310"` or `"unix:/run/mxguard/clamd.sock"`; empty: off.
    pub listen: Vec<String>,
    /// `MaxThreads`: scans running at once.
    pub max_threads: usize,
    /// `MaxQueue`: scans waiting for a thread; when full, clients wait.
    pub max_queue: usize,
    /// `IdleTimeout`: an idle scan thread ends after this many seconds.
    pub idle_timeout_secs: u64,
    /// `ReadTimeout`: seconds to wait for stream data and for the next command of a session.
    pub read_timeout_secs: u64,
    /// `CommandReadTimeout`: seconds to wait for the first command of a connection.
    pub command_read_timeout_secs: u64,
    /// `StreamMaxLength`: bytes per INSTREAM; a number or a size such as `"100M"`.
    #[serde(deserialize_with = "size")]
    pub stream_max_length: u64,
    /// `MaxConnectionQueueLength`: the listen backlog.
    pub max_connection_queue: u32,
    /// Connections served at once.
    pub max_connections: usize,
    /// Whether `SHUTDOWN` (and `QUIT`) stop mxguard; off: `COMMAND UNAVAILABLE`.
    pub allow_shutdown: bool,
    /// `AllowAllMatchScan`.
    pub allow_all_match_scan: bool,
    /// `LocalSocketMode`: permissions of Unix sockets, octal.
    pub unix_socket_mode: String,
    /// `TemporaryDirectory`: where streams longer than a few MiB are spooled
    /// (default: `$TMPDIR` or `/tmp`).
    pub temporary_directory: Option<PathBuf>,
}

impl Default for ClamdConfig {
    fn default() -> Self {
        ClamdConfig {
            listen: Vec::new(),
            max_threads: DEFAULT_MAX_THREADS,
            max_queue: DEFAULT_MAX_QUEUE,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT.as_secs(),
            read_timeout_secs: DEFAULT_READ_TIMEOUT.as_secs(),
            command_read_timeout_secs: DEFAULT_COMMAND_READ_TIMEOUT.as_secs(),
            stream_max_length: DEFAULT_STREAM_MAX_LENGTH,
            max_connection_queue: DEFAULT_MAX_CONNECTION_QUEUE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            allow_shutdown: false,
            allow_all_match_scan: true,
            unix_socket_mode: DEFAULT_UNIX_SOCKET_MODE.into(),
            temporary_directory: None,
        }
    }
}

/// `"100M"`, `"512K"`, `"1G"`, `"1048576"` or a plain integer (clamd's size syntax).
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) => parse_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {s:?}: a number of bytes, optionally with K, M or G"
            ))
        }),
    }
}

/// Parses clamd's size syntax; `None` when invalid or over `u64`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mul)
}

impl ClamdConfig {
    /// Every problem at once, each naming its key (`clamd.max_threads: …`).
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, l) in self.listen.iter().enumerate() {
            match l.parse::<ListenAddr>() {
                Ok(a) => {
                    if !seen.insert(a.clone()) {
                        e.push(format!("clamd.listen[{i}]: {l:?} is listed twice"));
                    }
                }
                Err(err) => e.push(format!("clamd.listen[{i}]: {err}")),
            }
        }
        if !(1..=MAX_THREADS_LIMIT).contains(&self.max_threads) {
            e.push(format!(
                "clamd.max_threads: {} is out of range (1 to {MAX_THREADS_LIMIT})",
                self.max_threads
            ));
        }
        if !(1..=MAX_QUEUE_LIMIT).contains(&self.max_queue) {
            e.push(format!(
                "clamd.max_queue: {} is out of range (1 to {MAX_QUEUE_LIMIT})",
                self.max_queue
            ));
        }
        for (k, v) in [
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("read_timeout_secs", self.read_timeout_secs),
            ("command_read_timeout_secs", self.command_read_timeout_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&v) {
                e.push(format!(
                    "clamd.{k}: {v} is out of range (1 to {MAX_TIMEOUT_SECS} seconds)"
                ));
            }
        }
        if !(1..=MAX_STREAM_MAX_LENGTH).contains(&self.stream_max_length) {
            e.push(format!(
                "clamd.stream_max_length: {} is out of range (1 byte to 4 GiB - 1)",
                self.stream_max_length
            ));
        }
        if self.max_connection_queue == 0 || self.max_connection_queue > 65535 {
            e.push(format!(
                "clamd.max_connection_queue: {} is out of range (1 to 65535)",
                self.max_connection_queue
            ));
        }
        if self.max_connections == 0 {
            e.push("clamd.max_connections: must be at least 1".into());
        }
        if let Some(d) = &self.temporary_directory {
            if !d.is_dir() {
                e.push(format!(
                    "clamd.temporary_directory: {} is not a directory",
                    d.display()
                ));
            }
        }
        if self.unix_mode().is_none() {
            e.push(format!(
                "clamd.unix_socket_mode: {:?} is not an octal mode such as \"660\"",
                self.unix_socket_mode
            ));
        }
        e
    }

    fn unix_mode(&self) -> Option<u32> {
        let s = self.unix_socket_mode.trim_start_matches("0o");
        if s.is_empty() || s.len() > 4 {
            return None;
        }
        u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o777)
    }

    /// The runtime options; `Err` holds what [`validate`](Self::validate) reports.
    pub fn build(&self) -> Result<ServerOptions, Vec<String>> {
        let e = self.validate();
        if !e.is_empty() {
            return Err(e);
        }
        Ok(ServerOptions {
            listen: self.listen.iter().filter_map(|l| l.parse().ok()).collect(),
            backlog: self.max_connection_queue,
            unix_mode: self.unix_mode().unwrap_or(0o660),
            max_connections: self.max_connections,
            pool: PoolConfig {
                max_threads: self.max_threads,
                max_queue: self.max_queue,
                idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            },
            session: SessionConfig {
                read_timeout: Duration::from_secs(self.read_timeout_secs),
                command_read_timeout: Duration::from_secs(self.command_read_timeout_secs),
                stream_max_length: self.stream_max_length,
                allow_shutdown: self.allow_shutdown,
                allow_all_match_scan: self.allow_all_match_scan,
                temp_dir: self
                    .temporary_directory
                    .clone()
                    .unwrap_or_else(std::env::temp_dir),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_clamds_and_valid() {
        let c = ClamdConfig::default();
        assert!(c.validate().is_empty());
        let o = c.build().unwrap();
        assert_eq!(o.pool.max_threads, 10);
        assert_eq!(o.pool.max_queue, 100);
        assert_eq!(o.session.stream_max_length, 100 << 20);
        assert_eq!(o.session.read_timeout, Duration::from_secs(120));
        assert_eq!(o.session.command_read_timeout, Duration::from_secs(30));
        assert!(!o.session.allow_shutdown);
        assert_eq!(o.unix_mode, 0o660);
        assert!(o.listen.is_empty());
    }

    #[test]
    fn every_error_names_its_key() {
        let c = ClamdConfig {
            listen: vec![
                "127.0.0.1:3310".into(),
                "unix:".into(),
                "localhost".into(),
                "127.0.0.1:3310".into(),
            ],
            max_threads: 0,
            max_queue: 0,
            idle_timeout_secs: 0,
            read_timeout_secs: u64::MAX,
            command_read_timeout_secs: 0,
            stream_max_length: 0,
            max_connection_queue: 0,
            max_connections: 0,
            unix_socket_mode: "999".into(),
            temporary_directory: Some("/nonexistent/tmp".into()),
            ..Default::default()
        };
        let e = c.validate().join("\n");
        for k in [
            "clamd.listen[1]",
            "clamd.listen[2]",
            "clamd.listen[3]: \"127.0.0.1:3310\" is listed twice",
            "clamd.max_threads",
            "clamd.max_queue",
            "clamd.idle_timeout_secs",
            "clamd.read_timeout_secs",
            "clamd.command_read_timeout_secs",
            "clamd.stream_max_length",
            "clamd.max_connection_queue",
            "clamd.max_connections",
            "clamd.unix_socket_mode",
            "clamd.temporary_directory",
        ] {
            assert!(e.contains(k), "{k} missing in:\n{e}");
        }
        assert!(c.build().is_err());
    }

    #[test]
    fn sizes_parse_like_clamd() {
        assert_eq!(parse_size("100M"), Some(100 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("12345"), Some(12345));
        for bad in ["", "M", "-1M", "1.5M", "10T", "99999999999999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
