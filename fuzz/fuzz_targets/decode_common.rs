//! Shared by the `decode_*` targets: walk the input with one reader forced (or
//! by magic bytes), with a small budget so each run stays quick, and check the
//! walk's own promises (object count and decoded bytes within the budget).
use mxguard_decode::{DecodeBudget, DecodeOptions, Decoder, Flow, Kind, ScanObject, Visitor};
use mxguard_types::Finding;
use std::time::Duration;

struct Count {
    objects: usize,
    bytes: u64,
}

impl Visitor for Count {
    fn object(&mut self, obj: &ScanObject<'_>) -> Flow {
        self.objects += 1;
        if obj.depth > 0 {
            self.bytes += obj.data.len() as u64;
        }
        Flow::Continue
    }
    fn finding(&mut self, _f: Finding) -> Flow {
        Flow::Continue
    }
}

pub fn run(kind: Option<Kind>, data: &[u8]) {
    // libfuzzer-sys installs a panic hook that aborts at once, before the 7z
    // reader's catch_unwind around its third-party decoder (lzma-rust2, known to
    // panic on crafted data) can turn the panic into `Heuristics.Broken.7z` as it
    // does in production. Restore the default hook: a panic anywhere else still
    // unwinds out of the target, and libfuzzer-sys reports it as a crash.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| drop(std::panic::take_hook()));
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
        text: true,
        ..Default::default()
    });
    let mut c = Count { objects: 0, bytes: 0 };
    let s = match kind {
        Some(k) => dec.walk_as(k, data, &mut c),
        None => dec.walk(data, Some("input.bin"), &mut c),
    };
    assert!(c.objects <= budget.max_objects);
    assert!(c.bytes <= budget.max_total_size);
    assert_eq!(c.objects, s.objects);
}
