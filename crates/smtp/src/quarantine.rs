//! The gateway's side of the quarantine and the event log, both in the store
//! ([`mxguard_store`]): durable quarantine copies written from the blocking
//! end-of-data thread, release grants, and the event each message leaves.
//!
//! Everything here is called from blocking threads (the end-of-data work and
//! the mailbox check run in `spawn_blocking`): the store's async calls are
//! driven with the runtime's [`Handle`], which is allowed there.

use crate::headers;
use mxguard_store::{EngineVerdict, Event, NewQuarantine, ReleaseGrant, Store, StoreError};
use mxguard_types::{EngineKind, Finding};
use tokio::runtime::Handle;

pub use mxguard_store::RELEASE_HEADER;

/// What the gateway records with a quarantined message.
#[derive(Debug, Clone)]
pub struct QuarantineRecord {
    pub id: String,
    pub node: String,
    pub client_ip: String,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// `infected`, `suspicious`, `unscannable`, or `backup` (original kept before clean/tag).
    pub reason: String,
    pub action: String,
    pub findings: Vec<Finding>,
    /// The policy that decided (`[policy]` rules), when there is one.
    pub policy: Option<String>,
}

fn handle() -> Result<Handle, StoreError> {
    Handle::try_current().map_err(|e| StoreError::Unavailable(format!("no runtime: {e}")))
}

/// Stores `message` in the quarantine; returns once the copy is durable (the
/// store's transaction committed). Blocking: call it from a blocking thread.
pub fn put_blocking(
    store: &Store,
    rec: &QuarantineRecord,
    message: &[u8],
) -> Result<(), StoreError> {
    let item = NewQuarantine {
        id: rec.id.clone(),
        time: mxguard_store::now_secs(),
        node: rec.node.clone(),
        client_ip: rec.client_ip.clone(),
        mail_from: rec.mail_from.clone(),
        rcpts: rec.rcpts.clone(),
        subject: headers::header_value(message, "Subject").unwrap_or_default(),
        reason: rec.reason.clone(),
        action: rec.action.clone(),
        findings: rec.findings.clone(),
        policy: rec.policy.clone(),
        message,
    };
    handle()?.block_on(store.put(&item))
}

/// True when the quarantine holds an item with this id. Blocking.
pub fn exists_blocking(store: &Store, id: &str) -> Result<bool, StoreError> {
    Ok(handle()?.block_on(store.get(id))?.is_some())
}

/// The release grant named by the message's [`RELEASE_HEADER`], if it has one
/// and the store knows the token. Blocking.
pub fn grant_blocking(store: &Store, message: &[u8]) -> Result<Option<ReleaseGrant>, StoreError> {
    let Some(token) = headers::header_value(message, RELEASE_HEADER) else {
        return Ok(None);
    };
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    handle()?.block_on(store.release_grant(token))
}

/// True when the grant lets the message through to every one of `rcpts`
/// despite `findings`: every finding was already in the released item and
/// every recipient was released.
pub fn grant_allows(grant: &ReleaseGrant, findings: &[Finding], rcpts: &[String]) -> bool {
    !rcpts.is_empty() && grant.covers(findings) && rcpts.iter().all(|r| grant.released_to(r))
}

/// Per-engine verdicts for the event log: one entry per engine that ran or
/// found something. A scan skipped thanks to a stamp has none.
pub fn engine_verdicts(findings: &[Finding], scanned: bool, error: bool) -> Vec<EngineVerdict> {
    if !scanned {
        return Vec::new();
    }
    let mut out: Vec<EngineVerdict> = Vec::new();
    let mut add = |engine: &str, verdict: &str| {
        if let Some(e) = out.iter_mut().find(|e| e.engine == engine) {
            // Keep the strongest: infected > suspicious > error > clean.
            let rank = |v: &str| match v {
                "infected" => 3,
                "suspicious" => 2,
                "error" => 1,
                _ => 0,
            };
            if rank(verdict) > rank(&e.verdict) {
                e.verdict = verdict.to_string();
            }
        } else {
            out.push(EngineVerdict {
                engine: engine.to_string(),
                verdict: verdict.to_string(),
                score: None,
                elapsed_us: None,
            });
        }
    };
    // The built-in signature engine always runs on a scanned message.
    add(
        EngineKind::Signatures.as_str(),
        if error { "error" } else { "clean" },
    );
    for f in findings {
        let v = match f.severity {
            mxguard_types::Severity::Infected => "infected",
            mxguard_types::Severity::Suspicious => "suspicious",
        };
        add(f.engine.as_str(), v);
    }
    out
}

/// Builds the event of one message (the caller fills what it knows more).
#[allow(clippy::too_many_arguments)]
pub fn event(
    queue_id: &str,
    node: &str,
    client_ip: &str,
    helo: &str,
    mail_from: &str,
    rcpts: Vec<String>,
    size: u64,
    message_id: Option<String>,
) -> Event {
    Event {
        queue_id: queue_id.to_string(),
        time: mxguard_store::now_secs(),
        node: node.to_string(),
        client_ip: client_ip.to_string(),
        helo: helo.to_string(),
        mail_from: mail_from.to_string(),
        rcpts,
        size,
        message_id,
        ..Default::default()
    }
}

/// The Message-ID of a message, without the angle brackets' surrounding space.
pub fn message_id(msg: &[u8]) -> Option<String> {
    headers::header_value(msg, "Message-ID")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxguard_types::Severity;

    fn f(name: &str, engine: EngineKind, severity: Severity) -> Finding {
        Finding {
            name: name.into(),
            engine,
            severity,
            location: String::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn engine_verdicts_per_engine() {
        assert!(engine_verdicts(&[], false, false).is_empty());
        let v = engine_verdicts(&[], true, false);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].engine.as_str(), v[0].verdict.as_str()),
            ("signatures", "clean")
        );
        let v = engine_verdicts(
            &[
                f(
                    "Heuristics.Encrypted.Zip",
                    EngineKind::Heuristics,
                    Severity::Suspicious,
                ),
                f("Eicar", EngineKind::Signatures, Severity::Infected),
                f("X", EngineKind::Signatures, Severity::Suspicious),
            ],
            true,
            false,
        );
        let get = |e: &str| v.iter().find(|x| x.engine == e).unwrap().verdict.clone();
        assert_eq!(get("signatures"), "infected");
        assert_eq!(get("heuristics"), "suspicious");
    }

    #[test]
    fn grant_needs_every_finding_and_recipient() {
        let g = ReleaseGrant {
            id: "A".into(),
            reason: "infected".into(),
            threats: vec!["Eicar".into()],
            rcpts: vec!["Bob@Example.com".into()],
            released_at: 1,
        };
        let eicar = [f("Eicar", EngineKind::Signatures, Severity::Infected)];
        let other = [f("Other", EngineKind::Signatures, Severity::Infected)];
        assert!(grant_allows(&g, &eicar, &["bob@example.com".into()]));
        assert!(!grant_allows(&g, &other, &["bob@example.com".into()]));
        assert!(!grant_allows(
            &g,
            &eicar,
            &["bob@example.com".into(), "eve@example.com".into()]
        ));
        assert!(!grant_allows(&g, &eicar, &[]));
    }
}
