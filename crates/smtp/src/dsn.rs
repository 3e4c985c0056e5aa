//! Delivery status notifications (RFC 3464 bounces) for recipients that
//! failed permanently or expired.

use crate::headers;
use crate::spool::{new_queue_id, now_secs, SpoolEnvelope};

/// One failed recipient, for the report.
#[derive(Debug, Clone)]
pub struct Failure {
    pub address: String,
    pub orcpt: Option<String>,
    /// The remote reply or our reason, e.g. `550 5.1.1 no such user`.
    pub reply: String,
}

/// The enhanced status code in a reply text (`5.1.1`), or a default.
fn status_of(reply: &str) -> String {
    reply
        .split_whitespace()
        .take(2)
        .find(|w| {
            let p: Vec<&str> = w.split('.').collect();
            p.len() == 3
                && p.iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
                && matches!(p[0], "4" | "5")
        })
        .map(str::to_string)
        .unwrap_or_else(|| "5.0.0".to_string())
}

/// Builds the bounce: a `multipart/report` from `MAILER-DAEMON@hostname` to the
/// original sender, with a human part, the `message/delivery-status` part, and
/// the original headers (or the whole message with `RET=FULL`, up to
/// `max_return` bytes). Returns the new spool id and the message.
pub fn bounce(
    hostname: &str,
    orig: &SpoolEnvelope,
    original: &[u8],
    failures: &[Failure],
    max_return: usize,
) -> (String, Vec<u8>) {
    let id = new_queue_id();
    let boundary = format!("{id}/{hostname}");
    let date = headers::rfc5322_date(now_secs());
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", orig.mail_from));
    m.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    m.push_str(&format!("Date: {date}\r\n"));
    m.push_str(&format!("Message-ID: <{id}@{hostname}>\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str("This is a MIME-encapsulated message.\r\n\r\n");
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is the mail gateway at {hostname}.\r\n\r\nYour message (queue id {}) could not be delivered to the following\r\nrecipients. This is a permanent error; the message was not delivered.\r\n\r\n",
        orig.id
    ));
    for f in failures {
        m.push_str(&format!(
            "<{}>: {}\r\n",
            f.address,
            f.reply.replace(['\r', '\n'], " ")
        ));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    if let Some(envid) = &orig.envid {
        m.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    m.push_str(&format!(
        "Arrival-Date: {}\r\n",
        headers::rfc5322_date(orig.received)
    ));
    for f in failures {
        m.push_str("\r\n");
        if let Some(o) = &f.orcpt {
            m.push_str(&format!("Original-Recipient: {o}\r\n"));
        }
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", f.address));
        m.push_str("Action: failed\r\n");
        m.push_str(&format!("Status: {}\r\n", status_of(&f.reply)));
        m.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            f.reply.replace(['\r', '\n'], " ")
        ));
    }
    let full = orig.ret.as_deref() != Some("HDRS");
    let mut out = m.into_bytes();
    if full && original.len() <= max_return {
        out.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(original);
    } else {
        out.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(&original[..headers::header_end(original)]);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (id, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_has_report_parts() {
        let env = SpoolEnvelope {
            id: "ABC".into(),
            mail_from: "s@x.test".into(),
            rcpts: vec![],
            received: 0,
            client_ip: "127.0.0.1".into(),
            helo: String::new(),
            envid: Some("E1".into()),
            ret: Some("HDRS".into()),
            body_8bit: false,
            smtputf8: false,
            dsn: false,
            verdict: String::new(),
        };
        let f = Failure {
            address: "u@example.com".into(),
            orcpt: Some("rfc822;u@example.com".into()),
            reply: "550 5.1.1 <u@example.com>: no such user".into(),
        };
        let (_, m) = bounce(
            "mx.test",
            &env,
            b"Subject: hi\r\n\r\nsecret body\r\n",
            &[f],
            1000,
        );
        let s = String::from_utf8(m).unwrap();
        assert!(s.contains("Status: 5.1.1\r\n"), "{s}");
        assert!(s.contains("Original-Envelope-Id: E1"));
        assert!(s.contains("text/rfc822-headers"));
        assert!(!s.contains("secret body"), "RET=HDRS returns headers only");
        assert_eq!(status_of("421 4.4.2 timeout"), "4.4.2");
        assert_eq!(status_of("expired"), "5.0.0");
    }
}
