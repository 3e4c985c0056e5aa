//! The `mxguard` binary.

mod clamd;
mod config;
mod engines;
mod milter;
mod queue;
mod scan;
mod serve;
mod sigs;
mod spam;
mod store_cli;
mod web;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mxguard",
    version,
    about = "Open email security gateway: scanner, gateway and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where signatures come from (shared by `scan` and `sigs`).
#[derive(clap::Args, Clone, Debug)]
pub struct DbArgs {
    /// A signature file or a directory of them (ClamAV formats: .hdb .hsb .fp .sfp .ndb .ldb .ign2 .cvd .cld). Repeatable.
    #[arg(long = "db", value_name = "PATH")]
    pub db: Vec<PathBuf>,
    /// Do not load the signatures built into the binary.
    #[arg(long)]
    pub no_builtin: bool,
    /// Where the compiled-database cache lives (default: $XDG_CACHE_HOME/mxguard or ~/.cache/mxguard).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Always parse and compile the databases; neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl DbArgs {
    /// Every `--db` must exist: a mistyped path must not quietly scan with fewer signatures.
    pub fn check(&self) -> anyhow::Result<()> {
        for p in &self.db {
            if let Err(e) = std::fs::metadata(p) {
                anyhow::bail!("signature database {}: {e}", p.display());
            }
        }
        Ok(())
    }

    pub fn config(&self) -> mxguard_engine::SignatureConfig {
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .map(|d| d.join("mxguard"))
            })
        };
        mxguard_engine::SignatureConfig {
            paths: self.db.clone(),
            builtin: !self.no_builtin,
            cache_dir,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (SMTP listeners, delivery queue) until SIGTERM.
    Serve(serve::ServeArgs),
    /// The delivery queue: list, show, flush, delete.
    Queue(queue::QueueArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Scan files, directories (recursively), .eml, mbox and Maildir content.
    Scan(scan::ScanArgs),
    /// Signature database tools.
    Sigs {
        #[command(subcommand)]
        command: sigs::SigsCommand,
    },
    /// The quarantine: list, show, release, delete, export.
    Quarantine(store_cli::QuarantineArgs),
    /// The event log: what happened to which message (filters; table, JSON Lines or CSV).
    Events(store_cli::EventsArgs),
    /// Reports: volume by verdict and action, top threats, senders, recipients, latency.
    Report(store_cli::ReportArgs),
    /// The store itself: backend and schema version.
    Store(store_cli::StoreArgs),
    /// The spam classifier: train it on ham and spam, check messages.
    Spam(spam::SpamArgs),
    /// Web console users: add, list, delete, passwd.
    User(web::UserArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a configuration file; prints every problem with its key (and line, for syntax).
    Check { file: PathBuf },
    /// Print the embedded default configuration.
    Default,
}

fn config_command(c: ConfigCommand) -> anyhow::Result<ExitCode> {
    match c {
        ConfigCommand::Check { file } => {
            config::Config::load(&file)?;
            println!("{}: OK", file.display());
        }
        ConfigCommand::Default => print!("{}", toml::to_string_pretty(&config::Config::default())?),
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Queue(a) => queue::run(a),
        Command::Config { command } => config_command(command),
        Command::Scan(a) => scan::run(a),
        Command::Sigs { command } => sigs::run(command),
        Command::Quarantine(a) => store_cli::quarantine(a),
        Command::Events(a) => store_cli::events(a),
        Command::Report(a) => store_cli::report(a),
        Command::Store(a) => store_cli::store(a),
        Command::Spam(a) => spam::run(a),
        Command::User(a) => web::user(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mxguard: {e:#}");
            ExitCode::from(2)
        }
    }
}
