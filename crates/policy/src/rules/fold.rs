//! Text folding for keyword matching: one canonical form for text and
//! keywords alike, so `F.R.E.E`, `ｆｒｅｅ`, `fr3e` and `frее` (Cyrillic е)
//! all read `free`.
//!
//! Per character, in this order:
//! 1. look-alikes of Latin letters (Cyrillic, Greek, a few others) map to
//!    the letter ([`confusable`]);
//! 2. otherwise Unicode compatibility decomposition (NFKD: fullwidth and
//!    mathematical forms, ligatures, `ℓ`), combining marks dropped (so
//!    `é` reads `e`), lowercase, then step 1 again on the result;
//! 3. leetspeak digits and signs map to letters ([`leet`]); `l` and `1`
//!    both read `i`, so `claim`, `c1aim` and `cIaim` fold alike;
//! 4. zero-width and format characters (soft hyphen, ZWSP, BOM) vanish;
//! 5. everything that is not a letter or digit separates words.
//!
//! Then words are joined with single spaces, and a run of at least
//! [`MIN_SPACED_RUN`] one-letter words separated by thin separators
//! (one or two of ` .-_*·/+~,`) is joined into one word: `f r e e`,
//! `f.r.e.e`, `f-r-e-e`, `f. r. e. e` read `free`. The result starts and
//! ends with a space, so a whole word is ` word ` in it.
//!
//! Guarantees: never panics; reads at most the `limit` bytes given (cut
//! at a character boundary); time and output are linear in that (a
//! character decomposes into at most 18, in practice 1-3).

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Shortest run of one-letter words that is read as one spaced-out word.
pub const MIN_SPACED_RUN: usize = 3;

/// A Latin look-alike (homoglyph) of `c`, as lowercase ASCII.
pub fn confusable(c: char) -> Option<&'static str> {
    Some(match c {
        // Cyrillic, upper and lower case.
        'А' | 'а' => "a",
        'В' | 'в' | 'Ь' | 'ь' => "b",
        'С' | 'с' => "c",
        'ԁ' => "d",
        'Е' | 'е' | 'Ё' | 'ё' => "e",
        'Н' | 'һ' => "h",
        'І' | 'і' | 'Ї' | 'ї' | 'Ӏ' | 'ӏ' => "i",
        'Ј' | 'ј' => "j",
        'К' | 'к' => "k",
        'М' => "m",
        'О' | 'о' => "o",
        'Р' | 'р' => "p",
        'Ԛ' | 'ԛ' => "q",
        'Ѕ' | 'ѕ' => "s",
        'Т' => "t",
        'Х' | 'х' => "x",
        'У' | 'у' | 'Ү' | 'ү' => "y",
        'Ԝ' | 'ԝ' => "w",
        'Ѵ' | 'ѵ' => "v",
        // Greek.
        'Α' | 'α' => "a",
        'Β' | 'β' => "b",
        'Ε' | 'ε' => "e",
        'Ζ' => "z",
        'Η' => "h",
        'Ι' | 'ι' => "i",
        'Κ' | 'κ' => "k",
        'Μ' => "m",
        'Ν' | 'ν' => "v",
        'η' => "n",
        'Ο' | 'ο' | 'σ' => "o",
        'Ρ' | 'ρ' => "p",
        'Τ' | 'τ' => "t",
        'Υ' | 'υ' => "u",
        'γ' => "y",
        'Χ' | 'χ' => "x",
        'ω' => "w",
        // Latin look-alikes NFKD leaves alone.
        'ı' | 'ǀ' => "i",
        'ɡ' => "g",
        'ß' => "ss",
        'ø' | 'Ø' => "o",
        'đ' | 'Đ' => "d",
        'ł' | 'Ł' => "l",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        _ => return None,
    })
}

/// The letter a leetspeak character stands for (applied after
/// lowercasing): `0→o 1→i 3→e 4→a 5→s 7→t @→a $→s €→e`, and `l→i` so
/// that `1` (for `l` or `i`) and both letters meet.
pub fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | 'l' => 'i',
        '3' | '€' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        _ => return None,
    })
}

/// Characters that vanish (zero-width and format characters).
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// Separators that may sit between the letters of a spaced-out word.
fn thin(c: char) -> bool {
    matches!(
        c,
        ' ' | '.' | '-' | '_' | '*' | '·' | '/' | '+' | '~' | ',' | '\u{a0}'
    )
}

/// Classes of what step 1-4 emit.
enum Piece {
    Word(char),
    Thin,
    Thick,
}

/// Calls `emit` for each piece `c` folds to.
fn pieces(c: char, emit: &mut impl FnMut(Piece)) {
    let letter = |d: char, emit: &mut dyn FnMut(Piece)| {
        if let Some(l) = leet(d) {
            emit(Piece::Word(l));
        } else if d.is_alphanumeric() {
            emit(Piece::Word(d));
        } else if thin(d) {
            emit(Piece::Thin);
        } else {
            emit(Piece::Thick);
        }
    };
    if c.is_ascii() {
        letter(c.to_ascii_lowercase(), emit);
        return;
    }
    if invisible(c) {
        return;
    }
    if let Some(s) = confusable(c) {
        for d in s.chars() {
            letter(d, emit);
        }
        return;
    }
    for d in std::iter::once(c).nfkd() {
        if is_combining_mark(d) || invisible(d) {
            continue;
        }
        for l in d.to_lowercase() {
            if let Some(s) = confusable(l) {
                for e in s.chars() {
                    letter(e, emit);
                }
            } else {
                letter(l, emit);
            }
        }
    }
}

/// A reusable folder: keeps its buffers between calls.
#[derive(Debug, Default)]
pub struct Folder {
    /// Words of the current input, as byte ranges into `letters`, with the
    /// separator that preceded each (true = thin).
    words: Vec<(usize, usize, bool)>,
    letters: String,
}

impl Folder {
    pub fn new() -> Folder {
        Folder::default()
    }

    /// Folds `text` (at most `limit` bytes of it) into `out` (cleared
    /// first). See the module docs for the steps.
    pub fn fold_into(&mut self, text: &str, limit: usize, out: &mut String) {
        let mut cut = text.len().min(limit);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = &text[..cut];
        self.words.clear();
        self.letters.clear();
        // Separator state since the last word: None = nothing yet,
        // Some(n) = n thin characters, usize::MAX = thick.
        let mut sep: usize = 0;
        let mut in_word = false;
        let words = &mut self.words;
        let letters = &mut self.letters;
        for c in text.chars() {
            pieces(c, &mut |p| match p {
                Piece::Word(l) => {
                    if !in_word {
                        let thin_before = sep <= 2;
                        words.push((letters.len(), letters.len(), thin_before));
                        in_word = true;
                    }
                    letters.push(l);
                    if let Some(w) = words.last_mut() {
                        w.1 = letters.len();
                    }
                    sep = 0;
                }
                Piece::Thin => {
                    in_word = false;
                    sep = sep.saturating_add(1);
                }
                Piece::Thick => {
                    in_word = false;
                    sep = usize::MAX;
                }
            });
        }
        out.clear();
        out.push(' ');
        let one_letter = |w: &(usize, usize, bool)| letters[w.0..w.1].chars().nth(1).is_none();
        let mut i = 0;
        while i < words.len() {
            // A spaced-out word: one-letter words joined by thin separators.
            let mut j = i;
            if one_letter(&words[i]) {
                j = i + 1;
                while j < words.len() && words[j].2 && one_letter(&words[j]) {
                    j += 1;
                }
                if j - i < MIN_SPACED_RUN {
                    j = i;
                }
            }
            if j > i {
                for w in &words[i..j] {
                    out.push_str(&letters[w.0..w.1]);
                }
                i = j;
            } else {
                out.push_str(&letters[words[i].0..words[i].1]);
                i += 1;
            }
            out.push(' ');
        }
    }

    /// [`Folder::fold_into`] into a new string, with no limit.
    pub fn fold(&mut self, text: &str) -> String {
        let mut out = String::new();
        self.fold_into(text, usize::MAX, &mut out);
        out
    }
}

/// Folds `text` with a fresh [`Folder`] (config compilation, tests).
pub fn fold(text: &str) -> String {
    Folder::new().fold(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_fold_alike() {
        let free = fold("free");
        assert_eq!(free, " free ");
        for v in [
            "FREE",
            "F.R.E.E",
            "f-r-e-e",
            "f r e e",
            "f. r. e. e",
            "ｆｒｅｅ",
            "fr3e",
            "fr€e",
            "frее", // Cyrillic е
            "fr\u{00AD}ee",
            "FRΕΕ", // Greek capital epsilon
            "frée",
        ] {
            assert_eq!(fold(v), free, "{v}");
        }
        assert_eq!(fold("c1aim your pr1ze!"), fold("Claim your prize"));
        assert_eq!(fold("Cl4im"), fold("claim"));
        assert_eq!(fold("pаypаl"), fold("paypal")); // Cyrillic а
    }

    #[test]
    fn words_and_separators() {
        assert_eq!(fold("Hello,  World!\nBye"), " heiio worid bye ");
        // Two one-letter words are not a spaced-out word.
        assert_eq!(fold("a b test"), " a b test ");
        // A newline breaks a spaced-out run.
        assert_eq!(fold("f r\ne e"), " f r e e ");
        assert_eq!(fold(""), " ");
        assert_eq!(fold("..."), " ");
    }

    #[test]
    fn limit_cuts_at_char_boundary() {
        let mut f = Folder::new();
        let mut out = String::new();
        f.fold_into("ééé", 3, &mut out);
        assert_eq!(out, " e ");
    }
}
