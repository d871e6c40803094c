//! The home page: is every database protected? A summary line, then one card per database,
//! most urgent first, each saying why it stands where it does.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::auth::{CsrfForm, Identity, forbidden, form_ok};
use super::pages::frame;
use super::respond::{error_page, internal_page};
use super::space::{SpaceBox, space_box};
use super::view::{self, Card, Square};
use super::{State, WebState, blocking};
use dbkeep_core::verdict::{self, State as Verdict};
use dbkeep_model::catalog::Status;

/// Up to this many databases the overview shows a card for each; more are listed in a table,
/// a page at a time.
pub const CARDS_UP_TO: usize = 12;

/// Databases per page of the overview's table.
pub const TABLE_PAGE: usize = 100;

/// The overview's address: which state to list (`?state=failing`) and which page of the table.
#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    state: Option<String>,
    page: Option<usize>,
}

pub async fn overview_get(
    state: State,
    Extension(identity): Extension<Identity>,
    q: Result<Query<OverviewQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid page number in the address; start again from the overview",
        );
    };
    render(&state, &identity, None, q).await
}

/// The overview, with `notice` shown above the cards (e.g. why Back up now did nothing).
pub async fn overview_page(
    state: &Arc<WebState>,
    identity: &Identity,
    notice: Option<String>,
) -> Response {
    render(state, identity, notice, OverviewQuery::default()).await
}

async fn render(
    state: &Arc<WebState>,
    identity: &Identity,
    notice: Option<String>,
    q: OverviewQuery,
) -> Response {
    let only = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(word) => match Verdict::ALL.into_iter().find(|s| s.as_str() == word) {
            Some(s) => Some(s),
            None => {
                let known: Vec<&str> = Verdict::ALL.iter().map(|s| s.as_str()).collect();
                return error_page(
                    state,
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "unknown state `{}` in the address; use one of {}",
                        dbkeep_model::text::escape_controls(word, false),
                        known.join(", ")
                    ),
                );
            }
        },
    };
    let now = state.clock.now();
    let facts = Arc::clone(&state.facts);
    let judged = match blocking(state, move |r| verdict::all(r, &facts, now)).await {
        Ok(j) => j,
        Err(e) => return internal_page(state, &e),
    };
    let config = state.runner.config();
    let states: Vec<Verdict> = judged.iter().map(|j| j.verdict.state).collect();
    // Most urgent first; grouped by server within a state (the `[[databases]]` entries
    // first), configuration order within a server.
    let mut order: Vec<usize> = (0..judged.len().min(config.databases.len()))
        .filter(|i| only.is_none_or(|s| states[*i] == s))
        .filter(|i| identity.sees(&config.databases[*i].name))
        .collect();
    order.sort_by_key(|i| (states[*i], config.databases[*i].server()));
    let oldest = judged
        .iter()
        .zip(&config.databases)
        .filter_map(|(j, db)| j.verdict.last_good.map(|t| (t, &db.name)))
        .min()
        .map(|(t, name)| {
            format!(
                "oldest last good backup: {} ({name})",
                view::relative(&t, now)
            )
        });
    let running = judged.iter().any(is_running);
    // Each database's next fire, found once (not by a walk of every schedule per row).
    let mut next = std::collections::HashMap::new();
    for u in state.status.upcoming() {
        if let Some(t) = u.next {
            next.entry(u.database)
                .and_modify(|e: &mut chrono::DateTime<chrono::Utc>| *e = (*e).min(t))
                .or_insert(t);
        }
    }
    let see = Seen { state, next, now };
    let (cards, table) = if config.databases.len() <= CARDS_UP_TO {
        let cards = order
            .iter()
            .map(|i| see.card(&config.databases[*i], &judged[*i]))
            .collect();
        (cards, None)
    } else {
        let pages = order.len().div_ceil(TABLE_PAGE).max(1);
        let page = q.page.unwrap_or(1).clamp(1, pages);
        let shown = &order[(page - 1) * TABLE_PAGE..(page * TABLE_PAGE).min(order.len())];
        let link = |p: usize| {
            let mut query = vec![];
            if let Some(s) = only {
                query.push(format!("state={}", s.as_str()));
            }
            if p > 1 {
                query.push(format!("page={p}"));
            }
            if query.is_empty() {
                state.home()
            } else {
                format!("{}?{}", state.home(), query.join("&"))
            }
        };
        let table = view::DatabaseTable {
            rows: shown
                .iter()
                .map(|i| see.row(&config.databases[*i], &judged[*i]))
                .collect(),
            showing: match order.len() {
                0 => "no database in this state".to_string(),
                n => format!(
                    "{}–{} of {n}",
                    (page - 1) * TABLE_PAGE + 1,
                    (page - 1) * TABLE_PAGE + shown.len()
                ),
            },
            previous: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            filters: filters(&states, only, &state.home()),
        };
        (Vec::new(), Some(table))
    };
    let space = space(state, now).await;
    let servers = match blocking(state, |r| dbkeep_core::discovery::server_states(r)).await {
        Ok(s) => server_boxes(&s),
        Err(e) => return internal_page(state, &e),
    };
    let zone = state.runner.config().service.timezone;
    // From the catalog only: the page never waits on a database server.
    let pitr = match blocking(state, move |r| dbkeep_core::pitr::states(r, now, false)).await {
        Ok(s) => pitr_boxes(&s, zone, now),
        Err(e) => return internal_page(state, &e),
    };
    view::Overview {
        servers,
        pitr,
        frame: frame(state, identity, "overview"),
        refresh: running,
        summary: summary(&states),
        oldest,
        cards,
        table,
        notice,
        space,
    }
    .into_response()
}

/// The Space box; none (and a warning in the log) when the report cannot be read: the
/// verdicts above it still show.
async fn space(state: &Arc<WebState>, now: chrono::DateTime<chrono::Utc>) -> Option<SpaceBox> {
    match blocking(state, move |r| r.space(now)).await {
        Ok(space) => Some(space_box(&space)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the space report for the overview");
            None
        }
    }
}

/// A database's kind, and the server that found it: "PostgreSQL · server pg".
fn kind_of(db: &dbkeep_config::config::DatabaseConfig) -> String {
    let kind = view::kind_label(db.target.kind());
    match db.server() {
        Some(server) => format!("{kind} · server {server}"),
        None => kind.to_string(),
    }
}

/// The point-in-time box: each server archiving WAL, the span it can be recovered to, and
/// its RPO (the age of its newest archived WAL), amber past `wal_stalled_after`.
fn pitr_boxes(
    states: &[dbkeep_core::pitr::ArchiveState],
    zone: chrono_tz::Tz,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<view::PitrBox> {
    let at = |t: chrono::DateTime<chrono::Utc>| {
        format!(
            "{} ({})",
            t.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z"),
            view::relative(&t, now)
        )
    };
    states
        .iter()
        .map(|a| {
            let (state, colour) = match (a.recoverable, a.rpo) {
                (None, _) | (_, None) => ("nothing yet", "grey"),
                _ if a.quiet_too_long() => ("no recent WAL", "amber"),
                _ => ("archiving", "green"),
            };
            view::PitrBox {
                name: a.server.clone(),
                state,
                colour,
                recoverable: match a.recoverable {
                    Some((from, to)) => format!("from {} to {}", at(from), at(to)),
                    None => "nothing yet: a base backup (dbkeep backup --server) and archived WAL are needed".into(),
                },
                rpo_seconds: a.rpo.map(|d| d.as_secs()),
                rpo: a.rpo.map_or_else(
                    || "no WAL archived yet".to_string(),
                    |d| format!("newest WAL archived {} s ago", d.as_secs()),
                ),
                queued: a.queued,
            }
        })
        .collect()
}

/// The Servers box: each `[[servers]]` entry, whether it answered, its databases.
fn server_boxes(servers: &[dbkeep_core::discovery::ServerState]) -> Vec<view::ServerBox> {
    servers
        .iter()
        .map(|s| {
            let counts = format!(
                "{} known · {} gone · {} unreadable",
                s.known, s.gone, s.unreadable
            );
            let (state, colour, why) = match (&s.error, &s.checked_at) {
                (Some(e), _) => (
                    "failing",
                    "red",
                    format!(
                        "did not answer: {}; its databases are kept as recorded",
                        dbkeep_model::text::escape_controls(e, false)
                    ),
                ),
                (None, _) if s.unreadable > 0 => (
                    "failing",
                    "red",
                    "a database cannot be read: see its card".to_string(),
                ),
                (None, None) => (
                    "not asked yet",
                    "grey",
                    "discovery has not run yet".to_string(),
                ),
                (None, Some(at)) => ("ok", "green", format!("asked {at}")),
            };
            view::ServerBox {
                name: s.server.clone(),
                url: s.url.clone(),
                state,
                colour,
                why,
                counts,
            }
        })
        .collect()
}

fn is_running(j: &verdict::Judged) -> bool {
    j.facts.running()
}

/// What every card and row is shown against: the service's zone, the next fires, now.
struct Seen<'a> {
    state: &'a WebState,
    next: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
}

impl Seen<'_> {
    fn next_run(&self, database: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.next.get(database).copied()
    }

    /// The latest verification in words, with its colour class.
    fn verified(&self, judged: &verdict::Judged) -> (String, &'static str) {
        let tz = self.state.runner.config().service.timezone;
        match &judged.facts.last_verification {
            None => (
                "never (a restore drill runs on verify_schedule)".to_string(),
                "grey",
            ),
            Some(v) => {
                let how = if v.ok { "passed" } else { "FAILED" };
                let took = v
                    .restore_ms
                    .map(|ms| format!(" · restores in ~{}", view::duration(Some(ms))))
                    .unwrap_or_default();
                (
                    format!(
                        "{} ({}): {} {how}, backup #{}{took}",
                        view::local(&v.finished_at, tz),
                        view::relative(&v.finished_at, self.now),
                        v.level,
                        v.backup_id
                    ),
                    if v.ok { "green" } else { "red" },
                )
            }
        }
    }

    fn card(&self, db: &dbkeep_config::config::DatabaseConfig, judged: &verdict::Judged) -> Card {
        let config = self.state.runner.config();
        let (tz, now) = (config.service.timezone, self.now);
        let (verdict, rows) = (&judged.verdict, &judged.facts.recent);
        let (verified, verified_colour) = self.verified(judged);
        let done: Vec<_> = rows
            .iter()
            .filter(|r| r.status != Status::InProgress)
            .collect();
        let ok = done.iter().filter(|r| r.status == Status::Success).count();
        let next = self.next_run(&db.name);
        Card {
            name: db.name.clone(),
            kind: kind_of(db),
            state: verdict.state.label(),
            colour: verdict.state.colour(),
            icon: verdict.state.icon(),
            reason: verdict.reason.clone(),
            last_success: verdict
                .last_good
                .map_or_else(|| "never".into(), |t| view::local(&t, tz)),
            last_success_ago: verdict
                .last_good
                .map(|t| view::relative(&t, now))
                .unwrap_or_default(),
            next_run: next.map_or_else(|| "not scheduled".into(), |t| view::local(&t, tz)),
            next_run_in: next.map(|t| view::relative(&t, now)).unwrap_or_default(),
            verified,
            verified_colour,
            success_rate: if done.is_empty() {
                "no runs yet".into()
            } else {
                format!(
                    "{ok} of the last {} ({}%)",
                    done.len(),
                    ok * 100 / done.len()
                )
            },
            strip: rows
                .iter()
                .rev()
                .map(|r| {
                    let (word, colour) = view::state(r);
                    Square {
                        id: r.id,
                        colour,
                        title: format!("#{} {word}, {}", r.id, view::local(&r.started_at, tz)),
                    }
                })
                .collect(),
            chart: view::Chart::of(rows, tz),
            folder: config.database_dir(&db.name).display().to_string(),
            running: is_running(judged),
        }
    }

    fn row(
        &self,
        db: &dbkeep_config::config::DatabaseConfig,
        judged: &verdict::Judged,
    ) -> view::DatabaseRow {
        let tz = self.state.runner.config().service.timezone;
        let verdict = &judged.verdict;
        let next = self.next_run(&db.name);
        let (verified_at, verified_colour) = self.verified(judged);
        let verified = match &judged.facts.last_verification {
            None => "never".to_string(),
            Some(v) => format!(
                "{} {}",
                if v.ok { "passed" } else { "FAILED" },
                view::relative(&v.finished_at, self.now)
            ),
        };
        view::DatabaseRow {
            name: db.name.clone(),
            kind: kind_of(db),
            state: verdict.state.label(),
            colour: verdict.state.colour(),
            icon: verdict.state.icon(),
            reason: verdict.reason.clone(),
            last_success: verdict
                .last_good
                .map_or_else(|| "never".into(), |t| view::relative(&t, self.now)),
            last_success_at: verdict
                .last_good
                .map(|t| view::local(&t, tz))
                .unwrap_or_default(),
            next_run: next.map_or_else(|| "not scheduled".into(), |t| view::relative(&t, self.now)),
            next_run_at: next.map(|t| view::local(&t, tz)).unwrap_or_default(),
            verified,
            verified_at,
            verified_colour,
            running: is_running(judged),
        }
    }
}

/// A link per state that occurs (with its count), and one to all, for the table's filter.
fn filters(states: &[Verdict], only: Option<Verdict>, home: &str) -> Vec<view::StateFilter> {
    let mut out = vec![view::StateFilter {
        label: format!("all {}", states.len()),
        href: home.to_string(),
        colour: "",
        current: only.is_none(),
    }];
    for s in Verdict::ALL {
        let n = states.iter().filter(|x| **x == s).count();
        if n > 0 || only == Some(s) {
            out.push(view::StateFilter {
                label: format!("{n} {}", s.label()),
                href: format!("{home}?state={}", s.as_str()),
                colour: s.colour(),
                current: only == Some(s),
            });
        }
    }
    out
}

/// "3 databases · 1 failing · 2 protected": every state that occurs, most urgent first.
fn summary(states: &[Verdict]) -> String {
    let total = match states.len() {
        1 => "1 database".to_string(),
        n => format!("{n} databases"),
    };
    let mut parts = vec![total];
    for s in Verdict::ALL {
        let n = states.iter().filter(|x| **x == s).count();
        if n > 0 {
            parts.push(format!("{n} {s}"));
        }
    }
    parts.join(" · ")
}

/// Starts a backup of one database now, from its card: back to the backups of that database,
/// or to the overview saying why not.
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
        .start_now(&name, dbkeep_model::catalog::Trigger::Web)
        .await
    {
        Ok(_) => Redirect::to(&format!("{}/backups?database={name}", state.base)).into_response(),
        Err(e @ dbkeep_model::error::Error::AlreadyRunning(_)) => {
            let mut r = overview_page(&state, &identity, Some(e.to_string())).await;
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
        Err(e) => internal_page(&state, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_each_state_most_urgent_first() {
        assert_eq!(
            summary(&[
                Verdict::Protected,
                Verdict::Failing,
                Verdict::Protected,
                Verdict::Stale
            ]),
            "4 databases · 1 failing · 1 stale · 2 protected"
        );
        assert_eq!(summary(&[Verdict::Protected]), "1 database · 1 protected");
        assert_eq!(summary(&[]), "0 databases");
    }
}
