//! The delivery client against a real peer: Postfix's `smtp-sink` (Debian
//! package `postfix`), over loopback TCP (SMTP) and a Unix socket (LMTP).
//! These tests fail, not skip, when smtp-sink is missing: install postfix.

use mxguard_smtp::client::{
    deliver, ClientOptions, Failure, NextHop, OutboundEnvelope, OutboundRcpt, Outcome, Stage,
};
use mxguard_smtp::proto::command::Ret;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// A private smtp-sink, stopped (by its process id) when dropped.
struct Sink {
    child: Child,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Starts `smtp-sink [args] endpoint 10` and waits until `ready` succeeds.
fn start_sink(args: &[&str], endpoint: &str, ready: impl Fn() -> bool) -> Sink {
    assert!(
        Path::new(SMTP_SINK).exists(),
        "{SMTP_SINK} is missing: install Debian's postfix package (apt-get install -y postfix); \
         CI installs it"
    );
    let mut cmd = Command::new(SMTP_SINK);
    if is_root() {
        // smtp-sink refuses to run as root without a user to switch to.
        cmd.args(["-u", "root"]);
    }
    let child = cmd
        .args(args)
        .arg(endpoint)
        .arg("10")
        .stdin(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    let sink = Sink { child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "smtp-sink did not come up on {endpoint}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sink
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_tcp_sink(args: &[&str]) -> (Sink, NextHop) {
    let port = free_port();
    let sink = start_sink(args, &format!("127.0.0.1:{port}"), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (sink, format!("smtp://127.0.0.1:{port}").parse().unwrap())
}

fn opts() -> ClientOptions {
    ClientOptions {
        helo_name: "client.test".into(),
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(30),
        data_timeout: Duration::from_secs(30),
    }
}

/// A message with what needs care on the wire: dot lines, bare LF, 8-bit.
const MESSAGE: &[u8] =
    b"From: s@example.org\r\nSubject: caf\xc3\xa9\r\n\r\n.one dot\r\n..two dots\n.\nlast \xc3\xa9";
/// The same as smtp-sink dumps it (unstuffed, LF line ends).
const DUMPED_BODY: &[u8] =
    b"From: s@example.org\nSubject: caf\xc3\xa9\n\n.one dot\n..two dots\n.\nlast \xc3\xa9\n";

fn envelope(rcpts: &[&str]) -> OutboundEnvelope {
    OutboundEnvelope {
        mail_from: "sender@example.org".into(),
        rcpts: rcpts.iter().map(|r| OutboundRcpt::new(*r)).collect(),
        body_8bit: true,
        ..OutboundEnvelope::default()
    }
}

/// Waits for exactly one dump file in `dir` and returns it.
fn dumped(dir: &Path) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if files.len() == 1 {
            let data = std::fs::read(&files[0]).unwrap();
            // The dump ends with an empty line once complete.
            if data.ends_with(b"\n\n") {
                return data;
            }
        }
        assert!(
            files.len() <= 1,
            "more than one transaction dumped: {files:?}"
        );
        assert!(
            Instant::now() < deadline,
            "no dump file in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn smtp_sink_smtp_with_pipelining_dsn_and_8bit() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    let template = format!("{}/msg.", dump.display());
    let (_sink, hop) = start_tcp_sink(&["-d", &template]);

    let mut env = envelope(&["a@example.com", "b@example.com"]);
    env.ret = Some(Ret::Headers);
    env.envid = Some("ID+2B1".into());
    env.rcpts[0].notify = Some("SUCCESS,FAILURE".into());
    env.rcpts[0].orcpt = Some("rfc822;a@example.com".into());
    let res = deliver(&hop, &opts(), &env, MESSAGE).await.unwrap();
    assert_eq!(res.len(), 2);
    for r in &res {
        match &r.outcome {
            Outcome::Delivered(reply) => assert_eq!(reply.code, 250),
            o => panic!("{}: {o:?}", r.address),
        }
        assert!(r.dsn_passed, "smtp-sink advertises DSN");
    }

    let data = dumped(&dump);
    let text = String::from_utf8_lossy(&data);
    assert!(text.contains("X-Client-Proto: ESMTP\n"), "{text}");
    assert!(text.contains("X-Helo-Args: client.test\n"), "{text}");
    assert!(
        text.contains("X-Mail-Args: <sender@example.org> BODY=8BITMIME RET=HDRS ENVID=ID+2B1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "X-Rcpt-Args: <a@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@example.com\n"
        ),
        "{text}"
    );
    assert!(text.contains("X-Rcpt-Args: <b@example.com>\n"), "{text}");
    // smtp-sink's own headers, then the message as received.
    let start = data
        .windows(b"From: s@".len())
        .position(|w| w == b"From: s@")
        .expect("message in dump");
    assert_eq!(&data[start..data.len() - 1], DUMPED_BODY);
}

#[tokio::test]
async fn smtp_sink_lmtp_over_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("lmtp.sock");
    let dump = dir.path().join("dump");
    let template = format!("{}/msg.", dump.display());
    let endpoint = format!("unix:{}", sock.display());
    let probe = sock.clone();
    let _sink = start_sink(&["-L", "-d", &template], &endpoint, move || {
        std::os::unix::net::UnixStream::connect(&probe).is_ok()
    });
    let hop: NextHop = format!("lmtp+unix:{}", sock.display()).parse().unwrap();

    let env = envelope(&["a@example.com", "b@example.com", "c@example.com"]);
    let res = deliver(&hop, &opts(), &env, MESSAGE).await.unwrap();
    assert_eq!(res.len(), 3);
    assert!(
        res.iter().all(|r| r.outcome.is_delivered()),
        "one final reply per recipient: {res:?}"
    );
    let text = String::from_utf8_lossy(&dumped(&dump)).into_owned();
    assert!(text.contains("X-Client-Proto: LMTP\n"), "{text}");
    assert_eq!(text.matches("X-Rcpt-Args: ").count(), 3, "{text}");
}

#[tokio::test]
async fn smtp_sink_refusing_the_final_dot_without_pipelining() {
    // -f rejects the named commands with 5xx (and turns PIPELINING off).
    let (_sink, hop) = start_tcp_sink(&["-f", "."]);
    let res = deliver(&hop, &opts(), &envelope(&["a@example.com"]), MESSAGE)
        .await
        .unwrap();
    match res[0].outcome.failure() {
        Some(Failure::Remote { stage, reply }) => {
            assert_eq!(*stage, Stage::EndOfData);
            assert!(reply.code >= 500, "{reply:?}");
        }
        o => panic!("{o:?}"),
    }
    assert!(res[0].outcome.is_permanent());

    // A soft refusal of RCPT is temporary, and no data is sent.
    let (_sink, hop) = start_tcp_sink(&["-r", "RCPT"]);
    let res = deliver(&hop, &opts(), &envelope(&["a@example.com"]), MESSAGE)
        .await
        .unwrap();
    match res[0].outcome.failure() {
        Some(Failure::Remote { stage, reply }) => {
            assert_eq!((*stage, reply.code / 100), (Stage::RcptTo, 4));
        }
        o => panic!("{o:?}"),
    }
}
