//! mxguard's web console and JSON API.
//!
//! Server-rendered HTML (no templates engine: small functions that escape
//! everything they print, see [`html`]), SVG charts drawn on the server, a
//! small dependency-free script for auto-refresh and bulk selection, and the
//! same data as JSON under `/api/v1/` (documented in `openapi.json`, served
//! at `/api/v1/openapi.json`).
//!
//! # Security model
//! - **Every route is authenticated** except the login form and the two
//!   static assets ([`routes::Access::Public`]). Pages answer `303` to
//!   `/login` without a session, the API and `/metrics` answer `401`.
//! - Sessions: a random 256-bit token in an `HttpOnly`, `SameSite=Strict`
//!   cookie (`Secure` when the console runs TLS); the store keeps only its
//!   SHA-256, so sessions survive restarts and work across nodes sharing a
//!   PostgreSQL store. Lifetime `[web] session_hours`.
//! - CSRF: every state-changing request made with a session cookie must
//!   carry the session's CSRF token (form field `csrf` or header
//!   `X-CSRF-Token`), compared in constant time. Bearer-token requests carry
//!   no ambient authority and need none.
//! - Roles: `admin` may do everything; `auditor` reads only: every
//!   [`routes::Access::Write`] route answers `403` to it (checked before the
//!   handler runs, from the one route table).
//! - Passwords: argon2id; login failures are limited per client address and
//!   per user name ([`auth::LoginLimiter`]).
//! - Content Security Policy on every response: no inline script, no remote
//!   anything; quarantined mail is shown as escaped text only (its HTML is
//!   never rendered, its remote content never loaded).
//!
//! # Wiring
//! The console reads the store itself and asks the running gateway for the
//! rest through [`Gateway`] (queue size, counters, releases, signatures) and
//! [`PolicyControl`] (the rules engine's policy): the binary implements them,
//! so this crate depends on the store only.

pub mod api;
pub mod auth;
pub mod html;
pub mod mail;
pub mod pages;
pub mod routes;
pub mod server;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use routes::{route_table, router, Access, RouteDef};
pub use server::serve;

/// A boxed future, for the object-safe traits below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Settings of the console (from `[web]`).
#[derive(Clone)]
pub struct WebSettings {
    /// This node's id (shown, and recorded in the policy history).
    pub node: String,
    /// The mxguard version.
    pub version: String,
    /// How long a login lasts.
    pub session_lifetime: Duration,
    /// Cookies get `Secure` (the console runs TLS).
    pub secure_cookies: bool,
    /// Failed logins allowed per client address and per user name within
    /// `login_window` before further attempts get 429.
    pub login_max_failures: u32,
    pub login_window: Duration,
    /// How long dashboard and report numbers are reused (0: never). The
    /// counters they read change by the hour; this spares the store when
    /// several people (or the dashboard's auto-refresh) ask the same.
    pub cache_ttl: Duration,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            node: "mx1".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            session_lifetime: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            login_max_failures: 5,
            login_window: Duration::from_secs(900),
            cache_ttl: Duration::from_secs(10),
        }
    }
}

/// A listener of the running gateway, for the system page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listener {
    /// `smtp`, `milter`, `clamd`, `web`.
    pub kind: String,
    pub address: String,
}

/// A counter of the running process (since start), for the dashboard and
/// `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counter {
    /// Prometheus-style name without the `mxguard_` prefix, e.g. `gateway_messages_total`.
    pub name: String,
    /// Label `result`/`kind` value, empty for none.
    pub label: String,
    pub help: String,
    pub value: u64,
}

/// What the signature engine has loaded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignatureInfo {
    /// The version string stamped into messages.
    pub version: String,
    /// What clamd clients see as the database version.
    pub db_version: u64,
    pub signatures: u64,
    pub hash_sigs: u64,
    pub body_sigs: u64,
    pub logical_sigs: u64,
    pub allow_list: u64,
    pub ignored_sigs: u64,
    pub flevel_skipped: u64,
    pub invalid_lines: u64,
    pub unsupported_lines: u64,
    /// The first problems (file:line: kind: text).
    pub problems: Vec<String>,
    /// CVD/CLD containers and their versions.
    pub containers: Vec<(String, u32)>,
    /// The database files configured.
    pub files: Vec<DatabaseFile>,
    pub builtin: bool,
    /// Unix seconds of the last (re)load.
    pub loaded_at: i64,
    pub memory_bytes: u64,
    /// What a reload applies to (shown next to the reload button).
    pub note: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DatabaseFile {
    pub path: String,
    pub size: u64,
    /// Unix seconds of the last modification.
    pub modified: i64,
}

/// The result of a release from the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Released {
    pub id: String,
    pub rcpts: Vec<String>,
    /// The queue id of the message put back into the delivery queue.
    pub queue_id: String,
}

/// The running gateway, as the console sees it (implemented by the binary).
pub trait Gateway: Send + Sync + 'static {
    /// Messages waiting in the delivery queue (spool entries).
    fn queue_size(&self) -> u64;
    /// Process counters since start.
    fn counters(&self) -> Vec<Counter>;
    /// Listening addresses.
    fn listeners(&self) -> Vec<Listener>;
    /// Facts for the system page: (name, value) pairs (data directory,
    /// next hop, store backend...).
    fn facts(&self) -> Vec<(String, String)>;
    /// Releases quarantine item `id` to `rcpts` (empty: every recipient not
    /// released yet), recorded as done by `by`, and hands the message to the
    /// delivery queue.
    fn release<'a>(
        &'a self,
        id: &'a str,
        rcpts: &'a [String],
        by: &'a str,
    ) -> BoxFuture<'a, Result<Released, String>>;
    /// The loaded signatures.
    fn signatures(&self) -> SignatureInfo;
    /// Loads the signature databases again (on failure the old ones stay).
    fn reload_signatures(&self) -> BoxFuture<'_, Result<SignatureInfo, String>>;
    /// The rules engine's policy, when this gateway has one to show.
    fn policy(&self) -> Option<Arc<dyn PolicyControl>> {
        None
    }
}

/// The effective policy and where it comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicySource {
    /// The TOML text in force (empty when there is none).
    pub text: String,
    /// The file it was read from, if any.
    pub path: Option<String>,
    /// Whether the console may save it (false for an inline `[policy]`
    /// section of the main configuration).
    pub editable: bool,
    /// Why it is read-only, or where it will be written.
    pub note: String,
}

/// A policy that compiled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicySummary {
    pub rules: Vec<String>,
    pub policies: Vec<String>,
}

/// One verdict of a dry run (one per group of recipients sharing a policy).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DryRunVerdict {
    pub policy: String,
    pub recipients: Vec<String>,
    pub score: f64,
    pub required: f64,
    pub spam: bool,
    /// (rule, points)
    pub hits: Vec<(String, f64)>,
    /// `kind (rule)`, strongest first.
    pub actions: Vec<String>,
    pub allowed: bool,
    pub denied: bool,
}

/// The rules engine's policy, as the console edits it (implemented by the
/// binary). Calls may be CPU work: the console runs them on blocking threads.
pub trait PolicyControl: Send + Sync + 'static {
    fn source(&self) -> PolicySource;
    /// Compiles `text`; `Err` carries every error, one per line, with its
    /// key path and line.
    fn check(&self, text: &str) -> Result<PolicySummary, String>;
    /// Evaluates `message` (with this envelope; empty `rcpts`: the
    /// message's To/Cc) under `text` without saving anything.
    fn dry_run(
        &self,
        text: &str,
        message: &[u8],
        mail_from: &str,
        rcpts: &[String],
    ) -> Result<Vec<DryRunVerdict>, String>;
    /// Checks, writes (atomically) and applies `text` without a restart.
    /// Returns the text that was in force before.
    fn save(&self, text: &str) -> Result<String, String>;
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: mxguard_store::Store,
    pub gateway: Arc<dyn Gateway>,
    pub settings: Arc<WebSettings>,
    pub limiter: Arc<auth::LoginLimiter>,
    pub cache: Arc<QueryCache>,
    pub started: Instant,
    pub started_at: SystemTime,
}

impl AppState {
    pub fn new(
        store: mxguard_store::Store,
        gateway: Arc<dyn Gateway>,
        settings: WebSettings,
    ) -> AppState {
        let limiter = Arc::new(auth::LoginLimiter::new(
            settings.login_max_failures,
            settings.login_window,
        ));
        AppState {
            store,
            gateway,
            cache: Arc::new(QueryCache::new(settings.cache_ttl)),
            settings: Arc::new(settings),
            limiter,
            started: Instant::now(),
            started_at: SystemTime::now(),
        }
    }
}

/// Recent dashboard and report results, reused for [`WebSettings::cache_ttl`]
/// (or longer for the ones [`keep_warm`] refreshes).
pub struct QueryCache {
    ttl: Duration,
    entries: std::sync::Mutex<std::collections::HashMap<String, CacheEntry>>,
}

struct CacheEntry {
    at: Instant,
    ttl: Duration,
    value: Arc<dyn std::any::Any + Send + Sync>,
}

impl QueryCache {
    pub fn new(ttl: Duration) -> QueryCache {
        QueryCache {
            ttl,
            entries: Default::default(),
        }
    }

    /// The value for `key` if it is younger than its TTL, with its age.
    pub fn get<T: Send + Sync + 'static>(&self, key: &str) -> Option<(Arc<T>, Duration)> {
        let m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.get(key)?;
        let age = e.at.elapsed();
        if age >= e.ttl {
            return None;
        }
        e.value.clone().downcast::<T>().ok().map(|v| (v, age))
    }

    /// Keeps `v` for the cache TTL (nothing when it is 0).
    pub fn put<T: Send + Sync + 'static>(&self, key: String, v: Arc<T>) {
        self.put_for(key, v, self.ttl)
    }

    /// Keeps `v` for `ttl`.
    pub fn put_for<T: Send + Sync + 'static>(&self, key: String, v: Arc<T>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, e| e.at.elapsed() < e.ttl);
        m.insert(
            key,
            CacheEntry {
                at: Instant::now(),
                ttl,
                value: v,
            },
        );
    }

    /// Forgets everything (after a change the numbers show, e.g. a release).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Refreshes the numbers of the pages people open most, every `every`, so
/// that they never wait for the store: the dashboard over 24 hours and 7 days,
/// the reports page over 24 hours and 7 days (and the same through the API).
/// Each refresh is kept for twice `every` and shown with its age ("numbers
/// from N s ago"); other periods are computed on request. Runs until
/// dropped; a store error is logged and tried again at the next round.
///
/// Cost: one round reads only the pre-aggregated counters (about 0.3 s of
/// one core with a million events over the week on SQLite).
pub async fn keep_warm(state: AppState, every: Duration) {
    if every.is_zero() {
        return std::future::pending().await;
    }
    let keep = every * 2;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t0 = Instant::now();
        for hours in [24, 168] {
            if let Err(e) = pages::warm_dashboard(&state, hours, keep).await {
                tracing::warn!("console: refreshing the dashboard numbers: {e}");
            }
        }
        for since in ["24h", "7d"] {
            let pairs = [("since".to_string(), since.to_string())];
            if let Ok(rq) = pages::report_query(&pairs) {
                if let Err(e) = pages::warm_report(&state, &rq, keep).await {
                    tracing::warn!("console: refreshing the report numbers: {e}");
                }
            }
        }
        tracing::debug!(
            ms = t0.elapsed().as_millis() as u64,
            "console numbers refreshed"
        );
    }
}

impl AppState {
    /// Releases through the gateway; the cached numbers are dropped.
    pub async fn release_item(
        &self,
        id: &str,
        rcpts: &[String],
        by: &str,
    ) -> Result<Released, String> {
        let r = self.gateway.release(id, rcpts, by).await;
        self.cache.clear();
        r
    }

    /// Deletes a quarantine item; the cached numbers are dropped.
    pub async fn delete_item(&self, id: &str) -> Result<bool, mxguard_store::StoreError> {
        let r = self.store.delete(id).await;
        self.cache.clear();
        r
    }
}

/// A gateway with nothing behind it (tests, tools): empty queue, no
/// counters, releases refused.
pub struct NoGateway;

impl Gateway for NoGateway {
    fn queue_size(&self) -> u64 {
        0
    }
    fn counters(&self) -> Vec<Counter> {
        Vec::new()
    }
    fn listeners(&self) -> Vec<Listener> {
        Vec::new()
    }
    fn facts(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn release<'a>(
        &'a self,
        id: &'a str,
        _rcpts: &'a [String],
        _by: &'a str,
    ) -> BoxFuture<'a, Result<Released, String>> {
        Box::pin(async move { Err(format!("no gateway to release {id} through")) })
    }
    fn signatures(&self) -> SignatureInfo {
        SignatureInfo::default()
    }
    fn reload_signatures(&self) -> BoxFuture<'_, Result<SignatureInfo, String>> {
        Box::pin(async { Err("no signature engine".to_string()) })
    }
}
