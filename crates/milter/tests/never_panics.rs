//! The `milter_codec` fuzz target's properties on every `cargo test`:
//! random frames (valid lengths, real command bytes, data rich in NULs)
//! split at random points never panic the decoder, and whatever decodes
//! re-encodes to the same command.

use mxguard_milter::codec::{Command, FrameDecoder, Response};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CODES: &[u8] = b"ABCDEHKLMNOQRTUz+-2abcdefhilmpqrsty";
const ALPHABET: &[u8] = b"\0\0\0<>@.:= aZ9\r\n\t%U46L\xff";

#[test]
fn random_frames_never_panic_and_roundtrip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for _ in 0..30_000 {
        let mut stream = Vec::new();
        for _ in 0..rng.below(4) + 1 {
            let code = CODES[rng.below(CODES.len() as u64) as usize];
            let n = rng.below(48) as usize;
            let data: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.below(3) == 0 {
                        rng.next() as u8
                    } else {
                        ALPHABET[rng.below(ALPHABET.len() as u64) as usize]
                    }
                })
                .collect();
            let len = if rng.below(50) == 0 {
                rng.next() as u32
            } else {
                data.len() as u32 + 1
            };
            stream.extend_from_slice(&len.to_be_bytes());
            stream.push(code);
            stream.extend_from_slice(&data);
        }
        let split = rng.below(16) as usize + 1;
        let mut d = FrameDecoder::new(4096);
        'outer: for chunk in stream.chunks(split) {
            d.feed(chunk);
            assert!(d.buffered() <= 4096 + 4 + split);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => {
                        if let Ok(c) = Command::decode(f.command, &f.data) {
                            decoded += 1;
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
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }
    // The generator must reach the decoders, or this test proves nothing.
    assert!(decoded > 5_000, "only {decoded} commands decoded");
}
