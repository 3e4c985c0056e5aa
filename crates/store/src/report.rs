//! Reports from the pre-aggregated counters (never from the events table).
//!
//! The event writer keeps, in the same transaction as the events:
//!
//! | table | key | values |
//! |---|---|---|
//! | `stats_hourly` | hour, node, verdict, action | messages, bytes, latency sum and max |
//! | `latency_hourly` | hour, node, latency bucket | messages |
//! | `threat_hourly` | hour, node, threat, engine | messages (once per message) |
//! | `engine_hourly` | hour, node, engine | messages in which the engine detected something |
//! | `address_daily` | kind, UTC day, node, address or domain | messages, flagged messages |
//!
//! A report range is rounded out to whole hours (to whole UTC days for
//! address rankings and daily volume): `since` down, `until` up. The
//! effective ranges are returned with the report.
//!
//! Past days of `address_daily` are compacted to the busiest addresses
//! ([`Store::compact_reports`]); every other counter is exact.
//!
//! Definitions: a message is *flagged* when it has a finding or an engine
//! verdict other than `clean`; the engines that *detected* something in it
//! are those of its findings plus those whose verdict is not `clean`.
//! Addresses and domains are lowercased; the null sender counts as `<>` (and
//! has no domain).

use crate::events::Event;
use crate::sql::{i64_of, pow2_chunks, u64_of, values_list, Arg, Sql};
use crate::{Backend, Result, Store};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Most rows per multi-row upsert (powers of two, see `pow2_chunks`).
const ROWS_PER_UPSERT: usize = 128;

/// The histogram bucket of a latency: exact below 16 µs, then 8 buckets per
/// power of two (bucket width at most 1/8 of its lower bound).
pub fn latency_bucket(us: u64) -> u32 {
    if us < 16 {
        return us as u32;
    }
    let e = 63 - us.leading_zeros(); // floor(log2(us)) >= 4
    let m = ((us >> (e - 3)) & 7) as u32;
    16 + (e - 4) * 8 + m
}

/// The smallest and largest latency (µs, inclusive) of a bucket.
pub fn bucket_bounds(b: u32) -> (u64, u64) {
    if b < 16 {
        return (u64::from(b), u64::from(b));
    }
    let e = (b - 16) / 8 + 4;
    let m = u64::from((b - 16) % 8);
    let lo = (8 + m) << (e - 3);
    let hi = ((u128::from(9 + m) << (e - 3)) - 1).min(u128::from(u64::MAX)) as u64;
    (lo, hi)
}

/// Address ranking kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    Sender,
    Recipient,
    SenderDomain,
    RecipientDomain,
}

impl AddressKind {
    fn code(self) -> &'static str {
        match self {
            AddressKind::Sender => "s",
            AddressKind::Recipient => "r",
            AddressKind::SenderDomain => "sd",
            AddressKind::RecipientDomain => "rd",
        }
    }
    pub const ALL: [AddressKind; 4] = [
        AddressKind::Sender,
        AddressKind::Recipient,
        AddressKind::SenderDomain,
        AddressKind::RecipientDomain,
    ];
}

/// Volume chart resolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    #[default]
    Hour,
    Day,
}

/// What to report on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportQuery {
    /// Unix seconds, rounded down to the hour (day).
    pub since: i64,
    /// Unix seconds, exclusive, rounded up to the hour (day).
    pub until: i64,
    /// Only this node.
    pub node: Option<String>,
    /// Length of the rankings.
    pub top: usize,
    /// Resolution of [`Report::volume`].
    pub granularity: Granularity,
}

impl ReportQuery {
    /// The last `hours` hours up to now (the current hour included).
    pub fn last_hours(hours: i64) -> ReportQuery {
        let now = crate::now_secs();
        ReportQuery {
            since: now - hours * HOUR,
            until: now + 1,
            node: None,
            top: 10,
            granularity: Granularity::Hour,
        }
    }

    fn hours(&self) -> (i64, i64) {
        (floor(self.since, HOUR), ceil(self.until, HOUR))
    }

    fn days(&self) -> (i64, i64) {
        (floor(self.since, DAY), ceil(self.until, DAY))
    }
}

fn floor(t: i64, unit: i64) -> i64 {
    t.div_euclid(unit) * unit
}

fn ceil(t: i64, unit: i64) -> i64 {
    -((-t).div_euclid(unit) * unit)
}

/// One point of the volume chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRow {
    /// Start of the hour or day.
    pub start: i64,
    pub verdict: String,
    pub action: String,
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatCount {
    pub threat: String,
    pub engine: String,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineCount {
    pub engine: String,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressCount {
    pub value: String,
    pub messages: u64,
    pub flagged: u64,
}

/// Scan latency over a range; percentiles from the histogram (see the crate doc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub messages: u64,
    /// Exact (sum / count).
    pub avg_us: f64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    /// Exact.
    pub max_us: u64,
}

/// A dashboard's worth of numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Effective range of the hourly sections.
    pub since: i64,
    pub until: i64,
    /// Effective range of the address rankings (and of daily volume).
    pub days_since: i64,
    pub days_until: i64,
    pub messages: u64,
    pub bytes: u64,
    /// Messages per verdict, most first.
    pub by_verdict: Vec<(String, u64)>,
    /// Messages per action, most first.
    pub by_action: Vec<(String, u64)>,
    pub volume: Vec<VolumeRow>,
    pub top_threats: Vec<ThreatCount>,
    pub engines: Vec<EngineCount>,
    pub top_senders: Vec<AddressCount>,
    pub top_recipients: Vec<AddressCount>,
    pub top_sender_domains: Vec<AddressCount>,
    pub top_recipient_domains: Vec<AddressCount>,
    pub latency: LatencyStats,
}

fn domain_of(addr: &str) -> Option<&str> {
    let d = &addr[addr.rfind('@')? + 1..];
    (!d.is_empty()).then_some(d)
}

/// The engines that detected something in an event (sorted, distinct).
pub(crate) fn detecting_engines(e: &Event) -> Vec<&str> {
    let mut v: Vec<&str> = e.findings.iter().map(|f| f.engine.as_str()).collect();
    for x in &e.engines {
        if !x.verdict.is_empty() && x.verdict != "clean" {
            v.push(&x.engine);
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// `s` lowercased, borrowed when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Counter increments for one batch of events, keyed by borrowed text.
#[derive(Debug, Default)]
pub(crate) struct Aggregates<'a> {
    stats: HashMap<(i64, &'a str, &'a str, &'a str), [i64; 4]>,
    latency: HashMap<(i64, &'a str, i64), i64>,
    threats: HashMap<(i64, &'a str, &'a str, &'a str), i64>,
    engines: HashMap<(i64, &'a str, &'a str), i64>,
    addresses: HashMap<(&'static str, i64, &'a str, Cow<'a, str>), [i64; 2]>,
}

/// Rows of a counter table sorted by key: concurrent writers upsert in the
/// same order and cannot deadlock on PostgreSQL.
fn sorted<K: Ord, V>(m: HashMap<K, V>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = m.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v
}

impl<'a> Aggregates<'a> {
    pub fn of(events: &'a [Event]) -> Aggregates<'a> {
        let mut a = Aggregates::default();
        for e in events {
            let hour = floor(e.time, HOUR);
            let day = floor(e.time, DAY);
            let node = e.node.as_str();
            let lat = i64_of(e.latency_us);
            let s = a
                .stats
                .entry((hour, node, &e.verdict, &e.action))
                .or_insert([0, 0, 0, 0]);
            s[0] += 1;
            s[1] = s[1].saturating_add(i64_of(e.size));
            s[2] = s[2].saturating_add(lat);
            s[3] = s[3].max(lat);
            *a.latency
                .entry((hour, node, i64::from(latency_bucket(e.latency_us))))
                .or_insert(0) += 1;
            let mut threats: Vec<(&str, &str)> = e
                .findings
                .iter()
                .map(|f| (f.name.as_str(), f.engine.as_str()))
                .collect();
            threats.sort_unstable();
            threats.dedup();
            for (name, engine) in threats {
                *a.threats.entry((hour, node, name, engine)).or_insert(0) += 1;
            }
            let detecting = detecting_engines(e);
            let flagged = i64::from(!detecting.is_empty());
            for eng in detecting {
                *a.engines.entry((hour, node, eng)).or_insert(0) += 1;
            }
            let mut add = |kind: AddressKind, value: Cow<'a, str>| {
                let c = a
                    .addresses
                    .entry((kind.code(), day, node, value))
                    .or_insert([0, 0]);
                c[0] += 1;
                c[1] += flagged;
            };
            let from = lower(&e.mail_from);
            if let Some(d) = domain_of(&from) {
                add(AddressKind::SenderDomain, Cow::Owned(d.to_string()));
            }
            add(
                AddressKind::Sender,
                if from.is_empty() {
                    Cow::Borrowed("<>")
                } else {
                    from
                },
            );
            let mut rcpts: Vec<Cow<'a, str>> = e.rcpts.iter().map(|r| lower(r)).collect();
            rcpts.sort_unstable();
            rcpts.dedup();
            let mut domains: Vec<&str> = rcpts.iter().filter_map(|r| domain_of(r)).collect();
            domains.sort_unstable();
            domains.dedup();
            for d in domains {
                add(AddressKind::RecipientDomain, Cow::Owned(d.to_string()));
            }
            for r in rcpts {
                add(AddressKind::Recipient, r);
            }
        }
        a
    }

    /// The upserts that apply these increments.
    pub fn statements(self, out: &mut Vec<Sql>) {
        let s = |v: &str| Arg::S(v.to_string());
        upserts(
            out,
            "stats_hourly (hour, node, verdict, action, messages, bytes, latency_sum_us, latency_max_us)",
            "(hour, node, verdict, action)",
            "messages = stats_hourly.messages + excluded.messages, \
             bytes = stats_hourly.bytes + excluded.bytes, \
             latency_sum_us = stats_hourly.latency_sum_us + excluded.latency_sum_us, \
             latency_max_us = CASE WHEN excluded.latency_max_us > stats_hourly.latency_max_us \
             THEN excluded.latency_max_us ELSE stats_hourly.latency_max_us END",
            8,
            sorted(self.stats).into_iter().map(|((h, n, v, a), c)| {
                vec![
                    Arg::I(h),
                    s(n),
                    s(v),
                    s(a),
                    Arg::I(c[0]),
                    Arg::I(c[1]),
                    Arg::I(c[2]),
                    Arg::I(c[3]),
                ]
            }),
        );
        upserts(
            out,
            "latency_hourly (hour, node, bucket, messages)",
            "(hour, node, bucket)",
            "messages = latency_hourly.messages + excluded.messages",
            4,
            sorted(self.latency)
                .into_iter()
                .map(|((h, n, b), c)| vec![Arg::I(h), s(n), Arg::I(b), Arg::I(c)]),
        );
        upserts(
            out,
            "threat_hourly (hour, node, threat, engine, messages)",
            "(hour, node, threat, engine)",
            "messages = threat_hourly.messages + excluded.messages",
            5,
            sorted(self.threats)
                .into_iter()
                .map(|((h, n, t, e), c)| vec![Arg::I(h), s(n), s(t), s(e), Arg::I(c)]),
        );
        upserts(
            out,
            "engine_hourly (hour, node, engine, messages)",
            "(hour, node, engine)",
            "messages = engine_hourly.messages + excluded.messages",
            4,
            sorted(self.engines)
                .into_iter()
                .map(|((h, n, e), c)| vec![Arg::I(h), s(n), s(e), Arg::I(c)]),
        );
        upserts(
            out,
            "address_daily (kind, day, node, value, messages, flagged)",
            "(kind, day, node, value)",
            "messages = address_daily.messages + excluded.messages, \
             flagged = address_daily.flagged + excluded.flagged",
            6,
            sorted(self.addresses).into_iter().map(|((k, d, n, v), c)| {
                vec![
                    s(k),
                    Arg::I(d),
                    s(n),
                    Arg::S(v.into_owned()),
                    Arg::I(c[0]),
                    Arg::I(c[1]),
                ]
            }),
        );
    }
}

fn upserts(
    out: &mut Vec<Sql>,
    table_cols: &str,
    conflict: &str,
    update: &str,
    ncols: usize,
    rows: impl ExactSizeIterator<Item = Vec<Arg>>,
) {
    let mut rows = rows;
    for n in pow2_chunks(rows.len(), ROWS_PER_UPSERT) {
        let mut sql = Sql::new(format!(
            "INSERT INTO {table_cols} VALUES {} ON CONFLICT {conflict} DO UPDATE SET {update}",
            values_list(n, ncols, 1)
        ));
        sql.args.reserve(n * ncols);
        for r in rows.by_ref().take(n) {
            sql.args.extend(r);
        }
        out.push(sql);
    }
}

/// `nearest-rank` percentile `p` (0..=100) from (bucket, count) pairs sorted by bucket.
fn percentile(hist: &[(u32, u64)], total: u64, p: u64, max: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    let rank = (p * total).div_ceil(100).max(1);
    let mut cum = 0;
    for &(b, n) in hist {
        cum += n;
        if cum >= rank {
            return bucket_bounds(b).1.min(max);
        }
    }
    max
}

impl Store {
    fn node_filter(sql: &mut Sql, node: &Option<String>) {
        if let Some(n) = node {
            sql.push(" AND node = ").arg(Arg::S(n.clone()));
        }
    }

    /// Messages and bytes per hour (or day), verdict and action.
    pub async fn volume(&self, q: &ReportQuery) -> Result<Vec<VolumeRow>> {
        let (unit, (since, until)) = match q.granularity {
            Granularity::Hour => (HOUR, q.hours()),
            Granularity::Day => (DAY, q.days()),
        };
        let mut sql = Sql::new(format!(
            "SELECT (hour / {unit}) * {unit} AS start, verdict, action, \
             CAST(SUM(messages) AS BIGINT) AS m, CAST(SUM(bytes) AS BIGINT) AS b \
             FROM stats_hourly WHERE hour >= "
        ));
        sql.arg(Arg::I(since))
            .push(" AND hour < ")
            .arg(Arg::I(until));
        Self::node_filter(&mut sql, &q.node);
        sql.push(" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
        sql.query(self.backend)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(VolumeRow {
                    start: r.try_get(0)?,
                    verdict: r.try_get(1)?,
                    action: r.try_get(2)?,
                    messages: u64_of(r.try_get(3)?),
                    bytes: u64_of(r.try_get(4)?),
                })
            })
            .collect()
    }

    /// Messages per threat name and engine, most first (ties by name).
    pub async fn top_threats(&self, q: &ReportQuery) -> Result<Vec<ThreatCount>> {
        let (since, until) = q.hours();
        let mut sql = Sql::new(
            "SELECT threat, engine, CAST(SUM(messages) AS BIGINT) AS m FROM threat_hourly WHERE hour >= ",
        );
        sql.arg(Arg::I(since))
            .push(" AND hour < ")
            .arg(Arg::I(until));
        Self::node_filter(&mut sql, &q.node);
        sql.push(" GROUP BY threat, engine ORDER BY m DESC, threat, engine LIMIT ")
            .arg(Arg::I(q.top as i64));
        sql.query(self.backend)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ThreatCount {
                    threat: r.try_get(0)?,
                    engine: r.try_get(1)?,
                    messages: u64_of(r.try_get(2)?),
                })
            })
            .collect()
    }

    /// Messages in which each engine detected something, most first.
    pub async fn engine_detections(&self, q: &ReportQuery) -> Result<Vec<EngineCount>> {
        let (since, until) = q.hours();
        let mut sql = Sql::new(
            "SELECT engine, CAST(SUM(messages) AS BIGINT) AS m FROM engine_hourly WHERE hour >= ",
        );
        sql.arg(Arg::I(since))
            .push(" AND hour < ")
            .arg(Arg::I(until));
        Self::node_filter(&mut sql, &q.node);
        sql.push(" GROUP BY engine ORDER BY m DESC, engine");
        sql.query(self.backend)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(EngineCount {
                    engine: r.try_get(0)?,
                    messages: u64_of(r.try_get(1)?),
                })
            })
            .collect()
    }

    /// The `q.top` addresses or domains of a kind with the most messages
    /// (ties by value), over whole UTC days.
    pub async fn top_addresses(
        &self,
        q: &ReportQuery,
        kind: AddressKind,
    ) -> Result<Vec<AddressCount>> {
        let (since, until) = q.days();
        let mut sql = Sql::new(
            "SELECT value, CAST(SUM(messages) AS BIGINT) AS m, CAST(SUM(flagged) AS BIGINT) AS f \
             FROM address_daily WHERE kind = ",
        );
        sql.arg(Arg::S(kind.code().to_string()))
            .push(" AND day >= ")
            .arg(Arg::I(since))
            .push(" AND day < ")
            .arg(Arg::I(until));
        Self::node_filter(&mut sql, &q.node);
        sql.push(" GROUP BY value ORDER BY m DESC, value LIMIT ")
            .arg(Arg::I(q.top as i64));
        sql.query(self.backend)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AddressCount {
                    value: r.try_get(0)?,
                    messages: u64_of(r.try_get(1)?),
                    flagged: u64_of(r.try_get(2)?),
                })
            })
            .collect()
    }

    /// Average, percentiles and maximum of the scan latency.
    pub async fn latency(&self, q: &ReportQuery) -> Result<LatencyStats> {
        let (since, until) = q.hours();
        let mut sql = Sql::new(
            "SELECT CAST(SUM(messages) AS BIGINT), CAST(SUM(latency_sum_us) AS BIGINT), \
             CAST(MAX(latency_max_us) AS BIGINT) FROM stats_hourly WHERE hour >= ",
        );
        sql.arg(Arg::I(since))
            .push(" AND hour < ")
            .arg(Arg::I(until));
        Self::node_filter(&mut sql, &q.node);
        let row = sql.query(self.backend).fetch_one(&self.pool).await?;
        let messages = u64_of(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0));
        let sum = row.try_get::<Option<i64>, _>(1)?.unwrap_or(0);
        let max = u64_of(row.try_get::<Option<i64>, _>(2)?.unwrap_or(0));
        let mut sql = Sql::new(
            "SELECT bucket, CAST(SUM(messages) AS BIGINT) FROM latency_hourly WHERE hour >= ",
        );
        sql.arg(Arg::I(since))
            .push(" AND hour < ")
            .arg(Arg::I(until));
        Self::node_filter(&mut sql, &q.node);
        sql.push(" GROUP BY bucket ORDER BY bucket");
        let hist: Vec<(u32, u64)> = sql
            .query(self.backend)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0),
                    u64_of(r.try_get(1)?),
                ))
            })
            .collect::<Result<_>>()?;
        let total: u64 = hist.iter().map(|h| h.1).sum();
        Ok(LatencyStats {
            messages,
            avg_us: if messages == 0 {
                0.0
            } else {
                sum as f64 / messages as f64
            },
            p50_us: percentile(&hist, total, 50, max),
            p95_us: percentile(&hist, total, 95, max),
            p99_us: percentile(&hist, total, 99, max),
            max_us: max,
        })
    }

    /// Everything a dashboard shows, for one range. The sections are
    /// queried concurrently (on as many pooled connections).
    pub async fn report(&self, q: &ReportQuery) -> Result<Report> {
        let (since, until) = q.hours();
        let (days_since, days_until) = q.days();
        let hourly_q = ReportQuery {
            granularity: Granularity::Hour,
            ..q.clone()
        };
        let (
            volume,
            hourly,
            top_threats,
            engines,
            top_senders,
            top_recipients,
            top_sender_domains,
            top_recipient_domains,
            latency,
        ) = tokio::try_join!(
            self.volume(q),
            async {
                // Totals over the hourly range, whatever the chart's resolution.
                if q.granularity == Granularity::Hour {
                    Ok(Vec::new())
                } else {
                    self.volume(&hourly_q).await
                }
            },
            self.top_threats(q),
            self.engine_detections(q),
            self.top_addresses(q, AddressKind::Sender),
            self.top_addresses(q, AddressKind::Recipient),
            self.top_addresses(q, AddressKind::SenderDomain),
            self.top_addresses(q, AddressKind::RecipientDomain),
            self.latency(q),
        )?;
        let hourly = if q.granularity == Granularity::Hour {
            &volume
        } else {
            &hourly
        };
        let mut by_verdict: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
        let (mut messages, mut bytes) = (0, 0);
        for v in hourly {
            *by_verdict.entry(v.verdict.clone()).or_insert(0) += v.messages;
            *by_action.entry(v.action.clone()).or_insert(0) += v.messages;
            messages += v.messages;
            bytes += v.bytes;
        }
        let ranked = |m: BTreeMap<String, u64>| {
            let mut v: Vec<(String, u64)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v
        };
        Ok(Report {
            since,
            until,
            days_since,
            days_until,
            messages,
            bytes,
            by_verdict: ranked(by_verdict),
            by_action: ranked(by_action),
            volume,
            top_threats,
            engines,
            top_senders,
            top_recipients,
            top_sender_domains,
            top_recipient_domains,
            latency,
        })
    }

    /// Compacts the address rankings of past days: for every UTC day before
    /// today (within the last 35 days) not compacted yet, keeps only the
    /// `keep` busiest addresses (by messages, ties by value) of each kind and
    /// node in `address_daily`. Returns the rows deleted. The event writer
    /// runs this every [`crate::EventWriterConfig::compact_interval`].
    ///
    /// Why: the number of distinct senders grows with the traffic (spam
    /// makes up new ones), so exact per-day rows would make "top senders of
    /// the week" read as many rows as the event log. After compaction a
    /// ranking over N past days reads at most N × `keep` rows per node, plus
    /// today's. Precision: an address's count is exact for every day on which
    /// it was among the `keep` busiest; otherwise that day's messages are
    /// missing from it, and there were fewer of them than the `keep`-th
    /// busiest address had that day. With `keep` = 1000 the weekly top 10 is
    /// exact unless the traffic is very flat.
    pub async fn compact_reports(&self, keep: usize) -> Result<u64> {
        let today = floor(crate::now_secs(), DAY);
        self.compact_reports_before(today, keep).await
    }

    /// [`Store::compact_reports`] for the days before `before` (exclusive,
    /// rounded down to a UTC day); for tests and imports of old data.
    pub async fn compact_reports_before(&self, before: i64, keep: usize) -> Result<u64> {
        let before = floor(before, DAY);
        let lo = before - 35 * DAY;
        // Per day: its nodes and its total, to compare with the total seen
        // when it was last compacted (late events make it compact again).
        let mut days: BTreeMap<i64, (Vec<String>, i64)> = BTreeMap::new();
        let mut sql = Sql::new(format!(
            "SELECT (hour / {DAY}) * {DAY}, node, CAST(SUM(messages) AS BIGINT) FROM stats_hourly WHERE hour >= "
        ));
        sql.arg(Arg::I(lo))
            .push(" AND hour < ")
            .arg(Arg::I(before))
            .push(" GROUP BY 1, 2");
        for r in sql.query(self.backend).fetch_all(&self.pool).await? {
            let d = days.entry(r.try_get(0)?).or_default();
            d.0.push(r.try_get(1)?);
            d.1 += r.try_get::<i64, _>(2)?;
        }
        let done: BTreeMap<i64, i64> =
            sqlx::query("SELECT day, messages FROM report_compacted WHERE day >= $1")
                .bind(lo)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
                .collect::<Result<_>>()?;
        let mut deleted = 0;
        for (day, (nodes, total)) in days {
            if done.get(&day) == Some(&total) {
                continue;
            }
            let mut tx = self.begin_write().await?;
            if self.backend == Backend::Postgres {
                // One node at a time; the others skip (and try again later).
                let got: bool = sqlx::query("SELECT pg_try_advisory_xact_lock(7236281349726501)")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                if !got {
                    tx.rollback().await?;
                    return Ok(deleted);
                }
            }
            for kind in AddressKind::ALL {
                for node in &nodes {
                    deleted += sqlx::query(
                        "DELETE FROM address_daily WHERE kind = $1 AND day = $2 AND node = $3 \
                         AND value NOT IN (SELECT value FROM address_daily WHERE kind = $4 AND day = $5 \
                         AND node = $6 ORDER BY messages DESC, value LIMIT $7)",
                    )
                    .bind(kind.code())
                    .bind(day)
                    .bind(node.clone())
                    .bind(kind.code())
                    .bind(day)
                    .bind(node.clone())
                    .bind(i64::try_from(keep).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
            }
            sqlx::query(
                "INSERT INTO report_compacted (day, keep, messages) VALUES ($1, $2, $3) \
                 ON CONFLICT (day) DO UPDATE SET keep = excluded.keep, messages = excluded.messages",
            )
            .bind(day)
            .bind(i32::try_from(keep).unwrap_or(i32::MAX))
            .bind(total)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        if deleted > 0 && self.backend == Backend::Postgres {
            // The deleted rows stay in the table until vacuumed, and every
            // ranking would wade through them until autovacuum comes by.
            // Best effort: autovacuum gets there too.
            if let Err(e) = sqlx::query("VACUUM (ANALYZE) address_daily")
                .execute(&self.pool)
                .await
            {
                tracing::info!("reports: VACUUM after compaction skipped: {e}");
            }
        }
        Ok(deleted)
    }

    /// Deletes report counters older than `older_than` (unix seconds; hours
    /// and days that start before it). Returns the rows removed.
    pub async fn expire_reports(&self, older_than: i64) -> Result<u64> {
        let mut n = 0;
        for (table, col) in [
            ("stats_hourly", "hour"),
            ("latency_hourly", "hour"),
            ("threat_hourly", "hour"),
            ("engine_hourly", "hour"),
            ("address_daily", "day"),
            ("report_compacted", "day"),
        ] {
            n += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE {col} < $1"
            )))
            .bind(older_than)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once_and_are_narrow() {
        let mut prev_hi = None;
        for b in 0..496u32 {
            let (lo, hi) = bucket_bounds(b);
            assert!(lo <= hi);
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "bucket {b} starts after the previous one");
            }
            assert_eq!(latency_bucket(lo), b);
            assert_eq!(latency_bucket(hi), b);
            if lo >= 16 {
                assert!((hi - lo + 1) * 8 <= lo, "bucket {b} too wide");
            }
            prev_hi = Some(hi);
        }
        assert_eq!(prev_hi, Some(u64::MAX));
        assert_eq!(latency_bucket(u64::MAX), 495);
        for v in [0u64, 1, 15, 16, 17, 100, 999, 1000, 123_456, 10_000_000] {
            let (lo, hi) = bucket_bounds(latency_bucket(v));
            assert!(lo <= v && v <= hi);
        }
    }

    #[test]
    fn rounding() {
        assert_eq!(floor(7199, HOUR), 3600);
        assert_eq!(ceil(3601, HOUR), 7200);
        assert_eq!(ceil(7200, HOUR), 7200);
        assert_eq!(floor(-1, HOUR), -3600);
    }

    #[test]
    fn percentile_nearest_rank() {
        // 100 values: 99 in bucket 1, 1 in bucket 10.
        let h = [(1u32, 99u64), (10, 1)];
        assert_eq!(percentile(&h, 100, 99, 10), 1);
        assert_eq!(percentile(&h, 100, 100, 10), 10);
        let h = [(1u32, 98u64), (10, 2)];
        assert_eq!(percentile(&h, 100, 99, 10), 10);
        assert_eq!(percentile(&[], 0, 99, 0), 0);
    }
}
