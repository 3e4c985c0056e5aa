//! mxguard's SMTP server side.
//!
//! [`proto`] is the sans-IO protocol layer: it turns bytes into typed commands
//! and message data, and replies into bytes, with RFC 5321 limits as named
//! constants. It does no I/O and never panics, so a session can be driven over
//! any stream (or none, in tests) and the parsers can be fuzzed. [`relay`] holds
//! relay control and the connect-time IP lists.

pub mod client;
pub mod proto;
pub mod relay;
