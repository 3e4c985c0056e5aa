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
        for _ in 0..24 {
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
