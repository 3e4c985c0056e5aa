//! The gateway's outbound delivery client: one delivery attempt of one
//! message to one next hop over SMTP (RFC 5321) or LMTP (RFC 2033), with a
//! result per recipient.
//!
//! Queueing, retries, backoff and bounces are the caller's: it calls
//! [`deliver`] with a [`NextHop`], [`ClientOptions`], an [`OutboundEnvelope`]
//! and the spooled message, and gets back one [`RcptResult`] per recipient,
//! in the envelope's order, or a [`TransportError`].
//!
//! # What a result means
//! - [`Outcome::Delivered`]: the next hop answered 2xx after the final dot
//!   (SMTP: the one reply for the message; LMTP: this recipient's reply).
//!   Nothing else ever yields `Delivered`.
//! - [`Outcome::Permanent`]: a 5xx for this recipient (at MAIL, RCPT, DATA or
//!   end of data, or at the greeting, HELO or LHLO), or a local refusal that a retry
//!   cannot cure: the message needs 8BITMIME or SMTPUTF8 and the next hop does
//!   not offer it (5.6.3 / 5.6.7: never downgraded silently), it is larger than
//!   the next hop's SIZE, or an address holds control characters or an
//!   unquoted `<`/`>` (never sent, so it cannot smuggle in parameters).
//! - [`Outcome::Temporary`]: a 4xx (or any other unexpected reply), a `421`
//!   anywhere (the peer is closing: every undecided recipient gets it), or the
//!   connection failing after some recipient was already decided.
//! - `Err(TransportError)`: the attempt failed before *any* recipient was
//!   decided (cannot connect, timeout, connection dropped, protocol garbage).
//!   Treat every recipient as temporary with the error as reason.
//!
//! So when a connection drops mid-session, recipients already answered keep
//! their answers: an LMTP recipient whose final reply arrived stays
//! `Delivered`/`Permanent`/`Temporary` as answered, a recipient refused at RCPT
//! stays refused, and only the rest become `Temporary` (with
//! [`Failure::Local`] naming the error, status 4.4.x/4.5.0). A drop after the
//! final dot but before the SMTP reply leaves every recipient `Temporary`,
//! though the message may have arrived: a retry can then duplicate it, which
//! RFC 5321 §6.1 accepts over losing it.
//!
//! # On the wire
//! EHLO (HELO after a 5xx; LHLO for LMTP), then MAIL parameters only where
//! advertised: `SIZE=`, `BODY=8BITMIME`, `SMTPUTF8`, and with DSN `RET=`,
//! `ENVID=`, `NOTIFY=`, `ORCPT=` (without DSN they are dropped and
//! [`RcptResult::dsn_passed`] is false, so the caller can send the "relayed"
//! DSN of RFC 3461 §4.2 where NOTIFY asked for SUCCESS). With PIPELINING, MAIL,
//! every RCPT and DATA go out in one write (RFC 2920; past
//! [`PIPELINE_RCPTS`] recipients, in writes of that many RCPTs, each after the
//! previous one's replies, so that neither side can block). If no recipient is
//! accepted no message is sent. The message goes out dot-stuffed with CRLF
//! line ends (bare LF and bare CR become CRLF) in 64 KiB writes
//! ([`DataEncoder`]). QUIT closes the session; its errors are ignored.
//! Replies are bounded ([`MAX_REPLY_LEN`]) and garbage is an error, never a
//! panic. Parsed replies keep their enhanced status code at the start of the
//! text ([`enhanced_status`] reads it).
//!
//! Timeouts ([`ClientOptions`]) follow RFC 5321 §4.5.3.2: 5 minutes per
//! command reply and per write, 10 minutes for the reply after the final dot.
//!
//! # Not yet
//! No TLS: STARTTLS is recorded in [`Capabilities`] but not used (opportunistic
//! STARTTLS to the next hop comes later; [`deliver_on`] takes any stream so an
//! upgraded one can be passed in). No AUTH, no BDAT/CHUNKING (DATA always
//! works; BINARYMIME bodies are not supported), no MX lookup (a host name's
//! addresses are tried in resolver order until one connects).

mod caps;
mod data;
mod hop;
mod reply;
mod session;

pub use caps::Capabilities;
pub use data::DataEncoder;
pub use hop::{NextHop, NextHopError, Protocol, LMTP_PORT, SMTP_PORT};
pub use reply::{enhanced_status, reply_text, ReplyError, ReplyParser, MAX_REPLY_LEN};
pub use session::{deliver, deliver_on, Pool, POOL_IDLE, POOL_MAX_IDLE, POOL_MAX_USES};

use crate::proto::command::Ret;
use crate::proto::Reply;
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// Default [`ClientOptions::connect_timeout`]. RFC 5321 names none; this is
/// Postfix's `smtp_connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ClientOptions::command_timeout`] (RFC 5321 §4.5.3.2: 5 minutes
/// for the greeting, MAIL, RCPT; the 2- and 3-minute DATA figures are
/// minimums, so 5 minutes serves them too).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default [`ClientOptions::data_timeout`] (RFC 5321 §4.5.3.2.6: 10 minutes
/// for the reply after the final dot).
pub const DEFAULT_DATA_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest wait for the reply to QUIT (results are known by then).
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most RCPT commands in one pipelined write (RFC 5321 §4.5.3.1.8 has
/// servers take at least 100 recipients per message; more go in further
/// writes of this many, each after the replies to the previous one).
pub const PIPELINE_RCPTS: usize = 100;
/// Size of one write of message data.
pub const DATA_CHUNK: usize = 64 * 1024;

/// Settings of the delivery client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Our name in EHLO/HELO/LHLO (the gateway's `[smtp] hostname`).
    pub helo_name: String,
    /// Limit for establishing the connection.
    pub connect_timeout: Duration,
    /// Limit for each reply (greeting, EHLO, MAIL, RCPT, DATA) and for each
    /// write, message chunks included.
    pub command_timeout: Duration,
    /// Limit for the reply after the final dot (each reply, for LMTP).
    pub data_timeout: Duration,
}

impl ClientOptions {
    /// The defaults with our EHLO name.
    pub fn new(helo_name: impl Into<String>) -> ClientOptions {
        ClientOptions {
            helo_name: helo_name.into(),
            ..ClientOptions::default()
        }
    }
}

impl Default for ClientOptions {
    /// `helo_name` "localhost" (set the real one) and the RFC 5321 timeouts.
    fn default() -> ClientOptions {
        ClientOptions {
            helo_name: "localhost".to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            data_timeout: DEFAULT_DATA_TIMEOUT,
        }
    }
}

/// The envelope of one outbound message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundEnvelope {
    /// The reverse-path without brackets; empty is the null sender `<>`.
    pub mail_from: String,
    pub rcpts: Vec<OutboundRcpt>,
    /// `ENVID=` (RFC 3461), xtext as received; sent only with DSN.
    pub envid: Option<String>,
    /// `RET=` (RFC 3461); sent only with DSN.
    pub ret: Option<Ret>,
    /// The body is 8-bit MIME (it came with `BODY=8BITMIME`, or holds 8-bit
    /// bytes): needs a next hop with 8BITMIME.
    pub body_8bit: bool,
    /// The message needs SMTPUTF8 (it came with `SMTPUTF8`). Also assumed
    /// when an envelope address is not ASCII.
    pub smtputf8: bool,
    /// The size declared with `SIZE=`; `None` declares the message's length.
    pub size: Option<u64>,
}

/// One recipient of an [`OutboundEnvelope`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundRcpt {
    /// The forward-path without brackets (`user@example.com`).
    pub address: String,
    /// `NOTIFY=` (RFC 3461) as `NEVER` or a comma list of `SUCCESS`,
    /// `FAILURE`, `DELAY`; sent only with DSN, dropped if not of that form.
    pub notify: Option<String>,
    /// `ORCPT=` (RFC 3461) as `rfc822;xtext`; sent only with DSN.
    pub orcpt: Option<String>,
}

impl OutboundRcpt {
    pub fn new(address: impl Into<String>) -> OutboundRcpt {
        OutboundRcpt {
            address: address.into(),
            ..OutboundRcpt::default()
        }
    }
}

/// The result of the attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptResult {
    /// The recipient's address, as in the envelope.
    pub address: String,
    pub outcome: Outcome,
    /// The next hop advertised DSN, so this recipient's NOTIFY/ORCPT (and the
    /// message's RET/ENVID) went with it. When false, RFC 3461 §4.2 leaves a
    /// "relayed" DSN to us if NOTIFY included SUCCESS and it was delivered.
    pub dsn_passed: bool,
}

/// What happened to one recipient; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx after the final dot: the next hop has taken responsibility.
    Delivered(Reply),
    /// Try again later.
    Temporary(Failure),
    /// Do not try again: bounce.
    Permanent(Failure),
}

impl Outcome {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered(_))
    }
    pub fn is_temporary(&self) -> bool {
        matches!(self, Outcome::Temporary(_))
    }
    pub fn is_permanent(&self) -> bool {
        matches!(self, Outcome::Permanent(_))
    }
    /// The failure, unless delivered.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Delivered(_) => None,
            Outcome::Temporary(f) | Outcome::Permanent(f) => Some(f),
        }
    }
}

/// Why a recipient was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The next hop said so, in reply to `stage`.
    Remote { stage: Stage, reply: Reply },
    /// We decided, without a reply for this recipient: `status` is an RFC 3463
    /// enhanced code (`5.6.3` for 8BITMIME missing, `4.4.2` for a dropped
    /// connection, …).
    Local { status: &'static str, text: String },
}

impl Failure {
    /// The enhanced status code, if known (always for [`Failure::Local`]).
    pub fn status(&self) -> Option<&str> {
        match self {
            Failure::Remote { reply, .. } => enhanced_status(reply),
            Failure::Local { status, .. } => Some(status),
        }
    }
    /// The next hop's reply code, for [`Failure::Remote`].
    pub fn code(&self) -> Option<u16> {
        match self {
            Failure::Remote { reply, .. } => Some(reply.code),
            Failure::Local { .. } => None,
        }
    }
}

impl fmt::Display for Failure {
    /// `next hop said: 550 5.1.1 no such user (in reply to RCPT TO)` or
    /// `4.4.2 connection closed by the next hop during end of data`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Remote { stage, reply } => write!(
                f,
                "next hop said: {} (in reply to {stage})",
                reply_text(reply)
            ),
            Failure::Local { status, text } => write!(f, "{status} {text}"),
        }
    }
}

/// A point of the session, for results and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Connect,
    Greeting,
    Ehlo,
    Helo,
    Lhlo,
    MailFrom,
    RcptTo,
    Data,
    /// Sending the message after 354.
    Message,
    /// Waiting for the reply (replies, LMTP) after the final dot.
    EndOfData,
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::Helo => "HELO",
            Stage::Lhlo => "LHLO",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "message transfer",
            Stage::EndOfData => "end of data",
            Stage::Quit => "QUIT",
        })
    }
}

/// The attempt failed before any recipient was decided: nothing is
/// confirmed, every recipient is temporary.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot connect to {hop}: {source}")]
    Connect {
        hop: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {hop}: no connection within {after:?}")]
    ConnectTimeout { hop: String, after: Duration },
    #[error("connection closed by the next hop during {stage}")]
    Closed { stage: Stage },
    #[error("I/O error during {stage}: {source}")]
    Io {
        stage: Stage,
        #[source]
        source: std::io::Error,
    },
    #[error("no reply or no progress within {after:?} during {stage}")]
    Timeout { stage: Stage, after: Duration },
    #[error("protocol error during {stage}: {error}")]
    Protocol {
        stage: Stage,
        #[source]
        error: ReplyError,
    },
}

impl TransportError {
    /// The RFC 3463 code that describes it: `4.4.1` (no answer from host),
    /// `4.4.2` (bad connection) or `4.5.0` (protocol error).
    pub fn status(&self) -> &'static str {
        match self {
            TransportError::Connect { .. } | TransportError::ConnectTimeout { .. } => "4.4.1",
            TransportError::Closed { .. }
            | TransportError::Io { .. }
            | TransportError::Timeout { .. } => "4.4.2",
            TransportError::Protocol { .. } => "4.5.0",
        }
    }

    /// Where in the session it happened.
    pub fn stage(&self) -> Stage {
        match self {
            TransportError::Connect { .. } | TransportError::ConnectTimeout { .. } => {
                Stage::Connect
            }
            TransportError::Closed { stage }
            | TransportError::Io { stage, .. }
            | TransportError::Timeout { stage, .. }
            | TransportError::Protocol { stage, .. } => *stage,
        }
    }
}

/// True if `message` holds a byte above 0x7F (a helper for callers that
/// must decide [`OutboundEnvelope::body_8bit`] themselves).
pub fn has_8bit(message: &[u8]) -> bool {
    message.iter().any(|&b| b >= 0x80)
}
