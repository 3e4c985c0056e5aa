//! Engine properties the data cases do not show: sharing across threads,
//! the regex dialect, verdict order for several policies.

use std::sync::Arc;

use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::rules::{CompiledPolicy, Envelope};
use mxguard_policy::MessageFacts;

fn facts(raw: &str) -> MessageFacts {
    let d = Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    });
    MessageFacts::gather(&d, raw.as_bytes())
}

fn env<'a>(rcpts: &'a [String], local: &'a [String]) -> Envelope<'a> {
    Envelope {
        client_ip: None,
        helo: "h.test",
        mail_from: "s@sender.test",
        rcpts,
        local_domains: local,
    }
}

#[test]
fn shared_behind_an_arc_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CompiledPolicy>();
    let p = Arc::new(
        CompiledPolicy::from_toml(
            "[[rules]]\nname = \"W\"\nscore = 2\nmatch = { body = { keywords = [\"winner\"] } }\n",
            "",
        )
        .unwrap(),
    );
    let f = Arc::new(facts("Subject: x\n\nYou are a w1nner.\n"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (p, f) = (p.clone(), f.clone());
            std::thread::spawn(move || {
                let rcpts = vec!["u@example.com".to_string()];
                let local = vec!["example.com".to_string()];
                p.evaluate(&f, &env(&rcpts, &local), None)[0].score
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 2.0);
    }
}

#[test]
fn word_boundaries_are_ascii() {
    // `\b` is an ASCII word boundary (it keeps the regex sets on the DFA):
    // next to an ASCII letter it works as usual, a non-ASCII letter counts
    // as a non-word character.
    let p = CompiledPolicy::from_toml(
        r#"
[phishing]
builtin_rules = false

[[rules]]
name = "ASCII_WORD"
score = 1
match = { body = { regex = ['\bfree\b'] } }

[[rules]]
name = "NEXT_TO_NON_ASCII"
score = 10
match = { body = { regex = ['\bcaf\b'] } }
"#,
        "",
    )
    .unwrap();
    let rcpts = vec!["u@example.com".to_string()];
    let local = vec![];
    let f = facts("Subject: x\nContent-Type: text/plain; charset=utf-8\n\nfree coffee at the café, not freedom\n");
    let v = &p.evaluate(&f, &env(&rcpts, &local), None)[0];
    assert_eq!(v.rule_names(), ["ASCII_WORD", "NEXT_TO_NON_ASCII"]);
    let f = facts("Subject: x\n\nfreedom\n");
    let v = &p.evaluate(&f, &env(&rcpts, &local), None)[0];
    assert!(v.hits.is_empty());
}

#[test]
fn verdicts_follow_first_appearance_and_empty_envelopes_use_header_recipients() {
    let p = CompiledPolicy::from_toml(
        r#"
[[rules]]
name = "ANY"
score = 1
match = { size = { gt = 0 } }

[[policies]]
name = "vip"
recipients = ["boss@example.com"]
"#,
        "",
    )
    .unwrap();
    let local = vec!["example.com".to_string()];
    let rcpts: Vec<String> = ["a@example.com", "boss@example.com", "b@example.com"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let f = facts("To: boss@example.com\nSubject: x\n\nhi\n");
    let vs = p.evaluate(&f, &env(&rcpts, &local), None);
    let got: Vec<(&str, Vec<&str>)> = vs
        .iter()
        .map(|v| {
            (
                v.policy.as_str(),
                v.recipients.iter().map(|r| r.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("default", vec!["a@example.com", "b@example.com"]),
            ("vip", vec!["boss@example.com"])
        ]
    );
    // No envelope recipients (a file checked from the command line).
    let vs = p.evaluate(&f, &env(&[], &local), None);
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0].policy, "vip");
    assert_eq!(vs[0].recipients, ["boss@example.com"]);
}

#[test]
fn the_documented_example_compiles() {
    let text = include_str!("../examples/policy.toml");
    let p = CompiledPolicy::from_toml(text, "").unwrap_or_else(|e| {
        panic!("{}", mxguard_policy::rules::format_errors(&e));
    });
    assert_eq!(
        p.policy_names().collect::<Vec<_>>(),
        ["finance", "everyone"]
    );
    assert!(p.rule_names().any(|r| r == "PHISH_HTML_LOGIN_FORM"));
    assert!(!p.rule_names().any(|r| r == "PHISH_URL_CREDENTIALS"));
    assert!(p.rule_names().any(|r| r == "DMARC_FAIL_REJECT"));
    assert!(!p.rule_names().any(|r| r == "ARC_PASS"));
    // The same text under [policy] of a larger file: the same policy.
    let nested: String = text
        .lines()
        .map(|l| match l.trim_start() {
            s if s.starts_with("[[") => s.replacen("[[", "[[policy.", 1),
            s if s.starts_with('[') => s.replacen('[', "[policy.", 1),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let nested = nested.replacen("local_domains", "[policy]\nlocal_domains", 1);
    let q = CompiledPolicy::from_toml(&format!("[smtp]\nx = 1\n{nested}"), "policy")
        .unwrap_or_else(|e| panic!("{}", mxguard_policy::rules::format_errors(&e)));
    assert_eq!(
        q.rule_names().collect::<Vec<_>>(),
        p.rule_names().collect::<Vec<_>>()
    );
}
