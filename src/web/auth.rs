//! Logins: the form, sessions in a cookie, API Bearer tokens, CSRF tokens on every form POST,
//! an Origin check, and throttling of failed logins.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::{State, WebState, blocking, home, link, view};
use crate::accounts::{self, Accounts, Session};

const SESSION_COOKIE: &str = "dbkeep_session";
const LOGIN_CSRF_COOKIE: &str = "dbkeep_login_csrf";
/// How long a login lasts.
const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);
/// Failed logins allowed per user name or client address within `WINDOW` ...
const MAX_FAILURES: usize = 5;
const WINDOW: Duration = Duration::from_secs(60);
/// ... before further attempts are refused for this long.
const LOCKOUT: Duration = Duration::from_secs(300);

/// Who is making a request: a logged-in user, or an API token by name.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A browser session.
    User(Session),
    /// An API client.
    Token(String),
}

/// Failed login attempts per user name and per client address.
#[derive(Default)]
pub struct Throttle(Mutex<HashMap<String, Failures>>);

#[derive(Default)]
struct Failures {
    /// Failures within the last `WINDOW`.
    recent: Vec<Instant>,
    /// Refused until then, once `MAX_FAILURES` came within a `WINDOW`.
    locked_until: Option<Instant>,
}

impl Throttle {
    fn blocked(&self, keys: &[String]) -> bool {
        let now = Instant::now();
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().any(|k| {
            map.get(k)
                .and_then(|f| f.locked_until)
                .is_some_and(|until| now < until)
        })
    }

    fn fail(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            let f = map.entry(k.clone()).or_default();
            f.recent.retain(|t| now.duration_since(*t) < WINDOW);
            f.recent.push(now);
            if f.recent.len() >= MAX_FAILURES {
                f.locked_until = Some(now + LOCKOUT);
                f.recent.clear();
            }
        }
    }
}

/// Creates the first user, `admin`, when there is none: with the password in
/// `DBKEEP_ADMIN_PASSWORD`, or a generated one that is returned to be shown once.
///
/// # Errors
/// When the accounts store cannot be read or written.
pub fn ensure_admin(
    accounts: &dyn Accounts,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::Result<Option<String>> {
    if accounts.user_count()? > 0 {
        return Ok(None);
    }
    let (password, generated) = match std::env::var("DBKEEP_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (accounts::random_password()?, true),
    };
    match accounts.add_user("admin", &accounts::hash_password(&password)?, now) {
        Ok(_) => Ok(generated.then_some(password)),
        // Another process sharing the catalog created the first user at the same moment.
        Err(_) if accounts.user_by_name("admin")?.is_some() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The value of cookie `name` in the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(state: &WebState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let path = if state.base.is_empty() {
        "/"
    } else {
        &state.base
    };
    let text =
        format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Refuses requests that a browser marks as coming from another site.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // Not a browser form post from elsewhere (curl, same-origin older browsers).
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    url::Url::parse(origin).is_ok_and(|o| {
        let origin_host = match o.port() {
            Some(p) => format!("{}:{p}", o.host_str().unwrap_or_default()),
            None => o.host_str().unwrap_or_default().to_string(),
        };
        origin_host == host
    })
}

/// Whether a form POST carries the session's CSRF token and comes from this site.
pub fn form_ok(identity: &Identity, headers: &HeaderMap, token: &str) -> bool {
    same_origin(headers)
        && match identity {
            Identity::User(s) => equal(&s.csrf_token, token),
            Identity::Token(_) => true, // Bearer tokens are not sent by browsers on their own.
        }
}

/// The answer to a form POST without a valid CSRF token.
pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "forbidden: the form's security token is missing or stale; reload the page and try again\n",
    )
        .into_response()
}

/// Middleware: lets a request through with a valid session cookie or Bearer token; otherwise
/// 401 (API, metrics) or a redirect to the login page.
pub async fn require_login(state: State, mut request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    let session = cookie(&headers, SESSION_COOKIE);
    let now = state.clock.now();
    let identity = blocking(&state, move |runner| {
        let accounts = runner_accounts(runner)?;
        if let Some(token) = bearer {
            return Ok(accounts
                .use_token(&accounts::token_digest(&token), now)?
                .map(Identity::Token));
        }
        match session {
            Some(s) => Ok(accounts
                .session(&accounts::token_digest(&s), now)?
                .map(Identity::User)),
            None => Ok(None),
        }
    })
    .await;
    match identity {
        Ok(Some(identity)) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Ok(None) => {
            let path = request.uri().path();
            if path.starts_with("/api/") || path == "/metrics" {
                super::api::error(
                    StatusCode::UNAUTHORIZED,
                    "authentication required: log in, or send Authorization: Bearer TOKEN",
                )
            } else {
                let next = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!(
                    "{}/login?next={}",
                    state.base,
                    urlencode(&link(&state.base, next))
                );
                Redirect::to(&target).into_response()
            }
        }
        Err(e) => {
            super::pages::error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// The accounts behind the runner's catalog.
fn runner_accounts(runner: &crate::Runner) -> crate::Result<&dyn Accounts> {
    runner
        .accounts()
        .ok_or_else(|| crate::Error::Engine("this catalog keeps no accounts".into()))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_get(state: State, q: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = q.ok().and_then(|Query(q)| q.next).unwrap_or_default();
    let Ok(csrf) = accounts::random_token() else {
        return super::pages::error_page(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "no random numbers",
        );
    };
    login_page(&state, StatusCode::OK, &csrf, &next, None)
}

fn login_page(
    state: &Arc<WebState>,
    status: StatusCode,
    csrf: &str,
    next: &str,
    error: Option<&str>,
) -> Response {
    let page = view::Login {
        base: state.base.clone(),
        csrf_token: csrf.to_string(),
        next: next.to_string(),
        error: error.map(str::to_string),
    };
    let mut response = (status, page).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_CSRF_COOKIE, csrf, 3600),
    );
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
    #[serde(default)]
    next: String,
}

pub async fn login_post(
    state: State,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !equal(&expected, &form.csrf_token) || !same_origin(&headers) {
        return forbidden();
    }
    let mut keys = vec![format!("user:{}", form.username)];
    if let Some(Extension(ConnectInfo(addr))) = connect {
        keys.push(format!("addr:{}", addr.ip()));
    }
    if state.throttle.blocked(&keys) {
        warn!(user = %form.username, "login refused: too many failed attempts");
        let mut r = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &form.csrf_token,
            &form.next,
            Some("Too many failed logins. Wait a few minutes and try again."),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(LOCKOUT.as_secs()));
        return r;
    }
    let now = state.clock.now();
    let (username, password) = (form.username.clone(), form.password);
    let result = blocking(&state, move |runner| {
        let accounts = runner_accounts(runner)?;
        let found = accounts.user_by_name(&username)?;
        // Verify against a stand-in hash when the user does not exist, so both answers take as long.
        let ok = match &found {
            Some((_, hash)) => accounts::verify_password(&password, hash),
            None => {
                let _ = accounts::verify_password(&password, dummy_hash());
                false
            }
        };
        let Some((user, _)) = found.filter(|_| ok) else {
            return Ok(None);
        };
        let token = accounts::random_token()?;
        let csrf = accounts::random_token()?;
        accounts.add_session(
            &accounts::token_digest(&token),
            user.id,
            &csrf,
            now,
            now + SESSION_TTL,
        )?;
        Ok(Some((user, token)))
    })
    .await;
    match result {
        Ok(Some((user, token))) => {
            info!(user = %user.name, "logged in");
            let target = safe_next(&state.base, &form.next);
            let mut r = Redirect::to(&target).into_response();
            let headers = r.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &token, SESSION_TTL.num_seconds()),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
            );
            r
        }
        Ok(None) => {
            state.throttle.fail(&keys);
            warn!(user = %form.username, "failed login");
            login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                &form.csrf_token,
                &form.next,
                Some("Wrong user name or password."),
            )
        }
        Err(e) => {
            super::pages::error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// A hash of a random password no one knows, for timing-equal failures.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let secret = accounts::random_token().unwrap_or_else(|_| "x".repeat(64));
        accounts::hash_password(&secret).unwrap_or_default()
    })
}

/// Where to go after logging in: a path inside the admin, never another site.
fn safe_next(base: &str, next: &str) -> String {
    let inside = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.starts_with(base);
    if inside && !next.is_empty() {
        next.to_string()
    } else {
        home(base)
    }
}

/// A form whose only field is its CSRF token (logout, back up now).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

pub async fn logout_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !form_ok(&identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let now = state.clock.now();
        let _ = blocking(&state, move |runner| {
            runner_accounts(runner)?.delete_session(&accounts::token_digest(&token), now)
        })
        .await;
    }
    let mut r = Redirect::to(&format!("{}/login", state.base)).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_a_minute_lock_the_key_out_and_others_stay_open() {
        let throttle = Throttle::default();
        let alice = ["user:alice".to_string()];
        for _ in 0..MAX_FAILURES - 1 {
            throttle.fail(&alice);
            assert!(!throttle.blocked(&alice));
        }
        throttle.fail(&alice);
        assert!(throttle.blocked(&alice));
        assert!(!throttle.blocked(&["user:bob".to_string()]));
        // Any of a request's keys (its user or its address) being locked refuses it.
        assert!(throttle.blocked(&["user:bob".to_string(), "user:alice".to_string()]));
    }
}
