//! Rule tests as data: every folder under `tests/rules/` is one case with
//! `policy.toml` (the policy), `message.eml` (the message), an optional
//! `envelope.toml` (client_ip, helo, mail_from, rcpts, local_domains, and
//! `[spam] points/required` standing in for the classifier, and `[auth]`:
//! the sender authentication and block list results, `AuthResults` as
//! TOML, standing in for `mxguard-auth`'s lookups) and
//! `expected.toml` (one `[[verdict]]` per expected policy verdict, in
//! order). Adding a case is adding a folder. Each case runs with the
//! message as written (LF) and with CRLF line ends; both must match.

use std::path::{Path, PathBuf};

use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::rules::{Action, CompiledPolicy, Envelope, PolicyVerdict};
use mxguard_policy::spam::{RuleHit, SpamResult};
use mxguard_policy::{AuthResults, MessageFacts};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnvelopeFile {
    client_ip: Option<String>,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpts: Option<Vec<String>>,
    local_domains: Option<Vec<String>>,
    spam: Option<SpamIn>,
    auth: Option<AuthResults>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpamIn {
    points: f64,
    required: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    verdict: Vec<ExpVerdict>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpVerdict {
    policy: String,
    recipients: Option<Vec<String>>,
    score: f64,
    /// Fired rules (any order, exact set).
    rules: Vec<String>,
    /// Action kinds, strongest first (exact list).
    actions: Vec<String>,
    #[serde(default)]
    allowed: bool,
    #[serde(default)]
    denied: bool,
    spam: Option<bool>,
    reject_text: Option<String>,
    tempfail_text: Option<String>,
    redirect_to: Option<String>,
    bcc_to: Option<Vec<String>>,
    banner: Option<String>,
    subject_tag: Option<String>,
    /// One substring per cleaned location (`a.exe`), same count.
    clean: Option<Vec<String>>,
    /// `target:template` per notice of all actions, in order.
    notices: Option<Vec<String>>,
}

const DEFAULT_RCPT: &str = "user@example.com";
const DEFAULT_LOCAL: &str = "example.com";

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules")
}

fn check(case: &str, v: &PolicyVerdict, e: &ExpVerdict) -> Vec<String> {
    let mut errs = Vec::new();
    let mut fail = |m: String| errs.push(format!("{case} [{}]: {m}", e.policy));
    if v.policy != e.policy {
        fail(format!("policy {} != expected {}", v.policy, e.policy));
    }
    if let Some(r) = &e.recipients {
        if &v.recipients != r {
            fail(format!("recipients {:?} != {:?}", v.recipients, r));
        }
    }
    if (v.score - e.score).abs() > 0.01 {
        fail(format!("score {} != {}", v.score, e.score));
    }
    let mut got: Vec<&str> = v.hits.iter().map(|h| h.name.as_str()).collect();
    got.sort();
    let mut want: Vec<&str> = e.rules.iter().map(|s| s.as_str()).collect();
    want.sort();
    if got != want {
        fail(format!("rules {got:?} != {want:?}"));
    }
    let kinds: Vec<&str> = v.actions.iter().map(|a| a.action.kind().name()).collect();
    if kinds != e.actions {
        fail(format!("actions {kinds:?} != {:?}", e.actions));
    }
    if v.allowed != e.allowed {
        fail(format!("allowed {}", v.allowed));
    }
    if v.denied != e.denied {
        fail(format!("denied {}", v.denied));
    }
    if let Some(s) = e.spam {
        if v.spam != s {
            fail(format!("spam {}", v.spam));
        }
    }
    for a in &v.actions {
        match &a.action {
            Action::Reject { text } => {
                if let Some(t) = &e.reject_text {
                    if text != t {
                        fail(format!("reject text {text:?}"));
                    }
                }
            }
            Action::Tempfail { text } => {
                if let Some(t) = &e.tempfail_text {
                    if text != t {
                        fail(format!("tempfail text {text:?}"));
                    }
                }
            }
            Action::Redirect { to } if e.redirect_to.as_ref() != Some(to) => {
                fail(format!("redirect to {to:?}"));
            }
            Action::Warn { banner } if e.banner.as_ref() != Some(banner) => {
                fail(format!("banner {banner:?}"));
            }
            Action::Tag { subject_tag }
                if e.subject_tag.is_some() && &e.subject_tag != subject_tag =>
            {
                fail(format!("subject tag {subject_tag:?}"));
            }
            Action::Clean { locations } => match &e.clean {
                Some(want) => {
                    let ok = locations.len() == want.len()
                        && want
                            .iter()
                            .all(|w| locations.iter().any(|l| l.contains(w.as_str())));
                    if !ok {
                        fail(format!("clean locations {locations:?} != {want:?}"));
                    }
                }
                None => fail("clean action not expected to carry locations".into()),
            },
            _ => {}
        }
    }
    let bccs: Vec<String> = v
        .actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::Bcc { to } => Some(to.clone()),
            _ => None,
        })
        .collect();
    if bccs != e.bcc_to.clone().unwrap_or_default() {
        fail(format!("bcc {bccs:?}"));
    }
    if let Some(n) = &e.notices {
        let got: Vec<String> = v
            .actions
            .iter()
            .flat_map(|a| a.notices.iter())
            .map(|n| format!("{}:{}", n.to.name(), n.template))
            .collect();
        if &got != n {
            fail(format!("notices {got:?} != {n:?}"));
        }
    }
    errs
}

fn run_case(dir: &Path, decoder: &Decoder) -> Vec<String> {
    let case = dir.file_name().unwrap().to_string_lossy().to_string();
    let read = |f: &str| std::fs::read(dir.join(f));
    let policy_text = String::from_utf8(read("policy.toml").expect("policy.toml")).unwrap();
    let policy = match CompiledPolicy::from_toml(&policy_text, "") {
        Ok(p) => p,
        Err(e) => return vec![format!("{case}: policy does not compile: {e:?}")],
    };
    let raw = read("message.eml").expect("message.eml");
    let env_file: EnvelopeFile = match read("envelope.toml") {
        Ok(t) => toml::from_str(std::str::from_utf8(&t).unwrap()).expect("envelope.toml"),
        Err(_) => EnvelopeFile::default(),
    };
    let expected: Expected = toml::from_str(
        std::str::from_utf8(&read("expected.toml").expect("expected.toml")).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{case}/expected.toml: {e}"));
    let rcpts = env_file
        .rcpts
        .clone()
        .unwrap_or_else(|| vec![DEFAULT_RCPT.to_string()]);
    let local = env_file
        .local_domains
        .clone()
        .unwrap_or_else(|| vec![DEFAULT_LOCAL.to_string()]);
    let client_ip = env_file
        .client_ip
        .as_deref()
        .unwrap_or("203.0.113.5")
        .parse()
        .ok();
    let env = Envelope {
        client_ip,
        helo: env_file.helo.as_deref().unwrap_or("mail.sender.test"),
        mail_from: env_file
            .mail_from
            .as_deref()
            .unwrap_or("sender@sender.test"),
        rcpts: &rcpts,
        local_domains: &local,
    };
    let spam = env_file.spam.as_ref().map(|s| SpamResult {
        score: s.points,
        required: s.required,
        spam: s.points >= s.required,
        probability: 0.5,
        rules: vec![RuleHit {
            name: "BAYES".into(),
            points: s.points,
        }],
    });
    let mut errs = Vec::new();
    let crlf: Vec<u8> = {
        let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
        for (i, b) in raw.iter().enumerate() {
            if *b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(*b);
        }
        out
    };
    for (label, bytes) in [("LF", &raw), ("CRLF", &crlf)] {
        let mut facts = MessageFacts::gather(decoder, bytes);
        facts.auth = env_file.auth.clone();
        let verdicts = policy.evaluate(&facts, &env, spam.as_ref());
        if verdicts.len() != expected.verdict.len() {
            errs.push(format!(
                "{case} ({label}): {} verdicts, expected {}: {verdicts:#?}",
                verdicts.len(),
                expected.verdict.len()
            ));
            continue;
        }
        for (v, e) in verdicts.iter().zip(&expected.verdict) {
            let mut found = check(&format!("{case} ({label})"), v, e);
            if !found.is_empty() {
                found.push(format!("  verdict was {v:#?}"));
            }
            errs.extend(found);
        }
    }
    errs
}

#[test]
fn rule_cases() {
    let decoder = Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    });
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/rules")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut errors = Vec::new();
    for d in &dirs {
        errors.extend(run_case(d, &decoder));
    }
    assert!(dirs.len() >= 30, "only {} cases ran", dirs.len());
    assert!(
        errors.is_empty(),
        "{} problems:\n{}",
        errors.len(),
        errors.join("\n")
    );
}
