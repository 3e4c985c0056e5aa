//! The delivery client's reply parser never panics, never consumes more than
//! it was given, and keeps replies within its size limit, however the next
//! hop's bytes are split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_smtp::client::{ReplyParser, MAX_REPLY_LEN};

fuzz_target!(|data: &[u8]| {
    let split = data.first().copied().unwrap_or(1).max(1) as usize;
    let mut p = ReplyParser::new();
    for chunk in data.chunks(split) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match p.feed(rest) {
                Ok((reply, used)) => {
                    assert!(used <= rest.len());
                    if let Some(r) = reply {
                        assert!(r.lines.iter().map(|l| l.len()).sum::<usize>() <= MAX_REPLY_LEN);
                    }
                    if used == 0 {
                        break;
                    }
                    rest = &rest[used..];
                }
                Err(_) => return,
            }
        }
    }
});
