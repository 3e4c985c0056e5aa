//! The rules engine never panics: random config text gives a policy or
//! errors (each with a key path or a syntax message); random messages
//! evaluated against a fixed policy give one verdict or more, each within
//! its bounds, with authentication and block list results (as the gateway
//! sets them) drawn from the input's first bytes. The first byte chooses
//! the half.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::rules::{fold::fold, CompiledPolicy, Envelope, ErrorKind};
use mxguard_policy::{
    AuthResult, AuthResults, DkimCheck, DmarcCheck, DmarcPolicy, DnsListing, MessageFacts,
    SpfCheck, SpfIdentity, UriListing,
};

const POLICY: &str = r#"
[[lists]]
name = "bad"
values = ["*@bad.test", "@evil.test"]

[[lists]]
name = "bad_domains"
values = ["evil.test", "bad.test"]

[[synonyms]]
word = "free"
variants = ["gratis", "at no cost"]

[[rules]]
name = "KW"
score = 1.5
match = { body = { keywords = ["free money", "winner", "claim your prize"], min = 2 } }

[[rules]]
name = "RE"
score = 1
match = { any = [ { subject = { regex = ['(?i)\bfree\b', '[!?]{3,}'] } }, { header = { name = "X-Mailer", regex = ['bulk'] } } ] }

[[rules]]
name = "ATT"
match = { attachment = { name = ["*.exe", "*.js"], inside_archives = true } }
action = "clean"

[[rules]]
name = "URL"
match = { url = { domain = ["list:bad_domains"], count = { ge = 1 } } }
action = "quarantine"

[[rules]]
name = "RCPT"
match = { all = [ { recipient = { addresses = ["@example.com"] } }, { not = { direction = "outbound" } } ] }
score = 0.1

[[rules]]
name = "SIZE"
match = { size = { gt = "64K" } }
action = "reject"

[[rules]]
name = "AUTH"
match = { all = [ { auth = { spf = ["fail", "softfail"], dkim = ["none", "fail"] } }, { not = { auth = { dmarc = ["pass"] } } } ] }
score = 2

[[rules]]
name = "LISTS"
match = { any = [ { dnsbl = ["zen.test", "RCVD_IN_X"] }, { uribl = "*" } ] }
action = "tag"

[auth]
scores = { RCVD_IN_ZEN = 4, URIBL_LISTED = 1 }
dmarc_quarantine_action = "quarantine"

[[policies]]
name = "finance"
recipients = ["finance@example.com"]
groups = ["content", "phishing"]
deny_senders = ["list:bad"]
"#;

fn decoder() -> &'static Decoder {
    static D: OnceLock<Decoder> = OnceLock::new();
    D.get_or_init(|| {
        Decoder::new(DecodeOptions {
            text: true,
            ..Default::default()
        })
    })
}

fn policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| CompiledPolicy::from_toml(POLICY, "").expect("the fixed policy compiles"))
}

/// Auth results chosen by a few input bytes.
fn auth_from(b: &[u8]) -> Option<AuthResults> {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    if at(0) % 5 == 0 {
        return None;
    }
    let r = |x: u8| AuthResult::ALL[x as usize % AuthResult::ALL.len()];
    let sigs = (at(2) % 4) as usize;
    Some(AuthResults {
        spf: (at(1) % 3 != 0).then(|| SpfCheck {
            result: r(at(1)),
            domain: "bad.test".into(),
            identity: SpfIdentity::MailFrom,
        }),
        dkim: (at(2) % 5 != 0).then(|| {
            (0..sigs)
                .map(|i| DkimCheck {
                    result: r(at(3 + i)),
                    domain: "bad.test".into(),
                    selector: "s".into(),
                })
                .collect()
        }),
        arc: (at(7) % 2 == 0).then(|| r(at(7) / 2)),
        dmarc: (at(8) % 3 != 0).then(|| DmarcCheck {
            result: r(at(8)),
            domain: "bad.test".into(),
            policy: [
                None,
                Some(DmarcPolicy::None),
                Some(DmarcPolicy::Quarantine),
                Some(DmarcPolicy::Reject),
            ][at(9) as usize % 4],
        }),
        dnsbl: (0..at(10) % 3)
            .map(|i| DnsListing {
                zone: if i == 0 {
                    "zen.test".into()
                } else {
                    format!("z{i}.test")
                },
                rule: format!("RCVD_IN_Z{i}"),
                answer: std::net::Ipv4Addr::new(127, 0, 0, 2 + i),
                score: f64::from(at(11)) / 16.0 - 4.0,
            })
            .collect(),
        uribl: (0..at(12) % 3)
            .map(|i| UriListing {
                domain: "evil.test".into(),
                zone: "dbl.test".into(),
                rule: if i == 0 {
                    "URIBL_DBL".into()
                } else {
                    "URIBL_X".into()
                },
                answer: std::net::Ipv4Addr::new(127, 0, 1, 2),
                score: 2.5,
            })
            .collect(),
        ..Default::default()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let rcpts = vec![
        "finance@example.com".to_string(),
        "x@remote.test".to_string(),
    ];
    let local = vec!["example.com".to_string()];
    let env = Envelope {
        client_ip: "192.0.2.1".parse().ok(),
        helo: "fuzz",
        mail_from: "a@bad.test",
        rcpts: &rcpts,
        local_domains: &local,
    };
    if first % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        match CompiledPolicy::from_toml(&text, "") {
            Ok(p) => {
                let facts = MessageFacts::gather(
                    decoder(),
                    b"Subject: free\r\n\r\nfree money winner http://evil.test/\r\n",
                );
                assert!(!p.evaluate(&facts, &env, None).is_empty());
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in &errors {
                    assert!(
                        !e.path.is_empty()
                            || matches!(e.kind, ErrorKind::Syntax(_) | ErrorKind::Shape(_)),
                        "an error without a key path: {e}"
                    );
                }
            }
        }
    } else {
        let mut facts = MessageFacts::gather(decoder(), rest);
        facts.auth = auth_from(rest);
        let verdicts = policy().evaluate(&facts, &env, None);
        assert!(!verdicts.is_empty() && verdicts.len() <= 2);
        for v in &verdicts {
            assert!(v.score.is_finite());
            assert!(v
                .actions
                .windows(2)
                .all(|w| w[0].action.kind() <= w[1].action.kind()));
        }
        let f = fold(&String::from_utf8_lossy(rest));
        assert!(f.starts_with(' ') && f.ends_with(' '));
    }
});
