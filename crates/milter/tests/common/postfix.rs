//! A private Postfix (Debian `postfix`, per shared/TESTING-PEERS.md) with
//! `smtpd_milters` pointing at a milter port, relaying example.com to
//! Postfix's `smtp-sink`, which dumps what it receives. Shared by the milter
//! crate's Postfix test and the gateway's (`crates/server/tests/milter.rs`,
//! through `#[path]`). Missing Postfix, swaks or smtp-sink fail the test.

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            panic!(
                "{what} did not listen on {port}; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private Postfix and smtp-sink; stopped on drop.
pub struct Peers {
    pub dir: tempfile::TempDir,
    pub etc: PathBuf,
    pub sink: Child,
    pub smtp_port: u16,
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.etc)
            .arg("stop")
            .output();
        let _ = self.sink.kill();
        let _ = self.sink.wait();
    }
}

impl Peers {
    pub fn start(milter_port: u16) -> Peers {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        run("chmod", &["755", root.to_str().unwrap()]);
        let etc = root.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        for d in ["queue", "data", "sink"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            run("chown", &["postfix", root.join(d).to_str().unwrap()]);
        }
        let smtp_port = free_port();
        let sink_port = free_port();
        let master = std::fs::read_to_string("/etc/postfix/master.cf")
            .expect("/etc/postfix/master.cf missing: install postfix (apt-get install postfix)");
        let master: String = master
            .lines()
            .map(|l| {
                if l.starts_with("smtp ") && l.contains(" inet ") {
                    l.replacen("smtp", &format!("127.0.0.1:{smtp_port}"), 1)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            master.contains(&format!("127.0.0.1:{smtp_port}")),
            "no smtp inet line"
        );
        std::fs::write(etc.join("master.cf"), master + "\n").unwrap();
        let r = root.display();
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
mail_owner = postfix
myhostname = mx.test.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = example.com
transport_maps = inline:{{ example.com=smtp:[127.0.0.1]:{sink_port} }}
smtp_dns_support_level = disabled
maillog_file = {r}/maillog
maillog_file_prefixes = {r}
smtpd_milters = inet:127.0.0.1:{milter_port}
milter_protocol = 6
milter_default_action = tempfail
"
            ),
        )
        .unwrap();
        let sink = Command::new("/usr/sbin/smtp-sink")
            .args(["-u", "postfix", "-D"])
            .arg(root.join("sink/dump"))
            .arg(format!("127.0.0.1:{sink_port}"))
            .arg("10")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink missing: install postfix");
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&etc)
            .arg("start")
            .output()
            .expect("postfix missing: install postfix");
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(root.join("maillog")).unwrap_or_default()
        );
        let peers = Peers {
            dir,
            etc,
            sink,
            smtp_port,
        };
        wait_port(sink_port, "smtp-sink", &peers.maillog());
        wait_port(smtp_port, "postfix smtpd", &peers.maillog());
        peers
    }

    pub fn maillog(&self) -> PathBuf {
        self.dir.path().join("maillog")
    }

    /// swaks through Postfix; returns (success, output).
    pub fn swaks(&self, to: &[&str], subject: &str, body: &str) -> (bool, String) {
        let mut c = Command::new("swaks");
        c.args(["-s", "127.0.0.1", "-p", &self.smtp_port.to_string()]);
        c.args(["--from", "sender@x.test", "--to", &to.join(",")]);
        c.args(["--header", &format!("Subject: {subject}"), "--body", body]);
        c.args(["--timeout", "60"]);
        let out = c.output().expect("swaks missing: install swaks");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// Waits until the sink's dump holds `needle`; returns the dump.
    pub fn delivered(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let dump =
                std::fs::read_to_string(self.dir.path().join("sink/dump")).unwrap_or_default();
            if dump.contains(needle) {
                return dump;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let head: String = dump.chars().take(3000).collect();
                panic!(
                    "{:?}... never reached the sink; dump starts:\n{head}\nmaillog:\n{}",
                    needle.chars().take(60).collect::<String>(),
                    std::fs::read_to_string(self.maillog()).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn run(cmd: &str, args: &[&str]) {
    let s = Command::new(cmd).args(args).status().unwrap();
    assert!(s.success(), "{cmd} {args:?}");
}
