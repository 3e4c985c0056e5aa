//! Serves the console over an existing store for `bench/web.sh`: adds a
//! user `bench` with a fixed session (cookie printed on stdout) and serves
//! on the given loopback port until killed. No gateway behind it (queue 0,
//! no counters): what is measured is the console and the store.
//!
//! ```text
//! cargo run --release -p mxguard-web --example web_bench -- sqlite:///path/bench.db 18080
//! ```

use mxguard_web::{AppState, NoGateway, WebSettings};
use std::sync::Arc;
use std::time::Duration;

const SESSION: &str = "5e551011bec4c4ba5e551011bec4c4ba5e551011bec4c4ba5e551011bec4c4ba";

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect("usage: web_bench STORE_URL PORT");
    let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(18080);
    let store = mxguard_store::Store::open(url)
        .await
        .expect("open the store");
    if store.user_with_hash("bench").await.unwrap().is_none() {
        let h = mxguard_web::auth::hash_password("bench password");
        store.add_user("bench", &h, "admin").await.unwrap();
    }
    let _ = store.delete_session(SESSION).await;
    store
        .create_session(
            SESSION,
            "bench",
            "benchcsrf",
            mxguard_store::now_secs() + 86_400,
            "127.0.0.1",
        )
        .await
        .unwrap();
    let state = AppState::new(store, Arc::new(NoGateway), WebSettings::default());
    // As `mxguard serve` does with `[web] warm_secs` (WARM_SECS, default 60;
    // 0: off, every first load computes its numbers).
    let warm: u64 = std::env::var("WARM_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    tokio::spawn(mxguard_web::keep_warm(
        state.clone(),
        Duration::from_secs(warm),
    ));
    let router = mxguard_web::router(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("mxguard_session={SESSION}");
    mxguard_web::serve(
        listener,
        router,
        None,
        tokio_util::sync::CancellationToken::new(),
        Duration::from_secs(1),
    )
    .await;
}
