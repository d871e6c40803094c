//! Restore from the admin: on a backup's page an admin chooses where it goes (a new database
//! on its server, another configured database, or the original after typing its name), sees
//! what will happen, starts it and watches it to the row-count comparison. The same through
//! the API. The route table lets only admins in; the service refuses a restore over a
//! database whose backup is running.

use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::{Deserialize, Serialize};

use super::audited::{AuditDetail, Caller};
use super::auth::{Identity, forbidden, form_ok, same_origin};
use super::respond::{error, error_page, internal, internal_page, parse_id};
use super::view::{self, Frame};
use super::{State, WebState, blocking};
use dbkeep_core::restore::plan::{Plan, RestoreTo, TableCount};
use dbkeep_model::audit::{Action, Outcome};
use dbkeep_model::catalog::BackupRecord;
use dbkeep_model::error::Error;
use dbkeep_service::service::{RestoreRequest, RestoreRun, RunState};

/// The choice on the restore page, as its form and the API send it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// `new`, `database` or `original`.
    #[serde(default)]
    to: Option<String>,
    /// The new database's name (`to = new`).
    #[serde(default)]
    name: Option<String>,
    /// The configured database (`to = database`).
    #[serde(default)]
    database: Option<String>,
    /// `on` (a form's checkbox) or `true`: create the stored roles the server lacks first.
    #[serde(default)]
    roles: Option<Flag>,
    /// The name typed to confirm restoring over a configured database.
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

impl Choice {
    /// Where the choice sends the restore, if it says; an error naming the field if it is wrong.
    fn to(&self, identity: &Identity) -> Result<Option<RestoreTo>, String> {
        let text = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_string();
        match self.to.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some("new") => Ok(Some(RestoreTo::New(text(&self.name)))),
            Some("database") => {
                let name = text(&self.database);
                // A database outside the login's scope is not there for it.
                if name.is_empty() {
                    return Err("database: choose the configured database to restore into".into());
                }
                if !identity.sees(&name) {
                    return Err(format!("{name} is not a configured database"));
                }
                Ok(Some(RestoreTo::Database(name)))
            }
            Some("original") => Ok(Some(RestoreTo::Original)),
            Some(other) => Err(format!(
                "to: {other:?} is not a target; give new, database or original"
            )),
        }
    }

    fn with_roles(&self) -> bool {
        match &self.roles {
            Some(Flag::Bool(b)) => *b,
            Some(Flag::Text(t)) => matches!(t.as_str(), "on" | "true"),
            None => false,
        }
    }
}

/// A yes or no: a JSON boolean, or a form's `on`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

/// A table's rows on the pages.
pub struct TableView {
    pub table: String,
    pub expected: u64,
    pub found: String,
    pub colour: &'static str,
}

/// What a plan shows before it is started.
pub struct PreviewView {
    pub target: String,
    pub effects: Vec<String>,
    pub replaces: Option<String>,
    pub rows: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "restore.html")]
pub struct RestorePage {
    pub frame: Frame,
    pub row: view::Row,
    pub to: String,
    pub name: String,
    pub database: String,
    pub databases: Vec<String>,
    pub roles_stored: bool,
    pub roles: bool,
    pub tables: Vec<TableView>,
    pub preview: Option<PreviewView>,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "restore_run.html")]
pub struct RunPage {
    pub frame: Frame,
    pub id: u64,
    pub backup: i64,
    pub database: String,
    pub target: String,
    pub actor: String,
    pub started: String,
    pub effects: Vec<String>,
    pub phase: String,
    pub percent: Option<u64>,
    pub done: String,
    pub state: &'static str,
    pub colour: &'static str,
    pub running: bool,
    pub error: Option<String>,
    pub loaded: String,
    pub took: String,
    pub tables: Vec<TableView>,
}

fn table_views(counts: &[TableCount]) -> Vec<TableView> {
    counts
        .iter()
        .map(|t| TableView {
            table: t.table.clone(),
            expected: t.expected,
            found: t.found.to_string(),
            colour: if t.expected == t.found {
                "green"
            } else {
                "red"
            },
        })
        .collect()
}

/// The restore page of backup `id`: the choice, and with one, what it will do.
pub async fn restore_get(
    state: State,
    Extension(identity): Extension<Identity>,
    id: Result<Path<String>, PathRejection>,
    choice: Result<Query<Choice>, QueryRejection>,
) -> Response {
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error_page(&state, StatusCode::NOT_FOUND, "no such backup");
    };
    let Ok(Query(choice)) = choice else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid choice in the address; start again from the backup's page",
        );
    };
    page(&state, &identity, id, &choice, None).await
}

/// Renders the restore page for `choice`, with `refused` (why a start was refused) or the
/// plan's own refusal as its error.
async fn page(
    state: &std::sync::Arc<WebState>,
    identity: &Identity,
    id: i64,
    choice: &Choice,
    refused: Option<String>,
) -> Response {
    let record = match blocking(state, move |r| r.catalog().get(id)).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(state, StatusCode::NOT_FOUND, "no such backup"),
        Err(e) => return internal_page(state, &e),
    };
    let (plan, mut problem) = match choice.to(identity) {
        Ok(Some(to)) => match state.jobs.plan_restore(id, to, choice.with_roles()).await {
            Ok(plan) => (Some(plan), None),
            Err(e @ (Error::Refused(_) | Error::NotFound(_))) => (None, Some(e.to_string())),
            Err(e) => (None, Some(super::internal_error(&e).to_string())),
        },
        Ok(None) => (None, None),
        Err(why) => (None, Some(why)),
    };
    // The stored roles and the recorded tables, shown before a target is chosen too.
    let facts = {
        let record = record.clone();
        super::with_runner(state, move |r| {
            let tables = r.catalog().table_rows(record.id)?;
            let roles = record.kind == dbkeep_model::catalog::Kind::Postgres
                && r.globals_for(&record)?.is_some();
            Ok((tables, roles))
        })
        .await
    };
    let (tables, roles_stored) = match facts {
        Ok(f) => f,
        Err(e) => return internal_page(state, &e),
    };
    let refused_start = refused.is_some();
    if refused_start {
        problem = refused;
    }
    // A refused start, or a choice that cannot be done, is a conflict; the bare page is not.
    let status = if problem.is_some() && (refused_start || choice.to.is_some()) {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let detail = problem.clone();
    let (tz, now) = (state.runner.config().service.timezone, state.clock.now());
    let mut response = (
        status,
        RestorePage {
            frame: super::pages::frame(state, identity, "backups"),
            row: view::Row::new(&record, tz, now),
            to: choice.to.clone().unwrap_or_else(|| "new".into()),
            name: choice
                .name
                .clone()
                .unwrap_or_else(|| suggested_name(&record, now)),
            database: choice.database.clone().unwrap_or_default(),
            databases: state
                .runner
                .config()
                .databases
                .iter()
                .filter(|d| d.target.kind() == record.kind && d.name != record.database)
                .filter(|d| identity.sees(&d.name))
                .map(|d| d.name.clone())
                .collect(),
            roles_stored,
            roles: choice.with_roles(),
            tables: tables
                .iter()
                .map(|(table, rows)| TableView {
                    table: table.clone(),
                    expected: *rows,
                    found: String::new(),
                    colour: "",
                })
                .collect(),
            preview: plan.as_ref().map(preview),
            error: problem,
        },
    )
        .into_response();
    if let Some(d) = detail {
        response.extensions_mut().insert(AuditDetail(d));
    }
    response
}

fn preview(plan: &Plan) -> PreviewView {
    PreviewView {
        target: plan.target_label.clone(),
        effects: plan.effects.clone(),
        replaces: plan.replaces.clone(),
        rows: plan.tables.iter().map(|(_, n)| n).sum(),
    }
}

/// `app_restored_20261207`: a free-looking name for a new database.
fn suggested_name(record: &BackupRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    let stem: String = record
        .database
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    format!("{stem}_restored_{}", now.format("%Y%m%d_%H%M"))
}

/// Starts the restore the form asks for, then to its progress page; or the page again, saying
/// why not.
pub async fn restore_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    id: Result<Path<String>, PathRejection>,
    Form(choice): Form<Choice>,
) -> Response {
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error_page(&state, StatusCode::NOT_FOUND, "no such backup");
    };
    if !form_ok(&state, &identity, &headers, &choice.csrf_token) {
        return forbidden();
    }
    let caller = Caller::new(identity.actor(), &headers, connect.as_ref().map(|c| &c.0));
    match start(&state, &identity, &caller, id, &choice).await {
        Ok(run) => {
            let mut r =
                Redirect::to(&format!("{}/restores/{}", state.base, run.id)).into_response();
            r.extensions_mut().insert(started(&run));
            r
        }
        Err(Error::NotFound(_)) => error_page(&state, StatusCode::NOT_FOUND, "no such backup"),
        Err(e @ Error::Refused(_)) => {
            page(&state, &identity, id, &choice, Some(e.to_string())).await
        }
        Err(e) => internal_page(&state, &e),
    }
}

/// What the audit row of a started restore says.
fn started(run: &RestoreRun) -> AuditDetail {
    AuditDetail(format!("started restore #{} into {}", run.id, run.target))
}

/// Checks `choice` and asks the service to start it.
async fn start(
    state: &WebState,
    identity: &Identity,
    caller: &Caller,
    id: i64,
    choice: &Choice,
) -> Result<std::sync::Arc<RestoreRun>, Error> {
    let to = choice
        .to(identity)
        .map_err(Error::Refused)?
        .ok_or_else(|| {
            Error::Refused("to: choose where the backup goes (new, database or original)".into())
        })?;
    state
        .jobs
        .restore_now(RestoreRequest {
            backup: id,
            to,
            with_globals: choice.with_roles(),
            confirm: choice.confirm.clone(),
            caller: caller.entry(Action::Restore, &format!("backup:{id}"), Outcome::Ok),
        })
        .await
}

/// The restore `rid`, when this instance runs or ran it and the login may see its database.
fn find(state: &WebState, identity: &Identity, rid: &str) -> Option<std::sync::Arc<RestoreRun>> {
    let rid = rid.parse::<u64>().ok()?;
    state
        .jobs
        .restores()
        .get(rid)
        .filter(|run| identity.sees(&run.database))
        .filter(|run| run.into.as_deref().is_none_or(|d| identity.sees(d)))
}

/// A restore's progress, then its result with the row-count comparison.
pub async fn run_get(
    state: State,
    Extension(identity): Extension<Identity>,
    rid: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(run) = rid.ok().and_then(|Path(rid)| find(&state, &identity, &rid)) else {
        return error_page(
            &state,
            StatusCode::NOT_FOUND,
            "no such restore on this instance (restores are shown by the instance that runs them; the audit log has every one)",
        );
    };
    let snap = run.snapshot();
    let tz = state.runner.config().service.timezone;
    let (state_word, colour) = state_of(&snap.state);
    let (loaded, took, tables, failure) = match &snap.state {
        RunState::Restored {
            tables,
            bytes,
            duration_ms,
            uncounted,
        } => (
            view::size(Some(*bytes)),
            view::duration(Some(*duration_ms)),
            table_views(tables),
            uncounted.as_ref().map(|why| {
                format!("It loaded and committed, but its rows could not be counted: {why}")
            }),
        ),
        RunState::Failed(why) => (String::new(), String::new(), Vec::new(), Some(why.clone())),
        RunState::Running => (String::new(), String::new(), Vec::new(), None),
    };
    RunPage {
        frame: super::pages::frame(&state, &identity, "backups"),
        id: run.id,
        backup: run.backup,
        database: run.database.clone(),
        target: run.target.clone(),
        actor: run.actor.clone(),
        started: view::local(&run.started_at, tz),
        effects: run.effects.clone(),
        phase: snap.phase,
        percent: snap
            .total
            .filter(|t| *t > 0)
            .map(|t| (snap.done.min(t) * 100) / t),
        done: match snap.total {
            Some(t) => format!(
                "{} of {}",
                view::size(Some(snap.done.min(t))),
                view::size(Some(t))
            ),
            None => view::size(Some(snap.done)),
        },
        state: state_word,
        colour,
        running: snap.state == RunState::Running,
        error: failure,
        loaded,
        took,
        tables,
    }
    .into_response()
}

/// A restore's state in a word, and its colour: a restore whose rows differ is not green.
fn state_of(state: &RunState) -> (&'static str, &'static str) {
    match state {
        RunState::Running => ("running", "orange"),
        RunState::Restored { .. } if state.rows_match() => ("restored", "green"),
        RunState::Restored {
            uncounted: Some(_), ..
        } => ("restored, rows not counted", "red"),
        RunState::Restored { .. } => ("restored, rows differ", "red"),
        RunState::Failed(_) => ("failed", "red"),
    }
}

/// A restore as the API answers it.
#[derive(Serialize)]
struct RunBody {
    id: u64,
    backup: i64,
    database: String,
    target: String,
    actor: String,
    started_at: String,
    /// `running`, `restored` (every table's rows as recorded), `rows_differ`, `uncounted`
    /// (loaded, but the rows could not be counted) or `failed`.
    state: &'static str,
    phase: String,
    done_bytes: u64,
    total_bytes: Option<u64>,
    effects: Vec<String>,
    tables: Vec<TableCount>,
    loaded_bytes: Option<u64>,
    duration_ms: Option<u64>,
    error: Option<String>,
}

fn run_body(run: &RestoreRun) -> RunBody {
    let snap = run.snapshot();
    let word = match &snap.state {
        RunState::Running => "running",
        s @ RunState::Restored { .. } if s.rows_match() => "restored",
        RunState::Restored {
            uncounted: Some(_), ..
        } => "uncounted",
        RunState::Restored { .. } => "rows_differ",
        RunState::Failed(_) => "failed",
    };
    let (tables, loaded, took, failure) = match snap.state {
        RunState::Restored {
            tables,
            bytes,
            duration_ms,
            uncounted,
        } => (tables, Some(bytes), Some(duration_ms), uncounted),
        RunState::Failed(why) => (Vec::new(), None, None, Some(why)),
        RunState::Running => (Vec::new(), None, None, None),
    };
    RunBody {
        id: run.id,
        backup: run.backup,
        database: run.database.clone(),
        target: run.target.clone(),
        actor: run.actor.clone(),
        started_at: dbkeep_model::catalog::format_time(&run.started_at),
        state: word,
        phase: snap.phase,
        done_bytes: snap.done,
        total_bytes: snap.total,
        effects: run.effects.clone(),
        tables,
        loaded_bytes: loaded,
        duration_ms: took,
        error: failure,
    }
}

/// `POST /api/v1/backups/{id}/restore`: starts a restore; 202 with it, and its address.
pub async fn api_restore_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Choice>, JsonRejection>,
) -> Response {
    if matches!(identity, Identity::User(_)) && !same_origin(&state, &headers) {
        return error(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return error(StatusCode::NOT_FOUND, "no such backup");
    };
    let Json(choice) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected a JSON body like {{\"to\": \"new\", \"name\": \"app_copy\"}}, {{\"to\": \"database\", \"database\": \"NAME\", \"confirm\": \"NAME\"}} or {{\"to\": \"original\", \"confirm\": \"NAME\"}}: {e}"
                ),
            );
        }
    };
    let caller = Caller::new(identity.actor(), &headers, connect.as_ref().map(|c| &c.0));
    let (mut response, detail) = match start(&state, &identity, &caller, id, &choice).await {
        Ok(run) => {
            let location = format!("{}/api/v1/restores/{}", state.base, run.id);
            let detail = started(&run);
            (
                (
                    StatusCode::ACCEPTED,
                    [(header::LOCATION, location)],
                    Json(run_body(&run)),
                )
                    .into_response(),
                Some(detail),
            )
        }
        Err(Error::NotFound(_)) => (error(StatusCode::NOT_FOUND, "no such backup"), None),
        Err(e @ Error::Refused(_)) => (
            error(StatusCode::CONFLICT, e.to_string()),
            Some(AuditDetail(e.to_string())),
        ),
        Err(e) => (internal(&e), None),
    };
    if let Some(d) = detail {
        response.extensions_mut().insert(d);
    }
    response
}

/// `GET /api/v1/restores/{rid}`: a restore's progress, then its result.
pub async fn api_run_get(
    state: State,
    Extension(identity): Extension<Identity>,
    rid: Result<Path<String>, PathRejection>,
) -> Response {
    match rid.ok().and_then(|Path(rid)| find(&state, &identity, &rid)) {
        Some(run) => Json(run_body(&run)).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such restore on this instance"),
    }
}

/// Stop: cancels a running restore (its load rolls back, or its new database is dropped),
/// then back to its page.
pub async fn stop_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    rid: Result<Path<String>, PathRejection>,
    Form(form): Form<super::auth::CsrfForm>,
) -> Response {
    if !form_ok(&state, &identity, &headers, &form.csrf_token) {
        return forbidden();
    }
    let Some(run) = rid.ok().and_then(|Path(rid)| find(&state, &identity, &rid)) else {
        return error_page(
            &state,
            StatusCode::NOT_FOUND,
            "no such restore on this instance",
        );
    };
    let mut r = Redirect::to(&format!("{}/restores/{}", state.base, run.id)).into_response();
    r.extensions_mut().insert(stopped(&run, &identity));
    r
}

/// Asks `run` to stop, and what its audit row says.
fn stopped(run: &RestoreRun, identity: &Identity) -> AuditDetail {
    let asked = run.stop(&format!("stopped by {}", identity.actor()));
    AuditDetail(if asked {
        format!("stopped restore #{} into {}", run.id, run.target)
    } else {
        format!("restore #{} had already ended", run.id)
    })
}

/// `POST /api/v1/restores/{rid}/stop`: cancels a running restore; 202 with it as it is now.
pub async fn api_stop_post(
    state: State,
    Extension(identity): Extension<Identity>,
    headers: HeaderMap,
    rid: Result<Path<String>, PathRejection>,
) -> Response {
    if matches!(identity, Identity::User(_)) && !same_origin(&state, &headers) {
        return error(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let Some(run) = rid.ok().and_then(|Path(rid)| find(&state, &identity, &rid)) else {
        return error(StatusCode::NOT_FOUND, "no such restore on this instance");
    };
    let detail = stopped(&run, &identity);
    let mut r = (StatusCode::ACCEPTED, Json(run_body(&run))).into_response();
    r.extensions_mut().insert(detail);
    r
}
