//! One SMTP session, generic over the stream so tests drive it in memory.
//!
//! The session is an explicit [`State`] machine with one file per verb
//! (`ehlo.rs`, `mail.rs`, `rcpt.rs`, `data.rs`). Input is read into one buffer
//! and every complete command in it is answered before the next read, with the
//! replies collected and written in one go when the input runs dry: that is
//! RFC 2920 pipelining, and a client that sends MAIL, RCPT and DATA at once
//! costs one write. Message data goes through the sans-IO receivers of
//! [`crate::proto`]; the end of data calls the [`Handler`], whose reply is sent
//! as is: 250 from the handler must mean "durably stored".
//!
//! Guarantees: never panics on input; memory bounded by the message size
//! limit plus one read buffer; a command line longer than the limit is
//! answered 500 and skipped; the session ends after `max_errors` bad commands,
//! on timeouts and on shutdown (between transactions).

mod data;
mod ehlo;
mod mail;
mod rcpt;

use crate::proto::{self, Address, Command, MailParams, RcptParams, Reply};
use crate::relay::{RcptDecision, RelayPolicy};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes read per socket read.
pub const READ_CHUNK: usize = 64 * 1024;
/// A command line longer than this is answered 500 and its rest skipped.
pub const MAX_LINE_BUFFER: usize = 4096;

/// What the session knows about its client.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The HELO/EHLO name, once given.
    pub helo: Option<String>,
    pub esmtp: bool,
    pub tls: bool,
    /// TLS version and cipher, for the Received header.
    pub tls_info: Option<String>,
    /// The client is in `trusted_networks`.
    pub trusted: bool,
}

impl SessionInfo {
    pub fn ip(&self) -> IpAddr {
        self.peer.ip()
    }
}

/// One accepted recipient.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: Address,
    pub params: RcptParams,
    pub decision: RcptDecision,
}

/// The transaction being built.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// `None` before MAIL; `Some(None)` is the null sender `<>`.
    pub mail_from: Option<Option<Address>>,
    pub params: MailParams,
    pub rcpts: Vec<Recipient>,
}

impl Envelope {
    pub fn sender_string(&self) -> String {
        match &self.mail_from {
            Some(Some(a)) => a.to_string(),
            _ => String::new(),
        }
    }

    /// This envelope with only the recipients whose address is in `rcpts`
    /// (a branch of a message split by policy); a clone when all are.
    pub fn only(&self, rcpts: &[String]) -> Envelope {
        let mut e = self.clone();
        if e.rcpts.len() != rcpts.len() {
            e.rcpts
                .retain(|r| rcpts.iter().any(|x| *x == r.address.to_string()));
        }
        e
    }
}

/// Fixed settings of the sessions of one listener.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_errors: u32,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub relay: RelayPolicy,
    /// Whether recipients outside `local_domains` can be routed at all (not
    /// with `next_hop = "maildir"`, which only delivers locally).
    pub can_relay: bool,
    /// STARTTLS is offered (a TLS acceptor exists and the session is not TLS yet).
    pub starttls: bool,
    /// Longest command line with its CRLF (MAIL and RCPT get 500 more for DSN).
    pub max_command_line: usize,
}

/// What the front-end does with a complete message.
pub trait Handler: Send + Sync + 'static {
    /// Called once per message at the end of DATA/BDAT LAST. The reply is sent
    /// as is; a 2xx reply promises the message is durably stored (or
    /// deliberately dropped). Internal errors must come back as 451.
    fn message(
        &self,
        info: &SessionInfo,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Reply> + Send;

    /// A local recipient's mailbox exists / is acceptable (checked at RCPT).
    fn local_recipient_ok(&self, _address: &Address) -> bool {
        true
    }
}

/// Where the session is.
#[derive(Debug)]
enum State {
    /// Reading command lines.
    Command,
    /// Skipping the rest of an over-long command line.
    SkipLine,
    /// Reading message data after DATA.
    Data(proto::DataReceiver),
    /// Reading one BDAT chunk; `last` ends the message after it.
    Bdat { rx: proto::BdatReceiver, last: bool },
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// QUIT, peer gone, timeout, too many errors, shutdown.
    Closed,
    /// STARTTLS was accepted: the caller wraps the stream and starts a new
    /// session with `tls = true` (RFC 3207: all state is forgotten).
    StartTls,
}

/// One SMTP session over `T`.
pub struct Session<T, H> {
    io: T,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    state: State,
    cfg: Arc<SessionConfig>,
    handler: Arc<H>,
    pub info: SessionInfo,
    env: Envelope,
    /// The message being received.
    msg: Vec<u8>,
    /// An earlier BDAT chunk of this transaction failed: the rest are read and refused.
    bdat_error: Option<Reply>,
    errors: u32,
    quit: bool,
    shutdown: tokio_util::sync::CancellationToken,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send, H: Handler> Session<T, H> {
    pub fn new(
        io: T,
        info: SessionInfo,
        cfg: Arc<SessionConfig>,
        handler: Arc<H>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Session {
            io,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            wbuf: Vec::with_capacity(1024),
            state: State::Command,
            cfg,
            handler,
            info,
            env: Envelope::default(),
            msg: Vec::new(),
            bdat_error: None,
            errors: 0,
            quit: false,
            shutdown,
        }
    }

    /// The stream back, after [`Ending::StartTls`].
    pub fn into_inner(self) -> T {
        self.io
    }

    fn reply(&mut self, r: Reply) {
        self.wbuf.extend_from_slice(&r.to_wire());
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.io.flush().await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Sends the greeting and runs the session to its end. I/O errors end it quietly.
    pub async fn run(mut self, greet: bool) -> (Ending, Self) {
        if greet {
            let host = self.cfg.hostname.clone();
            self.reply(Reply::new(220, None, format!("{host} ESMTP mxguard ready")));
        }
        let ending = match self.serve().await {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(peer = %self.info.peer, "session ended: {e}");
                Ending::Closed
            }
        };
        (ending, self)
    }

    async fn serve(&mut self) -> std::io::Result<Ending> {
        loop {
            // Answer everything already in the buffer.
            while self.rpos < self.rbuf.len() || matches!(self.state, State::Bdat { .. }) {
                match self.step().await? {
                    Step::Continue => {}
                    Step::NeedInput => break,
                    Step::End(e) => {
                        self.flush().await?;
                        return Ok(e);
                    }
                }
            }
            if self.quit {
                self.flush().await?;
                return Ok(Ending::Closed);
            }
            self.flush().await?;
            // Between transactions a shutdown closes the session politely.
            let idle = matches!(self.state, State::Command) && self.env.mail_from.is_none();
            if idle && self.shutdown.is_cancelled() {
                self.reply(Reply::new(
                    421,
                    Some("4.3.2"),
                    "Service shutting down, try again later",
                ));
                self.flush().await?;
                return Ok(Ending::Closed);
            }
            let timeout = match self.state {
                State::Data(_) | State::Bdat { .. } => self.cfg.data_timeout,
                _ => self.cfg.command_timeout,
            };
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            let len = self.rbuf.len();
            self.rbuf.resize(len + READ_CHUNK, 0);
            let read = tokio::select! {
                r = tokio::time::timeout(timeout, self.io.read(&mut self.rbuf[len..])) => r,
                _ = self.shutdown.cancelled(), if idle => {
                    self.rbuf.truncate(len);
                    continue;
                }
            };
            match read {
                Err(_) => {
                    self.rbuf.truncate(len);
                    self.reply(Reply::new(
                        421,
                        Some("4.4.2"),
                        format!("{} Timeout, closing connection", self.cfg.hostname),
                    ));
                    self.flush().await?;
                    return Ok(Ending::Closed);
                }
                Ok(Ok(0)) => {
                    self.rbuf.truncate(len);
                    return Ok(Ending::Closed);
                }
                Ok(Ok(n)) => self.rbuf.truncate(len + n),
                Ok(Err(e)) => {
                    self.rbuf.truncate(len);
                    return Err(e);
                }
            }
        }
    }

    async fn step(&mut self) -> std::io::Result<Step> {
        match &mut self.state {
            State::Command => {
                let input = &self.rbuf[self.rpos..];
                let Some(nl) = memchr::memchr(b'\n', input) else {
                    if input.len() > self.cfg.max_command_line.max(MAX_LINE_BUFFER) {
                        self.rpos = self.rbuf.len();
                        self.state = State::SkipLine;
                        return Ok(self.error(Reply::new(500, Some("5.5.2"), "Line too long")));
                    }
                    return Ok(Step::NeedInput);
                };
                let mut line = &input[..nl];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                let parsed = proto::parse_limited(line, self.cfg.max_command_line);
                self.rpos += nl + 1;
                self.command(parsed).await
            }
            State::SkipLine => {
                let input = &self.rbuf[self.rpos..];
                match memchr::memchr(b'\n', input) {
                    Some(nl) => {
                        self.rpos += nl + 1;
                        self.state = State::Command;
                        Ok(Step::Continue)
                    }
                    None => {
                        self.rpos = self.rbuf.len();
                        Ok(Step::NeedInput)
                    }
                }
            }
            State::Data(rx) => {
                let input = &self.rbuf[self.rpos..];
                match rx.feed(input, &mut self.msg) {
                    proto::Feed::More => {
                        self.rpos = self.rbuf.len();
                        Ok(Step::NeedInput)
                    }
                    proto::Feed::Done { consumed } => {
                        self.rpos += consumed;
                        let error = rx.error();
                        self.state = State::Command;
                        self.end_of_data(error).await;
                        Ok(Step::Continue)
                    }
                }
            }
            State::Bdat { rx, last } => {
                let last = *last;
                let input = &self.rbuf[self.rpos..];
                match rx.feed(input, &mut self.msg) {
                    proto::Feed::More => {
                        self.rpos = self.rbuf.len();
                        Ok(Step::NeedInput)
                    }
                    proto::Feed::Done { consumed } => {
                        self.rpos += consumed;
                        let error = rx.error();
                        self.state = State::Command;
                        self.end_of_chunk(error, last).await;
                        Ok(Step::Continue)
                    }
                }
            }
        }
    }

    /// Counts a failed command; too many end the session.
    fn error(&mut self, r: Reply) -> Step {
        self.reply(r);
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            self.reply(Reply::new(
                421,
                Some("4.7.0"),
                "Too many errors, closing connection",
            ));
            tracing::info!(peer = %self.info.peer, "session closed after {} errors", self.errors);
            return Step::End(Ending::Closed);
        }
        Step::Continue
    }

    fn reset_transaction(&mut self) {
        self.env = Envelope::default();
        self.msg = Vec::new();
        self.bdat_error = None;
    }

    async fn command(
        &mut self,
        parsed: Result<Command, proto::ParseError>,
    ) -> std::io::Result<Step> {
        let cmd = match parsed {
            Ok(c) => c,
            Err(e) => {
                let sender = false;
                let (code, st) = e.code(sender);
                return Ok(self.error(Reply::new(code, Some(st), e.to_string())));
            }
        };
        Ok(match cmd {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::Mail(from, params) => self.mail(from, params),
            Command::Rcpt(to, params) => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.reset_transaction();
                self.reply(Reply::new(250, Some("2.0.0"), "OK"));
                Step::Continue
            }
            Command::Noop => {
                self.reply(Reply::new(250, Some("2.0.0"), "OK"));
                Step::Continue
            }
            Command::Quit => {
                let host = self.cfg.hostname.clone();
                self.reply(Reply::new(
                    221,
                    Some("2.0.0"),
                    format!("{host} closing connection"),
                ));
                self.quit = true;
                Step::End(Ending::Closed)
            }
            Command::StartTls => {
                if !self.cfg.starttls || self.info.tls {
                    return Ok(self.error(Reply::new(
                        502,
                        Some("5.5.1"),
                        "STARTTLS not available",
                    )));
                }
                if self.env.mail_from.is_some() {
                    return Ok(self.error(Reply::new(
                        503,
                        Some("5.5.1"),
                        "STARTTLS not allowed during a transaction",
                    )));
                }
                self.reply(Reply::new(220, Some("2.0.0"), "Ready to start TLS"));
                // Anything the client sent after STARTTLS in clear text is
                // discarded, never read as commands inside TLS (CVE-2011-0411).
                self.rbuf.clear();
                self.rpos = 0;
                Step::End(Ending::StartTls)
            }
            Command::Vrfy(_) | Command::Expn(_) => {
                self.reply(Reply::new(502, Some("5.5.1"), "VRFY and EXPN are disabled"));
                Step::Continue
            }
            Command::Help => {
                self.reply(Reply::new(214, Some("2.0.0"), "See RFC 5321; mxguard"));
                Step::Continue
            }
            Command::Auth(_) => self.error(Reply::new(502, Some("5.5.1"), "AUTH not available")),
        })
    }
}

/// What one step of the state machine asks for.
enum Step {
    Continue,
    NeedInput,
    End(Ending),
}
