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
        let Evaluation {
            disposition,
            outcome,
        } = inner.evaluate(&meta, message.clone());
        let (eom, code) = match disposition {
            Disposition::Deliver {
                message: after,
                rcpts,
                ..
            } => {
                inner.stats.accepted.fetch_add(1, Ordering::Relaxed);
                let mut mods = mxguard_milter::diff::modifications(&message, &after);
                match rcpts {
                    RcptChange::Same => {}
                    RcptChange::Redirect(to) => {
                        for r in &meta.rcpts {
                            mods.push(Modification::DeleteRecipient(format!("<{r}>")));
                        }
                        mods.push(Modification::AddRecipient {
                            address: format!("<{to}>"),
                            args: None,
                        });
                    }
                    RcptChange::Bcc(to) => mods.push(Modification::AddRecipient {
                        address: format!("<{to}>"),
                        args: None,
                    }),
                }
                (
                    EomResult {
                        modifications: mods,
                        decision: Decision::Accept,
                    },
                    250,
                )
            }
            Disposition::Reject(r) => (EomResult::decide(Decision::Reject(smtp_reply(&r))), r.code),
            Disposition::TempFail(r) => (
                EomResult::decide(Decision::TempFail(smtp_reply(&r))),
                r.code,
            ),
            Disposition::Quarantined if self.hold_quarantined => (
                EomResult::accept().with(Modification::Quarantine(format!(
                    "mxguard quarantine {}",
                    meta.id
                ))),
                250,
            ),
            Disposition::Quarantined | Disposition::Dropped => {
                (EomResult::decide(Decision::Discard), 250)
            }
        };
        inner.finish(
            permit,
            &meta,
            size,
            message_id,
            &outcome,
            code,
            false,
            start.elapsed(),
        );
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
