//! Access control over the whole route table: every route (from the
//! router's own table) refuses anonymous callers, every state-changing
//! route refuses auditors and requests without the CSRF token, and the
//! OpenAPI document lists exactly the API routes.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use mxguard_web::auth::{hash_password, COOKIE};
use mxguard_web::routes::{routes, Access, CSP};
use mxguard_web::{
    AppState, DryRunVerdict, NoGateway, PolicyControl, PolicySource, PolicySummary, WebSettings,
};
use std::sync::Arc;
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    router: axum::Router,
}

/// A policy that accepts anything, so the policy routes have something behind them.
struct FakePolicy;

impl PolicyControl for FakePolicy {
    fn source(&self) -> PolicySource {
        PolicySource {
            text: "[settings]\n".into(),
            path: Some("/tmp/policy.toml".into()),
            editable: true,
            note: String::new(),
        }
    }
    fn check(&self, _text: &str) -> Result<PolicySummary, String> {
        Ok(PolicySummary::default())
    }
    fn dry_run(
        &self,
        _text: &str,
        _m: &[u8],
        _f: &str,
        _r: &[String],
    ) -> Result<Vec<DryRunVerdict>, String> {
        Ok(vec![])
    }
    fn save(&self, _text: &str) -> Result<String, String> {
        Ok(String::new())
    }
}

struct Gw;

impl mxguard_web::Gateway for Gw {
    fn queue_size(&self) -> u64 {
        3
    }
    fn counters(&self) -> Vec<mxguard_web::Counter> {
        NoGateway.counters()
    }
    fn listeners(&self) -> Vec<mxguard_web::Listener> {
        vec![]
    }
    fn facts(&self) -> Vec<(String, String)> {
        vec![]
    }
    fn release<'a>(
        &'a self,
        id: &'a str,
        r: &'a [String],
        by: &'a str,
    ) -> mxguard_web::BoxFuture<'a, Result<mxguard_web::Released, String>> {
        NoGateway.release(id, r, by)
    }
    fn signatures(&self) -> mxguard_web::SignatureInfo {
        Default::default()
    }
    fn reload_signatures(
        &self,
    ) -> mxguard_web::BoxFuture<'_, Result<mxguard_web::SignatureInfo, String>> {
        Box::pin(async { Ok(Default::default()) })
    }
    fn policy(&self) -> Option<Arc<dyn PolicyControl>> {
        Some(Arc::new(FakePolicy))
    }
}

const ADMIN_SESSION: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const AUDITOR_SESSION: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const CSRF: &str = "cccccccccccccccccccccccccccccccc";
const AUDITOR_TOKEN: &str = "mxg_0000000000000000000000000000000000000000000000000000000000000001";
const ADMIN_TOKEN: &str = "mxg_0000000000000000000000000000000000000000000000000000000000000002";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store =
        mxguard_store::Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap();
    let h = hash_password("correct horse battery");
    store.add_user("root", &h, "admin").await.unwrap();
    store.add_user("eve", &h, "auditor").await.unwrap();
    let later = mxguard_store::now_secs() + 3600;
    store
        .create_session(ADMIN_SESSION, "root", CSRF, later, "127.0.0.1")
        .await
        .unwrap();
    store
        .create_session(AUDITOR_SESSION, "eve", CSRF, later, "127.0.0.1")
        .await
        .unwrap();
    store
        .create_api_token(AUDITOR_TOKEN, "ro", "eve", "auditor", None)
        .await
        .unwrap();
    store
        .create_api_token(ADMIN_TOKEN, "rw", "root", "admin", None)
        .await
        .unwrap();
    let state = AppState::new(store, Arc::new(Gw), WebSettings::default());
    let router = mxguard_web::router(state.clone());
    Fixture {
        _dir: dir,
        state,
        router,
    }
}

/// A concrete path for a route pattern.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{queue_id}", "Q1")
        .replace("{name}", "nobody")
}

enum Auth<'a> {
    None,
    Session(&'a str, Option<&'a str>),
    Bearer(&'a str),
}

fn request(method: &Method, path: &str, auth: Auth) -> Request<Body> {
    let mut b = Request::builder().method(method.clone()).uri(path);
    let mut body = Body::empty();
    match auth {
        Auth::None => {}
        Auth::Session(s, csrf) => {
            b = b.header(header::COOKIE, format!("{COOKIE}={s}"));
            if *method != Method::GET {
                b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                body = Body::from(match csrf {
                    Some(c) => format!("csrf={c}&action=delete&id=none&name=x&text=x"),
                    None => "action=delete&id=none".to_string(),
                });
            }
        }
        Auth::Bearer(t) => {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
            if *method != Method::GET {
                b = b.header(header::CONTENT_TYPE, "application/json");
                body = Body::from("{}");
            }
        }
    }
    b.body(body).unwrap()
}

async fn status(f: &Fixture, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap) {
    let r = f.router.clone().oneshot(req).await.unwrap();
    (r.status(), r.headers().clone())
}

#[tokio::test]
async fn every_route_needs_authentication() {
    let f = fixture().await;
    let all = routes();
    assert!(all.len() > 50, "the table has every route");
    let mut checked = 0;
    for r in &all {
        let path = concrete(r.path);
        let (st, h) = status(&f, request(&r.method, &path, Auth::None)).await;
        assert!(
            h.get(header::CONTENT_SECURITY_POLICY).is_some(),
            "{} {path}: CSP on every response",
            r.method
        );
        if r.access == Access::Public {
            assert!(
                r.path == "/login" || r.path.starts_with("/static/"),
                "only the login form and assets are public: {}",
                r.path
            );
            continue;
        }
        if r.is_api() || r.path == "/metrics" {
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{} {path}", r.method);
        } else {
            assert_eq!(st, StatusCode::SEE_OTHER, "{} {path}", r.method);
            let loc = h[header::LOCATION].to_str().unwrap();
            assert!(loc.starts_with("/login"), "{} {path} -> {loc}", r.method);
        }
        // A wrong token or session is no better than none.
        let (st, _) = status(
            &f,
            request(
                &r.method,
                &path,
                Auth::Bearer(
                    "mxg_00000000000000000000000000000000000000000000000000000000000000ff",
                ),
            ),
        )
        .await;
        assert!(
            st == StatusCode::UNAUTHORIZED || st == StatusCode::SEE_OTHER,
            "{} {path}: {st}",
            r.method
        );
        let (st, _) = status(
            &f,
            request(&r.method, &path, Auth::Session(&"d".repeat(64), Some(CSRF))),
        )
        .await;
        assert!(
            st == StatusCode::UNAUTHORIZED || st == StatusCode::SEE_OTHER,
            "{} {path}: {st}",
            r.method
        );
        checked += 1;
    }
    assert!(checked > 50);
    // Unknown paths too.
    let (st, _) = status(&f, request(&Method::GET, "/nothing/here", Auth::None)).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _) = status(&f, request(&Method::GET, "/api/v1/nothing", Auth::None)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn auditors_cannot_change_anything() {
    let f = fixture().await;
    let mut writes = 0;
    for r in routes() {
        let path = concrete(r.path);
        let mutating = r.method != Method::GET;
        if mutating {
            assert!(
                matches!(r.access, Access::Write | Access::Own | Access::Public),
                "{} {}: every state-changing route is Write (or Own/Public)",
                r.method,
                r.path
            );
        }
        match r.access {
            Access::Write => {
                writes += 1;
                // With a valid session and CSRF token: forbidden by role.
                let (st, _) = status(
                    &f,
                    request(&r.method, &path, Auth::Session(AUDITOR_SESSION, Some(CSRF))),
                )
                .await;
                assert_eq!(
                    st,
                    StatusCode::FORBIDDEN,
                    "auditor session {} {path}",
                    r.method
                );
                let (st, _) =
                    status(&f, request(&r.method, &path, Auth::Bearer(AUDITOR_TOKEN))).await;
                assert_eq!(
                    st,
                    StatusCode::FORBIDDEN,
                    "auditor token {} {path}",
                    r.method
                );
            }
            Access::Own => {
                assert!(
                    r.path == "/logout" || r.path == "/account/password",
                    "Own is for one's own session and password only: {}",
                    r.path
                );
            }
            Access::Read => {
                let (st, _) = status(
                    &f,
                    request(&r.method, &path, Auth::Session(AUDITOR_SESSION, None)),
                )
                .await;
                assert!(
                    st.is_success() || st == StatusCode::NOT_FOUND,
                    "auditors may read {} {path}: {st}",
                    r.method
                );
                let (st, _) =
                    status(&f, request(&r.method, &path, Auth::Bearer(AUDITOR_TOKEN))).await;
                assert!(
                    st.is_success() || st == StatusCode::NOT_FOUND,
                    "auditor token reads {} {path}: {st}",
                    r.method
                );
            }
            Access::Public => {}
        }
    }
    assert!(writes >= 20, "{writes}");
    // Nothing changed: both users still there.
    assert_eq!(f.state.store.users().await.unwrap().len(), 2);
}

#[tokio::test]
async fn admin_sessions_need_the_csrf_token_and_tokens_do_not() {
    let f = fixture().await;
    for r in routes() {
        if r.method == Method::GET || r.access == Access::Public {
            continue;
        }
        let path = concrete(r.path);
        let (st, _) = status(
            &f,
            request(&r.method, &path, Auth::Session(ADMIN_SESSION, None)),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "no CSRF token: {} {path}",
            r.method
        );
        let (st, _) = status(
            &f,
            request(
                &r.method,
                &path,
                Auth::Session(ADMIN_SESSION, Some("wrong-token-xxxxxxxxxxxxxxxxxxxx")),
            ),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "wrong CSRF token: {} {path}",
            r.method
        );
    }
    // With the token the guard lets the admin through (the handler answers).
    let (st, _) = status(
        &f,
        request(
            &Method::POST,
            "/quarantine/bulk",
            Auth::Session(ADMIN_SESSION, Some(CSRF)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    // The header form works for scripts using the session.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/tokens")
        .header(header::COOKIE, format!("{COOKIE}={ADMIN_SESSION}"))
        .header("x-csrf-token", CSRF)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"via-session"}"#))
        .unwrap();
    let (st, _) = status(&f, req).await;
    assert_eq!(st, StatusCode::CREATED);
    // Bearer tokens need no CSRF token.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/tokens")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::from(r#"{"name":"via-token","role":"admin"}"#))
        .unwrap();
    let r = f.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let new = v["token"].as_str().unwrap().to_string();
    assert!(new.starts_with("mxg_"));
    // Stored hashed: the secret is nowhere in the database.
    let tokens = f.state.store.api_tokens(None).await.unwrap();
    assert_eq!(tokens.len(), 4);
    let (st, _) = status(
        &f,
        request(&Method::GET, "/api/v1/whoami", Auth::Bearer(&new)),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn openapi_lists_exactly_the_api_routes() {
    let f = fixture().await;
    let r = f
        .router
        .clone()
        .oneshot(request(
            &Method::GET,
            "/api/v1/openapi.json",
            Auth::Bearer(AUDITOR_TOKEN),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (p, ops) in paths {
        for m in ops.as_object().unwrap().keys() {
            documented.push(format!("{} {p}", m.to_uppercase()));
        }
    }
    let mut served: Vec<String> = routes()
        .iter()
        .filter(|r| r.is_api())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served, "openapi.json and the route table agree");
    // Write routes document their 403.
    for r in routes()
        .iter()
        .filter(|r| r.is_api() && r.access == Access::Write)
    {
        let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
        assert!(
            op["responses"]["403"].is_object(),
            "{} {}",
            r.method,
            r.path
        );
    }
}

#[tokio::test]
async fn login_sets_a_strict_cookie_and_failures_are_limited() {
    let f = fixture().await;
    let login = |user: &str, pass: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "user={user}&password={pass}&next=%2Fevents"
            )))
            .unwrap()
    };
    let (st, h) = status(&f, login("root", "correct+horse+battery")).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/events");
    let c = h[header::SET_COOKIE].to_str().unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    assert!(!c.contains("Secure"), "no TLS here: {c}");
    assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
    let token = c.split(';').next().unwrap().split('=').nth(1).unwrap();
    let (st, _) = status(&f, request(&Method::GET, "/", Auth::Session(token, None))).await;
    assert_eq!(st, StatusCode::OK);
    // Logout ends the session.
    let (st, _) = status(
        &f,
        request(&Method::POST, "/logout", Auth::Session(token, Some("x"))),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "logout needs the CSRF token too");
    let s = f.state.store.session(token).await.unwrap().unwrap();
    let (st, _) = status(
        &f,
        request(
            &Method::POST,
            "/logout",
            Auth::Session(token, Some(&s.csrf)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _) = status(&f, request(&Method::GET, "/", Auth::Session(token, None))).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    // Open redirects are not followed.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "user=root&password=correct+horse+battery&next=%2F%2Fevil.example",
        ))
        .unwrap();
    let (st, h) = status(&f, req).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/");
    // Wrong passwords: 401 five times, then 429 even with the right one.
    for _ in 0..5 {
        let (st, _) = status(&f, login("eve", "nope")).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, h) = status(&f, login("eve", "correct+horse+battery")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.get(header::RETRY_AFTER).is_some());
}

async fn call(f: &Fixture, method: Method, path: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = f.router.clone().oneshot(req).await.unwrap();
    let st = r.status();
    let b = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
    (st, String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test]
async fn api_end_to_end_over_the_store() {
    let f = fixture().await;
    let msg = b"From: a@sender.test\r\nTo: user@example.com\r\nSubject: <script>x</script>\r\n\r\nhello <b>world</b>\r\n";
    f.state
        .store
        .put(&mxguard_store::NewQuarantine {
            id: "Q1".into(),
            time: mxguard_store::now_secs(),
            node: "mx1".into(),
            client_ip: "192.0.2.7".into(),
            mail_from: "a@sender.test".into(),
            rcpts: vec!["user@example.com".into()],
            subject: "<script>x</script>".into(),
            reason: "infected".into(),
            action: "quarantine".into(),
            findings: vec![],
            policy: None,
            message: msg,
        })
        .await
        .unwrap();
    let (st, b) = call(&f, Method::GET, "/api/v1/quarantine?reason=infected", "").await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["items"][0]["id"], "Q1");
    let (st, b) = call(&f, Method::GET, "/api/v1/quarantine/Q1/view", "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        b.contains("hello <b>world</b>"),
        "JSON carries the text as is: {b}"
    );
    let (st, b) = call(&f, Method::GET, "/api/v1/quarantine/Q1/message", "").await;
    assert_eq!((st, b.as_bytes()), (StatusCode::OK, &msg[..]));
    // The page escapes what the message says.
    let req = Request::builder()
        .uri("/quarantine/Q1")
        .header(header::COOKIE, format!("{COOKIE}={AUDITOR_SESSION}"))
        .body(Body::empty())
        .unwrap();
    let r = f.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = String::from_utf8(
        axum::body::to_bytes(r.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(!page.contains("<script>x"), "never raw");
    assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(page.contains("hello &lt;b&gt;world&lt;/b&gt;"));
    assert!(
        !page.contains("action=\"/quarantine/Q1/release\""),
        "no release form for auditors"
    );
    // No gateway behind this console: release fails cleanly.
    let (st, _) = call(&f, Method::POST, "/api/v1/quarantine/Q1/release", "").await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, b) = call(
        &f,
        Method::POST,
        "/api/v1/quarantine/bulk",
        r#"{"action":"delete","ids":["Q1","nope"]}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["results"][0]["ok"], true);
    assert_eq!(v["results"][1]["ok"], false);
    let (st, _) = call(&f, Method::DELETE, "/api/v1/quarantine/Q1", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Events, reports, dashboard, metrics.
    let (st, b) = call(&f, Method::GET, "/api/v1/events?format=csv", "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(b.starts_with("id,time,"), "{b}");
    let (st, _) = call(&f, Method::GET, "/api/v1/events?since=bogus", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, b) = call(
        &f,
        Method::GET,
        "/api/v1/reports?since=30d&format=csv&section=threats",
        "",
    )
    .await;
    assert_eq!(
        (st, b.as_str()),
        (StatusCode::OK, "threat,engine,messages\r\n")
    );
    let (st, b) = call(&f, Method::GET, "/api/v1/dashboard?hours=168", "").await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["queue_size"], 3);
    assert_eq!(v["hours"], 168);
    let (st, b) = call(&f, Method::GET, "/metrics", "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        b.contains("mxguard_queue_size 3") && b.contains("# TYPE mxguard_detections_24h gauge"),
        "{b}"
    );

    // Policy through the API.
    let (st, b) = call(&f, Method::POST, "/api/v1/policy/check", r#"{"text":"x"}"#).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = call(
        &f,
        Method::PUT,
        "/api/v1/policy",
        r#"{"text":"a = 1\n","comment":"api"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = call(&f, Method::GET, "/api/v1/policy/history", "").await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v[0]["user"], "root");
    assert_eq!(v[0]["comment"], "api");
    assert!(v[0]["diff"].as_str().unwrap().contains("+a = 1"));

    // Users: add (password generated and returned once), refuse to delete the last admin.
    let (st, b) = call(
        &f,
        Method::POST,
        "/api/v1/users",
        r#"{"name":"carol","role":"auditor"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["password"].as_str().unwrap().len(), 20);
    let (st, _) = call(
        &f,
        Method::POST,
        "/api/v1/users",
        r#"{"name":"bad name!","role":"auditor"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = call(
        &f,
        Method::POST,
        "/api/v1/users",
        r#"{"name":"dave","role":"auditor","password":"short"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, b) = call(&f, Method::DELETE, "/api/v1/users/root", "").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (st, _) = call(&f, Method::DELETE, "/api/v1/users/carol", "").await;
    assert_eq!(st, StatusCode::OK);
    // An auditor cannot mint an admin token even if it could write (and it cannot).
    let (st, b) = call(&f, Method::GET, "/api/v1/whoami", "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        b.contains("\"role\":\"admin\"") && b.contains("\"via\":\"token\""),
        "{b}"
    );
}

#[tokio::test]
async fn keep_warm_serves_the_common_periods_from_the_cache() {
    use std::time::Duration;
    let f = fixture().await;
    // No request cache: only what keep_warm puts there is reused.
    let state = AppState::new(
        f.state.store.clone(),
        f.state.gateway.clone(),
        WebSettings {
            cache_ttl: Duration::ZERO,
            ..WebSettings::default()
        },
    );
    let age = |hours: i64| {
        let st = state.clone();
        async move {
            mxguard_web::pages::dashboard_data(&st, hours)
                .await
                .unwrap()
                .cached_secs
        }
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(age(168).await, 0, "computed on the request");
    let warm = tokio::spawn(mxguard_web::keep_warm(
        state.clone(),
        Duration::from_secs(3600),
    ));
    // The first round runs at once and is kept for twice the period.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(age(168).await >= 1, "7 days: from the warm entry");
    assert!(age(24).await >= 1, "24 hours: from the warm entry");
    assert_eq!(age(5).await, 0, "other periods: computed on the request");
    warm.abort();
}
