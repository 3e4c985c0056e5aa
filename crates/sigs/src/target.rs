//! Which bytes each target type's signatures see.
//!
//! ClamAV does not match every signature against the raw file: target-type
//! 0 signatures see the raw bytes of every file, typed signatures see the raw
//! bytes only when the file has that type, and some types are normalised
//! first (target 7 sees lowercased, whitespace-collapsed text; target 3 sees
//! normalised HTML). `views` returns the buffers to scan and, for each, the
//! target types whose signatures apply to it.
//!
//! TODO(filetype agent): implement the normalisations.

use crate::filetype::FileType;
use std::borrow::Cow;

/// A set of ClamAV target type numbers (0..=15), one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TargetMask(pub u16);

impl TargetMask {
    pub const fn of(t: u8) -> TargetMask {
        TargetMask(1 << t)
    }
    pub const fn with(self, t: u8) -> TargetMask {
        TargetMask(self.0 | (1 << t))
    }
    pub const fn contains(self, t: u8) -> bool {
        t < 16 && self.0 & (1 << t) != 0
    }
}

/// The ClamAV target type number whose raw-byte signatures apply to a file type
/// (besides target 0), if any.
pub fn target_of(ft: FileType) -> Option<u8> {
    Some(match ft {
        FileType::Pe => 1,
        FileType::Ole2 => 2,
        FileType::Html => 3,
        FileType::Mail => 4,
        FileType::Graphics => 5,
        FileType::Elf => 6,
        FileType::Text => 7,
        FileType::MachO => 9,
        FileType::Pdf => 10,
        FileType::Flash => 11,
        FileType::Java => 12,
        FileType::Binary => return None,
    })
}

/// One buffer to match and the target types whose signatures apply to it.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub data: Cow<'a, [u8]>,
    pub targets: TargetMask,
    /// True when `data` is a normalised copy rather than the file's bytes
    /// (offsets such as `EOF-n` then refer to the normalised buffer).
    pub normalized: bool,
}

/// The buffers clamscan would match for a file of type `ft` (no archive or
/// document decoding: that is the decoder's job). The first view is always the
/// raw file. Bounded memory: at most one normalised copy per view.
pub fn views(data: &[u8], ft: FileType) -> Vec<View<'_>> {
    let mut targets = TargetMask::of(0);
    if let Some(t) = target_of(ft) {
        targets = targets.with(t);
    }
    vec![View { data: Cow::Borrowed(data), targets, normalized: false }]
}
