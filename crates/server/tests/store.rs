//! The store wired into the gateway, end to end through the real binary:
//! events and reports for every message, release through the delivery queue
//! to a real next hop (Postfix's smtp-sink), and PostgreSQL stopped and
//! started under a live gateway with no message lost.

mod support;

#[path = "../../store/tests/common/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::{need, swaks, Gateway, Raw, EICAR};

const WAIT: Duration = Duration::from_secs(20);

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn json_lines(b: &[u8]) -> Vec<serde_json::Value> {
    text(b)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_message_leaves_an_event_and_reports_count_them() {
    let g = Gateway::start("", "[actions]\nsuspicious = \"tag\"\n");
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "alice@example.com",
            "--from",
            "news@sender.test",
            "--header",
            "Message-Id: <clean-1@sender.test>",
        ],
    );
    assert!(ok, "{t}");
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "bob@example.com",
            "--from",
            "evil@bad.test",
            "--body",
            EICAR,
        ],
    );
    assert!(!ok && t.contains("554 5.7.1"), "{t}");
    let ev = g.wait_events(2, WAIT);
    assert_eq!(ev.len(), 2, "{ev:?}");
    // Newest first.
    let (rej, ok_ev) = (&ev[0], &ev[1]);
    assert_eq!(rej["action"], "reject");
    assert_eq!(rej["verdict"], "infected");
    assert_eq!(rej["mail_from"], "evil@bad.test");
    assert_eq!(rej["rcpts"][0], "bob@example.com");
    assert_eq!(rej["client_ip"], "127.0.0.1");
    assert!(rej["findings"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("Win.Test.EICAR"));
    assert_eq!(rej["engines"][0]["engine"], "signatures");
    assert_eq!(rej["engines"][0]["verdict"], "infected");
    assert_eq!(ok_ev["action"], "deliver");
    assert_eq!(ok_ev["verdict"], "clean");
    assert_eq!(ok_ev["message_id"], "<clean-1@sender.test>");
    assert_eq!(ok_ev["stamp"], "added:clean");
    assert_eq!(ok_ev["node"], "test1");
    assert!(ok_ev["latency_us"].as_u64().unwrap() > 0);
    assert!(ok_ev["size"].as_u64().unwrap() > 100);

    // The same queue id as the SMTP reply and the delivered message.
    let m = g.maildir("alice", 1, WAIT);
    let qid = ok_ev["queue_id"].as_str().unwrap();
    assert!(
        text(&m[0]).contains(&format!("id {qid}")),
        "{}",
        text(&m[0])
    );

    // Filters.
    let o = g.mxguard(&["events", "--json", "--action", "reject"]);
    let only = json_lines(&o.stdout);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["queue_id"], rej["queue_id"]);
    let o = g.mxguard(&["events", "--json", "--message-id", "<clean-1@sender.test>"]);
    assert_eq!(json_lines(&o.stdout).len(), 1);
    let o = g.mxguard(&["events", "--json", "--sender", "EVIL@"]);
    assert_eq!(json_lines(&o.stdout).len(), 1, "sender search ignores case");
    let o = g.mxguard(&[
        "events",
        "--json",
        "--since",
        "2000-01-01",
        "--until",
        "2000-01-02",
    ]);
    assert_eq!(json_lines(&o.stdout).len(), 0);
    // A table for people, CSV for spreadsheets.
    let o = g.mxguard(&["events"]);
    let table = text(&o.stdout);
    assert!(
        table.starts_with("TIME") && table.contains("2 event(s)"),
        "{table}"
    );
    let o = g.mxguard(&["events", "--format", "csv"]);
    let csv = text(&o.stdout);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().next().unwrap().starts_with("id,time,"), "{csv}");

    // Reports read the counters the writer keeps with the events.
    let o = g.mxguard(&["report", "--json", "--since", "1h"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["messages"], 2, "{r}");
    let by_action: Vec<(String, u64)> = serde_json::from_value(r["by_action"].clone()).unwrap();
    assert!(by_action.contains(&("reject".into(), 1)), "{by_action:?}");
    assert!(by_action.contains(&("deliver".into(), 1)), "{by_action:?}");
    assert!(r["top_threats"][0]["threat"]
        .as_str()
        .unwrap()
        .starts_with("Win.Test.EICAR"));
    assert_eq!(r["top_sender_domains"].as_array().unwrap().len(), 2);
    assert_eq!(r["latency"]["messages"], 2);
    let o = g.mxguard(&["report", "--format", "csv", "--section", "threats"]);
    let csv = text(&o.stdout);
    assert!(csv.starts_with("threat,engine,messages\n"), "{csv}");
    assert!(csv.contains(",signatures,1"), "{csv}");
    let o = g.mxguard(&["report"]);
    assert!(
        text(&o.stdout).contains("Messages: 2"),
        "{}",
        text(&o.stdout)
    );

    let o = g.mxguard(&["store", "info", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["backend"], "sqlite");
    assert_eq!(info["schema_version"], info["latest_schema_version"]);
    assert!(info["schema_version"].as_i64().unwrap() >= 3);
    assert_eq!(info["events"], 2);
    assert_eq!(info["quarantine_items"], 0);
}

/// smtp-sink's dump files, once `n` are there.
fn dumps(dir: &std::path::Path, n: usize) -> Vec<String> {
    // smtp-sink creates a dump when the transaction starts and writes it as
    // the message arrives: a dump is read once it is non-empty and has stopped
    // growing.
    let list = || {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        files
    };
    let sizes = |files: &[std::path::PathBuf]| -> Vec<u64> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .collect()
    };
    let t = Instant::now();
    let mut last: Option<Vec<u64>> = None;
    loop {
        let files = list();
        let now = sizes(&files);
        let settled = files.len() >= n && now.iter().all(|&s| s > 0) && last.as_ref() == Some(&now);
        if settled || t.elapsed() > WAIT {
            return files
                .iter()
                .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned())
                .collect();
        }
        last = Some(now);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The envelope recipients smtp-sink recorded in a dump.
fn rcpt_args(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter_map(|l| l.strip_prefix("X-Rcpt-Args: "))
        .map(str::trim)
        .collect()
}

/// Kills a helper process when the test ends, even when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Release goes through the delivery queue to the real next hop, to the
/// recipients chosen, with the release token; unknown recipients are refused.
#[test]
fn release_delivers_through_the_queue_to_the_next_hop() {
    let sink_bin = need("smtp-sink", "postfix");
    let sink_port = support::free_port();
    let dump = tempfile::tempdir().unwrap();
    let _sink = KillOnDrop(
        std::process::Command::new(sink_bin)
            .args([
                "-u",
                "root",
                "-d",
                &format!("{}/%M.", dump.path().display()),
                &format!("127.0.0.1:{sink_port}"),
                "10",
            ])
            .spawn()
            .unwrap(),
    );
    let g = Gateway::start(
        &format!("relay_domains = [\"example.com\"]\nlocal_domains = []\nnext_hop = \"smtp://127.0.0.1:{sink_port}\""),
        "[actions]\ninfected = \"quarantine\"\n",
    );
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "a@example.com,b@example.com",
            "--from",
            "x@sender.test",
            "--header",
            "Subject: invoice 42",
            "--body",
            EICAR,
        ],
    );
    assert!(ok, "{t}");
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    let id = q[0]["id"].as_str().unwrap().to_string();
    assert_eq!(q[0]["subject"], "invoice 42");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(dumps(dump.path(), 0).len(), 0, "nothing delivered yet");

    // Searches.
    let list = |args: &[&str]| {
        let mut a = vec!["quarantine", "list", "--json"];
        a.extend_from_slice(args);
        json_lines(&g.mxguard(&a).stdout)
    };
    assert_eq!(list(&["--threat", "eicar"]).len(), 1);
    assert_eq!(list(&["--subject", "INVOICE"]).len(), 1);
    assert_eq!(list(&["--recipient", "b@example"]).len(), 1);
    assert_eq!(list(&["--sender", "nobody"]).len(), 0);
    assert_eq!(list(&["--reason", "infected"]).len(), 1);
    assert_eq!(list(&["--released"]).len(), 0);
    let o = g.mxguard(&["quarantine", "list"]);
    assert!(
        text(&o.stdout).contains("1 of 1 item(s)"),
        "{}",
        text(&o.stdout)
    );
    let o = g.mxguard(&["quarantine", "show", &id]);
    let show = text(&o.stdout);
    assert!(
        show.contains("Win.Test.EICAR") && show.contains("a@example.com"),
        "{show}"
    );

    // Not a recipient: refused, nothing recorded.
    let o = g.mxguard(&["quarantine", "release", &id, "--to", "eve@example.com"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("not a recipient"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(list(&["--released"]).len(), 0);

    // To b only.
    let o = g.mxguard(&[
        "quarantine",
        "release",
        &id,
        "--to",
        "B@example.com",
        "--by",
        "ops",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let d = dumps(dump.path(), 1);
    assert_eq!(d.len(), 1, "{}", g.log_text());
    assert!(d[0].contains("X-MXGuard-Released: "), "{}", d[0]);
    assert!(d[0].contains("EICAR-STANDARD-ANTIVIRUS-TEST-FILE"));
    assert_eq!(rcpt_args(&d[0]), ["<b@example.com>"], "{}", d[0]);
    assert_eq!(list(&["--released"]).len(), 1);
    let item = &g.quarantine_records()[0];
    let rcpts = item["recipients"].as_array().unwrap();
    let released: Vec<&str> = rcpts
        .iter()
        .filter(|r| r["released_at"].is_i64())
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(released, ["b@example.com"]);
    assert_eq!(item["releases"][0]["by"], "ops");

    // Then everyone else (b is not delivered twice); the export is the original message.
    let o = g.mxguard(&["quarantine", "release", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let d = dumps(dump.path(), 2);
    assert_eq!(d.len(), 2, "{}", g.log_text());
    let mut all: Vec<&str> = d.iter().flat_map(|x| rcpt_args(x)).collect();
    all.sort();
    assert_eq!(all, ["<a@example.com>", "<b@example.com>"], "each once");
    let o = g.mxguard(&["quarantine", "release", &id]);
    assert!(!o.status.success(), "nothing left to release");
    assert!(
        text(&o.stderr).contains("already released"),
        "{}",
        text(&o.stderr)
    );
    let out = g.dir.path().join("orig.eml");
    let o = g.mxguard(&["quarantine", "export", &id, "-o", out.to_str().unwrap()]);
    assert!(o.status.success());
    let orig = std::fs::read_to_string(&out).unwrap();
    assert!(orig.contains("Subject: invoice 42") && !orig.contains("X-MXGuard-Released"));

    // Delete; then it is gone.
    let o = g.mxguard(&["quarantine", "delete", &id]);
    assert!(o.status.success());
    assert!(g.quarantine_records().is_empty());
    let o = g.mxguard(&["quarantine", "delete", &id]);
    assert!(!o.status.success(), "deleting twice says so");
}

/// One message through a raw SMTP session: the final reply to DATA.
fn send_one(port: u16, rcpt: &str, subject: &str, body: &str) -> String {
    let mut c = Raw::connect(port);
    c.cmd("EHLO load.test");
    let r = c.cmd("MAIL FROM:<load@sender.test>");
    if !r.starts_with("250") {
        return r;
    }
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    if !r.starts_with("250") {
        return r;
    }
    let r = c.cmd("DATA");
    if !r.starts_with("354") {
        return r;
    }
    c.send(format!("Subject: {subject}\r\n\r\n{body}\r\n.\r\n").as_bytes());
    let r = c.reply();
    c.cmd("QUIT");
    r
}

/// PostgreSQL stops (as in a crash) under a running gateway and comes back:
/// messages that need the database (a quarantine copy) get 451 while it is
/// down, clean mail keeps flowing with its events buffered, and after the
/// restart every accepted message is delivered or quarantined and every one
/// has its event. The sender retries 451s, as MTAs do.
#[test]
fn postgres_stopped_mid_run_loses_nothing() {
    let server = pg::PgServer::start_new();
    let g = Gateway::start(
        "",
        &format!(
            "[actions]\ninfected = \"quarantine\"\n\n[store]\nurl = \"{}\"\n",
            server.url("postgres")
        ),
    );
    const N: usize = 36;
    let mut accepted: Vec<(usize, String)> = Vec::new();
    let mut tempfails = 0;
    let mut clean_while_down = 0;
    let mut down_since: Option<Instant> = None;
    let mut restarted = false;
    for i in 0..N {
        let infected = i % 3 == 2;
        let body = if infected {
            EICAR.to_string()
        } else {
            format!("message {i} token-{i}-end")
        };
        let t0 = Instant::now();
        loop {
            let r = send_one(g.port, "user@example.com", &format!("load {i}"), &body);
            if r.starts_with("250") {
                let qid = r.trim().rsplit(' ').next().unwrap().to_string();
                accepted.push((i, qid));
                if down_since.is_some() && !restarted && !infected {
                    clean_while_down += 1;
                }
                break;
            }
            assert!(r.starts_with("451"), "message {i}: {r}");
            tempfails += 1;
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "message {i} never accepted"
            );
            // Down long enough to have refused something: bring it back.
            if let Some(t) = down_since {
                if !restarted && t.elapsed() > Duration::from_secs(2) {
                    server.start();
                    restarted = true;
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        if i == 8 {
            server.stop(true);
            down_since = Some(Instant::now());
        }
    }
    assert!(restarted, "the outage was never noticed: {}", g.log_text());
    assert!(tempfails > 0);
    assert!(
        clean_while_down > 0,
        "clean mail flowed while the database was down"
    );
    assert_eq!(accepted.len(), N);

    // Every clean message is in the mailbox, every infected one in the quarantine.
    let n_infected = (0..N).filter(|i| i % 3 == 2).count();
    let m = g.maildir("user", N - n_infected, WAIT);
    assert_eq!(m.len(), N - n_infected, "{}", g.log_text());
    let delivered: HashSet<usize> = m
        .iter()
        .map(|b| {
            let s = text(b);
            let k = s.find("token-").unwrap() + 6;
            s[k..].split('-').next().unwrap().parse().unwrap()
        })
        .collect();
    for i in (0..N).filter(|i| i % 3 != 2) {
        assert!(delivered.contains(&i), "message {i} delivered");
    }
    let q = g.quarantine_records();
    assert_eq!(q.len(), n_infected, "{}", g.log_text());
    let qids: HashSet<String> = q
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    for (i, qid) in &accepted {
        if i % 3 == 2 {
            assert!(qids.contains(qid), "message {i} ({qid}) quarantined");
        }
    }

    // Every accepted message has its event, including those accepted while
    // the database was down (written when it came back); each refused
    // attempt has a tempfail event.
    let t = Instant::now();
    let events = loop {
        let e = g.events(&[]);
        if e.len() >= N + tempfails || t.elapsed() > Duration::from_secs(60) {
            break e;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let by_id: HashSet<String> = events
        .iter()
        .filter(|e| e["action"] != "tempfail")
        .map(|e| e["queue_id"].as_str().unwrap().to_string())
        .collect();
    for (i, qid) in &accepted {
        assert!(by_id.contains(qid), "event for message {i} ({qid})");
    }
    let tf = events.iter().filter(|e| e["action"] == "tempfail").count();
    assert_eq!(tf, tempfails, "one event per refused attempt");
    let o = g.mxguard(&["store", "info", "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["backend"], "postgres");
    drop(g);
    drop(server);
}

/// Edge and hub share one store (here one SQLite file; in production
/// PostgreSQL): a message released at the edge is scanned again at the hub,
/// which finds the same threat and delivers it because the release token
/// covers it. The same token forged by an untrusted client is removed.
#[test]
fn a_hub_sharing_the_store_honours_the_release() {
    let shared = tempfile::tempdir().unwrap();
    let store = format!(
        "[store]\nurl = \"sqlite://{}\"\n",
        shared.path().join("shared.db").display()
    );
    let hub = Gateway::start(
        "role = \"hub\"\ntrusted_networks = [\"127.0.0.0/8\"]",
        &store,
    );
    let edge = Gateway::start(
        &format!("relay_domains = [\"example.com\"]\nlocal_domains = []\nnext_hop = \"smtp://127.0.0.1:{}\"", hub.port),
        &format!("[actions]\ninfected = \"quarantine\"\n\n{store}"),
    );
    let (ok, t) = swaks(edge.port, &["--to", "user@example.com", "--body", EICAR]);
    assert!(ok, "{t}");
    let q = edge.quarantine_records();
    assert_eq!(q.len(), 1, "{}", edge.log_text());
    let id = q[0]["id"].as_str().unwrap().to_string();
    let o = edge.mxguard(&["quarantine", "release", &id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let m = hub.maildir("user", 1, WAIT);
    assert_eq!(
        m.len(),
        1,
        "edge: {}\nhub: {}",
        edge.log_text(),
        hub.log_text()
    );
    assert!(text(&m[0]).contains("EICAR-STANDARD-ANTIVIRUS-TEST-FILE"));
    assert!(
        hub.log_text()
            .contains("released message: delivered despite"),
        "{}",
        hub.log_text()
    );
    let token = text(&m[0])
        .lines()
        .find_map(|l| l.strip_prefix("X-MXGuard-Released: "))
        .unwrap()
        .trim()
        .to_string();

    // The token is worth nothing from an untrusted client: the edge removes it
    // and quarantines the message as usual.
    let (ok, t) = swaks(
        edge.port,
        &[
            "--to",
            "user@example.com",
            "--header",
            &format!("X-MXGuard-Released: {token}"),
            "--body",
            EICAR,
        ],
    );
    assert!(ok, "{t}");
    assert!(
        edge.log_text()
            .contains("removed release token from an untrusted client"),
        "{}",
        edge.log_text()
    );
    assert_eq!(edge.quarantine_records().len(), 2);
    // Nor does it cover a recipient it was not released to, even from a
    // trusted client: the hub's own action (reject) applies.
    let (ok, t) = swaks(
        hub.port,
        &[
            "--to",
            "other@example.com",
            "--header",
            &format!("X-MXGuard-Released: {token}"),
            "--body",
            EICAR,
        ],
    );
    assert!(!ok && t.contains("554 5.7.1"), "{t}");
    assert!(
        hub.log_text().contains("does not cover"),
        "{}",
        hub.log_text()
    );
}

/// Notices: the administrator (English) and the recipient (German, by
/// domain) hear about a quarantined virus, through the queue; the sender of
/// an infected message from an untrusted client does not (no backscatter).
#[test]
fn notices_reach_the_admin_and_the_recipient_in_their_language() {
    let g = Gateway::start(
        "",
        "[actions]\ninfected = \"quarantine\"\n\n[notify]\nadmin = [\"admin@example.com\"]\nrecipient_on = [\"infected\"]\nsender_on = [\"infected\"]\nlanguages = { \"localhost\" = \"de\" }\n",
    );
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "anna@localhost",
            "--from",
            "evil@example.com",
            "--header",
            "Subject: Rechnung",
            "--body",
            EICAR,
        ],
    );
    assert!(ok, "{t}");
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    let id = q[0]["id"].as_str().unwrap().to_string();
    let admin = g.maildir("admin", 1, WAIT);
    assert_eq!(admin.len(), 1, "{}", g.log_text());
    let a = text(&admin[0]);
    assert!(
        a.contains("Subject: [mxguard] infected: quarantined - Win.Test.EICAR"),
        "{a}"
    );
    assert!(
        a.contains(&format!("mxguard quarantine release {id}")),
        "{a}"
    );
    assert!(a.contains("Auto-Submitted: auto-replied"), "{a}");
    let anna = g.maildir("anna", 1, WAIT);
    assert_eq!(anna.len(), 1, "{}", g.log_text());
    let n = text(&anna[0]);
    assert!(
        n.contains("in Quarant=C3=A4ne gestellt"),
        "German notice: {n}"
    );
    assert!(
        !n.contains("EICAR-STANDARD-ANTIVIRUS-TEST-FILE"),
        "the notice does not carry the virus"
    );
    // The forged-looking sender (an untrusted client sent a virus) gets nothing:
    // evil@example.com would be a local mailbox here.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        g.maildir("evil", 0, Duration::ZERO).is_empty(),
        "no backscatter"
    );
}
