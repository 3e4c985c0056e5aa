//! Plain data shared by every mxguard crate.
//!
//! No I/O and no async runtime here: these types travel between the
//! signature engine, the policy layer and the front-ends (SMTP, milter,
//! clamd socket, CLI).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of engine produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The built-in signature engine (ClamAV formats and ours).
    Signatures,
    /// Built-in heuristics (limits, encrypted content, type mismatches...).
    Heuristics,
    /// An external clamd.
    Clamd,
    /// YARA rules.
    Yara,
    /// Administrator policy (content, attachments, spam...).
    Policy,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Signatures => "signatures",
            EngineKind::Heuristics => "heuristics",
            EngineKind::Clamd => "clamd",
            EngineKind::Yara => "yara",
            EngineKind::Policy => "policy",
        }
    }
}

/// How serious a finding is. Decides the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A heuristic or policy hit: the object may be harmful.
    Suspicious,
    /// A signature hit: the object is known to be harmful.
    Infected,
}

/// One thing an engine found in one scanned object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Threat name, e.g. `Win.Test.EICAR_HDB-1` or `Heuristics.Limits.Exceeded.MaxFileSize`.
    pub name: String,
    pub engine: EngineKind,
    pub severity: Severity,
    /// Where inside the scanned input the object sits (`mail/part[2]/invoice.zip/a.exe`);
    /// empty for the input itself.
    pub location: String,
    /// A short human reason (heuristics and limits: "zip entry a.exe is encrypted");
    /// empty for signature hits, whose name says it all.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Finding {
    /// A heuristic finding (severity suspicious).
    pub fn heuristic(
        name: impl Into<String>,
        location: impl Into<String>,
        detail: impl Into<String>,
    ) -> Finding {
        Finding {
            name: name.into(),
            engine: EngineKind::Heuristics,
            severity: Severity::Suspicious,
            location: location.into(),
            detail: detail.into(),
        }
    }
}

/// The overall result of scanning one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Clean,
    Suspicious,
    Infected,
    /// The input could not be scanned. Never to be treated as clean.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Suspicious => "suspicious",
            Verdict::Infected => "infected",
            Verdict::Error => "error",
        }
    }

    /// The verdict that follows from a list of findings (no error).
    pub fn from_findings(findings: &[Finding]) -> Verdict {
        match findings.iter().map(|f| f.severity).max() {
            None => Verdict::Clean,
            Some(Severity::Suspicious) => Verdict::Suspicious,
            Some(Severity::Infected) => Verdict::Infected,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of scanning one input (a file, a message, a stream).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    pub findings: Vec<Finding>,
    /// Set when some part of the input could not be scanned; the verdict is then `error`
    /// unless a finding already makes it infected.
    pub error: Option<String>,
    /// Bytes scanned.
    pub size: u64,
}

impl ScanReport {
    pub fn verdict(&self) -> Verdict {
        let v = Verdict::from_findings(&self.findings);
        match (&self.error, v) {
            (Some(_), Verdict::Clean | Verdict::Suspicious) => Verdict::Error,
            _ => v,
        }
    }
}

/// Options that change how much a scan reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Report every matching signature instead of stopping at the first.
    pub all_match: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(sev: Severity) -> Finding {
        Finding {
            name: "X".into(),
            engine: EngineKind::Signatures,
            severity: sev,
            location: String::new(),
            detail: String::new(),
        }
    }

    #[test]
    fn verdict_follows_worst_finding_and_errors_are_never_clean() {
        assert_eq!(Verdict::from_findings(&[]), Verdict::Clean);
        assert_eq!(
            Verdict::from_findings(&[f(Severity::Suspicious)]),
            Verdict::Suspicious
        );
        assert_eq!(
            Verdict::from_findings(&[f(Severity::Suspicious), f(Severity::Infected)]),
            Verdict::Infected
        );
        let mut r = ScanReport {
            error: Some("unreadable".into()),
            ..Default::default()
        };
        assert_eq!(r.verdict(), Verdict::Error);
        r.findings.push(f(Severity::Infected));
        assert_eq!(r.verdict(), Verdict::Infected);
    }
}
