//! Robustness on every `cargo test` (the `fuzz/` targets explore the same with
//! coverage guidance): every golden-corpus file, mutated (bit flips, byte
//! overwrites, truncation, splices), and random bytes forced through each
//! reader, must decode without panicking and within the budget.

use mxguard_decode::{DecodeBudget, DecodeOptions, Decoder, Flow, Kind, ScanObject, Visitor};
use mxguard_types::Finding;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Count {
    objects: usize,
    bytes: u64,
}
impl Visitor for Count {
    fn object(&mut self, obj: &ScanObject<'_>) -> Flow {
        self.objects += 1;
        if obj.depth > 0 {
            self.bytes += obj.data.len() as u64;
        }
        Flow::Continue
    }
    fn finding(&mut self, _f: Finding) -> Flow {
        Flow::Continue
    }
}

fn budget() -> DecodeBudget {
    DecodeBudget {
        max_depth: 8,
        max_objects: 500,
        max_object_size: 4 << 20,
        max_total_size: 16 << 20,
        max_time: Duration::from_secs(10),
        ..Default::default()
    }
}

fn run(dec: &Decoder, kind: Option<Kind>, data: &[u8]) {
    let mut c = Count {
        objects: 0,
        bytes: 0,
    };
    let s = match kind {
        Some(k) => dec.walk_as(k, data, &mut c),
        None => dec.walk(data, Some("x.bin"), &mut c),
    };
    let b = budget();
    assert!(c.objects <= b.max_objects, "{} objects", c.objects);
    assert!(c.bytes <= b.max_total_size, "{} bytes", c.bytes);
    assert_eq!(s.objects, c.objects);
}

const KINDS: [Kind; 20] = [
    Kind::Rar,
    Kind::Iso,
    Kind::Mail,
    Kind::Mbox,
    Kind::Uuencode,
    Kind::BinHex,
    Kind::Tnef,
    Kind::Zip,
    Kind::Gzip,
    Kind::Bzip2,
    Kind::Xz,
    Kind::Tar,
    Kind::SevenZ,
    Kind::Cpio,
    Kind::Cab,
    Kind::Szdd,
    Kind::Ole2,
    Kind::Pdf,
    Kind::Rtf,
    Kind::Html,
];

fn corpus(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            corpus(&p, out);
        } else if p.extension().is_none_or(|e| e != "expect" && e != "py") {
            out.push(p);
        }
    }
}

#[test]
fn mutated_corpus_files_never_panic() {
    let dec = Decoder::new(DecodeOptions {
        budget: budget(),
        text: true,
        ..Default::default()
    });
    let mut files = Vec::new();
    corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"),
        &mut files,
    );
    files.sort();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut runs = 0;
    for f in &files {
        let orig = std::fs::read(f).unwrap();
        if orig.len() > 256 << 10 {
            continue;
        }
        run(&dec, None, &orig);
        for _ in 0..24 {
            let mut d = orig.clone();
            match rng.below(4) {
                0 => {
                    for _ in 0..1 + rng.below(8) {
                        let i = rng.below(d.len());
                        if let Some(b) = d.get_mut(i) {
                            *b ^= 1 << rng.below(8);
                        }
                    }
                }
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(d.len());
                        if let Some(b) = d.get_mut(i) {
                            *b = [0, 0xff, 0x7f, 0x80, b'<', b'=', b'\n'][rng.below(7)];
                        }
                    }
                }
                2 => d.truncate(rng.below(d.len())),
                _ => {
                    let a = rng.below(d.len());
                    let b = rng.below(d.len());
                    let chunk: Vec<u8> = d[a.min(b)..a.max(b)].to_vec();
                    let at = rng.below(d.len());
                    d.splice(at..at, chunk);
                }
            }
            run(&dec, None, &d);
            runs += 1;
        }
    }
    assert!(runs > 0);
}

#[test]
fn random_bytes_through_every_reader_never_panic() {
    let dec = Decoder::new(DecodeOptions {
        budget: budget(),
        text: true,
        ..Default::default()
    });
    let mut rng = Rng(0xDEAD_BEEF_1234_5678);
    for k in KINDS {
        for n in [0usize, 1, 2, 3, 7, 16, 64, 512, 4096] {
            for _ in 0..8 {
                let d: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                run(&dec, Some(k), &d);
            }
        }
    }
}
