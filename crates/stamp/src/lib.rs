//! mxguard's signed antivirus stamp.
//!
//! A node that scanned a message and lets it through adds a stamp at the top
//! of its header block ([`add_stamp`]); the next hop (hub gateway, Maildir
//! delivery) [`verify`]s it and skips the antivirus/content scan when the stamp
//! is [`Valid`](StampCheck::Valid), that is signed by a key of its
//! [`KeyRing`], made by a trusted node, recent enough, and made with the
//! engine and signature versions it would scan with now. Mail from untrusted
//! clients goes through [`strip_stamps`] first, so an outsider's stamp never
//! reaches a check. Pure library: no I/O except the key file of
//! [`StampKey::load_or_create`], no async, and no function here panics on any
//! message bytes.
//!
//! ```
//! use mxguard_stamp::*;
//! use std::time::{Duration, SystemTime};
//!
//! let ring = KeyRing::from(StampKey::generate()?); // in a server: load_or_create
//! let now = SystemTime::now();
//! let fields = StampFields {
//!     engine: "0.1.0".into(),
//!     sigs: "27123".into(),
//!     result: StampResult::Clean,
//!     node: "mx1".into(),
//!     time: unix_time(now),
//! };
//! // Edge: remove what an outsider sent, scan, then stamp.
//! let received = b"X-MXGuard-Stamp: v=1; forged\r\nMessage-ID: <1@a>\r\n\r\nhi\r\n";
//! let message = strip_stamps(received);
//! let relayed = add_stamp(&message, &fields, ring.signing_key())?;
//! // Hub: skip the scan only on a valid stamp.
//! let current = Current { engine: "0.1.0".into(), sigs: "27123".into() };
//! let trusted = vec!["mx1".to_string()];
//! let check = verify(&relayed, &ring, &current, &trusted, Some(Duration::from_secs(86_400)), now);
//! assert_eq!(check, StampCheck::Valid(fields));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The header
//!
//! ```text
//! X-MXGuard-Stamp: v=1; engine=0.1.0; sigs=27123; result=clean; node=mx1;
//!  t=1767225600; mac=3q2+7w...=
//! ```
//!
//! Tags are separated by `;`, each `name=value`, surrounding whitespace and
//! folding ignored. All seven tags must be present, each once; no other tag is
//! accepted in version 1 (any order is read; [`stamp_header`] writes this
//! one). `engine`, `sigs` and `node` are 1 to [`MAX_VALUE_LEN`] bytes of
//! visible ASCII other than `;`; `result` is `clean`, `cleaned` or
//! `suspicious` ([`StampResult`]); `t` is seconds since the Unix epoch in
//! decimal without leading zeros; `mac` is the standard padded base64 of the
//! 32-byte HMAC-SHA256. [`stamp_header`] folds the field so no line exceeds 78
//! characters; unfolded it stays under 400 bytes (RFC 5322 allows 998).
//!
//! # What the MAC covers
//!
//! HMAC-SHA256 with the signing key over this text (each line ended by LF):
//!
//! ```text
//! v=1
//! engine=<engine>
//! sigs=<sigs>
//! result=<result>
//! node=<node>
//! t=<t>
//! message-id=<the first top-level Message-ID value>
//! content-type=<the first top-level Content-Type value>
//! content-transfer-encoding=<the first top-level Content-Transfer-Encoding value>
//! body-sha256=<64 lowercase hex digits>
//! ```
//!
//! The Message-ID value is unfolded (CR and LF removed), runs of spaces and
//! tabs collapsed into one space, and trimmed; it is empty when the message
//! has no Message-ID. The body is everything after the first empty line of the
//! message (none: an empty body), hashed in canonical form: each line ended
//! by CRLF whether it ended with CRLF, LF or nothing, and trailing empty lines
//! dropped (DKIM "simple" body canonicalisation of CRLF-normalised text). So
//! converting the whole message between CRLF and LF, adding or removing blank
//! lines at the end, and adding, removing or refolding header fields other
//! than Message-ID, Content-Type and Content-Transfer-Encoding (as hops do with
//! `Received`) keep a stamp valid; any other change of the body or of those
//! three fields breaks it ([`StampCheck::BadMac`]).
//!
//! # What a valid stamp proves, and what it does not
//!
//! - It proves that a node holding one of the ring's keys scanned a message
//!   with this body and this Message-ID, with these engine and signature
//!   versions, at time `t`, and let it through with this result. Without a
//!   key nobody can make one (forging needs the key; values are authenticated
//!   field by field, so no two different stamps share an input).
//! - It covers no header field other than Message-ID, Content-Type and
//!   Content-Transfer-Encoding (the last two say how the body is read, so the
//!   same body bytes cannot be made to decode differently under a valid
//!   stamp). Subject, From, Received... may change freely. Stamps are still
//!   only honoured from hops that strip them from untrusted clients
//!   ([`strip_stamps`]).
//! - Copying a stamp onto another message with the same Message-ID and body
//!   (a replay) gains nothing beyond that: the scanned bytes are the same.
//! - A node holding a key is trusted completely: a compromised key makes any
//!   stamp. `node` is a claim made by the key holder, authenticated but not
//!   bound to the key: `trusted_nodes` narrows which stamps are honoured, it
//!   does not keep one key holder from naming itself as another. Rotate keys
//!   with the ring.
//! - It says nothing about what later hops did besides keeping body and
//!   Message-ID, nor about signatures published after `t`: that is what
//!   `sigs`, [`StampCheck::Stale`] and `max_age` are for.
//!
//! # Keys
//!
//! 32 to 1024 random bytes ([`StampKey`]), shared by the nodes of one
//! organisation. A key file holds the key in base64 (standard alphabet,
//! padded) and a newline; [`StampKey::load_or_create`] makes one (32 bytes,
//! mode 0600) on first start, to be copied to the other nodes. A
//! [`KeyRing`] signs with its first key and verifies with all of them.
//!
//! # Several stamps
//!
//! A message that went edge → hub carries a stamp per hop, each added at the
//! top. [`verify`] checks the topmost only (the most recent hop), and only
//! that one decides: a malformed or invalid topmost stamp is not rescued by an
//! older one below it.

mod fields;
mod key;
mod message;

pub use fields::{Current, FieldError, StampFields, StampResult, UnknownResult, MAX_VALUE_LEN};
pub use key::{
    KeyError, KeyRing, StampKey, GENERATED_KEY_LEN, MAX_KEY_FILE, MAX_KEY_LEN, MIN_KEY_LEN,
};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// The header field's name (matched case-insensitively).
pub const HEADER_NAME: &str = "X-MXGuard-Stamp";
/// The stamp format version this crate writes and reads.
pub const VERSION: &str = "1";
/// How far in the future a stamp's time may be (clock differences between
/// nodes) when [`verify`] is given a `max_age`; later ones are
/// [`Expired`](StampCheck::Expired).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Longest line [`stamp_header`] writes, in characters, line break excluded.
pub const FOLD_AT: usize = 78;
/// Length of the MAC in bytes (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

/// Tag names in the order they are written and authenticated.
const TAGS: [&str; 7] = ["v", "engine", "sigs", "result", "node", "t", "mac"];

/// Why a stamp header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformed {
    #[error("stamp tag without '=': {0:?}")]
    Syntax(String),
    #[error("unknown stamp tag {0:?}")]
    UnknownTag(String),
    #[error("stamp tag {0} appears more than once")]
    DuplicateTag(&'static str),
    #[error("stamp tag {0} is missing")]
    MissingTag(&'static str),
    #[error("unsupported stamp version {0:?}")]
    Version(String),
    #[error(transparent)]
    Result(#[from] UnknownResult),
    #[error("invalid stamp time {0:?} (decimal seconds, no leading zeros)")]
    Time(String),
    #[error("stamp mac is not the base64 of {MAC_LEN} bytes")]
    Mac,
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// The outcome of [`verify`]. Only [`Valid`](StampCheck::Valid) lets a hop
/// skip its scan; every other outcome means: scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampCheck {
    /// No stamp in the top-level header block.
    Missing,
    /// The topmost stamp cannot be read.
    Malformed(Malformed),
    /// The MAC matches no key of the ring: forged, made with a key this node
    /// does not have, or the body or Message-ID changed since.
    BadMac,
    /// Authentic, but made by a node not in `trusted_nodes`.
    UntrustedNode(String),
    /// Authentic, but older than `max_age` (or more than [`MAX_CLOCK_SKEW`]
    /// in the future).
    Expired,
    /// Authentic, but made with other engine or signature versions (those of
    /// the stamp are given): rescan.
    Stale { engine: String, sigs: String },
    /// Authentic, trusted, current: the scan may be skipped.
    Valid(StampFields),
}

impl StampCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, StampCheck::Valid(_))
    }
}

/// Seconds since the Unix epoch (0 for times before it).
pub fn unix_time(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text the MAC is computed over (see the crate docs).
fn mac_input(fields: &StampFields, message: &[u8]) -> Vec<u8> {
    let time = fields.time.to_string();
    let mut m = Vec::with_capacity(256);
    let values = [
        VERSION,
        &fields.engine,
        &fields.sigs,
        fields.result.as_str(),
        &fields.node,
        &time,
    ];
    for (name, value) in TAGS.iter().zip(values) {
        m.extend_from_slice(name.as_bytes());
        m.push(b'=');
        m.extend_from_slice(value.as_bytes());
        m.push(b'\n');
    }
    m.extend_from_slice(b"message-id=");
    m.extend_from_slice(&message::message_id(message));
    m.push(b'\n');
    // How the body is read: covered, so the same bytes cannot be made to
    // decode differently under a valid stamp.
    m.extend_from_slice(b"content-type=");
    m.extend_from_slice(&message::header(message, "Content-Type"));
    m.push(b'\n');
    m.extend_from_slice(b"content-transfer-encoding=");
    m.extend_from_slice(&message::header(message, "Content-Transfer-Encoding"));
    m.push(b'\n');
    m.extend_from_slice(b"body-sha256=");
    m.extend_from_slice(hex(&message::body_hash(message::body(message))).as_bytes());
    m.push(b'\n');
    m
}

fn hmac(key: &StampKey, input: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; StampKey holds 32 to 1024 bytes.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()).expect("HMAC takes keys of any length");
    mac.update(input);
    mac
}

/// The stamp header field for `message` (name, value, CRLF at the end),
/// signed with `key` (a ring's [`signing_key`](KeyRing::signing_key)). Folded
/// so that no line is longer than [`FOLD_AT`] characters.
///
/// Fails only when `fields` do not [`validate`](StampFields::validate).
pub fn stamp_header(
    fields: &StampFields,
    message: &[u8],
    key: &StampKey,
) -> Result<String, FieldError> {
    fields.validate()?;
    let mac = hmac(key, &mac_input(fields, message))
        .finalize()
        .into_bytes();
    let tags = [
        format!("v={VERSION}"),
        format!("engine={}", fields.engine),
        format!("sigs={}", fields.sigs),
        format!("result={}", fields.result),
        format!("node={}", fields.node),
        format!("t={}", fields.time),
        format!("mac={}", STANDARD.encode(mac)),
    ];
    let mut out = format!("{HEADER_NAME}:");
    let mut line_len = out.len();
    for (i, tag) in tags.iter().enumerate() {
        let piece_len = tag.len() + usize::from(i + 1 < tags.len());
        if i > 0 && line_len + 1 + piece_len > FOLD_AT {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(tag);
        if i + 1 < tags.len() {
            out.push(';');
        }
        line_len += 1 + piece_len;
    }
    out.push_str("\r\n");
    Ok(out)
}

/// `message` with a stamp added at the top of its header block, its lines
/// ended like the message's first line (CRLF, or LF when the first line ends
/// with a bare LF; CRLF for a message without any line break). Older stamps
/// stay where they are, below it. (Lines starting with whitespace at the very
/// top of a malformed message stay above the stamp, so they cannot become
/// part of its value.)
///
/// Fails only when `fields` do not [`validate`](StampFields::validate).
pub fn add_stamp(
    message: &[u8],
    fields: &StampFields,
    key: &StampKey,
) -> Result<Vec<u8>, FieldError> {
    let mut header = stamp_header(fields, message, key)?;
    let lf_only = match memchr::memchr(b'\n', message) {
        Some(i) => i == 0 || message[i - 1] != b'\r',
        None => false,
    };
    if lf_only {
        header = header.replace("\r\n", "\n");
    }
    let at = message::top(message);
    let mut out = Vec::with_capacity(header.len() + message.len());
    out.extend_from_slice(&message[..at]);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&message[at..]);
    Ok(out)
}

/// `message` without any stamp field in its top-level header block (name
/// matched case-insensitively, continuation lines included). The body, and
/// so attached messages and MIME part headers, are left as they are.
/// Borrowed when there was no stamp. Use it on mail from untrusted clients
/// before anything verifies or stamps it.
pub fn strip_stamps(message: &[u8]) -> Cow<'_, [u8]> {
    let stamps: Vec<(usize, usize)> = message::fields(message)
        .iter()
        .filter(|f| f.is(HEADER_NAME))
        .map(|f| (f.start, f.end))
        .collect();
    if stamps.is_empty() {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len());
    let mut pos = 0;
    for (start, end) in stamps {
        out.extend_from_slice(&message[pos..start]);
        pos = end;
    }
    out.extend_from_slice(&message[pos..]);
    Cow::Owned(out)
}

/// Checks the topmost stamp of `message` (see the crate docs for why only
/// that one), in this order: present ([`Missing`](StampCheck::Missing)),
/// readable ([`Malformed`](StampCheck::Malformed)), made with a key of `keys`
/// over this body and Message-ID ([`BadMac`](StampCheck::BadMac)), by a node
/// listed in `trusted_nodes` (exact, case-sensitive match; an empty list
/// trusts every node holding a key) ([`UntrustedNode`](StampCheck::UntrustedNode)),
/// no older than `max_age` before `now` and no more than [`MAX_CLOCK_SKEW`]
/// after it (`None`: no time check) ([`Expired`](StampCheck::Expired)), with
/// the `expected` engine and signature versions ([`Stale`](StampCheck::Stale)).
/// Then [`Valid`](StampCheck::Valid). MACs are compared in constant time.
pub fn verify(
    message: &[u8],
    keys: &KeyRing,
    expected: &Current,
    trusted_nodes: &[String],
    max_age: Option<Duration>,
    now: SystemTime,
) -> StampCheck {
    let fields = message::fields(message);
    let Some(field) = fields.iter().find(|f| f.is(HEADER_NAME)) else {
        return StampCheck::Missing;
    };
    let (stamp, mac) = match parse(field.raw_value) {
        Ok(p) => p,
        Err(e) => return StampCheck::Malformed(e),
    };
    let input = mac_input(&stamp, message);
    if !keys
        .keys()
        .iter()
        .any(|k| hmac(k, &input).verify_slice(&mac).is_ok())
    {
        return StampCheck::BadMac;
    }
    if !trusted_nodes.is_empty() && !trusted_nodes.contains(&stamp.node) {
        return StampCheck::UntrustedNode(stamp.node);
    }
    if let Some(max_age) = max_age {
        let now = unix_time(now);
        if stamp.time > now.saturating_add(MAX_CLOCK_SKEW.as_secs())
            || now.saturating_sub(stamp.time) > max_age.as_secs()
        {
            return StampCheck::Expired;
        }
    }
    if stamp.engine != expected.engine || stamp.sigs != expected.sigs {
        return StampCheck::Stale {
            engine: stamp.engine,
            sigs: stamp.sigs,
        };
    }
    StampCheck::Valid(stamp)
}

/// Attacker-supplied bytes for an error message: lossy UTF-8, at most 64 characters.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(64).collect()
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |e| e + 1);
    &b[start..end]
}

/// Reads a stamp field's raw value into its fields and MAC.
fn parse(raw: &[u8]) -> Result<(StampFields, [u8; MAC_LEN]), Malformed> {
    // Unfolded: no CR or LF, every run of whitespace one space.
    let value = message::unfold(raw);
    let mut slots: [Option<&[u8]>; 7] = [None; 7];
    let mut unknown = None;
    for seg in value.split(|&b| b == b';') {
        let seg = trim(seg);
        if seg.is_empty() {
            continue;
        }
        let Some(eq) = seg.iter().position(|&b| b == b'=') else {
            return Err(Malformed::Syntax(shown(seg)));
        };
        let (name, val) = (trim(&seg[..eq]), trim(&seg[eq + 1..]));
        match TAGS.iter().position(|t| t.as_bytes() == name) {
            Some(i) if slots[i].is_some() => return Err(Malformed::DuplicateTag(TAGS[i])),
            Some(i) => slots[i] = Some(val),
            None => {
                unknown.get_or_insert(name);
            }
        }
    }
    // The version first: another version may well have other tags.
    let [v, engine, sigs, result, node, t, mac] = slots;
    let v = v.ok_or(Malformed::MissingTag("v"))?;
    if v != VERSION.as_bytes() {
        return Err(Malformed::Version(shown(v)));
    }
    if let Some(name) = unknown {
        return Err(Malformed::UnknownTag(shown(name)));
    }
    let text = |i: usize, slot: Option<&[u8]>| -> Result<String, Malformed> {
        let b = slot.ok_or(Malformed::MissingTag(TAGS[i]))?;
        // Free-form values obey the creation rules (ASCII, so valid UTF-8).
        fields::check_value(TAGS[i], b)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    };
    let engine = text(1, engine)?;
    let sigs = text(2, sigs)?;
    let result = result.ok_or(Malformed::MissingTag("result"))?;
    let result: StampResult = String::from_utf8_lossy(result).parse()?;
    let node = text(4, node)?;
    let t = t.ok_or(Malformed::MissingTag("t"))?;
    let canonical = !t.is_empty()
        && t.len() <= 20
        && t.iter().all(u8::is_ascii_digit)
        && (t == b"0" || t[0] != b'0');
    let time = std::str::from_utf8(t)
        .ok()
        .filter(|_| canonical)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Malformed::Time(shown(t)))?;
    let mac = mac.ok_or(Malformed::MissingTag("mac"))?;
    let mac: [u8; MAC_LEN] = STANDARD
        .decode(mac)
        .ok()
        .and_then(|m| m.try_into().ok())
        .ok_or(Malformed::Mac)?;
    Ok((
        StampFields {
            engine,
            sigs,
            result,
            node,
            time,
        },
        mac,
    ))
}

#[cfg(test)]
mod tests;
