//! The store's behaviour, each test run on SQLite and on a real PostgreSQL
//! (a private server started by the harness; see common/pg.rs).

mod common;

use common::{open, open_with, parse_csv, Kind, Rng};
use mxguard_store::report::{bucket_bounds, latency_bucket};
use mxguard_store::*;
use mxguard_types::{EngineKind, Finding, Severity};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn finding(name: &str, engine: EngineKind) -> Finding {
    Finding {
        name: name.into(),
        engine,
        severity: if engine == EngineKind::Signatures {
            Severity::Infected
        } else {
            Severity::Suspicious
        },
        location: "mail/part[2]/invoice.zip/a.exe".into(),
        detail: String::new(),
    }
}

fn message(subject: &str, body_lines: usize) -> Vec<u8> {
    let mut m = format!(
        "Received: from x ([192.0.2.1]) by mx.example.com\r\nSubject: {subject}\r\nFrom: a@b.test\r\n\r\n"
    )
    .into_bytes();
    for i in 0..body_lines {
        m.extend_from_slice(
            format!("line {i} of a rather compressible message body\r\n").as_bytes(),
        );
    }
    m
}

struct Q {
    id: String,
    time: i64,
    from: String,
    rcpts: Vec<String>,
    subject: String,
    reason: String,
    findings: Vec<Finding>,
    msg: Vec<u8>,
}

impl Q {
    fn new(id: &str, time: i64) -> Q {
        Q {
            id: id.into(),
            time,
            from: "sender@example.org".into(),
            rcpts: vec!["rcpt@example.com".into()],
            subject: format!("subject of {id}"),
            reason: "infected".into(),
            findings: vec![finding("Win.Test.EICAR_HDB-1", EngineKind::Signatures)],
            msg: message(id, 20),
        }
    }
    fn item(&self) -> NewQuarantine<'_> {
        NewQuarantine {
            id: self.id.clone(),
            time: self.time,
            node: "mx1".into(),
            client_ip: "192.0.2.1".into(),
            mail_from: self.from.clone(),
            rcpts: self.rcpts.clone(),
            subject: self.subject.clone(),
            reason: self.reason.clone(),
            action: "quarantine".into(),
            findings: self.findings.clone(),
            policy: Some("default".into()),
            message: &self.msg,
        }
    }
}

const T0: i64 = 1_700_000_000;

async fn open_and_schema(kind: Kind) {
    let (store, db) = open(kind, "open_and_schema").await;
    assert_eq!(store.schema_version().await.unwrap(), 5);
    assert_eq!(Store::latest_schema_version(), 5);
    let q = Q::new("Q1", T0);
    store.put(&q.item()).await.unwrap();
    store.close().await;
    // Reopening applies nothing new and finds the data.
    let store = Store::open(&db.url).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 5);
    assert!(store.get("Q1").await.unwrap().is_some());
    if kind == Kind::Sqlite {
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
        assert_eq!(fk, 1);
        assert!(db
            .dir
            .as_ref()
            .unwrap()
            .path()
            .join("db/open_and_schema.db")
            .exists());
    }
    // A newer node's migration makes this build refuse the database.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'future', TRUE, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    match Store::open(&db.url).await {
        Err(StoreError::SchemaTooNew(99)) => {}
        other => panic!("expected SchemaTooNew(99), got {other:?}"),
    }
}
both!(open_and_schema);

async fn quarantine_round_trip(kind: Kind) {
    let (store, _db) = open(kind, "quarantine_round_trip").await;
    // Large (compressed on a blocking thread), small, and binary.
    let mut big = Q::new("BIG", T0);
    big.msg = message("big one", 8000);
    assert!(big.msg.len() > 300_000);
    big.findings.push(finding(
        "Heuristics.Attachment.DoubleExtension",
        EngineKind::Heuristics,
    ));
    big.rcpts = vec!["One@Example.com".into(), "two@example.com".into()];
    store.put(&big.item()).await.unwrap();
    let small = Q::new("SMALL", T0 + 1);
    store.put(&small.item()).await.unwrap();
    let mut bin = Q::new("BIN", T0 + 2);
    let mut rng = Rng::new(7);
    bin.msg = (0..5000).map(|_| rng.next() as u8).collect();
    bin.msg.extend_from_slice(&[0, 0, 0xff, 0xfe]);
    store.put(&bin.item()).await.unwrap();

    let got = store.get("BIG").await.unwrap().expect("BIG stored");
    let s = &got.summary;
    assert_eq!(s.id, "BIG");
    assert_eq!(s.time, T0);
    assert_eq!(s.node, "mx1");
    assert_eq!(s.client_ip, "192.0.2.1");
    assert_eq!(s.mail_from, "sender@example.org");
    assert_eq!(s.rcpts, big.rcpts);
    assert_eq!(s.subject, big.subject);
    assert_eq!(s.reason, "infected");
    assert_eq!(s.action, "quarantine");
    assert_eq!(
        s.threats,
        vec![
            "Win.Test.EICAR_HDB-1".to_string(),
            "Heuristics.Attachment.DoubleExtension".to_string()
        ]
    );
    assert_eq!(s.size, big.msg.len() as u64);
    assert_eq!(s.released_at, None);
    assert_eq!(got.findings, big.findings);
    assert_eq!(got.policy.as_deref(), Some("default"));
    assert_eq!(got.compression, "deflate");
    assert!(
        got.stored_size * 10 < s.size,
        "compressed {} of {}",
        got.stored_size,
        s.size
    );
    assert_eq!(got.recipients.len(), 2);
    assert!(got.recipients.iter().all(|r| r.released_at.is_none()));
    assert!(got.releases.is_empty());
    assert_eq!(got.release_token, None);
    assert_eq!(store.message("BIG").await.unwrap().unwrap(), big.msg);
    assert_eq!(store.message("SMALL").await.unwrap().unwrap(), small.msg);
    assert_eq!(store.message("BIN").await.unwrap().unwrap(), bin.msg);
    let b = store.get("BIN").await.unwrap().unwrap();
    assert_eq!(b.compression, "none", "random bytes do not compress");
    assert_eq!(b.stored_size, bin.msg.len() as u64);
    assert!(store.get("NOPE").await.unwrap().is_none());
    assert!(store.message("NOPE").await.unwrap().is_none());

    // A stored message that changed is reported, never returned.
    sqlx::query("UPDATE quarantine_message SET data = $1 WHERE qid = $2")
        .bind(b"garbage".to_vec())
        .bind("SMALL")
        .execute(store.pool())
        .await
        .unwrap();
    match store.message("SMALL").await {
        Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, "SMALL"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Text with NUL characters is stored (as U+FFFD) on both backends.
    let mut nul = Q::new("NUL", T0);
    nul.subject = "bad\0subject".into();
    store.put(&nul.item()).await.unwrap();
    assert_eq!(
        store.get("NUL").await.unwrap().unwrap().summary.subject,
        "bad\u{FFFD}subject"
    );
    assert!(matches!(
        store.put(&Q::new("", T0).item()).await,
        Err(StoreError::Invalid(_))
    ));
}
both!(quarantine_round_trip);

async fn quarantine_search(kind: Kind) {
    let (store, _db) = open(kind, "quarantine_search").await;
    let mut items = Vec::new();
    for i in 0..6 {
        items.push(Q::new(&format!("S{i}"), T0 + i * 100));
    }
    items[0].from = "Alice@Example.ORG".into();
    items[1].rcpts = vec!["x@corp.test".into(), "Bob@Corp.Test".into()];
    items[2].subject = "ÜBERWEISUNG 100% sofort_bitte".into();
    items[3].findings = vec![finding("Heuristics.Encrypted.Zip", EngineKind::Heuristics)];
    items[3].reason = "unscannable".into();
    items[4].reason = "backup".into();
    items[5].from = String::new();
    for q in &items {
        store.put(&q.item()).await.unwrap();
    }
    let ids = |v: Vec<QuarantineSummary>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let search = |q: QuarantineQuery| {
        let store = store.clone();
        async move { ids(store.search(&q).await.unwrap()) }
    };
    // Newest first.
    assert_eq!(
        search(QuarantineQuery::default()).await,
        ["S5", "S4", "S3", "S2", "S1", "S0"]
    );
    assert_eq!(
        search(QuarantineQuery {
            sender: Some("alice@example".into()),
            ..Default::default()
        })
        .await,
        ["S0"]
    );
    assert_eq!(
        search(QuarantineQuery {
            recipient: Some("BOB@corp".into()),
            ..Default::default()
        })
        .await,
        ["S1"]
    );
    assert_eq!(
        search(QuarantineQuery {
            subject: Some("überweisung".into()),
            ..Default::default()
        })
        .await,
        ["S2"]
    );
    // % and _ are literal.
    assert_eq!(
        search(QuarantineQuery {
            subject: Some("100% sofort_".into()),
            ..Default::default()
        })
        .await,
        ["S2"]
    );
    assert!(search(QuarantineQuery {
        subject: Some("1%0".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        search(QuarantineQuery {
            threat: Some("encrypted".into()),
            ..Default::default()
        })
        .await,
        ["S3"]
    );
    assert_eq!(
        search(QuarantineQuery {
            threat: Some("eicar".into()),
            ..Default::default()
        })
        .await,
        ["S5", "S4", "S2", "S1", "S0"]
    );
    assert_eq!(
        search(QuarantineQuery {
            reason: Some("backup".into()),
            ..Default::default()
        })
        .await,
        ["S4"]
    );
    assert_eq!(
        search(QuarantineQuery {
            since: Some(T0 + 100),
            until: Some(T0 + 300),
            ..Default::default()
        })
        .await,
        ["S2", "S1"]
    );
    let q = QuarantineQuery {
        threat: Some("eicar".into()),
        since: Some(T0 + 100),
        limit: Some(2),
        offset: 1,
        ..Default::default()
    };
    assert_eq!(search(q.clone()).await, ["S4", "S2"]);
    assert_eq!(store.count(&q).await.unwrap(), 4);
    assert_eq!(
        search(QuarantineQuery {
            node: Some("mx2".into()),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
    store.mark_released("S1", &[], "admin").await.unwrap();
    assert_eq!(
        search(QuarantineQuery {
            released: Some(true),
            ..Default::default()
        })
        .await,
        ["S1"]
    );
    assert_eq!(
        search(QuarantineQuery {
            released: Some(false),
            ..Default::default()
        })
        .await
        .len(),
        5
    );
    // The null sender.
    let all = store.search(&QuarantineQuery::default()).await.unwrap();
    assert_eq!(all[0].mail_from, "");
}
both!(quarantine_search);

async fn put_replaces_same_id(kind: Kind) {
    let (store, _db) = open(kind, "put_replaces_same_id").await;
    let mut q = Q::new("R1", T0);
    q.reason = "backup".into();
    store.put(&q.item()).await.unwrap();
    q.reason = "infected".into();
    q.rcpts = vec!["only@example.com".into()];
    q.msg = message("second", 3);
    store.put(&q.item()).await.unwrap();
    let got = store.get("R1").await.unwrap().unwrap();
    assert_eq!(got.summary.reason, "infected");
    assert_eq!(got.recipients.len(), 1);
    assert_eq!(store.message("R1").await.unwrap().unwrap(), q.msg);
    assert_eq!(store.count(&QuarantineQuery::default()).await.unwrap(), 1);
}
both!(put_replaces_same_id);

async fn release_marking(kind: Kind) {
    let (store, _db) = open(kind, "release_marking").await;
    let mut q = Q::new("REL", T0);
    q.rcpts = vec!["A@x.test".into(), "b@x.test".into(), "c@x.test".into()];
    store.put(&q.item()).await.unwrap();

    let r1 = store
        .mark_released("REL", &["a@X.TEST".to_string()], "admin")
        .await
        .unwrap();
    assert_eq!(r1.rcpts, ["A@x.test"]);
    assert!(!r1.all_released);
    assert_eq!(r1.token.len(), 32);
    assert!(r1.token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(r1.header_value(), r1.token);
    assert_eq!(r1.reason, "infected");
    assert_eq!(r1.threats, ["Win.Test.EICAR_HDB-1"]);
    assert_eq!(r1.by, "admin");

    let item = store.get("REL").await.unwrap().unwrap();
    assert_eq!(item.summary.released_at, Some(r1.time));
    assert_eq!(item.release_token.as_deref(), Some(r1.token.as_str()));
    assert_eq!(item.recipients[0].released_by.as_deref(), Some("admin"));
    assert!(item.recipients[0].released_at.is_some());
    assert!(item.recipients[1].released_at.is_none());
    assert_eq!(
        item.releases,
        [ReleaseRecord {
            time: r1.time,
            by: "admin".into(),
            rcpts: vec!["A@x.test".into()]
        }]
    );

    let grant = store.release_grant(&r1.token).await.unwrap().unwrap();
    assert_eq!(grant.id, "REL");
    assert!(grant.covers(&q.findings));
    assert!(grant.covers(&[]));
    assert!(!grant.covers(&[
        q.findings[0].clone(),
        finding("Win.Trojan.New-1", EngineKind::Signatures)
    ]));
    assert!(grant.released_to("a@x.test"));
    assert!(!grant.released_to("b@x.test"));

    // Releasing the rest keeps the token and adds to the history.
    let r2 = store.mark_released("REL", &[], "admin2").await.unwrap();
    assert_eq!(r2.token, r1.token);
    assert_eq!(r2.rcpts, ["A@x.test", "b@x.test", "c@x.test"]);
    assert!(r2.all_released);
    let item = store.get("REL").await.unwrap().unwrap();
    assert_eq!(item.releases.len(), 2);
    assert!(item.recipients.iter().all(|r| r.released_at.is_some()));
    let grant = store.release_grant(&r1.token).await.unwrap().unwrap();
    assert!(grant.released_to("C@X.test"));

    match store
        .mark_released("REL", &["z@x.test".to_string()], "admin")
        .await
    {
        Err(StoreError::Invalid(m)) => assert!(m.contains("z@x.test"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(
        store.mark_released("NOPE", &[], "admin").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.release_grant("0123").await.unwrap().is_none());
    assert!(store.release_grant("").await.unwrap().is_none());
    // Each item has its own token.
    store.put(&Q::new("REL2", T0).item()).await.unwrap();
    let other = store.mark_released("REL2", &[], "admin").await.unwrap();
    assert_ne!(other.token, r1.token);
    // Deleting the item withdraws the grant.
    assert!(store.delete("REL").await.unwrap());
    assert!(store.release_grant(&r1.token).await.unwrap().is_none());
}
both!(release_marking);

async fn count_rows(store: &Store, table: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0)
}

async fn delete_item(kind: Kind) {
    let (store, _db) = open(kind, "delete_item").await;
    store.put(&Q::new("D1", T0).item()).await.unwrap();
    store.put(&Q::new("D2", T0).item()).await.unwrap();
    store.mark_released("D1", &[], "admin").await.unwrap();
    assert!(store.delete("D1").await.unwrap());
    assert!(!store.delete("D1").await.unwrap());
    assert!(store.get("D1").await.unwrap().is_none());
    assert!(store.message("D1").await.unwrap().is_none());
    for (table, left) in [
        ("quarantine", 1),
        ("quarantine_rcpt", 1),
        ("quarantine_threat", 1),
        ("quarantine_message", 1),
        ("quarantine_release", 0),
    ] {
        assert_eq!(count_rows(&store, table).await, left, "{table}");
    }
}
both!(delete_item);

async fn expire_removes_only_expired(kind: Kind) {
    let (store, _db) = open(kind, "expire_removes_only_expired").await;
    let cutoff = T0 + 10_000;
    // 510 expired (more than one chunk of 500), the one at the cutoff and
    // later ones are kept.
    let mut expected_kept = BTreeSet::new();
    for i in 0..510 {
        store
            .put(&Q::new(&format!("OLD{i:04}"), cutoff - 1 - i).item())
            .await
            .unwrap();
    }
    for (i, t) in [cutoff, cutoff + 1, cutoff + 86_400]
        .into_iter()
        .enumerate()
    {
        let id = format!("NEW{i}");
        store.put(&Q::new(&id, t).item()).await.unwrap();
        expected_kept.insert(id);
    }
    store.mark_released("OLD0000", &[], "admin").await.unwrap();
    assert_eq!(store.expire(cutoff).await.unwrap(), 510);
    let kept: BTreeSet<String> = store
        .search(&QuarantineQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(kept, expected_kept);
    for id in &expected_kept {
        assert!(store.message(id).await.unwrap().is_some());
    }
    assert_eq!(count_rows(&store, "quarantine_message").await, 3);
    assert_eq!(count_rows(&store, "quarantine_rcpt").await, 3);
    assert_eq!(count_rows(&store, "quarantine_release").await, 0);
    assert_eq!(store.expire(cutoff).await.unwrap(), 0);
}
both!(expire_removes_only_expired);

async fn concurrent_quarantine_writers(kind: Kind) {
    let (store, _db) = open(kind, "concurrent_quarantine_writers").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let mut q = Q::new(&format!("C{t}-{i}"), T0 + i);
                q.msg = message(&format!("task {t} item {i}"), 50 + i as usize);
                store.put(&q.item()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.count(&QuarantineQuery::default()).await.unwrap(), 200);
    for t in 0..8 {
        for i in 0..25 {
            let m = store
                .message(&format!("C{t}-{i}"))
                .await
                .unwrap()
                .expect("stored");
            assert_eq!(m, message(&format!("task {t} item {i}"), 50 + i as usize));
        }
    }
}
both!(concurrent_quarantine_writers);

fn event(queue_id: &str, time: i64) -> Event {
    Event {
        queue_id: queue_id.into(),
        time,
        node: "mx1".into(),
        client_ip: "192.0.2.7".into(),
        helo: "client.example".into(),
        mail_from: "from@example.org".into(),
        rcpts: vec!["to@example.com".into()],
        size: 1234,
        verdict: "clean".into(),
        action: "deliver".into(),
        findings: vec![],
        engines: vec![EngineVerdict {
            engine: "signatures".into(),
            verdict: "clean".into(),
            score: None,
            elapsed_us: Some(120),
        }],
        spam_score: Some(1.5),
        latency_us: 2500,
        stamp: Some("added:clean".into()),
        message_id: Some(format!("<{queue_id}@example.org>")),
    }
}

async fn event_batching(kind: Kind) {
    let (store, _db) = open(kind, "event_batching").await;
    let writer = store.event_writer(EventWriterConfig {
        capacity: 1000,
        // This test is about batching: never drop.
        send_timeout: Duration::from_secs(60),
        ..Default::default()
    });
    const TASKS: usize = 8;
    const PER_TASK: usize = 1000;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let w = writer.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                w.send(event(&format!("t{t}-{i}"), T0 + i as i64))
                    .await
                    .expect("queued");
            }
        }));
    }
    // And from threads outside the runtime (the gateway's scan threads).
    let mut threads = Vec::new();
    for t in 0..2 {
        let w = writer.clone();
        threads.push(tokio::task::spawn_blocking(move || {
            for i in 0..500 {
                w.send_blocking(event(&format!("b{t}-{i}"), T0))
                    .expect("queued");
                if i % 100 == 0 {
                    let permit = w.reserve_blocking().expect("slot");
                    permit.send(event(&format!("p{t}-{i}"), T0));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for t in threads {
        t.await.unwrap();
    }
    writer.flush().await.unwrap();
    let total = (TASKS * PER_TASK + 2 * 500 + 2 * 5) as u64;
    let st = writer.stats();
    assert_eq!(st.queued, total);
    assert_eq!(st.written, total);
    assert_eq!((st.dropped, st.rejected, st.backlog), (0, 0, 0));
    assert!(st.healthy);
    assert!(
        st.batches * 5 < total / 10,
        "{} batches for {total} events: not batched",
        st.batches
    );
    assert_eq!(count_rows(&store, "events").await, total as i64);
    let distinct: i64 = sqlx::query("SELECT COUNT(DISTINCT queue_id) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(distinct, total as i64);
    // Counters saw every event too.
    let q = ReportQuery {
        since: T0 - 3600,
        until: T0 + 7200,
        node: None,
        top: 5,
        granularity: Granularity::Hour,
    };
    assert_eq!(store.report(&q).await.unwrap().messages, total);
    let st = writer.shutdown(Duration::from_secs(5)).await;
    assert_eq!(st.written, total);
    assert_eq!(writer.send(event("late", T0)).await, Err(SendError::Closed));
    assert_eq!(writer.stats().dropped, 1);
}
both!(event_batching);

async fn writer_backpressure_counts_drops(kind: Kind) {
    let (store, _db) = open(kind, "writer_backpressure_counts_drops").await;
    let writer = store.event_writer(EventWriterConfig {
        capacity: 10,
        batch_size: 5,
        send_timeout: Duration::from_millis(20),
        ..Default::default()
    });
    // Hold the write lock so the writer cannot commit.
    let mut blocker = store.pool().begin().await.unwrap();
    match kind {
        Kind::Sqlite => {
            // Any write makes this transaction the writer.
            sqlx::query("INSERT INTO events (queue_id, time, node, client_ip, helo, mail_from, rcpts, size, verdict, action, findings, engines, latency_us) VALUES ('lock', 0, '', '', '', '', '[]', 0, '', '', '[]', '[]', 0)")
                .execute(&mut *blocker)
                .await
                .unwrap();
        }
        Kind::Postgres => {
            sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *blocker)
                .await
                .unwrap();
        }
    }
    let mut ok = 0u64;
    let mut full = 0u64;
    for i in 0..100 {
        let r = if i % 2 == 0 {
            writer.send(event(&format!("e{i}"), T0)).await
        } else {
            writer.try_send(event(&format!("e{i}"), T0))
        };
        match r {
            Ok(()) => ok += 1,
            Err(SendError::Full) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full > 0, "the channel never filled");
    assert!(matches!(writer.reserve().await, Err(SendError::Full)));
    let st = writer.stats();
    assert_eq!(st.queued, ok);
    assert_eq!(st.dropped, full, "every refused event is counted");
    assert_eq!(st.written, 0);
    blocker.rollback().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), writer.flush())
        .await
        .expect("flush after the lock is gone")
        .unwrap();
    let st = writer.stats();
    assert_eq!(st.written, ok);
    assert_eq!(st.backlog, 0);
    assert_eq!(count_rows(&store, "events").await, ok as i64);
    // Room again.
    writer.reserve().await.unwrap().send(event("after", T0));
    writer.flush().await.unwrap();
    assert_eq!(count_rows(&store, "events").await, ok as i64 + 1);
}
both!(writer_backpressure_counts_drops);

fn tricky_events() -> Vec<Event> {
    let mut v = Vec::new();
    let mut e = event("Q-A", T0);
    e.mail_from = "Alice@Example.ORG".into();
    e.rcpts = vec!["bob@corp.test".into(), "carol@corp.test".into()];
    v.push(e);
    let mut e = event("Q-B", T0 + 10);
    e.mail_from = "=cmd|' /C calc'!A0@evil.test".into();
    e.helo = "helo, with \"quotes\"\r\nand a new line".into();
    e.verdict = "infected".into();
    e.action = "reject".into();
    e.findings = vec![
        finding("Win.Test.EICAR_HDB-1", EngineKind::Signatures),
        finding("Heuristics.Encrypted.Zip", EngineKind::Heuristics),
    ];
    e.spam_score = None;
    e.stamp = None;
    e.message_id = None;
    v.push(e);
    let mut e = event("Q-C", T0 + 10);
    e.mail_from = String::new();
    e.rcpts = vec!["ünïcode@exämple.test".into()];
    e.verdict = "suspicious".into();
    e.action = "quarantine".into();
    e.findings = vec![finding(
        "Heuristics.Phishing.Email.SpoofedDomain",
        EngineKind::Heuristics,
    )];
    e.engines.push(EngineVerdict {
        engine: "spam".into(),
        verdict: "spam".into(),
        score: Some(12.5),
        elapsed_us: None,
    });
    e.spam_score = Some(12.5);
    v.push(e);
    let mut e = event("Q-D", T0 + 3600);
    e.node = "mx2".into();
    e.client_ip = "2001:db8::1".into();
    v.push(e);
    v
}

async fn events_query_and_export(kind: Kind) {
    let (store, _db) = open(kind, "events_query_and_export").await;
    let evs = tricky_events();
    store.insert_events(&evs).await.unwrap();
    let qids = |v: Vec<StoredEvent>| v.into_iter().map(|e| e.event.queue_id).collect::<Vec<_>>();
    let find = |q: EventQuery| {
        let store = store.clone();
        async move { qids(store.events(&q).await.unwrap()) }
    };
    let all = store.events(&EventQuery::default()).await.unwrap();
    assert_eq!(
        qids(all.clone()),
        ["Q-D", "Q-C", "Q-B", "Q-A"],
        "newest first"
    );
    for s in &all {
        let orig = evs.iter().find(|e| e.queue_id == s.event.queue_id).unwrap();
        assert_eq!(&s.event, orig, "round trip");
    }
    assert_eq!(
        find(EventQuery {
            sender: Some("alice@EXAMPLE".into()),
            ..Default::default()
        })
        .await,
        ["Q-A"]
    );
    assert_eq!(
        find(EventQuery {
            recipient: Some("CAROL".into()),
            ..Default::default()
        })
        .await,
        ["Q-A"]
    );
    assert_eq!(
        find(EventQuery {
            recipient: Some("ünïcode".into()),
            ..Default::default()
        })
        .await,
        ["Q-C"]
    );
    // With an `@`: the start of the address or domain, from the address index.
    let by = |sender: Option<&str>, recipient: Option<&str>| EventQuery {
        sender: sender.map(String::from),
        recipient: recipient.map(String::from),
        ..Default::default()
    };
    assert_eq!(find(by(Some("@EXAMPLE.org"), None)).await, ["Q-D", "Q-A"]);
    assert_eq!(find(by(Some("<alice@example.org>"), None)).await, ["Q-A"]);
    assert_eq!(
        find(by(Some("=cmd|' /C calc'!A0@evil.test"), None)).await,
        ["Q-B"]
    );
    assert!(
        find(by(Some("lice@example.org"), None)).await.is_empty(),
        "a prefix, not a substring"
    );
    assert_eq!(find(by(None, Some("CAROL@corp.test"))).await, ["Q-A"]);
    assert_eq!(find(by(None, Some("@corp"))).await, ["Q-A"]);
    assert_eq!(find(by(None, Some("ünïcode@exä"))).await, ["Q-C"]);
    assert_eq!(find(by(None, Some("@exämple.test"))).await, ["Q-C"]);
    assert_eq!(
        find(by(Some("@example.org"), Some("@corp.test"))).await,
        ["Q-A"]
    );
    assert!(
        find(by(None, Some("@"))).await.len() == 4,
        "a lone @ is a substring"
    );
    assert_eq!(
        find(EventQuery {
            threat: Some("eicar".into()),
            ..Default::default()
        })
        .await,
        ["Q-B"]
    );
    assert_eq!(
        find(EventQuery {
            verdict: Some("suspicious".into()),
            ..Default::default()
        })
        .await,
        ["Q-C"]
    );
    assert_eq!(
        find(EventQuery {
            action: Some("reject".into()),
            ..Default::default()
        })
        .await,
        ["Q-B"]
    );
    assert_eq!(
        find(EventQuery {
            queue_id: Some("Q-A".into()),
            ..Default::default()
        })
        .await,
        ["Q-A"]
    );
    assert_eq!(
        find(EventQuery {
            message_id: Some("<Q-D@example.org>".into()),
            ..Default::default()
        })
        .await,
        ["Q-D"]
    );
    assert_eq!(
        find(EventQuery {
            node: Some("mx2".into()),
            client_ip: Some("2001:db8::1".into()),
            ..Default::default()
        })
        .await,
        ["Q-D"]
    );
    assert_eq!(
        find(EventQuery {
            since: Some(T0 + 5),
            until: Some(T0 + 3600),
            ..Default::default()
        })
        .await,
        ["Q-C", "Q-B"]
    );
    // Paging with the cursor walks the same order.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .events(&EventQuery {
                limit: Some(1),
                before,
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.event.time, last.id));
        paged.extend(qids(page));
    }
    assert_eq!(paged, ["Q-D", "Q-C", "Q-B", "Q-A"]);

    // JSON Lines: oldest first, every field back.
    let mut out = Vec::new();
    let n = store
        .export_events_jsonl(&EventQuery::default(), &mut out)
        .await
        .unwrap();
    assert_eq!(n, 4);
    let text = String::from_utf8(out).unwrap();
    let back: Vec<StoredEvent> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut oldest_first = all.clone();
    oldest_first.reverse();
    assert_eq!(back, oldest_first);

    // CSV: a header, one row per event, quoting survives a parser.
    let mut out = Vec::new();
    let n = store
        .export_events_csv(
            &EventQuery {
                since: Some(T0),
                until: Some(T0 + 3600),
                ..Default::default()
            },
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let text = String::from_utf8(out).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].join(","), events::CSV_HEADER);
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
    let b = &rows[2];
    assert_eq!(b[col("queue_id")], "Q-B");
    assert_eq!(b[col("time")], (T0 + 10).to_string());
    assert_eq!(b[col("time_utc")], "2023-11-14T22:13:30Z");
    assert_eq!(b[col("helo")], "helo, with \"quotes\"\r\nand a new line");
    // Formula-looking text is defused for spreadsheets.
    assert_eq!(b[col("mail_from")], "'=cmd|' /C calc'!A0@evil.test");
    assert_eq!(
        b[col("threats")],
        "Win.Test.EICAR_HDB-1 Heuristics.Encrypted.Zip"
    );
    assert_eq!(b[col("spam_score")], "");
    let a = &rows[1];
    assert_eq!(a[col("rcpts")], "bob@corp.test carol@corp.test");
    assert_eq!(a[col("spam_score")], "1.5");
    assert_eq!(a[col("engines")], "signatures=clean");
    assert_eq!(a[col("latency_us")], "2500");
    assert_eq!(rows[3][col("engines")], "signatures=clean spam=spam");
}
both!(events_query_and_export);

/// A missing spam score and a present one go through the same statement on
/// the same connection (regression: sqlx 0.9's `Any` driver sends a NULL
/// f64 as float4, and PostgreSQL then refused every later score on that
/// connection with "incorrect binary data format": events were lost).
async fn null_then_present_spam_scores(kind: Kind) {
    let (store, _db) = open(kind, "null_then_present_spam_scores").await;
    for i in 0..20i64 {
        let mut e = event(&format!("S{i:02}"), T0 + i);
        e.spam_score = (i % 2 == 1).then_some(i as f64 + 0.25);
        store.insert_events(std::slice::from_ref(&e)).await.unwrap();
    }
    let all = store.events(&EventQuery::default()).await.unwrap();
    assert_eq!(all.len(), 20);
    for s in all {
        let i: i64 = s.event.queue_id[1..].parse().unwrap();
        assert_eq!(s.event.spam_score, (i % 2 == 1).then_some(i as f64 + 0.25));
    }
}
both!(null_then_present_spam_scores);

/// A domain with more events than the dense threshold (5,000): pages are
/// found reading newest first; the same answers as the sparse way.
async fn address_search_dense_and_sparse(kind: Kind) {
    let (store, _db) = open(kind, "address_search_dense_and_sparse").await;
    let mut v = Vec::new();
    for i in 0..5_200i64 {
        let mut e = event(&format!("B{i:05}"), T0 + i);
        e.mail_from = format!("u{}@Bulk.test", i % 7);
        e.rcpts = vec![format!("r{}@dest.test", i % 3)];
        if i % 1000 == 0 {
            e.verdict = "infected".into();
        }
        v.push(e);
    }
    let mut e = event("RARE", T0 + 10);
    e.mail_from = "only@rare.test".into();
    v.push(e);
    store.insert_events(&v).await.unwrap();
    let find = |q: EventQuery| {
        let store = store.clone();
        async move {
            store
                .events(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.event.queue_id)
                .collect::<Vec<_>>()
        }
    };
    let q = |sender: &str| EventQuery {
        sender: Some(sender.into()),
        limit: Some(3),
        ..Default::default()
    };
    assert_eq!(find(q("@bulk.test")).await, ["B05199", "B05198", "B05197"]);
    assert_eq!(find(q("u0@bulk")).await, ["B05194", "B05187", "B05180"]);
    assert_eq!(find(q("@rare.test")).await, ["RARE"]);
    // With a cursor and another filter.
    let mut page = q("@bulk.test");
    page.before = Some((T0 + 5_197, i64::MAX));
    page.verdict = Some("infected".into());
    assert_eq!(find(page).await, ["B05000", "B04000", "B03000"]);
    // Sender and recipient together (each dense; met by a third).
    let both = EventQuery {
        sender: Some("@bulk.test".into()),
        recipient: Some("r2@".into()),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(find(both).await, ["B05198", "B05195"]);
}
both!(address_search_dense_and_sparse);

async fn expire_events_keeps_reports(kind: Kind) {
    let (store, _db) = open(kind, "expire_events_keeps_reports").await;
    let evs: Vec<Event> = (0..2500)
        .map(|i| event(&format!("x{i}"), T0 + i * 60))
        .collect();
    store.insert_events(&evs).await.unwrap();
    let q = ReportQuery {
        since: T0,
        until: T0 + 2500 * 60,
        node: None,
        top: 10,
        granularity: Granularity::Day,
    };
    let before = store.report(&q).await.unwrap();
    assert_eq!(before.messages, 2500);
    let cutoff = T0 + 1000 * 60;
    assert_eq!(store.expire_events(cutoff).await.unwrap(), 1000);
    let left = store.events(&EventQuery::default()).await.unwrap();
    assert_eq!(left.len(), 1500);
    assert!(left.iter().all(|e| e.event.time >= cutoff));
    assert_eq!(
        store.report(&q).await.unwrap(),
        before,
        "counters outlive events"
    );
    assert_eq!(store.expire_events(cutoff).await.unwrap(), 0);
    // Counter retention is separate.
    assert!(
        store
            .expire_reports(T0 + 2500 * 60 + 86_400 * 2)
            .await
            .unwrap()
            > 0
    );
    assert_eq!(store.report(&q).await.unwrap().messages, 0);
}
both!(expire_events_keeps_reports);

// ---- reports against a brute-force computation ----

fn random_events(n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let senders = [
        "alice@example.org",
        "Bob@Example.org",
        "news@lists.test",
        "",
        "x@spam.test",
        "y@spam.test",
        "nodomain",
    ];
    let rcpts = [
        "u1@corp.test",
        "U2@corp.test",
        "u3@corp.test",
        "sales@other.test",
        "ceo@corp.test",
    ];
    let threats = [
        ("Win.Test.EICAR_HDB-1", EngineKind::Signatures),
        ("Win.Trojan.Agent-1", EngineKind::Signatures),
        ("Heuristics.Encrypted.Zip", EngineKind::Heuristics),
        (
            "Heuristics.Phishing.Email.SpoofedDomain",
            EngineKind::Heuristics,
        ),
        ("Eicar-Test-Signature", EngineKind::Clamd),
    ];
    let actions = ["deliver", "reject", "quarantine", "tag"];
    (0..n)
        .map(|i| {
            let mut e = event(&format!("r{i}"), T0 + rng.below(3 * 86_400) as i64);
            e.node = if rng.chance(30) { "mx2" } else { "mx1" }.into();
            e.mail_from = rng.pick(&senders).to_string();
            e.rcpts = (0..1 + rng.below(3))
                .map(|_| rng.pick(&rcpts).to_string())
                .collect();
            e.size = rng.below(1_000_000);
            // Log-uniform latency from 1 µs to ~17 s.
            e.latency_us = 1u64 << rng.below(24);
            e.latency_us += rng.below(e.latency_us);
            e.findings.clear();
            if rng.chance(25) {
                for _ in 0..1 + rng.below(3) {
                    let (name, engine) = *rng.pick(&threats);
                    e.findings.push(finding(name, engine));
                }
            }
            e.engines = vec![EngineVerdict {
                engine: "spam".into(),
                verdict: if rng.chance(10) { "spam" } else { "clean" }.into(),
                score: None,
                elapsed_us: None,
            }];
            e.verdict = if e.findings.is_empty() {
                "clean".into()
            } else {
                mxguard_types::Verdict::from_findings(&e.findings)
                    .as_str()
                    .into()
            };
            e.action = rng.pick(&actions).to_string();
            e
        })
        .collect()
}

fn expected_report(evs: &[Event], q: &ReportQuery) -> Report {
    let h = |t: i64| t.div_euclid(3600) * 3600;
    let d = |t: i64| t.div_euclid(86_400) * 86_400;
    let since = h(q.since);
    let until = -h(-q.until);
    let days_since = d(q.since);
    let days_until = -d(-q.until);
    let node_ok = |e: &&Event| q.node.as_ref().is_none_or(|n| *n == e.node);
    let in_hours: Vec<&Event> = evs
        .iter()
        .filter(|e| e.time >= since && e.time < until)
        .filter(node_ok)
        .collect();
    let in_days: Vec<&Event> = evs
        .iter()
        .filter(|e| e.time >= days_since && e.time < days_until)
        .filter(node_ok)
        .collect();
    let (vs, vu, unit) = match q.granularity {
        Granularity::Hour => (since, until, 3600),
        Granularity::Day => (days_since, days_until, 86_400),
    };
    let mut volume: BTreeMap<(i64, String, String), (u64, u64)> = BTreeMap::new();
    for e in evs
        .iter()
        .filter(|e| e.time >= vs && e.time < vu)
        .filter(node_ok)
    {
        let v = volume
            .entry((
                e.time.div_euclid(unit) * unit,
                e.verdict.clone(),
                e.action.clone(),
            ))
            .or_default();
        v.0 += 1;
        v.1 += e.size;
    }
    let rank = |m: BTreeMap<String, u64>, top: usize| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(top);
        v
    };
    let mut by_verdict = BTreeMap::new();
    let mut by_action = BTreeMap::new();
    let mut threats: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut engines: BTreeMap<String, u64> = BTreeMap::new();
    for e in &in_hours {
        *by_verdict.entry(e.verdict.clone()).or_insert(0) += 1;
        *by_action.entry(e.action.clone()).or_insert(0) += 1;
        let distinct: BTreeSet<(String, String)> = e
            .findings
            .iter()
            .map(|f| (f.name.clone(), f.engine.as_str().to_string()))
            .collect();
        for t in distinct {
            *threats.entry(t).or_insert(0) += 1;
        }
        let mut det: BTreeSet<String> = e
            .findings
            .iter()
            .map(|f| f.engine.as_str().to_string())
            .collect();
        for v in &e.engines {
            if v.verdict != "clean" {
                det.insert(v.engine.clone());
            }
        }
        for x in det {
            *engines.entry(x).or_insert(0) += 1;
        }
    }
    let mut top_threats: Vec<ThreatCount> = threats
        .into_iter()
        .map(|((threat, engine), messages)| ThreatCount {
            threat,
            engine,
            messages,
        })
        .collect();
    top_threats.sort_by(|a, b| {
        b.messages
            .cmp(&a.messages)
            .then_with(|| a.threat.cmp(&b.threat))
            .then_with(|| a.engine.cmp(&b.engine))
    });
    top_threats.truncate(q.top);
    let mut addr: BTreeMap<AddressKind, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    for e in &in_days {
        let flagged =
            u64::from(!e.findings.is_empty() || e.engines.iter().any(|v| v.verdict != "clean"));
        let mut add = |k: AddressKind, v: String| {
            let c = addr.entry(k).or_default().entry(v).or_default();
            c.0 += 1;
            c.1 += flagged;
        };
        let from = e.mail_from.to_lowercase();
        add(
            AddressKind::Sender,
            if from.is_empty() {
                "<>".into()
            } else {
                from.clone()
            },
        );
        if let Some((_, dom)) = from.rsplit_once('@') {
            add(AddressKind::SenderDomain, dom.to_string());
        }
        let rc: BTreeSet<String> = e.rcpts.iter().map(|r| r.to_lowercase()).collect();
        let doms: BTreeSet<String> = rc
            .iter()
            .filter_map(|r| r.rsplit_once('@').map(|x| x.1.to_string()))
            .collect();
        for r in rc {
            add(AddressKind::Recipient, r);
        }
        for dm in doms {
            add(AddressKind::RecipientDomain, dm);
        }
    }
    let top_addr = |k: AddressKind| {
        let mut v: Vec<AddressCount> = addr
            .get(&k)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(value, (messages, flagged))| AddressCount {
                value,
                messages,
                flagged,
            })
            .collect();
        v.sort_by(|a, b| {
            b.messages
                .cmp(&a.messages)
                .then_with(|| a.value.cmp(&b.value))
        });
        v.truncate(q.top);
        v
    };
    let mut lat: Vec<u64> = in_hours.iter().map(|e| e.latency_us).collect();
    lat.sort_unstable();
    let max = lat.last().copied().unwrap_or(0);
    let pct = |p: u64| -> u64 {
        if lat.is_empty() {
            return 0;
        }
        let rank = (p * lat.len() as u64).div_ceil(100).max(1);
        let exact = lat[rank as usize - 1];
        let reported = bucket_bounds(latency_bucket(exact)).1.min(max);
        // The documented precision.
        assert!(exact <= reported && reported <= exact + exact / 8 + 1);
        reported
    };
    let mut engines: Vec<EngineCount> = engines
        .into_iter()
        .map(|(engine, messages)| EngineCount { engine, messages })
        .collect();
    engines.sort_by(|a, b| {
        b.messages
            .cmp(&a.messages)
            .then_with(|| a.engine.cmp(&b.engine))
    });
    Report {
        since,
        until,
        days_since,
        days_until,
        messages: in_hours.len() as u64,
        bytes: in_hours.iter().map(|e| e.size).sum(),
        by_verdict: rank(by_verdict, usize::MAX),
        by_action: rank(by_action, usize::MAX),
        volume: volume
            .into_iter()
            .map(|((start, verdict, action), (messages, bytes))| VolumeRow {
                start,
                verdict,
                action,
                messages,
                bytes,
            })
            .collect(),
        top_threats,
        engines,
        top_senders: top_addr(AddressKind::Sender),
        top_recipients: top_addr(AddressKind::Recipient),
        top_sender_domains: top_addr(AddressKind::SenderDomain),
        top_recipient_domains: top_addr(AddressKind::RecipientDomain),
        latency: LatencyStats {
            messages: lat.len() as u64,
            avg_us: if lat.is_empty() {
                0.0
            } else {
                lat.iter().sum::<u64>() as f64 / lat.len() as f64
            },
            p50_us: pct(50),
            p95_us: pct(95),
            p99_us: pct(99),
            max_us: max,
        },
    }
}

async fn reports_match_brute_force(kind: Kind) {
    let (store, _db) = open(kind, "reports_match_brute_force").await;
    let evs = random_events(4000, 42);
    // Through the writer, from several tasks, in random order of arrival.
    let writer = store.event_writer(EventWriterConfig {
        send_timeout: Duration::from_secs(60),
        ..Default::default()
    });
    let mut tasks = Vec::new();
    for part in evs.chunks(1000) {
        let w = writer.clone();
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            for e in part {
                w.send(e).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    writer.flush().await.unwrap();
    let queries = [
        // Everything.
        (T0 - 86_400, T0 + 4 * 86_400, None, Granularity::Hour),
        (T0 - 86_400, T0 + 4 * 86_400, None, Granularity::Day),
        // A range that is not hour-aligned (rounded out), one node.
        (T0 + 5000, T0 + 90_000, Some("mx2"), Granularity::Hour),
        (
            T0 + 86_400,
            T0 + 2 * 86_400 + 1,
            Some("mx1"),
            Granularity::Day,
        ),
        // An empty range.
        (T0 - 10 * 86_400, T0 - 9 * 86_400, None, Granularity::Hour),
    ];
    for (since, until, node, granularity) in queries {
        let q = ReportQuery {
            since,
            until,
            node: node.map(String::from),
            top: 4,
            granularity,
        };
        let got = store.report(&q).await.unwrap();
        let mut want = expected_report(&evs, &q);
        // The average is a float: compare apart.
        assert!(
            (got.latency.avg_us - want.latency.avg_us).abs() <= 1e-6 * want.latency.avg_us.max(1.0),
            "avg {} vs {}",
            got.latency.avg_us,
            want.latency.avg_us
        );
        want.latency.avg_us = got.latency.avg_us;
        assert_eq!(got, want, "report for {q:?}");
    }
    let full = store
        .report(&ReportQuery {
            since: T0,
            until: T0 + 3 * 86_400,
            node: None,
            top: 4,
            granularity: Granularity::Hour,
        })
        .await
        .unwrap();
    assert_eq!(full.messages, 4000);
    assert!(!full.top_threats.is_empty() && full.engines.len() >= 3);
}
both!(reports_match_brute_force);

async fn unreachable_database_is_unavailable(kind: Kind) {
    let mut _dir = None;
    let url = match kind {
        Kind::Postgres => format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            common::pg::free_port()
        ),
        // A directory where the database file should be.
        Kind::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("db");
            std::fs::create_dir(&p).unwrap();
            let url = format!("sqlite://{}", p.display());
            _dir = Some(dir);
            url
        }
    };
    let started = Instant::now();
    let r = Store::open_with(
        &url,
        StoreOptions {
            acquire_timeout: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    match r {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}
both!(unreachable_database_is_unavailable);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_is_unavailable() {
    let (store, db) = open_with(
        Kind::Sqlite,
        "sqlite_busy",
        StoreOptions {
            busy_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    let other = Store::open(&db.url).await.unwrap();
    let mut lock = other.pool().begin().await.unwrap();
    sqlx::query("DELETE FROM quarantine")
        .execute(&mut *lock)
        .await
        .unwrap();
    let q = Q::new("B1", T0);
    match store.put(&q.item()).await {
        Err(e) if e.is_unavailable() => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    lock.rollback().await.unwrap();
    store.put(&q.item()).await.unwrap();
}

/// PostgreSQL stopped (as by a crash) and started again under a live Store:
/// writes fail with Unavailable while it is down, succeed again afterwards
/// without reopening anything, and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_run() {
    let server = common::pg::PgServer::start_new();
    let url = server.create_database("restart").await;
    let store = Store::open_with(
        &url,
        StoreOptions {
            acquire_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let writer = store.event_writer(EventWriterConfig {
        max_backoff: Duration::from_millis(500),
        ..Default::default()
    });
    let mut acked = Vec::new();
    for i in 0..5 {
        let q = Q::new(&format!("UP{i}"), T0 + i);
        store.put(&q.item()).await.unwrap();
        acked.push(q);
    }
    for i in 0..100 {
        writer.send(event(&format!("before{i}"), T0)).await.unwrap();
    }
    writer.flush().await.unwrap();

    server.stop(true);
    let q = Q::new("DOWN", T0);
    let t = Instant::now();
    match store.put(&q.item()).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("put while down: expected Unavailable, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    match store.search(&QuarantineQuery::default()).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("search while down: expected Unavailable, got {other:?}"),
    }
    match store.mark_released("UP0", &[], "admin").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("release while down: expected Unavailable, got {other:?}"),
    }
    // Events sent while it is down wait in the writer.
    for i in 0..50 {
        writer.send(event(&format!("during{i}"), T0)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while writer.stats().healthy || writer.stats().retries == 0 {
        assert!(Instant::now() < deadline, "writer never noticed the outage");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(writer.stats().written, 100);

    server.start();
    tokio::time::timeout(Duration::from_secs(60), writer.flush())
        .await
        .expect("the writer catches up after the restart")
        .unwrap();
    let st = writer.stats();
    assert_eq!((st.written, st.dropped, st.backlog), (150, 0, 0));
    assert!(st.healthy && st.retries > 0);
    // The same Store works again.
    store.put(&q.item()).await.unwrap();
    acked.push(q);
    for q in &acked {
        assert_eq!(
            store.message(&q.id).await.unwrap().as_deref(),
            Some(&q.msg[..]),
            "{} survived",
            q.id
        );
    }
    assert_eq!(count_rows(&store, "events").await, 150);
    store.mark_released("UP0", &[], "admin").await.unwrap();
    writer.shutdown(Duration::from_secs(5)).await;
    store.close().await;
    server.stop(false);
    drop(server);
}

async fn compaction_keeps_busiest(kind: Kind) {
    let (store, _db) = open(kind, "compaction_keeps_busiest").await;
    let day0 = T0.div_euclid(86_400) * 86_400;
    let mut evs = Vec::new();
    for d in 0..3 {
        // Sender k (own domain) sends k messages on each day.
        for k in 1..=30i64 {
            for i in 0..k {
                let mut e = event(&format!("c{d}-{k}-{i}"), day0 + d * 86_400 + 60 * i);
                e.mail_from = format!("s{k}@d{k}.test");
                evs.push(e);
            }
        }
    }
    store.insert_events(&evs).await.unwrap();
    let q = |d: i64| ReportQuery {
        since: day0 + d * 86_400,
        until: day0 + (d + 1) * 86_400,
        node: None,
        top: 5,
        granularity: Granularity::Day,
    };
    let before: Vec<_> = [0, 1, 2].iter().map(|&d| q(d)).collect();
    let mut want = Vec::new();
    for q in &before {
        want.push(store.top_addresses(q, AddressKind::Sender).await.unwrap());
    }
    assert_eq!(want[0][0].value, "s30@d30.test");
    assert_eq!(want[0][0].messages, 30);
    // Days 0 and 1 are compacted to 5 senders and 5 sender domains; day 2 is "today".
    let deleted = store
        .compact_reports_before(day0 + 2 * 86_400, 5)
        .await
        .unwrap();
    assert_eq!(deleted, 2 * (25 + 25));
    for (i, q) in before.iter().enumerate() {
        assert_eq!(
            store.top_addresses(q, AddressKind::Sender).await.unwrap(),
            want[i],
            "the busiest are exact"
        );
    }
    let rows_of = |d: i64| {
        let store = store.clone();
        async move {
            let r: i64 =
                sqlx::query("SELECT COUNT(*) FROM address_daily WHERE kind = 's' AND day = $1")
                    .bind(day0 + d * 86_400)
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
                    .get(0);
            r
        }
    };
    assert_eq!(rows_of(0).await, 5);
    assert_eq!(rows_of(2).await, 30);
    assert_eq!(
        store
            .compact_reports_before(day0 + 2 * 86_400, 5)
            .await
            .unwrap(),
        0,
        "a compacted day is left alone"
    );
    // Late events for a compacted day: it is compacted again.
    let late: Vec<Event> = (0..8)
        .map(|k| {
            let mut e = event(&format!("late{k}"), day0 + 3600);
            e.mail_from = format!("late{k}@late.test");
            e
        })
        .collect();
    store.insert_events(&late).await.unwrap();
    assert_eq!(rows_of(0).await, 13);
    assert_eq!(
        store
            .compact_reports_before(day0 + 2 * 86_400, 5)
            .await
            .unwrap(),
        8 + 1,
        "8 senders and their domain"
    );
    assert_eq!(rows_of(0).await, 5);
    assert_eq!(
        store
            .top_addresses(&before[0], AddressKind::Sender)
            .await
            .unwrap(),
        want[0]
    );
    // Other counters are untouched.
    assert_eq!(
        store.report(&before[0]).await.unwrap().messages,
        (1..=30).sum::<i64>() as u64 + 8
    );
}
both!(compaction_keeps_busiest);

/// A writer that cannot write (the table locked by someone else) gives up
/// at shutdown after its grace period and counts what it gave up.
async fn shutdown_gives_up_after_grace(kind: Kind) {
    let (store, _db) = open_with(
        kind,
        "shutdown_gives_up_after_grace",
        StoreOptions {
            busy_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let writer = store.event_writer(EventWriterConfig {
        max_backoff: Duration::from_millis(100),
        ..Default::default()
    });
    let mut blocker = store.pool().begin().await.unwrap();
    match kind {
        Kind::Sqlite => {
            sqlx::query("DELETE FROM events")
                .execute(&mut *blocker)
                .await
                .unwrap();
        }
        Kind::Postgres => {
            sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *blocker)
                .await
                .unwrap();
        }
    }
    for i in 0..10 {
        writer.send(event(&format!("g{i}"), T0)).await.unwrap();
    }
    let t = Instant::now();
    let st = writer.shutdown(Duration::from_millis(500)).await;
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(
        (st.queued, st.written, st.dropped, st.backlog),
        (10, 0, 10, 0)
    );
    assert!(!st.healthy && st.retries > 0);
    assert!(st.last_error.is_some());
    blocker.rollback().await.unwrap();
    assert_eq!(count_rows(&store, "events").await, 0);
    assert_eq!(writer.send(event("late", T0)).await, Err(SendError::Closed));
}
both!(shutdown_gives_up_after_grace);
