//! Runs the real `mxguard serve` on a loopback port with a config in a temp dir.

#![allow(dead_code)]

pub mod dns;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, child: &mut Child, log: &Path) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "mxguard exited ({st}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "port {port} never opened: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A running gateway.
pub struct Gateway {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Gateway {
    /// `smtp_extra` goes into `[smtp]`; `rest` is appended (other sections).
    pub fn start(smtp_extra: &str, rest: &str) -> Gateway {
        Self::start_with_env(smtp_extra, rest, &[])
    }

    pub fn start_with_env(smtp_extra: &str, rest: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("mxguard.toml");
        // The web console stays off unless the test asks for it (tests run
        // in parallel and would all want its default port).
        let web = if rest.contains("[web]") {
            ""
        } else {
            "[web]\nlisten = \"\"\n"
        };
        let text = format!(
            "data_dir = \"{}\"\nnode_id = \"test1\"\n\n[smtp]\nlisten = [\"127.0.0.1:{port}\"]\nhostname = \"mx.test\"\n{smtp_extra}\n\n{rest}\n{web}",
            dir.path().join("data").display()
        );
        std::fs::write(&config, text).unwrap();
        let log = dir.path().join("serve.log");
        let mut g = Gateway {
            child: spawn(&config, &log, env),
            dir,
            port,
            config,
            log,
        };
        wait_port(port, &mut g.child, &g.log);
        g
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `wait` for `what` to appear in the log.
    pub fn wait_log(&self, what: &str, wait: Duration) {
        let t = Instant::now();
        while !self.log_text().contains(what) {
            assert!(
                t.elapsed() < wait,
                "no {what:?} in the log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Files in a user's Maildir `new/`, waiting up to `wait` for at least `n`.
    pub fn maildir(&self, user: &str, n: usize, wait: Duration) -> Vec<Vec<u8>> {
        let dir = self.data().join("maildir").join(user).join("new");
        let t = Instant::now();
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            if files.len() >= n || t.elapsed() > wait {
                files.sort();
                return files.iter().map(|f| std::fs::read(f).unwrap()).collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every quarantine item in full (`mxguard quarantine show --json`), newest first.
    pub fn quarantine_records(&self) -> Vec<serde_json::Value> {
        let o = self.mxguard(&["quarantine", "list", "--json", "--limit", "0"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let summary: serde_json::Value = serde_json::from_str(l).unwrap();
                let id = summary["id"].as_str().unwrap().to_string();
                let o = self.mxguard(&["quarantine", "show", "--json", &id]);
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                serde_json::from_slice(&o.stdout).unwrap()
            })
            .collect()
    }

    /// The event log (`mxguard events --json`), newest first.
    pub fn events(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut a = vec!["events", "--json", "--limit", "0"];
        a.extend_from_slice(args);
        let o = self.mxguard(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until the event log has at least `n` events (they are written in batches).
    pub fn wait_events(&self, n: usize, wait: Duration) -> Vec<serde_json::Value> {
        let t = Instant::now();
        loop {
            let e = self.events(&[]);
            if e.len() >= n || t.elapsed() > wait {
                return e;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the spool has no entries.
    pub fn wait_queue_empty(&self, wait: Duration) -> bool {
        let q = self.data().join("spool").join("queue");
        let t = Instant::now();
        while t.elapsed() < wait {
            let n = std::fs::read_dir(&q)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| !e.file_name().to_string_lossy().contains('.'))
                        .count()
                })
                .unwrap_or(0);
            if n == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn mxguard(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mxguard"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), "TERM");
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(config: &Path, log: &Path, env: &[(&str, &str)]) -> Child {
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_mxguard"));
    c.arg("serve")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf);
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

pub fn unsafe_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A peer binary the test needs: missing means the test fails (CI installs it).
pub fn need(bin: &str, package: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p.to_string_lossy().into_owned();
        }
    }
    panic!("{bin} not found: install the Debian package `{package}` (.ci/run does)");
}

/// Runs swaks against the gateway; returns (success, transcript).
pub fn swaks(port: u16, args: &[&str]) -> (bool, String) {
    let bin = need("swaks", "swaks");
    let out = Command::new(bin)
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--timeout",
            "30",
        ])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A raw SMTP client for what swaks cannot do (BDAT, precise timing).
pub struct Raw {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        let mut raw = Raw { r, w: s };
        let greet = raw.reply();
        assert!(greet.starts_with("220"), "{greet}");
        raw
    }

    /// One whole (multi-line) reply.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap_or(0) == 0 {
                return all;
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    pub fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.r.read_to_string(&mut s);
        s
    }
}
