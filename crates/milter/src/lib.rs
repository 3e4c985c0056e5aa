//! mxguard's milter front-end: the Sendmail/Postfix mail filter protocol,
//! version 6, spoken by Postfix ≥ 2.6 and Sendmail 8.14+.
//!
//! - [`codec`]: sans-IO frames, commands and responses. Never panics; fuzzed
//!   (`fuzz/fuzz_targets/milter_codec.rs`).
//! - [`negotiate`]: option negotiation (actions, protocol flags, macro lists).
//! - [`reply`]: SMTP reply text (`%` escaping, multi-line replies).
//! - [`message`]: assembles headers and body chunks into one RFC 5322 message.
//! - [`session`]: one MTA connection over any `AsyncRead + AsyncWrite`.
//! - [`server`]: TCP and Unix listeners, [`serve`].
//! - [`handler`]: the [`MilterHandler`] trait the gateway implements.
//! - [`config`]: the `[milter]` configuration section.
//!
//! # DESIGN
//!
//! ## Frames
//! Every packet, both ways, is a 4-byte big-endian length, a command byte
//! and data (strings NUL-terminated). The decoder checks the length as soon
//! as its 4 bytes arrive: over the limit (default [`consts::DEFAULT_MAX_FRAME`],
//! never above [`consts::MAX_FRAME_HARD_CAP`]) it is a protocol error and the
//! connection is closed; nothing of the claimed size is allocated. Body
//! chunks are at most 64 KiB (we never negotiate `SMFIP_MDS_*`), body
//! replacements are sent in chunks of at most 65,535 bytes.
//!
//! ## State machine
//! ```text
//!  OPTNEG ─▶ ┌─ CONNECT ─▶ HELO ─▶ ┌─ MAIL ─▶ RCPT… ─▶ DATA ─▶ HEADER… ─▶ EOH ─▶ BODY… ─▶ EOM ─┐
//!            │                     │                                                          │
//!            │                     └──────────────── (next message) ◀──── ABORT ◀─────────────┘
//!            └──── QUIT_NC (next client on the same connection) ◀─────  QUIT closes
//! ```
//! MACRO frames precede the command whose stage they belong to and replace
//! that stage's macros; a stage's macros, and all later stages', are
//! forgotten when that stage starts over (a new MAIL forgets RCPT macros,
//! EOM/ABORT forget MAIL and later, CONNECT forgets HELO and later, QUIT_NC
//! forgets all). The session is lenient about order (an MTA that skips
//! steps still gets its message collected) but strict about bytes: a
//! malformed frame closes the connection.
//!
//! Replies are sent only to commands the MTA waits for: we ask for no
//! replies to DATA, HEADER, EOH and UNKNOWN, and to CONNECT/HELO/MAIL/RCPT
//! unless the handler's [`Hooks`] want to decide there; the MTA grants the
//! subset it supports, and we answer `continue` to the rest. Header values
//! arrive with their leading space when `SMFIP_HDR_LEADSPC` is granted (and
//! ours are sent with one); otherwise `": "` is written after the name.
//!
//! ## What a session guarantees
//! - **Bounded memory.** Per connection: one frame (≤ `max_frame`), one
//!   read buffer, one message of at most `max_message_size` bytes (on the
//!   first byte over, the buffer is freed and the message answered per
//!   `on_oversize`: `452 4.3.4` by default, or `552 5.3.4`), at most
//!   [`consts::MAX_RECIPIENTS`] recipients and a bounded number of macros.
//!   Listeners cap the connections.
//! - **No quadratic copying.** Body chunks are moved out of frames and
//!   appended once to one `Vec` reserved from the `SIZE=` hint.
//! - **Never a wrong accept on an internal error.** The handler's
//!   end-of-message answer runs under `handler_timeout` with
//!   `SMFIR_PROGRESS` every `progress_interval`; an error, a panic or a
//!   timeout is answered per `on_failure` (`451 4.3.0` by default, like
//!   Postfix's `milter_default_action = tempfail`; `accept` on request). A
//!   modification the MTA did not grant (e.g. a body replacement without
//!   `CHGBODY`) turns the answer into a tempfail with an error log, never an
//!   accept of the unmodified message. A message decided before its end
//!   (size limit, a hook's reject) repeats that decision to every later
//!   command that expects a reply. A protocol error closes the connection,
//!   which the MTA answers with its own default action.
//! - **Order.** Modifications are sent only in reply to EOM, in the
//!   handler's order, before the final reply; when the final decision is
//!   not an accept, none are sent.

pub mod codec;
pub mod config;
pub mod consts;
pub mod diff;
pub mod handler;
pub mod macros;
pub mod message;
pub mod negotiate;
pub mod reply;
pub mod server;
pub mod session;

pub use codec::{Command, Family, Frame, FrameDecoder, OptNeg, ProtocolError, Response};
pub use config::{FailurePolicy, MilterConfig, OversizePolicy, SessionConfig};
pub use consts::{Actions, MacroStage, ProtocolFlags};
pub use handler::{
    ClientAddress, ConnectionInfo, Decision, EomResult, HandlerError, Hooks, MessageContext,
    MilterHandler, Modification, Recipient,
};
pub use macros::Macros;
pub use negotiate::{FilterOptions, Negotiated};
pub use reply::{ReplyError, SmtpReply};
pub use server::{serve, ListenAddr, Listener};
pub use session::{Session, SessionEnd};
