//! Serves the integration tests' handler (`tests/common`) on an address,
//! for trying the filter by hand with miltertest or Postfix:
//! `cargo run -p mxguard-milter --example test_filter -- 127.0.0.1:7357`.
//! Markers in a message decide what happens (see `TestHandler`).

#[path = "../tests/common/mod.rs"]
mod common;

use mxguard_milter::*;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let addr: ListenAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7357".into())
        .parse()
        .expect("listen address");
    let listener = Listener::bind(&addr, None).await.expect("bind");
    eprintln!("test_filter listening on {addr}");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    serve(
        listener,
        common::TestHandler::new(Hooks::default()),
        Arc::new(SessionConfig::default()),
        shutdown,
        tracker,
    )
    .await;
}
