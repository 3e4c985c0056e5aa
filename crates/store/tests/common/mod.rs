//! Test fixtures: one store per test, on SQLite (a temp file) or on the
//! shared private PostgreSQL server of this test binary (one database per
//! test).

#![allow(dead_code)]

pub mod pg;

use mxguard_store::{Store, StoreOptions};
use pg::PgServer;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

static SHARED: OnceLock<PgServer> = OnceLock::new();

/// The PostgreSQL server shared by the tests of this binary (started on first use).
pub fn shared_pg() -> &'static PgServer {
    SHARED.get_or_init(PgServer::start_new)
}

/// A database for one test: its URL, and the temp dir that holds it (SQLite).
pub struct TestDb {
    pub url: String,
    pub dir: Option<tempfile::TempDir>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

pub async fn test_db(kind: Kind, name: &str) -> TestDb {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/db/{name}.db", dir.path().display());
            TestDb {
                url,
                dir: Some(dir),
            }
        }
        Kind::Postgres => {
            let server = shared_pg();
            let db = format!("t_{}_{}", name, SEQ.fetch_add(1, Ordering::Relaxed));
            TestDb {
                url: server.create_database(&db).await,
                dir: None,
            }
        }
    }
}

pub async fn open(kind: Kind, name: &str) -> (Store, TestDb) {
    open_with(kind, name, StoreOptions::default()).await
}

pub async fn open_with(kind: Kind, name: &str, opts: StoreOptions) -> (Store, TestDb) {
    let db = test_db(kind, name).await;
    let store = Store::open_with(&db.url, opts)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", db.url));
    (store, db)
}

/// Runs `$name(Kind)` as two tests, `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            use super::common::Kind;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Kind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Kind::Postgres).await
            }
        }
    };
}

/// xorshift64*: deterministic test data without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                _ => field.push(c),
            }
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}
