//! The scan thread pool, shaped like clamd's `thrmgr`: at most `max_threads`
//! worker threads, created on demand and ended after `idle_timeout` without
//! work; at most `max_queue` jobs waiting. Scans never run on the async
//! runtime's workers.
//!
//! Submitting is async and is the back-pressure point: when the queue is full,
//! [`Pool::submit`] waits for room, so a session stops reading its client
//! instead of piling up work and memory.

use crate::proto::StatsSnapshot;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// clamd's defaults.
pub const DEFAULT_MAX_THREADS: usize = 10;
pub const DEFAULT_MAX_QUEUE: usize = 100;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_threads: usize,
    pub max_queue: usize,
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_threads: DEFAULT_MAX_THREADS,
            max_queue: DEFAULT_MAX_QUEUE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PoolError {
    #[error("the scan pool is shut down")]
    Closed,
    #[error("the scan job panicked")]
    Panicked,
}

/// What one worker is doing, for `STATS`.
#[derive(Debug)]
struct Status {
    command: &'static str,
    file: String,
    since: Instant,
}

/// Handed to a running job: lets it say which file it is on (shown by `STATS`).
pub struct TaskCtx {
    status: Arc<Mutex<Status>>,
}

impl TaskCtx {
    pub fn set_file(&self, file: &str) {
        let mut s = lock(&self.status);
        s.file.clear();
        s.file.push_str(file);
    }
}

type Job = Box<dyn FnOnce(&TaskCtx) + Send>;

struct Queued {
    command: &'static str,
    job: Job,
    queued_at: Instant,
    _slot: OwnedSemaphorePermit,
}

struct State {
    queue: VecDeque<Queued>,
    alive: usize,
    idle: usize,
    closed: bool,
    workers: Vec<Arc<Mutex<Status>>>,
}

struct Inner {
    cfg: PoolConfig,
    state: Mutex<State>,
    wake: Condvar,
    slots: Arc<Semaphore>,
}

/// A cheap handle to the pool (clone it freely).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The result of a submitted job.
pub struct JobHandle<T> {
    rx: oneshot::Receiver<Result<T, PoolError>>,
}

impl<T> JobHandle<T> {
    /// Waits for the job. A panic in the job is an error here, never a crash.
    pub async fn wait(self) -> Result<T, PoolError> {
        self.rx.await.unwrap_or(Err(PoolError::Closed))
    }
}

impl Pool {
    /// A pool with no threads yet; `max_threads` and `max_queue` are at least 1.
    pub fn new(mut cfg: PoolConfig) -> Pool {
        cfg.max_threads = cfg.max_threads.max(1);
        cfg.max_queue = cfg.max_queue.max(1);
        Pool {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(cfg.max_queue)),
                cfg,
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    alive: 0,
                    idle: 0,
                    closed: false,
                    workers: Vec::new(),
                }),
                wake: Condvar::new(),
            }),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.cfg
    }

    /// Queues `f` (waiting while the queue is full) and returns a handle to
    /// its result. `command` names the job in `STATS`.
    pub async fn submit<T, F>(&self, command: &'static str, f: F) -> Result<JobHandle<T>, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&TaskCtx) -> T + Send + 'static,
    {
        let slot = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Closed)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx: &TaskCtx| {
            let r = catch_unwind(AssertUnwindSafe(|| f(ctx))).map_err(|_| PoolError::Panicked);
            let _ = tx.send(r);
        });
        let mut st = lock(&self.inner.state);
        if st.closed {
            return Err(PoolError::Closed);
        }
        st.queue.push_back(Queued {
            command,
            job,
            queued_at: Instant::now(),
            _slot: slot,
        });
        // Idle workers take queued jobs; start another only when they cannot all be served.
        if st.queue.len() > st.idle && st.alive < self.inner.cfg.max_threads {
            st.alive += 1;
            let status = Arc::new(Mutex::new(Status {
                command: "IDLE",
                file: String::new(),
                since: Instant::now(),
            }));
            st.workers.push(status.clone());
            let inner = self.inner.clone();
            let spawned = std::thread::Builder::new()
                .name("mxguard-clamd-scan".into())
                .spawn(move || worker(inner, status));
            if let Err(e) = spawned {
                st.alive -= 1;
                st.workers.pop();
                tracing::error!("clamd: cannot start a scan thread: {e}");
                if st.alive == 0 {
                    // Nobody would ever run the job: fail it instead of hanging.
                    st.queue.pop_back();
                    return Err(PoolError::Closed);
                }
            }
        } else {
            self.inner.wake.notify_one();
        }
        Ok(JobHandle { rx })
    }

    /// Threads, queue and current tasks, for `STATS`.
    pub fn snapshot(&self) -> StatsSnapshot {
        let st = lock(&self.inner.state);
        let now = Instant::now();
        StatsSnapshot {
            live: st.alive,
            idle: st.idle,
            max: self.inner.cfg.max_threads,
            idle_timeout_secs: self.inner.cfg.idle_timeout.as_secs(),
            queue_waits: st
                .queue
                .iter()
                .map(|q| now.duration_since(q.queued_at).as_secs_f64())
                .collect(),
            tasks: st
                .workers
                .iter()
                .map(|w| {
                    let w = lock(w);
                    (
                        w.command.to_string(),
                        now.duration_since(w.since).as_secs_f64(),
                        w.file.clone(),
                    )
                })
                .collect(),
            pools_used: 0,
            pools_total: 0,
        }
    }

    /// Refuses new jobs; queued and running jobs still finish, then the
    /// threads end.
    pub fn close(&self) {
        let mut st = lock(&self.inner.state);
        st.closed = true;
        self.inner.slots.close();
        self.inner.wake.notify_all();
    }
}

fn worker(inner: Arc<Inner>, status: Arc<Mutex<Status>>) {
    let ctx = TaskCtx {
        status: status.clone(),
    };
    let mut st = lock(&inner.state);
    loop {
        if let Some(q) = st.queue.pop_front() {
            drop(st);
            {
                let mut s = lock(&status);
                s.command = q.command;
                s.file.clear();
                s.since = Instant::now();
            }
            let Queued { job, _slot, .. } = q;
            drop(_slot); // the job left the queue: room for another
            job(&ctx);
            {
                let mut s = lock(&status);
                s.command = "IDLE";
                s.file.clear();
                s.since = Instant::now();
            }
            st = lock(&inner.state);
            continue;
        }
        if st.closed {
            break;
        }
        st.idle += 1;
        let (g, to) = inner
            .wake
            .wait_timeout(st, inner.cfg.idle_timeout)
            .unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        if to.timed_out() && st.queue.is_empty() {
            break;
        }
    }
    st.alive -= 1;
    st.workers.retain(|w| !Arc::ptr_eq(w, &status));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_jobs_on_at_most_max_threads_and_reports_them() {
        let pool = Pool::new(PoolConfig {
            max_threads: 3,
            max_queue: 100,
            idle_timeout: Duration::from_millis(300),
        });
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..12 {
            let (running, peak) = (running.clone(), peak.clone());
            handles.push(
                pool.submit("SCAN", move |ctx| {
                    ctx.set_file(&format!("/f{i}"));
                    let n = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(40));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                })
                .await
                .unwrap(),
            );
        }
        let t = Instant::now();
        let s = loop {
            let s = pool.snapshot();
            if s.tasks
                .iter()
                .any(|t| t.0 == "SCAN" && t.2.starts_with("/f"))
                || t.elapsed() > Duration::from_secs(5)
            {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        assert_eq!(s.max, 3);
        assert!(s.live <= 3 && s.live >= 1, "{s:?}");
        assert!(
            s.tasks
                .iter()
                .any(|t| t.0 == "SCAN" && t.2.starts_with("/f")),
            "{s:?}"
        );
        let mut out = Vec::new();
        for h in handles {
            out.push(h.wait().await.unwrap());
        }
        assert_eq!(out, (0..12).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        // Idle threads end after the idle timeout.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let s = pool.snapshot();
        assert_eq!((s.live, s.idle), (0, 0), "{s:?}");
        // And come back on demand.
        assert_eq!(pool.submit("X", |_| 7).await.unwrap().wait().await, Ok(7));
    }

    #[tokio::test]
    async fn a_full_queue_makes_submit_wait_and_panics_are_errors() {
        let pool = Pool::new(PoolConfig {
            max_threads: 1,
            max_queue: 1,
            idle_timeout: Duration::from_secs(5),
        });
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let r2 = rx.clone();
        // One running (blocked), one queued: the third submit must wait.
        let a = pool
            .submit("A", move |_| {
                let _ = lock(&r2).recv();
            })
            .await
            .unwrap();
        // Let the worker take A off the queue.
        while pool.snapshot().tasks.iter().all(|t| t.0 != "A") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let b = pool.submit("B", |_| panic!("boom")).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(200), pool.submit("C", |_| 3)).await;
        assert!(third.is_err(), "queue full: submit waits");
        assert_eq!(pool.snapshot().queue_waits.len(), 1);
        tx.send(()).unwrap();
        a.wait().await.unwrap();
        assert_eq!(b.wait().await, Err(PoolError::Panicked));
        let c = pool.submit("C", |_| 3).await.unwrap();
        assert_eq!(c.wait().await, Ok(3));
        pool.close();
        assert_eq!(pool.submit("D", |_| 4).await.err(), Some(PoolError::Closed));
    }
}
