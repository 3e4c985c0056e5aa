//! The spam classifier's view of a message: a set of tokens (each counted
//! once per message), in the spirit of SpamBayes' tokenizer.
//!
//! - Body words: lowercased, surrounding punctuation removed, 3 to 12
//!   characters kept as they are; longer words become a "skip" token with
//!   their first character and length rounded to 10; words with `@` become
//!   address tokens.
//! - Subject words with their own prefix (the same word weighs differently
//!   there); runs of `!`, `$` and capitals are tokens of their own.
//! - From: address, domain and display name words.
//! - Header names present (a mailer's fingerprint), the mailer, the
//!   top-level content type, Received hosts, network prefixes and software
//!   words ("esmtp", "qmail"), the Message-ID's domain, the Date's zone,
//!   and the words of every other header under its name (`h:x-priority:3`),
//!   identifiers left out.
//! - Subject bigrams and word count; the share of words in capitals.
//! - HTML markup ([`html_features`]): tag:attribute pairs, colours, sizes
//!   and faces, `display:none`, tag counts, comments.
//! - Links: host and each parent domain, path words, IP-literal hosts, link
//!   text that names another host.
//! - Attachments: extension, declared and true type; HTML tag names.
//!
//! Every token is a `u64` hash (FNV-1a of the prefixed text): the model
//! stores hashes only. Bounded: at most [`MAX_TOKENS`] per message.

use crate::facts::MessageFacts;
use std::collections::HashSet;

/// Most distinct tokens taken from one message.
pub const MAX_TOKENS: usize = 20_000;

/// FNV-1a, 64 bits.
pub fn hash(prefix: &str, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prefix.bytes().chain(std::iter::once(0xff)).chain(s.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Collects distinct token hashes (and, for explanations, their text when asked).
pub struct Tokens {
    set: HashSet<u64>,
    names: Option<Vec<(u64, String)>>,
}

impl Tokens {
    fn new(keep_names: bool) -> Tokens {
        Tokens {
            set: HashSet::with_capacity(512),
            names: keep_names.then(Vec::new),
        }
    }

    fn add(&mut self, prefix: &str, s: &str) {
        if self.set.len() >= MAX_TOKENS || s.is_empty() {
            return;
        }
        let h = hash(prefix, s);
        if self.set.insert(h) {
            if let Some(n) = &mut self.names {
                n.push((h, format!("{prefix}{s}")));
            }
        }
    }

    /// The token hashes.
    pub fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.set.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The text of a token (only when built with names).
    pub fn name(&self, h: u64) -> Option<&str> {
        self.names
            .as_ref()?
            .iter()
            .find(|(x, _)| *x == h)
            .map(|(_, n)| n.as_str())
    }
}

fn trim_punct(w: &str) -> &str {
    w.trim_matches(|c: char| !c.is_alphanumeric() && c != '$' && c != '%')
}

/// Body-style words of `text` under `prefix`; with `bigrams`, also each
/// pair of consecutive ordinary words.
fn words(t: &mut Tokens, prefix: &str, text: &str, bigrams: bool) {
    let mut prev: Option<String> = None;
    for raw in text.split(|c: char| c.is_whitespace()) {
        let w = trim_punct(raw);
        if w.is_empty() {
            continue;
        }
        let lower = w.to_lowercase();
        let n = lower.chars().count();
        if lower.contains('@') && n > 3 {
            if let Some((name, dom)) = lower.rsplit_once('@') {
                t.add(prefix, &format!("email name:{name}"));
                for part in dom.split('.') {
                    t.add(prefix, &format!("email addr:{part}"));
                }
            }
            continue;
        }
        if lower.starts_with("http") || lower.starts_with("www.") {
            continue; // Links are tokenized from the decoder's link list.
        }
        if (3..=12).contains(&n) {
            t.add(prefix, &lower);
            if bigrams {
                if let Some(p) = &prev {
                    t.add("bi:", &format!("{p} {lower}"));
                }
                prev = Some(lower);
            }
            continue;
        }
        prev = None;
        if n > 12 {
            let first = lower.chars().next().unwrap_or(' ');
            t.add(prefix, &format!("skip:{first} {}", n / 10 * 10));
        }
    }
}

/// Host-ish pieces of a Received header: domains and IPv4 prefixes.
fn received(t: &mut Tokens, value: &str) {
    for raw in value.split(|c: char| c.is_whitespace() || "()[];<>".contains(c)) {
        let w = raw
            .trim_matches(|c: char| c == '.' || c == ',')
            .to_ascii_lowercase();
        if w.is_empty() {
            continue;
        }
        if w.len() >= 3 && w.len() <= 12 && w.chars().all(|c| c.is_ascii_alphabetic()) {
            // Software and protocol words: "esmtp", "qmail", "invoked", "helo"...
            t.add("rcvd:w:", &w);
            continue;
        }
        let parts: Vec<&str> = w.split('.').collect();
        if parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.parse::<u8>().is_ok())
        {
            t.add("rcvd:ip:", &parts[..2].join("."));
            t.add("rcvd:ip:", &parts[..3].join("."));
        } else if parts.len() >= 2
            && parts.last().is_some_and(|tld| {
                tld.len() >= 2 && tld.len() <= 6 && tld.chars().all(|c| c.is_ascii_alphabetic())
            })
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            let n = parts.len();
            t.add("rcvd:dom:", &parts[n - 2..].join("."));
        }
    }
}

/// Headers whose values are tokenized elsewhere or are unique per message.
const OWN_HEADERS: &[&str] = &[
    "received",
    "subject",
    "from",
    "to",
    "cc",
    "message-id",
    "date",
    "references",
    "in-reply-to",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "content-id",
    "thread-index",
    "x-uidl",
    "x-uid",
];

/// Words of any other header under `h:<name>:`: a mailer's and a
/// list's fingerprint ("X-Mailer: Microsoft Outlook Express 6",
/// "Content-Type: multipart/alternative", "X-Priority: 3 (Normal)").
/// Words that look like identifiers (more than 3 digits, or longer than
/// 20 characters) are left out.
fn header_words(t: &mut Tokens, lname: &str, value: &str) {
    if OWN_HEADERS.contains(&lname) || lname.starts_with("x-spam") {
        return;
    }
    let prefix = format!("h:{lname}:");
    let mut n = 0;
    for raw in value.split(|c: char| c.is_whitespace() || "<>()[];,\"'=".contains(c)) {
        let w = raw.trim_matches(|c: char| c == '.' || c == ':' || c == '/');
        if w.is_empty() || w.len() > 20 || w.chars().filter(|c| c.is_ascii_digit()).count() > 3 {
            continue;
        }
        t.add(&prefix, &w.to_lowercase());
        n += 1;
        if n >= 12 {
            break;
        }
    }
}

/// The host of a URL, lowercased (without port and credentials).
fn url_host(href: &str) -> Option<String> {
    mxguard_decode::text::host_of(href)
}

/// Most bytes of an HTML part read by [`html_features`].
pub const MAX_HTML_SCAN: usize = 256 * 1024;
/// Most features [`html_features`] returns.
const MAX_HTML_FEATURES: usize = 256;

/// Attributes whose values are features of their own (colours, sizes,
/// faces, alignment: how a page is dressed up).
const HTML_VALUE_ATTRS: &[&str] = &[
    "color",
    "bgcolor",
    "size",
    "face",
    "align",
    "border",
    "cellpadding",
    "cellspacing",
];

/// Markup features of HTML source, each once: `tag:attr` for every
/// attribute written (`font:color`, `img:width`, `td:bgcolor`), `tag:attr=value`
/// for colours, sizes, faces and alignment (`font:size=+2`), tag counts in
/// buckets (`count:img:2-3`), comments inside words and hidden text hints.
/// Reads at most [`MAX_HTML_SCAN`] bytes. Never panics.
pub fn html_features(data: &[u8]) -> Vec<String> {
    let data = &data[..data.len().min(MAX_HTML_SCAN)];
    let mut out: Vec<String> = Vec::new();
    let push = |out: &mut Vec<String>, s: String| {
        if out.len() < MAX_HTML_FEATURES && !out.contains(&s) {
            out.push(s);
        }
    };
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut comments = 0usize;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &data[i..]) {
        let at = i + off + 1;
        i = at;
        if data[at..].starts_with(b"!--") {
            comments += 1;
            continue;
        }
        let name: String = data[at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .take(12)
            .map(|b| b.to_ascii_lowercase() as char)
            .collect();
        if name.is_empty() || !name.as_bytes()[0].is_ascii_alphabetic() || name.len() > 10 {
            continue;
        }
        if let Some(k) = counts.iter().position(|(n, _)| *n == name) {
            counts[k].1 += 1;
        } else if counts.len() < 64 {
            counts.push((name.clone(), 1));
        }
        // Attributes up to the tag's end (at most 512 bytes).
        let end = memchr::memchr(b'>', &data[at..])
            .map_or(data.len(), |e| at + e)
            .min(at + 512);
        let inside = String::from_utf8_lossy(&data[at + name.len()..end]).to_ascii_lowercase();
        let mut rest = inside.as_str();
        while let Some(eq) = rest.find('=') {
            let attr = rest[..eq]
                .trim_end()
                .rsplit(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                .next()
                .unwrap_or("");
            let after = rest[eq + 1..].trim_start();
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                q.split_once('"').unwrap_or((q, ""))
            } else if let Some(q) = after.strip_prefix('\'') {
                q.split_once('\'').unwrap_or((q, ""))
            } else {
                after
                    .split_once(|c: char| c.is_whitespace())
                    .unwrap_or((after, ""))
            };
            if !attr.is_empty()
                && attr.len() <= 16
                && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                push(&mut out, format!("{name}:{attr}"));
                if HTML_VALUE_ATTRS.contains(&attr) && value.len() <= 16 {
                    push(&mut out, format!("{name}:{attr}={}", value.trim()));
                }
                if attr == "style" {
                    for decl in value.split(';').take(8) {
                        if let Some((k, v)) = decl.split_once(':') {
                            let k = k.trim();
                            if k.len() <= 20 {
                                push(&mut out, format!("style:{k}"));
                                let v = v.trim();
                                if (k == "display" || k == "visibility" || k == "font-size")
                                    && v.len() <= 12
                                {
                                    push(&mut out, format!("style:{k}={v}"));
                                }
                            }
                        }
                    }
                }
            }
            rest = next;
        }
    }
    for (name, c) in counts {
        let bucket = match c {
            1 => "1",
            2..=3 => "2-3",
            4..=9 => "4-9",
            10..=29 => "10-29",
            _ => "30+",
        };
        push(&mut out, format!("count:{name}:{bucket}"));
    }
    push(
        &mut out,
        format!(
            "comments:{}",
            match comments {
                0 => "0",
                1..=3 => "few",
                _ => "many",
            }
        ),
    );
    out
}

/// The tokens of a message.
pub fn tokenize(f: &MessageFacts) -> Tokens {
    tokenize_with(f, false)
}

/// [`tokenize`], keeping each token's text for explanations.
pub fn tokenize_named(f: &MessageFacts) -> Tokens {
    tokenize_with(f, true)
}

fn tokenize_with(f: &MessageFacts, names: bool) -> Tokens {
    let mut t = Tokens::new(names);

    // Subject.
    words(&mut t, "subject:", &f.subject, false);
    {
        let sw: Vec<String> = f
            .subject
            .split_whitespace()
            .map(|w| trim_punct(w).to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        for p in sw.windows(2) {
            t.add("subject:bi:", &format!("{} {}", p[0], p[1]));
        }
        t.add("subject:words:", &sw.len().min(12).to_string());
    }
    for run in ["!!", "$$", "??"] {
        if f.subject.contains(run) {
            t.add("subject:run:", run);
        }
    }
    let letters: Vec<char> = f.subject.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 8 {
        let upper = letters.iter().filter(|c| c.is_uppercase()).count();
        t.add("subject:caps:", &format!("{}", upper * 10 / letters.len()));
    }

    // From.
    if let Some((local, dom)) = f.from_address.rsplit_once('@') {
        t.add("from:addr:", &f.from_address);
        t.add("from:dom:", dom);
        let digits = local.chars().filter(|c| c.is_ascii_digit()).count();
        t.add("from:digits:", &format!("{}", digits.min(5)));
    } else {
        t.add("from:", "none");
    }
    for w in f.from_name.split_whitespace() {
        let w = trim_punct(w).to_lowercase();
        if !w.is_empty() {
            t.add("from:name:", &w);
        }
    }

    // Headers.
    let mut received_n = 0;
    for (name, value) in &f.headers {
        let lname = name.to_ascii_lowercase();
        t.add("hdr:", &lname);
        header_words(&mut t, &lname, value);
        match lname.as_str() {
            "received" => {
                received_n += 1;
                received(&mut t, value);
            }
            "x-mailer" | "user-agent" => {
                for w in value.split_whitespace().take(4) {
                    t.add("mailer:", &w.to_lowercase());
                }
            }
            "content-type" => {
                let v = value.to_ascii_lowercase();
                let ty = v.split(';').next().unwrap_or("").trim();
                t.add("ctype:", ty);
                if let Some(cs) = v.split("charset=").nth(1) {
                    let cs = cs.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
                    t.add("charset:", cs.split([';', '"']).next().unwrap_or(""));
                }
            }
            "message-id" => {
                if let Some((_, dom)) = value.trim_matches(['<', '>', ' ']).rsplit_once('@') {
                    let dom = dom.to_ascii_lowercase();
                    let parts: Vec<&str> = dom.split('.').collect();
                    let n = parts.len();
                    t.add("mid:dom:", &parts[n.saturating_sub(2)..].join("."));
                } else {
                    t.add("mid:", "malformed");
                }
            }
            "date" => {
                // The zone as written ("+0000", "-0700", "gmt") and whether
                // the weekday is there: how the sending software writes dates.
                let last = value.split_whitespace().last().unwrap_or("");
                let zone = if last.starts_with('(') {
                    value.split_whitespace().rev().nth(1).unwrap_or("")
                } else {
                    last
                };
                t.add("date:zone:", &zone.to_ascii_lowercase());
                t.add(
                    "date:weekday:",
                    if value.contains(',') { "yes" } else { "no" },
                );
            }
            "content-transfer-encoding" => t.add("cte:", &value.to_ascii_lowercase()),
            "reply-to" | "return-path" | "sender" | "errors-to" => {
                let v = value.to_ascii_lowercase();
                if let Some((_, dom)) = v.trim_matches(['<', '>', ' ']).rsplit_once('@') {
                    t.add(&format!("{lname}:dom:"), dom.trim_end_matches('>'));
                }
            }
            "list-id" | "x-mailing-list" | "precedence" | "list-unsubscribe" => {
                let v = value.to_ascii_lowercase();
                t.add(
                    &format!("{lname}:"),
                    v.split_whitespace().last().unwrap_or(""),
                );
            }
            _ => {}
        }
    }
    t.add("received:count:", &received_n.min(10).to_string());
    for r in &f.recipients {
        t.add("to:addr:", r);
        if let Some((_, dom)) = r.rsplit_once('@') {
            t.add("to:dom:", dom);
        }
    }
    t.add(
        "rcpt:count:",
        match f.recipients.len() {
            0 => "0",
            1 => "1",
            2..=5 => "few",
            _ => "many",
        },
    );

    // Body.
    let mut html = false;
    for p in &f.texts {
        words(&mut t, "", &p.text, true);
        if let Some(d) = &p.declared_type {
            t.add("part:type:", d);
        }
        // Share of characters outside ASCII, in tenths (foreign or obfuscated text).
        let total = p.text.chars().count();
        if total >= 20 {
            let high = p.text.chars().filter(|c| !c.is_ascii()).count();
            t.add("8bit:", &(high * 10 / total).to_string());
        }
        // Share of words in capitals, in tenths.
        let (mut caps, mut all) = (0usize, 0usize);
        for w in p.text.split_whitespace().take(5000) {
            if w.chars().filter(|c| c.is_alphabetic()).count() >= 3 {
                all += 1;
                if !w.chars().any(|c| c.is_lowercase()) {
                    caps += 1;
                }
            }
        }
        if all >= 10 {
            t.add("caps:", &(caps * 10 / all).to_string());
        }
        if p.html {
            html = true;
            for tag in &p.tags {
                t.add("html:tag:", tag);
            }
            for x in &p.html_features {
                t.add("html:", x);
            }
        }
    }
    t.add("html:", if html { "yes" } else { "no" });

    // Links.
    for l in &f.links {
        let Some(host) = url_host(&l.href) else {
            continue;
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            t.add("url:", "ip-literal");
        } else {
            let labels: Vec<&str> = host.split('.').collect();
            for i in 0..labels.len().saturating_sub(1) {
                t.add("url:", &labels[i..].join("."));
            }
        }
        if let Some(rest) = l.href.split_once("://").map(|(_, r)| r) {
            if let Some((_, path)) = rest.split_once('/') {
                for seg in path.split(|c: char| "/?&=.#_-".contains(c)).take(8) {
                    if (2..=20).contains(&seg.len()) {
                        t.add("url:path:", &seg.to_ascii_lowercase());
                    }
                }
            }
        }
        if let Some(text) = &l.text {
            if let Some(shown) = url_host(text.trim()) {
                if shown != host {
                    t.add("url:", "text-names-other-host");
                }
            }
        }
    }
    t.add(
        "url:count:",
        match f.links.len() {
            0 => "0",
            1..=2 => "few",
            3..=10 => "some",
            _ => "many",
        },
    );

    // Attachments.
    for a in f.attachments.iter().filter(|a| !a.is_text) {
        if let Some(n) = &a.name {
            if let Some((_, ext)) = n.rsplit_once('.') {
                t.add("att:ext:", &ext.to_ascii_lowercase());
            }
        }
        if let Some(d) = &a.declared_type {
            t.add("att:type:", d);
        }
        t.add("att:true:", a.file_type.name());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::TextPart;

    #[test]
    fn words_and_prefixes() {
        let f = MessageFacts {
            subject: "FREE money!!".into(),
            from_address: "x123@spam.test".into(),
            texts: vec![TextPart {
                text: "Click here, (NOW) supercalifragilistic me@mail.example.test".into(),
                html: false,
                tags: vec![],
                html_features: vec![],
                declared_type: None,
            }],
            ..Default::default()
        };
        let t = tokenize_named(&f);
        let names: Vec<&str> = t.hashes().filter_map(|h| t.name(h)).collect();
        for want in [
            "subject:free",
            "subject:money",
            "subject:run:!!",
            "click",
            "here",
            "now",
            "skip:s 20",
            "email name:me",
            "email addr:example",
            "from:dom:spam.test",
            "from:digits:3",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        assert_eq!(hash("", "click"), hash("", "click"));
    }

    #[test]
    fn html_markup_features() {
        let f = html_features(
            b"<html><body bgcolor=#FFFFFF><font color=\"red\" size=+2 face='Arial'>BUY</font>\
<img src=a.gif width=1><img src=b.gif><p style=\"display: none; color:red\">x</p>\
b<!-- -->uy <a href=x>y</a><notatag",
        );
        for want in [
            "body:bgcolor",
            "body:bgcolor=#ffffff",
            "font:color=red",
            "font:size=+2",
            "font:face=arial",
            "img:width",
            "img:src",
            "style:display=none",
            "style:color",
            "count:img:2-3",
            "count:font:1",
            "comments:few",
        ] {
            assert!(f.iter().any(|x| x == want), "{want} in {f:?}");
        }
        assert!(html_features(b"<<<<=>\"'").len() <= 2);
        assert_eq!(html_features(b""), ["comments:0"]);
        assert_ne!(hash("subject:", "click"), hash("", "subject:click"));
    }
}
