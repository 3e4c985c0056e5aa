//! ClamAV `.cvd` / `.cld` containers: a 512-byte text header followed by a
//! tar archive (gzip-compressed in `.cvd`, either compressed or plain in `.cld`).
//!
//! The header is one line, space padded to 512 bytes:
//! `ClamAV-VDB:build time:version:signatures:functionality level:MD5:digital
//! signature:builder:build time in seconds` (the last field is missing in
//! very old files and then reads as 0). The MD5 covers everything after the
//! header. The digital signature (RSA over the MD5, by Cisco's key) is kept
//! but not verified here.
//!
//! The body is read like ClamAV's `cli_tgzload`/`cli_untgz`: 512-byte tar
//! blocks, regular files only (type `0` or NUL; directories and every other
//! type are rejected), names without path separators, sizes in octal, the
//! archive ending at an all-NUL name block or at the end of the data. The tar
//! checksum and magic are not checked (ClamAV does not either). Whether the
//! body is gzip-compressed is decided by the gzip magic bytes (ClamAV looks
//! for an uncompressed tar whose first member is `COPYING`; both agree on
//! real files).
//!
//! Guarantees: no function here panics on any input, and unpacking never
//! holds more than [`MAX_UNPACKED`] bytes of member data (a member's size is
//! checked against the remaining budget before anything is allocated for it).

use md5::{Digest, Md5};
use std::io::Read;
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

/// Size of the text header.
pub const HEADER_LEN: usize = 512;

const TAR_BLOCK: usize = 512;

/// Parses the header only (the first 512 bytes of `data`, which must be
/// there). Never panics.
pub fn parse_header(data: &[u8]) -> Result<CvdHeader, CvdError> {
    let head = data.get(..HEADER_LEN).ok_or(CvdError::BadHeader)?;
    // one line: stop at the first line break or NUL, drop the space padding
    let end = head
        .iter()
        .position(|&b| matches!(b, b'\n' | b'\r' | 0))
        .unwrap_or(head.len());
    let line = String::from_utf8_lossy(&head[..end]);
    let line = line.trim_end_matches(' ');
    if !line.starts_with("ClamAV-VDB:") {
        return Err(CvdError::BadHeader);
    }
    // ClamAV's field splitter treats a run of ':' as one separator
    let fields: Vec<&str> = line.split(':').filter(|f| !f.is_empty()).collect();
    let field =
        |i: usize, name: &'static str| fields.get(i).copied().ok_or(CvdError::BadField(name));
    let number = |i: usize, name: &'static str| -> Result<u32, CvdError> {
        field(i, name)?
            .trim()
            .parse()
            .map_err(|_| CvdError::BadField(name))
    };
    let build_time = field(1, "build time")?.to_string();
    let version = number(2, "version")?;
    let signatures = number(3, "signatures")?;
    let flevel = number(4, "flevel")?;
    let md5 = field(5, "md5")?;
    if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CvdError::BadField("md5"));
    }
    let dsig = field(6, "dsig")?.to_string();
    let builder = field(7, "builder")?.to_string();
    let stime = match fields.get(8) {
        None => 0,
        Some(s) => s.trim().parse().map_err(|_| CvdError::BadField("stime"))?,
    };
    Ok(CvdHeader {
        build_time,
        version,
        signatures,
        flevel,
        md5: md5.to_ascii_lowercase(),
        dsig,
        builder,
        stime,
    })
}

/// Parses and unpacks a container. `verify_md5` checks the header's MD5 over the body
/// (`.cvd`; `.cld` files rewritten by freshclam may carry a stale one). Never panics;
/// memory bounded by [`MAX_UNPACKED`].
pub fn read(data: &[u8], verify_md5: bool) -> Result<Container, CvdError> {
    let header = parse_header(data)?;
    let body = &data[HEADER_LEN..];
    if verify_md5 {
        let digest = Md5::digest(body);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if hex != header.md5 {
            return Err(CvdError::Md5Mismatch);
        }
    }
    let files = if body.starts_with(&[0x1f, 0x8b]) {
        read_tar(flate2::read::MultiGzDecoder::new(body))?
    } else {
        read_tar(body)?
    };
    Ok(Container { header, files })
}

/// Reads as many bytes as possible into `buf`; the count read (short only at
/// the end of the stream).
fn fill(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, CvdError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CvdError::Corrupt(format!("decompression failed: {e}"))),
        }
    }
    Ok(got)
}

/// ClamAV's `sscanf("%o")` on the tar size field: leading whitespace, then at
/// least one octal digit.
fn tar_size(field: &[u8]) -> Option<u64> {
    let field = field.split(|&b| b == 0).next().unwrap_or(&[]);
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

fn read_tar(mut r: impl Read) -> Result<Vec<(String, Vec<u8>)>, CvdError> {
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let mut block = [0u8; TAR_BLOCK];
    loop {
        let got = fill(&mut r, &mut block)?;
        if got == 0 {
            break;
        }
        if got != TAR_BLOCK {
            return Err(CvdError::Corrupt("incomplete tar block".into()));
        }
        if block[0] == 0 {
            break; // end-of-archive marker
        }
        let name_field = &block[..100];
        let name_len = name_field.iter().position(|&b| b == 0).unwrap_or(100);
        let name = std::str::from_utf8(&name_field[..name_len])
            .map_err(|_| CvdError::Corrupt("member name is not UTF-8".into()))?;
        if name.contains(['/', '\\']) {
            return Err(CvdError::Corrupt(format!(
                "path separator in member name {name:?}"
            )));
        }
        match block[156] {
            b'0' | 0 => {}
            b'5' => return Err(CvdError::Corrupt(format!("directory member {name:?}"))),
            t => {
                return Err(CvdError::Corrupt(format!(
                    "member {name:?} has unsupported type {:?}",
                    t as char
                )))
            }
        }
        let size = tar_size(&block[124..136])
            .ok_or_else(|| CvdError::Corrupt(format!("bad size for {name:?}")))?;
        total = total
            .checked_add(size)
            .ok_or(CvdError::TooLarge(MAX_UNPACKED))?;
        if total > MAX_UNPACKED {
            return Err(CvdError::TooLarge(MAX_UNPACKED));
        }
        // grow as data actually arrives: a lying size field cannot make us allocate
        let mut content = Vec::with_capacity(size.min(1 << 20) as usize);
        let got = (&mut r)
            .take(size)
            .read_to_end(&mut content)
            .map_err(|e| CvdError::Corrupt(format!("decompression failed: {e}")))?;
        if got as u64 != size {
            return Err(CvdError::Corrupt(format!("member {name:?} is truncated")));
        }
        let pad = (TAR_BLOCK as u64 - size % TAR_BLOCK as u64) % TAR_BLOCK as u64;
        let mut padding = [0u8; TAR_BLOCK];
        let got = fill(&mut r, &mut padding[..pad as usize])?;
        if got as u64 != pad {
            return Err(CvdError::Corrupt(format!("member {name:?} is truncated")));
        }
        files.push((name.to_string(), content));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn tar_header(name: &str, size: usize, kind: u8) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn tar(members: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut t = Vec::new();
        for (name, data, kind) in members {
            t.extend_from_slice(&tar_header(name, data.len(), *kind));
            t.extend_from_slice(data);
            t.resize(t.len().div_ceil(512) * 512, 0);
        }
        t.extend_from_slice(&[0u8; 1024]);
        t
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn container(body: &[u8], md5: Option<&str>) -> Vec<u8> {
        let sum: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let head = format!(
            "ClamAV-VDB:22 Jun 2021 14-58 -0400:27000:4567:90:{}:AbCdSig:builder:1624388302",
            md5.unwrap_or(&sum)
        );
        let mut out = head.into_bytes();
        out.resize(512, b' ');
        out.extend_from_slice(body);
        out
    }

    const COPYING: &[u8] = b"ClamAV database\n";
    const NDB: &[u8] = b"Sig.A:0:*:414243\nSig.B:7:*:6162\n";

    #[test]
    fn reads_compressed_container() {
        let body = gzip(&tar(&[("COPYING", COPYING, b'0'), ("main.ndb", NDB, 0)]));
        let c = read(&container(&body, None), true).unwrap();
        assert_eq!(
            c.header,
            CvdHeader {
                build_time: "22 Jun 2021 14-58 -0400".into(),
                version: 27000,
                signatures: 4567,
                flevel: 90,
                md5: c.header.md5.clone(),
                dsig: "AbCdSig".into(),
                builder: "builder".into(),
                stime: 1624388302,
            }
        );
        assert_eq!(c.header.md5.len(), 32);
        assert_eq!(
            c.files,
            vec![
                ("COPYING".to_string(), COPYING.to_vec()),
                ("main.ndb".to_string(), NDB.to_vec())
            ]
        );
    }

    #[test]
    fn reads_plain_tar_body_and_empty_member() {
        let body = tar(&[
            ("COPYING", COPYING, b'0'),
            ("empty.ign2", b"", b'0'),
            ("x.ldb", &[7u8; 1000], b'0'),
        ]);
        let c = read(&container(&body, None), true).unwrap();
        assert_eq!(c.files.len(), 3);
        assert_eq!(c.files[1], ("empty.ign2".to_string(), Vec::new()));
        assert_eq!(c.files[2].1, vec![7u8; 1000]);
    }

    #[test]
    fn archive_may_end_without_marker() {
        let mut body = tar(&[("COPYING", COPYING, b'0')]);
        body.truncate(1024); // header + one data block, no end marker
        assert_eq!(read(&container(&body, None), true).unwrap().files.len(), 1);
    }

    #[test]
    fn md5_is_checked_only_when_asked() {
        let body = gzip(&tar(&[("COPYING", COPYING, b'0')]));
        let stale = container(&body, Some("0123456789abcdef0123456789ABCDEF"));
        assert_eq!(read(&stale, true).unwrap_err(), CvdError::Md5Mismatch);
        let c = read(&stale, false).unwrap();
        assert_eq!(c.header.md5, "0123456789abcdef0123456789abcdef");
        assert_eq!(c.files.len(), 1);
    }

    #[test]
    fn rejects_what_clamav_rejects() {
        for (name, kind) in [
            ("a/b.ndb", b'0'),
            ("a\\b.ndb", b'0'),
            ("dir", b'5'),
            ("link", b'2'),
        ] {
            let body = gzip(&tar(&[(name, b"x", kind)]));
            assert!(
                matches!(
                    read(&container(&body, None), true),
                    Err(CvdError::Corrupt(_))
                ),
                "{name}"
            );
        }
        // truncated member
        let mut body = tar(&[("main.ndb", &[1u8; 3000], b'0')]);
        body.truncate(512 + 1000);
        assert!(matches!(
            read(&container(&body, None), true),
            Err(CvdError::Corrupt(_))
        ));
        // incomplete block
        let body = vec![b'a'; 700];
        assert!(matches!(
            read(&container(&body, None), true),
            Err(CvdError::Corrupt(_))
        ));
        // broken gzip
        let mut body = gzip(&tar(&[("main.ndb", NDB, b'0')]));
        let n = body.len();
        body[n / 2..].fill(0x55);
        assert!(matches!(
            read(&container(&body, None), false),
            Err(CvdError::Corrupt(_))
        ));
        // bad size field
        let mut t = tar(&[("main.ndb", NDB, b'0')]);
        t[124..136].copy_from_slice(b"zzzzzzzzzzz\0");
        assert!(matches!(
            read(&container(&t, None), true),
            Err(CvdError::Corrupt(_))
        ));
    }

    #[test]
    fn huge_declared_size_is_refused_before_allocation() {
        let mut t = tar(&[("main.ndb", b"", b'0')]);
        t[124..136].copy_from_slice(b"77777777777\0"); // 8 GiB - 1
        assert_eq!(
            read(&container(&t, None), true).unwrap_err(),
            CvdError::TooLarge(MAX_UNPACKED)
        );
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            parse_header(b"ClamAV-VDB:short").unwrap_err(),
            CvdError::BadHeader
        );
        let pad = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            v.resize(512, b' ');
            v
        };
        assert_eq!(
            parse_header(&pad("NotClamAV:1:2:3")).unwrap_err(),
            CvdError::BadHeader
        );
        assert_eq!(
            parse_header(&pad("ClamAV-VDB:t:x:3:4:md5")).unwrap_err(),
            CvdError::BadField("version")
        );
        assert_eq!(
            parse_header(&pad("ClamAV-VDB:t:1:2:3:nothex")).unwrap_err(),
            CvdError::BadField("md5")
        );
        let md5 = "a4ab60ae1c1c4e8f787459102dcfd90b";
        assert_eq!(
            parse_header(&pad(&format!("ClamAV-VDB:t:1:2:3:{md5}:sig"))).unwrap_err(),
            CvdError::BadField("builder")
        );
        // old format without seconds, with a trailing newline in the padding
        let h = parse_header(&pad(&format!(
            "ClamAV-VDB:04 Mar 2015 13-58 -0500:246:4:80:{md5}:X:clamav\n"
        )))
        .unwrap();
        assert_eq!(
            (h.version, h.signatures, h.flevel, h.stime),
            (246, 4, 80, 0)
        );
        assert_eq!((h.dsig.as_str(), h.builder.as_str()), ("X", "clamav"));
        assert_eq!(
            parse_header(&pad(&format!("ClamAV-VDB:t:1:2:3:{md5}:s:b:soon"))).unwrap_err(),
            CvdError::BadField("stime")
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let good = container(
            &gzip(&tar(&[("COPYING", COPYING, b'0'), ("main.ndb", NDB, b'0')])),
            None,
        );
        for _ in 0..300 {
            let mut d = good.clone();
            for _ in 0..(next() % 8) {
                let i = (next() as usize) % d.len();
                d[i] = next() as u8;
            }
            d.truncate((next() as usize) % (d.len() + 1));
            let _ = read(&d, next() % 2 == 0);
        }
    }

    /// A real container, when one is available: `MXGUARD_REAL_CVD=/path/x.cvd`
    /// (for instance ClamAV's `unit_tests/input/freshclam_testfiles/test-1.cvd`).
    #[test]
    fn real_container_if_available() {
        let Some(path) = std::env::var_os("MXGUARD_REAL_CVD") else {
            return;
        };
        let data = std::fs::read(path).unwrap();
        let c = read(&data, true).unwrap();
        assert!(c.header.version > 0);
        assert!(!c.files.is_empty());
    }
}
