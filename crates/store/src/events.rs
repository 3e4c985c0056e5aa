//! The event log: one row per message per node, written in batches (see
//! [`crate::EventWriter`]), searched, exported and expired here.

use crate::report::Aggregates;
use crate::sql::{contains_pattern, i64_of, pow2_chunks, u64_of, values_list, Arg, Sql};
use crate::{Backend, Result, Store};
use mxguard_types::Finding;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::Any;
use sqlx::Row;
use std::io::Write;

/// One engine's verdict on a message (an antivirus engine, the spam filter...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineVerdict {
    /// `signatures`, `heuristics`, `clamd`, `yara`, `policy`, `spam`, ...
    pub engine: String,
    /// `clean`, `infected`, `suspicious`, `spam`, `error`, ... Anything but
    /// `clean` (or empty) counts as a detection by this engine in reports.
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_us: Option<u64>,
}

/// What happened to one message on one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The gateway's queue id.
    pub queue_id: String,
    /// Unix seconds.
    pub time: i64,
    pub node: String,
    pub client_ip: String,
    pub helo: String,
    /// Envelope sender (empty for the null sender).
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub size: u64,
    /// The overall verdict: `clean`, `suspicious`, `infected`, `error`.
    pub verdict: String,
    /// What was done: `deliver`, `reject`, `quarantine`, `drop`, `clean`,
    /// `tag`, `tempfail`.
    pub action: String,
    pub findings: Vec<Finding>,
    pub engines: Vec<EngineVerdict>,
    pub spam_score: Option<f64>,
    /// Time from end of data to the decision, in microseconds.
    pub latency_us: u64,
    /// Stamp result: e.g. `trusted:clean` (a valid stamp let the scan be
    /// skipped), `added:clean`, `stripped`.
    pub stamp: Option<String>,
    /// The Message-ID header.
    pub message_id: Option<String>,
}

/// An event as stored, with its row id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// Event log filters; all given filters must match. Text filters marked
/// "substring" are case-insensitive for ASCII; they scan the rows of the time
/// range, so give large logs a range.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// `time >= since`.
    pub since: Option<i64>,
    /// `time < until`.
    pub until: Option<i64>,
    /// Exact.
    pub node: Option<String>,
    /// Exact (indexed).
    pub queue_id: Option<String>,
    /// Exact (indexed).
    pub message_id: Option<String>,
    /// The envelope sender, case-insensitive: text with an `@` is the start
    /// of the address (`john@example.com`, `s123@`), `@` first the start of
    /// its domain (`@example.com`), both from the address index; text
    /// without `@` is a substring anywhere in the address.
    pub sender: Option<String>,
    /// Any recipient, as for `sender`.
    pub recipient: Option<String>,
    /// Exact.
    pub client_ip: Option<String>,
    /// Exact.
    pub verdict: Option<String>,
    /// Exact.
    pub action: Option<String>,
    /// Substring of the findings (threat names, and their locations and details).
    pub threat: Option<String>,
    /// At most this many rows (`None`: all). Ignored by the exports.
    pub limit: Option<u32>,
    /// Paging cursor for [`Store::events`] (newest first): only events older
    /// than this `(time, id)`, i.e. pass the last row of the previous page.
    /// Ignored by the exports.
    pub before: Option<(i64, i64)>,
}

/// Above this many index entries for an address filter, a page of events is
/// found by reading events newest first (the members are dense); at or below,
/// by looking each member up.
const DENSE_MATCHES: i64 = 5_000;

/// How a sender or recipient filter uses the address index: text with an
/// `@` is the start of an address (`john@example.com`, `s123@`,
/// `john@exam`; angle brackets allowed): `("address", prefix)`; `@` first is
/// the start of a domain (`@example.com`, `@example`): `("domain",
/// prefix)`. `None` for text without `@` (matched as a substring anywhere
/// in the address, which reads every event of the period).
/// Case-insensitive either way.
fn address_lookup(v: &str) -> Option<(&'static str, &str)> {
    let v = v.trim();
    let v = v.strip_prefix('<').unwrap_or(v);
    let v = v.strip_suffix('>').unwrap_or(v);
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    match v.find('@') {
        Some(0) if v.len() > 1 => Some(("domain", &v[1..])),
        Some(i) if i > 0 => Some(("address", v)),
        _ => None,
    }
}

/// Statements ready to run (see [`Store::prepare_events`]).
pub(crate) struct Prepared(Vec<Query<'static, Any, AnyArguments>>);

const COLS: &str = "queue_id, time, node, client_ip, helo, mail_from, rcpts, size, verdict, action, findings, engines, spam_score, latency_us, stamp, message_id";
const NCOLS: usize = 16;
/// Most rows per multi-row INSERT (16 columns: 1,024 parameters, far below
/// both backends' limits); chunks are powers of two (see `pow2_chunks`).
const ROWS_PER_INSERT: usize = 64;

fn event_args(e: &Event, out: &mut Vec<Arg>) {
    out.push(Arg::S(e.queue_id.clone()));
    out.push(Arg::I(e.time));
    out.push(Arg::S(e.node.clone()));
    out.push(Arg::S(e.client_ip.clone()));
    out.push(Arg::S(e.helo.clone()));
    out.push(Arg::S(e.mail_from.clone()));
    out.push(Arg::S(
        serde_json::to_string(&e.rcpts).unwrap_or_else(|_| "[]".into()),
    ));
    out.push(Arg::I(i64_of(e.size)));
    out.push(Arg::S(e.verdict.clone()));
    out.push(Arg::S(e.action.clone()));
    out.push(Arg::S(
        serde_json::to_string(&e.findings).unwrap_or_else(|_| "[]".into()),
    ));
    out.push(Arg::S(
        serde_json::to_string(&e.engines).unwrap_or_else(|_| "[]".into()),
    ));
    out.push(Arg::OF(e.spam_score.filter(|s| s.is_finite())));
    out.push(Arg::I(i64_of(e.latency_us)));
    out.push(Arg::OS(e.stamp.clone()));
    out.push(Arg::OS(e.message_id.clone()));
}

fn event_of(row: &AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.try_get("id")?,
        event: Event {
            queue_id: row.try_get("queue_id")?,
            time: row.try_get("time")?,
            node: row.try_get("node")?,
            client_ip: row.try_get("client_ip")?,
            helo: row.try_get("helo")?,
            mail_from: row.try_get("mail_from")?,
            rcpts: serde_json::from_str(&row.try_get::<String, _>("rcpts")?).unwrap_or_default(),
            size: u64_of(row.try_get("size")?),
            verdict: row.try_get("verdict")?,
            action: row.try_get("action")?,
            findings: serde_json::from_str(&row.try_get::<String, _>("findings")?)
                .unwrap_or_default(),
            engines: serde_json::from_str(&row.try_get::<String, _>("engines")?)
                .unwrap_or_default(),
            spam_score: row.try_get("spam_score")?,
            latency_us: u64_of(row.try_get("latency_us")?),
            stamp: row.try_get("stamp")?,
            message_id: row.try_get("message_id")?,
        },
    })
}

/// Parses a time filter: `now`, relative (`30m`, `24h`, `7d`, `2w`),
/// `YYYY-MM-DD[THH:MM[:SS]][Z]` (UTC) or Unix seconds.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(unit) = s
        .chars()
        .last()
        .filter(|c| c.is_ascii_alphabetic() && !s.contains('-') && *c != 'Z')
    {
        let n: i64 = s[..s.len() - 1]
            .parse()
            .map_err(|_| format!("{s:?}: expected e.g. 30m, 24h, 7d"))?;
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(format!("{s:?}: unit must be s, m, h, d or w")),
        };
        return Ok(now - n * secs);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && s.len() > 8 {
        return s.parse().map_err(|_| format!("{s:?}: bad Unix time"));
    }
    let bad = || format!("{s:?}: expected YYYY-MM-DD[THH:MM[:SS]], a Unix time, or 24h/7d");
    let t = s.trim_end_matches('Z');
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (t, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad());
    }
    let numv = |x: &str, lo: i64, hi: i64| -> Result<i64, String> {
        let v: i64 = x.parse().map_err(|_| bad())?;
        if v < lo || v > hi {
            return Err(bad());
        }
        Ok(v)
    };
    let (y, m, day) = (
        numv(d[0], 1970, 9999)?,
        numv(d[1], 1, 12)?,
        numv(d[2], 1, 31)?,
    );
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(time) = time {
        let p: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&p.len()) {
            return Err(bad());
        }
        secs += numv(p[0], 0, 23)? * 3600 + numv(p[1], 0, 59)? * 60;
        if p.len() == 3 {
            secs += numv(p[2], 0, 60)?;
        }
    }
    Ok(secs)
}

pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds (proleptic Gregorian, UTC).
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The CSV export's header line (without the line end).
pub const CSV_HEADER: &str = "id,time,time_utc,queue_id,node,client_ip,helo,mail_from,rcpts,size,verdict,action,threats,engines,spam_score,latency_us,stamp,message_id";

/// One CSV field (RFC 4180 quoting). Text that a spreadsheet would take for a
/// formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`:
/// senders and Message-IDs come from strangers.
pub fn csv_text(out: &mut String, s: &str) {
    let guard = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = guard || s.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if guard {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn csv_line(e: &StoredEvent) -> String {
    let ev = &e.event;
    let mut l = String::with_capacity(256);
    let mut threats: Vec<&str> = Vec::new();
    for f in &ev.findings {
        if !threats.contains(&f.name.as_str()) {
            threats.push(&f.name);
        }
    }
    let engines: Vec<String> = ev
        .engines
        .iter()
        .map(|v| format!("{}={}", v.engine, v.verdict))
        .collect();
    l.push_str(&format!("{},{},{},", e.id, ev.time, format_utc(ev.time)));
    for s in [
        &ev.queue_id,
        &ev.node,
        &ev.client_ip,
        &ev.helo,
        &ev.mail_from,
    ] {
        csv_text(&mut l, s);
        l.push(',');
    }
    csv_text(&mut l, &ev.rcpts.join(" "));
    l.push_str(&format!(",{},", ev.size));
    csv_text(&mut l, &ev.verdict);
    l.push(',');
    csv_text(&mut l, &ev.action);
    l.push(',');
    csv_text(&mut l, &threats.join(" "));
    l.push(',');
    csv_text(&mut l, &engines.join(" "));
    l.push(',');
    if let Some(s) = ev.spam_score {
        l.push_str(&s.to_string());
    }
    l.push_str(&format!(",{},", ev.latency_us));
    csv_text(&mut l, ev.stamp.as_deref().unwrap_or(""));
    l.push(',');
    csv_text(&mut l, ev.message_id.as_deref().unwrap_or(""));
    l.push_str("\r\n");
    l
}

impl Store {
    /// Inserts events and updates the report counters, in one transaction.
    /// The [`crate::EventWriter`] calls this with its batches; call it
    /// directly only for imports and tests.
    pub async fn insert_events(&self, events: &[Event]) -> Result<()> {
        self.execute_batch(self.prepare_events(events)).await
    }

    /// The statements of [`Store::insert_events`], arguments bound: the CPU
    /// half of a batch, which the writer does while the previous batch is in
    /// the database.
    pub(crate) fn prepare_events(&self, events: &[Event]) -> Prepared {
        let mut sqls = Vec::new();
        let mut rest = events;
        for n in pow2_chunks(events.len(), ROWS_PER_INSERT) {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let mut sql = Sql::new(format!(
                "INSERT INTO events ({COLS}) VALUES {}",
                values_list(chunk.len(), NCOLS, 1)
            ));
            sql.args.reserve(n * NCOLS);
            for e in chunk {
                event_args(e, &mut sql.args);
            }
            sqls.push(sql);
        }
        Aggregates::of(events).statements(&mut sqls);
        Prepared(sqls.into_iter().map(|s| s.query(self.backend)).collect())
    }

    /// Runs prepared statements in one write transaction.
    pub(crate) async fn execute_batch(&self, batch: Prepared) -> Result<()> {
        if batch.0.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for q in batch.0 {
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the address filters of `q` match so many events that reading
    /// the events newest first and keeping the members is cheaper than
    /// looking every member up (see [`Self::event_filter`]). Counts at most
    /// [`DENSE_MATCHES`] index entries per filter.
    /// Only a single address filter can be dense: two dense ones may still
    /// meet rarely.
    async fn dense_address_match(&self, q: &EventQuery) -> Result<bool> {
        let filters: Vec<(i64, (&str, &str))> = [(0, &q.sender), (1, &q.recipient)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().and_then(address_lookup).map(|l| (k, l)))
            .collect();
        if filters.len() != 1 {
            return Ok(false);
        }
        for (kind, (by, value)) in filters {
            let mut sql = Sql::new(format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 FROM event_address WHERE {by} >= lower("
            ));
            sql.arg(Arg::S(value.to_string()))
                .push(&format!(") AND {by} < lower("))
                .arg(Arg::S(format!("{value}\u{10FFFF}")))
                .push(") AND kind = ")
                .arg(Arg::I(kind))
                .push(" LIMIT ")
                .arg(Arg::I(DENSE_MATCHES + 1))
                .push(") m");
            let row = sql.query(self.backend).fetch_one(&self.pool).await?;
            if row.try_get::<i64, _>("n")? <= DENSE_MATCHES {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `dense`: the address filters (if any) match many events: test
    /// membership while reading events newest first (`+id`: not through the
    /// primary key), which stops after the page's rows; otherwise each
    /// member is looked up by id (few members, or several filters that only
    /// meet rarely).
    fn event_filter(&self, q: &EventQuery, sql: &mut Sql, dense: bool) {
        let like = match self.backend {
            Backend::Sqlite => " LIKE ",
            Backend::Postgres => " ILIKE ",
        };
        sql.push(" WHERE 1=1");
        let exact = |sql: &mut Sql, col: &str, v: &Option<String>| {
            if let Some(v) = v {
                sql.push(" AND ")
                    .push(col)
                    .push(" = ")
                    .arg(Arg::S(v.clone()));
            }
        };
        exact(sql, "node", &q.node);
        exact(sql, "queue_id", &q.queue_id);
        exact(sql, "message_id", &q.message_id);
        exact(sql, "client_ip", &q.client_ip);
        exact(sql, "verdict", &q.verdict);
        exact(sql, "action", &q.action);
        for (col, v) in [
            ("mail_from", &q.sender),
            ("rcpts", &q.recipient),
            ("findings", &q.threat),
        ] {
            if let Some(v) = v {
                // A whole address or `@domain`: the address index.
                let kind = match col {
                    "mail_from" => Some(0),
                    "rcpts" => Some(1),
                    _ => None,
                };
                if let Some((by, value)) = kind.and_then(|_| address_lookup(v)) {
                    // A prefix as a range: both backends compare these
                    // columns byte-wise (SQLite's BINARY, PostgreSQL's "C").
                    sql.push(if dense { " AND +id IN" } else { " AND id IN" })
                        .push(" (SELECT event_id FROM event_address WHERE ")
                        .push(by)
                        .push(" >= lower(")
                        .arg(Arg::S(value.to_string()))
                        .push(") AND ")
                        .push(by)
                        .push(" < lower(")
                        .arg(Arg::S(format!("{value}\u{10FFFF}")))
                        .push(") AND kind = ")
                        .arg(Arg::I(kind.unwrap_or(0)))
                        .push(")");
                    continue;
                }
                // JSON text escapes `"` and `\`; search for the escaped form.
                let v = if col == "mail_from" {
                    v.clone()
                } else {
                    let j = serde_json::to_string(v).unwrap_or_default();
                    j[1..j.len().saturating_sub(1).max(1)].to_string()
                };
                sql.push(" AND ")
                    .push(col)
                    .push(like)
                    .arg(Arg::S(contains_pattern(&v)))
                    .push(" ESCAPE '\\'");
            }
        }
        if let Some(v) = q.since {
            sql.push(" AND time >= ").arg(Arg::I(v));
        }
        if let Some(v) = q.until {
            sql.push(" AND time < ").arg(Arg::I(v));
        }
    }

    /// Searches the event log, newest first (by time, then id). Sender and
    /// recipient filters that are a whole address or `@domain` read the
    /// address index; other filters scan the events of the time range.
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>> {
        let dense = q.limit.is_some() && self.dense_address_match(q).await?;
        let mut sql = Sql::new(format!("SELECT id, {COLS} FROM events"));
        self.event_filter(q, &mut sql, dense);
        if let Some((t, id)) = q.before {
            sql.push(" AND (time < ")
                .arg(Arg::I(t))
                .push(" OR (time = ")
                .arg(Arg::I(t))
                .push(" AND id < ")
                .arg(Arg::I(id))
                .push("))");
        }
        sql.push(" ORDER BY time DESC, id DESC LIMIT ")
            .arg(Arg::I(q.limit.map(i64::from).unwrap_or(i64::MAX)));
        let rows = sql.query(self.backend).fetch_all(&self.pool).await?;
        rows.iter().map(event_of).collect()
    }

    /// Calls `f` with every event matching `q` (limit and cursor ignored),
    /// oldest first, fetched in pages of 5,000 so that no read transaction
    /// stays open for long.
    async fn each_event(
        &self,
        q: &EventQuery,
        mut f: impl FnMut(&StoredEvent) -> Result<()>,
    ) -> Result<u64> {
        let mut after: Option<(i64, i64)> = None;
        let mut n = 0;
        loop {
            let mut sql = Sql::new(format!("SELECT id, {COLS} FROM events"));
            self.event_filter(q, &mut sql, false);
            if let Some((t, id)) = after {
                sql.push(" AND (time > ")
                    .arg(Arg::I(t))
                    .push(" OR (time = ")
                    .arg(Arg::I(t))
                    .push(" AND id > ")
                    .arg(Arg::I(id))
                    .push("))");
            }
            sql.push(" ORDER BY time, id LIMIT 5000");
            let rows = sql.query(self.backend).fetch_all(&self.pool).await?;
            if rows.is_empty() {
                return Ok(n);
            }
            for r in &rows {
                let e = event_of(r)?;
                f(&e)?;
                n += 1;
                after = Some((e.event.time, e.id));
            }
        }
    }

    /// Writes the events matching `q` as CSV (RFC 4180, CRLF, a header line;
    /// see [`CSV_HEADER`]), oldest first; returns the number of rows. List
    /// fields (recipients, threats, engine verdicts) are space-separated.
    pub async fn export_events_csv(&self, q: &EventQuery, mut w: impl Write) -> Result<u64> {
        w.write_all(CSV_HEADER.as_bytes())?;
        w.write_all(b"\r\n")?;
        let n = self
            .each_event(q, |e| Ok(w.write_all(csv_line(e).as_bytes())?))
            .await?;
        w.flush()?;
        Ok(n)
    }

    /// Writes the events matching `q` as JSON Lines ([`StoredEvent`] objects),
    /// oldest first; returns the number of lines.
    pub async fn export_events_jsonl(&self, q: &EventQuery, mut w: impl Write) -> Result<u64> {
        let n = self
            .each_event(q, |e| {
                serde_json::to_writer(&mut w, e).map_err(std::io::Error::from)?;
                Ok(w.write_all(b"\n")?)
            })
            .await?;
        w.flush()?;
        Ok(n)
    }

    /// How many events the log holds.
    pub async fn count_events(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64_of(row.try_get::<i64, _>("n")?))
    }

    /// Deletes the events older than `older_than` (unix seconds, exclusive)
    /// in chunks of 10,000 rows; returns how many. Report counters are kept
    /// (see [`Store::expire_reports`]).
    pub async fn expire_events(&self, older_than: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let r = sqlx::query(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < $1 LIMIT 10000)",
            )
            .bind(older_than)
            .execute(&self.pool)
            .await?;
            total += r.rows_affected();
            if r.rows_affected() == 0 {
                sqlx::query("DELETE FROM event_address WHERE time < $1")
                    .bind(older_than)
                    .execute(&self.pool)
                    .await?;
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_filters_that_use_the_index() {
        assert_eq!(
            address_lookup("john@example.com"),
            Some(("address", "john@example.com"))
        );
        assert_eq!(
            address_lookup(" <John@Example.com> "),
            Some(("address", "John@Example.com"))
        );
        assert_eq!(address_lookup("s123@"), Some(("address", "s123@")));
        assert_eq!(
            address_lookup("@example.com"),
            Some(("domain", "example.com"))
        );
        assert_eq!(address_lookup("@exam"), Some(("domain", "exam")));
        for substring in ["", "@", "john", "example.com", "a b@c", "<>"] {
            assert_eq!(address_lookup(substring), None, "{substring:?}");
        }
    }

    #[test]
    fn utc_and_csv() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
        let mut s = String::new();
        csv_text(&mut s, "a,\"b\"");
        assert_eq!(s, "\"a,\"\"b\"\"\"");
        s.clear();
        csv_text(&mut s, "=cmd|x");
        assert_eq!(s, "\"'=cmd|x\"");
        s.clear();
        csv_text(&mut s, "plain@x.test");
        assert_eq!(s, "plain@x.test");
    }
}
