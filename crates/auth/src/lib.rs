//! mxguard's sender authentication and DNS reputation: SPF, DKIM, DMARC
//! and ARC through `mail-auth`, DNSBL for the client IP and URIBL for the
//! URL domains, through one cached resolver. The only crate with DNS I/O
//! for this; its results are plain data ([`mxguard_policy::AuthResults`])
//! that the rules read from `MessageFacts::auth`.
//!
//! ```text
//! AuthConfig ──Authenticator::new──▶ Authenticator (share behind an Arc)
//! AuthInput (client IP, HELO, MAIL FROM, message, URL domains)
//!     ──check / check_blocking──▶ AuthResults (+ Authentication-Results value in .header)
//! ```
//!
//! # What runs
//! All at once, under one time budget (`time_budget_ms`):
//! - **SPF** of the MAIL FROM domain; for the null sender `<>`, of the HELO
//!   name (RFC 7208 §2.3).
//! - **DKIM**: every signature, one result each.
//! - **ARC**: the chain's result (`none` without ARC sets).
//! - **DNSBL**: the client IP on each zone (each zone asked once).
//! - **URIBL**: each URL domain (at most `max_uribl_domains`) on each zone.
//!
//! Then **DMARC** of the From domain from the SPF and DKIM outputs, with the
//! policy in effect (`p=`, `sp=`/`np=` for subdomains, `t=y` one level
//! lower).
//!
//! # Guarantees
//! - Never panics (a panic inside a verifier is caught and the results are
//!   `temperror`), never blocks longer than the time budget plus a few
//!   milliseconds, never reports `pass` for something it could not verify:
//!   a DNS timeout or failure is `temperror` (SPF, DKIM, DMARC, ARC) or an
//!   entry in `errors` (lists, which then count as not listed); a list's
//!   error codes (127.255.255.0/24) are never listings.
//! - **Skipped clients**: for clients in `trusted_networks`, and (with
//!   `skip_private`, the default) loopback, private, link-local and shared
//!   addresses, SPF, DMARC and the DNSBL are not run (their results are
//!   `None` and `skipped` says why): such mail comes from your own hosts,
//!   where SPF is meaningless and a DMARC fail of your own unsigned mail
//!   would quarantine it. DKIM, ARC and the URIBL still run. Without a
//!   client IP the same three are skipped.
//!
//! # Caching
//! Parsed records (SPF, DKIM keys, DMARC, and the A/AAAA/MX/PTR answers SPF
//! mechanisms need) sit in bounded TTL caches ([`cache`]); raw answers,
//! negative ones included, in the resolver's cache (`cache_size` entries,
//! TTLs clamped to `cache_max_ttl_secs`, negative answers kept at least
//! `cache_negative_ttl_secs`). Both live as long as the `Authenticator`.

pub mod cache;
pub mod config;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::FutureExt;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use ipnet::IpNet;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput,
    DmarcResult, MessageAuthenticator, SpfOutput, SpfResult,
};
use tokio::time::timeout_at;

pub use config::{AuthConfig, AuthConfigError, ListConfig};
pub use mxguard_policy::auth::{
    AuthResult, AuthResults, DkimCheck, DmarcCheck, DmarcPolicy, DnsListing, SpfCheck, SpfIdentity,
    UriListing,
};

use cache::Caches;
use config::{is_error_code, List};

/// What a message is checked with.
#[derive(Debug, Clone, Copy)]
pub struct AuthInput<'a> {
    /// The SMTP client's address (`None`: unknown; SPF, DMARC and DNSBL
    /// are then skipped).
    pub client_ip: Option<IpAddr>,
    /// HELO/EHLO name as given.
    pub helo: &'a str,
    /// MAIL FROM address without brackets (empty for `<>`).
    pub mail_from: &'a str,
    /// The message as received (headers and body).
    pub message: &'a [u8],
    /// URL domains for the URIBL, e.g. `MessageFacts::url_domains`
    /// (registrable domains); at most `max_uribl_domains` are asked.
    pub url_domains: &'a [String],
}

/// Why an authenticator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid auth config: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Config(Vec<AuthConfigError>),
    #[error("no tokio runtime: build the authenticator inside one")]
    NoRuntime,
    #[error("resolver: {0}")]
    Resolver(String),
}

/// Cache and lookup figures since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Hits and misses of the parsed-record caches.
    pub cache_hits: u64,
    pub cache_misses: u64,
}

/// The checks, with their resolver and caches. `Send + Sync`: build once
/// (inside a tokio runtime), share behind an `Arc`.
pub struct Authenticator {
    cfg: AuthConfig,
    hostname: String,
    resolver: MessageAuthenticator,
    caches: Caches,
    trusted: Vec<IpNet>,
    dnsbl: Vec<List>,
    uribl: Vec<List>,
    handle: tokio::runtime::Handle,
}

/// Most DKIM signatures verified per message (the first ones in the
/// header; the rest are not reported).
pub const MAX_DKIM_SIGNATURES: usize = 10;

/// Most bytes of a MAIL FROM, HELO or domain we pass on to lookups.
const MAX_NAME: usize = 255;

impl Authenticator {
    /// Builds the resolver and caches. `hostname` is this gateway's name:
    /// the authserv-id of the `Authentication-Results` header and SPF's
    /// `%{r}`. Must be called inside a tokio runtime (its handle is kept
    /// for [`Authenticator::check_blocking`]).
    pub fn new(cfg: &AuthConfig, hostname: &str) -> Result<Authenticator, AuthError> {
        let (trusted, dnsbl, uribl) = cfg.prepare("auth").map_err(AuthError::Config)?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| AuthError::NoRuntime)?;
        let (rc, mut opts) = if cfg.nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| AuthError::Resolver(e.to_string()))?
        } else {
            let servers = cfg
                .nameservers
                .iter()
                .map(|a| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = a.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = a.port();
                    NameServerConfig::new(a.ip(), true, vec![udp, tcp])
                })
                .collect();
            (
                ResolverConfig::from_parts(None, Vec::new(), servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = cfg.timeout();
        opts.attempts = cfg.dns_attempts.max(1);
        opts.cache_size = cfg.cache_size as u64;
        opts.positive_max_ttl = Some(Duration::from_secs(cfg.cache_max_ttl_secs));
        opts.negative_max_ttl = Some(Duration::from_secs(cfg.cache_max_ttl_secs));
        opts.negative_min_ttl = Some(Duration::from_secs(
            cfg.cache_negative_ttl_secs.min(cfg.cache_max_ttl_secs),
        ));
        // Names are always absolute: no search domains, one query each.
        opts.ndots = 0;
        let resolver = TokioResolver::builder_with_config(rc, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| AuthError::Resolver(e.to_string()))?;
        Ok(Authenticator {
            cfg: cfg.clone(),
            hostname: sanitize_hostname(hostname),
            resolver: MessageAuthenticator(resolver),
            caches: Caches::new(cfg.cache_size, Duration::from_secs(cfg.cache_max_ttl_secs)),
            trusted,
            dnsbl,
            uribl,
            handle,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    pub fn stats(&self) -> AuthStats {
        let (h, m) = self.caches.stats();
        AuthStats {
            cache_hits: h,
            cache_misses: m,
        }
    }

    /// Empties every cache (the resolver's too).
    pub fn clear_caches(&self) {
        self.caches.clear();
        self.resolver.0.clear_cache();
    }

    /// The authserv-id of the headers it makes (the hostname given to
    /// [`Authenticator::new`], or `localhost`).
    pub fn authserv_id(&self) -> &str {
        &self.hostname
    }

    /// Whether an `Authentication-Results` value arriving with a message
    /// claims to come from this gateway (its authserv-id is ours). Such a
    /// header from outside is a forgery: RFC 8601 §5 asks to remove it
    /// before adding our own.
    pub fn is_own_results(&self, value: &str) -> bool {
        authserv_id_of(value).is_some_and(|id| id.eq_ignore_ascii_case(&self.hostname))
    }

    /// Why SPF, DMARC and DNSBL are skipped for this client, if they are.
    pub fn skip_reason(&self, ip: Option<IpAddr>) -> Option<&'static str> {
        let Some(ip) = ip else {
            return Some("no client address");
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.trusted.iter().any(|n| n.contains(&ip)) {
            return Some("trusted client");
        }
        if self.cfg.skip_private && is_private(ip) {
            return Some("private client address");
        }
        None
    }

    /// Runs every enabled check on a message (see the crate doc). Never
    /// panics; returns within the time budget (plus scheduling). The DKIM
    /// body hashes are computed inline (SHA-256 over the body, a few ms per
    /// MB): for big messages prefer [`Authenticator::check_blocking`] from
    /// a blocking thread so the runtime's workers stay free.
    pub async fn check(&self, input: &AuthInput<'_>) -> AuthResults {
        let deadline = tokio::time::Instant::now() + self.cfg.budget();
        match AssertUnwindSafe(self.check_inner(input, deadline))
            .catch_unwind()
            .await
        {
            Ok(r) => r,
            Err(_) => {
                tracing::error!("auth check panicked; results are temperror");
                self.all_temperror(input, "internal error")
            }
        }
    }

    /// [`Authenticator::check`] for synchronous code: blocks the calling
    /// thread on the runtime the authenticator was built in.
    ///
    /// Call it from a thread outside the runtime's async workers, such as
    /// a `tokio::task::spawn_blocking` closure (where the gateway's
    /// evaluation runs) or a plain thread; the runtime must be a
    /// multi-thread one. Misused (called from inside an async task, or
    /// built in a current-thread runtime) it neither panics nor hangs: it
    /// logs the mistake and returns `temperror` results.
    pub fn check_blocking(&self, input: &AuthInput<'_>) -> AuthResults {
        let handle = self.handle.clone();
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            // Its I/O and timers are driven only by its own block_on: the
            // lookups (and the budget's timer) could wait forever.
            tracing::error!("Authenticator::check_blocking needs a multi-thread runtime");
            return self.all_temperror(input, "needs a multi-thread runtime");
        }
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| handle.block_on(self.check(input))));
        match run {
            Ok(r) => r,
            Err(_) => {
                tracing::error!(
                    "Authenticator::check_blocking called from an async task; use check().await"
                );
                self.all_temperror(input, "called from an async context")
            }
        }
    }

    /// Every enabled method `temperror`.
    fn all_temperror(&self, input: &AuthInput<'_>, why: &str) -> AuthResults {
        let skip = self.skip_reason(input.client_ip);
        let t = AuthResult::TempError;
        AuthResults {
            spf: (self.cfg.spf && skip.is_none()).then(|| SpfCheck {
                result: t,
                domain: String::new(),
                identity: SpfIdentity::MailFrom,
            }),
            dkim: self.cfg.dkim.then(|| {
                vec![DkimCheck {
                    result: t,
                    domain: String::new(),
                    selector: String::new(),
                }]
            }),
            arc: self.cfg.arc.then_some(t),
            dmarc: (self.cfg.dmarc && skip.is_none()).then(|| DmarcCheck {
                result: t,
                domain: String::new(),
                policy: None,
            }),
            errors: vec![why.to_string()],
            skipped: skip.map(str::to_string),
            ..Default::default()
        }
    }

    async fn check_inner(
        &self,
        input: &AuthInput<'_>,
        deadline: tokio::time::Instant,
    ) -> AuthResults {
        let skip = self.skip_reason(input.client_ip);
        let ip = input.client_ip.filter(|_| skip.is_none());
        let helo = clip(input.helo.trim().trim_end_matches('.'));
        let mail_from = clip(input.mail_from.trim().trim_matches(['<', '>']));
        let mut parsed = if self.cfg.dkim || self.cfg.arc || self.cfg.dmarc {
            AuthenticatedMessage::parse(input.message)
        } else {
            None
        };
        if let Some(m) = &mut parsed {
            // Each signature may cost a key lookup: a message with hundreds
            // would spend the budget on them.
            m.dkim_headers.truncate(MAX_DKIM_SIGNATURES);
        }
        let from_domain = parsed
            .as_ref()
            .and_then(|m| single_from_domain(m.froms()))
            .unwrap_or_default();

        // SPF, DKIM, ARC and the lists at once.
        let spf_fut = async {
            let ip = ip?;
            if !self.cfg.spf {
                return None;
            }
            Some(self.spf(ip, helo, mail_from, deadline).await)
        };
        let dkim_fut = async {
            if !self.cfg.dkim && !self.cfg.dmarc {
                return None;
            }
            let m = parsed.as_ref()?;
            Some(bounded(deadline, self.resolver.verify_dkim(self.caches.params(m))).await)
        };
        let arc_fut = async {
            if !self.cfg.arc {
                return None;
            }
            let m = parsed.as_ref()?;
            Some(bounded(deadline, self.resolver.verify_arc(self.caches.params(m))).await)
        };
        let dnsbl_fut = async {
            match ip {
                Some(ip) if !self.dnsbl.is_empty() => {
                    bounded(deadline, self.dnsbl(ip)).await.unwrap_or_else(|| {
                        (Vec::new(), vec!["dnsbl: time budget exceeded".to_string()])
                    })
                }
                _ => (Vec::new(), Vec::new()),
            }
        };
        let uribl_fut = async {
            if self.uribl.is_empty() || input.url_domains.is_empty() {
                return (Vec::new(), Vec::new());
            }
            bounded(deadline, self.uribl(input.url_domains))
                .await
                .unwrap_or_else(|| (Vec::new(), vec!["uribl: time budget exceeded".to_string()]))
        };
        let (spf, dkim, arc, (dnsbl, mut errors), (uribl, uerrors)) =
            tokio::join!(spf_fut, dkim_fut, arc_fut, dnsbl_fut, uribl_fut);
        errors.extend(uerrors);

        // mail-auth outputs standing in for what did not finish in time.
        let dkim_timed_out = matches!(dkim, Some(None));
        let dkim_out: Option<Vec<DkimOutput<'_>>> = dkim.map(|d| {
            d.unwrap_or_else(|| {
                vec![DkimOutput::temp_err(mail_auth::Error::Dns(
                    mail_auth::DnsError::Resolver("time budget exceeded".into()),
                ))]
            })
        });
        let arc_out: Option<ArcOutput<'_>> = arc.map(|a| {
            a.unwrap_or_else(|| {
                ArcOutput::default().with_result(DkimResult::TempError(mail_auth::Error::Dns(
                    mail_auth::DnsError::Resolver("time budget exceeded".into()),
                )))
            })
        });

        // DMARC, from SPF and DKIM.
        let dmarc_out: Option<DmarcOutput> = match (&parsed, &dkim_out) {
            // (Without a single From domain mail-auth answers `none`.)
            (Some(m), Some(dk)) if self.cfg.dmarc && ip.is_some() => {
                let spf_for_dmarc = spf
                    .as_ref()
                    .map(|(o, _)| o.clone())
                    .unwrap_or_else(|| SpfOutput::new(String::new()).with_result(SpfResult::None));
                let spf_domain = if mail_from.is_empty() {
                    helo.to_string()
                } else {
                    domain_of(mail_from).to_string()
                };
                if dkim_timed_out {
                    // DKIM did not finish: DMARC can neither pass nor fail.
                    // (An SPF temperror is mail-auth's to weigh: an aligned
                    // DKIM pass still passes.)
                    Some(temp_dmarc(&from_domain))
                } else {
                    let p = DmarcParameters::new(m, dk, &spf_domain, &spf_for_dmarc);
                    Some(
                        bounded(deadline, self.resolver.verify_dmarc(self.caches.params(p)))
                            .await
                            .unwrap_or_else(|| temp_dmarc(&from_domain)),
                    )
                }
            }
            _ => None,
        };

        // The header (RFC 8601), with mail-auth's wording.
        let mut ar = AuthenticationResults::new(&self.hostname);
        if let (Some((spf_out, identity)), Some(ip)) = (&spf, ip) {
            ar = match identity {
                SpfIdentity::MailFrom => ar.with_spf_mailfrom_result(spf_out, ip, mail_from, helo),
                SpfIdentity::Helo => ar.with_spf_ehlo_result(spf_out, ip, helo),
            };
        }
        if self.cfg.dkim {
            let d = dkim_out.as_deref().unwrap_or_default();
            if d.is_empty() {
                ar =
                    ar.with_dkim_result(&DkimOutput::neutral(mail_auth::Error::NoHeadersFound), "");
            } else {
                ar = ar.with_dkim_results(d, &from_domain);
            }
        }
        if let (Some(a), Some(cip)) = (&arc_out, input.client_ip) {
            ar = ar.with_arc_result(a, cip);
        }
        if let Some(d) = &dmarc_out {
            ar = ar.with_dmarc_result(d);
        }
        let mut header = ar.to_string();
        // mail-auth writes "dkim=neutral" for an unsigned message; RFC 8601
        // says "none".
        header = header
            .replace(
                "dkim=neutral (no headers found)",
                "dkim=none (message not signed)",
            )
            .replace(
                "dkim=neutral (body hash did not verify)",
                "dkim=fail (body hash did not verify)",
            );

        AuthResults {
            spf: spf.as_ref().map(|(o, identity)| SpfCheck {
                result: spf_result(o.result()),
                domain: o.domain().to_string(),
                identity: *identity,
            }),
            // A message mail-auth cannot parse has no signature to verify.
            dkim: self.cfg.dkim.then(|| {
                dkim_out
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(|o| DkimCheck {
                        result: dkim_result(o.result()),
                        domain: o
                            .signature()
                            .map(|s| s.d.to_ascii_lowercase())
                            .unwrap_or_default(),
                        selector: o.signature().map(|s| s.s.clone()).unwrap_or_default(),
                    })
                    .collect()
            }),
            arc: arc_out.as_ref().map(|a| dkim_result(a.result())),
            dmarc: dmarc_out.as_ref().map(|d| DmarcCheck {
                result: dmarc_result(&d.result()),
                domain: if d.domain().is_empty() {
                    from_domain.clone()
                } else {
                    d.domain().to_string()
                },
                policy: d.dmarc_record().map(|_| match d.policy() {
                    Policy::Reject => DmarcPolicy::Reject,
                    Policy::Quarantine => DmarcPolicy::Quarantine,
                    Policy::None | Policy::Unspecified => DmarcPolicy::None,
                }),
            }),
            dnsbl,
            uribl,
            errors,
            skipped: skip.map(str::to_string),
            header,
        }
    }

    /// SPF of MAIL FROM, or of HELO for `<>`.
    async fn spf(
        &self,
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
        deadline: tokio::time::Instant,
    ) -> (SpfOutput, SpfIdentity) {
        let (identity, domain) = if mail_from.is_empty() {
            (SpfIdentity::Helo, helo)
        } else {
            (SpfIdentity::MailFrom, domain_of(mail_from))
        };
        // No domain to ask (HELO an address literal, MAIL FROM without
        // one): SPF has nothing to say.
        if !plausible_domain(domain) {
            return (
                SpfOutput::new(domain.to_string()).with_result(SpfResult::None),
                identity,
            );
        }
        let params = match identity {
            SpfIdentity::Helo => SpfParameters::verify_ehlo(ip, helo, &self.hostname),
            SpfIdentity::MailFrom => {
                SpfParameters::verify_mail_from(ip, helo, &self.hostname, mail_from)
            }
        };
        let out = bounded(
            deadline,
            self.resolver.verify_spf(self.caches.params(params)),
        )
        .await
        .unwrap_or_else(|| {
            SpfOutput::new(domain.to_ascii_lowercase()).with_result(SpfResult::TempError)
        });
        (out, identity)
    }

    /// The A answers of `name`: `Ok(None)` for "no such name / no A".
    async fn lookup_a(&self, name: &str) -> Result<Option<Vec<Ipv4Addr>>, String> {
        match self.resolver.0.ipv4_lookup(name).await {
            Ok(l) => Ok(Some(
                l.answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(a.0),
                        _ => None,
                    })
                    .collect(),
            )),
            Err(e) if e.is_no_records_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Asks each distinct zone of `lists` for `names(zone)`; returns the
    /// listings per list entry and the errors.
    async fn ask_zones(
        &self,
        lists: &[List],
        query: &str,
        kind: &str,
    ) -> (Vec<(usize, Ipv4Addr)>, Vec<String>) {
        let mut zones: Vec<&str> = Vec::new();
        for l in lists {
            if !zones.contains(&l.zone.as_str()) {
                zones.push(&l.zone);
            }
        }
        let answers = join_all(zones.iter().map(|z| async move {
            let name = format!("{query}.{z}.");
            (*z, self.lookup_a(&name).await)
        }))
        .await;
        let mut hits = Vec::new();
        let mut errors = Vec::new();
        for (zone, ans) in answers {
            match ans {
                Ok(Some(addrs)) => {
                    if let Some(code) = addrs.iter().find(|a| is_error_code(**a)) {
                        errors.push(format!("{kind} {zone}: error code {code}"));
                        continue;
                    }
                    for (i, l) in lists.iter().enumerate() {
                        if l.zone != zone {
                            continue;
                        }
                        if let Some(a) = addrs.iter().find(|a| l.matches(**a)) {
                            hits.push((i, *a));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(format!("{kind} {zone}: {e}")),
            }
        }
        hits.sort_by_key(|(i, _)| *i);
        (hits, errors)
    }

    async fn dnsbl(&self, ip: IpAddr) -> (Vec<DnsListing>, Vec<String>) {
        let q = reversed(ip);
        let (hits, errors) = self.ask_zones(&self.dnsbl, &q, "dnsbl").await;
        let listings = hits
            .into_iter()
            .map(|(i, answer)| {
                let l = &self.dnsbl[i];
                DnsListing {
                    zone: l.zone.clone(),
                    rule: l.rule.clone(),
                    answer,
                    score: l.score,
                }
            })
            .collect();
        (listings, errors)
    }

    async fn uribl(&self, domains: &[String]) -> (Vec<UriListing>, Vec<String>) {
        let mut asked: Vec<String> = Vec::new();
        for d in domains {
            if asked.len() >= self.cfg.max_uribl_domains {
                break;
            }
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if plausible_domain(&d) && !asked.contains(&d) {
                asked.push(d);
            }
        }
        let per_domain = join_all(
            asked
                .iter()
                .map(|d| async move { (d, self.ask_zones(&self.uribl, d, "uribl").await) }),
        )
        .await;
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (d, (hits, errs)) in per_domain {
            for (i, answer) in hits {
                let l = &self.uribl[i];
                out.push(UriListing {
                    domain: d.clone(),
                    zone: l.zone.clone(),
                    rule: l.rule.clone(),
                    answer,
                    score: l.score,
                });
            }
            for e in errs {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
        (out, errors)
    }
}

/// `fut` until `deadline`; `None` when time ran out.
async fn bounded<T>(deadline: tokio::time::Instant, fut: impl Future<Output = T>) -> Option<T> {
    timeout_at(deadline, fut).await.ok()
}

fn temp_dmarc(domain: &str) -> DmarcOutput {
    let e = || {
        DmarcResult::TempError(mail_auth::Error::Dns(mail_auth::DnsError::Resolver(
            "time budget exceeded".into(),
        )))
    };
    DmarcOutput::new(domain.to_string())
        .with_spf_result(e())
        .with_dkim_result(e())
}

fn spf_result(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn dkim_result(r: &DkimResult) -> AuthResult {
    match r {
        DkimResult::Pass => AuthResult::Pass,
        // mail-auth says neutral; RFC 6376 §6.1.3 and RFC 8601 say fail.
        DkimResult::Neutral(mail_auth::Error::Dkim(
            mail_auth::dkim::DkimError::FailedBodyHashMatch,
        )) => AuthResult::Fail,
        DkimResult::Neutral(_) => AuthResult::Neutral,
        DkimResult::Fail(_) => AuthResult::Fail,
        DkimResult::PermError(_) => AuthResult::PermError,
        DkimResult::TempError(_) => AuthResult::TempError,
        DkimResult::None => AuthResult::None,
    }
}

fn dmarc_result(r: &DmarcResult) -> AuthResult {
    match r {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}

/// The one From domain (lowercase), when all From addresses share it.
fn single_from_domain(froms: &[String]) -> Option<String> {
    let mut dom: Option<String> = None;
    for f in froms {
        let d = domain_of(f).to_ascii_lowercase();
        if d.is_empty() {
            continue;
        }
        match &dom {
            None => dom = Some(d),
            Some(x) if *x == d => {}
            Some(_) => return None,
        }
    }
    dom
}

fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Cuts to [`MAX_NAME`] bytes at a character boundary.
fn clip(s: &str) -> &str {
    if s.len() <= MAX_NAME {
        return s;
    }
    let mut cut = MAX_NAME;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// A domain worth a DNS query: ASCII labels of 1-63 characters, at least
/// two, at most 253 bytes.
fn plausible_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The authserv-id: a dot-atom, or `localhost`.
fn sanitize_hostname(h: &str) -> String {
    let h = h.trim();
    if !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        h.to_string()
    } else {
        "localhost".to_string()
    }
}

/// The authserv-id of an `Authentication-Results` value: the first token,
/// comments (`(...)`, not nested) and folding skipped.
pub fn authserv_id_of(value: &str) -> Option<&str> {
    let mut rest = value.trim_start();
    while let Some(r) = rest.strip_prefix('(') {
        rest = r.split_once(')')?.1.trim_start();
    }
    let end = rest
        .find(|c: char| c == ';' || c == '(' || c.is_whitespace())
        .unwrap_or(rest.len());
    let id = rest[..end].trim_matches('"');
    (!id.is_empty()).then_some(id)
}

/// The DNSBL name of an address: reversed octets or nibbles.
pub fn reversed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64);
            for b in v6.octets().iter().rev() {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            }
            s
        }
    }
}

/// Loopback, private (RFC 1918, ULA), link-local, shared (100.64/10),
/// unspecified and broadcast addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert_eq!(reversed("192.0.2.1".parse().unwrap()), "1.2.0.192");
        assert!(reversed("2001:db8::1".parse().unwrap())
            .starts_with("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"));
        for p in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["192.0.2.1", "8.8.8.8", "2001:db8::1", "100.128.0.1"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
        assert!(plausible_domain("a.example"));
        assert!(!plausible_domain("[192.0.2.1]"));
        assert!(!plausible_domain("localhost"));
        assert_eq!(
            single_from_domain(&["a@X.test".into(), "b@x.test".into()]),
            Some("x.test".into())
        );
        assert_eq!(
            single_from_domain(&["a@x.test".into(), "b@y.test".into()]),
            None
        );
        assert_eq!(sanitize_hostname("mx.example.com"), "mx.example.com");
        assert_eq!(sanitize_hostname("bad host;"), "localhost");
        assert_eq!(
            authserv_id_of("mx.example.com; spf=pass"),
            Some("mx.example.com")
        );
        assert_eq!(
            authserv_id_of(" (c) MX.example.com 1;\r\n\tnone"),
            Some("MX.example.com")
        );
        assert_eq!(authserv_id_of("mx.example.com"), Some("mx.example.com"));
        assert_eq!(authserv_id_of("  ;x"), None);
        assert_eq!(authserv_id_of("(unclosed"), None);
    }
}
