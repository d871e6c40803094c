//! The HTML pages: backups (home), one backup, databases (dashboard) and schedules.

use std::sync::Arc;

use axum::Extension;
use axum::Form;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{CsrfForm, Identity, forbidden, form_ok};
use super::view::{self, Card, Frame, Row, ScheduleView};
use super::{State, WebState, blocking};
use crate::catalog::{BackupRecord, ListFilter, Outcome, Status};

/// Rows per page of the backups table.
const PAGE: u32 = 50;
/// Runs shown per database on the dashboard.
const RECENT: u32 = 30;

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

/// A page saying what went wrong.
pub fn error_page(state: &WebState, status: StatusCode, message: &str) -> Response {
    (
        status,
        view::ErrorPage {
            base: state.base.clone(),
            home: state.home(),
            message: message.to_string(),
        },
    )
        .into_response()
}

fn frame(state: &WebState, identity: &Identity, nav: &'static str) -> Frame {
    let (user, csrf_token) = match identity {
        Identity::User(s) => (s.user.name.clone(), s.csrf_token.clone()),
        Identity::Token(name) => (format!("token {name}"), String::new()),
    };
    Frame {
        base: state.base.clone(),
        home: state.home(),
        user,
        csrf_token,
        nav,
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
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let more = records.len() > PAGE as usize;
    records.truncate(PAGE as usize);
    let (tz, now) = (state.runner.config().service.timezone, state.clock.now());
    let older = match (more, records.last()) {
        (true, Some(last)) => {
            let mut link = format!("{}?before={}", state.home(), last.id);
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
        rows: records.iter().map(|r| Row::new(r, tz, now)).collect(),
        databases: state
            .runner
            .config()
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect(),
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
    let Some(id) = id.ok().and_then(|Path(id)| super::api::parse_id(&id)) else {
        return error_page(&state, StatusCode::NOT_FOUND, "no such backup");
    };
    let record = match blocking(&state, move |r| r.catalog().get(id)).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(&state, StatusCode::NOT_FOUND, "no such backup"),
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (tz, now) = (state.runner.config().service.timezone, state.clock.now());
    view::Backup {
        frame: frame(&state, &identity, "backups"),
        row: Row::new(&record, tz, now),
        path: record
            .path
            .as_ref()
            .map_or_else(|| "—".into(), |p| p.display().to_string()),
        sha256: record.sha256.clone().unwrap_or_else(|| "—".into()),
        compression: record.compression.as_str().to_string(),
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

/// How long after a scheduled fire its backup may take before the database counts as stale.
const FIRE_GRACE: chrono::Duration = chrono::Duration::minutes(30);

/// The verdict on one database: protected, stale or failing, and why. `last_fire` is the
/// latest instant any of its schedules fired (or should have).
fn verdict(
    recent: &[BackupRecord],
    stale_after: chrono::Duration,
    last_fire: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> (&'static str, &'static str, String) {
    let last_good = recent.iter().find(|r| r.status == Status::Success);
    let last_done = recent.iter().find(|r| r.status != Status::InProgress);
    match (last_good, last_done) {
        (None, Some(_)) => ("failing", "red", "no backup has succeeded yet".into()),
        (None, None) => ("unprotected", "red", "never backed up".into()),
        (Some(_), Some(done)) if done.status == Status::Failed => (
            "failing",
            "red",
            format!(
                "the last backup failed: {}",
                done.error.as_deref().unwrap_or("unknown error")
            ),
        ),
        (Some(good), _)
            if last_fire.is_some_and(|f| good.started_at < f && now - f > FIRE_GRACE) =>
        {
            (
                "stale",
                "orange",
                format!(
                    "no good backup since the scheduled run {}",
                    last_fire
                        .map(|f| view::relative(&f, now))
                        .unwrap_or_default()
                ),
            )
        }
        (Some(good), _) if now - good.started_at > stale_after => (
            "stale",
            "orange",
            format!(
                "the last good backup is older than {}",
                humantime::format_duration(stale_after.to_std().unwrap_or_default())
            ),
        ),
        (Some(_), _) => ("protected", "green", "recent good backup".into()),
    }
}

pub async fn databases_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    databases_page(&state, &identity, None).await
}

async fn databases_page(
    state: &Arc<WebState>,
    identity: &Identity,
    notice: Option<String>,
) -> Response {
    let names: Vec<String> = state
        .runner
        .config()
        .databases
        .iter()
        .map(|d| d.name.clone())
        .collect();
    let recent = blocking(state, move |r| {
        names
            .into_iter()
            .map(|n| {
                let filter = ListFilter {
                    database: Some(n.clone()),
                    limit: Some(RECENT),
                    ..ListFilter::default()
                };
                Ok((n, r.catalog().list(&filter)?))
            })
            .collect::<crate::Result<Vec<_>>>()
    })
    .await;
    let recent = match recent {
        Ok(r) => r,
        Err(e) => return error_page(state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (tz, now) = (state.runner.config().service.timezone, state.clock.now());
    let config = state.runner.config();
    let stale_after =
        chrono::Duration::from_std(config.web.stale_after).unwrap_or(chrono::Duration::hours(26));
    let upcoming = state.status.upcoming();
    let cards = recent
        .iter()
        .filter_map(|(name, rows)| {
            let db = config.database(name).ok()?;
            let last_fire = db
                .schedules
                .iter()
                .filter_map(|s| crate::scheduler::previous_fire(&s.cron, tz, now))
                .max();
            let (verdict, colour, why) = verdict(rows, stale_after, last_fire, now);
            let good = rows.iter().find(|r| r.status == Status::Success);
            let done: Vec<_> = rows
                .iter()
                .filter(|r| r.status != Status::InProgress)
                .collect();
            let ok = done.iter().filter(|r| r.status == Status::Success).count();
            let next = upcoming
                .iter()
                .filter(|u| &u.database == name)
                .filter_map(|u| u.next)
                .min();
            Some(Card {
                name: name.clone(),
                kind: view::kind_label(db.target.kind()).to_string(),
                verdict,
                colour,
                why,
                last_success: good
                    .map_or_else(|| "never".into(), |g| view::local(&g.started_at, tz)),
                last_success_ago: good
                    .map(|g| view::relative(&g.started_at, now))
                    .unwrap_or_default(),
                next_run: next.map_or_else(
                    || "not scheduled".into(),
                    |t| format!("{} ({})", view::local(&t, tz), view::relative(&t, now)),
                ),
                success_rate: if done.is_empty() {
                    "no runs yet".into()
                } else {
                    format!("{ok} of {} ({}%)", done.len(), ok * 100 / done.len())
                },
                strip: rows
                    .iter()
                    .rev()
                    .map(|r| {
                        let (w, c) = view::state(r);
                        (r.id, w, c)
                    })
                    .collect(),
                chart: view::chart(&rows.iter().collect::<Vec<_>>()),
                folder: config.database_dir(name).display().to_string(),
                running: rows.first().is_some_and(|r| r.status == Status::InProgress),
            })
        })
        .collect();
    view::Databases {
        frame: frame(state, identity, "databases"),
        cards,
        notice,
    }
    .into_response()
}

pub async fn backup_now_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Ok(Path(name)) = name else {
        return error_page(&state, StatusCode::NOT_FOUND, "no such database");
    };
    if !form_ok(&state, &identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    if state.runner.config().database(&name).is_err() {
        return error_page(&state, StatusCode::NOT_FOUND, "no such database");
    }
    match state
        .jobs
        .start_now(&name, crate::catalog::Trigger::Api)
        .await
    {
        Ok(_) => Redirect::to(&format!("{}?database={name}", state.home())).into_response(),
        Err(e @ crate::Error::AlreadyRunning(_)) => {
            let mut r = databases_page(&state, &identity, Some(e.to_string())).await;
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
        Err(e) => error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub async fn schedules_get(state: State, Extension(identity): Extension<Identity>) -> Response {
    let upcoming = state.status.upcoming();
    let keys: Vec<(String, String)> = upcoming
        .iter()
        .map(|u| (u.database.clone(), u.schedule.clone()))
        .collect();
    let fires = blocking(&state, move |r| {
        keys.iter()
            .map(|(d, s)| r.catalog().fires(d, Some(s), 10))
            .collect::<crate::Result<Vec<_>>>()
    })
    .await;
    let fires = match fires {
        Ok(f) => f,
        Err(e) => return error_page(&state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
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
                .map(|f| {
                    let colour = match f.outcome {
                        Outcome::Ran => "green",
                        Outcome::Running => "orange",
                        Outcome::Skipped => "grey",
                        Outcome::Missed => "red",
                    };
                    (
                        view::local(&f.planned_at, tz),
                        f.outcome.to_string(),
                        colour,
                        f.backup_id,
                        f.detail.unwrap_or_default(),
                    )
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::catalog::{Kind, Trigger};
    use crate::config::Compression;

    fn run(id: i64, status: Status, hours_ago: i64) -> BackupRecord {
        let now = Utc.with_ymd_and_hms(2026, 6, 2, 12, 0, 0).unwrap();
        BackupRecord {
            id,
            database: "app".into(),
            kind: Kind::Sqlite,
            status,
            trigger: Trigger::Scheduled,
            file_name: None,
            path: None,
            size_bytes: None,
            sha256: None,
            compression: Compression::None,
            started_at: now - Duration::hours(hours_ago),
            finished_at: None,
            duration_ms: None,
            error: Some("boom".into()),
            pruned_at: None,
        }
    }

    #[test]
    fn verdicts_follow_the_last_runs_and_the_schedule() {
        let now = Utc.with_ymd_and_hms(2026, 6, 2, 12, 0, 0).unwrap();
        let day = Duration::hours(26);
        let midnight = Some(Utc.with_ymd_and_hms(2026, 6, 2, 0, 0, 0).unwrap());
        let v = |rows: &[BackupRecord], fire| verdict(rows, day, fire, now).0;
        assert_eq!(v(&[], midnight), "unprotected");
        assert_eq!(v(&[run(2, Status::Failed, 1)], midnight), "failing");
        assert_eq!(
            v(
                &[run(2, Status::Failed, 1), run(1, Status::Success, 12)],
                midnight
            ),
            "failing"
        );
        assert_eq!(v(&[run(1, Status::Success, 11)], midnight), "protected");
        // Last good backup before today's midnight run, which never happened: stale.
        assert_eq!(v(&[run(1, Status::Success, 13)], midnight), "stale");
        // A run in progress does not hide the verdict of the one before.
        assert_eq!(
            v(
                &[run(2, Status::InProgress, 0), run(1, Status::Success, 11)],
                midnight
            ),
            "protected"
        );
        // Without schedules, age alone decides.
        assert_eq!(v(&[run(1, Status::Success, 30)], None), "stale");
    }
}
