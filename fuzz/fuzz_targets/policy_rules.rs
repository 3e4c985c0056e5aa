//! The rules engine never panics: random config text gives a policy or
//! errors (each with a key path or a syntax message); random messages
//! evaluated against a fixed policy give one verdict or more, each within
//! its bounds. The first byte chooses the half.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::rules::{fold::fold, CompiledPolicy, Envelope, ErrorKind};
use mxguard_policy::MessageFacts;

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

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let rcpts = vec!["finance@example.com".to_string(), "x@remote.test".to_string()];
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
                let facts = MessageFacts::gather(decoder(), b"Subject: free\r\n\r\nfree money winner http://evil.test/\r\n");
                assert!(!p.evaluate(&facts, &env, None).is_empty());
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in &errors {
                    assert!(
                        !e.path.is_empty() || matches!(e.kind, ErrorKind::Syntax(_) | ErrorKind::Shape(_)),
                        "an error without a key path: {e}"
                    );
                }
            }
        }
    } else {
        let facts = MessageFacts::gather(decoder(), rest);
        let verdicts = policy().evaluate(&facts, &env, None);
        assert!(!verdicts.is_empty() && verdicts.len() <= 2);
        for v in &verdicts {
            assert!(v.score.is_finite());
            assert!(v.actions.windows(2).all(|w| w[0].action.kind() <= w[1].action.kind()));
        }
        let f = fold(&String::from_utf8_lossy(rest));
        assert!(f.starts_with(' ') && f.ends_with(' '));
    }
});
