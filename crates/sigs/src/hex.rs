//! ClamAV hex signature syntax → a small AST.
//!
//! Grammar (ClamAV's `BodySignatureFormat`):
//! - `aa` a byte; `??` any byte; `a?` / `?a` a high / low nibble;
//! - `*` any number of bytes; `{n}`, `{-n}`, `{n-}`, `{n-m}` ranged gaps
//!   (`{n}` with `n < 128` is `n` times `??`, as in ClamAV, and does not split
//!   the signature into parts);
//! - `(aa|bb)` single-byte, `(aabb|ccdd)` fixed-length and `(aa|bbcc??)` generic
//!   alternates; `!(aa|bb)` / `!(aabb|ccdd)` negated fixed-length alternates;
//! - `aa[x-y]HEXSIG` / `HEXSIG[x-y]aa`: one byte within `x..=y` bytes of the rest
//!   (`y <= 32`);
//! - `(B)`, `(L)`, `(W)` character classes, optionally negated with `!`. At a
//!   part's edge (start, end, or next to a splitting gap) they are zero-width
//!   checks of the neighbouring byte; elsewhere they consume one byte (two for
//!   a CRLF under `(L)`), exactly like ClamAV.
//!
//! `parse` never panics and bounds its work by the input length.

use crate::error::LineError;

/// Longest hex signature accepted (characters). ClamAV's own lines are far shorter.
pub const MAX_HEX_LEN: usize = 64 * 1024;
/// Deepest nesting of alternates.
pub const MAX_ALT_NEST: usize = 8;
/// `{n}` below this expands to `n` single-byte wildcards (ClamAV's rule).
pub const FIXED_GAP_EXPAND: u32 = 128;
/// Largest `y` in `[x-y]`.
pub const MAX_NEAR: u8 = 32;

/// A character class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `(B)` word boundary.
    Boundary,
    /// `(L)` line boundary: LF or CRLF.
    Line,
    /// `(W)` non-alphanumeric.
    Word,
}

/// Which side of the pattern a `[x-y]` byte sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// One element of a parsed hex signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A byte compared under `mask` (`0xff` exact, `0xf0`/`0x0f` nibble, `0` any).
    Byte { val: u8, mask: u8 },
    /// Alternatives. `negated` only for fixed-length alternates of plain bytes.
    Alt { alts: Vec<Vec<Node>>, negated: bool },
    /// A gap that splits the signature into parts: between `min` and `max` bytes
    /// (`None` = unbounded).
    Gap { min: u32, max: Option<u32> },
    /// `(B)`, `(L)` or `(W)`.
    Class { class: Class, negated: bool },
    /// `[x-y]`: byte `val` (under `mask`) at distance `min..=max` from the rest.
    Near {
        val: u8,
        mask: u8,
        min: u8,
        max: u8,
        side: Side,
    },
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses one hex byte position (`aa`, `??`, `a?`, `?a`) into `(val, mask)`.
fn hexbyte(hi: u8, lo: u8) -> Option<(u8, u8)> {
    match (hi, lo) {
        (b'?', b'?') => Some((0, 0)),
        (b'?', l) => Some((hexval(l)?, 0x0f)),
        (h, b'?') => Some((hexval(h)? << 4, 0xf0)),
        (h, l) => Some(((hexval(h)? << 4) | hexval(l)?, 0xff)),
    }
}

/// Parses a whole hex signature. Never panics.
pub fn parse(s: &str) -> Result<Vec<Node>, LineError> {
    if s.is_empty() {
        return Err(LineError::syntax("empty hex signature"));
    }
    if s.len() > MAX_HEX_LEN {
        return Err(LineError::syntax(format!(
            "hex signature longer than {MAX_HEX_LEN} characters"
        )));
    }
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let nodes = p.seq(0, false)?;
    if p.i != p.s.len() {
        return Err(LineError::syntax(format!(
            "unexpected '{}' at position {}",
            p.s[p.i] as char, p.i
        )));
    }
    validate_near(&nodes)?;
    if !nodes
        .iter()
        .any(|n| matches!(n, Node::Byte { .. } | Node::Alt { .. }))
    {
        return Err(LineError::syntax("hex signature matches no bytes"));
    }
    if matches!(nodes.first(), Some(Node::Gap { .. }))
        || matches!(nodes.last(), Some(Node::Gap { .. }))
    {
        return Err(LineError::syntax("hex signature starts or ends with a gap"));
    }
    Ok(nodes)
}

/// `[x-y]` must sit between a single byte and the rest of a part.
fn validate_near(nodes: &[Node]) -> Result<(), LineError> {
    for (i, n) in nodes.iter().enumerate() {
        if let Node::Near { side, .. } = n {
            let ok = match side {
                Side::Left => i == 0 || matches!(nodes[i - 1], Node::Gap { .. }),
                Side::Right => i + 1 == nodes.len() || matches!(nodes[i + 1], Node::Gap { .. }),
            };
            if !ok {
                return Err(LineError::syntax(
                    "[x-y] must join a single byte to the start or end of a part",
                ));
            }
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn number(&mut self) -> Result<Option<u32>, LineError> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        if start == self.i {
            return Ok(None);
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .map(Some)
            .ok_or_else(|| LineError::syntax("number out of range"))
    }

    /// A sequence up to `|`, `)` (inside alternates) or the end.
    fn seq(&mut self, depth: usize, in_alt: bool) -> Result<Vec<Node>, LineError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b'|' | b')' if in_alt => break,
                b'*' => {
                    if in_alt {
                        return Err(LineError::syntax("'*' inside alternates"));
                    }
                    self.i += 1;
                    out.push(Node::Gap { min: 0, max: None });
                }
                b'{' => {
                    self.i += 1;
                    let (min, max) = self.range(b'}')?;
                    match (min, max) {
                        (n, Some(m)) if n == m && n > 0 && n < FIXED_GAP_EXPAND => {
                            for _ in 0..n {
                                out.push(Node::Byte { val: 0, mask: 0 });
                            }
                        }
                        _ if in_alt => {
                            return Err(LineError::syntax("ranged gap inside alternates"))
                        }
                        // ClamAV stores "no maximum" as 0, so `{0}`, `{-0}` and `{n-0}` have no
                        // upper bound there: `{0}` behaves like `*`. Signatures are written
                        // against that behaviour, so we follow it.
                        (min, Some(0)) => out.push(Node::Gap { min, max: None }),
                        (min, max) => out.push(Node::Gap { min, max }),
                    }
                }
                b'[' => {
                    if in_alt {
                        return Err(LineError::syntax("'[' inside alternates"));
                    }
                    self.i += 1;
                    let (min, max) = self.range(b']')?;
                    let max = max.ok_or_else(|| LineError::syntax("[x-y] needs an upper bound"))?;
                    if max > MAX_NEAR as u32 || min > max {
                        return Err(LineError::syntax(format!(
                            "[x-y] range must satisfy x <= y <= {MAX_NEAR}"
                        )));
                    }
                    // `aa[x-y]HEX`: the part so far is one lone byte; otherwise `HEX[x-y]aa`.
                    let part_start = out
                        .iter()
                        .rposition(|n| matches!(n, Node::Gap { .. }))
                        .map_or(0, |p| p + 1);
                    let lone_left =
                        out.len() == part_start + 1 && matches!(out[part_start], Node::Byte { .. });
                    if lone_left {
                        let Some(Node::Byte { val, mask }) = out.pop() else {
                            return Err(LineError::syntax("bad [x-y]"));
                        };
                        out.push(Node::Near {
                            val,
                            mask,
                            min: min as u8,
                            max: max as u8,
                            side: Side::Left,
                        });
                    } else {
                        let (Some(&h), Some(&l)) = (self.s.get(self.i), self.s.get(self.i + 1))
                        else {
                            return Err(LineError::syntax("[x-y] must be followed by a byte"));
                        };
                        let (val, mask) = hexbyte(h, l)
                            .ok_or_else(|| LineError::syntax("bad byte after [x-y]"))?;
                        self.i += 2;
                        out.push(Node::Near {
                            val,
                            mask,
                            min: min as u8,
                            max: max as u8,
                            side: Side::Right,
                        });
                    }
                }
                b'!' | b'(' => {
                    let negated = c == b'!';
                    if negated {
                        self.i += 1;
                        if self.peek() != Some(b'(') {
                            return Err(LineError::syntax("'!' must precede '('"));
                        }
                    }
                    self.i += 1;
                    // Character classes.
                    if let (Some(k), Some(b')')) =
                        (self.s.get(self.i).copied(), self.s.get(self.i + 1).copied())
                    {
                        let class = match k {
                            b'B' => Some(Class::Boundary),
                            b'L' => Some(Class::Line),
                            b'W' => Some(Class::Word),
                            _ => None,
                        };
                        if let Some(class) = class {
                            if in_alt {
                                return Err(LineError::syntax("character class inside alternates"));
                            }
                            self.i += 2;
                            out.push(Node::Class { class, negated });
                            continue;
                        }
                    }
                    if depth >= MAX_ALT_NEST {
                        return Err(LineError::syntax("alternates nested too deeply"));
                    }
                    let mut alts = Vec::new();
                    loop {
                        let a = self.seq(depth + 1, true)?;
                        if a.is_empty() {
                            return Err(LineError::syntax("empty alternative"));
                        }
                        alts.push(a);
                        match self.peek() {
                            Some(b'|') => self.i += 1,
                            Some(b')') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(LineError::syntax("missing ')'")),
                        }
                    }
                    if negated {
                        let len = alts[0].len();
                        let plain = alts.iter().all(|a| {
                            a.len() == len
                                && a.iter().all(|n| matches!(n, Node::Byte { mask: 0xff, .. }))
                        });
                        if !plain {
                            return Err(LineError::syntax(
                                "negated alternates must be plain bytes of one length",
                            ));
                        }
                    }
                    out.push(Node::Alt { alts, negated });
                }
                _ => {
                    let (Some(&h), Some(&l)) = (self.s.get(self.i), self.s.get(self.i + 1)) else {
                        return Err(LineError::syntax("odd number of hex digits"));
                    };
                    let (val, mask) = hexbyte(h, l).ok_or_else(|| {
                        LineError::syntax(format!("invalid hex '{}{}'", h as char, l as char))
                    })?;
                    self.i += 2;
                    out.push(Node::Byte { val, mask });
                }
            }
        }
        Ok(out)
    }

    /// `n`, `-n`, `n-`, `n-m` followed by `close`.
    fn range(&mut self, close: u8) -> Result<(u32, Option<u32>), LineError> {
        let a = self.number()?;
        let r = if self.peek() == Some(b'-') {
            self.i += 1;
            let b = self.number()?;
            match (a, b) {
                (None, None) => return Err(LineError::syntax("empty range")),
                (a, b) => (a.unwrap_or(0), b),
            }
        } else {
            let n = a.ok_or_else(|| LineError::syntax("empty range"))?;
            (n, Some(n))
        };
        if self.peek() != Some(close) {
            return Err(LineError::syntax(format!("missing '{}'", close as char)));
        }
        self.i += 1;
        if let (min, Some(max)) = r {
            if min > max && max != 0 {
                return Err(LineError::syntax("range minimum above maximum"));
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: u8) -> Node {
        Node::Byte { val: v, mask: 0xff }
    }

    #[test]
    fn bytes_nibbles_wildcards() {
        assert_eq!(
            parse("41??4??2").unwrap(),
            vec![
                b(0x41),
                Node::Byte { val: 0, mask: 0 },
                Node::Byte {
                    val: 0x40,
                    mask: 0xf0
                },
                Node::Byte { val: 2, mask: 0x0f }
            ]
        );
    }

    #[test]
    fn gaps() {
        assert_eq!(
            parse("4142*4344").unwrap()[2],
            Node::Gap { min: 0, max: None }
        );
        assert_eq!(
            parse("4142{-5}4344").unwrap()[2],
            Node::Gap {
                min: 0,
                max: Some(5)
            }
        );
        assert_eq!(
            parse("4142{5-}4344").unwrap()[2],
            Node::Gap { min: 5, max: None }
        );
        assert_eq!(
            parse("4142{2-5}4344").unwrap()[2],
            Node::Gap {
                min: 2,
                max: Some(5)
            }
        );
        // {n} below 128 is n wildcards, not a split.
        assert_eq!(parse("4142{3}4344").unwrap().len(), 7);
        assert_eq!(
            parse("4142{200}4344").unwrap()[2],
            Node::Gap {
                min: 200,
                max: Some(200)
            }
        );
    }

    #[test]
    fn alternates_and_classes() {
        let n = parse("41(42|4344)45").unwrap();
        assert!(matches!(&n[1], Node::Alt { alts, negated: false } if alts.len() == 2));
        let n = parse("41!(42|43)45").unwrap();
        assert!(matches!(&n[1], Node::Alt { negated: true, .. }));
        assert!(parse("41!(42|4344)45").is_err());
        let n = parse("(B)4142!(W)43(L)").unwrap();
        assert_eq!(
            n[0],
            Node::Class {
                class: Class::Boundary,
                negated: false
            }
        );
        assert_eq!(
            n[3],
            Node::Class {
                class: Class::Word,
                negated: true
            }
        );
    }

    #[test]
    fn near_anchors() {
        let n = parse("64[4-4]61616161").unwrap();
        assert_eq!(
            n[0],
            Node::Near {
                val: 0x64,
                mask: 0xff,
                min: 4,
                max: 4,
                side: Side::Left
            }
        );
        let n = parse("6262[3-6]65").unwrap();
        assert_eq!(
            n[2],
            Node::Near {
                val: 0x65,
                mask: 0xff,
                min: 3,
                max: 6,
                side: Side::Right
            }
        );
        let n = parse("64[4-4]61616161{2}6262[3-6]65").unwrap();
        assert!(matches!(
            n.last(),
            Some(Node::Near {
                side: Side::Right,
                ..
            })
        ));
        assert!(parse("6162[1-40]63").is_err());
    }

    #[test]
    fn malformed_never_panics() {
        for s in [
            "",
            "4",
            "4g",
            "(",
            "(41",
            "41|42",
            "{",
            "{-}",
            "41{5-2}42",
            "!41",
            "[1-2]",
            "*",
            "41*",
            "()",
            "(|)",
            "!(",
            "41[",
            "41[1-",
        ] {
            let _ = parse(s);
        }
        assert!(parse("").is_err());
        assert!(parse("*41").is_err());
    }
}
