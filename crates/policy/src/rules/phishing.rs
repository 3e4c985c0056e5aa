//! The built-in phishing checks. Each runs at most once per message, only
//! when a rule uses it, over the links (at most `MAX_LINKS`), the From and
//! envelope sender domains and the attachments of the facts.
//!
//! Look-alikes of a brand `paypal.com` (never the brand's own registrable
//! domain or its subdomains):
//! - the registrable label folds to the brand's but is spelled otherwise
//!   (`paypa1`, `pаypal` with a Cyrillic `а`, `ｐａｙｐａｌ`);
//! - it is within edit distance 1 of the brand's label (2 for labels of
//!   [`LONG_LABEL`] characters or more), for labels of at least
//!   [`MIN_FUZZY_LABEL`] characters (`paypall`, `paypa`);
//! - the brand's label is a hyphenated part of it (`paypal-secure.test`);
//! - the brand's domain is a run of labels inside the host
//!   (`paypal.com.login.test`).
//!
//! A punycode host (`xn--pypal-4ve.com`) is decoded first and reported by
//! the punycode check instead.

use std::collections::HashSet;

use super::config::PhishCheck;
use super::domain::{
    decode_punycode, edit_distance, host_in_text, ip_literal, registrable, registrable_label,
    UrlParts,
};
use super::fold::Folder;
use crate::facts::MessageFacts;

/// Shortest brand label compared by edit distance (shorter ones only by
/// folding: `ups` vs `ups-track` is caught, `ups` vs `ops` is not).
pub const MIN_FUZZY_LABEL: usize = 5;
/// Labels this long allow edit distance 2.
pub const LONG_LABEL: usize = 9;

/// A brand domain, prepared for comparison.
#[derive(Debug, Clone)]
pub(crate) struct Brand {
    pub reg: String,
    pub label: String,
    pub folded: String,
    pub visual: String,
}

/// Letter pairs that read as one letter in most fonts (Unicode's
/// confusables list has `rn` → `m`; `vv` → `w` and `cl` → `d` are the
/// other two phishers use). Both the brand and the host are rewritten
/// with them, so a brand that contains a pair itself still matches its
/// own spelling. Only an exact match of the rewritten forms counts: the
/// edit-distance check compares the plain folded forms (rewriting, then
/// allowing a typo, made `carnell` a look-alike of `ameli`).
pub const VISUAL_PAIRS: &[(&str, &str)] = &[("rn", "m"), ("vv", "w"), ("cl", "d")];

/// The folded form of a label without spaces.
fn compact_fold(folder: &mut Folder, label: &str) -> String {
    folder.fold(label).replace(' ', "")
}

/// [`compact_fold`] with visual letter pairs read as the letter they
/// imitate (pairs first: folding reads `l` as `i`, which would hide `cl`).
fn visual_fold(folder: &mut Folder, label: &str) -> String {
    let mut s = label.to_lowercase();
    for (pair, one) in VISUAL_PAIRS {
        if s.contains(pair) {
            s = s.replace(pair, one);
        }
    }
    compact_fold(folder, &s)
}

impl Brand {
    pub(crate) fn new(domain: &str) -> Brand {
        let d = domain.trim().trim_end_matches('.').to_lowercase();
        let reg = registrable(&d).to_string();
        let label = registrable_label(&d).to_string();
        let mut folder = Folder::new();
        let folded = compact_fold(&mut folder, &label);
        let visual = visual_fold(&mut folder, &label);
        Brand {
            reg,
            label,
            folded,
            visual,
        }
    }
}

/// Whether `host` (ASCII or decoded Unicode) imitates one of `brands`.
pub(crate) fn imitates(host: &str, brands: &[Brand], folder: &mut Folder) -> bool {
    let reg = registrable(host);
    let label = registrable_label(host);
    if label.is_empty() || ip_literal(host).is_some() {
        return false;
    }
    let folded = compact_fold(folder, label);
    let visual = visual_fold(folder, label);
    brands.iter().any(|b| {
        if reg == b.reg {
            return false;
        }
        if label != b.label && (folded == b.folded || visual == b.visual) {
            return true;
        }
        let n = b.folded.chars().count();
        if n >= MIN_FUZZY_LABEL {
            let limit = if n >= LONG_LABEL { 2 } else { 1 };
            let d = edit_distance(&folded, &b.folded, limit);
            if d > 0 && d <= limit {
                return true;
            }
        }
        if b.label.len() >= 3 && label != b.label && label.split('-').any(|p| p == b.label) {
            return true;
        }
        // The brand's domain as labels inside another domain.
        let dotted = format!(".{host}.");
        dotted.contains(&format!(".{}.", b.reg)) && !host.ends_with(&b.reg)
    })
}

/// A link as the checks see it.
pub(crate) struct LinkInfo<'a> {
    pub href: &'a str,
    pub text: Option<&'a str>,
    pub parts: Option<UrlParts>,
}

/// Runs the checks in `used` once; returns those that hit.
pub(crate) fn run_checks(
    used: &[PhishCheck],
    facts: &MessageFacts,
    links: &[LinkInfo<'_>],
    sender: &str,
    brands: &[Brand],
    folder: &mut Folder,
) -> HashSet<PhishCheck> {
    let mut hits = HashSet::new();
    let web = |p: &UrlParts| matches!(p.scheme.as_str(), "http" | "https" | "");
    for check in used {
        let hit = match check {
            PhishCheck::IpUrl => links
                .iter()
                .filter_map(|l| l.parts.as_ref())
                .any(|p| web(p) && !p.scheme.is_empty() && ip_literal(&p.host).is_some()),
            PhishCheck::UrlCredentials => links
                .iter()
                .filter_map(|l| l.parts.as_ref())
                .any(|p| p.credentials && matches!(p.scheme.as_str(), "http" | "https" | "ftp")),
            PhishCheck::LinkTextMismatch => links.iter().any(|l| {
                let (Some(text), Some(p)) = (l.text, &l.parts) else {
                    return false;
                };
                if !matches!(p.scheme.as_str(), "http" | "https") {
                    return false;
                }
                match host_in_text(text) {
                    Some(shown) => registrable(&shown) != registrable(&p.host),
                    None => false,
                }
            }),
            PhishCheck::LookalikeDomain | PhishCheck::PunycodeDomain => {
                let puny = *check == PhishCheck::PunycodeDomain;
                let mut seen: HashSet<&str> = HashSet::new();
                let from_domain = facts.from_address.rsplit_once('@').map(|(_, d)| d);
                let sender_domain = sender.rsplit_once('@').map(|(_, d)| d);
                let hosts = links
                    .iter()
                    .filter_map(|l| l.parts.as_ref())
                    .filter(|p| web(p))
                    .map(|p| p.host.as_str())
                    .chain(from_domain)
                    .chain(sender_domain);
                let mut hit = false;
                for h in hosts {
                    if !seen.insert(h) {
                        continue;
                    }
                    let is_puny = h.split('.').any(|l| l.starts_with("xn--"));
                    if puny != is_puny {
                        continue;
                    }
                    let host = if puny {
                        match decode_punycode(h) {
                            Some(d) => d,
                            None => continue,
                        }
                    } else {
                        h.to_string()
                    };
                    if imitates(&host, brands, folder) {
                        hit = true;
                        break;
                    }
                }
                hit
            }
            PhishCheck::HtmlLoginForm => {
                facts.html_form_password || facts.attachments.iter().any(|a| a.html_form_password)
            }
        };
        if hit {
            hits.insert(*check);
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brands() -> Vec<Brand> {
        [
            "paypal.com",
            "microsoft.com",
            "ups.com",
            "deutsche-bank.de",
            "amazon.com",
            "wellsfargo.com",
            "dropbox.com",
            "ameli.fr",
        ]
        .iter()
        .map(|b| Brand::new(b))
        .collect()
    }

    #[test]
    fn lookalikes() {
        let b = brands();
        let mut f = Folder::new();
        for host in [
            "paypa1.com",
            "paypall.com",
            "www.paypal-secure.test",
            "paypal.com.login.test",
            "pаypal.com",
            "rnicrosoft.com",
            "micros0ft.net",
            "arnazon.com",
            "vvellsfargo.com",
            "clropbox.com",
            "www.amazon.com.arnazon-login.test",
            "ups-tracking.test",
        ] {
            assert!(imitates(host, &b, &mut f), "{host}");
        }
        for host in [
            "paypal.com",
            "www.paypal.com",
            "paypal.de",
            "example.com",
            "ops.com",
            "deutsche-bank.de",
            "amazon.com",
            "wellsfargo.com",
            "modern.com",
            "brian.carnell.com",
            "ameli.test",
            "dropboxes.test",
            "10.0.0.1",
        ] {
            assert!(!imitates(host, &b, &mut f), "{host}");
        }
    }
}
