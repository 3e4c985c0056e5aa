//! What the socket needs from the rest of mxguard: the current scanner, a
//! version line and a way to reload signatures. The server crate implements
//! it over its shared engine holder; tests implement it over a fixed scanner.

use mxguard_engine::Scanner;
use std::sync::Arc;

/// The engine behind the socket.
pub trait ScanService: Send + Sync + 'static {
    /// The scanner for a new command. A command keeps the scanner it started
    /// with, so a reload never disturbs scans in progress.
    fn scanner(&self) -> Arc<Scanner>;

    /// The `VERSION` reply body in clamd's three-field form that clients
    /// parse: `PRODUCT VERSION/DATABASE VERSION/DATABASE TIME`, e.g.
    /// `mxguard 0.1.0/27000/Mon Nov 23 05:26:37 2026`.
    fn version(&self) -> String;

    /// Loads the signatures again and makes them current. Blocking (called on
    /// a blocking thread); on failure the current signatures stay in use and
    /// the error says why.
    fn reload(&self) -> Result<(), String>;

    /// Bytes used by the loaded signatures (shown as `pools_used` by `STATS`).
    fn memory(&self) -> u64 {
        0
    }
}

/// A fixed scanner that cannot be reloaded (tests, embedding).
pub struct FixedService {
    pub scanner: Arc<Scanner>,
    pub version: String,
}

impl ScanService for FixedService {
    fn scanner(&self) -> Arc<Scanner> {
        self.scanner.clone()
    }
    fn version(&self) -> String {
        self.version.clone()
    }
    fn reload(&self) -> Result<(), String> {
        Err("this engine cannot be reloaded".into())
    }
}
