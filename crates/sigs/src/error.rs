//! Load errors and the load report.
//!
//! Loading never stops at a bad line: each problem is recorded with its file,
//! line and reason, and the rest of the database loads. Whole-file problems
//! (unreadable file, corrupt container) are recorded the same way with line 0.

use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// Why one signature line could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineError {
    #[error("{0}")]
    Syntax(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl LineError {
    pub fn syntax(msg: impl Into<String>) -> Self {
        LineError::Syntax(msg.into())
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        LineError::Unsupported(msg.into())
    }
}

/// One problem found while loading, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number; 0 for a whole-file problem.
    pub line: usize,
    pub kind: ProblemKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The line or file is malformed.
    Invalid,
    /// The line is valid ClamAV syntax that this engine cannot honour yet
    /// (PCRE, byte compare, bytecode, icon groups...). The signature is not used.
    Unsupported,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ProblemKind::Invalid => "invalid",
            ProblemKind::Unsupported => "unsupported",
        };
        if self.line == 0 {
            write!(f, "{}: {}: {}", self.file.display(), kind, self.reason)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                self.line,
                kind,
                self.reason
            )
        }
    }
}

/// Counts per database kind, and every problem.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub files: usize,
    pub hash_sigs: usize,
    pub body_sigs: usize,
    pub logical_sigs: usize,
    pub allow_list: usize,
    pub ignored_names: usize,
    /// Signatures removed because an `.ign2` entry named them.
    pub ignored_sigs: usize,
    /// Signatures skipped because their functionality-level range excludes this engine
    /// (ClamAV skips them silently; we count them).
    pub flevel_skipped: usize,
    pub problems: Vec<Problem>,
}

impl LoadReport {
    pub fn invalid(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Invalid)
            .count()
    }
    pub fn unsupported(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Unsupported)
            .count()
    }
    pub fn signatures(&self) -> usize {
        self.hash_sigs + self.body_sigs + self.logical_sigs
    }
    pub(crate) fn problem(&mut self, file: &std::path::Path, line: usize, err: LineError) {
        let (kind, reason) = match err {
            LineError::Syntax(r) => (ProblemKind::Invalid, r),
            LineError::Unsupported(r) => (ProblemKind::Unsupported, r),
        };
        self.problems.push(Problem {
            file: file.to_path_buf(),
            line,
            kind,
            reason,
        });
    }
}
