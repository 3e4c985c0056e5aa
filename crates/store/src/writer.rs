//! The batched event writer: the hot path hands events to a bounded channel;
//! one task writes them in batches, each batch one transaction (events plus
//! counter upserts). The task builds the next batch's statements while the
//! previous batch is in the database (one batch in flight at a time, in
//! order), so its CPU work and the database's overlap.
//!
//! # Sending, and what happens when the channel is full
//! - [`EventWriter::send`] (async) and [`EventWriter::send_blocking`] (for
//!   threads outside the runtime, such as the gateway's `spawn_blocking`
//!   scan threads) wait up to [`EventWriterConfig::send_timeout`] for room.
//!   If the channel is still full (the database has been down, or much slower
//!   than the traffic, for about `capacity / message rate` seconds) the event
//!   is dropped: the call returns [`SendError::Full`], the drop is counted in
//!   [`WriterStats::dropped`] and logged (the first one, then every 1,000th).
//!   Events are never lost silently.
//! - [`EventWriter::try_send`] never waits; a full channel drops and counts
//!   the same way.
//! - [`EventWriter::reserve`] / [`EventWriter::reserve_blocking`] take a slot
//!   *before* the work that the event describes; with a slot in hand,
//!   [`EventPermit::send`] cannot fail. A gateway that must not deliver
//!   unrecorded mail reserves before spooling and answers 451 when it gets
//!   [`SendError::Full`] (nothing is counted as dropped then: nothing was).
//!
//! # Database failures
//! A batch that fails with [`StoreError::Unavailable`] is kept and retried
//! with exponential backoff (50 ms up to [`EventWriterConfig::max_backoff`]);
//! meanwhile the channel fills, which is the backpressure above. A batch that
//! fails otherwise (a bug, bad data) is retried row by row; the rows that still
//! fail are counted in [`WriterStats::rejected`] and logged with their queue id.
//!
//! # Report compaction
//! Every [`EventWriterConfig::compact_interval`] (10 minutes) the task also
//! runs [`Store::compact_reports`] between two batches.
//!
//! # Shutdown
//! [`EventWriter::shutdown`] stops accepting events, writes everything queued
//! and returns; if the database stays down past its grace period the rest is
//! counted as dropped.

use crate::events::{Event, Prepared};
use crate::{Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Writer settings.
#[derive(Debug, Clone)]
pub struct EventWriterConfig {
    /// Channel capacity in events (memory: roughly 0.5-1 KB per event).
    pub capacity: usize,
    /// Most events per transaction.
    pub batch_size: usize,
    /// Longest wait for a batch to fill before it is written.
    pub flush_interval: Duration,
    /// How long a sender waits for room in a full channel.
    pub send_timeout: Duration,
    /// Longest pause between retries while the database is unavailable.
    pub max_backoff: Duration,
    /// How often the writer compacts the address rankings of past days
    /// ([`Store::compact_reports`]); `None`: never (run it yourself).
    pub compact_interval: Option<Duration>,
    /// Addresses kept per kind, node and past day by the compaction.
    pub ranking_keep: usize,
}

impl Default for EventWriterConfig {
    fn default() -> Self {
        EventWriterConfig {
            capacity: 50_000,
            batch_size: 2_000,
            flush_interval: Duration::from_millis(50),
            send_timeout: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            compact_interval: Some(Duration::from_secs(600)),
            ranking_keep: 1000,
        }
    }
}

/// Why an event was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The channel stayed full for the send timeout.
    #[error("event channel full")]
    Full,
    /// The writer has shut down.
    #[error("event writer closed")]
    Closed,
}

/// Counters of a writer (a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterStats {
    /// Events accepted into the channel.
    pub queued: u64,
    /// Events committed.
    pub written: u64,
    /// Events not queued (channel full or closed) or given up at shutdown.
    pub dropped: u64,
    /// Events the database refused (not a transient error).
    pub rejected: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Failed attempts while the database was unavailable.
    pub retries: u64,
    /// Events queued and not yet written (or given up).
    pub backlog: u64,
    /// False while the database is failing writes.
    pub healthy: bool,
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    given_up: AtomicU64,
    unhealthy: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn drop_one(&self, why: SendError) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(1000) {
            tracing::warn!(dropped = n + 1, "event log: event dropped ({why})");
        }
    }
}

enum Msg {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
    Shutdown(Duration, oneshot::Sender<()>),
}

/// Handle on the writer task; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    send_timeout: Duration,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Event(_) => "Event",
            Msg::Flush(_) => "Flush",
            Msg::Shutdown(..) => "Shutdown",
        })
    }
}

/// A reserved slot in the channel; see [`EventWriter::reserve`].
#[derive(Debug)]
pub struct EventPermit {
    permit: mpsc::OwnedPermit<Msg>,
    counters: Arc<Counters>,
}

impl EventPermit {
    /// Queues the event; cannot fail.
    pub fn send(self, event: Event) {
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        self.permit.send(Msg::Event(Box::new(event)));
    }
}

/// Sleeps in growing steps (50 µs up to 5 ms) until `deadline`; false once it has passed.
fn pause_until(deadline: Instant, step: &mut Duration) -> bool {
    let now = Instant::now();
    if now >= deadline {
        return false;
    }
    std::thread::sleep((*step).min(deadline - now));
    *step = (*step * 2).min(Duration::from_millis(5));
    true
}

impl EventWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Store, config: EventWriterConfig) -> EventWriter {
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let counters = Arc::new(Counters::default());
        let task = Task {
            ctx: Ctx {
                store,
                counters: counters.clone(),
                max_backoff: config.max_backoff.max(Duration::from_millis(50)),
                give_up_at: Arc::new(Mutex::new(None)),
            },
            rx,
            batch_size: config.batch_size.max(1),
            flush_interval: config.flush_interval,
            compact_interval: config.compact_interval,
            ranking_keep: config.ranking_keep.max(1),
            last_compact: None,
        };
        tokio::spawn(task.run());
        EventWriter {
            tx,
            counters,
            send_timeout: config.send_timeout,
        }
    }

    /// Queues an event, waiting up to the send timeout for room; see the module doc.
    pub async fn send(&self, event: Event) -> Result<(), SendError> {
        match tokio::time::timeout(self.send_timeout, self.tx.send(Msg::Event(Box::new(event))))
            .await
        {
            Ok(Ok(())) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(_)) => {
                self.counters.drop_one(SendError::Closed);
                Err(SendError::Closed)
            }
            Err(_) => {
                self.counters.drop_one(SendError::Full);
                Err(SendError::Full)
            }
        }
    }

    /// Queues an event without waiting; a full channel drops it (counted).
    pub fn try_send(&self, event: Event) -> Result<(), SendError> {
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.drop_one(SendError::Full);
                Err(SendError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.drop_one(SendError::Closed);
                Err(SendError::Closed)
            }
        }
    }

    /// [`EventWriter::send`] for threads that are not running async code
    /// (it sleeps the thread while waiting; never call it on a runtime worker).
    pub fn send_blocking(&self, event: Event) -> Result<(), SendError> {
        let deadline = Instant::now() + self.send_timeout;
        let mut step = Duration::from_micros(50);
        let mut msg = Msg::Event(Box::new(event));
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => {
                    self.counters.queued.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.counters.drop_one(SendError::Closed);
                    return Err(SendError::Closed);
                }
                Err(mpsc::error::TrySendError::Full(m)) => {
                    if !pause_until(deadline, &mut step) {
                        self.counters.drop_one(SendError::Full);
                        return Err(SendError::Full);
                    }
                    msg = m;
                }
            }
        }
    }

    /// Reserves a slot, waiting up to the send timeout. Not counted as a
    /// drop when it fails: the caller is expected to tempfail instead.
    pub async fn reserve(&self) -> Result<EventPermit, SendError> {
        match tokio::time::timeout(self.send_timeout, self.tx.clone().reserve_owned()).await {
            Ok(Ok(permit)) => Ok(EventPermit {
                permit,
                counters: self.counters.clone(),
            }),
            Ok(Err(_)) => Err(SendError::Closed),
            Err(_) => Err(SendError::Full),
        }
    }

    /// [`EventWriter::reserve`] for threads that are not running async code.
    pub fn reserve_blocking(&self) -> Result<EventPermit, SendError> {
        let deadline = Instant::now() + self.send_timeout;
        let mut step = Duration::from_micros(50);
        loop {
            match self.tx.clone().try_reserve_owned() {
                Ok(permit) => {
                    return Ok(EventPermit {
                        permit,
                        counters: self.counters.clone(),
                    })
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(SendError::Closed),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !pause_until(deadline, &mut step) {
                        return Err(SendError::Full);
                    }
                }
            }
        }
    }

    /// Returns once every event queued before this call is committed (or
    /// rejected). Waits as long as the database is unavailable: wrap it in a
    /// timeout where that matters.
    pub async fn flush(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        done.await.map_err(|_| StoreError::WriterClosed)
    }

    /// Stops accepting events, writes what is queued (retrying for at most
    /// `grace` while the database is unavailable; what is left then is
    /// counted as dropped) and ends the task. Returns the final counters.
    pub async fn shutdown(&self, grace: Duration) -> WriterStats {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(grace, ack)).await.is_ok() {
            let _ = done.await;
        }
        self.stats()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        let queued = c.queued.load(Ordering::Relaxed);
        let written = c.written.load(Ordering::Relaxed);
        let rejected = c.rejected.load(Ordering::Relaxed);
        let dropped = c.dropped.load(Ordering::Relaxed);
        WriterStats {
            queued,
            written,
            dropped,
            rejected,
            batches: c.batches.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            backlog: queued.saturating_sub(written + rejected + c_given_up(c)),
            healthy: !c.unhealthy.load(Ordering::Relaxed),
            last_error: c.last_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }
}

/// Events given up at shutdown are counted both as queued and dropped; they
/// are tracked apart so that the backlog is right.
fn c_given_up(c: &Counters) -> u64 {
    c.given_up.load(Ordering::Relaxed)
}

/// What a batch write needs; shared by the task and its in-flight job.
#[derive(Clone)]
struct Ctx {
    store: Store,
    counters: Arc<Counters>,
    max_backoff: Duration,
    /// Set by a shutdown: stop retrying then.
    give_up_at: Arc<Mutex<Option<Instant>>>,
}

struct Task {
    ctx: Ctx,
    rx: mpsc::Receiver<Msg>,
    batch_size: usize,
    flush_interval: Duration,
    compact_interval: Option<Duration>,
    ranking_keep: usize,
    last_compact: Option<Instant>,
}

/// One batch on its way to the database, and who waits for it.
struct Job {
    events: Vec<Event>,
    prepared: Option<Prepared>,
    waiters: Vec<oneshot::Sender<()>>,
}

enum Outcome {
    Written,
    GaveUp,
    Failed(StoreError),
}

impl Task {
    /// Gathers batches and hands them to one job at a time, in order. The
    /// next batch is gathered and its statements built while the previous
    /// job is in the database, so the CPU work overlaps the database's.
    async fn run(mut self) {
        let mut batch: Vec<Event> = Vec::with_capacity(self.batch_size);
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        let mut closed = false;
        let mut inflight: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            // Wait for work, then gather a batch: until it is full, the
            // interval has passed, or someone waits for a flush.
            if batch.is_empty() && waiters.is_empty() && shutdown.is_none() {
                match self.rx.recv().await {
                    Some(m) => self.take(m, &mut batch, &mut waiters, &mut shutdown),
                    None => closed = true,
                }
            }
            let deadline = tokio::time::Instant::now() + self.flush_interval;
            while !closed
                && batch.len() < self.batch_size
                && waiters.is_empty()
                && shutdown.is_none()
            {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(m)) => self.take(m, &mut batch, &mut waiters, &mut shutdown),
                    Ok(None) => closed = true,
                    Err(_) => break,
                }
            }
            if shutdown.is_some() && !closed {
                // Refuse new events; drain what is queued.
                self.rx.close();
                while let Some(m) = self.rx.recv().await {
                    self.take(m, &mut batch, &mut waiters, &mut shutdown);
                }
                closed = true;
            }
            let mut jobs: Vec<Job> = Vec::new();
            while !batch.is_empty() {
                let rest = if batch.len() > self.batch_size {
                    batch.split_off(self.batch_size)
                } else {
                    Vec::with_capacity(self.batch_size)
                };
                let events = std::mem::replace(&mut batch, rest);
                let prepared = self.ctx.store.prepare_events(&events);
                jobs.push(Job {
                    events,
                    prepared: Some(prepared),
                    waiters: Vec::new(),
                });
            }
            if !waiters.is_empty() {
                match jobs.last_mut() {
                    Some(j) => j.waiters.append(&mut waiters),
                    None => jobs.push(Job {
                        events: Vec::new(),
                        prepared: None,
                        waiters: std::mem::take(&mut waiters),
                    }),
                }
            }
            for job in jobs {
                wait(inflight.take()).await;
                inflight = Some(tokio::spawn(self.ctx.clone().run_job(job)));
            }
            if closed {
                wait(inflight.take()).await;
                if let Some(ack) = shutdown.take() {
                    let _ = ack.send(());
                }
                return;
            }
            if self.compaction_due() {
                wait(inflight.take()).await;
                self.compact().await;
            }
        }
    }

    fn take(
        &mut self,
        m: Msg,
        batch: &mut Vec<Event>,
        waiters: &mut Vec<oneshot::Sender<()>>,
        shutdown: &mut Option<oneshot::Sender<()>>,
    ) {
        match m {
            Msg::Event(e) => batch.push(*e),
            Msg::Flush(ack) => waiters.push(ack),
            Msg::Shutdown(grace, ack) => {
                if let Ok(mut g) = self.ctx.give_up_at.lock() {
                    *g = Some(Instant::now() + grace);
                }
                match shutdown {
                    // A second shutdown: answer it with the first.
                    Some(_) => waiters.push(ack),
                    None => *shutdown = Some(ack),
                }
            }
        }
    }

    fn compaction_due(&self) -> bool {
        match self.compact_interval {
            None => false,
            Some(every) => self.last_compact.is_none_or(|t| t.elapsed() >= every),
        }
    }

    async fn compact(&mut self) {
        self.last_compact = Some(Instant::now());
        match self.ctx.store.compact_reports(self.ranking_keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "reports: address rankings of past days compacted"),
            Err(e) => tracing::warn!("reports: compaction failed (will try again later): {e}"),
        }
    }
}

/// Waits for the in-flight job, if any.
async fn wait(job: Option<tokio::task::JoinHandle<()>>) {
    if let Some(h) = job {
        if let Err(e) = h.await {
            tracing::error!("event log: batch job failed: {e}");
        }
    }
}

impl Ctx {
    async fn run_job(self, job: Job) {
        if !job.events.is_empty() {
            self.write(&job.events, job.prepared).await;
        }
        for w in job.waiters {
            let _ = w.send(());
        }
    }

    fn giving_up(&self) -> bool {
        self.give_up_at
            .lock()
            .map(|g| g.is_some_and(|t| Instant::now() >= t))
            .unwrap_or(false)
    }

    /// Writes one batch, retrying while the database is unavailable.
    async fn attempt(&self, events: &[Event], mut prepared: Option<Prepared>) -> Outcome {
        let mut backoff = Duration::from_millis(50);
        let mut failures = 0u64;
        loop {
            let batch = prepared
                .take()
                .unwrap_or_else(|| self.store.prepare_events(events));
            match self.store.execute_batch(batch).await {
                Ok(()) => {
                    let c = &self.counters;
                    c.written.fetch_add(events.len() as u64, Ordering::Relaxed);
                    c.batches.fetch_add(1, Ordering::Relaxed);
                    if c.unhealthy.swap(false, Ordering::Relaxed) {
                        tracing::info!("event log: database available again");
                    }
                    return Outcome::Written;
                }
                Err(e) if e.is_unavailable() => {
                    let c = &self.counters;
                    c.retries.fetch_add(1, Ordering::Relaxed);
                    if !c.unhealthy.swap(true, Ordering::Relaxed) || failures.is_multiple_of(20) {
                        tracing::warn!(
                            batch = events.len(),
                            "event log: database unavailable, retrying: {e}"
                        );
                    }
                    if let Ok(mut l) = c.last_error.lock() {
                        *l = Some(e.to_string());
                    }
                    failures += 1;
                    if self.giving_up() {
                        return Outcome::GaveUp;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
                Err(e) => {
                    if let Ok(mut l) = self.counters.last_error.lock() {
                        *l = Some(e.to_string());
                    }
                    return Outcome::Failed(e);
                }
            }
        }
    }

    async fn write(&self, events: &[Event], prepared: Option<Prepared>) {
        match self.attempt(events, prepared).await {
            Outcome::Written => {}
            Outcome::GaveUp => self.give_up(events.len()),
            Outcome::Failed(e) => {
                tracing::error!(
                    events = events.len(),
                    "event log: batch refused ({e}); writing its events one by one"
                );
                for ev in events {
                    match self.attempt(std::slice::from_ref(ev), None).await {
                        Outcome::Written => {}
                        Outcome::GaveUp => self.give_up(1),
                        Outcome::Failed(e) => {
                            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(
                                queue_id = %ev.queue_id,
                                "event log: event refused by the database: {e}"
                            );
                        }
                    }
                }
            }
        }
    }

    fn give_up(&self, n: usize) {
        let c = &self.counters;
        c.dropped.fetch_add(n as u64, Ordering::Relaxed);
        c.given_up.fetch_add(n as u64, Ordering::Relaxed);
        tracing::error!(
            events = n,
            "event log: database still unavailable at shutdown; events dropped"
        );
    }
}

impl Store {
    /// Starts an [`EventWriter`] for this store.
    pub fn event_writer(&self, config: EventWriterConfig) -> EventWriter {
        EventWriter::spawn(self.clone(), config)
    }
}
