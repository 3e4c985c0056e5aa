//! `mxguard quarantine|events|report|store`: the store from the command line.
//!
//! Tables for people, `--json` (JSON Lines, one object per line) or CSV for
//! machines. Times are shown in UTC (`2026-11-23T05:00:00Z`); filters accept
//! relative (`30m`, `24h`, `7d`), absolute (`2026-11-23`,
//! `2026-11-23T05:00`, `2026-11-23T05:00:00Z`) or Unix times.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use mxguard_store::events::format_utc;
use mxguard_store::{
    now_secs, EventQuery, Granularity, QuarantineQuery, ReportQuery, Store, StoredEvent,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The configuration file option shared by the store commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// The configuration file (for `[store]` and `data_dir`); default: the embedded default (./data).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    fn load(&self) -> Result<Config> {
        match &self.config {
            Some(p) => Config::load(p),
            None => Ok(Config::default()),
        }
    }
}

async fn open(cfg: &Config) -> Result<Store> {
    let url = cfg.store.url(&cfg.data_dir);
    if url.starts_with("sqlite:") {
        // Never create an empty database by looking at the wrong place.
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if path != ":memory:" && !std::path::Path::new(path).exists() {
            anyhow::bail!(
                "no store at {path} (has `mxguard serve` run with this configuration? pass it with -c)"
            );
        }
    }
    Store::open(&url)
        .await
        .with_context(|| format!("opening the store {}", mxguard_store::redact(&url)))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

pub use mxguard_store::parse_time;

fn time_arg(s: &Option<String>, now: i64) -> Result<Option<i64>> {
    s.as_deref()
        .map(|v| parse_time(v, now).map_err(|e| anyhow::anyhow!(e)))
        .transpose()
}

/// Shortens `s` to at most `n` characters for a table cell.
fn cell(s: &str, n: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn sender(s: &str) -> &str {
    if s.is_empty() {
        "<>"
    } else {
        s
    }
}

// ---------------------------------------------------------------- quarantine

#[derive(clap::Args, Debug)]
pub struct QuarantineArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(subcommand)]
    pub command: QuarantineCommand,
}

/// Quarantine search filters (case-insensitive substrings unless noted).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct QuarantineFilter {
    #[arg(long)]
    pub sender: Option<String>,
    /// Any of the recipients.
    #[arg(long)]
    pub recipient: Option<String>,
    #[arg(long)]
    pub subject: Option<String>,
    /// Any threat name.
    #[arg(long)]
    pub threat: Option<String>,
    /// Exactly: infected, suspicious, unscannable or backup.
    #[arg(long)]
    pub reason: Option<String>,
    /// Exactly this node id.
    #[arg(long)]
    pub node: Option<String>,
    /// From this time (24h, 7d, 2026-11-23, Unix time...).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Only released items.
    #[arg(long, conflicts_with = "unreleased")]
    pub released: bool,
    /// Only items not released yet.
    #[arg(long)]
    pub unreleased: bool,
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// Quarantined messages, newest first.
    List {
        #[command(flatten)]
        filter: QuarantineFilter,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one item: envelope, findings, recipients, releases.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Deliver a quarantined message after all: to every recipient, or to those given with --to.
    Release {
        id: String,
        /// A recipient to release to (repeatable); default: all of them.
        #[arg(long = "to", value_name = "ADDRESS")]
        to: Vec<String>,
        /// Who releases it (recorded in the history).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Remove items for good.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Write the original message (.eml) to a file or stdout.
    Export {
        id: String,
        /// The file to write; default: stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn quarantine(a: QuarantineArgs) -> Result<ExitCode> {
    let cfg = a.config.load()?;
    runtime()?.block_on(quarantine_async(cfg, a.command))
}

async fn quarantine_async(cfg: Config, cmd: QuarantineCommand) -> Result<ExitCode> {
    let store = open(&cfg).await?;
    let now = now_secs();
    let out = std::io::stdout();
    let mut out = out.lock();
    match cmd {
        QuarantineCommand::List {
            filter,
            limit,
            json,
        } => {
            let q = QuarantineQuery {
                sender: filter.sender,
                recipient: filter.recipient,
                subject: filter.subject,
                threat: filter.threat,
                reason: filter.reason,
                node: filter.node,
                since: time_arg(&filter.since, now)?,
                until: time_arg(&filter.until, now)?,
                released: match (filter.released, filter.unreleased) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                limit: (limit > 0).then_some(limit),
                offset: 0,
            };
            let items = store.search(&q).await?;
            if json {
                for i in &items {
                    writeln!(out, "{}", serde_json::to_string(i)?)?;
                }
            } else {
                let total = store.count(&QuarantineQuery { limit: None, ..q }).await?;
                writeln!(
                    out,
                    "{:<22} {:<20} {:<11} {:<28} {:<28} {:<30} {:<32} {:>8}",
                    "ID", "TIME", "REASON", "FROM", "TO", "SUBJECT", "THREATS", "SIZE"
                )?;
                for i in &items {
                    let to = match i.rcpts.len() {
                        0 => String::new(),
                        1 => i.rcpts[0].clone(),
                        n => format!("{} (+{})", i.rcpts[0], n - 1),
                    };
                    let reason = if i.released_at.is_some() {
                        format!("{}*", i.reason)
                    } else {
                        i.reason.clone()
                    };
                    writeln!(
                        out,
                        "{:<22} {:<20} {:<11} {:<28} {:<28} {:<30} {:<32} {:>8}",
                        i.id,
                        format_utc(i.time),
                        reason,
                        cell(sender(&i.mail_from), 28),
                        cell(&to, 28),
                        cell(&i.subject, 30),
                        cell(&i.threats.join(","), 32),
                        i.size
                    )?;
                }
                writeln!(
                    out,
                    "{} of {} item(s){}",
                    items.len(),
                    total,
                    if items.iter().any(|i| i.released_at.is_some()) {
                        "; * released"
                    } else {
                        ""
                    }
                )?;
            }
        }
        QuarantineCommand::Show { id, json } => {
            let Some(item) = store.get(&id).await? else {
                anyhow::bail!("no quarantine item {id}");
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&item)?)?;
            } else {
                let s = &item.summary;
                writeln!(out, "Id:          {}", s.id)?;
                writeln!(out, "Time:        {}", format_utc(s.time))?;
                writeln!(out, "Node:        {}", s.node)?;
                writeln!(out, "Client:      {}", s.client_ip)?;
                writeln!(out, "From:        {}", sender(&s.mail_from))?;
                writeln!(out, "Subject:     {}", cell(&s.subject, 200))?;
                writeln!(out, "Reason:      {}", s.reason)?;
                writeln!(out, "Action:      {}", s.action)?;
                if let Some(p) = &item.policy {
                    writeln!(out, "Policy:      {p}")?;
                }
                writeln!(
                    out,
                    "Size:        {} bytes ({} stored, {})",
                    s.size, item.stored_size, item.compression
                )?;
                writeln!(out, "SHA-256:     {}", item.sha256)?;
                writeln!(out, "Findings:")?;
                for f in &item.findings {
                    let loc = if f.location.is_empty() {
                        "(message)"
                    } else {
                        &f.location
                    };
                    let detail = if f.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" - {}", f.detail)
                    };
                    writeln!(out, "  {} [{}] in {loc}{detail}", f.name, f.engine.as_str())?;
                }
                writeln!(out, "Recipients:")?;
                for r in &item.recipients {
                    match (r.released_at, &r.released_by) {
                        (Some(t), by) => writeln!(
                            out,
                            "  {}  released {} by {}",
                            r.address,
                            format_utc(t),
                            by.as_deref().unwrap_or("?")
                        )?,
                        _ => writeln!(out, "  {}", r.address)?,
                    }
                }
                for rel in &item.releases {
                    writeln!(
                        out,
                        "Released:    {} by {} to {}",
                        format_utc(rel.time),
                        rel.by,
                        rel.rcpts.join(", ")
                    )?;
                }
            }
        }
        QuarantineCommand::Release { id, to, by } => {
            let spool_dir = cfg.data_dir.join("spool");
            let spool = mxguard_smtp::spool::Spool::open(&spool_dir)
                .with_context(|| format!("opening the spool {}", spool_dir.display()))?;
            let local = cfg.smtp.relay_policy().local_domains;
            let is_local = move |d: &str| {
                let d = d.trim_end_matches('.');
                local.iter().any(|l| l.eq_ignore_ascii_case(d))
            };
            let r =
                mxguard_smtp::release::release(&store, &spool, &id, &to, &by, &is_local).await?;
            // A released spam was a false positive: learn it as ham.
            if let Some(note) = crate::spam::learn_release(&cfg, &store, &id).await {
                writeln!(out, "{note}")?;
            }
            // A running gateway picks the message up at its next flush check (within a second).
            std::fs::write(spool.dir().join(mxguard_smtp::queue::FLUSH_FILE), b"")
                .context("requesting a queue flush")?;
            writeln!(
                out,
                "released {} to {} as queue id {}",
                id,
                r.release.rcpts.join(", "),
                r.queue_id
            )?;
        }
        QuarantineCommand::Delete { ids } => {
            let mut missing = 0;
            for id in &ids {
                if store.delete(id).await? {
                    writeln!(out, "deleted {id}")?;
                } else {
                    eprintln!("mxguard: no quarantine item {id}");
                    missing += 1;
                }
            }
            if missing > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        QuarantineCommand::Export { id, output } => {
            let Some(msg) = store.message(&id).await? else {
                anyhow::bail!("no quarantine item {id}");
            };
            match output {
                Some(p) => {
                    std::fs::write(&p, &msg).with_context(|| format!("writing {}", p.display()))?
                }
                None => out.write_all(&msg)?,
            }
        }
    }
    out.flush()?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- events

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// From this time (24h, 7d, 2026-11-23, Unix time...); default: all.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    /// The gateway's queue id (exact).
    #[arg(long)]
    pub queue_id: Option<String>,
    /// The Message-ID header (exact, with its angle brackets).
    #[arg(long)]
    pub message_id: Option<String>,
    /// The envelope sender, case-insensitive: text with an `@` is the start
    /// of the address (`john@example.com`, `s123@`), `@example.com` its
    /// domain (also from the start); text without `@` is a substring
    /// (slower: reads every event in the period).
    #[arg(long)]
    pub sender: Option<String>,
    /// Any recipient, as for --sender.
    #[arg(long)]
    pub recipient: Option<String>,
    /// The client IP (exact).
    #[arg(long)]
    pub client: Option<String>,
    /// clean, suspicious, infected, error.
    #[arg(long)]
    pub verdict: Option<String>,
    /// deliver, reject, quarantine, drop, clean, tag, pass, tempfail.
    #[arg(long)]
    pub action: Option<String>,
    /// Substring of the findings.
    #[arg(long)]
    pub threat: Option<String>,
    #[arg(long)]
    pub node: Option<String>,
    /// At most this many, newest first (0: all). CSV exports every match, oldest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// table, json (JSON Lines) or csv.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Same as --format json.
    #[arg(long)]
    pub json: bool,
}

pub fn events(a: EventsArgs) -> Result<ExitCode> {
    let cfg = a.config.load()?;
    runtime()?.block_on(events_async(cfg, a))
}

async fn events_async(cfg: Config, a: EventsArgs) -> Result<ExitCode> {
    let store = open(&cfg).await?;
    let now = now_secs();
    let q = EventQuery {
        since: time_arg(&a.since, now)?,
        until: time_arg(&a.until, now)?,
        node: a.node,
        queue_id: a.queue_id,
        message_id: a.message_id,
        sender: a.sender,
        recipient: a.recipient,
        client_ip: a.client,
        verdict: a.verdict,
        action: a.action,
        threat: a.threat,
        limit: (a.limit > 0).then_some(a.limit),
        before: None,
    };
    let format = if a.json { Format::Json } else { a.format };
    let out = std::io::stdout();
    let mut out = out.lock();
    match format {
        Format::Csv => {
            store.export_events_csv(&q, &mut out).await?;
        }
        Format::Json => {
            for e in store.events(&q).await? {
                writeln!(out, "{}", serde_json::to_string(&e)?)?;
            }
        }
        Format::Table => {
            let evs = store.events(&q).await?;
            print_events(&mut out, &evs)?;
        }
    }
    out.flush()?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_events(out: &mut impl Write, evs: &[StoredEvent]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<20} {:<22} {:<15} {:<26} {:<26} {:<10} {:<10} {:<28} {:>9}",
        "TIME", "QUEUE ID", "CLIENT", "FROM", "TO", "VERDICT", "ACTION", "FINDINGS", "LATENCY"
    )?;
    for s in evs {
        let e = &s.event;
        let to = match e.rcpts.len() {
            0 => String::new(),
            1 => e.rcpts[0].clone(),
            n => format!("{} (+{})", e.rcpts[0], n - 1),
        };
        let mut names: Vec<&str> = e.findings.iter().map(|f| f.name.as_str()).collect();
        names.dedup();
        writeln!(
            out,
            "{:<20} {:<22} {:<15} {:<26} {:<26} {:<10} {:<10} {:<28} {:>7.1}ms",
            format_utc(e.time),
            e.queue_id,
            cell(&e.client_ip, 15),
            cell(sender(&e.mail_from), 26),
            cell(&to, 26),
            e.verdict,
            e.action,
            cell(&names.join(","), 28),
            e.latency_us as f64 / 1000.0
        )?;
    }
    writeln!(out, "{} event(s)", evs.len())
}

// ---------------------------------------------------------------- report

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    Volume,
    Threats,
    Engines,
    Senders,
    Recipients,
    SenderDomains,
    RecipientDomains,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Start of the period (24h, 7d, 2026-11-01, Unix time...).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// End of the period.
    #[arg(long, default_value = "now")]
    pub until: String,
    /// Only this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Length of the rankings.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Volume per day instead of per hour.
    #[arg(long)]
    pub daily: bool,
    /// table, json, or csv (one section, see --section).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Same as --format json.
    #[arg(long)]
    pub json: bool,
    /// The section written by --format csv.
    #[arg(long, value_enum, default_value_t = Section::Volume)]
    pub section: Section,
}

pub fn report(a: ReportArgs) -> Result<ExitCode> {
    let cfg = a.config.load()?;
    runtime()?.block_on(report_async(cfg, a))
}

fn csv_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    mxguard_store::events::csv_text(&mut out, s);
    out
}

async fn report_async(cfg: Config, a: ReportArgs) -> Result<ExitCode> {
    let store = open(&cfg).await?;
    let now = now_secs();
    let since = parse_time(&a.since, now).map_err(|e| anyhow::anyhow!("--since {e}"))?;
    let until = parse_time(&a.until, now).map_err(|e| anyhow::anyhow!("--until {e}"))?;
    if until <= since {
        anyhow::bail!("--until must be after --since");
    }
    let q = ReportQuery {
        since,
        // Inclusive of the current second.
        until: if a.until == "now" { until + 1 } else { until },
        node: a.node,
        top: a.top.max(1),
        granularity: if a.daily {
            Granularity::Day
        } else {
            Granularity::Hour
        },
    };
    let r = store.report(&q).await?;
    let format = if a.json { Format::Json } else { a.format };
    let out = std::io::stdout();
    let mut out = out.lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?,
        Format::Csv => {
            let addresses = |v: &[mxguard_store::AddressCount], out: &mut dyn Write| {
                writeln!(out, "value,messages,flagged")?;
                for x in v {
                    writeln!(out, "{},{},{}", csv_field(&x.value), x.messages, x.flagged)?;
                }
                std::io::Result::Ok(())
            };
            match a.section {
                Section::Volume => {
                    writeln!(out, "start,verdict,action,messages,bytes")?;
                    for v in &r.volume {
                        writeln!(
                            out,
                            "{},{},{},{},{}",
                            format_utc(v.start),
                            csv_field(&v.verdict),
                            csv_field(&v.action),
                            v.messages,
                            v.bytes
                        )?;
                    }
                }
                Section::Threats => {
                    writeln!(out, "threat,engine,messages")?;
                    for t in &r.top_threats {
                        writeln!(
                            out,
                            "{},{},{}",
                            csv_field(&t.threat),
                            csv_field(&t.engine),
                            t.messages
                        )?;
                    }
                }
                Section::Engines => {
                    writeln!(out, "engine,messages")?;
                    for e in &r.engines {
                        writeln!(out, "{},{}", csv_field(&e.engine), e.messages)?;
                    }
                }
                Section::Senders => addresses(&r.top_senders, &mut out)?,
                Section::Recipients => addresses(&r.top_recipients, &mut out)?,
                Section::SenderDomains => addresses(&r.top_sender_domains, &mut out)?,
                Section::RecipientDomains => addresses(&r.top_recipient_domains, &mut out)?,
            }
        }
        Format::Table => print_report(&mut out, &r)?,
    }
    out.flush()?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_report(out: &mut impl Write, r: &mxguard_store::Report) -> std::io::Result<()> {
    writeln!(
        out,
        "Report {} .. {} (UTC, whole hours)",
        format_utc(r.since),
        format_utc(r.until)
    )?;
    writeln!(out, "Messages: {}   Bytes: {}", r.messages, r.bytes)?;
    let l = &r.latency;
    writeln!(
        out,
        "Scan latency: avg {:.1} ms, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        l.avg_us / 1000.0,
        l.p50_us as f64 / 1000.0,
        l.p95_us as f64 / 1000.0,
        l.p99_us as f64 / 1000.0,
        l.max_us as f64 / 1000.0
    )?;
    let pairs = |title: &str, v: &[(String, u64)], out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "\n{title}")?;
        for (k, n) in v {
            writeln!(out, "  {k:<24} {n:>10}")?;
        }
        Ok(())
    };
    pairs("By verdict", &r.by_verdict, out)?;
    pairs("By action", &r.by_action, out)?;
    writeln!(out, "\nTop threats")?;
    for t in &r.top_threats {
        writeln!(
            out,
            "  {:<48} {:<12} {:>8}",
            cell(&t.threat, 48),
            t.engine,
            t.messages
        )?;
    }
    writeln!(out, "\nDetections by engine")?;
    for e in &r.engines {
        writeln!(out, "  {:<24} {:>10}", e.engine, e.messages)?;
    }
    let ranking = |title: &str, v: &[mxguard_store::AddressCount], out: &mut dyn Write| {
        writeln!(
            out,
            "\n{title} (UTC days {} .. {})",
            &format_utc(r.days_since)[..10],
            &format_utc(r.days_until)[..10]
        )?;
        for a in v {
            writeln!(
                out,
                "  {:<40} {:>8} messages {:>8} flagged",
                cell(a.value.as_str(), 40),
                a.messages,
                a.flagged
            )?;
        }
        std::io::Result::Ok(())
    };
    ranking("Top senders", &r.top_senders, out)?;
    ranking("Top recipients", &r.top_recipients, out)?;
    ranking("Top sender domains", &r.top_sender_domains, out)?;
    ranking("Top recipient domains", &r.top_recipient_domains, out)?;
    writeln!(out, "\nVolume")?;
    for v in &r.volume {
        writeln!(
            out,
            "  {}  {:<11} {:<10} {:>8} messages {:>12} bytes",
            format_utc(v.start),
            v.verdict,
            v.action,
            v.messages,
            v.bytes
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- store

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Backend, schema version, and how much is stored.
    Info {
        #[arg(long)]
        json: bool,
    },
}

pub fn store(a: StoreArgs) -> Result<ExitCode> {
    let cfg = a.config.load()?;
    runtime()?.block_on(async move {
        let store = open(&cfg).await?;
        let StoreCommand::Info { json } = a.command;
        let schema = store.schema_version().await?;
        let latest = Store::latest_schema_version();
        let items = store.count(&QuarantineQuery::default()).await?;
        let events = store.count_events().await?;
        let url = mxguard_store::redact(&cfg.store.url(&cfg.data_dir));
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "backend": store.backend().as_str(),
                    "url": url,
                    "schema_version": schema,
                    "latest_schema_version": latest,
                    "quarantine_items": items,
                    "events": events,
                })
            );
        } else {
            println!("Backend:          {}", store.backend().as_str());
            println!("URL:              {url}");
            println!("Schema version:   {schema} (this build: {latest})");
            println!("Quarantine items: {items}");
            println!("Events:           {events}");
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_800_000_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_time("30m", now), Ok(now - 1800));
        assert_eq!(parse_time("1970-01-01", now), Ok(0));
        assert_eq!(parse_time("2026-11-23", now), Ok(1_795_392_000));
        assert_eq!(
            parse_time("2026-11-23T05:30", now),
            Ok(1_795_392_000 + 5 * 3600 + 1800)
        );
        assert_eq!(
            parse_time("2026-11-23T05:30:07Z", now),
            Ok(1_795_392_000 + 19_807)
        );
        assert_eq!(parse_time("2000-02-29 00:00", now), Ok(951_782_400));
        assert_eq!(parse_time("1795392000", now), Ok(1_795_392_000));
        for bad in [
            "",
            "x",
            "2026-13-01",
            "2026-11-23T25:00",
            "5y",
            "h",
            "2026-11",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        assert_eq!(
            format_utc(parse_time("2026-11-23T05:30:07Z", now).unwrap()),
            "2026-11-23T05:30:07Z"
        );
    }

    #[test]
    fn cells_are_bounded_and_printable() {
        assert_eq!(cell("abc", 5), "abc");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell("a\r\nb", 10), "a  b");
    }
}
