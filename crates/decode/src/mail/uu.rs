//! uuencode: `begin <mode> <name>` ... `end` blocks in any text.

use crate::codec::{uu_line, Lines};
use crate::{ChildMeta, Extractor, Flow};

/// A decoded block.
pub(crate) struct Block {
    pub name: Option<String>,
    pub data: Vec<u8>,
}

/// `begin <3-4 octal digits> <name>`: the name (may be empty).
fn parse_begin(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"begin ")?;
    let digits = rest
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(b))
        .count();
    if !(3..=4).contains(&digits) || rest.get(digits) != Some(&b' ') {
        return None;
    }
    let name = rest.get(digits + 1..).unwrap_or_default().trim_ascii();
    Some(crate::codec::decode_unknown(name))
}

/// Decodes uu lines from `from` until `end`, a zero-length line, or a line
/// that is not uu data (a missing `end` is tolerated).
fn decode_lines(data: &[u8], from: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut next_pos = data.len();
    for (s, e, next) in Lines::new(data, from) {
        let line = data.get(s..e).unwrap_or_default();
        if line.trim_ascii() == b"end" {
            next_pos = next;
            break;
        }
        match uu_line(line, &mut out) {
            Some(0) | None => {
                next_pos = next;
                break;
            }
            Some(_) => {}
        }
    }
    (out, next_pos)
}

/// The first block of a part sent with `Content-Transfer-Encoding: x-uuencode`:
/// after a `begin` line if there is one, else from the first line.
pub(crate) fn first_block(body: &[u8]) -> Block {
    for (s, e, next) in Lines::new(body, 0) {
        if let Some(name) = parse_begin(body.get(s..e).unwrap_or_default()) {
            let (data, _) = decode_lines(body, next);
            return Block {
                name: Some(name).filter(|n| !n.is_empty()),
                data,
            };
        }
    }
    let (data, _) = decode_lines(body, 0);
    Block { name: None, data }
}

/// Hands over every uuencoded block in `data` (named by its `begin` line, or
/// `uu[N]` when it has no name). Linear; never panics.
pub(crate) fn extract_uuencode(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let mut pos = 0;
    let mut n = 0u32;
    while pos < data.len() {
        let mut found = None;
        for (s, e, next) in Lines::new(data, pos) {
            if let Some(name) = parse_begin(data.get(s..e).unwrap_or_default()) {
                found = Some((name, next));
                break;
            }
        }
        let Some((name, from)) = found else { return };
        let (bytes, next) = decode_lines(data, from);
        pos = next.max(from);
        n += 1;
        let meta = if name.is_empty() {
            ChildMeta::at(format!("uu[{n}]"))
        } else {
            ChildMeta::named(name)
        };
        if ex.child_owned(meta, bytes) == Flow::Stop || ex.done() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_lines() {
        assert_eq!(
            parse_begin(b"begin 644 a b.exe").as_deref(),
            Some("a b.exe")
        );
        assert_eq!(parse_begin(b"begin 0755 x"), Some("x".into()));
        assert_eq!(parse_begin(b"begin 64 x"), None);
        assert_eq!(parse_begin(b"beginning 644 x"), None);
    }

    #[test]
    fn block_tolerates_missing_end_crlf_and_backquote() {
        let d = b"begin 644 a.txt\r\n#86)C\r\n`\r\n";
        let b = first_block(d);
        assert_eq!(b.data, b"abc");
        assert_eq!(b.name.as_deref(), Some("a.txt"));
        let d = b"begin 644 a.txt\n#86)C\n"; // no end at all
        assert_eq!(first_block(d).data, b"abc");
        let d = b"begin 644 a.txt\n#86)C\n \nend\n"; // space as zero char
        assert_eq!(first_block(d).data, b"abc");
        let d = b"#86)C\nend\n"; // no begin line
        assert_eq!(first_block(d).data, b"abc");
    }
}
