//! Random-input robustness: any bytes as a database, container or scanned buffer
//! must load, compile and scan without panicking. (The `fuzz/` targets explore the
//! same properties with coverage guidance; this runs on every `cargo test`.)

use mxguard_sigs::{Database, DbKind, MatchOptions, Scratch, SignatureSet};
use std::path::Path;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize, alphabet: Option<&[u8]>) -> Vec<u8> {
        (0..n)
            .map(|_| match alphabet {
                Some(a) => a[self.below(a.len())],
                None => self.next() as u8,
            })
            .collect()
    }
}

const KINDS: &[(DbKind, &[u8])] = &[
    (DbKind::Hdb, b"0123456789abcdef:*\n4"),
    (DbKind::Hsb, b"0123456789abcdef:*\n"),
    (DbKind::Fp, b"0123456789abcdef:*\n"),
    (
        DbKind::Ndb,
        b"0123456789abcdef??*{}-[]()|!BLW:,EOFPS+\nSig.1",
    ),
    (
        DbKind::Ldb,
        b"0123456789abcdef??*{}-[]()|!BLW:;,&|<>=EngineTarget\n:iwaf",
    ),
    (DbKind::Ign2, b"Sig.:0123456789abcdef\n"),
];

#[test]
fn random_databases_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ran = 0;
    for round in 0..400 {
        let mut db = Database::new();
        for (kind, alphabet) in KINDS {
            let n = rng.below(400);
            let narrowed = round % 2 == 0;
            let mut text = rng.bytes(n, if narrowed { Some(alphabet) } else { None });
            // Give some lines a plausible shape so parsing goes deep.
            if narrowed && *kind == DbKind::Ndb {
                text.splice(0..0, b"Sig.A:0:*:".iter().copied());
            }
            if narrowed && *kind == DbKind::Ldb {
                text.splice(0..0, b"Sig.L;Engine:81-255,Target:0;0&1;".iter().copied());
            }
            db.load_text(Path::new("random"), *kind, &text);
            ran += 1;
        }
        let set = SignatureSet::compile(db);
        let mut sc = Scratch::default();
        for _ in 0..4 {
            let n = rng.below(3000);
            let data = rng.bytes(
                n,
                if round % 3 == 0 {
                    Some(b"ABCDEFabcdef\0 \r\n<>")
                } else {
                    None
                },
            );
            let _ = set.scan(
                &data,
                MatchOptions {
                    all_match: true,
                    container: None,
                },
                &mut sc,
            );
        }
    }
    assert!(ran >= 2400);
}

#[test]
fn random_containers_never_panic() {
    let mut rng = Rng(12345);
    for i in 0..300 {
        let n = rng.below(2048);
        let mut data = rng.bytes(n, None);
        if i % 2 == 0 {
            let hdr = b"ClamAV-VDB:01 Jan 2026 00-00 +0000:1:2:216:00000000000000000000000000000000:x:builder:0";
            let mut h = hdr.to_vec();
            h.resize(512, b' ');
            data.splice(0..0, h);
        }
        let mut db = Database::new();
        db.load_container(Path::new("random.cvd"), &data, i % 3 == 0);
        let _ = SignatureSet::compile(db);
    }
}
