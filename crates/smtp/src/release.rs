//! Releasing a quarantined message: record the release in the store, then
//! spool the original for the released recipients with the release token in
//! [`RELEASE_HEADER`], so that no later scan of this message (a hub sharing
//! the store, the mailbox tier after a signature update) quarantines it again
//! for the same threats. See [`mxguard_store::quarantine`] for the protocol.
//!
//! Order: the release is recorded (durably) first, then the message is
//! spooled (durably). A failure between the two leaves a recorded release
//! without a delivery; releasing again is safe (same token, one more history
//! row). The delivery queue of a running gateway picks the spooled message
//! up from its channel, or, from another process, at the next flush (see
//! [`crate::queue::FLUSH_FILE`]).

use crate::headers;
use crate::quarantine::RELEASE_HEADER;
use crate::spool::{new_queue_id, now_secs, Spool, SpoolEnvelope, SpoolRcpt};
use mxguard_store::{Release, Store, StoreError};

/// Why a release did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no quarantine item {0}")]
    NotFound(String),
    #[error("{0} is not a recipient of quarantine item {1}")]
    NotARecipient(String, String),
    #[error(
        "quarantine item {0} was already released to every recipient (name them to deliver again)"
    )]
    AlreadyReleased(String),
    #[error("the release is recorded but the message could not be spooled ({0}); release it again naming its recipients with --to")]
    Spool(#[from] std::io::Error),
}

/// What a release did.
#[derive(Debug, Clone)]
pub struct Released {
    pub release: Release,
    /// The queue id of the re-injected message.
    pub queue_id: String,
}

/// Releases quarantine item `id` to `rcpts`, as `by`. Empty `rcpts`: every
/// recipient not released yet (an error when there is none left, so a
/// repeated "release" does not deliver twice); otherwise each must be one of
/// the item's recipients (compared case-insensitively) and is delivered
/// again even if it was released before. `is_local(domain)` says which recipients are delivered here (into
/// Maildir when the next hop is `maildir`).
///
/// Guarantees: when this returns `Ok`, the release is recorded and the
/// message is durably in the spool; the caller hands `queue_id` to a running
/// queue or requests a flush.
pub async fn release(
    store: &Store,
    spool: &Spool,
    id: &str,
    rcpts: &[String],
    by: &str,
    is_local: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Released, ReleaseError> {
    let item = store
        .get(id)
        .await?
        .ok_or_else(|| ReleaseError::NotFound(id.to_string()))?;
    let original = &item.summary.rcpts;
    let chosen: Vec<String> = if rcpts.is_empty() {
        let left: Vec<String> = item
            .recipients
            .iter()
            .filter(|r| r.released_at.is_none())
            .map(|r| r.address.clone())
            .collect();
        if left.is_empty() {
            return Err(ReleaseError::AlreadyReleased(id.to_string()));
        }
        left
    } else {
        let mut v = Vec::new();
        for r in rcpts {
            let found = original
                .iter()
                .find(|o| o.eq_ignore_ascii_case(r))
                .ok_or_else(|| ReleaseError::NotARecipient(r.clone(), id.to_string()))?;
            if !v.contains(found) {
                v.push(found.clone());
            }
        }
        v
    };
    let message = store
        .message(id)
        .await?
        .ok_or_else(|| ReleaseError::NotFound(id.to_string()))?;
    let release = store.mark_released(id, &chosen, by).await?;

    let cleaned = headers::remove_header(&message, RELEASE_HEADER);
    let msg = headers::prepend_header(&cleaned, RELEASE_HEADER, release.header_value());
    let queue_id = new_queue_id();
    let env = SpoolEnvelope {
        id: queue_id.clone(),
        mail_from: item.summary.mail_from.clone(),
        rcpts: chosen
            .iter()
            .map(|a| SpoolRcpt {
                address: a.clone(),
                local: a.rsplit_once('@').is_some_and(|(_, d)| is_local(d)),
                notify: None,
                orcpt: None,
            })
            .collect(),
        received: now_secs(),
        client_ip: item.summary.client_ip.clone(),
        helo: String::new(),
        envid: None,
        ret: None,
        body_8bit: msg.iter().any(|b| *b >= 0x80),
        smtputf8: !item.summary.mail_from.is_ascii() || chosen.iter().any(|a| !a.is_ascii()),
        dsn: false,
        verdict: "released".into(),
    };
    let spool = spool.clone();
    let env2 = env.clone();
    tokio::task::spawn_blocking(move || spool.store(&env2, &msg))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    tracing::info!(
        target: "mxguard::event",
        id,
        queue_id = %queue_id,
        by,
        rcpts = %chosen.join(","),
        "quarantine release"
    );
    Ok(Released { release, queue_id })
}
