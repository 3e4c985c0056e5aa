//! The gateway's header edits and the stamp parser never panic on any
//! message, and stripping stamps leaves none behind.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_smtp::headers;

fuzz_target!(|data: &[u8]| {
    let _ = headers::header_end(data);
    let _ = headers::header_value(data, "Subject");
    let t = headers::tag_subject(data, "[TAG]");
    assert!(t.len() >= data.len());
    let p = headers::prepend_header(data, "X-Test", "a\r\nb");
    assert!(headers::header_value(&p, "X-Test").is_some());
    let r = headers::remove_header(data, "Received");
    assert!(r.len() <= data.len());
    let s = mxguard_stamp::strip_stamps(data);
    assert!(
        matches!(mxguard_stamp::strip_stamps(&s), std::borrow::Cow::Borrowed(_)),
        "one pass removes every stamp"
    );
});
