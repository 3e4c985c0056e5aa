//! `mxguard spam train|check`: the statistical spam classifier from the
//! command line.
//!
//! Messages are read from `.eml` files, directories (recursively: Maildir
//! `cur/` and `new/` are plain files) and mbox files (split at `From ` lines
//! that follow an empty line). The model lives in
//! `data_dir/spam/bayes.model` unless `--model` says otherwise.

use crate::config::Config;
use anyhow::{Context, Result};
use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::{tokenize_named, MessageFacts, Model, SpamFilter};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct SpamArgs {
    #[command(flatten)]
    pub config: crate::store_cli::ConfigArg,
    #[command(subcommand)]
    pub command: SpamCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SpamCommand {
    /// Learn from folders or files of ham and spam (.eml, Maildir, mbox).
    Train {
        /// Good mail (repeatable).
        #[arg(long, value_name = "PATH")]
        ham: Vec<PathBuf>,
        /// Spam (repeatable).
        #[arg(long, value_name = "PATH")]
        spam: Vec<PathBuf>,
        /// The model file; default: data_dir/spam/bayes.model.
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        /// Start from an empty model instead of adding to the existing one.
        #[arg(long)]
        fresh: bool,
    },
    /// Report messages as spam (or, with --ham, as good mail): files or
    /// quarantine items are learned at once; a running gateway picks the
    /// model up within `[spam] reload_check_secs` (15 s).
    Report {
        /// They are good mail (a false positive), not spam.
        #[arg(long)]
        ham: bool,
        /// Quarantine item ids (repeatable).
        #[arg(long = "quarantine", value_name = "ID")]
        quarantine: Vec<String>,
        /// Message files, Maildir folders or mbox files.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Score messages: score, label, and the rules that fired.
    Check {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        /// Points at or above which a message is spam; default `[spam] required_score` (5.0).
        #[arg(long)]
        required: Option<f64>,
        /// One JSON object per message.
        #[arg(long)]
        json: bool,
        /// Also list the strongest tokens behind the classifier's verdict.
        #[arg(long)]
        explain: bool,
        /// A policy file (rules, lists, phishing checks): its rules add their
        /// points to the classifier's and its threshold decides. Without a
        /// trained model, the rules alone.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
}

/// One message read from disk.
pub struct MailFile {
    /// `path` or `path#N` for the N-th message of an mbox.
    pub name: String,
    pub data: Vec<u8>,
}

fn files_under(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let md = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
    if md.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("{}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            files_under(&e, out)?;
        }
    } else if md.is_file() {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// Splits an mbox into messages (without their `From ` lines); a file that
/// does not start with `From ` is one message.
pub fn split_mbox(data: &[u8]) -> Vec<&[u8]> {
    if !data.starts_with(b"From ") {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut start = memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1);
    let mut pos = start;
    while let Some(off) = memchr::memmem::find(&data[pos..], b"\n\nFrom ") {
        let end = pos + off + 1;
        out.push(&data[start..end]);
        let from_line = end + 1;
        start = memchr::memchr(b'\n', &data[from_line..]).map_or(data.len(), |i| from_line + i + 1);
        pos = start;
    }
    if start < data.len() {
        out.push(&data[start..]);
    }
    out
}

/// Every message under `paths`, in a stable order.
pub fn read_messages(paths: &[PathBuf]) -> Result<Vec<MailFile>> {
    let mut files = Vec::new();
    for p in paths {
        files_under(p, &mut files)?;
    }
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "cmds" || name.ends_with(".model") {
            continue;
        }
        let data = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        let parts = split_mbox(&data);
        if parts.len() == 1 {
            out.push(MailFile {
                name: f.display().to_string(),
                data: parts[0].to_vec(),
            });
        } else {
            for (i, m) in parts.iter().enumerate() {
                out.push(MailFile {
                    name: format!("{}#{}", f.display(), i + 1),
                    data: m.to_vec(),
                });
            }
        }
    }
    Ok(out)
}

/// The decoder the policy layer reads messages with.
pub fn text_decoder() -> Decoder {
    Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    })
}

fn model_path(cfg: &Config, model: &Option<PathBuf>) -> PathBuf {
    model
        .clone()
        .unwrap_or_else(|| cfg.spam.model_path(&cfg.data_dir))
}

/// Reads a model; a missing file is an error naming the train command.
pub fn load_model(path: &Path) -> Result<Model> {
    let b = std::fs::read(path).with_context(|| {
        format!(
            "reading the spam model {} (train one with `mxguard spam train --ham DIR --spam DIR`)",
            path.display()
        )
    })?;
    Model::from_bytes(&b).with_context(|| format!("{}", path.display()))
}

/// Adds messages to the model at `path` (created when missing) under an
/// exclusive lock, so concurrent learners (CLI, console, releases) never
/// lose each other's updates; written atomically. Returns the model's
/// (ham, spam) counts afterwards.
pub fn learn(path: &Path, messages: &[(&[u8], bool)]) -> Result<(u64, u64)> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let lock_path = path.with_extension("model.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("{}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let mut m = if path.exists() {
        load_model(path)?
    } else {
        Model::new()
    };
    let decoder = text_decoder();
    for (data, is_spam) in messages {
        let facts = MessageFacts::gather(&decoder, data);
        m.train(&mxguard_policy::tokenize(&facts), *is_spam);
    }
    save_model(path, &m)?;
    Ok((m.ham_messages as u64, m.spam_messages as u64))
}

/// After a release: when `[spam] learn_from_releases` is on and the item
/// was quarantined as spam, learns its message as ham. Returns a line for
/// the operator; errors are reported there, never fail the release (which
/// is already done).
pub async fn learn_release(cfg: &Config, store: &mxguard_store::Store, id: &str) -> Option<String> {
    if !cfg.spam.enabled || !cfg.spam.learn_from_releases {
        return None;
    }
    let item = store.get(id).await.ok().flatten()?;
    let spam_item = item.summary.reason == "spam"
        || item
            .findings
            .iter()
            .any(|f| f.name == mxguard_smtp::pipeline::SPAM_FINDING);
    if !spam_item {
        return None;
    }
    let msg = match store.message(id).await {
        Ok(Some(m)) => m,
        _ => {
            return Some(format!(
                "not learned as ham: the message of {id} is not readable"
            ))
        }
    };
    let path = cfg.spam.model_path(&cfg.data_dir);
    let r = tokio::task::spawn_blocking(move || learn(&path, &[(msg.as_slice(), false)])).await;
    Some(match r {
        Ok(Ok((h, s))) => {
            format!("learned {id} as ham (a released spam); model: {h} ham, {s} spam")
        }
        Ok(Err(e)) => format!("not learned as ham: {e:#}"),
        Err(e) => format!("not learned as ham: {e}"),
    })
}

/// Writes a model atomically (temporary file, fsync, rename).
fn save_model(path: &Path, m: &Model) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let tmp = path.with_extension("model.tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    f.write_all(&m.to_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

pub fn run(a: SpamArgs) -> Result<ExitCode> {
    let cfg = match &a.config.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let decoder = text_decoder();
    match a.command {
        SpamCommand::Train {
            ham,
            spam,
            model,
            fresh,
        } => {
            if ham.is_empty() && spam.is_empty() {
                anyhow::bail!("nothing to learn: give --ham and/or --spam");
            }
            let path = model_path(&cfg, &model);
            let mut m = if fresh || !path.exists() {
                Model::new()
            } else {
                load_model(&path)?
            };
            let t0 = std::time::Instant::now();
            let (mut nh, mut ns) = (0usize, 0usize);
            // All tokens first, then one batch: the linear model learns in
            // several passes with ham and spam interleaved.
            let mut set: Vec<(mxguard_policy::Tokens, bool)> = Vec::new();
            for (paths, is_spam) in [(&ham, false), (&spam, true)] {
                for msg in read_messages(paths)? {
                    let facts = MessageFacts::gather(&decoder, &msg.data);
                    set.push((mxguard_policy::tokenize(&facts), is_spam));
                    if is_spam {
                        ns += 1;
                    } else {
                        nh += 1;
                    }
                }
            }
            let refs: Vec<(&mxguard_policy::Tokens, bool)> =
                set.iter().map(|(t, s)| (t, *s)).collect();
            m.learn_batch(&refs);
            save_model(&path, &m)?;
            println!(
                "learned {nh} ham and {ns} spam in {:.1} s; model {}: {} ham, {} spam, {} tokens",
                t0.elapsed().as_secs_f64(),
                path.display(),
                m.ham_messages,
                m.spam_messages,
                m.len()
            );
        }
        SpamCommand::Report {
            ham,
            quarantine,
            paths,
        } => {
            if quarantine.is_empty() && paths.is_empty() {
                anyhow::bail!("nothing to report: give message files or --quarantine ID");
            }
            let mut data: Vec<Vec<u8>> =
                read_messages(&paths)?.into_iter().map(|m| m.data).collect();
            if !quarantine.is_empty() {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                data.extend(rt.block_on(async {
                    let store = mxguard_store::Store::open(&cfg.store.url(&cfg.data_dir)).await?;
                    let mut v = Vec::new();
                    for id in &quarantine {
                        match store.message(id).await? {
                            Some(m) => v.push(m),
                            None => anyhow::bail!("no quarantine item {id}"),
                        }
                    }
                    store.close().await;
                    Ok::<_, anyhow::Error>(v)
                })?);
            }
            let path = model_path(&cfg, &None);
            let refs: Vec<(&[u8], bool)> = data.iter().map(|d| (d.as_slice(), !ham)).collect();
            let (h, s) = learn(&path, &refs)?;
            println!(
                "learned {} message(s) as {}; model {}: {h} ham, {s} spam",
                data.len(),
                if ham { "ham" } else { "spam" },
                path.display()
            );
        }
        SpamCommand::Check {
            paths,
            model,
            required,
            json,
            explain,
            policy,
        } => {
            let path = model_path(&cfg, &model);
            let policy = match &policy {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    Some(
                        mxguard_policy::CompiledPolicy::from_toml(&text, "").map_err(|e| {
                            anyhow::anyhow!(
                                "{}: invalid policy:\n{}",
                                p.display(),
                                mxguard_policy::rules::format_errors(&e)
                            )
                        })?,
                    )
                }
                None => None,
            };
            // The rules can work without a trained model; the classifier cannot.
            let model = if policy.is_some() && !path.exists() {
                Model::new()
            } else {
                load_model(&path)?
            };
            let bayes = !model.is_empty();
            let mut filter = SpamFilter::new(model);
            filter.required = required.unwrap_or(cfg.spam.required_score);
            filter.bayes_weight = cfg.spam.bayes_weight;
            let out = std::io::stdout();
            let mut out = out.lock();
            for msg in read_messages(&paths)? {
                let facts = MessageFacts::gather(&decoder, &msg.data);
                let mut r = filter.check(&facts);
                if !bayes {
                    r.rules.clear();
                    r.score = 0.0;
                    r.spam = false;
                }
                let mut actions: Vec<String> = Vec::new();
                if let Some(p) = &policy {
                    // The first verdict: with no envelope, the message's own
                    // To/Cc addresses choose the policy.
                    let env = mxguard_policy::Envelope {
                        rcpts: &[],
                        local_domains: &cfg.smtp.local_domains,
                        ..Default::default()
                    };
                    if let Some(v) = p.evaluate(&facts, &env, Some(&r)).into_iter().next() {
                        r.score = v.score;
                        r.required = v.required;
                        r.spam = v.spam;
                        r.rules = v
                            .hits
                            .iter()
                            .map(|h| mxguard_policy::RuleHit {
                                name: h.name.clone(),
                                points: h.points,
                            })
                            .collect();
                        actions = v
                            .actions
                            .iter()
                            .map(|a| format!("{} ({})", a.action.kind().name(), a.rule))
                            .collect();
                    }
                }
                let score = r.score;
                let required = r.required;
                let label = if r.spam { "spam" } else { "ham" };
                let clues: Vec<(String, f64)> = if explain {
                    let tokens = tokenize_named(&facts);
                    filter
                        .model
                        .classify(&tokens)
                        .clues
                        .iter()
                        .take(15)
                        .map(|k| {
                            (
                                tokens.name(k.token).unwrap_or("?").to_string(),
                                (k.prob * 1000.0).round() / 1000.0,
                            )
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                if json {
                    let mut v = serde_json::json!({
                        "file": msg.name,
                        "score": score,
                        "required": required,
                        "label": label,
                        "rules": r.rules.iter().map(|h| serde_json::json!({"name": h.name, "score": h.points})).collect::<Vec<_>>(),
                        "probability": (r.probability * 10000.0).round() / 10000.0,
                        "actions": actions,
                    });
                    if explain {
                        v["clues"] = serde_json::json!(clues);
                    }
                    writeln!(out, "{v}")?;
                } else {
                    let rules: Vec<String> = r
                        .rules
                        .iter()
                        .map(|h| format!("{}={:.2}", h.name, h.points))
                        .collect();
                    writeln!(
                        out,
                        "{}: {label} score={score:.2} required={required:.1} {} (p={:.4}){}",
                        msg.name,
                        rules.join(" "),
                        r.probability,
                        if actions.is_empty() {
                            String::new()
                        } else {
                            format!(" actions: {}", actions.join(", "))
                        }
                    )?;
                    for (t, p) in &clues {
                        writeln!(out, "    {p:.3} {t}")?;
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_split() {
        let m = b"From a@b Mon\nSubject: 1\n\nbody\nFrom here is not a separator\n\nFrom c@d Tue\nSubject: 2\n\nx\n";
        let parts = split_mbox(m);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with(b"Subject: 1"));
        assert!(parts[1].starts_with(b"Subject: 2"));
        assert_eq!(split_mbox(b"Subject: x\n\ny").len(), 1);
        assert_eq!(split_mbox(b"From x\n").len(), 0);
    }
}
