//! mxguard's clamd-compatible socket: existing clients (`clamdscan`, rspamd,
//! amavis, Exim's `av_scanner = clamd:…`, anything speaking clamd's
//! protocol) scan with mxguard's engine by pointing at this socket.
//!
//! - [`proto`]: the protocol without I/O: `z`/`n`/old-style framing, the
//!   command table, INSTREAM chunk decoding, and every reply byte for byte as
//!   clamd 1.4 writes it. Never panics; fuzzed (`fuzz/fuzz_targets/clamd_command.rs`).
//! - [`session`]: one connection over any `AsyncRead + AsyncWrite`, with
//!   IDSESSION, timeouts and back-pressure; tests run it in memory.
//! - [`scan`]: the blocking work: reports into replies, and clamd's rules for
//!   walking files and directories (SCAN, CONTSCAN, ALLMATCHSCAN, MULTISCAN).
//! - [`pool`]: scan threads bounded like clamd's (`MaxThreads`, `MaxQueue`,
//!   `IdleTimeout`), also the source of `STATS`.
//! - [`server`], [`unix`]: TCP and Unix listeners; descriptor passing for FILDES.
//! - [`config`]: `[clamd]` with clamd.conf's names and defaults, validated.
//! - [`service`]: what the socket needs from the rest of mxguard
//!   ([`ScanService`]: current scanner, version, reload).
//!
//! # DESIGN
//!
//! **Compatibility is measured, not assumed.** Reply texts, which commands
//! exist in which framing, what closes a connection, and the path-walking
//! rules were recorded from a real clamd 1.4.6 and are pinned in unit tests;
//! `crates/server/tests/clamd.rs` sends the same requests to a private clamd
//! and to mxguard and compares the bytes, and runs the real `clamdscan`
//! (`--stream`, `--fdpass`, `--multiscan`, `--allmatch`) against mxguard,
//! whose results must equal `mxguard scan` on the same files. Where clamd and
//! mxguard must differ it is on purpose and written down: `VERSION` names
//! mxguard; threat names carry no `.UNOFFICIAL` suffix (they are the names
//! `mxguard scan` prints); `STATS` describes our pool in clamd's layout.
//!
//! **Findings map onto clamd's three answers.** A report with any finding is
//! `FOUND` (the first signature hit, else the first heuristic or limit
//! finding, as clamd reports heuristic alerts); otherwise an error is
//! `ERROR` (never `OK`); otherwise `OK`. Names never contain spaces.
//!
//! **Scans never run on the async runtime.** Each command's CPU and file work
//! goes to the [`pool`]; a full queue makes the session wait before reading
//! more (back-pressure instead of unbounded memory). An INSTREAM is checked
//! against `StreamMaxLength` at each chunk header before the chunk is read;
//! up to [`session::STREAM_MEMORY_LIMIT`] it stays in memory, beyond it goes
//! to an unlinked temporary file (clamd's `TemporaryDirectory`), so memory is
//! bounded by connections × that limit plus scan threads × stream length.
//!
//! **Reload never drops a scan.** Each command takes the current scanner
//! (`Arc`) when it starts; `RELOAD` answers `RELOADING` at once and builds the
//! new one on a blocking thread; scans in progress finish on the old one.

pub mod config;
pub mod pool;
pub mod proto;
pub mod scan;
pub mod server;
pub mod service;
pub mod session;
pub mod unix;

pub use config::ClamdConfig;
pub use server::{ClamdServer, ListenAddr, Running, ServerError, ServerOptions};
pub use service::{FixedService, ScanService};
