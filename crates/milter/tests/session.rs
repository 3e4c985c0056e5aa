//! Sessions over in-memory streams with a scripted MTA.

mod common;

use common::*;
use mxguard_milter::codec::{Command, Family, Response};
use mxguard_milter::consts::*;
use mxguard_milter::*;
use std::time::Duration;

fn cfg() -> SessionConfig {
    SessionConfig::default()
}

fn macros(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// MAIL (with macros), RCPTs, DATA, headers, EOH: replies are expected
/// only for those not covered by `NR_*` in the full default negotiation.
async fn envelope(mta: &mut Mta, queue_id: &str, rcpts: &[&str]) {
    mta.send(Command::Macro {
        stage: cmd::MAIL,
        macros: macros(&[("i", queue_id), ("{auth_authen}", "alice")]),
    })
    .await;
    mta.send(Command::Mail(vec![
        "<sender@example.org>".into(),
        "SIZE=300".into(),
    ]))
    .await;
    for r in rcpts {
        mta.send(Command::Macro {
            stage: cmd::RCPT,
            macros: macros(&[("{rcpt_addr}", r)]),
        })
        .await;
        mta.send(Command::Rcpt(vec![format!("<{r}>")])).await;
    }
    mta.send(Command::Data).await;
}

#[tokio::test]
async fn several_messages_on_one_connection_with_macros() {
    let h = TestHandler::new(Hooks::default());
    let (mut mta, task) = Mta::start(h.clone(), cfg());
    let Response::OptNeg {
        version,
        actions,
        protocol,
        symlists,
    } = mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await
    else {
        panic!("no negotiation reply")
    };
    assert_eq!(version, 6);
    assert_eq!(actions, cfg().options.actions);
    // No hooks: no replies wanted to CONNECT/HELO/MAIL/RCPT either.
    for f in [
        ProtocolFlags::NR_CONN,
        ProtocolFlags::NR_HELO,
        ProtocolFlags::NR_MAIL,
        ProtocolFlags::NR_RCPT,
        ProtocolFlags::NR_HDR,
        ProtocolFlags::NR_EOH,
        ProtocolFlags::NR_DATA,
        ProtocolFlags::HDR_LEADSPC,
    ] {
        assert!(protocol.contains(f), "{f:?} missing from {protocol:?}");
    }
    assert!(!protocol.contains(ProtocolFlags::NR_BODY));
    assert!(symlists
        .iter()
        .any(|(s, l)| *s == MacroStage::Eom && l.contains('i')));

    mta.send(Command::Macro {
        stage: cmd::CONNECT,
        macros: macros(&[("j", "mx.example.com"), ("{daemon_name}", "smtpd")]),
    })
    .await;
    mta.connect("198.51.100.7").await;
    mta.send(Command::Helo("client.example".into())).await;

    envelope(&mut mta, "QID1", &["a@example.com", "b@example.com"]).await;
    mta.header("Subject", " first").await;
    mta.header("X-Folded", " a\n\tb").await;
    mta.send(Command::EndOfHeaders).await;
    mta.send(Command::Body(b"hello\r\n".to_vec())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Body(b"world\r\n".to_vec())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Macro {
        stage: cmd::BODYEOB,
        macros: macros(&[("i", "QID1")]),
    })
    .await;
    mta.send(Command::EndOfMessage(vec![])).await;
    let (mods, fin) = mta.recv_eom().await;
    assert_eq!(fin, Response::Accept);
    assert_eq!(
        mods,
        vec![Response::AddHeader {
            name: "X-MXGuard".into(),
            // HDR_LEADSPC was negotiated: we supply the space.
            value: " scanned; queue=QID1; rcpts=2".into()
        }]
    );

    // Second message, same client; no auth macro this time.
    mta.send(Command::Macro {
        stage: cmd::MAIL,
        macros: macros(&[("i", "QID2")]),
    })
    .await;
    mta.send(Command::Mail(vec!["<>".into()])).await;
    mta.send(Command::Rcpt(vec!["<c@example.com>".into()]))
        .await;
    mta.header("Subject", " second").await;
    mta.send(Command::EndOfMessage(b"last chunk\r\n".to_vec()))
        .await;
    let (mods, fin) = mta.recv_eom().await;
    assert_eq!(fin, Response::Accept);
    assert_eq!(
        mods,
        vec![Response::AddHeader {
            name: "X-MXGuard".into(),
            value: " scanned; queue=QID2; rcpts=1".into()
        }]
    );
    mta.send(Command::Quit).await;
    assert!(matches!(task.await.unwrap(), SessionEnd::Quit));

    let seen = h.seen();
    assert_eq!(seen.len(), 2);
    let first = &seen[0];
    assert_eq!(
        first.message,
        b"Subject: first\r\nX-Folded: a\r\n\tb\r\n\r\nhello\r\nworld\r\n"
    );
    assert_eq!(first.ctx.sender.as_deref(), Some("sender@example.org"));
    assert_eq!(first.ctx.sender_args, vec!["SIZE=300".to_string()]);
    let rcpts: Vec<_> = first
        .ctx
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rcpts, ["a@example.com", "b@example.com"]);
    assert_eq!(first.ctx.queue_id(), Some("QID1"));
    assert_eq!(first.ctx.auth_user(), Some("alice"));
    assert_eq!(first.ctx.macros.get("j"), Some("mx.example.com"));
    assert_eq!(first.ctx.macros.get("{rcpt_addr}"), Some("b@example.com"));
    assert_eq!(
        first.ctx.connection.address,
        ClientAddress::Inet("198.51.100.7:40000".parse().unwrap())
    );
    assert_eq!(first.ctx.connection.helo.as_deref(), Some("client.example"));

    let second = &seen[1];
    assert_eq!(second.message, b"Subject: second\r\n\r\nlast chunk\r\n");
    assert_eq!(second.ctx.sender.as_deref(), Some(""));
    assert_eq!(
        second.ctx.auth_user(),
        None,
        "MAIL macros of message 1 leaked"
    );
    assert_eq!(
        second.ctx.macros.get("rcpt_addr"),
        None,
        "RCPT macros leaked"
    );
    assert_eq!(second.ctx.macros.get("j"), Some("mx.example.com"));
    assert_eq!(
        second.ctx.connection.helo.as_deref(),
        Some("client.example")
    );
}

#[tokio::test]
async fn abort_mid_body_then_a_new_message() {
    let h = TestHandler::new(Hooks::default());
    let (mut mta, _task) = Mta::start(h.clone(), cfg());
    mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await;
    mta.connect("198.51.100.7").await;
    envelope(&mut mta, "Q1", &["a@example.com"]).await;
    mta.header("Subject", " aborted").await;
    mta.send(Command::Body(b"REJECT-ME partial".to_vec())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Abort).await;
    envelope(&mut mta, "Q2", &["b@example.com"]).await;
    mta.header("Subject", " kept").await;
    mta.send(Command::Body(b"fine\r\n".to_vec())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::EndOfMessage(vec![])).await;
    assert_eq!(mta.recv_eom().await.1, Response::Accept);
    let seen = h.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message, b"Subject: kept\r\n\r\nfine\r\n");
    assert_eq!(seen[0].ctx.recipients.len(), 1);
    assert_eq!(seen[0].ctx.queue_id(), Some("Q2"));
}

#[tokio::test]
async fn quit_nc_starts_a_new_client_on_the_same_connection() {
    let h = TestHandler::new(Hooks::default());
    let (mut mta, task) = Mta::start(h.clone(), cfg());
    mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await;
    mta.send(Command::Macro {
        stage: cmd::CONNECT,
        macros: macros(&[("{client_name}", "first.example")]),
    })
    .await;
    mta.connect("198.51.100.1").await;
    mta.send(Command::Helo("first".into())).await;
    envelope(&mut mta, "A", &["a@example.com"]).await;
    mta.send(Command::EndOfMessage(vec![])).await;
    assert_eq!(mta.recv_eom().await.1, Response::Accept);
    mta.send(Command::QuitNc).await;
    mta.send(Command::Connect {
        hostname: "localhost".into(),
        family: Family::Unix,
        port: 0,
        address: "/var/run/local.sock".into(),
    })
    .await;
    envelope(&mut mta, "B", &["b@example.com"]).await;
    mta.send(Command::EndOfMessage(vec![])).await;
    assert_eq!(mta.recv_eom().await.1, Response::Accept);
    drop(mta);
    assert!(matches!(task.await.unwrap(), SessionEnd::PeerClosed));
    let seen = h.seen();
    assert_eq!(
        seen[1].ctx.connection.address,
        ClientAddress::Unix("/var/run/local.sock".into())
    );
    assert_eq!(seen[1].ctx.connection.helo, None);
    assert_eq!(seen[1].ctx.macros.get("client_name"), None);
    assert_eq!(seen[0].ctx.macros.get("client_name"), Some("first.example"));
}

/// Runs one message with `body` through a fresh session negotiated with
/// `actions`; returns the modifications and the final reply.
async fn one_message(actions: u32, body: &str, c: SessionConfig) -> (Vec<Response>, Response) {
    let h = TestHandler::new(Hooks::default());
    let (mut mta, _task) = Mta::start(h, c);
    mta.negotiate(actions, ALL_PROTOCOL).await;
    mta.connect("198.51.100.7").await;
    envelope(&mut mta, "Q", &["a@example.com", "drop@example.com"]).await;
    mta.header("Subject", " s").await;
    mta.send(Command::EndOfHeaders).await;
    mta.send(Command::Body(body.as_bytes().to_vec())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::EndOfMessage(vec![])).await;
    mta.recv_eom().await
}

#[tokio::test]
async fn reject_sends_the_escaped_multi_line_reply_and_no_modifications() {
    let (mods, fin) = one_message(ALL_ACTIONS, "REJECT-ME\r\n", cfg()).await;
    assert!(mods.is_empty(), "{mods:?}");
    let Response::ReplyCode(r) = fin else {
        panic!("{fin:?}")
    };
    assert_eq!(
        r.to_wire(),
        "550-5.7.1 Message rejected: 100%% test marker\r\n550 5.7.1 Contact postmaster"
    );
}

#[tokio::test]
async fn tempfail_discard_and_quarantine() {
    let (m, fin) = one_message(ALL_ACTIONS, "TEMPFAIL-ME", cfg()).await;
    assert!(m.is_empty());
    assert_eq!(
        fin,
        Response::ReplyCode(SmtpReply::tempfail("4.7.1", "Try again later").unwrap())
    );
    let (m, fin) = one_message(ALL_ACTIONS, "DISCARD-ME", cfg()).await;
    assert!(m.is_empty());
    assert_eq!(fin, Response::Discard);
    let (m, fin) = one_message(ALL_ACTIONS, "QUARANTINE-ME", cfg()).await;
    assert_eq!(m, vec![Response::Quarantine("test marker found".into())]);
    assert_eq!(fin, Response::Accept);
}

#[tokio::test]
async fn body_replacement_header_and_recipient_changes() {
    let (m, fin) = one_message(ALL_ACTIONS, "REPLACE-BODY", cfg()).await;
    assert_eq!(fin, Response::Accept);
    assert_eq!(
        m,
        vec![
            Response::AddHeader {
                name: "X-MXGuard-Cleaned".into(),
                value: " yes".into()
            },
            Response::ReplaceBody(CLEANED_BODY.to_vec()),
        ]
    );
    let (m, _) = one_message(ALL_ACTIONS, "BIG-BODY", cfg()).await;
    let chunks: Vec<usize> = m
        .iter()
        .map(|r| match r {
            Response::ReplaceBody(b) => b.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(chunks, vec![65_535, 65_535, 150_000 - 2 * 65_535]);

    let (m, fin) = one_message(ALL_ACTIONS, "RCPT-CHANGE", cfg()).await;
    assert_eq!(fin, Response::Accept);
    assert_eq!(
        m,
        vec![
            Response::AddRcpt("<added@example.com>".into()),
            Response::AddRcptPar {
                rcpt: "<par@example.com>".into(),
                args: "NOTIFY=NEVER".into()
            },
            Response::DelRcpt("<drop@example.com>".into()),
            Response::ChangeFrom {
                from: "<bounces@example.com>".into(),
                args: None
            },
        ]
    );
    let (m, _) = one_message(ALL_ACTIONS, "HEADER-EDIT", cfg()).await;
    assert_eq!(
        m,
        vec![
            Response::ChangeHeader {
                index: 1,
                name: "Subject".into(),
                value: " [scanned] edited".into()
            },
            Response::ChangeHeader {
                index: 2,
                name: "X-Old".into(),
                value: "".into()
            },
            Response::InsertHeader {
                index: 0,
                name: "X-First".into(),
                value: " 1".into()
            },
        ]
    );
}

fn failure_451() -> Response {
    Response::ReplyCode(
        SmtpReply::tempfail(
            "4.3.0",
            "Content filter temporarily unavailable, try again later",
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn modifications_the_mta_did_not_grant_become_a_tempfail() {
    // The MTA grants only header additions.
    let offer = (Actions::ADDHDRS | Actions::CHGHDRS).bits();
    let (m, fin) = one_message(offer, "REPLACE-BODY", cfg()).await;
    assert!(
        m.is_empty(),
        "nothing may be sent before the tempfail: {m:?}"
    );
    assert_eq!(fin, failure_451());
    let (m, fin) = one_message(offer, "RCPT-CHANGE", cfg()).await;
    assert!(m.is_empty());
    assert_eq!(fin, failure_451());
    // What was granted still works.
    let (m, fin) = one_message(offer, "HEADER-EDIT", cfg()).await;
    assert_eq!(m.len(), 3);
    assert_eq!(fin, Response::Accept);
    // ADDRCPT without ADDRCPT_PAR: a recipient with arguments cannot be added.
    let offer = (Actions::ADDRCPT | Actions::DELRCPT | Actions::CHGFROM).bits();
    let (m, fin) = one_message(offer, "RCPT-CHANGE", cfg()).await;
    assert!(m.is_empty());
    assert_eq!(fin, failure_451());
}

#[tokio::test]
async fn handler_error_and_panic_follow_on_failure() {
    for marker in ["HANDLER-ERROR", "HANDLER-PANIC"] {
        let (m, fin) = one_message(ALL_ACTIONS, marker, cfg()).await;
        assert!(m.is_empty());
        assert_eq!(fin, failure_451(), "{marker}");
        let accept = SessionConfig {
            on_failure: FailurePolicy::Accept,
            ..cfg()
        };
        let (m, fin) = one_message(ALL_ACTIONS, marker, accept).await;
        assert!(m.is_empty());
        assert_eq!(fin, Response::Accept, "{marker}");
    }
}

#[tokio::test(start_paused = true)]
async fn slow_handler_gets_progress_then_the_failure_reply() {
    let c = SessionConfig {
        handler_timeout: Duration::from_secs(35),
        progress_interval: Duration::from_secs(10),
        ..cfg()
    };
    let h = TestHandler::new(Hooks::default());
    let (mut mta, _task) = Mta::start(h, c);
    mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await;
    envelope(&mut mta, "Q", &["a@example.com"]).await;
    mta.send(Command::EndOfMessage(b"HANDLER-SLOW".to_vec()))
        .await;
    let start = tokio::time::Instant::now();
    for n in 1..=3u64 {
        assert_eq!(mta.recv().await, Response::Progress);
        assert_eq!(start.elapsed().as_secs(), 10 * n);
    }
    assert_eq!(mta.recv().await, failure_451());
    assert_eq!(start.elapsed().as_secs(), 35);
    // The connection goes on.
    envelope(&mut mta, "Q2", &["a@example.com"]).await;
    mta.send(Command::EndOfMessage(b"ok".to_vec())).await;
    assert_eq!(mta.recv_eom().await.1, Response::Accept);
}

#[tokio::test]
async fn oversize_body_is_answered_at_once_and_never_buffered() {
    let c = SessionConfig {
        max_message_size: 1000,
        ..cfg()
    };
    let h = TestHandler::new(Hooks::default());
    let (mut mta, _task) = Mta::start(h.clone(), c.clone());
    mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await;
    envelope(&mut mta, "Q", &["a@example.com"]).await;
    mta.header("Subject", " big").await;
    mta.send(Command::EndOfHeaders).await;
    let chunk = vec![b'x'; 400];
    mta.send(Command::Body(chunk.clone())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Body(chunk.clone())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Body(chunk.clone())).await;
    let too_big = Response::ReplyCode(
        SmtpReply::new(452, Some("4.3.4"), "Message too big for the content filter").unwrap(),
    );
    assert_eq!(mta.recv().await, too_big);
    // An MTA that keeps sending hears the same answer, also at EOM.
    mta.send(Command::Body(chunk.clone())).await;
    assert_eq!(mta.recv().await, too_big);
    mta.send(Command::EndOfMessage(vec![])).await;
    assert_eq!(mta.recv().await, too_big);
    assert!(
        h.seen().is_empty(),
        "the handler must not see an oversize message"
    );
    // The next message is fine.
    envelope(&mut mta, "Q2", &["a@example.com"]).await;
    mta.send(Command::EndOfMessage(b"small".to_vec())).await;
    assert_eq!(mta.recv_eom().await.1, Response::Accept);
    assert_eq!(h.seen().len(), 1);

    // Reject policy; and a message that only goes over in its (unanswered) headers.
    let c = SessionConfig {
        on_oversize: OversizePolicy::Reject,
        ..c
    };
    let (mut mta, _task) = Mta::start(h.clone(), c);
    mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await;
    envelope(&mut mta, "Q3", &["a@example.com"]).await;
    mta.header("X-Huge", &"y".repeat(2000)).await;
    mta.send(Command::EndOfMessage(vec![])).await;
    assert_eq!(
        mta.recv().await,
        Response::ReplyCode(
            SmtpReply::new(
                552,
                Some("5.3.4"),
                "Message size exceeds fixed maximum message size"
            )
            .unwrap()
        )
    );
    assert_eq!(h.seen().len(), 1);
}

#[tokio::test]
async fn an_old_mta_without_no_reply_flags_gets_every_reply_and_no_leading_space() {
    let h = TestHandler::new(Hooks::default());
    let (mut mta, _task) = Mta::start(h.clone(), cfg());
    // Version 2, the original actions, no protocol flags at all.
    mta.send(Command::OptNeg(OptNeg {
        version: 2,
        actions: Actions(0x3f),
        protocol: ProtocolFlags(0),
    }))
    .await;
    let Response::OptNeg {
        version,
        actions,
        protocol,
        symlists,
    } = mta.recv().await
    else {
        panic!()
    };
    assert_eq!(version, 2);
    assert_eq!(actions.bits() & !0x3f, 0);
    assert_eq!(protocol, ProtocolFlags::NONE);
    assert!(symlists.is_empty());
    mta.connect("198.51.100.7").await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Helo("h".into())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Mail(vec!["<a@b>".into()])).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Rcpt(vec!["<c@d>".into()])).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Data).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.header("Subject", "no space").await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::EndOfHeaders).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Unknown(b"XYZZY".to_vec())).await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::EndOfMessage(b"b\r\n".to_vec())).await;
    let (m, fin) = mta.recv_eom().await;
    assert_eq!(fin, Response::Accept);
    assert_eq!(
        m,
        vec![Response::AddHeader {
            name: "X-MXGuard".into(),
            value: "scanned; queue=none; rcpts=1".into()
        }]
    );
    assert_eq!(h.seen()[0].message, b"Subject: no space\r\n\r\nb\r\n");
}

#[tokio::test]
async fn hooks_decide_at_connect_and_rcpt() {
    let h = TestHandler::new(Hooks {
        connect: true,
        rcpt: true,
        ..Hooks::default()
    });
    let (mut mta, _task) = Mta::start(h.clone(), cfg());
    let Response::OptNeg { protocol, .. } = mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await else {
        panic!()
    };
    assert!(!protocol.contains(ProtocolFlags::NR_CONN));
    assert!(!protocol.contains(ProtocolFlags::NR_RCPT));
    assert!(protocol.contains(ProtocolFlags::NR_HELO));
    mta.connect("192.0.2.66").await;
    assert_eq!(
        mta.recv().await,
        Response::ReplyCode(
            SmtpReply::new(554, Some("5.7.1"), "Client denied by test policy").unwrap()
        )
    );
    mta.send(Command::QuitNc).await;
    mta.connect("198.51.100.7").await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::Mail(vec!["<a@b>".into()])).await;
    mta.send(Command::Rcpt(vec!["<blocked@example.com>".into()]))
        .await;
    assert_eq!(
        mta.recv().await,
        Response::ReplyCode(
            SmtpReply::new(550, Some("5.1.1"), "Recipient blocked by test policy").unwrap()
        )
    );
    mta.send(Command::Rcpt(vec![
        "<ok@example.com>".into(),
        "NOTIFY=NEVER".into(),
    ]))
    .await;
    assert_eq!(mta.recv().await, Response::Continue);
    mta.send(Command::EndOfMessage(vec![])).await;
    assert_eq!(mta.recv_eom().await.1, Response::Accept);
    let seen = h.seen();
    assert_eq!(
        seen[0].ctx.recipients,
        vec![Recipient {
            address: "ok@example.com".into(),
            args: vec!["NOTIFY=NEVER".into()]
        }]
    );
}

#[tokio::test]
async fn an_mta_older_than_version_2_is_refused() {
    let h = TestHandler::new(Hooks::default());
    let (mut mta, task) = Mta::start(h, cfg());
    mta.send(Command::OptNeg(OptNeg {
        version: 1,
        actions: Actions(0xf),
        protocol: ProtocolFlags(0),
    }))
    .await;
    assert!(mta.closed().await);
    assert!(matches!(
        task.await.unwrap(),
        SessionEnd::Protocol(ProtocolError::UnsupportedVersion(1))
    ));
}

#[tokio::test]
async fn garbage_frames_close_the_connection() {
    use tokio::io::AsyncWriteExt;
    type Check = fn(&ProtocolError) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (vec![0x7f, 0xff, 0xff, 0xff, b'B'], |e| {
            matches!(e, ProtocolError::FrameTooLarge { .. })
        }),
        (vec![0, 0, 0, 0], |e| *e == ProtocolError::EmptyFrame),
        (vec![0, 0, 0, 1, b'z'], |e| {
            *e == ProtocolError::UnknownCommand(b'z')
        }),
        (vec![0, 0, 0, 3, b'H', b'x', b'y'], |e| {
            matches!(e, ProtocolError::Malformed { command: b'H', .. })
        }),
    ];
    for (bytes, check) in cases {
        let h = TestHandler::new(Hooks::default());
        let (mut mta, task) = Mta::start(h, cfg());
        mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await;
        mta.io.write_all(&bytes).await.unwrap();
        assert!(mta.closed().await);
        match task.await.unwrap() {
            SessionEnd::Protocol(e) => assert!(check(&e), "{bytes:?}: {e}"),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn too_many_recipients_is_a_protocol_error() {
    let h = TestHandler::new(Hooks::default());
    let (mut mta, task) = Mta::start(h, cfg());
    mta.negotiate(ALL_ACTIONS, ALL_PROTOCOL).await;
    mta.send(Command::Mail(vec!["<a@b>".into()])).await;
    let mut bytes = Vec::new();
    for i in 0..=MAX_RECIPIENTS {
        Command::Rcpt(vec![format!("<r{i}@example.com>")]).encode(&mut bytes);
    }
    use tokio::io::AsyncWriteExt;
    let _ = mta.io.write_all(&bytes).await;
    assert!(matches!(
        task.await.unwrap(),
        SessionEnd::Protocol(ProtocolError::TooMany("recipients"))
    ));
}

#[tokio::test]
async fn shutdown_ends_an_idle_session() {
    let h = TestHandler::new(Hooks::default());
    let (a, b) = tokio::io::duplex(4096);
    let token = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(Session::new(b, h, std::sync::Arc::new(cfg())).run(token.clone()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    token.cancel();
    assert!(matches!(task.await.unwrap(), SessionEnd::Shutdown));
    drop(a);
}
