//! True file type from magic bytes (never from names), the way ClamAV's
//! built-in file type table classifies a file before matching.
//!
//! TODO(filetype agent): implement.

/// A file's true type as far as signature targeting is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// Anything not recognised (ClamAV's CL_TYPE_BINARY_DATA).
    Binary,
    /// Plain text (ASCII or UTF-8/16), ClamAV's CL_TYPE_TEXT_*.
    Text,
    Html,
    Mail,
    Pe,
    Elf,
    MachO,
    Ole2,
    Pdf,
    Graphics,
    Flash,
    Java,
}

/// Classifies `data` by magic bytes. Never panics, looks at a bounded prefix.
pub fn detect(data: &[u8]) -> FileType {
    let _ = data;
    FileType::Binary
}
