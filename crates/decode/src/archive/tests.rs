//! Checks against Debian's clamav-testfiles (CI installs the package): each
//! must yield, through nested readers, an object whose bytes equal `clam.exe`.
use crate::{Decoder, Flow, ScanObject, Visitor};
use mxguard_types::Finding;

const DIR: &str = "/usr/share/clamav-testfiles";

struct Find<'a> {
    want: &'a [u8],
    hit: Option<String>,
    findings: Vec<String>,
}

impl Visitor for Find<'_> {
    fn object(&mut self, obj: &ScanObject<'_>) -> Flow {
        if obj.depth > 0 && obj.data.as_ref() == self.want && self.hit.is_none() {
            self.hit = Some(obj.location.clone());
        }
        Flow::Continue
    }
    fn finding(&mut self, f: Finding) -> Flow {
        self.findings
            .push(format!("{} at {}: {}", f.name, f.location, f.detail));
        Flow::Continue
    }
}

#[test]
fn clamav_testfiles_yield_clam_exe() {
    let exe = std::fs::read(format!("{DIR}/clam.exe"))
        .expect("clamav-testfiles missing: apt-get install clamav-testfiles");
    let files = [
        "clam.zip",
        "clam.bz2.zip",
        "clam.d64.zip",
        "clam.impl.zip",
        "clam.7z",
        "clam.tar.gz",
        "clam.exe.bz2",
        "clam.bin-be.cpio",
        "clam.bin-le.cpio",
        "clam.newc.cpio",
        "clam.odc.cpio",
        "clam.cab",
        "clam.exe.szdd",
        "clam_cache_emax.tgz",
    ];
    let mut bad = Vec::new();
    for f in files {
        let data = std::fs::read(format!("{DIR}/{f}")).unwrap_or_else(|e| panic!("{f}: {e}"));
        let mut v = Find {
            want: &exe,
            hit: None,
            findings: Vec::new(),
        };
        Decoder::default().walk(&data, Some(f), &mut v);
        match v.hit {
            Some(loc) => eprintln!("{f}: clam.exe at {loc}"),
            None => bad.push(format!("{f}: no clam.exe; findings {:?}", v.findings)),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Every corpus archive, truncated at many points and with bytes flipped,
/// through every archive reader: no panic, and the walk ends.
#[test]
fn garbled_archives_do_not_panic() {
    use crate::Kind;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut inputs = Vec::new();
    for sub in ["archives"] {
        let Ok(rd) = std::fs::read_dir(format!("{root}/{sub}")) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "expect")
                || p.metadata().map(|m| m.len() > 8192).unwrap_or(true)
            {
                continue;
            }
            inputs.push(std::fs::read(&p).unwrap());
        }
    }
    for f in [
        "clam.zip",
        "clam.7z",
        "clam.cab",
        "clam.exe.szdd",
        "clam.newc.cpio",
        "clam.impl.zip",
    ] {
        if let Ok(d) = std::fs::read(format!("{DIR}/{f}")) {
            inputs.push(d);
        }
    }
    let kinds = [
        Kind::Zip,
        Kind::Gzip,
        Kind::Bzip2,
        Kind::Xz,
        Kind::Tar,
        Kind::SevenZ,
        Kind::Cpio,
        Kind::Cab,
        Kind::Szdd,
    ];
    let mut opts = crate::DecodeOptions::default();
    opts.budget.max_total_size = 4 << 20;
    let dec = Decoder::new(opts);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for data in &inputs {
        let mut variants: Vec<Vec<u8>> = Vec::new();
        let step = (data.len() / 24).max(1);
        for cut in (0..data.len()).step_by(step) {
            variants.push(data[..cut].to_vec());
        }
        // MXGUARD_GARBLE_ROUNDS=2000 for a longer run.
        let rounds: usize = std::env::var("MXGUARD_GARBLE_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(24);
        for _ in 0..rounds {
            let mut v = data.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if !v.is_empty() {
                    let i = (seed as usize) % v.len();
                    v[i] = (seed >> 32) as u8;
                }
            }
            variants.push(v);
        }
        for v in &variants {
            for k in kinds {
                let mut sink = Find {
                    want: &[],
                    hit: None,
                    findings: Vec::new(),
                };
                dec.walk_as(k, v, &mut sink);
            }
        }
    }
}

fn walk_as(kind: crate::Kind, data: &[u8]) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    struct All(Vec<(String, Vec<u8>)>, Vec<String>);
    impl Visitor for All {
        fn object(&mut self, o: &ScanObject<'_>) -> Flow {
            self.0.push((o.location.clone(), o.data.to_vec()));
            Flow::Continue
        }
        fn finding(&mut self, f: Finding) -> Flow {
            self.1
                .push(format!("{} at {}: {}", f.name, f.location, f.detail));
            Flow::Continue
        }
    }
    let mut a = All(Vec::new(), Vec::new());
    Decoder::default().walk_as(kind, data, &mut a);
    (a.0, a.1)
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A self-extractor: the zip after a stub; offsets in the directory are
/// relative to the zip's own start.
#[test]
fn zip_with_prepended_stub() {
    let zip = corpus("archives/arc-methods.zip");
    let mut sfx = b"MZ".to_vec();
    sfx.resize(4096, 0x90);
    sfx.extend_from_slice(&zip);
    let (objs, findings) = walk_as(crate::Kind::Zip, &sfx);
    assert!(findings.is_empty(), "{findings:?}");
    assert!(objs
        .iter()
        .any(|(l, d)| l == "lz/l.txt" && d.starts_with(b"Hello")));
    assert_eq!(objs.len(), 5);
}

/// The 7z refusal names its reason, and the crate never saw the archive.
#[test]
fn sevenz_huge_dictionary_refused_with_reason() {
    let (objs, findings) = walk_as(crate::Kind::SevenZ, &corpus("archives/arc-huge-dict.7z"));
    assert_eq!(objs.len(), 1);
    assert!(
        findings
            .iter()
            .any(|f| f.contains("Unscannable.7z") && f.contains("dictionary")),
        "{findings:?}"
    );
}

/// Implode: the trees and both window sizes decode (clam.impl.zip covers
/// one); a truncated stream is damage, not a panic.
#[test]
fn explode_truncated_is_an_error() {
    let mut out = Vec::new();
    assert!(super::explode::explode(&[0x02, 0x11], 0x04, 100, &mut out).is_err());
    assert!(super::explode::explode(&[], 0, 100, &mut out).is_err());
}

/// szdd of a few literals and one back-reference into the initial spaces;
/// a back-reference to offset 0xff0 repeats what was written first.
#[test]
fn szdd_literals_and_window() {
    let mut r = b"SZDD\x88\xf0\x27\x33A_\x08\x00\x00\x00".to_vec();
    r.push(0b0001_1111);
    r.extend_from_slice(b"hello");
    r.extend_from_slice(&[0xf0, 0xf0]);
    let (objs, _) = walk_as(crate::Kind::Szdd, &r);
    assert_eq!(objs[1].1, b"hellohel");
    let mut d = b"SZDD\x88\xf0\x27\x33A_\x08\x00\x00\x00".to_vec();
    // control: 5 literals, then a pair (bit 5 = 0): offset 0 (still a space), length 3
    d.push(0b0001_1111);
    d.extend_from_slice(b"hello");
    d.extend_from_slice(&[0x00, 0x00]);
    let (objs, findings) = walk_as(crate::Kind::Szdd, &d);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(objs[1].1, b"hello   ");
}

/// Zero padding after a gzip or bzip2 stream (tape blocks) is not damage.
#[test]
fn trailing_zeros_are_not_damage() {
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
        e.write_all(b"hello world\n").unwrap();
        e.finish().unwrap();
    }
    gz.extend_from_slice(&[0u8; 512]);
    let (objs, findings) = walk_as(crate::Kind::Gzip, &gz);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(objs[1].1, b"hello world\n");
}

#[test]
fn concatenated_members_and_padding() {
    use std::io::Write;
    let gz = |s: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(s).unwrap();
        e.finish().unwrap()
    };
    let mut d = gz(b"one ");
    d.extend(gz(b"two"));
    d.extend_from_slice(&[0u8; 100]);
    let (objs, findings) = walk_as(crate::Kind::Gzip, &d);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(objs[1].1, b"one two");
    let bz = |s: &[u8]| {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(s).unwrap();
        e.finish().unwrap()
    };
    let mut d = bz(b"one ");
    d.extend(bz(b"two"));
    d.extend_from_slice(&[0u8; 100]);
    let (objs, findings) = walk_as(crate::Kind::Bzip2, &d);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(objs[1].1, b"one two");
    // A truncated stream is damage.
    let g = gz(b"hello hello hello");
    let (_, findings) = walk_as(crate::Kind::Gzip, &g[..g.len() - 6]);
    assert!(
        findings.iter().any(|f| f.contains("Broken.Gzip")),
        "{findings:?}"
    );
}

#[test]
fn xz_stream_and_truncation() {
    let (objs, findings) = walk_as(crate::Kind::Xz, &corpus("archives/arc-doc.txt.xz"));
    assert!(findings.is_empty(), "{findings:?}");
    assert!(objs[1].1.starts_with(b"Hello"));
    let d = corpus("archives/arc-doc.txt.xz");
    let (_, findings) = walk_as(crate::Kind::Xz, &d[..d.len() - 20]);
    assert!(
        findings.iter().any(|f| f.contains("Broken.Xz")),
        "{findings:?}"
    );
}

#[test]
fn xz_concatenated_and_padded() {
    let one = corpus("archives/arc-doc.txt.xz");
    let mut d = one.clone();
    d.extend_from_slice(&[0u8; 8]);
    d.extend_from_slice(&one);
    d.extend_from_slice(&[0u8; 4]);
    let (objs, findings) = walk_as(crate::Kind::Xz, &d);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(objs[1].1.len(), 2 * 1120);
}
