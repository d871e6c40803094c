//! Two-factor login in the web admin: the second step of a login (a TOTP code or a recovery
//! code, throttled like passwords), and the account page where a user turns it on (QR code,
//! confirmation, ten recovery codes shown once) or off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use tracing::warn;

use super::auth::{
    CsrfForm, Identity, NextQuery, PENDING_COOKIE, cookie, count_failure, forbidden, form_ok,
    form_page, locked_everywhere, login_form_ok, login_keys, open_session, safe_next,
    with_retry_after,
};
use super::pages::frame;
use super::respond::internal_page;
use super::throttle;
use super::{State, WebState, blocking, view};
use dbkeep_core::twofactor;
use dbkeep_model::accounts::{Accounts, User};
use dbkeep_model::audit::{Action, Entry, Outcome};
use dbkeep_model::token;

/// The second step's form.
pub async fn login_2fa_get(state: State, q: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = q.ok().and_then(|Query(q)| q.next()).unwrap_or_default();
    let next = safe_next(&state.base, &next);
    let Ok(csrf) = token::random_token() else {
        return super::respond::error_page(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "no random numbers",
        );
    };
    form_page(&state, StatusCode::OK, &csrf, &next, None, true)
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

/// The most a code field may hold: a recovery code with spaces to spare.
const MAX_CODE_BYTES: usize = 64;

/// How a typed code was accepted.
enum Accepted {
    Totp,
    Recovery(u64),
}

/// Checks `code` against `user`'s second factor: a TOTP code not used before, or an unused
/// recovery code (which is used up).
fn check_code(
    accounts: &dyn Accounts,
    user: &User,
    code: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> dbkeep_model::error::Result<Option<Accepted>> {
    if code.len() > MAX_CODE_BYTES {
        return Ok(None);
    }
    if twofactor::is_recovery_code(code) {
        let used = accounts.use_recovery_code(user.id, &twofactor::recovery_digest(code), now)?;
        return Ok(if used {
            Some(Accepted::Recovery(accounts.recovery_codes_left(user.id)?))
        } else {
            None
        });
    }
    let Some(factor) = accounts.two_factor(user.id)?.filter(|f| f.enabled) else {
        return Ok(None);
    };
    let unix = u64::try_from(now.timestamp()).unwrap_or(0);
    match twofactor::matching_step(&factor.secret, code, unix) {
        // The step is taken in one statement: the same code is never accepted twice.
        Some(step) if accounts.accept_totp_step(user.id, step)? => Ok(Some(Accepted::Totp)),
        _ => Ok(None),
    }
}

pub async fn login_2fa_post(
    state: State,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    if !login_form_ok(&state, &headers, &form.csrf_token) {
        return forbidden();
    }
    let next = safe_next(&state.base, &form.next);
    let page =
        |status, message| form_page(&state, status, &form.csrf_token, &next, Some(message), true);
    let now = state.clock.now();
    let pending = cookie(&headers, PENDING_COOKIE).unwrap_or_default();
    let digest = token::token_digest(&pending);
    let lookup = digest.clone();
    let user = match blocking(&state, move |r| r.accounts().pending_login(&lookup, now)).await {
        Ok(Some(user)) if !pending.is_empty() => user,
        Ok(_) => {
            return form_page(
                &state,
                StatusCode::UNAUTHORIZED,
                &form.csrf_token,
                &next,
                Some("This login has expired. Log in again."),
                false,
            );
        }
        Err(e) => return internal_page(&state, &e),
    };
    let source = connect.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    let row = |actor: String, outcome: Outcome, detail: String| Entry {
        detail: Some(detail),
        source: source.clone(),
        user_agent: super::audited::user_agent(&headers),
        ..Entry::new(actor, Action::Login, user.name.clone(), outcome)
    };
    let too_many = |wait: u64| {
        with_retry_after(
            page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong codes. Wait a few minutes and try again.",
            ),
            wait,
        )
    };
    // Wrong codes count as failed logins: the same throttle, here and across instances.
    let keys = login_keys(&user.name, source.as_deref());
    let attempt = match state.throttle.begin(keys.clone(), Instant::now()) {
        Ok(attempt) => attempt,
        Err(refused) => {
            let entry = row(
                "anonymous".into(),
                Outcome::Refused,
                "throttled: too many failed codes".into(),
            );
            super::audited::record(&state, entry).await;
            return too_many(refused.retry_after());
        }
    };
    let (code, who, shared_keys) = (form.code.clone(), user.clone(), keys.clone());
    let checked = blocking(&state, move |r| {
        if locked_everywhere(r.catalog(), &shared_keys, now)? {
            return Ok(Err(()));
        }
        Ok(Ok(check_code(r.accounts(), &who, &code, now)?))
    })
    .await;
    match checked {
        Ok(Ok(Some(accepted))) => {
            drop(attempt);
            let detail = match accepted {
                Accepted::Totp => "with a TOTP code".to_string(),
                Accepted::Recovery(left) => format!("with a recovery code ({left} left)"),
            };
            let _ = blocking(&state, move |r| {
                r.accounts().end_pending_login(&digest, now)
            })
            .await;
            let entry = row(format!("user:{}", user.name), Outcome::Ok, detail);
            open_session(&state, &user, &next, entry).await
        }
        Ok(Ok(None)) => {
            count_failure(&state, attempt, keys, now).await;
            warn!(user = %user.name, "wrong second-factor code");
            let entry = row(
                "anonymous".into(),
                Outcome::Failed,
                "wrong second-factor code".into(),
            );
            super::audited::record(&state, entry).await;
            page(StatusCode::UNAUTHORIZED, "Wrong code.")
        }
        Ok(Err(())) => {
            drop(attempt);
            too_many(throttle::WINDOW.as_secs())
        }
        Err(e) => {
            drop(attempt);
            internal_page(&state, &e)
        }
    }
}

/// What the account page says besides the user's state.
#[derive(Default)]
struct Shown {
    enrolment: Option<twofactor::Enrolment>,
    recovery_codes: Option<Vec<String>>,
    notice: Option<String>,
    error: Option<String>,
}

async fn account_page(
    state: &Arc<WebState>,
    identity: &Identity,
    status: StatusCode,
    shown: Shown,
) -> Response {
    let rule = state.runner.config().web.auth.require_2fa;
    let Identity::User(session) = identity else {
        return (
            status,
            view::Account {
                frame: frame(state, identity, "account"),
                is_user: false,
                grant: identity.grant().to_string(),
                enabled: false,
                required: false,
                codes_left: 0,
                enrolment: None,
                recovery_codes: None,
                notice: shown.notice,
                error: shown.error,
            },
        )
            .into_response();
    };
    let id = session.user.id;
    let found = blocking(state, move |r| {
        let factor = r.accounts().two_factor(id)?;
        Ok((factor, r.accounts().recovery_codes_left(id)?))
    })
    .await;
    let (factor, codes_left) = match found {
        Ok(found) => found,
        Err(e) => return internal_page(state, &e),
    };
    (
        status,
        view::Account {
            frame: frame(state, identity, "account"),
            is_user: true,
            grant: session.user.grant.to_string(),
            enabled: factor.is_some_and(|f| f.enabled),
            required: rule.requires(session.user.grant.role),
            codes_left,
            enrolment: shown.enrolment,
            recovery_codes: shown.recovery_codes,
            notice: shown.notice,
            error: shown.error,
        },
    )
        .into_response()
}

pub async fn account_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    account_page(&state, &identity, StatusCode::OK, Shown::default()).await
}

/// The user of a browser session, for the forms that change it (an API token has none).
fn session_user(identity: &Identity) -> Option<&User> {
    match identity {
        Identity::User(s) => Some(&s.user),
        Identity::Token(_) => None,
    }
}

/// The answer to an API token asking to change a second factor.
fn not_a_user() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "an API token has no second factor: log in as a user\n",
    )
        .into_response()
}

pub async fn start_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !form_ok(&state, &identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    let Some(user) = session_user(&identity).cloned() else {
        return not_a_user();
    };
    if user.two_factor {
        let shown = Shown {
            error: Some("Two-factor login is on already; turn it off first to change it.".into()),
            ..Shown::default()
        };
        return account_page(&state, &identity, StatusCode::CONFLICT, shown).await;
    }
    let name = user.name.clone();
    let started = blocking(&state, move |r| {
        let secret = twofactor::new_secret()?;
        r.accounts().set_two_factor(user.id, Some(&secret), false)?;
        twofactor::enrolment(&secret, &name)
    })
    .await;
    match started {
        Ok(enrolment) => {
            let shown = Shown {
                enrolment: Some(enrolment),
                ..Shown::default()
            };
            account_page(&state, &identity, StatusCode::OK, shown).await
        }
        Err(e) => internal_page(&state, &e),
    }
}

#[derive(Deserialize)]
pub struct AccountCodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn confirm_post(
    state: State,
    Extension(identity): Extension<Identity>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<AccountCodeForm>,
) -> Response {
    if !form_ok(&state, &identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    let Some(user) = session_user(&identity).cloned() else {
        return not_a_user();
    };
    let now = state.clock.now();
    let (id, name, code) = (user.id, user.name.clone(), form.code.clone());
    let confirmed = blocking(&state, move |r| {
        let accounts = r.accounts();
        let Some(factor) = accounts.two_factor(id)?.filter(|f| !f.enabled) else {
            return Ok(Err(("Start the set-up first.", None)));
        };
        let unix = u64::try_from(now.timestamp()).unwrap_or(0);
        match twofactor::matching_step(&factor.secret, &code, unix) {
            Some(step) if accounts.accept_totp_step(id, step)? => {
                let codes = twofactor::recovery_codes()?;
                let digests: Vec<String> = codes
                    .iter()
                    .map(|c| twofactor::recovery_digest(c))
                    .collect();
                accounts.set_recovery_codes(id, &digests)?;
                accounts.set_two_factor(id, Some(&factor.secret), true)?;
                Ok(Ok(codes))
            }
            // Shown again, with the same secret, to try the next code.
            _ => Ok(Err((
                "That code does not match: check the app's clock and try the next code.",
                twofactor::enrolment(&factor.secret, &name).ok(),
            ))),
        }
    })
    .await;
    let caller =
        super::audited::Caller::new(identity.actor(), &headers, connect.as_ref().map(|c| &c.0));
    match confirmed {
        Ok(Ok(codes)) => {
            let entry = Entry::new(
                &caller.actor,
                Action::TwoFactorChange,
                &user.name,
                Outcome::Ok,
            )
            .detail(format!(
                "turned on, with {} new recovery codes",
                codes.len()
            ));
            caller.record(&state, entry).await;
            let shown = Shown {
                recovery_codes: Some(codes),
                ..Shown::default()
            };
            account_page(&state, &identity, StatusCode::OK, shown).await
        }
        Ok(Err((message, enrolment))) => {
            let shown = Shown {
                enrolment,
                error: Some(message.to_string()),
                ..Shown::default()
            };
            account_page(&state, &identity, StatusCode::BAD_REQUEST, shown).await
        }
        Err(e) => internal_page(&state, &e),
    }
}

pub async fn disable_post(
    state: State,
    Extension(identity): Extension<Identity>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<AccountCodeForm>,
) -> Response {
    if !form_ok(&state, &identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    let Some(user) = session_user(&identity).cloned() else {
        return not_a_user();
    };
    if state
        .runner
        .config()
        .web
        .auth
        .require_2fa
        .requires(user.grant.role)
    {
        let shown = Shown {
            error: Some("Two-factor login is required for you (require_2fa); it stays on.".into()),
            ..Shown::default()
        };
        return account_page(&state, &identity, StatusCode::FORBIDDEN, shown).await;
    }
    let now = state.clock.now();
    let caller =
        super::audited::Caller::new(identity.actor(), &headers, connect.as_ref().map(|c| &c.0));
    // Codes tried here are throttled like the login's: a session alone cannot guess them.
    let keys = login_keys(&user.name, None);
    let Ok(attempt) = state.throttle.begin(keys.clone(), Instant::now()) else {
        let shown = Shown {
            error: Some("Too many wrong codes. Wait a few minutes and try again.".into()),
            ..Shown::default()
        };
        return account_page(&state, &identity, StatusCode::TOO_MANY_REQUESTS, shown).await;
    };
    let (who, code) = (user.clone(), form.code.clone());
    let done = blocking(&state, move |r| {
        let accepted = check_code(r.accounts(), &who, &code, now)?;
        if accepted.is_some() {
            r.accounts().set_two_factor(who.id, None, false)?;
        }
        Ok(accepted.is_some())
    })
    .await;
    if matches!(done, Ok(false)) {
        count_failure(&state, attempt, keys, now).await;
    } else {
        drop(attempt);
    }
    match done {
        Ok(true) => {
            let entry = Entry::new(
                &caller.actor,
                Action::TwoFactorChange,
                &user.name,
                Outcome::Ok,
            )
            .detail("turned off");
            caller.record(&state, entry).await;
            let shown = Shown {
                notice: Some("Two-factor login is off.".into()),
                ..Shown::default()
            };
            account_page(&state, &identity, StatusCode::OK, shown).await
        }
        Ok(false) => {
            let entry = Entry::new(
                &caller.actor,
                Action::TwoFactorChange,
                &user.name,
                Outcome::Failed,
            )
            .detail("turning off refused: wrong code");
            caller.record(&state, entry).await;
            let shown = Shown {
                error: Some("Wrong code: two-factor login stays on.".into()),
                ..Shown::default()
            };
            account_page(&state, &identity, StatusCode::BAD_REQUEST, shown).await
        }
        Err(e) => internal_page(&state, &e),
    }
}
