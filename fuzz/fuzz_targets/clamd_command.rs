//! clamd command framing and parsing, and INSTREAM chunk decoding, never
//! panic; a request never consumes more than it was given; stream data never
//! exceeds the limit, however the input is split.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_clamd::proto::{next_request, Frame, InstreamDecoder};

const LIMIT: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    // Commands one after the other, as a session reads them.
    let mut rest = data;
    while let Frame::Request { consumed, .. } = next_request(rest) {
        assert!(consumed > 0 && consumed <= rest.len());
        rest = &rest[consumed..];
    }
    // The same bytes as a stream, in two pieces split by the first byte.
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut d = InstreamDecoder::new(LIMIT);
    let mut out = Vec::new();
    if let Ok(f) = d.feed(&data[..split], &mut out) {
        assert!(f.consumed <= split);
        if !f.done {
            if let Ok(g) = d.feed(&data[split..], &mut out) {
                assert!(g.consumed <= data.len() - split);
            }
        }
    }
    assert!(out.len() as u64 <= LIMIT);
});
