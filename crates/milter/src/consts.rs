//! Protocol constants: command and reply bytes, action and protocol flags,
//! macro stages, and the limits this crate enforces.
//!
//! The values are the milter protocol's wire values (Sendmail's
//! `libmilter/mfdef.h` names them; Postfix uses the same numbers).

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

/// The protocol version this crate speaks (Sendmail 8.14+, Postfix ≥ 2.6).
pub const PROTOCOL_VERSION: u32 = 6;
/// The oldest MTA protocol version we accept; older ones are refused at negotiation.
pub const MIN_PROTOCOL_VERSION: u32 = 2;

/// Largest body chunk an MTA sends without `SMFIP_MDS_*` (which we never
/// request), and the largest `SMFIR_REPLBODY` chunk we send.
pub const MAX_BODY_CHUNK: usize = 65_535;
/// Default largest frame (command byte + data) the decoder accepts: Postfix
/// passes a header of up to `header_size_limit` (100 KiB by default) in one
/// frame, so the default leaves room for that and more.
pub const DEFAULT_MAX_FRAME: usize = 512 * 1024;
/// Hard cap on a frame's length, whatever the configuration says. A larger
/// length prefix is a protocol error, never an allocation.
pub const MAX_FRAME_HARD_CAP: usize = 1024 * 1024;
/// Most recipients one message may carry; more end the connection with a protocol error.
pub const MAX_RECIPIENTS: usize = 10_000;
/// Most ESMTP arguments on one MAIL or RCPT.
pub const MAX_ESMTP_ARGS: usize = 64;
/// Most macros in one `SMFIC_MACRO` frame.
pub const MAX_MACROS_PER_FRAME: usize = 256;
/// Most lines in one multi-line SMTP reply (libmilter's `smfi_setmlreply` limit).
pub const MAX_REPLY_LINES: usize = 32;
/// Longest text of one reply line in octets (after `%` doubling); longer text is cut.
pub const MAX_REPLY_LINE: usize = 980;

/// MTA → filter command bytes (`SMFIC_*`).
pub mod cmd {
    pub const ABORT: u8 = b'A';
    pub const BODY: u8 = b'B';
    pub const CONNECT: u8 = b'C';
    pub const MACRO: u8 = b'D';
    pub const BODYEOB: u8 = b'E';
    pub const HELO: u8 = b'H';
    pub const QUIT_NC: u8 = b'K';
    pub const HEADER: u8 = b'L';
    pub const MAIL: u8 = b'M';
    pub const EOH: u8 = b'N';
    pub const OPTNEG: u8 = b'O';
    pub const QUIT: u8 = b'Q';
    pub const RCPT: u8 = b'R';
    pub const DATA: u8 = b'T';
    pub const UNKNOWN: u8 = b'U';
}

/// Filter → MTA reply and modification bytes (`SMFIR_*`).
pub mod resp {
    pub const ADDRCPT: u8 = b'+';
    pub const DELRCPT: u8 = b'-';
    pub const ADDRCPT_PAR: u8 = b'2';
    pub const SHUTDOWN: u8 = b'4';
    pub const ACCEPT: u8 = b'a';
    pub const REPLBODY: u8 = b'b';
    pub const CONTINUE: u8 = b'c';
    pub const DISCARD: u8 = b'd';
    pub const CHGFROM: u8 = b'e';
    pub const CONN_FAIL: u8 = b'f';
    pub const ADDHEADER: u8 = b'h';
    pub const INSHEADER: u8 = b'i';
    pub const SETSYMLIST: u8 = b'l';
    pub const CHGHEADER: u8 = b'm';
    pub const PROGRESS: u8 = b'p';
    pub const QUARANTINE: u8 = b'q';
    pub const REJECT: u8 = b'r';
    pub const SKIP: u8 = b's';
    pub const TEMPFAIL: u8 = b't';
    pub const REPLYCODE: u8 = b'y';
    /// The negotiation reply carries the same byte as the command.
    pub const OPTNEG: u8 = b'O';
}

macro_rules! flag_set {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $flag:ident = $val:expr,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$fdoc])* pub const $flag: $name = $name($val);)*
            /// No flag set.
            pub const NONE: $name = $name(0);

            /// Every flag in `other` is set in `self`.
            pub fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
            /// The raw bits.
            pub fn bits(self) -> u32 {
                self.0
            }
            /// The flags known to this crate, by name.
            pub fn names(self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $(if $val != 0 && self.0 & $val == $val { v.push(stringify!($flag)); })*
                v
            }
        }
        impl BitOr for $name {
            type Output = $name;
            fn bitor(self, o: $name) -> $name { $name(self.0 | o.0) }
        }
        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, o: $name) { self.0 |= o.0 }
        }
        impl BitAnd for $name {
            type Output = $name;
            fn bitand(self, o: $name) -> $name { $name(self.0 & o.0) }
        }
        impl Not for $name {
            type Output = $name;
            fn not(self) -> $name { $name(!self.0) }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(0x{:x} {})", stringify!($name), self.0, self.names().join("|"))
            }
        }
    };
}

flag_set! {
    /// What the filter may do to a message (`SMFIF_*`), announced at negotiation.
    Actions {
        /// Add headers (`SMFIR_ADDHEADER`, `SMFIR_INSHEADER`).
        ADDHDRS = 0x01,
        /// Replace the body (`SMFIR_REPLBODY`).
        CHGBODY = 0x02,
        /// Add recipients (`SMFIR_ADDRCPT`).
        ADDRCPT = 0x04,
        /// Delete recipients (`SMFIR_DELRCPT`).
        DELRCPT = 0x08,
        /// Change or delete headers (`SMFIR_CHGHEADER`).
        CHGHDRS = 0x10,
        /// Quarantine the message (`SMFIR_QUARANTINE`; Postfix's hold queue).
        QUARANTINE = 0x20,
        /// Change the envelope sender (`SMFIR_CHGFROM`).
        CHGFROM = 0x40,
        /// Add recipients with ESMTP arguments (`SMFIR_ADDRCPT_PAR`).
        ADDRCPT_PAR = 0x80,
        /// Ask for a list of macros per stage in the negotiation reply.
        SETSYMLIST = 0x100,
    }
}

flag_set! {
    /// Protocol steps and behaviours (`SMFIP_*`): the MTA offers the ones it
    /// supports, the filter asks for the ones it wants.
    ProtocolFlags {
        /// Do not send CONNECT.
        NOCONNECT = 0x01,
        /// Do not send HELO.
        NOHELO = 0x02,
        /// Do not send MAIL.
        NOMAIL = 0x04,
        /// Do not send RCPT.
        NORCPT = 0x08,
        /// Do not send BODY.
        NOBODY = 0x10,
        /// Do not send HEADER.
        NOHDRS = 0x20,
        /// Do not send EOH.
        NOEOH = 0x40,
        /// No reply to HEADER.
        NR_HDR = 0x80,
        /// Do not send UNKNOWN.
        NOUNKNOWN = 0x100,
        /// Do not send DATA.
        NODATA = 0x200,
        /// The MTA understands `SMFIR_SKIP`.
        SKIP = 0x400,
        /// Also send rejected recipients.
        RCPT_REJ = 0x800,
        /// No reply to CONNECT.
        NR_CONN = 0x1000,
        /// No reply to HELO.
        NR_HELO = 0x2000,
        /// No reply to MAIL.
        NR_MAIL = 0x4000,
        /// No reply to RCPT.
        NR_RCPT = 0x8000,
        /// No reply to DATA.
        NR_DATA = 0x10000,
        /// No reply to UNKNOWN.
        NR_UNKN = 0x20000,
        /// No reply to EOH.
        NR_EOH = 0x40000,
        /// No reply to BODY.
        NR_BODY = 0x80000,
        /// Header values keep their leading space, and the MTA adds none to ours.
        HDR_LEADSPC = 0x100000,
        /// Body chunks up to 256 KiB (never requested by this crate).
        MDS_256K = 0x10000000,
        /// Body chunks up to 1 MiB (never requested by this crate).
        MDS_1M = 0x20000000,
    }
}

/// The macro stages of `SMFIR_SETSYMLIST` (`SMFIM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MacroStage {
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    Eom,
    Eoh,
}

impl MacroStage {
    /// The stage number on the wire.
    pub fn wire(self) -> u32 {
        match self {
            MacroStage::Connect => 0,
            MacroStage::Helo => 1,
            MacroStage::Mail => 2,
            MacroStage::Rcpt => 3,
            MacroStage::Data => 4,
            MacroStage::Eom => 5,
            MacroStage::Eoh => 6,
        }
    }

    /// The stage whose macros a `SMFIC_MACRO` frame for command `c` carries;
    /// `None` for a command that has no stage of its own.
    pub fn for_command(c: u8) -> Option<MacroStage> {
        Some(match c {
            cmd::CONNECT => MacroStage::Connect,
            cmd::HELO => MacroStage::Helo,
            cmd::MAIL => MacroStage::Mail,
            cmd::RCPT => MacroStage::Rcpt,
            cmd::DATA => MacroStage::Data,
            cmd::BODYEOB => MacroStage::Eom,
            cmd::EOH => MacroStage::Eoh,
            _ => return None,
        })
    }

    /// Every stage, in protocol order.
    pub const ALL: [MacroStage; 7] = [
        MacroStage::Connect,
        MacroStage::Helo,
        MacroStage::Mail,
        MacroStage::Rcpt,
        MacroStage::Data,
        MacroStage::Eoh,
        MacroStage::Eom,
    ];
}
