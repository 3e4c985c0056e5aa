//! Reader tests through the public walk.
use crate::{DecodeOptions, Decoded, Decoder};

pub(super) fn decode(input: &[u8]) -> Decoded<'_> {
    Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    })
    .decode(input)
}

/// The Debian clamav-testfiles (installed in CI): each encoding of clam.exe
/// must yield an object whose bytes are clam.exe. Fails when they are missing.
#[test]
fn clamav_testfiles_yield_clam_exe() {
    let dir = std::path::Path::new("/usr/share/clamav-testfiles");
    let exe = std::fs::read(dir.join("clam.exe")).expect("clamav-testfiles: clam.exe missing");
    for f in [
        "clam.mail",
        "clam.exe.mbox.base64",
        "clam.exe.mbox.uu",
        "clam.exe.binhex",
        "clam.tnef",
    ] {
        let input = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let d = decode(&input);
        let found = d
            .objects
            .iter()
            .find(|o| o.depth > 0 && o.data[..] == exe[..]);
        assert!(
            found.is_some(),
            "{f}: no object equals clam.exe; objects: {:?}; findings: {:?}",
            d.objects
                .iter()
                .map(|o| (o.location.clone(), o.file_type.name(), o.data.len()))
                .collect::<Vec<_>>(),
            d.findings
                .iter()
                .map(|f| (&f.name, &f.detail))
                .collect::<Vec<_>>()
        );
        eprintln!("{f}: clam.exe at {}", found.map_or("", |o| &o.location));
    }
}
