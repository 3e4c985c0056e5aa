//! End-to-end tests of `mxguard serve` with real clients (swaks, a raw socket)
//! and real next hops (Postfix's smtp-sink, a second mxguard as hub).

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::{dns, need, swaks, Gateway, Raw, EICAR};

const WAIT: Duration = Duration::from_secs(20);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn clean_mail_is_delivered_into_maildir_with_trace_and_stamp() {
    let g = Gateway::start("", "");
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "user@example.com",
            "--from",
            "s@sender.test",
            "--body",
            "hello there",
        ],
    );
    assert!(ok, "{t}");
    assert!(t.contains("250 2.0.0 Ok: queued as"), "{t}");
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    let s = text(&m[0]);
    assert!(s.starts_with("X-MXGuard-Stamp: v=1; engine="), "{s}");
    assert!(
        s.contains("result=clean") && s.contains("node=test1"),
        "{s}"
    );
    assert!(
        s.contains("Received: from ") && s.contains("by mx.test (mxguard) with ESMTP id "),
        "{s}"
    );
    assert!(s.contains("hello there"));
    assert!(g.wait_queue_empty(WAIT));
}

#[test]
fn eicar_is_rejected_at_end_of_data_by_default() {
    let g = Gateway::start("", "");
    let (ok, t) = swaks(g.port, &["--to", "user@example.com", "--body", EICAR]);
    assert!(!ok, "{t}");
    assert!(
        t.contains("554 5.7.1 Message refused: virus found (Win.Test.EICAR"),
        "{t}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(g.maildir("user", 0, Duration::ZERO).is_empty());
    assert!(g.quarantine_records().is_empty(), "reject keeps nothing");
    assert!(
        g.log_text().contains("action=\"reject\""),
        "{}",
        g.log_text()
    );
}

#[test]
fn eicar_attachment_is_quarantined_when_configured() {
    let g = Gateway::start("", "[actions]\ninfected = \"quarantine\"\n");
    let dir = tempfile::tempdir().unwrap();
    let att = dir.path().join("invoice.com");
    std::fs::write(&att, EICAR).unwrap();
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "user@example.com",
            "--attach",
            att.to_str().unwrap(),
        ],
    );
    assert!(ok, "{t}");
    assert!(t.contains("250 2.0.0 Ok: queued as"), "{t}");
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    assert_eq!(q[0]["reason"], "infected");
    assert_eq!(q[0]["rcpts"][0], "user@example.com");
    let f = &q[0]["findings"][0];
    assert!(
        f["name"].as_str().unwrap().starts_with("Win.Test.EICAR"),
        "{f}"
    );
    assert!(
        f["location"].as_str().unwrap().starts_with("part[2]"),
        "{f}"
    );
    let id = q[0]["id"].as_str().unwrap().to_string();
    let o = g.mxguard(&["quarantine", "export", &id]);
    assert!(o.status.success());
    let eml = o.stdout;
    assert!(text(&eml).contains("Received: from"));
    assert!(text(&eml).contains("invoice.com"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        g.maildir("user", 0, Duration::ZERO).is_empty(),
        "quarantined mail is not delivered"
    );
    // The event log has it too, with the same queue id.
    let ev = g.wait_events(1, WAIT);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["queue_id"], id.as_str());
    assert_eq!(ev[0]["action"], "quarantine");
    assert_eq!(ev[0]["verdict"], "infected");

    // Released by the administrator: delivered, with the release token, and
    // not quarantined again when the mailbox tier looks at it.
    let o = g.mxguard(&["quarantine", "release", &id, "--by", "admin"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = text(&o.stdout).to_string();
    assert!(
        out.contains("released") && out.contains("user@example.com"),
        "{out}"
    );
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    assert!(
        text(&m[0]).contains("X-MXGuard-Released: "),
        "{}",
        text(&m[0])
    );
    assert!(text(&m[0]).contains("invoice.com"));
    assert!(
        g.log_text()
            .contains("mailbox delivery: released message, delivered despite"),
        "the mailbox tier rescanned it and honoured the release: {}",
        g.log_text()
    );
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "not quarantined again: {q:?}");
    assert_eq!(q[0]["releases"][0]["by"], "admin");
    assert!(q[0]["released_at"].is_i64());
}

#[test]
fn tag_action_delivers_with_status_and_subject() {
    let g = Gateway::start(
        "",
        "[actions]\ninfected = \"tag\"\ntag_subject = \"[VIRUS]\"\n",
    );
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "user@example.com",
            "--header",
            "Subject: invoice",
            "--body",
            EICAR,
        ],
    );
    assert!(ok, "{t}");
    let m = g.maildir("user", 1, WAIT);
    let s = text(&m[0]);
    assert!(
        s.contains("X-MXGuard-Status: infected; Win.Test.EICAR"),
        "{s}"
    );
    assert!(s.contains("Subject: [VIRUS] invoice"), "{s}");
    assert!(
        s.contains("result=suspicious"),
        "a tagged message is not stamped clean: {s}"
    );
}

#[test]
fn open_relay_is_refused_and_trusted_networks_may_relay() {
    let g = Gateway::start("", "");
    let (ok, t) = swaks(
        g.port,
        &["--to", "victim@elsewhere.test", "--quit-after", "RCPT"],
    );
    assert!(!ok, "{t}");
    assert!(
        t.contains("550 5.7.1 <victim@elsewhere.test>: Relaying denied"),
        "{t}"
    );
    // Address literals are not a way around it.
    let (_, t) = swaks(
        g.port,
        &["--to", "root@[127.0.0.1]", "--quit-after", "RCPT"],
    );
    assert!(t.contains("550 5.7.1"), "{t}");
    drop(g);
    // A trusted client may relay anywhere when there is a next hop.
    let sink = support::free_port();
    let g = Gateway::start(
        &format!("trusted_networks = [\"127.0.0.0/8\"]\nnext_hop = \"smtp://127.0.0.1:{sink}\""),
        "",
    );
    let (ok, t) = swaks(
        g.port,
        &["--to", "someone@elsewhere.test", "--quit-after", "RCPT"],
    );
    assert!(ok, "{t}");
}

#[test]
fn pipelining_starttls_and_bdat() {
    let g = Gateway::start("", "");
    let (ok, t) = swaks(g.port, &["--to", "user@example.com", "--pipeline"]);
    assert!(ok && t.contains("250 2.0.0 Ok: queued"), "{t}");
    let (ok, t) = swaks(
        g.port,
        &["--to", "user@example.com", "-tls", "--body", "over tls"],
    );
    assert!(ok, "{t}");
    assert!(
        t.contains("220 2.0.0 Ready to start TLS") && t.contains("TLS started"),
        "{t}"
    );
    // BDAT in two chunks, pipelined, from a raw client.
    let mut c = Raw::connect(g.port);
    let ehlo = c.cmd("EHLO raw.test");
    assert!(ehlo.contains("CHUNKING"), "{ehlo}");
    let chunk1 = b"Subject: bdat\r\n\r\nfirst ";
    let chunk2 = b"second\r\n";
    let mut p = format!(
        "MAIL FROM:<a@raw.test>\r\nRCPT TO:<user@example.com>\r\nBDAT {}\r\n",
        chunk1.len()
    )
    .into_bytes();
    p.extend_from_slice(chunk1);
    p.extend_from_slice(format!("BDAT {} LAST\r\n", chunk2.len()).as_bytes());
    p.extend_from_slice(chunk2);
    c.send(&p);
    assert!(c.reply().starts_with("250 2.1.0"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert!(c.reply().starts_with("250 2.0.0"));
    let last = c.reply();
    assert!(last.starts_with("250 2.0.0 Ok: queued"), "{last}");
    let m = g.maildir("user", 3, WAIT);
    assert_eq!(m.len(), 3, "{}", g.log_text());
    let all: String = m.iter().map(|b| text(b)).collect();
    assert!(all.contains("first second"), "{all}");
    assert!(
        all.contains("with ESMTPS"),
        "the TLS message says so in Received: {all}"
    );
}

#[test]
fn dnsbl_listing_refuses_at_connect_and_error_codes_do_not() {
    let mut a = HashMap::new();
    a.insert(
        "1.0.0.127.listed.test".to_string(),
        vec!["127.0.0.2".parse().unwrap()],
    );
    a.insert(
        "1.0.0.127.broken.test".to_string(),
        vec!["127.255.255.254".parse().unwrap()],
    );
    let mut txt = HashMap::new();
    txt.insert(
        "1.0.0.127.listed.test".to_string(),
        "Listed for testing".to_string(),
    );
    let d = dns::start(a, txt);
    // Error answers (127.255.255.x) and unknown zones are "not listed".
    let g = Gateway::start(
        &format!(
            "dnsbl_zones = [\"broken.test\", \"unknown.test\"]\ndnsbl_resolver = \"127.0.0.1:{}\"",
            d.port
        ),
        "",
    );
    let (ok, t) = swaks(g.port, &["--to", "user@example.com"]);
    assert!(ok, "{t}");
    drop(g);
    let g = Gateway::start(
        &format!(
            "dnsbl_zones = [\"broken.test\", \"listed.test\"]\ndnsbl_resolver = \"127.0.0.1:{}\"",
            d.port
        ),
        "",
    );
    let (ok, t) = swaks(g.port, &["--to", "user@example.com"]);
    assert!(!ok, "{t}");
    assert!(t.contains("554 5.7.1 Service unavailable; client [127.0.0.1] blocked using listed.test: Listed for testing"), "{t}");
    assert!(g.log_text().contains("listed in DNSBL"), "{}", g.log_text());
    // The allow list skips the DNSBL.
    drop(g);
    let g = Gateway::start(
        &format!("dnsbl_zones = [\"listed.test\"]\ndnsbl_resolver = \"127.0.0.1:{}\"\nip_allow = [\"127.0.0.1/32\"]", d.port),
        "",
    );
    let (ok, t) = swaks(g.port, &["--to", "user@example.com"]);
    assert!(ok, "{t}");
    drop(g);
    // The deny list refuses before anything else.
    let g = Gateway::start("ip_deny = [\"127.0.0.0/8\"]", "");
    let (ok, t) = swaks(g.port, &["--to", "user@example.com"]);
    assert!(
        !ok && t.contains("554 5.7.1 Client address [127.0.0.1] is denied"),
        "{t}"
    );
}

/// Edge → hub → Maildir: the hub honours the edge's stamp (same key, trusted
/// network) and skips the scan; a stamp forged by an outsider is removed at the edge.
#[test]
fn hub_skips_the_scan_on_a_valid_stamp_and_edge_strips_forged_ones() {
    let keydir = tempfile::tempdir().unwrap();
    let key = keydir.path().join("stamp.key");
    let hub = Gateway::start_with_env(
        "role = \"hub\"\ntrusted_networks = [\"127.0.0.0/8\"]",
        &format!("[stamp]\nkey_file = \"{}\"\n", key.display()),
        &[("MXGUARD_LOG", "info,mxguard_smtp=debug")],
    );
    let edge = Gateway::start(
        &format!("relay_domains = [\"example.com\"]\nlocal_domains = []\nnext_hop = \"smtp://127.0.0.1:{}\"", hub.port),
        &format!("[stamp]\nkey_file = \"{}\"\n", key.display()),
    );
    let forged =
        "X-MXGuard-Stamp: v=1; engine=0.1.0; sigs=x; result=clean; node=evil; t=1; mac=AAAA";
    let (ok, t) = swaks(
        edge.port,
        &[
            "--to",
            "user@example.com",
            "--header",
            forged,
            "--body",
            "via edge",
        ],
    );
    assert!(ok, "{t}");
    let m = hub.maildir("user", 1, WAIT);
    assert_eq!(
        m.len(),
        1,
        "edge: {}\nhub: {}",
        edge.log_text(),
        hub.log_text()
    );
    let s = text(&m[0]);
    assert_eq!(
        s.matches("X-MXGuard-Stamp:").count(),
        1,
        "only the edge's stamp: {s}"
    );
    assert!(s.contains("node=test1") && !s.contains("node=evil"), "{s}");
    assert!(
        edge.log_text().contains("removed antivirus stamp"),
        "{}",
        edge.log_text()
    );
    assert!(
        hub.log_text().contains("antivirus scan skipped"),
        "{}",
        hub.log_text()
    );
    // A stamp is only worth something with the key: without it the hub scans.
    let (ok, t) = swaks(hub.port, &["--to", "user@example.com", "--header", forged]);
    assert!(ok, "{t}");
    assert!(hub.maildir("user", 2, WAIT).len() == 2);
    assert!(
        hub.log_text().contains("stamp not used"),
        "{}",
        hub.log_text()
    );
}

/// The next hop refuses a recipient permanently: a DSN goes back to the sender.
#[test]
fn permanent_failure_bounces_to_the_sender() {
    let sink_bin = need("smtp-sink", "postfix");
    let port = support::free_port();
    let mut sink = std::process::Command::new(sink_bin)
        .args([
            "-u",
            "root",
            "-f",
            "RCPT",
            &format!("127.0.0.1:{port}"),
            "10",
        ])
        .spawn()
        .unwrap();
    let g = Gateway::start(&format!("relay_domains = [\"example.com\"]\nlocal_domains = [\"sender.test\"]\nnext_hop = \"smtp://127.0.0.1:{port}\""), "");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, t) = swaks(
        g.port,
        &["--to", "user@example.com", "--from", "me@sender.test"],
    );
    assert!(ok, "{t}");
    let t0 = std::time::Instant::now();
    while !g.log_text().contains("bounce queued") && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = g.log_text();
    let _ = sink.kill();
    assert!(log.contains("status=\"failed\""), "{log}");
    assert!(log.contains("bounce queued"), "{log}");
}

#[test]
fn queue_holds_mail_while_the_next_hop_is_down_and_flush_delivers_it() {
    let sink_bin = need("smtp-sink", "postfix");
    let port = support::free_port();
    let g = Gateway::start(
        &format!("relay_domains = [\"example.com\"]\nlocal_domains = []\nnext_hop = \"smtp://127.0.0.1:{port}\""),
        "[queue]\nretry_initial_secs = 3600\nretry_max_secs = 3600\n",
    );
    let (ok, t) = swaks(g.port, &["--to", "user@example.com", "--from", "a@b.test"]);
    assert!(ok, "{t}");
    std::thread::sleep(Duration::from_millis(500));
    let out = g.mxguard(&["queue", "list"]);
    let list = text(&out.stdout);
    assert!(list.contains("user@example.com [deferred"), "{list}");
    assert!(list.contains("1 message(s)"), "{list}");
    let out = g.mxguard(&["queue", "list", "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let show = g.mxguard(&["queue", "show", &id]);
    assert!(
        text(&show.stdout).contains("Received: from"),
        "{}",
        text(&show.stdout)
    );
    // The next hop comes back; flush retries now instead of in an hour.
    let dump = tempfile::tempdir().unwrap();
    let mut sink = std::process::Command::new(sink_bin)
        .args([
            "-u",
            "root",
            "-d",
            &format!("{}/%M.", dump.path().display()),
            &format!("127.0.0.1:{port}"),
            "10",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = g.mxguard(&["queue", "flush"]);
    assert!(out.status.success());
    let ok = g.wait_queue_empty(WAIT);
    let _ = sink.kill();
    assert!(ok, "{}", g.log_text());
    let dumped: usize = std::fs::read_dir(dump.path()).unwrap().count();
    assert_eq!(dumped, 1);
}

/// SIGTERM in the middle of DATA: the transaction finishes with 250, then the process exits 0.
#[test]
fn sigterm_lets_the_session_in_progress_finish() {
    let mut g = Gateway::start("", "");
    let mut c = Raw::connect(g.port);
    c.cmd("EHLO raw.test");
    assert!(c.cmd("MAIL FROM:<a@raw.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<user@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: in flight\r\n\r\nfirst half\r\n");
    support::unsafe_kill(g.child.id(), "TERM");
    std::thread::sleep(Duration::from_millis(500));
    c.send(b"second half\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued"), "{r}");
    let q = c.cmd("QUIT");
    assert!(q.starts_with("221") || q.starts_with("421"), "{q}");
    let st = g.terminate();
    assert!(st.success(), "{st}: {}", g.log_text());
    let m = g.maildir("user", 1, Duration::ZERO);
    assert_eq!(m.len(), 1, "delivered before exit: {}", g.log_text());
}

#[test]
fn config_check_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "[smtp]\nlisten = [\"nowhere\"]\nnext_hop = \"ftp://x\"\ntrusted_networks = [\"1.2.3.4/99\"]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["config", "check"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = text(&out.stderr);
    for key in ["smtp.listen", "smtp.next_hop", "smtp.trusted_networks"] {
        assert!(e.contains(key), "{key}: {e}");
    }
    std::fs::write(&f, "[smtp]\nlisten = [\"127.0.0.1:25\"]\nunknown_key = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["config", "check"])
        .arg(&f)
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert!(
        !out.status.success() && e.contains("unknown_key") && e.contains("line 3"),
        "{e}"
    );
}

#[test]
fn clean_action_replaces_the_infected_part_with_a_notice() {
    let g = Gateway::start("", "[actions]\ninfected = \"clean\"\n");
    let dir = tempfile::tempdir().unwrap();
    let att = dir.path().join("invoice.com");
    std::fs::write(&att, EICAR).unwrap();
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "user@example.com",
            "--body",
            "see attachment",
            "--attach",
            att.to_str().unwrap(),
        ],
    );
    assert!(ok, "{t}");
    // The same with the attachment not encoded at all (the raw message matches first).
    let raw = format!(
        "From: a@b.test\r\nTo: user@example.com\r\nSubject: raw\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nkeep this text\r\n--XX\r\nContent-Type: application/octet-stream; name=\"e.com\"\r\n\r\n{EICAR}\r\n--XX--\r\n"
    );
    let df = dir.path().join("raw.eml");
    std::fs::write(&df, raw).unwrap();
    let (ok, t) = swaks(
        g.port,
        &["--to", "user@example.com", "--data", df.to_str().unwrap()],
    );
    assert!(ok, "{t}");
    let m = g.maildir("user", 2, WAIT);
    assert_eq!(m.len(), 2, "{}", g.log_text());
    for b in &m {
        let s = text(b);
        assert!(!s.contains("EICAR-STANDARD") && !s.contains("WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo"), "{s}");
        assert!(
            s.contains("was removed by the mail gateway because it\r\ncontained Win.Test.EICAR"),
            "{s}"
        );
        assert!(
            s.contains("X-MXGuard-Status: cleaned; removed: Win.Test.EICAR"),
            "{s}"
        );
        assert!(s.contains("result=cleaned"), "{s}");
        assert!(
            s.contains("see attachment") || s.contains("keep this text"),
            "the clean part stays: {s}"
        );
    }
    assert!(
        text(&m.concat()).contains("The attachment invoice.com was removed")
            || text(&m.concat()).contains("The attachment e.com was removed")
    );
}

/// The mailbox tier: a message that waited in the queue while the signatures
/// changed carries a stale stamp, so it is scanned again before it goes into
/// the mailbox, and quarantined if the new signatures find something.
#[test]
fn maildir_delivery_rescans_when_the_signatures_changed_while_queued() {
    let mut g = Gateway::start("", "[queue]\nretry_initial_secs = 1\nretry_max_secs = 1\n");
    // The mailbox cannot be written (a file where its directory should be): delivery waits.
    std::fs::write(g.data().join("maildir").join("user"), b"in the way").unwrap();
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "user@example.com",
            "--body",
            "contains mxguardtesttoken here",
        ],
    );
    assert!(ok, "{t}");
    let (ok, t) = swaks(g.port, &["--to", "user@example.com", "--body", "harmless"]);
    assert!(ok, "{t}");
    let t0 = std::time::Instant::now();
    while g.log_text().matches("status=\"deferred\"").count() < 2 && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(g.terminate().success());
    // New signatures arrive; the mailbox becomes writable again.
    std::fs::remove_file(g.data().join("maildir").join("user")).unwrap();
    let sig = g.dir.path().join("token.ndb");
    std::fs::write(
        &sig,
        "Test.MxguardToken:0:*:6d78677561726474657374746f6b656e\n",
    )
    .unwrap();
    let cfg = std::fs::read_to_string(&g.config).unwrap();
    std::fs::write(
        &g.config,
        format!("{cfg}\n[engine]\nsignatures = [\"{}\"]\n", sig.display()),
    )
    .unwrap();
    g.child = support::spawn(&g.config, &g.log, &[]);
    support::wait_port(g.port, &mut g.child, &g.log);
    assert!(g.wait_queue_empty(WAIT), "{}", g.log_text());
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "only the harmless one: {}", g.log_text());
    assert!(text(&m[0]).contains("harmless"));
    assert_eq!(
        text(&m[0]).matches("X-MXGuard-Stamp:").count(),
        1,
        "re-stamped with the new version"
    );
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    assert_eq!(q[0]["findings"][0]["name"], "Test.MxguardToken");
    let log = g.log_text();
    assert!(
        log.contains("scanning again") && log.contains("quarantined instead of delivered"),
        "{log}"
    );
}

#[test]
fn connection_limits_per_client_address() {
    let g = Gateway::start("max_connections_per_ip = 2", "");
    // A slot is freed when the server has seen the close of the previous
    // connection (the start-up probe, a, b): retry until it has.
    let connect_when_free = |port: u16| {
        let t = std::time::Instant::now();
        loop {
            let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            use std::io::BufRead;
            let _ = r.read_line(&mut line);
            if line.starts_with("220") {
                return Raw { r, w: s };
            }
            assert!(t.elapsed() < WAIT, "no free slot: {line}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let a = connect_when_free(g.port);
    let b = connect_when_free(g.port);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = String::new();
    use std::io::Read;
    let _ = c.read_to_string(&mut s);
    assert!(
        s.starts_with("421 4.7.0 Too many connections from your address"),
        "{s}"
    );
    drop((a, b));
    let mut d = connect_when_free(g.port);
    assert!(d.cmd("QUIT").starts_with("221"), "a slot is free again");
}

#[test]
fn starttls_with_a_configured_certificate() {
    // The first gateway makes a self-signed pair; the second is configured with it.
    let a = Gateway::start("", "");
    let cert = a.data().join("tls/cert.pem");
    let key = a.data().join("tls/key.pem");
    assert!(cert.exists() && key.exists());
    let b = Gateway::start(
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            cert.display(),
            key.display()
        ),
        "",
    );
    let (ok, t) = swaks(b.port, &["--to", "user@example.com", "-tls"]);
    assert!(ok && t.contains("TLS started"), "{t}");
    assert!(
        !b.data().join("tls").exists(),
        "no certificate generated when one is configured"
    );
}

/// `replace`, `warn` and `tempfail` for infected mail.
#[test]
fn replace_warn_and_tempfail_actions() {
    let dir = tempfile::tempdir().unwrap();
    let att = dir.path().join("invoice.com");
    std::fs::write(&att, EICAR).unwrap();
    let send = |port: u16| {
        swaks(
            port,
            &[
                "--to",
                "user@example.com",
                "--from",
                "x@sender.test",
                "--header",
                "Subject: invoice 7",
                "--attach",
                att.to_str().unwrap(),
            ],
        )
    };

    // replace: the original in quarantine, a notice delivered in its place.
    let g = Gateway::start("", "[actions]\ninfected = \"replace\"\n");
    let (ok, t) = send(g.port);
    assert!(ok, "{t}");
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    let s = text(&m[0]);
    assert!(s.contains("Subject: invoice 7"), "{s}");
    assert!(
        s.contains("X-MXGuard-Status: replaced; infected; Win.Test.EICAR"),
        "{s}"
    );
    assert!(
        s.replace("\r\n", " ")
            .contains("kept it in quarantine and delivered this notice instead"),
        "{s}"
    );
    assert!(
        !s.contains("EICAR-STANDARD") && !s.contains("invoice.com"),
        "{s}"
    );
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["action"], "replace");
    drop(g);

    // warn: delivered as it was, below a banner.
    let g = Gateway::start("", "[actions]\ninfected = \"warn\"\n");
    let (ok, t) = send(g.port);
    assert!(ok, "{t}");
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    let s = text(&m[0]);
    assert!(
        s.contains("Content-Type: multipart/mixed; boundary=\"mxguard-"),
        "{s}"
    );
    assert!(
        s.contains("WARNING: the mail gateway found Win.Test.EICAR"),
        "{s}"
    );
    assert!(
        s.contains("invoice.com"),
        "the original is still there: {s}"
    );
    assert!(
        s.contains("X-MXGuard-Status: infected; Win.Test.EICAR"),
        "{s}"
    );
    let banner_at = s.find("WARNING: the mail gateway").unwrap();
    let original_at = s.find("This is a test mailing").unwrap();
    assert!(banner_at < original_at, "the banner comes first");
    drop(g);

    // tempfail: 451, nothing kept; the sender retries.
    let g = Gateway::start("", "[actions]\ninfected = \"tempfail\"\n");
    let (ok, t) = send(g.port);
    assert!(!ok, "{t}");
    assert!(t.contains("451 4.7.1 Message deferred by policy"), "{t}");
    assert!(g.quarantine_records().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert!(g.maildir("user", 0, Duration::ZERO).is_empty());
}

/// `redirect`, `bcc` and a configured reject text.
#[test]
fn redirect_bcc_and_reject_text() {
    let send = |port: u16| {
        swaks(
            port,
            &[
                "--to",
                "user@example.com",
                "--from",
                "x@sender.test",
                "--body",
                EICAR,
            ],
        )
    };
    let g = Gateway::start(
        "",
        "[actions]\ninfected = \"redirect\"\nredirect_to = \"security@example.com\"\n",
    );
    let (ok, t) = send(g.port);
    assert!(ok, "{t}");
    let m = g.maildir("security", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    assert!(text(&m[0]).contains("X-MXGuard-Status: infected; Win.Test.EICAR"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        g.maildir("user", 0, Duration::ZERO).is_empty(),
        "not to the recipient"
    );
    drop(g);

    let g = Gateway::start(
        "",
        "[actions]\ninfected = \"bcc\"\nbcc_to = \"audit@example.com\"\n",
    );
    let (ok, t) = send(g.port);
    assert!(ok, "{t}");
    assert_eq!(g.maildir("user", 1, WAIT).len(), 1, "{}", g.log_text());
    assert_eq!(g.maildir("audit", 1, WAIT).len(), 1, "{}", g.log_text());
    drop(g);

    let g = Gateway::start(
        "",
        "[actions]\nreject_text = \"Not accepted here: {threats} ({class}, ref {id})\"\n",
    );
    let (ok, t) = send(g.port);
    assert!(!ok);
    assert!(
        t.contains("554 5.7.1 Not accepted here: Win.Test.EICAR") && t.contains("(infected, ref "),
        "{t}"
    );
    drop(g);

    // A redirect needs somewhere to go.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[actions]\nsuspicious = \"redirect\"\n").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("actions.redirect_to"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The `sigs=` field of the topmost stamp.
fn stamp_sigs(msg: &str) -> String {
    let line = msg
        .lines()
        .find(|l| l.starts_with("X-MXGuard-Stamp:"))
        .unwrap_or_else(|| panic!("no stamp: {msg}"));
    line.split(';')
        .map(str::trim)
        .find_map(|f| f.strip_prefix("sigs="))
        .unwrap_or_else(|| panic!("no sigs= in {line}"))
        .to_string()
}

#[test]
fn signature_updates_reach_the_gateway_and_the_mailbox_check_without_a_restart() {
    // Signatures for "alphatoken" at start; "betatoken" arrives later.
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("a.ndb"), "Test.Alpha:0:*:616c706861746f6b656e\n").unwrap();
    let g = Gateway::start(
        "",
        &format!(
            "[queue]\nretry_initial_secs = 1\nretry_max_secs = 1\n\n[engine]\nsignatures = [\"{}\"]\nreload_check_secs = 1\n",
            db.display()
        ),
    );
    let send = |to: &str, body: &str| swaks(g.port, &["--to", to, "--body", body]);
    // user2's mailbox cannot be written yet: its message waits in the queue.
    std::fs::write(g.data().join("maildir").join("user2"), b"in the way").unwrap();
    let (ok, t) = send("user2@example.com", "waiting with betatoken inside");
    assert!(ok, "{t}");
    let (ok, t) = send("user@example.com", "before: betatoken is not known yet");
    assert!(ok, "{t}");
    let before = g.maildir("user", 1, WAIT);
    assert_eq!(before.len(), 1, "{}", g.log_text());
    let v1 = stamp_sigs(&text(&before[0]));
    let (ok, t) = send("user@example.com", "alphatoken");
    assert!(!ok && t.contains("Test.Alpha"), "{t}");

    // The update lands (as freshclam or a copy would): picked up by itself.
    std::fs::write(db.join("b.ndb"), "Test.Beta:0:*:62657461746f6b656e\n").unwrap();
    g.wait_log("signatures reloaded (signature files changed)", WAIT);
    let (ok, t) = send("user@example.com", "after: betatoken");
    assert!(!ok, "{t}");
    assert!(
        t.contains("554 5.7.1 Message refused: virus found (Test.Beta"),
        "{t}"
    );
    let (ok, t) = send("user@example.com", "after: harmless");
    assert!(ok, "{t}");
    let after = g.maildir("user", 2, WAIT);
    assert_eq!(after.len(), 2, "{}", g.log_text());
    let fresh = after
        .iter()
        .map(|m| text(m))
        .find(|m| m.contains("after: harmless"))
        .unwrap();
    let v2 = stamp_sigs(&fresh);
    assert_ne!(v1, v2, "stamps name the new signatures");

    // The queued message was stamped with the old version: the mailbox
    // check scans it again with the new signatures and quarantines it.
    std::fs::remove_file(g.data().join("maildir").join("user2")).unwrap();
    assert!(g.wait_queue_empty(WAIT), "{}", g.log_text());
    assert!(g.maildir("user2", 0, Duration::ZERO).is_empty());
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    assert_eq!(q[0]["findings"][0]["name"], "Test.Beta");

    // The databases vanish (a failed update): the running signatures stay.
    std::fs::rename(&db, tmp.path().join("gone")).unwrap();
    g.wait_log("signatures not reloaded (signature files changed)", WAIT);
    let (ok, t) = send("user@example.com", "still betatoken");
    assert!(!ok && t.contains("Test.Beta"), "{t}");
}

#[test]
fn sigusr2_reloads_the_signatures_when_watching_is_off() {
    let sigdir = tempfile::tempdir().unwrap();
    std::fs::write(
        sigdir.path().join("a.ndb"),
        "Test.Alpha:0:*:616c706861746f6b656e\n",
    )
    .unwrap();
    let g = Gateway::start(
        "",
        &format!(
            "[engine]\nbuiltin = false\nsignatures = [\"{}\"]\nreload_check_secs = 0\n",
            sigdir.path().display()
        ),
    );
    std::fs::write(
        sigdir.path().join("b.ndb"),
        "Test.Beta:0:*:62657461746f6b656e\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (ok, t) = swaks(g.port, &["--to", "user@example.com", "--body", "betatoken"]);
    assert!(ok, "not watched, not reloaded yet: {t}");
    support::unsafe_kill(g.child.id(), "USR2");
    g.wait_log("signatures reloaded (SIGUSR2)", WAIT);
    let (ok, t) = swaks(g.port, &["--to", "user@example.com", "--body", "betatoken"]);
    assert!(!ok && t.contains("Test.Beta"), "{t}");
}
