//! The milter front-end: Postfix or Sendmail hands each message over at end
//! of data; the gateway's pipeline ([`GatewayInner::evaluate`]) decides, and
//! the decision goes back as milter actions.
//!
//! | pipeline | milter |
//! |---|---|
//! | deliver (clean, tagged, cleaned, stamped) | accept + the header and body modifications that turn the MTA's copy into ours |
//! | reject | reject with our 554 text |
//! | quarantine (the copy is durable in the store) | discard, or with `hold_quarantined`, accept + hold in the MTA (`postsuper -H` releases it there) |
//! | drop | discard |
//! | tempfail (store or event log unavailable) | tempfail with our 451 text |
//!
//! The MTA's own failure handling covers everything else: a scan that takes
//! longer than `handler_timeout_secs`, or a panic, is answered per
//! `on_failure` (tempfail by default).

use mxguard_milter::{
    Decision, EomResult, HandlerError, MessageContext, MilterHandler, Modification, SmtpReply,
};
use mxguard_smtp::pipeline::{Disposition, Evaluation, GatewayInner, MessageMeta, RcptChange};
use mxguard_smtp::proto::Reply;
use mxguard_smtp::relay::RelayPolicy;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The gateway behind a milter listener.
pub struct MilterGateway {
    pub inner: Arc<GatewayInner>,
    /// Whose stamps and release tokens count (`smtp.trusted_networks`).
    pub relay: RelayPolicy,
    pub hold_quarantined: bool,
}

/// Our reply as a milter reply (text lines kept; a malformed one becomes the
/// generic reply of its class rather than an error).
fn smtp_reply(r: &Reply) -> Option<SmtpReply> {
    SmtpReply::new(r.code, r.status, &r.lines.join("\n")).ok()
}

impl MilterGateway {
    /// The whole end of message, on a blocking thread.
    fn eom(&self, ctx: &MessageContext, message: Vec<u8>) -> EomResult {
        let start = Instant::now();
        let inner = &self.inner;
        inner.stats.messages.fetch_add(1, Ordering::Relaxed);
        let client = ctx.client_ip();
        let meta = MessageMeta {
            id: mxguard_smtp::spool::new_queue_id(),
            client_ip: client.map(|ip| ip.to_string()).unwrap_or_default(),
            helo: ctx.connection.helo.clone().unwrap_or_default(),
            mail_from: ctx.sender.clone().unwrap_or_default(),
            rcpts: ctx.recipients.iter().map(|r| r.address.clone()).collect(),
            trusted: client.is_some_and(|ip| self.relay.is_trusted(ip)),
            subject: inner.subject_for_notices(&message),
        };
        let size = message.len();
        let permit = match inner.reserve_event(&meta, size) {
            Ok(p) => p,
            Err(reply) => return EomResult::decide(Decision::TempFail(smtp_reply(&reply))),
        };
        tracing::debug!(id = %meta.id, mta_queue_id = ctx.queue_id().unwrap_or(""), "milter: end of message");
        let message_id = mxguard_smtp::quarantine::message_id(&message);
        let Evaluation { branches } = inner.evaluate(&meta, message.clone());
        // The MTA keeps one message: the first branch to deliver (if any)
        // becomes it; the recipients of the other branches are removed from
        // it, and their own copies go out through our queue.
        let main = branches
            .iter()
            .position(|b| matches!(b.disposition, Disposition::Deliver { .. }))
            .unwrap_or(0);
        let split = branches.len() > 1;
        let mut events = Vec::with_capacity(branches.len());
        let mut result = None;
        let mut code = 250;
        let mut failed = None;
        for (i, b) in branches.into_iter().enumerate() {
            let mut outcome = b.outcome;
            if i != main {
                if let Disposition::Deliver {
                    message: copy,
                    verdict,
                    rcpts,
                } = b.disposition
                {
                    if let Err(e) =
                        inner.enqueue_copy(&b.id, &meta, &b.rcpts, &copy, &verdict, &rcpts)
                    {
                        // Nothing is answered yet: the MTA retries the whole message.
                        outcome.action = "tempfail";
                        let r = inner.tempfail_reply(&b.id, "spool write failed", e);
                        failed = Some((
                            EomResult::decide(Decision::TempFail(smtp_reply(&r))),
                            r.code,
                        ));
                    } else {
                        inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                events.push((b.id, b.rcpts, outcome));
                continue;
            }
            let (eom, c) = match b.disposition {
                Disposition::Deliver {
                    message: after,
                    rcpts,
                    ..
                } => {
                    inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    let mut mods = mxguard_milter::diff::modifications(&message, &after);
                    if split {
                        for r in meta.rcpts.iter().filter(|r| !b.rcpts.contains(r)) {
                            mods.push(Modification::DeleteRecipient(format!("<{r}>")));
                        }
                    }
                    match rcpts {
                        RcptChange::Same => {}
                        RcptChange::Redirect(to) => {
                            for r in &b.rcpts {
                                mods.push(Modification::DeleteRecipient(format!("<{r}>")));
                            }
                            mods.push(Modification::AddRecipient {
                                address: format!("<{to}>"),
                                args: None,
                            });
                        }
                        RcptChange::Bcc(to) => {
                            for t in to {
                                mods.push(Modification::AddRecipient {
                                    address: format!("<{t}>"),
                                    args: None,
                                });
                            }
                        }
                    }
                    (
                        EomResult {
                            modifications: mods,
                            decision: Decision::Accept,
                        },
                        250,
                    )
                }
                Disposition::Reject(r) => {
                    (EomResult::decide(Decision::Reject(smtp_reply(&r))), r.code)
                }
                Disposition::TempFail(r) => (
                    EomResult::decide(Decision::TempFail(smtp_reply(&r))),
                    r.code,
                ),
                Disposition::Quarantined if self.hold_quarantined => (
                    EomResult::accept().with(Modification::Quarantine(format!(
                        "mxguard quarantine {}",
                        b.id
                    ))),
                    250,
                ),
                Disposition::Quarantined | Disposition::Dropped => {
                    (EomResult::decide(Decision::Discard), 250)
                }
            };
            if result.is_none() {
                result = Some(eom);
                code = c;
            }
            events.push((b.id, b.rcpts, outcome));
        }
        if let Some((e, c)) = failed {
            result = Some(e);
            code = c;
        }
        let eom = result.unwrap_or_else(|| EomResult::decide(Decision::Discard));
        let mut permit = Some(permit);
        for (id, rcpts, outcome) in events {
            let bmeta = MessageMeta {
                id,
                rcpts,
                ..meta.clone()
            };
            inner.finish(
                permit.take(),
                &bmeta,
                size,
                message_id.clone(),
                &outcome,
                code,
                false,
                start.elapsed(),
            );
        }
        eom
    }
}

/// Shares one [`MilterGateway`] between listeners.
#[derive(Clone)]
pub struct SharedMilter(pub Arc<MilterGateway>);

impl MilterHandler for SharedMilter {
    async fn end_of_message(
        &self,
        ctx: &MessageContext,
        message: Vec<u8>,
    ) -> Result<EomResult, HandlerError> {
        let this = self.0.clone();
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || this.eom(&ctx, message))
            .await
            .map_err(|e| HandlerError::new(format!("milter scan task failed: {e}")))
    }
}
