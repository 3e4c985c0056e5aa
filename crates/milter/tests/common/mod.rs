//! Shared by the integration tests: a handler that does real things, keyed
//! on markers in the message, and a scripted MTA over an in-memory stream.
#![allow(dead_code)]

use mxguard_milter::codec::{Command, Family, FrameDecoder, OptNeg, Response};
use mxguard_milter::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// What the test handler saw at end of message.
#[derive(Debug, Clone)]
pub struct Seen {
    pub ctx: MessageContext,
    pub message: Vec<u8>,
}

/// Decides by markers in the message:
/// - `REJECT-ME` → 550 5.7.1 with a `%` in the text (escaping), two lines
/// - `TEMPFAIL-ME` → 451 4.7.1
/// - `DISCARD-ME` → discard
/// - `QUARANTINE-ME` → quarantine + accept
/// - `REPLACE-BODY` → body replaced by `CLEANED_BODY` + header `X-MXGuard-Cleaned`
/// - `BIG-BODY` → body replaced by [`big_body`] (150,000 bytes)
/// - `RCPT-CHANGE` → add `added@example.com`, add `par@example.com` with
///   `NOTIFY=NEVER`, delete `<drop@example.com>`, change sender
/// - `HEADER-EDIT` → change the 1st Subject, delete the 2nd `X-Old`, insert
///   `X-First` at 0
/// - `HANDLER-ERROR` / `HANDLER-PANIC` / `HANDLER-SLOW` → error / panic / sleeps an hour
/// - anything else: `X-MXGuard: scanned; queue=<i>; rcpts=<n>` added, accept.
///
/// Hooks: connect refuses 192.0.2.66 (554 5.7.1), RCPT refuses
/// `blocked@example.com` (550 5.1.1), when `hooks` says so.
pub struct TestHandler {
    pub hooks: Hooks,
    pub seen: Mutex<Vec<Seen>>,
}

pub const CLEANED_BODY: &[u8] = b"The original body was removed: 100% clean now.\r\n";

impl TestHandler {
    pub fn new(hooks: Hooks) -> Arc<TestHandler> {
        Arc::new(TestHandler {
            hooks,
            seen: Mutex::new(Vec::new()),
        })
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn contains(h: &[u8], n: &str) -> bool {
    h.windows(n.len()).any(|w| w == n.as_bytes())
}

impl MilterHandler for TestHandler {
    fn hooks(&self) -> Hooks {
        self.hooks
    }

    async fn connect(&self, ctx: &MessageContext) -> Decision {
        if ctx.client_ip() == Some("192.0.2.66".parse().unwrap()) {
            Decision::Reject(
                SmtpReply::new(554, Some("5.7.1"), "Client denied by test policy").ok(),
            )
        } else {
            Decision::Continue
        }
    }

    async fn rcpt(&self, _ctx: &MessageContext, rcpt: &Recipient) -> Decision {
        if rcpt.address == "blocked@example.com" {
            Decision::Reject(
                SmtpReply::new(550, Some("5.1.1"), "Recipient blocked by test policy").ok(),
            )
        } else {
            Decision::Continue
        }
    }

    async fn end_of_message(
        &self,
        ctx: &MessageContext,
        message: Vec<u8>,
    ) -> Result<EomResult, HandlerError> {
        self.seen.lock().unwrap().push(Seen {
            ctx: ctx.clone(),
            message: message.clone(),
        });
        let m = &message;
        if contains(m, "HANDLER-ERROR") {
            return Err(HandlerError::new("engine unavailable"));
        }
        if contains(m, "HANDLER-PANIC") {
            panic!("test handler panics on purpose");
        }
        if contains(m, "HANDLER-SLOW") {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if contains(m, "REJECT-ME") {
            return Ok(EomResult::decide(Decision::Reject(Some(
                SmtpReply::new(
                    550,
                    Some("5.7.1"),
                    "Message rejected: 100% test marker\nContact postmaster",
                )
                .unwrap(),
            )))
            // Modifications with a reject are not sent.
            .with(Modification::AddHeader {
                name: "X-Never".into(),
                value: "sent".into(),
            }));
        }
        if contains(m, "TEMPFAIL-ME") {
            return Ok(EomResult::decide(Decision::TempFail(Some(
                SmtpReply::tempfail("4.7.1", "Try again later").unwrap(),
            ))));
        }
        if contains(m, "DISCARD-ME") {
            return Ok(EomResult::decide(Decision::Discard));
        }
        if contains(m, "QUARANTINE-ME") {
            return Ok(
                EomResult::accept().with(Modification::Quarantine("test marker found".into()))
            );
        }
        if contains(m, "REPLACE-BODY") {
            return Ok(EomResult::accept()
                .with(Modification::AddHeader {
                    name: "X-MXGuard-Cleaned".into(),
                    value: "yes".into(),
                })
                .with(Modification::ReplaceBody(CLEANED_BODY.to_vec())));
        }
        if contains(m, "BIG-BODY") {
            return Ok(EomResult::accept().with(Modification::ReplaceBody(big_body())));
        }
        if contains(m, "RCPT-CHANGE") {
            return Ok(EomResult::accept()
                .with(Modification::AddRecipient {
                    address: "<added@example.com>".into(),
                    args: None,
                })
                .with(Modification::AddRecipient {
                    address: "<par@example.com>".into(),
                    args: Some("NOTIFY=NEVER".into()),
                })
                .with(Modification::DeleteRecipient("<drop@example.com>".into()))
                .with(Modification::ChangeFrom {
                    address: "<bounces@example.com>".into(),
                    args: None,
                }));
        }
        if contains(m, "HEADER-EDIT") {
            return Ok(EomResult::accept()
                .with(Modification::ChangeHeader {
                    name: "Subject".into(),
                    index: 1,
                    value: "[scanned] edited".into(),
                })
                .with(Modification::DeleteHeader {
                    name: "X-Old".into(),
                    index: 2,
                })
                .with(Modification::InsertHeader {
                    index: 0,
                    name: "X-First".into(),
                    value: "1".into(),
                }));
        }
        Ok(EomResult::accept().with(Modification::AddHeader {
            name: "X-MXGuard".into(),
            value: format!(
                "scanned; queue={}; rcpts={}",
                ctx.queue_id().unwrap_or("none"),
                ctx.recipients.len()
            ),
        }))
    }
}

/// The `BIG-BODY` replacement: 150,000 bytes in lines of 78 letters + CRLF.
pub fn big_body() -> Vec<u8> {
    (0..150_000u32)
        .map(|i| match i % 80 {
            78 => b'\r',
            79 => b'\n',
            n => b'a' + ((i / 80 + n) % 26) as u8,
        })
        .collect()
}

/// Plays the MTA over an in-memory stream.
pub struct Mta {
    pub io: DuplexStream,
    dec: FrameDecoder,
}

pub const ALL_ACTIONS: u32 = 0x1ff;
pub const ALL_PROTOCOL: u32 = 0x1fffff;

impl Mta {
    /// Starts a session on one end of a duplex pipe; returns the MTA end
    /// and the session's task.
    pub fn start<H: MilterHandler>(
        handler: Arc<H>,
        cfg: SessionConfig,
    ) -> (Mta, tokio::task::JoinHandle<SessionEnd>) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let s = Session::new(b, handler, Arc::new(cfg));
        let task = tokio::spawn(s.run(tokio_util::sync::CancellationToken::new()));
        (
            Mta {
                io: a,
                dec: FrameDecoder::new(1 << 20),
            },
            task,
        )
    }

    pub async fn send(&mut self, c: Command) {
        let mut out = Vec::new();
        c.encode(&mut out);
        self.io.write_all(&out).await.unwrap();
    }

    /// The next response (panics after 120 s of silence, in test time).
    pub async fn recv(&mut self) -> Response {
        loop {
            if let Some(f) = self.dec.next_frame().unwrap() {
                return Response::decode(f.command, &f.data).unwrap();
            }
            let mut buf = [0u8; 8192];
            let n = tokio::time::timeout(Duration::from_secs(120), self.io.read(&mut buf))
                .await
                .expect("no reply from the filter")
                .unwrap();
            assert!(n > 0, "filter closed the connection");
            self.dec.feed(&buf[..n]);
        }
    }

    /// Responses until a final one (accept/continue/reject/tempfail/discard/replycode).
    pub async fn recv_eom(&mut self) -> (Vec<Response>, Response) {
        let mut mods = Vec::new();
        loop {
            let r = self.recv().await;
            match r {
                Response::Accept
                | Response::Continue
                | Response::Reject
                | Response::TempFail
                | Response::Discard
                | Response::ReplyCode(_) => return (mods, r),
                Response::Progress => {}
                m => mods.push(m),
            }
        }
    }

    pub async fn negotiate(&mut self, actions: u32, protocol: u32) -> Response {
        self.send(Command::OptNeg(OptNeg {
            version: 6,
            actions: Actions(actions),
            protocol: ProtocolFlags(protocol),
        }))
        .await;
        self.recv().await
    }

    pub async fn connect(&mut self, ip: &str) {
        self.send(Command::Connect {
            hostname: "client.example".into(),
            family: Family::Inet,
            port: 40000,
            address: ip.into(),
        })
        .await;
    }

    pub async fn header(&mut self, name: &str, value: &str) {
        self.send(Command::Header {
            name: name.into(),
            value: value.as_bytes().to_vec(),
        })
        .await;
    }

    /// Whether the filter closed its end (reads until EOF or 1 s).
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), self.io.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}
