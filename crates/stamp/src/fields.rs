//! What a stamp says: [`StampFields`], and their validation.

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Longest `engine`, `sigs` and `node` value, in bytes. With these limits a
/// stamp header stays far below RFC 5322's 998-byte line limit even unfolded.
pub const MAX_VALUE_LEN: usize = 64;

/// What the scanner that made the stamp concluded about the message it let
/// through. A stamp only exists on a message a node delivered onwards, so
/// `infected` (rejected, dropped or quarantined) and `error` (could not scan:
/// never passed as clean) have no stamp value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StampResult {
    /// Nothing found.
    Clean,
    /// Something was found and removed or replaced (the stamped body is the
    /// cleaned one).
    Cleaned,
    /// A heuristic or policy finding that policy let through (tagged, or
    /// delivered with a warning); the next hop may apply its own policy.
    Suspicious,
}

impl StampResult {
    /// The header value: `clean`, `cleaned` or `suspicious`.
    pub fn as_str(self) -> &'static str {
        match self {
            StampResult::Clean => "clean",
            StampResult::Cleaned => "cleaned",
            StampResult::Suspicious => "suspicious",
        }
    }
}

impl fmt::Display for StampResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `result` value that is none of `clean`, `cleaned`, `suspicious`
/// (matched exactly, lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown stamp result {0:?}")]
pub struct UnknownResult(pub String);

impl FromStr for StampResult {
    type Err = UnknownResult;
    fn from_str(s: &str) -> Result<StampResult, UnknownResult> {
        match s {
            "clean" => Ok(StampResult::Clean),
            "cleaned" => Ok(StampResult::Cleaned),
            "suspicious" => Ok(StampResult::Suspicious),
            _ => Err(UnknownResult(s.to_string())),
        }
    }
}

/// The signed content of a stamp (besides the message's Message-ID and body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampFields {
    /// Version of the scanning engine (`mxguard` build), e.g. `0.1.0`.
    pub engine: String,
    /// Version of the signature database the scan used.
    pub sigs: String,
    pub result: StampResult,
    /// The stamping node's id (`node_id` in the config).
    pub node: String,
    /// When the stamp was made, in seconds since the Unix epoch.
    pub time: u64,
}

/// A field value that cannot go into a stamp.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FieldError {
    #[error("stamp field {field} is empty")]
    Empty { field: &'static str },
    #[error("stamp field {field} is longer than {MAX_VALUE_LEN} bytes")]
    TooLong { field: &'static str },
    #[error("stamp field {field} contains byte 0x{byte:02x} (allowed: visible ASCII except ';')")]
    BadByte { field: &'static str, byte: u8 },
}

/// Checks one free-form value: 1 to [`MAX_VALUE_LEN`] bytes of visible ASCII
/// (`!` to `~`) other than `;`. This excludes the tag separator, CR, LF,
/// whitespace (which folding may add or remove) and anything non-ASCII.
pub(crate) fn check_value(field: &'static str, value: &[u8]) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::Empty { field });
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(FieldError::TooLong { field });
    }
    if let Some(&byte) = value
        .iter()
        .find(|&&b| !(b.is_ascii_graphic() && b != b';'))
    {
        return Err(FieldError::BadByte { field, byte });
    }
    Ok(())
}

impl StampFields {
    /// Checks that `engine`, `sigs` and `node` can go into a stamp: each 1 to
    /// [`MAX_VALUE_LEN`] bytes of visible ASCII other than `;` (no spaces, CR
    /// or LF). [`stamp_header`](crate::stamp_header) refuses other values.
    pub fn validate(&self) -> Result<(), FieldError> {
        check_value("engine", self.engine.as_bytes())?;
        check_value("sigs", self.sigs.as_bytes())?;
        check_value("node", self.node.as_bytes())
    }
}

/// The versions this node scans with now: a stamp made with others is
/// [`Stale`](crate::StampCheck::Stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub engine: String,
    pub sigs: String,
}
