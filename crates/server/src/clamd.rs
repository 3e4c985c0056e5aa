//! `[clamd]`: starts the clamd-compatible socket over the shared [`Engines`]
//! and stops it at shutdown (the protocol lives in `mxguard-clamd`).

use crate::engines::Engines;
use anyhow::{Context, Result};
use mxguard_clamd::{ClamdConfig, ClamdServer, Running};
use std::sync::Arc;
use std::time::Duration;

/// Binds and starts every `clamd.listen` address; `None` when the list is empty.
pub async fn start(cfg: &ClamdConfig, engines: Arc<Engines>) -> Result<Option<Running>> {
    if cfg.listen.is_empty() {
        return Ok(None);
    }
    let opts = cfg
        .build()
        .map_err(|e| anyhow::anyhow!("invalid [clamd]: {}", e.join("; ")))?;
    let server = ClamdServer::bind(&opts, engines)
        .await
        .context("clamd.listen")?;
    Ok(Some(server.start()))
}

/// Resolves when a client sent an allowed `SHUTDOWN` (never without the socket).
pub async fn shutdown_requested(r: &Option<Running>) {
    match r {
        Some(r) => r.shutdown_requested().cancelled_owned().await,
        None => std::future::pending().await,
    }
}

/// Stops accepting, lets commands in progress finish for up to `grace`,
/// removes the Unix socket files.
pub async fn stop(r: Option<Running>, grace: Duration) {
    if let Some(r) = r {
        r.stop(grace).await;
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn clamd_section_parses_and_reports_every_bad_key() {
        let c = Config::parse(
            "[clamd]\nlisten = [\"127.0.0.1:3310\", \"unix:/tmp/mxguard-clamd.sock\"]\nmax_threads = 4\nstream_max_length = \"25M\"\nallow_shutdown = true\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.clamd.max_threads, 4);
        assert_eq!(c.clamd.stream_max_length, 25 << 20);
        assert!(c.clamd.allow_shutdown);
        assert_eq!(Config::default().clamd.listen, Vec::<String>::new());
        let e = Config::parse(
            "[clamd]\nlisten = [\"nowhere\"]\nmax_threads = 0\nread_timeout_secs = 0\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        let s = format!("{e:#}");
        for k in [
            "clamd.listen[0]",
            "clamd.max_threads",
            "clamd.read_timeout_secs",
        ] {
            assert!(s.contains(k), "{k}: {s}");
        }
        let e = Config::parse("[clamd]\nMaxThreads = 3\n", Path::new("t.toml")).unwrap_err();
        assert!(format!("{e:#}").contains("MaxThreads"));
        let e = Config::parse(
            "[clamd]\nstream_max_length = \"lots\"\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("invalid size"), "{e:#}");
    }
}
