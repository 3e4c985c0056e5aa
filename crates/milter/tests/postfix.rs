//! Real Postfix (Debian `postfix`) with `smtpd_milters` pointing at a
//! listener built from this crate and the test handler of `common`:
//! swaks sends through it, Postfix's `smtp-sink` is the next hop.
//! - a clean message arrives at the sink with our added header;
//! - a marked message is rejected with our multi-line text, visible to swaks
//!   (Postfix turns our doubled `%` back into one);
//! - a message whose body we replace (150,000 bytes in three REPLBODY
//!   chunks) arrives with the new body;
//! - a recipient we refuse at RCPT is refused by Postfix.
//!
//! The private instance follows shared/TESTING-PEERS.md. Missing Postfix,
//! swaks or smtp-sink fail the test (`.ci/run` installs them).

mod common;

use common::TestHandler;
use mxguard_milter::*;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str, log: &Path) {
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
struct Peers {
    dir: tempfile::TempDir,
    etc: PathBuf,
    sink: Child,
    smtp_port: u16,
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
    fn start(milter_port: u16) -> Peers {
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

    fn maillog(&self) -> PathBuf {
        self.dir.path().join("maillog")
    }

    /// swaks through Postfix; returns (success, output).
    fn swaks(&self, to: &[&str], subject: &str, body: &str) -> (bool, String) {
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
    fn delivered(&self, needle: &str) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_with_our_milter() {
    let handler = TestHandler::new(Hooks {
        rcpt: true,
        ..Hooks::default()
    });
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let milter_port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let server = tokio::spawn(serve(
        listener,
        handler.clone(),
        Arc::new(SessionConfig::default()),
        shutdown.clone(),
        tracker.clone(),
    ));

    let h2 = handler.clone();
    tokio::task::spawn_blocking(move || {
        let peers = Peers::start(milter_port);

        // 1. Clean: accepted, delivered with our header (Postfix's queue id in it).
        let (ok, out) = peers.swaks(&["a@example.com"], "clean one", "CLEAN-MARKER body");
        assert!(ok, "clean message refused:\n{out}");
        let dump = peers.delivered("CLEAN-MARKER");
        let seen = h2.seen();
        let qid = seen[0]
            .ctx
            .queue_id()
            .expect("Postfix sent no queue id (macro i)")
            .to_string();
        assert!(
            dump.contains(&format!("X-MXGuard: scanned; queue={qid}; rcpts=1")),
            "header missing or malformed:\n{dump}"
        );
        assert!(out.contains(&qid), "swaks saw another queue id:\n{out}");
        let msg = String::from_utf8_lossy(&seen[0].message).into_owned();
        assert!(msg.contains("Subject: clean one\r\n"), "{msg}");
        assert!(msg.contains("\r\n\r\nCLEAN-MARKER body"), "{msg}");
        assert_eq!(seen[0].ctx.sender.as_deref(), Some("sender@x.test"));

        // 2. Rejected with our text; nothing delivered.
        let (ok, out) = peers.swaks(&["a@example.com"], "bad", "REJECT-ME please");
        assert!(!ok, "rejected message accepted:\n{out}");
        assert!(
            out.contains("550-5.7.1 Message rejected: 100% test marker")
                && out.contains("550 5.7.1 Contact postmaster"),
            "our reply text is not what swaks saw:\n{out}"
        );

        // 3. Body replaced (three REPLBODY chunks) and a header added.
        let (ok, out) = peers.swaks(&["a@example.com"], "replace me", "BIG-BODY original");
        assert!(ok, "{out}");
        let big = String::from_utf8(common::big_body())
            .unwrap()
            .replace("\r\n", "\n");
        let dump = peers.delivered(&big[big.len() - 1000..]);
        assert!(dump.contains(&big), "replacement body not delivered whole");
        assert!(
            !dump.contains("BIG-BODY original"),
            "original body still delivered"
        );

        // 4. A recipient refused at RCPT; the other one gets the message.
        let (ok, out) = peers.swaks(
            &["blocked@example.com", "ok@example.com"],
            "two rcpts",
            "RCPT-HOOK body",
        );
        assert!(
            out.contains("550 5.1.1 Recipient blocked by test policy"),
            "{out}"
        );
        let _ = ok;
        peers.delivered("RCPT-HOOK body");
        let last = h2.seen().into_iter().last().unwrap();
        let rcpts: Vec<_> = last
            .ctx
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        assert_eq!(rcpts, ["ok@example.com"]);
    })
    .await
    .unwrap();

    shutdown.cancel();
    server.await.unwrap();
    tracker.close();
    tracker.wait().await;
}
