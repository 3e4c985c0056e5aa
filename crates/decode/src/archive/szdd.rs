//! MS-DOS `COMPRESS.EXE` (SZDD): LZSS with a 4096-byte window of spaces.
use crate::{ChildMeta, Extractor};

/// `SZDD\x88\xf0\x27\x33`, then `A`, the missing last character, the size.
const HEADER_LEN: usize = 14;
/// The LZSS window size.
const WINDOW: usize = 4096;
/// Where writing starts in the window (as in `EXPAND.EXE`).
const WINDOW_START: usize = WINDOW - 16;

/// One child, decompressed into memory up to the member limit (SZDD expands
/// at most ~8 times, so the ratio limit cannot be reached). The child is named
/// like the container with its trailing `_` replaced by the stored character
/// (`setup.ex_` → `setup.exe`), else the container name without `.szdd`,
/// else `decompressed`. A stream that ends early is reported as broken.
pub(crate) fn szdd(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let Some(hdr) = data.get(..HEADER_LEN) else {
        ex.broken("Szdd", "truncated header");
        return;
    };
    if hdr[8] != b'A' {
        ex.unscannable(
            "Szdd",
            None,
            &format!("compression mode {:#04x} not supported", hdr[8]),
        );
        return;
    }
    let last = hdr[9];
    let declared = u32::from_le_bytes([hdr[10], hdr[11], hdr[12], hdr[13]]) as u64;
    let cap = declared.min(ex.room().saturating_add(1)) as usize;
    let mut out: Vec<u8> = Vec::with_capacity(cap.min(data.len().saturating_mul(9)));
    let mut win = [b' '; WINDOW];
    let mut pos = WINDOW_START;
    let mut i = HEADER_LEN;
    'outer: while out.len() < cap {
        let Some(&ctl) = data.get(i) else { break };
        i += 1;
        for bit in 0..8 {
            if out.len() >= cap {
                break 'outer;
            }
            if ctl & (1 << bit) != 0 {
                let Some(&c) = data.get(i) else { break 'outer };
                i += 1;
                out.push(c);
                win[pos] = c;
                pos = (pos + 1) % WINDOW;
            } else {
                let (Some(&a), Some(&b)) = (data.get(i), data.get(i + 1)) else {
                    break 'outer;
                };
                i += 2;
                let mut from = (a as usize) | (((b as usize) & 0xf0) << 4);
                let len = ((b as usize) & 0x0f) + 3;
                for _ in 0..len {
                    if out.len() >= cap {
                        break 'outer;
                    }
                    let c = win[from];
                    out.push(c);
                    win[pos] = c;
                    pos = (pos + 1) % WINDOW;
                    from = (from + 1) % WINDOW;
                }
            }
        }
    }
    let short = (out.len() as u64) < declared.min(ex.room());
    let meta = match ex.container_name() {
        Some(n) => {
            let base = super::basename(n);
            if base.ends_with('_') && last.is_ascii_graphic() {
                let mut s = base[..base.len() - 1].to_string();
                s.push(last as char);
                ChildMeta::named(s)
            } else if base.len() > 5 && base.to_ascii_lowercase().ends_with(".szdd") {
                ChildMeta::named(&base[..base.len() - 5])
            } else {
                ChildMeta::at("decompressed")
            }
        }
        None => ChildMeta::at("decompressed"),
    };
    ex.child_owned(meta, out);
    if short && !ex.done() {
        ex.broken(
            "Szdd",
            &format!("stream ends before the declared {declared} bytes"),
        );
    }
}
