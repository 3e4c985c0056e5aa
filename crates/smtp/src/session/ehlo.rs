//! EHLO and HELO: name the client, reset the transaction, list the extensions.

use super::{Handler, Session, Step};
use crate::proto::Reply;
use tokio::io::{AsyncRead, AsyncWrite};

impl<T: AsyncRead + AsyncWrite + Unpin + Send, H: Handler> Session<T, H> {
    pub(super) fn ehlo(&mut self, name: String, esmtp: bool) -> Step {
        self.reset_transaction();
        self.info.helo = Some(name);
        self.info.esmtp = esmtp;
        let host = self.cfg.hostname.clone();
        if !esmtp {
            self.reply(Reply::new(250, None, host));
            return Step::Continue;
        }
        let mut lines = vec![
            host,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.cfg.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "CHUNKING".to_string(),
            "DSN".to_string(),
        ];
        if self.cfg.starttls && !self.info.tls {
            lines.push("STARTTLS".to_string());
        }
        self.reply(Reply {
            code: 250,
            status: None,
            lines,
        });
        Step::Continue
    }
}
