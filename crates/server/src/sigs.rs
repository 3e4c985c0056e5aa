//! `mxguard sigs info|verify`.

use crate::DbArgs;
use anyhow::Result;
use mxguard_engine::load_signatures;
use mxguard_sigs::ProblemKind;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum SigsCommand {
    /// Load the databases and print what was loaded, what was skipped and why.
    Info {
        #[command(flatten)]
        db: DbArgs,
        /// Print at most this many problems (0: all).
        #[arg(long, default_value_t = 50)]
        problems: usize,
    },
    /// Check databases: exit 1 if any line is invalid, listing every problem.
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
}

pub fn run(cmd: SigsCommand) -> Result<ExitCode> {
    match cmd {
        SigsCommand::Info { db, problems } => {
            let t = Instant::now();
            db.check()?;
            let (set, info) = load_signatures(&db.config());
            let el = t.elapsed();
            if let Some(n) = &info.cache_note {
                eprintln!("mxguard: warning: {n}");
            }
            let r = set.report();
            let s = set.stats();
            println!(
                "Load time:            {:.3} s{}",
                el.as_secs_f64(),
                if info.from_cache {
                    " (compiled cache)"
                } else {
                    ""
                }
            );
            println!("Database files:       {}", r.files);
            for (name, v) in set.versions() {
                println!("Container:            {name} version {v}");
            }
            println!("Hash signatures:      {}", s.hash_sigs);
            println!("Body signatures:      {}", s.body_sigs);
            println!("Logical signatures:   {}", s.logical_sigs);
            println!("Allow-list entries:   {}", s.allow_list);
            println!(
                "Ignore-list entries:  {} ({} signatures ignored)",
                r.ignored_names, r.ignored_sigs
            );
            println!(
                "Skipped by flevel:    {} (engine functionality level {})",
                r.flevel_skipped,
                mxguard_sigs::FLEVEL
            );
            println!("Invalid lines:        {}", r.invalid());
            println!("Unsupported:          {}", r.unsupported());
            println!(
                "Patterns:             {} (anchored {} + short-anchored {}, positioned {}, unanchored {})",
                s.patterns, s.anchored4, s.anchored2, s.positioned, s.unanchored
            );
            println!(
                "Prefilter memory:     {:.1} MiB",
                s.filter_bytes as f64 / 1048576.0
            );
            println!(
                "Approx. memory:       {:.1} MiB",
                s.approx_memory as f64 / 1048576.0
            );
            let limit = if problems == 0 { usize::MAX } else { problems };
            for p in r.problems.iter().take(limit) {
                println!("{p}");
            }
            if r.problems.len() > limit {
                println!(
                    "... {} more problems (use --problems 0 to list all)",
                    r.problems.len() - limit
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SigsCommand::Verify { db } => {
            db.check()?;
            let mut cfg = db.config();
            cfg.cache_dir = None; // verify always parses the sources
            let (set, _) = load_signatures(&cfg);
            let r = set.report();
            for p in &r.problems {
                println!("{p}");
            }
            let invalid = r
                .problems
                .iter()
                .filter(|p| p.kind == ProblemKind::Invalid)
                .count();
            println!(
                "{} signatures loaded, {} invalid lines, {} unsupported",
                set.len(),
                invalid,
                r.unsupported()
            );
            Ok(if invalid > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
