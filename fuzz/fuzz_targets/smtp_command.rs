//! SMTP command parsing never panics on any line; whatever parses prints back
//! as a valid address where it holds one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_smtp::proto::{parse, Command};

fuzz_target!(|data: &[u8]| {
    if let Ok(Command::Mail(Some(a), _)) | Ok(Command::Rcpt(a, _)) = parse(data) {
        let _ = a.to_string();
    }
});
