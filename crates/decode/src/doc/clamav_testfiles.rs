//! ClamAV's test files (Debian `clamav-testfiles`; CI installs the package):
//! each document must yield, through the nested readers, an object holding
//! `clam.exe`. Fails when the files are missing, so the check cannot pass vacuously.

use crate::{DecodeOptions, Decoder};
use std::path::Path;

const DIR: &str = "/usr/share/clamav-testfiles";

fn yields_clam_exe(file: &str) -> Result<(), String> {
    let dir = Path::new(DIR);
    let exe = std::fs::read(dir.join("clam.exe"))
        .map_err(|e| format!("{DIR}/clam.exe: {e} (install clamav-testfiles)"))?;
    let input = std::fs::read(dir.join(file))
        .map_err(|e| format!("{DIR}/{file}: {e} (install clamav-testfiles)"))?;
    let d = Decoder::new(DecodeOptions::default()).decode(&input);
    let hit = d
        .objects
        .iter()
        .skip(1)
        .find(|o| memchr::memmem::find(&o.data, &exe).is_some());
    match hit {
        Some(o) => {
            eprintln!(
                "{file}: clam.exe at {} ({} bytes)",
                o.location,
                o.data.len()
            );
            Ok(())
        }
        None => {
            let locs: Vec<String> = d
                .objects
                .iter()
                .map(|o| format!("{} ({} bytes)", o.location, o.data.len()))
                .collect();
            Err(format!(
                "{file}: no object holds clam.exe; objects: {locs:?}; findings: {:?}",
                d.findings
            ))
        }
    }
}

#[test]
fn clam_documents_yield_clam_exe() {
    let mut errors = Vec::new();
    for f in ["clam.ole.doc", "clam.ppt", "clam.pdf", "clam.exe.rtf"] {
        if let Err(e) = yields_clam_exe(f) {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Mutated real documents: the readers must not panic or hang.
#[test]
fn mutated_documents_do_not_panic() {
    let dir = Path::new(DIR);
    let mut seed = 0x1234_5678u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for f in ["clam.ole.doc", "clam.ppt", "clam.pdf", "clam.exe.rtf"] {
        let Ok(orig) = std::fs::read(dir.join(f)) else {
            continue; // the test above reports missing files
        };
        for round in 0..60 {
            let mut m = orig.clone();
            let edits = 1 + rnd() as usize % 16;
            for _ in 0..edits {
                let i = rnd() as usize % m.len();
                m[i] = match rnd() % 4 {
                    0 => 0xff,
                    1 => 0,
                    _ => rnd() as u8,
                };
            }
            if round % 10 == 0 {
                let cut = rnd() as usize % m.len();
                m.truncate(cut);
            }
            let _ = Decoder::new(DecodeOptions::default()).decode(&m);
        }
    }
}

/// Mutated and truncated copies of our own `doc-*` golden cases (VBA, object
/// streams, encryption, RTF obfuscation): no panic, no hang.
#[test]
fn mutated_corpus_documents_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seed = 0x9e37_79b9u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut n = 0;
    for sub in ["documents", "heuristics"] {
        let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
            if !name.starts_with("doc-") || name.ends_with(".expect") || p.is_dir() {
                continue;
            }
            let Ok(orig) = std::fs::read(&p) else {
                continue;
            };
            if orig.is_empty() {
                continue;
            }
            n += 1;
            for round in 0..40 {
                let mut m = orig.clone();
                for _ in 0..1 + rnd() as usize % 8 {
                    let i = rnd() as usize % m.len();
                    m[i] = rnd() as u8;
                }
                if round % 8 == 0 {
                    m.truncate(rnd() as usize % m.len());
                }
                let _ = Decoder::new(DecodeOptions::default()).decode(&m);
            }
        }
    }
    assert!(n >= 15, "doc-* corpus went missing: {n} files");
}
