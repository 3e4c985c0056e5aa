//! The hex signature parser and offset parser never panic; whatever they accept compiles and matches safely.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_sigs::{Database, DbKind, MatchOptions, Scratch, SignatureSet};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // Narrow random bytes to the hex-signature alphabet half of the time, so the
    // fuzzer reaches deep into the grammar instead of failing on the first byte.
    const ALPHABET: &[u8] = b"0123456789abcdef??*{}-[]()|!BLW,";
    let text: String = if data.first().is_some_and(|b| b & 1 == 1) {
        data[1..]
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect()
    } else {
        String::from_utf8_lossy(data).into_owned()
    };
    let _ = mxguard_sigs::hex::parse(&text);
    let _ = mxguard_sigs::offset::Offset::parse(&text);
    let mut db = Database::new();
    db.load_text(
        Path::new("f.ndb"),
        DbKind::Ndb,
        format!("F:0:*:{text}\n").as_bytes(),
    );
    db.load_text(
        Path::new("f.ldb"),
        DbKind::Ldb,
        format!("L;Engine:81-255,Target:0;0;{text}::iwaf\n").as_bytes(),
    );
    let set = SignatureSet::compile(db);
    let mut sc = Scratch::default();
    let _ = set.scan(data, MatchOptions { all_match: true, container: None }, &mut sc);
});
