//! The HTML pages besides the overview: the backups history, one backup (with its log),
//! schedules, and the error and not-found pages.

use axum::Extension;
use axum::Form;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{CsrfForm, Identity, forbidden, form_ok};
use super::respond::{error_page, internal_page};
use super::view::{self, Frame, Row, ScheduleView};
use super::{State, WebState, blocking};
use dbkeep_model::accounts::Role;
use dbkeep_model::catalog::{ListFilter, Status};
use dbkeep_model::copies::CopyState;

/// Rows per page of the backups table.
const PAGE: u32 = 50;

/// The stylesheet, embedded in the binary (no CDN: the admin works offline).
pub async fn style_get() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../assets/style.css"),
    )
        .into_response()
}

/// The favicon, embedded in the binary.
pub async fn favicon_get() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("../../assets/favicon.svg"),
    )
        .into_response()
}

pub(super) fn frame(state: &WebState, identity: &Identity, nav: &'static str) -> Frame {
    let (user, csrf_token) = match identity {
        Identity::User(s) => (s.user.name.clone(), s.csrf_token.clone()),
        Identity::Token(t) => (format!("token {}", t.name), String::new()),
    };
    Frame {
        base: state.base.clone(),
        home: state.home(),
        user,
        csrf_token,
        nav,
        admin: identity.can(Role::Admin),
        operator: identity.can(Role::Operator),
    }
}

#[derive(Deserialize)]
pub struct BackupsQuery {
    database: Option<String>,
    status: Option<String>,
    before: Option<i64>,
}

pub async fn backups_get(
    state: State,
    Extension(identity): Extension<Identity>,
    q: Result<Query<BackupsQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid filter in the address; start again from the backups page",
        );
    };
    let database = q.database.filter(|d| !d.is_empty());
    let status_text = q.status.filter(|s| !s.is_empty());
    let status = match status_text.as_deref().map(str::parse::<Status>).transpose() {
        Ok(s) => s,
        Err(e) => return error_page(&state, StatusCode::BAD_REQUEST, &e),
    };
    let filter = ListFilter {
        database: database.clone(),
        status,
        before: q.before,
        limit: Some(PAGE + 1),
    };
    let mut records = match blocking(&state, move |r| r.catalog().list(&filter)).await {
        Ok(r) => r,
        Err(e) => return internal_page(&state, &e),
    };
    let more = records.len() > PAGE as usize;
    // A login limited to some databases sees only theirs (a page may then hold fewer rows).
    records.retain(|r| identity.sees(&r.database));
    // Judged with the row past the page too: the page's oldest success has its predecessor.
    let suspicious = dbkeep_notify::notify::suspicious_ids(&records);
    records.truncate(PAGE as usize);
    let (tz, now) = (state.runner.config().service.timezone, state.clock.now());
    let older = match (more, records.last()) {
        (true, Some(last)) => {
            let mut link = format!("{}/backups?before={}", state.base, last.id);
            if let Some(d) = &database {
                link.push_str(&format!("&database={d}"));
            }
            if let Some(s) = &status_text {
                link.push_str(&format!("&status={s}"));
            }
            Some(link)
        }
        _ => None,
    };
    view::Backups {
        frame: frame(&state, &identity, "backups"),
        refresh: records.iter().any(|r| r.status == Status::InProgress),
        rows: records
            .iter()
            .map(|r| Row {
                suspicious: suspicious.contains(&r.id),
                ..Row::new(r, tz, now)
            })
            .collect(),
        databases: state
            .runner
            .config()
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect(),
        unmatched: records
            .is_empty()
            .then(|| {
                let mut what = Vec::new();
                if let Some(d) = &database {
                    what.push(if state.runner.config().database(d).is_ok() {
                        format!("database {d}")
                    } else {
                        format!("database {d} (not a configured database)")
                    });
                }
                if let Some(s) = &status_text {
                    what.push(format!("status {s}"));
                }
                if q.before.is_some() {
                    what.push("this page".to_string());
                }
                what.join(", ")
            })
            .filter(|w| !w.is_empty()),
        retention: database
            .clone()
            .filter(|d| state.runner.config().database(d).is_ok()),
        database: database.unwrap_or_default(),
        status: status_text.unwrap_or_default(),
        older,
    }
    .into_response()
}

pub async fn backup_get(
    state: State,
    Extension(identity): Extension<Identity>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(id) = id.ok().and_then(|Path(id)| super::respond::parse_id(&id)) else {
        return error_page(&state, StatusCode::NOT_FOUND, "no such backup");
    };
    let found = blocking(&state, move |r| {
        Ok(match r.catalog().get(id)? {
            Some(rec) => {
                let previous = r.catalog().list(&ListFilter {
                    database: Some(rec.database.clone()),
                    status: Some(Status::Success),
                    before: Some(id),
                    limit: Some(1),
                })?;
                let suspicious = rec.status == Status::Success
                    && dbkeep_notify::notify::suspicious(
                        rec.size_bytes,
                        previous.first().and_then(|p| p.size_bytes),
                    );
                let local = rec.status == Status::Success
                    && rec.pruned_at.is_none()
                    && r.open_backup(&rec).is_ok();
                let whereabouts = whereabouts(&rec, local, r.instance_name());
                let instance = match &rec.instance {
                    Some(i) if i == r.instance_name() => format!("{i} (this instance)"),
                    Some(i) => i.clone(),
                    None => "—".into(),
                };
                Some((
                    rec,
                    r.catalog().log(id)?,
                    r.catalog().verifications(id)?,
                    suspicious,
                    (instance, whereabouts),
                ))
            }
            None => None,
        })
    })
    .await;
    let (record, log, verifications, suspicious, (instance, whereabouts)) = match found {
        Ok(Some((rec, log, verifications, suspicious, place))) => (
            rec,
            log.unwrap_or_default(),
            verifications,
            suspicious,
            place,
        ),
        Ok(None) => return error_page(&state, StatusCode::NOT_FOUND, "no such backup"),
        Err(e) => return internal_page(&state, &e),
    };
    let (tz, now) = (state.runner.config().service.timezone, state.clock.now());
    let config = state.runner.config();
    let restore_command = match config.database(&record.database) {
        Ok(db) if matches!(db.target, dbkeep_config::config::Target::PostgresBase(_)) => format!(
            "dbkeep --config {} restore --server {} --at \"YYYY-MM-DD HH:MM:SS\" --to-dir NEW_DATA_DIR",
            config.path.display(),
            record.database
        ),
        Ok(db) => format!(
            "dbkeep --config {} restore {} --to {} --force",
            config.path.display(),
            record.id,
            match &db.target {
                dbkeep_config::config::Target::Sqlite { path } => path.display().to_string(),
                dbkeep_config::config::Target::Postgres(s)
                | dbkeep_config::config::Target::Mysql(s)
                | dbkeep_config::config::Target::PostgresBase(s) => s.url.to_string(),
            }
        ),
        Err(_) => format!("dbkeep restore {} --to TARGET", record.id),
    };
    // An encrypted backup opens with the identity kept off this host.
    let restore_command = if record.encrypted && config.identity_file.is_none() {
        format!("{restore_command} --identity KEY.txt")
    } else {
        restore_command
    };
    let copies = record
        .copies
        .iter()
        .map(|c| {
            let (state, colour) = match (c.state, &c.pruned_at) {
                (_, Some(_)) => ("pruned", "grey"),
                (CopyState::Uploaded, None) => ("uploaded", "green"),
                (CopyState::Failed, None) => ("failed", "red"),
            };
            view::CopyView {
                store: c.store.clone(),
                state,
                colour,
                detail: c
                    .error
                    .clone()
                    .or_else(|| c.uploaded_at.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    view::Backup {
        success: record.status == Status::Success,
        note_max: super::pins::NOTE_MAX_CHARS,
        copies,
        instance,
        whereabouts,
        restore_command,
        verifications: verifications
            .iter()
            .map(|v| view::VerificationView {
                when: view::local(&v.finished_at, tz),
                level: v.level.to_string(),
                result: if v.ok { "passed" } else { "failed" },
                colour: if v.ok { "green" } else { "red" },
                message: v.message.clone().unwrap_or_default(),
                restore: v
                    .restore_ms
                    .map(|ms| view::duration(Some(ms)))
                    .unwrap_or_else(|| "—".into()),
            })
            .collect(),
        log: log.lines().map(str::to_string).collect(),
        frame: frame(&state, &identity, "backups"),
        row: Row {
            suspicious,
            ..Row::new(&record, tz, now)
        },
        path: record
            .path
            .as_ref()
            .map_or_else(|| "—".into(), |p| p.display().to_string()),
        sha256: record.sha256.clone().unwrap_or_else(|| "—".into()),
        compression: if record.encrypted {
            format!("{}, encrypted with age", record.compression.as_str())
        } else {
            record.compression.as_str().to_string()
        },
        finished: record
            .finished_at
            .as_ref()
            .map_or_else(|| "—".into(), |t| view::local(t, tz)),
        pruned: record
            .pruned_at
            .as_ref()
            .map_or_else(|| "no".into(), |t| view::local(t, tz)),
    }
    .into_response()
}

/// Where a stored backup's bytes are when its local file is not on this instance's disk (it
/// lives on another instance's, or it is gone); `None` when it is here or was never stored.
fn whereabouts(rec: &dbkeep_model::catalog::BackupRecord, local: bool, me: &str) -> Option<String> {
    if local || rec.status != Status::Success || rec.pruned_at.is_some() {
        return None;
    }
    let copied = rec
        .copies
        .iter()
        .any(|c| c.state == CopyState::Uploaded && c.pruned_at.is_none());
    Some(match (&rec.instance, copied) {
        (_, true) => "Its local file is not on this instance's disk: downloads, verifications and restores here read an off-site copy.".into(),
        (Some(other), false) if other != me => format!(
            "Its file is on the disk of instance {other} only, and no off-site copy holds it: this instance cannot read it. An [[offsite]] destination lets every instance read every backup."
        ),
        _ => "Its local file is missing, and no off-site copy holds it.".into(),
    })
}

/// Verify now: starts a restore-level verification and comes back to the backup's page.
pub async fn verify_now_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(id) = id.ok().and_then(|Path(id)| super::respond::parse_id(&id)) else {
        return error_page(&state, StatusCode::NOT_FOUND, "no such backup");
    };
    if !form_ok(&state, &identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    match state.jobs.verify_now(id).await {
        Ok(()) => Redirect::to(&format!("{}/backups/{id}", state.base)).into_response(),
        Err(dbkeep_model::error::Error::NotFound(_)) => {
            error_page(&state, StatusCode::NOT_FOUND, "no such backup")
        }
        Err(e @ dbkeep_model::error::Error::Refused(_)) => {
            error_page(&state, StatusCode::CONFLICT, &e.to_string())
        }
        Err(e) => internal_page(&state, &e),
    }
}

/// The pin form on a backup's page: its CSRF token and an optional note.
#[derive(Deserialize)]
pub struct PinForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    note: String,
}

/// Pin: keeps the backup from every prune, with the form's note, and comes back to its page.
pub async fn pin_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    Form(form): Form<PinForm>,
) -> Response {
    pin_form(&state, &identity, &headers, id, &form, true).await
}

/// Unpin: lets retention prune the backup again, and comes back to its page.
pub async fn unpin_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    Form(form): Form<PinForm>,
) -> Response {
    pin_form(&state, &identity, &headers, id, &form, false).await
}

/// A pin or unpin form checked (the backup's id, the CSRF token, an admin, the note), then done.
async fn pin_form(
    state: &std::sync::Arc<WebState>,
    identity: &Identity,
    headers: &HeaderMap,
    id: Result<Path<String>, PathRejection>,
    form: &PinForm,
    pinned: bool,
) -> Response {
    let Some(id) = id.ok().and_then(|Path(id)| super::respond::parse_id(&id)) else {
        return error_page(state, StatusCode::NOT_FOUND, "no such backup");
    };
    if !form_ok(state, identity, headers, &form.csrf_token) {
        return forbidden();
    }
    let note = if pinned {
        match super::pins::note(Some(&form.note)) {
            Ok(note) => note,
            Err(why) => return error_page(state, StatusCode::BAD_REQUEST, &why),
        }
    } else {
        None
    };
    set_pin(state, identity, id, pinned, note).await
}

/// Pins or unpins `id`, then back to its page (303), or a page saying why not.
async fn set_pin(
    state: &std::sync::Arc<WebState>,
    identity: &Identity,
    id: i64,
    pinned: bool,
    note: Option<String>,
) -> Response {
    match super::pins::set(state, identity, id, pinned, note).await {
        Ok(Some(_)) => Redirect::to(&format!("{}/backups/{id}", state.base)).into_response(),
        Ok(None) => error_page(state, StatusCode::NOT_FOUND, "no such backup"),
        Err(e @ dbkeep_model::error::Error::Refused(_)) => {
            error_page(state, StatusCode::CONFLICT, &e.to_string())
        }
        Err(e) => internal_page(state, &e),
    }
}

/// The old dashboard's address: the overview took its place.
pub async fn databases_get(state: State) -> Response {
    Redirect::permanent(&state.home()).into_response()
}

pub async fn instances_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    let listed = blocking(&state, move |r| {
        dbkeep_model::instances::listed(r.catalog(), r.config().service.lease_timeout)
    })
    .await;
    let listed = match listed {
        Ok(l) => l,
        Err(e) => return internal_page(&state, &e),
    };
    let config = state.runner.config();
    let tz = config.service.timezone;
    view::Instances {
        frame: frame(&state, &identity, "instances"),
        timezone: tz.to_string(),
        lease_timeout: humantime::format_duration(config.service.lease_timeout).to_string(),
        instances: listed
            .into_iter()
            .map(|i| view::InstanceView {
                state: if i.alive { "alive" } else { "gone" },
                colour: if i.alive { "green" } else { "red" },
                started: view::local(&i.started_at, tz),
                heartbeat: view::local(&i.heartbeat_at, tz),
                running: i.running.join(", "),
                name: i.name,
                host: i.host,
                pid: i.pid,
                version: i.version,
            })
            .collect(),
    }
    .into_response()
}

pub async fn schedules_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    let mut upcoming = state.status.upcoming();
    upcoming.retain(|u| identity.sees(&u.database));
    let keys: Vec<(String, String)> = upcoming
        .iter()
        .map(|u| (u.database.clone(), u.schedule.clone()))
        .collect();
    // Each fire with the status of the backup it ran, so a failed backup shows as failed.
    let fires = blocking(&state, move |r| {
        keys.iter()
            .map(|(d, s)| dbkeep_core::verdict::fires(r.catalog(), d, s, 10))
            .collect::<dbkeep_model::error::Result<Vec<_>>>()
    })
    .await;
    let fires = match fires {
        Ok(f) => f,
        Err(e) => return internal_page(&state, &e),
    };
    let tz = state.runner.config().service.timezone;
    let schedules = upcoming
        .into_iter()
        .zip(fires)
        .map(|(u, fires)| ScheduleView {
            database: u.database,
            expr: u.schedule,
            next: u
                .next
                .map_or_else(|| "never".into(), |t| view::local(&t, tz)),
            fires: fires
                .into_iter()
                .map(|(f, status)| {
                    let (result, colour) = dbkeep_core::verdict::fire_result(&f, status);
                    view::FireView {
                        planned: view::local(&f.planned_at, tz),
                        result,
                        colour,
                        backup: f.backup_id,
                        detail: f.detail.unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect();
    view::Schedules {
        frame: frame(&state, &identity, "schedules"),
        timezone: tz.to_string(),
        schedules,
    }
    .into_response()
}
