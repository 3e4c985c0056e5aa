//! The delivery client against an in-process fake next hop: each test scripts
//! the server side of one session over loopback TCP (or a Unix socket) and
//! checks both what the client sent, byte for byte, and the results it
//! reports.

use mxguard_smtp::client::{
    deliver, enhanced_status, ClientOptions, DataEncoder, Failure, NextHop, OutboundEnvelope,
    OutboundRcpt, Outcome, RcptResult, Stage, TransportError, MAX_REPLY_LEN,
};
use mxguard_smtp::proto::command::Ret;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::timeout;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The server side of one scripted session.
struct Peer {
    s: Box<dyn Io>,
    buf: Vec<u8>,
    /// Number of reads that returned data.
    reads: usize,
}

impl Peer {
    async fn send(&mut self, text: &str) {
        self.s
            .write_all(text.as_bytes())
            .await
            .expect("send to client");
    }

    /// Reads more; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut b = vec![0u8; 256 * 1024];
        let n = timeout(Duration::from_secs(10), self.s.read(&mut b))
            .await
            .expect("the client went silent")
            .unwrap_or(0);
        self.buf.extend_from_slice(&b[..n]);
        self.reads += usize::from(n > 0);
        n > 0
    }

    /// One command line without CRLF; asserts it ended in CRLF.
    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                let line = String::from_utf8(line).expect("UTF-8 command");
                assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
                return line;
            }
            if !self.fill().await {
                panic!(
                    "client closed; unread: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    async fn expect(&mut self, want: &str) {
        assert_eq!(self.line().await, want);
    }

    /// The raw data after 354, up to and including the final `.` CRLF.
    async fn data(&mut self) -> Vec<u8> {
        loop {
            let end = if self.buf.starts_with(b".\r\n") {
                Some(3)
            } else {
                find(&self.buf, b"\r\n.\r\n").map(|i| i + 5)
            };
            if let Some(end) = end {
                return self.buf.drain(..end).collect();
            }
            assert!(self.fill().await, "client closed during data");
        }
    }

    /// True if the client sends nothing for `ms` milliseconds.
    async fn quiet(&mut self, ms: u64) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut b = [0u8; 1024];
        match timeout(Duration::from_millis(ms), self.s.read(&mut b)).await {
            Err(_) => true,
            Ok(n) => {
                let n = n.unwrap_or(0);
                self.buf.extend_from_slice(&b[..n]);
                n == 0
            }
        }
    }

    /// Greeting and EHLO with the given extensions.
    async fn ehlo(&mut self, exts: &[&str]) {
        self.send("220 fake.test ESMTP\r\n").await;
        self.expect("EHLO client.test").await;
        self.send(&ehlo_reply(exts)).await;
    }

    async fn quit(&mut self) {
        self.expect("QUIT").await;
        self.send("221 2.0.0 bye\r\n").await;
    }
}

fn ehlo_reply(exts: &[&str]) -> String {
    let mut r = String::from("250");
    r.push(if exts.is_empty() { ' ' } else { '-' });
    r.push_str("fake.test\r\n");
    for (i, e) in exts.iter().enumerate() {
        let sep = if i + 1 == exts.len() { ' ' } else { '-' };
        r.push_str(&format!("250{sep}{e}\r\n"));
    }
    r
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Starts a fake next hop on a loopback port for one session.
async fn server<F, Fut, T>(lmtp: bool, script: F) -> (NextHop, JoinHandle<T>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hop = format!("{}://127.0.0.1:{port}", if lmtp { "lmtp" } else { "smtp" });
    let handle = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        script(Peer {
            s: Box::new(s),
            buf: Vec::new(),
            reads: 0,
        })
        .await
    });
    (hop.parse().unwrap(), handle)
}

fn opts() -> ClientOptions {
    ClientOptions {
        helo_name: "client.test".into(),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
    }
}

fn env(rcpts: &[&str]) -> OutboundEnvelope {
    OutboundEnvelope {
        mail_from: "sender@example.org".into(),
        rcpts: rcpts.iter().map(|r| OutboundRcpt::new(*r)).collect(),
        ..OutboundEnvelope::default()
    }
}

const MSG: &[u8] = b"Subject: test\r\n\r\nHello.\r\n";

fn delivered(r: &RcptResult) -> (u16, String) {
    match &r.outcome {
        Outcome::Delivered(reply) => (reply.code, reply.lines.join("|")),
        o => panic!("{}: not delivered: {o:?}", r.address),
    }
}

/// (permanent?, stage, code) of a remote failure.
fn remote(r: &RcptResult) -> (bool, Stage, u16) {
    let perm = r.outcome.is_permanent();
    match r.outcome.failure() {
        Some(Failure::Remote { stage, reply }) => (perm, *stage, reply.code),
        o => panic!("{}: not a remote failure: {o:?}", r.address),
    }
}

/// (permanent?, status) of a local failure.
fn local(r: &RcptResult) -> (bool, &str) {
    match r.outcome.failure() {
        Some(Failure::Local { status, .. }) => (r.outcome.is_permanent(), status),
        o => panic!("{}: not a local failure: {o:?}", r.address),
    }
}

#[tokio::test]
async fn success_with_pipelining() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&[
            "PIPELINING",
            "SIZE 1000000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
        ])
        .await;
        let reads_before = p.reads;
        // No reply until DATA has arrived: a client that waited for the MAIL
        // reply would hang here and time out.
        let mail = p.line().await;
        let r1 = p.line().await;
        let r2 = p.line().await;
        p.expect("DATA").await;
        assert_eq!(
            p.reads,
            reads_before + 1,
            "MAIL, RCPT, RCPT, DATA in one write"
        );
        p.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n")
            .await;
        let data = p.data().await;
        p.send("250 2.0.0 queued as ABC\r\n").await;
        p.quit().await;
        (mail, r1, r2, data)
    })
    .await;
    let mut e = env(&["a@example.com", "b@example.com"]);
    e.body_8bit = true;
    let msg = b"Subject: caf\xc3\xa9\r\n\r\n8-bit body \xff\r\n";
    let res = deliver(&hop, &opts(), &e, msg).await.unwrap();
    let (mail, r1, r2, data) = srv.await.unwrap();
    assert_eq!(
        mail,
        format!(
            "MAIL FROM:<sender@example.org> SIZE={} BODY=8BITMIME",
            msg.len()
        )
    );
    assert_eq!(r1, "RCPT TO:<a@example.com>");
    assert_eq!(r2, "RCPT TO:<b@example.com>");
    assert_eq!(data, [&msg[..], b".\r\n"].concat());
    assert_eq!(res.len(), 2);
    assert_eq!(res[0].address, "a@example.com");
    assert_eq!(res[1].address, "b@example.com");
    for r in &res {
        assert_eq!(delivered(r), (250, "2.0.0 queued as ABC".into()));
        assert!(!r.dsn_passed);
    }
    if let Outcome::Delivered(reply) = &res[0].outcome {
        assert_eq!(enhanced_status(reply), Some("2.0.0"));
    }
}

#[tokio::test]
async fn success_without_pipelining() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["SIZE", "ENHANCEDSTATUSCODES"]).await;
        p.expect(&format!("MAIL FROM:<> SIZE={}", MSG.len())).await;
        assert!(p.quiet(200).await, "client must wait for the MAIL reply");
        p.send("250 2.1.0 ok\r\n").await;
        p.expect("RCPT TO:<a@example.com>").await;
        assert!(p.quiet(200).await, "client must wait for the RCPT reply");
        p.send("250 2.1.5 ok\r\n").await;
        p.expect("RCPT TO:<b@example.com>").await;
        p.send("251 2.1.5 will forward\r\n").await;
        p.expect("DATA").await;
        assert!(p.quiet(200).await, "client must wait for 354");
        p.send("354 go\r\n").await;
        let data = p.data().await;
        p.send("250 2.0.0 ok\r\n").await;
        p.quit().await;
        data
    })
    .await;
    let mut e = env(&["a@example.com", "b@example.com"]);
    e.mail_from = String::new();
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    assert_eq!(srv.await.unwrap(), [MSG, b".\r\n"].concat());
    assert!(res.iter().all(|r| r.outcome.is_delivered()));
}

#[tokio::test]
async fn helo_after_ehlo_refused() {
    let (hop, srv) = server(false, |mut p| async move {
        p.send("220 old.test SMTP\r\n").await;
        p.expect("EHLO client.test").await;
        p.send("502 command not implemented\r\n").await;
        p.expect("HELO client.test").await;
        p.send("250 old.test\r\n").await;
        // No ESMTP: no parameters at all, one command at a time.
        p.expect("MAIL FROM:<sender@example.org>").await;
        p.send("250 ok\r\n").await;
        p.expect("RCPT TO:<a@example.com>").await;
        p.send("250 ok\r\n").await;
        p.expect("DATA").await;
        p.send("354 go\r\n").await;
        p.data().await;
        p.send("250 ok\r\n").await;
        p.quit().await;
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@example.com"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(delivered(&res[0]), (250, "ok".into()));
}

#[tokio::test]
async fn one_recipient_rejected_others_delivered() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..4 {
            p.line().await;
        }
        p.expect("DATA").await;
        p.send(
            "250 ok\r\n250 ok\r\n550 5.1.1 <b@example.com>: no such user\r\n250 ok\r\n354 go\r\n",
        )
        .await;
        p.data().await;
        p.send("250 2.0.0 ok\r\n").await;
        p.quit().await;
    })
    .await;
    let e = env(&["a@example.com", "b@example.com", "c@example.com"]);
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    srv.await.unwrap();
    assert!(res[0].outcome.is_delivered());
    assert_eq!(remote(&res[1]), (true, Stage::RcptTo, 550));
    assert_eq!(res[1].outcome.failure().unwrap().status(), Some("5.1.1"));
    assert!(res[1]
        .outcome
        .failure()
        .unwrap()
        .to_string()
        .contains("550 5.1.1 <b@example.com>: no such user (in reply to RCPT TO)"));
    assert!(res[2].outcome.is_delivered());
}

#[tokio::test]
async fn mail_451_makes_everything_temporary() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&[]).await;
        p.line().await;
        p.send("451 4.3.0 try again later\r\n").await;
        // No RCPT after a refused MAIL.
        p.quit().await;
    })
    .await;
    let res = deliver(
        &hop,
        &opts(),
        &env(&["a@example.com", "b@example.com"]),
        MSG,
    )
    .await
    .unwrap();
    srv.await.unwrap();
    for r in &res {
        assert_eq!(remote(r), (false, Stage::MailFrom, 451));
    }
}

#[tokio::test]
async fn mail_rejected_with_pipelining() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..4 {
            p.line().await;
        }
        p.send("553 5.7.1 sender refused\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n554 5.5.1 no valid recipients\r\n")
            .await;
        p.quit().await;
    })
    .await;
    let res = deliver(
        &hop,
        &opts(),
        &env(&["a@example.com", "b@example.com"]),
        MSG,
    )
    .await
    .unwrap();
    srv.await.unwrap();
    for r in &res {
        assert_eq!(remote(r), (true, Stage::MailFrom, 553));
    }
}

#[tokio::test]
async fn no_recipient_accepted_sends_no_data() {
    // Without pipelining: straight to QUIT after the last RCPT.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&[]).await;
        p.line().await;
        p.send("250 ok\r\n").await;
        p.line().await;
        p.send("550 5.1.1 no\r\n").await;
        p.line().await;
        p.send("450 4.2.1 busy\r\n").await;
        p.quit().await;
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test", "b@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(remote(&res[0]), (true, Stage::RcptTo, 550));
    assert_eq!(remote(&res[1]), (false, Stage::RcptTo, 450));

    // With pipelining, a server that says 354 anyway gets an empty message.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..3 {
            p.line().await;
        }
        p.send("250 ok\r\n550 no\r\n354 go\r\n").await;
        assert_eq!(p.data().await, b".\r\n");
        p.send("554 no recipients\r\n").await;
        p.quit().await;
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(remote(&res[0]), (true, Stage::RcptTo, 550));

    // LMTP owes no reply to that dot (no recipient accepted): no waiting.
    let (hop, srv) = server(true, |mut p| async move {
        p.send("220 lmtp\r\n").await;
        p.expect("LHLO client.test").await;
        p.send("250-lmtp\r\n250 PIPELINING\r\n").await;
        for _ in 0..3 {
            p.line().await;
        }
        p.send("250 ok\r\n550 no\r\n354 go\r\n").await;
        assert_eq!(p.data().await, b".\r\n");
        p.quit().await;
    })
    .await;
    let mut o = opts();
    o.data_timeout = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let res = deliver(&hop, &o, &env(&["a@x.test"]), MSG).await.unwrap();
    srv.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(remote(&res[0]), (true, Stage::RcptTo, 550));
}

#[tokio::test]
async fn final_dot_554_is_permanent_for_all() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..4 {
            p.line().await;
        }
        p.send("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n").await;
        p.data().await;
        p.send("554-5.7.1 message refused:\r\n554 5.7.1 looks like spam\r\n")
            .await;
        p.quit().await;
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test", "b@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    for r in &res {
        assert_eq!(remote(r), (true, Stage::EndOfData, 554));
        assert_eq!(r.outcome.failure().unwrap().status(), Some("5.7.1"));
    }
}

#[tokio::test]
async fn data_refused_after_recipients_accepted() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..3 {
            p.line().await;
        }
        p.send("250 ok\r\n250 ok\r\n451 4.3.0 not now\r\n").await;
        p.quit().await;
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(remote(&res[0]), (false, Stage::Data, 451));
}

#[tokio::test]
async fn lmtp_one_final_reply_per_recipient() {
    let (hop, srv) = server(true, |mut p| async move {
        p.send("220 lmtp.test LMTP\r\n").await;
        p.expect("LHLO client.test").await;
        p.send("250-lmtp.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n")
            .await;
        p.line().await;
        for _ in 0..4 {
            p.line().await;
        }
        p.expect("DATA").await;
        p.send("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n250 ok\r\n354 go\r\n")
            .await;
        p.data().await;
        // Replies for a, c, d: the refused b gets none (RFC 2033 §4.2).
        p.send("250 2.1.5 a delivered\r\n452 4.2.2 c over quota\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        p.send("250 2.1.5 d delivered\r\n").await;
        p.quit().await;
    })
    .await;
    let e = env(&["a@x.test", "b@x.test", "c@x.test", "d@x.test"]);
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    srv.await.unwrap();
    assert_eq!(delivered(&res[0]), (250, "2.1.5 a delivered".into()));
    assert_eq!(remote(&res[1]), (true, Stage::RcptTo, 550));
    assert_eq!(remote(&res[2]), (false, Stage::EndOfData, 452));
    assert_eq!(delivered(&res[3]), (250, "2.1.5 d delivered".into()));
}

#[tokio::test]
async fn lmtp_drop_after_some_final_replies_keeps_them() {
    let (hop, srv) = server(true, |mut p| async move {
        p.send("220 lmtp.test LMTP\r\n").await;
        p.expect("LHLO client.test").await;
        p.send("250-lmtp.test\r\n250 PIPELINING\r\n").await;
        for _ in 0..5 {
            p.line().await;
        }
        p.send("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
            .await;
        p.data().await;
        p.send("250 2.1.5 a delivered\r\n550 5.2.1 b disabled\r\n")
            .await;
        // Connection lost before c's reply.
    })
    .await;
    let e = env(&["a@x.test", "b@x.test", "c@x.test"]);
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    srv.await.unwrap();
    assert!(res[0].outcome.is_delivered());
    assert_eq!(remote(&res[1]), (true, Stage::EndOfData, 550));
    assert_eq!(local(&res[2]), (false, "4.4.2"));
    let text = res[2].outcome.failure().unwrap().to_string();
    assert!(text.contains("end of data"), "{text}");
}

#[tokio::test]
async fn connection_dropped_mid_data_is_temporary() {
    // Nothing decided yet: a transport error.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..3 {
            p.line().await;
        }
        p.send("250 ok\r\n250 ok\r\n354 go\r\n").await;
        p.fill().await; // some of the message, then gone
    })
    .await;
    let big: Vec<u8> =
        b"0123456789abcdef0123456789abcdef0123456789abcdef012345678\r\n".repeat(100_000);
    let err = deliver(&hop, &opts(), &env(&["a@x.test"]), &big)
        .await
        .unwrap_err();
    srv.await.unwrap();
    assert!(
        matches!(
            err,
            TransportError::Closed { .. } | TransportError::Io { .. }
        ),
        "{err:?}"
    );
    assert!(matches!(err.stage(), Stage::Message | Stage::EndOfData));
    assert_eq!(err.status(), "4.4.2");

    // A recipient refused at RCPT keeps its refusal; the rest are temporary.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..4 {
            p.line().await;
        }
        p.send("250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go\r\n")
            .await;
        p.data().await;
        // Gone before the final reply: the message may or may not have
        // arrived, but it is never reported delivered.
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test", "b@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(remote(&res[0]), (true, Stage::RcptTo, 550));
    assert_eq!(local(&res[1]), (false, "4.4.2"));
}

#[tokio::test]
async fn dot_stuffing_byte_for_byte() {
    let msg =
        b"Subject: dots\r\n\r\n.leading\r\n..two\r\nmid.dle\r\n.\r\n. \r\nlast line without end";
    let want = b"Subject: dots\r\n\r\n..leading\r\n...two\r\nmid.dle\r\n..\r\n.. \r\nlast line without end\r\n.\r\n";
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&[]).await;
        p.line().await;
        p.send("250 ok\r\n").await;
        p.line().await;
        p.send("250 ok\r\n").await;
        p.expect("DATA").await;
        p.send("354 go\r\n").await;
        let data = p.data().await;
        p.send("250 ok\r\n").await;
        p.quit().await;
        data
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test"]), msg)
        .await
        .unwrap();
    let data = srv.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&data),
        String::from_utf8_lossy(want)
    );
    assert_eq!(data, want);
    assert!(res[0].outcome.is_delivered());
}

#[tokio::test]
async fn bare_lf_becomes_crlf() {
    let msg = b"Subject: lf\n\nline one\nline two\r\n.\nbare cr\rend\n";
    let want = b"Subject: lf\r\n\r\nline one\r\nline two\r\n..\r\nbare cr\r\nend\r\n.\r\n";
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..3 {
            p.line().await;
        }
        p.send("250 ok\r\n250 ok\r\n354 go\r\n").await;
        let data = p.data().await;
        p.send("250 ok\r\n").await;
        p.quit().await;
        data
    })
    .await;
    deliver(&hop, &opts(), &env(&["a@x.test"]), msg)
        .await
        .unwrap();
    assert_eq!(srv.await.unwrap(), want);
}

#[tokio::test]
async fn large_message_arrives_intact() {
    let mut msg = Vec::new();
    for i in 0..60_000u32 {
        msg.extend_from_slice(
            format!(
                "{}line {i} of a large message\n",
                if i % 7 == 0 { "." } else { "" }
            )
            .as_bytes(),
        );
    }
    let want = DataEncoder::encode(&msg);
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING", "SIZE 100000000"]).await;
        for _ in 0..3 {
            p.line().await;
        }
        p.send("250 ok\r\n250 ok\r\n354 go\r\n").await;
        let data = p.data().await;
        p.send("250 ok\r\n").await;
        p.quit().await;
        data
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test"]), &msg)
        .await
        .unwrap();
    assert!(srv.await.unwrap() == want);
    assert!(res[0].outcome.is_delivered());
}

#[tokio::test]
async fn eight_bit_or_utf8_needed_but_not_offered_is_permanent() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING", "SIZE"]).await;
        // Straight to QUIT: nothing is sent, nothing downgraded.
        p.quit().await;
    })
    .await;
    let mut e = env(&["a@x.test", "b@x.test"]);
    e.body_8bit = true;
    let res = deliver(&hop, &opts(), &e, b"Subject: x\r\n\r\n\xe9t\xe9\r\n")
        .await
        .unwrap();
    srv.await.unwrap();
    for r in &res {
        assert_eq!(local(r), (true, "5.6.3"));
        assert!(r
            .outcome
            .failure()
            .unwrap()
            .to_string()
            .contains("8BITMIME"));
    }

    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["8BITMIME"]).await;
        p.quit().await;
    })
    .await;
    // A non-ASCII address needs SMTPUTF8 even without the flag.
    let e = env(&["j\u{f6}rg@x.test"]);
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    srv.await.unwrap();
    assert_eq!(local(&res[0]), (true, "5.6.7"));

    // Offered: the parameters go with MAIL.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["8BITMIME", "SMTPUTF8"]).await;
        let mail = p.line().await;
        p.send("250 ok\r\n").await;
        p.line().await;
        p.send("250 ok\r\n").await;
        p.expect("DATA").await;
        p.send("354 go\r\n").await;
        p.data().await;
        p.send("250 ok\r\n").await;
        p.quit().await;
        mail
    })
    .await;
    let mut e = env(&["j\u{f6}rg@x.test"]);
    e.body_8bit = true;
    e.smtputf8 = true;
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    assert_eq!(
        srv.await.unwrap(),
        "MAIL FROM:<sender@example.org> BODY=8BITMIME SMTPUTF8"
    );
    assert!(res[0].outcome.is_delivered());
}

#[tokio::test]
async fn message_larger_than_advertised_size_is_permanent() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["SIZE 10"]).await;
        p.quit().await;
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(local(&res[0]), (true, "5.3.4"));
}

#[tokio::test]
async fn multiline_greeting_and_ehlo_in_pieces() {
    let (hop, srv) = server(false, |mut p| async move {
        p.send("220-fake.test ESMTP\r\n220-no UCE\r\n").await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        p.send("220 ready\r\n").await;
        p.expect("EHLO client.test").await;
        // Split inside lines, CRLF split too.
        for piece in [
            "250-fake.test Hello\r",
            "\n250-PIPE",
            "LINING\r\n250-DSN\r\n250-SI",
            "ZE 5000\r\n250 8BITMIME\r\n",
        ] {
            p.send(piece).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mail = p.line().await;
        p.line().await;
        p.expect("DATA").await;
        p.send("250 ok\r\n250-2.1.5 fine\r\n250-2.1.5 really\r\n250 2.1.5 ok\r\n354 go\r\n")
            .await;
        p.data().await;
        p.send("250-2.0.0 ok\r\n250 2.0.0 queued\r\n").await;
        p.quit().await;
        mail
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap();
    assert_eq!(
        srv.await.unwrap(),
        format!("MAIL FROM:<sender@example.org> SIZE={}", MSG.len())
    );
    assert_eq!(delivered(&res[0]), (250, "2.0.0 ok|2.0.0 queued".into()));
    assert!(res[0].dsn_passed);
}

#[tokio::test]
async fn garbage_is_an_error_not_a_panic() {
    // Not SMTP at all.
    let (hop, srv) = server(false, |mut p| async move {
        p.send("HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let _ = p.quiet(500).await;
    })
    .await;
    let err = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap_err();
    srv.await.unwrap();
    assert!(
        matches!(
            err,
            TransportError::Protocol {
                stage: Stage::Greeting,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.status(), "4.5.0");

    // Garbage in the middle of the session.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&[]).await;
        p.line().await;
        p.s.write_all(b"2\x00\xff\xfe junk\r\n").await.unwrap();
        let _ = p.quiet(500).await;
    })
    .await;
    let err = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap_err();
    srv.await.unwrap();
    assert!(
        matches!(
            err,
            TransportError::Protocol {
                stage: Stage::MailFrom,
                ..
            }
        ),
        "{err}"
    );

    // An endless reply.
    let (hop, srv) = server(false, |mut p| async move {
        let line = format!("220-{}\r\n", "x".repeat(1000));
        let flood = line.repeat(MAX_REPLY_LEN / line.len() + 2);
        let _ = p.s.write_all(flood.as_bytes()).await;
        let _ = p.quiet(500).await;
    })
    .await;
    let err = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap_err();
    srv.await.unwrap();
    assert!(err.to_string().contains("longer than"), "{err}");

    // Random bytes with no line end.
    let (hop, srv) = server(false, |mut p| async move {
        let junk: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8 | 1)
            .filter(|&b| b != b'\n')
            .collect();
        let _ = p.s.write_all(&junk).await;
        let _ = p.quiet(500).await;
    })
    .await;
    let err = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap_err();
    srv.await.unwrap();
    assert!(matches!(err, TransportError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn dsn_parameters_only_when_advertised() {
    let mut e = env(&["a@x.test", "b@x.test"]);
    e.envid = Some("QQ314159".into());
    e.ret = Some(Ret::Headers);
    e.rcpts[0].notify = Some("SUCCESS,FAILURE".into());
    e.rcpts[0].orcpt = Some("rfc822;a@x.test".into());
    e.rcpts[1].notify = Some("NEVER".into());

    for dsn in [true, false] {
        let (hop, srv) = server(false, move |mut p| async move {
            let exts: &[&str] = if dsn {
                &["PIPELINING", "DSN"]
            } else {
                &["PIPELINING"]
            };
            p.ehlo(exts).await;
            let lines = [p.line().await, p.line().await, p.line().await];
            p.expect("DATA").await;
            p.send("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n").await;
            p.data().await;
            p.send("250 ok\r\n").await;
            p.quit().await;
            lines
        })
        .await;
        let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
        let lines = srv.await.unwrap();
        if dsn {
            assert_eq!(
                lines,
                [
                    "MAIL FROM:<sender@example.org> RET=HDRS ENVID=QQ314159",
                    "RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@x.test",
                    "RCPT TO:<b@x.test> NOTIFY=NEVER",
                ]
            );
        } else {
            assert_eq!(
                lines,
                [
                    "MAIL FROM:<sender@example.org>",
                    "RCPT TO:<a@x.test>",
                    "RCPT TO:<b@x.test>",
                ]
            );
        }
        assert!(res
            .iter()
            .all(|r| r.dsn_passed == dsn && r.outcome.is_delivered()));
    }
}

#[tokio::test]
async fn negative_greeting_and_421() {
    for (greeting, permanent) in [("554 5.7.1 go away\r\n", true), ("450 busy\r\n", false)] {
        let (hop, srv) = server(false, move |mut p| async move {
            p.send(greeting).await;
            p.quit().await;
        })
        .await;
        let res = deliver(&hop, &opts(), &env(&["a@x.test", "b@x.test"]), MSG)
            .await
            .unwrap();
        srv.await.unwrap();
        for r in &res {
            assert_eq!(remote(r).0, permanent);
            assert_eq!(remote(r).1, Stage::Greeting);
        }
    }

    // 421 at RCPT: the server is closing; every recipient gets it, no QUIT.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        for _ in 0..4 {
            p.line().await;
        }
        p.send("250 ok\r\n550 5.1.1 no\r\n421 4.3.2 shutting down\r\n")
            .await;
    })
    .await;
    let res = deliver(&hop, &opts(), &env(&["a@x.test", "b@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(remote(&res[0]), (true, Stage::RcptTo, 550));
    assert_eq!(remote(&res[1]), (false, Stage::RcptTo, 421));
}

#[tokio::test]
async fn connect_refused_and_unsendable_addresses() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hop: NextHop = format!("smtp://127.0.0.1:{port}").parse().unwrap();
    let err = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    assert_eq!((err.stage(), err.status()), (Stage::Connect, "4.4.1"));

    // Nothing to send: no connection at all (the port is closed).
    assert!(deliver(&hop, &opts(), &env(&[]), MSG)
        .await
        .unwrap()
        .is_empty());
    let mut e = env(&["a@x.test"]);
    e.mail_from = "evil@x.test>\r\nRSET".into();
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    assert_eq!(local(&res[0]), (true, "5.1.7"));

    // A bad recipient is never sent; the good one goes.
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        let lines = [p.line().await, p.line().await, p.line().await];
        p.send("250 ok\r\n250 ok\r\n354 go\r\n").await;
        p.data().await;
        p.send("250 ok\r\n").await;
        p.quit().await;
        lines
    })
    .await;
    let e = env(&["a@x.test>\r\nDATA", "b@x.test"]);
    let res = deliver(&hop, &opts(), &e, MSG).await.unwrap();
    let lines = srv.await.unwrap();
    assert_eq!(lines[1], "RCPT TO:<b@x.test>");
    assert_eq!(lines[2], "DATA");
    assert_eq!(local(&res[0]), (true, "5.1.3"));
    assert!(res[1].outcome.is_delivered());
}

#[tokio::test]
async fn timeout_waiting_for_a_reply() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&[]).await;
        p.line().await;
        // Never answers MAIL.
        let _ = p.quiet(2000).await;
    })
    .await;
    let mut o = opts();
    o.command_timeout = Duration::from_millis(300);
    let err = deliver(&hop, &o, &env(&["a@x.test"]), MSG)
        .await
        .unwrap_err();
    srv.await.unwrap();
    assert!(
        matches!(
            err,
            TransportError::Timeout {
                stage: Stage::MailFrom,
                ..
            }
        ),
        "{err}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn lmtp_over_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lmtp.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let srv = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut p = Peer {
            s: Box::new(s),
            buf: Vec::new(),
            reads: 0,
        };
        p.send("220 lmtp ready\r\n").await;
        p.expect("LHLO client.test").await;
        // No PIPELINING advertised: one command at a time.
        p.send("250 lmtp\r\n").await;
        p.expect("MAIL FROM:<sender@example.org>").await;
        p.send("250 ok\r\n").await;
        p.expect("RCPT TO:<a@x.test>").await;
        p.send("250 ok\r\n").await;
        p.expect("DATA").await;
        p.send("354 go\r\n").await;
        p.data().await;
        p.send("250 2.0.0 <a@x.test> saved\r\n").await;
        p.quit().await;
    });
    let hop: NextHop = format!("lmtp+unix:{}", path.display()).parse().unwrap();
    let res = deliver(&hop, &opts(), &env(&["a@x.test"]), MSG)
        .await
        .unwrap();
    srv.await.unwrap();
    assert_eq!(delivered(&res[0]).1, "2.0.0 <a@x.test> saved");
}

#[tokio::test]
async fn many_recipients_pipelined_in_groups() {
    let (hop, srv) = server(false, |mut p| async move {
        p.ehlo(&["PIPELINING"]).await;
        p.expect("MAIL FROM:<sender@example.org>").await;
        let mut n = 0;
        for (group, reply_extra) in [(100, 1), (100, 0), (50, 1)] {
            for _ in 0..group {
                p.expect(&format!("RCPT TO:<r{n}@x.test>")).await;
                n += 1;
            }
            if n == 250 {
                p.expect("DATA").await;
            } else {
                assert!(
                    p.quiet(200).await,
                    "the client waits for this group's replies"
                );
            }
            let mut replies = "250 ok\r\n".repeat(group + reply_extra);
            if n == 250 {
                replies.truncate(replies.len() - "250 ok\r\n".len());
                replies.push_str("354 go\r\n");
            }
            p.send(&replies).await;
        }
        p.data().await;
        p.send("250 ok\r\n").await;
        p.quit().await;
    })
    .await;
    let names: Vec<String> = (0..250).map(|i| format!("r{i}@x.test")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let res = deliver(&hop, &opts(), &env(&names), MSG).await.unwrap();
    srv.await.unwrap();
    assert_eq!(res.len(), 250);
    assert!(res.iter().all(|r| r.outcome.is_delivered()));
}
