//! mxguard's SMTP gateway.
//!
//! - [`proto`]: the sans-IO protocol layer: bytes into typed commands and
//!   message data, replies into bytes, RFC 5321 limits as named constants. No
//!   I/O, never panics, fuzzed.
//! - [`session`]: one SMTP session as an explicit state machine over any
//!   `AsyncRead + AsyncWrite` stream (tests drive it in memory), one file per verb.
//! - [`server`]: listeners, connection limits and connect-time checks
//!   ([`relay`] IP lists, [`dnsbl`]), STARTTLS ([`tls`]).
//! - [`pipeline`]: the end of DATA: scan → verdict → action → quarantine /
//!   spool → reply; 250 only once the message is durably stored.
//! - [`spool`], [`queue`], [`client`], [`dsn`]: the durable spool and the
//!   delivery queue with retries and bounces to the next hop (SMTP, LMTP, Maildir).
//! - [`stamp`]: the signed antivirus stamp between hops.
//! - [`quarantine`], [`release`]: quarantine copies, release grants and the
//!   event of each message, in the store ([`mxguard_store`], SQLite or
//!   PostgreSQL).
//!
//! ## Design
//! The one promise everything is built around: a 250 at the end of DATA means
//! the message is on disk (file and directory fsynced) in the spool or
//! committed to the store's quarantine, or deliberately dropped by configuration. Every failure before
//! that is a 451, so the sender retries; after it, the queue owns the message
//! until each recipient has a final answer, and a crash at any point causes at
//! most a duplicate delivery, never a loss. `crates/server/tests/durability.rs`
//! checks this end to end: 10,000 messages through the real binary to
//! Postfix's smtp-sink while the process is killed with SIGKILL and restarted.

pub mod client;
pub mod config;
pub mod dnsbl;
pub mod dsn;
pub mod headers;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod proto;
pub mod quarantine;
pub mod queue;
pub mod relay;
pub mod release;
pub mod server;
pub mod session;
pub mod spool;
pub mod stamp;
pub mod tls;
