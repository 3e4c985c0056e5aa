//! Passwords, sessions, API tokens, CSRF and the guard every route passes.

use crate::routes::Access;
use crate::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "mxguard_session";
/// Prefix of API tokens (so leaked ones are easy to grep for).
pub const TOKEN_PREFIX: &str = "mxg_";
/// Largest request body the guard reads to find a form's CSRF token.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A console role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Auditor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

/// How a request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A session cookie; carries the session's CSRF token and raw token.
    Session { csrf: String, token: String },
    /// A bearer API token (its id).
    Token(i64),
}

/// Who is asking; put into the request's extensions by [`guard`].
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    pub via: Via,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    /// The CSRF token for forms (empty for token requests).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token(_) => "",
        }
    }
}

/// `len` random bytes as lowercase hex.
pub fn random_hex(len: usize) -> String {
    let mut b = vec![0u8; len];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A random password people can type: 20 characters from an unambiguous
/// alphabet (about 110 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b.iter()
        .map(|x| ALPHABET[usize::from(*x) % ALPHABET.len()] as char)
        .collect()
}

/// A new API token (`mxg_` + 64 hex digits).
pub fn generate_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_hex(32))
}

/// Argon2id PHC string of `password` (CPU and memory heavy: call from a
/// blocking thread).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random source");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// Whether `password` matches the PHC string `hash` (constant time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that a
/// login for an unknown name takes as long as one for a known name.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("no such user"))
}

/// A password policy: at least 10 characters.
pub fn check_new_password(p: &str) -> Result<(), String> {
    if p.chars().count() < 10 {
        return Err("passwords have at least 10 characters".into());
    }
    Ok(())
}

/// User names: 1-64 of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_user_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || n.len() > 64
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err("user names are 1-64 letters, digits, '.', '_', '-' or '@'".into());
    }
    Ok(())
}

/// Constant-time equality of two strings.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed-login limits per client address and per user name: after
/// `max` failures within `window`, further attempts are refused (429)
/// until the window has passed. A success clears the user's and address's
/// counts.
pub struct LoginLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(max: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max: max.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(ip: &IpAddr, user: &str) -> [String; 2] {
        [format!("ip:{ip}"), format!("user:{}", user.to_lowercase())]
    }

    /// `Some(seconds to wait)` when this attempt must be refused.
    pub fn blocked(&self, ip: &IpAddr, user: &str) -> Option<u64> {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        m.retain(|_, (_, t)| now.duration_since(*t) < self.window);
        Self::keys(ip, user)
            .iter()
            .filter_map(|k| m.get(k))
            .filter(|(n, _)| *n >= self.max)
            .map(|(_, t)| {
                self.window
                    .saturating_sub(now.duration_since(*t))
                    .as_secs()
                    .max(1)
            })
            .max()
    }

    pub fn failed(&self, ip: &IpAddr, user: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for k in Self::keys(ip, user) {
            let e = m.entry(k).or_insert((0, now));
            if now.duration_since(e.1) >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    pub fn succeeded(&self, ip: &IpAddr, user: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for k in Self::keys(ip, user) {
            m.remove(&k);
        }
    }
}

/// The value of cookie `name` in the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a new session (or, with `None`, one that removes it).
pub fn session_cookie(token: Option<&str>, lifetime: Duration, secure: bool) -> HeaderValue {
    let s = match token {
        Some(t) => format!(
            "{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            lifetime.as_secs(),
            if secure { "; Secure" } else { "" }
        ),
        None => format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if secure { "; Secure" } else { "" }
        ),
    };
    HeaderValue::from_str(&s).expect("cookie text is ASCII")
}

/// The client address (from the connection).
pub fn client_ip(req_ext: &axum::http::Extensions) -> IpAddr {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The client's address as an extractor that never fails (127.0.0.1
/// when the connection's address is unknown, e.g. in tests).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}

/// Is this path answered as JSON/text for machines (401) rather than a page (redirect)?
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// Who is asking: a bearer token, else a session cookie.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let Some(tok) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        else {
            return Ok(None);
        };
        let tok = tok.trim();
        if !tok.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        return match state.store.api_token(tok).await {
            Ok(Some(t)) => Ok(Some(Principal {
                user: t.user,
                role: Role::parse(&t.role).unwrap_or(Role::Auditor),
                via: Via::Token(t.id),
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
    }
    if let Some(tok) = cookie(headers, COOKIE) {
        if tok.len() != 64 || !tok.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        return match state.store.session(tok).await {
            Ok(Some(s)) => Ok(Some(Principal {
                user: s.user,
                role: Role::parse(&s.role).unwrap_or(Role::Auditor),
                via: Via::Session {
                    csrf: s.csrf,
                    token: tok.to_string(),
                },
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
    }
    Ok(None)
}

/// Parses `application/x-www-form-urlencoded` text into pairs, in order
/// (repeated keys kept: bulk selections).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|b| *b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &b""[..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let h = |c: u8| (c as char).to_digit(16);
                match (h(s[i + 1]), h(s[i + 2])) {
                    (Some(a), Some(b)) => {
                        out.push((a * 16 + b) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of `key` in form or query pairs.
pub fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of `key`.
pub fn fields<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn denied(api: bool, status: StatusCode, msg: &str) -> Response {
    if api {
        (status, axum::Json(serde_json::json!({ "error": msg }))).into_response()
    } else {
        (
            status,
            axum::response::Html(crate::html::error_page(status, msg)),
        )
            .into_response()
    }
}

/// The guard in front of every route: authentication, role and CSRF, per
/// the route's [`Access`]. Public routes pass untouched.
pub async fn guard(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let api = is_api_path(&path);
    let principal = match authenticate(&state, req.headers()).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            if api {
                let mut r = denied(true, StatusCode::UNAUTHORIZED, "authentication required");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mxguard\""),
                );
                return r;
            }
            let next_url = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let target = if req.method() == Method::GET && next_url != "/" {
                format!("/login?next={}", crate::html::url_encode(next_url))
            } else {
                "/login".to_string()
            };
            return Redirect::to(&target).into_response();
        }
        Err(e) => {
            tracing::warn!("console: authentication failed: {e}");
            return denied(api, StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
        }
    };
    if access == Access::Write && !principal.is_admin() {
        return denied(
            api,
            StatusCode::FORBIDDEN,
            "your role (auditor) may look but not change anything",
        );
    }
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut req = req;
    if mutating {
        if let Via::Session { csrf, .. } = &principal.via {
            let header_tok = req
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let ok = match header_tok {
                Some(t) => ct_eq(&t, csrf),
                None => {
                    let is_form = req
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
                    if is_form {
                        let (parts, body) = req.into_parts();
                        let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
                            Ok(b) => b,
                            Err(_) => {
                                return denied(
                                    api,
                                    StatusCode::PAYLOAD_TOO_LARGE,
                                    "request too large",
                                )
                            }
                        };
                        let ok = field(&parse_form(&bytes), "csrf").is_some_and(|t| ct_eq(t, csrf));
                        req = Request::from_parts(parts, Body::from(bytes));
                        ok
                    } else {
                        false
                    }
                }
            };
            if !ok {
                return denied(
                    api,
                    StatusCode::FORBIDDEN,
                    "missing or wrong CSRF token (reload the page and try again)",
                );
            }
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_cookies() {
        let f = parse_form(b"a=1&id=x%20y&id=z+w&csrf=abc&empty=&bad=%zz&pct=%");
        assert_eq!(field(&f, "a"), Some("1"));
        assert_eq!(fields(&f, "id"), vec!["x y", "z w"]);
        assert_eq!(field(&f, "empty"), Some(""));
        assert_eq!(field(&f, "bad"), Some("%zz"));
        assert_eq!(field(&f, "pct"), Some("%"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; mxguard_session=123"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("123"));
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("abc", "ab"));
    }

    #[test]
    fn passwords() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_eq!(generate_password().len(), 20);
        assert!(generate_token().starts_with("mxg_"));
    }

    #[test]
    fn limiter() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.blocked(&ip, "a").is_none());
        l.failed(&ip, "a");
        l.failed(&ip, "a");
        assert!(l.blocked(&ip, "a").is_some());
        assert!(l.blocked(&ip, "b").is_some(), "per address");
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.blocked(&other, "A").is_some(), "per user name");
        assert!(l.blocked(&other, "b").is_none());
        l.succeeded(&ip, "a");
        assert!(l.blocked(&ip, "a").is_none());
    }
}
