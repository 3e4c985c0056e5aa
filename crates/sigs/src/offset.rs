//! Signature offsets: where in a file a body signature may start.
//!
//! `*` anywhere; `n` absolute; `EOF-n`; for executables `EP+n`, `EP-n`,
//! `Sx+n`, `SEx` (a match starting inside section x), `SL+n`; any of these but
//! `*` and `SEx` may float: `Offset,MaxShift` allows starts in
//! `Offset..=Offset+MaxShift`.

use crate::error::LineError;
use crate::exe::ExeInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Any,
    Abs,
    /// From the end of the file, backwards (`EOF-n`).
    Eof,
    /// Entry point; `n` may be negative (`EP-n`).
    Ep,
    /// Start of section `x`.
    Section(u32),
    /// Entirely inside section `x`.
    SectionEntire(u32),
    /// Start of the last section.
    LastSection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    pub base: Base,
    pub n: i64,
    pub shift: u32,
}

/// Where a match may start and end in one scanned buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive range of allowed start positions.
    pub start_lo: usize,
    pub start_hi: usize,
    /// Largest allowed end position (exclusive end of the match).
    pub end_max: usize,
}

impl Offset {
    pub const ANY: Offset = Offset {
        base: Base::Any,
        n: 0,
        shift: 0,
    };

    pub fn is_any(&self) -> bool {
        self.base == Base::Any
    }

    /// True for offsets that need executable headers.
    pub fn needs_exe(&self) -> bool {
        matches!(
            self.base,
            Base::Ep | Base::Section(_) | Base::SectionEntire(_) | Base::LastSection
        )
    }

    /// Parses `*`, `n`, `n,s`, `EOF-n`, `EP+n`, `EP-n`, `Sx+n`, `SEx`, `SL+n`.
    pub fn parse(s: &str) -> Result<Offset, LineError> {
        let bad = || LineError::syntax(format!("invalid offset '{s}'"));
        if s == "*" {
            return Ok(Offset::ANY);
        }
        let (main, shift) = match s.split_once(',') {
            Some((m, sh)) => (m, sh.parse::<u32>().map_err(|_| bad())?),
            None => (s, 0),
        };
        let num = |t: &str| {
            t.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0 && *v <= u32::MAX as i64)
        };
        let off = if let Some(r) = main.strip_prefix("EOF-") {
            Offset {
                base: Base::Eof,
                n: num(r).ok_or_else(bad)?,
                shift,
            }
        } else if let Some(r) = main.strip_prefix("EP+") {
            Offset {
                base: Base::Ep,
                n: num(r).ok_or_else(bad)?,
                shift,
            }
        } else if let Some(r) = main.strip_prefix("EP-") {
            Offset {
                base: Base::Ep,
                n: -num(r).ok_or_else(bad)?,
                shift,
            }
        } else if let Some(r) = main.strip_prefix("SL+") {
            Offset {
                base: Base::LastSection,
                n: num(r).ok_or_else(bad)?,
                shift,
            }
        } else if let Some(r) = main.strip_prefix("SE") {
            if shift != 0 {
                return Err(bad());
            }
            let x = num(r).ok_or_else(bad)?;
            Offset {
                base: Base::SectionEntire(x as u32),
                n: 0,
                shift: 0,
            }
        } else if let Some(r) = main.strip_prefix('S') {
            let (x, n) = r.split_once('+').ok_or_else(bad)?;
            Offset {
                base: Base::Section(num(x).ok_or_else(bad)? as u32),
                n: num(n).ok_or_else(bad)?,
                shift,
            }
        } else {
            Offset {
                base: Base::Abs,
                n: num(main).ok_or_else(bad)?,
                shift,
            }
        };
        Ok(off)
    }

    /// The window of a buffer of `size` bytes where a match may lie, or `None`
    /// when the offset cannot apply (before the start, past the end, no such
    /// section, not an executable).
    pub fn window(&self, size: usize, exe: Option<&ExeInfo>) -> Option<Window> {
        let at = |start: i64| -> Option<Window> {
            if start < 0 || start as u64 > size as u64 {
                return None;
            }
            let lo = start as usize;
            let hi = lo.saturating_add(self.shift as usize).min(size);
            Some(Window {
                start_lo: lo,
                start_hi: hi,
                end_max: size,
            })
        };
        match self.base {
            Base::Any => Some(Window {
                start_lo: 0,
                start_hi: size,
                end_max: size,
            }),
            Base::Abs => at(self.n),
            Base::Eof => at(size as i64 - self.n),
            Base::Ep => at(exe?.entry_point? as i64 + self.n),
            Base::Section(x) => at(exe?.sections.get(x as usize)?.raw_offset as i64 + self.n),
            Base::LastSection => at(exe?.sections.last()?.raw_offset as i64 + self.n),
            Base::SectionEntire(x) => {
                // As clamscan does: the match must start inside section x, the end of the
                // section's raw data (plus any shift) included; where it ends is not checked.
                let s = exe?.sections.get(x as usize)?;
                let lo = usize::try_from(s.raw_offset).ok()?;
                let hi = usize::try_from(s.raw_offset.checked_add(s.raw_size)?)
                    .ok()?
                    .min(size);
                if lo > hi {
                    return None;
                }
                Some(Window {
                    start_lo: lo,
                    start_hi: hi,
                    end_max: size,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exe::Section;

    #[test]
    fn parses_every_form() {
        assert_eq!(Offset::parse("*").unwrap(), Offset::ANY);
        assert_eq!(
            Offset::parse("10").unwrap(),
            Offset {
                base: Base::Abs,
                n: 10,
                shift: 0
            }
        );
        assert_eq!(
            Offset::parse("10,5").unwrap(),
            Offset {
                base: Base::Abs,
                n: 10,
                shift: 5
            }
        );
        assert_eq!(
            Offset::parse("EOF-3").unwrap(),
            Offset {
                base: Base::Eof,
                n: 3,
                shift: 0
            }
        );
        assert_eq!(
            Offset::parse("EP-3,2").unwrap(),
            Offset {
                base: Base::Ep,
                n: -3,
                shift: 2
            }
        );
        assert_eq!(
            Offset::parse("S2+7").unwrap(),
            Offset {
                base: Base::Section(2),
                n: 7,
                shift: 0
            }
        );
        assert_eq!(
            Offset::parse("SE1").unwrap(),
            Offset {
                base: Base::SectionEntire(1),
                n: 0,
                shift: 0
            }
        );
        assert_eq!(
            Offset::parse("SL+0").unwrap(),
            Offset {
                base: Base::LastSection,
                n: 0,
                shift: 0
            }
        );
        for bad in [
            "", "-1", "EOF+1", "EP*", "S+1", "Sx+1", "10,", "SE1,2", "abc",
        ] {
            assert!(Offset::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows() {
        let exe = ExeInfo {
            entry_point: Some(100),
            sections: vec![Section {
                raw_offset: 50,
                raw_size: 20,
            }],
        };
        assert_eq!(
            Offset::parse("EOF-4")
                .unwrap()
                .window(10, None)
                .unwrap()
                .start_lo,
            6
        );
        assert!(Offset::parse("EOF-11").unwrap().window(10, None).is_none());
        assert!(Offset::parse("EP+0").unwrap().window(200, None).is_none());
        assert_eq!(
            Offset::parse("EP-2,4")
                .unwrap()
                .window(200, Some(&exe))
                .unwrap(),
            Window {
                start_lo: 98,
                start_hi: 102,
                end_max: 200
            }
        );
        assert_eq!(
            Offset::parse("SE0")
                .unwrap()
                .window(200, Some(&exe))
                .unwrap(),
            Window {
                start_lo: 50,
                start_hi: 70,
                end_max: 200
            }
        );
        assert!(Offset::parse("S1+0")
            .unwrap()
            .window(200, Some(&exe))
            .is_none());
    }
}
