//! Small edits of a message's top-level header block: the Received trace
//! field, status headers, the Subject tag. Edits keep the message's line
//! ending style and never touch the body. None of them panics on any input.

use std::borrow::Cow;

/// `\r\n` if the message's first line ends so (or it has no line end), else `\n`.
pub fn line_ending(msg: &[u8]) -> &'static [u8] {
    match memchr::memchr(b'\n', msg) {
        Some(i) if i > 0 && msg[i - 1] == b'\r' => b"\r\n",
        Some(_) => b"\n",
        None => b"\r\n",
    }
}

/// Where the header block ends: the offset of the empty line (or the end).
pub fn header_end(msg: &[u8]) -> usize {
    let mut pos = 0;
    while pos < msg.len() {
        let line_end = memchr::memchr(b'\n', &msg[pos..])
            .map(|i| pos + i + 1)
            .unwrap_or(msg.len());
        let line = &msg[pos..line_end];
        if line == b"\n" || line == b"\r\n" {
            return pos;
        }
        pos = line_end;
    }
    msg.len()
}

/// The message with `name: value` put at the top of the header block.
pub fn prepend_header(msg: &[u8], name: &str, value: &str) -> Vec<u8> {
    prepend_headers(msg, &[(name, value)])
}

/// The message with the fields put at the top, in order, in one copy.
pub fn prepend_headers(msg: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let eol = line_ending(msg);
    let extra: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(msg.len() + extra);
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&sanitize(value, eol));
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(msg);
    out
}

/// A header value with any CR/LF turned into folding (never a new field).
fn sanitize<'a>(value: &'a str, eol: &[u8]) -> Cow<'a, [u8]> {
    if !value.contains(['\r', '\n']) {
        return Cow::Borrowed(value.as_bytes());
    }
    let mut out = Vec::new();
    for part in value.split(['\r', '\n']).filter(|p| !p.trim().is_empty()) {
        if !out.is_empty() {
            out.extend_from_slice(eol);
            out.push(b'\t');
        }
        out.extend_from_slice(part.trim().as_bytes());
    }
    Cow::Owned(out)
}

/// The top-level fields named `name` (case-insensitive) removed, with their
/// continuation lines. Borrowed when there is none.
pub fn remove_header<'a>(msg: &'a [u8], name: &str) -> Cow<'a, [u8]> {
    remove_header_if(msg, name, |_| true)
}

/// As [`remove_header`], for the fields whose unfolded value (after the
/// colon, trimmed) `keep_out` says yes to.
pub fn remove_header_if<'a>(
    msg: &'a [u8],
    name: &str,
    keep_out: impl Fn(&str) -> bool,
) -> Cow<'a, [u8]> {
    let (_, spans) = field_spans(msg, name);
    let spans: Vec<(usize, usize)> = spans
        .into_iter()
        .filter(|&(a, b)| {
            let field = String::from_utf8_lossy(&msg[a..b]);
            let value = field.split_once(':').map(|(_, v)| v).unwrap_or("");
            let unfolded: String = value
                .split(['\r', '\n'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            keep_out(&unfolded)
        })
        .collect();
    if spans.is_empty() {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len());
    let mut last = 0;
    for (a, b) in spans {
        out.extend_from_slice(&msg[last..a]);
        last = b;
    }
    out.extend_from_slice(&msg[last..]);
    Cow::Owned(out)
}

/// Byte spans of each top-level field `name` with its continuation lines.
fn field_spans(msg: &[u8], name: &str) -> (usize, Vec<(usize, usize)>) {
    let end = header_end(msg);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    let mut removing = false;
    while pos < end {
        let line_end = memchr::memchr(b'\n', &msg[pos..end])
            .map(|i| pos + i + 1)
            .unwrap_or(end);
        let line = &msg[pos..line_end];
        let cont = matches!(line.first(), Some(b' ' | b'\t'));
        if !cont {
            removing = is_field(line, name);
        }
        if removing {
            match spans.last_mut() {
                Some(s) if cont && s.1 == pos => s.1 = line_end,
                _ => spans.push((pos, line_end)),
            }
        }
        pos = line_end;
    }
    (end, spans)
}

fn is_field(line: &[u8], name: &str) -> bool {
    line.len() > name.len()
        && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && line[name.len()..]
            .iter()
            .find(|b| **b != b' ' && **b != b'\t')
            == Some(&b':')
}

/// The unfolded value of the first top-level field `name`.
pub fn header_value(msg: &[u8], name: &str) -> Option<String> {
    let end = header_end(msg);
    let mut pos = 0;
    let mut value: Option<Vec<u8>> = None;
    while pos < end {
        let line_end = memchr::memchr(b'\n', &msg[pos..end])
            .map(|i| pos + i + 1)
            .unwrap_or(end);
        let line = &msg[pos..line_end];
        let cont = matches!(line.first(), Some(b' ' | b'\t'));
        match (&mut value, cont) {
            (Some(v), true) => v.extend_from_slice(line),
            (Some(_), false) => break,
            (None, false) if is_field(line, name) => {
                let colon = memchr::memchr(b':', line).unwrap_or(line.len() - 1);
                value = Some(line[colon + 1..].to_vec());
            }
            _ => {}
        }
        pos = line_end;
    }
    value.map(|v| {
        String::from_utf8_lossy(&v)
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The Subject prefixed with `tag` (once; a Subject that already starts with
/// it is left alone); a Subject field is added when there is none.
pub fn tag_subject(msg: &[u8], tag: &str) -> Vec<u8> {
    let end = header_end(msg);
    let mut pos = 0;
    while pos < end {
        let line_end = memchr::memchr(b'\n', &msg[pos..end])
            .map(|i| pos + i + 1)
            .unwrap_or(end);
        let line = &msg[pos..line_end];
        if is_field(line, "Subject") {
            let colon = pos + memchr::memchr(b':', line).unwrap_or(0) + 1;
            let rest = &msg[colon..];
            let skip = rest
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            if rest[skip..].starts_with(tag.as_bytes()) {
                return msg.to_vec();
            }
            let mut out = Vec::with_capacity(msg.len() + tag.len() + 2);
            out.extend_from_slice(&msg[..colon]);
            out.push(b' ');
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(&msg[colon + skip..]);
            return out;
        }
        pos = line_end;
    }
    prepend_header(msg, "Subject", tag)
}

/// RFC 5322 date-time of a Unix time, in UTC.
pub fn rfc5322_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The header fields of the block as raw byte ranges (each field with its
/// folded continuation lines and its line end).
fn fields(msg: &[u8]) -> Vec<&[u8]> {
    let end = header_end(msg);
    let mut out: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    let mut start = 0;
    while pos < end {
        let line_end = memchr::memchr(b'\n', &msg[pos..end])
            .map(|i| pos + i + 1)
            .unwrap_or(end);
        if pos > start && !matches!(msg[pos], b' ' | b'\t') {
            out.push(&msg[start..pos]);
            start = pos;
        }
        pos = line_end;
    }
    if end > start {
        out.push(&msg[start..end]);
    }
    out
}

fn field_name(f: &[u8]) -> &[u8] {
    let colon = memchr::memchr(b':', f).unwrap_or(f.len());
    let n = &f[..colon];
    let trimmed = n
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &n[..trimmed]
}

fn is_content_field(f: &[u8]) -> bool {
    let n = field_name(f);
    n.len() >= 8 && n[..8].eq_ignore_ascii_case(b"content-")
        || n.eq_ignore_ascii_case(b"mime-version")
}

/// A MIME boundary that does not occur in `msg`.
fn boundary_for(msg: &[u8]) -> String {
    let mut n: u64 = msg.len() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    loop {
        let b = format!("mxguard-{n:016x}");
        if memchr::memmem::find(msg, b.as_bytes()).is_none() {
            return b;
        }
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
}

/// The message wrapped in `multipart/mixed` with `banner` as a first
/// text/plain part and the original content (its Content-* fields and body)
/// as the second, so every client shows the banner above the message as it
/// was. The other header fields stay at the top. Never panics.
pub fn with_banner(msg: &[u8], banner: &str) -> Vec<u8> {
    let eol = line_ending(msg);
    let eols = std::str::from_utf8(eol).unwrap_or("\r\n");
    let end = header_end(msg);
    let body = &msg[(end + eol.len()).min(msg.len())..];
    let boundary = boundary_for(msg);
    let mut out = Vec::with_capacity(msg.len() + banner.len() + 400);
    let fs = fields(msg);
    for f in fs.iter().filter(|f| !is_content_field(f)) {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(
        format!("MIME-Version: 1.0{eols}Content-Type: multipart/mixed; boundary=\"{boundary}\"{eols}{eols}").as_bytes(),
    );
    out.extend_from_slice(format!("--{boundary}{eols}Content-Type: text/plain; charset=utf-8{eols}Content-Transfer-Encoding: quoted-printable{eols}Content-Disposition: inline{eols}{eols}").as_bytes());
    out.extend_from_slice(
        crate::notify::quoted_printable(banner)
            .replace("\r\n", eols)
            .as_bytes(),
    );
    out.extend_from_slice(format!("{eols}--{boundary}{eols}").as_bytes());
    let content: Vec<&&[u8]> = fs
        .iter()
        .filter(|f| is_content_field(f) && !field_name(f).eq_ignore_ascii_case(b"mime-version"))
        .collect();
    if content.is_empty() {
        out.extend_from_slice(format!("Content-Type: text/plain{eols}").as_bytes());
    }
    for f in content {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(eol);
    out.extend_from_slice(body);
    if !body.ends_with(b"\n") {
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(format!("--{boundary}--{eols}").as_bytes());
    out
}

/// A notice in place of the message: its trace and addressing fields
/// (Received, From, To, Cc, Date, Subject, Message-ID, Reply-To) and a
/// text/plain body. Never panics.
pub fn replacement(msg: &[u8], notice: &str) -> Vec<u8> {
    const KEEP: [&[u8]; 8] = [
        b"received",
        b"from",
        b"to",
        b"cc",
        b"date",
        b"subject",
        b"message-id",
        b"reply-to",
    ];
    let eol = line_ending(msg);
    let eols = std::str::from_utf8(eol).unwrap_or("\r\n");
    let mut out = Vec::with_capacity(notice.len() + 1024);
    for f in fields(msg) {
        if KEEP.iter().any(|k| field_name(f).eq_ignore_ascii_case(k)) {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(format!("MIME-Version: 1.0{eols}Content-Type: text/plain; charset=utf-8{eols}Content-Transfer-Encoding: quoted-printable{eols}{eols}").as_bytes());
    out.extend_from_slice(
        crate::notify::quoted_printable(notice)
            .replace("\r\n", eols)
            .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn remove_header_if_looks_at_each_field_alone() {
        let m = b"Authentication-Results: mx.ours; spf=pass\r\nAuthentication-Results: other.example;\r\n dkim=pass\r\nAuthentication-Results:\r\n  mx.ours; dkim=pass\r\nSubject: x\r\n\r\nbody\r\n";
        let out = remove_header_if(m, "authentication-results", |v| v.starts_with("mx.ours"));
        assert_eq!(
            &out[..],
            &b"Authentication-Results: other.example;\r\n dkim=pass\r\nSubject: x\r\n\r\nbody\r\n"
                [..]
        );
        assert!(matches!(
            remove_header_if(m, "Subject", |v| v == "y"),
            Cow::Borrowed(_)
        ));
    }

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn header_edits() {
        let m = b"Subject: hi\r\nX-A: 1\r\n  cont\r\nTo: u\r\n\r\nX-A: body\r\n";
        assert_eq!(line_ending(m), b"\r\n");
        let p = prepend_header(m, "X-New", "v\r\nX-Evil: 1");
        assert!(p.starts_with(b"X-New: v\r\n\tX-Evil: 1\r\nSubject"));
        let r = remove_header(m, "x-a");
        assert_eq!(&*r, b"Subject: hi\r\nTo: u\r\n\r\nX-A: body\r\n");
        assert!(matches!(remove_header(m, "X-B"), Cow::Borrowed(_)));
        assert_eq!(header_value(m, "X-A").unwrap(), "1 cont");
        assert_eq!(header_value(m, "Missing"), None);
        let t = tag_subject(m, "[VIRUS]");
        assert!(t.starts_with(b"Subject: [VIRUS] hi\r\n"));
        assert_eq!(tag_subject(&t, "[VIRUS]"), t);
        let t = tag_subject(b"To: u\n\nbody", "[X]");
        assert_eq!(t, b"Subject: [X]\nTo: u\n\nbody");
        assert_eq!(header_end(b"no header end"), 13);
        // Never panics on odd input.
        for m in [
            &b""[..],
            b"\n",
            b":",
            b"Subject",
            b"Subject:",
            b"Subject:\n \n",
        ] {
            let _ = tag_subject(m, "x");
            let _ = remove_header(m, "Subject");
            let _ = header_value(m, "Subject");
        }
    }

    #[test]
    fn banner_and_replacement() {
        let m = b"Received: x\r\nFrom: a@b\r\nSubject: hi\r\nContent-Type: text/html;\r\n charset=utf-8\r\nX-Other: 1\r\n\r\n<p>hello</p>\r\n";
        let w = with_banner(m, "Careful: caf\u{e9}");
        let t = String::from_utf8(w.clone()).unwrap();
        assert!(t.starts_with("Received: x\r\nFrom: a@b\r\nSubject: hi\r\nX-Other: 1\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="), "{t}");
        assert!(t.contains("Careful: caf=C3=A9"), "{t}");
        assert!(
            t.contains(
                "Content-Type: text/html;\r\n charset=utf-8\r\n\r\n<p>hello</p>\r\n--mxguard-"
            ),
            "{t}"
        );
        assert!(t.trim_end().ends_with("--"), "{t}");
        assert_eq!(header_value(&w, "Subject").as_deref(), Some("hi"));
        let r = String::from_utf8(replacement(m, "It was replaced.")).unwrap();
        assert!(
            r.contains("From: a@b\r\n")
                && r.contains("Subject: hi\r\n")
                && !r.contains("X-Other")
                && !r.contains("<p>"),
            "{r}"
        );
        assert!(r.ends_with("It was replaced.\r\n"), "{r}");
        for m in [&b""[..], b"\r\n", b"no headers", b" folded first\r\n\r\nb"] {
            let _ = with_banner(m, "x");
            let _ = replacement(m, "x");
        }
    }
}
