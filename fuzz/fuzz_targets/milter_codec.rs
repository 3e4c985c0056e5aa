//! The milter codec never panics, never buffers more than one frame past
//! its limit, and whatever decodes re-encodes to the same command or
//! response, however the input is split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_milter::codec::{Command, FrameDecoder, Response};

const LIMIT: usize = 70_000;

fuzz_target!(|data: &[u8]| {
    let split = data.first().copied().unwrap_or(1).max(1) as usize;
    let mut d = FrameDecoder::new(LIMIT);
    'outer: for chunk in data.chunks(split) {
        d.feed(chunk);
        assert!(d.buffered() <= LIMIT + 4 + split);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(f.data.len() < LIMIT);
                    if let Ok(c) = Command::decode(f.command, &f.data) {
                        let mut out = Vec::new();
                        c.encode(&mut out);
                        let mut d2 = FrameDecoder::new(usize::MAX);
                        d2.feed(&out);
                        let f2 = d2.next_frame().unwrap().unwrap();
                        assert_eq!(Command::decode(f2.command, &f2.data).unwrap(), c);
                    }
                    if let Ok(r) = Response::decode(f.command, &f.data) {
                        let mut out = Vec::new();
                        r.encode(&mut out);
                        assert!(!out.is_empty());
                    }
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
});
