//! The web console's view of the running gateway ([`mxguard_web::Gateway`]
//! and [`mxguard_web::PolicyControl`]), the first-start admin password, and
//! `mxguard user add|list|delete|passwd`.

use crate::config::{Config, PolicySource};
use crate::engines::Engines;
use anyhow::{Context, Result};
use mxguard_policy::CompiledPolicy;
use mxguard_smtp::pipeline::GatewayInner;
use mxguard_smtp::queue::Queue;
use mxguard_web::{
    BoxFuture, Counter, DryRunVerdict, Listener, PolicyControl, PolicySummary, Released,
    SignatureInfo,
};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// The console's handle on this process.
pub struct ConsoleGateway {
    pub inner: Arc<GatewayInner>,
    pub queue: Arc<Queue>,
    pub engines: Arc<Engines>,
    pub cfg: Config,
    pub listeners: Vec<Listener>,
    pub policy: Arc<ServerPolicy>,
}

impl ConsoleGateway {
    fn is_local(&self) -> impl Fn(&str) -> bool + Sync {
        let local = self.cfg.smtp.relay_policy().local_domains;
        move |d: &str| {
            let d = d.trim_end_matches('.');
            local.iter().any(|l| l.eq_ignore_ascii_case(d))
        }
    }
}

fn counter(name: &str, label: &str, help: &str, v: &std::sync::atomic::AtomicU64) -> Counter {
    Counter {
        name: name.into(),
        label: label.into(),
        help: help.into(),
        value: v.load(Ordering::Relaxed),
    }
}

impl mxguard_web::Gateway for ConsoleGateway {
    fn queue_size(&self) -> u64 {
        self.queue.spool.list().map(|l| l.len() as u64).unwrap_or(0)
    }

    fn counters(&self) -> Vec<Counter> {
        let s = &self.inner.stats;
        let g = "Messages handled by the gateway since start, by result.";
        let mut v = vec![
            counter("gateway_messages_total", "received", g, &s.messages),
            counter("gateway_messages_total", "accepted", g, &s.accepted),
            counter("gateway_messages_total", "rejected", g, &s.rejected),
            counter("gateway_messages_total", "quarantined", g, &s.quarantined),
            counter("gateway_messages_total", "dropped", g, &s.dropped),
            counter("gateway_messages_total", "cleaned", g, &s.cleaned),
            counter("gateway_messages_total", "tagged", g, &s.tagged),
            counter("gateway_messages_total", "tempfailed", g, &s.tempfailed),
            counter("gateway_messages_total", "released", g, &s.released),
            counter(
                "gateway_messages_total",
                "scan_skipped",
                g,
                &s.scans_skipped,
            ),
        ];
        let q = &self.queue.stats;
        let d = "Delivery attempts since start, by result.";
        v.push(counter("deliveries_total", "delivered", d, &q.delivered));
        v.push(counter("deliveries_total", "deferred", d, &q.deferred));
        v.push(counter("deliveries_total", "failed", d, &q.failed));
        v.push(counter("deliveries_total", "bounces", d, &q.bounces));
        v
    }

    fn listeners(&self) -> Vec<Listener> {
        self.listeners.clone()
    }

    fn facts(&self) -> Vec<(String, String)> {
        let c = &self.cfg;
        vec![
            ("Data directory".into(), c.data_dir.display().to_string()),
            ("Host name".into(), c.smtp.hostname.clone()),
            ("Role".into(), format!("{:?}", c.smtp.role).to_lowercase()),
            ("Next hop".into(), c.smtp.next_hop.clone()),
            ("Local domains".into(), c.smtp.local_domains.join(", ")),
            ("Relay domains".into(), c.smtp.relay_domains.join(", ")),
            (
                "Store".into(),
                mxguard_store::redact(&c.store.url(&c.data_dir)),
            ),
            (
                "Spam filter".into(),
                if self.inner.spam_filter().is_some() {
                    "on".into()
                } else {
                    "off (no trained model)".into()
                },
            ),
            (
                "Config file".into(),
                c.origin
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "embedded default".into()),
            ),
        ]
    }

    fn release<'a>(
        &'a self,
        id: &'a str,
        rcpts: &'a [String],
        by: &'a str,
    ) -> BoxFuture<'a, Result<Released, String>> {
        Box::pin(async move {
            let is_local = self.is_local();
            let r = mxguard_smtp::release::release(
                &self.inner.store,
                &self.inner.spool,
                id,
                rcpts,
                by,
                &is_local,
            )
            .await
            .map_err(|e| e.to_string())?;
            // The running queue takes it at once.
            let _ = self
                .inner
                .queue
                .send(mxguard_smtp::queue::Queued::id(r.queue_id.clone()));
            Ok(Released {
                id: id.to_string(),
                rcpts: r.release.rcpts,
                queue_id: r.queue_id,
            })
        })
    }

    fn signatures(&self) -> SignatureInfo {
        signature_info(&self.engines, &self.cfg)
    }

    fn reload_signatures(&self) -> BoxFuture<'_, Result<SignatureInfo, String>> {
        Box::pin(async move {
            let e = self.engines.clone();
            tokio::task::spawn_blocking(move || e.reload())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{e:#}"))?;
            Ok(signature_info(&self.engines, &self.cfg))
        })
    }

    fn policy(&self) -> Option<Arc<dyn PolicyControl>> {
        Some(self.policy.clone())
    }
}

fn files_of(paths: &[PathBuf]) -> Vec<mxguard_web::DatabaseFile> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                let mut v: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect();
                v.sort();
                files.extend(v);
            }
        } else {
            files.push(p.clone());
        }
    }
    files
        .into_iter()
        .map(|f| {
            let md = std::fs::metadata(&f).ok();
            mxguard_web::DatabaseFile {
                path: f.display().to_string(),
                size: md.as_ref().map(|m| m.len()).unwrap_or(0),
                modified: md
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            }
        })
        .collect()
}

/// What a reload reaches, and when the files are looked at (signatures page).
fn reload_note(cfg: &Config) -> String {
    let watch = match cfg.engine.reload_check_secs {
        0 => "Changed files are not looked for (engine.reload_check_secs = 0): reload here, with SIGUSR2 or clamd RELOAD.".to_string(),
        s => format!("Changed files are reloaded by themselves (checked every {s} s)."),
    };
    format!(
        "A reload applies at once to the SMTP gateway, the milter, the mailbox check and the clamd socket; messages being scanned finish with the signatures they started with, and stamps made with the previous version are no longer trusted. {watch}"
    )
}

fn signature_info(engines: &Engines, cfg: &Config) -> SignatureInfo {
    let l = engines.current();
    let r = &l.report;
    SignatureInfo {
        version: l.sigs_version.clone(),
        db_version: l.db_version,
        signatures: l.count as u64,
        hash_sigs: r.hash_sigs,
        body_sigs: r.body_sigs,
        logical_sigs: r.logical_sigs,
        allow_list: r.allow_list,
        ignored_sigs: r.ignored_sigs,
        flevel_skipped: r.flevel_skipped,
        invalid_lines: r.invalid,
        unsupported_lines: r.unsupported,
        problems: r.problems.clone(),
        containers: r.containers.clone(),
        files: files_of(&cfg.engine.signatures),
        builtin: cfg.engine.builtin,
        loaded_at: l
            .loaded_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        memory_bytes: l.memory,
        note: reload_note(cfg),
    }
}

/// The rules engine's policy for the console: read from the config's
/// source, checked and tried with the rules engine, saved atomically and
/// swapped into the running gateway.
pub struct ServerPolicy {
    pub cfg: Config,
    pub inner: Arc<GatewayInner>,
    /// One save at a time.
    saving: Mutex<()>,
}

impl ServerPolicy {
    pub fn new(cfg: Config, inner: Arc<GatewayInner>) -> ServerPolicy {
        ServerPolicy {
            cfg,
            inner,
            saving: Mutex::new(()),
        }
    }

    fn compile(text: &str) -> Result<CompiledPolicy, String> {
        CompiledPolicy::from_toml(text, "").map_err(|e| mxguard_policy::rules::format_errors(&e))
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same
/// folder, fsynced, renamed over, and the folder fsynced.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy.toml".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl PolicyControl for ServerPolicy {
    fn source(&self) -> mxguard_web::PolicySource {
        match self.cfg.policy_source() {
            PolicySource::Inline => {
                let mut t = toml::map::Map::new();
                if let Some(p) = &self.cfg.policy {
                    t.insert("policy".into(), p.clone());
                }
                mxguard_web::PolicySource {
                    text: toml::to_string_pretty(&toml::Value::Table(t)).unwrap_or_default(),
                    path: self.cfg.origin.as_ref().map(|p| p.display().to_string()),
                    editable: false,
                    note: "Inline [policy] section of the configuration file: read-only here. Edit the file and send SIGHUP, or move the policy to policy_file to edit it in the console.".into(),
                }
            }
            PolicySource::File { path, exists } => mxguard_web::PolicySource {
                text: std::fs::read_to_string(&path).unwrap_or_default(),
                path: Some(path.display().to_string()),
                editable: true,
                note: if exists {
                    "Saving writes this file (atomically) and applies it at once, without a restart.".into()
                } else {
                    "No policy file yet (built-in defaults apply); saving creates it and applies it at once.".into()
                },
            },
        }
    }

    fn check(&self, text: &str) -> Result<PolicySummary, String> {
        let p = Self::compile(text)?;
        Ok(PolicySummary {
            rules: p.rule_names().map(str::to_string).collect(),
            policies: p.policy_names().map(str::to_string).collect(),
        })
    }

    fn dry_run(
        &self,
        text: &str,
        message: &[u8],
        mail_from: &str,
        rcpts: &[String],
    ) -> Result<Vec<DryRunVerdict>, String> {
        let policy = Self::compile(text)?;
        if message.iter().all(u8::is_ascii_whitespace) {
            return Err("paste a sample message (headers, a blank line, the body)".into());
        }
        // The facts the gateway's rules see: the same scan walk.
        let mut facts = mxguard_policy::MessageFacts::headers_of(message);
        let report = self.inner.scan.current().scanner.scan_with(
            message,
            None,
            mxguard_types::ScanOptions::default(),
            &mut mxguard_policy::FactsCollector::new(&mut facts),
        );
        let infected = report
            .findings
            .iter()
            .any(|f| f.severity == mxguard_types::Severity::Infected);
        let spam = match (self.inner.spam_filter(), infected) {
            (Some(sf), false) => Some(sf.check(&facts)),
            _ => None,
        };
        let env = mxguard_policy::Envelope {
            client_ip: None,
            helo: "",
            mail_from,
            rcpts,
            local_domains: &self.inner.local_domains,
        };
        Ok(policy
            .evaluate(&facts, &env, spam.as_ref())
            .into_iter()
            .map(|v| DryRunVerdict {
                policy: v.policy.clone(),
                recipients: v.recipients.clone(),
                score: v.score,
                required: v.required,
                spam: v.spam,
                hits: v.hits.iter().map(|h| (h.name.clone(), h.points)).collect(),
                actions: v
                    .actions
                    .iter()
                    .map(|a| format!("{} ({})", a.action.kind().name(), a.rule))
                    .collect(),
                allowed: v.allowed,
                denied: v.denied,
            })
            .collect())
    }

    fn save(&self, text: &str) -> Result<String, String> {
        let _one = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        let PolicySource::File { path, .. } = self.cfg.policy_source() else {
            return Err(
                "the policy is an inline [policy] section of the configuration file".into(),
            );
        };
        let policy = Self::compile(text)?;
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        write_atomic(&path, text.as_bytes())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        tracing::info!(
            path = %path.display(),
            rules = policy.rule_names().count(),
            policies = policy.policy_names().count(),
            "policy saved from the console and applied"
        );
        self.inner.set_policy(Arc::new(policy));
        Ok(before)
    }
}

/// First start: when the store has no console user, creates `admin` with a
/// generated password and prints it once (stderr and the log).
pub async fn ensure_first_user(store: &mxguard_store::Store) -> Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let password = mxguard_web::auth::generate_password();
    let p = password.clone();
    let hash = tokio::task::spawn_blocking(move || mxguard_web::auth::hash_password(&p)).await?;
    if store.add_first_user("admin", &hash, "admin").await? {
        eprintln!(
            "\nmxguard: web console user \"admin\" created with password: {password}\n\
             mxguard: this is shown once; change it under Account, or set one with `mxguard user passwd admin`.\n"
        );
        tracing::warn!(
            user = "admin",
            "web console: first start, generated the admin password (printed once above; `mxguard user passwd admin` sets another)"
        );
    }
    Ok(())
}

// -------------------------------------------------------------- user CLI

#[derive(clap::Args, Debug)]
pub struct UserArgs {
    #[command(flatten)]
    pub config: crate::store_cli::ConfigArg,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add a console user. The password is read from standard input (one
    /// line) when it is not a terminal, else generated and printed.
    Add {
        name: String,
        #[arg(long, default_value = "auditor", value_parser = ["admin", "auditor"])]
        role: String,
        /// Generate a password (printed once) even when standard input has one.
        #[arg(long)]
        generate: bool,
    },
    /// List console users and their roles.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a console user with its sessions and API tokens.
    Delete { name: String },
    /// Set a user's password (standard input, or generated and printed); ends its sessions.
    Passwd {
        name: String,
        #[arg(long)]
        generate: bool,
    },
}

/// The new password: one line of standard input (not a terminal), else generated.
fn new_password(generate: bool) -> Result<(String, bool)> {
    if !generate && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if !p.is_empty() {
            mxguard_web::auth::check_new_password(&p).map_err(|e| anyhow::anyhow!(e))?;
            return Ok((p, false));
        }
    }
    Ok((mxguard_web::auth::generate_password(), true))
}

pub fn user(a: UserArgs) -> Result<ExitCode> {
    let cfg = match &a.config.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let url = cfg.store.url(&cfg.data_dir);
        let store = mxguard_store::Store::open(&url)
            .await
            .with_context(|| format!("opening the store {}", mxguard_store::redact(&url)))?;
        let code = match a.command {
            UserCommand::Add {
                name,
                role,
                generate,
            } => {
                mxguard_web::auth::check_user_name(&name).map_err(|e| anyhow::anyhow!(e))?;
                let (p, generated) = new_password(generate)?;
                let h = mxguard_web::auth::hash_password(&p);
                store.add_user(&name, &h, &role).await?;
                if generated {
                    println!("added {name} ({role}); password: {p}");
                } else {
                    println!("added {name} ({role})");
                }
                ExitCode::SUCCESS
            }
            UserCommand::List { json } => {
                for u in store.users().await? {
                    if json {
                        println!("{}", serde_json::to_string(&u)?);
                    } else {
                        println!(
                            "{:<24} {:<8} created {}",
                            u.name,
                            u.role,
                            mxguard_store::events::format_utc(u.created_at)
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            UserCommand::Delete { name } => {
                if store.delete_user(&name).await? {
                    println!("deleted {name}");
                    ExitCode::SUCCESS
                } else {
                    eprintln!("mxguard: no user {name}");
                    ExitCode::from(1)
                }
            }
            UserCommand::Passwd { name, generate } => {
                let (p, generated) = new_password(generate)?;
                let h = mxguard_web::auth::hash_password(&p);
                if store.set_password(&name, &h).await? {
                    if generated {
                        println!("password of {name} set: {p}");
                    } else {
                        println!("password of {name} set");
                    }
                    ExitCode::SUCCESS
                } else {
                    eprintln!("mxguard: no user {name}");
                    ExitCode::from(1)
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}
