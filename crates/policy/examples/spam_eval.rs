//! Evaluation of the spam classifier on a corpus laid out like the
//! SpamAssassin public corpus (folders `*ham*` and `spam*` of one message per
//! file). Facts are gathered once, then models are trained and tested in
//! memory through [`SpamFilter::check`], the gateway's own path.
//!
//!   cargo run --release -p mxguard-policy --example spam_eval -- bench/work/spamassassin [--final]
//!
//! The corpus is split like `bench/spam.sh`: half A holds the 1st, 3rd...
//! file of each folder, half B the others. Without `--final`, only
//! cross-validation *inside* each half is run (each half split again into
//! `INNER_K` folds, default 10, by position in each folder; train on the
//! other folds, test on one, for each fold): this is what choices (features, parameters, the threshold) are made on, never
//! on the other half. With `--final`, the two-fold result (train on A, test
//! on B, and the reverse) is printed as well, at the default required score.
//!
//! Environment: `REQUIRED=5.0` (points at or above which a message is spam).

use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::bayes::Params;
use mxguard_policy::linear::LinearParams;
use mxguard_policy::{tokenize, MessageFacts, Model, SpamFilter, Tokens};

struct Msg {
    half: usize,
    /// Position inside its half and folder: the inner fold is `pos % K`.
    pos: usize,
    spam: bool,
    hard: bool,
    path: String,
    facts: MessageFacts,
    tokens: Tokens,
}

/// (score, spam, hard)
type Scored = Vec<(f64, bool, bool)>;
/// (chi-squared probability, linear log-odds, spam, hard)
type Parts = Vec<(f64, f64, bool, bool)>;

fn env_f(var: &str, default: f64) -> f64 {
    std::env::var(var)
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(default)
}

fn lin_params() -> LinearParams {
    let d = LinearParams::default();
    LinearParams {
        rate: env_f("LR_RATE", d.rate),
        epochs: env_f("LR_EPOCHS", d.epochs as f64) as usize,
        l2: env_f("LR_L2", d.l2),
        ensemble: env_f("LR_ENSEMBLE", d.ensemble as f64) as usize,
    }
}

/// Folds of the inner cross-validation inside each half (`INNER_K`,
/// default 10: models trained on 9/10 of a half, close to the final
/// models' size, so the scores and the cut read from them are too).
fn inner_k() -> usize {
    (env_f("INNER_K", 10.0) as usize).max(2)
}

/// Points through the gateway's own path (`SpamFilter::check`).
fn run(msgs: &[Msg], train: impl Fn(&Msg) -> bool, test: impl Fn(&Msg) -> bool) -> Scored {
    let set: Vec<(&Tokens, bool)> = msgs
        .iter()
        .filter(|m| train(m))
        .map(|m| (&m.tokens, m.spam))
        .collect();
    let model = Model::trained(&set);
    let filter = SpamFilter::new(model);
    msgs.iter()
        .filter(|m| test(m))
        .map(|m| (filter.check(&m.facts).score, m.spam, m.hard))
        .collect()
}

/// The two classifiers' answers apart, for choosing how to mix them.
fn parts(msgs: &[Msg], train: impl Fn(&Msg) -> bool, test: impl Fn(&Msg) -> bool) -> Parts {
    let set: Vec<(&Tokens, bool)> = msgs
        .iter()
        .filter(|m| train(m))
        .map(|m| (&m.tokens, m.spam))
        .collect();
    let model = Model::trained_with(&set, &lin_params());
    let d = Params::default();
    let params = Params {
        max_clues: env_f("CLUES", d.max_clues as f64) as usize,
        min_strength: env_f("STRENGTH", d.min_strength),
        prior_strength: env_f("PRIOR_S", d.prior_strength),
        ..d
    };
    msgs.iter()
        .filter(|m| test(m))
        .map(|m| {
            let c = model.classify_with(&m.tokens, &params);
            (c.bayes, c.margin, m.spam, m.hard)
        })
        .collect()
}

fn mixed(p: &Parts, b: f64, l: f64) -> Scored {
    let logit = |p: f64| {
        let p = p.clamp(1e-4, 1.0 - 1e-4);
        (p / (1.0 - p)).ln()
    };
    p.iter()
        .map(|x| (b * logit(x.0) + l * x.1, x.2, x.3))
        .collect()
}

fn report(name: &str, s: &Scored, required: f64) {
    let mut ham: Vec<f64> = s.iter().filter(|x| !x.1).map(|x| x.0).collect();
    ham.sort_by(f64::total_cmp);
    let spam: Vec<f64> = s.iter().filter(|x| x.1).map(|x| x.0).collect();
    let hard_fp = s.iter().filter(|x| x.2 && x.0 >= required).count();
    let fp = ham.iter().filter(|p| **p >= required).count();
    let tp = spam.iter().filter(|p| **p >= required).count();
    // Best recall with at most maxfp of ham above the cut (an oracle: for
    // inner cross-validation only).
    let at = |maxfp: f64| {
        let k = (ham.len() as f64 * maxfp) as usize;
        let cut = ham[ham.len() - k - 1];
        (
            spam.iter().filter(|p| **p > cut).count() as f64 / spam.len() as f64 * 100.0,
            cut,
        )
    };
    let (r1, _) = at(0.001);
    let (r2, c2) = at(0.002);
    let (r3, c3) = at(0.003);
    let (r5, _) = at(0.005);
    let (r10, _) = at(0.01);
    println!(
        "{name}: at {required}: recall {:.2}% ({tp}/{}) fp {:.2}% ({fp}/{}, hard {hard_fp}) | oracle recall at fp<=0.1% {r1:.2}%, 0.2% {r2:.2}% (cut {c2:.2}), 0.3% {r3:.2}% (cut {c3:.2}), 0.5% {r5:.2}%, 1% {r10:.2}%",
        tp as f64 / spam.len() as f64 * 100.0,
        spam.len(),
        fp as f64 / ham.len() as f64 * 100.0,
        ham.len(),
    );
}

fn main() {
    let root = std::env::args().nth(1).expect("corpus folder");
    let final_ = std::env::args().any(|a| a == "--final");
    let required: f64 = std::env::var("REQUIRED")
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(mxguard_policy::spam::DEFAULT_REQUIRED);
    let decoder = Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    });
    let mut msgs: Vec<Msg> = Vec::new();
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
            let tokens = tokenize(&facts);
            msgs.push(Msg {
                half: i % 2,
                pos: i / 2,
                spam,
                hard: name.starts_with("hard"),
                path: p.display().to_string(),
                facts,
                tokens,
            });
        }
    }
    let n = msgs.len();
    eprintln!(
        "{} messages read, decoded and tokenized in {:.1} s ({:.0}/s)",
        n,
        t0.elapsed().as_secs_f64(),
        n as f64 / t0.elapsed().as_secs_f64()
    );
    {
        // Speed of the classifier alone (tokens + classification through
        // SpamFilter::check, facts already gathered), model of half A.
        let set: Vec<(&Tokens, bool)> = msgs
            .iter()
            .filter(|m| m.half == 0)
            .map(|m| (&m.tokens, m.spam))
            .collect();
        let filter = SpamFilter::new(Model::trained(&set));
        let t = std::time::Instant::now();
        let spam = msgs.iter().filter(|m| filter.check(&m.facts).spam).count();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "SpamFilter::check on {n} messages: {:.0}/s ({spam} labelled spam; speed only)",
            n as f64 / secs
        );
    }
    let mixes: Vec<(f64, f64)> = std::env::var("MIX")
        .unwrap_or_else(|_| "1:0,0:1,0.5:1".into())
        .split(',')
        .filter_map(|x| {
            let (a, b) = x.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    let k = inner_k();
    let mut pooled: Vec<Parts> = vec![Vec::new(); 2];
    for (h, pool) in pooled.iter_mut().enumerate() {
        for q in 0..k {
            pool.extend(parts(
                &msgs,
                |m| m.half == h && m.pos % k != q,
                |m| m.half == h && m.pos % k == q,
            ));
        }
    }
    // Log-odds at 5 points of 6: ln(11).
    let z5 = 11f64.ln();
    for (b, l) in &mixes {
        let a = mixed(&pooled[0], *b, *l);
        let bb = mixed(&pooled[1], *b, *l);
        report(&format!("mix {b}:{l} inner A"), &a, z5);
        report(&format!("mix {b}:{l} inner B"), &bb, z5);
        let mut all = a;
        all.extend(bb);
        report(&format!("mix {b}:{l} inner pooled"), &all, z5);
    }
    // The same through the gateway's path, at the default parameters.
    let mut check: Scored = Vec::new();
    for h in 0..2 {
        for q in 0..k {
            check.extend(run(
                &msgs,
                |m| m.half == h && m.pos % k != q,
                |m| m.half == h && m.pos % k == q,
            ));
        }
    }
    report("inner pooled, SpamFilter::check", &check, required);
    if std::env::var("SHOW").is_ok() {
        // The inner cross-validation's worst errors (never the other half's).
        let mut shown: Vec<(f64, &Msg)> = Vec::new();
        for h in 0..2 {
            for q in 0..k {
                let set: Vec<(&Tokens, bool)> = msgs
                    .iter()
                    .filter(|m| m.half == h && m.pos % k != q)
                    .map(|m| (&m.tokens, m.spam))
                    .collect();
                let filter = SpamFilter::new(Model::trained(&set));
                for m in msgs.iter().filter(|m| m.half == h && m.pos % k == q) {
                    shown.push((filter.check(&m.facts).score, m));
                }
            }
        }
        shown.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (sc, m) in shown.iter().filter(|x| !x.1.spam).take(15) {
            println!(
                "HAM {sc:.2} {} | {} | {}",
                m.path, m.facts.from_address, m.facts.subject
            );
        }
        for (sc, m) in shown.iter().rev().filter(|x| x.1.spam).take(25) {
            println!(
                "SPAM {sc:.2} {} | {} | {}",
                m.path, m.facts.from_address, m.facts.subject
            );
        }
    }
    if final_ {
        let mut all: Scored = Vec::new();
        for (train, name) in [(0, "train A test B"), (1, "train B test A")] {
            let s = run(&msgs, |m| m.half == train, |m| m.half != train);
            report(&format!("FINAL {name}"), &s, required);
            all.extend(s);
        }
        report("FINAL total", &all, required);
    }
}
