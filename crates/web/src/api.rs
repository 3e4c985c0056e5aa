//! The JSON API (`/api/v1/…`, documented in `openapi.json`) and the
//! Prometheus metrics. Same data functions as the pages.

use crate::auth::Principal;
use crate::pages::{self, query, PageError};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use mxguard_store::StoreError;
use serde::Deserialize;
use serde_json::json;
use std::fmt::Write;

/// The OpenAPI document, hand-written; a test checks it lists exactly the
/// routes of the route table.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// An API error: `{"error": "..."}` with a status.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let PageError(s, m) = PageError::from(e);
        ApiError(s, m)
    }
}

fn bad(e: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.into())
}

type ApiResult = Result<Response, ApiError>;

fn ok<T: serde::Serialize>(v: T) -> ApiResult {
    Ok(Json(v).into_response())
}

fn body_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(|e| bad(format!("request body: {e}")))
}

pub async fn openapi() -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub async fn whoami(Extension(who): Extension<Principal>) -> ApiResult {
    ok(json!({
        "user": who.user,
        "role": who.role,
        "via": match who.via { crate::auth::Via::Session { .. } => "session", crate::auth::Via::Token(_) => "token" },
    }))
}

pub async fn dashboard(State(state): State<crate::AppState>, q: RawQuery) -> ApiResult {
    let pairs = query(&q);
    let hours = crate::auth::field(&pairs, "hours")
        .and_then(|h| h.parse().ok())
        .unwrap_or(24);
    ok(pages::dashboard_data(&state, hours).await?)
}

pub async fn quarantine(State(state): State<crate::AppState>, q: RawQuery) -> ApiResult {
    let pairs = query(&q);
    let qq = pages::quarantine_query(&pairs).map_err(bad)?;
    let (items, total) = tokio::try_join!(state.store.search(&qq), state.store.count(&qq))?;
    ok(json!({ "total": total, "offset": qq.offset, "items": items }))
}

pub async fn quarantine_item(
    State(state): State<crate::AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    match state.store.get(&id).await? {
        Some(i) => ok(i),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no quarantine item {id}"),
        )),
    }
}

pub async fn quarantine_message(
    State(state): State<crate::AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    match state.store.message(&id).await? {
        Some(m) => Ok(pages::eml_response(&id, m)),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no quarantine item {id}"),
        )),
    }
}

pub async fn quarantine_view(
    State(state): State<crate::AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    let Some(m) = state.store.message(&id).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no quarantine item {id}"),
        ));
    };
    let v = tokio::task::spawn_blocking(move || crate::mail::view(&m))
        .await
        .unwrap_or_default();
    ok(v)
}

#[derive(Deserialize, Default)]
struct ReleaseBody {
    #[serde(default)]
    rcpts: Vec<String>,
}

pub async fn quarantine_release(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let b: ReleaseBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReleaseBody::default()
    } else {
        body_json(&body)?
    };
    match state.release_item(&id, &b.rcpts, &who.user).await {
        Ok(r) => ok(r),
        Err(e) if e.starts_with("no quarantine item") => Err(ApiError(StatusCode::NOT_FOUND, e)),
        Err(e) => Err(ApiError(StatusCode::CONFLICT, e)),
    }
}

pub async fn quarantine_delete(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult {
    if state.delete_item(&id).await? {
        tracing::info!(target: "mxguard::event", id, by = %who.user, "quarantine delete (API)");
        ok(json!({ "deleted": id }))
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no quarantine item {id}"),
        ))
    }
}

#[derive(Deserialize)]
struct BulkBody {
    action: String,
    ids: Vec<String>,
}

pub async fn quarantine_bulk(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> ApiResult {
    let b: BulkBody = body_json(&body)?;
    if !matches!(b.action.as_str(), "release" | "delete") {
        return Err(bad("action is release or delete"));
    }
    ok(json!({ "results": pages::bulk(&state, &who, &b.action, &b.ids).await }))
}

pub async fn events(State(state): State<crate::AppState>, q: RawQuery) -> ApiResult {
    let pairs = query(&q);
    let eq = pages::event_query(&pairs).map_err(bad)?;
    if crate::auth::field(&pairs, "format") == Some("csv") {
        let mut out = Vec::new();
        state.store.export_events_csv(&eq, &mut out).await?;
        return Ok(pages::csv_response("events.csv", out));
    }
    let evs = state.store.events(&eq).await?;
    let next = match (evs.last(), eq.limit) {
        (Some(l), Some(limit)) if evs.len() as u32 >= limit => {
            Some(format!("{}:{}", l.event.time, l.id))
        }
        _ => None,
    };
    ok(json!({ "events": evs, "next_before": next }))
}

pub async fn trace(
    State(state): State<crate::AppState>,
    Path(queue_id): Path<String>,
) -> ApiResult {
    let t = pages::trace_data(&state, &queue_id).await?;
    if t.events.is_empty() && t.quarantine.is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("nothing recorded for queue id {queue_id}"),
        ));
    }
    ok(t)
}

pub async fn reports(State(state): State<crate::AppState>, q: RawQuery) -> ApiResult {
    let pairs = query(&q);
    let rq = pages::report_query(&pairs).map_err(bad)?;
    let r = pages::cached_report(&state, &rq).await?;
    if crate::auth::field(&pairs, "format") == Some("csv") {
        let section = crate::auth::field(&pairs, "section").unwrap_or("volume");
        let text = pages::report_csv(&r, section).map_err(bad)?;
        return Ok(pages::csv_response(
            &format!("report-{section}.csv"),
            text.into_bytes(),
        ));
    }
    ok(&*r)
}

pub async fn signatures(State(state): State<crate::AppState>) -> ApiResult {
    ok(state.gateway.signatures())
}

pub async fn signatures_reload(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult {
    tracing::info!(target: "mxguard::event", by = %who.user, "signature reload requested (API)");
    match state.gateway.reload_signatures().await {
        Ok(s) => ok(s),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

pub async fn system(State(state): State<crate::AppState>) -> ApiResult {
    ok(pages::system_info(&state).await)
}

pub async fn policy(State(state): State<crate::AppState>) -> ApiResult {
    let Some(pc) = state.gateway.policy() else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "this gateway has no rules-engine policy".into(),
        ));
    };
    let src = tokio::task::spawn_blocking(move || pc.source())
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    ok(src)
}

#[derive(Deserialize)]
struct PolicyBody {
    text: String,
    #[serde(default)]
    comment: String,
}

pub async fn policy_save(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> ApiResult {
    let b: PolicyBody = body_json(&body)?;
    match pages::save_policy(&state, &who, &b.text, &b.comment).await {
        Ok(id) => ok(json!({ "saved": true, "history_id": id })),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

pub async fn policy_check(State(state): State<crate::AppState>, body: Bytes) -> ApiResult {
    let b: PolicyBody = body_json(&body)?;
    match pages::policy_op(&state, move |pc| pc.check(&b.text)).await {
        Ok(s) => ok(json!({ "valid": true, "rules": s.rules, "policies": s.policies })),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

#[derive(Deserialize)]
struct DryRunBody {
    /// Default: the policy in force.
    text: Option<String>,
    message: String,
    #[serde(default)]
    mail_from: String,
    #[serde(default)]
    rcpts: Vec<String>,
}

pub async fn policy_dry_run(State(state): State<crate::AppState>, body: Bytes) -> ApiResult {
    let b: DryRunBody = body_json(&body)?;
    let r = pages::policy_op(&state, move |pc| {
        let text = match b.text {
            Some(t) => t,
            None => pc.source().text,
        };
        pc.dry_run(&text, b.message.as_bytes(), &b.mail_from, &b.rcpts)
    })
    .await;
    match r {
        Ok(v) => ok(json!({ "verdicts": v })),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

pub async fn policy_history(State(state): State<crate::AppState>, q: RawQuery) -> ApiResult {
    let pairs = query(&q);
    let limit = crate::auth::field(&pairs, "limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50u32)
        .clamp(1, 1000);
    ok(state.store.policy_history(limit).await?)
}

pub async fn policy_change(State(state): State<crate::AppState>, Path(id): Path<i64>) -> ApiResult {
    match state.store.policy_change(id).await? {
        Some(c) => ok(c),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no history entry {id}"),
        )),
    }
}

pub async fn users(State(state): State<crate::AppState>) -> ApiResult {
    ok(state.store.users().await?)
}

#[derive(Deserialize)]
struct UserBody {
    name: String,
    role: String,
    #[serde(default)]
    password: String,
}

pub async fn user_add(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> ApiResult {
    let b: UserBody = body_json(&body)?;
    let generated = b.password.is_empty();
    match pages::add_user(&state, &who, &b.name, &b.role, &b.password).await {
        Ok(p) => Ok((
            StatusCode::CREATED,
            Json(json!({
                "name": b.name,
                "role": b.role,
                "password": if generated { Some(p) } else { None },
            })),
        )
            .into_response()),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

pub async fn user_delete(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult {
    match pages::delete_user(&state, &who, &name).await {
        Ok(()) => ok(json!({ "deleted": name })),
        Err(e) if e.starts_with("no user") => Err(ApiError(StatusCode::NOT_FOUND, e)),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

pub async fn tokens(State(state): State<crate::AppState>) -> ApiResult {
    ok(state.store.api_tokens(None).await?)
}

#[derive(Deserialize)]
struct TokenBody {
    name: String,
    #[serde(default = "auditor")]
    role: String,
    days: Option<i64>,
}

fn auditor() -> String {
    "auditor".into()
}

pub async fn token_add(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> ApiResult {
    let b: TokenBody = body_json(&body)?;
    match pages::create_token(&state, &who, &b.name, &b.role, b.days).await {
        Ok((id, token)) => Ok((
            StatusCode::CREATED,
            Json(json!({ "id": id, "token": token, "name": b.name, "role": b.role })),
        )
            .into_response()),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

pub async fn token_delete(
    State(state): State<crate::AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult {
    if state.store.delete_api_token(id).await? {
        tracing::info!(target: "mxguard::event", id, by = %who.user, "API token revoked (API)");
        ok(json!({ "deleted": id }))
    } else {
        Err(ApiError(StatusCode::NOT_FOUND, format!("no token {id}")))
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text format: the dashboard's numbers (last 24 hours, from
/// the store's counters), the process counters since start, queue and
/// quarantine sizes, signatures.
pub async fn metrics(State(state): State<crate::AppState>) -> ApiResult {
    let d = pages::dashboard_data(&state, 24).await?;
    let s = state.gateway.signatures();
    let mut o = String::new();
    let g = |o: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(
            o,
            "# HELP mxguard_{name} {help}\n# TYPE mxguard_{name} {kind}"
        );
    };
    g(
        &mut o,
        "messages_24h",
        "Messages in the last 24 hours by verdict (store counters, all nodes).",
        "gauge",
    );
    for (v, n) in &d.by_verdict {
        let _ = writeln!(o, "mxguard_messages_24h{{verdict=\"{}\"}} {n}", label(v));
    }
    g(
        &mut o,
        "actions_24h",
        "Messages in the last 24 hours by action.",
        "gauge",
    );
    for (v, n) in &d.by_action {
        let _ = writeln!(o, "mxguard_actions_24h{{action=\"{}\"}} {n}", label(v));
    }
    g(
        &mut o,
        "detections_24h",
        "Messages in the last 24 hours whose verdict was not clean.",
        "gauge",
    );
    let _ = writeln!(o, "mxguard_detections_24h {}", d.detections);
    g(
        &mut o,
        "threats_24h",
        "Messages per threat in the last 24 hours (top 10).",
        "gauge",
    );
    for t in &d.top_threats {
        let _ = writeln!(
            o,
            "mxguard_threats_24h{{threat=\"{}\",engine=\"{}\"}} {}",
            label(&t.threat),
            label(&t.engine),
            t.messages
        );
    }
    g(
        &mut o,
        "scan_latency_24h_seconds",
        "Scan latency over the last 24 hours.",
        "gauge",
    );
    let l = &d.latency;
    for (q, v) in [
        ("0.5", l.p50_us as f64),
        ("0.95", l.p95_us as f64),
        ("0.99", l.p99_us as f64),
        ("1", l.max_us as f64),
    ] {
        let _ = writeln!(
            o,
            "mxguard_scan_latency_24h_seconds{{quantile=\"{q}\"}} {}",
            v / 1e6
        );
    }
    g(
        &mut o,
        "queue_size",
        "Messages waiting in the delivery queue (spool entries).",
        "gauge",
    );
    let _ = writeln!(o, "mxguard_queue_size {}", d.queue_size);
    g(
        &mut o,
        "quarantine_held",
        "Quarantined messages not released.",
        "gauge",
    );
    let _ = writeln!(o, "mxguard_quarantine_held {}", d.quarantine_held);
    g(
        &mut o,
        "quarantined_24h",
        "Messages quarantined in the last 24 hours.",
        "gauge",
    );
    let _ = writeln!(o, "mxguard_quarantined_24h {}", d.quarantined_in_period);
    g(&mut o, "signatures", "Signatures loaded.", "gauge");
    let _ = writeln!(o, "mxguard_signatures {}", s.signatures);
    g(
        &mut o,
        "signatures_loaded_timestamp_seconds",
        "When the signatures were (re)loaded.",
        "gauge",
    );
    let _ = writeln!(
        o,
        "mxguard_signatures_loaded_timestamp_seconds {}",
        s.loaded_at
    );
    g(
        &mut o,
        "uptime_seconds",
        "Seconds since this process started.",
        "gauge",
    );
    let _ = writeln!(o, "mxguard_uptime_seconds {}", d.uptime_secs);
    let mut seen: Vec<&str> = Vec::new();
    for c in &d.counters {
        if !seen.contains(&c.name.as_str()) {
            seen.push(&c.name);
            g(&mut o, &c.name, &c.help, "counter");
        }
        if c.label.is_empty() {
            let _ = writeln!(o, "mxguard_{} {}", c.name, c.value);
        } else {
            let _ = writeln!(
                o,
                "mxguard_{}{{result=\"{}\"}} {}",
                c.name,
                label(&c.label),
                c.value
            );
        }
    }
    let mut r = o.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}
