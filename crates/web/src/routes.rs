//! The one route table: every path, method, who may use it and what it
//! does. The router, the guard, the OpenAPI check and the access tests all
//! read it, so a route cannot exist without an access rule.

use crate::{api, auth, pages, AppState};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login form and the static assets (no data).
    Public,
    /// Any signed-in user or API token (admin or auditor).
    Read,
    /// Any signed-in user, about their own session or account only
    /// (log out, change one's own password).
    Own,
    /// Admins only: everything that changes state.
    Write,
}

/// One route.
#[derive(Debug, Clone)]
pub struct RouteDef {
    pub method: Method,
    /// axum syntax: `/quarantine/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

impl RouteDef {
    /// Part of the JSON API (documented in the OpenAPI file).
    pub fn is_api(&self) -> bool {
        self.path.starts_with("/api/")
    }
}

fn def<H, T>(
    method: Method,
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: H,
) -> (RouteDef, MethodRouter<AppState>)
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
    (
        RouteDef {
            method,
            path,
            access,
            summary,
        },
        on(filter, handler),
    )
}

/// Every route with its handler (one line each: kept unformatted so the
/// table reads as a table).
#[rustfmt::skip]
pub fn route_table() -> Vec<(RouteDef, MethodRouter<AppState>)> {
    use Access::*;
    use Method as M;
    vec![
        // Sign-in and assets.
        def(M::GET, "/login", Public, "Login form", pages::login_form),
        def(M::POST, "/login", Public, "Log in", pages::login),
        def(M::GET, "/static/app.css", Public, "Style sheet", pages::css),
        def(M::GET, "/static/app.js", Public, "Script", pages::js),
        def(M::POST, "/logout", Own, "Log out", pages::logout),
        // Pages.
        def(M::GET, "/", Read, "Dashboard", pages::dashboard),
        def(M::GET, "/quarantine", Read, "Quarantine search", pages::quarantine),
        def(M::GET, "/quarantine/{id}", Read, "Quarantined message", pages::quarantine_item),
        def(M::GET, "/quarantine/{id}/eml", Read, "Download the original (.eml)", pages::quarantine_eml),
        def(M::POST, "/quarantine/{id}/release", Write, "Release to all or some recipients", pages::quarantine_release),
        def(M::POST, "/quarantine/{id}/delete", Write, "Delete", pages::quarantine_delete),
        def(M::POST, "/quarantine/bulk", Write, "Release or delete several", pages::quarantine_bulk),
        def(M::GET, "/events", Read, "Event search (message trace)", pages::events),
        def(M::GET, "/events/csv", Read, "Event search as CSV", pages::events_csv),
        def(M::GET, "/trace/{queue_id}", Read, "Decision trail of one message", pages::trace),
        def(M::GET, "/reports", Read, "Reports", pages::reports),
        def(M::GET, "/reports/csv", Read, "A report section as CSV", pages::reports_csv),
        def(M::GET, "/policy", Read, "The effective policy", pages::policy),
        def(M::POST, "/policy", Write, "Check, dry-run or save a policy", pages::policy_post),
        def(M::GET, "/policy/history/{id}", Read, "One saved policy and its diff", pages::policy_change),
        def(M::GET, "/signatures", Read, "Loaded signature databases", pages::signatures),
        def(M::POST, "/signatures/reload", Write, "Reload the signature databases", pages::signatures_reload),
        def(M::GET, "/system", Read, "Node, version, uptime, listeners", pages::system),
        def(M::GET, "/users", Read, "Users and API tokens", pages::users),
        def(M::POST, "/users", Write, "Add a user", pages::user_add),
        def(M::POST, "/users/{name}/delete", Write, "Delete a user", pages::user_delete),
        def(M::POST, "/users/{name}/password", Write, "Set a user's password", pages::user_password),
        def(M::POST, "/users/{name}/role", Write, "Change a user's role", pages::user_role),
        def(M::POST, "/tokens", Write, "Create an API token", pages::token_add),
        def(M::POST, "/tokens/{id}/delete", Write, "Revoke an API token", pages::token_delete),
        def(M::GET, "/account", Read, "Your account", pages::account),
        def(M::POST, "/account/password", Own, "Change your password", pages::account_password),
        def(M::GET, "/metrics", Read, "Prometheus metrics", api::metrics),
        // JSON API.
        def(M::GET, "/api/v1/openapi.json", Read, "This document", api::openapi),
        def(M::GET, "/api/v1/whoami", Read, "The caller's user and role", api::whoami),
        def(M::GET, "/api/v1/dashboard", Read, "Dashboard numbers", api::dashboard),
        def(M::GET, "/api/v1/quarantine", Read, "Search the quarantine", api::quarantine),
        def(M::POST, "/api/v1/quarantine/bulk", Write, "Release or delete several items", api::quarantine_bulk),
        def(M::GET, "/api/v1/quarantine/{id}", Read, "One item", api::quarantine_item),
        def(M::DELETE, "/api/v1/quarantine/{id}", Write, "Delete an item", api::quarantine_delete),
        def(M::GET, "/api/v1/quarantine/{id}/message", Read, "The original message (message/rfc822)", api::quarantine_message),
        def(M::GET, "/api/v1/quarantine/{id}/view", Read, "Safe text view of the message", api::quarantine_view),
        def(M::POST, "/api/v1/quarantine/{id}/release", Write, "Release an item", api::quarantine_release),
        def(M::GET, "/api/v1/events", Read, "Search the event log (JSON or CSV)", api::events),
        def(M::GET, "/api/v1/trace/{queue_id}", Read, "Decision trail of one message", api::trace),
        def(M::GET, "/api/v1/reports", Read, "Reports over a period (JSON or CSV)", api::reports),
        def(M::GET, "/api/v1/signatures", Read, "Loaded signatures", api::signatures),
        def(M::POST, "/api/v1/signatures/reload", Write, "Reload the signatures", api::signatures_reload),
        def(M::GET, "/api/v1/system", Read, "Node, version, uptime, listeners, counters", api::system),
        def(M::GET, "/api/v1/policy", Read, "The effective policy", api::policy),
        def(M::PUT, "/api/v1/policy", Write, "Save and apply a policy", api::policy_save),
        def(M::POST, "/api/v1/policy/check", Write, "Validate a policy", api::policy_check),
        def(M::POST, "/api/v1/policy/dry-run", Write, "Evaluate a sample message under a policy", api::policy_dry_run),
        def(M::GET, "/api/v1/policy/history", Read, "Saved policies, newest first", api::policy_history),
        def(M::GET, "/api/v1/policy/history/{id}", Read, "One saved policy", api::policy_change),
        def(M::GET, "/api/v1/users", Read, "Users", api::users),
        def(M::POST, "/api/v1/users", Write, "Add a user", api::user_add),
        def(M::DELETE, "/api/v1/users/{name}", Write, "Delete a user", api::user_delete),
        def(M::GET, "/api/v1/tokens", Read, "API tokens", api::tokens),
        def(M::POST, "/api/v1/tokens", Write, "Create an API token", api::token_add),
        def(M::DELETE, "/api/v1/tokens/{id}", Write, "Revoke an API token", api::token_delete),
    ]
}

/// The routes without their handlers.
pub fn routes() -> Vec<RouteDef> {
    route_table().into_iter().map(|(d, _)| d).collect()
}

/// The Content Security Policy of every response: our own script and
/// style only, no inline script, no frames, no remote anything.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// The console's router: every route of [`route_table`] behind
/// [`auth::guard`] with its access rule, unknown paths behind the guard
/// too (so they say 401/redirect before 404), security headers on all.
pub fn router(state: AppState) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for (d, mr) in route_table() {
        let mr = mr.layer(from_fn_with_state((state.clone(), d.access), auth::guard));
        match by_path.iter_mut().find(|(p, _)| *p == d.path) {
            Some((_, existing)) => {
                let prev = std::mem::take(existing);
                *existing = prev.merge(mr);
            }
            None => by_path.push((d.path, mr)),
        }
    }
    let mut r = Router::new();
    for (p, mr) in by_path {
        r = r.route(p, mr);
    }
    let fallback = pages::not_found.layer(from_fn_with_state(
        (state.clone(), Access::Read),
        auth::guard,
    ));
    r.fallback(fallback)
        .layer(axum::extract::DefaultBodyLimit::max(auth::MAX_BODY))
        .layer(map_response(security_headers))
        .with_state(state)
}
