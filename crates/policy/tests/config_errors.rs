//! Config mistakes: each is reported with its key path (and line), and
//! all of them at once.

use mxguard_policy::rules::{format_errors, CompiledPolicy, ConfigError, ErrorKind};

fn errors(text: &str, section: &str) -> Vec<ConfigError> {
    match CompiledPolicy::from_toml(text, section) {
        Ok(_) => panic!("config should not compile:\n{text}"),
        Err(e) => e,
    }
}

/// The error at `path`, with a message containing `needle`.
fn expect(errs: &[ConfigError], path: &str, needle: &str) -> ConfigError {
    let found = errs
        .iter()
        .find(|e| e.path == path && e.to_string().contains(needle));
    match found {
        Some(e) => e.clone(),
        None => panic!(
            "no error at `{path}` containing `{needle}`; got:\n{}",
            format_errors(errs)
        ),
    }
}

#[test]
fn syntax_error_has_a_line() {
    let errs = errors("[[rules]]\nname = \"A\"\nscore = \n", "");
    assert_eq!(errs.len(), 1, "{}", format_errors(&errs));
    assert!(matches!(errs[0].kind, ErrorKind::Syntax(_)));
    assert_eq!(errs[0].line, Some(3));
}

#[test]
fn regex_error_names_the_key_path_inside_a_section() {
    let text = r#"
[smtp]
listen = ["127.0.0.1:2525"]

[[policy.rules]]
name = "A"
score = 1
match = { body = { keywords = ["x"] } }

[[policy.rules]]
name = "B"
score = 1
match = { body = { regex = ["ok", "(unclosed"] } }
"#;
    let errs = errors(text, "policy");
    assert_eq!(errs.len(), 1, "{}", format_errors(&errs));
    let e = expect(
        &errs,
        "policy.rules[1].match.body.regex[1]",
        "unclosed group",
    );
    assert_eq!(
        e.to_string(),
        "line 13: policy.rules[1].match.body.regex[1]: unclosed group"
    );
}

#[test]
fn every_mistake_at_once() {
    let text = r#"
[[lists]]
name = "senders"
values = ["*@bad.example"]

[[lists]]
name = "senders"
values = []

[[rules]]
name = "UNKNOWN_KEY"
score = 1
match = { body = { keywords = ["a"], regx = ["b"], wholewords = true } }

[[rules]]
name = "BAD_LIST"
score = 1
match = { sender = { addresses = ["list:nope"] } }

[[rules]]
name = "DUP"
score = 1
match = { subject = { equals = ["x"] } }

[[rules]]
name = "DUP"
score = 1
match = { subject = { equals = ["y"] } }

[[rules]]
name = "BAD_ACTION"
match = { subject = { equals = ["x"] } }
action = "explode"

[[rules]]
name = "NO_REDIRECT_TO"
match = { subject = { equals = ["x"] } }
action = "redirect"

[[rules]]
name = "PARAM_WRONG_ACTION"
match = { subject = { equals = ["x"] } }
action = "drop"
banner = "hello"

[[rules]]
name = "BAD_SIZE"
match = { size = { gt = "10Q" } }
action = "reject"

[[rules]]
name = "BAD_CIDR"
match = { client_ip = { cidr = ["10.0.0.0/33", "::1"] } }
score = 1

[[rules]]
name = "BAD_TYPE"
match = { attachment = { true_type = ["exe", "banana"] } }
score = 1

[[rules]]
name = "MIN_TOO_BIG"
match = { body = { keywords = ["a", "b"], min = 3 } }
score = 1

[[rules]]
name = "CLEAN_WITHOUT_ATTACHMENT"
match = { body = { keywords = ["a"] } }
action = "clean"

[[rules]]
name = "NO_LETTERS"
match = { body = { keywords = ["...", "ok"] } }
score = 1

[[rules]]
name = "BAD_PHISH"
match = { phishing = "fishy" }
score = 1

[[rules]]
name = "WRONG_TYPE"
match = { body = { keywords = ["a"], min = "two" } }
score = "high"

[[rules]]
name = "NOTHING_TO_DO"
match = { body = { keywords = ["a"] } }

[[rules]]
name = "EMPTY_MATCH"
match = {}
score = 1

[[rules]]
name = "ADDRESSES_ON_BODY"
match = { body = { addresses = ["a@b.test"] } }
score = 1

[[policies]]
name = "p"
direction = "sideways"
rules = ["DUP", "NO_SUCH_RULE"]
groups = ["no_such_group"]
high_score = 9

[[policies]]
name = "q"
recipients = ["bad pattern"]
spam_action = { action = "bcc" }
"#;
    let errs = errors(text, "");
    let all = format_errors(&errs);
    expect(&errs, "lists[1].name", "duplicate name `senders`");
    let e = expect(&errs, "rules[0].match.body.regx", "unknown key `regx`");
    assert_eq!(e.line, Some(13), "{e}");
    expect(
        &errs,
        "rules[0].match.body.wholewords",
        "unknown key `wholewords`",
    );
    expect(
        &errs,
        "rules[1].match.sender.addresses[0]",
        "unknown list `nope`",
    );
    expect(&errs, "rules[3].name", "duplicate name `DUP`");
    expect(&errs, "rules[4].action", "unknown action `explode`");
    expect(&errs, "rules[5]", "missing key `redirect_to`");
    expect(&errs, "rules[6].banner", "does not apply to action `drop`");
    expect(&errs, "rules[7].match.size.gt", "`10Q` is not a size");
    expect(
        &errs,
        "rules[8].match.client_ip.cidr[0]",
        "not an IP address or CIDR",
    );
    expect(
        &errs,
        "rules[9].match.attachment.true_type[1]",
        "unknown file type `banana`",
    );
    expect(
        &errs,
        "rules[10].match.body.min",
        "3 is more than the 2 keywords",
    );
    expect(
        &errs,
        "rules[11].action",
        "`clean` needs an attachment test",
    );
    expect(
        &errs,
        "rules[12].match.body.keywords[0]",
        "no letters or digits",
    );
    expect(
        &errs,
        "rules[13].match.phishing",
        "unknown phishing check `fishy`",
    );
    expect(
        &errs,
        "rules[14].match.body.min",
        "expected a non-negative integer, found string",
    );
    expect(
        &errs,
        "rules[14].score",
        "expected a finite number, found string",
    );
    expect(&errs, "rules[15]", "needs a `score`, an `action` or both");
    expect(&errs, "rules[16].match", "empty condition");
    expect(
        &errs,
        "rules[17].match.body.addresses",
        "only address fields",
    );
    expect(
        &errs,
        "policies[0].direction",
        "unknown direction `sideways`",
    );
    expect(&errs, "policies[0].rules[1]", "unknown rule `NO_SUCH_RULE`");
    expect(
        &errs,
        "policies[0].groups[0]",
        "unknown rule group `no_such_group`",
    );
    expect(&errs, "policies[1].recipients[0]", "holds whitespace");
    expect(&errs, "policies[1].spam_action", "missing key `bcc_to`");
    // Nothing reported twice, nothing unexpected: one error per mistake
    // above, plus `high_score` without `high_action`.
    expect(
        &errs,
        "policies[0]",
        "`high_score` and `high_action` go together",
    );
    assert_eq!(errs.len(), 26, "{all}");
    // In file order.
    assert!(errs.windows(2).all(|w| w[0].line <= w[1].line), "{all}");
    // Every error that names a key has a line.
    assert!(errs.iter().all(|e| e.line.is_some()), "{all}");
}

#[test]
fn a_rule_dropped_for_errors_is_not_reported_again_by_policies() {
    let text = r#"
[[rules]]
name = "BROKEN"
score = 1
match = { body = { keyword = ["typo"] } }

[[policies]]
name = "p"
rules = ["BROKEN"]
"#;
    let errs = errors(text, "");
    assert_eq!(errs.len(), 1, "{}", format_errors(&errs));
    expect(
        &errs,
        "rules[0].match.body.keyword",
        "unknown key `keyword`",
    );
}

#[test]
fn unknown_top_level_and_phishing_keys() {
    let text = r#"
[phishing]
brands = ["paypal"]
scores = { PHISH_NOPE = 1.0 }
disable = ["PHISH_IP_URL", "nope"]

[rulez]
x = 1
"#;
    let errs = errors(text, "");
    expect(&errs, "rulez", "unknown key `rulez`");
    expect(
        &errs,
        "phishing.scores.PHISH_NOPE",
        "unknown phishing check `PHISH_NOPE`",
    );
    expect(
        &errs,
        "phishing.disable[1]",
        "unknown phishing check `nope`",
    );
    expect(&errs, "phishing.brands[0]", "`paypal` is not a domain");
    assert_eq!(errs.len(), 4, "{}", format_errors(&errs));
}

#[test]
fn a_good_config_compiles_and_lists_its_rules() {
    let text = r#"
[[rules]]
name = "A"
score = 1
match = { body = { keywords = ["x"] } }

[phishing]
disable = ["ip_url"]
"#;
    let p = CompiledPolicy::from_toml(text, "").expect("compiles");
    let names: Vec<&str> = p.rule_names().collect();
    assert_eq!(names[0], "A");
    assert!(names.contains(&"PHISH_LOOKALIKE_DOMAIN"));
    assert!(!names.contains(&"PHISH_IP_URL"));
    assert!(names.contains(&"SPF_FAIL"));
    // A, five phishing checks, the built-in auth and list rules.
    assert_eq!(
        names.len(),
        6 + mxguard_policy::rules::config::AuthRule::ALL.len()
    );
}

#[test]
fn auth_mistakes_name_their_keys() {
    let text = r#"
[[rules]]
name = "A"
score = 1
match = { auth = { spf = ["fial"], dmarc_policy = ["strict"], dkim = [] } }

[[rules]]
name = "B"
score = 1
match = { auth = { spff = ["fail"] } }

[[rules]]
name = "C"
score = 1
match = { auth = {} }

[[rules]]
name = "D"
score = 1
match = { dnsbl = [], uribl = ["has space"] }

[auth]
disable = ["SPF_FIAL", "RCVD_IN_ZEN"]
scores = { DMARC_PASS = "low", NOPE = 1, URIBL_DBL = 2 }
dmarc_reject_action = "explode"
"#;
    let text = text
        .replace("\n[[rules]]", "\n[[policy.rules]]")
        .replace("\n[auth]", "\n[policy.auth]");
    let errs = errors(&text, "policy");
    expect(
        &errs,
        "policy.rules[0].match.auth.spf[0]",
        "unknown result `fial`",
    );
    expect(
        &errs,
        "policy.rules[0].match.auth.dmarc_policy[0]",
        "unknown DMARC policy `strict`",
    );
    expect(
        &errs,
        "policy.rules[0].match.auth.dkim",
        "must not be empty",
    );
    expect(
        &errs,
        "policy.rules[1].match.auth.spff",
        "unknown key `spff`",
    );
    expect(&errs, "policy.rules[2].match.auth", "no test");
    expect(&errs, "policy.rules[3].match.dnsbl", "at least one zone");
    expect(&errs, "policy.rules[3].match.uribl[0]", "is not a zone");
    expect(
        &errs,
        "policy.auth.disable[0]",
        "unknown auth rule `SPF_FIAL`",
    );
    expect(
        &errs,
        "policy.auth.scores.DMARC_PASS",
        "expected a finite number",
    );
    expect(&errs, "policy.auth.scores.NOPE", "unknown auth rule `NOPE`");
    expect(
        &errs,
        "policy.auth.dmarc_reject_action.action",
        "unknown action `explode`",
    );
    assert_eq!(errs.len(), 11, "{}", format_errors(&errs));
    // Lines are known.
    assert!(
        errs.iter().all(|e| e.line.is_some()),
        "{}",
        format_errors(&errs)
    );
}
