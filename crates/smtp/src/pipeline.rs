//! The gateway's end of DATA: scan → verdict → action → quarantine and/or
//! spool → reply.
//!
//! Everything runs on a blocking thread (scanning is CPU work, fsync is
//! blocking I/O); the session waits for the reply. The order of effects is what
//! makes "nothing lost" hold:
//! 1. a quarantine copy, if any, is committed to the store;
//! 2. the message to deliver, if any, is spooled and fsynced;
//! 3. only then is 250 returned; any error before → 451, and whatever was
//!    already written stays (a duplicate at worst, never a loss).
//!
//! Verdict classes and their actions come from `[actions]`: `infected`
//! (a signature), `suspicious` (a heuristic), `unscannable` (limits exceeded,
//! encrypted, broken or unsupported content, scan errors). When several
//! classes apply, the strictest action wins. After `clean` the cleaned message
//! is scanned again: if anything is still found, it is quarantined instead.
//!
//! Every message leaves one event in the store's event log. A slot for it is
//! reserved before anything else: when the event writer cannot take one (the
//! database has been unreachable long enough to fill its buffer), the message
//! is tempfailed, so no mail is delivered unrecorded.
//!
//! A message released from the quarantine carries its release token
//! ([`crate::quarantine::RELEASE_HEADER`]); when it is scanned again here (a hub sharing
//! the store) and the findings are those of the released item, it is
//! delivered instead of quarantined again. The header is removed from
//! untrusted clients' messages on arrival, like stamps.

use crate::config::{Action, ActionConfig, Role};
use crate::headers;
use crate::plan::{self, Plan};
use crate::proto::Reply;
use crate::quarantine::{self as q, QuarantineRecord, RELEASE_HEADER};
use crate::relay::RcptDecision;
use crate::session::{Envelope, Handler, SessionInfo};
use crate::spool::{new_queue_id, now_secs, Spool, SpoolEnvelope, SpoolRcpt};
use crate::stamp::ScanGeneration;
use mxguard_policy::CompiledPolicy;
use mxguard_store::{EventPermit, EventWriter, Store, StoreError};
use mxguard_types::{Finding, ScanOptions, ScanReport, Severity};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// Header naming what the gateway found when the message is delivered anyway.
pub const STATUS_HEADER: &str = "X-MXGuard-Status";

/// Our sender authentication results (RFC 8601).
pub const AUTH_RESULTS: &str = "Authentication-Results";

/// Headers of the spam verdict: ours replace any the message arrived with.
pub const SPAM_HEADERS: [&str; 3] = ["X-Spam-Flag", "X-Spam-Status", "X-Spam-Score"];

/// The verdict classes actions are configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Infected,
    Suspicious,
    Unscannable,
    /// The spam score reached the required score.
    Spam,
    /// A rule of the policy asked for an action (`[policy]`).
    Policy,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Infected => "infected",
            Class::Suspicious => "suspicious",
            Class::Unscannable => "unscannable",
            Class::Spam => "spam",
            Class::Policy => "policy",
        }
    }
}

/// Findings that say "this could not be looked at", not "this is bad".
pub fn is_unscannable(f: &Finding) -> bool {
    [
        "Heuristics.Limits.",
        "Heuristics.Encrypted.",
        "Heuristics.Unscannable.",
        "Heuristics.Broken.",
    ]
    .iter()
    .any(|p| f.name.starts_with(p))
}

/// The finding that carries a spam verdict.
pub const SPAM_FINDING: &str = "Spam.Score";

pub fn class_of(f: &Finding) -> Class {
    if f.severity == Severity::Infected {
        Class::Infected
    } else if f.name == SPAM_FINDING || f.name == plan::SPAM_HIGH_FINDING {
        Class::Spam
    } else if f.engine == mxguard_types::EngineKind::Policy && f.name.starts_with("Policy.") {
        Class::Policy
    } else if is_unscannable(f) {
        Class::Unscannable
    } else {
        Class::Suspicious
    }
}

/// The action for a scan report: `None` when it is clean.
pub fn decide(report: &ScanReport, actions: &ActionConfig) -> Option<(Action, Vec<Class>)> {
    let mut classes: Vec<Class> = report.findings.iter().map(class_of).collect();
    if report.error.is_some() {
        classes.push(Class::Unscannable);
    }
    classes.sort();
    classes.dedup();
    let action = classes
        .iter()
        .map(|c| action_for(*c, actions))
        .max_by_key(|a| a.rank())?;
    Some((action, classes))
}

use crate::plan::action_for;

/// Counters for logs and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub messages: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub quarantined: AtomicU64,
    pub dropped: AtomicU64,
    pub cleaned: AtomicU64,
    pub tagged: AtomicU64,
    pub tempfailed: AtomicU64,
    pub scans_skipped: AtomicU64,
    /// Delivered despite findings because a release grant covered them.
    pub released: AtomicU64,
}

/// Everything the gateway handler needs.
pub struct GatewayInner {
    /// The signatures to scan and stamp with, swapped whole on reload
    /// (shared with the mailbox check).
    pub scan: Arc<crate::stamp::ScanSlot>,
    pub actions: ActionConfig,
    pub spool: Spool,
    /// Quarantine copies and release grants.
    pub store: Store,
    /// The event log.
    pub events: EventWriter,
    pub node_id: String,
    pub hostname: String,
    pub role: Role,
    /// New spool ids go to the delivery queue through this.
    pub queue: UnboundedSender<crate::queue::Queued>,
    pub stats: Stats,
    /// The spam filter (a trained model), when enabled; swapped whole when
    /// the model file changes ([`GatewayInner::set_spam_filter`]).
    pub spam: std::sync::RwLock<Option<Arc<mxguard_policy::SpamFilter>>>,
    /// Notices to administrators, recipients and senders (`[notify]`).
    pub notify: Option<Arc<crate::notify::Notifier>>,
    /// Local recipients must have a valid Maildir name.
    pub local_delivery: bool,
    /// The rules engine's policy (`[policy]` / `policy_file`), swapped whole
    /// on reload ([`GatewayInner::set_policy`]).
    pub policy: std::sync::RwLock<Arc<CompiledPolicy>>,
    /// Our domains, for the policies' directions (`smtp.local_domains`).
    pub local_domains: Vec<String>,
    /// SPF, DKIM, DMARC, ARC and block lists (`[auth]`), for the rules.
    pub auth: Option<Arc<mxguard_auth::Authenticator>>,
}

/// The SMTP front-end's [`Handler`].
#[derive(Clone)]
pub struct Gateway {
    pub inner: Arc<GatewayInner>,
}

impl Handler for Gateway {
    async fn message(&self, info: &SessionInfo, env: &Envelope, message: Vec<u8>) -> Reply {
        let inner = self.inner.clone();
        let info = info.clone();
        let env = env.clone();
        let id = new_queue_id();
        let id2 = id.clone();
        match tokio::task::spawn_blocking(move || inner.process(&id2, &info, &env, message)).await {
            Ok(r) => r,
            Err(e) => {
                // A panic in the scan or the writes: never a wrong 250.
                tracing::error!(id = %id, "message processing failed: {e}");
                self.inner.stats.tempfailed.fetch_add(1, Ordering::Relaxed);
                Reply::new(
                    451,
                    Some("4.3.0"),
                    format!("Internal error, try again later ({id})"),
                )
            }
        }
    }

    fn local_recipient_ok(&self, address: &crate::proto::Address) -> bool {
        !self.inner.local_delivery || mxguard_mailbox::mailbox_name(&address.local).is_ok()
    }
}

fn names(findings: &[Finding]) -> String {
    let mut v: Vec<&str> = findings.iter().map(|f| f.name.as_str()).collect();
    v.dedup();
    v.join(", ")
}

/// Word-wraps each line of `text` at `width` columns (long words stay whole),
/// so a notice reads well as plain 7-bit text.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut col = 0;
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if col > 0 && col + 1 + word.chars().count() > width {
                out.push('\n');
                col = 0;
            } else if col > 0 {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += word.chars().count();
        }
    }
    out
}

/// What a front-end knows about a message, whatever its protocol.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    /// Our id for it: queue id, quarantine id and event id.
    pub id: String,
    pub client_ip: String,
    pub helo: String,
    /// Envelope sender (empty for `<>`).
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// The client may vouch for stamps and release tokens (`trusted_networks`).
    pub trusted: bool,
    /// The Subject, for notices (filled by the front-end when notices are on).
    pub subject: String,
}

/// Where a message goes after the scan and the action.
#[derive(Debug)]
pub enum Disposition {
    /// Deliver this message (possibly cleaned, tagged, stamped); `verdict`
    /// goes into the spool entry.
    Deliver {
        message: Vec<u8>,
        verdict: String,
        rcpts: RcptChange,
    },
    /// Refuse it permanently with this reply.
    Reject(Reply),
    /// Kept in the quarantine (the copy is durable); nothing to deliver.
    Quarantined,
    /// Dropped by configuration.
    Dropped,
    /// Nothing decided or stored; the sender retries later.
    TempFail(Reply),
}

/// Who a delivered message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptChange {
    /// Its envelope recipients.
    Same,
    /// Only this address (`redirect`).
    Redirect(String),
    /// Its recipients and these addresses (`bcc`).
    Bcc(Vec<String>),
}

/// What happened, for the log line and the event.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `deliver`, `reject`, `quarantine`, `drop`, `clean`, `tag`, `pass`, `tempfail`.
    pub action: &'static str,
    /// `clean`, `suspicious`, `infected`, `error`, or `stamp:<result>` when a
    /// trusted stamp stood in for the scan.
    pub verdict: String,
    pub findings: Vec<Finding>,
    /// Whether the message was scanned here (not skipped thanks to a stamp).
    pub scanned: bool,
    pub scan_error: bool,
    /// For the event: `stripped`, `trusted:<result>`, `added:<result>`, `released`.
    pub stamp: Option<String>,
    /// The spam verdict (the rules' points and the classifier's), when the
    /// rules engine ran.
    pub spam: Option<mxguard_policy::SpamResult>,
    /// The policy that covered these recipients, when the rules engine ran.
    pub policy: Option<String>,
    /// Notices the policy's rules asked for.
    pub notices: Vec<plan::Requested>,
}

impl Outcome {
    /// An outcome with this action and nothing found yet.
    pub fn new(action: &'static str) -> Outcome {
        Outcome {
            action,
            verdict: "clean".into(),
            findings: Vec::new(),
            scanned: true,
            scan_error: false,
            stamp: None,
            spam: None,
            policy: None,
            notices: Vec::new(),
        }
    }
}

/// What happens to one group of recipients.
#[derive(Debug)]
pub struct Branch {
    /// The id of this copy: the message's id for the first branch, a new
    /// queue id for the others (each has its own event and quarantine item).
    pub id: String,
    pub rcpts: Vec<String>,
    pub disposition: Disposition,
    pub outcome: Outcome,
}

/// The result of [`GatewayInner::evaluate`]: one branch, or one per group
/// of recipients whose policies decided differently.
#[derive(Debug)]
pub struct Evaluation {
    pub branches: Vec<Branch>,
}

impl Evaluation {
    /// One branch for every recipient.
    pub fn single(meta: &MessageMeta, disposition: Disposition, outcome: Outcome) -> Evaluation {
        Evaluation {
            branches: vec![Branch {
                id: meta.id.clone(),
                rcpts: meta.rcpts.clone(),
                disposition,
                outcome,
            }],
        }
    }
}

impl GatewayInner {
    fn tempfail(&self, id: &str, what: &str, e: impl std::fmt::Display) -> Reply {
        tracing::error!(id, "{what}: {e}");
        self.stats.tempfailed.fetch_add(1, Ordering::Relaxed);
        Reply::new(
            451,
            Some("4.3.0"),
            format!("Temporary failure storing the message, try again later ({id})"),
        )
    }

    fn received(&self, id: &str, info: &SessionInfo, env: &Envelope) -> String {
        let proto = match (info.esmtp, info.tls) {
            (true, true) => "ESMTPS",
            (true, false) => "ESMTP",
            (false, true) => "SMTPS",
            (false, false) => "SMTP",
        };
        let helo = info.helo.as_deref().unwrap_or("unknown");
        let tls = info
            .tls_info
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        let rcpt = if env.rcpts.len() == 1 {
            format!(" for <{}>", env.rcpts[0].address)
        } else {
            String::new()
        };
        format!(
            "from {helo} ([{}]) by {} (mxguard) with {proto}{tls} id {id}{rcpt}; {}",
            info.ip(),
            self.hostname,
            headers::rfc5322_date(now_secs())
        )
    }

    fn record(
        &self,
        meta: &MessageMeta,
        reason: &str,
        action: Action,
        findings: &[Finding],
        policy: &Option<String>,
    ) -> QuarantineRecord {
        QuarantineRecord {
            id: meta.id.clone(),
            node: self.node_id.clone(),
            client_ip: meta.client_ip.clone(),
            mail_from: meta.mail_from.clone(),
            rcpts: meta.rcpts.clone(),
            reason: reason.to_string(),
            action: action.as_str().to_string(),
            findings: findings.to_vec(),
            policy: policy.clone(),
        }
    }

    fn spool_envelope(
        &self,
        id: &str,
        info: &SessionInfo,
        env: &Envelope,
        verdict: &str,
    ) -> SpoolEnvelope {
        use crate::proto::command::{Body, Ret};
        SpoolEnvelope {
            id: id.to_string(),
            mail_from: env.sender_string(),
            rcpts: env
                .rcpts
                .iter()
                .map(|r| SpoolRcpt {
                    address: r.address.to_string(),
                    local: r.decision == RcptDecision::Local,
                    notify: r.params.notify.map(|n| {
                        let mut v = Vec::new();
                        if n.success {
                            v.push("SUCCESS");
                        }
                        if n.failure {
                            v.push("FAILURE");
                        }
                        if n.delay {
                            v.push("DELAY");
                        }
                        if v.is_empty() {
                            "NEVER".to_string()
                        } else {
                            v.join(",")
                        }
                    }),
                    orcpt: r.params.orcpt.clone(),
                })
                .collect(),
            received: now_secs(),
            client_ip: info.ip().to_string(),
            helo: info.helo.clone().unwrap_or_default(),
            envid: env.params.envid.clone(),
            ret: env.params.ret.map(|r| match r {
                Ret::Full => "FULL".to_string(),
                Ret::Headers => "HDRS".to_string(),
            }),
            body_8bit: matches!(env.params.body, Some(Body::EightBitMime | Body::BinaryMime)),
            smtputf8: env.params.smtputf8,
            dsn: false,
            verdict: verdict.to_string(),
        }
    }

    /// Spools `msg` for delivery (durably) and hands it to the queue.
    fn enqueue(
        &self,
        id: &str,
        info: &SessionInfo,
        env: &Envelope,
        msg: &[u8],
        verdict: &str,
        rcpts: &RcptChange,
    ) -> std::io::Result<()> {
        let mut senv = self.spool_envelope(id, info, env, verdict);
        let extra = |address: &str| SpoolRcpt {
            address: address.to_string(),
            local: self.local_delivery,
            notify: None,
            orcpt: None,
        };
        match rcpts {
            RcptChange::Same => {}
            RcptChange::Redirect(a) => senv.rcpts = vec![extra(a)],
            RcptChange::Bcc(a) => senv.rcpts.extend(a.iter().map(|a| extra(a))),
        }
        self.spool.store(&senv, msg)?;
        let _ = self.queue.send(crate::queue::Queued {
            id: id.to_string(),
            preload: Some(Arc::new(crate::queue::Preloaded {
                env: senv,
                message: Arc::from(msg),
            })),
        });
        Ok(())
    }

    /// A temporary failure reply (logged, counted), for front-ends.
    pub fn tempfail_reply(&self, id: &str, what: &str, e: impl std::fmt::Display) -> Reply {
        self.tempfail(id, what, e)
    }

    /// Spools a copy of a message for `rcpts` (changed by `change`) and
    /// hands it to the queue, for front-ends without an SMTP envelope (the
    /// milter's other branches). Durable when it returns `Ok`.
    pub fn enqueue_copy(
        &self,
        id: &str,
        meta: &MessageMeta,
        rcpts: &[String],
        msg: &[u8],
        verdict: &str,
        change: &RcptChange,
    ) -> std::io::Result<()> {
        let local = |a: &str| {
            self.local_delivery
                && a.rsplit_once('@').is_some_and(|(_, d)| {
                    self.local_domains.iter().any(|l| l.eq_ignore_ascii_case(d))
                })
        };
        let rcpt = |a: &str| SpoolRcpt {
            address: a.to_string(),
            local: local(a),
            notify: None,
            orcpt: None,
        };
        let mut list: Vec<SpoolRcpt> = match change {
            RcptChange::Redirect(to) => vec![rcpt(to)],
            _ => rcpts.iter().map(|r| rcpt(r)).collect(),
        };
        if let RcptChange::Bcc(to) = change {
            list.extend(to.iter().map(|a| rcpt(a)));
        }
        let senv = SpoolEnvelope {
            id: id.to_string(),
            mail_from: meta.mail_from.clone(),
            rcpts: list,
            received: now_secs(),
            client_ip: meta.client_ip.clone(),
            helo: meta.helo.clone(),
            envid: None,
            ret: None,
            body_8bit: msg.iter().any(|b| *b >= 0x80),
            smtputf8: !meta.mail_from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii()),
            dsn: false,
            verdict: verdict.to_string(),
        };
        self.spool.store(&senv, msg)?;
        let _ = self.queue.send(crate::queue::Queued {
            id: id.to_string(),
            preload: Some(Arc::new(crate::queue::Preloaded {
                env: senv,
                message: Arc::from(msg),
            })),
        });
        Ok(())
    }

    /// Stores a quarantine copy; durable when it returns `Ok`. Blocking.
    fn put(&self, rec: &QuarantineRecord, msg: &[u8]) -> Result<(), StoreError> {
        q::put_blocking(&self.store, rec, msg)
    }

    /// Reserves the slot of this message's event (see the module doc); when
    /// the event log cannot take one, the 451 to answer. Blocking.
    pub fn reserve_event(&self, meta: &MessageMeta, size: usize) -> Result<EventPermit, Reply> {
        self.events.reserve_blocking().map_err(|e| {
            tracing::info!(
                target: "mxguard::event",
                id = %meta.id,
                client = %meta.client_ip,
                from = %meta.mail_from,
                rcpts = %meta.rcpts.join(","),
                size,
                action = "tempfail",
                reply = 451,
                "message not accepted: event log cannot take it ({e})"
            );
            self.tempfail(&meta.id, "event log unavailable", e)
        })
    }

    /// Logs the `mxguard::event` line and queues the event of one message.
    #[allow(clippy::too_many_arguments)] // One call per front-end, all plain facts.
    pub fn finish(
        &self,
        permit: Option<EventPermit>,
        meta: &MessageMeta,
        size: usize,
        message_id: Option<String>,
        outcome: &Outcome,
        reply: u16,
        queued: bool,
        elapsed: std::time::Duration,
    ) {
        // Notices describe what finally happened (after the front-end's own
        // last step, such as the spool write), so they are sent from here.
        if let Some(n) = &self.notify {
            self.notify(n, meta, outcome);
        }
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        tracing::info!(
            target: "mxguard::event",
            id = %meta.id,
            client = %meta.client_ip,
            from = %meta.mail_from,
            rcpts = %meta.rcpts.join(","),
            size,
            verdict = %outcome.verdict,
            action = outcome.action,
            findings = %names(&outcome.findings),
            queued,
            reply,
            elapsed_ms = format_args!("{elapsed_ms:.2}"),
            "message"
        );
        let mut ev = q::event(
            &meta.id,
            &self.node_id,
            &meta.client_ip,
            &meta.helo,
            &meta.mail_from,
            meta.rcpts.clone(),
            size as u64,
            message_id,
        );
        ev.verdict = outcome
            .verdict
            .strip_prefix("stamp:")
            .unwrap_or(&outcome.verdict)
            .to_string();
        ev.action = outcome.action.to_string();
        ev.engines = q::engine_verdicts(&outcome.findings, outcome.scanned, outcome.scan_error);
        ev.findings = outcome.findings.clone();
        ev.latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        ev.stamp = outcome.stamp.clone();
        if let Some(r) = &outcome.spam {
            ev.spam_score = Some(r.score);
            ev.engines.push(mxguard_store::EngineVerdict {
                engine: "spam".into(),
                verdict: if r.spam { "spam" } else { "clean" }.into(),
                score: Some(r.score),
                elapsed_us: None,
            });
        }
        if outcome
            .findings
            .iter()
            .any(|f| class_of(f) == Class::Policy)
        {
            ev.engines.push(mxguard_store::EngineVerdict {
                engine: "policy".into(),
                verdict: outcome.policy.clone().unwrap_or_default(),
                score: None,
                elapsed_us: None,
            });
        }
        match permit {
            Some(p) => p.send(ev),
            // The other branches of a split message: recorded if the writer
            // has room (the message itself is already decided).
            None => {
                if let Err(e) = self.events.try_send(ev) {
                    tracing::warn!(id = %meta.id, "event not recorded: {e}");
                }
            }
        }
    }

    /// The SMTP front-end's end of DATA; see the module doc.
    pub fn process(&self, id: &str, info: &SessionInfo, env: &Envelope, message: Vec<u8>) -> Reply {
        let start = Instant::now();
        self.stats.messages.fetch_add(1, Ordering::Relaxed);
        let size = message.len();
        let meta = MessageMeta {
            id: id.to_string(),
            client_ip: info.ip().to_string(),
            helo: info.helo.clone().unwrap_or_default(),
            mail_from: env.sender_string(),
            rcpts: env.rcpts.iter().map(|r| r.address.to_string()).collect(),
            trusted: info.trusted,
            subject: self.subject_for_notices(&message),
        };
        let permit = match self.reserve_event(&meta, size) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let message_id = q::message_id(&message);
        // The trace field first.
        let received = self.received(id, info, env);
        let msg = headers::prepend_header(&message, "Received", &received);
        drop(message);
        let ev = self.evaluate(&meta, msg);
        // One reply answers for every branch: a refusal comes only from a
        // single branch (see `plan::reconcile`), or from a failed spool write.
        let mut refusal: Option<Reply> = None;
        let mut done = Vec::with_capacity(ev.branches.len());
        for b in ev.branches {
            let Branch {
                id: bid,
                rcpts,
                disposition,
                mut outcome,
            } = b;
            let mut queued = false;
            match disposition {
                Disposition::Deliver {
                    message,
                    verdict,
                    rcpts: change,
                } => {
                    let benv = env.only(&rcpts);
                    match self.enqueue(&bid, info, &benv, &message, &verdict, &change) {
                        Ok(()) => {
                            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                            queued = true;
                        }
                        Err(e) => {
                            outcome.action = "tempfail";
                            refusal.get_or_insert(self.tempfail(&bid, "spool write failed", e));
                        }
                    }
                }
                Disposition::Reject(r) | Disposition::TempFail(r) => {
                    refusal.get_or_insert(r);
                }
                Disposition::Quarantined | Disposition::Dropped => {}
            }
            done.push((bid, rcpts, outcome, queued));
        }
        let reply = refusal
            .unwrap_or_else(|| Reply::new(250, Some("2.0.0"), format!("Ok: queued as {id}")));
        let mut permit = Some(permit);
        for (bid, rcpts, outcome, queued) in done {
            let bmeta = MessageMeta {
                id: bid,
                rcpts,
                ..meta.clone()
            };
            self.finish(
                permit.take(),
                &bmeta,
                size,
                message_id.clone(),
                &outcome,
                reply.code,
                queued,
                start.elapsed(),
            );
        }
        reply
    }

    /// Everything between a received message and its delivery, for every
    /// front-end: stamps and release tokens of untrusted clients removed, the
    /// hub's stamp check, the scan, the rules engine (policies, spam score),
    /// the release grant, the actions, quarantine copies (durable before this
    /// returns). Blocking (scan, store).
    ///
    /// Guarantees: at least one branch; the branches' recipients partition
    /// `meta.rcpts` (redirects and Bccs aside); with several branches, none
    /// is a `Reject` or `TempFail` (see [`crate::plan::reconcile`]).
    pub fn evaluate(&self, meta: &MessageMeta, message: Vec<u8>) -> Evaluation {
        let mut ev = self.evaluate_inner(meta, message);
        for b in &mut ev.branches {
            let o = &mut b.outcome;
            if o.action != "deliver" && !o.findings.is_empty() {
                if o.findings
                    .iter()
                    .all(|f| f.name == SPAM_FINDING || f.name == crate::plan::SPAM_HIGH_FINDING)
                {
                    o.verdict = "spam".into();
                } else if o.verdict == "clean" {
                    o.verdict = "policy".into();
                }
            }
        }
        ev
    }

    /// `msg` with our Authentication-Results and spam headers (ours replace
    /// any spam headers it had), under the stamp, which is added last.
    fn with_verdict_headers(&self, msg: Vec<u8>, p: &Plan) -> Vec<u8> {
        let msg = match &p.auth_header {
            Some(v) => headers::prepend_header(&msg, AUTH_RESULTS, v),
            None => msg,
        };
        let Some(r) = p.spam.as_ref() else {
            return msg;
        };
        let mut m = msg;
        for h in SPAM_HEADERS {
            if let std::borrow::Cow::Owned(x) = headers::remove_header(&m, h) {
                m = x;
            }
        }
        let (status, score) = (r.status_header(), format!("{:.2}", r.score));
        let mut fields = Vec::with_capacity(3);
        if r.spam {
            fields.push(("X-Spam-Flag", "YES"));
        }
        fields.push(("X-Spam-Status", status.as_str()));
        fields.push(("X-Spam-Score", score.as_str()));
        headers::prepend_headers(&m, &fields)
    }

    /// The policy the rules engine applies now.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The spam filter now (`None`: no usable model).
    pub fn spam_filter(&self) -> Option<Arc<mxguard_policy::SpamFilter>> {
        self.spam.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the spam filter for the messages evaluated from now on.
    pub fn set_spam_filter(&self, f: Option<Arc<mxguard_policy::SpamFilter>>) {
        *self.spam.write().unwrap_or_else(|e| e.into_inner()) = f;
    }

    /// Replaces the policy for the messages evaluated from now on (messages
    /// being evaluated keep the one they started with).
    pub fn set_policy(&self, policy: Arc<CompiledPolicy>) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// The Subject of `message` when notices are configured (they quote it), else empty.
    pub fn subject_for_notices(&self, message: &[u8]) -> String {
        self.notify
            .as_ref()
            .and_then(|_| headers::header_value(message, "Subject"))
            .unwrap_or_default()
    }

    /// Queues the notices a final outcome calls for (see [`crate::notify`]).
    fn notify(&self, n: &crate::notify::Notifier, meta: &MessageMeta, outcome: &Outcome) {
        if outcome.findings.is_empty()
            || outcome.action == "tempfail"
            || outcome.action == "deliver"
        {
            return;
        }
        let classes: Vec<Class> = outcome.findings.iter().map(class_of).collect();
        let class = [
            Class::Infected,
            Class::Suspicious,
            Class::Unscannable,
            Class::Policy,
            Class::Spam,
        ]
        .into_iter()
        .find(|c| classes.contains(c))
        .unwrap_or(Class::Unscannable);
        let inc = crate::notify::Incident {
            id: &meta.id,
            client_ip: &meta.client_ip,
            mail_from: &meta.mail_from,
            rcpts: &meta.rcpts,
            subject: &meta.subject,
            action: outcome.action,
            class: class.as_str(),
            findings: &outcome.findings,
            trusted_client: meta.trusted,
            requested: &outcome.notices,
        };
        for id in n.send(&self.spool, &inc) {
            let _ = self.queue.send(crate::queue::Queued::id(id));
        }
    }

    fn evaluate_inner(&self, meta: &MessageMeta, message: Vec<u8>) -> Evaluation {
        let id = meta.id.as_str();
        let policy = self.policy();
        let spam_filter = self.spam_filter();
        let run_policy = spam_filter.is_some() || !policy.is_empty();
        // One generation for the whole message: scanned and stamped alike.
        let gen = self.scan.current();

        // Stamps and release tokens: removed unless the client may vouch for them.
        let mut msg = message;
        let stamp_trusted = meta.trusted && gen.stamp.is_some();
        let mut stamp_note = None;
        if !stamp_trusted {
            if let std::borrow::Cow::Owned(stripped) = crate::stamp::strip(&msg) {
                tracing::info!(id, client = %meta.client_ip, "removed antivirus stamp from an untrusted client");
                msg = stripped;
                stamp_note = Some("stripped".to_string());
            }
        }
        if !meta.trusted && run_policy {
            for h in SPAM_HEADERS {
                if let std::borrow::Cow::Owned(stripped) = headers::remove_header(&msg, h) {
                    msg = stripped;
                }
            }
        }
        // Authentication-Results claiming to be ours are forgeries unless a
        // trusted client (another node of ours) added them (RFC 8601 §5).
        if let (Some(a), false) = (&self.auth, meta.trusted) {
            if let std::borrow::Cow::Owned(stripped) =
                headers::remove_header_if(&msg, AUTH_RESULTS, |v| a.is_own_results(v))
            {
                tracing::info!(id, client = %meta.client_ip, "removed Authentication-Results with our authserv-id from an untrusted client");
                msg = stripped;
            }
        }
        if !meta.trusted {
            if let std::borrow::Cow::Owned(stripped) = headers::remove_header(&msg, RELEASE_HEADER)
            {
                tracing::info!(id, client = %meta.client_ip, "removed release token from an untrusted client");
                msg = stripped;
            }
        }

        // A hub trusts a current stamp from a trusted node instead of scanning
        // again (and the edge that stamped it applied the policies).
        if self.role == Role::Hub && stamp_trusted {
            if let Some(st) = &gen.stamp {
                match st.check(&msg) {
                    Ok(result) => {
                        self.stats.scans_skipped.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            id,
                            "antivirus scan skipped: valid current stamp ({result})"
                        );
                        let outcome = Outcome {
                            verdict: format!("stamp:{result}"),
                            scanned: false,
                            stamp: Some(format!("trusted:{result}")),
                            ..Outcome::new("deliver")
                        };
                        return Evaluation::single(
                            meta,
                            Disposition::Deliver {
                                message: msg,
                                verdict: "stamp".into(),
                                rcpts: RcptChange::Same,
                            },
                            outcome,
                        );
                    }
                    Err(why) => tracing::debug!(id, "stamp not used ({why}): scanning"),
                }
            }
        }

        // The rules engine reads the same walk as the scan (text, links, attachments).
        let mut facts = run_policy.then(|| mxguard_policy::MessageFacts::headers_of(&msg));
        let report = match facts.as_mut() {
            Some(f) => gen.scanner.scan_with(
                &msg,
                None,
                ScanOptions::default(),
                &mut mxguard_policy::FactsCollector::new(f),
            ),
            None => gen.scanner.scan_bytes(&msg, ScanOptions::default()),
        };
        let infected = report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Infected);
        // Sender authentication and block lists, for the rules (a trusted
        // client is one of ours: SPF, DMARC and the DNSBL are skipped).
        let mut auth_header = None;
        if let (Some(a), Some(f)) = (&self.auth, facts.as_mut()) {
            let domains = f.url_domains(a.config().max_uribl_domains);
            let client_ip = if meta.trusted {
                None
            } else {
                meta.client_ip.parse().ok()
            };
            let r = a.check_blocking(&mxguard_auth::AuthInput {
                client_ip,
                helo: &meta.helo,
                mail_from: &meta.mail_from,
                message: &msg,
                url_domains: &domains,
            });
            if !r.errors.is_empty() {
                tracing::debug!(id, errors = %r.errors.join("; "), "auth lookups failed");
            }
            if !r.header.is_empty() {
                auth_header = Some(r.header.clone());
            }
            f.auth = Some(r);
        }
        let classifier = match (&spam_filter, &facts, infected) {
            (Some(sf), Some(f), false) => Some(sf.check(f)),
            _ => None,
        };
        let scan = plan::scan_decisions(&report.findings, report.error.as_deref(), &self.actions);
        let mut plans = match &facts {
            Some(f) => {
                let env = mxguard_policy::Envelope {
                    client_ip: meta.client_ip.parse().ok(),
                    helo: &meta.helo,
                    mail_from: &meta.mail_from,
                    rcpts: &meta.rcpts,
                    local_domains: &self.local_domains,
                };
                let verdicts = policy.evaluate(f, &env, classifier.as_ref());
                self.plans(meta, &verdicts, &scan, classifier.as_ref(), &auth_header)
            }
            None => Vec::new(),
        };
        if plans.is_empty() {
            plans.push(Plan {
                rcpts: meta.rcpts.clone(),
                policy: None,
                decided: scan,
                spam: None,
                notices: Vec::new(),
                auth_header: None,
            });
        }
        drop(facts);
        let scan_verdict = report.verdict().as_str().to_string();
        let scan_error = report.error.is_some();

        if let Some(i) = plan::reconcile(&mut plans) {
            let p = &plans[i];
            let text = match p.deciding().map(|d| &d.param) {
                Some(plan::Param::Text(t)) => t.clone(),
                _ => "Message deferred by policy, try again later".into(),
            };
            tracing::info!(id, policy = ?p.policy, "recipients under different policies, one defers: the whole message is deferred");
            self.stats.tempfailed.fetch_add(1, Ordering::Relaxed);
            let outcome = Outcome {
                verdict: scan_verdict,
                findings: p.findings(),
                scan_error,
                stamp: stamp_note,
                spam: p.spam.clone(),
                policy: p.policy.clone(),
                ..Outcome::new("tempfail")
            };
            return Evaluation::single(
                meta,
                Disposition::TempFail(Reply::new(451, Some("4.7.1"), format!("{text} [{id}]"))),
                outcome,
            );
        }

        let n = plans.len();
        if n > 1 {
            tracing::info!(
                id,
                groups = n,
                "recipients under different policies: one copy per group"
            );
        }
        let mut branches = Vec::with_capacity(n);
        for (i, p) in plans.into_iter().enumerate() {
            let bmeta = MessageMeta {
                id: if i == 0 {
                    meta.id.clone()
                } else {
                    new_queue_id()
                },
                rcpts: p.rcpts.clone(),
                ..meta.clone()
            };
            let copy = if i + 1 == n {
                std::mem::take(&mut msg)
            } else {
                msg.clone()
            };
            let outcome = Outcome {
                verdict: scan_verdict.clone(),
                scan_error,
                stamp: stamp_note.clone(),
                ..Outcome::new("deliver")
            };
            match self.apply(&gen, &bmeta, copy, p, outcome) {
                Ok((disposition, outcome)) => branches.push(Branch {
                    id: bmeta.id,
                    rcpts: bmeta.rcpts,
                    disposition,
                    outcome,
                }),
                // What was stored stays (a duplicate at worst after the retry).
                Err(reply) => {
                    return Evaluation::single(meta, Disposition::TempFail(reply), {
                        let mut o = Outcome::new("tempfail");
                        o.verdict = "error".into();
                        o
                    })
                }
            }
        }
        Evaluation { branches }
    }

    /// One plan per policy verdict: the scan's decisions (for every group)
    /// and the verdict's own; recipients matched case-insensitively.
    fn plans(
        &self,
        meta: &MessageMeta,
        verdicts: &[mxguard_policy::PolicyVerdict],
        scan: &[plan::Decided],
        classifier: Option<&mxguard_policy::SpamResult>,
        auth_header: &Option<String>,
    ) -> Vec<Plan> {
        let norm = |r: &str| r.trim().trim_matches(['<', '>']).to_lowercase();
        let mut plans: Vec<Plan> = verdicts
            .iter()
            .map(|v| {
                let (mut decided, notices) = plan::policy_decisions(v, &self.actions);
                let mut all = scan.to_vec();
                all.append(&mut decided);
                Plan {
                    rcpts: meta
                        .rcpts
                        .iter()
                        .filter(|r| v.recipients.contains(&norm(r)))
                        .cloned()
                        .collect(),
                    policy: Some(v.policy.clone()),
                    decided: all,
                    spam: Some(plan::spam_result(v, classifier)),
                    notices,
                    auth_header: auth_header.clone(),
                }
            })
            .collect();
        // Every recipient in exactly one group (a recipient the engine did
        // not list goes with the first).
        let listed: Vec<String> = plans.iter().flat_map(|p| p.rcpts.clone()).collect();
        let missing: Vec<String> = meta
            .rcpts
            .iter()
            .filter(|r| !listed.contains(r))
            .cloned()
            .collect();
        if let Some(first) = plans.first_mut() {
            first.rcpts.extend(missing);
        }
        plans.retain(|p| !p.rcpts.is_empty() || meta.rcpts.is_empty());
        if meta.rcpts.is_empty() {
            plans.truncate(1);
        }
        plans
    }

    /// Carries out one plan for its recipients (`meta.rcpts`).
    fn apply(
        &self,
        gen: &ScanGeneration,
        meta: &MessageMeta,
        msg: Vec<u8>,
        p: Plan,
        mut outcome: Outcome,
    ) -> Result<(Disposition, Outcome), Reply> {
        let id = meta.id.as_str();
        let added = |result: &str| gen.stamp.as_ref().map(|_| format!("added:{result}"));
        let findings = p.findings();
        outcome.findings = findings.clone();
        outcome.spam = p.spam.clone();
        outcome.policy = p.policy.clone();
        outcome.notices = p.notices.clone();
        // A policy's `pass` delivers as is: nothing to act on or mark.
        let acts = |d: &&plan::Decided| {
            !(d.action == Action::Pass && class_of(&d.finding) == Class::Policy)
        };
        let acting: Vec<&plan::Decided> = p.decided.iter().filter(acts).collect();
        let Some(action) = acting.iter().map(|d| d.action).max_by_key(|a| a.rank()) else {
            outcome.action = "deliver";
            outcome.stamp = added("clean").or(outcome.stamp);
            let msg = self.with_verdict_headers(msg, &p);
            return Ok((
                Disposition::Deliver {
                    message: self.add_stamp(gen, &msg, "clean"),
                    verdict: "clean".into(),
                    rcpts: RcptChange::Same,
                },
                outcome,
            ));
        };
        let deciding = acting.iter().find(|d| d.action == action).copied();
        let class = deciding
            .map(|d| class_of(&d.finding))
            .unwrap_or(Class::Unscannable);
        let what = names(&findings);
        outcome.action = action.as_str();

        // A released message (its token survived only from a trusted client)
        // is not held or changed again for the threats it was released with.
        if action.rank() >= Action::Clean.rank() {
            match q::grant_blocking(&self.store, &msg) {
                Ok(Some(grant)) => {
                    if q::grant_allows(&grant, &findings, &meta.rcpts) {
                        tracing::info!(id, item = %grant.id, found = %what, "released message: delivered despite {what}");
                        self.stats.released.fetch_add(1, Ordering::Relaxed);
                        outcome.action = "deliver";
                        outcome.stamp = Some("released".into());
                        let msg = self.with_verdict_headers(msg, &p);
                        return Ok((
                            Disposition::Deliver {
                                message: crate::stamp::strip(&msg).into_owned(),
                                verdict: "released".into(),
                                rcpts: RcptChange::Same,
                            },
                            outcome,
                        ));
                    }
                    tracing::info!(id, item = %grant.id, "release token does not cover {what} for every recipient: normal action");
                }
                Ok(None) => {}
                Err(e) => return Err(self.tempfail(id, "release token lookup failed", e)),
            }
        }

        let param = deciding.map(|d| &d.param).unwrap_or(&plan::Param::None);
        let reason = class.as_str();
        let disposition = match action {
            Action::Reject => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                let text = if let plan::Param::Text(t) = param {
                    format!("{t} [{id}]")
                } else if !self.actions.reject_text.is_empty() {
                    self.actions
                        .reject_text
                        .replace("{threats}", &what)
                        .replace("{class}", reason)
                        .replace("{id}", id)
                } else {
                    let text = match class {
                        Class::Infected => format!("Message refused: virus found ({what})"),
                        Class::Suspicious => {
                            format!("Message refused: suspicious content ({what})")
                        }
                        Class::Unscannable => {
                            format!("Message refused: content could not be scanned ({what})")
                        }
                        Class::Spam => format!("Message refused as spam ({what})"),
                        Class::Policy => format!("Message refused by policy ({what})"),
                    };
                    format!("{text} [{id}]")
                };
                Disposition::Reject(Reply::new(554, Some("5.7.1"), text))
            }
            Action::Tempfail => {
                self.stats.tempfailed.fetch_add(1, Ordering::Relaxed);
                let text = match param {
                    plan::Param::Text(t) => format!("{t} [{id}]"),
                    _ => format!("Message deferred by policy ({what}), try again later [{id}]"),
                };
                Disposition::TempFail(Reply::new(451, Some("4.7.1"), text))
            }
            Action::Quarantine => {
                let rec = self.record(meta, reason, action, &findings, &p.policy);
                if let Err(e) = self.put(&rec, &msg) {
                    return Err(self.tempfail(id, "quarantine write failed", e));
                }
                self.stats.quarantined.fetch_add(1, Ordering::Relaxed);
                Disposition::Quarantined
            }
            Action::Replace => {
                // The original is kept (durably) before its notice goes out.
                let rec = self.record(meta, reason, action, &findings, &p.policy);
                if let Err(e) = self.put(&rec, &msg) {
                    return Err(self.tempfail(id, "quarantine write failed", e));
                }
                self.stats.quarantined.fetch_add(1, Ordering::Relaxed);
                let subject = headers::header_value(&msg, "Subject").unwrap_or_default();
                let sender = if meta.mail_from.is_empty() {
                    "<>"
                } else {
                    meta.mail_from.as_str()
                };
                let notice = wrap(
                    &self
                        .actions
                        .replace_notice
                        .replace("{id}", id)
                        .replace("{from}", sender)
                        .replace("{subject}", &subject)
                        .replace("{threats}", &what),
                    72,
                );
                let body = headers::prepend_header(
                    &headers::replacement(&msg, &notice),
                    STATUS_HEADER,
                    &format!("replaced; {reason}; {what}"),
                );
                let body = self.add_stamp(gen, &body, "cleaned");
                if gen.stamp.is_some() {
                    outcome.stamp = Some("added:cleaned".into());
                }
                Disposition::Deliver {
                    message: body,
                    verdict: outcome.verdict.clone(),
                    rcpts: RcptChange::Same,
                }
            }
            Action::Drop => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Disposition::Dropped
            }
            Action::Clean
            | Action::Warn
            | Action::Redirect
            | Action::Bcc
            | Action::Tag
            | Action::Pass => {
                if self.actions.backup_original && action != Action::Pass {
                    let rec = self.record(meta, "backup", action, &findings, &p.policy);
                    if let Err(e) = self.put(&rec, &msg) {
                        return Err(self.tempfail(id, "quarantine backup failed", e));
                    }
                }
                let mut result = "clean";
                let mut body = msg;
                if action == Action::Clean {
                    match self.clean(gen, &body, &p.decided) {
                        Ok(cleaned) => {
                            body = cleaned;
                            result = "cleaned";
                            self.stats.cleaned.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(why) => {
                            // Could not remove it safely: keep it out of the mailbox instead.
                            tracing::warn!(id, "clean failed ({why}): quarantined instead");
                            outcome.action = "quarantine";
                            let rec =
                                self.record(meta, reason, Action::Quarantine, &findings, &p.policy);
                            if let Err(e) = self.put(&rec, &body) {
                                return Err(self.tempfail(id, "quarantine write failed", e));
                            }
                            self.stats.quarantined.fetch_add(1, Ordering::Relaxed);
                            return Ok((Disposition::Quarantined, outcome));
                        }
                    }
                }
                // Findings delivered as they are are marked; `tag` also marks the Subject.
                let marked: Vec<&Finding> = acting
                    .iter()
                    .filter(|d| {
                        matches!(
                            d.action,
                            Action::Warn
                                | Action::Redirect
                                | Action::Bcc
                                | Action::Tag
                                | Action::Pass
                        )
                    })
                    .map(|d| &d.finding)
                    .collect();
                if !marked.is_empty() || result == "cleaned" {
                    let status = if result == "cleaned" && marked.is_empty() {
                        format!("cleaned; removed: {what}")
                    } else {
                        let n: Vec<Finding> = marked.iter().map(|f| (*f).clone()).collect();
                        format!("{reason}; {}", names(&n))
                    };
                    body = headers::prepend_header(
                        &headers::remove_header(&body, STATUS_HEADER),
                        STATUS_HEADER,
                        &status,
                    );
                    // The stamp is about viruses: spam and policy alone leave it clean.
                    result = if result == "cleaned" {
                        "cleaned"
                    } else if marked
                        .iter()
                        .all(|f| matches!(class_of(f), Class::Spam | Class::Policy))
                    {
                        "clean"
                    } else {
                        "suspicious"
                    };
                }
                let mut tags: Vec<&str> = Vec::new();
                for d in acting.iter().filter(|d| d.action == Action::Tag) {
                    let t = match &d.param {
                        plan::Param::SubjectTag(t) => t.as_deref(),
                        _ if class_of(&d.finding) == Class::Spam => {
                            Some(self.actions.spam_tag_subject.as_str())
                        }
                        _ => Some(self.actions.tag_subject.as_str()),
                    };
                    if let Some(t) = t.filter(|t| !t.is_empty() && !tags.contains(t)) {
                        tags.push(t);
                    }
                }
                for t in &tags {
                    body = headers::tag_subject(&body, t);
                }
                if acting.iter().any(|d| d.action == Action::Tag) {
                    self.stats.tagged.fetch_add(1, Ordering::Relaxed);
                }
                let mut banners: Vec<String> = Vec::new();
                for d in acting.iter().filter(|d| d.action == Action::Warn) {
                    let b = match &d.param {
                        plan::Param::Banner(b) if !b.trim().is_empty() => b.clone(),
                        _ => self.actions.warn_banner.replace("{threats}", &what),
                    };
                    let b = wrap(&b, 72);
                    if !banners.contains(&b) {
                        banners.push(b);
                    }
                }
                if !banners.is_empty() {
                    body = headers::with_banner(&body, &banners.join("\n\n"));
                }
                let body = self.with_verdict_headers(body, &p);
                let body = self.add_stamp(gen, &body, result);
                if gen.stamp.is_some() {
                    outcome.stamp = Some(format!("added:{result}"));
                }
                let address = |d: &plan::Decided, default: &str| match &d.param {
                    plan::Param::Address(a) if !a.is_empty() => a.clone(),
                    _ => default.to_string(),
                };
                let rcpts = if action == Action::Redirect {
                    RcptChange::Redirect(
                        deciding
                            .map(|d| address(d, &self.actions.redirect_to))
                            .unwrap_or_else(|| self.actions.redirect_to.clone()),
                    )
                } else {
                    let mut bcc: Vec<String> = Vec::new();
                    for d in acting.iter().filter(|d| d.action == Action::Bcc) {
                        let a = address(d, &self.actions.bcc_to);
                        if !a.is_empty() && !bcc.contains(&a) {
                            bcc.push(a);
                        }
                    }
                    if bcc.is_empty() {
                        RcptChange::Same
                    } else {
                        RcptChange::Bcc(bcc)
                    }
                };
                Disposition::Deliver {
                    message: body,
                    verdict: outcome.verdict.clone(),
                    rcpts,
                }
            }
        };
        Ok((disposition, outcome))
    }

    /// Removes the parts whose findings call for `clean`, then scans the result
    /// again: anything still found makes it an error (the caller quarantines).
    /// A scan cut short by a global limit is never cleaned (parts after the
    /// cut were not looked at).
    fn clean(
        &self,
        gen: &ScanGeneration,
        msg: &[u8],
        decided: &[plan::Decided],
    ) -> Result<Vec<u8>, String> {
        const CUT_SHORT: [&str; 3] = [
            "Heuristics.Limits.Exceeded.MaxFiles",
            "Heuristics.Limits.Exceeded.MaxScanSize",
            "Heuristics.Limits.Exceeded.MaxScanTime",
        ];
        if let Some(d) = decided
            .iter()
            .find(|d| CUT_SHORT.contains(&d.finding.name.as_str()))
        {
            return Err(format!("the scan was cut short ({})", d.finding.name));
        }
        let mut targets: Vec<Finding> = decided
            .iter()
            .filter(|d| d.action == Action::Clean)
            .map(|d| d.finding.clone())
            .collect();
        // A policy rule names the parts it wants removed; without one there
        // is nothing that can be removed.
        if let Some(f) = targets
            .iter()
            .find(|f| f.location.is_empty() && class_of(f) == Class::Policy)
        {
            return Err(format!("{} names no part to remove", f.name));
        }
        let wants_clean = |f: &&Finding| action_for(class_of(f), &self.actions) == Action::Clean;
        // The first hit may be on the raw message (an unencoded part): find
        // every hit to learn which parts hold it, and keep a whole-message hit
        // only when no part explains it.
        if targets.iter().any(|f| f.location.is_empty()) {
            let all = gen.scanner.scan_bytes(msg, ScanOptions { all_match: true });
            let deep: Vec<Finding> = all
                .findings
                .iter()
                .filter(wants_clean)
                .filter(|f| !f.location.is_empty())
                .cloned()
                .collect();
            targets.retain(|f| !f.location.is_empty() || !deep.iter().any(|d| d.name == f.name));
            for d in deep {
                if !targets.contains(&d) {
                    targets.push(d);
                }
            }
        }
        let locations: Vec<&str> = targets.iter().map(|f| f.location.as_str()).collect();
        let template = self.actions.clean_notice.clone();
        let notice = |part: &mxguard_decode::rewrite::RemovedPart| {
            // A policy rule is not a threat name: say what it is.
            let mut threats: Vec<String> = targets
                .iter()
                .filter(|f| part.found.iter().any(|l| *l == f.location))
                .map(|f| match f.name.strip_prefix("Policy.") {
                    Some(rule) if class_of(f) == Class::Policy => {
                        format!("content the mail policy does not allow (rule {rule})")
                    }
                    _ => f.name.clone(),
                })
                .collect();
            threats.dedup();
            wrap(
                &template
                    .replace("{name}", part.name.as_deref().unwrap_or("(unnamed)"))
                    .replace("{threat}", &threats.join(", "))
                    .replace("{location}", &part.location),
                72,
            )
        };
        let budget = &gen.scanner.decoder().options().budget;
        let cleaned = mxguard_decode::rewrite::remove_parts_with(budget, msg, &locations, &notice)
            .map_err(|e| e.to_string())?;
        let again = gen
            .scanner
            .scan_bytes(&cleaned.message, ScanOptions::default());
        let left: Vec<&Finding> = again
            .findings
            .iter()
            .filter(|f| action_for(class_of(f), &self.actions).rank() >= Action::Clean.rank())
            .collect();
        if !left.is_empty() || again.error.is_some() {
            return Err(format!(
                "still found after cleaning: {}",
                left.iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(cleaned.message)
    }

    fn add_stamp(&self, gen: &ScanGeneration, msg: &[u8], result: &str) -> Vec<u8> {
        match &gen.stamp {
            // Ours supersedes any earlier stamp (a trusted client's, valid or not).
            Some(st) => st.stamp(&crate::stamp::strip(msg), result, &self.node_id),
            None => msg.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxguard_types::EngineKind;

    fn f(name: &str, sev: Severity) -> Finding {
        Finding {
            name: name.into(),
            engine: EngineKind::Signatures,
            severity: sev,
            location: String::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn classes_and_strictest_action() {
        let a = ActionConfig {
            infected: Action::Clean,
            suspicious: Action::Tag,
            unscannable: Action::Quarantine,
            ..Default::default()
        };
        let clean = ScanReport {
            findings: vec![],
            error: None,
            size: 1,
        };
        assert_eq!(decide(&clean, &a), None);
        let r = ScanReport {
            findings: vec![
                f("Eicar", Severity::Infected),
                f(
                    "Heuristics.Attachment.DoubleExtension",
                    Severity::Suspicious,
                ),
            ],
            error: None,
            size: 1,
        };
        assert_eq!(
            decide(&r, &a),
            Some((Action::Clean, vec![Class::Infected, Class::Suspicious]))
        );
        let r = ScanReport {
            findings: vec![f(
                "Heuristics.Limits.Exceeded.MaxFileSize",
                Severity::Suspicious,
            )],
            error: None,
            size: 1,
        };
        assert_eq!(
            decide(&r, &a),
            Some((Action::Quarantine, vec![Class::Unscannable]))
        );
        // A scan error is never clean.
        let r = ScanReport {
            findings: vec![],
            error: Some("io".into()),
            size: 1,
        };
        assert_eq!(
            decide(&r, &a),
            Some((Action::Quarantine, vec![Class::Unscannable]))
        );
        assert!(is_unscannable(&f(
            "Heuristics.Encrypted.Zip",
            Severity::Suspicious
        )));
        assert!(!is_unscannable(&f(
            "Heuristics.Phishing.Email.SpoofedDomain",
            Severity::Suspicious
        )));
    }
}
