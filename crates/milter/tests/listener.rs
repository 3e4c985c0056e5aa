//! Listeners: Unix sockets (stale file removed, live one refused, mode set,
//! file removed at shutdown), the connection limit, and a whole message
//! over a real Unix socket.

mod common;

use common::TestHandler;
use mxguard_milter::codec::{Command, FrameDecoder, OptNeg, Response};
use mxguard_milter::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    cmds: &[Command],
    replies: usize,
) -> Vec<Response> {
    let mut out = Vec::new();
    for c in cmds {
        c.encode(&mut out);
    }
    s.write_all(&out).await.unwrap();
    let mut dec = FrameDecoder::new(1 << 20);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < replies {
        if let Some(f) = dec.next_frame().unwrap() {
            got.push(Response::decode(f.command, &f.data).unwrap());
            continue;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("no reply")
            .unwrap();
        assert!(n > 0, "closed after {got:?}");
        dec.feed(&buf[..n]);
    }
    got
}

fn optneg() -> Command {
    Command::OptNeg(OptNeg {
        version: 6,
        actions: Actions(0x1ff),
        protocol: ProtocolFlags(0x1fffff),
    })
}

#[tokio::test]
async fn unix_socket_lifecycle_and_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milter.sock");
    let addr: ListenAddr = format!("unix:{}", path.display()).parse().unwrap();

    // A stale socket file (nobody listening) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listener = Listener::bind(&addr, Some(0o660)).await.unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o660
    );
    // A live one is not.
    let err = Listener::bind(&addr, None).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    // Nor is a file that is not a socket.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"x").unwrap();
    let err = Listener::bind(&ListenAddr::Unix(plain.clone()), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(plain.exists());

    let handler = TestHandler::new(Hooks::default());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let server = tokio::spawn(serve(
        listener,
        handler.clone(),
        Arc::new(SessionConfig::default()),
        shutdown.clone(),
        tracker.clone(),
    ));
    let mut s = UnixStream::connect(&path).await.unwrap();
    let got = exchange(
        &mut s,
        &[
            optneg(),
            Command::Mail(vec!["<a@example.org>".into()]),
            Command::Rcpt(vec!["<b@example.com>".into()]),
            Command::Header {
                name: "Subject".into(),
                value: b" over unix".to_vec(),
            },
            Command::EndOfMessage(b"body\r\n".to_vec()),
        ],
        3,
    )
    .await;
    assert!(matches!(got[0], Response::OptNeg { .. }));
    assert!(matches!(got[1], Response::AddHeader { .. }), "{got:?}");
    assert_eq!(got[2], Response::Accept);
    assert_eq!(
        handler.seen()[0].message,
        b"Subject: over unix\r\n\r\nbody\r\n"
    );

    drop(s);
    shutdown.cancel();
    server.await.unwrap();
    tracker.close();
    tracker.wait().await;
    assert!(!path.exists(), "socket file left behind");
}

#[tokio::test]
async fn connections_over_the_limit_are_closed() {
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let cfg = SessionConfig {
        max_connections: 1,
        ..SessionConfig::default()
    };
    let server = tokio::spawn(serve(
        listener,
        TestHandler::new(Hooks::default()),
        Arc::new(cfg),
        shutdown.clone(),
        tracker.clone(),
    ));
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert_eq!(exchange(&mut first, &[optneg()], 1).await.len(), 1);
    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), second.read(&mut buf))
        .await
        .expect("second connection neither served nor closed");
    assert!(matches!(n, Ok(0) | Err(_)), "second connection was served");
    // Once the first leaves, a new one is served.
    drop(first);
    let mut third = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut out = Vec::new();
        optneg().encode(&mut out);
        let _ = s.write_all(&out).await;
        let mut b = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await {
            if n > 0 {
                third = Some(n);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(third.is_some(), "the slot was never released");
    shutdown.cancel();
    server.await.unwrap();
}
