//! Scanning arbitrary bytes (file type detection, executable parsing, normalisation,
//! every matcher path) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_sigs::{Database, DbKind, MatchOptions, Scratch, SignatureSet};
use std::path::Path;
use std::sync::OnceLock;

fn set() -> &'static SignatureSet {
    static SET: OnceLock<SignatureSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut db = Database::new();
        db.load_builtin();
        db.load_text(
            Path::new("f.ndb"),
            DbKind::Ndb,
            b"A:0:*:4d5a*50450000\nB:1:EP+0:e8????????\nC:1:SE0:4142{-8}4344\nD:7:*:(B)6576616c(L)\nE:0:EOF-4:00(01|02)0304\nF:6:SL+0:7f454c46\nG:3:*:3c736372697074\n",
        );
        db.load_text(
            Path::new("f.ldb"),
            DbKind::Ldb,
            b"L;Engine:81-255,Target:0;(0|1)>2,2&2=0;61616161::i;62626262::wa;6363[1-4]64\n",
        );
        SignatureSet::compile(db)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut sc = Scratch::default();
    let _ = set().scan(data, MatchOptions { all_match: true, container: None }, &mut sc);
});
