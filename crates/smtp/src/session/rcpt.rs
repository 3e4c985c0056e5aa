//! RCPT TO: relay control and recipient limits.

use super::{Handler, Recipient, Session, Step};
use crate::proto::{Address, RcptParams, Reply};
use crate::relay::RcptDecision;
use tokio::io::{AsyncRead, AsyncWrite};

impl<T: AsyncRead + AsyncWrite + Unpin + Send, H: Handler> Session<T, H> {
    pub(super) fn rcpt(&mut self, to: Address, params: RcptParams) -> Step {
        if self.env.mail_from.is_none() {
            return self.error(Reply::new(503, Some("5.5.1"), "Send MAIL first"));
        }
        if self.env.rcpts.len() >= self.cfg.max_recipients {
            // 452 is not an error of the client: RFC 5321 §4.5.3.1.10.
            self.reply(Reply::new(452, Some("4.5.3"), "Too many recipients"));
            return Step::Continue;
        }
        let decision = self.cfg.relay.rcpt(self.info.ip(), &to.domain);
        match decision {
            RcptDecision::Denied => {
                tracing::info!(peer = %self.info.peer, rcpt = %to, "relay denied");
                return self.error(Reply::new(
                    550,
                    Some("5.7.1"),
                    format!("<{to}>: Relaying denied"),
                ));
            }
            RcptDecision::Relay if !self.cfg.can_relay => {
                return self.error(Reply::new(
                    550,
                    Some("5.7.1"),
                    format!("<{to}>: Relaying denied (this gateway only delivers locally)"),
                ));
            }
            RcptDecision::Local if !self.handler.local_recipient_ok(&to) => {
                return self.error(Reply::new(
                    550,
                    Some("5.1.1"),
                    format!("<{to}>: Mailbox unavailable"),
                ));
            }
            _ => {}
        }
        let text = format!("Recipient <{to}> OK");
        self.env.rcpts.push(Recipient {
            address: to,
            params,
            decision,
        });
        self.reply(Reply::new(250, Some("2.1.5"), text));
        Step::Continue
    }
}
