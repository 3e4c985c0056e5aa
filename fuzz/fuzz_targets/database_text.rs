//! Every text database parser never panics on any input, and the result compiles.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_sigs::{Database, DbKind, SignatureSet};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&k, text)) = data.split_first() else {
        return;
    };
    let kind = match k % 7 {
        0 => DbKind::Hdb,
        1 => DbKind::Hsb,
        2 => DbKind::Fp,
        3 => DbKind::Ndb,
        4 => DbKind::Ldb,
        5 => DbKind::Ign2,
        _ => DbKind::Ign,
    };
    let mut db = Database::new();
    db.load_text(Path::new("fuzz"), kind, text);
    let set = SignatureSet::compile(db);
    let _ = set.len();
});
