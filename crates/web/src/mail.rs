//! A safe view of a quarantined message: its header block as text, its
//! body as plain text (an HTML-only body is converted to text, never
//! rendered), and its attachments as a list. The console escapes all of it;
//! nothing of the message is ever interpreted by the browser.

use mail_parser::{MessageParser, MimeHeaders};

/// Most characters of body text shown.
pub const MAX_TEXT: usize = 200_000;
/// Most bytes of the header block shown.
pub const MAX_HEADERS: usize = 64 * 1024;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SafeView {
    /// The raw header block (unfolded lines kept as they are).
    pub headers: String,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub date: String,
    pub message_id: String,
    /// The first text body, as text.
    pub text: String,
    /// The text was made from an HTML part.
    pub text_from_html: bool,
    /// The text was cut at [`MAX_TEXT`] characters.
    pub truncated: bool,
    /// (file name, content type, decoded size)
    pub attachments: Vec<(String, String, usize)>,
}

fn cut(s: &str, max: usize) -> (String, bool) {
    if s.chars().count() <= max {
        (s.to_string(), false)
    } else {
        (s.chars().take(max).collect(), true)
    }
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    a.iter()
        .map(|x| match (&x.name, &x.address) {
            (Some(n), Some(ad)) => format!("{n} <{ad}>"),
            (None, Some(ad)) => ad.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The safe view of `raw`. Never panics; unparseable mail shows its
/// beginning as text.
pub fn view(raw: &[u8]) -> SafeView {
    let head_end = memfind(raw, b"\r\n\r\n")
        .or_else(|| memfind(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let (headers, _) = cut(
        &String::from_utf8_lossy(&raw[..head_end.min(MAX_HEADERS)]),
        MAX_HEADERS,
    );
    let Some(msg) = MessageParser::default().parse(raw) else {
        let (text, truncated) = cut(&String::from_utf8_lossy(raw), MAX_TEXT);
        return SafeView {
            headers,
            text,
            truncated,
            ..Default::default()
        };
    };
    let html_only = msg
        .text_part(0)
        .is_some_and(|p| matches!(p.body, mail_parser::PartType::Html(_)));
    let body = msg.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
    let (text, truncated) = cut(&body, MAX_TEXT);
    let attachments = msg
        .attachments()
        .map(|p| {
            (
                p.attachment_name().unwrap_or("(no name)").to_string(),
                p.content_type()
                    .map(|c| match c.subtype() {
                        Some(s) => format!("{}/{}", c.ctype(), s),
                        None => c.ctype().to_string(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".into()),
                p.contents().len(),
            )
        })
        .collect();
    SafeView {
        headers,
        subject: msg.subject().unwrap_or("").to_string(),
        from: addresses(msg.from()),
        to: addresses(msg.to()),
        date: msg.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        message_id: msg.message_id().unwrap_or("").to_string(),
        text,
        text_from_html: html_only,
        truncated,
        attachments,
    }
}

fn memfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_text_and_attachments_are_listed() {
        let m = b"From: A <a@example.com>\r\nTo: b@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n\
<html><body><p>Hello <b>there</b></p><img src=\"http://evil.example/t.gif\"><script>alert(1)</script></body></html>\r\n\
--x\r\nContent-Type: application/octet-stream; name=a.exe\r\nContent-Disposition: attachment; filename=a.exe\r\n\r\nMZ\r\n--x--\r\n";
        let v = view(m);
        assert_eq!(v.subject, "hi");
        assert!(v.from.contains("a@example.com"));
        assert!(
            v.text.contains("Hello") && v.text.contains("there"),
            "{v:?}"
        );
        assert!(!v.text.contains("<b>"), "{v:?}");
        assert!(v.text_from_html);
        assert_eq!(v.attachments.len(), 1);
        assert_eq!(v.attachments[0].0, "a.exe");
        assert!(v.headers.starts_with("From: A"));
        let v = view(b"\xff\xfe garbage");
        assert!(!v.text.is_empty() || !v.headers.is_empty());
    }
}
