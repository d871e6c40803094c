//! Logins: the form, sessions in a cookie, API Bearer tokens, CSRF tokens on every form POST,
//! an Origin check, and throttling of failed logins.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::throttle::{self, Refused};
use super::{State, WebState, blocking, home, link, view};
use dbkeep_core::passwords;
use dbkeep_model::accounts::{Accounts, Grant, Role, Session, TokenGrant};
use dbkeep_model::audit::{Action, Entry, Outcome};
use dbkeep_model::token;

const SESSION_COOKIE: &str = "dbkeep_session";
pub(super) const LOGIN_CSRF_COOKIE: &str = "dbkeep_login_csrf";
/// How long a login lasts.
const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);
/// The shortest password a user may be given.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Who is making a request: a logged-in user, or an API token.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A browser session.
    User(Session),
    /// An API client.
    Token(TokenGrant),
}

impl Identity {
    /// What the caller may do, and to which databases.
    pub fn grant(&self) -> &Grant {
        match self {
            Identity::User(s) => &s.user.grant,
            Identity::Token(t) => &t.grant,
        }
    }

    /// How the audit log names the caller: `user:NAME` or `token:NAME#ID`.
    pub fn actor(&self) -> String {
        match self {
            Identity::User(s) => format!("user:{}", s.user.name),
            Identity::Token(t) => format!("token:{}#{}", t.name, t.id),
        }
    }

    /// Whether the caller may do what needs `role`.
    pub fn can(&self, role: Role) -> bool {
        self.grant().can(role)
    }

    /// Whether the caller may see the database named `name`.
    pub fn sees(&self, name: &str) -> bool {
        self.grant().sees(name)
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
) -> dbkeep_model::error::Result<Option<String>> {
    if accounts.user_count()? > 0 {
        return Ok(None);
    }
    let (password, generated) = match std::env::var("DBKEEP_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => {
            check_new_password(&p).map_err(|problem| {
                dbkeep_model::error::Error::Config(dbkeep_model::error::ConfigError {
                    path: "environment variable DBKEEP_ADMIN_PASSWORD".into(),
                    line: None,
                    message: format!(
                        "{problem}; set a longer one, or unset it to have a password generated"
                    ),
                })
            })?;
            (p, false)
        }
        _ => (passwords::random_password()?, true),
    };
    let admin = Grant::everywhere(Role::Admin);
    match accounts.add_user("admin", &passwords::hash_password(&password)?, &admin, now) {
        Ok(_) => Ok(generated.then_some(password)),
        // Another process sharing the catalog created the first user at the same moment.
        Err(_) if accounts.user_by_name("admin")?.is_some() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `password` may be given to a user: at least [`MIN_PASSWORD_CHARS`] characters and
/// at most [`dbkeep_model::accounts::MAX_PASSWORD_BYTES`] bytes (the most a login form accepts).
///
/// # Errors
/// What is wrong with it, in words.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > dbkeep_model::accounts::MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must have at most {} bytes",
            dbkeep_model::accounts::MAX_PASSWORD_BYTES
        ));
    }
    Ok(())
}

/// The value of cookie `name` in the request.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(super) fn set_cookie(state: &WebState, name: &str, value: &str, max_age: i64) -> HeaderValue {
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

pub(super) fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Refuses requests that a browser marks as coming from another site: an `Origin` must be
/// this server, scheme included (the `public_url`'s, else plain `http` at the `Host` asked for).
pub fn same_origin(state: &WebState, headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true; // Not a browser form post from elsewhere (curl, same-origin older browsers).
    };
    let Some(origin) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
        return false; // `null` (a sandboxed or privacy-redirected page) or garbage.
    };
    if let Some(public) = &state.public_url {
        return origin.origin() == public.origin();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = match origin.port() {
        Some(p) => format!("{}:{p}", origin.host_str().unwrap_or_default()),
        None => origin.host_str().unwrap_or_default().to_string(),
    };
    origin.scheme() == "http" && origin_host.eq_ignore_ascii_case(host)
}

/// Whether a form POST carries the session's CSRF token and comes from this site.
pub fn form_ok(state: &WebState, identity: &Identity, headers: &HeaderMap, token: &str) -> bool {
    same_origin(state, headers)
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

/// Who sent a request: the user of a valid session cookie or the name of a valid Bearer
/// token; `None` for anyone else.
///
/// # Errors
/// When the accounts cannot be read.
pub async fn identify(
    state: &Arc<WebState>,
    headers: &HeaderMap,
) -> dbkeep_model::error::Result<Option<Identity>> {
    let bearer = bearer_token(headers);
    let session = cookie(headers, SESSION_COOKIE);
    let now = state.clock.now();
    blocking(state, move |runner| {
        let accounts = runner.accounts();
        if let Some(token) = bearer {
            return Ok(accounts
                .use_token(&token::token_digest(&token), now)?
                .map(Identity::Token));
        }
        match session {
            Some(s) => Ok(accounts
                .session(&token::token_digest(&s), now)?
                .map(Identity::User)),
            None => Ok(None),
        }
    })
    .await
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// `s` encoded for a query string.
pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

impl NextQuery {
    /// The `next` asked for.
    pub(super) fn next(self) -> Option<String> {
        self.next
    }
}

pub async fn login_get(state: State, q: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = q.ok().and_then(|Query(q)| q.next).unwrap_or_default();
    let next = safe_next(&state.base, &next);
    let Ok(csrf) = token::random_token() else {
        return super::respond::error_page(
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
    form_page(state, status, csrf, next, error, false)
}

/// The login form (`second_factor`: its second step, asking for a code), with a fresh CSRF
/// cookie.
pub(super) fn form_page(
    state: &Arc<WebState>,
    status: StatusCode,
    csrf: &str,
    next: &str,
    error: Option<&str>,
    second_factor: bool,
) -> Response {
    let page = view::Login {
        base: state.base.clone(),
        csrf_token: csrf.to_string(),
        next: next.to_string(),
        error: error.map(str::to_string),
        second_factor,
        single_sign_on: state.oidc.as_ref().map(|_| {
            format!(
                "{}?next={}",
                link(&state.base, "/login/oidc"),
                urlencode(next)
            )
        }),
        local_login: state.runner.config().web.auth.local_login,
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

/// Whether a login form (either step) carries the login page's CSRF cookie's token and comes
/// from this site.
pub(super) fn login_form_ok(state: &WebState, headers: &HeaderMap, token: &str) -> bool {
    let expected = cookie(headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    !expected.is_empty() && equal(&expected, token) && same_origin(state, headers)
}

pub async fn login_post(
    state: State,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !login_form_ok(&state, &headers, &form.csrf_token) {
        return forbidden();
    }
    let next = safe_next(&state.base, &form.next);
    let page = |status, message| login_page(&state, status, &form.csrf_token, &next, Some(message));
    if form.username.len() > dbkeep_model::accounts::MAX_USER_NAME_BYTES
        || form.password.len() > dbkeep_model::accounts::MAX_PASSWORD_BYTES
    {
        return page(
            StatusCode::BAD_REQUEST,
            "The user name or password is too long.",
        );
    }
    // Each attempt's row: by `anonymous` until the password matched, on the name tried.
    let source = connect.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    let keys = login_keys(&form.username, source.as_deref());
    let agent = super::audited::user_agent(&headers);
    let attempt_row = |actor: String, outcome: Outcome, detail: Option<&str>| Entry {
        detail: detail.map(str::to_string),
        source: source.clone(),
        user_agent: agent.clone(),
        ..Entry::new(actor, Action::Login, form.username.clone(), outcome)
    };
    if !state
        .runner
        .config()
        .web
        .auth
        .password_allowed(&form.username)
    {
        let row = attempt_row(
            "anonymous".into(),
            Outcome::Refused,
            Some("password logins are off (local_login = false)"),
        );
        super::audited::record(&state, row).await;
        return page(
            StatusCode::FORBIDDEN,
            "Password logins are off: log in with single sign-on.",
        );
    }
    let shared_keys = keys.clone();
    // Counted before any work, so parallel attempts cannot pass the limit together.
    let attempt = match state.throttle.begin(keys, Instant::now()) {
        Ok(attempt) => attempt,
        Err(refused) => {
            tracing::debug!(user = %form.username, ?refused, "login refused before checking the password");
            let row = attempt_row(
                "anonymous".into(),
                Outcome::Refused,
                Some("throttled: too many failed or parallel logins"),
            );
            super::audited::record(&state, row).await;
            let message = match refused {
                Refused::Locked(_) => "Too many failed logins. Wait a few minutes and try again.",
                Refused::TooMany | Refused::Full => {
                    "Too many login attempts at once. Wait a minute and try again."
                }
            };
            return with_retry_after(
                page(StatusCode::TOO_MANY_REQUESTS, message),
                refused.retry_after(),
            );
        }
    };
    let username = form.username.clone();
    let now = state.clock.now();
    let keys = shared_keys.clone();
    let found = blocking(&state, move |runner| {
        let locked = locked_everywhere(runner.catalog(), &keys, now)?;
        Ok((runner.accounts().user_by_name(&username)?, locked))
    })
    .await;
    if let Ok((_, true)) = &found {
        drop(attempt);
        tracing::debug!(user = %form.username, "login refused: too many failures across instances");
        let row = attempt_row(
            "anonymous".into(),
            Outcome::Refused,
            Some("throttled: too many failed logins across instances"),
        );
        super::audited::record(&state, row).await;
        return with_retry_after(
            page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed logins. Wait a few minutes and try again.",
            ),
            throttle::WINDOW.as_secs(),
        );
    }
    let (user, hash) = match found.map(|(found, _)| found) {
        // A single sign-on user has no password: checked like an unknown name, as long.
        Ok(Some((user, hash))) => {
            let hash = (!user.single_sign_on).then_some(hash);
            (Some(user), hash)
        }
        Ok(None) => (None, None),
        Err(e) => {
            drop(attempt);
            return super::respond::internal_page(&state, &e);
        }
    };
    // An unknown user is checked against a stand-in hash, so both answers take as long.
    let Ok(check) = passwords::queue_login_check(form.password, hash) else {
        drop(attempt);
        return with_retry_after(
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many logins at once. Try again in a moment.",
            ),
            1,
        );
    };
    let matched = check.await.unwrap_or(false);
    let known = user.is_some();
    let Some(user) = user.filter(|_| matched) else {
        let why = if known {
            "wrong password"
        } else {
            "no such user"
        };
        super::audited::record(
            &state,
            attempt_row("anonymous".into(), Outcome::Failed, Some(why)),
        )
        .await;
        if count_failure(&state, attempt, shared_keys, now).await {
            warn!(user = %form.username, "failed login; this user name or address is locked out for five minutes");
        } else {
            warn!(user = %form.username, "failed login");
        }
        return page(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    };
    drop(attempt);
    if user.two_factor {
        // The password is right; the session waits for the second factor.
        return second_factor_next(&state, &user, &next).await;
    }
    let row = attempt_row(format!("user:{}", user.name), Outcome::Ok, None);
    open_session(&state, &user, &next, row).await
}

/// The throttle's keys for a login (password or code) by `name` from address `source`.
pub(super) fn login_keys(name: &str, source: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!("user:{name}")];
    if let Some(addr) = source {
        keys.push(format!("addr:{addr}"));
    }
    keys
}

/// Whether any of `keys` failed [`throttle::MAX_FAILURES`] times within the lockout, counted
/// by every instance sharing the catalog.
///
/// # Errors
/// When the catalog cannot be read.
pub(super) fn locked_everywhere(
    failures: &dyn dbkeep_model::accounts::LoginFailures,
    keys: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> dbkeep_model::error::Result<bool> {
    let since = now - chrono::Duration::from_std(throttle::LOCKOUT).unwrap_or_default();
    Ok(failures.login_failures_since(keys, since)? >= throttle::MAX_FAILURES as u64)
}

/// Counts a failed attempt (a wrong password or code) in the catalog, for every instance, and
/// in this one's throttle; whether it locked a key out.
pub(super) async fn count_failure(
    state: &Arc<WebState>,
    attempt: throttle::Attempt<'_>,
    keys: Vec<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let recorded = blocking(state, move |runner| {
        runner
            .catalog()
            .record_login_failure(&keys, now, throttle::LOCKOUT)
    })
    .await;
    if let Err(e) = recorded {
        warn!(error = %e, "could not count the failed login in the catalog");
    }
    attempt.failed(Instant::now())
}

/// `response` with a `Retry-After` of `seconds`.
pub(super) fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// How long a login whose password matched waits for its second factor.
const PENDING_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// The cookie of a login waiting for its second factor.
pub(super) const PENDING_COOKIE: &str = "dbkeep_2fa";

/// Records a login waiting for its second factor and sends the browser to its form.
async fn second_factor_next(
    state: &Arc<WebState>,
    user: &dbkeep_model::accounts::User,
    next: &str,
) -> Response {
    let now = state.clock.now();
    let user_id = user.id;
    let pending = blocking(state, move |runner| {
        let token = token::random_token()?;
        runner.accounts().add_pending_login(
            &token::token_digest(&token),
            user_id,
            now,
            now + PENDING_TTL,
        )?;
        Ok(token)
    })
    .await;
    match pending {
        Ok(token) => {
            let target = format!("{}/login/2fa?next={}", state.base, urlencode(next));
            let mut r = Redirect::to(&target).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(state, PENDING_COOKIE, &token, PENDING_TTL.num_seconds()),
            );
            r
        }
        Err(e) => super::respond::internal_page(state, &e),
    }
}

/// Opens a session for `user` (who passed every factor), records `row` in the audit log, and
/// sends the browser to `next` with the session cookie.
pub(super) async fn open_session(
    state: &Arc<WebState>,
    user: &dbkeep_model::accounts::User,
    next: &str,
    row: Entry,
) -> Response {
    let now = state.clock.now();
    let user_id = user.id;
    let session = blocking(state, move |runner| {
        let token = token::random_token()?;
        let csrf = token::random_token()?;
        runner.accounts().add_session(
            &token::token_digest(&token),
            user_id,
            &csrf,
            now,
            now + SESSION_TTL,
        )?;
        Ok(token)
    })
    .await;
    match session {
        Ok(token) => {
            info!(user = %user.name, "logged in");
            super::audited::record(state, row).await;
            let mut r = Redirect::to(next).into_response();
            let headers = r.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(state, SESSION_COOKIE, &token, SESSION_TTL.num_seconds()),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(state, LOGIN_CSRF_COOKIE, "", 0),
            );
            headers.append(header::SET_COOKIE, set_cookie(state, PENDING_COOKIE, "", 0));
            r
        }
        Err(e) => super::respond::internal_page(state, &e),
    }
}

/// Where to go after logging in: a path inside the admin that is rebuilt here, never another
/// site. Anything else (another host, `//`, `/\`, control characters, a path outside the
/// admin) goes to the home page.
pub(super) fn safe_next(base: &str, next: &str) -> String {
    local_path(base, next).unwrap_or_else(|| home(base))
}

fn local_path(base: &str, next: &str) -> Option<String> {
    // Browsers drop tabs and newlines inside URLs (`/\t/evil` becomes `//evil`): refuse them all.
    if next.chars().any(char::is_control) || next.contains('\\') {
        return None;
    }
    let rest = next.strip_prefix('/')?;
    if rest.starts_with('/') {
        return None;
    }
    const PLACEHOLDER: &str = "dbkeep.invalid";
    let url = url::Url::parse(&format!("http://{PLACEHOLDER}/"))
        .ok()?
        .join(next)
        .ok()?;
    if url.host_str() != Some(PLACEHOLDER) || url.port().is_some() {
        return None;
    }
    let path = url.path();
    // Dot segments can leave `//` at the front after parsing (`/.//evil`): a link to another host.
    if path.starts_with("//") || path.starts_with("/\\") {
        return None;
    }
    let inside = base.is_empty() || path == base || path.starts_with(&format!("{base}/"));
    inside.then(|| match url.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    })
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
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !form_ok(&state, &identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    let caller =
        super::audited::Caller::new(identity.actor(), &headers, connect.as_ref().map(|c| &c.0));
    caller
        .record(
            &state,
            Entry::new(&caller.actor, Action::Logout, "", Outcome::Ok),
        )
        .await;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let now = state.clock.now();
        let _ = blocking(&state, move |runner| {
            runner
                .accounts()
                .delete_session(&token::token_digest(&token), now)
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
    fn after_login_only_paths_inside_the_admin_are_followed() {
        for (base, next, want) in [
            ("", "/backups/3?x=1", "/backups/3?x=1"),
            ("", "/", "/"),
            (
                "",
                "/%09/127.0.0.1:19199/phish",
                "/%09/127.0.0.1:19199/phish",
            ),
            ("", "/\t/127.0.0.1:19199/phish", "/"),
            ("", "/\n/x", "/"),
            ("", "/\r/x", "/"),
            ("", "/\u{0b}/x", "/"),
            ("", "//evil.example/", "/"),
            ("", "/\\evil.example/", "/"),
            ("", "https://evil.example/", "/"),
            ("", "/.//evil.example/phish", "/"),
            ("", "/..//evil.example/", "/"),
            ("", "/%2e//evil.example/", "/"),
            ("", "/a/..//evil.example/", "/"),
            ("", "evil", "/"),
            ("", "", "/"),
            ("", "/a b", "/a%20b"),
            ("/admin", "/admin/backups/1", "/admin/backups/1"),
            ("/admin", "/admin", "/admin"),
            ("/admin", "/administrator", "/admin"),
            ("/admin", "/other", "/admin"),
            ("/admin", "/admin/../other", "/admin"),
        ] {
            assert_eq!(safe_next(base, next), want, "base {base:?}, next {next:?}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&headers).as_deref(), want, "{value:?}");
        }
    }
}
