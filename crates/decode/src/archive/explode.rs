//! PKWARE "implode" (zip method 6) decompression.
use std::io::Write;

/// Decompresses an imploded member into `out` (stops when `out` refuses).
pub(crate) fn explode(
    _data: &[u8],
    _flags: u16,
    _size: u64,
    _out: &mut dyn Write,
) -> Result<(), String> {
    Err("implode not implemented".into())
}
