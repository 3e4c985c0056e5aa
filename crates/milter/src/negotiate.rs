//! Option negotiation: what the filter asks for, intersected with what the MTA offers.

use crate::codec::{OptNeg, ProtocolError, Response};
use crate::consts::*;

/// What the filter would like (the MTA may grant less).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterOptions {
    /// Actions the filter may take at end of message.
    pub actions: Actions,
    /// Protocol steps to skip and no-reply flags.
    pub protocol: ProtocolFlags,
    /// Macros wanted per stage (space-separated names); sent only when the
    /// MTA grants `SETSYMLIST`.
    pub symlists: Vec<(MacroStage, String)>,
}

/// The outcome of a negotiation: what both sides agreed to.
///
/// Guarantee: `actions` and `protocol` are subsets of what the MTA offered
/// and of what the filter asked for; `version` is at most both versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub version: u32,
    pub actions: Actions,
    pub protocol: ProtocolFlags,
    pub symlists: Vec<(MacroStage, String)>,
}

impl Negotiated {
    /// What an MTA that never negotiated is assumed to do: version 2 with no
    /// actions and no protocol flags (every step sent and answered).
    pub fn unnegotiated() -> Negotiated {
        Negotiated {
            version: MIN_PROTOCOL_VERSION,
            actions: Actions::NONE,
            protocol: ProtocolFlags::NONE,
            symlists: Vec::new(),
        }
    }

    /// The answer to the MTA's `SMFIC_OPTNEG`.
    pub fn response(&self) -> Response {
        Response::OptNeg {
            version: self.version,
            actions: self.actions,
            protocol: self.protocol,
            symlists: self.symlists.clone(),
        }
    }

    /// Whether the MTA waits for a reply to command `c`.
    pub fn expects_reply(&self, c: u8) -> bool {
        let nr = match c {
            cmd::CONNECT => ProtocolFlags::NR_CONN,
            cmd::HELO => ProtocolFlags::NR_HELO,
            cmd::MAIL => ProtocolFlags::NR_MAIL,
            cmd::RCPT => ProtocolFlags::NR_RCPT,
            cmd::DATA => ProtocolFlags::NR_DATA,
            cmd::UNKNOWN => ProtocolFlags::NR_UNKN,
            cmd::HEADER => ProtocolFlags::NR_HDR,
            cmd::EOH => ProtocolFlags::NR_EOH,
            cmd::BODY => ProtocolFlags::NR_BODY,
            cmd::BODYEOB | cmd::OPTNEG => return true,
            // MACRO, ABORT, QUIT, QUIT_NC never get one.
            _ => return false,
        };
        !self.protocol.contains(nr)
    }
}

/// Agrees on options with an MTA that offered `mta`.
///
/// Errors: an MTA version below [`MIN_PROTOCOL_VERSION`]. Actions the MTA
/// does not offer are left out, not an error: the session refuses, at end
/// of message, a modification that needs one (see the crate docs).
pub fn negotiate(mta: &OptNeg, want: &FilterOptions) -> Result<Negotiated, ProtocolError> {
    if mta.version < MIN_PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedVersion(mta.version));
    }
    let mut want_actions = want.actions;
    if want.symlists.is_empty() {
        want_actions = want_actions & !Actions::SETSYMLIST;
    }
    let actions = want_actions & mta.actions;
    // Never ask for larger body chunks: our frame limit is built around 64 KiB chunks.
    let protocol =
        want.protocol & mta.protocol & !(ProtocolFlags::MDS_256K | ProtocolFlags::MDS_1M);
    let symlists = if actions.contains(Actions::SETSYMLIST) {
        want.symlists.clone()
    } else {
        Vec::new()
    };
    Ok(Negotiated {
        version: mta.version.min(PROTOCOL_VERSION),
        actions,
        protocol,
        symlists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> FilterOptions {
        FilterOptions {
            actions: Actions::ADDHDRS
                | Actions::CHGBODY
                | Actions::QUARANTINE
                | Actions::SETSYMLIST,
            protocol: ProtocolFlags::NR_HDR | ProtocolFlags::HDR_LEADSPC | ProtocolFlags::NOUNKNOWN,
            symlists: vec![(MacroStage::Eom, "i".into())],
        }
    }

    #[test]
    fn intersection_with_a_full_offer() {
        let n = negotiate(
            &OptNeg {
                version: 6,
                actions: Actions(0x1ff),
                protocol: ProtocolFlags(0x1fffff),
            },
            &want(),
        )
        .unwrap();
        assert_eq!(n.version, 6);
        assert_eq!(n.actions, want().actions);
        assert_eq!(n.protocol, want().protocol);
        assert_eq!(n.symlists, want().symlists);
        assert!(!n.expects_reply(cmd::HEADER));
        assert!(n.expects_reply(cmd::BODY));
        assert!(n.expects_reply(cmd::BODYEOB));
        assert!(!n.expects_reply(cmd::MACRO));
        assert!(!n.expects_reply(cmd::ABORT));
    }

    #[test]
    fn intersection_with_a_small_offer() {
        let n = negotiate(
            &OptNeg {
                version: 6,
                actions: Actions::ADDHDRS | Actions::CHGHDRS,
                protocol: ProtocolFlags::NOUNKNOWN | ProtocolFlags::MDS_1M,
            },
            &FilterOptions {
                protocol: want().protocol | ProtocolFlags::MDS_1M,
                ..want()
            },
        )
        .unwrap();
        assert_eq!(n.actions, Actions::ADDHDRS);
        assert_eq!(n.protocol, ProtocolFlags::NOUNKNOWN);
        // SETSYMLIST not offered: no symbol list is sent.
        assert!(n.symlists.is_empty());
        assert!(n.expects_reply(cmd::HEADER));
        let mut out = Vec::new();
        n.response().encode(&mut out);
        assert_eq!(out.len(), 4 + 1 + 12);
    }

    #[test]
    fn old_versions() {
        let offer = |v| OptNeg {
            version: v,
            actions: Actions(0x3f),
            protocol: ProtocolFlags(0x7f),
        };
        assert_eq!(
            negotiate(&offer(1), &want()),
            Err(ProtocolError::UnsupportedVersion(1))
        );
        assert_eq!(
            negotiate(&offer(0), &want()),
            Err(ProtocolError::UnsupportedVersion(0))
        );
        assert_eq!(negotiate(&offer(2), &want()).unwrap().version, 2);
        // A newer MTA gets our version.
        assert_eq!(negotiate(&offer(9), &want()).unwrap().version, 6);
    }

    #[test]
    fn no_symlist_means_no_setsymlist_action() {
        let n = negotiate(
            &OptNeg {
                version: 6,
                actions: Actions(0x1ff),
                protocol: ProtocolFlags(0),
            },
            &FilterOptions {
                symlists: vec![],
                ..want()
            },
        )
        .unwrap();
        assert!(!n.actions.contains(Actions::SETSYMLIST));
    }
}
