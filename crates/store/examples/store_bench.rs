//! Store benchmark: sustained batched event inserts, dashboard query times on
//! a large event log, and quarantine put latency, on SQLite or PostgreSQL.
//!
//! ```text
//! cargo run --release -p mxguard-store --example store_bench -- sqlite  [EVENTS] [URL]
//! cargo run --release -p mxguard-store --example store_bench -- postgres [EVENTS] [URL]
//! ```
//! Without URL: SQLite in a temp dir; PostgreSQL on a private server started
//! like the tests do (initdb + pg_ctl, default settings: fsync and
//! synchronous_commit on). Prints a Markdown section on stdout; bench/store.sh
//! runs both and writes bench/results/store-latest.md.

#[path = "../tests/common/pg.rs"]
mod pg;

use mxguard_store::{
    AddressKind, EngineVerdict, Event, EventQuery, EventWriterConfig, Granularity, NewQuarantine,
    QuarantineQuery, ReportQuery, Store,
};
use mxguard_types::{EngineKind, Finding, Severity};
use std::time::{Duration, Instant};

const DAYS: i64 = 7;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Skewed pick in 0..n: small indices much more likely (a Zipf-like mix).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n) + 1;
        self.below(a)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Event `i` of `n`, spread evenly over the last DAYS days up to `end`.
fn synthetic(i: u64, n: u64, end: i64, rng: &mut Rng) -> Event {
    let span = DAYS * 86_400;
    let time = end - span + (i as i128 * span as i128 / n.max(1) as i128) as i64;
    let sender = rng.skewed(50_000);
    let sdom = sender % 5_000;
    let nrcpt = 1 + u64::from(rng.chance(20)) + u64::from(rng.chance(5));
    let rcpts = (0..nrcpt)
        .map(|_| {
            let r = rng.skewed(20_000);
            format!("user{r}@dept{}.corp.example", r % 50)
        })
        .collect();
    let mut findings = Vec::new();
    if rng.chance(3) {
        let t = rng.skewed(200);
        findings.push(Finding {
            name: format!("Win.Trojan.Synthetic-{t}"),
            engine: if t.is_multiple_of(5) {
                EngineKind::Heuristics
            } else {
                EngineKind::Signatures
            },
            severity: Severity::Infected,
            location: "mail/part[2]/invoice.zip/invoice.exe".into(),
            detail: String::new(),
        });
    }
    let spam = rng.chance(8);
    let verdict = if !findings.is_empty() {
        "infected"
    } else if spam {
        "suspicious"
    } else {
        "clean"
    };
    let action = if !findings.is_empty() {
        if rng.chance(50) {
            "reject"
        } else {
            "quarantine"
        }
    } else if spam {
        "tag"
    } else {
        "deliver"
    };
    // Latency: mostly 1-20 ms, a tail to ~2 s.
    let latency_us = 1000
        + rng.below(19_000)
        + if rng.chance(2) {
            rng.below(2_000_000)
        } else {
            0
        };
    Event {
        queue_id: format!("{time:x}{i:08x}"),
        time,
        node: if i.is_multiple_of(4) { "mx2" } else { "mx1" }.into(),
        client_ip: format!("198.51.{}.{}", rng.below(256), rng.below(256)),
        helo: format!("mail{}.sender{sdom}.example", rng.below(4)),
        mail_from: format!("s{sender}@sender{sdom}.example"),
        rcpts,
        size: 2_000 + rng.below(200_000),
        verdict: verdict.into(),
        action: action.into(),
        findings,
        engines: vec![EngineVerdict {
            engine: "spam".into(),
            verdict: if spam { "spam" } else { "clean" }.into(),
            score: Some(if spam { 9.5 } else { 0.5 }),
            elapsed_us: Some(300),
        }],
        spam_score: Some(if spam { 9.5 } else { 0.5 }),
        latency_us,
        stamp: Some("added:clean".into()),
        message_id: Some(format!("<{i}.{time}@sender{sdom}.example>")),
    }
}

struct Timing {
    name: String,
    median: Duration,
    max: Duration,
    rows: usize,
}

async fn time_query<F, Fut>(name: &str, runs: usize, mut f: F) -> Timing
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let rows = f().await; // warm-up
    let mut t = Vec::new();
    for _ in 0..runs {
        let s = Instant::now();
        f().await;
        t.push(s.elapsed());
    }
    t.sort();
    Timing {
        name: name.into(),
        median: t[t.len() / 2],
        max: *t.last().unwrap(),
        rows,
    }
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat; after the ')' they are the 12th and 13th.
    (ticks(11) + ticks(12)) / 100.0
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map(String::as_str).unwrap_or("sqlite");
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut _server = None;
    let mut _dir = None;
    let url = match (backend, args.get(3)) {
        (_, Some(u)) => u.clone(),
        ("sqlite", None) => {
            let d = tempfile::tempdir().unwrap();
            let u = format!("sqlite://{}/bench.db", d.path().display());
            _dir = Some(d);
            u
        }
        ("postgres", None) => {
            let s = pg::PgServer::start_new();
            let u = s.create_database("bench").await;
            _server = Some(s);
            u
        }
        _ => panic!("usage: store_bench sqlite|postgres [EVENTS] [URL]"),
    };
    let store = Store::open(&url).await.expect("open");
    let version: String = sqlx::query(match backend {
        "sqlite" => "SELECT 'SQLite ' || sqlite_version()",
        _ => "SELECT 'PostgreSQL ' || current_setting('server_version')",
    })
    .fetch_one(store.pool())
    .await
    .and_then(|r| sqlx::Row::try_get(&r, 0))
    .unwrap_or_default();
    println!("### {backend}\n\n{version}, store opened with default options.\n");

    // 1. Sustained batched inserts through the EventWriter, 4 producers.
    // The week ends at the last second of the current UTC day: today's
    // address rankings cannot be compacted yet, so this is the heaviest
    // moment for the ranking queries (a day's worth of uncompacted rows).
    let end = mxguard_store::now_secs().div_euclid(86_400) * 86_400 + 86_399;
    let batch_size: usize = std::env::var("BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let writer = store.event_writer(EventWriterConfig {
        send_timeout: Duration::from_secs(600),
        batch_size,
        ..Default::default()
    });
    let producers = 4u64;
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let w = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (p + 1));
            let mut i = p;
            while i < n {
                w.send(synthetic(i, n, end, &mut rng))
                    .await
                    .expect("queued");
                i += producers;
            }
        }));
    }
    // Progress: rate per tenth of the run, to show it is sustained.
    let mut marks = Vec::new();
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let w = writer.stats().written;
        if w >= last.1 + n / 10 || w >= n {
            let now = Instant::now();
            marks.push((w - last.1) as f64 / (now - last.0).as_secs_f64());
            last = (now, w);
        }
        if tasks.iter().all(|t| t.is_finished()) && w >= n {
            break;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    writer.flush().await.unwrap();
    let took = start.elapsed();
    let cpu = cpu_secs() - cpu0;
    let st = writer.stats();
    assert_eq!(st.written, n, "every event written");
    let rate = n as f64 / took.as_secs_f64();
    let lo = marks.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = marks.iter().cloned().fold(0.0, f64::max);
    println!(
        "Inserted {n} events in {:.1} s through the EventWriter (4 producer tasks, batches of up to {batch_size}, \
         counters maintained): **{rate:.0} events/s** sustained; per tenth of the run {lo:.0}–{hi:.0}/s; \
         {} transactions, {} dropped; {:.0} µs of CPU per event (this process, event generation included).\n",
        took.as_secs_f64(),
        st.batches,
        st.dropped,
        cpu * 1e6 / n as f64
    );

    // Steady state: past days' address rankings compacted (the writer does
    // this every 10 minutes; here the whole week arrived in one minute).
    let c0 = Instant::now();
    let compacted = store.compact_reports(1000).await.unwrap();
    println!(
        "Compaction of the past days' address rankings (keep 1000 per kind, node and day): \
         {compacted} rows deleted in {:.1} s.\n",
        c0.elapsed().as_secs_f64()
    );

    // 2. Query times on the full log.
    let week = ReportQuery {
        since: end - DAYS * 86_400,
        until: end + 1,
        node: None,
        top: 10,
        granularity: Granularity::Hour,
    };
    let day = ReportQuery {
        since: end - 86_400,
        ..week.clone()
    };
    let runs = 5;
    let mut rows = Vec::new();
    let s = &store;
    rows.push(
        time_query(
            "volume per hour by verdict and action, 7 days",
            runs,
            || async { s.volume(&week).await.unwrap().len() },
        )
        .await,
    );
    rows.push(
        time_query("volume per day, 7 days", runs, || async {
            let mut q = week.clone();
            q.granularity = Granularity::Day;
            s.volume(&q).await.unwrap().len()
        })
        .await,
    );
    rows.push(
        time_query("top 10 threats, 7 days", runs, || async {
            s.top_threats(&week).await.unwrap().len()
        })
        .await,
    );
    rows.push(
        time_query("detections by engine, 7 days", runs, || async {
            s.engine_detections(&week).await.unwrap().len()
        })
        .await,
    );
    rows.push(
        time_query("latency avg/p50/p95/p99/max, 7 days", runs, || async {
            s.latency(&week).await.unwrap().messages as usize
        })
        .await,
    );
    for (kind, name) in [
        (AddressKind::Sender, "top 10 senders"),
        (AddressKind::Recipient, "top 10 recipients"),
        (AddressKind::SenderDomain, "top 10 sender domains"),
        (AddressKind::RecipientDomain, "top 10 recipient domains"),
    ] {
        rows.push(
            time_query(&format!("{name}, 7 days"), runs, || async {
                s.top_addresses(&week, kind).await.unwrap().len()
            })
            .await,
        );
        rows.push(
            time_query(&format!("{name}, 24 h"), runs, || async {
                s.top_addresses(&day, kind).await.unwrap().len()
            })
            .await,
        );
    }
    rows.push(
        time_query("whole dashboard (`report()`), 7 days", runs, || async {
            s.report(&week).await.unwrap().messages as usize
        })
        .await,
    );
    let dash = rows.len();
    rows.push(
        time_query("event log: newest 100", runs, || async {
            s.events(&EventQuery {
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
        })
        .await,
    );
    let probe = synthetic(n / 2, n, end, &mut Rng(1));
    let qid = s
        .events(&EventQuery {
            since: Some(probe.time),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .pop()
        .map(|e| e.event.queue_id)
        .unwrap_or_default();
    rows.push(
        time_query("event log: by queue id", runs, || async {
            s.events(&EventQuery {
                queue_id: Some(qid.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
        })
        .await,
    );
    rows.push(
        time_query(
            "event log: sender substring, last 24 h, first 100",
            runs,
            || async {
                s.events(&EventQuery {
                    sender: Some("s1@".into()),
                    since: Some(end - 86_400),
                    limit: Some(100),
                    ..Default::default()
                })
                .await
                .unwrap()
                .len()
            },
        )
        .await,
    );
    rows.push(
        time_query(
            "event log: rare sender substring, 7 days (full scan)",
            3,
            || async {
                s.events(&EventQuery {
                    sender: Some("s49999@".into()),
                    limit: Some(100),
                    ..Default::default()
                })
                .await
                .unwrap()
                .len()
            },
        )
        .await,
    );
    println!(
        "Queries over the {DAYS} days up to the end of the current UTC day (today's address rows are not \
         compacted yet: the worst time of day for the rankings).\n"
    );
    println!("| query ({n} events over {DAYS} days) | median ms | max ms | rows |");
    println!("|---|---:|---:|---:|");
    for (i, t) in rows.iter().enumerate() {
        if i == dash {
            println!("| *event log searches (not dashboard)* | | | |");
        }
        println!(
            "| {} | {} | {} | {} |",
            t.name,
            ms(t.median),
            ms(t.max),
            t.rows
        );
    }
    println!();

    // 3. Quarantine put latency (durable commit on the SMTP path), 20 KB messages.
    let body: Vec<u8> = (0..400)
        .flat_map(|i| format!("line {i} of a quarantined message, with some text\r\n").into_bytes())
        .collect();
    let mut lat = Vec::new();
    let puts = 500;
    let t0 = Instant::now();
    for i in 0..puts {
        let s0 = Instant::now();
        store
            .put(&NewQuarantine {
                id: format!("BENCH{i}"),
                time: end - i,
                node: "mx1".into(),
                client_ip: "198.51.100.1".into(),
                mail_from: format!("s{i}@sender.example"),
                rcpts: vec!["user1@dept1.corp.example".into()],
                subject: format!("Invoice {i}"),
                reason: "infected".into(),
                action: "quarantine".into(),
                findings: vec![Finding {
                    name: "Win.Test.EICAR_HDB-1".into(),
                    engine: EngineKind::Signatures,
                    severity: Severity::Infected,
                    location: "mail/part[2]".into(),
                    detail: String::new(),
                }],
                policy: None,
                message: &body,
            })
            .await
            .unwrap();
        lat.push(s0.elapsed());
    }
    let total = t0.elapsed();
    lat.sort();
    let search = time_query("quarantine search: subject substring", runs, || async {
        s.search(&QuarantineQuery {
            subject: Some("invoice 4".into()),
            limit: Some(50),
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
    })
    .await;
    println!(
        "Quarantine: {puts} sequential `put`s of a {} KB message (durable at return): median {} ms, \
         p99 {} ms, {:.0} puts/s; search by subject substring over them: {} ms.\n",
        body.len() / 1024,
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() * 99 / 100]),
        puts as f64 / total.as_secs_f64(),
        ms(search.median)
    );
    writer.shutdown(Duration::from_secs(10)).await;
    store.close().await;
}
