//! `mxguard serve`: wires the configuration into running listeners.
//!
//! Start: data directories, spool recovery, signatures, TLS, stamp key, the
//! delivery queue, then the SMTP listeners. SIGTERM/SIGINT: stop accepting,
//! let sessions in progress finish their transaction (idle ones get 421),
//! then stop the queue after the attempts in progress.

use crate::config::Config;
use anyhow::{Context, Result};
use mxguard_engine::{load_signatures, SignatureConfig};
use mxguard_smtp::pipeline::{Gateway, GatewayInner, Stats};
use mxguard_smtp::queue::{MailboxCheck, Queue, QueueStats, Route};
use mxguard_smtp::server::Server;
use mxguard_smtp::session::SessionConfig;
use mxguard_smtp::spool::Spool;
use mxguard_smtp::stamp::StampSettings;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The configuration file (TOML). Without it, the embedded default: SMTP on
    /// 127.0.0.1:2525, mail for example.com and localhost into ./data/maildir/<user>/.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// How long sessions in progress may take to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MXGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    init_logging();
    let cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mxguard")
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(cfg))?;
    Ok(ExitCode::SUCCESS)
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

/// The decoder from `[engine]`.
pub fn decoder(cfg: &crate::config::EngineConfig) -> Result<mxguard_decode::Decoder> {
    let mut opts = mxguard_decode::DecodeOptions::default();
    let b = &mut opts.budget;
    if let Some(v) = cfg.max_recursion {
        b.max_depth = v;
    }
    if let Some(v) = cfg.max_files {
        b.max_objects = v;
    }
    if let Some(v) = cfg.max_filesize {
        b.max_object_size = v;
    }
    if let Some(v) = cfg.max_scansize {
        b.max_total_size = v;
    }
    if let Some(v) = cfg.max_scantime {
        b.max_time = Duration::from_millis(v);
    }
    b.validate()
        .map_err(|e| anyhow::anyhow!("engine: invalid limit: {e}"))?;
    opts.text = cfg.text;
    if !cfg.heuristics {
        let h = &mut opts.heuristics;
        h.type_mismatch = false;
        h.double_extension = false;
        h.deceptive_names = false;
        h.macros = false;
        h.pdf = false;
        h.html_smuggling = false;
        h.phishing = false;
    }
    Ok(mxguard_decode::Decoder::new(opts))
}

/// A version string for the loaded signatures that is the same on every node
/// with the same databases: container versions (`daily-27000`), the count, and
/// a digest of the plain signature files' contents.
pub fn sigs_version(set: &mxguard_sigs::SignatureSet, paths: &[PathBuf]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                files.extend(
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.is_file()),
                );
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    for f in files {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "cvd" | "cld") {
            continue; // Their version is in `versions()`.
        }
        if let Ok(data) = std::fs::read(&f) {
            h.update(
                f.file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or_default(),
            );
            h.update(Sha256::digest(&data));
        }
    }
    let digest = h.finalize();
    let mut s: Vec<String> = set
        .versions()
        .iter()
        .map(|(n, v)| format!("{n}-{v}"))
        .collect();
    s.push(format!("n{}", set.len()));
    s.push(digest[..6].iter().map(|b| format!("{b:02x}")).collect());
    s.join(".")
}

async fn serve(cfg: Config) -> Result<()> {
    let t0 = Instant::now();
    let data = cfg.data_dir.clone();
    mkdir(&data)?;
    let spool = Spool::open(&data.join("spool")).context("opening the spool")?;
    let recovered = spool.recover().context("recovering the spool")?;
    if recovered > 0 {
        tracing::info!("spool: removed {recovered} unfinished temporary files from before");
    }
    let store_url = cfg.store.url(&data);
    let store = mxguard_store::Store::open(&store_url)
        .await
        .with_context(|| format!("opening the store {}", mxguard_store::redact(&store_url)))?;
    tracing::info!(
        backend = store.backend().as_str(),
        schema = store.schema_version().await.unwrap_or(0),
        "store open"
    );
    let events = store.event_writer(mxguard_store::EventWriterConfig {
        capacity: cfg.store.event_buffer,
        ..Default::default()
    });
    let maildir_root = data.join("maildir");
    mkdir(&maildir_root)?;

    // Signatures (CPU work: off the runtime's threads).
    let sig_cfg = SignatureConfig {
        paths: cfg.engine.signatures.clone(),
        builtin: cfg.engine.builtin,
        cache_dir: Some(data.join("cache")),
    };
    let paths = cfg.engine.signatures.clone();
    let (set, info, sigs) = tokio::task::spawn_blocking(move || {
        let (set, info) = load_signatures(&sig_cfg);
        let v = sigs_version(&set, &paths);
        (set, info, v)
    })
    .await?;
    if let Some(n) = &info.cache_note {
        tracing::warn!("signatures: {n}");
    }
    if set.is_empty() {
        anyhow::bail!("no signatures loaded: enable engine.builtin or list engine.signatures");
    }
    tracing::info!(count = set.len(), version = %sigs, cached = info.from_cache, "signatures loaded");
    // The spam filter: a trained model, read once at start.
    let spam = load_spam(&cfg, &data);
    // The rules engine: checked by `Config::validate` already.
    let policy = Arc::new(cfg.load_policy()?);
    tracing::info!(
        source = ?cfg.policy_source(),
        rules = policy.rule_names().count(),
        policies = policy.policy_names().count(),
        "policy loaded"
    );
    let auth = if [cfg.auth.spf, cfg.auth.dkim, cfg.auth.dmarc, cfg.auth.arc].contains(&true)
        || !cfg.auth.dnsbl.is_empty()
        || !cfg.auth.uribl.is_empty()
    {
        Some(Arc::new(
            mxguard_auth::Authenticator::new(&cfg.auth, &cfg.smtp.hostname).context("[auth]")?,
        ))
    } else {
        None
    };
    let mut engine_cfg = cfg.engine.clone();
    // Text and links for the rules engine; always on, so a policy saved
    // later (console, reload) sees the same facts as one present at start.
    engine_cfg.text = true;
    // One holder for every front-end; the clamd socket reloads through it.
    let engines = Arc::new(crate::engines::Engines::from_set(
        &engine_cfg,
        crate::engines::Engines::signature_config(&cfg.engine, Some(data.join("cache"))),
        set,
        sigs.clone(),
    )?);
    let scanner = engines.scanner();

    let stamp = if cfg.stamp.enabled {
        let key_file = cfg
            .stamp
            .key_file
            .clone()
            .unwrap_or_else(|| data.join("stamp.key"));
        Some(Arc::new(
            StampSettings::load(
                &key_file,
                &cfg.stamp.previous_key_files,
                env!("CARGO_PKG_VERSION"),
                &sigs,
                cfg.stamp.trusted_nodes.clone(),
                (cfg.stamp.max_age_secs > 0).then(|| Duration::from_secs(cfg.stamp.max_age_secs)),
            )
            .with_context(|| format!("stamp key {}", key_file.display()))?,
        ))
    } else {
        None
    };

    // The gateway, the milter and the mailbox check scan with this slot; a
    // signature reload (clamd RELOAD, console, SIGUSR2, changed files)
    // replaces its scanner and the version its stamps carry.
    let scan_slot = Arc::new(mxguard_smtp::stamp::ScanSlot::new(scanner, stamp));
    {
        let slot = scan_slot.clone();
        engines.on_reload(Box::new(move |l: &crate::engines::Loaded| {
            slot.replace(l.scanner.clone(), &l.sigs_version)
        }));
    }

    let route: Route = cfg
        .smtp
        .next_hop
        .parse()
        .map_err(|e: String| anyhow::anyhow!("smtp.next_hop: {e}"))?;
    let tls = if cfg.smtp.starttls {
        let acc = match (&cfg.smtp.tls_cert, &cfg.smtp.tls_key) {
            (Some(c), Some(k)) => {
                mxguard_smtp::tls::acceptor_from_files(Path::new(c), Path::new(k))?
            }
            _ => mxguard_smtp::tls::self_signed_acceptor(&data.join("tls"), &cfg.smtp.hostname)?,
        };
        Some(acc)
    } else {
        None
    };
    let dnsbl = if cfg.smtp.dnsbl_zones.is_empty() {
        None
    } else {
        let resolver = cfg
            .smtp
            .dnsbl_resolver
            .as_deref()
            .map(|r| r.parse())
            .transpose()?;
        Some(mxguard_smtp::dnsbl::Dnsbl::new(
            cfg.smtp.dnsbl_zones.clone(),
            resolver,
            Duration::from_secs(cfg.smtp.dnsbl_timeout_secs.max(1)),
        )?)
    };

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let local_delivery = route == Route::Maildir;
    let pool = match &route {
        Route::Remote(hop) => Some(mxguard_smtp::client::Pool::new(
            hop.clone(),
            mxguard_smtp::queue::client_options(&cfg.queue, &cfg.smtp.hostname),
        )),
        Route::Maildir => None,
    };
    let queue = Arc::new(Queue {
        spool: spool.clone(),
        cfg: cfg.queue.clone(),
        route,
        maildir: mxguard_mailbox::Maildir::new(&maildir_root, cfg.smtp.hostname.clone()),
        hostname: cfg.smtp.hostname.clone(),
        stats: QueueStats::default(),
        tx: tx.clone(),
        pool,
        mailbox_check: (scan_slot.stamping() && local_delivery).then(|| {
            Arc::new(MailboxCheck {
                scan: scan_slot.clone(),
                actions: cfg.actions.clone(),
                store: store.clone(),
                events: events.clone(),
                node_id: cfg.node_id.clone(),
                scans_skipped: Default::default(),
                rescans: Default::default(),
            })
        }),
    });
    let gateway = Gateway {
        inner: Arc::new(GatewayInner {
            scan: scan_slot.clone(),
            actions: cfg.actions.clone(),
            spool,
            store: store.clone(),
            events: events.clone(),
            node_id: cfg.node_id.clone(),
            hostname: cfg.smtp.hostname.clone(),
            role: cfg.smtp.role,
            queue: tx,
            stats: Stats::default(),
            spam: std::sync::RwLock::new(spam),
            notify: Some(Arc::new(mxguard_smtp::notify::Notifier {
                cfg: cfg.notify.clone(),
                hostname: cfg.smtp.hostname.clone(),
                node: cfg.node_id.clone(),
                local_delivery,
            })),
            local_delivery,
            policy: std::sync::RwLock::new(policy),
            local_domains: cfg.smtp.local_domains.clone(),
            auth,
        }),
    };
    let session_cfg = SessionConfig {
        hostname: cfg.smtp.hostname.clone(),
        max_message_size: usize::try_from(cfg.smtp.max_message_size).unwrap_or(usize::MAX),
        max_recipients: cfg.smtp.max_recipients,
        max_errors: cfg.smtp.max_errors,
        command_timeout: cfg.smtp.command_timeout(),
        data_timeout: cfg.smtp.data_timeout(),
        relay: cfg.smtp.relay_policy(),
        can_relay: !local_delivery,
        starttls: cfg.smtp.starttls,
        max_command_line: cfg.smtp.max_command_line,
    };
    let server = Arc::new(Server::new(
        session_cfg,
        Arc::new(gateway.clone()),
        tls,
        cfg.smtp.ip_lists(),
        dnsbl,
        cfg.smtp.max_connections,
        cfg.smtp.max_connections_per_ip,
    ));

    let shutdown = CancellationToken::new();
    let sessions = TaskTracker::new();
    let mut listeners = Vec::new();
    for addr in &cfg.smtp.listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("smtp.listen: cannot listen on {addr}"))?;
        listeners.push(l);
    }
    let mut milter_listeners = Vec::new();
    for l in &cfg.milter.listen {
        let addr: mxguard_milter::ListenAddr = l
            .parse()
            .map_err(|e| anyhow::anyhow!("milter.listen: {l}: {e}"))?;
        let listener =
            mxguard_milter::Listener::bind(&addr, cfg.milter.session_config().unix_socket_mode)
                .await
                .with_context(|| format!("milter.listen: cannot listen on {l}"))?;
        milter_listeners.push((l.clone(), listener));
    }
    let queue_stop = CancellationToken::new();
    let queue_task = tokio::spawn(queue.clone().run(rx, queue_stop.clone()));
    let mut console_listeners: Vec<mxguard_web::Listener> = Vec::new();
    for l in listeners {
        let addr = l.local_addr()?;
        console_listeners.push(mxguard_web::Listener {
            kind: "smtp".into(),
            address: addr.to_string(),
        });
        tracing::info!(%addr, "SMTP listening");
        tokio::spawn(server.clone().serve(l, shutdown.clone(), sessions.clone()));
    }
    if !milter_listeners.is_empty() {
        let handler = Arc::new(crate::milter::SharedMilter(Arc::new(
            crate::milter::MilterGateway {
                inner: gateway.inner.clone(),
                relay: cfg.smtp.relay_policy(),
                hold_quarantined: cfg.milter.hold_quarantined,
            },
        )));
        let session_cfg = Arc::new(cfg.milter.session_config());
        for (name, l) in milter_listeners {
            console_listeners.push(mxguard_web::Listener {
                kind: "milter".into(),
                address: name.clone(),
            });
            tracing::info!(addr = %name, "milter listening");
            tokio::spawn(mxguard_milter::serve(
                l,
                handler.clone(),
                session_cfg.clone(),
                shutdown.clone(),
                sessions.clone(),
            ));
        }
    }
    let clamd = crate::clamd::start(&cfg.clamd, engines.clone()).await?;
    for l in &cfg.clamd.listen {
        console_listeners.push(mxguard_web::Listener {
            kind: "clamd".into(),
            address: l.clone(),
        });
    }
    // The web console, last: everything it shows is running.
    let web_stop = CancellationToken::new();
    let web_task = if cfg.web.listen.is_empty() {
        tracing::info!("web console off ([web] listen is empty)");
        None
    } else {
        Some(
            start_web(
                &cfg,
                &store,
                gateway.inner.clone(),
                queue.clone(),
                engines.clone(),
                console_listeners,
                web_stop.clone(),
            )
            .await?,
        )
    };
    tracing::info!(
        node = %cfg.node_id,
        next_hop = %cfg.smtp.next_hop,
        maildir = %maildir_root.display(),
        "mxguard ready in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    // A counters line every minute when something happened (the metrics
    // endpoint of the console issue will expose the same numbers).
    let stats_task = {
        let (g, q) = (gateway.clone(), queue.clone());
        tokio::spawn(async move {
            let mut last = String::new();
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let line = stats_line(&g, &q);
                if line != last {
                    tracing::info!(target: "mxguard::stats", "{line}");
                    last = line;
                }
            }
        })
    };
    let expiry_task = tokio::spawn(expire_loop(store.clone(), cfg.store.clone()));
    let reload_task = tokio::spawn(reload_policy_on_hangup(cfg.clone(), gateway.inner.clone()));
    let model_task = tokio::spawn(watch_spam_model(
        cfg.clone(),
        data.clone(),
        gateway.inner.clone(),
    ));
    let sigs_task = tokio::spawn(watch_signatures(
        engines.clone(),
        cfg.engine.reload_check_secs,
    ));
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = crate::clamd::shutdown_requested(&clamd) => {}
    }
    stats_task.abort();
    expiry_task.abort();
    reload_task.abort();
    model_task.abort();
    sigs_task.abort();
    tracing::info!("shutting down: finishing sessions in progress");
    web_stop.cancel();
    if let Some(t) = web_task {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    shutdown.cancel();
    crate::clamd::stop(clamd, SHUTDOWN_GRACE).await;
    sessions.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "sessions still open after {} s; closing",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    queue_stop.cancel();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, queue_task).await;
    let ev = events.shutdown(Duration::from_secs(10)).await;
    tracing::info!(target: "mxguard::stats", "stopped: {} events_written={} events_dropped={}", stats_line(&gateway, &queue), ev.written, ev.dropped);
    store.close().await;
    Ok(())
}

/// Starts the web console on `[web] listen`: the first-start admin user,
/// TLS when asked for, the console's view of the gateway.
async fn start_web(
    cfg: &Config,
    store: &mxguard_store::Store,
    inner: Arc<GatewayInner>,
    queue: Arc<Queue>,
    engines: Arc<crate::engines::Engines>,
    mut listeners: Vec<mxguard_web::Listener>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let w = &cfg.web;
    let listener = tokio::net::TcpListener::bind(&w.listen)
        .await
        .with_context(|| {
            format!(
                "web.listen: cannot listen on {} (set [web] listen = \"\" to turn the console off)",
                w.listen
            )
        })?;
    let addr = listener.local_addr()?;
    crate::web::ensure_first_user(store)
        .await
        .context("web console: creating the first user")?;
    let tls = if w.tls {
        let acc = match (
            w.tls_cert.as_ref().or(cfg.smtp.tls_cert.as_ref()),
            w.tls_key.as_ref().or(cfg.smtp.tls_key.as_ref()),
        ) {
            (Some(c), Some(k)) => {
                mxguard_smtp::tls::acceptor_from_files(Path::new(c), Path::new(k))?
            }
            _ => mxguard_smtp::tls::self_signed_acceptor(
                &cfg.data_dir.join("tls"),
                &cfg.smtp.hostname,
            )?,
        };
        let mut c = (**acc.config()).clone();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(Arc::new(c))
    } else {
        None
    };
    listeners.push(mxguard_web::Listener {
        kind: if w.tls { "web (https)" } else { "web (http)" }.into(),
        address: addr.to_string(),
    });
    let policy = Arc::new(crate::web::ServerPolicy::new(cfg.clone(), inner.clone()));
    let gw = crate::web::ConsoleGateway {
        inner,
        queue,
        engines,
        cfg: cfg.clone(),
        listeners,
        policy,
    };
    let settings = mxguard_web::WebSettings {
        node: cfg.node_id.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        session_lifetime: Duration::from_secs(u64::from(w.session_hours) * 3600),
        secure_cookies: w.tls,
        login_max_failures: w.login_max_failures,
        login_window: Duration::from_secs(w.login_window_secs),
        cache_ttl: Duration::from_secs(w.cache_secs),
    };
    let state = mxguard_web::AppState::new(store.clone(), Arc::new(gw), settings);
    {
        let (st, stop3) = (state.clone(), stop.clone());
        let every = Duration::from_secs(w.warm_secs);
        tokio::spawn(async move {
            tokio::select! {
                _ = stop3.cancelled() => {}
                _ = mxguard_web::keep_warm(st, every) => {}
            }
        });
    }
    let router = mxguard_web::router(state);
    tracing::info!(
        %addr,
        tls = w.tls,
        "web console listening: {}://{addr}/",
        if w.tls { "https" } else { "http" }
    );
    // Expired sessions go away once an hour.
    let s2 = store.clone();
    let stop2 = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop2.cancelled() => return,
                _ = tick.tick() => { let _ = s2.expire_sessions().await; }
            }
        }
    });
    Ok(tokio::spawn(mxguard_web::serve(
        listener,
        router,
        tls,
        stop,
        Duration::from_secs(5),
    )))
}

/// The spam filter from `[spam]`, or `None` (disabled, no model yet, or a
/// model that has learned too little), with a log line saying which.
fn load_spam(cfg: &Config, data: &Path) -> Option<Arc<mxguard_policy::SpamFilter>> {
    if !cfg.spam.enabled {
        return None;
    }
    let path = cfg.spam.model_path(data);
    if !path.exists() {
        tracing::info!(
            "spam filter off: no model at {} (train one with `mxguard spam train --ham DIR --spam DIR`)",
            path.display()
        );
        return None;
    }
    let model = match crate::spam::load_model(&path) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("spam filter off: {e:#}");
            return None;
        }
    };
    let min = cfg.spam.min_trained;
    if model.ham_messages < min || model.spam_messages < min {
        tracing::warn!(
            ham = model.ham_messages,
            spam = model.spam_messages,
            "spam filter off: the model has learned fewer than {min} ham or spam messages"
        );
        return None;
    }
    tracing::info!(
        ham = model.ham_messages,
        spam = model.spam_messages,
        tokens = model.len(),
        required = cfg.spam.required_score,
        "spam filter on"
    );
    let mut f = mxguard_policy::SpamFilter::new(model);
    f.required = cfg.spam.required_score;
    f.bayes_weight = cfg.spam.bayes_weight;
    Some(Arc::new(f))
}

/// How often retention is applied.
const EXPIRE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes quarantine items, events and report counters past their
/// retention: at start, then every hour. Errors are logged and retried at the
/// next round.
async fn expire_loop(store: mxguard_store::Store, cfg: crate::config::StoreConfig) {
    let mut tick = tokio::time::interval(EXPIRE_EVERY);
    loop {
        tick.tick().await;
        let cutoff = |days: u32| mxguard_store::now_secs() - i64::from(days) * 86_400;
        if cfg.quarantine_retention_days > 0 {
            match store.expire(cutoff(cfg.quarantine_retention_days)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("quarantine: {n} items past retention removed"),
                Err(e) => tracing::warn!("quarantine expiry failed: {e}"),
            }
        }
        if cfg.events_retention_days > 0 {
            match store.expire_events(cutoff(cfg.events_retention_days)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("event log: {n} events past retention removed"),
                Err(e) => tracing::warn!("event expiry failed: {e}"),
            }
        }
        if cfg.reports_retention_days > 0 {
            if let Err(e) = store
                .expire_reports(cutoff(cfg.reports_retention_days))
                .await
            {
                tracing::warn!("report counter expiry failed: {e}");
            }
        }
    }
}

fn stats_line(g: &Gateway, q: &Queue) -> String {
    let s = &g.inner.stats;
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (mb_skipped, mb_rescans) = q
        .mailbox_check
        .as_ref()
        .map(|m| (l(&m.scans_skipped), l(&m.rescans)))
        .unwrap_or((0, 0));
    format!(
        "messages={} accepted={} rejected={} quarantined={} dropped={} cleaned={} tagged={} tempfailed={} released={} scans_skipped={} mailbox_scans_skipped={} mailbox_rescans={} delivered={} deferred={} failed={} bounces={}",
        l(&s.messages),
        l(&s.accepted),
        l(&s.rejected),
        l(&s.quarantined),
        l(&s.dropped),
        l(&s.cleaned),
        l(&s.tagged),
        l(&s.tempfailed),
        l(&s.released),
        l(&s.scans_skipped),
        mb_skipped,
        mb_rescans,
        l(&q.stats.delivered),
        l(&q.stats.deferred),
        l(&q.stats.failed),
        l(&q.stats.bounces),
    )
}

/// Reads the spam model again when its file changes (`mxguard spam train`,
/// `spam report`, a release of spam learned as ham), and swaps it in.
async fn watch_spam_model(cfg: Config, data: PathBuf, gateway: Arc<GatewayInner>) {
    if !cfg.spam.enabled {
        return;
    }
    let path = cfg.spam.model_path(&data);
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut last = stamp(&path);
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.spam.reload_check_secs));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        let (c, d) = (cfg.clone(), data.clone());
        if let Ok(f) = tokio::task::spawn_blocking(move || load_spam(&c, &d)).await {
            tracing::info!(on = f.is_some(), "spam model changed: reloaded");
            gateway.set_spam_filter(f);
        }
    }
}

/// Reloads the signatures for every front-end on SIGUSR2 (as clamd does) and,
/// every `check_secs` (0: never), when the files changed. A change is acted
/// on once the files have stayed the same for two seconds (an update still
/// being written is not loaded half-way). A reload that fails keeps the
/// running signatures and is logged; it is tried again when the files change
/// again.
async fn watch_signatures(engines: Arc<crate::engines::Engines>, check_secs: u64) {
    async fn reload(engines: &Arc<crate::engines::Engines>, why: &str) {
        let e = engines.clone();
        match tokio::task::spawn_blocking(move || e.reload()).await {
            Ok(Ok(l)) => tracing::info!(
                count = l.count,
                version = %l.sigs_version,
                "signatures reloaded ({why}): the gateway, milter, mailbox check and clamd socket scan with them now"
            ),
            Ok(Err(e)) => {
                tracing::error!("signatures not reloaded ({why}), the running ones are kept: {e:#}")
            }
            Err(e) => tracing::error!("signature reload failed: {e}"),
        }
    }
    let fingerprint = |e: &Arc<crate::engines::Engines>| {
        let e = e.clone();
        async move {
            tokio::task::spawn_blocking(move || e.fingerprint())
                .await
                .unwrap_or_default()
        }
    };
    #[cfg(unix)]
    let mut usr2 =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2()).ok();
    let mut last = fingerprint(&engines).await;
    let mut tick = tokio::time::interval(Duration::from_secs(check_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        #[cfg(unix)]
        let signalled = async {
            match usr2.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        tokio::select! {
            _ = signalled => {
                reload(&engines, "SIGUSR2").await;
                last = fingerprint(&engines).await;
            }
            _ = tick.tick(), if check_secs > 0 => {
                let now = fingerprint(&engines).await;
                if now == last {
                    continue;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                let settled = fingerprint(&engines).await;
                if settled != now {
                    continue; // still changing: look again at the next tick
                }
                last = settled;
                reload(&engines, "signature files changed").await;
            }
        }
    }
}

/// SIGHUP reads the policy again (the config file's `[policy]`, or the
/// policy file) and swaps it in; a policy with errors is logged with every
/// error and the running one is kept.
async fn reload_policy_on_hangup(cfg: Config, gateway: Arc<GatewayInner>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            let fresh = match &cfg.origin {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()));
                    text.and_then(|t| {
                        let mut c: Config = toml::from_str(&t)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                        c.source = t;
                        c.origin = Some(path.clone());
                        Ok(c)
                    })
                }
                None => Ok(cfg.clone()),
            };
            match fresh.and_then(|c| c.load_policy()) {
                Ok(p) => {
                    tracing::info!(
                        rules = p.rule_names().count(),
                        policies = p.policy_names().count(),
                        "policy reloaded (SIGHUP)"
                    );
                    gateway.set_policy(Arc::new(p));
                }
                Err(e) => tracing::error!("policy not reloaded, the running one is kept: {e:#}"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (cfg, gateway);
        std::future::pending::<()>().await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
