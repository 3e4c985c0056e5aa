//! What the policy layer looks at in a message, gathered in one walk of the
//! decoder (the same MIME splitter, charsets and HTML reader as the scan):
//! the top-level headers, the text of every text and HTML part (decoded,
//! normalised), the links with their displayed text, and the attachments
//! with their declared and true types.
//!
//! Bounded: the decoder's budget bounds the walk; text kept per message is
//! capped at [`MAX_TEXT`] bytes and links at [`MAX_LINKS`].

use mxguard_decode::{Decoder, FileType, Flow, Link, ScanObject, Visitor};
use mxguard_types::Finding;

/// Most text kept per message (bytes, over all parts).
pub const MAX_TEXT: usize = 512 * 1024;
/// Most links kept per message.
pub const MAX_LINKS: usize = 2000;
/// Most attachments kept per message.
pub const MAX_ATTACHMENTS: usize = 500;
/// Most bytes of an HTML attachment searched for a password form.
pub const MAX_FORM_SCAN: usize = 1024 * 1024;

/// One text or HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    pub text: String,
    pub html: bool,
    /// Tag names of an HTML part, lowercased, each once (`font`, `img`...).
    pub tags: Vec<String>,
    /// Declared type (MIME Content-Type), lowercased, when the part has one.
    pub declared_type: Option<String>,
    /// Markup features of an HTML part for the spam classifier
    /// ([`crate::tokens::html_features`]: `font:color`, `img:count:2-3`...).
    pub html_features: Vec<String>,
}

/// An attachment or any non-text object (archive members included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: Option<String>,
    /// Declared type (MIME Content-Type), lowercased.
    pub declared_type: Option<String>,
    /// True type by magic bytes.
    pub file_type: FileType,
    pub size: u64,
    pub location: String,
    /// Inside an archive or another container that is not the message.
    pub nested: bool,
    /// A named text or HTML object (an attachment such as `login.html`):
    /// its text is also in [`MessageFacts::texts`]. The classifier's
    /// tokens skip these so its features stay as they were trained.
    pub is_text: bool,
    /// An HTML attachment holding a form with a password field (`<form`
    /// and `type=password`, case, spaces and quotes ignored, first
    /// [`MAX_FORM_SCAN`] bytes): the typical phishing login page.
    pub html_form_password: bool,
}

/// The facts of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFacts {
    /// Top-level header fields in order: name as written, value unfolded
    /// (raw: encoded words left as they are).
    pub headers: Vec<(String, String)>,
    /// Subject with RFC 2047 encoded words decoded.
    pub subject: String,
    /// The From address (lowercased) and display name (decoded).
    pub from_address: String,
    pub from_name: String,
    /// To and Cc addresses, lowercased.
    pub recipients: Vec<String>,
    pub texts: Vec<TextPart>,
    pub links: Vec<Link>,
    pub attachments: Vec<Attachment>,
    /// Size of the raw message.
    pub size: usize,
    /// Heuristic findings of the walk (limits, encrypted content...).
    pub findings: Vec<Finding>,
    /// Some HTML part, the body or an attachment, holds a form with a
    /// password field (see [`html_form_password`]): mail from a bank or a
    /// mail provider never asks for a password in the message itself.
    pub html_form_password: bool,
    /// Sender authentication and DNS reputation, when the front-end ran
    /// the checks (`mxguard-auth`) and set them; never set by gathering.
    /// Auth, DNSBL and URIBL tests read them (see [`crate::auth`]).
    pub auth: Option<crate::auth::AuthResults>,
}

impl MessageFacts {
    /// Values of the header fields called `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Gathers the facts of `raw` (a message). `decoder` should have
    /// `DecodeOptions::text` on, or there is no text and no text links.
    /// Never panics.
    pub fn gather(decoder: &Decoder, raw: &[u8]) -> MessageFacts {
        let mut facts = MessageFacts::headers_of(raw);
        decoder.walk(raw, None, &mut FactsCollector::new(&mut facts));
        facts
    }

    /// The facts that come from the header block alone; the rest is filled
    /// by a [`FactsCollector`] on a walk of the same message (for instance
    /// the scan's own walk, `Scanner::scan_with`).
    pub fn headers_of(raw: &[u8]) -> MessageFacts {
        let mut facts = MessageFacts {
            size: raw.len(),
            ..Default::default()
        };
        read_headers(raw, &mut facts);
        facts
    }
}

/// The header block of a message (up to the first empty line).
fn header_block(raw: &[u8]) -> &[u8] {
    let mut pos = 0;
    while pos < raw.len() {
        let end = memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        if line == b"\n" || line == b"\r\n" {
            return &raw[..pos];
        }
        pos = end;
    }
    raw
}

fn read_headers(raw: &[u8], facts: &mut MessageFacts) {
    // An mbox "From " line is not a header.
    let raw = if raw.starts_with(b"From ") {
        memchr::memchr(b'\n', raw).map_or(&raw[raw.len()..], |i| &raw[i + 1..])
    } else {
        raw
    };
    let block = header_block(raw);
    for line in block.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, v)) = facts.headers.last_mut() {
                v.push(' ');
                v.push_str(text.trim());
            }
        } else if let Some((name, value)) = text.split_once(':') {
            if !name.is_empty() && !name.contains(' ') {
                facts
                    .headers
                    .push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    let parsed = mail_parser::MessageParser::new().parse_headers(raw);
    if let Some(m) = parsed {
        facts.subject = m.subject().unwrap_or_default().to_string();
        if let Some(a) = m.from().and_then(|f| f.first()) {
            facts.from_address = a.address().unwrap_or_default().to_lowercase();
            facts.from_name = a.name().unwrap_or_default().to_string();
        }
        for list in [m.to(), m.cc()].into_iter().flatten() {
            for a in list.iter() {
                if let Some(x) = a.address() {
                    facts.recipients.push(x.to_lowercase());
                }
            }
        }
    }
}

/// A decoder [`Visitor`] that adds each object's text, links and
/// attachment facts to a [`MessageFacts`].
pub struct FactsCollector<'a> {
    facts: &'a mut MessageFacts,
    text_bytes: usize,
}

impl<'a> FactsCollector<'a> {
    pub fn new(facts: &'a mut MessageFacts) -> FactsCollector<'a> {
        FactsCollector {
            facts,
            text_bytes: 0,
        }
    }
}

/// Tag names in HTML source, lowercased, distinct, at most 64.
fn html_tags(data: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &data[i..]) {
        let at = i + off + 1;
        let name: Vec<u8> = data[at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .take(12)
            .map(|b| b.to_ascii_lowercase())
            .collect();
        if !name.is_empty() && name[0].is_ascii_alphabetic() && name.len() <= 10 {
            let n = String::from_utf8_lossy(&name).into_owned();
            if !out.contains(&n) {
                out.push(n);
                if out.len() >= 64 {
                    break;
                }
            }
        }
        i = at;
    }
    out
}

/// Whether HTML source holds a form with a password field: `<form` and
/// `type=password` after dropping ASCII whitespace, quotes and NULs (so
/// UTF-16 HTML works too), ASCII case ignored. Scans at most
/// [`MAX_FORM_SCAN`] bytes; never panics.
pub fn html_form_password(data: &[u8]) -> bool {
    // One pass, no copy: both needles start with a byte that occurs in them
    // only once, so on a mismatch a match can only restart at that byte.
    fn advance(state: &mut usize, needle: &[u8], b: u8) -> bool {
        if *state < needle.len() {
            *state = if needle[*state] == b {
                *state + 1
            } else {
                usize::from(needle[0] == b)
            };
        }
        *state == needle.len()
    }
    const FORM: &[u8] = b"<form";
    const PASSWORD: &[u8] = b"type=password";
    let (mut form, mut password) = (0, 0);
    let (mut has_form, mut has_password) = (false, false);
    for &b in &data[..data.len().min(MAX_FORM_SCAN)] {
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | 0) {
            continue;
        }
        let b = b.to_ascii_lowercase();
        has_form |= advance(&mut form, FORM, b);
        has_password |= advance(&mut password, PASSWORD, b);
        if has_form && has_password {
            return true;
        }
    }
    false
}

impl Visitor for FactsCollector<'_> {
    fn object(&mut self, obj: &ScanObject<'_>) -> Flow {
        let f = &mut *self.facts;
        let html = matches!(obj.file_type, FileType::Html | FileType::HtmlUtf16);
        let form_password = html && html_form_password(&obj.data);
        f.html_form_password |= form_password;
        if let Some(t) = &obj.text {
            let room = MAX_TEXT.saturating_sub(self.text_bytes);
            if room > 0 {
                let mut cut = t.len().min(room);
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.text_bytes += cut;
                f.texts.push(TextPart {
                    text: t[..cut].to_string(),
                    html,
                    tags: if html {
                        html_tags(&obj.data)
                    } else {
                        Vec::new()
                    },
                    declared_type: obj.declared_type.clone(),
                    html_features: if html {
                        crate::tokens::html_features(&obj.data)
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        let named_text = obj.text.is_some() && obj.name.is_some();
        if obj.depth > 0
            && (obj.text.is_none() || named_text)
            && !matches!(obj.file_type, FileType::Mail)
            && f.attachments.len() < MAX_ATTACHMENTS
        {
            let nested = obj.container.is_some_and(|c| c != FileType::Mail);
            f.attachments.push(Attachment {
                name: obj.name.clone(),
                declared_type: obj.declared_type.clone(),
                file_type: obj.file_type,
                size: obj.data.len() as u64,
                location: obj.location.clone(),
                nested,
                is_text: named_text,
                html_form_password: form_password,
            });
        }
        let room = MAX_LINKS.saturating_sub(f.links.len());
        f.links.extend(obj.links.iter().take(room).cloned());
        Flow::Continue
    }

    fn finding(&mut self, finding: Finding) -> Flow {
        self.facts.findings.push(finding);
        Flow::Continue
    }

    fn links(&mut self, _location: &str, links: Vec<Link>) {
        let room = MAX_LINKS.saturating_sub(self.facts.links.len());
        self.facts.links.extend(links.into_iter().take(room));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxguard_decode::DecodeOptions;

    fn decoder() -> Decoder {
        Decoder::new(DecodeOptions {
            text: true,
            ..Default::default()
        })
    }

    #[test]
    fn login_forms() {
        for yes in [
            &b"<FORM action=x><input TYPE = 'Password'></form>"[..],
            b"<input type=\"password\"> ... < form >",
            b"<<form><ttype=password>",
            // Spaces are dropped by design (`< form`, `type = password`).
            b"<for m><input type=passwor d>x",
            "<form><input type=password>"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect::<Vec<u8>>()
                .leak(),
        ] {
            assert!(html_form_password(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b"<form><input type=text></form>"[..],
            b"<p>type=password</p>",
            b"<formtype=passwor",
            b"",
        ] {
            assert!(!html_form_password(no), "{}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn headers_text_links_and_attachments() {
        let msg = b"From mbox-line Tue Aug  6 11:51:02 2002\r\n\
From: =?utf-8?q?J=C3=BCrgen?= <Juergen@Example.COM>\r\n\
To: a@x.test, b@y.test\r\n\
Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n\
X-Long: one\r\n  two\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<html><body><font color=red>Hi</font> <a href=\"http://evil.test/x\">http://bank.test</a></body></html>\r\n\
--b\r\nContent-Type: application/octet-stream; name=a.exe\r\nContent-Disposition: attachment; filename=a.exe\r\n\r\nMZ\x90\x00\r\n\
--b--\r\n";
        let f = MessageFacts::gather(&decoder(), msg);
        assert_eq!(f.subject, "Grüße");
        assert_eq!(f.from_address, "juergen@example.com");
        assert_eq!(f.from_name, "Jürgen");
        assert_eq!(f.recipients, ["a@x.test", "b@y.test"]);
        assert_eq!(f.header("x-long"), Some("one two"));
        assert!(f
            .headers
            .iter()
            .all(|(n, _)| n != "From mbox-line Tue Aug  6 11"));
        let html = f.texts.iter().find(|t| t.html).expect("html part");
        assert!(html.text.contains("Hi"), "{html:?}");
        assert!(html.tags.contains(&"font".to_string()));
        assert!(f.links.iter().any(
            |l| l.href == "http://evil.test/x" && l.text.as_deref() == Some("http://bank.test")
        ));
        assert_eq!(f.attachments.len(), 1, "{:?}", f.attachments);
        assert_eq!(f.attachments[0].name.as_deref(), Some("a.exe"));
    }

    #[test]
    fn garbage_never_panics() {
        for m in [
            &b""[..],
            b"\r\n\r\n",
            b"From \n",
            b"no header at all",
            b":\r\n\r\n",
        ] {
            let _ = MessageFacts::gather(&decoder(), m);
        }
    }
}
