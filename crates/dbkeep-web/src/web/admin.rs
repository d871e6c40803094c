//! The admin's own pages: the users and tokens (read-only: they are managed with
//! `dbkeep user` and `dbkeep token`) and the audit log with its filters.

use axum::Extension;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Identity;
use super::pages::frame;
use super::respond::{error_page, internal_page};
use super::{State, blocking, link, view};
use dbkeep_model::audit::{Action, Outcome};

/// How many audit rows one page shows.
const AUDIT_PAGE: u32 = 100;

pub async fn users_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    let now = state.clock.now();
    let found = blocking(&state, move |r| {
        Ok((
            r.accounts().users()?,
            r.accounts().tokens()?,
            r.accounts().sessions(now)?,
        ))
    })
    .await;
    let (users, tokens, sessions) = match found {
        Ok(found) => found,
        Err(e) => return internal_page(&state, &e),
    };
    let tz = state.runner.config().service.timezone;
    view::Users {
        frame: frame(&state, &identity, "users"),
        timezone: tz.to_string(),
        users: users
            .into_iter()
            .map(|u| {
                // Sessions come by user, then by start: the newest is the last.
                let mine: Vec<_> = sessions.iter().filter(|s| s.user == u.name).collect();
                view::UserView {
                    single_sign_on: u.source == dbkeep_model::accounts::OIDC_SOURCE,
                    role: u.grant.role.as_str(),
                    databases: u.grant.databases.to_string(),
                    added: view::local(&u.created_at, tz),
                    sessions: mine.len(),
                    newest_session: mine
                        .last()
                        .map_or_else(String::new, |s| view::local(&s.created_at, tz)),
                    name: u.name,
                }
            })
            .collect(),
        tokens: tokens
            .into_iter()
            .map(|t| view::TokenView {
                role: t.grant.role.as_str(),
                databases: t.grant.databases.to_string(),
                added: view::local(&t.created_at, tz),
                expires: match t.expires_at {
                    None => "never".into(),
                    Some(e) if e <= now => format!("expired {}", view::local(&e, tz)),
                    Some(e) => view::local(&e, tz),
                },
                used: t
                    .last_used_at
                    .map_or_else(|| "never".into(), |u| view::local(&u, tz)),
                name: t.name,
            })
            .collect(),
    }
    .into_response()
}

/// Ends every session of a user (they must log in again).
pub async fn end_sessions_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(user): axum::extract::Path<String>,
    axum::Form(form): axum::Form<super::auth::CsrfForm>,
) -> Response {
    if !super::auth::form_ok(&state, &identity, &headers, &form.csrf_token) {
        return super::auth::forbidden();
    }
    let name = user.clone();
    let ended = blocking(&state, move |r| {
        if r.accounts().user_by_name(&name)?.is_none() {
            return Ok(None);
        }
        Ok(Some(r.accounts().end_sessions(&name)?))
    })
    .await;
    match ended {
        Ok(Some(n)) => {
            let mut r = axum::response::Redirect::to(&link(&state.base, "/users")).into_response();
            r.extensions_mut()
                .insert(super::audited::AuditDetail(format!("{n} session(s) ended")));
            r
        }
        Ok(None) => error_page(
            &state,
            StatusCode::NOT_FOUND,
            &format!(
                "There is no user named {}.",
                dbkeep_model::text::escape_controls(&user, false)
            ),
        ),
        Err(e) => internal_page(&state, &e),
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    before: Option<i64>,
}

pub async fn audit_get(
    state: State,
    Extension(identity): Extension<Identity>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid filter in the address; start again from the audit page",
        );
    };
    let actor = q.actor.filter(|a| !a.trim().is_empty());
    let action = match q.action.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(word) => match word.parse::<Action>() {
            Ok(a) => Some(a),
            Err(e) => {
                let e = dbkeep_model::text::escape_controls(&e, false).into_owned();
                return error_page(&state, StatusCode::BAD_REQUEST, &e);
            }
        },
    };
    let query = dbkeep_model::audit::Query {
        since: None,
        actor: actor.clone(),
        action,
        before_id: q.before,
        limit: AUDIT_PAGE + 1,
    };
    let mut rows = match blocking(&state, move |r| r.catalog().audit(&query)).await {
        Ok(rows) => rows,
        Err(e) => return internal_page(&state, &e),
    };
    let more = rows.len() > AUDIT_PAGE as usize;
    rows.truncate(AUDIT_PAGE as usize);
    let older = rows.last().filter(|_| more).map(|last| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(a) = &actor {
            query.append_pair("actor", a);
        }
        if let Some(a) = action {
            query.append_pair("action", a.as_str());
        }
        query.append_pair("before", &last.id.to_string());
        link(&state.base, &format!("/audit?{}", query.finish()))
    });
    let tz = state.runner.config().service.timezone;
    view::Audit {
        frame: frame(&state, &identity, "audit"),
        timezone: tz.to_string(),
        actor: actor.unwrap_or_default(),
        actions: Action::ALL
            .iter()
            .map(|a| (a.as_str(), Some(*a) == action))
            .collect(),
        older,
        rows: rows
            .into_iter()
            .map(|r| {
                let e = r.entry;
                view::AuditView {
                    time: view::local(&r.time, tz),
                    colour: match e.outcome {
                        Outcome::Ok => "green",
                        Outcome::Failed => "red",
                        Outcome::Refused => "orange",
                    },
                    actor: e.actor,
                    action: e.action.as_str(),
                    target: e.target,
                    outcome: e.outcome.as_str(),
                    detail: e.detail.unwrap_or_default(),
                    source: e.source.unwrap_or_default(),
                    user_agent: e.user_agent.unwrap_or_default(),
                }
            })
            .collect(),
    }
    .into_response()
}
