//! The gateway as a milter behind a real Postfix (private instance, swaks,
//! smtp-sink as the next hop): the same pipeline as the SMTP front-end, its
//! decisions applied with milter actions.

mod support;

#[path = "../../milter/tests/common/postfix.rs"]
mod peers;

use peers::Peers;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{swaks, Gateway, EICAR};

const WAIT: Duration = Duration::from_secs(30);

/// A gateway whose milter listens on `milter_port`.
fn gateway(milter_port: u16, rest: &str, milter_extra: &str) -> Gateway {
    let g = Gateway::start(
        "",
        &format!("{rest}\n[milter]\nlisten = [\"127.0.0.1:{milter_port}\"]\n{milter_extra}\n"),
    );
    peers::wait_port(milter_port, "mxguard milter", &g.log);
    g
}

/// Postfix's queue listing (`postqueue -p`) of the private instance.
fn postqueue(p: &Peers) -> String {
    let out = Command::new("postqueue")
        .arg("-c")
        .arg(&p.etc)
        .arg("-p")
        .output()
        .expect("postqueue");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn postfix_with_the_gateway_as_milter() {
    let milter_port = support::free_port();
    let p = Peers::start(milter_port);
    let dir = tempfile::tempdir().unwrap();
    let att = dir.path().join("invoice.com");
    std::fs::write(&att, EICAR).unwrap();

    // 1. Clean and cleaned mail.
    {
        let mut g = gateway(milter_port, "[actions]\ninfected = \"clean\"\n", "");
        let (ok, t) = swaks(
            p.smtp_port,
            &[
                "--to",
                "a@example.com",
                "--from",
                "s@sender.test",
                "--body",
                "CLEAN-MARKER here",
            ],
        );
        assert!(ok, "{t}\n{}", g.log_text());
        let dump = p.delivered("CLEAN-MARKER");
        assert!(dump.contains("X-MXGuard-Stamp: v=1;"), "{dump}");
        // Postfix's own Received line is there, ours is not (Postfix is the MTA).
        assert!(!dump.contains("(mxguard)"), "{dump}");

        let (ok, t) = swaks(
            p.smtp_port,
            &[
                "--to",
                "b@example.com",
                "--from",
                "s@sender.test",
                "--header",
                "Subject: CLEANED-MARKER",
                "--attach",
                att.to_str().unwrap(),
            ],
        );
        assert!(ok, "{t}");
        let dump = p.delivered("CLEANED-MARKER");
        // Everything after the first message.
        let cleaned = &dump[dump.find("CLEAN-MARKER here").unwrap() + 17..];
        assert!(
            cleaned.contains("X-MXGuard-Status: cleaned; removed: Win.Test.EICAR"),
            "{cleaned}"
        );
        assert!(
            !cleaned.contains("EICAR-STANDARD-ANTIVIRUS-TEST-FILE"),
            "the attachment is gone: {cleaned}"
        );
        assert!(
            cleaned.contains("invoice.com"),
            "the notice names it: {cleaned}"
        );
        let ev = g.wait_events(2, WAIT);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0]["action"], "clean");
        assert_eq!(ev[1]["action"], "deliver");
        assert_eq!(ev[1]["mail_from"], "s@sender.test");
        assert_eq!(ev[1]["rcpts"][0], "a@example.com");
        assert_eq!(ev[1]["client_ip"], "127.0.0.1");
        assert!(g.terminate().success());
    }

    // 2. Rejected: our text reaches the client through Postfix.
    {
        let mut g = gateway(milter_port, "", "");
        let (ok, t) = swaks(
            p.smtp_port,
            &[
                "--to",
                "a@example.com",
                "--from",
                "s@sender.test",
                "--body",
                EICAR,
            ],
        );
        assert!(!ok, "{t}");
        assert!(
            t.contains("554 5.7.1 Message refused: virus found (Win.Test.EICAR"),
            "{t}\n{}",
            g.log_text()
        );
        let ev = g.wait_events(1, WAIT);
        assert_eq!(ev[0]["action"], "reject");
        assert!(g.terminate().success());
    }

    // 3. Redirected: Postfix is told to drop the recipient and add ours.
    {
        let mut g = gateway(
            milter_port,
            "[actions]\ninfected = \"redirect\"\nredirect_to = \"security@example.com\"\n",
            "",
        );
        let (ok, t) = swaks(
            p.smtp_port,
            &[
                "--to",
                "a@example.com",
                "--from",
                "s@sender.test",
                "--header",
                "Subject: REDIRECT-MARKER",
                "--body",
                EICAR,
            ],
        );
        assert!(ok, "{t}\n{}", g.log_text());
        let dump = p.delivered("REDIRECT-MARKER");
        let at = dump.find("REDIRECT-MARKER").unwrap();
        let start = dump[..at].rfind("X-Client-Addr:").unwrap_or(0);
        let rcpts: Vec<&str> = dump[start..at]
            .lines()
            .filter_map(|l| l.strip_prefix("X-Rcpt-Args: "))
            .collect();
        assert_eq!(rcpts.len(), 1, "{}", &dump[start..at]);
        assert!(rcpts[0].starts_with("<security@example.com>"), "{rcpts:?}");
        assert!(g.terminate().success());
    }

    // 4. Spam: scored with a model trained by `mxguard spam train`, tagged
    //    through Postfix with our X-Spam headers and Subject prefix.
    {
        let mut g = gateway(milter_port, "", "");
        let train = g.dir.path().join("train");
        for (kind, text) in [
            (
                "ham",
                "The kernel build passed review; the patch and the agenda follow tomorrow.",
            ),
            (
                "spam",
                "Buy cheap viagra now!!! Guaranteed free money, click here to order.",
            ),
        ] {
            let d = train.join(kind);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..25 {
                std::fs::write(
                    d.join(format!("{i}.eml")),
                    format!("Subject: {kind} {i}\r\n\r\n{text} {i}\r\n"),
                )
                .unwrap();
            }
        }
        let o = g.mxguard(&[
            "spam",
            "train",
            "--ham",
            train.join("ham").to_str().unwrap(),
            "--spam",
            train.join("spam").to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(g.terminate().success());
        g.child = support::spawn(&g.config, &g.log, &[]);
        peers::wait_port(milter_port, "mxguard milter", &g.log);
        let (ok, t) = swaks(
            p.smtp_port,
            &[
                "--to",
                "a@example.com",
                "--from",
                "s@sender.test",
                "--header",
                "Subject: SPAM-MARKER cheap pills",
                "--body",
                "Buy cheap viagra now, guaranteed free money, click here to order.",
            ],
        );
        assert!(ok, "{t}\n{}", g.log_text());
        let dump = p.delivered("SPAM-MARKER");
        let at = dump.find("SPAM-MARKER").unwrap();
        let start = dump[..at].rfind("X-Client-Addr:").unwrap_or(0);
        let msg = &dump[start..];
        assert!(msg.contains("X-Spam-Flag: YES"), "{msg}");
        assert!(msg.contains("X-Spam-Status: Yes, score="), "{msg}");
        assert!(
            msg.contains("Subject: [SPAM] SPAM-MARKER cheap pills"),
            "{msg}"
        );
        assert!(g.terminate().success());
    }

    // 5. Policies: a banned attachment is cleaned for b@ (the copy Postfix
    //    delivers), while finance@ falls under a policy that quarantines it:
    //    Postfix is told to drop finance@ and our store keeps its copy.
    {
        let mut g = gateway(
            milter_port,
            "[policy]\n\n[[policy.rules]]\nname = \"BANNED_EXE\"\nmatch = { attachment = { name = [\"*.exe\"] } }\naction = \"clean\"\n\n\
             [[policy.rules]]\nname = \"FINANCE_NO_EXE\"\nmatch = { attachment = { name = [\"*.exe\"] } }\naction = \"quarantine\"\n\n\
             [[policy.policies]]\nname = \"finance\"\nrecipients = [\"finance@example.com\"]\nrules = [\"FINANCE_NO_EXE\"]\n\n\
             [[policy.policies]]\nname = \"everyone\"\nrules = [\"BANNED_EXE\"]\n",
            "",
        );
        let exe = dir.path().join("setup.exe");
        std::fs::write(&exe, b"MZ\x90\x00 not really a program").unwrap();
        let (ok, t) = swaks(
            p.smtp_port,
            &[
                "--to",
                "finance@example.com,b@example.com",
                "--from",
                "s@sender.test",
                "--header",
                "Subject: POLICY-MARKER",
                "--body",
                "the installer",
                "--attach",
                exe.to_str().unwrap(),
            ],
        );
        assert!(ok, "{t}\n{}", g.log_text());
        let dump = p.delivered("POLICY-MARKER");
        let at = dump.find("POLICY-MARKER").unwrap();
        let start = dump[..at].rfind("X-Client-Addr:").unwrap_or(0);
        let msg = &dump[start..];
        let rcpts: Vec<&str> = dump[start..at]
            .lines()
            .filter_map(|l| l.strip_prefix("X-Rcpt-Args: "))
            .collect();
        assert_eq!(rcpts.len(), 1, "{}", &dump[start..at]);
        assert!(rcpts[0].starts_with("<b@example.com>"), "{rcpts:?}");
        assert!(
            msg.contains("X-MXGuard-Status: cleaned; removed: Policy.BANNED_EXE"),
            "{msg}"
        );
        assert!(
            msg.contains("The attachment setup.exe was removed"),
            "{msg}"
        );
        let q = g.quarantine_records();
        assert_eq!(q.len(), 1, "{}", g.log_text());
        assert_eq!(q[0]["policy"], "finance");
        assert_eq!(q[0]["rcpts"].to_string(), "[\"finance@example.com\"]");
        let ev = g.wait_events(2, WAIT);
        let actions: Vec<&str> = ev.iter().filter_map(|e| e["action"].as_str()).collect();
        assert!(
            actions.contains(&"clean") && actions.contains(&"quarantine"),
            "{ev:?}"
        );
        assert!(g.terminate().success());
    }

    // 6. Quarantined: in our store, and held in Postfix's hold queue.
    {
        let g = gateway(
            milter_port,
            "[actions]\ninfected = \"quarantine\"\n",
            "hold_quarantined = true",
        );
        let (ok, t) = swaks(
            p.smtp_port,
            &[
                "--to",
                "c@example.com",
                "--from",
                "s@sender.test",
                "--header",
                "Subject: HELD-MARKER",
                "--body",
                EICAR,
            ],
        );
        assert!(ok, "{t}\n{}", g.log_text());
        let q = g.quarantine_records();
        assert_eq!(q.len(), 1, "{}", g.log_text());
        assert_eq!(q[0]["subject"], "HELD-MARKER");
        assert_eq!(q[0]["rcpts"][0], "c@example.com");
        let t0 = Instant::now();
        let mut listing = postqueue(&p);
        // A held message is marked with '!' after its queue id.
        while !listing.contains('!') && t0.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(200));
            listing = postqueue(&p);
        }
        assert!(
            listing.contains('!') && listing.contains("c@example.com"),
            "{listing}"
        );
        let dump = std::fs::read_to_string(p.dir.path().join("sink/dump")).unwrap_or_default();
        assert!(!dump.contains("HELD-MARKER"), "held, not delivered");
    }
}
