//! Text normalisation as ClamAV performs it for target 7 (`cli_scanscript`,
//! `textnorm.c`).
//!
//! Every text file (ASCII, UTF-8 and UTF-16 alike) that is not handled as
//! HTML is matched a second time after this normalisation, by target 7
//! (ASCII) *and* target 0 signatures. Byte by byte:
//!
//! * `A`..`Z` become lowercase;
//! * whitespace (`\t \n \v \f \r` and space) becomes one space, and a run of
//!   whitespace collapses to a single space (the run is not trimmed at the
//!   start or end of the file);
//! * other control bytes (0x00..0x1f) and every byte ≥ 0x80 are dropped
//!   (so UTF-16 text loses its NUL bytes and non-ASCII letters vanish; a
//!   dropped byte does not end a whitespace run);
//! * everything else (0x21..0x7f, including DEL) is copied.
//!
//! # Known difference
//!
//! ClamAV normalises in windows of 128 KiB plus the longest signature of the
//! loaded database and forgets the "previous byte was whitespace" flag at
//! each window, so a whitespace run that straddles a window boundary yields
//! two spaces there. We normalise the whole buffer at once.

/// Upper bound on files ClamAV normalises this way (`MaxScriptNormalize`).
pub const MAX_SCRIPT_NORMALIZE: usize = 20 << 20;

/// Normalises `data` as described in the module documentation. Never panics;
/// the output is at most as long as the input.
pub fn normalize(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut space_written = false;
    for &c in data {
        match c {
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => {
                if !space_written {
                    out.push(b' ');
                }
                space_written = true;
            }
            0x00..=0x1f | 0x80..=0xff => {}
            b'A'..=b'Z' => {
                out.push(c + 32);
                space_written = false;
            }
            _ => {
                out.push(c);
                space_written = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_collapses_whitespace() {
        // verified with clamscan: "Hello World this is a TEST file\nwith   some   spaces\n"
        // is matched by target 7 as "hello world this is a test file with some spaces "
        assert_eq!(
            normalize(b"Hello World this is a TEST file\nwith   some   spaces\n"),
            b"hello world this is a test file with some spaces ".to_vec()
        );
        assert_eq!(
            normalize(b"HELLO   World END\n"),
            b"hello world end ".to_vec()
        );
    }

    #[test]
    fn leading_whitespace_is_kept_as_one_space() {
        assert_eq!(normalize(b" \t\r\n x"), b" x".to_vec());
    }

    #[test]
    fn drops_controls_and_high_bytes_without_breaking_runs() {
        assert_eq!(
            normalize(b"a \x01 b\x00c\xc3\xa9d\x7f"),
            b"a bcd\x7f".to_vec()
        );
        // UTF-16LE loses its NULs
        let utf16: Vec<u8> = "Hi There"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(normalize(&utf16), b"hi there".to_vec());
    }

    #[test]
    fn empty_and_all_dropped() {
        assert!(normalize(b"").is_empty());
        assert!(normalize(b"\x00\x01\xff").is_empty());
    }
}
