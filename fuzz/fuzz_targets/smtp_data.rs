//! The DATA receiver never panics, keeps within its size limit, and never
//! consumes more than it was given, however the input is split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_smtp::proto::{DataReceiver, Feed};

fuzz_target!(|data: &[u8]| {
    let split = data.first().copied().unwrap_or(1).max(1) as usize;
    let mut r = DataReceiver::new(4096);
    let mut out = Vec::new();
    for chunk in data.chunks(split) {
        match r.feed(chunk, &mut out) {
            Feed::More => {}
            Feed::Done { consumed } => {
                assert!(consumed <= chunk.len());
                break;
            }
        }
    }
    assert!(out.len() <= 4096);
});
