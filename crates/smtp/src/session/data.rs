//! DATA and BDAT (RFC 3030 CHUNKING), and the end of the message.

use super::{Handler, Session, State, Step};
use crate::proto::{BdatReceiver, DataError, DataReceiver, Reply};
use tokio::io::{AsyncRead, AsyncWrite};

impl<T: AsyncRead + AsyncWrite + Unpin + Send, H: Handler> Session<T, H> {
    fn no_transaction(&mut self) -> Option<Reply> {
        if self.env.mail_from.is_none() {
            Some(Reply::new(503, Some("5.5.1"), "Send MAIL first"))
        } else if self.env.rcpts.is_empty() {
            Some(Reply::new(554, Some("5.5.1"), "No valid recipients"))
        } else {
            None
        }
    }

    pub(super) fn data(&mut self) -> Step {
        if let Some(r) = self.no_transaction() {
            return self.error(r);
        }
        if !self.msg.is_empty() || self.bdat_error.is_some() {
            return self.error(Reply::new(503, Some("5.5.1"), "DATA after BDAT"));
        }
        self.state = State::Data(DataReceiver::new(self.cfg.max_message_size));
        self.reply(Reply::new(354, None, "End data with <CR><LF>.<CR><LF>"));
        Step::Continue
    }

    pub(super) fn bdat(&mut self, size: u64, last: bool) -> Step {
        // The chunk is read whatever happens, so its bytes are never taken for commands.
        let refuse = self.no_transaction();
        if let Some(r) = refuse {
            self.bdat_error = Some(r);
        }
        self.state = State::Bdat {
            rx: BdatReceiver::new(size, self.cfg.max_message_size),
            last,
        };
        Step::Continue
    }

    /// After a BDAT chunk.
    pub(super) async fn end_of_chunk(&mut self, error: Option<DataError>, last: bool) {
        if let (Some(e), None) = (error, &self.bdat_error) {
            let (code, st) = e.code();
            self.bdat_error = Some(Reply::new(code, Some(st), e.to_string()));
        }
        if let Some(r) = self.bdat_error.clone() {
            self.errors += 1;
            self.reply(r);
            if last || self.env.mail_from.is_none() {
                self.reset_transaction();
            }
            return;
        }
        if !last {
            let n = self.msg.len();
            self.reply(Reply::new(
                250,
                Some("2.0.0"),
                format!("{n} octets received"),
            ));
            return;
        }
        self.finish().await;
    }

    /// After the final dot of DATA.
    pub(super) async fn end_of_data(&mut self, error: Option<DataError>) {
        if let Some(e) = error {
            let (code, st) = e.code();
            tracing::info!(peer = %self.info.peer, "message refused: {e}");
            self.reply(Reply::new(code, Some(st), e.to_string()));
            self.reset_transaction();
            return;
        }
        self.finish().await;
    }

    /// Hands the complete message to the handler and sends its reply.
    async fn finish(&mut self) {
        let msg = std::mem::take(&mut self.msg);
        let reply = self.handler.message(&self.info, &self.env, msg).await;
        self.reply(reply);
        self.reset_transaction();
    }
}
