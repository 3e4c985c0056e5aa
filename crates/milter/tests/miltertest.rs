//! Real `miltertest` (Debian package `miltertest`) plays the MTA against a
//! listener built from this crate, with the test handler of `common`.
//! Each Lua script under `tests/miltertest/` ends with `mt.echo("PASS <name>")`;
//! the test needs both a zero exit and that line, so a script that stops
//! early fails. A missing `miltertest` fails the test (`.ci/run` installs it).

mod common;

use common::TestHandler;
use mxguard_milter::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/miltertest")
        .join(format!("{name}.lua"))
}

/// Serves `handler` on a loopback port with `cfg`, runs the script against
/// it, and returns the handler for more assertions.
async fn run(name: &str, hooks: Hooks, cfg: SessionConfig) -> Arc<TestHandler> {
    let handler = TestHandler::new(hooks);
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let server = tokio::spawn(serve(
        listener,
        handler.clone(),
        Arc::new(cfg),
        shutdown.clone(),
        tracker.clone(),
    ));
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("miltertest")
            .arg("-D")
            .arg(format!("port={port}"))
            .arg("-s")
            .arg(script(name))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{name}: miltertest did not finish in 120 s"))
    .unwrap_or_else(|e| {
        panic!("{name}: cannot run miltertest ({e}); install it: apt-get install miltertest")
    });
    shutdown.cancel();
    server.await.unwrap();
    tracker.close();
    tracker.wait().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().any(|l| l.trim() == format!("PASS {name}")),
        "{name}: miltertest failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    handler
}

#[tokio::test]
async fn messages_on_one_connection() {
    let h = run("messages", Hooks::default(), SessionConfig::default()).await;
    let seen = h.seen();
    assert_eq!(seen.len(), 3, "three messages reached the handler");
    let m = String::from_utf8_lossy(&seen[0].message);
    assert!(m.starts_with("From: user@example.org\r\n"), "{m}");
    assert!(m.contains("\r\n\r\nHello, world.\r\n"), "{m}");
    assert_eq!(seen[0].ctx.queue_id(), Some("QID-1"));
    assert_eq!(seen[0].ctx.macros.get("j"), Some("mx.example.com"));
    assert_eq!(seen[1].ctx.queue_id(), Some("QID-2"));
    assert_eq!(
        seen[0].ctx.connection.helo.as_deref(),
        Some("client.example.org")
    );
}

#[tokio::test]
async fn modifications() {
    run("modifications", Hooks::default(), SessionConfig::default()).await;
}

#[tokio::test]
async fn negotiation_edge_cases() {
    run("negotiation", Hooks::default(), SessionConfig::default()).await;
}

#[tokio::test]
async fn oversize_abort_and_failure() {
    let cfg = SessionConfig {
        max_message_size: 8192,
        handler_timeout: Duration::from_secs(3),
        progress_interval: Duration::from_secs(1),
        ..SessionConfig::default()
    };
    let h = run("limits", Hooks::default(), cfg).await;
    // Only the small message after the abort and the failing ones reached it.
    let seen = h.seen();
    assert!(seen.iter().all(|s| s.message.len() <= 8192));
    assert!(seen
        .iter()
        .all(|s| !s.message.windows(7).any(|w| w == b"ABORTED")));
}

#[tokio::test]
async fn hooks_at_connect_and_rcpt() {
    let hooks = Hooks {
        connect: true,
        rcpt: true,
        ..Hooks::default()
    };
    let h = run("hooks", hooks, SessionConfig::default()).await;
    let seen = h.seen();
    assert_eq!(seen.len(), 1);
    let rcpts: Vec<_> = seen[0]
        .ctx
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rcpts, ["ok@example.com"]);
}
