//! The console's pages (server-rendered HTML) and the data functions the
//! JSON API shares with them.

use crate::auth::{self, field, fields, parse_form, Principal, Role};
use crate::html::{self, esc, num, page, url_encode};
use crate::{AppState, Counter};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use mxguard_store::{
    AddressKind, EngineCount, EventQuery, Granularity, LatencyStats, QuarantineQuery,
    QuarantineSummary, ReportQuery, StoreError, StoredEvent, ThreatCount, VolumeRow,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// An error shown as a page.
pub struct PageError(pub StatusCode, pub String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.0, Html(html::error_page(self.0, &self.1))).into_response()
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        store_error(e)
    }
}

fn store_error(e: StoreError) -> PageError {
    match e {
        StoreError::NotFound(_) => PageError(StatusCode::NOT_FOUND, e.to_string()),
        StoreError::Invalid(_) => PageError(StatusCode::BAD_REQUEST, e.to_string()),
        StoreError::Unavailable(_) => PageError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        _ => {
            tracing::warn!("console: {e}");
            PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

type PageResult = Result<Response, PageError>;

/// Query pairs of a request.
pub fn query(q: &RawQuery) -> Vec<(String, String)> {
    q.0.as_deref()
        .map(|s| parse_form(s.as_bytes()))
        .unwrap_or_default()
}

fn nonempty(pairs: &[(String, String)], k: &str) -> Option<String> {
    field(pairs, k)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

// ------------------------------------------------------------------ times

use mxguard_store::parse_time;

fn time_filter(pairs: &[(String, String)], k: &str, now: i64) -> Result<Option<i64>, String> {
    nonempty(pairs, k)
        .map(|v| parse_time(&v, now).map_err(|e| format!("{k}: {e}")))
        .transpose()
}

// ------------------------------------------------------------ dashboard

/// Everything the dashboard, its API and `/metrics` show.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub hours: i64,
    pub since: i64,
    pub until: i64,
    pub messages: u64,
    /// Messages whose verdict was not `clean`.
    pub detections: u64,
    pub by_verdict: Vec<(String, u64)>,
    pub by_action: Vec<(String, u64)>,
    pub volume: Vec<VolumeRow>,
    pub top_threats: Vec<ThreatCount>,
    pub top_senders: Vec<mxguard_store::AddressCount>,
    pub engines: Vec<EngineCount>,
    pub latency: LatencyStats,
    /// Spool entries waiting for delivery.
    pub queue_size: u64,
    /// Quarantine items not released.
    pub quarantine_held: u64,
    /// Quarantined in this period.
    pub quarantined_in_period: u64,
    /// Process counters since start.
    pub counters: Vec<Counter>,
    pub uptime_secs: u64,
    /// How long the queries took.
    pub elapsed_ms: f64,
    /// Age of the store's numbers when they came from the cache (0: fresh).
    pub cached_secs: u64,
}

/// The dashboard's numbers for the last `hours` hours. The store queries
/// run concurrently, each reading only the pre-aggregated counters.
async fn dash_store(state: &AppState, hours: i64) -> Result<DashStore, StoreError> {
    let rq = ReportQuery {
        top: 10,
        ..ReportQuery::last_hours(hours)
    };
    let store = &state.store;
    let held_q = QuarantineQuery {
        released: Some(false),
        ..Default::default()
    };
    let period_q = QuarantineQuery {
        since: Some(rq.since),
        ..Default::default()
    };
    let (volume, top_threats, engines, top_senders, latency, held, in_period) = tokio::try_join!(
        store.volume(&rq),
        store.top_threats(&rq),
        store.engine_detections(&rq),
        store.top_addresses(&rq, AddressKind::Sender),
        store.latency(&rq),
        store.count(&held_q),
        store.count(&period_q),
    )?;
    Ok(DashStore {
        since: rq.since,
        until: rq.until,
        volume,
        top_threats,
        engines,
        top_senders,
        latency,
        held,
        in_period,
    })
}

/// The store's part of the dashboard (cached, see [`crate::QueryCache`]).
struct DashStore {
    since: i64,
    until: i64,
    volume: Vec<VolumeRow>,
    top_threats: Vec<ThreatCount>,
    engines: Vec<EngineCount>,
    top_senders: Vec<mxguard_store::AddressCount>,
    latency: LatencyStats,
    held: u64,
    in_period: u64,
}

/// Computes the dashboard's store numbers for `hours` now and keeps them for
/// `keep` (see [`crate::keep_warm`]).
pub async fn warm_dashboard(
    state: &AppState,
    hours: i64,
    keep: std::time::Duration,
) -> Result<(), StoreError> {
    let hours = hours.clamp(1, 24 * 400);
    let ds = std::sync::Arc::new(dash_store(state, hours).await?);
    state.cache.put_for(format!("dash:{hours}"), ds, keep);
    Ok(())
}

pub async fn dashboard_data(state: &AppState, hours: i64) -> Result<Dashboard, StoreError> {
    let t0 = std::time::Instant::now();
    let hours = hours.clamp(1, 24 * 400);
    let key = format!("dash:{hours}");
    let (ds, age) = match state.cache.get::<DashStore>(&key) {
        Some(hit) => hit,
        None => {
            let ds = std::sync::Arc::new(dash_store(state, hours).await?);
            state.cache.put(key, ds.clone());
            (ds, std::time::Duration::ZERO)
        }
    };
    let DashStore {
        since,
        until,
        ref volume,
        ref top_threats,
        ref engines,
        ref top_senders,
        ref latency,
        held,
        in_period,
    } = *ds;
    let (volume, top_threats, engines, top_senders, latency) = (
        volume.clone(),
        top_threats.clone(),
        engines.clone(),
        top_senders.clone(),
        latency.clone(),
    );
    let rq = ReportQuery {
        since,
        until,
        ..ReportQuery::last_hours(hours)
    };
    let cached_secs = age.as_secs();
    let mut by_verdict: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    let mut messages = 0;
    for v in &volume {
        *by_verdict.entry(v.verdict.clone()).or_default() += v.messages;
        *by_action.entry(v.action.clone()).or_default() += v.messages;
        messages += v.messages;
    }
    let ranked = |m: BTreeMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let detections = by_verdict
        .iter()
        .filter(|(k, _)| k.as_str() != "clean")
        .map(|(_, v)| v)
        .sum();
    Ok(Dashboard {
        hours,
        since: rq.since.div_euclid(3600) * 3600,
        until: rq.until,
        messages,
        detections,
        by_verdict: ranked(by_verdict),
        by_action: ranked(by_action),
        volume,
        top_threats,
        top_senders,
        engines,
        latency,
        queue_size: state.gateway.queue_size(),
        quarantine_held: held,
        quarantined_in_period: in_period,
        counters: state.gateway.counters(),
        uptime_secs: state.started.elapsed().as_secs(),
        elapsed_ms: t0.elapsed().as_secs_f64() * 1000.0,
        cached_secs,
    })
}

/// The volume chart: one bar per hour (or day), stacked by verdict.
fn volume_chart(volume: &[VolumeRow], since: i64, until: i64, unit: i64) -> String {
    let start = since.div_euclid(unit) * unit;
    let n = ((until - start + unit - 1) / unit).clamp(1, 2000) as usize;
    let slots: Vec<i64> = (0..n).map(|i| start + i as i64 * unit).collect();
    let mut series: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for v in volume {
        let i = ((v.start - start) / unit) as usize;
        if i < n {
            series
                .entry(v.verdict.clone())
                .or_insert_with(|| vec![0; n])[i] += v.messages;
        }
    }
    // Clean first (at the bottom), then the rest.
    let mut s: Vec<(String, Vec<u64>)> = series.into_iter().collect();
    s.sort_by_key(|(k, _)| (k != "clean", k.clone()));
    html::stacked_bars(&slots, &s, |t| {
        let f = html::time(t);
        if unit >= 86_400 {
            f[5..10].to_string()
        } else {
            f[11..16].to_string()
        }
    })
}

pub async fn dashboard(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let hours: i64 = field(&pairs, "hours")
        .and_then(|h| h.parse().ok())
        .unwrap_or(24);
    let d = dashboard_data(&state, hours).await?;
    let mut b = String::new();
    let _ = write!(
        b,
        "<div id=\"dash\" data-refresh=\"30\"><p class=\"toolbar\">Last: "
    );
    for (h, l) in [
        (1, "hour"),
        (24, "24 hours"),
        (168, "7 days"),
        (720, "30 days"),
    ] {
        let cls = if h == d.hours {
            " class=\"active\""
        } else {
            ""
        };
        let _ = write!(b, "<a href=\"/?hours={h}\"{cls}>{l}</a> ");
    }
    let _ = write!(
        b,
        "<span class=\"muted\">auto-refresh every 30 s · {}</span></p>",
        if d.cached_secs > 0 || d.elapsed_ms < 0.05 {
            format!("numbers from {} s ago", d.cached_secs)
        } else {
            format!("queried in {:.1} ms", d.elapsed_ms)
        }
    );
    let tile = |b: &mut String, label: &str, value: String, cls: &str| {
        let _ = write!(
            b,
            "<div class=\"tile {cls}\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
            esc(&value),
            esc(label)
        );
    };
    b.push_str("<div class=\"tiles\">");
    tile(&mut b, "messages", num(d.messages), "");
    tile(&mut b, "detections", num(d.detections), "bad");
    tile(
        &mut b,
        "quarantined in period",
        num(d.quarantined_in_period),
        "",
    );
    tile(&mut b, "held in quarantine", num(d.quarantine_held), "");
    tile(&mut b, "queue (spool entries)", num(d.queue_size), "");
    tile(
        &mut b,
        "scan latency p50 / p95",
        format!(
            "{} / {}",
            html::micros(d.latency.p50_us as f64),
            html::micros(d.latency.p95_us as f64)
        ),
        "",
    );
    b.push_str("</div>");
    let unit = if d.hours > 24 * 14 { 86_400 } else { 3600 };
    let vol = if unit == 3600 {
        d.volume.clone()
    } else {
        let mut m: BTreeMap<(i64, String, String), (u64, u64)> = BTreeMap::new();
        for v in &d.volume {
            let e = m
                .entry((
                    v.start.div_euclid(unit) * unit,
                    v.verdict.clone(),
                    v.action.clone(),
                ))
                .or_default();
            e.0 += v.messages;
            e.1 += v.bytes;
        }
        m.into_iter()
            .map(|((start, verdict, action), (messages, bytes))| VolumeRow {
                start,
                verdict,
                action,
                messages,
                bytes,
            })
            .collect()
    };
    let _ = write!(
        b,
        "<section><h2>Messages per {} by verdict</h2>{}</section>",
        if unit == 3600 { "hour" } else { "day" },
        volume_chart(&vol, d.since, d.until, unit)
    );
    b.push_str("<div class=\"cols\"><section><h2>Top threats</h2>");
    b.push_str(&html::hbars(
        &d.top_threats
            .iter()
            .map(|t| (t.threat.clone(), t.messages))
            .collect::<Vec<_>>(),
        "#c62828",
    ));
    b.push_str("</section><section><h2>Top senders</h2>");
    b.push_str(&html::hbars(
        &d.top_senders
            .iter()
            .map(|t| (t.value.clone(), t.messages))
            .collect::<Vec<_>>(),
        "#1565c0",
    ));
    b.push_str("</section></div><div class=\"cols\"><section><h2>Detections by engine</h2>");
    b.push_str(&html::hbars(
        &d.engines
            .iter()
            .map(|t| (t.engine.clone(), t.messages))
            .collect::<Vec<_>>(),
        "#ef6c00",
    ));
    b.push_str("</section><section><h2>Actions</h2>");
    b.push_str(&html::hbars(&d.by_action, "#546e7a"));
    let l = &d.latency;
    let _ = write!(
        b,
        "</section></div><section><h2>Scan latency</h2><table class=\"kv\"><tr><th>messages</th><td>{}</td></tr>\
         <tr><th>average</th><td>{}</td></tr><tr><th>p50</th><td>{}</td></tr><tr><th>p95</th><td>{}</td></tr>\
         <tr><th>p99</th><td>{}</td></tr><tr><th>max</th><td>{}</td></tr></table></section>",
        num(l.messages),
        html::micros(l.avg_us),
        html::micros(l.p50_us as f64),
        html::micros(l.p95_us as f64),
        html::micros(l.p99_us as f64),
        html::micros(l.max_us as f64)
    );
    if !d.counters.is_empty() {
        b.push_str("<section><h2>Since start</h2><table class=\"kv\">");
        for c in &d.counters {
            let _ = write!(
                b,
                "<tr><th>{}{}</th><td>{}</td></tr>",
                esc(&c.name),
                if c.label.is_empty() {
                    String::new()
                } else {
                    format!(" {}", esc(&c.label))
                },
                num(c.value)
            );
        }
        b.push_str("</table></section>");
    }
    b.push_str("</div>");
    Ok(Html(page("Dashboard", &who, "/", &b)).into_response())
}

// ----------------------------------------------------------- quarantine

/// A quarantine query from request parameters (`sender`, `recipient`,
/// `subject`, `threat`, `reason`, `node`, `since`, `until`, `released`
/// = yes|no, `limit`, `offset`).
pub fn quarantine_query(pairs: &[(String, String)]) -> Result<QuarantineQuery, String> {
    let now = mxguard_store::now_secs();
    Ok(QuarantineQuery {
        sender: nonempty(pairs, "sender"),
        recipient: nonempty(pairs, "recipient"),
        subject: nonempty(pairs, "subject"),
        threat: nonempty(pairs, "threat"),
        reason: nonempty(pairs, "reason"),
        node: nonempty(pairs, "node"),
        since: time_filter(pairs, "since", now)?,
        until: time_filter(pairs, "until", now)?,
        released: match field(pairs, "released") {
            Some("yes") | Some("true") => Some(true),
            Some("no") | Some("false") => Some(false),
            _ => None,
        },
        limit: Some(
            field(pairs, "limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(50u32)
                .clamp(1, 1000),
        ),
        offset: field(pairs, "offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

fn input(name: &str, label: &str, pairs: &[(String, String)], placeholder: &str) -> String {
    format!(
        "<label>{label}<input name=\"{name}\" value=\"{}\" placeholder=\"{}\"></label>",
        esc(field(pairs, name).unwrap_or("")),
        esc(placeholder)
    )
}

fn select(name: &str, label: &str, pairs: &[(String, String)], options: &[(&str, &str)]) -> String {
    let cur = field(pairs, name).unwrap_or("");
    let mut s = format!("<label>{label}<select name=\"{name}\">");
    for (v, l) in options {
        let sel = if *v == cur { " selected" } else { "" };
        let _ = write!(s, "<option value=\"{v}\"{sel}>{l}</option>");
    }
    s.push_str("</select></label>");
    s
}

fn flash(pairs: &[(String, String)]) -> String {
    let mut s = String::new();
    if let Some(m) = field(pairs, "ok") {
        s.push_str(&html::notice("ok", m));
    }
    if let Some(m) = field(pairs, "err") {
        s.push_str(&html::notice("err", m));
    }
    s
}

pub async fn quarantine(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let mut b = flash(&pairs);
    b.push_str("<form method=\"get\" action=\"/quarantine\" class=\"filters\">");
    b.push_str(&input("sender", "Sender", &pairs, "substring"));
    b.push_str(&input("recipient", "Recipient", &pairs, "substring"));
    b.push_str(&input("subject", "Subject", &pairs, "substring"));
    b.push_str(&input("threat", "Threat", &pairs, "e.g. eicar"));
    b.push_str(&select(
        "reason",
        "Reason",
        &pairs,
        &[
            ("", "any"),
            ("infected", "infected"),
            ("suspicious", "suspicious"),
            ("unscannable", "unscannable"),
            ("spam", "spam"),
            ("policy", "policy"),
            ("backup", "backup"),
        ],
    ));
    b.push_str(&input("since", "Since", &pairs, "24h, 7d, 2026-01-31"));
    b.push_str(&input("until", "Until", &pairs, "now"));
    b.push_str(&select(
        "released",
        "Released",
        &pairs,
        &[("", "any"), ("no", "not released"), ("yes", "released")],
    ));
    b.push_str("<button type=\"submit\">Search</button></form>");
    let qq = match quarantine_query(&pairs) {
        Ok(q) => q,
        Err(e) => {
            b.push_str(&html::notice("err", &e));
            return Ok(Html(page("Quarantine", &who, "/quarantine", &b)).into_response());
        }
    };
    let (items, total) = tokio::try_join!(state.store.search(&qq), state.store.count(&qq))?;
    let _ = write!(
        b,
        "<p class=\"muted\">{} item(s) match; showing {}–{}.</p>",
        num(total),
        if items.is_empty() { 0 } else { qq.offset + 1 },
        qq.offset as usize + items.len()
    );
    if who.is_admin() {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/quarantine/bulk\" id=\"bulk\">{}",
            html::csrf_field(&who)
        );
    }
    b.push_str("<table class=\"list\" id=\"qtable\"><thead><tr>");
    if who.is_admin() {
        b.push_str(
            "<th><input type=\"checkbox\" data-select-all=\"id\" title=\"select all\"></th>",
        );
    }
    b.push_str("<th>Time (UTC)</th><th>Sender</th><th>Recipients</th><th>Subject</th><th>Reason</th><th>Threats</th><th>Size</th><th>Released</th></tr></thead><tbody>");
    for i in &items {
        b.push_str(&quarantine_row(i, who.is_admin()));
    }
    b.push_str("</tbody></table>");
    if who.is_admin() {
        b.push_str(
            "<p class=\"actions\"><button type=\"submit\" name=\"action\" value=\"release\">Release selected</button> \
             <button type=\"submit\" name=\"action\" value=\"delete\" class=\"danger\" data-confirm=\"Delete the selected messages for good?\">Delete selected</button></p></form>",
        );
    }
    // Paging.
    let limit = qq.limit.unwrap_or(50);
    let base: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "offset" && k != "ok" && k != "err")
        .cloned()
        .collect();
    let link = |off: u32| {
        let mut p = base.clone();
        p.push(("offset".into(), off.to_string()));
        format!("/quarantine?{}", encode_pairs(&p))
    };
    b.push_str("<p class=\"paging\">");
    if qq.offset > 0 {
        let _ = write!(
            b,
            "<a href=\"{}\">← newer</a> ",
            esc(&link(qq.offset.saturating_sub(limit)))
        );
    }
    if u64::from(qq.offset) + (items.len() as u64) < total {
        let _ = write!(
            b,
            "<a href=\"{}\">older →</a>",
            esc(&link(qq.offset + limit))
        );
    }
    b.push_str("</p>");
    Ok(Html(page("Quarantine", &who, "/quarantine", &b)).into_response())
}

/// Query string of pairs.
pub fn encode_pairs(p: &[(String, String)]) -> String {
    p.iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn quarantine_row(i: &QuarantineSummary, checkbox: bool) -> String {
    let mut s = String::from("<tr>");
    if checkbox {
        let _ = write!(
            s,
            "<td><input type=\"checkbox\" name=\"id\" value=\"{}\"></td>",
            esc(&i.id)
        );
    }
    let _ = write!(
        s,
        "<td><a href=\"/quarantine/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        url_encode(&i.id),
        html::time(i.time),
        esc(html::sender(&i.mail_from)),
        esc(&i.rcpts.join(", ")),
        esc(&i.subject),
        esc(&i.reason),
        esc(&i.threats.join(", ")),
        html::bytes(i.size),
        i.released_at.map(html::time).unwrap_or_default()
    );
    s
}

pub async fn quarantine_item(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let Some(item) = state.store.get(&id).await? else {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            format!("no quarantine item {id}"),
        ));
    };
    let raw = state.store.message(&id).await?.unwrap_or_default();
    let view = tokio::task::spawn_blocking(move || crate::mail::view(&raw))
        .await
        .unwrap_or_default();
    let s = &item.summary;
    let mut b = flash(&pairs);
    let _ = write!(
        b,
        "<table class=\"kv\"><tr><th>Queue id</th><td><a href=\"/trace/{}\">{}</a> (trace)</td></tr>\
         <tr><th>Time (UTC)</th><td>{}</td></tr><tr><th>Node</th><td>{}</td></tr>\
         <tr><th>Client</th><td>{}</td></tr><tr><th>Sender</th><td>{}</td></tr>\
         <tr><th>Subject</th><td>{}</td></tr><tr><th>Reason</th><td>{}</td></tr>\
         <tr><th>Action</th><td>{}</td></tr><tr><th>Policy</th><td>{}</td></tr>\
         <tr><th>Size</th><td>{} (stored {} {})</td></tr><tr><th>SHA-256</th><td class=\"mono\">{}</td></tr></table>",
        url_encode(&s.id),
        esc(&s.id),
        html::time(s.time),
        esc(&s.node),
        esc(&s.client_ip),
        esc(html::sender(&s.mail_from)),
        esc(&s.subject),
        esc(&s.reason),
        esc(&s.action),
        esc(item.policy.as_deref().unwrap_or("")),
        html::bytes(s.size),
        html::bytes(item.stored_size),
        esc(&item.compression),
        esc(&item.sha256)
    );
    b.push_str("<h2>Findings</h2><table class=\"list\"><tr><th>Name</th><th>Engine</th><th>Severity</th><th>Location</th><th>Detail</th></tr>");
    for f in &item.findings {
        let v = serde_json::to_value(f).unwrap_or_default();
        let get = |k: &str| {
            v.get(k)
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    o => o.to_string(),
                })
                .unwrap_or_default()
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&f.name),
            esc(f.engine.as_str()),
            esc(&get("severity")),
            esc(&get("location")),
            esc(&get("detail"))
        );
    }
    b.push_str("</table><h2>Recipients</h2>");
    if who.is_admin() {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/quarantine/{}/release\" id=\"release\">{}",
            url_encode(&s.id),
            html::csrf_field(&who)
        );
    }
    b.push_str("<table class=\"list\"><tr>");
    if who.is_admin() {
        b.push_str("<th></th>");
    }
    b.push_str("<th>Address</th><th>Released</th><th>By</th></tr>");
    for r in &item.recipients {
        b.push_str("<tr>");
        if who.is_admin() {
            let _ = write!(
                b,
                "<td><input type=\"checkbox\" name=\"rcpt\" value=\"{}\"></td>",
                esc(&r.address)
            );
        }
        let _ = write!(
            b,
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.address),
            r.released_at.map(html::time).unwrap_or_default(),
            esc(r.released_by.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</table>");
    if who.is_admin() {
        b.push_str(
            "<p class=\"actions\"><button type=\"submit\" id=\"release-btn\">Release</button> \
             <span class=\"muted\">to the recipients ticked, or to every recipient not released yet when none is ticked</span></p></form>",
        );
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/quarantine/{}/delete\" class=\"inline\">{}\
             <button type=\"submit\" class=\"danger\" data-confirm=\"Delete this message for good?\">Delete</button></form> ",
            url_encode(&s.id),
            html::csrf_field(&who)
        );
    }
    let _ = write!(
        b,
        "<a class=\"button\" href=\"/quarantine/{}/eml\">Download .eml</a>",
        url_encode(&s.id)
    );
    if !item.releases.is_empty() {
        b.push_str("<h2>Release history</h2><table class=\"list\"><tr><th>Time (UTC)</th><th>By</th><th>To</th></tr>");
        for r in &item.releases {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                html::time(r.time),
                esc(&r.by),
                esc(&r.rcpts.join(", "))
            );
        }
        b.push_str("</table>");
    }
    b.push_str(&safe_view_html(&view));
    Ok(Html(page(
        &format!("Quarantine item {id}"),
        &who,
        "/quarantine",
        &b,
    ))
    .into_response())
}

fn safe_view_html(v: &crate::mail::SafeView) -> String {
    let mut b = String::new();
    if !v.attachments.is_empty() {
        b.push_str("<h2>Attachments</h2><table class=\"list\"><tr><th>Name</th><th>Type</th><th>Size</th></tr>");
        for (n, t, sz) in &v.attachments {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(n),
                esc(t),
                html::bytes(*sz as u64)
            );
        }
        b.push_str("</table>");
    }
    let _ = write!(
        b,
        "<h2>Headers</h2><pre class=\"headers\">{}</pre><h2>Text{}</h2>\
         <p class=\"muted\">Shown as plain text: the message's HTML is never rendered and nothing it links to is loaded.</p>\
         <pre class=\"body\">{}</pre>{}",
        esc(&v.headers),
        if v.text_from_html {
            " (converted from the HTML part)"
        } else {
            ""
        },
        esc(&v.text),
        if v.truncated {
            "<p class=\"muted\">(cut; download the .eml for the whole message)</p>"
        } else {
            ""
        }
    );
    b
}

pub async fn quarantine_eml(State(state): State<AppState>, Path(id): Path<String>) -> PageResult {
    let Some(msg) = state.store.message(&id).await? else {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            format!("no quarantine item {id}"),
        ));
    };
    Ok(eml_response(&id, msg))
}

/// The original as a download (never displayed inline).
pub fn eml_response(id: &str, msg: Vec<u8>) -> Response {
    let name: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let mut r = msg.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}.eml\""))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    r
}

fn back(path: &str, key: &str, msg: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}{key}={}", url_encode(msg))).into_response()
}

pub async fn quarantine_release(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let rcpts: Vec<String> = fields(&f, "rcpt").iter().map(|s| s.to_string()).collect();
    let path = format!("/quarantine/{}", url_encode(&id));
    match state.release_item(&id, &rcpts, &who.user).await {
        Ok(r) => back(
            &path,
            "ok",
            &format!(
                "Released to {} (queue id {})",
                r.rcpts.join(", "),
                r.queue_id
            ),
        ),
        Err(e) => back(&path, "err", &e),
    }
}

pub async fn quarantine_delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match state.delete_item(&id).await {
        Ok(true) => {
            tracing::info!(target: "mxguard::event", id, by = %who.user, "quarantine delete (console)");
            back("/quarantine", "ok", &format!("Deleted {id}"))
        }
        Ok(false) => back("/quarantine", "err", &format!("No quarantine item {id}")),
        Err(e) => back("/quarantine", "err", &e.to_string()),
    }
}

/// Outcome of a bulk action, per item.
#[derive(Debug, Serialize)]
pub struct BulkResult {
    pub id: String,
    pub ok: bool,
    pub message: String,
}

/// Releases or deletes several items; one result per id.
pub async fn bulk(
    state: &AppState,
    who: &Principal,
    action: &str,
    ids: &[String],
) -> Vec<BulkResult> {
    let mut out = Vec::new();
    for id in ids {
        let r = match action {
            "release" => match state.release_item(id, &[], &who.user).await {
                Ok(r) => Ok(format!("released to {}", r.rcpts.join(", "))),
                Err(e) => Err(e),
            },
            "delete" => match state.delete_item(id).await {
                Ok(true) => {
                    tracing::info!(target: "mxguard::event", id, by = %who.user, "quarantine delete (console)");
                    Ok("deleted".to_string())
                }
                Ok(false) => Err(format!("no quarantine item {id}")),
                Err(e) => Err(e.to_string()),
            },
            other => Err(format!("unknown action {other:?} (release or delete)")),
        };
        out.push(match r {
            Ok(m) => BulkResult {
                id: id.clone(),
                ok: true,
                message: m,
            },
            Err(m) => BulkResult {
                id: id.clone(),
                ok: false,
                message: m,
            },
        });
    }
    out
}

pub async fn quarantine_bulk(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let ids: Vec<String> = fields(&f, "id").iter().map(|s| s.to_string()).collect();
    let action = field(&f, "action").unwrap_or("");
    if ids.is_empty() {
        return back("/quarantine", "err", "Nothing selected");
    }
    let res = bulk(&state, &who, action, &ids).await;
    let ok = res.iter().filter(|r| r.ok).count();
    let failed: Vec<String> = res
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{}: {}", r.id, r.message))
        .collect();
    if failed.is_empty() {
        back("/quarantine", "ok", &format!("{action}: {ok} item(s) done"))
    } else {
        back(
            "/quarantine",
            "err",
            &format!("{action}: {ok} done, failed: {}", failed.join("; ")),
        )
    }
}

// ---------------------------------------------------------------- events

/// An event query from request parameters: `q` (a queue id or
/// Message-ID: exact), `queue_id`, `message_id`, `sender`, `recipient`,
/// `client_ip`, `verdict`, `action`, `threat`, `node`, `since` (default
/// 24h), `until`, `limit` (default 100), `before` (paging cursor `time:id`).
pub fn event_query(pairs: &[(String, String)]) -> Result<EventQuery, String> {
    let now = mxguard_store::now_secs();
    let mut q = EventQuery {
        since: match nonempty(pairs, "since") {
            Some(v) if v == "all" => None,
            Some(v) => Some(parse_time(&v, now).map_err(|e| format!("since: {e}"))?),
            None => Some(now - 86_400),
        },
        until: time_filter(pairs, "until", now)?,
        node: nonempty(pairs, "node"),
        queue_id: nonempty(pairs, "queue_id"),
        message_id: nonempty(pairs, "message_id"),
        sender: nonempty(pairs, "sender"),
        recipient: nonempty(pairs, "recipient"),
        client_ip: nonempty(pairs, "client_ip"),
        verdict: nonempty(pairs, "verdict"),
        action: nonempty(pairs, "action"),
        threat: nonempty(pairs, "threat"),
        limit: Some(
            field(pairs, "limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100u32)
                .clamp(1, 5000),
        ),
        before: field(pairs, "before").and_then(|v| {
            let (t, i) = v.split_once(':')?;
            Some((t.parse().ok()?, i.parse().ok()?))
        }),
    };
    if let Some(v) = nonempty(pairs, "q") {
        // A Message-ID has an @ (usually in <>); anything else is a queue id.
        if v.contains('@') {
            let v = v.trim();
            q.message_id = Some(if v.starts_with('<') {
                v.to_string()
            } else {
                format!("<{v}>")
            });
        } else {
            q.queue_id = Some(v);
        }
        // An exact id is indexed: search all time.
        if nonempty(pairs, "since").is_none() {
            q.since = None;
        }
    }
    Ok(q)
}

pub async fn events(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let mut b = String::new();
    b.push_str("<form method=\"get\" action=\"/events\" class=\"filters\">");
    b.push_str(&input("q", "Queue id or Message-ID", &pairs, "exact"));
    b.push_str(&input(
        "sender",
        "Sender",
        &pairs,
        "name@ or @domain (starts with)",
    ));
    b.push_str(&input(
        "recipient",
        "Recipient",
        &pairs,
        "name@ or @domain (starts with)",
    ));
    b.push_str(&input("threat", "Threat", &pairs, "substring"));
    b.push_str(&select(
        "verdict",
        "Verdict",
        &pairs,
        &[
            ("", "any"),
            ("clean", "clean"),
            ("infected", "infected"),
            ("suspicious", "suspicious"),
            ("spam", "spam"),
            ("error", "error"),
        ],
    ));
    b.push_str(&input("action", "Action", &pairs, "e.g. quarantine"));
    b.push_str(&input("client_ip", "Client IP", &pairs, "exact"));
    b.push_str(&input("since", "Since", &pairs, "24h (default), 7d, all"));
    b.push_str(&input("until", "Until", &pairs, "now"));
    b.push_str("<button type=\"submit\">Search</button></form>");
    let eq = match event_query(&pairs) {
        Ok(q) => q,
        Err(e) => {
            b.push_str(&html::notice("err", &e));
            return Ok(Html(page("Message trace", &who, "/events", &b)).into_response());
        }
    };
    let evs = state.store.events(&eq).await?;
    let csv_pairs: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "before")
        .cloned()
        .collect();
    let _ = write!(
        b,
        "<p class=\"muted\">{} event(s), newest first. <a href=\"/events/csv?{}\">Download as CSV</a></p>",
        evs.len(),
        esc(&encode_pairs(&csv_pairs))
    );
    b.push_str("<table class=\"list\"><thead><tr><th>Time (UTC)</th><th>Queue id</th><th>Node</th><th>Client</th><th>Sender</th><th>Recipients</th><th>Verdict</th><th>Action</th><th>Threats</th><th>Latency</th></tr></thead><tbody>");
    for e in &evs {
        b.push_str(&event_row(e));
    }
    b.push_str("</tbody></table>");
    if let (Some(last), Some(limit)) = (evs.last(), eq.limit) {
        if evs.len() as u32 >= limit {
            let mut p = csv_pairs.clone();
            p.push(("before".into(), format!("{}:{}", last.event.time, last.id)));
            let _ = write!(
                b,
                "<p class=\"paging\"><a href=\"/events?{}\">older →</a></p>",
                esc(&encode_pairs(&p))
            );
        }
    }
    Ok(Html(page("Message trace", &who, "/events", &b)).into_response())
}

fn event_row(e: &StoredEvent) -> String {
    let ev = &e.event;
    let threats: Vec<&str> = ev.findings.iter().map(|f| f.name.as_str()).collect();
    format!(
        "<tr class=\"v-{}\"><td>{}</td><td><a href=\"/trace/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&ev.verdict),
        html::time(ev.time),
        url_encode(&ev.queue_id),
        esc(&ev.queue_id),
        esc(&ev.node),
        esc(&ev.client_ip),
        esc(html::sender(&ev.mail_from)),
        esc(&ev.rcpts.join(", ")),
        esc(&ev.verdict),
        esc(&ev.action),
        esc(&threats.join(", ")),
        html::micros(ev.latency_us as f64)
    )
}

pub async fn events_csv(State(state): State<AppState>, q: RawQuery) -> PageResult {
    let pairs = query(&q);
    let eq = event_query(&pairs).map_err(|e| PageError(StatusCode::BAD_REQUEST, e))?;
    let mut out = Vec::new();
    state.store.export_events_csv(&eq, &mut out).await?;
    Ok(csv_response("events.csv", out))
}

/// A CSV download.
pub fn csv_response(name: &str, body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    r
}

/// The decision trail of one message: its events on every node, the
/// events sharing its Message-ID (other hops, a released copy), and its
/// quarantine record.
#[derive(Debug, Serialize)]
pub struct Trace {
    pub queue_id: String,
    pub events: Vec<StoredEvent>,
    /// Other events with the same Message-ID.
    pub related: Vec<StoredEvent>,
    pub quarantine: Option<mxguard_store::QuarantineItem>,
}

pub async fn trace_data(state: &AppState, queue_id: &str) -> Result<Trace, StoreError> {
    let eq = EventQuery {
        queue_id: Some(queue_id.to_string()),
        limit: Some(100),
        ..Default::default()
    };
    let (events, quarantine) =
        tokio::try_join!(state.store.events(&eq), state.store.get(queue_id))?;
    let mut related = Vec::new();
    let mids: Vec<String> = events
        .iter()
        .filter_map(|e| e.event.message_id.clone())
        .filter(|m| !m.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for mid in mids {
        for e in state
            .store
            .events(&EventQuery {
                message_id: Some(mid),
                limit: Some(100),
                ..Default::default()
            })
            .await?
        {
            if e.event.queue_id != queue_id {
                related.push(e);
            }
        }
    }
    Ok(Trace {
        queue_id: queue_id.to_string(),
        events,
        related,
        quarantine,
    })
}

pub async fn trace(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(queue_id): Path<String>,
) -> PageResult {
    let t = trace_data(&state, &queue_id).await?;
    let mut b = String::new();
    if t.events.is_empty() && t.quarantine.is_none() {
        b.push_str(&html::notice(
            "err",
            "No event and no quarantine item with this queue id (events are written within a second or two; older ones may be past retention).",
        ));
    }
    for e in t.events.iter().rev() {
        b.push_str(&event_detail(e));
    }
    if let Some(q) = &t.quarantine {
        let _ = write!(
            b,
            "<section><h2>Quarantine</h2><p>Held as <a href=\"/quarantine/{}\">{}</a> ({}){}.</p>",
            url_encode(&q.summary.id),
            esc(&q.summary.id),
            esc(&q.summary.reason),
            match q.summary.released_at {
                Some(t) => format!(", released {}", html::time(t)),
                None => String::new(),
            }
        );
        if !q.releases.is_empty() {
            b.push_str("<ol class=\"steps\">");
            for r in &q.releases {
                let _ = write!(
                    b,
                    "<li><b>Released</b> {} by {} to {}</li>",
                    html::time(r.time),
                    esc(&r.by),
                    esc(&r.rcpts.join(", "))
                );
            }
            b.push_str("</ol>");
        }
        b.push_str("</section>");
    }
    if !t.related.is_empty() {
        b.push_str("<section><h2>Same Message-ID elsewhere</h2><table class=\"list\"><thead><tr><th>Time (UTC)</th><th>Queue id</th><th>Node</th><th>Client</th><th>Sender</th><th>Recipients</th><th>Verdict</th><th>Action</th><th>Threats</th><th>Latency</th></tr></thead><tbody>");
        for e in &t.related {
            b.push_str(&event_row(e));
        }
        b.push_str("</tbody></table></section>");
    }
    Ok(Html(page(&format!("Message {queue_id}"), &who, "/events", &b)).into_response())
}

fn event_detail(e: &StoredEvent) -> String {
    let ev = &e.event;
    let mut b = String::new();
    let _ = write!(
        b,
        "<section class=\"trail\"><h2>{} on {}: {} → {}</h2><ol class=\"steps\">\
         <li><b>Connection</b> from {} (HELO {})</li>\
         <li><b>Envelope</b> MAIL FROM {} · RCPT TO {} · {} · Message-ID {}</li>",
        html::time(ev.time),
        esc(&ev.node),
        esc(&ev.verdict),
        esc(&ev.action),
        esc(&ev.client_ip),
        esc(&ev.helo),
        esc(html::sender(&ev.mail_from)),
        esc(&ev.rcpts.join(", ")),
        html::bytes(ev.size),
        esc(ev.message_id.as_deref().unwrap_or("(none)"))
    );
    b.push_str("<li><b>Engines</b><table class=\"list\"><tr><th>Engine</th><th>Verdict</th><th>Score</th><th>Time</th></tr>");
    for x in &ev.engines {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.engine),
            esc(&x.verdict),
            x.score.map(|s| format!("{s:.2}")).unwrap_or_default(),
            x.elapsed_us
                .map(|u| html::micros(u as f64))
                .unwrap_or_default()
        );
    }
    b.push_str("</table></li><li><b>Findings</b>");
    if ev.findings.is_empty() {
        b.push_str(" none");
    } else {
        b.push_str("<table class=\"list\"><tr><th>Name</th><th>Engine</th><th>Location</th><th>Detail</th></tr>");
        for f in &ev.findings {
            let v = serde_json::to_value(f).unwrap_or_default();
            let g = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                esc(&f.name),
                esc(f.engine.as_str()),
                esc(&g("location")),
                esc(&g("detail"))
            );
        }
        b.push_str("</table>");
    }
    let _ = write!(
        b,
        "</li><li><b>Spam score</b> {}</li><li><b>Verdict</b> {} · <b>action</b> {} · decided in {}</li>\
         <li><b>Stamp</b> {}</li></ol></section>",
        ev.spam_score
            .map(|s| format!("{s:.2}"))
            .unwrap_or_else(|| "not scored".into()),
        esc(&ev.verdict),
        esc(&ev.action),
        html::micros(ev.latency_us as f64),
        esc(ev.stamp.as_deref().unwrap_or("none"))
    );
    b
}

// --------------------------------------------------------------- reports

/// A report query from parameters: `since` (default 7d), `until` (now),
/// `daily` (yes for a daily volume), `top` (10), `node`.
pub fn report_query(pairs: &[(String, String)]) -> Result<ReportQuery, String> {
    let now = mxguard_store::now_secs();
    let since = parse_time(&nonempty(pairs, "since").unwrap_or("7d".into()), now)
        .map_err(|e| format!("since: {e}"))?;
    let until_s = nonempty(pairs, "until").unwrap_or("now".into());
    let until = parse_time(&until_s, now).map_err(|e| format!("until: {e}"))?;
    if until <= since {
        return Err("until must be after since".into());
    }
    Ok(ReportQuery {
        since,
        until: if until_s == "now" { until + 1 } else { until },
        node: nonempty(pairs, "node"),
        top: field(pairs, "top")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10usize)
            .clamp(1, 1000),
        granularity: if matches!(field(pairs, "daily"), Some("yes" | "true" | "1")) {
            Granularity::Day
        } else {
            Granularity::Hour
        },
    })
}

/// The store's report for `rq`, reused for the cache TTL (the key is the
/// query with its range rounded out to whole hours, as the store reads it).
pub async fn cached_report(
    state: &AppState,
    rq: &ReportQuery,
) -> Result<std::sync::Arc<mxguard_store::Report>, StoreError> {
    let key = report_key(rq);
    if let Some((r, _)) = state.cache.get::<mxguard_store::Report>(&key) {
        return Ok(r);
    }
    let r = std::sync::Arc::new(state.store.report(rq).await?);
    state.cache.put(key, r.clone());
    Ok(r)
}

/// Computes the report for `rq` now and keeps it for `keep` (see
/// [`crate::keep_warm`]).
pub async fn warm_report(
    state: &AppState,
    rq: &ReportQuery,
    keep: std::time::Duration,
) -> Result<(), StoreError> {
    let r = std::sync::Arc::new(state.store.report(rq).await?);
    state.cache.put_for(report_key(rq), r, keep);
    Ok(())
}

fn report_key(rq: &ReportQuery) -> String {
    format!(
        "report:{}:{}:{:?}:{}:{:?}",
        rq.since.div_euclid(3600),
        -(-rq.until).div_euclid(3600),
        rq.node,
        rq.top,
        rq.granularity
    )
}

/// One section of a report as CSV (`volume`, `threats`, `engines`,
/// `senders`, `recipients`, `sender_domains`, `recipient_domains`,
/// `verdicts`, `actions`).
pub fn report_csv(r: &mxguard_store::Report, section: &str) -> Result<String, String> {
    let mut out = String::new();
    let f = |s: &str| {
        let mut o = String::new();
        mxguard_store::events::csv_text(&mut o, s);
        o
    };
    let addresses = |out: &mut String, v: &[mxguard_store::AddressCount]| {
        out.push_str("value,messages,flagged\r\n");
        for x in v {
            let _ = write!(out, "{},{},{}\r\n", f(&x.value), x.messages, x.flagged);
        }
    };
    match section {
        "volume" => {
            out.push_str("start,verdict,action,messages,bytes\r\n");
            for v in &r.volume {
                let _ = write!(
                    out,
                    "{},{},{},{},{}\r\n",
                    mxguard_store::events::format_utc(v.start),
                    f(&v.verdict),
                    f(&v.action),
                    v.messages,
                    v.bytes
                );
            }
        }
        "threats" => {
            out.push_str("threat,engine,messages\r\n");
            for t in &r.top_threats {
                let _ = write!(out, "{},{},{}\r\n", f(&t.threat), f(&t.engine), t.messages);
            }
        }
        "engines" => {
            out.push_str("engine,messages\r\n");
            for e in &r.engines {
                let _ = write!(out, "{},{}\r\n", f(&e.engine), e.messages);
            }
        }
        "verdicts" | "actions" => {
            out.push_str(if section == "verdicts" {
                "verdict,messages\r\n"
            } else {
                "action,messages\r\n"
            });
            let v = if section == "verdicts" {
                &r.by_verdict
            } else {
                &r.by_action
            };
            for (k, n) in v {
                let _ = write!(out, "{},{n}\r\n", f(k));
            }
        }
        "senders" => addresses(&mut out, &r.top_senders),
        "recipients" => addresses(&mut out, &r.top_recipients),
        "sender_domains" => addresses(&mut out, &r.top_sender_domains),
        "recipient_domains" => addresses(&mut out, &r.top_recipient_domains),
        other => return Err(format!("unknown section {other:?}")),
    }
    Ok(out)
}

pub const REPORT_SECTIONS: [&str; 9] = [
    "volume",
    "verdicts",
    "actions",
    "threats",
    "engines",
    "senders",
    "recipients",
    "sender_domains",
    "recipient_domains",
];

pub async fn reports(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let mut b = String::new();
    b.push_str("<form method=\"get\" action=\"/reports\" class=\"filters\">");
    b.push_str(&input(
        "since",
        "Since",
        &pairs,
        "7d (default), 30d, 2026-01-01",
    ));
    b.push_str(&input("until", "Until", &pairs, "now"));
    b.push_str(&input("node", "Node", &pairs, "all"));
    b.push_str(&input("top", "Top", &pairs, "10"));
    b.push_str(&select(
        "daily",
        "Volume per",
        &pairs,
        &[("", "hour"), ("yes", "day")],
    ));
    b.push_str("<button type=\"submit\">Report</button></form><p class=\"toolbar\">");
    for (s, l) in [
        ("24h", "24 hours"),
        ("7d", "7 days"),
        ("30d", "30 days"),
        ("365d", "a year"),
    ] {
        let daily = if s == "30d" || s == "365d" {
            "&daily=yes"
        } else {
            ""
        };
        let _ = write!(b, "<a href=\"/reports?since={s}{daily}\">{l}</a> ");
    }
    b.push_str("</p>");
    let rq = match report_query(&pairs) {
        Ok(q) => q,
        Err(e) => {
            b.push_str(&html::notice("err", &e));
            return Ok(Html(page("Reports", &who, "/reports", &b)).into_response());
        }
    };
    let t0 = std::time::Instant::now();
    let r = cached_report(&state, &rq).await?;
    let base = encode_pairs(
        &pairs
            .iter()
            .filter(|(k, _)| k != "section")
            .cloned()
            .collect::<Vec<_>>(),
    );
    let csv = |section: &str| {
        format!(
            " <a class=\"csv\" href=\"/reports/csv?{}{}section={section}\">CSV</a>",
            esc(&base),
            if base.is_empty() { "" } else { "&amp;" }
        )
    };
    let _ = write!(
        b,
        "<p class=\"muted\">{} – {} UTC (whole hours; rankings over whole days {} – {}) · {} messages · {} · queried in {:.1} ms</p>",
        html::time(r.since),
        html::time(r.until),
        html::time(r.days_since),
        html::time(r.days_until),
        num(r.messages),
        html::bytes(r.bytes),
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let unit = if rq.granularity == Granularity::Day {
        86_400
    } else {
        3600
    };
    let (cs, cu) = if unit == 86_400 {
        (r.days_since, r.days_until)
    } else {
        (r.since, r.until)
    };
    let _ = write!(
        b,
        "<section><h2>Volume by verdict{}</h2>{}</section>",
        csv("volume"),
        volume_chart(&r.volume, cs, cu, unit)
    );
    let table =
        |b: &mut String, title: &str, section: &str, head: &[&str], rows: Vec<Vec<String>>| {
            let _ = write!(
                b,
                "<section><h2>{title}{}</h2><table class=\"list\"><tr>",
                csv(section)
            );
            for h in head {
                let _ = write!(b, "<th>{h}</th>");
            }
            b.push_str("</tr>");
            for row in rows {
                b.push_str("<tr>");
                for c in row {
                    let _ = write!(b, "<td>{}</td>", esc(&c));
                }
                b.push_str("</tr>");
            }
            b.push_str("</table></section>");
        };
    b.push_str("<div class=\"cols\">");
    table(
        &mut b,
        "Verdicts",
        "verdicts",
        &["Verdict", "Messages"],
        r.by_verdict
            .iter()
            .map(|(k, v)| vec![k.clone(), num(*v)])
            .collect(),
    );
    table(
        &mut b,
        "Actions",
        "actions",
        &["Action", "Messages"],
        r.by_action
            .iter()
            .map(|(k, v)| vec![k.clone(), num(*v)])
            .collect(),
    );
    b.push_str("</div><div class=\"cols\">");
    table(
        &mut b,
        "Top threats",
        "threats",
        &["Threat", "Engine", "Messages"],
        r.top_threats
            .iter()
            .map(|t| vec![t.threat.clone(), t.engine.clone(), num(t.messages)])
            .collect(),
    );
    table(
        &mut b,
        "Detections by engine",
        "engines",
        &["Engine", "Messages"],
        r.engines
            .iter()
            .map(|e| vec![e.engine.clone(), num(e.messages)])
            .collect(),
    );
    b.push_str("</div>");
    let addr_rows = |v: &[mxguard_store::AddressCount]| {
        v.iter()
            .map(|a| vec![a.value.clone(), num(a.messages), num(a.flagged)])
            .collect::<Vec<_>>()
    };
    b.push_str("<div class=\"cols\">");
    table(
        &mut b,
        "Top senders",
        "senders",
        &["Sender", "Messages", "Flagged"],
        addr_rows(&r.top_senders),
    );
    table(
        &mut b,
        "Top recipients",
        "recipients",
        &["Recipient", "Messages", "Flagged"],
        addr_rows(&r.top_recipients),
    );
    b.push_str("</div><div class=\"cols\">");
    table(
        &mut b,
        "Top sender domains",
        "sender_domains",
        &["Domain", "Messages", "Flagged"],
        addr_rows(&r.top_sender_domains),
    );
    table(
        &mut b,
        "Top recipient domains",
        "recipient_domains",
        &["Domain", "Messages", "Flagged"],
        addr_rows(&r.top_recipient_domains),
    );
    b.push_str("</div>");
    let l = &r.latency;
    let _ = write!(
        b,
        "<section><h2>Scan latency</h2><table class=\"kv\"><tr><th>average</th><td>{}</td></tr><tr><th>p50</th><td>{}</td></tr>\
         <tr><th>p95</th><td>{}</td></tr><tr><th>p99</th><td>{}</td></tr><tr><th>max</th><td>{}</td></tr></table></section>",
        html::micros(l.avg_us),
        html::micros(l.p50_us as f64),
        html::micros(l.p95_us as f64),
        html::micros(l.p99_us as f64),
        html::micros(l.max_us as f64)
    );
    Ok(Html(page("Reports", &who, "/reports", &b)).into_response())
}

pub async fn reports_csv(State(state): State<AppState>, q: RawQuery) -> PageResult {
    let pairs = query(&q);
    let rq = report_query(&pairs).map_err(|e| PageError(StatusCode::BAD_REQUEST, e))?;
    let section = field(&pairs, "section").unwrap_or("volume").to_string();
    let r = cached_report(&state, &rq).await?;
    let text = report_csv(&r, &section).map_err(|e| PageError(StatusCode::BAD_REQUEST, e))?;
    Ok(csv_response(
        &format!("report-{section}.csv"),
        text.into_bytes(),
    ))
}

// ---------------------------------------------------------------- policy

pub async fn policy(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let body = policy_page(&state, &who, &pairs, None, None, None).await?;
    Ok(Html(page("Policies", &who, "/policy", &body)).into_response())
}

/// The policy page; `text` overrides the editor's content (after a
/// check or dry run), `result` is shown above it.
async fn policy_page(
    state: &AppState,
    who: &Principal,
    pairs: &[(String, String)],
    text: Option<&str>,
    result: Option<String>,
    sample: Option<(&str, &str, &str)>,
) -> Result<String, PageError> {
    let mut b = flash(pairs);
    let Some(pc) = state.gateway.policy() else {
        b.push_str(&html::notice(
            "err",
            "This gateway has no rules-engine policy to show.",
        ));
        return Ok(b);
    };
    let src = tokio::task::spawn_blocking(move || pc.source())
        .await
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let _ = write!(
        b,
        "<p class=\"muted\">{}{}</p>",
        match &src.path {
            Some(p) => format!("Source: {} · ", esc(p)),
            None => String::new(),
        },
        esc(&src.note)
    );
    if let Some(r) = result {
        b.push_str(&r);
    }
    let editable = src.editable && who.is_admin();
    let (from, rcpts, message) = sample.unwrap_or(("", "", ""));
    if who.is_admin() {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/policy\" id=\"policy-form\">{}\
             <textarea name=\"text\" id=\"policy-text\" rows=\"28\" spellcheck=\"false\"{}>{}</textarea>\
             <details{}><summary>Dry run against a sample message</summary>\
             <label>MAIL FROM<input name=\"mail_from\" value=\"{}\" placeholder=\"sender@example.org\"></label>\
             <label>RCPT TO<input name=\"rcpts\" value=\"{}\" placeholder=\"comma-separated; empty: the message's To/Cc\"></label>\
             <label>Message (headers and body, as .eml)<textarea name=\"message\" id=\"sample\" rows=\"10\" spellcheck=\"false\">{}</textarea></label></details>\
             <p class=\"actions\"><button type=\"submit\" name=\"op\" value=\"check\">Validate</button> \
             <button type=\"submit\" name=\"op\" value=\"dry-run\" id=\"dry-run\">Dry run</button> {}\
             <input name=\"comment\" placeholder=\"what and why (history)\" class=\"comment\"></p></form>",
            html::csrf_field(who),
            if src.editable { "" } else { " readonly" },
            esc(text.unwrap_or(&src.text)),
            if message.is_empty() { "" } else { " open" },
            esc(from),
            esc(rcpts),
            esc(message),
            if editable {
                "<button type=\"submit\" name=\"op\" value=\"save\" id=\"save\" class=\"primary\">Save and apply</button>"
            } else {
                ""
            }
        );
    } else {
        let _ = write!(b, "<pre class=\"policy\">{}</pre>", esc(&src.text));
    }
    let hist = state.store.policy_history(50).await?;
    b.push_str("<h2>History</h2>");
    if hist.is_empty() {
        b.push_str("<p class=\"muted\">No change saved from the console yet.</p>");
    } else {
        b.push_str("<table class=\"list\"><tr><th>Time (UTC)</th><th>Who</th><th>Node</th><th>Comment</th><th>Change</th></tr>");
        for h in &hist {
            let (add, del) = diff_counts(&h.diff);
            let _ = write!(
                b,
                "<tr><td><a href=\"/policy/history/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>+{add} −{del}</td></tr>",
                h.id,
                html::time(h.time),
                esc(&h.user),
                esc(&h.node),
                esc(&h.comment)
            );
        }
        b.push_str("</table>");
    }
    Ok(b)
}

fn diff_counts(d: &str) -> (usize, usize) {
    let add = d
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .count();
    let del = d
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .count();
    (add, del)
}

/// A unified diff (3 lines of context).
pub fn unified_diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("before", "after")
        .to_string()
}

fn diff_html(d: &str) -> String {
    let mut b = String::from("<pre class=\"diff\">");
    for l in d.lines() {
        let cls = if l.starts_with("+++") || l.starts_with("---") {
            "h"
        } else if l.starts_with('+') {
            "add"
        } else if l.starts_with('-') {
            "del"
        } else if l.starts_with("@@") {
            "h"
        } else {
            "ctx"
        };
        // One block per line: no newline between them inside the <pre>.
        let _ = write!(b, "<span class=\"{cls}\">{}</span>", esc(l));
    }
    b.push_str("</pre>");
    b
}

/// Dry-run results as HTML.
pub fn dry_run_html(v: &[crate::DryRunVerdict]) -> String {
    let mut b = String::from("<section class=\"dry-run\"><h2>Dry run</h2>");
    for x in v {
        let _ = write!(
            b,
            "<p>Policy <b>{}</b> for {}: score <b>{:.2}</b> (required {:.2}) → <b class=\"verdict\">{}</b>{}{}</p>",
            esc(&x.policy),
            esc(&x.recipients.join(", ")),
            x.score,
            x.required,
            if x.spam { "spam" } else { "not spam" },
            if x.allowed { " · sender allow-listed" } else { "" },
            if x.denied { " · sender deny-listed" } else { "" },
        );
        b.push_str("<table class=\"list\"><tr><th>Rule</th><th>Points</th></tr>");
        for (n, p) in &x.hits {
            let _ = write!(b, "<tr><td>{}</td><td>{p:.2}</td></tr>", esc(n));
        }
        let _ = write!(
            b,
            "</table><p>Actions: <b class=\"actions-out\">{}</b></p>",
            if x.actions.is_empty() {
                "deliver as is".to_string()
            } else {
                esc(&x.actions.join(", "))
            }
        );
    }
    b.push_str("</section>");
    b
}

/// Saves a policy through the gateway and records it in the history.
pub async fn save_policy(
    state: &AppState,
    who: &Principal,
    text: &str,
    comment: &str,
) -> Result<i64, String> {
    let pc = state
        .gateway
        .policy()
        .ok_or("this gateway has no rules-engine policy")?;
    let src = {
        let pc = pc.clone();
        tokio::task::spawn_blocking(move || pc.source())
            .await
            .map_err(|e| e.to_string())?
    };
    if !src.editable {
        return Err(format!("the policy is read-only here: {}", src.note));
    }
    let t = text.replace("\r\n", "\n");
    let pc2 = pc.clone();
    let t2 = t.clone();
    let before = tokio::task::spawn_blocking(move || pc2.save(&t2))
        .await
        .map_err(|e| e.to_string())??;
    let diff = unified_diff(&before, &t);
    tracing::info!(target: "mxguard::event", by = %who.user, "policy saved from the console");
    state
        .store
        .add_policy_change(
            &who.user,
            &state.settings.node,
            src.path.as_deref().unwrap_or(""),
            &t,
            &diff,
            comment,
        )
        .await
        .map_err(|e| format!("the policy is saved and applied, but its history entry failed: {e}"))
}

/// Runs a check or a dry run on a blocking thread.
pub async fn policy_op<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn crate::PolicyControl) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let pc = state
        .gateway
        .policy()
        .ok_or("this gateway has no rules-engine policy")?;
    tokio::task::spawn_blocking(move || f(pc.as_ref()))
        .await
        .map_err(|e| e.to_string())?
}

/// Splits `a, b c` into addresses.
pub fn split_rcpts(s: &str) -> Vec<String> {
    s.split([',', ' ', ';', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn policy_post(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> PageResult {
    let f = parse_form(&body);
    let text = field(&f, "text").unwrap_or("").replace("\r\n", "\n");
    let op = field(&f, "op").unwrap_or("check").to_string();
    let mail_from = field(&f, "mail_from").unwrap_or("").to_string();
    let rcpts_s = field(&f, "rcpts").unwrap_or("").to_string();
    let message = field(&f, "message").unwrap_or("").to_string();
    let comment = field(&f, "comment").unwrap_or("").to_string();
    let result = match op.as_str() {
        "save" => match save_policy(&state, &who, &text, &comment).await {
            Ok(id) => {
                return Ok(back(
                    "/policy",
                    "ok",
                    &format!("Saved and applied (history #{id})"),
                ))
            }
            Err(e) => html::notice("err", &format!("Not saved: {e}")),
        },
        "dry-run" => {
            let (t, m, mf, r) = (
                text.clone(),
                message.replace("\r\n", "\n").replace('\n', "\r\n"),
                mail_from.clone(),
                split_rcpts(&rcpts_s),
            );
            match policy_op(&state, move |pc| pc.dry_run(&t, m.as_bytes(), &mf, &r)).await {
                Ok(v) => dry_run_html(&v),
                Err(e) => html::notice("err", &e),
            }
        }
        _ => {
            let t = text.clone();
            match policy_op(&state, move |pc| pc.check(&t)).await {
                Ok(s) => html::notice(
                    "ok",
                    &format!(
                        "Valid: {} rule(s) ({}), {} policy(ies){}.",
                        s.rules.len(),
                        s.rules.join(", "),
                        s.policies.len(),
                        if s.policies.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", s.policies.join(", "))
                        }
                    ),
                ),
                Err(e) => format!(
                    "<div class=\"notice err\"><b>Invalid policy:</b><pre>{}</pre></div>",
                    esc(&e)
                ),
            }
        }
    };
    let b = policy_page(
        &state,
        &who,
        &[],
        Some(&text),
        Some(result),
        Some((&mail_from, &rcpts_s, &message)),
    )
    .await?;
    Ok(Html(page("Policies", &who, "/policy", &b)).into_response())
}

pub async fn policy_change(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> PageResult {
    let Some(c) = state.store.policy_change(id).await? else {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            format!("no history entry {id}"),
        ));
    };
    let b = format!(
        "<p>Saved {} by {} on node {} to {}.</p><p>Comment: {}</p><h2>Diff</h2>{}<h2>Policy as saved</h2><pre class=\"policy\">{}</pre>",
        html::time(c.time),
        esc(&c.user),
        esc(&c.node),
        esc(&c.path),
        esc(&c.comment),
        diff_html(&c.diff),
        esc(&c.text)
    );
    Ok(Html(page(&format!("Policy change #{id}"), &who, "/policy", &b)).into_response())
}

// ------------------------------------------------------------ signatures

pub async fn signatures(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let s = state.gateway.signatures();
    let mut b = flash(&pairs);
    let _ = write!(
        b,
        "<table class=\"kv\"><tr><th>Version</th><td class=\"mono\">{}</td></tr>\
         <tr><th>Database version (clamd)</th><td>{}</td></tr><tr><th>Loaded</th><td>{} UTC</td></tr>\
         <tr><th>Signatures</th><td>{}</td></tr><tr><th>Hash / body / logical</th><td>{} / {} / {}</td></tr>\
         <tr><th>Allow-list entries</th><td>{}</td></tr><tr><th>Ignored (.ign2)</th><td>{}</td></tr>\
         <tr><th>Skipped by functionality level</th><td>{}</td></tr>\
         <tr><th>Invalid lines</th><td>{}</td></tr><tr><th>Unsupported lines</th><td>{}</td></tr>\
         <tr><th>Built-in signatures</th><td>{}</td></tr><tr><th>Memory</th><td>{}</td></tr></table>",
        esc(&s.version),
        s.db_version,
        html::time(s.loaded_at),
        num(s.signatures),
        num(s.hash_sigs),
        num(s.body_sigs),
        num(s.logical_sigs),
        num(s.allow_list),
        num(s.ignored_sigs),
        num(s.flevel_skipped),
        num(s.invalid_lines),
        num(s.unsupported_lines),
        if s.builtin { "on" } else { "off" },
        html::bytes(s.memory_bytes)
    );
    if who.is_admin() {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/signatures/reload\">{}<button type=\"submit\">Reload the databases now</button> \
             <span class=\"muted\">scans in progress finish on the old set; a failed load keeps it. {}</span></form>",
            html::csrf_field(&who),
            esc(&s.note)
        );
    }
    if !s.containers.is_empty() {
        b.push_str(
            "<h2>Containers</h2><table class=\"list\"><tr><th>Name</th><th>Version</th></tr>",
        );
        for (n, v) in &s.containers {
            let _ = write!(b, "<tr><td>{}</td><td>{v}</td></tr>", esc(n));
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Database files</h2>");
    if s.files.is_empty() {
        b.push_str("<p class=\"muted\">None configured (built-in signatures only).</p>");
    } else {
        b.push_str(
            "<table class=\"list\"><tr><th>File</th><th>Size</th><th>Last update (UTC)</th></tr>",
        );
        for f in &s.files {
            let _ = write!(
                b,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.path),
                html::bytes(f.size),
                html::time(f.modified)
            );
        }
        b.push_str("</table>");
    }
    if !s.problems.is_empty() {
        b.push_str("<h2>Lines not loaded</h2><pre class=\"problems\">");
        for p in &s.problems {
            b.push_str(&esc(p));
            b.push('\n');
        }
        b.push_str("</pre>");
    }
    Ok(Html(page("Signatures and engines", &who, "/signatures", &b)).into_response())
}

pub async fn signatures_reload(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Response {
    tracing::info!(target: "mxguard::event", by = %who.user, "signature reload requested from the console");
    match state.gateway.reload_signatures().await {
        Ok(s) => back(
            "/signatures",
            "ok",
            &format!(
                "Reloaded: {} signatures, version {}",
                s.signatures, s.version
            ),
        ),
        Err(e) => back(
            "/signatures",
            "err",
            &format!("Reload failed (the old set stays): {e}"),
        ),
    }
}

// ---------------------------------------------------------------- system

/// The system page's facts.
#[derive(Debug, Serialize)]
pub struct SystemInfo {
    pub node: String,
    pub version: String,
    pub started_at: i64,
    pub uptime_secs: u64,
    pub listeners: Vec<crate::Listener>,
    pub store_backend: String,
    pub schema_version: i64,
    pub facts: Vec<(String, String)>,
    pub counters: Vec<Counter>,
    pub queue_size: u64,
}

pub async fn system_info(state: &AppState) -> SystemInfo {
    SystemInfo {
        node: state.settings.node.clone(),
        version: state.settings.version.clone(),
        started_at: state
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        uptime_secs: state.started.elapsed().as_secs(),
        listeners: state.gateway.listeners(),
        store_backend: state.store.backend().as_str().to_string(),
        schema_version: state.store.schema_version().await.unwrap_or(0),
        facts: state.gateway.facts(),
        counters: state.gateway.counters(),
        queue_size: state.gateway.queue_size(),
    }
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d} d {h} h {m} min")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {s} s")
    }
}

pub async fn system(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> PageResult {
    let s = system_info(&state).await;
    let mut b = String::new();
    let _ = write!(
        b,
        "<table class=\"kv\"><tr><th>Node</th><td>{}</td></tr><tr><th>Version</th><td>mxguard {}</td></tr>\
         <tr><th>Started</th><td>{} UTC</td></tr><tr><th>Uptime</th><td>{}</td></tr>\
         <tr><th>Store</th><td>{} (schema {})</td></tr><tr><th>Queue</th><td>{} spool entries</td></tr>",
        esc(&s.node),
        esc(&s.version),
        html::time(s.started_at),
        duration(s.uptime_secs),
        esc(&s.store_backend),
        s.schema_version,
        num(s.queue_size)
    );
    for (k, v) in &s.facts {
        let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    b.push_str(
        "</table><h2>Listeners</h2><table class=\"list\"><tr><th>Kind</th><th>Address</th></tr>",
    );
    for l in &s.listeners {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&l.kind),
            esc(&l.address)
        );
    }
    b.push_str("</table><h2>Counters since start</h2><table class=\"kv\">");
    for c in &s.counters {
        let _ = write!(
            b,
            "<tr><th>{} {}</th><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.label),
            num(c.value)
        );
    }
    b.push_str("</table><p class=\"muted\">The same numbers for Prometheus: <a href=\"/metrics\">/metrics</a> (a session or an API token).</p>");
    Ok(Html(page("System", &who, "/system", &b)).into_response())
}

// ----------------------------------------------------- users and tokens

pub async fn users(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    users_page(&state, &who, &query(&q), "").await
}

/// A secret shown once, in the answer to the POST that made it (never in
/// a URL, so never in the browser's history).
fn secret_notice(label: &str, id: &str, secret: &str) -> String {
    format!(
        "<div class=\"notice ok\">{} (shown once, copy it now): <code id=\"{id}\">{}</code></div>",
        esc(label),
        esc(secret)
    )
}

async fn users_page(
    state: &AppState,
    who: &Principal,
    pairs: &[(String, String)],
    extra: &str,
) -> PageResult {
    let (users, tokens) = tokio::try_join!(state.store.users(), state.store.api_tokens(None))?;
    let mut b = flash(pairs);
    b.push_str(extra);
    b.push_str("<h2>Users</h2><table class=\"list\"><tr><th>Name</th><th>Role</th><th>Created</th><th>Changed</th>");
    if who.is_admin() {
        b.push_str("<th>Actions</th>");
    }
    b.push_str("</tr>");
    let csrf = html::csrf_field(&who);
    for u in &users {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&u.name),
            esc(&u.role),
            html::time(u.created_at),
            html::time(u.updated_at)
        );
        if who.is_admin() {
            let n = url_encode(&u.name);
            let other = if u.role == "admin" {
                "auditor"
            } else {
                "admin"
            };
            let _ = write!(
                b,
                "<td><form method=\"post\" action=\"/users/{n}/role\" class=\"inline\">{csrf}<input type=\"hidden\" name=\"role\" value=\"{other}\"><button type=\"submit\">Make {other}</button></form> \
                 <form method=\"post\" action=\"/users/{n}/password\" class=\"inline\">{csrf}<input type=\"password\" name=\"password\" placeholder=\"new password (empty: generate)\" autocomplete=\"new-password\"><button type=\"submit\">Set password</button></form> \
                 <form method=\"post\" action=\"/users/{n}/delete\" class=\"inline\">{csrf}<button type=\"submit\" class=\"danger\" data-confirm=\"Delete this user, its sessions and tokens?\">Delete</button></form></td>"
            );
        }
        b.push_str("</tr>");
    }
    b.push_str("</table>");
    if who.is_admin() {
        let _ = write!(
            b,
            "<h3>Add a user</h3><form method=\"post\" action=\"/users\" class=\"filters\">{csrf}\
             <label>Name<input name=\"name\" required></label>\
             <label>Role<select name=\"role\"><option value=\"auditor\">auditor (read-only)</option><option value=\"admin\">admin</option></select></label>\
             <label>Password<input type=\"password\" name=\"password\" placeholder=\"empty: generate one\" autocomplete=\"new-password\"></label>\
             <button type=\"submit\">Add</button></form>"
        );
    }
    b.push_str("<h2>API tokens</h2><p class=\"muted\">For <code>Authorization: Bearer mxg_…</code> on <code>/api/v1/…</code> and <code>/metrics</code>; only a hash is stored. A token never has more rights than its user.</p>\
                <table class=\"list\"><tr><th>Id</th><th>Name</th><th>User</th><th>Role</th><th>Starts with</th><th>Created</th><th>Expires</th><th>Last used</th>");
    if who.is_admin() {
        b.push_str("<th></th>");
    }
    b.push_str("</tr>");
    for t in &tokens {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}…</td><td>{}</td><td>{}</td><td>{}</td>",
            t.id,
            esc(&t.name),
            esc(&t.user),
            esc(&t.role),
            esc(&t.prefix),
            html::time(t.created_at),
            t.expires_at.map(html::time).unwrap_or_else(|| "never".into()),
            t.last_used.map(html::time).unwrap_or_default()
        );
        if who.is_admin() {
            let _ = write!(
                b,
                "<td><form method=\"post\" action=\"/tokens/{}/delete\" class=\"inline\">{csrf}<button type=\"submit\" class=\"danger\">Revoke</button></form></td>",
                t.id
            );
        }
        b.push_str("</tr>");
    }
    b.push_str("</table>");
    if who.is_admin() {
        let _ = write!(
            b,
            "<h3>Create a token</h3><form method=\"post\" action=\"/tokens\" class=\"filters\">{csrf}\
             <label>Name<input name=\"name\" required placeholder=\"e.g. prometheus\"></label>\
             <label>Role<select name=\"role\"><option value=\"auditor\">auditor (read-only)</option><option value=\"admin\">admin</option></select></label>\
             <label>Expires in days<input name=\"days\" placeholder=\"empty: never\"></label>\
             <button type=\"submit\">Create</button></form>"
        );
    }
    Ok(Html(page("Users & tokens", &who, "/users", &b)).into_response())
}

async fn hash_blocking(p: String) -> String {
    tokio::task::spawn_blocking(move || auth::hash_password(&p))
        .await
        .unwrap_or_default()
}

/// Adds a user; returns the password (generated when `password` is empty).
pub async fn add_user(
    state: &AppState,
    by: &Principal,
    name: &str,
    role: &str,
    password: &str,
) -> Result<String, String> {
    auth::check_user_name(name)?;
    let role = Role::parse(role).ok_or("role is admin or auditor")?;
    let password = if password.is_empty() {
        auth::generate_password()
    } else {
        auth::check_new_password(password)?;
        password.to_string()
    };
    let h = hash_blocking(password.clone()).await;
    state
        .store
        .add_user(name, &h, role.as_str())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(target: "mxguard::event", user = name, role = role.as_str(), by = %by.user, "console user added");
    Ok(password)
}

pub async fn user_add(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let name = field(&f, "name").unwrap_or("").trim().to_string();
    let given = field(&f, "password").unwrap_or("").to_string();
    match add_user(
        &state,
        &who,
        &name,
        field(&f, "role").unwrap_or("auditor"),
        &given,
    )
    .await
    {
        Ok(p) if given.is_empty() => users_page(
            &state,
            &who,
            &[],
            &secret_notice(
                &format!("Added {name}; generated password"),
                "new-password",
                &p,
            ),
        )
        .await
        .into_response(),
        Ok(_) => back("/users", "ok", &format!("Added {name}")),
        Err(e) => back("/users", "err", &e),
    }
}

/// Refuses to remove or demote the last admin.
async fn last_admin(state: &AppState, name: &str) -> Result<bool, StoreError> {
    let users = state.store.users().await?;
    let admins: Vec<_> = users.iter().filter(|u| u.role == "admin").collect();
    Ok(admins.len() == 1 && admins[0].name == name)
}

pub async fn delete_user(state: &AppState, by: &Principal, name: &str) -> Result<(), String> {
    if last_admin(state, name).await.map_err(|e| e.to_string())? {
        return Err("the last admin cannot be deleted".into());
    }
    match state.store.delete_user(name).await {
        Ok(true) => {
            tracing::info!(target: "mxguard::event", user = name, by = %by.user, "console user deleted");
            Ok(())
        }
        Ok(false) => Err(format!("no user {name}")),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn user_delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    match delete_user(&state, &who, &name).await {
        Ok(()) => back("/users", "ok", &format!("Deleted {name}")),
        Err(e) => back("/users", "err", &e),
    }
}

pub async fn user_password(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let given = field(&f, "password").unwrap_or("").to_string();
    let p = if given.is_empty() {
        auth::generate_password()
    } else if let Err(e) = auth::check_new_password(&given) {
        return back("/users", "err", &e);
    } else {
        given.clone()
    };
    let h = hash_blocking(p.clone()).await;
    match state.store.set_password(&name, &h).await {
        Ok(true) => {
            tracing::info!(target: "mxguard::event", user = %name, by = %who.user, "console password set");
            if given.is_empty() {
                users_page(
                    &state,
                    &who,
                    &[],
                    &secret_notice(&format!("New password for {name}"), "new-password", &p),
                )
                .await
                .into_response()
            } else {
                back("/users", "ok", &format!("Password of {name} changed"))
            }
        }
        Ok(false) => back("/users", "err", &format!("No user {name}")),
        Err(e) => back("/users", "err", &e.to_string()),
    }
}

pub async fn user_role(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let Some(role) = field(&f, "role").and_then(Role::parse) else {
        return back("/users", "err", "role is admin or auditor");
    };
    if role == Role::Auditor && last_admin(&state, &name).await.unwrap_or(true) {
        return back("/users", "err", "the last admin cannot be made an auditor");
    }
    match state.store.set_role(&name, role.as_str()).await {
        Ok(true) => {
            tracing::info!(target: "mxguard::event", user = %name, role = role.as_str(), by = %who.user, "console role changed");
            back("/users", "ok", &format!("{name} is now {}", role.as_str()))
        }
        Ok(false) => back("/users", "err", &format!("No user {name}")),
        Err(e) => back("/users", "err", &e.to_string()),
    }
}

/// Creates an API token for `who`; returns (id, token).
pub async fn create_token(
    state: &AppState,
    who: &Principal,
    name: &str,
    role: &str,
    days: Option<i64>,
) -> Result<(i64, String), String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err("a token needs a name (at most 100 characters)".into());
    }
    let role = Role::parse(role).ok_or("role is admin or auditor")?;
    if role == Role::Admin && !who.is_admin() {
        return Err("a token cannot have more rights than its user".into());
    }
    let expires = match days {
        Some(d) if d > 0 => Some(mxguard_store::now_secs() + d * 86_400),
        Some(_) => return Err("days: a positive number".into()),
        None => None,
    };
    let token = auth::generate_token();
    let id = state
        .store
        .create_api_token(&token, name, &who.user, role.as_str(), expires)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(target: "mxguard::event", id, name, by = %who.user, "API token created");
    Ok((id, token))
}

pub async fn token_add(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let days = match nonempty(&f, "days") {
        Some(d) => match d.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => return back("/users", "err", "days: a number"),
        },
        None => None,
    };
    match create_token(
        &state,
        &who,
        field(&f, "name").unwrap_or(""),
        field(&f, "role").unwrap_or("auditor"),
        days,
    )
    .await
    {
        Ok((_, t)) => users_page(
            &state,
            &who,
            &[],
            &secret_notice("New API token", "new-token", &t),
        )
        .await
        .into_response(),
        Err(e) => back("/users", "err", &e),
    }
}

pub async fn token_delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> Response {
    match state.store.delete_api_token(id).await {
        Ok(true) => {
            tracing::info!(target: "mxguard::event", id, by = %who.user, "API token revoked");
            back("/users", "ok", &format!("Token {id} revoked"))
        }
        Ok(false) => back("/users", "err", &format!("No token {id}")),
        Err(e) => back("/users", "err", &e.to_string()),
    }
}

pub async fn account(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: RawQuery,
) -> PageResult {
    let pairs = query(&q);
    let tokens = state.store.api_tokens(Some(&who.user)).await?;
    let mut b = flash(&pairs);
    let _ = write!(
        b,
        "<p>Signed in as <b>{}</b> ({}). You have {} API token(s).</p>\
         <h2>Change your password</h2><form method=\"post\" action=\"/account/password\" class=\"filters\">{}\
         <label>Current password<input type=\"password\" name=\"current\" autocomplete=\"current-password\" required></label>\
         <label>New password<input type=\"password\" name=\"new\" autocomplete=\"new-password\" required minlength=\"10\"></label>\
         <button type=\"submit\">Change</button></form>",
        esc(&who.user),
        who.role.as_str(),
        tokens.len(),
        html::csrf_field(&who)
    );
    Ok(Html(page("Account", &who, "/account", &b)).into_response())
}

pub async fn account_password(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let cur = field(&f, "current").unwrap_or("").to_string();
    let new = field(&f, "new").unwrap_or("").to_string();
    if let Err(e) = auth::check_new_password(&new) {
        return back("/account", "err", &e);
    }
    let Ok(Some((_, hash))) = state.store.user_with_hash(&who.user).await else {
        return back("/account", "err", "no such user");
    };
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&cur, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return back("/account", "err", "The current password is wrong");
    }
    let h = hash_blocking(new).await;
    match state.store.set_password(&who.user, &h).await {
        // Every session of the user ended, this one too: log in again.
        Ok(_) => Redirect::to("/login?ok=Password+changed%3B+log+in+again").into_response(),
        Err(e) => back("/account", "err", &e.to_string()),
    }
}

// ------------------------------------------------------------ login etc.

fn login_html(pairs: &[(String, String)], error: Option<&str>) -> String {
    let next = field(pairs, "next")
        .filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .unwrap_or("/");
    let mut msg = String::new();
    if let Some(m) = field(pairs, "ok") {
        msg.push_str(&html::notice("ok", m));
    }
    if let Some(e) = error {
        msg.push_str(&html::notice("err", e));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Log in · mxguard</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"narrow\">\
         <h1>mxguard</h1>{msg}<form method=\"post\" action=\"/login\" class=\"login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label>User<input name=\"user\" id=\"user\" autocomplete=\"username\" required autofocus></label>\
         <label>Password<input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\" id=\"login\">Log in</button></form>\
         <p class=\"muted\">First start: the password of <code>admin</code> was printed once in the log. \
         Add users with <code>mxguard user add NAME --role admin|auditor</code>.</p></main></body></html>",
        esc(next)
    )
}

pub async fn login_form(q: RawQuery) -> Html<String> {
    Html(login_html(&query(&q), None))
}

pub async fn login(
    State(state): State<AppState>,
    auth::ClientIp(ip): auth::ClientIp,
    body: Bytes,
) -> Response {
    let f = parse_form(&body);
    let user = field(&f, "user").unwrap_or("").trim().to_string();
    let password = field(&f, "password").unwrap_or("").to_string();
    let next = field(&f, "next")
        .filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .unwrap_or("/")
        .to_string();
    let pairs = vec![("next".to_string(), next.clone())];
    if let Some(wait) = state.limiter.blocked(&ip, &user) {
        tracing::warn!(target: "mxguard::event", %ip, user, "console login refused: too many failures");
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Html(login_html(
                &pairs,
                Some(&format!(
                    "Too many failed logins; try again in {} minute(s).",
                    wait.div_ceil(60)
                )),
            )),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let found = state.store.user_with_hash(&user).await;
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(login_html(&pairs, Some(&format!("Store unavailable: {e}")))),
            )
                .into_response()
        }
    };
    let hash = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| auth::dummy_hash().to_string());
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false)
        && found.is_some();
    if !ok {
        state.limiter.failed(&ip, &user);
        tracing::warn!(target: "mxguard::event", %ip, user, "console login failed");
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_html(&pairs, Some("Wrong user name or password."))),
        )
            .into_response();
    }
    state.limiter.succeeded(&ip, &user);
    let token = auth::random_hex(32);
    let csrf = auth::random_hex(32);
    let lifetime = state.settings.session_lifetime;
    let expires = mxguard_store::now_secs() + lifetime.as_secs() as i64;
    if let Err(e) = state
        .store
        .create_session(&token, &user, &csrf, expires, &ip.to_string())
        .await
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(login_html(&pairs, Some(&format!("Store unavailable: {e}")))),
        )
            .into_response();
    }
    tracing::info!(target: "mxguard::event", %ip, user, "console login");
    let mut r = Redirect::to(&next).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        auth::session_cookie(Some(&token), lifetime, state.settings.secure_cookies),
    );
    r
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Response {
    if let auth::Via::Session { token, .. } = &who.via {
        let _ = state.store.delete_session(token).await;
    }
    let mut r = Redirect::to("/login?ok=Logged+out").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        auth::session_cookie(
            None,
            state.settings.session_lifetime,
            state.settings.secure_cookies,
        ),
    );
    r
}

pub async fn not_found(headers: HeaderMap) -> Response {
    let _ = headers;
    PageError(StatusCode::NOT_FOUND, "No such page.".into()).into_response()
}

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

pub async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

pub async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_800_000_000;
        assert_eq!(parse_time("24h", now), Ok(now - 86_400));
        assert_eq!(parse_time("2026-01-01", now), Ok(1_767_225_600));
        assert_eq!(parse_time("2026-01-01T01:00", now), Ok(1_767_229_200));
        assert_eq!(parse_time("2026-01-01T01:00:00Z", now), Ok(1_767_229_200));
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn diffs() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n");
        assert!(d.contains("-b") && d.contains("+B"), "{d}");
        assert_eq!(diff_counts(&d), (1, 1));
    }
}
