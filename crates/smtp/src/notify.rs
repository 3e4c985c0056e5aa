//! Notices about what the gateway did to a message: to the administrators,
//! to the recipients and (carefully) to the sender, from built-in templates
//! in English, German and French (or the administrator's own), queued like
//! any other mail.
//!
//! - A notice is a plain text UTF-8 message (quoted-printable, RFC 2047
//!   Subject) sent from the null sender `<>` with `Auto-Submitted:
//!   auto-replied`, so it is never answered or bounced back in a loop.
//! - It goes through the spool and the delivery queue: durable, retried,
//!   and delivered by the same route as everything else.
//! - **No backscatter**: the sender of a message found infected or spam is
//!   usually forged, so a sender notice for those classes is only sent when
//!   the client was trusted (`trusted_networks`: our own users' outgoing
//!   mail). A reject never notifies the sender (their server reports the SMTP
//!   error).
//! - Recipients hear about messages withheld (quarantine, drop) or changed
//!   (clean), not about rejected ones, which were never accepted.
//! - Failing to queue a notice is logged; it never changes the answer about
//!   the message itself.

use crate::headers;
use crate::spool::{new_queue_id, now_secs, Spool, SpoolEnvelope, SpoolRcpt};
use mxguard_types::Finding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[notify]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Administrators' addresses (empty: no admin notices).
    pub admin: Vec<String>,
    /// The From address of notices; empty: `mxguard@<hostname>`.
    pub from: String,
    /// Language of notices: `en`, `de` or `fr`.
    pub language: String,
    /// Language per recipient domain (`{ "example.de" = "de" }`).
    pub languages: BTreeMap<String, String>,
    /// Verdict classes (`infected`, `suspicious`, `unscannable`, `spam`) that notify the administrators.
    pub admin_on: Vec<String>,
    /// Classes that notify the recipients when their message was withheld or changed.
    pub recipient_on: Vec<String>,
    /// Classes that notify the sender (see the module doc about backscatter).
    pub sender_on: Vec<String>,
    /// Own templates: `DIR/<language>/<admin|recipient|sender>.txt`, a
    /// `Subject:` line, an empty line, then the body; `{id}`, `{from}`,
    /// `{rcpts}`, `{subject}`, `{threats}`, `{action}`, `{class}`, `{node}`,
    /// `{time}`, `{client}` are filled in. Missing files fall back to the built-in text.
    pub template_dir: Option<PathBuf>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            admin: Vec::new(),
            from: String::new(),
            language: "en".into(),
            languages: BTreeMap::new(),
            admin_on: vec!["infected".into(), "suspicious".into(), "unscannable".into()],
            recipient_on: Vec::new(),
            sender_on: Vec::new(),
            template_dir: None,
        }
    }
}

/// The languages with built-in templates.
pub const LANGUAGES: [&str; 3] = ["en", "de", "fr"];
const CLASSES: [&str; 4] = ["infected", "suspicious", "unscannable", "spam"];

impl NotifyConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        let lang_ok = |l: &str| LANGUAGES.contains(&l);
        if !lang_ok(&self.language) {
            e.push(format!(
                "notify.language: {:?} is not one of en, de, fr",
                self.language
            ));
        }
        for (d, l) in &self.languages {
            if !lang_ok(l) {
                e.push(format!(
                    "notify.languages.{d}: {l:?} is not one of en, de, fr"
                ));
            }
        }
        for (key, list) in [
            ("admin_on", &self.admin_on),
            ("recipient_on", &self.recipient_on),
            ("sender_on", &self.sender_on),
        ] {
            for c in list {
                if !CLASSES.contains(&c.as_str()) {
                    e.push(format!(
                        "notify.{key}: {c:?} is not one of infected, suspicious, unscannable, spam"
                    ));
                }
            }
        }
        for a in self.admin.iter().chain(std::iter::once(&self.from)) {
            if !a.is_empty() && !a.contains('@') {
                e.push(format!("notify: {a:?} is not an address"));
            }
        }
        e
    }
}

/// Who a notice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Admin,
    Recipient,
    Sender,
}

impl Audience {
    fn as_str(self) -> &'static str {
        match self {
            Audience::Admin => "admin",
            Audience::Recipient => "recipient",
            Audience::Sender => "sender",
        }
    }
}

/// What happened, for the templates.
#[derive(Debug, Clone)]
pub struct Incident<'a> {
    pub id: &'a str,
    pub client_ip: &'a str,
    pub mail_from: &'a str,
    pub rcpts: &'a [String],
    pub subject: &'a str,
    /// `quarantine`, `reject`, `drop`, `clean`, `tag`.
    pub action: &'a str,
    /// The strictest class found.
    pub class: &'a str,
    pub findings: &'a [Finding],
    /// The client is in `trusted_networks`.
    pub trusted_client: bool,
    /// Notices a policy rule asked for (audience, template name), besides
    /// those `admin_on`/`recipient_on`/`sender_on` call for.
    pub requested: &'a [(Audience, String)],
}

/// Built-in texts per language: (subject, body) per audience; action words.
fn builtin(lang: &str, who: Audience) -> (&'static str, &'static str) {
    match (lang, who) {
        ("de", Audience::Admin) => ("[mxguard] {class}: {action} – {threats}", "Das Mail-Gateway hat eine Nachricht {action}.\n\nId: {id}\nZeit: {time}\nKnoten: {node}\nClient: {client}\nAbsender: {from}\nEmpfänger: {rcpts}\nBetreff: {subject}\nGefunden: {threats}\n\nFreigabe: mxguard quarantine release {id}\n"),
        ("de", Audience::Recipient) => ("Eine Nachricht an Sie wurde {action}", "Eine Nachricht von {from} mit dem Betreff „{subject}“ enthielt {threats}.\nSie wurde vom Mail-Gateway {action} (Id {id}).\n\nWenn Sie diese Nachricht erwarten, wenden Sie sich an Ihre IT-Abteilung und nennen Sie die Id.\n"),
        ("de", Audience::Sender) => ("Ihre Nachricht wurde {action}", "Ihre Nachricht an {rcpts} mit dem Betreff „{subject}“ enthielt {threats}.\nSie wurde vom Mail-Gateway {action} (Id {id}).\n"),
        ("fr", Audience::Admin) => ("[mxguard] {class} : {action} – {threats}", "La passerelle de messagerie a {action} un message.\n\nId : {id}\nHeure : {time}\nNœud : {node}\nClient : {client}\nExpéditeur : {from}\nDestinataires : {rcpts}\nObjet : {subject}\nDétecté : {threats}\n\nLibération : mxguard quarantine release {id}\n"),
        ("fr", Audience::Recipient) => ("Un message qui vous était destiné a été {action}", "Un message de {from} avec l’objet « {subject} » contenait {threats}.\nLa passerelle de messagerie l’a {action} (id {id}).\n\nSi vous attendiez ce message, contactez votre service informatique en indiquant l’id.\n"),
        ("fr", Audience::Sender) => ("Votre message a été {action}", "Votre message à {rcpts} avec l’objet « {subject} » contenait {threats}.\nLa passerelle de messagerie l’a {action} (id {id}).\n"),
        (_, Audience::Admin) => ("[mxguard] {class}: {action} - {threats}", "The mail gateway {action} a message.\n\nId: {id}\nTime: {time}\nNode: {node}\nClient: {client}\nFrom: {from}\nTo: {rcpts}\nSubject: {subject}\nFound: {threats}\n\nTo release it: mxguard quarantine release {id}\n"),
        (_, Audience::Recipient) => ("A message to you was {action}", "A message from {from} with the subject \"{subject}\" contained {threats}.\nThe mail gateway {action} it (id {id}).\n\nIf you expected this message, contact your IT department and give them the id.\n"),
        (_, Audience::Sender) => ("Your message was {action}", "Your message to {rcpts} with the subject \"{subject}\" contained {threats}.\nThe mail gateway {action} it (id {id}).\n"),
    }
}

/// The action as a participle in `lang`.
fn action_words(lang: &str, action: &str) -> &'static str {
    match (lang, action) {
        ("de", "quarantine") => "in Quarantäne gestellt",
        ("de", "reject") => "abgewiesen",
        ("de", "drop") => "verworfen",
        ("de", "clean") => "bereinigt (der betroffene Teil wurde entfernt)",
        ("de", "replace") => "durch einen Hinweis ersetzt",
        ("de", "redirect") => "umgeleitet",
        ("de", _) => "markiert",
        ("fr", "quarantine") => "mis en quarantaine",
        ("fr", "reject") => "refusé",
        ("fr", "drop") => "supprimé",
        ("fr", "clean") => "nettoyé (la partie concernée a été retirée)",
        ("fr", "replace") => "remplacé par un avis",
        ("fr", "redirect") => "redirigé",
        ("fr", _) => "marqué",
        (_, "quarantine") => "quarantined",
        (_, "reject") => "rejected",
        (_, "drop") => "dropped",
        (_, "clean") => "cleaned (the affected part was removed)",
        (_, "replace") => "replaced by a notice",
        (_, "redirect") => "redirected",
        _ => "tagged",
    }
}

/// Quoted-printable body (RFC 2045), CRLF line ends, lines at most 76 characters.
pub(crate) fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let bytes = line.as_bytes();
        let mut col = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let lit = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let piece = if lit {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            out.push_str(&piece);
            col += piece.len();
        }
        out.push_str("\r\n");
    }
    out
}

/// An RFC 2047 encoded word when `s` is not plain ASCII.
fn encode_header(s: &str) -> String {
    if s.is_ascii() && !s.contains("=?") {
        return s.to_string();
    }
    use base64::Engine;
    // Encoded words are at most 75 characters: split the text in chunks.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?b?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Sends notices; shared by the front-ends.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub cfg: NotifyConfig,
    pub hostname: String,
    pub node: String,
    /// Notices for local recipients go into Maildir (next hop `maildir`).
    pub local_delivery: bool,
}

impl Notifier {
    fn language_for(&self, address: &str) -> &str {
        let dom = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        self.cfg
            .languages
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(&dom))
            .map(|(_, l)| l.as_str())
            .unwrap_or(&self.cfg.language)
    }

    /// The template for `who` in `lang`: with a policy rule's template name
    /// `T`, `template_dir/LANG/T.AUDIENCE.txt` first; then
    /// `template_dir/LANG/AUDIENCE.txt`; then the built-in text.
    fn template(&self, lang: &str, who: Audience, named: Option<&str>) -> (String, String) {
        if let Some(dir) = &self.cfg.template_dir {
            let mut files = Vec::with_capacity(2);
            if let Some(t) = named.filter(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }) {
                files.push(dir.join(lang).join(format!("{t}.{}.txt", who.as_str())));
            }
            files.push(dir.join(lang).join(format!("{}.txt", who.as_str())));
            for p in files {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    let t = t.replace("\r\n", "\n");
                    if let Some((head, body)) = t.split_once("\n\n") {
                        if let Some(subj) = head.strip_prefix("Subject:") {
                            return (subj.trim().to_string(), body.to_string());
                        }
                    }
                    tracing::warn!(template = %p.display(), "notice template without a Subject: line and an empty line; using the built-in one");
                    break;
                }
            }
        }
        let (s, b) = builtin(lang, who);
        (s.to_string(), b.to_string())
    }

    fn fill(&self, t: &str, inc: &Incident<'_>, lang: &str) -> String {
        let mut threats: Vec<&str> = inc.findings.iter().map(|f| f.name.as_str()).collect();
        threats.dedup();
        let sender = if inc.mail_from.is_empty() {
            "<>"
        } else {
            inc.mail_from
        };
        t.replace("{id}", inc.id)
            .replace("{from}", sender)
            .replace("{rcpts}", &inc.rcpts.join(", "))
            .replace("{subject}", inc.subject)
            .replace("{threats}", &threats.join(", "))
            .replace("{action}", action_words(lang, inc.action))
            .replace("{class}", inc.class)
            .replace("{node}", &self.node)
            .replace("{client}", inc.client_ip)
            .replace("{time}", &headers::rfc5322_date(now_secs()))
    }

    /// The notices `inc` calls for: (audience, recipient address, message).
    pub fn notices(&self, inc: &Incident<'_>) -> Vec<(Audience, String, Vec<u8>)> {
        let withheld_or_changed = matches!(
            inc.action,
            "quarantine" | "replace" | "reject" | "drop" | "clean"
        );
        let on = |list: &[String]| list.iter().any(|c| c == inc.class);
        let asked = |who: Audience| {
            inc.requested
                .iter()
                .find(|(w, _)| *w == who)
                .map(|(_, t)| t.as_str())
        };
        let mut out: Vec<(Audience, String, Option<&str>)> = Vec::new();
        if on(&self.cfg.admin_on) || asked(Audience::Admin).is_some() {
            for a in &self.cfg.admin {
                out.push((Audience::Admin, a.clone(), asked(Audience::Admin)));
            }
        }
        // A rejected message was never accepted: its recipients have nothing to learn.
        // `replace` delivers its own notice in place of the message.
        if withheld_or_changed
            && !matches!(inc.action, "reject" | "replace")
            && (on(&self.cfg.recipient_on) || asked(Audience::Recipient).is_some())
        {
            for r in inc.rcpts {
                out.push((Audience::Recipient, r.clone(), asked(Audience::Recipient)));
            }
        }
        let forged_likely = matches!(inc.class, "infected" | "spam") && !inc.trusted_client;
        if withheld_or_changed
            && inc.action != "reject"
            && (on(&self.cfg.sender_on) || asked(Audience::Sender).is_some())
            && !inc.mail_from.is_empty()
            && !forged_likely
        {
            out.push((
                Audience::Sender,
                inc.mail_from.to_string(),
                asked(Audience::Sender),
            ));
        }
        out.into_iter()
            .map(|(who, to, named)| {
                let lang = self.language_for(&to).to_string();
                let (subj, body) = self.template(&lang, who, named);
                let msg = self.message(
                    &to,
                    &self.fill(&subj, inc, &lang),
                    &self.fill(&body, inc, &lang),
                );
                (who, to, msg)
            })
            .collect()
    }

    fn message(&self, to: &str, subject: &str, body: &str) -> Vec<u8> {
        let from = if self.cfg.from.is_empty() {
            format!("mxguard@{}", self.hostname)
        } else {
            self.cfg.from.clone()
        };
        let mid = format!("<{}.notice@{}>", new_queue_id(), self.hostname);
        format!(
            "From: mxguard <{from}>\r\nTo: <{to}>\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: {mid}\r\n\
             Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
            encode_header(subject.lines().next().unwrap_or("")),
            headers::rfc5322_date(now_secs()),
            quoted_printable(body)
        )
        .into_bytes()
    }

    /// Spools the notices of `inc` (durably) and returns their queue ids.
    /// Errors are logged; a notice never changes the fate of the message.
    pub fn send(&self, spool: &Spool, inc: &Incident<'_>) -> Vec<String> {
        let mut ids = Vec::new();
        for (who, to, msg) in self.notices(inc) {
            let id = new_queue_id();
            let env = SpoolEnvelope {
                id: id.clone(),
                mail_from: String::new(),
                rcpts: vec![SpoolRcpt {
                    address: to.clone(),
                    local: self.local_delivery,
                    notify: None,
                    orcpt: None,
                }],
                received: now_secs(),
                client_ip: "127.0.0.1".into(),
                helo: self.hostname.clone(),
                envid: None,
                ret: None,
                body_8bit: false,
                smtputf8: !to.is_ascii(),
                dsn: false,
                verdict: "notice".into(),
            };
            match spool.store(&env, &msg) {
                Ok(()) => {
                    tracing::info!(id = inc.id, notice = %id, to = %to, audience = who.as_str(), "notice queued");
                    ids.push(id);
                }
                Err(e) => tracing::error!(id = inc.id, to = %to, "notice not queued: {e}"),
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxguard_types::{EngineKind, Severity};

    fn notifier(cfg: NotifyConfig) -> Notifier {
        Notifier {
            cfg,
            hostname: "mx.test".into(),
            node: "n1".into(),
            local_delivery: true,
        }
    }

    fn incident<'a>(
        rcpts: &'a [String],
        findings: &'a [Finding],
        class: &'a str,
        action: &'a str,
        trusted: bool,
    ) -> Incident<'a> {
        Incident {
            id: "ABC",
            client_ip: "192.0.2.1",
            mail_from: "someone@sender.test",
            rcpts,
            subject: "Rechnung März",
            action,
            class,
            findings,
            trusted_client: trusted,
            requested: &[],
        }
    }

    #[test]
    fn who_gets_what_and_no_backscatter() {
        let n = notifier(NotifyConfig {
            admin: vec!["admin@example.com".into()],
            recipient_on: vec!["infected".into()],
            sender_on: vec!["infected".into(), "suspicious".into()],
            languages: [("example.de".to_string(), "de".to_string())].into(),
            ..Default::default()
        });
        let rcpts = vec!["anna@example.de".to_string(), "bob@example.com".to_string()];
        let f = vec![Finding {
            name: "Win.Test.EICAR_HDB-1".into(),
            engine: EngineKind::Signatures,
            severity: Severity::Infected,
            location: "part[2]".into(),
            detail: String::new(),
        }];
        let got = n.notices(&incident(&rcpts, &f, "infected", "quarantine", false));
        let to: Vec<(Audience, &str)> = got.iter().map(|(a, t, _)| (*a, t.as_str())).collect();
        assert_eq!(
            to,
            [
                (Audience::Admin, "admin@example.com"),
                (Audience::Recipient, "anna@example.de"),
                (Audience::Recipient, "bob@example.com"),
            ],
            "no sender notice for an infected message from an untrusted client"
        );
        let de = String::from_utf8(got[1].2.clone()).unwrap();
        assert!(de.contains("Subject: =?utf-8?b?"), "{de}");
        assert!(de.contains("in Quarant=C3=A4ne gestellt"), "{de}");
        assert!(de.contains("Auto-Submitted: auto-replied"));
        let en = String::from_utf8(got[0].2.clone()).unwrap();
        assert!(
            en.contains("Subject: [mxguard] infected: quarantined - Win.Test.EICAR_HDB-1"),
            "{en}"
        );
        assert!(en.contains("mxguard quarantine release ABC"), "{en}");
        // Trusted client (our own user): the sender hears about it too.
        let got = n.notices(&incident(&rcpts, &f, "infected", "quarantine", true));
        assert!(got
            .iter()
            .any(|(a, t, _)| *a == Audience::Sender && t == "someone@sender.test"));
        // Reject: the sender's server reports the error; no sender notice, no recipient notice class mismatch.
        let got = n.notices(&incident(&rcpts, &f, "infected", "reject", true));
        assert!(!got.iter().any(|(a, _, _)| *a == Audience::Sender));
        // Tag: the message was delivered; only the admin hears about it.
        let got = n.notices(&incident(&rcpts, &f, "infected", "tag", true));
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn encodings() {
        let q = quoted_printable("caf\u{e9} = ok \nline with trailing space \n");
        assert_eq!(
            q,
            "caf=C3=A9 =3D ok=20\r\nline with trailing space=20\r\n\r\n"
        );
        let long = quoted_printable(&"x".repeat(200));
        assert!(long.split("\r\n").all(|l| l.len() <= 76), "{long}");
        assert_eq!(encode_header("plain"), "plain");
        assert!(encode_header("Grüße").starts_with("=?utf-8?b?"));
        let v = NotifyConfig {
            language: "xx".into(),
            admin_on: vec!["virus".into()],
            admin: vec!["nobody".into()],
            ..Default::default()
        }
        .validate();
        assert_eq!(v.len(), 3, "{v:?}");
    }
}
