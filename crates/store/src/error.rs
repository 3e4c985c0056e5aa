//! Typed errors.
//!
//! The one distinction the gateway must make is [`StoreError::Unavailable`]:
//! the database cannot be reached or cannot take the write right now (server
//! down or restarting, connection lost, pool exhausted, disk full, SQLite
//! busy beyond its timeout). The message that depended on it is answered
//! `451 4.3.0` and the client retries later. Nothing has to be reopened when
//! the database comes back: the pool drops broken connections (each one is
//! pinged before use) and opens new ones on the next call.

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or cannot take the request now; retry
    /// later (SMTP: 451). See the module doc.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The URL names no supported backend or is malformed.
    #[error("bad store url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    /// The caller asked for something that cannot be done (a recipient that
    /// is not one of the message's, an empty id, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No quarantine item with this id.
    #[error("no quarantine item {0:?}")]
    NotFound(String),
    /// A stored message does not match its checksum or cannot be decompressed.
    #[error("quarantine item {id:?} is corrupt: {why}")]
    Corrupt { id: String, why: String },
    /// The database carries a migration this build does not know: a newer
    /// mxguard migrated it. Upgrade this node.
    #[error("database schema is newer than this build (it has migration {0} that this mxguard does not know); upgrade this node")]
    SchemaTooNew(i64),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The event writer has stopped (shut down or its task ended).
    #[error("event writer closed")]
    WriterClosed,
    /// Any other database error (a bug or a broken schema, not a transient
    /// condition).
    #[error("database error: {0}")]
    Database(String),
    /// Writing an export failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True when retrying later can succeed (the gateway answers 451).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// SQLite primary result codes that mean "not now" rather than "wrong":
/// BUSY, LOCKED, NOMEM, READONLY (e.g. a read-only remount), IOERR, FULL,
/// CANTOPEN, PROTOCOL.
const SQLITE_TRANSIENT: [i64; 8] = [5, 6, 7, 8, 10, 13, 14, 15];

/// PostgreSQL SQLSTATEs (or classes) that mean "not now": connection
/// exceptions (08), insufficient resources (53), operator intervention such
/// as shutdown or startup (57P), system errors (58), serialization failures
/// and deadlocks (40001, 40P01), lock timeouts (55P03) and statement
/// timeouts (57014).
fn pg_transient(code: &str) -> bool {
    code.starts_with("08")
        || code == "55P03"
        || code == "57014"
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || code == "40001"
        || code == "40P01"
}

fn db_code_transient(code: &str) -> bool {
    // PostgreSQL SQLSTATEs are five characters (often all digits); SQLite's
    // (extended) result codes are decimal numbers below 10,000.
    if code.len() == 5 {
        return pg_transient(code);
    }
    if let Ok(n) = code.parse::<i64>() {
        // SQLite: extended codes carry the primary code in the low byte.
        return SQLITE_TRANSIENT.contains(&(n & 0xff));
    }
    false
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::Io(_)
            | E::Tls(_)
            | E::PoolTimedOut
            | E::PoolClosed
            | E::WorkerCrashed
            | E::BeginFailed
            | E::Protocol(_) => StoreError::Unavailable(e.to_string()),
            E::Database(db) => match db.code() {
                Some(code) if db_code_transient(&code) => {
                    StoreError::Unavailable(format!("{} (code {code})", db.message()))
                }
                _ => StoreError::Database(e.to_string()),
            },
            E::Configuration(_) => StoreError::Database(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError as M;
        match e {
            M::VersionMissing(v) => StoreError::SchemaTooNew(v),
            M::Execute(inner) => StoreError::from(inner),
            other => StoreError::Migration(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(db_code_transient("5")); // SQLITE_BUSY
        assert!(db_code_transient("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(db_code_transient("13")); // SQLITE_FULL
        assert!(!db_code_transient("19")); // SQLITE_CONSTRAINT
        assert!(!db_code_transient("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(db_code_transient("57P01")); // admin_shutdown
        assert!(db_code_transient("57P03")); // cannot_connect_now
        assert!(db_code_transient("08006")); // connection_failure
        assert!(db_code_transient("53300")); // too_many_connections
        assert!(!db_code_transient("23505")); // unique_violation
        assert!(db_code_transient("55P03")); // lock_not_available
        assert!(!db_code_transient("42P01")); // undefined_table
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
    }
}
