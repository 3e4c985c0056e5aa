//! The .cvd/.cld reader never panics and stays within its memory bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mxguard_sigs::cvd::parse_header(data);
    let _ = mxguard_sigs::cvd::read(data, false);
    let mut db = mxguard_sigs::Database::new();
    db.load_container(std::path::Path::new("f.cvd"), data, true);
});
