//! Decoding with the Rar reader, forced on any bytes, never panics and stays within its budget.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mxguard_decode::Kind;

#[path = "decode_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::run(Some(Kind::Rar), data));
