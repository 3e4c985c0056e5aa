//! mxguard's signature database: ClamAV's formats, parsed, validated and
//! compiled into a fast filter-then-verify matcher.
//!
//! ```text
//! files, dirs, .cvd ──load──▶ Database (parsed lines, LoadReport) ──compile──▶ SignatureSet ──scan──▶ detections
//! ```
//!
//! - Formats: `.hdb`/`.hsb` hashes, `.fp`/`.sfp` allow lists, `.ign2`/`.ign`
//!   ignore lists, `.ndb` body signatures, `.ldb` logical signatures,
//!   `.cvd`/`.cld` containers. See [`db`] for what is not supported (counted
//!   and reported, never half-applied).
//! - Matching: see [`set`] for the design and its guarantees (no false
//!   negatives from the prefilter; hashing only when a signature of the size exists).
//! - Target types: [`target`] decides which bytes each target type sees.
pub mod cvd;
pub mod db;
pub mod error;
pub mod exe;
pub mod filetype;
pub mod hex;
pub mod load;
pub mod offset;
pub mod pattern;
pub mod set;
pub mod target;

pub use db::{Database, DbKind, FLEVEL};
pub use error::{LoadReport, Problem, ProblemKind};
pub use set::cache::{fingerprint, CacheError};
pub use set::{Detection, MatchOptions, Scratch, SetStats, SigKind, SignatureSet};
pub mod htmlnorm;
pub mod textnorm;
