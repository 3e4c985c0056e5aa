//! The SMTP session driven over an in-memory stream: what a client sends, what
//! it gets back, and what reaches the handler.

use mxguard_smtp::proto::Reply;
use mxguard_smtp::relay::{Cidr, RelayPolicy};
use mxguard_smtp::session::{Ending, Envelope, Handler, Session, SessionConfig, SessionInfo};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder {
    messages: Mutex<Vec<(String, Vec<String>, Vec<u8>)>>,
}

impl Handler for Recorder {
    async fn message(&self, _info: &SessionInfo, env: &Envelope, message: Vec<u8>) -> Reply {
        let rcpts = env.rcpts.iter().map(|r| r.address.to_string()).collect();
        self.messages
            .lock()
            .unwrap()
            .push((env.sender_string(), rcpts, message));
        Reply::new(250, Some("2.0.0"), "Ok: queued")
    }
}

fn cfg() -> SessionConfig {
    SessionConfig {
        hostname: "mx.test".into(),
        max_message_size: 10_000,
        max_recipients: 3,
        max_errors: 5,
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
        relay: RelayPolicy {
            local_domains: vec!["example.com".into()],
            relay_domains: vec!["relay.test".into()],
            trusted_networks: vec!["10.0.0.0/8".parse::<Cidr>().unwrap()],
        },
        can_relay: true,
        starttls: false,
        max_command_line: 512,
    }
}

fn info(ip: &str) -> SessionInfo {
    SessionInfo {
        peer: format!("{ip}:40000").parse().unwrap(),
        local: "127.0.0.1:25".parse().unwrap(),
        helo: None,
        esmtp: false,
        tls: false,
        tls_info: None,
        trusted: false,
    }
}

/// Runs a session over `input` (sent in one piece, then EOF); returns the whole output.
async fn talk_with(cfg: SessionConfig, ip: &str, input: &[u8]) -> (String, Arc<Recorder>, Ending) {
    let (client, server) = tokio::io::duplex(1 << 20);
    let rec = Arc::new(Recorder::default());
    let session = Session::new(
        server,
        info(ip),
        Arc::new(cfg),
        rec.clone(),
        CancellationToken::new(),
    );
    let task = tokio::spawn(async move { session.run(true).await.0 });
    let (mut r, mut w) = tokio::io::split(client);
    w.write_all(input).await.unwrap();
    let mut out = Vec::new();
    let reader = tokio::spawn(async move {
        let _ = r.read_to_end(&mut out).await;
        out
    });
    let ending = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    drop(w);
    let out = reader.await.unwrap();
    (String::from_utf8_lossy(&out).into_owned(), rec, ending)
}

async fn talk(input: &[u8]) -> (String, Arc<Recorder>) {
    let (o, r, _) = talk_with(cfg(), "192.0.2.1", input).await;
    (o, r)
}

fn codes(out: &str) -> Vec<u16> {
    out.lines()
        .filter(|l| l.len() >= 4 && &l[3..4] == " ")
        .map(|l| l[..3].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn pipelined_transaction() {
    let (out, rec) = talk(
        b"EHLO c.test\r\nMAIL FROM:<a@x.test> SIZE=30\r\nRCPT TO:<u@example.com>\r\nRCPT TO:<v@relay.test>\r\nDATA\r\nSubject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&out),
        vec![220, 250, 250, 250, 250, 354, 250, 221],
        "{out}"
    );
    for ext in [
        "PIPELINING",
        "SIZE 10000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    ] {
        assert!(
            out.contains(&format!("250-{ext}\r\n")) || out.contains(&format!("250 {ext}\r\n")),
            "{ext}: {out}"
        );
    }
    assert!(
        !out.contains("STARTTLS"),
        "not offered without a certificate"
    );
    let m = rec.messages.lock().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, "a@x.test");
    assert_eq!(m[0].1, vec!["u@example.com", "v@relay.test"]);
    assert_eq!(m[0].2, b"Subject: t\r\n\r\n.dot\r\n");
}

#[tokio::test]
async fn relay_is_denied_to_outsiders_and_allowed_to_trusted_networks() {
    let input = b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<victim@elsewhere.test>\r\nRCPT TO:<u@[127.0.0.1]>\r\nQUIT\r\n";
    let (out, _) = talk(input).await;
    assert_eq!(codes(&out), vec![220, 250, 250, 550, 550, 221], "{out}");
    assert!(out.contains("550 5.7.1"));
    let (out, _, _) = talk_with(cfg(), "10.1.2.3", input).await;
    assert_eq!(codes(&out), vec![220, 250, 250, 250, 250, 221], "{out}");
    // A local-only gateway refuses relaying even for trusted clients.
    let mut c = cfg();
    c.can_relay = false;
    let (out, _, _) = talk_with(c, "10.1.2.3", input).await;
    assert_eq!(codes(&out), vec![220, 250, 250, 550, 550, 221], "{out}");
}

#[tokio::test]
async fn bare_lf_in_data_is_refused_and_nothing_inside_is_a_command() {
    let (out, rec) = talk(
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nSubject: t\r\n\r\nx\n.\nMAIL FROM:<evil@x.test>\nRCPT TO:<v@example.com>\nDATA\n\nsmuggled\n.\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&out),
        vec![220, 250, 250, 250, 354, 550, 221],
        "{out}"
    );
    assert!(out.contains("550 5.6.0"));
    assert!(rec.messages.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bdat_chunks() {
    let (out, rec) = talk(
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<u@example.com>\r\nBDAT 14\r\nSubject: t\r\n\r\nBDAT 7 LAST\r\nbody\r\n\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&out),
        vec![220, 250, 250, 250, 250, 250, 221],
        "{out}"
    );
    let m = rec.messages.lock().unwrap();
    assert_eq!(
        m[0].2, b"Subject: t\r\n\r\nbody\r\n\n",
        "BDAT is binary: no dot or newline processing"
    );
}

#[tokio::test]
async fn bdat_without_recipients_consumes_the_chunk() {
    let (out, rec) = talk(b"EHLO c\r\nBDAT 11 LAST\r\nQUIT\r\nQUI\r\nNOOP\r\nQUIT\r\n").await;
    // The 11 bytes "QUIT\r\nQUI\r\n" are data, not commands.
    assert_eq!(codes(&out), vec![220, 250, 503, 250, 221], "{out}");
    assert!(rec.messages.lock().unwrap().is_empty());
}

#[tokio::test]
async fn order_and_limits() {
    let (out, _) = talk(b"MAIL FROM:<a@x.test>\r\nHELO c\r\nRCPT TO:<u@example.com>\r\nDATA\r\nMAIL FROM:<a@x.test> SIZE=20000\r\nQUIT\r\n").await;
    assert_eq!(
        codes(&out),
        vec![220, 503, 250, 503, 503, 555, 221],
        "{out}"
    );
    let (out, _) = talk(b"EHLO c\r\nMAIL FROM:<a@x.test> SIZE=20000\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nVRFY root\r\nQUIT\r\n").await;
    assert_eq!(
        codes(&out),
        vec![220, 250, 552, 250, 250, 250, 250, 452, 502, 221],
        "{out}"
    );
}

#[tokio::test]
async fn oversized_message_is_refused_after_the_data() {
    let mut input =
        b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n".to_vec();
    for _ in 0..300 {
        input.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
        );
    }
    input.extend_from_slice(b".\r\nNOOP\r\nQUIT\r\n");
    let (out, rec) = talk(&input).await;
    assert_eq!(
        codes(&out),
        vec![220, 250, 250, 250, 354, 552, 250, 221],
        "{out}"
    );
    assert!(rec.messages.lock().unwrap().is_empty());
}

#[tokio::test]
async fn too_many_errors_end_the_session() {
    let (out, _, ending) = talk_with(
        cfg(),
        "192.0.2.1",
        b"EHLO c\r\nFOO\r\nBAR\r\nBAZ\r\nQUX\r\nQUUX\r\nNOOP\r\n",
    )
    .await;
    assert_eq!(
        codes(&out),
        vec![220, 250, 500, 500, 500, 500, 500, 421],
        "{out}"
    );
    assert_eq!(ending, Ending::Closed);
}

#[tokio::test]
async fn long_lines_are_skipped() {
    let mut input = b"EHLO c\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'A', 10_000));
    input.extend_from_slice(b"\r\nNOOP\r\nQUIT\r\n");
    let (out, _) = talk(&input).await;
    assert_eq!(codes(&out), vec![220, 250, 500, 250, 221], "{out}");
}

#[tokio::test]
async fn starttls_discards_pipelined_plaintext() {
    let mut c = cfg();
    c.starttls = true;
    let (out, rec, ending) = talk_with(
        c,
        "192.0.2.1",
        b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@x.test>\r\n",
    )
    .await;
    assert!(
        out.contains("250-STARTTLS") || out.contains("250 STARTTLS"),
        "{out}"
    );
    assert_eq!(codes(&out), vec![220, 250, 220], "{out}");
    assert_eq!(ending, Ending::StartTls);
    assert!(rec.messages.lock().unwrap().is_empty());
}

#[tokio::test]
async fn input_in_tiny_pieces() {
    let input = b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nSubject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n";
    let (client, server) = tokio::io::duplex(64);
    let rec = Arc::new(Recorder::default());
    let session = Session::new(
        server,
        info("192.0.2.1"),
        Arc::new(cfg()),
        rec.clone(),
        CancellationToken::new(),
    );
    let task = tokio::spawn(async move { session.run(true).await.0 });
    let (mut r, mut w) = tokio::io::split(client);
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = r.read_to_end(&mut out).await;
        out
    });
    for b in input.iter() {
        w.write_all(&[*b]).await.unwrap();
        tokio::task::yield_now().await;
    }
    task.await.unwrap();
    let out = String::from_utf8(reader.await.unwrap()).unwrap();
    assert_eq!(
        codes(&out),
        vec![220, 250, 250, 250, 354, 250, 221],
        "{out}"
    );
    assert_eq!(
        rec.messages.lock().unwrap()[0].2,
        b"Subject: t\r\n\r\nhello\r\n"
    );
}

#[tokio::test]
async fn dsn_parameters_may_lengthen_mail_and_rcpt_lines() {
    let orcpt = format!("rfc822;{}@example.com", "x".repeat(520));
    let input = format!(
        "EHLO c\r\nMAIL FROM:<a@x.test> RET=HDRS ENVID=abc\r\nRCPT TO:<u@example.com> NOTIFY=FAILURE ORCPT={orcpt}\r\nNOOP {}\r\nQUIT\r\n",
        "y".repeat(600)
    );
    let (out, _) = talk(input.as_bytes()).await;
    assert_eq!(codes(&out), vec![220, 250, 250, 250, 500, 221], "{out}");
}
