//! A database's retention page: each destination's policy, a calendar of what happens to each
//! day's backups there, every decision with its reasons, and the buttons that prune now or let
//! a held prune go.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{Identity, forbidden, form_ok};
use super::calendar::{self, Fate, Item};
use super::pages::frame;
use super::respond::{error_page, internal_page};
use super::view::{self, DecisionRow, DestinationView};
use super::{State, WebState, with_runner};
use dbkeep_config::config::Destination;
use dbkeep_core::retention::Action;
use dbkeep_core::runner::{Decision, PruneOptions, Runner};
use dbkeep_model::catalog::{BackupRecord, ListFilter, Status};

/// The most decisions the page's table lists; `dbkeep prune --dry-run` lists them all.
const MAX_ROWS: usize = 2000;

/// The page's address: a day to preview (`?at=YYYY-MM-DD`), and what the last prune from
/// this page did (set by its redirect).
#[derive(Debug, Default, Deserialize)]
pub struct RetentionQuery {
    at: Option<String>,
    pruned: Option<usize>,
    failed: Option<usize>,
    held: Option<usize>,
    /// Set when a confirmed prune was not run: the plan had grown since the page was shown.
    changed: Option<u8>,
}

/// What the page reads, in one trip to the catalog.
struct Read {
    plan: Vec<Decision>,
    /// Deletions a confirmed prune would make now, when some are held and confirming lets
    /// them go; `None` otherwise.
    confirmable: Option<usize>,
    /// The database's successful backups, for the copies already pruned.
    records: Vec<BackupRecord>,
}

pub async fn retention_get(
    state: State,
    Extension(identity): Extension<Identity>,
    name: Result<Path<String>, PathRejection>,
    q: Result<Query<RetentionQuery>, QueryRejection>,
) -> Response {
    let Ok(Path(name)) = name else {
        return error_page(&state, StatusCode::NOT_FOUND, "no such database");
    };
    if state.runner.config().database(&name).is_err() {
        return error_page(&state, StatusCode::NOT_FOUND, "no such database");
    }
    let Ok(Query(q)) = q else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid address; start again from the database's retention page",
        );
    };
    let tz = state.runner.config().service.timezone;
    let at_text = q.at.as_deref().map(str::trim).unwrap_or_default();
    let at = if at_text.is_empty() {
        None
    } else {
        match end_of_day(at_text, tz) {
            Some(at) => Some(at),
            None => {
                return error_page(
                    &state,
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "`{}` is not a day: write it as YYYY-MM-DD, e.g. 2027-01-31",
                        dbkeep_model::text::escape_controls(at_text, false)
                    ),
                );
            }
        }
    };
    let database = name.clone();
    let read = with_runner(&state, move |r| {
        let opts = PruneOptions {
            at,
            ..PruneOptions::default()
        };
        let plan = r.retention_plan(Some(&database), &opts)?;
        let confirmable = if at.is_none() && plan.iter().any(|d| d.held.is_some()) {
            let confirmed = r.retention_plan(
                Some(&database),
                &PruneOptions {
                    confirm: true,
                    ..PruneOptions::default()
                },
            )?;
            let released = plan.iter().filter(|d| d.held.is_some()).count()
                > confirmed.iter().filter(|d| d.held.is_some()).count();
            released.then(|| deletions(&confirmed))
        } else {
            None
        };
        let records = r.catalog().list(&ListFilter {
            database: Some(database.clone()),
            status: Some(Status::Success),
            ..ListFilter::default()
        })?;
        Ok(Read {
            plan,
            confirmable,
            records,
        })
    })
    .await;
    let read = match read {
        Ok(r) => r,
        Err(e) => return internal_page(&state, &e),
    };
    let notice = notice(&q);
    render(
        &state,
        &identity,
        &name,
        at_text,
        at.is_some(),
        read,
        notice,
    )
}

/// The instant a preview of `day` decides at: the end of that day in `tz`.
fn end_of_day(day: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let time = NaiveTime::from_hms_opt(23, 59, 59)?;
    date.and_time(time)
        .and_local_timezone(tz)
        .latest()
        .map(|t| t.with_timezone(&Utc))
}

/// The deletions a plan makes now (not held).
fn deletions(plan: &[Decision]) -> usize {
    plan.iter()
        .filter(|d| d.action == Action::Delete && d.held.is_none())
        .count()
}

/// What the last prune from this page did, from its redirect's address.
fn notice(q: &RetentionQuery) -> Option<String> {
    if q.changed.is_some() {
        return Some(
            "Nothing was pruned: more backups would go now than the page showed. Look again, then confirm."
                .into(),
        );
    }
    let pruned = q.pruned?;
    let mut text = match pruned {
        1 => "Pruned 1 backup copy.".to_string(),
        n => format!("Pruned {n} backup copies."),
    };
    if let Some(n) = q.failed.filter(|n| *n > 0) {
        text.push_str(&format!(
            " {n} could not be deleted and stay recorded (the service's log says why)."
        ));
    }
    if let Some(n) = q.held.filter(|n| *n > 0) {
        text.push_str(&format!(" {n} still held (see below)."));
    }
    Some(text)
}

/// The destinations that keep `database`'s backups, in the configuration's order.
fn destinations(state: &WebState, database: &str) -> Vec<Destination> {
    let mut out = vec![Destination::Local];
    out.extend(
        state
            .runner
            .config()
            .offsite
            .iter()
            .filter(|o| o.takes(database))
            .map(|o| Destination::Offsite(o.name.clone())),
    );
    out
}

/// Whether `record` was at `destination` and was pruned from there.
fn pruned_from(record: &BackupRecord, destination: &Destination) -> Option<DateTime<Utc>> {
    match destination {
        Destination::Local => record.path.as_ref().and(record.pruned_at),
        Destination::Offsite(name) => record
            .copies
            .iter()
            .filter(|c| c.store == *name)
            .find_map(|c| c.pruned_at.as_deref())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// What the page calls a decision: its word and colour class.
fn fate_of(d: &Decision) -> Fate {
    match (d.action, d.held.is_some()) {
        (Action::Keep, _) if d.record.pinned => Fate::Pinned,
        (Action::Keep, _) => Fate::Keep,
        (Action::Delete, true) => Fate::Held,
        (Action::Delete, false) => Fate::Delete,
    }
}

fn fate_word(f: Fate) -> (&'static str, &'static str) {
    match f {
        Fate::Keep => ("keep", "keep"),
        Fate::Pinned => ("keep (pinned)", "pinned"),
        Fate::Delete => ("will be pruned", "prune"),
        Fate::Held => ("held", "held"),
        Fate::Gone => ("pruned", "gone"),
    }
}

fn file_of(r: &BackupRecord) -> String {
    r.file_name.clone().unwrap_or_else(|| "—".into())
}

fn render(
    state: &Arc<WebState>,
    identity: &Identity,
    name: &str,
    at_text: &str,
    preview: bool,
    read: Read,
    notice: Option<String>,
) -> Response {
    let config = state.runner.config();
    let tz = config.service.timezone;
    let Read {
        plan,
        confirmable,
        records,
    } = read;
    let mut by_destination: BTreeMap<Destination, Vec<&Decision>> = BTreeMap::new();
    for d in &plan {
        by_destination
            .entry(d.destination.clone())
            .or_default()
            .push(d);
    }
    let day_of = |t: &DateTime<Utc>| t.with_timezone(&tz).date_naive();
    let destination_views = destinations(state, name)
        .into_iter()
        .map(|dest| {
            let decisions = by_destination.remove(&dest).unwrap_or_default();
            let policy = decisions
                .first()
                .map_or_else(|| config.retention(name, &dest, None), |d| d.policy);
            let mut items: Vec<Item> = decisions
                .iter()
                .map(|d| {
                    let fate = fate_of(d);
                    let mut line = format!(
                        "{} (#{}): {}: {}",
                        file_of(&d.record),
                        d.record.id,
                        fate_word(fate).0,
                        d.reasons.join(", ")
                    );
                    if let Some(note) = d.record.pin_note.as_deref().filter(|_| d.record.pinned) {
                        line.push_str(&format!(" (note: {note})"));
                    }
                    Item {
                        day: day_of(&d.record.started_at),
                        fate,
                        line,
                    }
                })
                .collect();
            let gone: Vec<(&BackupRecord, DateTime<Utc>)> = records
                .iter()
                .filter_map(|r| pruned_from(r, &dest).map(|t| (r, t)))
                .collect();
            items.extend(gone.iter().map(|(r, t)| Item {
                day: day_of(&r.started_at),
                fate: Fate::Gone,
                line: format!("{} (#{}): pruned {}", file_of(r), r.id, view::local(t, tz)),
            }));
            let count = |f: Fate| decisions.iter().filter(|d| fate_of(d) == f).count();
            let mut counts = vec![format!("{} kept", count(Fate::Keep) + count(Fate::Pinned))];
            for (n, word) in [
                (count(Fate::Pinned), "pinned"),
                (count(Fate::Delete), "will be pruned"),
                (count(Fate::Held), "held"),
                (gone.len(), "pruned earlier"),
            ] {
                if n > 0 {
                    counts.push(format!("{n} {word}"));
                }
            }
            DestinationView {
                name: dest.name().to_string(),
                policy: policy.to_string(),
                counts: counts.join(" · "),
                held: decisions.iter().find_map(|d| d.held.clone()),
                calendar: calendar::calendar(&items, calendar::MAX_WEEKS),
            }
        })
        .collect();
    let rows: Vec<DecisionRow> = plan
        .iter()
        .take(MAX_ROWS)
        .map(|d| {
            let (action, class) = fate_word(fate_of(d));
            DecisionRow {
                id: d.record.id,
                destination: d.destination.name().to_string(),
                file_name: file_of(&d.record),
                started: view::local(&d.record.started_at, tz),
                action,
                class,
                reasons: d.reasons.join("; "),
                pin_note: d
                    .record
                    .pin_note
                    .clone()
                    .filter(|_| d.record.pinned)
                    .unwrap_or_default(),
            }
        })
        .collect();
    view::Retention {
        frame: frame(state, identity, "overview"),
        database: name.to_string(),
        timezone: tz.to_string(),
        at: at_text.to_string(),
        preview,
        notice,
        legend: calendar::LEGEND.to_vec(),
        destinations: destination_views,
        left_out: plan.len().saturating_sub(MAX_ROWS),
        total: plan.len(),
        rows,
        confirm: confirmable,
        prunable: !preview && deletions(&plan) > 0,
    }
    .into_response()
}

/// The prune buttons' form: its CSRF token, whether it confirms held prunes, and how many
/// deletions the page showed for them.
#[derive(Deserialize)]
pub struct PruneForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirm: String,
    expect: Option<usize>,
}

/// Prune now (or Confirm prune): deletes what retention lets go from every destination of
/// the database, held prunes too when confirmed, and comes back to the retention page saying
/// how many went.
pub async fn prune_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    Form(form): Form<PruneForm>,
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
    let confirm = form.confirm == "yes";
    let expect = form.expect;
    let database = name.clone();
    let done = with_runner(&state, move |r: &Runner| {
        let opts = PruneOptions {
            confirm,
            ..PruneOptions::default()
        };
        // A confirmation lets go what the page showed, not more.
        if confirm
            && let Some(expect) = expect
            && deletions(&r.retention_plan(Some(&database), &opts)?) > expect
        {
            return Ok(None);
        }
        r.prune(Some(&database), &opts).map(Some)
    })
    .await;
    let back = format!("{}/databases/{name}/retention", state.base);
    match done {
        Ok(None) => Redirect::to(&format!("{back}?changed=1")).into_response(),
        Ok(Some(pruned)) => {
            let failed = pruned.iter().filter(|p| p.error.is_some()).count();
            let held = pruned.iter().filter(|p| p.held.is_some()).count();
            let gone = pruned.len() - failed - held;
            tracing::info!(
                database = %name,
                confirm,
                pruned = gone,
                failed,
                held,
                by = %dbkeep_model::text::escape_controls(&super::pins::who(&identity), false),
                "pruned from the web admin"
            );
            Redirect::to(&format!("{back}?pruned={gone}&failed={failed}&held={held}"))
                .into_response()
        }
        Err(e) => internal_page(&state, &e),
    }
}
