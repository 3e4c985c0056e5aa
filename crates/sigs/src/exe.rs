//! Minimal executable parsing (PE, ELF, Mach-O) for signature offsets:
//! entry point and section table as file offsets.
//!
//! These reproduce what ClamAV 1.4 computes for `EP+n`, `EP-n`, `Sx+n`,
//! `SEx` and `SL+n` (`cli_targetinfo` → `cli_peheader`, `cli_elfheader`,
//! `cli_machoheader`), including when it gives up: when one of these returns
//! `None` for a file of that type, ClamAV resolves *no* relative offset for
//! it (see [`crate::target::RelOffsets::Unresolved`]).
//!
//! * **PE / PE32+**: section raw offsets are rounded down and raw sizes up to
//!   the file alignment (falling back to 0x200 when a section is misaligned
//!   for the declared alignment but aligned to 0x200), sizes clipped to the
//!   file, sections starting beyond the file get size 0; the entry point RVA
//!   maps to a file offset through the last section containing it, or to
//!   itself when it lies in the headers (RVA below `SizeOfHeaders` rounded up
//!   to the section alignment). Rejected: no `PE\0\0`, no sections, short
//!   optional header, truncated headers, section fields ≥ 2^31, an entry
//!   point outside every section. The section count is at most 65535 by
//!   format.
//! * **ELF** 32/64-bit, either byte order: the entry point maps through the
//!   first *program header* (any type) whose memory range holds it; `Sx` uses
//!   the *section headers* (`sh_offset`, `sh_size`, also for `NOBITS`), as
//!   ClamAV does. An entry point of 0 or no program headers gives entry
//!   offset 0. Rejected: more than 128 program headers or 256 section
//!   headers, header entry sizes other than the standard ones (even with no
//!   section headers), unreadable headers, an entry point in no segment.
//! * **Mach-O** 32/64-bit, either byte order (not fat binaries, which ClamAV
//!   cannot use here either): sections from `LC_SEGMENT`/`LC_SEGMENT_64`
//!   (raw size = size rounded up to the section alignment). ClamAV takes the
//!   entry point only from a PowerPC `LC_THREAD`/`LC_UNIXTHREAD`; for every
//!   other CPU (x86, x86-64, ARM) and for `LC_MAIN` it uses entry offset 0,
//!   and so do we. Rejected: 0 or more than 1024 load commands, more than 255
//!   sections in a segment, truncated commands.
//!
//! Values are truncated to 32 bits where ClamAV stores them in 32 bits.
//! All arithmetic is checked or explicitly wrapping: no input can panic, and
//! the work is bounded by the header counts above.

/// One section of an executable, in file terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Offset of the section's raw data in the file.
    pub raw_offset: u64,
    /// Size of the section's raw data in the file.
    pub raw_size: u64,
}

/// What offsets like `EP+n`, `Sx+n`, `SL+n`, `SEx` need to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExeInfo {
    /// Entry point as a file offset.
    pub entry_point: Option<u64>,
    pub sections: Vec<Section>,
}

/// Parses PE, ELF or Mach-O headers, chosen by magic. `None` if `data` is not
/// such a file or is too broken for ClamAV. Never panics, whatever the input.
pub fn parse(data: &[u8]) -> Option<ExeInfo> {
    if data.starts_with(b"MZ") || data.starts_with(b"ZM") {
        parse_pe(data)
    } else if data.starts_with(b"\x7fELF") {
        parse_elf(data)
    } else {
        parse_macho(data)
    }
}

/// Little/big endian field reader over a byte slice, `None` past the end.
#[derive(Clone, Copy)]
struct Rd<'a> {
    d: &'a [u8],
    big: bool,
}

impl Rd<'_> {
    fn bytes<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        let at = usize::try_from(at).ok()?;
        self.d.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: u64) -> Option<u16> {
        let b = self.bytes::<2>(at)?;
        Some(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, at: u64) -> Option<u32> {
        let b = self.bytes::<4>(at)?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, at: u64) -> Option<u64> {
        let b = self.bytes::<8>(at)?;
        Some(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    /// True when `len` bytes at `at` are inside the data.
    fn has(&self, at: u64, len: u64) -> bool {
        at.checked_add(len)
            .is_some_and(|end| end <= self.d.len() as u64)
    }
}

/// Round down to a multiple of `a` (no-op for 0), 32-bit like ClamAV.
fn pe_align(o: u32, a: u32) -> u32 {
    o.checked_div(a).map_or(o, |q| q.wrapping_mul(a))
}

/// Round up to a multiple of `a` (no-op for 0), wrapping in 32 bits like ClamAV.
fn pe_salign(o: u32, a: u32) -> u32 {
    match (o.checked_div(a), o.checked_rem(a)) {
        (Some(q), Some(r)) => (q + u32::from(r != 0)).wrapping_mul(a),
        _ => o,
    }
}

/// `sb..sb+sb_size` lies inside a buffer of `bb_size` bytes (and is not empty).
fn contained(bb_size: u64, sb: u64, sb_size: u64) -> bool {
    bb_size > 0 && sb_size > 0 && sb_size <= bb_size && sb + sb_size <= bb_size && sb < bb_size
}

/// PE / PE32+ headers as `cli_peheader` reads them for signature offsets.
pub fn parse_pe(data: &[u8]) -> Option<ExeInfo> {
    let r = Rd {
        d: data,
        big: false,
    };
    let fsize = data.len() as u64;
    let magic = r.u16(0)?;
    if magic != 0x5a4d && magic != 0x4d5a {
        return None;
    }
    let e_lfanew = u64::from(r.u32(60)?);
    if e_lfanew == 0 {
        return None;
    }
    // IMAGE_FILE_HEADER with the signature: 24 bytes
    if !r.has(e_lfanew, 24) || r.u32(e_lfanew)? != 0x0000_4550 {
        return None;
    }
    let nsections = r.u16(e_lfanew + 6)?;
    let opt_size = u64::from(r.u16(e_lfanew + 20)?);
    if nsections == 0 || opt_size < 96 {
        return None;
    }
    let opt = e_lfanew + 24;
    if !r.has(opt, 96) {
        return None;
    }
    let pe32plus = r.u16(opt)? == 0x20b;
    let (stored, ndirs_at) = if pe32plus {
        (112u64, opt + 108)
    } else {
        (96u64, opt + 92)
    };
    if pe32plus && (opt_size < 112 || !r.has(opt + 96, 16)) {
        return None;
    }
    let vep = r.u32(opt + 16)?;
    let salign = r.u32(opt + 32)?;
    let falign_decl = r.u32(opt + 36)?;
    let hdr_size = r.u32(opt + 60)?;
    let ndirs = u64::from(r.u32(ndirs_at)?.min(16));
    if opt_size < stored + 8 * ndirs || !r.has(opt + stored, 8 * ndirs) {
        return None;
    }
    let hdr_size = pe_salign(hdr_size, salign);
    let sec_at = opt + opt_size;
    let n = u64::from(nsections);
    if !r.has(sec_at, n * 40) {
        return None;
    }
    let field = |i: u64, off: u64| r.u32(sec_at + i * 40 + off).unwrap_or(0);
    let mut falign = falign_decl;
    if falign != 0x200 {
        for i in 0..n {
            let (size, ptr) = (field(i, 16), field(i, 20));
            if falign != 0 && size != 0 && ptr % falign != 0 && ptr % 0x200 == 0 {
                falign = 0x200;
                break;
            }
        }
    }
    struct Sec {
        rva: u32,
        raw: u32,
        rsz: u32,
    }
    let mut secs = Vec::with_capacity(nsections as usize);
    for i in 0..n {
        let (uvsz, urva, mut ursz, uraw) = (field(i, 8), field(i, 12), field(i, 16), field(i, 20));
        let rva = pe_align(urva, salign);
        let raw = pe_align(uraw, falign);
        let mut rsz = pe_salign(ursz, falign);
        if rsz != 0 {
            if u64::from(raw) >= fsize || u64::from(uraw) >= fsize {
                rsz = 0;
                ursz = 0;
            } else {
                if !contained(fsize, u64::from(raw), u64::from(rsz)) {
                    rsz = (fsize - u64::from(raw)) as u32;
                }
                if !contained(fsize, u64::from(uraw), u64::from(ursz)) {
                    ursz = (fsize - u64::from(uraw)) as u32;
                }
            }
        }
        if urva >> 31 != 0 || uvsz >> 31 != 0 || (rsz != 0 && uraw >> 31 != 0) || ursz >> 31 != 0 {
            return None;
        }
        secs.push(Sec { rva, raw, rsz });
    }
    let ep = if vep < hdr_size {
        if u64::from(vep) >= fsize {
            return None;
        }
        vep
    } else {
        let s = secs
            .iter()
            .rev()
            .find(|s| s.rsz != 0 && s.rva <= vep && s.rsz > vep - s.rva)?;
        (vep - s.rva).wrapping_add(s.raw)
    };
    Some(ExeInfo {
        entry_point: Some(u64::from(ep)),
        sections: secs
            .iter()
            .map(|s| Section {
                raw_offset: u64::from(s.raw),
                raw_size: u64::from(s.rsz),
            })
            .collect(),
    })
}

/// ELF headers as `cli_elfheader` reads them for signature offsets.
pub fn parse_elf(data: &[u8]) -> Option<ExeInfo> {
    if data.len() < 52 || !data.starts_with(b"\x7fELF") {
        return None;
    }
    let is64 = match data[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let r = Rd {
        d: data,
        big: data[5] != 1,
    };
    if is64 && data.len() < 64 {
        return None;
    }
    let (entry, phoff, shoff, phentsize, phnum, shentsize, shnum) = if is64 {
        (
            r.u64(24)?,
            r.u64(32)?,
            r.u64(40)?,
            r.u16(54)?,
            r.u16(56)?,
            r.u16(58)?,
            r.u16(60)?,
        )
    } else {
        let w = |at| r.u32(at).map(u64::from);
        (
            w(24)?,
            w(28)?,
            w(32)?,
            r.u16(42)?,
            r.u16(44)?,
            r.u16(46)?,
            r.u16(48)?,
        )
    };

    // entry point through the program headers
    if phnum > 128 {
        return None;
    }
    let mut ep: u64 = 0;
    if phnum != 0 && entry != 0 {
        let (ph_size, want) = if is64 { (56u64, 56u16) } else { (32, 32) };
        if phentsize != want {
            return None;
        }
        let mut hit = None;
        for i in 0..u64::from(phnum) {
            let at = if is64 {
                phoff.wrapping_add(i * ph_size)
            } else {
                u64::from((phoff as u32).wrapping_add((i * ph_size) as u32))
            };
            if !r.has(at, ph_size) {
                return None;
            }
            let (offset, vaddr, memsz) = if is64 {
                (r.u64(at + 8)?, r.u64(at + 16)?, r.u64(at + 40)?)
            } else {
                (
                    u64::from(r.u32(at + 4)?),
                    u64::from(r.u32(at + 8)?),
                    u64::from(r.u32(at + 20)?),
                )
            };
            let inside = if is64 {
                vaddr <= entry && vaddr.wrapping_add(memsz) > entry
            } else {
                vaddr <= entry && u64::from((vaddr as u32).wrapping_add(memsz as u32)) > entry
            };
            if hit.is_none() && inside {
                hit = Some(entry.wrapping_sub(vaddr).wrapping_add(offset));
            }
        }
        ep = u64::from(hit? as u32);
    }

    // sections from the section headers
    if shnum > 256 {
        return None;
    }
    let (sh_size, want) = if is64 { (64u64, 64u16) } else { (40, 40) };
    if shentsize != want {
        return None;
    }
    let mut sections = Vec::with_capacity(usize::from(shnum));
    for i in 0..u64::from(shnum) {
        let at = if is64 {
            shoff.wrapping_add(i * sh_size)
        } else {
            u64::from((shoff as u32).wrapping_add((i * sh_size) as u32))
        };
        if !r.has(at, sh_size) {
            return None;
        }
        let (offset, size) = if is64 {
            (r.u64(at + 24)?, r.u64(at + 32)?)
        } else {
            (u64::from(r.u32(at + 16)?), u64::from(r.u32(at + 20)?))
        };
        sections.push(Section {
            raw_offset: u64::from(offset as u32),
            raw_size: u64::from(size as u32),
        });
    }
    Some(ExeInfo {
        entry_point: Some(ep),
        sections,
    })
}

/// Mach-O headers as `cli_machoheader` reads them for signature offsets.
pub fn parse_macho(data: &[u8]) -> Option<ExeInfo> {
    let head: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let (big, m64) = match head {
        [0xce, 0xfa, 0xed, 0xfe] => (false, false),
        [0xfe, 0xed, 0xfa, 0xce] => (true, false),
        [0xcf, 0xfa, 0xed, 0xfe] => (false, true),
        [0xfe, 0xed, 0xfa, 0xcf] => (true, true),
        _ => return None,
    };
    let r = Rd { d: data, big };
    if !r.has(0, 28) {
        return None;
    }
    // which thread state carries the entry point: only PowerPC's is used
    let arch = match r.u32(4)? {
        7 => 1,
        18 => 2,
        0x0100_0012 => 3,
        _ => 0,
    };
    let ncmds = r.u32(16)?;
    if ncmds == 0 || ncmds > 1024 {
        return None;
    }
    struct Sec {
        rva: u32,
        vsz: u32,
        raw: u32,
        rsz: u32,
    }
    let mut secs: Vec<Sec> = Vec::new();
    let mut at: u64 = if m64 { 32 } else { 28 };
    let mut ep: u32 = 0;
    for _ in 0..ncmds {
        if !r.has(at, 8) {
            return None;
        }
        let cmd = r.u32(at)?;
        let cmdsize = r.u32(at + 4)?;
        at += 8;
        if (m64 && cmd == 0x19) || (!m64 && cmd == 0x1) {
            let (seg_size, nsects_at) = if m64 { (64, 56) } else { (48, 40) };
            if !r.has(at, seg_size) {
                return None;
            }
            let nsects = r.u32(at + nsects_at)?;
            at += seg_size;
            if nsects > 255 {
                return None;
            }
            for _ in 0..nsects {
                let sec_size = if m64 { 80 } else { 68 };
                if !r.has(at, sec_size) {
                    return None;
                }
                let (addr, size, offset, align) = if m64 {
                    (
                        r.u64(at + 32)? as u32,
                        r.u64(at + 40)? as u32,
                        r.u32(at + 48)?,
                        r.u32(at + 52)?,
                    )
                } else {
                    let align = r.u32(at + 44)?;
                    if align >= 32 {
                        return None;
                    }
                    (r.u32(at + 32)?, r.u32(at + 36)?, r.u32(at + 40)?, align)
                };
                at += sec_size;
                // 1 << align, with the shift count taken modulo 32 as on x86
                let al = 1u32.wrapping_shl(align);
                let rsz = size.wrapping_add(al.wrapping_sub(size % al) % al);
                secs.push(Sec {
                    rva: addr,
                    vsz: size,
                    raw: offset,
                    rsz,
                });
            }
        } else if arch != 0 && (cmd == 0x4 || cmd == 0x5) {
            at += 8; // flavor, count
            let state_size = match arch {
                1 => 64,
                2 => 160,
                _ => 312,
            };
            if !r.has(at, state_size) {
                return None;
            }
            match arch {
                2 => ep = r.u32(at)?,
                3 => ep = r.u64(at)? as u32,
                _ => {} // x86: ClamAV reads the state but not the entry point
            }
            at += state_size;
        } else if cmdsize > 8 {
            at += u64::from(cmdsize) - 8;
        }
    }
    // ClamAV keeps the section count in 16 bits
    let any_sections = !secs.is_empty();
    secs.truncate(secs.len() & 0xffff);
    if ep != 0 && any_sections {
        let s = secs
            .iter()
            .find(|s| s.rva <= ep && s.rva.wrapping_add(s.vsz) > ep)?;
        ep = (ep - s.rva).wrapping_add(s.raw);
    }
    Some(ExeInfo {
        entry_point: Some(u64::from(ep)),
        sections: secs
            .iter()
            .map(|s| Section {
                raw_offset: u64::from(s.raw),
                raw_size: u64::from(s.rsz),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    //! The same kinds of files (and ~300 mutated or generated PE, ELF and
    //! Mach-O files) were checked against clamscan: `EP+0`, `EP-3`, `Sx+2`,
    //! `SL+0` signatures built from these results all fire, and `EOF-8` fires
    //! exactly when parsing succeeds.
    use super::*;

    fn put16(d: &mut [u8], at: usize, v: u16) {
        d[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(d: &mut [u8], at: usize, v: u32) {
        d[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A PE with `.text` (VA 0x1000, raw 0x200..0x400) and `.data`
    /// (VA 0x2000, raw 0x400, 0x100 bytes in a 0x500-byte file).
    fn pe(plus: bool, entry: u32) -> Vec<u8> {
        let mut d = vec![0u8; 0x500];
        d[..2].copy_from_slice(b"MZ");
        put32(&mut d, 60, 0x40);
        d[0x40..0x44].copy_from_slice(b"PE\0\0");
        put16(&mut d, 0x44, 0x14c);
        put16(&mut d, 0x46, 2);
        let opt_size: u16 = if plus { 240 } else { 224 };
        put16(&mut d, 0x54, opt_size);
        put16(&mut d, 0x56, 0x0102);
        let opt = 0x58;
        put16(&mut d, opt, if plus { 0x20b } else { 0x10b });
        put32(&mut d, opt + 16, entry);
        put32(&mut d, opt + 32, 0x1000);
        put32(&mut d, opt + 36, 0x200);
        put32(&mut d, opt + 60, 0x200);
        put16(&mut d, opt + 68, 2);
        put32(&mut d, opt + if plus { 108 } else { 92 }, 16);
        let sec = opt + opt_size as usize;
        for (i, (name, va, vsz, rsz, ptr)) in [
            (b".text\0\0\0", 0x1000u32, 0x100u32, 0x200u32, 0x200u32),
            (b".data\0\0\0", 0x2000, 0x80, 0x100, 0x400),
        ]
        .iter()
        .enumerate()
        {
            let s = sec + i * 40;
            d[s..s + 8].copy_from_slice(*name);
            put32(&mut d, s + 8, *vsz);
            put32(&mut d, s + 12, *va);
            put32(&mut d, s + 16, *rsz);
            put32(&mut d, s + 20, *ptr);
        }
        fill(&mut d, 0x200);
        d
    }

    /// Fills `d[from..]` with bytes that do not repeat within 8-byte windows,
    /// so that content at a wrong offset cannot pass for the right one.
    fn fill(d: &mut [u8], from: usize) {
        for (i, b) in d.iter_mut().enumerate().skip(from) {
            *b = (i.wrapping_mul(31) ^ (i >> 8)) as u8;
        }
    }

    fn sections(info: &ExeInfo) -> Vec<(u64, u64)> {
        info.sections
            .iter()
            .map(|s| (s.raw_offset, s.raw_size))
            .collect()
    }

    #[test]
    fn pe32_and_pe32plus() {
        for plus in [false, true] {
            let info = parse(&pe(plus, 0x1010)).unwrap();
            assert_eq!(info.entry_point, Some(0x210), "plus={plus}");
            // .data's raw size is rounded up to 0x200 then clipped to the file
            assert_eq!(sections(&info), vec![(0x200, 0x200), (0x400, 0x100)]);
        }
    }

    #[test]
    fn pe_entry_point_mapping() {
        // in the headers: the RVA is the offset
        assert_eq!(parse_pe(&pe(false, 0x80)).unwrap().entry_point, Some(0x80));
        // in the second section
        assert_eq!(
            parse_pe(&pe(false, 0x2010)).unwrap().entry_point,
            Some(0x410)
        );
        // past the raw data of every section: ClamAV rejects the file
        assert_eq!(parse_pe(&pe(false, 0x1300)), None);
        assert_eq!(parse_pe(&pe(false, 0x9000)), None);
    }

    #[test]
    fn pe_alignment_rules() {
        // misaligned raw pointer rounds down, size rounds up
        let mut d = pe(false, 0x1010);
        let sec = 0x58 + 224;
        put32(&mut d, sec + 20, 0x210);
        put32(&mut d, sec + 16, 0x1f0);
        assert_eq!(sections(&parse_pe(&d).unwrap())[0], (0x200, 0x200));
        // declared file alignment 0x1000 but sections on 0x200: falls back to 0x200
        let mut d = pe(false, 0x1010);
        put32(&mut d, 0x58 + 36, 0x1000);
        assert_eq!(
            sections(&parse_pe(&d).unwrap()),
            vec![(0x200, 0x200), (0x400, 0x100)]
        );
        // a section starting beyond the file keeps its offset with size 0
        let mut d = pe(false, 0x1010);
        put32(&mut d, sec + 40 + 20, 0x4000);
        assert_eq!(sections(&parse_pe(&d).unwrap())[1], (0x4000, 0));
    }

    #[test]
    fn pe_rejections() {
        let good = pe(false, 0x1010);
        let mut d = good.clone();
        put32(&mut d, 60, 0);
        assert_eq!(parse_pe(&d), None, "no e_lfanew");
        let mut d = good.clone();
        d[0x42] = b'X';
        assert_eq!(parse_pe(&d), None, "no PE signature");
        let mut d = good.clone();
        put16(&mut d, 0x46, 0);
        assert_eq!(parse_pe(&d), None, "no sections");
        let mut d = good.clone();
        put16(&mut d, 0x54, 95);
        assert_eq!(parse_pe(&d), None, "short optional header");
        let mut d = good.clone();
        put32(&mut d, 0x58 + 224 + 12, 0x8000_1000);
        assert_eq!(parse_pe(&d), None, "section RVA >= 2^31");
        assert_eq!(
            parse_pe(&good[..0x58 + 224 + 50]),
            None,
            "truncated section table"
        );
        assert_eq!(parse_pe(b"MZ"), None);
        let mut dos = b"MZ".to_vec();
        dos.extend_from_slice(&[0u8; 100]);
        assert_eq!(parse(&dos), None, "DOS executable");
    }

    /// ELF with one PT_LOAD (file 0, vaddr 0x400000, 0x1000 bytes) and two sections.
    fn elf(is64: bool, big: bool, entry: u64) -> Vec<u8> {
        let mut d = vec![0u8; 0x800];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = if is64 { 2 } else { 1 };
        d[5] = if big { 2 } else { 1 };
        d[6] = 1;
        let w16 = |d: &mut Vec<u8>, at: usize, v: u16| {
            d[at..at + 2].copy_from_slice(&if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let w32 = |d: &mut Vec<u8>, at: usize, v: u32| {
            d[at..at + 4].copy_from_slice(&if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let w64 = |d: &mut Vec<u8>, at: usize, v: u64| {
            d[at..at + 8].copy_from_slice(&if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let (phoff, shoff) = (0x40u64, 0x100u64);
        let secs = [(0x200u64, 0x80u64), (0x300, 0x10)];
        if is64 {
            w64(&mut d, 24, entry);
            w64(&mut d, 32, phoff);
            w64(&mut d, 40, shoff);
            w16(&mut d, 54, 56);
            w16(&mut d, 56, 1);
            w16(&mut d, 58, 64);
            w16(&mut d, 60, secs.len() as u16);
            let p = phoff as usize;
            w32(&mut d, p, 1);
            w64(&mut d, p + 8, 0);
            w64(&mut d, p + 16, 0x400000);
            w64(&mut d, p + 40, 0x1000);
            for (i, (off, size)) in secs.iter().enumerate() {
                let s = shoff as usize + i * 64;
                w64(&mut d, s + 24, *off);
                w64(&mut d, s + 32, *size);
            }
        } else {
            w32(&mut d, 24, entry as u32);
            w32(&mut d, 28, phoff as u32);
            w32(&mut d, 32, shoff as u32);
            w16(&mut d, 42, 32);
            w16(&mut d, 44, 1);
            w16(&mut d, 46, 40);
            w16(&mut d, 48, secs.len() as u16);
            let p = phoff as usize;
            w32(&mut d, p, 1);
            w32(&mut d, p + 4, 0);
            w32(&mut d, p + 8, 0x400000);
            w32(&mut d, p + 20, 0x1000);
            for (i, (off, size)) in secs.iter().enumerate() {
                let s = shoff as usize + i * 40;
                w32(&mut d, s + 16, *off as u32);
                w32(&mut d, s + 20, *size as u32);
            }
        }
        fill(&mut d, 0x200);
        d
    }

    #[test]
    fn elf_all_classes_and_orders() {
        for is64 in [false, true] {
            for big in [false, true] {
                let info = parse(&elf(is64, big, 0x400080)).unwrap();
                assert_eq!(info.entry_point, Some(0x80), "64={is64} be={big}");
                assert_eq!(sections(&info), vec![(0x200, 0x80), (0x300, 0x10)]);
            }
        }
    }

    #[test]
    fn elf_entry_and_rejections() {
        // entry 0 (or no program headers): entry offset 0
        assert_eq!(
            parse_elf(&elf(true, false, 0)).unwrap().entry_point,
            Some(0)
        );
        // entry in no segment: rejected
        assert_eq!(parse_elf(&elf(true, false, 0x900000)), None);
        // non-standard section header size, even with no sections: rejected
        let mut d = elf(true, false, 0x400080);
        d[58..60].copy_from_slice(&0u16.to_le_bytes());
        d[60..62].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(parse_elf(&d), None);
        // no section headers with the standard size: fine, no sections
        let mut d = elf(true, false, 0x400080);
        d[60..62].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(parse_elf(&d).unwrap().sections, vec![]);
        // more than 256 section headers, or unreadable ones
        let mut d = elf(false, false, 0x400080);
        d[48..50].copy_from_slice(&257u16.to_le_bytes());
        assert_eq!(parse_elf(&d), None);
        let mut d = elf(false, false, 0x400080);
        d[48..50].copy_from_slice(&200u16.to_le_bytes());
        assert_eq!(parse_elf(&d), None);
        // bad class
        let mut d = elf(false, false, 0x400080);
        d[4] = 3;
        assert_eq!(parse_elf(&d), None);
        assert_eq!(parse_elf(&d[..40]), None);
    }

    /// Mach-O, big endian: one segment with two sections and a thread command.
    fn macho(m64: bool, cpu: u32, pc: u64) -> Vec<u8> {
        let mut d: Vec<u8> = Vec::new();
        let be32 = |d: &mut Vec<u8>, v: u32| d.extend_from_slice(&v.to_be_bytes());
        let be64 = |d: &mut Vec<u8>, v: u64| d.extend_from_slice(&v.to_be_bytes());
        be32(&mut d, if m64 { 0xfeedfacf } else { 0xfeedface });
        be32(&mut d, cpu);
        be32(&mut d, 0);
        be32(&mut d, 2);
        be32(&mut d, 2); // ncmds
        be32(&mut d, 0);
        be32(&mut d, 0);
        if m64 {
            be32(&mut d, 0);
        }
        let sects = [
            (0x1000u64, 0x30u64, 0x400u32, 4u32),
            (0x1100, 0x11, 0x500, 0),
        ];
        be32(&mut d, if m64 { 0x19 } else { 0x1 });
        be32(&mut d, 0);
        d.extend_from_slice(&[0u8; 16]);
        if m64 {
            for _ in 0..4 {
                be64(&mut d, 0);
            }
        } else {
            for _ in 0..4 {
                be32(&mut d, 0);
            }
        }
        be32(&mut d, 7);
        be32(&mut d, 5);
        be32(&mut d, sects.len() as u32);
        be32(&mut d, 0);
        for (addr, size, off, align) in sects {
            d.extend_from_slice(&[0u8; 32]);
            if m64 {
                be64(&mut d, addr);
                be64(&mut d, size);
            } else {
                be32(&mut d, addr as u32);
                be32(&mut d, size as u32);
            }
            be32(&mut d, off);
            be32(&mut d, align);
            for _ in 0..if m64 { 6 } else { 5 } {
                be32(&mut d, 0);
            }
        }
        be32(&mut d, 5); // LC_UNIXTHREAD
        be32(&mut d, 0);
        be32(&mut d, 1);
        be32(&mut d, 40);
        if cpu == 0x0100_0012 {
            be64(&mut d, pc);
            d.extend_from_slice(&[0u8; 304]);
        } else {
            be32(&mut d, pc as u32);
            d.extend_from_slice(&[0u8; 156]);
        }
        d.resize(0x800, 0);
        fill(&mut d, 0x200);
        d
    }

    #[test]
    fn macho_sections_and_powerpc_entry() {
        let info = parse(&macho(false, 18, 0x1008)).unwrap();
        assert_eq!(info.entry_point, Some(0x408));
        // raw size is the size rounded up to 1 << align
        assert_eq!(sections(&info), vec![(0x400, 0x30), (0x500, 0x11)]);
        let info = parse(&macho(true, 0x0100_0012, 0x1104)).unwrap();
        assert_eq!(info.entry_point, Some(0x504));
        // an entry point in no section: rejected
        assert_eq!(parse(&macho(false, 18, 0x9000)), None);
    }

    #[test]
    fn macho_other_cpus_have_entry_offset_zero() {
        // x86 and x86-64: ClamAV does not take the entry point from the thread state
        assert_eq!(
            parse_macho(&macho(false, 7, 0x1008)).unwrap().entry_point,
            Some(0)
        );
        assert_eq!(
            parse_macho(&macho(true, 0x0100_0007, 0x1008))
                .unwrap()
                .entry_point,
            Some(0)
        );
        let mut d = macho(false, 7, 0);
        d[16..20].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(parse_macho(&d), None, "no load commands");
        assert_eq!(parse_macho(&d[..20]), None);
        // fat binaries are not parsed (ClamAV's offsets do not resolve there either)
        assert_eq!(parse(b"\xca\xfe\xba\xbe\x00\x00\x00\x02"), None);
    }

    #[test]
    fn never_panics_on_mutations() {
        let mut seed = 0x0123_4567_89ab_cdefu64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let bases = [
            pe(false, 0x1010),
            pe(true, 0x1010),
            elf(true, false, 0x400080),
            elf(false, true, 0x400080),
            macho(false, 18, 0x1008),
            macho(true, 0x0100_0012, 0x1008),
        ];
        for base in &bases {
            for _ in 0..500 {
                let mut d = base.clone();
                for _ in 0..(1 + next() % 6) {
                    let i = (next() as usize) % 0x200.min(d.len());
                    d[i] = match next() % 4 {
                        0 => 0xff,
                        1 => 0,
                        _ => next() as u8,
                    };
                }
                d.truncate((next() as usize) % (d.len() + 1));
                if let Some(info) = parse(&d) {
                    assert!(info.sections.len() <= 65535);
                }
            }
        }
    }
}
