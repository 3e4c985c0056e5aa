//! Two-fold evaluation of the spam classifier on a corpus laid out like the
//! SpamAssassin public corpus (folders `*ham*` and `spam*` of one message per
//! file), for tuning: facts and tokens are computed once, then each
//! parameter set is trained and tested in memory.
//!
//!   cargo run --release -p mxguard-policy --example spam_eval -- bench/work/spamassassin
//!
//! Environment: `CLUES=150,200`, `STRENGTH=0.1`, `PRIOR_S=0.45` (comma lists
//! are tried in every combination).

use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::bayes::Params;
use mxguard_policy::{tokenize, MessageFacts, Model, Tokens};
use std::path::Path;

fn list(var: &str, default: &str) -> Vec<f64> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

fn main() {
    let root = std::env::args().nth(1).expect("corpus folder");
    let decoder = Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    });
    // (half, spam, hard, tokens)
    let mut msgs: Vec<(usize, bool, bool, Tokens)> = Vec::new();
    let mut folders: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let t0 = std::time::Instant::now();
    for f in folders {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let spam = name.starts_with("spam");
        if !spam && !name.contains("ham") {
            continue;
        }
        let mut files: Vec<_> = std::fs::read_dir(&f)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for (i, p) in files.iter().enumerate() {
            let data = std::fs::read(p).unwrap();
            let facts = MessageFacts::gather(&decoder, &data);
            msgs.push((i % 2, spam, name.starts_with("hard"), tokenize(&facts)));
        }
    }
    let n = msgs.len();
    eprintln!(
        "{} messages tokenized in {:.1} s ({:.0}/s)",
        n,
        t0.elapsed().as_secs_f64(),
        n as f64 / t0.elapsed().as_secs_f64()
    );
    let _ = Path::new(&root);
    for clues in list("CLUES", "150") {
        for strength in list("STRENGTH", "0.1") {
            for ps in list("PRIOR_S", "0.45") {
                let params = Params {
                    max_clues: clues as usize,
                    min_strength: strength,
                    prior_strength: ps,
                    ..Params::default()
                };
                let mut probs: Vec<(f64, bool, bool)> = Vec::new();
                for train in 0..2 {
                    let mut m = Model::new();
                    for (h, spam, _, t) in &msgs {
                        if *h == train {
                            m.train(t, *spam);
                        }
                    }
                    for (h, spam, hard, t) in &msgs {
                        if *h != train {
                            probs.push((m.classify_with(t, &params).prob, *spam, *hard));
                        }
                    }
                }
                let mut ham: Vec<f64> = probs.iter().filter(|x| !x.1).map(|x| x.0).collect();
                ham.sort_by(f64::total_cmp);
                let spam: Vec<f64> = probs.iter().filter(|x| x.1).map(|x| x.0).collect();
                let at = |maxfp: f64| {
                    let k = (ham.len() as f64 * maxfp) as usize;
                    let cut = ham[ham.len() - k - 1];
                    spam.iter().filter(|p| **p > cut).count() as f64 / spam.len() as f64
                };
                let cut = 11.0 / 12.0; // 5 points at weight 6
                let rec = spam.iter().filter(|p| **p >= cut).count() as f64 / spam.len() as f64;
                let fp = ham.iter().filter(|p| **p >= cut).count() as f64 / ham.len() as f64;
                println!(
                    "clues={clues} strength={strength} prior_s={ps}: at 5 points recall {:.2}% fp {:.2}% | best recall at fp<=0.1% {:.2}%, 0.3% {:.2}%, 0.5% {:.2}%",
                    rec * 100.0,
                    fp * 100.0,
                    at(0.001) * 100.0,
                    at(0.003) * 100.0,
                    at(0.005) * 100.0
                );
            }
        }
    }
}
