//! The `clean` rewrite never panics; on a message the walk opens as mail,
//! every location the walk reports maps to a part (never an error), and the
//! result can be walked again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_decode::rewrite::{remove_parts_with, RemovedPart};
use mxguard_decode::{DecodeBudget, DecodeOptions, Decoder};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    // The first byte picks which of the walk's locations are removed.
    let Some((&pick, msg)) = data.split_first() else {
        return;
    };
    let budget = DecodeBudget {
        max_depth: 8,
        max_objects: 2_000,
        max_object_size: 8 << 20,
        max_total_size: 32 << 20,
        max_time: Duration::from_secs(5),
        ..Default::default()
    };
    let dec = Decoder::new(DecodeOptions {
        budget: budget.clone(),
        ..Default::default()
    });
    let d = dec.decode(msg);
    let as_mail = d
        .objects
        .first()
        .is_some_and(|o| matches!(o.file_type.name(), "mail" | "mhtml"))
        && !msg.starts_with(b"From ");
    let locations: Vec<&str> = d
        .objects
        .iter()
        .map(|o| o.location.as_str())
        .chain(d.findings.iter().map(|f| f.location.as_str()))
        .enumerate()
        .filter(|(i, _)| pick & (1 << (i % 8)) != 0)
        .map(|(_, l)| l)
        .collect();
    let notice =
        |p: &RemovedPart| format!("removed {} {:?}\n--{}", p.location, p.name, p.content_type);
    match remove_parts_with(&budget, msg, &locations, &notice) {
        Ok(c) => {
            let _ = dec.decode(&c.message);
        }
        Err(e) => assert!(!as_mail, "{e} for {locations:?}"),
    }
    // Any location string at all: never a panic.
    let junk = String::from_utf8_lossy(&msg[..msg.len().min(24)]);
    let _ = remove_parts_with(&budget, msg, &[&junk, ""], &notice);
});
