//! mxguard's store: quarantine, event log and reports, on SQLite (embedded,
//! the default) or PostgreSQL (several gateway nodes sharing one store).
//!
//! ```text
//!  gateway ──put (durable before the SMTP answer)──▶ quarantine ◀── search / get / message / release / delete / expire
//!  gateway ──EventWriter (bounded channel)──▶ writer task ──batch transaction──▶ events + hourly/daily counters
//!  console / CLI ◀── events / export CSV, JSONL ◀── events          report ◀── counters only
//! ```
//!
//! One API over both databases: [`Store::open`] takes `sqlite://PATH` or
//! `postgres://...`, applies the migrations of that backend and hands out a
//! cloneable handle (a connection pool inside).
//!
//! # DESIGN
//!
//! ## Backends
//! sqlx 0.9's `Any` driver with runtime queries only: the SQL text is the same
//! on both backends (`$n` placeholders, `INSERT ... ON CONFLICT ... DO
//! UPDATE`, `LIKE ... ESCAPE`), except `BEGIN IMMEDIATE` on SQLite (a write
//! transaction takes the write lock at once, so it waits on the busy timeout
//! instead of failing on a snapshot upgrade), `ILIKE` for event searches on
//! PostgreSQL, and plain `?` placeholders for the long multi-row statements
//! on SQLite (it looks `$n` parameters up by a linear search). Times are UTC
//! unix seconds in `BIGINT`s; JSON is stored as text; NUL characters in text
//! (PostgreSQL cannot store them) become U+FFFD on both backends. Each backend
//! has its own migrations folder (`migrations/sqlite`, `migrations/postgres`),
//! embedded in the binary and applied by [`Store::open`];
//! [`Store::schema_version`] reports the newest applied. Numbering: 1
//! quarantine, 2 events, 3 report counters, 4 the console's users,
//! sessions, API tokens and policy history ([`console`]), 5 the events'
//! address index. A database migrated by a newer mxguard is
//! refused with [`StoreError::SchemaTooNew`].
//!
//! ## Schema
//! - `quarantine` (id = the gateway's queue id; envelope, subject, reason,
//!   action, policy, findings as JSON, size, SHA-256 of the original, release
//!   state and token), `quarantine_rcpt` (one row per recipient, with its
//!   release), `quarantine_threat` (one row per threat name, for search),
//!   `quarantine_message` (the message, deflate-compressed, apart so searches
//!   never read it) and `quarantine_release` (the release history). Text
//!   searches use Unicode-lowercased copies, so they agree on both backends.
//! - `events`: one row per message per node (envelope, size, verdict, action,
//!   findings and per-engine verdicts as JSON, spam score, latency, stamp
//!   result, Message-ID), indexed by time, queue id and Message-ID.
//! - `event_address`: one row per event and distinct address (sender kind 0,
//!   recipients kind 1; lowercased, with the part after the first `@` as
//!   the domain), filled by an `AFTER INSERT` trigger on `events` (so no
//!   writer can forget it) and deleted by time with the events. A trace by
//!   address or domain prefix is a range on its indexes (byte order on both
//!   backends: SQLite's BINARY, a `"C"` collation on PostgreSQL); text
//!   without `@` still scans the events of the period (`LIKE`/`ILIKE`).
//! - Counters: see "Pre-aggregation".
//!
//! ## Durability
//! - [`Store::put`] returns after the transaction holding the message has
//!   committed: on SQLite in WAL mode with `synchronous=FULL` (the WAL is
//!   fsynced at every commit); on PostgreSQL with `synchronous_commit=on` for
//!   that transaction whatever the server default. The gateway answers 250
//!   only after that. [`Store::mark_released`] is durable the same way.
//! - Events are *not* durable when [`EventWriter::send`] returns: they sit in
//!   a bounded in-memory channel until the writer task commits their batch.
//!   A crash of the process loses what was queued (at most the channel's
//!   capacity); a database outage does not (the writer keeps its batch and
//!   retries). [`EventWriter::flush`] returns when everything sent before it
//!   has committed.
//! - An unreachable database is [`StoreError::Unavailable`] after at most
//!   [`StoreOptions::acquire_timeout`] (5 s): the gateway tempfails (451) the
//!   messages whose quarantine copy could not be stored; so is a write that
//!   waited [`StoreOptions::busy_timeout`] (5 s) for a lock (SQLite's busy
//!   timeout, PostgreSQL's `lock_timeout`). Recovery needs
//!   nothing: the pool pings a connection before lending it, drops dead ones
//!   and connects again on demand (tested by stopping PostgreSQL the hard way
//!   and starting it again under a live `Store` and `EventWriter`).
//!
//! ## Batching
//! [`EventWriter`]: a bounded tokio mpsc channel (50,000 events by default)
//! and one writer task that takes up to 2,000 events, or what arrived within
//! 50 ms, and writes them in one transaction: multi-row `INSERT`s into
//! `events` and one upsert per distinct counter key (keys merged in memory
//! first, so bigger batches under load cost less per event). When the
//! channel is full a sender waits up to `send_timeout` (100 ms), then drops
//! the event, counts it in [`WriterStats::dropped`] and logs a warning:
//! events are never lost silently. A gateway that must not deliver
//! unrecorded mail reserves a slot first ([`EventWriter::reserve`]) and
//! tempfails when none is free. See [`writer`] for the details.
//!
//! ## Pre-aggregation
//! The writer maintains, in the same transaction as the events:
//! `stats_hourly` (messages, bytes, latency sum and max per hour, node,
//! verdict, action), `latency_hourly` (a latency histogram per hour and node),
//! `threat_hourly` and `engine_hourly` (messages per threat and per detecting
//! engine), and `address_daily` (messages and flagged messages per UTC day,
//! node, and sender, recipient, sender domain, recipient domain). Reports read
//! only these tables, so "messages per hour by verdict for the last 7 days"
//! reads at most 168 × nodes × verdicts × actions rows, whatever the size of
//! the log, and reports outlive the events' retention
//! ([`Store::expire_reports`] is separate). Report ranges are rounded out to
//! whole hours (whole UTC days for address rankings). On SQLite the counter
//! tables are `WITHOUT ROWID` (one B-tree per upsert).
//!
//! Address rankings of past days are compacted to the 1,000 busiest
//! addresses per kind, node and day ([`Store::compact_reports`], run by the
//! writer every 10 minutes): distinct senders grow with the traffic, and
//! without this "top senders of the week" would read about as many rows as
//! the event log. Counts are exact on every day an address was among the
//! busiest; see [`Store::compact_reports`] for the bound otherwise.
//!
//! Latency percentiles come from the histogram: exact below 16 µs, then 8
//! log-linear buckets per power of two, so a reported percentile is the upper
//! bound of the bucket that holds the true (nearest-rank) value: never below
//! it and at most 12.5 % above it (and never above the maximum seen). The
//! average and the maximum are exact.
//!
//! ## Calling from blocking threads
//! All methods are async. The gateway's end-of-data work runs in
//! `spawn_blocking`; from there call them with
//! `tokio::runtime::Handle::current().block_on(store.put(&item))` (allowed
//! on blocking threads, never on a runtime worker), and use
//! [`EventWriter::send_blocking`] / [`EventWriter::reserve_blocking`] for
//! events.

pub mod console;
mod error;
pub mod events;
pub mod quarantine;
pub mod report;
mod sql;
pub mod writer;

pub use console::{token_hash, ApiToken, PolicyChange, Session, User};
pub use error::{Result, StoreError};
pub use events::{parse_time, EngineVerdict, Event, EventQuery, StoredEvent};
pub use quarantine::{
    NewQuarantine, QuarantineItem, QuarantineQuery, QuarantineSummary, RcptStatus, Release,
    ReleaseGrant, ReleaseRecord, RELEASE_HEADER,
};
pub use report::{
    AddressCount, AddressKind, EngineCount, Granularity, LatencyStats, Report, ReportQuery,
    ThreatCount, VolumeRow,
};
pub use writer::{EventPermit, EventWriter, EventWriterConfig, SendError, WriterStats};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Row};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backend a URL names.
    pub fn of_url(url: &str) -> Result<Backend> {
        let scheme = url.split(':').next().unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::BadUrl {
                url: redact(url),
                why: "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            }),
        }
    }
}

/// Connection settings; [`StoreOptions::default`] suits the gateway.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (SQLite: readers; there is one writer at a time anyway).
    pub max_connections: u32,
    /// How long a call waits for a connection before it fails with
    /// [`StoreError::Unavailable`]; bounds how long an SMTP client waits for
    /// its 451 when the database is down.
    pub acquire_timeout: Duration,
    /// How long a write waits for a lock before failing with
    /// [`StoreError::Unavailable`] (SQLite: `busy_timeout`; PostgreSQL:
    /// `lock_timeout`).
    pub busy_timeout: Duration,
    /// SQLite: page cache per connection, in MiB (SQLite's default is 2).
    pub sqlite_cache_mib: u32,
    /// PostgreSQL: `work_mem` of our sessions, in MiB (0: the server's),
    /// so that report aggregations stay in memory (the default 4 MB makes
    /// the week's sender ranking spill to disk at a million events).
    pub postgres_work_mem_mib: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            sqlite_cache_mib: 32,
            postgres_work_mem_mib: 32,
        }
    }
}

/// The store: a cheap-to-clone handle on a connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static DRIVERS: Once = Once::new();

/// The URL with its password masked (`postgres://user:***@host/db`), for
/// messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The file path and query of a `sqlite:` URL (`sqlite://PATH`, `sqlite:PATH`).
fn sqlite_path(url: &str) -> (&str, Option<&str>) {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    }
}

impl Store {
    /// Opens the store at `url` with default options; see [`Store::open_with`].
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, StoreOptions::default()).await
    }

    /// Opens (SQLite: creates if missing, parent folders included) the
    /// database at `url` and applies the pending migrations.
    ///
    /// - `sqlite://PATH` (relative or absolute; `sqlite::memory:` for a
    ///   private in-memory database with one connection): WAL journal,
    ///   `synchronous=FULL`, foreign keys on, `busy_timeout` from `opts`.
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]`: the
    ///   database must exist; several nodes may open it at once (migrations
    ///   take an advisory lock).
    ///
    /// A database that cannot be reached is [`StoreError::Unavailable`].
    pub async fn open_with(url: &str, opts: StoreOptions) -> Result<Store> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::of_url(url)?;
        let mut url = url.to_string();
        let mut max_connections = opts.max_connections.max(1);
        if backend == Backend::Sqlite {
            let (path, query) = sqlite_path(&url);
            let memory = path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory"));
            if memory {
                max_connections = 1;
            } else {
                if path.is_empty() {
                    return Err(StoreError::BadUrl {
                        url,
                        why: "no file path".into(),
                    });
                }
                if let Some(parent) = std::path::Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            StoreError::Unavailable(format!(
                                "cannot create {}: {e}",
                                parent.display()
                            ))
                        })?;
                    }
                }
                if !query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("mode="))) {
                    url.push(if query.is_some() { '&' } else { '?' });
                    url.push_str("mode=rwc");
                }
                // WAL is a property of the file; switching needs an exclusive
                // lock that busy_timeout does not wait for, so do it once here,
                // on one connection, before the pool exists.
                let mut conn = sqlx::AnyConnection::connect(&url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {}",
                    opts.busy_timeout.as_millis()
                )))
                .execute(&mut conn)
                .await?;
                let mode: String = sqlx::query("PRAGMA journal_mode = WAL")
                    .fetch_one(&mut conn)
                    .await?
                    .try_get(0)?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(mode, "SQLite did not switch to WAL mode");
                }
                conn.close().await?;
            }
        }
        let connect = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::BadUrl {
            url: redact(&url),
            why: e.to_string(),
        })?;
        let busy_ms = opts.busy_timeout.as_millis();
        let cache_kib = u64::from(opts.sqlite_cache_mib.max(1)) * 1024;
        let work_mem = opts.postgres_work_mem_mib;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(true)
            .idle_timeout(Some(Duration::from_secs(600)))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            format!("PRAGMA busy_timeout = {busy_ms}"),
                            "PRAGMA synchronous = FULL".to_string(),
                            "PRAGMA foreign_keys = ON".to_string(),
                            format!("PRAGMA cache_size = -{cache_kib}"),
                            "PRAGMA temp_store = MEMORY".to_string(),
                        ] {
                            sqlx::query(sqlx::AssertSqlSafe(pragma))
                                .execute(&mut *conn)
                                .await?;
                        }
                    } else {
                        // Like SQLite's busy timeout: a write that waits
                        // this long for a lock fails (Unavailable) instead
                        // of holding an SMTP client forever.
                        sqlx::query(sqlx::AssertSqlSafe(format!("SET lock_timeout = {busy_ms}")))
                            .execute(&mut *conn)
                            .await?;
                        if work_mem > 0 {
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "SET work_mem = '{work_mem}MB'"
                            )))
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The newest migration applied to the database (for `mxguard store info`).
    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> =
            sqlx::query("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        Ok(v.unwrap_or(0))
    }

    /// The newest migration this build carries.
    pub fn latest_schema_version() -> i64 {
        sqlx::migrate!("migrations/sqlite")
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// Closes the pool: waits for borrowed connections to come back, then
    /// closes them all. Later calls fail with [`StoreError::Unavailable`].
    /// Shut an [`EventWriter`] down first, or it retries until its own
    /// shutdown gives up.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The underlying pool, for tests and tools that need raw SQL.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction (SQLite: `BEGIN IMMEDIATE`).
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(Backend::of_url("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(matches!(
            Backend::of_url("mysql://x"),
            Err(StoreError::BadUrl { .. })
        ));
        assert_eq!(sqlite_path("sqlite://./data/x.db"), ("./data/x.db", None));
        assert_eq!(
            sqlite_path("sqlite:///abs/x.db?mode=rw"),
            ("/abs/x.db", Some("mode=rw"))
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
