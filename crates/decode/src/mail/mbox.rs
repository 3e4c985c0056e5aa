//! mbox: messages separated by lines beginning `From `.

use crate::{ChildMeta, Extractor, Flow};

/// Hands over each message of an mbox (`msg[1]`, `msg[2]`, ...), without its
/// `From ` line. Text before the first `From ` line, if not blank, is a
/// message too. Linear; never panics.
pub(crate) fn extract_mbox(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    // Start of each `From ` line.
    let mut n = 0u32;
    let mut from_line = if data.starts_with(b"From ") {
        Some(0)
    } else {
        memchr::memmem::find(data, b"\nFrom ").map(|i| i + 1)
    };
    // Text before the first separator.
    let first = from_line.unwrap_or(data.len());
    if first > 0 && !data[..first].trim_ascii().is_empty() {
        n += 1;
        if ex.child(
            ChildMeta {
                kind: Some(crate::Kind::Mail),
                ..ChildMeta::at(format!("msg[{n}]"))
            },
            &data[..first],
        ) == Flow::Stop
        {
            return;
        }
    }
    while let Some(at) = from_line {
        let body_start = match memchr::memchr(b'\n', data.get(at..).unwrap_or_default()) {
            Some(i) => at + i + 1,
            None => data.len(),
        };
        let next = memchr::memmem::find(data.get(body_start..).unwrap_or_default(), b"\nFrom ")
            .map(|i| body_start + i + 1);
        let end = next.unwrap_or(data.len());
        let msg = data.get(body_start..end).unwrap_or_default();
        n += 1;
        if ex.child(
            ChildMeta {
                kind: Some(crate::Kind::Mail),
                ..ChildMeta::at(format!("msg[{n}]"))
            },
            msg,
        ) == Flow::Stop
            || ex.done()
        {
            return;
        }
        from_line = next;
    }
}
