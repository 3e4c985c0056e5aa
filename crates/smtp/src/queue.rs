//! The delivery queue: takes spooled messages to the next hop, per recipient,
//! with retries.
//!
//! - New messages arrive through a channel and are tried at once; at start
//!   every entry of the spool is scheduled at its recorded next attempt, so the
//!   queue survives restarts.
//! - A temporary failure (4xx, connection trouble, a full disk for Maildir)
//!   schedules another attempt after an exponential backoff
//!   (`retry_initial_secs`, doubling up to `retry_max_secs`); after
//!   `max_age_secs` the remaining recipients fail as expired.
//! - Permanent failures and expiries send one DSN bounce (RFC 3464) to the
//!   sender — never to the null sender and never about a bounce — stored in the
//!   spool before the original entry is removed.
//! - `mxguard queue flush` drops a `flush` file into the spool directory; the
//!   runner sees it within a second and retries everything at once.
//! - On shutdown no new attempt starts; attempts in progress finish.

use crate::client::{
    self, reply_text, ClientOptions, Failure as HopFailure, NextHop, OutboundEnvelope,
    OutboundRcpt, Outcome,
};
use crate::config::QueueConfig;
use crate::dsn::{self, Failure};
use crate::spool::{now_secs, RcptState, Spool, SpoolEnvelope, SpoolState};
use mxguard_mailbox::Maildir;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Largest original message returned whole in a bounce.
pub const MAX_BOUNCE_RETURN: usize = 1024 * 1024;

/// Where accepted mail goes (`[smtp] next_hop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Local delivery of `local_domains` recipients into `data_dir/maildir/<user>/`.
    Maildir,
    /// Another server, over SMTP or LMTP.
    Remote(NextHop),
}

impl FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Route, String> {
        if s == "maildir" {
            return Ok(Route::Maildir);
        }
        s.parse::<NextHop>().map(Route::Remote).map_err(|e| {
            format!(
                "{e} (expected \"maildir\", smtp://host:port, lmtp://host:port or lmtp+unix:/path)"
            )
        })
    }
}

/// `550 5.1.1 text (in reply to RCPT TO)` or `4.4.2 text`: the status comes first
/// so bounces can read it.
fn failure_text(f: &HopFailure) -> String {
    match f {
        HopFailure::Remote { stage, reply } => {
            format!("{} (in reply to {stage})", reply_text(reply))
        }
        HopFailure::Local { status, text } => format!("{status} {text}"),
    }
}

/// The delivery client's settings from `[queue]` and our host name.
pub fn client_options(cfg: &QueueConfig, hostname: &str) -> ClientOptions {
    ClientOptions {
        helo_name: hostname.to_string(),
        connect_timeout: Duration::from_secs(cfg.connect_timeout_secs),
        command_timeout: Duration::from_secs(cfg.command_timeout_secs),
        data_timeout: Duration::from_secs(cfg.data_timeout_secs),
    }
}

/// Counters for logs and metrics.
#[derive(Debug, Default)]
pub struct QueueStats {
    pub delivered: AtomicU64,
    pub deferred: AtomicU64,
    pub failed: AtomicU64,
    pub bounces: AtomicU64,
}

/// The mailbox tier's check before Maildir delivery of a message read back
/// from the spool (a retry, or after a restart; a message just accepted by this
/// process was scanned with its current signatures): a message whose stamp is
/// not valid and current (signatures updated while it waited in the queue,
/// or a stamp that does not verify) is scanned again; if anything is found now
/// it goes to the quarantine instead of the mailbox, unless it is a released
/// message whose release grant covers what was found (see [`crate::release`]).
/// A quarantine at this stage leaves an event too.
pub struct MailboxCheck {
    /// The gateway's current signatures (the same slot: a reload applies to both).
    pub scan: Arc<crate::stamp::ScanSlot>,
    pub actions: crate::config::ActionConfig,
    pub store: mxguard_store::Store,
    pub events: mxguard_store::EventWriter,
    pub node_id: String,
    pub scans_skipped: AtomicU64,
    pub rescans: AtomicU64,
}

/// What the mailbox check decided.
enum MailboxVerdict {
    Deliver(Vec<u8>),
    Quarantined(String),
}

impl MailboxCheck {
    fn check(
        &self,
        env: &SpoolEnvelope,
        msg: &[u8],
    ) -> Result<MailboxVerdict, mxguard_store::StoreError> {
        use crate::quarantine as q;
        let start = std::time::Instant::now();
        let gen = self.scan.current();
        match gen.stamp.as_ref().map(|st| st.check(msg)) {
            Some(Ok(_)) => {
                self.scans_skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(MailboxVerdict::Deliver(msg.to_vec()));
            }
            Some(Err(why)) => {
                tracing::info!(id = %env.id, "mailbox delivery: {why}; scanning again")
            }
            None => {}
        }
        self.rescans.fetch_add(1, Ordering::Relaxed);
        let report = gen
            .scanner
            .scan_bytes(msg, mxguard_types::ScanOptions::default());
        match crate::pipeline::decide(&report, &self.actions) {
            None => Ok(MailboxVerdict::Deliver(match &gen.stamp {
                Some(st) => st.stamp(&crate::stamp::strip(msg), "clean", &self.node_id),
                None => msg.to_vec(),
            })),
            Some((_, classes)) => {
                let mut findings = report.findings.clone();
                if let Some(err) = &report.error {
                    findings.push(mxguard_types::Finding::heuristic(
                        "Heuristics.Unscannable.Error",
                        "",
                        err.clone(),
                    ));
                }
                let names: Vec<&str> = findings.iter().map(|f| f.name.as_str()).collect();
                let rcpts: Vec<String> = env.rcpts.iter().map(|r| r.address.clone()).collect();
                if let Some(grant) = q::grant_blocking(&self.store, msg)? {
                    if q::grant_allows(&grant, &findings, &rcpts) {
                        tracing::info!(id = %env.id, item = %grant.id, "mailbox delivery: released message, delivered despite {}", names.join(", "));
                        return Ok(MailboxVerdict::Deliver(msg.to_vec()));
                    }
                }
                // A backup copy may already use the queue id: keep it.
                let qid = if q::exists_blocking(&self.store, &env.id)? {
                    crate::spool::new_queue_id()
                } else {
                    env.id.clone()
                };
                let rec = q::QuarantineRecord {
                    id: qid.clone(),
                    node: self.node_id.clone(),
                    client_ip: env.client_ip.clone(),
                    mail_from: env.mail_from.clone(),
                    rcpts: rcpts.clone(),
                    reason: classes
                        .first()
                        .map(|c| c.as_str())
                        .unwrap_or("unscannable")
                        .to_string(),
                    action: "quarantine".into(),
                    findings: findings.clone(),
                    policy: None,
                };
                q::put_blocking(&self.store, &rec, msg)?;
                let mut ev = q::event(
                    &env.id,
                    &self.node_id,
                    &env.client_ip,
                    &env.helo,
                    &env.mail_from,
                    rcpts,
                    msg.len() as u64,
                    q::message_id(msg),
                );
                ev.verdict = report.verdict().as_str().to_string();
                ev.action = "quarantine".into();
                ev.engines = q::engine_verdicts(&findings, true, report.error.is_some());
                ev.findings = findings.clone();
                ev.latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                ev.stamp = Some("mailbox-rescan".into());
                // The copy is safe in the quarantine; a full event buffer only loses the row (counted).
                let _ = self.events.send_blocking(ev);
                Ok(MailboxVerdict::Quarantined(format!(
                    "{} as {qid}",
                    names.join(", ")
                )))
            }
        }
    }
}

/// The delivery side of the gateway.
pub struct Queue {
    pub spool: Spool,
    pub cfg: QueueConfig,
    pub route: Route,
    pub maildir: Maildir,
    pub hostname: String,
    pub stats: QueueStats,
    /// To queue bounces (the same channel the gateway uses).
    pub tx: UnboundedSender<Queued>,
    /// The stamp check before Maildir delivery (when stamps are enabled).
    pub mailbox_check: Option<Arc<MailboxCheck>>,
    /// Connections to a remote next hop, reused between messages.
    pub pool: Option<client::Pool>,
}

/// A message handed to the queue: its id, and for a message just spooled its
/// envelope and bytes, so the first attempt does not read them back from disk.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: String,
    pub preload: Option<Arc<Preloaded>>,
}

#[derive(Debug)]
pub struct Preloaded {
    pub env: SpoolEnvelope,
    pub message: Arc<[u8]>,
}

impl Queued {
    pub fn id(id: impl Into<String>) -> Queued {
        Queued {
            id: id.into(),
            preload: None,
        }
    }
}

/// Preloaded messages kept in memory while they wait for their first attempt;
/// beyond this the first attempt reads the spool like any other.
pub const MAX_PRELOAD_BYTES: usize = 64 * 1024 * 1024;

/// The file `mxguard queue flush` creates.
pub const FLUSH_FILE: &str = "flush";

enum Done {
    /// Every recipient has a final result; the entry is gone.
    Finished,
    /// Try again at this Unix time.
    Retry(u64),
}

impl Queue {
    /// The delivery client's settings from `[queue]`.
    pub fn client_options(&self) -> ClientOptions {
        client_options(&self.cfg, &self.hostname)
    }

    /// Runs until `shutdown`, then waits for attempts in progress.
    pub async fn run(
        self: Arc<Self>,
        mut rx: UnboundedReceiver<Queued>,
        shutdown: CancellationToken,
    ) {
        let mut due: BTreeSet<(u64, String)> = BTreeSet::new();
        let mut known: HashSet<String> = HashSet::new();
        let mut running: JoinSet<(String, Done)> = JoinSet::new();
        let mut preloaded: HashMap<String, Arc<Preloaded>> = HashMap::new();
        let mut preload_bytes = 0usize;
        let take = |q: Queued,
                    due: &mut BTreeSet<(u64, String)>,
                    known: &mut HashSet<String>,
                    preloaded: &mut HashMap<String, Arc<Preloaded>>,
                    bytes: &mut usize| {
            if known.insert(q.id.clone()) {
                if let Some(p) = q.preload {
                    if *bytes + p.message.len() <= MAX_PRELOAD_BYTES {
                        *bytes += p.message.len();
                        preloaded.insert(q.id.clone(), p);
                    }
                }
                due.insert((0, q.id));
            }
        };
        match self.spool.list() {
            Ok(ids) => {
                if !ids.is_empty() {
                    tracing::info!("queue: {} messages waiting from before", ids.len());
                }
                for id in ids {
                    let at = self.spool.state(&id).next_attempt;
                    if known.insert(id.clone()) {
                        due.insert((at, id));
                    }
                }
            }
            Err(e) => tracing::error!("queue: cannot list the spool: {e}"),
        }
        let flush_path = self.spool.dir().join(FLUSH_FILE);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Start what is due, within the concurrency limit. While shutting
            // down, only first attempts of messages already accepted start
            // (they are in the channel or due at 0), not retries.
            let now = now_secs();
            let stopping = shutdown.is_cancelled();
            if stopping {
                while let Ok(q) = rx.try_recv() {
                    take(q, &mut due, &mut known, &mut preloaded, &mut preload_bytes);
                }
            }
            while running.len() < self.cfg.concurrency {
                let Some(first) = due.first().cloned() else {
                    break;
                };
                if first.0 > now || (stopping && first.0 != 0) {
                    break;
                }
                due.remove(&first);
                let q = self.clone();
                let pre = preloaded.remove(&first.1);
                if let Some(p) = &pre {
                    preload_bytes -= p.message.len();
                }
                running.spawn(async move {
                    let id = first.1;
                    let done = q.attempt(&id, pre).await;
                    (id, done)
                });
            }
            if stopping && running.is_empty() {
                return;
            }
            let next_due = due.first().map(|(t, _)| *t);
            let sleep_for = match next_due {
                Some(t) if running.len() < self.cfg.concurrency => {
                    Duration::from_secs(t.saturating_sub(now)).max(Duration::from_millis(50))
                }
                _ => Duration::from_secs(3600),
            };
            tokio::select! {
                id = rx.recv(), if !shutdown.is_cancelled() => {
                    if let Some(q) = id {
                        take(q, &mut due, &mut known, &mut preloaded, &mut preload_bytes);
                    }
                }
                Some(r) = running.join_next(), if !running.is_empty() => {
                    match r {
                        Ok((id, Done::Finished)) => { known.remove(&id); }
                        Ok((id, Done::Retry(at))) => { due.insert((at, id)); }
                        Err(e) => tracing::error!("queue: delivery task failed: {e}"),
                    }
                }
                _ = tokio::time::sleep(sleep_for) => {}
                _ = tick.tick() => {
                    if std::fs::remove_file(&flush_path).is_ok() {
                        tracing::info!("queue: flush requested");
                        let ids = self.spool.list().unwrap_or_default();
                        let waiting: Vec<(u64, String)> = due.iter().cloned().collect();
                        for (t, id) in waiting {
                            due.remove(&(t, id.clone()));
                            due.insert((0, id));
                        }
                        for id in ids {
                            if known.insert(id.clone()) {
                                due.insert((0, id));
                            }
                        }
                    }
                }
                _ = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
            }
        }
    }

    /// One delivery attempt of one entry.
    async fn attempt(&self, id: &str, pre: Option<Arc<Preloaded>>) -> Done {
        // A preloaded message was scanned and stamped by this process with the
        // signatures it still has: the mailbox check would only re-derive that.
        let fresh = pre.is_some();
        let loaded = match pre {
            // Just spooled, never tried: no state to read.
            Some(p) => Ok(Ok((
                p.env.clone(),
                p.message.clone(),
                SpoolState::default(),
            ))),
            None => {
                let spool = self.spool.clone();
                let id2 = id.to_string();
                tokio::task::spawn_blocking(move || {
                    spool
                        .load(&id2)
                        .map(|(e, m)| (e, Arc::<[u8]>::from(m), spool.state(&id2)))
                })
                .await
            }
        };
        let (env, msg, mut state) = match loaded {
            Ok(Ok(x)) => x,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Done::Finished,
            Ok(Err(e)) => {
                tracing::error!(id, "queue: cannot read spool entry: {e}");
                return Done::Retry(now_secs() + self.cfg.retry_initial_secs);
            }
            Err(e) => {
                tracing::error!(id, "queue: {e}");
                return Done::Retry(now_secs() + self.cfg.retry_initial_secs);
            }
        };
        state
            .rcpts
            .resize(env.rcpts.len(), RcptState::Pending { last_error: None });
        let pending: Vec<usize> = (0..env.rcpts.len())
            .filter(|i| matches!(state.rcpts[*i], RcptState::Pending { .. }))
            .collect();
        if !pending.is_empty() {
            let results = self.deliver(&env, &msg, &pending, fresh).await;
            for (i, r) in pending.iter().zip(results) {
                let addr = &env.rcpts[*i].address;
                match &r {
                    RcptState::Delivered { reply } => {
                        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(target: "mxguard::delivery", id, rcpt = %addr, status = "delivered", reply = %reply);
                    }
                    RcptState::Failed { reply } => {
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(target: "mxguard::delivery", id, rcpt = %addr, status = "failed", reply = %reply);
                    }
                    RcptState::Pending { last_error } => {
                        self.stats.deferred.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(target: "mxguard::delivery", id, rcpt = %addr, status = "deferred", reply = %last_error.as_deref().unwrap_or(""));
                    }
                }
                state.rcpts[*i] = r;
            }
            state.attempts += 1;
        }
        let now = now_secs();
        let still: Vec<usize> = (0..env.rcpts.len())
            .filter(|i| matches!(state.rcpts[*i], RcptState::Pending { .. }))
            .collect();
        if !still.is_empty() {
            if now.saturating_sub(env.received) < self.cfg.max_age_secs {
                state.next_attempt = now + self.cfg.backoff(state.attempts).as_secs();
                if let Err(e) = self.spool.set_state(id, &state) {
                    tracing::error!(id, "queue: cannot record delivery state: {e}");
                }
                return Done::Retry(state.next_attempt);
            }
            for i in still {
                let last = match &state.rcpts[i] {
                    RcptState::Pending { last_error } => last_error.clone().unwrap_or_default(),
                    _ => String::new(),
                };
                state.rcpts[i] = RcptState::Failed {
                    reply: format!(
                        "4.4.7 message expired after {} attempts; last error: {last}",
                        state.attempts
                    ),
                };
            }
        }
        // Every recipient is final: bounce the failures, then forget the entry.
        // The state is recorded first when something failed, so a crash before
        // the removal does not bounce twice (all delivered: nothing to record).
        let any_failed = state
            .rcpts
            .iter()
            .any(|r| matches!(r, RcptState::Failed { .. }));
        if any_failed {
            if let Err(e) = self.spool.set_state(id, &state) {
                tracing::error!(id, "queue: cannot record delivery state: {e}");
                return Done::Retry(now + self.cfg.retry_initial_secs);
            }
        }
        let failures: Vec<Failure> = env
            .rcpts
            .iter()
            .zip(&state.rcpts)
            .filter_map(|(r, s)| match s {
                RcptState::Failed { reply } => {
                    let wants = r
                        .notify
                        .as_deref()
                        .map(|n| n.contains("FAILURE"))
                        .unwrap_or(true);
                    wants.then(|| Failure {
                        address: r.address.clone(),
                        orcpt: r.orcpt.clone(),
                        reply: reply.clone(),
                    })
                }
                _ => None,
            })
            .collect();
        if !failures.is_empty() && !env.dsn && !env.mail_from.is_empty() {
            if let Err(e) = self.send_bounce(&env, &msg, &failures) {
                tracing::error!(id, "queue: cannot store the bounce: {e}");
                return Done::Retry(now + self.cfg.retry_initial_secs);
            }
        } else if !failures.is_empty() {
            tracing::warn!(
                id,
                "queue: {} recipients failed; no bounce (null sender or bounce)",
                failures.len()
            );
        }
        if let Err(e) = self
            .spool
            .remove_entry(id, state.attempts > 1 || any_failed)
        {
            tracing::error!(id, "queue: cannot remove finished entry: {e}");
        }
        Done::Finished
    }

    fn send_bounce(
        &self,
        env: &SpoolEnvelope,
        msg: &[u8],
        failures: &[Failure],
    ) -> std::io::Result<()> {
        let (bid, body) = dsn::bounce(&self.hostname, env, msg, failures, MAX_BOUNCE_RETURN);
        let local = match &self.route {
            Route::Maildir => true,
            Route::Remote(_) => false,
        };
        let benv = SpoolEnvelope {
            id: bid.clone(),
            mail_from: String::new(),
            rcpts: vec![crate::spool::SpoolRcpt {
                address: env.mail_from.clone(),
                local,
                notify: None,
                orcpt: None,
            }],
            received: now_secs(),
            client_ip: "127.0.0.1".into(),
            helo: self.hostname.clone(),
            envid: None,
            ret: None,
            body_8bit: false,
            smtputf8: false,
            dsn: true,
            verdict: "bounce".into(),
        };
        self.spool.store(&benv, &body)?;
        self.stats.bounces.fetch_add(1, Ordering::Relaxed);
        tracing::info!(id = %env.id, bounce = %bid, to = %env.mail_from, "queue: bounce queued");
        let _ = self.tx.send(Queued::id(bid));
        Ok(())
    }

    /// Delivers to the recipients at `pending`; one state per recipient, same order.
    async fn deliver(
        &self,
        env: &SpoolEnvelope,
        msg: &[u8],
        pending: &[usize],
        fresh: bool,
    ) -> Vec<RcptState> {
        match &self.route {
            Route::Maildir => {
                let mut out = Vec::with_capacity(pending.len());
                let mut msg = std::borrow::Cow::Borrowed(msg);
                if let Some(mc) = self.mailbox_check.as_ref().filter(|_| !fresh) {
                    if pending.iter().any(|&i| env.rcpts[i].local) {
                        let (mc, env2, m) = (mc.clone(), env.clone(), msg.to_vec());
                        match tokio::task::spawn_blocking(move || mc.check(&env2, &m)).await {
                            Ok(Ok(MailboxVerdict::Deliver(m))) => msg = std::borrow::Cow::Owned(m),
                            Ok(Ok(MailboxVerdict::Quarantined(what))) => {
                                tracing::warn!(id = %env.id, found = %what, "mailbox delivery: quarantined instead of delivered");
                                return pending
                                    .iter()
                                    .map(|_| RcptState::Delivered {
                                        reply: format!(
                                            "250 2.7.0 quarantined at mailbox delivery ({what})"
                                        ),
                                    })
                                    .collect();
                            }
                            Ok(Err(e)) => {
                                return pending
                                    .iter()
                                    .map(|_| RcptState::Pending {
                                        last_error: Some(format!("451 4.3.0 mailbox check: {e}")),
                                    })
                                    .collect();
                            }
                            Err(e) => {
                                return pending
                                    .iter()
                                    .map(|_| RcptState::Pending {
                                        last_error: Some(format!("451 4.3.0 {e}")),
                                    })
                                    .collect();
                            }
                        }
                    }
                }
                // One copy shared by the blocking writes of all recipients.
                let shared: Arc<[u8]> = Arc::from(&msg[..]);
                for &i in pending {
                    let r = &env.rcpts[i];
                    let local = r
                        .address
                        .rsplit_once('@')
                        .map(|(l, _)| l.to_string())
                        .unwrap_or_default();
                    let local = local.trim_matches('"').to_string();
                    if !r.local {
                        out.push(RcptState::Failed {
                            reply: "550 5.1.2 no route: this gateway delivers only local domains (next_hop = maildir)".into(),
                        });
                        continue;
                    }
                    let md = self.maildir.clone();
                    let data = shared.clone();
                    let res = tokio::task::spawn_blocking(move || md.deliver(&local, &data)).await;
                    out.push(match res {
                        Ok(Ok(path)) => RcptState::Delivered {
                            reply: format!(
                                "250 2.0.0 delivered to maildir as {}",
                                path.file_name().and_then(|n| n.to_str()).unwrap_or("")
                            ),
                        },
                        Ok(Err(e)) if e.is_temporary() => RcptState::Pending {
                            last_error: Some(format!("451 4.3.0 {e}")),
                        },
                        Ok(Err(e)) => RcptState::Failed {
                            reply: format!("550 5.1.1 {e}"),
                        },
                        Err(e) => RcptState::Pending {
                            last_error: Some(format!("451 4.3.0 {e}")),
                        },
                    });
                }
                out
            }
            Route::Remote(hop) => {
                let oenv = OutboundEnvelope {
                    mail_from: env.mail_from.clone(),
                    rcpts: pending
                        .iter()
                        .map(|&i| OutboundRcpt {
                            address: env.rcpts[i].address.clone(),
                            notify: env.rcpts[i].notify.clone(),
                            orcpt: env.rcpts[i].orcpt.clone(),
                        })
                        .collect(),
                    envid: env.envid.clone(),
                    ret: env.ret.as_deref().map(|r| {
                        if r == "HDRS" {
                            crate::proto::command::Ret::Headers
                        } else {
                            crate::proto::command::Ret::Full
                        }
                    }),
                    body_8bit: env.body_8bit,
                    smtputf8: env.smtputf8,
                    size: Some(msg.len() as u64),
                };
                let result = match &self.pool {
                    Some(pool) => pool.deliver(&oenv, msg).await,
                    None => client::deliver(hop, &self.client_options(), &oenv, msg).await,
                };
                match result {
                    Ok(results) => results
                        .into_iter()
                        .map(|r| match r.outcome {
                            Outcome::Delivered(reply) => RcptState::Delivered {
                                reply: reply_text(&reply),
                            },
                            Outcome::Permanent(f) => RcptState::Failed {
                                reply: failure_text(&f),
                            },
                            Outcome::Temporary(f) => RcptState::Pending {
                                last_error: Some(failure_text(&f)),
                            },
                        })
                        .collect(),
                    Err(e) => pending
                        .iter()
                        .map(|_| RcptState::Pending {
                            last_error: Some(format!("{hop}: {e}")),
                        })
                        .collect(),
                }
            }
        }
    }
}
