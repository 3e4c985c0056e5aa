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
