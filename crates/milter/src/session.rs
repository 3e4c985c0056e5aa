//! One MTA connection: negotiation, then any number of SMTP clients
//! (CONNECT … QUIT_NC) and messages (MAIL … EOM/ABORT), until QUIT.
//!
//! The session is an explicit state held in [`Session`]: the negotiated
//! options, the [`MessageContext`] (connection, envelope, macros) and, during
//! a message, a [`MessageBuilder`] plus an optional decision taken before
//! end of message (a hook's answer or the size limit). A decided message
//! keeps answering that decision to every later command that expects a
//! reply, so the MTA can never read an accept for it.

use crate::codec::{encode_frame, Command, FrameDecoder, ProtocolError, Response};
use crate::config::{FailurePolicy, OversizePolicy, SessionConfig};
use crate::consts::*;
use crate::handler::*;
use crate::message::{size_hint, MessageBuilder};
use crate::negotiate::{negotiate, Negotiated};
use crate::reply::SmtpReply;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Queued output is written once it passes this size (body replacements).
const WRITE_BATCH: usize = 256 * 1024;

/// How a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// The MTA sent QUIT.
    Quit,
    /// The MTA closed the connection.
    PeerClosed,
    /// The MTA said nothing for `read_timeout`, or did not read our replies.
    Timeout,
    /// The server is shutting down.
    Shutdown,
    /// The MTA broke the protocol; the connection was closed (the MTA then
    /// applies its own default action, e.g. Postfix's `milter_default_action`).
    Protocol(ProtocolError),
    /// The socket failed.
    Io(std::io::Error),
}

/// The state of the message being received.
struct MessageState {
    builder: MessageBuilder,
    /// Decided before end of message: answered to every later command.
    decided: Option<Decision>,
}

/// One MTA connection over `S`.
pub struct Session<S, H> {
    stream: S,
    handler: Arc<H>,
    cfg: Arc<SessionConfig>,
    hooks: Hooks,
    decoder: FrameDecoder,
    neg: Negotiated,
    ctx: MessageContext,
    msg: Option<MessageState>,
    rbuf: Vec<u8>,
    out: Vec<u8>,
}

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MilterHandler,
{
    pub fn new(stream: S, handler: Arc<H>, cfg: Arc<SessionConfig>) -> Session<S, H> {
        let hooks = handler.hooks();
        Session {
            stream,
            decoder: FrameDecoder::new(cfg.max_frame),
            handler,
            hooks,
            cfg,
            neg: Negotiated::unnegotiated(),
            ctx: MessageContext::default(),
            msg: None,
            rbuf: vec![0; READ_CHUNK],
            out: Vec::new(),
        }
    }

    /// Runs until QUIT, the peer closes, an error, or `shutdown` (checked
    /// while waiting for the MTA; a message in progress then gets the MTA's
    /// default action).
    pub async fn run(mut self, shutdown: CancellationToken) -> SessionEnd {
        loop {
            loop {
                let frame = match self.decoder.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return SessionEnd::Protocol(e),
                };
                let command = match Command::from_frame(frame) {
                    Ok(c) => c,
                    Err(e) => return SessionEnd::Protocol(e),
                };
                match self.handle(command).await {
                    Ok(true) => {}
                    Ok(false) => return SessionEnd::Quit,
                    Err(end) => return end,
                }
            }
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return SessionEnd::Shutdown,
                r = tokio::time::timeout(self.cfg.read_timeout, self.stream.read(&mut self.rbuf)) => r,
            };
            match read {
                Err(_) => return SessionEnd::Timeout,
                Ok(Ok(0)) => return SessionEnd::PeerClosed,
                Ok(Ok(n)) => self.decoder.feed(&self.rbuf[..n]),
                Ok(Err(e)) => return SessionEnd::Io(e),
            }
        }
    }

    /// Handles one command; `Ok(false)` on QUIT.
    async fn handle(&mut self, command: Command) -> Result<bool, SessionEnd> {
        match command {
            Command::OptNeg(offer) => {
                let mut want = self.cfg.options.clone();
                for (hook, flag) in [
                    (self.hooks.connect, ProtocolFlags::NR_CONN),
                    (self.hooks.helo, ProtocolFlags::NR_HELO),
                    (self.hooks.mail, ProtocolFlags::NR_MAIL),
                    (self.hooks.rcpt, ProtocolFlags::NR_RCPT),
                ] {
                    if !hook {
                        want.protocol |= flag;
                    }
                }
                self.neg = negotiate(&offer, &want).map_err(|e| {
                    tracing::warn!("milter: negotiation refused: {e}");
                    SessionEnd::Protocol(e)
                })?;
                tracing::debug!(
                    version = self.neg.version,
                    actions = ?self.neg.actions,
                    protocol = ?self.neg.protocol,
                    "milter: negotiated"
                );
                let r = self.neg.response();
                self.send(&r).await?;
            }
            Command::Macro { stage, macros } => match MacroStage::for_command(stage) {
                Some(s) => self.ctx.macros.set_stage(s, macros),
                None => tracing::debug!(stage, "milter: macros for an unknown stage ignored"),
            },
            Command::Connect {
                hostname,
                family,
                port,
                address,
            } => {
                self.reset_envelope();
                self.ctx.macros.clear_from(MacroStage::Helo);
                self.ctx.connection = ConnectionInfo {
                    hostname,
                    address: ClientAddress::from_connect(family, port, &address),
                    helo: None,
                };
                let d = if self.hooks.connect {
                    self.handler.connect(&self.ctx).await
                } else {
                    Decision::Continue
                };
                self.answer(cmd::CONNECT, connection_level(d)).await?;
            }
            Command::Helo(name) => {
                self.reset_envelope();
                self.ctx.macros.clear_from(MacroStage::Mail);
                self.ctx.connection.helo = Some(name);
                let d = if self.hooks.helo {
                    self.handler.helo(&self.ctx).await
                } else {
                    Decision::Continue
                };
                self.answer(cmd::HELO, connection_level(d)).await?;
            }
            Command::Mail(mut args) => {
                self.reset_envelope();
                self.ctx.macros.clear_from(MacroStage::Rcpt);
                let sender = strip_brackets(&first(&mut args));
                self.ctx.sender = Some(sender);
                self.ctx.sender_args = args;
                self.message();
                let d = if self.hooks.mail {
                    self.handler.mail_from(&self.ctx).await
                } else {
                    Decision::Continue
                };
                if d != Decision::Continue {
                    self.message().decided = Some(d.clone());
                }
                self.answer(cmd::MAIL, d).await?;
            }
            Command::Rcpt(mut args) => {
                if self.ctx.recipients.len() >= MAX_RECIPIENTS {
                    return Err(SessionEnd::Protocol(ProtocolError::TooMany("recipients")));
                }
                let rcpt = Recipient {
                    address: strip_brackets(&first(&mut args)),
                    args,
                };
                if let Some(d) = self.message().decided.clone() {
                    // The message is decided: keep saying so.
                    return self.answer(cmd::RCPT, d).await.map(|_| true);
                }
                let d = if self.hooks.rcpt {
                    self.handler.rcpt(&self.ctx, &rcpt).await
                } else {
                    Decision::Continue
                };
                match &d {
                    Decision::Continue => self.ctx.recipients.push(rcpt),
                    Decision::Accept | Decision::Discard => {
                        self.ctx.recipients.push(rcpt);
                        self.message().decided = Some(d.clone());
                    }
                    // Only this recipient is refused.
                    Decision::Reject(_) | Decision::TempFail(_) => {}
                }
                self.answer(cmd::RCPT, d).await?;
            }
            Command::Data => {
                let d = self.message().decided.clone().unwrap_or(Decision::Continue);
                self.answer(cmd::DATA, d).await?;
            }
            Command::Header { name, value } => {
                let d = self.feed(|b| b.header(&name, &value));
                self.answer(cmd::HEADER, d).await?;
            }
            Command::EndOfHeaders => {
                let d = self.feed(|b| b.end_of_headers());
                self.answer(cmd::EOH, d).await?;
            }
            Command::Body(chunk) => {
                let d = self.feed(|b| b.body(&chunk));
                self.answer(cmd::BODY, d).await?;
            }
            Command::EndOfMessage(chunk) => {
                if !chunk.is_empty() {
                    self.feed(|b| b.body(&chunk));
                }
                let result = self.end_of_message().await;
                self.reset_envelope();
                self.ctx.macros.clear_from(MacroStage::Mail);
                result?;
            }
            Command::Abort => {
                tracing::debug!(queue_id = self.ctx.queue_id(), "milter: message aborted");
                self.reset_envelope();
                self.ctx.macros.clear_from(MacroStage::Mail);
            }
            Command::Quit => return Ok(false),
            Command::QuitNc => {
                self.reset_envelope();
                self.ctx = MessageContext::default();
            }
            Command::Unknown(_) => self.answer(cmd::UNKNOWN, Decision::Continue).await?,
        }
        Ok(true)
    }

    /// The current message, created on first use (an MTA that skips MAIL
    /// still gets its headers and body collected).
    fn message(&mut self) -> &mut MessageState {
        let (cfg, neg, args) = (&self.cfg, &self.neg, &self.ctx.sender_args);
        self.msg.get_or_insert_with(|| new_message(cfg, neg, args))
    }

    fn new_message(&self) -> MessageState {
        new_message(&self.cfg, &self.neg, &self.ctx.sender_args)
    }

    /// Adds data to the message unless it is decided; returns the decision
    /// to answer (the size limit's once passed).
    fn feed(
        &mut self,
        f: impl FnOnce(&mut MessageBuilder) -> Result<(), crate::message::Oversize>,
    ) -> Decision {
        let policy = self.cfg.on_oversize;
        let limit = self.cfg.max_message_size;
        let queue_id = self.ctx.queue_id().map(str::to_owned);
        let m = self.message();
        if let Some(d) = &m.decided {
            return d.clone();
        }
        if f(&mut m.builder).is_err() {
            tracing::info!(queue_id, limit, "milter: message over the size limit");
            let d = oversize_decision(policy);
            m.decided = Some(d.clone());
            return d;
        }
        Decision::Continue
    }

    fn reset_envelope(&mut self) {
        self.msg = None;
        self.ctx.sender = None;
        self.ctx.sender_args.clear();
        self.ctx.recipients.clear();
    }

    /// End of message: the early decision, or the handler's answer (with its
    /// modifications), or the failure policy.
    async fn end_of_message(&mut self) -> Result<(), SessionEnd> {
        let state = match self.msg.take() {
            Some(s) => s,
            None => self.new_message(),
        };
        if let Some(d) = state.decided {
            tracing::debug!(queue_id = self.ctx.queue_id(), decision = ?d, "milter: decided before end of message");
            return self.send(&decision_response(&d)).await;
        }
        let message = match state.builder.finish() {
            Ok(m) => m,
            Err(_) => {
                let d = oversize_decision(self.cfg.on_oversize);
                return self.send(&decision_response(&d)).await;
            }
        };
        let outcome = self.call_end_of_message(message).await?;
        match outcome {
            Ok(eom) => self.apply(eom).await,
            Err(reason) => {
                tracing::warn!(
                    queue_id = self.ctx.queue_id(),
                    policy = ?self.cfg.on_failure,
                    "milter: no verdict ({reason}); answering per on_failure"
                );
                let r = match self.cfg.on_failure {
                    FailurePolicy::Tempfail => failure_reply(),
                    FailurePolicy::Accept => Response::Accept,
                };
                self.send(&r).await
            }
        }
    }

    /// Runs the handler under `handler_timeout`, sending progress replies
    /// meanwhile. The inner `Err` says why there is no verdict (error,
    /// panic, timeout); the outer one is a dead socket.
    async fn call_end_of_message(
        &mut self,
        message: Vec<u8>,
    ) -> Result<Result<EomResult, String>, SessionEnd> {
        let handler = self.handler.clone();
        let timeout = self.cfg.handler_timeout;
        let every = self.cfg.progress_interval;
        let write_timeout = self.cfg.read_timeout;
        let mut fut = CatchUnwind(Box::pin(handler.end_of_message(&self.ctx, message)));
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut progress = Vec::new();
        Response::Progress.encode(&mut progress);
        let stream = &mut self.stream;
        loop {
            tokio::select! {
                r = &mut fut => {
                    return Ok(match r {
                        Ok(Ok(eom)) => Ok(eom),
                        Ok(Err(e)) => Err(format!("handler error: {e}")),
                        Err(()) => Err("handler panicked".to_string()),
                    });
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(Err(format!("no answer within {} s", timeout.as_secs_f64())));
                }
                _ = ticker.tick() => {
                    write_all(stream, &progress, write_timeout).await?;
                }
            }
        }
    }

    /// Sends the modifications (if the decision lets the message through
    /// and every one was negotiated) and the final reply.
    async fn apply(&mut self, eom: EomResult) -> Result<(), SessionEnd> {
        let queue_id = self.ctx.queue_id().map(str::to_owned);
        match &eom.decision {
            Decision::Continue | Decision::Accept => {}
            d => {
                if !eom.modifications.is_empty() {
                    tracing::debug!(
                        queue_id,
                        "milter: {} modification(s) not sent: the message is not accepted",
                        eom.modifications.len()
                    );
                }
                tracing::info!(queue_id, decision = ?d, "milter: message refused");
                return self.send(&decision_response(d)).await;
            }
        }
        let granted = self.neg.actions;
        if let Some(m) = eom
            .modifications
            .iter()
            .find(|m| !granted.contains(m.required_action()))
        {
            tracing::error!(
                queue_id,
                needed = ?m.required_action(),
                granted = ?granted,
                "milter: the handler asked for a modification the MTA did not allow; answering tempfail instead of accepting an unmodified message"
            );
            return self.send(&failure_reply()).await;
        }
        let leadspc = self.neg.protocol.contains(ProtocolFlags::HDR_LEADSPC);
        let hv = |v: String| {
            if leadspc && !v.is_empty() && !v.starts_with([' ', '\t']) {
                format!(" {v}")
            } else {
                v
            }
        };
        self.out.clear();
        for m in eom.modifications {
            let r = match m {
                Modification::AddHeader { name, value } => Response::AddHeader {
                    name,
                    value: hv(value),
                },
                Modification::InsertHeader { index, name, value } => Response::InsertHeader {
                    index,
                    name,
                    value: hv(value),
                },
                Modification::ChangeHeader { name, index, value } => Response::ChangeHeader {
                    index,
                    name,
                    value: hv(value),
                },
                Modification::DeleteHeader { name, index } => Response::ChangeHeader {
                    index,
                    name,
                    value: String::new(),
                },
                Modification::AddRecipient {
                    address,
                    args: None,
                } => Response::AddRcpt(address),
                Modification::AddRecipient {
                    address,
                    args: Some(args),
                } => Response::AddRcptPar {
                    rcpt: address,
                    args,
                },
                Modification::DeleteRecipient(a) => Response::DelRcpt(a),
                Modification::ChangeFrom { address, args } => Response::ChangeFrom {
                    from: address,
                    args,
                },
                Modification::Quarantine(reason) => Response::Quarantine(reason),
                Modification::ReplaceBody(body) => {
                    if body.is_empty() {
                        encode_frame(resp::REPLBODY, &[], &mut self.out);
                    }
                    for chunk in body.chunks(MAX_BODY_CHUNK) {
                        encode_frame(resp::REPLBODY, chunk, &mut self.out);
                        if self.out.len() >= WRITE_BATCH {
                            self.flush_out().await?;
                        }
                    }
                    continue;
                }
            };
            r.encode(&mut self.out);
            if self.out.len() >= WRITE_BATCH {
                self.flush_out().await?;
            }
        }
        tracing::debug!(queue_id, decision = ?eom.decision, "milter: message accepted");
        decision_response(&eom.decision).encode(&mut self.out);
        self.flush_out().await
    }

    /// Answers `command` with `d` if the MTA waits for an answer to it.
    async fn answer(&mut self, command: u8, d: Decision) -> Result<(), SessionEnd> {
        if !self.neg.expects_reply(command) {
            return Ok(());
        }
        self.send(&decision_response(&d)).await
    }

    async fn send(&mut self, r: &Response) -> Result<(), SessionEnd> {
        self.out.clear();
        r.encode(&mut self.out);
        self.flush_out().await
    }

    async fn flush_out(&mut self) -> Result<(), SessionEnd> {
        let res = write_all(&mut self.stream, &self.out, self.cfg.read_timeout).await;
        self.out.clear();
        res
    }
}

fn new_message(cfg: &SessionConfig, neg: &Negotiated, sender_args: &[String]) -> MessageState {
    let leadspc = neg.protocol.contains(ProtocolFlags::HDR_LEADSPC);
    MessageState {
        builder: MessageBuilder::new(cfg.max_message_size, leadspc, size_hint(sender_args)),
        decided: None,
    }
}

async fn write_all<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    timeout: std::time::Duration,
) -> Result<(), SessionEnd> {
    let w = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeout, w).await {
        Err(_) => Err(SessionEnd::Timeout),
        Ok(Err(e)) => Err(SessionEnd::Io(e)),
        Ok(Ok(())) => Ok(()),
    }
}

/// Turns a panic inside the handler's future into `Err(())`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Takes the first argument out (the decoder guarantees there is one).
fn first(args: &mut Vec<String>) -> String {
    if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    }
}

/// `<a@b>` → `a@b`; `<>` → empty.
fn strip_brackets(s: &str) -> String {
    let t = s.trim();
    t.strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(t)
        .to_string()
}

/// There is no message to discard at CONNECT and HELO: refuse instead.
fn connection_level(d: Decision) -> Decision {
    if d == Decision::Discard {
        tracing::warn!("milter: discard asked for before MAIL; rejecting instead");
        Decision::Reject(None)
    } else {
        d
    }
}

/// The reply for a decision. A reply whose class contradicts the decision
/// never makes it more permanent: a 4xx given with `Reject` is sent as the
/// 4xx; a 5xx given with `TempFail` becomes the MTA's default 4xx.
pub fn decision_response(d: &Decision) -> Response {
    match d {
        Decision::Continue => Response::Continue,
        Decision::Accept => Response::Accept,
        Decision::Reject(None) => Response::Reject,
        Decision::Reject(Some(r)) => Response::ReplyCode(r.clone()),
        Decision::TempFail(None) => Response::TempFail,
        Decision::TempFail(Some(r)) if r.is_temporary() => Response::ReplyCode(r.clone()),
        Decision::TempFail(Some(r)) => {
            tracing::warn!(reply = %r, "milter: tempfail with a 5xx reply; sending the default 4xx");
            Response::TempFail
        }
        Decision::Discard => Response::Discard,
    }
}

/// The answer when the handler has no verdict and the policy is tempfail.
fn failure_reply() -> Response {
    match SmtpReply::tempfail(
        "4.3.0",
        "Content filter temporarily unavailable, try again later",
    ) {
        Ok(r) => Response::ReplyCode(r),
        Err(_) => Response::TempFail,
    }
}

fn oversize_decision(policy: OversizePolicy) -> Decision {
    match policy {
        OversizePolicy::Tempfail => Decision::TempFail(
            SmtpReply::new(452, Some("4.3.4"), "Message too big for the content filter").ok(),
        ),
        OversizePolicy::Reject => Decision::Reject(
            SmtpReply::new(
                552,
                Some("5.3.4"),
                "Message size exceeds fixed maximum message size",
            )
            .ok(),
        ),
    }
}
