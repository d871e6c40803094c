//! The JSON API under `/api/v1`: the same records as `dbkeep list --json`, backups on demand,
//! and the databases with their schedules. Errors are `{"error": "…"}` with a fitting status.

use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{Identity, same_origin};
use super::respond::{error, internal, parse_id};
use super::{State, WebState, blocking};
use dbkeep_model::catalog::{BackupRecord, Kind, ListFilter, Status, format_time};

/// The most rows one request may ask for.
const MAX_LIMIT: u32 = 1000;
/// Rows when the request names no limit.
const DEFAULT_LIMIT: u32 = 50;

#[derive(Deserialize)]
pub struct BackupsQuery {
    database: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

pub async fn backups_get(
    state: State,
    Extension(identity): Extension<Identity>,
    q: Result<Query<BackupsQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid query: give each of database, status, limit and before at most once",
        );
    };
    let status = match q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<Status>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = match q.limit.as_deref().map(str::parse::<u32>).transpose() {
        Ok(Some(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Ok(None) => DEFAULT_LIMIT,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`limit` must be a whole number from 1 to {MAX_LIMIT}"),
            );
        }
    };
    let before = match q.before.as_deref().map(str::parse::<i64>).transpose() {
        Ok(b) => b,
        Err(_) => return error(StatusCode::BAD_REQUEST, "`before` must be a backup id"),
    };
    let filter = ListFilter {
        database: q.database.filter(|d| !d.is_empty()),
        status,
        before,
        limit: Some(limit),
    };
    match blocking(&state, move |r| r.catalog().list(&filter)).await {
        Ok(mut records) => {
            records.retain(|r| identity.sees(&r.database));
            Json(records).into_response()
        }
        Err(e) => internal(&e),
    }
}

pub async fn backup_get(state: State, id: Result<Path<String>, PathRejection>) -> Response {
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error(StatusCode::NOT_FOUND, "no such backup");
    };
    match blocking(&state, move |r| r.catalog().get(id)).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such backup"),
        Err(e) => internal(&e),
    }
}

#[derive(Serialize)]
struct RunLogBody {
    id: i64,
    lines: Vec<String>,
}

/// A run's log: the database tool's messages and dbkeep's steps, one line each.
pub async fn backup_log_get(state: State, id: Result<Path<String>, PathRejection>) -> Response {
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error(StatusCode::NOT_FOUND, "no such backup");
    };
    let found = blocking(&state, move |r| {
        Ok(match r.catalog().get(id)? {
            Some(_) => Some(r.catalog().log(id)?.unwrap_or_default()),
            None => None,
        })
    })
    .await;
    match found {
        Ok(Some(log)) => Json(RunLogBody {
            id,
            lines: log.lines().map(str::to_string).collect(),
        })
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such backup"),
        Err(e) => internal(&e),
    }
}

#[derive(Serialize)]
struct VerifyAccepted {
    id: i64,
    level: dbkeep_model::catalog::VerifyLevel,
}

/// Starts a restore-level verification of one backup: 202, and its result lands on the backup.
pub async fn backup_verify_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    if matches!(identity, Identity::User(_)) && !same_origin(&state, &headers) {
        return error(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error(StatusCode::NOT_FOUND, "no such backup");
    };
    match state.jobs.verify_now(id).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            [(
                header::LOCATION,
                format!("{}/api/v1/backups/{id}", state.base),
            )],
            Json(VerifyAccepted {
                id,
                level: dbkeep_model::catalog::VerifyLevel::Restore,
            }),
        )
            .into_response(),
        Err(dbkeep_model::error::Error::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, "no such backup")
        }
        Err(e @ dbkeep_model::error::Error::Refused(_)) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => internal(&e),
    }
}

/// The body of a pin: `{"note": "…"}`, the note optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    #[serde(default)]
    note: Option<String>,
}

/// Pins one backup (with its note, which replaces an earlier one): retention never prunes it,
/// locally or off-site. Answers the backup as it is now.
pub async fn backup_pin_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<PinBody>, JsonRejection>,
) -> Response {
    if let Some(refused) = refuse_change(&state, &identity, &headers) {
        return refused;
    }
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error(StatusCode::NOT_FOUND, "no such backup");
    };
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected a JSON body like {{\"note\": \"TEXT\"}} (or {{}}): {e}"),
            );
        }
    };
    let note = match super::pins::note(body.note.as_deref()) {
        Ok(note) => note,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    set_pin(&state, &identity, id, true, note).await
}

/// Unpins one backup: retention may prune it again. Answers the backup as it is now.
pub async fn backup_unpin_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    if let Some(refused) = refuse_change(&state, &identity, &headers) {
        return refused;
    }
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error(StatusCode::NOT_FOUND, "no such backup");
    };
    set_pin(&state, &identity, id, false, None).await
}

/// Why a request that changes what is kept is refused: a browser session's call from
/// another site. (Who may change it at all is the route table's to say.)
fn refuse_change(
    state: &super::WebState,
    identity: &Identity,
    headers: &HeaderMap,
) -> Option<Response> {
    (matches!(identity, Identity::User(_)) && !same_origin(state, headers))
        .then(|| error(StatusCode::FORBIDDEN, "cross-site request refused"))
}

async fn set_pin(
    state: &std::sync::Arc<super::WebState>,
    identity: &Identity,
    id: i64,
    pinned: bool,
    note: Option<String>,
) -> Response {
    match super::pins::set(state, identity, id, pinned, note).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such backup"),
        Err(e @ dbkeep_model::error::Error::Refused(_)) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct NewBackup {
    database: String,
}

#[derive(Serialize)]
struct Accepted {
    id: i64,
    database: String,
    status: Status,
}

pub async fn backups_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    body: Result<Json<NewBackup>, JsonRejection>,
) -> Response {
    // A browser session may call the API too, but never from another site.
    if matches!(identity, Identity::User(_)) && !same_origin(&state, &headers) {
        return error(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected a JSON body like {{\"database\": \"NAME\"}}: {e}"),
            );
        }
    };
    let mut response = start_backup(&state, &identity, &body.database).await;
    // The audit row names the database asked for (it is in the body, not the path).
    response
        .extensions_mut()
        .insert(super::audited::AuditTarget(body.database));
    response
}

async fn start_backup(state: &WebState, identity: &Identity, database: &str) -> Response {
    // A database outside the caller's is not there for them.
    if state.runner.config().database(database).is_err() || !identity.sees(database) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no database named `{database}`"),
        );
    }
    match state
        .jobs
        .start_now(database, dbkeep_model::catalog::Trigger::Api)
        .await
    {
        Ok(id) => {
            let location = format!("{}/api/v1/backups/{id}", state.base);
            let accepted = Accepted {
                id,
                database: database.to_string(),
                status: Status::InProgress,
            };
            (
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                Json(accepted),
            )
                .into_response()
        }
        Err(e @ dbkeep_model::error::Error::AlreadyRunning(_)) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => internal(&e),
    }
}

#[derive(Serialize)]
struct ScheduleInfo {
    schedule: String,
    next_run: Option<String>,
    last_fire: Option<FireInfo>,
}

/// A schedule's latest fire and what became of its backup.
#[derive(Serialize)]
struct FireInfo {
    planned_at: String,
    /// `success`, `failed`, `running`, `skipped`, `not started` or `missed`.
    result: &'static str,
    backup_id: Option<i64>,
    detail: Option<String>,
}

#[derive(Serialize)]
struct DatabaseInfo {
    name: String,
    kind: Kind,
    /// The `[[servers]]` entry that found it, if one did.
    server: Option<String>,
    /// The verdict: `failing`, `unprotected`, `stale`, `not_offsite`, `protected` or `gone`.
    status: &'static str,
    /// Why, in words.
    reason: String,
    schedules: Vec<ScheduleInfo>,
    next_run: Option<String>,
    last_success: Option<BackupRecord>,
    running: bool,
}

pub async fn databases_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    let now = state.clock.now();
    let upcoming = state.status.upcoming();
    let keys: Vec<(String, String)> = upcoming
        .iter()
        .map(|u| (u.database.clone(), u.schedule.clone()))
        .collect();
    let facts = std::sync::Arc::clone(&state.facts);
    let found = blocking(&state, move |r| {
        let judged = dbkeep_core::verdict::all(r, &facts, now)?;
        let fires = r.catalog().last_fires(&keys)?;
        Ok((judged, fires))
    })
    .await;
    let (judged, fires) = match found {
        Ok(f) => f,
        Err(e) => return internal(&e),
    };
    // Each database's schedules and its next fire, found once (not by walking every schedule
    // per database).
    let mut by_database: HashMap<&str, (Vec<ScheduleInfo>, Option<DateTime<Utc>>)> = HashMap::new();
    for (u, fire) in upcoming.iter().zip(&fires) {
        let (schedules, next) = by_database.entry(u.database.as_str()).or_default();
        *next = match (*next, u.next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        schedules.push(ScheduleInfo {
            schedule: u.schedule.clone(),
            next_run: u.next.as_ref().map(format_time),
            last_fire: fire.as_ref().map(|(f, status)| FireInfo {
                planned_at: format_time(&f.planned_at),
                result: dbkeep_core::verdict::fire_result(f, *status).0,
                backup_id: f.backup_id,
                detail: f.detail.clone(),
            }),
        });
    }
    let config = state.runner.config();
    let out: Vec<DatabaseInfo> = config
        .databases
        .iter()
        .zip(judged.iter())
        .filter(|(db, _)| identity.sees(&db.name))
        .map(|(db, judged)| {
            let dbkeep_core::verdict::Judged { verdict, facts } = judged;
            let (schedules, next) = by_database.remove(db.name.as_str()).unwrap_or_default();
            DatabaseInfo {
                name: db.name.clone(),
                kind: db.target.kind(),
                server: db.server().map(str::to_string),
                status: verdict.state.as_str(),
                reason: verdict.reason.clone(),
                schedules,
                next_run: next.as_ref().map(format_time),
                running: facts.running(),
                last_success: facts.last_success.clone(),
            }
        })
        .collect();
    Json(out).into_response()
}

/// Every instance sharing the catalog: name, host, version, last heartbeat, what it runs,
/// whether it is alive.
pub async fn instances_get(state: State) -> Response {
    match blocking(&state, move |r| {
        dbkeep_model::instances::listed(r.catalog(), r.config().service.lease_timeout)
    })
    .await
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(&e),
    }
}

/// The OpenAPI 3.0 description of this API.
pub async fn openapi_get(state: State) -> Response {
    let text = include_str!("openapi.json").replace("{BASE}", &state.base);
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
