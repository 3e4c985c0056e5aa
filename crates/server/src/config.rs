//! The configuration file (DESIGN §3): one TOML file, a section per component,
//! unknown keys refused. With no file, the embedded default runs at once.

use anyhow::{Context, Result};
use mxguard_smtp::config::{ActionConfig, QueueConfig, SmtpConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Spool, local Maildir, quarantine, database, generated keys and certificates.
    pub data_dir: PathBuf,
    /// Names this node in stamps, events and the console.
    pub node_id: String,
    /// The rules engine's policy as a file of its own (the format of
    /// `crates/policy/examples/policy.toml`), relative to this config file.
    /// Not set and no `[policy]` section: `data_dir/policy.toml` when it
    /// exists (the console saves there), else the defaults (built-in
    /// phishing rules, the spam threshold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<PathBuf>,
    pub smtp: SmtpConfig,
    pub actions: ActionConfig,
    pub queue: QueueConfig,
    pub engine: EngineConfig,
    pub stamp: StampConfig,
    pub milter: mxguard_milter::MilterConfig,
    pub clamd: mxguard_clamd::ClamdConfig,
    pub web: WebConfig,
    pub store: StoreConfig,
    pub spam: SpamConfig,
    pub notify: mxguard_smtp::notify::NotifyConfig,
    /// SPF, DKIM, DMARC, ARC and DNS block lists for the rules (`[auth]`).
    pub auth: mxguard_auth::AuthConfig,
    /// The policy inline (`[policy]`, `[[policy.rules]]`...), checked by
    /// the rules engine itself (see [`Config::load_policy`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<toml::Value>,
    /// The file's text and path, for the policy's error lines and relative paths.
    #[serde(skip)]
    pub source: String,
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// `[policy]` in the config file (read-only for the console).
    Inline,
    /// A policy file (`policy_file`, or `data_dir/policy.toml`); `exists`
    /// is false when the default file has not been written yet.
    File { path: PathBuf, exists: bool },
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            node_id: "mx1".into(),
            smtp: SmtpConfig::default(),
            actions: ActionConfig::default(),
            queue: QueueConfig::default(),
            engine: EngineConfig::default(),
            stamp: StampConfig::default(),
            milter: mxguard_milter::MilterConfig::default(),
            clamd: mxguard_clamd::ClamdConfig::default(),
            web: WebConfig::default(),
            store: StoreConfig::default(),
            spam: SpamConfig::default(),
            notify: mxguard_smtp::notify::NotifyConfig::default(),
            auth: mxguard_auth::AuthConfig::default(),
            policy_file: None,
            policy: None,
            source: String::new(),
            origin: None,
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Signature files or directories (ClamAV formats and ours).
    pub signatures: Vec<PathBuf>,
    pub builtin: bool,
    /// Decoder limits (clamscan's names and defaults).
    pub max_recursion: Option<u32>,
    pub max_files: Option<usize>,
    pub max_filesize: Option<u64>,
    pub max_scansize: Option<u64>,
    /// Milliseconds per message.
    pub max_scantime: Option<u64>,
    /// Report heuristic findings (double extensions, spoofed links, encrypted content...).
    pub heuristics: bool,
    /// Seconds between checks of the signature files for changes (size or
    /// modification time; an update by freshclam or a copy); a change
    /// reloads them for every front-end. 0 = only on request (SIGUSR2, clamd
    /// `RELOAD`, the console).
    pub reload_check_secs: u64,
    /// Extract text and links during the walk (set when the spam filter
    /// reads the scan's walk; not a config key).
    #[serde(skip)]
    pub text: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            signatures: Vec::new(),
            builtin: true,
            max_recursion: None,
            max_files: None,
            max_filesize: None,
            max_scansize: None,
            max_scantime: None,
            heuristics: true,
            reload_check_secs: 60,
            text: false,
        }
    }
}

/// `[stamp]`: the signed antivirus stamp (DESIGN §3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StampConfig {
    pub enabled: bool,
    /// The shared key (base64 in a file); created on first start when missing.
    /// Copy it to every node of the organisation.
    pub key_file: Option<PathBuf>,
    /// Older keys still accepted (key rotation).
    pub previous_key_files: Vec<PathBuf>,
    /// Nodes whose stamps are honoured; empty = any node holding the key.
    pub trusted_nodes: Vec<String>,
    /// Stamps older than this are not honoured (seconds; 0 = no limit).
    pub max_age_secs: u64,
}

impl Default for StampConfig {
    fn default() -> Self {
        StampConfig {
            enabled: true,
            key_file: None,
            previous_key_files: Vec::new(),
            trusted_nodes: Vec::new(),
            max_age_secs: 7 * 24 * 3600,
        }
    }
}

/// `[web]`: the web console and JSON API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `host:port`; empty: no console.
    pub listen: String,
    /// Serve HTTPS (cookies get `Secure`).
    pub tls: bool,
    /// PEM files; default: `[smtp] tls_cert`/`tls_key`, else the
    /// self-signed certificate in `data_dir/tls/`.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// How long a login lasts.
    pub session_hours: u32,
    /// Failed logins allowed per client address and per user name within
    /// `login_window_secs` before further attempts are refused (429).
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    /// Dashboard and report numbers are reused for this long (0: never).
    pub cache_secs: u64,
    /// The numbers of the dashboard and reports over 24 hours and 7 days are
    /// refreshed in the background this often, so that those pages never
    /// wait for the store (they show the numbers' age); 0 = only on request.
    pub warm_secs: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8080".into(),
            tls: false,
            tls_cert: None,
            tls_key: None,
            session_hours: 12,
            login_max_failures: 5,
            login_window_secs: 900,
            cache_secs: 10,
            warm_secs: 60,
        }
    }
}

impl WebConfig {
    fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if !self.listen.is_empty() && self.listen.parse::<std::net::SocketAddr>().is_err() {
            e.push(format!(
                "web.listen: {:?} is not host:port (an IP address and a port; empty turns the console off)",
                self.listen
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            e.push("web.tls_cert and web.tls_key: give both or neither".into());
        }
        if self.session_hours == 0 {
            e.push("web.session_hours: at least 1".into());
        }
        if self.login_max_failures == 0 || self.login_window_secs == 0 {
            e.push("web.login_max_failures, web.login_window_secs: at least 1".into());
        }
        e
    }
}

/// `[spam]`: the spam filter. Its action is `[actions] spam`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamConfig {
    /// Score messages when a trained model exists.
    pub enabled: bool,
    /// The model (`mxguard spam train`); default `data_dir/spam/bayes.model`.
    pub model: Option<PathBuf>,
    /// Points at or above which a message is spam.
    pub required_score: f64,
    /// Points the classifier adds at certainty: `weight × (2p − 1)`.
    pub bayes_weight: f64,
    /// The classifier is used once it has learned at least this many ham
    /// and this many spam messages.
    pub min_trained: u32,
    /// A quarantined spam released by an administrator (CLI or console) is
    /// learned as ham: the model learns from its false positives.
    pub learn_from_releases: bool,
    /// How often the model file is checked for changes, in seconds (a
    /// changed model is loaded without a restart).
    pub reload_check_secs: u64,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            enabled: true,
            model: None,
            required_score: mxguard_policy::spam::DEFAULT_REQUIRED,
            bayes_weight: mxguard_policy::spam::DEFAULT_BAYES_WEIGHT,
            min_trained: 20,
            learn_from_releases: true,
            reload_check_secs: 15,
        }
    }
}

impl SpamConfig {
    pub fn model_path(&self, data_dir: &Path) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| data_dir.join("spam").join("bayes.model"))
    }
}

/// `[store]`: quarantine, event log and reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`; empty:
    /// SQLite in `data_dir` (`data_dir/mxguard.db`).
    pub url: String,
    /// Quarantined messages older than this are deleted (0: kept forever).
    pub quarantine_retention_days: u32,
    /// Events older than this are deleted (0: kept forever). Reports read
    /// their own hourly counters and outlive the events.
    pub events_retention_days: u32,
    /// Report counters older than this are deleted (0: kept forever).
    pub reports_retention_days: u32,
    /// Events waiting for the database, at most. When the database has been
    /// unreachable long enough to fill this, new messages get 451.
    pub event_buffer: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            quarantine_retention_days: 30,
            events_retention_days: 90,
            reports_retention_days: 400,
            event_buffer: 50_000,
        }
    }
}

impl StoreConfig {
    /// The store's URL, with the default resolved against `data_dir`.
    pub fn url(&self, data_dir: &Path) -> String {
        if self.url.is_empty() {
            format!("sqlite://{}", data_dir.join("mxguard.db").display())
        } else {
            self.url.clone()
        }
    }

    fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if !self.url.is_empty() {
            if let Err(err) = mxguard_store::Backend::of_url(&self.url) {
                e.push(format!("store.url: {err}"));
            }
        }
        if self.event_buffer < 100 {
            e.push("store.event_buffer: at least 100".into());
        }
        e
    }
}

impl Config {
    /// Parses a config file; syntax errors and unknown keys come with line, column and key path.
    pub fn parse(text: &str, origin: &Path) -> Result<Config> {
        let mut cfg: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
        cfg.source = text.to_string();
        cfg.origin = Some(origin.to_path_buf());
        let errors = cfg.validate();
        if !errors.is_empty() {
            anyhow::bail!(
                "{}: invalid configuration:\n  {}",
                origin.display(),
                errors.join("\n  ")
            );
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text, path)
    }

    /// Every semantic problem at once.
    pub fn validate(&self) -> Vec<String> {
        let mut e = self.smtp.validate();
        e.extend(self.queue.validate());
        e.extend(self.actions.validate());
        e.extend(self.store.validate());
        e.extend(self.notify.validate());
        if !(self.spam.required_score.is_finite()
            && self.spam.bayes_weight.is_finite()
            && self.spam.bayes_weight >= 0.0)
        {
            e.push(
                "spam.required_score, spam.bayes_weight: finite numbers, the weight not negative"
                    .into(),
            );
        }
        if self.spam.reload_check_secs == 0 {
            e.push("spam.reload_check_secs: at least 1".into());
        }
        if self.node_id.is_empty()
            || !self
                .node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            e.push("node_id: letters, digits, '-', '_' and '.' only".into());
        }
        for p in &self.engine.signatures {
            if !p.exists() {
                e.push(format!("engine.signatures: {} does not exist", p.display()));
            }
        }
        e.extend(self.milter.validate());
        e.extend(self.clamd.validate());
        e.extend(self.web.validate());
        e.extend(self.auth.validate("auth").iter().map(|x| x.to_string()));
        if let Err(err) = self.load_policy() {
            e.push(format!("{err:#}"));
        }
        e
    }

    /// Where the policy comes from (see `policy_file`).
    pub fn policy_source(&self) -> PolicySource {
        if self.policy.is_some() {
            return PolicySource::Inline;
        }
        let path = match &self.policy_file {
            Some(p) if p.is_relative() => self
                .origin
                .as_ref()
                .and_then(|o| o.parent())
                .map(|d| d.join(p))
                .unwrap_or_else(|| p.clone()),
            Some(p) => p.clone(),
            None => self.data_dir.join("policy.toml"),
        };
        let exists = path.exists();
        PolicySource::File { path, exists }
    }

    /// The policy's text as the rules engine reads it, and the section it
    /// is under (`policy` inline, empty in a file of its own).
    pub fn policy_text(&self) -> Result<(String, &'static str)> {
        if self.policy.is_some() && self.policy_file.is_some() {
            anyhow::bail!("policy_file and [policy]: one or the other");
        }
        match self.policy_source() {
            PolicySource::Inline => Ok((self.source.clone(), "policy")),
            PolicySource::File { path, exists } => {
                if !exists && self.policy_file.is_none() {
                    return Ok((String::new(), ""));
                }
                let t = std::fs::read_to_string(&path)
                    .with_context(|| format!("policy_file: reading {}", path.display()))?;
                Ok((t, ""))
            }
        }
    }

    /// The compiled policy; every error with its key path and line.
    pub fn load_policy(&self) -> Result<mxguard_policy::CompiledPolicy> {
        let (text, section) = self.policy_text()?;
        mxguard_policy::CompiledPolicy::from_toml(&text, section).map_err(|errors| {
            let whence = match self.policy_source() {
                PolicySource::Inline => self
                    .origin
                    .as_ref()
                    .map(|o| o.display().to_string())
                    .unwrap_or_else(|| "[policy]".into()),
                PolicySource::File { path, .. } => path.display().to_string(),
            };
            anyhow::anyhow!(
                "{whence}: invalid policy:\n{}",
                mxguard_policy::rules::format_errors(&errors)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_example_parses() {
        let text = r#"
data_dir = "./data"
node_id = "mx1"

[smtp]
listen = ["127.0.0.1:2525"]
hostname = "mx.example.com"
role = "edge"
local_domains = ["example.com", "localhost"]
relay_domains = []
trusted_networks = []
max_message_size = 52428800
next_hop = "maildir"

[engine]
signatures = []
builtin = true

[milter]
listen = []

[clamd]
listen = []

[web]
listen = "127.0.0.1:8080"

[store]
url = "sqlite://./data/mxguard.db"
"#;
        let c = Config::parse(text, Path::new("t.toml")).unwrap();
        assert_eq!(c.smtp.hostname, "mx.example.com");
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = Config::parse("[smtp]\nlisten = [\"x\"]\nbogus = 1\n", Path::new("t.toml"))
            .unwrap_err();
        let s = format!("{e:#}");
        assert!(s.contains("bogus") && s.contains("line 3"), "{s}");
        let e = Config::parse("[smtp]\nlisten = [\"x\"]\ntrusted_networks = [\"10.0.0.0/33\"]\nnext_hop = \"ftp://x\"\n", Path::new("t.toml")).unwrap_err();
        let s = format!("{e:#}");
        assert!(
            s.contains("smtp.listen")
                && s.contains("smtp.trusted_networks")
                && s.contains("smtp.next_hop"),
            "{s}"
        );
    }
}
