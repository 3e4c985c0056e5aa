//! What evaluation takes in besides the facts (the [`Envelope`]) and what
//! it gives back ([`PolicyVerdict`]).

use std::net::IpAddr;

use super::config::{ActionKind, ActionSpec, NoticeTarget};

/// The SMTP envelope of a message, borrowed from the gateway's session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Envelope<'a> {
    pub client_ip: Option<IpAddr>,
    pub helo: &'a str,
    /// MAIL FROM address (empty for the null sender `<>`).
    pub mail_from: &'a str,
    /// RCPT TO addresses. With none (a file checked from the command line)
    /// the To/Cc addresses of the message stand in for them.
    pub rcpts: &'a [String],
    /// Domains that are ours: a recipient in one is inbound (or internal
    /// when the sender's domain is one too), any other recipient is
    /// outbound. Compared case-insensitively, exact domains (no
    /// subdomains); added to the config's own `local_domains`.
    pub local_domains: &'a [String],
}

/// One action for the gateway, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Refuse at end of DATA with a 5xx and this text.
    Reject { text: String },
    /// Refuse with a 4xx and this text.
    Tempfail { text: String },
    /// Accept and discard.
    Drop,
    /// Hold in quarantine.
    Quarantine,
    /// Replace the whole message by a notice (the original quarantined).
    Replace,
    /// Deliver to this address instead of the recipients.
    Redirect { to: String },
    /// Remove these attachments (decoder locations) and leave a notice part.
    Clean { locations: Vec<String> },
    /// Prepend this banner to the text and HTML bodies.
    Warn { banner: String },
    /// Prefix the Subject (when given) and add `X-MXGuard-*` headers.
    Tag { subject_tag: Option<String> },
    /// Send a copy to this address too.
    Bcc { to: String },
    /// Deliver as is: a fired `pass` rule overrides every other action.
    Pass,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Reject { .. } => ActionKind::Reject,
            Action::Tempfail { .. } => ActionKind::Tempfail,
            Action::Drop => ActionKind::Drop,
            Action::Quarantine => ActionKind::Quarantine,
            Action::Replace => ActionKind::Replace,
            Action::Redirect { .. } => ActionKind::Redirect,
            Action::Clean { .. } => ActionKind::Clean,
            Action::Warn { .. } => ActionKind::Warn,
            Action::Tag { .. } => ActionKind::Tag,
            Action::Bcc { .. } => ActionKind::Bcc,
            Action::Pass => ActionKind::Pass,
        }
    }

    /// Whether delivery as is stops (reject, tempfail, drop, quarantine,
    /// replace, redirect).
    pub fn is_final(&self) -> bool {
        self.kind() <= ActionKind::Redirect
    }
}

/// Default reply text of `reject`.
pub const DEFAULT_REJECT_TEXT: &str = "Message rejected by policy";
/// Default reply text of `tempfail`.
pub const DEFAULT_TEMPFAIL_TEXT: &str = "Message deferred by policy, try again later";

/// A notice to send from a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub to: NoticeTarget,
    /// Template name (the action's name unless configured).
    pub template: String,
}

/// An action and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAction {
    pub action: Action,
    /// The rule that asked for it, or `SPAM`, `SPAM_HIGH`, `DENY_SENDER`.
    pub rule: String,
    pub notices: Vec<Notice>,
}

impl PolicyAction {
    pub(crate) fn from_spec(spec: &ActionSpec, rule: &str, locations: Vec<String>) -> PolicyAction {
        let action = match spec.kind {
            ActionKind::Reject => Action::Reject {
                text: spec
                    .text
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REJECT_TEXT.into()),
            },
            ActionKind::Tempfail => Action::Tempfail {
                text: spec
                    .text
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TEMPFAIL_TEXT.into()),
            },
            ActionKind::Drop => Action::Drop,
            ActionKind::Quarantine => Action::Quarantine,
            ActionKind::Replace => Action::Replace,
            ActionKind::Redirect => Action::Redirect {
                to: spec.address.clone().unwrap_or_default(),
            },
            ActionKind::Clean => Action::Clean { locations },
            ActionKind::Warn => Action::Warn {
                banner: spec.banner.clone().unwrap_or_default(),
            },
            ActionKind::Tag => Action::Tag {
                subject_tag: spec.subject_tag.clone(),
            },
            ActionKind::Bcc => Action::Bcc {
                to: spec.address.clone().unwrap_or_default(),
            },
            ActionKind::Pass => Action::Pass,
        };
        let template = spec
            .template
            .clone()
            .unwrap_or_else(|| spec.kind.name().to_string());
        PolicyAction {
            action,
            rule: rule.to_string(),
            notices: spec
                .notify
                .iter()
                .map(|t| Notice {
                    to: *t,
                    template: template.clone(),
                })
                .collect(),
        }
    }
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyHit {
    pub name: String,
    pub group: String,
    /// Points added to the score (0 for action-only rules).
    pub points: f64,
    /// The rule's own action, if it has one.
    pub action: Option<ActionKind>,
}

/// The outcome for the recipients that share one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVerdict {
    /// The policy's name (`default` when none matched).
    pub policy: String,
    /// The recipients this verdict is for (lowercase); the gateway splits
    /// the envelope when a message has several verdicts.
    pub recipients: Vec<String>,
    /// Fired rules in config order, then the classifier's (BAYES).
    pub hits: Vec<PolicyHit>,
    /// Sum of the points, rounded to hundredths.
    pub score: f64,
    pub required: f64,
    /// `score >= required` (never for allow-listed senders).
    pub spam: bool,
    /// Strongest first (reject, tempfail, drop, quarantine, replace,
    /// redirect, clean, warn, tag, bcc, pass); one per kind, except bcc
    /// (one per address). Empty: deliver as is.
    pub actions: Vec<PolicyAction>,
    /// The sender is on the policy's allow list: no rule was evaluated.
    pub allowed: bool,
    /// The sender is on the policy's deny list (checked before the allow
    /// list): the deny action is the only action.
    pub denied: bool,
}

impl PolicyVerdict {
    /// The strongest action, if any.
    pub fn strongest(&self) -> Option<&Action> {
        self.actions.first().map(|a| &a.action)
    }

    /// Names of the fired rules.
    pub fn rule_names(&self) -> Vec<&str> {
        self.hits.iter().map(|h| h.name.as_str()).collect()
    }
}
