//! URLs and domains for URL rules and phishing checks: a small URL
//! splitter (scheme, credentials, host, path), IP literals (also the
//! decimal and hex forms browsers accept), an approximate registrable
//! domain, edit distance, punycode and the built-in lists of URL
//! shorteners and phishing brands.
//!
//! Guarantees: never panics; each function is linear in its input, except
//! [`edit_distance`] (product of the two lengths, both capped at
//! [`MAX_LABEL`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest host considered (longer hosts are cut; DNS allows 253).
pub const MAX_HOST: usize = 255;
/// Longest label compared by [`edit_distance`].
pub const MAX_LABEL: usize = 63;

/// Public suffixes of two labels that are common in mail (an
/// approximation of the Public Suffix List: without them `example.co.uk`
/// would read `co.uk`).
const TWO_LABEL_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "com.au",
    "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "co.jp", "ne.jp", "or.jp", "ac.jp",
    "co.za", "com.br", "net.br", "org.br", "gov.br", "com.cn", "net.cn", "org.cn", "com.mx",
    "co.in", "net.in", "org.in", "co.kr", "or.kr", "com.tr", "com.sg", "com.hk", "com.tw",
    "com.ar", "com.my", "com.ph", "com.vn", "co.id", "co.il", "com.ua", "com.pl", "com.ru",
    "com.es", "co.th", "com.pk", "com.eg", "com.ng", "com.sa",
];

/// Known URL shorteners (extendable in the config's `[urls] shorteners`).
pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "s.id",
    "lnkd.in",
    "shorte.st",
    "adf.ly",
    "bl.ink",
    "soo.gd",
    "x.co",
    "qr.ae",
    "trib.al",
    "db.tt",
    "1url.com",
    "tr.im",
    "u.to",
    "clck.ru",
    "cli.gs",
    "shorturl.com",
    "short.io",
    "tiny.one",
    "urlz.fr",
    "snip.ly",
    "po.st",
    "mcaf.ee",
    "yourls.org",
    "2.gp",
    "qrco.de",
];

/// Brands whose look-alikes the phishing checks report (extendable and
/// replaceable in the config's `[phishing] brands`).
pub const BRANDS: &[&str] = &[
    "paypal.com",
    "apple.com",
    "icloud.com",
    "microsoft.com",
    "office.com",
    "outlook.com",
    "live.com",
    "office365.com",
    "google.com",
    "gmail.com",
    "amazon.com",
    "netflix.com",
    "facebook.com",
    "instagram.com",
    "linkedin.com",
    "twitter.com",
    "dhl.com",
    "fedex.com",
    "ups.com",
    "usps.com",
    "chase.com",
    "wellsfargo.com",
    "bankofamerica.com",
    "citibank.com",
    "hsbc.com",
    "barclays.co.uk",
    "santander.com",
    "dropbox.com",
    "docusign.com",
    "adobe.com",
    "ebay.com",
    "irs.gov",
    "americanexpress.com",
    "coinbase.com",
    "binance.com",
    "wetransfer.com",
    "sparkasse.de",
    "postbank.de",
    "commerzbank.de",
    "deutsche-bank.de",
    "laposte.fr",
    "ameli.fr",
    "impots.gouv.fr",
    "credit-agricole.fr",
];

/// The parts of a URL the rules look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlParts {
    /// Lowercased scheme (`http`); empty when the URL has none (`www.x.test`).
    pub scheme: String,
    /// Host, lowercased, without brackets, port and trailing dot.
    pub host: String,
    /// The URL carries credentials (`http://user@host`, `http://u:p@host`).
    pub credentials: bool,
    /// Path, query and fragment (from the first `/`, `?` or `#`).
    pub path: String,
}

/// Splits a URL written in a message. `None` for schemes without a host
/// (`mailto:`, `tel:`, `javascript:`) and for text without a plausible
/// host. Bounded by [`MAX_HOST`] for the host.
pub fn split_url(url: &str) -> Option<UrlParts> {
    let url = url.trim();
    let (scheme, rest) = match url.find("://") {
        Some(i)
            if url[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
                && i > 0 =>
        {
            (url[..i].to_ascii_lowercase(), &url[i + 3..])
        }
        Some(_) => return None,
        None => {
            if let Some((s, _)) = url.split_once(':') {
                let s = s.to_ascii_lowercase();
                if matches!(
                    s.as_str(),
                    "mailto" | "tel" | "javascript" | "data" | "cid" | "sms" | "news"
                ) {
                    return None;
                }
            }
            (String::new(), url.strip_prefix("//").unwrap_or(url))
        }
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (credentials, hostport) = match authority.rfind('@') {
        Some(i) => (true, &authority[i + 1..]),
        None => (false, authority),
    };
    let host = if let Some(h) = hostport.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        match hostport.rfind(':') {
            Some(i) if hostport[i + 1..].chars().all(|c| c.is_ascii_digit()) => &hostport[..i],
            _ => hostport,
        }
    };
    let mut host = host.trim_end_matches('.').to_lowercase();
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"')
    {
        return None;
    }
    if host.len() > MAX_HOST {
        let mut cut = MAX_HOST;
        while !host.is_char_boundary(cut) {
            cut -= 1;
        }
        host.truncate(cut);
    }
    Some(UrlParts {
        scheme,
        host,
        credentials,
        path: path.to_string(),
    })
}

/// The host a displayed link text names, when the text reads like a URL or
/// a domain (`https://bank.test/login`, `www.bank.test`, `bank.test`);
/// `None` for ordinary words ("Click here").
pub fn host_in_text(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches(['.', ',', ')', ']', '>']);
    let text = text.trim_start_matches(['(', '[', '<']);
    if text.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    let parts = split_url(text)?;
    if parts.scheme.is_empty() && parts.credentials {
        return None; // an e-mail address, not a link
    }
    if !parts.scheme.is_empty() && !matches!(parts.scheme.as_str(), "http" | "https") {
        return None;
    }
    let host = parts.host;
    if ip_literal(&host).is_some() {
        return Some(host);
    }
    let tld = host.rsplit('.').next().unwrap_or("");
    let plausible = host.contains('.')
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_alphabetic())
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    plausible.then_some(host)
}

/// The address an IP-literal host stands for: dotted IPv4, bracketed IPv6
/// (brackets already removed by [`split_url`]), and the decimal
/// (`3232235777`), hex (`0xC0A80101`) and dotted hex/octal forms browsers
/// accept.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    if host.contains(':') {
        return host.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        let n = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u64::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(p, 8).ok()?
        } else {
            p.parse::<u64>().ok()?
        };
        nums.push(n);
    }
    // a.b.c.d, a.b.c (c: 16 bits), a.b (b: 24 bits), a (32 bits).
    let last_bits = 8 * (5 - nums.len() as u32);
    let (head, last) = nums.split_at(nums.len() - 1);
    if head.iter().any(|n| *n > 255) || last[0] >= 1u64 << last_bits {
        return None;
    }
    let mut v: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= n << (24 - 8 * i as u32);
    }
    v |= last[0];
    Some(IpAddr::V4(Ipv4Addr::from(v as u32)))
}

/// The registrable domain of a host (`mail.example.co.uk` →
/// `example.co.uk`), approximated with [`TWO_LABEL_SUFFIXES`]; the host
/// itself for IP literals and single labels.
pub fn registrable(host: &str) -> &str {
    if ip_literal(host).is_some() {
        return host;
    }
    let dots: Vec<usize> = host.match_indices('.').map(|(i, _)| i).collect();
    if dots.is_empty() {
        return host;
    }
    let take = if dots.len() >= 2 {
        let last_two = &host[dots[dots.len() - 2] + 1..];
        if TWO_LABEL_SUFFIXES.contains(&last_two) {
            3
        } else {
            2
        }
    } else {
        2
    };
    if dots.len() < take {
        host
    } else {
        &host[dots[dots.len() - take] + 1..]
    }
}

/// The first label of the registrable domain (`paypal` of
/// `www.paypal.co.uk`).
pub fn registrable_label(host: &str) -> &str {
    let r = registrable(host);
    r.split('.').next().unwrap_or(r)
}

/// Decodes the punycode labels (`xn--`) of a host; `None` when it has
/// none or one does not decode.
pub fn decode_punycode(host: &str) -> Option<String> {
    if !host.split('.').any(|l| l.starts_with("xn--")) {
        return None;
    }
    let mut out = String::with_capacity(host.len());
    for (i, label) in host.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        match label.strip_prefix("xn--") {
            Some(p) => out.push_str(&idna::punycode::decode_to_string(p)?),
            None => out.push_str(label),
        }
    }
    Some(out)
}

/// Levenshtein distance between two strings (by characters), each cut at
/// [`MAX_LABEL`] characters. Stops early and returns `limit + 1` once the
/// distance must exceed `limit`.
pub fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().take(MAX_LABEL).collect();
    let b: Vec<char> = b.chars().take(MAX_LABEL).collect();
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()].min(limit + 1)
}

/// The domain of an address (`user@Example.COM` → `example.com`), empty
/// when there is none.
pub fn address_domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches(['>', '.']).to_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        let u = split_url("HTTP://User:pw@Www.Example.COM.:8080/a/b?c#d").unwrap();
        assert_eq!(u.scheme, "http");
        assert_eq!(u.host, "www.example.com");
        assert!(u.credentials);
        assert_eq!(u.path, "/a/b?c#d");
        let u = split_url("http://[2001:db8::1]/x").unwrap();
        assert_eq!(u.host, "2001:db8::1");
        assert!(!u.credentials);
        assert_eq!(split_url("www.x.test").unwrap().host, "www.x.test");
        assert_eq!(split_url("mailto:a@b.test"), None);
        assert_eq!(split_url("http://"), None);
        assert_eq!(split_url(""), None);
    }

    #[test]
    fn ip_literals() {
        assert_eq!(
            ip_literal("192.168.1.1"),
            Some("192.168.1.1".parse().unwrap())
        );
        assert_eq!(
            ip_literal("3232235777"),
            Some("192.168.1.1".parse().unwrap())
        );
        assert_eq!(
            ip_literal("0xC0A80101"),
            Some("192.168.1.1".parse().unwrap())
        );
        assert_eq!(
            ip_literal("0300.0250.1.1"),
            Some("192.168.1.1".parse().unwrap())
        );
        assert_eq!(ip_literal("::1"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("example.com"), None);
        assert_eq!(ip_literal("1.2.3.4.5"), None);
        assert_eq!(ip_literal("256.1.1.1"), None);
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable("mail.example.co.uk"), "example.co.uk");
        assert_eq!(registrable("a.b.example.com"), "example.com");
        assert_eq!(registrable("example.com"), "example.com");
        assert_eq!(registrable("localhost"), "localhost");
        assert_eq!(registrable_label("www.paypal.com"), "paypal");
    }

    #[test]
    fn distance_and_punycode() {
        assert_eq!(edit_distance("paypal", "paypal", 2), 0);
        assert_eq!(edit_distance("paypa", "paypal", 2), 1);
        assert_eq!(edit_distance("pyapal", "paypal", 2), 2);
        assert_eq!(edit_distance("abcdefgh", "paypal", 2), 3);
        assert_eq!(
            decode_punycode("xn--pypal-4ve.com").as_deref(),
            Some("pаypal.com")
        );
        assert_eq!(decode_punycode("example.com"), None);
    }

    #[test]
    fn text_hosts() {
        assert_eq!(
            host_in_text(" https://bank.test/login ").as_deref(),
            Some("bank.test")
        );
        assert_eq!(
            host_in_text("www.bank.test").as_deref(),
            Some("www.bank.test")
        );
        assert_eq!(host_in_text("Click here"), None);
        assert_eq!(host_in_text("user@bank.test"), None);
        assert_eq!(host_in_text("version 1.2"), None);
    }
}
