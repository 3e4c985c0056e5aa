//! MIME header fields: unfolding, `type/subtype; key=value` parameters with
//! RFC 2231 (charset, continuations) and RFC 2047 encoded words. Own code
//! rather than mail-parser's, which drops parameters folded onto a new line.
//! Every function here is linear in its input and never panics.

use crate::codec::{base64_lenient, decode_charset, decode_unknown, quoted_printable};
use std::collections::BTreeMap;

/// At most this many RFC 2231 sections (`name*0`, `name*1`, ...) are joined.
const MAX_PARAM_SECTIONS: usize = 256;

/// The header fields a MIME reader needs from one entity, each unfolded.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields {
    pub content_type: Option<Vec<u8>>,
    pub disposition: Option<Vec<u8>>,
    pub encoding: Option<Vec<u8>>,
}

/// True when `line` looks like `Name: value` (a header field start).
pub(crate) fn is_field_start(line: &[u8]) -> bool {
    match memchr::memchr(b':', line) {
        Some(0) | None => false,
        Some(i) => {
            line[..i].iter().all(|&c| c > b' ' && c < 0x7f)
                || line[..i]
                    .trim_ascii_end()
                    .iter()
                    .all(|&c| c > b' ' && c < 0x7f)
        }
    }
}

/// A field line's name (trimmed) and raw value (after the colon).
pub(crate) fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    Some((line[..colon].trim_ascii(), &line[colon + 1..]))
}

/// Adds one raw header line (or continuation) to the field being collected.
pub(crate) struct FieldCollector {
    pub fields: Fields,
    current: Option<u8>,
}

impl FieldCollector {
    pub(crate) fn new() -> FieldCollector {
        FieldCollector {
            fields: Fields::default(),
            current: None,
        }
    }

    /// `line` without its line end. Continuation lines start with a blank.
    pub(crate) fn line(&mut self, line: &[u8]) {
        if line.first().is_some_and(|&c| c == b' ' || c == b'\t') {
            let target = match self.current {
                Some(0) => self.fields.content_type.as_mut(),
                Some(1) => self.fields.disposition.as_mut(),
                Some(2) => self.fields.encoding.as_mut(),
                _ => None,
            };
            if let Some(v) = target {
                v.extend_from_slice(line);
            }
            return;
        }
        self.current = None;
        let Some((name, value)) = split_field(line) else {
            return;
        };
        let value = value.to_vec();
        let slot = if name.eq_ignore_ascii_case(b"content-type") {
            (0, &mut self.fields.content_type)
        } else if name.eq_ignore_ascii_case(b"content-disposition") {
            (1, &mut self.fields.disposition)
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            (2, &mut self.fields.encoding)
        } else {
            return;
        };
        // The first occurrence wins, as in most clients.
        if slot.1.is_none() {
            *slot.1 = Some(value);
            self.current = Some(slot.0);
        }
    }
}

/// `type/subtype` of a Content-Type value, lowercased; `None` when malformed.
pub(crate) fn mime_type(value: &[u8]) -> Option<String> {
    let end = memchr::memchr(b';', value).unwrap_or(value.len());
    let t: String = String::from_utf8_lossy(&value[..end])
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '"')
        .collect::<String>()
        .to_ascii_lowercase();
    let (a, b) = t.split_once('/')?;
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some(t)
}

/// The first token of a Content-Transfer-Encoding or Content-Disposition value, lowercased.
pub(crate) fn token(value: &[u8]) -> String {
    let end = memchr::memchr(b';', value).unwrap_or(value.len());
    let v = String::from_utf8_lossy(value[..end].trim_ascii());
    v.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace())
        .to_ascii_lowercase()
}

/// One parameter's raw pieces.
struct Piece {
    /// `key*` or `key*N*`: percent-encoded, the first may carry `charset'lang'`.
    extended: bool,
    value: Vec<u8>,
}

/// Splits `; key=value` parameters (after the first `;`), calling `f(key, value)`
/// with the key lowercased and the value unquoted.
fn for_each_param(value: &[u8], mut f: impl FnMut(&str, Vec<u8>)) {
    let Some(mut i) = memchr::memchr(b';', value) else {
        return;
    };
    let n = value.len();
    while i < n {
        // skip separators and blanks
        while i < n && (value[i] == b';' || value[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < n && value[i] != b'=' && value[i] != b';' {
            i += 1;
        }
        if i >= n || value[i] == b';' {
            continue;
        }
        let key = String::from_utf8_lossy(value[ks..i].trim_ascii()).to_ascii_lowercase();
        i += 1; // '='
        while i < n
            && (value[i] == b' ' || value[i] == b'\t' || value[i] == b'\r' || value[i] == b'\n')
        {
            i += 1;
        }
        let mut v = Vec::new();
        if i < n && value[i] == b'"' {
            i += 1;
            while i < n && value[i] != b'"' {
                if value[i] == b'\\' && i + 1 < n {
                    i += 1;
                }
                if value[i] != b'\r' && value[i] != b'\n' {
                    v.push(value[i]);
                }
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < n && value[i] != b';' {
                i += 1;
            }
            v.extend_from_slice(value[vs..i].trim_ascii());
        }
        f(&key, v);
    }
}

/// The value of parameter `key` (lowercase) in a Content-Type or
/// Content-Disposition value, decoded: RFC 2231 forms (`key*`, `key*0*`,
/// `key*1`, ...) win over a plain `key=`, whose RFC 2047 encoded words (also
/// inside quotes, as some clients write them) are decoded.
pub(crate) fn param(value: &[u8], key: &str) -> Option<String> {
    let mut plain: Option<Vec<u8>> = None;
    let mut sections: BTreeMap<u32, Piece> = BTreeMap::new();
    for_each_param(value, |k, v| {
        if k == key {
            if plain.is_none() {
                plain = Some(v);
            }
            return;
        }
        let Some(rest) = k.strip_prefix(key).and_then(|r| r.strip_prefix('*')) else {
            return;
        };
        let (num, extended) = match rest.strip_suffix('*') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let idx = if num.is_empty() {
            // `key*=`: a single extended value.
            0
        } else {
            match num.parse::<u32>() {
                Ok(n) => n,
                Err(_) => return,
            }
        };
        let extended = extended || num.is_empty();
        if sections.len() < MAX_PARAM_SECTIONS && !sections.contains_key(&idx) {
            sections.insert(idx, Piece { extended, value: v });
        }
    });
    if !sections.is_empty() {
        let mut bytes = Vec::new();
        let mut charset: Option<String> = None;
        for (i, (_, p)) in sections.into_iter().enumerate() {
            if p.extended {
                let mut v = &p.value[..];
                if i == 0 {
                    // charset'language'value
                    if let Some(q1) = memchr::memchr(b'\'', v) {
                        if let Some(q2) = memchr::memchr(b'\'', &v[q1 + 1..]) {
                            let cs = String::from_utf8_lossy(&v[..q1]).into_owned();
                            if !cs.is_empty() {
                                charset = Some(cs);
                            }
                            v = &v[q1 + 1 + q2 + 1..];
                        }
                    }
                }
                percent_decode(v, &mut bytes);
            } else {
                bytes.extend_from_slice(&p.value);
            }
        }
        return Some(match charset {
            Some(cs) => decode_charset(&bytes, Some(&cs)),
            None => decode_unknown(&bytes),
        });
    }
    plain.map(|v| decode_words(&v))
}

fn percent_decode(v: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if let (Some(h), Some(l)) = (
                v.get(i + 1).and_then(|&c| (c as char).to_digit(16)),
                v.get(i + 2).and_then(|&c| (c as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`) in `v`; blanks
/// between two encoded words are dropped; other bytes are UTF-8 or Windows-1252.
pub(crate) fn decode_words(v: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut last_was_word = false;
    let mut lit_start = 0;
    while i < v.len() {
        if v[i] == b'=' && v.get(i + 1) == Some(&b'?') {
            if let Some((text, end)) = encoded_word(v, i) {
                // flush literal text before the word, unless it is only blanks between words
                let lit = &v[lit_start..i];
                if !(last_was_word && lit.iter().all(|c| c.is_ascii_whitespace())) {
                    out.push_str(&decode_unknown(lit));
                }
                out.push_str(&text);
                i = end;
                lit_start = end;
                last_was_word = true;
                continue;
            }
        }
        if !v[i].is_ascii_whitespace() {
            last_was_word = false;
        }
        i += 1;
    }
    out.push_str(&decode_unknown(&v[lit_start.min(v.len())..]));
    out
}

/// Decodes the encoded word starting at `at` (`=?`): its text and the index after `?=`.
fn encoded_word(v: &[u8], at: usize) -> Option<(String, usize)> {
    let s = at + 2;
    let q1 = s + memchr::memchr(b'?', v.get(s..)?)?;
    let enc = *v.get(q1 + 1)?;
    if v.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let ts = q1 + 3;
    let te = ts + memchr::memmem::find(v.get(ts..)?, b"?=")?;
    let charset = String::from_utf8_lossy(&v[s..q1]);
    // RFC 2231 language suffix: charset*lang
    let charset = charset.split('*').next().unwrap_or("");
    let text = &v[ts..te];
    let bytes = match enc {
        b'b' | b'B' => base64_lenient(text).0,
        b'q' | b'Q' => {
            let t: Vec<u8> = text
                .iter()
                .map(|&c| if c == b'_' { b' ' } else { c })
                .collect();
            quoted_printable(&t)
        }
        _ => return None,
    };
    Some((decode_charset(&bytes, Some(charset)), te + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_plain_quoted_folded() {
        let v = b" application/octet-stream;\r\n\tname=\"a.exe\"";
        assert_eq!(param(v, "name").as_deref(), Some("a.exe"));
        assert_eq!(mime_type(v).as_deref(), Some("application/octet-stream"));
        let v = b"multipart/mixed; boundary=abc ; charset=\"x\\\"y\"";
        assert_eq!(param(v, "boundary").as_deref(), Some("abc"));
        assert_eq!(param(v, "charset").as_deref(), Some("x\"y"));
        assert_eq!(param(b"text/plain", "charset"), None);
        assert_eq!(param(b"text/plain; ; =; x", "charset"), None);
    }

    #[test]
    fn rfc2231_continuations_and_charset() {
        let v = b"attachment; filename*=utf-8''%E2%82%AC%20rates.zip";
        assert_eq!(param(v, "filename").as_deref(), Some("\u{20ac} rates.zip"));
        let v = b"attachment; filename*0*=iso-8859-1'en'caf%E9;\r\n filename*1=\"-menu\"; filename*2*=%2Eexe; filename=\"fallback\"";
        assert_eq!(param(v, "filename").as_deref(), Some("caf\u{e9}-menu.exe"));
        // out of order sections are sorted
        let v = b"x; name*1=b; name*0=a";
        assert_eq!(param(v, "name").as_deref(), Some("ab"));
    }

    #[test]
    fn rfc2047_words() {
        assert_eq!(
            decode_words(b"=?utf-8?B?w6l0w6kuZG9j?="),
            "\u{e9}t\u{e9}.doc"
        );
        assert_eq!(
            decode_words(b"=?iso-8859-1?Q?caf=E9?= =?iso-8859-1?Q?_b?=.txt"),
            "caf\u{e9} b.txt"
        );
        assert_eq!(decode_words(b"plain =?bad"), "plain =?bad");
        assert_eq!(decode_words(b"r\xe9sum\xe9.pdf"), "r\u{e9}sum\u{e9}.pdf");
        let v = b"application/pdf; name=\"=?UTF-8?Q?Rechnung_M=C3=A4rz.pdf?=\"";
        assert_eq!(param(v, "name").as_deref(), Some("Rechnung M\u{e4}rz.pdf"));
    }

    #[test]
    fn collector_unfolds_and_ignores_case() {
        let mut c = FieldCollector::new();
        c.line(b"CONTENT-TYPE: Application/Octet-Stream;");
        c.line(b"\tname=\"a.exe\"");
        c.line(b"content-transfer-encoding: BASE64");
        c.line(b"X-Other: y");
        c.line(b" continuation of other");
        assert_eq!(
            mime_type(c.fields.content_type.as_deref().unwrap()).as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(
            param(c.fields.content_type.as_deref().unwrap(), "name").as_deref(),
            Some("a.exe")
        );
        assert_eq!(token(c.fields.encoding.as_deref().unwrap()), "base64");
    }
}
