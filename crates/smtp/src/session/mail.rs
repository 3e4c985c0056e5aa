//! MAIL FROM: start a transaction.

use super::{Handler, Session, Step};
use crate::proto::{command::Body, Address, MailParams, Reply};
use tokio::io::{AsyncRead, AsyncWrite};

impl<T: AsyncRead + AsyncWrite + Unpin + Send, H: Handler> Session<T, H> {
    pub(super) fn mail(&mut self, from: Option<Address>, params: MailParams) -> Step {
        if self.info.helo.is_none() {
            return self.error(Reply::new(503, Some("5.5.1"), "Send EHLO or HELO first"));
        }
        if self.env.mail_from.is_some() {
            return self.error(Reply::new(503, Some("5.5.1"), "Nested MAIL command"));
        }
        if !self.info.esmtp && params != MailParams::default() {
            return self.error(Reply::new(555, Some("5.5.4"), "Parameters need EHLO"));
        }
        if let Some(size) = params.size {
            if size > self.cfg.max_message_size as u64 {
                return self.error(Reply::new(
                    552,
                    Some("5.3.4"),
                    format!(
                        "Message size exceeds the limit of {} bytes",
                        self.cfg.max_message_size
                    ),
                ));
            }
        }
        if params.body == Some(Body::BinaryMime) {
            // Not advertised: BINARYMIME would need a binary-clean next hop.
            return self.error(Reply::new(
                555,
                Some("5.5.4"),
                "BODY=BINARYMIME not supported",
            ));
        }
        if self.shutdown.is_cancelled() {
            self.reply(Reply::new(
                421,
                Some("4.3.2"),
                "Service shutting down, try again later",
            ));
            self.quit = true;
            return Step::End(super::Ending::Closed);
        }
        let text = match &from {
            Some(a) => format!("Sender <{a}> OK"),
            None => "Null sender OK".to_string(),
        };
        self.env.mail_from = Some(from);
        self.env.params = params;
        self.reply(Reply::new(250, Some("2.1.0"), text));
        Step::Continue
    }
}
