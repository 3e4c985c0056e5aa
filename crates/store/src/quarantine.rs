//! The quarantine: original messages (compressed) with their envelope,
//! findings and release history.
//!
//! # Release, and "never re-quarantined for the same reason"
//! The store records releases; re-injecting the message is the gateway's job.
//! The flow:
//! 1. [`Store::mark_released`]`(id, rcpts, by)` first (durable): it records who
//!    released the message to which recipients and returns a [`Release`] with
//!    a random release token (one per quarantine item, the same for every
//!    later release of that item).
//! 2. The gateway spools the original message ([`Store::message`]) for those
//!    recipients with the header `X-MXGuard-Released: <token>`
//!    ([`RELEASE_HEADER`], [`Release::header_value`]) and a fresh stamp. If
//!    this fails, releasing again is safe (same token, one more history row).
//! 3. Wherever the message is scanned again (a hub, the mailbox tier after a
//!    signature update), a scan that would quarantine it looks the token up
//!    with [`Store::release_grant`]. When the grant exists,
//!    [`ReleaseGrant::covers`] the current findings (every threat name was
//!    already in the released item) and [`ReleaseGrant::released_to`] the
//!    recipient, the message is delivered; anything new is quarantined as
//!    usual, under a new id.
//!
//! Like stamps, the release header must be removed from messages of untrusted
//! clients on arrival; a token only exempts the threats of its own item.

use crate::sql::{clean, contains_pattern, i64_of, u64_of, Arg, Sql};
use crate::{now_secs, Backend, Result, Store, StoreError};
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use mxguard_types::Finding;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::io::{Read, Write};

/// Header that carries a release token on a released message.
pub const RELEASE_HEADER: &str = "X-MXGuard-Released";

/// Messages above this size are compressed and checked on a blocking thread.
const BLOCKING_THRESHOLD: usize = 256 * 1024;

/// What the gateway knows about a message it quarantines.
#[derive(Debug, Clone)]
pub struct NewQuarantine<'a> {
    /// The gateway's queue id. A second `put` with the same id replaces the
    /// first (the gateway may store a `backup` copy, then replace it with a
    /// quarantine record when cleaning fails).
    pub id: String,
    /// Unix seconds.
    pub time: i64,
    pub node: String,
    pub client_ip: String,
    /// Envelope sender (empty for the null sender).
    pub mail_from: String,
    /// Envelope recipients, in order.
    pub rcpts: Vec<String>,
    pub subject: String,
    /// `infected`, `suspicious`, `unscannable`, `backup`, ...
    pub reason: String,
    /// The action taken (`quarantine`, `clean`, `tag`, ...).
    pub action: String,
    pub findings: Vec<Finding>,
    /// The policy (rule set) that decided, when there is one.
    pub policy: Option<String>,
    /// The whole message as received (with the gateway's Received line).
    pub message: &'a [u8],
}

/// Quarantine search filters. Text filters are case-insensitive substrings;
/// all given filters must match. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct QuarantineQuery {
    pub sender: Option<String>,
    /// Matches any of the recipients.
    pub recipient: Option<String>,
    pub subject: Option<String>,
    /// Matches any threat name in the findings.
    pub threat: Option<String>,
    /// Exact reason (`infected`, `suspicious`, `unscannable`, `backup`).
    pub reason: Option<String>,
    /// Exact node id.
    pub node: Option<String>,
    /// `time >= since` (unix seconds).
    pub since: Option<i64>,
    /// `time < until` (unix seconds).
    pub until: Option<i64>,
    /// `Some(true)`: only released items; `Some(false)`: only unreleased.
    pub released: Option<bool>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u32>,
    pub offset: u32,
}

/// One line of a quarantine listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineSummary {
    pub id: String,
    pub time: i64,
    pub node: String,
    pub client_ip: String,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub subject: String,
    pub reason: String,
    pub action: String,
    /// Distinct threat names, in finding order.
    pub threats: Vec<String>,
    /// Size of the original message.
    pub size: u64,
    /// Time of the last release, if any.
    pub released_at: Option<i64>,
}

/// A recipient of a quarantined message and its release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RcptStatus {
    pub address: String,
    pub released_at: Option<i64>,
    pub released_by: Option<String>,
}

/// One release in an item's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub time: i64,
    pub by: String,
    pub rcpts: Vec<String>,
}

/// Everything about one quarantined message but its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineItem {
    #[serde(flatten)]
    pub summary: QuarantineSummary,
    pub policy: Option<String>,
    pub findings: Vec<Finding>,
    /// Bytes stored (compressed).
    pub stored_size: u64,
    /// `deflate` or `none`.
    pub compression: String,
    /// SHA-256 of the original message, hex.
    pub sha256: String,
    pub recipients: Vec<RcptStatus>,
    /// Oldest first.
    pub releases: Vec<ReleaseRecord>,
    pub release_token: Option<String>,
}

/// What [`Store::mark_released`] recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    /// Goes into the [`RELEASE_HEADER`] of the re-injected message.
    pub token: String,
    pub time: i64,
    pub by: String,
    /// The recipients released this time (original spelling).
    pub rcpts: Vec<String>,
    /// True when every recipient of the message has now been released.
    pub all_released: bool,
    pub reason: String,
    pub threats: Vec<String>,
}

impl Release {
    /// The value of the [`RELEASE_HEADER`] to add to the re-injected message.
    pub fn header_value(&self) -> &str {
        &self.token
    }
}

/// What a release token allows; see the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseGrant {
    pub id: String,
    pub reason: String,
    /// Threat names of the released item.
    pub threats: Vec<String>,
    /// Every recipient released so far (original spelling).
    pub rcpts: Vec<String>,
    pub released_at: i64,
}

impl ReleaseGrant {
    /// True when every finding was already in the released item: the message
    /// is not to be quarantined again for these.
    pub fn covers(&self, findings: &[Finding]) -> bool {
        findings.iter().all(|f| self.threats.contains(&f.name))
    }

    /// True when `rcpt` was released (case-insensitive).
    pub fn released_to(&self, rcpt: &str) -> bool {
        let r = rcpt.to_lowercase();
        self.rcpts.iter().any(|a| a.to_lowercase() == r)
    }
}

fn threat_names(findings: &[Finding]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in findings {
        if !out.contains(&f.name) {
            out.push(f.name.clone());
        }
    }
    out
}

fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// (compression, stored bytes, sha256) of a message.
fn pack(message: &[u8]) -> (&'static str, Vec<u8>, String) {
    let sha = sha256_hex(message);
    let mut enc = ZlibEncoder::new(
        Vec::with_capacity(message.len() / 3 + 64),
        Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let packed = enc
        .write_all(message)
        .and_then(|_| enc.finish())
        .unwrap_or_default();
    if !packed.is_empty() && packed.len() < message.len() {
        ("deflate", packed, sha)
    } else {
        ("none", message.to_vec(), sha)
    }
}

fn unpack(id: &str, compression: &str, data: Vec<u8>, sha: &str, size: u64) -> Result<Vec<u8>> {
    let corrupt = |why: String| StoreError::Corrupt {
        id: id.to_string(),
        why,
    };
    let message = match compression {
        "none" => data,
        "deflate" => {
            let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 30));
            ZlibDecoder::new(&data[..])
                .read_to_end(&mut out)
                .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
            out
        }
        other => return Err(corrupt(format!("unknown compression {other:?}"))),
    };
    if sha256_hex(&message) != sha {
        return Err(corrupt("SHA-256 mismatch".into()));
    }
    Ok(message)
}

fn json_vec(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

const SUMMARY_COLS: &str = "q.id, q.time, q.node, q.client_ip, q.mail_from, q.rcpts, q.subject, q.reason, q.action, q.findings, q.size, q.released_at";

fn summary_of(row: &AnyRow) -> Result<(QuarantineSummary, Vec<Finding>)> {
    let findings: Vec<Finding> =
        serde_json::from_str(&row.try_get::<String, _>("findings")?).unwrap_or_default();
    Ok((
        QuarantineSummary {
            id: row.try_get("id")?,
            time: row.try_get("time")?,
            node: row.try_get("node")?,
            client_ip: row.try_get("client_ip")?,
            mail_from: row.try_get("mail_from")?,
            rcpts: json_vec(&row.try_get::<String, _>("rcpts")?),
            subject: row.try_get("subject")?,
            reason: row.try_get("reason")?,
            action: row.try_get("action")?,
            threats: threat_names(&findings),
            size: u64_of(row.try_get("size")?),
            released_at: row.try_get("released_at")?,
        },
        findings,
    ))
}

fn random_token() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::Database(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Store {
    /// Stores a quarantined message; returns once it is durable (see the
    /// crate doc). The message is deflate-compressed (kept as is when that
    /// does not make it smaller) with its SHA-256, checked on every read.
    pub async fn put(&self, item: &NewQuarantine<'_>) -> Result<()> {
        if item.id.is_empty() {
            return Err(StoreError::Invalid("empty quarantine id".into()));
        }
        let (compression, data, sha) = if item.message.len() > BLOCKING_THRESHOLD {
            let m = item.message.to_vec();
            tokio::task::spawn_blocking(move || {
                let (c, d, s) = pack(&m);
                (c, d, s)
            })
            .await
            .map_err(|e| StoreError::Database(format!("compression task failed: {e}")))?
        } else {
            pack(item.message)
        };
        let findings = serde_json::to_string(&item.findings).unwrap_or_else(|_| "[]".into());
        let rcpts = serde_json::to_string(&item.rcpts).unwrap_or_else(|_| "[]".into());

        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET LOCAL synchronous_commit = on")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM quarantine WHERE id = $1")
            .bind(clean(&item.id))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO quarantine (id, time, node, client_ip, mail_from, mail_from_lc, rcpts, subject, subject_lc, \
             reason, action, policy, findings, size, stored_size, sha256) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
        )
        .bind(clean(&item.id))
        .bind(item.time)
        .bind(clean(&item.node))
        .bind(clean(&item.client_ip))
        .bind(clean(&item.mail_from))
        .bind(clean(&item.mail_from.to_lowercase()))
        .bind(rcpts)
        .bind(clean(&item.subject))
        .bind(clean(&item.subject.to_lowercase()))
        .bind(clean(&item.reason))
        .bind(clean(&item.action))
        .bind(item.policy.as_deref().map(clean))
        .bind(findings)
        .bind(i64_of(item.message.len() as u64))
        .bind(i64_of(data.len() as u64))
        .bind(sha)
        .execute(&mut *tx)
        .await?;
        if !item.rcpts.is_empty() {
            let mut q =
                Sql::new("INSERT INTO quarantine_rcpt (qid, pos, address, address_lc) VALUES ");
            for (i, r) in item.rcpts.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ",(" });
                q.arg(Arg::S(item.id.clone()))
                    .push(",")
                    .arg(Arg::I(i as i64))
                    .push(",")
                    .arg(Arg::S(r.clone()))
                    .push(",")
                    .arg(Arg::S(r.to_lowercase()))
                    .push(")");
            }
            q.query(self.backend).execute(&mut *tx).await?;
        }
        let mut threats: Vec<(&str, &str)> = Vec::new();
        for f in &item.findings {
            let k = (f.name.as_str(), f.engine.as_str());
            if !threats.contains(&k) {
                threats.push(k);
            }
        }
        if !threats.is_empty() {
            let mut q =
                Sql::new("INSERT INTO quarantine_threat (qid, name, name_lc, engine) VALUES ");
            for (i, (name, engine)) in threats.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ",(" });
                q.arg(Arg::S(item.id.clone()))
                    .push(",")
                    .arg(Arg::S(name.to_string()))
                    .push(",")
                    .arg(Arg::S(name.to_lowercase()))
                    .push(",")
                    .arg(Arg::S(engine.to_string()))
                    .push(")");
            }
            q.query(self.backend).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO quarantine_message (qid, compression, data) VALUES ($1, $2, $3)")
            .bind(clean(&item.id))
            .bind(compression)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    fn where_clause(&self, q: &QuarantineQuery, sql: &mut Sql) {
        sql.push(" WHERE 1=1");
        let like = |sql: &mut Sql, prefix: &str, v: &str| {
            sql.push(prefix)
                .arg(Arg::S(contains_pattern(&v.to_lowercase())))
                .push(" ESCAPE '\\'");
        };
        if let Some(v) = &q.sender {
            like(sql, " AND q.mail_from_lc LIKE ", v);
        }
        if let Some(v) = &q.recipient {
            like(
                sql,
                " AND EXISTS (SELECT 1 FROM quarantine_rcpt r WHERE r.qid = q.id AND r.address_lc LIKE ",
                v,
            );
            sql.push(")");
        }
        if let Some(v) = &q.subject {
            like(sql, " AND q.subject_lc LIKE ", v);
        }
        if let Some(v) = &q.threat {
            like(
                sql,
                " AND EXISTS (SELECT 1 FROM quarantine_threat t WHERE t.qid = q.id AND t.name_lc LIKE ",
                v,
            );
            sql.push(")");
        }
        if let Some(v) = &q.reason {
            sql.push(" AND q.reason = ").arg(Arg::S(v.clone()));
        }
        if let Some(v) = &q.node {
            sql.push(" AND q.node = ").arg(Arg::S(v.clone()));
        }
        if let Some(v) = q.since {
            sql.push(" AND q.time >= ").arg(Arg::I(v));
        }
        if let Some(v) = q.until {
            sql.push(" AND q.time < ").arg(Arg::I(v));
        }
        match q.released {
            Some(true) => {
                sql.push(" AND q.released_at IS NOT NULL");
            }
            Some(false) => {
                sql.push(" AND q.released_at IS NULL");
            }
            None => {}
        }
    }

    /// Searches the quarantine, newest first (then by id, descending).
    pub async fn search(&self, q: &QuarantineQuery) -> Result<Vec<QuarantineSummary>> {
        let mut sql = Sql::new(format!("SELECT {SUMMARY_COLS} FROM quarantine q"));
        self.where_clause(q, &mut sql);
        sql.push(" ORDER BY q.time DESC, q.id DESC LIMIT ")
            .arg(Arg::I(q.limit.map(i64::from).unwrap_or(i64::MAX)))
            .push(" OFFSET ")
            .arg(Arg::I(i64::from(q.offset)));
        let rows = sql.query(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(summary_of(r)?.0)).collect()
    }

    /// How many items match `q` (its limit and offset ignored), for paging.
    pub async fn count(&self, q: &QuarantineQuery) -> Result<u64> {
        let mut sql = Sql::new("SELECT COUNT(*) FROM quarantine q");
        self.where_clause(q, &mut sql);
        let n: i64 = sql
            .query(self.backend)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(u64_of(n))
    }

    /// One item with its findings, recipients and release history.
    pub async fn get(&self, id: &str) -> Result<Option<QuarantineItem>> {
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUMMARY_COLS}, q.policy, q.stored_size, q.sha256, q.release_token, m.compression \
             FROM quarantine q LEFT JOIN quarantine_message m ON m.qid = q.id WHERE q.id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let (summary, findings) = summary_of(&row)?;
        let recipients = sqlx::query(
            "SELECT address, released_at, released_by FROM quarantine_rcpt WHERE qid = $1 ORDER BY pos",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(RcptStatus {
                address: r.try_get(0)?,
                released_at: r.try_get(1)?,
                released_by: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let releases = sqlx::query(
            "SELECT time, released_by, rcpts FROM quarantine_release WHERE qid = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ReleaseRecord {
                time: r.try_get(0)?,
                by: r.try_get(1)?,
                rcpts: json_vec(&r.try_get::<String, _>(2)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(QuarantineItem {
            summary,
            policy: row.try_get("policy")?,
            findings,
            stored_size: u64_of(row.try_get("stored_size")?),
            compression: row
                .try_get::<Option<String>, _>("compression")?
                .unwrap_or_default(),
            sha256: row.try_get("sha256")?,
            recipients,
            releases,
            release_token: row.try_get("release_token")?,
        }))
    }

    /// The original message (decompressed and checked against its SHA-256),
    /// for `.eml` download and release.
    pub async fn message(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let Some(row) = sqlx::query(
            "SELECT m.compression, m.data, q.sha256, q.size FROM quarantine_message m \
             JOIN quarantine q ON q.id = m.qid WHERE m.qid = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let compression: String = row.try_get(0)?;
        let data: Vec<u8> = row.try_get(1)?;
        let sha: String = row.try_get(2)?;
        let size = u64_of(row.try_get(3)?);
        let id = id.to_string();
        if data.len() > BLOCKING_THRESHOLD / 4 {
            tokio::task::spawn_blocking(move || unpack(&id, &compression, data, &sha, size))
                .await
                .map_err(|e| StoreError::Database(format!("decompression task failed: {e}")))?
                .map(Some)
        } else {
            unpack(&id, &compression, data, &sha, size).map(Some)
        }
    }

    /// Records a release of item `id` to `rcpts` (empty: all its recipients)
    /// by `by`; see the module doc for the flow. Every address must be one
    /// of the item's recipients (case-insensitive), else
    /// [`StoreError::Invalid`]. Releasing again is allowed and recorded.
    pub async fn mark_released(&self, id: &str, rcpts: &[String], by: &str) -> Result<Release> {
        let now = now_secs();
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET LOCAL synchronous_commit = on")
                .execute(&mut *tx)
                .await?;
            // Serialise concurrent releases of the same item.
            sqlx::query("SELECT id FROM quarantine WHERE id = $1 FOR UPDATE")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        }
        let Some(row) =
            sqlx::query("SELECT reason, findings, release_token FROM quarantine WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Err(StoreError::NotFound(id.to_string()));
        };
        let reason: String = row.try_get(0)?;
        let findings: Vec<Finding> =
            serde_json::from_str(&row.try_get::<String, _>(1)?).unwrap_or_default();
        let token: Option<String> = row.try_get(2)?;
        let all: Vec<(i64, String, Option<i64>)> = sqlx::query(
            "SELECT pos, address, released_at FROM quarantine_rcpt WHERE qid = $1 ORDER BY pos",
        )
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_>>()?;
        let mut chosen: Vec<usize> = Vec::new();
        if rcpts.is_empty() {
            chosen.extend(0..all.len());
        } else {
            for r in rcpts {
                let lc = r.to_lowercase();
                let hits: Vec<usize> = (0..all.len())
                    .filter(|&i| all[i].1.to_lowercase() == lc)
                    .collect();
                if hits.is_empty() {
                    return Err(StoreError::Invalid(format!(
                        "{r} is not a recipient of quarantine item {id}"
                    )));
                }
                for h in hits {
                    if !chosen.contains(&h) {
                        chosen.push(h);
                    }
                }
            }
        }
        if chosen.is_empty() {
            return Err(StoreError::Invalid(format!(
                "quarantine item {id} has no recipients to release to"
            )));
        }
        chosen.sort_unstable();
        let token = match token {
            Some(t) => t,
            None => random_token()?,
        };
        let released: Vec<String> = chosen.iter().map(|&i| all[i].1.clone()).collect();
        let mut upd = Sql::new("UPDATE quarantine_rcpt SET released_at = ");
        upd.arg(Arg::I(now))
            .push(", released_by = ")
            .arg(Arg::S(by.to_string()))
            .push(" WHERE qid = ")
            .arg(Arg::S(id.to_string()))
            .push(" AND pos IN (");
        for (n, &i) in chosen.iter().enumerate() {
            if n > 0 {
                upd.push(",");
            }
            upd.arg(Arg::I(all[i].0));
        }
        upd.push(")");
        upd.query(self.backend).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO quarantine_release (qid, time, released_by, rcpts) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(now)
        .bind(clean(by))
        .bind(serde_json::to_string(&released).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE quarantine SET released_at = $1, release_token = $2 WHERE id = $3")
            .bind(now)
            .bind(token.clone())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let all_released = (0..all.len()).all(|i| chosen.contains(&i) || all[i].2.is_some());
        Ok(Release {
            id: id.to_string(),
            token,
            time: now,
            by: by.to_string(),
            rcpts: released,
            all_released,
            reason,
            threats: threat_names(&findings),
        })
    }

    /// What a release token allows (`None`: unknown token, or its item was
    /// deleted or expired).
    pub async fn release_grant(&self, token: &str) -> Result<Option<ReleaseGrant>> {
        let token = token.trim();
        if token.is_empty() {
            return Ok(None);
        }
        let Some(row) = sqlx::query(
            "SELECT id, reason, findings, released_at FROM quarantine WHERE release_token = $1",
        )
        .bind(token.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get(0)?;
        let findings: Vec<Finding> =
            serde_json::from_str(&row.try_get::<String, _>(2)?).unwrap_or_default();
        let rcpts = sqlx::query(
            "SELECT address FROM quarantine_rcpt WHERE qid = $1 AND released_at IS NOT NULL ORDER BY pos",
        )
        .bind(id.clone())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ReleaseGrant {
            id,
            reason: row.try_get(1)?,
            threats: threat_names(&findings),
            rcpts,
            released_at: row.try_get::<Option<i64>, _>(3)?.unwrap_or(0),
        }))
    }

    /// Deletes an item and its message; false when there was none.
    pub async fn delete(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM quarantine WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Deletes the items quarantined before `older_than` (unix seconds,
    /// exclusive) and returns how many. Works in chunks of 500 items, each
    /// its own transaction, so that it never holds the write lock for long.
    pub async fn expire(&self, older_than: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let r = sqlx::query(
                "DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE time < $1 LIMIT 500)",
            )
            .bind(older_than)
            .execute(&self.pool)
            .await?;
            total += r.rows_affected();
            if r.rows_affected() == 0 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trip_and_incompressible() {
        let msg = b"Subject: hi\r\n\r\n".repeat(100);
        let (c, d, s) = pack(&msg);
        assert_eq!(c, "deflate");
        assert!(d.len() < msg.len() / 5);
        assert_eq!(
            unpack("x", c, d.clone(), &s, msg.len() as u64).unwrap(),
            msg
        );
        let mut bad = d;
        let n = bad.len();
        bad[n / 2] ^= 0xff;
        assert!(matches!(
            unpack("x", c, bad, &s, msg.len() as u64),
            Err(StoreError::Corrupt { .. })
        ));
        let (c, d, _) = pack(b"x");
        assert_eq!((c, d.as_slice()), ("none", &b"x"[..]));
    }
}
