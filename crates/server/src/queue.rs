//! `mxguard queue list|show|flush|delete`: the delivery queue in the spool.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;
use mxguard_smtp::spool::{RcptState, Spool};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    /// The configuration file (for `data_dir`); default: the embedded default (./data).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: QueueCommand,
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// One line per queued message: id, age, size, sender, recipients and their state.
    List {
        /// JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Envelope, delivery state and headers of one message (`--full` for the whole message).
    Show {
        id: String,
        #[arg(long)]
        full: bool,
    },
    /// Retry every queued message now (the running server picks this up within a second).
    Flush,
    /// Remove messages from the queue (they are not delivered and not bounced).
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

fn state_word(s: &RcptState) -> String {
    match s {
        RcptState::Pending { last_error: None } => "pending".into(),
        RcptState::Pending {
            last_error: Some(e),
        } => format!("deferred ({e})"),
        RcptState::Delivered { .. } => "delivered".into(),
        RcptState::Failed { reply } => format!("failed ({reply})"),
    }
}

pub fn run(a: QueueArgs) -> Result<ExitCode> {
    let cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let dir = cfg.data_dir.join("spool");
    if !dir.exists() {
        anyhow::bail!(
            "no spool at {} (wrong --config or data_dir?)",
            dir.display()
        );
    }
    let spool = Spool::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let now = mxguard_smtp::spool::now_secs();
    match a.command {
        QueueCommand::List { json } => {
            let ids = spool.list()?;
            if !json {
                println!(
                    "{:<22} {:>7} {:>9}  {:<30} RECIPIENTS",
                    "ID", "AGE", "SIZE", "SENDER"
                );
            }
            for id in &ids {
                let Ok(env) = spool.envelope(id) else {
                    continue;
                };
                let st = spool.state(id);
                let size = std::fs::metadata(spool.dir().join(id))
                    .map(|m| m.len())
                    .unwrap_or(0);
                if json {
                    let rcpts: Vec<serde_json::Value> = env
                        .rcpts
                        .iter()
                        .enumerate()
                        .map(
                            |(i, r)| serde_json::json!({"address": r.address, "state": st.rcpt(i)}),
                        )
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({"id": id, "received": env.received, "size": size, "from": env.mail_from,
                            "rcpts": rcpts, "attempts": st.attempts, "next_attempt": st.next_attempt, "bounce": env.dsn})
                    );
                } else {
                    let age = now.saturating_sub(env.received);
                    let rcpts: Vec<String> = env
                        .rcpts
                        .iter()
                        .enumerate()
                        .map(|(i, r)| format!("{} [{}]", r.address, state_word(&st.rcpt(i))))
                        .collect();
                    let from = if env.mail_from.is_empty() {
                        "<>".to_string()
                    } else {
                        env.mail_from.clone()
                    };
                    println!(
                        "{:<22} {:>6}s {:>9}  {:<30} {}",
                        id,
                        age,
                        size,
                        from,
                        rcpts.join(", ")
                    );
                }
            }
            if !json {
                println!("{} message(s)", ids.len());
            }
        }
        QueueCommand::Show { id, full } => {
            let (env, msg) = spool
                .load(&id)
                .with_context(|| format!("queue entry {id}"))?;
            let st = spool.state(&id);
            println!("{}", serde_json::to_string_pretty(&env)?);
            println!(
                "attempts: {}, next attempt in {} s",
                st.attempts,
                st.next_attempt.saturating_sub(now)
            );
            for (i, r) in env.rcpts.iter().enumerate() {
                println!("  {}: {}", r.address, state_word(&st.rcpt(i)));
            }
            println!();
            let end = if full {
                msg.len()
            } else {
                mxguard_smtp::headers::header_end(&msg)
            };
            use std::io::Write;
            std::io::stdout().write_all(&msg[..end])?;
        }
        QueueCommand::Flush => {
            std::fs::write(spool.dir().join(mxguard_smtp::queue::FLUSH_FILE), b"")?;
            println!("flush requested for {} message(s)", spool.list()?.len());
        }
        QueueCommand::Delete { ids } => {
            let mut missing = 0;
            for id in &ids {
                if spool.envelope(id).is_err() {
                    eprintln!("mxguard: {id}: not in the queue");
                    missing += 1;
                    continue;
                }
                spool.remove(id)?;
                println!("{id}: deleted");
            }
            if missing > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
