//! The delivery client's connection pool against our own SMTP server.

use mxguard_smtp::client::{NextHop, OutboundEnvelope, OutboundRcpt, Pool};
use mxguard_smtp::proto::Reply;
use mxguard_smtp::relay::RelayPolicy;
use mxguard_smtp::session::{Envelope, Handler, Session, SessionConfig, SessionInfo};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Sink {
    messages: Mutex<Vec<Vec<u8>>>,
}

impl Handler for Sink {
    async fn message(&self, _: &SessionInfo, _: &Envelope, m: Vec<u8>) -> Reply {
        self.messages.lock().unwrap().push(m);
        Reply::new(250, Some("2.0.0"), "Ok")
    }
}

/// A server on loopback; returns its port, the sink and the accept counter.
async fn server(idle_timeout: Duration) -> (u16, Arc<Sink>, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let sink = Arc::new(Sink::default());
    let accepts = Arc::new(AtomicUsize::new(0));
    let cfg = Arc::new(SessionConfig {
        hostname: "sink.test".into(),
        max_message_size: 1 << 20,
        max_recipients: 100,
        max_errors: 10,
        command_timeout: idle_timeout,
        data_timeout: idle_timeout,
        relay: RelayPolicy {
            local_domains: vec!["example.com".into()],
            ..Default::default()
        },
        can_relay: false,
        starttls: false,
        max_command_line: 512,
    });
    let (s, a) = (sink.clone(), accepts.clone());
    tokio::spawn(async move {
        loop {
            let (stream, peer) = l.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            let info = SessionInfo {
                peer,
                local: peer,
                helo: None,
                esmtp: false,
                tls: false,
                tls_info: None,
                trusted: false,
            };
            let session = Session::new(
                stream,
                info,
                cfg.clone(),
                s.clone(),
                CancellationToken::new(),
            );
            tokio::spawn(session.run(true));
        }
    });
    (port, sink, accepts)
}

fn env() -> OutboundEnvelope {
    OutboundEnvelope {
        mail_from: "a@b.test".into(),
        rcpts: vec![OutboundRcpt::new("u@example.com")],
        ..Default::default()
    }
}

#[tokio::test]
async fn one_connection_carries_many_messages() {
    let (port, sink, accepts) = server(Duration::from_secs(30)).await;
    let pool = Pool::new(
        NextHop::Smtp {
            host: "127.0.0.1".into(),
            port,
        },
        Default::default(),
    );
    for i in 0..5 {
        let r = pool
            .deliver(
                &env(),
                format!("Subject: {i}\r\n\r\nbody {i}\r\n").as_bytes(),
            )
            .await
            .unwrap();
        assert!(r[0].outcome.is_delivered(), "{r:?}");
    }
    assert_eq!(accepts.load(Ordering::SeqCst), 1);
    let m = sink.messages.lock().unwrap();
    assert_eq!(m.len(), 5);
    assert_eq!(m[4], b"Subject: 4\r\n\r\nbody 4\r\n");
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced_without_failing_the_message() {
    let (port, sink, accepts) = server(Duration::from_millis(300)).await;
    let pool = Pool::new(
        NextHop::Smtp {
            host: "127.0.0.1".into(),
            port,
        },
        Default::default(),
    );
    let r = pool
        .deliver(&env(), b"Subject: 1\r\n\r\none\r\n")
        .await
        .unwrap();
    assert!(r[0].outcome.is_delivered());
    // The server times the idle connection out (421) and closes it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = pool
        .deliver(&env(), b"Subject: 2\r\n\r\ntwo\r\n")
        .await
        .unwrap();
    assert!(r[0].outcome.is_delivered(), "{r:?}");
    assert_eq!(accepts.load(Ordering::SeqCst), 2);
    assert_eq!(sink.messages.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_refused_recipient_leaves_the_connection_usable() {
    let (port, sink, accepts) = server(Duration::from_secs(30)).await;
    let pool = Pool::new(
        NextHop::Smtp {
            host: "127.0.0.1".into(),
            port,
        },
        Default::default(),
    );
    let mut e = env();
    e.rcpts.push(OutboundRcpt::new("x@elsewhere.test"));
    let r = pool
        .deliver(&e, b"Subject: 1\r\n\r\none\r\n")
        .await
        .unwrap();
    assert!(
        r[0].outcome.is_delivered() && r[1].outcome.is_permanent(),
        "{r:?}"
    );
    let r = pool
        .deliver(&env(), b"Subject: 2\r\n\r\ntwo\r\n")
        .await
        .unwrap();
    assert!(r[0].outcome.is_delivered());
    assert_eq!(accepts.load(Ordering::SeqCst), 1);
    assert_eq!(sink.messages.lock().unwrap().len(), 2);
}
