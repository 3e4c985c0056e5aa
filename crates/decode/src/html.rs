//! HTML: visible text, links with their anchor text, embedded `data:` payloads,
//! base64 blobs inside scripts, and two heuristics — HTML smuggling and links
//! whose visible text names another domain than their target.
//!
//! The tokenizer is tolerant (unclosed tags, stray `<`, unquoted attributes, any
//! case) and linear; it never panics. Signature matching on normalised HTML is
//! the signature engine's job (`mxguard_sigs::htmlnorm`); this module serves
//! content rules, link checks and payload extraction.

use crate::text::{self, host_of, registrable};
use crate::{ChildMeta, Extractor, Flow, Link};

/// At most this many `data:` payloads and script blobs are handed over per document.
pub const MAX_EMBEDDED: usize = 256;
/// A base64 string literal in a script must be at least this long to be decoded
/// as a payload (shorter ones are ids, tokens, small images).
pub const MIN_SCRIPT_BLOB: usize = 256;

/// What [`analyse`] finds in a document.
#[derive(Debug, Clone, Default)]
pub struct HtmlDoc {
    /// `<a>`/`<area>` targets with their visible text, `<form action>`, `<iframe src>`.
    pub links: Vec<Link>,
    /// The text a reader sees (scripts, styles, comments and tags removed;
    /// entities decoded; block elements end lines), normalised.
    pub text: String,
}

/// One parsed tag.
struct Tag<'a> {
    name: String,
    end: bool,
    attrs: Vec<(String, &'a str)>,
}

impl Tag<'_> {
    fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| decode_entities(v).trim().to_string())
    }
}

/// Elements whose start or end breaks a line in the visible text.
const BLOCK: [&str; 22] = [
    "p",
    "br",
    "div",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "title",
];

/// Events from the tokenizer.
enum Tok<'a> {
    Text(&'a str),
    Tag(Tag<'a>),
    /// Contents of a `<script>` or `<style>` element (the tag itself came before).
    Raw(&'a str),
}

/// Calls `f` for each token of `s`. Linear: each byte is looked at a bounded
/// number of times.
fn tokenize<'a>(s: &'a str, mut f: impl FnMut(Tok<'a>)) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some(off) = memchr::memchr(b'<', &b[i..]) else {
            f(Tok::Text(&s[i..]));
            return;
        };
        let lt = i + off;
        if lt > i {
            f(Tok::Text(&s[i..lt]));
        }
        let rest = &b[lt + 1..];
        if rest.starts_with(b"!--") {
            i = match memchr::memmem::find(&rest[3..], b"-->") {
                Some(e) => lt + 1 + 3 + e + 3,
                None => b.len(),
            };
            continue;
        }
        let is_tag = rest
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'/' | b'!' | b'?'));
        if !is_tag {
            f(Tok::Text(&s[lt..lt + 1]));
            i = lt + 1;
            continue;
        }
        let (tag, next) = parse_tag(s, lt + 1);
        i = next;
        if let Some(tag) = tag {
            let raw = !tag.end && (tag.name == "script" || tag.name == "style");
            let name = tag.name.clone();
            f(Tok::Tag(tag));
            if raw {
                let close = format!("</{name}");
                let end = find_ci(&b[i..], close.as_bytes()).map_or(b.len(), |e| i + e);
                f(Tok::Raw(&s[i..end]));
                i = end;
            }
        }
    }
}

/// Case-insensitive search of an ASCII needle.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle.first()?;
    let mut from = 0;
    while let Some(off) = memchr::memchr2(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &hay[from..],
    ) {
        let at = from + off;
        if hay.len() - at >= needle.len() && hay[at..at + needle.len()].eq_ignore_ascii_case(needle)
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Parses the tag starting after `<` at `start`; returns it (None for `<!...>`,
/// `<?...>`) and the index after its `>`.
fn parse_tag(s: &str, start: usize) -> (Option<Tag<'_>>, usize) {
    let b = s.as_bytes();
    let mut i = start;
    if matches!(b.get(i), Some(b'!' | b'?')) {
        let end = memchr::memchr(b'>', &b[i..]).map_or(b.len(), |e| i + e + 1);
        return (None, end);
    }
    let end = b.get(i) == Some(&b'/');
    if end {
        i += 1;
    }
    let n0 = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'-' | b':' | b'_')) {
        i += 1;
    }
    let name = s[n0..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'>' {
            i += 1;
            break;
        }
        let a0 = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let aname = s[a0..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let v0 = i + 1;
                    let v1 = memchr::memchr(q, &b[v0..]).map_or(b.len(), |e| v0 + e);
                    value = &s[v0..v1];
                    i = (v1 + 1).min(b.len());
                }
                _ => {
                    let v0 = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = &s[v0..i];
                }
            }
        }
        if aname.is_empty() {
            // A stray character: skip it so the loop advances.
            i = (a0 + 1).max(i);
            continue;
        }
        if attrs.len() < 64 {
            attrs.push((aname, value));
        }
    }
    (Some(Tag { name, end, attrs }), i)
}

/// Decodes character references (`&amp;`, `&#39;`, `&#x27;`, named ones from
/// the HTML table); unknown ones stay as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let body = &rest[1..];
        let semi = body.find(';').filter(|&e| e <= 32);
        let (name, used) = match semi {
            Some(e) => (&body[..e], e + 2),
            None => {
                // Numeric references without `;` are common in crafted links.
                let e = match body.strip_prefix('#') {
                    Some(n) => {
                        let hex = n.starts_with(['x', 'X']);
                        let digits = n[hex as usize..]
                            .find(|c: char| {
                                if hex {
                                    !c.is_ascii_hexdigit()
                                } else {
                                    !c.is_ascii_digit()
                                }
                            })
                            .unwrap_or(n.len() - hex as usize);
                        1 + hex as usize + digits
                    }
                    None => 0,
                };
                (&body[..e], e + 1)
            }
        };
        let ch = if let Some(num) = name.strip_prefix('#') {
            let v = match num.strip_prefix(['x', 'X']) {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None => num.parse::<u32>().ok(),
            };
            v.map(|v| char::from_u32(v).unwrap_or('\u{FFFD}'))
        } else if semi.is_some() {
            mxguard_sigs::htmlnorm::entity_lookup(name.as_bytes())
                .and_then(|u| char::from_u32(u as u32))
        } else {
            None
        };
        match ch {
            Some(c) if !name.is_empty() => {
                out.push(c);
                rest = &rest[used.min(rest.len())..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Visible text, links with anchor text. Never panics; linear.
pub fn analyse(data: &[u8]) -> HtmlDoc {
    walk(&text::to_utf8(data), &mut |_| {}, &mut |_| {})
}

/// One pass over a document: builds the visible text and the links with their
/// anchor text, and shows every start tag to `on_tag` and every script/style
/// body to `on_raw` (so the reader needs no second tokenization).
fn walk<'s>(
    s: &'s str,
    on_tag: &mut dyn FnMut(&Tag<'s>),
    on_raw: &mut dyn FnMut(&'s str),
) -> HtmlDoc {
    let mut doc = HtmlDoc::default();
    let mut visible = String::new();
    // The open anchor: index in `doc.links` and where its text starts in `visible`.
    let mut anchor: Option<(usize, usize)> = None;
    let close = |doc: &mut HtmlDoc, visible: &str, a: Option<(usize, usize)>| {
        if let Some((li, from)) = a {
            let t = text::normalize(&visible[from.min(visible.len())..]);
            if let Some(l) = doc.links.get_mut(li) {
                l.text = (!t.is_empty()).then_some(t);
            }
        }
    };
    tokenize(s, |tok| match tok {
        Tok::Text(t) => visible.push_str(&decode_entities(t)),
        Tok::Raw(r) => on_raw(r),
        Tok::Tag(tag) => {
            if BLOCK.contains(&tag.name.as_str()) {
                visible.push('\n');
            } else if matches!(tag.name.as_str(), "td" | "th" | "img") {
                visible.push(' ');
            }
            if tag.name == "img" && anchor.is_some() {
                if let Some(alt) = tag.attr("alt") {
                    visible.push_str(&alt);
                }
            }
            if tag.name == "a" {
                close(&mut doc, &visible, anchor.take());
            }
            if tag.end {
                return;
            }
            on_tag(&tag);
            if doc.links.len() >= text::MAX_LINKS {
                return;
            }
            let target = match tag.name.as_str() {
                "a" | "area" => tag.attr("href"),
                "form" => tag.attr("action"),
                "iframe" => tag.attr("src"),
                _ => None,
            };
            if let Some(href) = target.filter(|h| !h.is_empty() && !h.starts_with('#')) {
                doc.links.push(Link { href, text: None });
                if tag.name == "a" {
                    anchor = Some((doc.links.len() - 1, visible.len()));
                }
            }
        }
    });
    close(&mut doc, &visible, anchor.take());
    doc.text = text::normalize(&visible);
    doc
}

/// Lenient base64 (the mail decoder's: junk skipped, partial quanta kept),
/// cut to `cap` bytes.
fn base64_lenient(input: &[u8], cap: usize) -> Vec<u8> {
    let mut v = crate::codec::base64_lenient(input).0;
    v.truncate(cap);
    v
}

/// Percent-decoding (`%41` → `A`); malformed escapes stay as written.
fn percent_decode(s: &str, cap: usize) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len().min(cap));
    let mut i = 0;
    while i < b.len() && out.len() < cap {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Decodes a `data:` URI; returns the media type and the bytes.
fn data_uri(uri: &str, cap: usize) -> Option<(String, Vec<u8>)> {
    let rest = uri
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("data:"))
        .map(|_| &uri[5..])?;
    let (meta, payload) = rest.split_once(',')?;
    let media = meta
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_b64 = meta
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("base64"));
    let bytes = if is_b64 {
        base64_lenient(&percent_decode(payload, usize::MAX / 2), cap)
    } else {
        percent_decode(payload, cap)
    };
    Some((
        if media.is_empty() {
            "text/plain".into()
        } else {
            media
        },
        bytes,
    ))
}

/// Base64 string literals of at least [`MIN_SCRIPT_BLOB`] characters in a script.
fn script_blobs(js: &str) -> Vec<&str> {
    let b = js.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < MAX_EMBEDDED {
        let Some(off) = memchr::memchr3(b'"', b'\'', b'`', &b[i..]) else {
            break;
        };
        let q = b[i + off];
        let s0 = i + off + 1;
        let len = b[s0..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
            .count();
        if len >= MIN_SCRIPT_BLOB && b.get(s0 + len) == Some(&q) {
            out.push(&js[s0..s0 + len]);
            i = s0 + len + 1;
        } else {
            i = s0;
        }
    }
    out
}

/// Script that builds a file in the browser and makes it download: a `Blob`
/// (or `File`) turned into an object URL or saved directly, plus a download
/// trigger. Returns a short reason.
fn smuggling(js: &str) -> Option<String> {
    let l = js.to_ascii_lowercase();
    let builds = l.contains("new blob") || l.contains("new file(");
    let url =
        l.contains("createobjecturl") || l.contains("mssaveoropenblob") || l.contains("mssaveblob");
    let trigger = l.contains(".download")
        || l.contains("\"download\"")
        || l.contains("'download'")
        || l.contains("mssaveoropenblob")
        || l.contains("mssaveblob")
        || l.contains(".click(");
    (builds && url && trigger).then(|| "script builds a Blob and triggers its download".to_string())
}

/// Does the visible text present itself as a link to a host? Returns that host.
fn displayed_host(t: &str) -> Option<String> {
    let t = t
        .trim()
        .trim_end_matches(['/', '.', ',', ';', ':', '!', '?']);
    if t.contains(char::is_whitespace) || !t.contains('.') {
        return None;
    }
    let looks_like_url = t.contains("://") || t.to_ascii_lowercase().starts_with("www.");
    let host = host_of(t).filter(|h| h.contains('.'))?;
    // A bare "example.com" also counts when it ends in a letter-only label.
    let tld_ok = host
        .rsplit('.')
        .next()
        .is_some_and(|l| l.len() >= 2 && l.chars().all(|c| c.is_ascii_alphabetic()));
    (looks_like_url || (tld_ok && !t.contains('@'))).then_some(host)
}

/// Opens an HTML document: `data:` payloads and script blobs become children;
/// reports smuggling and spoofed-link heuristics.
pub(crate) fn extract(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let s = text::to_utf8(data);
    let mut payloads: Vec<(ChildMeta, Vec<u8>)> = Vec::new();
    let mut scripts: Vec<&str> = Vec::new();
    let mut anchors_download = false;
    let room = ex.room().min(usize::MAX as u64) as usize;
    let mut on_raw = |js| scripts.push(js);
    let mut on_tag = |tag: &Tag<'_>| {
        for key in ["href", "src", "data"] {
            let Some(v) = tag.attr(key) else { continue };
            if payloads.len() >= MAX_EMBEDDED {
                break;
            }
            if let Some((media, bytes)) = data_uri(&v, room) {
                // Small inline images are everywhere in newsletters; scan them anyway
                // (cheap), but only a download link counts for the heuristic.
                let name = tag.attr("download").filter(|n| !n.is_empty());
                if tag.name == "a" && tag.attrs.iter().any(|(n, _)| n == "download") {
                    anchors_download = true;
                }
                let n = payloads.len() + 1;
                let segment = match &name {
                    Some(f) => format!("data[{n}]/{f}"),
                    None => format!("data[{n}]"),
                };
                payloads.push((
                    ChildMeta {
                        segment,
                        name,
                        declared_type: Some(media),
                        text: None,
                        kind: None,
                    },
                    bytes,
                ));
            }
        }
    };
    let doc = walk(&s, &mut on_tag, &mut on_raw);
    if ex.heuristics().html_smuggling {
        let reason = if anchors_download {
            Some("a link offers an embedded data: payload for download".to_string())
        } else {
            scripts.iter().find_map(|js| smuggling(js))
        };
        if let Some(r) = reason {
            if ex.heuristic("Heuristics.HTML.Smuggling", None, &r) == Flow::Stop {
                return;
            }
        }
    }
    if ex.heuristics().phishing {
        for l in &doc.links {
            let Some(t) = &l.text else { continue };
            let (Some(shown), Some(real)) = (displayed_host(t), host_of(&l.href)) else {
                continue;
            };
            if !(l.href.contains("://") || l.href.to_ascii_lowercase().starts_with("www.")) {
                continue;
            }
            if registrable(&shown) == registrable(&real) {
                continue;
            }
            let protected =
                ex.heuristics().protected_domains.iter().any(|d| {
                    registrable(&shown) == d.as_str() || shown.ends_with(&format!(".{d}"))
                });
            let ip = real.parse::<std::net::IpAddr>().is_ok();
            let puny = real.split('.').any(|l| l.starts_with("xn--"));
            if protected || ip || puny {
                let why = if protected {
                    "a protected brand"
                } else if ip {
                    "an IP address"
                } else {
                    "a punycode host"
                };
                let detail = format!("link text shows {shown} but leads to {real} ({why})");
                if ex.heuristic("Heuristics.Phishing.Email.SpoofedDomain", None, &detail)
                    == Flow::Stop
                {
                    return;
                }
                break;
            }
        }
    }
    for (meta, bytes) in payloads {
        if ex.child_owned(meta, bytes) == Flow::Stop {
            return;
        }
    }
    let mut n = 0;
    for (si, js) in scripts.iter().enumerate() {
        for blob in script_blobs(js) {
            n += 1;
            if n > MAX_EMBEDDED {
                return;
            }
            let bytes = base64_lenient(blob.as_bytes(), room);
            let meta = ChildMeta::at(format!("script[{}]/base64[{n}]", si + 1));
            if ex.child_owned(meta, bytes) == Flow::Stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_links_with_anchor_text() {
        let d = analyse(
            b"<html><head><style>p{}</style><script>var a='<a href=x>';</script></head>\
              <body><P>Hello&nbsp;<b>World</b> &amp; co<br>Visit <A HREF='https://www.paypa1.example/login'>https://www.paypal.com/</a>\
              <a href=mailto:x@y.example>mail</a><!-- <a href=hidden> --> <a href=\"#top\">top</a></body>",
        );
        assert_eq!(
            d.text,
            "Hello World & co\nVisit https://www.paypal.com/mail top"
        );
        assert_eq!(d.links.len(), 2);
        assert_eq!(d.links[0].href, "https://www.paypa1.example/login");
        assert_eq!(d.links[0].text.as_deref(), Some("https://www.paypal.com/"));
        assert_eq!(d.links[1].href, "mailto:x@y.example");
    }

    #[test]
    fn entities_and_broken_markup_never_panic() {
        assert_eq!(
            decode_entities("a&lt;b&#62;c&#x26;&unknown;&"),
            "a<b>c&&unknown;&"
        );
        assert_eq!(decode_entities("&#104;&#116tp"), "http");
        for s in [
            "<",
            "<a",
            "<a href=",
            "<a href='x",
            "<!--",
            "<script>",
            "</",
            "<a b c=d e='f' g=\"h\"/>x",
            "&#xFFFFFFFF;",
        ] {
            let _ = analyse(s.as_bytes());
        }
    }

    #[test]
    fn data_uris_and_script_blobs() {
        let (m, b) = data_uri("data:application/octet-stream;base64,TVqQ", 100).unwrap();
        assert_eq!(
            (m.as_str(), b.as_slice()),
            ("application/octet-stream", &b"MZ\x90"[..])
        );
        let (m, b) = data_uri("data:,a%20b", 100).unwrap();
        assert_eq!((m.as_str(), b.as_slice()), ("text/plain", &b"a b"[..]));
        let blob = "QUJD".repeat(100);
        let js = format!("var x = \"{blob}\"; var y='short';");
        assert_eq!(script_blobs(&js), vec![blob.as_str()]);
        assert!(smuggling("var b=new Blob([d]);var a=document.createElement('a');a.href=URL.createObjectURL(b);a.download='x.iso';a.click();").is_some());
        assert!(smuggling("var b=new Blob([d]); console.log(b)").is_none());
    }

    #[test]
    fn base64_is_lenient_and_capped() {
        assert_eq!(base64_lenient(b"SGVs\r\nbG8*", 100), b"Hello");
        assert_eq!(base64_lenient(b"SGVsbG8gd29ybGQ=", 5), b"Hello");
    }
}
