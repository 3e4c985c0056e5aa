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

#[path = "common/postfix.rs"]
mod peers;

use common::TestHandler;
use mxguard_milter::*;
use peers::Peers;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
