//! The policy config: TOML in, typed values out, every mistake reported at
//! once with its key path.
//!
//! Each table is read through a serde struct with `deny_unknown_fields`
//! whose fields stay TOML values, then each value is typed by hand, so an
//! error names the exact key (`policy.rules[3].match.body.min: expected a
//! non-negative integer, found string`) and one bad rule does not hide the
//! next. Checks that need the whole config (regexes, references to lists
//! and rules, limits) run in [`crate::rules::CompiledPolicy::compile`].

use serde::Deserialize;
use toml::Value;

use super::domain::{BRANDS, SHORTENERS};
use super::error::{line_of, ConfigError, ErrorKind};
use crate::auth::{AuthResult, DmarcPolicy};

/// Deepest nesting of `all` / `any` / `not`.
pub const MAX_CONDITION_DEPTH: usize = 16;

/// What a rule or policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    // Declared strongest first: the order of `PolicyVerdict::actions`.
    Reject,
    Tempfail,
    Drop,
    Quarantine,
    Replace,
    Redirect,
    Clean,
    Warn,
    Tag,
    Bcc,
    Pass,
}

impl ActionKind {
    pub const ALL: [ActionKind; 11] = [
        ActionKind::Reject,
        ActionKind::Tempfail,
        ActionKind::Drop,
        ActionKind::Quarantine,
        ActionKind::Replace,
        ActionKind::Redirect,
        ActionKind::Clean,
        ActionKind::Warn,
        ActionKind::Tag,
        ActionKind::Bcc,
        ActionKind::Pass,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Reject => "reject",
            ActionKind::Tempfail => "tempfail",
            ActionKind::Drop => "drop",
            ActionKind::Quarantine => "quarantine",
            ActionKind::Replace => "replace",
            ActionKind::Redirect => "redirect",
            ActionKind::Clean => "clean",
            ActionKind::Warn => "warn",
            ActionKind::Tag => "tag",
            ActionKind::Bcc => "bcc",
            ActionKind::Pass => "pass",
        }
    }

    pub fn from_name(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Who receives a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeTarget {
    Admin,
    Sender,
    Recipient,
}

impl NoticeTarget {
    pub fn name(self) -> &'static str {
        match self {
            NoticeTarget::Admin => "admin",
            NoticeTarget::Sender => "sender",
            NoticeTarget::Recipient => "recipient",
        }
    }
}

/// An action with its parameters, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSpec {
    pub kind: ActionKind,
    /// reject / tempfail: the reply text (the gateway adds the code).
    pub text: Option<String>,
    /// redirect / bcc: the address.
    pub address: Option<String>,
    /// warn: the banner prepended to the body.
    pub banner: Option<String>,
    /// tag: the Subject prefix.
    pub subject_tag: Option<String>,
    /// Notices to send.
    pub notify: Vec<NoticeTarget>,
    /// Notice template name (default: the action's name).
    pub template: Option<String>,
}

impl ActionSpec {
    pub fn new(kind: ActionKind) -> ActionSpec {
        ActionSpec {
            kind,
            text: None,
            address: None,
            banner: None,
            subject_tag: None,
            notify: Vec::new(),
            template: None,
        }
    }
}

/// Message direction of one recipient, from `local_domains`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From outside to a local recipient.
    Inbound,
    /// From a local sender to a remote recipient (or relayed).
    Outbound,
    /// From a local sender to a local recipient.
    Internal,
}

/// Which directions a policy or condition covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectionFilter {
    #[default]
    Any,
    Only(Direction),
}

impl DirectionFilter {
    pub fn covers(self, d: Direction) -> bool {
        match self {
            DirectionFilter::Any => true,
            DirectionFilter::Only(x) => x == d,
        }
    }
}

/// Built-in phishing checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhishCheck {
    /// A link's displayed text names a domain, its target is another one.
    LinkTextMismatch,
    /// A URL host or sender domain imitates a brand (typo, homoglyph,
    /// brand as a hyphenated part or as a subdomain of another domain).
    LookalikeDomain,
    /// A punycode (`xn--`) host that decodes to an imitation of a brand.
    PunycodeDomain,
    /// A URL whose host is an IP address.
    IpUrl,
    /// A URL with credentials (`http://user@host`).
    UrlCredentials,
    /// An HTML attachment with a password form.
    HtmlLoginForm,
}

impl PhishCheck {
    pub const ALL: [PhishCheck; 6] = [
        PhishCheck::LinkTextMismatch,
        PhishCheck::LookalikeDomain,
        PhishCheck::PunycodeDomain,
        PhishCheck::IpUrl,
        PhishCheck::UrlCredentials,
        PhishCheck::HtmlLoginForm,
    ];

    /// Config name (`phishing = "ip_url"`).
    pub fn name(self) -> &'static str {
        match self {
            PhishCheck::LinkTextMismatch => "link_text_mismatch",
            PhishCheck::LookalikeDomain => "lookalike_domain",
            PhishCheck::PunycodeDomain => "punycode_domain",
            PhishCheck::IpUrl => "ip_url",
            PhishCheck::UrlCredentials => "url_credentials",
            PhishCheck::HtmlLoginForm => "html_login_form",
        }
    }

    /// Name of the built-in rule.
    pub fn rule_name(self) -> &'static str {
        match self {
            PhishCheck::LinkTextMismatch => "PHISH_LINK_TEXT_MISMATCH",
            PhishCheck::LookalikeDomain => "PHISH_LOOKALIKE_DOMAIN",
            PhishCheck::PunycodeDomain => "PHISH_PUNYCODE_DOMAIN",
            PhishCheck::IpUrl => "PHISH_IP_URL",
            PhishCheck::UrlCredentials => "PHISH_URL_CREDENTIALS",
            PhishCheck::HtmlLoginForm => "PHISH_HTML_LOGIN_FORM",
        }
    }

    /// Default points of the built-in rule.
    pub fn default_score(self) -> f64 {
        match self {
            PhishCheck::LinkTextMismatch => 2.5,
            PhishCheck::LookalikeDomain => 3.0,
            PhishCheck::PunycodeDomain => 3.5,
            PhishCheck::IpUrl => 1.5,
            PhishCheck::UrlCredentials => 2.5,
            PhishCheck::HtmlLoginForm => 4.0,
        }
    }

    fn from_name(s: &str) -> Option<PhishCheck> {
        PhishCheck::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// An authentication test over [`crate::MessageFacts::auth`]: every key
/// given holds (each one: the result is one of those listed). Never holds
/// when the checks did not run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthTest {
    pub spf: Vec<AuthResult>,
    /// Some DKIM signature has one of these results; `none` holds for an
    /// unsigned message.
    pub dkim: Vec<AuthResult>,
    pub dmarc: Vec<AuthResult>,
    /// The DMARC policy in effect for the From domain.
    pub dmarc_policy: Vec<DmarcPolicy>,
    pub arc: Vec<AuthResult>,
}

/// Which block list a listing test or rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// The client IP (`RCVD_IN_*`).
    Dnsbl,
    /// URL domains (`URIBL_*`).
    Uribl,
}

/// Built-in authentication and reputation rules (`[auth]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthRule {
    SpfFail,
    SpfSoftfail,
    DkimInvalid,
    DmarcFailReject,
    DmarcFailQuarantine,
    DmarcPass,
    ArcPass,
    /// Every DNSBL listing of the client IP, one hit per listing rule.
    Dnsbl,
    /// Every URIBL listing of a URL domain, one hit per listing rule.
    Uribl,
}

impl AuthRule {
    pub const ALL: [AuthRule; 9] = [
        AuthRule::SpfFail,
        AuthRule::SpfSoftfail,
        AuthRule::DkimInvalid,
        AuthRule::DmarcFailReject,
        AuthRule::DmarcFailQuarantine,
        AuthRule::DmarcPass,
        AuthRule::ArcPass,
        AuthRule::Dnsbl,
        AuthRule::Uribl,
    ];

    pub fn rule_name(self) -> &'static str {
        match self {
            AuthRule::SpfFail => "SPF_FAIL",
            AuthRule::SpfSoftfail => "SPF_SOFTFAIL",
            AuthRule::DkimInvalid => "DKIM_INVALID",
            AuthRule::DmarcFailReject => "DMARC_FAIL_REJECT",
            AuthRule::DmarcFailQuarantine => "DMARC_FAIL_QUARANTINE",
            AuthRule::DmarcPass => "DMARC_PASS",
            AuthRule::ArcPass => "ARC_PASS",
            AuthRule::Dnsbl => "RCVD_IN_DNSBL",
            AuthRule::Uribl => "URIBL_LISTED",
        }
    }

    /// Default points. The list rules have none of their own: each
    /// listing brings its zone's points (from the auth config).
    pub fn default_score(self) -> Option<f64> {
        match self {
            AuthRule::SpfFail => Some(1.5),
            AuthRule::SpfSoftfail => Some(0.7),
            AuthRule::DkimInvalid => Some(1.0),
            AuthRule::DmarcFailReject => Some(4.0),
            AuthRule::DmarcFailQuarantine => Some(3.0),
            AuthRule::DmarcPass => Some(-0.5),
            AuthRule::ArcPass => Some(0.0),
            AuthRule::Dnsbl | AuthRule::Uribl => None,
        }
    }

    fn group(self) -> &'static str {
        match self {
            AuthRule::Dnsbl => "dnsbl",
            AuthRule::Uribl => "uribl",
            _ => "auth",
        }
    }

    fn description(self) -> &'static str {
        match self {
            AuthRule::SpfFail => "SPF fail: the sender's domain does not allow this client",
            AuthRule::SpfSoftfail => "SPF softfail: the sender's domain doubts this client",
            AuthRule::DkimInvalid => "DKIM signed, but no signature verifies",
            AuthRule::DmarcFailReject => "DMARC fail for a From domain with policy reject",
            AuthRule::DmarcFailQuarantine => "DMARC fail for a From domain with policy quarantine",
            AuthRule::DmarcPass => "DMARC pass: the From domain is authenticated",
            AuthRule::ArcPass => "ARC chain intact (says nothing about the sealers' trust)",
            AuthRule::Dnsbl => "the client IP is on a DNS block list",
            AuthRule::Uribl => "a URL domain is on a URI block list",
        }
    }

    fn from_name(s: &str) -> Option<AuthRule> {
        AuthRule::ALL.into_iter().find(|r| r.rule_name() == s)
    }

    /// The rule's condition; `path` is the key path of `[auth]`.
    fn condition(self, path: &str) -> Condition {
        let test = |t: Test| Condition::Test {
            path: path.to_string(),
            test: t,
        };
        let auth = |f: fn(&mut AuthTest)| {
            let mut t = AuthTest::default();
            f(&mut t);
            test(Test::Auth(t))
        };
        match self {
            AuthRule::SpfFail => auth(|t| t.spf = vec![AuthResult::Fail]),
            AuthRule::SpfSoftfail => auth(|t| t.spf = vec![AuthResult::SoftFail]),
            // Signed, some signature broken, none verifies.
            AuthRule::DkimInvalid => Condition::All(vec![
                auth(|t| t.dkim = vec![AuthResult::Fail, AuthResult::PermError]),
                Condition::Not(Box::new(auth(|t| t.dkim = vec![AuthResult::Pass]))),
            ]),
            AuthRule::DmarcFailReject => auth(|t| {
                t.dmarc = vec![AuthResult::Fail];
                t.dmarc_policy = vec![DmarcPolicy::Reject];
            }),
            AuthRule::DmarcFailQuarantine => auth(|t| {
                t.dmarc = vec![AuthResult::Fail];
                t.dmarc_policy = vec![DmarcPolicy::Quarantine];
            }),
            AuthRule::DmarcPass => auth(|t| t.dmarc = vec![AuthResult::Pass]),
            AuthRule::ArcPass => auth(|t| t.arc = vec![AuthResult::Pass]),
            AuthRule::Dnsbl => test(Test::Listed(ListKind::Dnsbl, vec!["*".into()])),
            AuthRule::Uribl => test(Test::Listed(ListKind::Uribl, vec!["*".into()])),
        }
    }
}

/// Whether `name` can be a listing rule (`RCVD_IN_ZEN`, `URIBL_DBL`):
/// those names come from the auth config, so the policy only checks
/// their shape.
pub fn is_listing_rule_name(name: &str) -> bool {
    (name.starts_with("RCVD_IN_") || name.starts_with("URIBL_"))
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `[auth]`: the built-in authentication and reputation rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// Add the built-in rules (default true).
    pub builtin_rules: bool,
    /// Points by rule name: built-in rules, and listing rules by their
    /// names (`RCVD_IN_ZEN`) or all of a kind (`RCVD_IN_DNSBL`,
    /// `URIBL_LISTED`), overriding the auth config's zone points.
    pub scores: Vec<(String, f64)>,
    /// Rules left out, by the same names.
    pub disable: Vec<String>,
    /// The action of `DMARC_FAIL_REJECT` (default quarantine; `"none"`:
    /// points only).
    pub dmarc_reject_action: Option<ActionSpec>,
    /// The action of `DMARC_FAIL_QUARANTINE` (default none: points only).
    pub dmarc_quarantine_action: Option<ActionSpec>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            builtin_rules: true,
            scores: Vec::new(),
            disable: Vec::new(),
            dmarc_reject_action: Some(ActionSpec::new(ActionKind::Quarantine)),
            dmarc_quarantine_action: None,
        }
    }
}

impl AuthSettings {
    /// The configured points of `name`, if any (last one wins).
    pub fn score_of(&self, name: &str) -> Option<f64> {
        self.scores
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }

    pub fn disabled(&self, name: &str) -> bool {
        self.disable.iter().any(|d| d == name)
    }
}

/// A text field a test reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextField {
    /// Subject, RFC 2047 decoded.
    Subject,
    /// The From address (lowercase).
    From,
    /// The From display name, decoded.
    FromName,
    /// To and Cc addresses, one per line.
    To,
    /// Any header by name (lowercase here), decoded, one value per line.
    Header(String),
    /// All text parts, decoded, HTML stripped.
    Body,
    /// The client's HELO/EHLO name.
    Helo,
    /// The envelope sender (MAIL FROM), lowercase.
    Sender,
    /// Each envelope recipient of the policy's share (tested one by one).
    Recipient,
}

impl TextField {
    pub(crate) fn is_address(&self) -> bool {
        matches!(
            self,
            TextField::From | TextField::To | TextField::Sender | TextField::Recipient
        )
    }
}

/// Operators on a text field; all given must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextTest {
    /// The value (one line of it) equals one of these, case-insensitively.
    pub equals: Vec<String>,
    /// Keywords and phrases, folded (see [`super::fold`]), synonyms expanded.
    pub keywords: Vec<String>,
    /// Distinct keywords that must be found (default 1).
    pub min: usize,
    /// Keywords match whole words only (default true).
    pub whole_words: bool,
    /// Regular expressions, any of which must match.
    pub regex: Vec<String>,
    /// Regexes run on the folded text instead of the decoded text.
    pub fold: bool,
    /// Regexes are case-sensitive (default false).
    pub case_sensitive: bool,
    /// Address patterns (`user@x.test`, `@x.test` with subdomains,
    /// `*@x.test` globs, `list:name`), address fields only.
    pub addresses: Vec<String>,
    /// Header tests only: the header is present (`true`) or absent.
    pub exists: Option<bool>,
}

/// Numeric bounds; all given must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bounds {
    pub gt: Option<u64>,
    pub ge: Option<u64>,
    pub lt: Option<u64>,
    pub le: Option<u64>,
    pub eq: Option<u64>,
}

impl Bounds {
    pub fn holds(&self, v: u64) -> bool {
        self.gt.is_none_or(|b| v > b)
            && self.ge.is_none_or(|b| v >= b)
            && self.lt.is_none_or(|b| v < b)
            && self.le.is_none_or(|b| v <= b)
            && self.eq.is_none_or(|b| v == b)
    }
}

/// An attachment test: some attachment meets all given conditions (or,
/// with `count`, the number of those that do is within bounds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttachmentTest {
    /// Name globs (`*.exe`, case-insensitive; `list:name`).
    pub name: Vec<String>,
    pub name_regex: Vec<String>,
    /// True types by magic bytes (`pe`, `elf`, `zip`... as FileType names).
    pub true_type: Vec<String>,
    /// Declared MIME type globs (`application/x-*`).
    pub declared_type: Vec<String>,
    pub size: Option<Bounds>,
    /// Also look at archive members (default false: top-level only).
    pub inside_archives: bool,
    pub count: Option<Bounds>,
    /// An HTML attachment with a password form.
    pub login_form: Option<bool>,
}

/// A URL test: some URL meets all given conditions (or, with `count`,
/// the number of those that do is within bounds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UrlTest {
    /// Domains, each with its subdomains (`list:name`).
    pub domain: Vec<String>,
    pub ip_literal: Option<bool>,
    /// A known URL shortener (built-in list plus `[urls] shorteners`).
    pub shortener: Option<bool>,
    pub credentials: Option<bool>,
    /// Regexes over the whole URL.
    pub regex: Vec<String>,
    /// Regexes over path, query and fragment.
    pub path_regex: Vec<String>,
    pub count: Option<Bounds>,
}

/// One test of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Text {
        field: TextField,
        test: TextTest,
    },
    /// The client IP is in one of these networks (CIDR, plain IP, `list:`).
    ClientIp(Vec<String>),
    Direction(Direction),
    Attachment(AttachmentTest),
    Url(UrlTest),
    /// Size of the raw message in bytes.
    Size(Bounds),
    Phishing(PhishCheck),
    /// SPF / DKIM / DMARC / ARC results.
    Auth(AuthTest),
    /// Listed on one of these block lists (zone or listing rule name,
    /// case-insensitive; `*` any).
    Listed(ListKind, Vec<String>),
}

/// A rule's match condition.
// Built once per config and compiled away: the size of a test inline does
// not matter, boxing it would only make the tree harder to build and read.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// A test and its key path (for compile errors).
    Test {
        path: String,
        test: Test,
    },
}

/// A rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub path: String,
    pub name: String,
    pub description: String,
    pub group: String,
    /// Points toward the spam score.
    pub score: Option<f64>,
    pub action: Option<ActionSpec>,
    pub condition: Condition,
    /// A built-in list rule: fires as one hit per listing rule (its name
    /// and points) instead of one hit of its own.
    pub per_listing: Option<ListKind>,
}

/// A named list.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedList {
    pub path: String,
    pub name: String,
    pub values: Vec<String>,
}

/// A word and its variants.
#[derive(Debug, Clone, PartialEq)]
pub struct Synonym {
    pub path: String,
    pub word: String,
    pub variants: Vec<String>,
}

/// A policy: who it covers and what it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub path: String,
    pub name: String,
    pub direction: DirectionFilter,
    /// Recipient patterns (as [`TextTest::addresses`]); empty = everyone.
    pub recipients: Vec<String>,
    /// Rules by name; with `groups`, the union; neither = every rule.
    pub rules: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub exclude_rules: Vec<String>,
    /// Sender patterns (envelope sender or From address).
    pub allow_senders: Vec<String>,
    pub deny_senders: Vec<String>,
    pub deny_action: ActionSpec,
    /// Default: the classifier's required score, else 5.0.
    pub required_score: Option<f64>,
    pub spam_action: ActionSpec,
    pub high_score: Option<f64>,
    pub high_action: Option<ActionSpec>,
}

impl Policy {
    /// The implicit policy when none matches: every rule, default scores.
    pub fn default_policy() -> Policy {
        Policy {
            path: String::new(),
            name: "default".into(),
            direction: DirectionFilter::Any,
            recipients: Vec::new(),
            rules: None,
            groups: None,
            exclude_rules: Vec::new(),
            allow_senders: Vec::new(),
            deny_senders: Vec::new(),
            deny_action: default_deny_action(),
            required_score: None,
            spam_action: default_spam_action(),
            high_score: None,
            high_action: None,
        }
    }
}

fn default_deny_action() -> ActionSpec {
    ActionSpec {
        text: Some("Sender blocked by policy".into()),
        ..ActionSpec::new(ActionKind::Reject)
    }
}

fn default_spam_action() -> ActionSpec {
    ActionSpec {
        subject_tag: Some("[SPAM]".into()),
        ..ActionSpec::new(ActionKind::Tag)
    }
}

/// `[phishing]`: the built-in checks as rules.
#[derive(Debug, Clone, PartialEq)]
pub struct PhishingSettings {
    /// Add the built-in `PHISH_*` rules (default true).
    pub builtin_rules: bool,
    /// Brand domains for the look-alike checks.
    pub brands: Vec<String>,
    /// Points of the built-in rules, overriding the defaults.
    pub scores: Vec<(PhishCheck, f64)>,
    pub disable: Vec<PhishCheck>,
}

impl Default for PhishingSettings {
    fn default() -> Self {
        PhishingSettings {
            builtin_rules: true,
            brands: BRANDS.iter().map(|s| s.to_string()).collect(),
            scores: Vec::new(),
            disable: Vec::new(),
        }
    }
}

/// A whole policy config.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Key path prefix of this config in its file (`policy.` or empty).
    pub prefix: String,
    pub lists: Vec<NamedList>,
    pub synonyms: Vec<Synonym>,
    /// The configured rules, then the built-in phishing rules.
    pub rules: Vec<Rule>,
    pub policies: Vec<Policy>,
    pub phishing: PhishingSettings,
    /// URL shorteners: the built-in list plus `[urls] shorteners`.
    pub shorteners: Vec<String>,
    pub auth: AuthSettings,
    /// Local domains known to the config (`[policy] local_domains`); the
    /// envelope's own list is added at evaluation.
    pub local_domains: Vec<String>,
    /// Names of rules left out for errors (so policies naming them are
    /// not reported a second time).
    pub(crate) broken_rules: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let mut c = PolicyConfig {
            prefix: String::new(),
            lists: Vec::new(),
            synonyms: Vec::new(),
            rules: Vec::new(),
            policies: Vec::new(),
            phishing: PhishingSettings::default(),
            shorteners: SHORTENERS.iter().map(|s| s.to_string()).collect(),
            auth: AuthSettings::default(),
            local_domains: Vec::new(),
            broken_rules: Vec::new(),
        };
        c.rules.extend(builtin_rules(&c.phishing, ""));
        c.rules.extend(builtin_auth_rules(&c.auth, ""));
        c
    }
}

// ---- raw tables: serde checks the keys, values are typed below ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    lists: Option<Value>,
    synonyms: Option<Value>,
    rules: Option<Value>,
    policies: Option<Value>,
    phishing: Option<Value>,
    urls: Option<Value>,
    auth: Option<Value>,
    local_domains: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    name: Option<Value>,
    values: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynonym {
    word: Option<Value>,
    variants: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<Value>,
    description: Option<Value>,
    group: Option<Value>,
    score: Option<Value>,
    #[serde(rename = "match")]
    matcher: Option<Value>,
    action: Option<Value>,
    reject_text: Option<Value>,
    redirect_to: Option<Value>,
    bcc_to: Option<Value>,
    banner: Option<Value>,
    subject_tag: Option<Value>,
    notify: Option<Value>,
    template: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    action: Option<Value>,
    reject_text: Option<Value>,
    redirect_to: Option<Value>,
    bcc_to: Option<Value>,
    banner: Option<Value>,
    subject_tag: Option<Value>,
    notify: Option<Value>,
    template: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    all: Option<Value>,
    any: Option<Value>,
    not: Option<Value>,
    subject: Option<Value>,
    from: Option<Value>,
    from_name: Option<Value>,
    to: Option<Value>,
    header: Option<Value>,
    body: Option<Value>,
    helo: Option<Value>,
    sender: Option<Value>,
    recipient: Option<Value>,
    client_ip: Option<Value>,
    direction: Option<Value>,
    attachment: Option<Value>,
    url: Option<Value>,
    size: Option<Value>,
    phishing: Option<Value>,
    auth: Option<Value>,
    dnsbl: Option<Value>,
    uribl: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthTest {
    spf: Option<Value>,
    dkim: Option<Value>,
    dmarc: Option<Value>,
    dmarc_policy: Option<Value>,
    arc: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthSettings {
    builtin_rules: Option<Value>,
    scores: Option<Value>,
    disable: Option<Value>,
    dmarc_reject_action: Option<Value>,
    dmarc_quarantine_action: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    name: Option<Value>,
    exists: Option<Value>,
    equals: Option<Value>,
    keywords: Option<Value>,
    min: Option<Value>,
    whole_words: Option<Value>,
    regex: Option<Value>,
    fold: Option<Value>,
    case_sensitive: Option<Value>,
    addresses: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIp {
    cidr: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttachment {
    name: Option<Value>,
    name_regex: Option<Value>,
    true_type: Option<Value>,
    declared_type: Option<Value>,
    size: Option<Value>,
    inside_archives: Option<Value>,
    count: Option<Value>,
    login_form: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    domain: Option<Value>,
    ip_literal: Option<Value>,
    shortener: Option<Value>,
    credentials: Option<Value>,
    regex: Option<Value>,
    path_regex: Option<Value>,
    count: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBounds {
    gt: Option<Value>,
    ge: Option<Value>,
    lt: Option<Value>,
    le: Option<Value>,
    eq: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Option<Value>,
    direction: Option<Value>,
    recipients: Option<Value>,
    rules: Option<Value>,
    groups: Option<Value>,
    exclude_rules: Option<Value>,
    allow_senders: Option<Value>,
    deny_senders: Option<Value>,
    deny_action: Option<Value>,
    required_score: Option<Value>,
    spam_action: Option<Value>,
    high_score: Option<Value>,
    high_action: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhishing {
    builtin_rules: Option<Value>,
    brands: Option<Value>,
    extra_brands: Option<Value>,
    scores: Option<Value>,
    disable: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrls {
    shorteners: Option<Value>,
}

/// Collects errors while typing values.
struct Reader {
    errors: Vec<ConfigError>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    v.type_str()
}

impl Reader {
    fn err(&mut self, path: impl Into<String>, kind: ErrorKind) {
        self.errors.push(ConfigError::new(path, kind));
    }

    fn expected(&mut self, path: &str, what: &str, v: &Value) {
        self.err(
            path,
            ErrorKind::Shape(format!("expected {what}, found {}", type_name(v))),
        );
    }

    /// A table through its raw struct; every unknown key is reported
    /// with its own path, not just the first.
    fn table<T: for<'de> Deserialize<'de>>(&mut self, path: &str, v: &Value) -> Option<T> {
        let Some(t) = v.as_table() else {
            self.expected(path, "a table", v);
            return None;
        };
        let mut cleaned = t.clone();
        // Each round removes one unknown key: at most one round per key.
        loop {
            match T::deserialize(Value::Table(cleaned.clone())) {
                // With unknown keys reported, the known ones still count:
                // callers drop what they cannot use by their error count.
                Ok(x) => return Some(x),
                Err(e) => {
                    let msg = e.message().to_string();
                    let Some(rest) = msg.strip_prefix("unknown field `") else {
                        self.err(path, ErrorKind::Shape(msg));
                        return None;
                    };
                    let key = rest.split('`').next().unwrap_or("").to_string();
                    let expected = rest
                        .split_once(", expected ")
                        .map_or(String::new(), |(_, x)| x.to_string());
                    if cleaned.remove(&key).is_none() {
                        self.err(path, ErrorKind::Shape(msg));
                        return None;
                    }
                    self.err(join(path, &key), ErrorKind::UnknownKey { key, expected });
                }
            }
        }
    }

    fn string(&mut self, path: &str, v: &Option<Value>) -> Option<String> {
        match v {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.expected(path, "a string", other);
                None
            }
        }
    }

    fn required_string(
        &mut self,
        parent: &str,
        key: &'static str,
        v: &Option<Value>,
    ) -> Option<String> {
        let path = join(parent, key);
        match v {
            None => {
                self.err(parent, ErrorKind::Missing(key));
                None
            }
            Some(_) => {
                let s = self.string(&path, v)?;
                if s.trim().is_empty() {
                    self.err(path, ErrorKind::Invalid("must not be empty".into()));
                    return None;
                }
                Some(s)
            }
        }
    }

    /// A string or an array of strings.
    fn strings(&mut self, path: &str, v: &Option<Value>) -> Vec<String> {
        match v {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, x) in a.iter().enumerate() {
                    match x {
                        Value::String(s) => out.push(s.clone()),
                        other => self.expected(&format!("{path}[{i}]"), "a string", other),
                    }
                }
                out
            }
            Some(other) => {
                self.expected(path, "a string or an array of strings", other);
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, path: &str, v: &Option<Value>) -> Option<bool> {
        match v {
            None => None,
            Some(Value::Boolean(b)) => Some(*b),
            Some(other) => {
                self.expected(path, "true or false", other);
                None
            }
        }
    }

    fn float(&mut self, path: &str, v: &Option<Value>) -> Option<f64> {
        match v {
            None => None,
            Some(Value::Float(f)) if f.is_finite() => Some(*f),
            Some(Value::Integer(i)) => Some(*i as f64),
            Some(other) => {
                self.expected(path, "a finite number", other);
                None
            }
        }
    }

    fn count(&mut self, path: &str, v: &Option<Value>) -> Option<u64> {
        match v {
            None => None,
            Some(Value::Integer(i)) if *i >= 0 => Some(*i as u64),
            Some(other) => {
                self.expected(path, "a non-negative integer", other);
                None
            }
        }
    }

    /// An integer or a size string (`10M`, `512K`, `1G`, `1.5M`).
    fn size(&mut self, path: &str, v: &Value) -> Option<u64> {
        match v {
            Value::Integer(i) if *i >= 0 => Some(*i as u64),
            Value::String(s) => match parse_size(s) {
                Some(n) => Some(n),
                None => {
                    self.err(
                        path,
                        ErrorKind::Invalid(format!(
                            "`{s}` is not a size (a number with an optional K, M or G suffix)"
                        )),
                    );
                    None
                }
            },
            other => {
                self.expected(path, "a non-negative integer or a size like \"10M\"", other);
                None
            }
        }
    }

    fn bounds(&mut self, path: &str, v: &Value) -> Option<Bounds> {
        let raw: RawBounds = self.table(path, v)?;
        let mut b = Bounds::default();
        let mut any = false;
        for (key, slot, val) in [
            ("gt", &mut b.gt, &raw.gt),
            ("ge", &mut b.ge, &raw.ge),
            ("lt", &mut b.lt, &raw.lt),
            ("le", &mut b.le, &raw.le),
            ("eq", &mut b.eq, &raw.eq),
        ] {
            if let Some(x) = val {
                *slot = self.size(&join(path, key), x);
                any = true;
            }
        }
        if !any {
            self.err(
                path,
                ErrorKind::Invalid("needs at least one of gt, ge, lt, le, eq".into()),
            );
            return None;
        }
        Some(b)
    }

    fn array_of_tables<'v>(
        &mut self,
        path: &str,
        v: &'v Option<Value>,
    ) -> Vec<(String, &'v Value)> {
        match v {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("{path}[{i}]"), x))
                .collect(),
            Some(other) => {
                self.expected(path, "an array of tables", other);
                Vec::new()
            }
        }
    }

    fn action_fields(
        &mut self,
        path: &str,
        action: &Option<Value>,
        f: ActionFields<'_>,
    ) -> Option<ActionSpec> {
        let action_path = join(path, "action");
        let name = self.string(&action_path, action);
        let kind = match &name {
            Some(n) => match ActionKind::from_name(n) {
                Some(k) => Some(k),
                None => {
                    let names: Vec<&str> = ActionKind::ALL.iter().map(|k| k.name()).collect();
                    self.err(
                        &action_path,
                        ErrorKind::Invalid(format!(
                            "unknown action `{n}`, expected one of {}",
                            names.join(", ")
                        )),
                    );
                    None
                }
            },
            None => None,
        };
        let text = self.string(&join(path, "reject_text"), f.reject_text);
        let redirect = self.string(&join(path, "redirect_to"), f.redirect_to);
        let bcc = self.string(&join(path, "bcc_to"), f.bcc_to);
        let banner = self.string(&join(path, "banner"), f.banner);
        let subject_tag = self.string(&join(path, "subject_tag"), f.subject_tag);
        let template = self.string(&join(path, "template"), f.template);
        let mut notify = Vec::new();
        let notify_path = join(path, "notify");
        for (i, n) in self.strings(&notify_path, f.notify).into_iter().enumerate() {
            match n.as_str() {
                "admin" => notify.push(NoticeTarget::Admin),
                "sender" => notify.push(NoticeTarget::Sender),
                "recipient" => notify.push(NoticeTarget::Recipient),
                _ => self.err(
                    format!("{notify_path}[{i}]"),
                    ErrorKind::Invalid(format!(
                        "unknown notice target `{n}`, expected admin, sender or recipient"
                    )),
                ),
            }
        }
        // Parameters must belong to the action.
        let param = |key: &str, given: bool, fits: &[ActionKind]| -> Option<ConfigError> {
            if !given {
                return None;
            }
            match kind {
                Some(k) if fits.contains(&k) => None,
                Some(k) => Some(ConfigError::invalid(
                    join(path, key),
                    format!("does not apply to action `{}`", k.name()),
                )),
                None if name.is_none() => Some(ConfigError::invalid(
                    join(path, key),
                    "given without an `action`",
                )),
                None => None,
            }
        };
        use ActionKind::*;
        let checks = [
            param("reject_text", text.is_some(), &[Reject, Tempfail]),
            param("redirect_to", redirect.is_some(), &[Redirect]),
            param("bcc_to", bcc.is_some(), &[Bcc]),
            param("banner", banner.is_some(), &[Warn]),
            param("subject_tag", subject_tag.is_some(), &[Tag]),
        ];
        self.errors.extend(checks.into_iter().flatten());
        if let Some(t) = &text {
            if t.contains(['\r', '\n']) || t.len() > MAX_REPLY_TEXT {
                self.err(
                    join(path, "reject_text"),
                    ErrorKind::Invalid(format!(
                        "must be one line of at most {MAX_REPLY_TEXT} bytes"
                    )),
                );
            }
        }
        if let Some(t) = &subject_tag {
            if t.contains(['\r', '\n']) {
                self.err(
                    join(path, "subject_tag"),
                    ErrorKind::Invalid("must be one line".into()),
                );
            }
        }
        for (key, addr, k) in [("redirect_to", &redirect, Redirect), ("bcc_to", &bcc, Bcc)] {
            if let Some(a) = addr {
                if !plausible_address(a) {
                    self.err(
                        join(path, key),
                        ErrorKind::Invalid(format!("`{a}` is not an address (local@domain)")),
                    );
                }
            } else if kind == Some(k) {
                self.err(
                    path,
                    ErrorKind::Missing(if k == Redirect {
                        "redirect_to"
                    } else {
                        "bcc_to"
                    }),
                );
            }
        }
        if kind == Some(Warn) && banner.is_none() {
            self.err(path, ErrorKind::Missing("banner"));
        }
        let kind = kind?;
        Some(ActionSpec {
            kind,
            text,
            address: redirect.or(bcc),
            banner,
            subject_tag,
            notify,
            template,
        })
    }

    fn action_table(&mut self, path: &str, v: &Option<Value>) -> Option<ActionSpec> {
        let v = v.as_ref()?;
        // `spam_action = "quarantine"` as a short form.
        if let Value::String(s) = v {
            let mut t = toml::Table::new();
            t.insert("action".into(), Value::String(s.clone()));
            return self.action_table(path, &Some(Value::Table(t)));
        }
        let raw: RawAction = self.table(path, v)?;
        if raw.action.is_none() {
            self.err(path, ErrorKind::Missing("action"));
            return None;
        }
        self.action_fields(
            path,
            &raw.action,
            ActionFields {
                reject_text: &raw.reject_text,
                redirect_to: &raw.redirect_to,
                bcc_to: &raw.bcc_to,
                banner: &raw.banner,
                subject_tag: &raw.subject_tag,
                notify: &raw.notify,
                template: &raw.template,
            },
        )
    }

    fn direction(&mut self, path: &str, v: &Value, allow_any: bool) -> Option<DirectionFilter> {
        let Value::String(s) = v else {
            self.expected(path, "a string", v);
            return None;
        };
        Some(match s.as_str() {
            "inbound" => DirectionFilter::Only(Direction::Inbound),
            "outbound" => DirectionFilter::Only(Direction::Outbound),
            "internal" => DirectionFilter::Only(Direction::Internal),
            "any" if allow_any => DirectionFilter::Any,
            _ => {
                self.err(
                    path,
                    ErrorKind::Invalid(format!(
                        "unknown direction `{s}`, expected inbound, outbound, internal{}",
                        if allow_any { " or any" } else { "" }
                    )),
                );
                return None;
            }
        })
    }

    fn condition(&mut self, path: &str, v: &Value, depth: usize) -> Option<Condition> {
        if depth > MAX_CONDITION_DEPTH {
            self.err(
                path,
                ErrorKind::Limit(format!("conditions nest deeper than {MAX_CONDITION_DEPTH}")),
            );
            return None;
        }
        let at_start = self.errors.len();
        let raw: RawMatch = self.table(path, v)?;
        let mut parts: Vec<Condition> = Vec::new();
        let mut ok = self.errors.len() == at_start;
        for (key, list, is_all) in [("all", &raw.all, true), ("any", &raw.any, false)] {
            let Some(list) = list else { continue };
            let p = join(path, key);
            let Value::Array(items) = list else {
                self.expected(&p, "an array of conditions", list);
                ok = false;
                continue;
            };
            if items.is_empty() {
                self.err(&p, ErrorKind::Invalid("must not be empty".into()));
                ok = false;
                continue;
            }
            let mut subs = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match self.condition(&format!("{p}[{i}]"), item, depth + 1) {
                    Some(c) => subs.push(c),
                    None => ok = false,
                }
            }
            parts.push(if is_all {
                Condition::All(subs)
            } else {
                Condition::Any(subs)
            });
        }
        if let Some(n) = &raw.not {
            match self.condition(&join(path, "not"), n, depth + 1) {
                Some(c) => parts.push(Condition::Not(Box::new(c))),
                None => ok = false,
            }
        }
        let text_fields = [
            ("subject", &raw.subject, TextField::Subject),
            ("from", &raw.from, TextField::From),
            ("from_name", &raw.from_name, TextField::FromName),
            ("to", &raw.to, TextField::To),
            ("header", &raw.header, TextField::Header(String::new())),
            ("body", &raw.body, TextField::Body),
            ("helo", &raw.helo, TextField::Helo),
            ("sender", &raw.sender, TextField::Sender),
            ("recipient", &raw.recipient, TextField::Recipient),
        ];
        for (key, val, field) in text_fields {
            let Some(val) = val else { continue };
            let p = join(path, key);
            match self.text_test(&p, val, field) {
                Some(test) => parts.push(Condition::Test { path: p, test }),
                None => ok = false,
            }
        }
        if let Some(v) = &raw.client_ip {
            let p = join(path, "client_ip");
            match self.table::<RawIp>(&p, v) {
                Some(r) => {
                    let cidrs = self.strings(&join(&p, "cidr"), &r.cidr);
                    if cidrs.is_empty() {
                        self.err(&p, ErrorKind::Missing("cidr"));
                        ok = false;
                    } else {
                        parts.push(Condition::Test {
                            path: p,
                            test: Test::ClientIp(cidrs),
                        });
                    }
                }
                None => ok = false,
            }
        }
        if let Some(v) = &raw.direction {
            let p = join(path, "direction");
            match self.direction(&p, v, false) {
                Some(DirectionFilter::Only(d)) => parts.push(Condition::Test {
                    path: p,
                    test: Test::Direction(d),
                }),
                _ => ok = false,
            }
        }
        if let Some(v) = &raw.attachment {
            let p = join(path, "attachment");
            match self.attachment_test(&p, v) {
                Some(t) => parts.push(Condition::Test {
                    path: p,
                    test: Test::Attachment(t),
                }),
                None => ok = false,
            }
        }
        if let Some(v) = &raw.url {
            let p = join(path, "url");
            match self.url_test(&p, v) {
                Some(t) => parts.push(Condition::Test {
                    path: p,
                    test: Test::Url(t),
                }),
                None => ok = false,
            }
        }
        if let Some(v) = &raw.size {
            let p = join(path, "size");
            match self.bounds(&p, v) {
                Some(b) => parts.push(Condition::Test {
                    path: p,
                    test: Test::Size(b),
                }),
                None => ok = false,
            }
        }
        if let Some(v) = &raw.phishing {
            let p = join(path, "phishing");
            match self.string(&p, &Some(v.clone())) {
                Some(name) => match PhishCheck::from_name(&name) {
                    Some(c) => parts.push(Condition::Test {
                        path: p,
                        test: Test::Phishing(c),
                    }),
                    None => {
                        let names: Vec<&str> = PhishCheck::ALL.iter().map(|c| c.name()).collect();
                        self.err(
                            p,
                            ErrorKind::Invalid(format!(
                                "unknown phishing check `{name}`, expected one of {}",
                                names.join(", ")
                            )),
                        );
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        if let Some(v) = &raw.auth {
            let p = join(path, "auth");
            match self.auth_test(&p, v) {
                Some(t) => parts.push(Condition::Test {
                    path: p,
                    test: Test::Auth(t),
                }),
                None => ok = false,
            }
        }
        for (key, val, kind) in [
            ("dnsbl", &raw.dnsbl, ListKind::Dnsbl),
            ("uribl", &raw.uribl, ListKind::Uribl),
        ] {
            let Some(_) = val else { continue };
            let p = join(path, key);
            let before = self.errors.len();
            let names = self.strings(&p, val);
            if self.errors.len() != before {
                ok = false;
                continue;
            }
            if names.is_empty() {
                self.err(
                    &p,
                    ErrorKind::Invalid(
                        "give at least one zone or listing rule name (or \"*\" for any)".into(),
                    ),
                );
                ok = false;
                continue;
            }
            let mut good = true;
            for (i, n) in names.iter().enumerate() {
                let n = n.trim();
                if n.is_empty() || n.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
                    self.err(
                        format!("{p}[{i}]"),
                        ErrorKind::Invalid(format!(
                            "`{n}` is not a zone (like zen.spamhaus.org) or a rule name"
                        )),
                    );
                    good = false;
                }
            }
            if good {
                parts.push(Condition::Test {
                    path: p,
                    test: Test::Listed(
                        kind,
                        names
                            .iter()
                            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                            .collect(),
                    ),
                });
            } else {
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        match parts.len() {
            0 => {
                self.err(
                    path,
                    ErrorKind::Invalid("empty condition: give at least one test".into()),
                );
                None
            }
            1 => parts.pop(),
            _ => Some(Condition::All(parts)),
        }
    }

    fn text_test(&mut self, path: &str, v: &Value, field: TextField) -> Option<Test> {
        let at_start = self.errors.len();
        let raw: RawText = self.table(path, v)?;
        // With unknown keys (typos), "no operator" would only repeat them.
        let typo = self.errors.len() > at_start;
        let before = self.errors.len();
        let field = match field {
            TextField::Header(_) => match self.required_string(path, "name", &raw.name) {
                Some(n) => {
                    if n.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control()) {
                        self.err(
                            join(path, "name"),
                            ErrorKind::Invalid(format!("`{n}` is not a header name")),
                        );
                    }
                    TextField::Header(n.to_ascii_lowercase())
                }
                None => TextField::Header(String::new()),
            },
            f => {
                for (key, given) in [
                    ("name", raw.name.is_some()),
                    ("exists", raw.exists.is_some()),
                ] {
                    if given {
                        self.err(
                            join(path, key),
                            ErrorKind::Invalid("only header tests take this key".into()),
                        );
                    }
                }
                f
            }
        };
        let test = TextTest {
            equals: self.strings(&join(path, "equals"), &raw.equals),
            keywords: self.strings(&join(path, "keywords"), &raw.keywords),
            min: self.count(&join(path, "min"), &raw.min).unwrap_or(1) as usize,
            whole_words: self
                .boolean(&join(path, "whole_words"), &raw.whole_words)
                .unwrap_or(true),
            regex: self.strings(&join(path, "regex"), &raw.regex),
            fold: self
                .boolean(&join(path, "fold"), &raw.fold)
                .unwrap_or(false),
            case_sensitive: self
                .boolean(&join(path, "case_sensitive"), &raw.case_sensitive)
                .unwrap_or(false),
            addresses: self.strings(&join(path, "addresses"), &raw.addresses),
            exists: self.boolean(&join(path, "exists"), &raw.exists),
        };
        if !test.addresses.is_empty() && !field.is_address() {
            self.err(
                join(path, "addresses"),
                ErrorKind::Invalid(
                    "only address fields (from, to, sender, recipient) take addresses".into(),
                ),
            );
        }
        if raw.min.is_some() && test.keywords.is_empty() {
            self.err(
                join(path, "min"),
                ErrorKind::Invalid("given without keywords".into()),
            );
        } else if test.min == 0 {
            self.err(
                join(path, "min"),
                ErrorKind::Invalid("must be at least 1".into()),
            );
        }
        let has_op = !test.equals.is_empty()
            || !test.keywords.is_empty()
            || !test.regex.is_empty()
            || !test.addresses.is_empty()
            || test.exists.is_some();
        if !has_op && !typo {
            self.err(
                path,
                ErrorKind::Invalid(
                    "no operator: give equals, keywords, regex, addresses or exists".into(),
                ),
            );
        }
        if test.exists == Some(false)
            && has_op
            && (test.equals.len() + test.keywords.len() + test.regex.len()) > 0
        {
            self.err(
                join(path, "exists"),
                ErrorKind::Invalid("`exists = false` cannot be combined with value tests".into()),
            );
        }
        (self.errors.len() == before && !typo).then_some(Test::Text { field, test })
    }

    fn auth_test(&mut self, path: &str, v: &Value) -> Option<AuthTest> {
        let at_start = self.errors.len();
        let raw: RawAuthTest = self.table(path, v)?;
        let typo = self.errors.len() > at_start;
        let before = self.errors.len();
        let results = |me: &mut Reader, key: &str, val: &Option<Value>| -> Vec<AuthResult> {
            let p = join(path, key);
            let mut out = Vec::new();
            let given = val.is_some();
            let before = me.errors.len();
            for (i, n) in me.strings(&p, val).into_iter().enumerate() {
                match AuthResult::from_name(&n.to_ascii_lowercase()) {
                    Some(r) => out.push(r),
                    None => me.err(
                        format!("{p}[{i}]"),
                        ErrorKind::Invalid(format!(
                            "unknown result `{n}`, expected one of {}",
                            AuthResult::ALL.map(|r| r.name()).join(", ")
                        )),
                    ),
                }
            }
            if given && out.is_empty() && me.errors.len() == before {
                me.err(p, ErrorKind::Invalid("must not be empty".into()));
            }
            out
        };
        let spf = results(self, "spf", &raw.spf);
        let dkim = results(self, "dkim", &raw.dkim);
        let dmarc = results(self, "dmarc", &raw.dmarc);
        let arc = results(self, "arc", &raw.arc);
        let pp = join(path, "dmarc_policy");
        let mut dmarc_policy = Vec::new();
        let before_policy = self.errors.len();
        for (i, n) in self.strings(&pp, &raw.dmarc_policy).into_iter().enumerate() {
            match DmarcPolicy::from_name(&n.to_ascii_lowercase()) {
                Some(x) => dmarc_policy.push(x),
                None => self.err(
                    format!("{pp}[{i}]"),
                    ErrorKind::Invalid(format!(
                        "unknown DMARC policy `{n}`, expected none, quarantine or reject"
                    )),
                ),
            }
        }
        if raw.dmarc_policy.is_some()
            && dmarc_policy.is_empty()
            && self.errors.len() == before_policy
        {
            self.err(pp, ErrorKind::Invalid("must not be empty".into()));
        }
        let t = AuthTest {
            spf,
            dkim,
            dmarc,
            dmarc_policy,
            arc,
        };
        let empty = t.spf.is_empty()
            && t.dkim.is_empty()
            && t.dmarc.is_empty()
            && t.dmarc_policy.is_empty()
            && t.arc.is_empty();
        if empty && !typo && self.errors.len() == before {
            self.err(
                path,
                ErrorKind::Invalid("no test: give spf, dkim, dmarc, dmarc_policy or arc".into()),
            );
        }
        (self.errors.len() == before && !typo).then_some(t)
    }

    fn attachment_test(&mut self, path: &str, v: &Value) -> Option<AttachmentTest> {
        let raw: RawAttachment = self.table(path, v)?;
        let before = self.errors.len();
        let t = AttachmentTest {
            name: self.strings(&join(path, "name"), &raw.name),
            name_regex: self.strings(&join(path, "name_regex"), &raw.name_regex),
            true_type: self.strings(&join(path, "true_type"), &raw.true_type),
            declared_type: self.strings(&join(path, "declared_type"), &raw.declared_type),
            size: raw
                .size
                .as_ref()
                .and_then(|s| self.bounds(&join(path, "size"), s)),
            inside_archives: self
                .boolean(&join(path, "inside_archives"), &raw.inside_archives)
                .unwrap_or(false),
            count: raw
                .count
                .as_ref()
                .and_then(|c| self.bounds(&join(path, "count"), c)),
            login_form: self.boolean(&join(path, "login_form"), &raw.login_form),
        };
        (self.errors.len() == before).then_some(t)
    }

    fn url_test(&mut self, path: &str, v: &Value) -> Option<UrlTest> {
        let raw: RawUrl = self.table(path, v)?;
        let before = self.errors.len();
        let t = UrlTest {
            domain: self.strings(&join(path, "domain"), &raw.domain),
            ip_literal: self.boolean(&join(path, "ip_literal"), &raw.ip_literal),
            shortener: self.boolean(&join(path, "shortener"), &raw.shortener),
            credentials: self.boolean(&join(path, "credentials"), &raw.credentials),
            regex: self.strings(&join(path, "regex"), &raw.regex),
            path_regex: self.strings(&join(path, "path_regex"), &raw.path_regex),
            count: raw
                .count
                .as_ref()
                .and_then(|c| self.bounds(&join(path, "count"), c)),
        };
        (self.errors.len() == before).then_some(t)
    }

    fn rule(&mut self, path: &str, v: &Value) -> Option<Rule> {
        let at_start = self.errors.len();
        let raw: RawRule = self.table(path, v)?;
        let typo = self.errors.len() > at_start;
        let before = self.errors.len();
        let name = self.required_string(path, "name", &raw.name);
        if let Some(n) = &name {
            if !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                self.err(
                    join(path, "name"),
                    ErrorKind::Invalid(format!(
                        "`{n}` may hold only letters, digits, `_`, `-` and `.`"
                    )),
                );
            }
        }
        let description = self
            .string(&join(path, "description"), &raw.description)
            .unwrap_or_default();
        let group = self
            .string(&join(path, "group"), &raw.group)
            .unwrap_or_else(|| "content".to_string());
        let score = self.float(&join(path, "score"), &raw.score);
        let action = self.action_fields(
            path,
            &raw.action,
            ActionFields {
                reject_text: &raw.reject_text,
                redirect_to: &raw.redirect_to,
                bcc_to: &raw.bcc_to,
                banner: &raw.banner,
                subject_tag: &raw.subject_tag,
                notify: &raw.notify,
                template: &raw.template,
            },
        );
        let condition = match &raw.matcher {
            Some(m) => self.condition(&join(path, "match"), m, 0),
            None => {
                if !typo {
                    self.err(path, ErrorKind::Missing("match"));
                }
                None
            }
        };
        if raw.score.is_none() && raw.action.is_none() && !typo {
            self.err(
                path,
                ErrorKind::Invalid("a rule needs a `score`, an `action` or both".into()),
            );
        }
        if self.errors.len() != before || typo {
            return None;
        }
        Some(Rule {
            path: path.to_string(),
            name: name?,
            description,
            group,
            score,
            action,
            condition: condition?,
            per_listing: None,
        })
    }

    fn policy(&mut self, path: &str, v: &Value) -> Option<Policy> {
        let raw: RawPolicy = self.table(path, v)?;
        let name = self.required_string(path, "name", &raw.name);
        let direction = match &raw.direction {
            Some(d) => self.direction(&join(path, "direction"), d, true),
            None => Some(DirectionFilter::Any),
        };
        let opt_strings = |me: &mut Reader, key: &str, v: &Option<Value>| {
            v.as_ref().map(|_| me.strings(&join(path, key), v))
        };
        let rules = opt_strings(self, "rules", &raw.rules);
        let groups = opt_strings(self, "groups", &raw.groups);
        let p = Policy {
            path: path.to_string(),
            name: name.unwrap_or_default(),
            direction: direction.unwrap_or_default(),
            recipients: self.strings(&join(path, "recipients"), &raw.recipients),
            rules,
            groups,
            exclude_rules: self.strings(&join(path, "exclude_rules"), &raw.exclude_rules),
            allow_senders: self.strings(&join(path, "allow_senders"), &raw.allow_senders),
            deny_senders: self.strings(&join(path, "deny_senders"), &raw.deny_senders),
            deny_action: self
                .action_table(&join(path, "deny_action"), &raw.deny_action)
                .unwrap_or_else(default_deny_action),
            required_score: self.float(&join(path, "required_score"), &raw.required_score),
            spam_action: self
                .action_table(&join(path, "spam_action"), &raw.spam_action)
                .unwrap_or_else(default_spam_action),
            high_score: self.float(&join(path, "high_score"), &raw.high_score),
            high_action: self.action_table(&join(path, "high_action"), &raw.high_action),
        };
        if p.high_score.is_some() != p.high_action.is_some() && raw.high_action.is_none() {
            self.err(
                path,
                ErrorKind::Invalid("`high_score` and `high_action` go together".into()),
            );
        }
        // Kept even with errors, so that its references (rules, groups,
        // lists) are checked too; the config is refused anyway.
        Some(p)
    }

    fn phishing(&mut self, path: &str, v: &Option<Value>) -> PhishingSettings {
        let mut s = PhishingSettings::default();
        let Some(v) = v else { return s };
        let Some(raw) = self.table::<RawPhishing>(path, v) else {
            return s;
        };
        if let Some(b) = self.boolean(&join(path, "builtin_rules"), &raw.builtin_rules) {
            s.builtin_rules = b;
        }
        if raw.brands.is_some() {
            s.brands = self.strings(&join(path, "brands"), &raw.brands);
        }
        s.brands
            .extend(self.strings(&join(path, "extra_brands"), &raw.extra_brands));
        for b in s.brands.iter_mut() {
            *b = b.trim().trim_end_matches('.').to_lowercase();
        }
        let check_of = |me: &mut Reader, p: &str, name: &str| -> Option<PhishCheck> {
            let found = PhishCheck::ALL
                .into_iter()
                .find(|c| c.rule_name() == name || c.name() == name);
            if found.is_none() {
                me.err(
                    p,
                    ErrorKind::Unknown {
                        what: "phishing check",
                        name: name.to_string(),
                    },
                );
            }
            found
        };
        let dpath = join(path, "disable");
        for (i, d) in self.strings(&dpath, &raw.disable).into_iter().enumerate() {
            if let Some(c) = check_of(self, &format!("{dpath}[{i}]"), &d) {
                s.disable.push(c);
            }
        }
        if let Some(sc) = &raw.scores {
            let spath = join(path, "scores");
            match sc.as_table() {
                Some(t) => {
                    for (k, val) in t {
                        let kp = join(&spath, k);
                        if let Some(c) = check_of(self, &kp, k) {
                            if let Some(f) = self.float(&kp, &Some(val.clone())) {
                                s.scores.push((c, f));
                            }
                        }
                    }
                }
                None => self.expected(&spath, "a table of rule names and points", sc),
            }
        }
        s
    }
}

impl Reader {
    fn auth_settings(&mut self, path: &str, v: &Option<Value>) -> AuthSettings {
        let mut s = AuthSettings::default();
        let Some(v) = v else { return s };
        let Some(raw) = self.table::<RawAuthSettings>(path, v) else {
            return s;
        };
        if let Some(b) = self.boolean(&join(path, "builtin_rules"), &raw.builtin_rules) {
            s.builtin_rules = b;
        }
        let known = |me: &mut Reader, p: &str, name: &str| -> bool {
            if AuthRule::from_name(name).is_some() || is_listing_rule_name(name) {
                return true;
            }
            me.err(
                p,
                ErrorKind::Invalid(format!(
                    "unknown auth rule `{name}`, expected one of {} or a listing rule (RCVD_IN_*, URIBL_*)",
                    AuthRule::ALL.map(|r| r.rule_name()).join(", ")
                )),
            );
            false
        };
        let dpath = join(path, "disable");
        for (i, d) in self.strings(&dpath, &raw.disable).into_iter().enumerate() {
            if known(self, &format!("{dpath}[{i}]"), &d) {
                s.disable.push(d);
            }
        }
        if let Some(sc) = &raw.scores {
            let spath = join(path, "scores");
            match sc.as_table() {
                Some(t) => {
                    for (k, val) in t {
                        let kp = join(&spath, k);
                        if known(self, &kp, k) {
                            if let Some(f) = self.float(&kp, &Some(val.clone())) {
                                s.scores.push((k.clone(), f));
                            }
                        }
                    }
                }
                None => self.expected(&spath, "a table of rule names and points", sc),
            }
        }
        for (key, val, slot) in [
            (
                "dmarc_reject_action",
                &raw.dmarc_reject_action,
                &mut s.dmarc_reject_action,
            ),
            (
                "dmarc_quarantine_action",
                &raw.dmarc_quarantine_action,
                &mut s.dmarc_quarantine_action,
            ),
        ] {
            match val {
                None => {}
                Some(Value::String(n)) if n == "none" => *slot = None,
                Some(_) => {
                    if let Some(a) = self.action_table(&join(path, key), val) {
                        *slot = Some(a);
                    }
                }
            }
        }
        s
    }
}

/// The built-in auth and list rules of `settings`.
fn builtin_auth_rules(settings: &AuthSettings, prefix: &str) -> Vec<Rule> {
    if !settings.builtin_rules {
        return Vec::new();
    }
    let path = join(prefix.trim_end_matches('.'), "auth");
    AuthRule::ALL
        .into_iter()
        .filter(|r| !settings.disabled(r.rule_name()))
        .map(|r| {
            let name = r.rule_name();
            let condition = r.condition(&path);
            let action = match r {
                AuthRule::DmarcFailReject => settings.dmarc_reject_action.clone(),
                AuthRule::DmarcFailQuarantine => settings.dmarc_quarantine_action.clone(),
                _ => None,
            };
            let per_listing = match r {
                AuthRule::Dnsbl => Some(ListKind::Dnsbl),
                AuthRule::Uribl => Some(ListKind::Uribl),
                _ => None,
            };
            Rule {
                path: path.clone(),
                name: name.to_string(),
                description: r.description().to_string(),
                group: r.group().to_string(),
                score: settings.score_of(name).or(r.default_score()),
                action,
                condition,
                per_listing,
            }
        })
        .collect()
}

/// Most bytes of a reject/tempfail text.
pub const MAX_REPLY_TEXT: usize = 400;

struct ActionFields<'a> {
    reject_text: &'a Option<Value>,
    redirect_to: &'a Option<Value>,
    bcc_to: &'a Option<Value>,
    banner: &'a Option<Value>,
    subject_tag: &'a Option<Value>,
    notify: &'a Option<Value>,
    template: &'a Option<Value>,
}

fn plausible_address(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !a.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == ',')
        }
        None => false,
    }
}

/// Parses `10M`, `512k`, `1G`, `1.5M`, `1000` (binary multiples: K = 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let num = num.trim();
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult);
    }
    let f: f64 = num.parse().ok()?;
    let v = f * mult as f64;
    (f.is_finite() && f >= 0.0 && v < u64::MAX as f64 && !num.starts_with(['+', '-']))
        .then_some(v as u64)
}

/// The built-in phishing rules of `settings`.
fn builtin_rules(settings: &PhishingSettings, prefix: &str) -> Vec<Rule> {
    if !settings.builtin_rules {
        return Vec::new();
    }
    PhishCheck::ALL
        .into_iter()
        .filter(|c| !settings.disable.contains(c))
        .map(|c| {
            let score = settings
                .scores
                .iter()
                .rev()
                .find(|(k, _)| *k == c)
                .map_or(c.default_score(), |(_, s)| *s);
            let path = join(prefix.trim_end_matches('.'), "phishing");
            Rule {
                path: path.clone(),
                name: c.rule_name().to_string(),
                description: format!("built-in phishing check {}", c.name()),
                group: "phishing".into(),
                score: Some(score),
                action: None,
                condition: Condition::Test {
                    path,
                    test: Test::Phishing(c),
                },
                per_listing: None,
            }
        })
        .collect()
}

impl PolicyConfig {
    /// Parses a policy file whose top level is the policy.
    pub fn parse(text: &str) -> Result<PolicyConfig, Vec<ConfigError>> {
        let (cfg, errors) = PolicyConfig::parse_partial(text, "");
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    /// Parses the table at `section` (`"policy"`) of a larger config file;
    /// error paths start with `section.`. A missing section is an empty
    /// policy (built-in phishing rules only).
    pub fn parse_in(text: &str, section: &str) -> Result<PolicyConfig, Vec<ConfigError>> {
        let (cfg, errors) = PolicyConfig::parse_partial(text, section);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    /// Everything that parsed, and every error. Bad rules and lists are
    /// left out of the config (bad policies are kept with defaults for the
    /// bad keys), so the rest can still be compiled and checked.
    pub fn parse_partial(text: &str, section: &str) -> (PolicyConfig, Vec<ConfigError>) {
        let mut cfg = PolicyConfig::default();
        let mut errors = Vec::new();
        let doc: toml::Table = match toml::from_str(text) {
            Ok(d) => d,
            Err(e) => {
                let line = e.span().map(|s| {
                    memchr::memchr_iter(b'\n', &text.as_bytes()[..s.start.min(text.len())]).count()
                        + 1
                });
                errors.push(ConfigError {
                    path: String::new(),
                    line,
                    kind: ErrorKind::Syntax(e.message().to_string()),
                });
                return (cfg, errors);
            }
        };
        let root = if section.is_empty() {
            Value::Table(doc)
        } else {
            let mut cur = Value::Table(doc);
            for key in section.split('.') {
                cur = match cur {
                    Value::Table(mut t) => {
                        t.remove(key).unwrap_or(Value::Table(toml::Table::new()))
                    }
                    other => {
                        errors.push(ConfigError::new(
                            section,
                            ErrorKind::Shape(format!(
                                "expected a table, found {}",
                                other.type_str()
                            )),
                        ));
                        return (cfg, errors);
                    }
                };
            }
            cur
        };
        let (c, mut e) = PolicyConfig::from_value(&root, section);
        cfg = c;
        for err in &mut e {
            err.line = line_of(text, &err.path);
        }
        errors.append(&mut e);
        (cfg, errors)
    }

    /// Types an already parsed TOML value (the policy's table); `prefix`
    /// starts the error paths. Errors carry no line numbers.
    pub fn from_value(root: &Value, prefix: &str) -> (PolicyConfig, Vec<ConfigError>) {
        let mut cfg = PolicyConfig {
            prefix: prefix.to_string(),
            ..PolicyConfig::default()
        };
        cfg.rules.clear();
        let mut r = Reader { errors: Vec::new() };
        let Some(top) = r.table::<RawTop>(prefix, root) else {
            return (cfg, r.errors);
        };
        let p = |k: &str| join(prefix, k);
        for (path, v) in r.array_of_tables(&p("lists"), &top.lists) {
            if let Some(raw) = r.table::<RawList>(&path, v) {
                let name = r.required_string(&path, "name", &raw.name);
                if raw.values.is_none() {
                    r.err(&path, ErrorKind::Missing("values"));
                }
                let values = r.strings(&join(&path, "values"), &raw.values);
                if let Some(name) = name {
                    cfg.lists.push(NamedList { path, name, values });
                }
            }
        }
        for (path, v) in r.array_of_tables(&p("synonyms"), &top.synonyms) {
            if let Some(raw) = r.table::<RawSynonym>(&path, v) {
                let word = r.required_string(&path, "word", &raw.word);
                if raw.variants.is_none() {
                    r.err(&path, ErrorKind::Missing("variants"));
                }
                let variants = r.strings(&join(&path, "variants"), &raw.variants);
                if let Some(word) = word {
                    cfg.synonyms.push(Synonym {
                        path,
                        word,
                        variants,
                    });
                }
            }
        }
        for (path, v) in r.array_of_tables(&p("rules"), &top.rules) {
            match r.rule(&path, v) {
                Some(rule) => cfg.rules.push(rule),
                None => {
                    if let Some(Value::String(n)) = v.get("name") {
                        cfg.broken_rules.push(n.clone());
                    }
                }
            }
        }
        for (path, v) in r.array_of_tables(&p("policies"), &top.policies) {
            if let Some(pol) = r.policy(&path, v) {
                cfg.policies.push(pol);
            }
        }
        cfg.phishing = r.phishing(&p("phishing"), &top.phishing);
        if let Some(u) = &top.urls {
            if let Some(raw) = r.table::<RawUrls>(&p("urls"), u) {
                let extra = r.strings(&join(&p("urls"), "shorteners"), &raw.shorteners);
                cfg.shorteners
                    .extend(extra.into_iter().map(|s| s.to_lowercase()));
            }
        }
        cfg.auth = r.auth_settings(&p("auth"), &top.auth);
        cfg.local_domains = r
            .strings(&p("local_domains"), &top.local_domains)
            .into_iter()
            .map(|d| d.to_lowercase())
            .collect();
        let builtin = builtin_rules(&cfg.phishing, prefix);
        cfg.rules.extend(builtin);
        let builtin = builtin_auth_rules(&cfg.auth, prefix);
        cfg.rules.extend(builtin);
        (cfg, r.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("7"), Some(7));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1M"), None);
        assert_eq!(parse_size("99999999999999G"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn bounds_hold() {
        let b = Bounds {
            gt: Some(1),
            le: Some(3),
            ..Default::default()
        };
        assert!(!b.holds(1));
        assert!(b.holds(2));
        assert!(b.holds(3));
        assert!(!b.holds(4));
    }
}
