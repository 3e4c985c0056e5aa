//! The `mxguard` binary.

mod scan;
mod sigs;

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
}

#[derive(Subcommand)]
enum Command {
    /// Scan files, directories (recursively), .eml, mbox and Maildir content.
    Scan(scan::ScanArgs),
    /// Signature database tools.
    Sigs {
        #[command(subcommand)]
        command: sigs::SigsCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Scan(a) => scan::run(a),
        Command::Sigs { command } => sigs::run(command),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mxguard: {e:#}");
            ExitCode::from(2)
        }
    }
}
