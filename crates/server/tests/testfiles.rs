//! ClamAV's own test files (Debian `clamav-testfiles`): `clam.exe` hidden in
//! archives, mail, documents and packers. With one hash signature for
//! `clam.exe`, `mxguard scan` must detect every file that `clamscan` detects,
//! except the ones listed in [`KNOWN_MISSES`] with the reason (an unpacker or
//! format we do not have). The list is exact: a file that starts being
//! detected must be taken off it, so the list never overstates a gap.
//!
//! Never skips: without the package or `clamscan` the test fails (`.ci/run`
//! installs both).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const DIR: &str = "/usr/share/clamav-testfiles";

/// Files clamscan detects that mxguard does not, and why.
const KNOWN_MISSES: &[(&str, &str)] = &[
    ("clam-aspack.exe", "ASPack unpacker not implemented"),
    ("clam-fsg.exe", "FSG unpacker not implemented"),
    ("clam-mew.exe", "MEW unpacker not implemented"),
    ("clam-nsis.exe", "NSIS installer reader not implemented"),
    ("clam-pespin.exe", "PESpin unpacker not implemented"),
    ("clam-petite.exe", "Petite unpacker not implemented"),
    ("clam-upack.exe", "Upack unpacker not implemented"),
    ("clam-upx.exe", "UPX unpacker not implemented"),
    ("clam-wwpack.exe", "WWPack unpacker not implemented"),
    ("clam-yc.exe", "yC unpacker not implemented"),
    ("clam.arj", "ARJ reader not implemented"),
    ("clam.chm", "CHM (LZX help file) reader not implemented"),
    (
        "clam.ea05.exe",
        "AutoIt 3.0 (EA05) script extractor not implemented",
    ),
    (
        "clam.ea06.exe",
        "AutoIt 3.26+ (EA06) script extractor not implemented",
    ),
    ("clam.sis", "Symbian SIS reader not implemented"),
    (
        "clam_IScab_ext.exe",
        "InstallShield cabinet reader not implemented",
    ),
    (
        "clam_IScab_int.exe",
        "InstallShield cabinet reader not implemented",
    ),
    (
        "clam_ISmsi_ext.exe",
        "InstallShield MSI reader not implemented",
    ),
    (
        "clam_ISmsi_int.exe",
        "InstallShield MSI reader not implemented",
    ),
];

fn detected(out: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.ends_with(" FOUND") && l.contains("clam.exe"))
        .filter_map(|l| l.split(": ").next())
        .filter_map(|p| {
            Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .collect()
}

#[test]
fn clam_exe_is_found_wherever_clamscan_finds_it() {
    let dir = Path::new(DIR);
    assert!(
        dir.join("clam.exe").is_file(),
        "{DIR} missing: install clamav-testfiles"
    );
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("clam.hdb");
    let exe = std::fs::read(dir.join("clam.exe")).unwrap();
    let md5 = {
        use md5::{Digest, Md5};
        let d = Md5::digest(&exe);
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    std::fs::write(&db, format!("{md5}:{}:clam.exe\n", exe.len())).unwrap();

    let clam = Command::new("clamscan")
        .args(["--no-summary", "-d"])
        .arg(&db)
        .arg(dir)
        .output()
        .expect("clamscan not found: install clamav");
    let theirs = detected(&clam.stdout);
    assert!(theirs.len() >= 40, "clamscan found only {theirs:?}");

    let ours = Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["scan", "--no-builtin", "--no-cache", "--db"])
        .arg(&db)
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ours.stdout);
    let ours_set = detected(&ours.stdout);
    assert!(
        ours_set.is_subset(&theirs),
        "mxguard detects what clamscan does not:\n{stdout}"
    );

    let missed: BTreeSet<String> = theirs.difference(&ours_set).cloned().collect();
    let known: BTreeSet<String> = KNOWN_MISSES.iter().map(|(f, _)| f.to_string()).collect();
    let unexpected: Vec<_> = missed.difference(&known).collect();
    let now_found: Vec<_> = known.difference(&missed).collect();
    assert!(
        unexpected.is_empty(),
        "missed files that should be detected: {unexpected:?}\n{stdout}"
    );
    assert!(
        now_found.is_empty(),
        "detected now, take them off KNOWN_MISSES: {now_found:?}"
    );
    eprintln!(
        "clamscan {} / mxguard {} of {} files; known misses: {}",
        theirs.len(),
        ours_set.len(),
        std::fs::read_dir(dir).unwrap().count(),
        KNOWN_MISSES.len()
    );
}
