//! Matcher throughput on a synthetic database (criterion). Each benchmark also
//! asserts the number of detections, so a fast-but-wrong change cannot pass.
//!
//! `cargo bench -p mxguard-sigs` ; the end-to-end comparison against clamscan and
//! clamd lives in `bench/` at the repository root.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mxguard_sigs::{Database, DbKind, MatchOptions, Scratch, SignatureSet};
use std::fmt::Write;
use std::path::Path;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` body signatures of 12-40 random bytes, some with `??` and `*`; returns the
/// database and the literal bytes of the first `planted` signatures (no wildcards).
fn build(n: usize, planted: usize) -> (SignatureSet, Vec<Vec<u8>>) {
    let mut rng = Rng(42);
    let mut text = String::new();
    let mut plants = Vec::new();
    for i in 0..n {
        let len = 12 + (rng.next() % 29) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut hex = String::new();
        for (k, b) in bytes.iter().enumerate() {
            if i >= planted && k > 4 && rng.next() % 20 == 0 {
                hex.push_str("??");
            } else {
                write!(hex, "{b:02x}").unwrap();
            }
            if i >= planted && k == len / 2 && rng.next() % 5 == 0 {
                hex.push('*');
            }
        }
        writeln!(text, "Bench.Sig-{i}:0:*:{hex}").unwrap();
        if i < planted {
            plants.push(bytes);
        }
    }
    let mut db = Database::new();
    db.load_text(Path::new("bench.ndb"), DbKind::Ndb, text.as_bytes());
    assert!(db.report.problems.is_empty());
    (SignatureSet::compile(db), plants)
}

fn bench(c: &mut Criterion) {
    let (set, plants) = build(100_000, 10);
    let mut rng = Rng(7);
    let mut data: Vec<u8> = (0..(16 << 20)).map(|_| rng.next() as u8).collect();
    for (i, p) in plants.iter().enumerate() {
        let at = (i + 1) * (data.len() / 12);
        data[at..at + p.len()].copy_from_slice(p);
    }
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("100k_body_sigs_16MiB_random", |b| {
        let mut sc = Scratch::default();
        b.iter(|| {
            let hits = set.scan(
                &data,
                MatchOptions {
                    all_match: true,
                    container: None,
                },
                &mut sc,
            );
            assert_eq!(hits.len(), plants.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
