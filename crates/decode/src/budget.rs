//! The [`DecodeBudget`]: every limit the decoder obeys, named and configurable.
//!
//! Defaults follow clamscan's (`MaxRecursion` 17, `MaxFiles` 10,000,
//! `MaxFileSize` 100 MiB, `MaxScanSize` 400 MiB, `MaxScanTime` 120 s), plus a
//! compression-ratio limit ClamAV lacks, so that a bomb is stopped after a few
//! megabytes instead of after the whole byte budget.

use std::time::Duration;

/// One named limit. Exceeding it stops the branch (or the walk) and yields the
/// finding `Heuristics.Limits.Exceeded.<name>` with severity suspicious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// Containers nested deeper than [`DecodeBudget::max_depth`].
    MaxRecursion,
    /// More objects than [`DecodeBudget::max_objects`] in one input.
    MaxFiles,
    /// One decoded object larger than [`DecodeBudget::max_object_size`]
    /// (its first `max_object_size` bytes are still scanned).
    MaxFileSize,
    /// More decoded bytes in all than [`DecodeBudget::max_total_size`].
    MaxScanSize,
    /// A member that expands more than [`DecodeBudget::max_ratio`] times its packed size.
    MaxCompressionRatio,
    /// Decoding took longer than [`DecodeBudget::max_time`].
    MaxScanTime,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::MaxRecursion,
        Limit::MaxFiles,
        Limit::MaxFileSize,
        Limit::MaxScanSize,
        Limit::MaxCompressionRatio,
        Limit::MaxScanTime,
    ];

    /// The limit's own name (`MaxRecursion`).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxRecursion => "MaxRecursion",
            Limit::MaxFiles => "MaxFiles",
            Limit::MaxFileSize => "MaxFileSize",
            Limit::MaxScanSize => "MaxScanSize",
            Limit::MaxCompressionRatio => "MaxCompressionRatio",
            Limit::MaxScanTime => "MaxScanTime",
        }
    }

    /// The finding name (`Heuristics.Limits.Exceeded.MaxRecursion`).
    pub fn finding_name(self) -> String {
        format!("Heuristics.Limits.Exceeded.{}", self.as_str())
    }
}

/// Default nesting depth (clamscan's `MaxRecursion`).
pub const DEFAULT_MAX_DEPTH: u32 = 17;
/// Hard ceiling for [`DecodeBudget::max_depth`]: the walk recurses on the stack.
pub const MAX_DEPTH_CEILING: u32 = 64;
/// Default number of objects per input (clamscan's `MaxFiles`).
pub const DEFAULT_MAX_OBJECTS: usize = 10_000;
/// Default size of one decoded object (clamscan's `MaxFileSize`).
pub const DEFAULT_MAX_OBJECT_SIZE: u64 = 100 << 20;
/// Default decoded bytes per input (clamscan's `MaxScanSize`).
pub const DEFAULT_MAX_TOTAL_SIZE: u64 = 400 << 20;
/// Default expansion ratio of one compressed member.
pub const DEFAULT_MAX_RATIO: u64 = 250;
/// The ratio is only judged once a member has expanded to this many bytes:
/// small, highly compressible members (a page of zeros) are normal.
pub const RATIO_MIN_OUTPUT: u64 = 1 << 20;
/// Default time per input (clamscan's `MaxScanTime`).
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(120);

/// The limits of one decode. Every field is a configurable limit; see [`Limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeBudget {
    /// Containers nested deeper than this are not opened (the input is depth 0).
    pub max_depth: u32,
    /// Objects per input, the input included.
    pub max_objects: usize,
    /// Bytes of one decoded object; the rest is not decoded.
    pub max_object_size: u64,
    /// Decoded bytes per input (the input itself not counted).
    pub max_total_size: u64,
    /// Expansion ratio of one compressed member, judged after [`RATIO_MIN_OUTPUT`] bytes.
    pub max_ratio: u64,
    /// Wall-clock time per input.
    pub max_time: Duration,
}

impl Default for DecodeBudget {
    fn default() -> Self {
        DecodeBudget {
            max_depth: DEFAULT_MAX_DEPTH,
            max_objects: DEFAULT_MAX_OBJECTS,
            max_object_size: DEFAULT_MAX_OBJECT_SIZE,
            max_total_size: DEFAULT_MAX_TOTAL_SIZE,
            max_ratio: DEFAULT_MAX_RATIO,
            max_time: DEFAULT_MAX_TIME,
        }
    }
}

impl DecodeBudget {
    /// Checks the values make sense; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_depth == 0 || self.max_depth > MAX_DEPTH_CEILING {
            return Err(format!(
                "max_depth must be between 1 and {MAX_DEPTH_CEILING}, not {}",
                self.max_depth
            ));
        }
        if self.max_objects == 0 {
            return Err("max_objects must be at least 1".into());
        }
        if self.max_object_size == 0 || self.max_total_size == 0 {
            return Err("max_object_size and max_total_size must be positive".into());
        }
        if self.max_ratio < 2 {
            return Err("max_ratio must be at least 2".into());
        }
        if self.max_time.is_zero() {
            return Err("max_time must be positive".into());
        }
        Ok(())
    }
}

/// Which heuristics run. All on by default: on a mail gateway a suspicious
/// verdict means "quarantine by policy", which is what these cases deserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeuristicsConfig {
    /// Encrypted archive members and documents (`Heuristics.Encrypted.*`).
    pub encrypted: bool,
    /// Executables named as something else (`Heuristics.Attachment.TrueTypeMismatch`).
    pub type_mismatch: bool,
    /// `invoice.pdf.exe` (`Heuristics.Attachment.DoubleExtension`).
    pub double_extension: bool,
    /// Right-to-left override and other deceptive characters in names.
    pub deceptive_names: bool,
    /// Office macros that run on open and call dangerous functions.
    pub macros: bool,
    /// PDF JavaScript that runs on open, `/Launch` actions.
    pub pdf: bool,
    /// HTML that builds a file in script and offers it for download.
    pub html_smuggling: bool,
    /// Links whose visible text names another domain than their target.
    pub phishing: bool,
    /// Containers that could not be read to the end (`Heuristics.Broken.*`).
    pub broken: bool,
    /// Registrable domains whose name in a link's visible text must match the
    /// link's target (ClamAV's "protected domains"). A mismatch to any host is
    /// reported for these; for other domains only a target that is an IP
    /// address or a punycode host is, which keeps newsletters' tracking links
    /// from counting as phishing.
    pub protected_domains: Vec<String>,
}

/// Default [`HeuristicsConfig::protected_domains`]: brands phishing mail imitates most.
pub const DEFAULT_PROTECTED_DOMAINS: [&str; 24] = [
    "paypal.com",
    "apple.com",
    "icloud.com",
    "microsoft.com",
    "office.com",
    "live.com",
    "outlook.com",
    "microsoftonline.com",
    "google.com",
    "gmail.com",
    "amazon.com",
    "ebay.com",
    "facebook.com",
    "instagram.com",
    "linkedin.com",
    "netflix.com",
    "dropbox.com",
    "docusign.com",
    "dhl.com",
    "fedex.com",
    "ups.com",
    "chase.com",
    "wellsfargo.com",
    "bankofamerica.com",
];

impl Default for HeuristicsConfig {
    fn default() -> Self {
        HeuristicsConfig {
            encrypted: true,
            type_mismatch: true,
            double_extension: true,
            deceptive_names: true,
            macros: true,
            pdf: true,
            html_smuggling: true,
            phishing: true,
            broken: true,
            protected_domains: DEFAULT_PROTECTED_DOMAINS
                .iter()
                .map(|d| d.to_string())
                .collect(),
        }
    }
}
