//! The `[milter]` configuration section and the session settings built from it.

use crate::consts::*;
use crate::negotiate::FilterOptions;
use crate::server::ListenAddr;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default size limit: 50 MiB, the gateway's `[smtp] max_message_size` default.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
/// Default time the handler has to answer at end of message. Postfix waits
/// `milter_content_timeout` (300 s) between replies; progress replies restart it.
pub const DEFAULT_HANDLER_TIMEOUT_SECS: u64 = 120;
/// Default interval of `SMFIR_PROGRESS` while the handler works.
pub const DEFAULT_PROGRESS_INTERVAL_SECS: u64 = 10;
/// Default idle time between two MTA commands (libmilter's default is 7210 s).
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 7210;
/// Default concurrent MTA connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// What to answer when the handler fails or runs out of time (Postfix's
/// `milter_default_action` values that make sense for a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// `451 4.3.0`: the sender retries later.
    #[default]
    Tempfail,
    /// Let the message through unscanned.
    Accept,
}

/// What to answer for a message over `max_message_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OversizePolicy {
    /// `452 4.3.4`: the sender may retry (or the MTA's own limit bounces it).
    #[default]
    Tempfail,
    /// `552 5.3.4`.
    Reject,
}

/// `[milter]` as written in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MilterConfig {
    /// `IP:PORT`, `inet:PORT@IP` or `unix:/path`.
    pub listen: Vec<String>,
    /// Concurrent MTA connections per listener; more are closed at once
    /// (the MTA then applies its `milter_default_action`).
    pub max_connections: usize,
    /// Largest message (headers + body) the filter buffers.
    pub max_message_size: u64,
    pub on_oversize: OversizePolicy,
    /// Seconds the scan may take at end of message.
    pub handler_timeout_secs: u64,
    pub on_failure: FailurePolicy,
    /// Seconds between `SMFIR_PROGRESS` replies while the scan runs.
    pub progress_interval_secs: u64,
    /// Seconds the MTA may stay silent between commands.
    pub read_timeout_secs: u64,
    /// Largest frame from the MTA in bytes (at most 1 MiB).
    pub max_frame: usize,
    /// Permissions of Unix sockets, octal (`"0660"`); unset = the umask's.
    pub unix_socket_mode: Option<String>,
    /// For the gateway: a quarantined message is also put on hold in the
    /// MTA (`SMFIR_QUARANTINE`: Postfix's hold queue, released with
    /// `postsuper -H`) instead of being discarded there once it is safe in
    /// mxguard's quarantine.
    pub hold_quarantined: bool,
}

impl Default for MilterConfig {
    fn default() -> Self {
        MilterConfig {
            listen: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            on_oversize: OversizePolicy::default(),
            handler_timeout_secs: DEFAULT_HANDLER_TIMEOUT_SECS,
            on_failure: FailurePolicy::default(),
            progress_interval_secs: DEFAULT_PROGRESS_INTERVAL_SECS,
            read_timeout_secs: DEFAULT_READ_TIMEOUT_SECS,
            max_frame: DEFAULT_MAX_FRAME,
            unix_socket_mode: None,
            hold_quarantined: false,
        }
    }
}

impl MilterConfig {
    /// Every mistake, each prefixed with its key (`milter.listen[0]: ...`).
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        for (i, l) in self.listen.iter().enumerate() {
            if let Err(err) = l.parse::<ListenAddr>() {
                e.push(format!("milter.listen[{i}]: {err}"));
            }
        }
        if self.max_connections == 0 {
            e.push("milter.max_connections: must be at least 1".into());
        }
        if self.max_message_size == 0 {
            e.push("milter.max_message_size: must be at least 1".into());
        }
        if self.handler_timeout_secs == 0 {
            e.push("milter.handler_timeout_secs: must be at least 1".into());
        }
        if self.progress_interval_secs == 0 {
            e.push("milter.progress_interval_secs: must be at least 1".into());
        }
        if self.read_timeout_secs == 0 {
            e.push("milter.read_timeout_secs: must be at least 1".into());
        }
        if self.max_frame <= MAX_BODY_CHUNK || self.max_frame > MAX_FRAME_HARD_CAP {
            e.push(format!(
                "milter.max_frame: must be between {} and {MAX_FRAME_HARD_CAP}",
                MAX_BODY_CHUNK + 1
            ));
        }
        if let Some(m) = &self.unix_socket_mode {
            if parse_mode(m).is_none() {
                e.push(format!(
                    "milter.unix_socket_mode: {m:?} is not an octal mode like \"0660\""
                ));
            }
        }
        e
    }

    /// The session settings (call after [`MilterConfig::validate`]; values
    /// out of range are clamped, never a panic).
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            max_message_size: usize::try_from(self.max_message_size)
                .unwrap_or(usize::MAX)
                .max(1),
            on_oversize: self.on_oversize,
            handler_timeout: Duration::from_secs(self.handler_timeout_secs.max(1)),
            on_failure: self.on_failure,
            progress_interval: Duration::from_secs(self.progress_interval_secs.max(1)),
            read_timeout: Duration::from_secs(self.read_timeout_secs.max(1)),
            max_frame: self.max_frame.clamp(MAX_BODY_CHUNK + 1, MAX_FRAME_HARD_CAP),
            max_connections: self.max_connections.max(1),
            unix_socket_mode: self.unix_socket_mode.as_deref().and_then(parse_mode),
            ..SessionConfig::default()
        }
    }
}

/// Parses an octal file mode (`"660"`, `"0660"`, `"0o660"`).
pub fn parse_mode(s: &str) -> Option<u32> {
    let t = s.strip_prefix("0o").unwrap_or(s);
    let m = u32::from_str_radix(t, 8).ok()?;
    (m <= 0o7777).then_some(m)
}

/// The runtime settings of sessions and listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub max_message_size: usize,
    pub on_oversize: OversizePolicy,
    pub handler_timeout: Duration,
    pub on_failure: FailurePolicy,
    pub progress_interval: Duration,
    pub read_timeout: Duration,
    pub max_frame: usize,
    pub max_connections: usize,
    pub unix_socket_mode: Option<u32>,
    /// What the filter asks for at negotiation. By default: every
    /// modification action, header values with their leading space, no
    /// UNKNOWN commands, no replies to DATA/HEADER/EOH/UNKNOWN, and the
    /// macros of [`default_symlists`]. The `NR_CONN`/`NR_HELO`/`NR_MAIL`/
    /// `NR_RCPT` flags are added per the handler's [`crate::Hooks`].
    pub options: FilterOptions,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE as usize,
            on_oversize: OversizePolicy::default(),
            handler_timeout: Duration::from_secs(DEFAULT_HANDLER_TIMEOUT_SECS),
            on_failure: FailurePolicy::default(),
            progress_interval: Duration::from_secs(DEFAULT_PROGRESS_INTERVAL_SECS),
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT_SECS),
            max_frame: DEFAULT_MAX_FRAME,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            unix_socket_mode: None,
            options: FilterOptions {
                actions: Actions::ADDHDRS
                    | Actions::CHGHDRS
                    | Actions::CHGBODY
                    | Actions::ADDRCPT
                    | Actions::ADDRCPT_PAR
                    | Actions::DELRCPT
                    | Actions::QUARANTINE
                    | Actions::CHGFROM
                    | Actions::SETSYMLIST,
                protocol: ProtocolFlags::HDR_LEADSPC
                    | ProtocolFlags::NOUNKNOWN
                    | ProtocolFlags::NR_UNKN
                    | ProtocolFlags::NR_DATA
                    | ProtocolFlags::NR_HDR
                    | ProtocolFlags::NR_EOH,
                symlists: default_symlists(),
            },
        }
    }
}

/// The macros asked for per stage: Postfix's defaults plus what the gateway
/// uses (client address and name, TLS, authentication, queue id).
pub fn default_symlists() -> Vec<(MacroStage, String)> {
    vec![
        (
            MacroStage::Connect,
            "j {daemon_name} {daemon_addr} {client_addr} {client_port} {client_name} {client_ptr} {client_resolve} _ v".into(),
        ),
        (
            MacroStage::Helo,
            "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}".into(),
        ),
        (
            MacroStage::Mail,
            "i {auth_type} {auth_authen} {auth_ssf} {auth_author} {mail_mailer} {mail_host} {mail_addr}".into(),
        ),
        (MacroStage::Rcpt, "{rcpt_mailer} {rcpt_host} {rcpt_addr}".into()),
        (MacroStage::Data, "i".into()),
        (MacroStage::Eom, "i {msg_id}".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_toml_roundtrips() {
        assert!(MilterConfig::default().validate().is_empty());
        let c: MilterConfig = toml::from_str(
            r#"
listen = ["127.0.0.1:7357", "unix:/tmp/m.sock"]
on_failure = "accept"
on_oversize = "reject"
handler_timeout_secs = 5
unix_socket_mode = "0660"
"#,
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let s = c.session_config();
        assert_eq!(s.on_failure, FailurePolicy::Accept);
        assert_eq!(s.on_oversize, OversizePolicy::Reject);
        assert_eq!(s.handler_timeout, Duration::from_secs(5));
        assert_eq!(s.unix_socket_mode, Some(0o660));
        assert!(toml::from_str::<MilterConfig>("nope = 1").is_err());
    }

    #[test]
    fn every_mistake_is_reported() {
        let c = MilterConfig {
            listen: vec!["nowhere".into(), "unix:".into()],
            max_connections: 0,
            max_message_size: 0,
            handler_timeout_secs: 0,
            progress_interval_secs: 0,
            read_timeout_secs: 0,
            max_frame: 10,
            unix_socket_mode: Some("rw".into()),
            ..MilterConfig::default()
        };
        let e = c.validate();
        assert_eq!(e.len(), 9, "{e:#?}");
        assert!(e[0].starts_with("milter.listen[0]: "));
    }
}
