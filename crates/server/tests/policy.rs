//! End-to-end tests of the rules engine in the gateway (`[policy]`):
//! the real `mxguard serve`, swaks as the client, Maildir as the next hop.
//!
//! - a banned attachment is cleaned, the notice part names it, the admin
//!   gets the notice the rule asks for;
//! - spam by the rules' points is tagged (`[SPAM]`, `X-Spam-*`);
//! - a phishing mail is quarantined, with the policy recorded;
//! - recipients under different policies get their own copies;
//! - a policy's `reject` text and `pass`; a SIGHUP reloads the policy;
//! - `mxguard config check` reports policy errors with their lines.

mod support;

use std::time::Duration;
use support::{swaks, Gateway};

const WAIT: Duration = Duration::from_secs(20);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const POLICY: &str = r#"
[notify]
admin = ["admin@example.com"]
admin_on = []

[policy]
local_domains = ["example.com"]

[[policy.rules]]
name = "BANNED_EXE"
group = "attachment"
match = { attachment = { name = ["*.exe", "*.scr"], inside_archives = true } }
action = "clean"
notify = ["admin"]

[[policy.rules]]
name = "FINANCE_NO_EXE"
match = { attachment = { name = ["*.exe"] } }
action = "quarantine"

[[policy.rules]]
name = "LOTTERY"
group = "spam"
score = 6.0
match = { body = { keywords = ["lottery", "winner", "claim your prize"], min = 2 } }

[[policy.rules]]
name = "PHISHING"
group = "phishing"
match = { any = [ { phishing = "link_text_mismatch" }, { phishing = "lookalike_domain" } ] }
action = "quarantine"

[[policy.rules]]
name = "NO_CASINO"
match = { subject = { keywords = ["casino"] } }
action = "reject"
reject_text = "We do not accept casino offers"

[[policy.rules]]
name = "PARTNER"
match = { sender = { addresses = ["@partner.test"] } }
action = "pass"

[[policy.policies]]
name = "finance"
recipients = ["finance@example.com"]
rules = ["FINANCE_NO_EXE", "LOTTERY", "PHISHING"]

[[policy.policies]]
name = "everyone"
rules = ["BANNED_EXE", "LOTTERY", "PHISHING", "NO_CASINO", "PARTNER"]
"#;

fn send_file(g: &Gateway, to: &[&str], from: &str, body: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.eml");
    std::fs::write(&f, body).unwrap();
    // swaks takes several recipients as one comma-separated --to.
    let to = to.join(",");
    swaks(
        g.port,
        &["--from", from, "--data", f.to_str().unwrap(), "--to", &to],
    )
}

fn with_exe(to: &str) -> String {
    format!(
        "From: s@sender.test\r\nTo: {to}\r\nSubject: the tool\r\nMessage-ID: <exe@sender.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhere is the installer\r\n\
         --XX\r\nContent-Type: application/octet-stream; name=\"setup.exe\"\r\nContent-Disposition: attachment; filename=\"setup.exe\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n--XX--\r\n"
    )
}

#[test]
fn banned_attachment_is_cleaned_with_a_notice_and_the_admin_is_told() {
    let g = Gateway::start("", POLICY);
    let (ok, t) = send_file(
        &g,
        &["user@example.com"],
        "s@sender.test",
        &with_exe("user@example.com"),
    );
    assert!(ok, "{t}");
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    let s = text(&m[0]);
    assert!(
        !s.contains("TVqQAAMAAAAEAAAA"),
        "the attachment is gone: {s}"
    );
    assert!(s.contains("here is the installer"), "the text stays: {s}");
    assert!(s.contains("The attachment setup.exe was removed"), "{s}");
    assert!(s.contains("rule BANNED_EXE"), "{s}");
    assert!(
        s.contains("X-MXGuard-Status: cleaned; removed: Policy.BANNED_EXE"),
        "{s}"
    );
    assert!(s.contains("result=cleaned"), "{s}");
    assert!(s.contains("X-Spam-Status: No, score="), "{s}");
    // The rule asked for an admin notice (admin_on is empty).
    let a = g.maildir("admin", 1, WAIT);
    assert_eq!(a.len(), 1, "{}", g.log_text());
    let n = text(&a[0]);
    assert!(
        n.contains("Policy.BANNED_EXE") && n.contains("policy"),
        "{n}"
    );
    // The event records the policy.
    let ev = g.wait_events(1, WAIT);
    let e = ev
        .iter()
        .find(|e| e["action"] == "clean")
        .expect("clean event");
    assert!(
        e["findings"].to_string().contains("Policy.BANNED_EXE"),
        "{e}"
    );
    assert!(e["engines"].to_string().contains("everyone"), "{e}");
}

#[test]
fn spam_by_rule_points_is_tagged_and_phishing_is_quarantined() {
    let g = Gateway::start("", POLICY);
    let spam = "From: lucky@sender.test\r\nTo: user@example.com\r\nSubject: news\r\nMessage-ID: <l@sender.test>\r\n\r\nYou are the winner of our lottery, claim your prize today.\r\n";
    let (ok, t) = send_file(&g, &["user@example.com"], "lucky@sender.test", spam);
    assert!(ok, "{t}");
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    let s = text(&m[0]);
    assert!(s.contains("Subject: [SPAM] news"), "{s}");
    assert!(s.contains("X-Spam-Flag: YES"), "{s}");
    assert!(
        s.contains("X-Spam-Status: Yes, score=6.00 required=5.0 tests=LOTTERY"),
        "{s}"
    );
    assert!(
        s.contains("result=clean"),
        "spam leaves the antivirus stamp clean: {s}"
    );

    let phish = "From: Bank <service@mybank.test>\r\nTo: user@example.com\r\nSubject: account\r\nMessage-ID: <p@sender.test>\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>Log in at \
                 <a href=\"http://collector.evil.test/login\">https://www.mybank.test/login</a> now.</body></html>\r\n";
    let (ok, t) = send_file(&g, &["user@example.com"], "service@mybank.test", phish);
    assert!(ok, "{t}");
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    assert_eq!(q[0]["reason"], "policy", "{}", q[0]);
    assert_eq!(q[0]["policy"], "everyone", "{}", q[0]);
    assert!(
        q[0]["findings"].to_string().contains("Policy.PHISHING"),
        "{}",
        q[0]
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        g.maildir("user", 1, Duration::ZERO).len(),
        1,
        "not delivered"
    );
}

#[test]
fn recipients_under_different_policies_get_their_own_copies() {
    let g = Gateway::start("", POLICY);
    let msg = with_exe("finance@example.com, user@example.com");
    let (ok, t) = send_file(
        &g,
        &["finance@example.com", "user@example.com"],
        "s@sender.test",
        &msg,
    );
    assert!(ok, "{t}");
    // user@ (policy everyone): cleaned copy.
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    assert!(text(&m[0]).contains("The attachment setup.exe was removed"));
    // finance@ (policy finance): quarantined, for finance@ only.
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    assert_eq!(q[0]["policy"], "finance");
    assert_eq!(
        q[0]["rcpts"].to_string(),
        "[\"finance@example.com\"]",
        "{}",
        q[0]
    );
    assert!(g.maildir("finance", 1, Duration::ZERO).is_empty());
    // Two events, one per copy.
    let ev = g.wait_events(2, WAIT);
    let actions: Vec<&str> = ev.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.contains(&"clean") && actions.contains(&"quarantine"),
        "{ev:?}"
    );
}

#[test]
fn policy_reject_text_pass_and_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("policy.toml");
    std::fs::write(
        &pf,
        "[[rules]]\nname = \"NO_CASINO\"\nmatch = { subject = { keywords = [\"casino\"] } }\naction = \"reject\"\nreject_text = \"We do not accept casino offers\"\n\n\
         [[rules]]\nname = \"PARTNER\"\nmatch = { sender = { addresses = [\"@partner.test\"] } }\naction = \"pass\"\n",
    )
    .unwrap();
    let mut g = Gateway::start("", "");
    // policy_file is a top-level key: rewrite the config with it first.
    let cfg = std::fs::read_to_string(&g.config).unwrap();
    std::fs::write(
        &g.config,
        format!("policy_file = \"{}\"\n{cfg}", pf.display()),
    )
    .unwrap();
    g.terminate();
    let log = g.log.clone();
    g.child = support::spawn(&g.config, &log, &[]);
    support::wait_port(g.port, &mut g.child, &log);

    let casino =
        "From: a@sender.test\r\nTo: user@example.com\r\nSubject: Casino bonus\r\n\r\nplay now\r\n";
    let (ok, t) = send_file(&g, &["user@example.com"], "a@sender.test", casino);
    assert!(!ok, "{t}");
    assert!(
        t.contains("554 5.7.1 We do not accept casino offers ["),
        "{t}"
    );
    // `pass` overrides the policy's other actions for a partner.
    let (ok, t) = send_file(&g, &["user@example.com"], "news@partner.test", casino);
    assert!(ok, "{t}");
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    assert!(
        !text(&m[0]).contains("X-MXGuard-Status"),
        "pass marks nothing"
    );

    // A broken policy on SIGHUP is refused and the running one kept.
    std::fs::write(
        &pf,
        "[[rules]]\nname = \"X\"\nmatch = { subject = { regex = [\"(\"] } }\naction = \"reject\"\n",
    )
    .unwrap();
    support::unsafe_kill(g.child.id(), "HUP");
    g.wait_log("policy not reloaded", WAIT);
    let (ok, _) = send_file(&g, &["user@example.com"], "a@sender.test", casino);
    assert!(!ok, "the old policy still rejects");
    // A good one is swapped in.
    std::fs::write(&pf, "[[rules]]\nname = \"NO_POKER\"\nmatch = { subject = { keywords = [\"poker\"] } }\naction = \"reject\"\n").unwrap();
    support::unsafe_kill(g.child.id(), "HUP");
    g.wait_log("policy reloaded", WAIT);
    let (ok, t) = send_file(&g, &["user@example.com"], "a@sender.test", casino);
    assert!(ok, "casino is allowed now: {t}");
    let poker = casino.replace("Casino", "Poker");
    let (ok, t) = send_file(&g, &["user@example.com"], "a@sender.test", &poker);
    assert!(
        !ok && t.contains("554 5.7.1 Message rejected by policy"),
        "{t}"
    );
}

#[test]
fn config_check_reports_policy_errors_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c.toml");
    std::fs::write(
        &c,
        "data_dir = \"./d\"\n\n[policy]\n\n[[policy.rules]]\nname = \"BAD\"\nmatch = { body = { regex = [\"(unclosed\"] } }\naction = \"reject\"\n\n[[policy.rules]]\nname = \"WORSE\"\nmatch = { size = { gt = \"1M\" } }\naction = \"explode\"\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["config", "check", c.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let s = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(s.contains("policy.rules[0].match.body.regex[0]"), "{s}");
    assert!(s.contains("policy.rules[1].action"), "{s}");
    assert!(s.contains("line 7:") && s.contains("line 13:"), "{s}");
}

/// The classifier learns from releases and reports, and the running
/// gateway loads the changed model without a restart.
#[test]
fn released_spam_is_learned_as_ham_and_reports_reload_the_model() {
    let g = Gateway::start(
        "",
        "[actions]\nspam = \"quarantine\"\n\n[spam]\nreload_check_secs = 1\nmin_trained = 5\n",
    );
    let train = g.dir.path().join("train");
    let (ham_text, spam_text) = (
        "The kernel build passed review; the patch and the agenda follow tomorrow.",
        "Buy cheap viagra now!!! Guaranteed free money, click here to order.",
    );
    for (kind, t) in [("ham", ham_text), ("spam", spam_text)] {
        let d = train.join(kind);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..10 {
            std::fs::write(
                d.join(format!("{i}.eml")),
                format!("Subject: {kind} {i}\r\n\r\n{t} {i}\r\n"),
            )
            .unwrap();
        }
    }
    // Trained while the gateway runs: it loads the model by itself.
    let o = g.mxguard(&[
        "spam",
        "train",
        "--ham",
        train.join("ham").to_str().unwrap(),
        "--spam",
        train.join("spam").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    g.wait_log("spam model changed: reloaded on=true", WAIT);

    let spam = format!(
        "From: x@sender.test\r\nTo: user@example.com\r\nSubject: offer\r\n\r\n{spam_text}\r\n"
    );
    let (ok, t) = send_file(&g, &["user@example.com"], "x@sender.test", &spam);
    assert!(ok, "{t}");
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{}", g.log_text());
    assert_eq!(q[0]["reason"], "spam");
    let id = q[0]["id"].as_str().unwrap().to_string();
    let o = g.mxguard(&["quarantine", "release", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("learned {id} as ham")) && out.contains("model: 11 ham, 10 spam"),
        "{out}"
    );
    // "This is spam": a report adds to the spam side.
    let f = g.dir.path().join("more.eml");
    std::fs::write(&f, format!("Subject: again\r\n\r\n{spam_text}\r\n")).unwrap();
    let o = g.mxguard(&["spam", "report", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("11 ham, 11 spam"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `[auth]`: SPF, DMARC and a DNSBL through a loopback DNS server feed the
/// rules; our Authentication-Results is added, a forged one removed.
#[test]
fn sender_authentication_feeds_the_rules() {
    use std::collections::HashMap;
    let mut a = HashMap::new();
    a.insert(
        "1.0.0.127.bl.test".to_string(),
        vec!["127.0.0.2".parse().unwrap()],
    );
    let mut txt = HashMap::new();
    txt.insert(
        "spf-pass.test".to_string(),
        "v=spf1 ip4:127.0.0.1 -all".to_string(),
    );
    txt.insert("spf-fail.test".to_string(), "v=spf1 -all".to_string());
    txt.insert(
        "_dmarc.spf-fail.test".to_string(),
        "v=DMARC1; p=reject".to_string(),
    );
    let d = support::dns::start(a, txt);
    let g = Gateway::start(
        "",
        &format!(
            "[auth]\nnameservers = [\"127.0.0.1:{}\"]\nskip_private = false\ndns_timeout_ms = 500\ntime_budget_ms = 3000\n\n\
             [[auth.dnsbl]]\nzone = \"bl.test\"\nscore = 0.5\n\n\
             [policy]\n\n[[policy.rules]]\nname = \"SPF_SAYS_NO\"\nmatch = {{ auth = {{ spf = [\"fail\"] }} }}\naction = \"reject\"\nreject_text = \"SPF says no\"\n",
            d.port
        ),
    );
    let good = "From: a@spf-pass.test\r\nTo: user@example.com\r\nSubject: hi\r\nAuthentication-Results: mx.test; spf=pass smtp.mailfrom=forged.test\r\n\r\nhello\r\n";
    let (ok, t) = send_file(&g, &["user@example.com"], "a@spf-pass.test", good);
    assert!(ok, "{t}");
    let m = g.maildir("user", 1, WAIT);
    assert_eq!(m.len(), 1, "{}", g.log_text());
    let s = text(&m[0]);
    assert_eq!(
        s.matches("Authentication-Results:").count(),
        1,
        "the forged one is gone: {s}"
    );
    assert!(s.contains("Authentication-Results: mx.test;"), "{s}");
    assert!(s.contains("spf=pass"), "{s}");
    assert!(!s.contains("forged.test"), "{s}");
    assert!(
        s.contains("RCVD_IN_BL"),
        "the DNSBL listing is a scored hit: {s}"
    );

    let bad = "From: a@spf-fail.test\r\nTo: user@example.com\r\nSubject: hi\r\n\r\nhello\r\n";
    let (ok, t) = send_file(&g, &["user@example.com"], "a@spf-fail.test", bad);
    assert!(!ok, "{t}");
    assert!(t.contains("554 5.7.1 SPF says no ["), "{t}");
    let ev = g.wait_events(2, WAIT);
    let rej = ev
        .iter()
        .find(|e| e["action"] == "reject")
        .expect("reject event");
    let f = rej["findings"].to_string();
    assert!(f.contains("Policy.SPF_SAYS_NO"), "{f}");
    assert!(
        f.contains("Policy.DMARC_FAIL_REJECT"),
        "p=reject failed too: {f}"
    );
}
