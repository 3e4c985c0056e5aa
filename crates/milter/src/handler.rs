//! What the gateway implements: [`MilterHandler`], and the data it sees and returns.

use crate::codec::Family;
use crate::consts::Actions;
use crate::macros::Macros;
use crate::reply::SmtpReply;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};

/// Where the SMTP client connected from, as the MTA reported it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientAddress {
    /// IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix-domain socket path.
    Unix(String),
    /// Family `U`, or no CONNECT seen.
    #[default]
    Unknown,
    /// An address text that did not parse as an IP address.
    Unparsed(String),
}

impl ClientAddress {
    /// Builds the address from CONNECT's family, port and text (Sendmail
    /// writes IPv6 as `IPv6:2001:db8::1`; the prefix is accepted).
    pub fn from_connect(family: Family, port: u16, address: &str) -> ClientAddress {
        match family {
            Family::Unknown => ClientAddress::Unknown,
            Family::Unix => ClientAddress::Unix(address.to_string()),
            Family::Inet | Family::Inet6 => {
                let text = address
                    .strip_prefix("IPv6:")
                    .or_else(|| address.strip_prefix("ipv6:"))
                    .unwrap_or(address);
                let text = text
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or(text);
                match text.parse::<IpAddr>() {
                    Ok(ip) => ClientAddress::Inet(SocketAddr::new(ip, port)),
                    Err(_) => ClientAddress::Unparsed(address.to_string()),
                }
            }
        }
    }

    /// The client's IP address, if it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            ClientAddress::Inet(a) => Some(a.ip()),
            _ => None,
        }
    }
}

/// The SMTP client of the current connection (reset by each CONNECT).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionInfo {
    /// The client's host name as the MTA resolved it (`[192.0.2.1]` when unresolved).
    pub hostname: String,
    pub address: ClientAddress,
    /// The HELO/EHLO argument, once given.
    pub helo: Option<String>,
}

/// One accepted envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address without angle brackets.
    pub address: String,
    /// ESMTP arguments (`NOTIFY=NEVER`, `ORCPT=...`).
    pub args: Vec<String>,
}

/// Everything known about the connection and the message so far.
///
/// Hooks receive it as it stands at their stage; `end_of_message` receives
/// it complete (every recipient the MTA sent and the handler did not refuse).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageContext {
    pub connection: ConnectionInfo,
    /// MAIL FROM address without angle brackets; `Some("")` for the null sender.
    pub sender: Option<String>,
    /// MAIL FROM ESMTP arguments (`SIZE=...`, `BODY=8BITMIME`).
    pub sender_args: Vec<String>,
    pub recipients: Vec<Recipient>,
    pub macros: Macros,
}

impl MessageContext {
    /// The MTA's queue id (macro `i`), when the MTA sent it.
    pub fn queue_id(&self) -> Option<&str> {
        self.macros.get("i")
    }
    /// The authenticated user (macro `{auth_authen}`), if any.
    pub fn auth_user(&self) -> Option<&str> {
        self.macros.get("auth_authen").filter(|s| !s.is_empty())
    }
    /// The client's IP address: from CONNECT, else from `{client_addr}`.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.connection
            .address
            .ip()
            .or_else(|| self.macros.get("client_addr")?.parse().ok())
    }
}

/// A stage hook's or the end of message's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go on (at end of message: accept with the modifications).
    Continue,
    /// Accept; at CONNECT/HELO the MTA stops asking for this connection, at
    /// MAIL/RCPT for this message (no end-of-message call follows).
    Accept,
    /// Reject: with our reply, or the MTA's default 5xx when `None`. At
    /// RCPT only that recipient is refused.
    Reject(Option<SmtpReply>),
    /// Temporary failure: with our reply, or the MTA's default 4xx.
    TempFail(Option<SmtpReply>),
    /// Accept the message and drop it silently. At CONNECT and HELO, where
    /// there is no message, the session sends a reject instead.
    Discard,
}

/// One change to the message, sent before the final reply at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modification {
    /// Append a header (needs `ADDHDRS`).
    AddHeader { name: String, value: String },
    /// Insert a header at `index` among the headers (0 = first; needs `ADDHDRS`).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Replace the value of the `index`-th (counting from 1) header called
    /// `name` (needs `CHGHDRS`).
    ChangeHeader {
        name: String,
        index: u32,
        value: String,
    },
    /// Delete the `index`-th (from 1) header called `name` (needs `CHGHDRS`).
    DeleteHeader { name: String, index: u32 },
    /// Replace the whole body (needs `CHGBODY`); CRLF line ends.
    ReplaceBody(Vec<u8>),
    /// Add a recipient (needs `ADDRCPT`, or `ADDRCPT_PAR` with arguments).
    AddRecipient {
        address: String,
        args: Option<String>,
    },
    /// Remove a recipient, spelled as the MTA received it (needs `DELRCPT`).
    DeleteRecipient(String),
    /// Change the envelope sender (needs `CHGFROM`).
    ChangeFrom {
        address: String,
        args: Option<String>,
    },
    /// Quarantine the message with this reason; Postfix puts it on hold
    /// (needs `QUARANTINE`).
    Quarantine(String),
}

impl Modification {
    /// The negotiated action this modification needs.
    pub fn required_action(&self) -> Actions {
        match self {
            Modification::AddHeader { .. } | Modification::InsertHeader { .. } => Actions::ADDHDRS,
            Modification::ChangeHeader { .. } | Modification::DeleteHeader { .. } => {
                Actions::CHGHDRS
            }
            Modification::ReplaceBody(_) => Actions::CHGBODY,
            Modification::AddRecipient { args: None, .. } => Actions::ADDRCPT,
            Modification::AddRecipient { args: Some(_), .. } => Actions::ADDRCPT_PAR,
            Modification::DeleteRecipient(_) => Actions::DELRCPT,
            Modification::ChangeFrom { .. } => Actions::CHGFROM,
            Modification::Quarantine(_) => Actions::QUARANTINE,
        }
    }
}

/// The handler's answer at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EomResult {
    /// Applied in this order, only when `decision` is `Continue` or `Accept`.
    pub modifications: Vec<Modification>,
    pub decision: Decision,
}

impl EomResult {
    /// Accept unchanged.
    pub fn accept() -> EomResult {
        EomResult {
            modifications: Vec::new(),
            decision: Decision::Accept,
        }
    }
    /// A final decision without modifications.
    pub fn decide(decision: Decision) -> EomResult {
        EomResult {
            modifications: Vec::new(),
            decision,
        }
    }
    /// Adds a modification (builder style).
    pub fn with(mut self, m: Modification) -> EomResult {
        self.modifications.push(m);
        self
    }
}

/// The handler could not decide (the session then answers per `on_failure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    pub fn new(msg: impl Into<String>) -> HandlerError {
        HandlerError(msg.into())
    }
}

/// Which envelope stages the handler wants to decide at. For a stage left
/// `false` the hook is never called and, when the MTA allows it, the MTA is
/// told not to wait for a reply (`SMFIP_NR_*`), saving a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hooks {
    pub connect: bool,
    pub helo: bool,
    pub mail: bool,
    pub rcpt: bool,
}

/// The gateway's side of a milter session.
///
/// The session calls the hooks in protocol order, at most once per SMTP
/// command, and `end_of_message` once per message that nothing decided
/// before (a hook's `Accept`, `Reject` or `Discard`, or the size limit,
/// decide early). Implementations are shared by every connection.
pub trait MilterHandler: Send + Sync + 'static {
    /// The stages this handler decides at (see [`Hooks`]).
    fn hooks(&self) -> Hooks {
        Hooks::default()
    }

    /// A new SMTP client (called if `hooks().connect`).
    fn connect(&self, _ctx: &MessageContext) -> impl Future<Output = Decision> + Send {
        async { Decision::Continue }
    }

    /// HELO/EHLO (called if `hooks().helo`).
    fn helo(&self, _ctx: &MessageContext) -> impl Future<Output = Decision> + Send {
        async { Decision::Continue }
    }

    /// MAIL FROM; `ctx.sender` is set (called if `hooks().mail`).
    fn mail_from(&self, _ctx: &MessageContext) -> impl Future<Output = Decision> + Send {
        async { Decision::Continue }
    }

    /// One RCPT TO, not yet in `ctx.recipients`; `Continue` or `Accept` adds
    /// it (called if `hooks().rcpt`).
    fn rcpt(
        &self,
        _ctx: &MessageContext,
        _rcpt: &Recipient,
    ) -> impl Future<Output = Decision> + Send {
        async { Decision::Continue }
    }

    /// The whole message as RFC 5322 bytes (headers as the MTA passed them,
    /// a blank line, the body with CRLF line ends). Must answer within the
    /// configured `handler_timeout`; an error, a panic or a timeout are
    /// answered per `on_failure`.
    fn end_of_message(
        &self,
        ctx: &MessageContext,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<EomResult, HandlerError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses() {
        assert_eq!(
            ClientAddress::from_connect(Family::Inet, 25, "192.0.2.1"),
            ClientAddress::Inet("192.0.2.1:25".parse().unwrap())
        );
        assert_eq!(
            ClientAddress::from_connect(Family::Inet6, 1, "IPv6:2001:db8::1")
                .ip()
                .unwrap()
                .to_string(),
            "2001:db8::1"
        );
        assert_eq!(
            ClientAddress::from_connect(Family::Unix, 0, "/tmp/s"),
            ClientAddress::Unix("/tmp/s".into())
        );
        assert_eq!(
            ClientAddress::from_connect(Family::Inet, 0, "nonsense"),
            ClientAddress::Unparsed("nonsense".into())
        );
        assert_eq!(
            ClientAddress::from_connect(Family::Unknown, 0, ""),
            ClientAddress::Unknown
        );
    }

    #[test]
    fn required_actions() {
        assert_eq!(
            Modification::AddRecipient {
                address: "a".into(),
                args: Some("X=1".into())
            }
            .required_action(),
            Actions::ADDRCPT_PAR
        );
        assert_eq!(
            Modification::DeleteHeader {
                name: "X".into(),
                index: 1
            }
            .required_action(),
            Actions::CHGHDRS
        );
        assert_eq!(
            Modification::ReplaceBody(vec![]).required_action(),
            Actions::CHGBODY
        );
    }
}
