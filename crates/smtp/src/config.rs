//! The `[smtp]`, `[actions]` and `[queue]` configuration sections.
//!
//! Each struct is what the TOML file says (`serde(deny_unknown_fields)`, every
//! field with a default) and [`SmtpConfig::validate`] collects every mistake at
//! once, so `mxguard config check` can print them all.

use crate::relay::{Cidr, IpLists, RelayPolicy};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default size limit: 50 MiB (RFC 5321 only asks for at least 64 KiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
/// RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients.
pub const DEFAULT_MAX_RECIPIENTS: usize = 100;
/// RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for a command.
pub const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 300;
/// RFC 5321 §4.5.3.2.5: 3 minutes for each data block.
pub const DEFAULT_DATA_TIMEOUT_SECS: u64 = 180;

/// Which tier this gateway is (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Mail from the internet: stamps are trusted only from trusted networks.
    #[default]
    Edge,
    /// Inside the organisation: a current, valid stamp from a trusted node skips the antivirus scan.
    Hub,
}

/// `[smtp]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Addresses to listen on (`IP:PORT`).
    pub listen: Vec<String>,
    /// Our name in the greeting, EHLO reply and Received headers.
    pub hostname: String,
    pub role: Role,
    /// Domains whose mail is delivered here (into Maildir when `next_hop = "maildir"`).
    pub local_domains: Vec<String>,
    /// Domains we accept from anyone and pass on to the next hop.
    pub relay_domains: Vec<String>,
    /// Clients (CIDR) that may send to any domain; empty = nobody.
    pub trusted_networks: Vec<String>,
    pub max_message_size: u64,
    /// `maildir`, `smtp://host:port`, `lmtp://host:port` or `lmtp+unix:/path`.
    pub next_hop: String,
    /// Longest command line in octets with its CRLF (RFC 5321: 512); MAIL
    /// and RCPT may be 500 longer (RFC 3461 parameters).
    pub max_command_line: usize,
    /// Recipients per message; more get `452 4.5.3` (the client sends them later).
    pub max_recipients: usize,
    /// Bad commands before the session is closed with 421.
    pub max_errors: u32,
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
    /// Concurrent sessions in all; more get `421 4.7.0` at connect.
    pub max_connections: usize,
    /// Concurrent sessions from one client IP.
    pub max_connections_per_ip: usize,
    /// Client IPs (CIDR) always accepted at connect (skip the deny list and DNSBL).
    pub ip_allow: Vec<String>,
    /// Client IPs (CIDR) refused at connect with 554 5.7.1.
    pub ip_deny: Vec<String>,
    /// Offer STARTTLS.
    pub starttls: bool,
    /// PEM certificate chain and key; when unset, a self-signed pair is made
    /// under `data_dir/tls/` on first start and reused afterwards.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// DNSBL zones checked at connect (`zen.example.org`), in order.
    pub dnsbl_zones: Vec<String>,
    /// The resolver for DNSBL lookups (`IP:PORT`); unset = the system's.
    pub dnsbl_resolver: Option<String>,
    /// Seconds a DNSBL lookup may take before it counts as "no answer".
    pub dnsbl_timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: vec!["127.0.0.1:2525".into()],
            hostname: "localhost".into(),
            role: Role::Edge,
            local_domains: vec!["localhost".into(), "example.com".into()],
            relay_domains: Vec::new(),
            trusted_networks: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            next_hop: "maildir".into(),
            max_command_line: crate::proto::command::MAX_COMMAND_LINE,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            max_errors: 20,
            command_timeout_secs: DEFAULT_COMMAND_TIMEOUT_SECS,
            data_timeout_secs: DEFAULT_DATA_TIMEOUT_SECS,
            max_connections: 1000,
            max_connections_per_ip: 50,
            ip_allow: Vec::new(),
            ip_deny: Vec::new(),
            starttls: true,
            tls_cert: None,
            tls_key: None,
            dnsbl_zones: Vec::new(),
            dnsbl_resolver: None,
            dnsbl_timeout_secs: 5,
        }
    }
}

fn cidrs(list: &[String], key: &str, errors: &mut Vec<String>) -> Vec<Cidr> {
    let mut out = Vec::new();
    for s in list {
        match s.parse::<Cidr>() {
            Ok(c) => out.push(c),
            Err(e) => errors.push(format!("smtp.{key}: {e}")),
        }
    }
    out
}

impl SmtpConfig {
    /// Every problem in the section, as `key: reason` lines (empty = valid).
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for l in &self.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                errors.push(format!("smtp.listen: {l:?} is not IP:PORT"));
            }
        }
        if self.hostname.is_empty() || self.hostname.contains(char::is_whitespace) {
            errors.push("smtp.hostname: must be a host name without spaces".into());
        }
        cidrs(&self.trusted_networks, "trusted_networks", &mut errors);
        cidrs(&self.ip_allow, "ip_allow", &mut errors);
        cidrs(&self.ip_deny, "ip_deny", &mut errors);
        if let Err(e) = self.next_hop.parse::<crate::queue::Route>() {
            errors.push(format!("smtp.next_hop: {e}"));
        }
        if self.max_message_size < 64 * 1024 {
            errors.push("smtp.max_message_size: RFC 5321 requires at least 65536".into());
        }
        if !(crate::proto::command::MAX_COMMAND_LINE..=65536).contains(&self.max_command_line) {
            errors.push("smtp.max_command_line: between 512 (RFC 5321) and 65536".into());
        }
        if self.max_recipients < 1 {
            errors.push("smtp.max_recipients: must be at least 1".into());
        }
        if self.max_connections < 1 || self.max_connections_per_ip < 1 {
            errors.push("smtp.max_connections, max_connections_per_ip: must be at least 1".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            errors.push("smtp.tls_cert and smtp.tls_key: give both or neither".into());
        }
        if let Some(r) = &self.dnsbl_resolver {
            if r.parse::<std::net::SocketAddr>().is_err() {
                errors.push(format!("smtp.dnsbl_resolver: {r:?} is not IP:PORT"));
            }
        }
        for d in self.local_domains.iter().chain(&self.relay_domains) {
            if d.is_empty() || d.contains(['@', ' ', '[']) {
                errors.push(format!(
                    "smtp.local_domains/relay_domains: {d:?} is not a domain"
                ));
            }
        }
        errors
    }

    /// Relay control from the section (call after [`validate`](Self::validate)).
    pub fn relay_policy(&self) -> RelayPolicy {
        let mut ignore = Vec::new();
        RelayPolicy {
            local_domains: self
                .local_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            relay_domains: self
                .relay_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            trusted_networks: cidrs(&self.trusted_networks, "", &mut ignore),
        }
    }

    pub fn ip_lists(&self) -> IpLists {
        let mut ignore = Vec::new();
        IpLists {
            allow: cidrs(&self.ip_allow, "", &mut ignore),
            deny: cidrs(&self.ip_deny, "", &mut ignore),
        }
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_secs.max(1))
    }

    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.data_timeout_secs.max(1))
    }
}

/// What to do with a message, per verdict (DESIGN: actions decided by configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// 554 at the end of DATA: nothing is kept, the sending server keeps responsibility.
    Reject,
    /// 451 at the end of DATA: the sending server tries again later.
    Tempfail,
    /// Kept in the quarantine, not delivered.
    Quarantine,
    /// Kept in the quarantine; the recipients get a notice in its place
    /// (the original's From, To, Date and Subject, and `replace_notice`).
    Replace,
    /// Delivered to `redirect_to` only, not to its recipients.
    Redirect,
    /// Accepted and thrown away (logged).
    Drop,
    /// The offending parts are replaced by a text notice; the rest is delivered.
    Clean,
    /// Delivered with a warning banner (`warn_banner`) as a first text part,
    /// and `X-MXGuard-Status`.
    Warn,
    /// Delivered to its recipients and a copy to `bcc_to`.
    Bcc,
    /// Delivered with `X-MXGuard-Status` and a Subject prefix.
    Tag,
    /// Delivered, with the findings in `X-MXGuard-Status`.
    Pass,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::Tempfail => "tempfail",
            Action::Quarantine => "quarantine",
            Action::Replace => "replace",
            Action::Redirect => "redirect",
            Action::Drop => "drop",
            Action::Clean => "clean",
            Action::Warn => "warn",
            Action::Bcc => "bcc",
            Action::Tag => "tag",
            Action::Pass => "pass",
        }
    }

    /// Strictness, for picking one action when several verdict classes apply.
    pub fn rank(self) -> u8 {
        match self {
            Action::Reject => 11,
            Action::Tempfail => 10,
            Action::Quarantine => 9,
            Action::Replace => 8,
            Action::Redirect => 7,
            Action::Drop => 6,
            Action::Clean => 5,
            Action::Warn => 4,
            Action::Bcc => 3,
            Action::Tag => 2,
            Action::Pass => 1,
        }
    }
}

/// `[actions]`: the action per verdict class.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionConfig {
    /// A signature matched.
    pub infected: Action,
    /// A heuristic matched (double extension, spoofed link, macro auto-run...).
    pub suspicious: Action,
    /// Content that could not be scanned: limits exceeded, encrypted, broken or
    /// unsupported containers, scan errors. Never passed silently: `pass` here
    /// still marks the message.
    pub unscannable: Action,
    /// Keep a quarantine copy of the original before `clean` or `tag` changes it.
    pub backup_original: bool,
    /// The spam score reached the required score (`[spam]`).
    pub spam: Action,
    /// The Subject prefix of `tag`.
    pub tag_subject: String,
    /// The Subject prefix of `tag` for spam.
    pub spam_tag_subject: String,
    /// The text that replaces a removed part (`clean`); `{name}`, `{threat}`
    /// and `{location}` are filled in.
    pub clean_notice: String,
    /// The body of the notice that replaces a message (`replace`); `{id}`,
    /// `{from}`, `{subject}` and `{threats}` are filled in.
    pub replace_notice: String,
    /// The banner of `warn`; `{threats}` is filled in.
    pub warn_banner: String,
    /// Where `redirect` sends messages.
    pub redirect_to: String,
    /// Where `bcc` sends a copy.
    pub bcc_to: String,
    /// The text of `reject` (after `554 5.7.1`); `{threats}`, `{class}` and
    /// `{id}` are filled in. Empty: a text per class.
    pub reject_text: String,
}

impl ActionConfig {
    /// Every problem at once, each with its key.
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        let used =
            |a: Action| [self.infected, self.suspicious, self.unscannable, self.spam].contains(&a);
        for (a, key, v) in [
            (Action::Redirect, "redirect_to", &self.redirect_to),
            (Action::Bcc, "bcc_to", &self.bcc_to),
        ] {
            if used(a) && !v.contains('@') {
                e.push(format!(
                    "actions.{key}: an address is needed when an action is \"{}\"",
                    a.as_str()
                ));
            }
            if !v.is_empty() && (!v.contains('@') || v.contains(['<', '>', ' ', '\r', '\n'])) {
                e.push(format!("actions.{key}: {v:?} is not a plain address"));
            }
        }
        if self.reject_text.contains(['\r', '\n']) {
            e.push("actions.reject_text: one line".into());
        }
        e
    }
}

impl Default for ActionConfig {
    fn default() -> Self {
        ActionConfig {
            infected: Action::Reject,
            suspicious: Action::Quarantine,
            unscannable: Action::Quarantine,
            backup_original: false,
            spam: Action::Tag,
            tag_subject: "[SUSPICIOUS]".into(),
            spam_tag_subject: "[SPAM]".into(),
            clean_notice: "The attachment {name} was removed by the mail gateway because it contained {threat}.".into(),
            replace_notice: "The message from {from} with the subject \"{subject}\" contained {threats}. The mail gateway kept it in quarantine and delivered this notice instead (id {id}). Ask your administrator if you need the original.".into(),
            warn_banner: "WARNING: the mail gateway found {threats} in this message. Be careful with its links and attachments.".into(),
            redirect_to: String::new(),
            bcc_to: String::new(),
            reject_text: String::new(),
        }
    }
}

/// `[queue]`: delivery to the next hop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Delivery attempts running at once.
    pub concurrency: usize,
    /// The first retry after a temporary failure; doubles up to `retry_max_secs`.
    pub retry_initial_secs: u64,
    pub retry_max_secs: u64,
    /// After this long in the queue a message is bounced ("expired").
    pub max_age_secs: u64,
    pub connect_timeout_secs: u64,
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            concurrency: 32,
            retry_initial_secs: 60,
            retry_max_secs: 3600,
            max_age_secs: 5 * 24 * 3600,
            connect_timeout_secs: 30,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
        }
    }
}

impl QueueConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if self.concurrency == 0 {
            e.push("queue.concurrency: must be at least 1".into());
        }
        if self.retry_initial_secs == 0 || self.retry_max_secs < self.retry_initial_secs {
            e.push("queue.retry_initial_secs/retry_max_secs: need 0 < initial <= max".into());
        }
        e
    }

    /// The delay before attempt `n + 1` after `n` failed ones.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        let secs = self.retry_initial_secs.saturating_mul(1u64 << shift);
        Duration::from_secs(secs.min(self.retry_max_secs))
    }
}
