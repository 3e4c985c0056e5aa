//! Text for content rules: bytes decoded to UTF-8, normalised, and links found.
//!
//! All functions are linear in the input and never panic.

use crate::Link;

/// Windows-1252 code points for bytes 0x80..=0x9F (0 where the byte is undefined).
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
    0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
];

/// Decodes text whose charset is not declared, as mail clients guess it: a
/// byte-order mark decides (UTF-8, UTF-16LE/BE); valid UTF-8 is taken as is;
/// anything else is read as Windows-1252 (the usual mislabelled "Latin-1").
pub fn to_utf8(data: &[u8]) -> String {
    if let Some(rest) = data.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    if let Some(rest) = data.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = data.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    // UTF-16LE without a mark (HTML saved by Windows tools): ASCII with NULs between.
    if data.len() >= 4 && data[1] == 0 && data[3] == 0 && data[0] != 0 && data[2] != 0 {
        return utf16(data, u16::from_le_bytes);
    }
    match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => data
            .iter()
            .map(|&b| match b {
                0x80..=0x9F => char::from_u32(CP1252_HIGH[(b - 0x80) as usize] as u32)
                    .filter(|c| *c != '\0')
                    .unwrap_or('\u{FFFD}'),
                _ => b as char,
            })
            .collect(),
    }
}

fn utf16(data: &[u8], f: fn([u8; 2]) -> u16) -> String {
    let units = data.chunks_exact(2).map(|c| f([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or('\u{FFFD}'))
        .collect()
}

/// Characters that render as nothing and are used to split words past filters.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// Normalises text for content rules: invisible characters (soft hyphen,
/// zero-width space and joiners, BOM) removed; other control characters and
/// every run of spaces/tabs (including no-break spaces) become one space; line
/// breaks are kept, at most two in a row; lines are trimmed. Case is kept (rules
/// fold case themselves). Output is never longer than the input.
pub fn normalize(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut space = false;
    let mut newlines = 0u8;
    for c in t.chars() {
        if invisible(c) {
            continue;
        }
        if c == '\n' {
            // Trim the line's trailing space.
            if out.ends_with(' ') {
                out.pop();
            }
            if newlines < 2 && !out.is_empty() {
                out.push('\n');
            }
            newlines = newlines.saturating_add(1);
            space = false;
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            space = true;
            continue;
        }
        if space && newlines == 0 && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        newlines = 0;
        out.push(c);
    }
    while out.ends_with(['\n', ' ']) {
        out.pop();
    }
    out
}

/// Schemes and prefixes that start a link in plain text.
const LINK_STARTS: [&str; 4] = ["http://", "https://", "ftp://", "www."];
/// At most this many links are reported per object.
pub const MAX_LINKS: usize = 1000;

/// Finds links in plain text: `http://`, `https://`, `ftp://` URLs and bare
/// `www.` hosts (reported as written), up to [`MAX_LINKS`]. A link ends at
/// whitespace, quotes or angle brackets; trailing punctuation (`.,;:!?`) and an
/// unbalanced closing bracket are not part of it.
pub fn links(t: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let lower = t.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < MAX_LINKS {
        let Some(off) = memchr::memchr3(b'h', b'f', b'w', &b[i..]) else {
            break;
        };
        let at = i + off;
        let start = LINK_STARTS
            .iter()
            .find(|p| lower[at..].starts_with(*p))
            .filter(|_| at == 0 || !b[at - 1].is_ascii_alphanumeric());
        let Some(prefix) = start else {
            i = at + 1;
            continue;
        };
        let end = at + link_len(&t[at..]);
        if end > at + prefix.len() {
            out.push(Link {
                href: t[at..end].to_string(),
                text: None,
            });
        }
        i = end.max(at + 1);
    }
    out
}

/// Length of the link starting `s`.
fn link_len(s: &str) -> usize {
    let mut end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
        .unwrap_or(s.len());
    loop {
        let Some(last) = s[..end].chars().last() else {
            return 0;
        };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' => true,
            ')' | ']' | '}' => {
                let open = match last {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                let o = s[..end].matches(open).count();
                let c = s[..end].matches(last).count();
                c > o
            }
            _ => false,
        };
        if !drop {
            return end;
        }
        end -= last.len_utf8();
    }
}

/// The host of a URL or bare domain (`https://user@Mail.Example.com:8080/x` →
/// `mail.example.com`), lowercased, without a trailing dot; `None` if there is none.
pub fn host_of(url: &str) -> Option<String> {
    let s = url.trim();
    let rest = match s.find("://") {
        Some(i)
            if s[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            &s[i + 3..]
        }
        _ => s,
    };
    let auth_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let auth = &rest[..auth_end];
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_once(']')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        host.split_once(':').map_or(host, |(h, _)| h)
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '<' || c == '>') {
        return None;
    }
    Some(host)
}

/// Second-level labels under which registries sell names (`example.co.uk`).
const GENERIC_SLD: [&str; 12] = [
    "co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go", "gv", "gob",
];

/// The registrable part of a host (`mail.example.co.uk` → `example.co.uk`), by a
/// short rule instead of the public suffix list: the last two labels, or three
/// when the second-level label is a generic one under a two-letter country code.
/// IP literals are returned whole.
pub fn registrable(host: &str) -> &str {
    if host.parse::<std::net::IpAddr>().is_ok() || host.contains(':') {
        return host;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    let keep = if n >= 3 && labels[n - 1].len() == 2 && GENERIC_SLD.contains(&labels[n - 2]) {
        3
    } else {
        2
    };
    if n <= keep {
        return host;
    }
    let skip: usize = labels[..n - keep].iter().map(|l| l.len() + 1).sum();
    &host[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets_are_guessed_like_clients() {
        assert_eq!(to_utf8(b"caf\xc3\xa9"), "café");
        assert_eq!(to_utf8(b"caf\xe9 \x80"), "café €");
        assert_eq!(to_utf8(b"\xff\xfeh\0i\0"), "hi");
        assert_eq!(to_utf8(b"\xfe\xff\0h\0i"), "hi");
    }

    #[test]
    fn normalisation_removes_tricks_and_keeps_lines() {
        assert_eq!(
            normalize("  fr\u{200B}ee\u{00AD}  money\t\tnow \r\n\n\n\nnext  line \n"),
            "free money now\n\nnext line"
        );
    }

    #[test]
    fn links_in_text() {
        let l: Vec<String> =
            links("See https://a.example/x?y=(1). Or www.b.example, or (http://c.example/p).")
                .into_iter()
                .map(|l| l.href)
                .collect();
        assert_eq!(
            l,
            vec![
                "https://a.example/x?y=(1)",
                "www.b.example",
                "http://c.example/p"
            ]
        );
        assert!(links("nowww.example and http://").is_empty());
    }

    #[test]
    fn hosts_and_registrable_domains() {
        assert_eq!(
            host_of("https://u:p@Mail.Example.COM:8080/x").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(
            host_of("www.example.org/path").as_deref(),
            Some("www.example.org")
        );
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(registrable("mail.example.co.uk"), "example.co.uk");
        assert_eq!(registrable("a.b.example.com"), "example.com");
        assert_eq!(registrable("example.com"), "example.com");
        assert_eq!(registrable("10.0.0.1"), "10.0.0.1");
    }
}
