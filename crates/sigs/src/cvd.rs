//! ClamAV `.cvd` / `.cld` containers: a 512-byte text header followed by a
//! tar archive (gzip-compressed in `.cvd`, either compressed or plain in `.cld`).
//!
//! TODO(cvd agent): implement.

use thiserror::Error;

/// The 512-byte header: `ClamAV-VDB:build time:version:sigs:flevel:md5:dsig:builder:stime`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CvdHeader {
    pub build_time: String,
    pub version: u32,
    pub signatures: u32,
    pub flevel: u32,
    /// MD5 of everything after the header, lowercase hex.
    pub md5: String,
    pub dsig: String,
    pub builder: String,
    /// Build time in seconds since the epoch.
    pub stime: u64,
}

/// A container's header and its member files (name, bytes), in archive order.
#[derive(Debug, Clone, Default)]
pub struct Container {
    pub header: CvdHeader,
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CvdError {
    #[error("not a ClamAV database container (bad header)")]
    BadHeader,
    #[error("header field {0} is invalid")]
    BadField(&'static str),
    #[error("MD5 of the body does not match the header")]
    Md5Mismatch,
    #[error("archive is corrupt: {0}")]
    Corrupt(String),
    #[error("archive exceeds the limit of {0} bytes unpacked")]
    TooLarge(u64),
}

/// Largest total unpacked size accepted from one container (protects the loader).
pub const MAX_UNPACKED: u64 = 2 << 30;

/// Parses the header only. Never panics.
pub fn parse_header(data: &[u8]) -> Result<CvdHeader, CvdError> {
    let _ = data;
    Err(CvdError::BadHeader)
}

/// Parses and unpacks a container. `verify_md5` checks the header's MD5 over the body
/// (`.cvd`; `.cld` files rewritten by freshclam may carry a stale one). Never panics;
/// memory bounded by [`MAX_UNPACKED`].
pub fn read(data: &[u8], verify_md5: bool) -> Result<Container, CvdError> {
    let _ = (data, verify_md5);
    Err(CvdError::BadHeader)
}
