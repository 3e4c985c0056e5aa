//! The spam filter end to end: `mxguard spam train` on folders of ham and
//! spam, then the gateway scores every message with the model, tags spam
//! (`[actions] spam = "tag"`, the default), adds X-Spam-* headers (replacing
//! any the client sent) and records the score in the event log.

mod support;

use std::path::Path;
use std::time::Duration;
use support::{swaks, Gateway};

const WAIT: Duration = Duration::from_secs(20);

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// Two small, clearly different training sets.
fn training_set(dir: &Path) {
    let ham = dir.join("ham");
    let spam = dir.join("spam");
    std::fs::create_dir_all(&ham).unwrap();
    std::fs::create_dir_all(&spam).unwrap();
    for i in 0..30 {
        std::fs::write(
            ham.join(format!("{i}.eml")),
            format!(
                "From: colleague{i}@example.org\r\nTo: team@example.com\r\nSubject: meeting notes {i}\r\n\r\n\
                 The kernel build for release {i} passed review. I will send the patch tomorrow\r\n\
                 after the meeting; the agenda and minutes are in the repository.\r\n"
            ),
        )
        .unwrap();
        std::fs::write(
            spam.join(format!("{i}.eml")),
            format!(
                "From: promo{i}@bulk.test\r\nTo: someone@example.com\r\nSubject: CHEAP PILLS offer {i}\r\n\r\n\
                 Buy cheap viagra now!!! Limited offer {i}, guaranteed free money, no prescription.\r\n\
                 Click here to order; unsubscribe anytime. Casino bonus winner.\r\n"
            ),
        )
        .unwrap();
    }
}

#[test]
fn spam_is_scored_tagged_and_recorded() {
    let mut g = Gateway::start("", "");
    assert!(
        g.log_text().contains("spam filter off: no model"),
        "{}",
        g.log_text()
    );
    let train = g.dir.path().join("train");
    training_set(&train);
    let o = g.mxguard(&[
        "spam",
        "train",
        "--ham",
        train.join("ham").to_str().unwrap(),
        "--spam",
        train.join("spam").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("learned 30 ham and 30 spam"),
        "{}",
        text(&o.stdout)
    );

    // The model is read at start.
    assert!(g.terminate().success());
    g.child = support::spawn(&g.config, &g.log, &[]);
    support::wait_port(g.port, &mut g.child, &g.log);
    assert!(g.log_text().contains("spam filter on"), "{}", g.log_text());

    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "user@example.com",
            "--from",
            "promo@bulk.test",
            "--header",
            "Subject: cheap pills offer",
            "--header",
            "X-Spam-Status: No, forged by the sender",
            "--body",
            "Buy cheap viagra now, guaranteed free money, click here to order.",
        ],
    );
    assert!(ok, "{t}");
    let (ok, t) = swaks(
        g.port,
        &[
            "--to",
            "user@example.com",
            "--from",
            "colleague@example.org",
            "--header",
            "Subject: meeting notes",
            "--body",
            "The kernel build passed review; the patch and the agenda follow tomorrow.",
        ],
    );
    assert!(ok, "{t}");
    let m = g.maildir("user", 2, WAIT);
    assert_eq!(m.len(), 2, "{}", g.log_text());
    let spam = m
        .iter()
        .map(|b| text(b))
        .find(|s| s.contains("viagra"))
        .unwrap();
    let ham = m
        .iter()
        .map(|b| text(b))
        .find(|s| s.contains("kernel"))
        .unwrap();
    assert!(spam.contains("X-Spam-Flag: YES"), "{spam}");
    assert!(spam.contains("X-Spam-Status: Yes, score="), "{spam}");
    assert!(
        !spam.contains("forged by the sender"),
        "the client's header is replaced: {spam}"
    );
    assert_eq!(spam.matches("X-Spam-Status:").count(), 1);
    assert!(spam.contains("Subject: [SPAM] cheap pills offer"), "{spam}");
    assert!(
        spam.contains("X-MXGuard-Status: spam; Spam.Score"),
        "{spam}"
    );
    assert!(
        spam.contains("result=clean"),
        "the antivirus stamp stays clean: {spam}"
    );
    assert!(ham.contains("X-Spam-Status: No, score="), "{ham}");
    assert!(
        !ham.contains("X-Spam-Flag") && ham.contains("Subject: meeting notes"),
        "{ham}"
    );

    let ev = g.wait_events(2, WAIT);
    let spam_ev = ev
        .iter()
        .find(|e| e["mail_from"] == "promo@bulk.test")
        .unwrap();
    let ham_ev = ev
        .iter()
        .find(|e| e["mail_from"] == "colleague@example.org")
        .unwrap();
    assert_eq!(spam_ev["verdict"], "spam");
    assert_eq!(spam_ev["action"], "tag");
    assert!(spam_ev["spam_score"].as_f64().unwrap() >= 5.0, "{spam_ev}");
    assert!(ham_ev["spam_score"].as_f64().unwrap() < 0.0, "{ham_ev}");
    assert_eq!(ham_ev["verdict"], "clean");

    // The command line agrees with the gateway.
    let f = g.dir.path().join("one.eml");
    std::fs::write(
        &f,
        "Subject: cheap pills offer\r\n\r\nBuy cheap viagra now, free money.\r\n",
    )
    .unwrap();
    let o = g.mxguard(&["spam", "check", "--json", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["label"], "spam", "{v}");
    assert_eq!(v["rules"][0]["name"], "BAYES");
}
