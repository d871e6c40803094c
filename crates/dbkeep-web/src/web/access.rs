//! Who may ask for what: the middleware in front of every protected route. It finds the
//! caller (a session or an API token), looks the route up in [`super::ROUTES`], checks the
//! caller's role and databases, and writes the audit log for the routes that act and for
//! every refusal.

use std::sync::Arc;

use axum::RequestPartsExt;
use axum::extract::{MatchedPath, RawPathParams, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::audited::{AuditDetail, AuditTarget, Caller};
use super::auth::{Identity, identify, urlencode};
use super::{Access, Route, State, WebState, blocking, find_route, link};
use dbkeep_model::accounts::Role;
use dbkeep_model::audit::{Action, Entry, Outcome};

/// Middleware: lets a request through only with a valid session cookie or Bearer token whose
/// role reaches the route's, and whose databases cover the database the route acts on;
/// otherwise 401 (API, metrics), a redirect to the login page, 403, or 404 (a backup of a
/// database the caller may not see is not there for them).
pub async fn guard(state: State, request: Request, next: Next) -> Response {
    let identity = match identify(&state, request.headers()).await {
        Ok(Some(identity)) => identity,
        Ok(None) => return unauthenticated(&state, &request),
        Err(e) => return super::respond::internal_page(&state, &e),
    };
    let (mut parts, body) = request.into_parts();
    let matched = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = match parts.method.as_str() {
        "HEAD" => "GET".to_string(),
        other => other.to_string(),
    };
    let route = route_of(&state, &method, &matched);
    let params = parts.extract::<RawPathParams>().await.ok();
    let param = |key: &str| {
        params.as_ref().and_then(|p| {
            p.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    };
    let target = match (param("id"), param("name")) {
        (Some(id), _) => format!("backup:{id}"),
        (None, Some(name)) => name,
        (None, None) => String::new(),
    };
    let api = answers_json(parts.uri.path());
    let who = Caller::new(identity.actor(), &parts.headers, parts.extensions.get()).api(api);
    let Some(route) = route else {
        // Fails closed: a route the table does not list is a bug, never an open door.
        tracing::error!(%method, path = %matched, "a route missing from ROUTES was asked for; refused");
        return who
            .refuse(
                &state,
                Action::Access,
                &matched,
                "this route has no access rule",
            )
            .await;
    };
    let action = route.audit.unwrap_or(Action::Access);
    // A user whom `require_2fa` covers uses the admin only once their second factor is on.
    if let Identity::User(session) = &identity
        && !session.user.two_factor
        && !session.user.single_sign_on
        && state
            .runner
            .config()
            .web
            .auth
            .require_2fa
            .requires(session.user.grant.role)
        && !ENROLMENT_ROUTES.contains(&route.path)
    {
        if method == "GET" && !who.is_api() {
            return Redirect::to(&link(&state.base, "/account")).into_response();
        }
        return who
            .refuse(
                &state,
                action,
                &target,
                "two-factor login is required for this user: set it up on the account page first",
            )
            .await;
    }
    let grant = identity.grant();
    if let Access::Needs(role) = route.access
        && !grant.can(role)
    {
        let why = format!(
            "the {} role may not do this; it needs {}",
            grant.role,
            an(role)
        );
        return who.refuse(&state, action, &target, &why).await;
    }
    // The database the route acts on: named in the path, or the backup's.
    let database = match (param("id"), param("name")) {
        _ if grant.databases.is_all() => None,
        (Some(id), _) => match backup_database(&state, &id).await {
            Ok(database) => database,
            Err(e) => return super::respond::internal_page(&state, &e),
        },
        (None, Some(name)) => Some(name),
        (None, None) => None,
    };
    if let Some(database) = database
        && !grant.sees(&database)
    {
        let why = format!("database {database} is not among this login's databases");
        who.record(
            &state,
            Entry::new(&who.actor, action, &target, Outcome::Refused).detail(why),
        )
        .await;
        return super::respond::not_found(axum::extract::State(Arc::clone(&state)), parts.uri)
            .await;
    }
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(identity);
    let response = next.run(request).await;
    if let Some(action) = route.audit {
        let status = response.status();
        let detail = response
            .extensions()
            .get::<AuditDetail>()
            .map(|d| d.0.clone());
        let target = response
            .extensions()
            .get::<AuditTarget>()
            .map_or(target, |t| t.0.clone());
        let outcome = if status.is_success() || status.is_redirection() {
            Outcome::Ok
        } else if status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT {
            // A conflict is a refusal too: already running, not restorable, not confirmed.
            Outcome::Refused
        } else {
            Outcome::Failed
        };
        let detail = match (outcome, detail) {
            (_, Some(d)) => Some(d),
            (Outcome::Ok, None) => None,
            (_, None) => Some(format!("answered {status}")),
        };
        who.record(
            &state,
            Entry {
                detail,
                ..Entry::new(&who.actor, action, &target, outcome)
            },
        )
        .await;
    }
    response
}

/// The routes a user who must set up a second factor may still use.
const ENROLMENT_ROUTES: &[&str] = &[
    "/account",
    "/account/2fa/start",
    "/account/2fa/confirm",
    "/logout",
];

/// The listed route for the path the router matched (which includes the mount point when the
/// admin is nested in an application).
fn route_of(state: &WebState, method: &str, matched: &str) -> Option<&'static Route> {
    let path = matched.strip_prefix(state.base.as_str()).unwrap_or(matched);
    let path = if path.is_empty() { "/" } else { path };
    find_route(method, path)
}

/// "an admin", "an operator", "a viewer".
fn an(role: Role) -> String {
    match role {
        Role::Admin | Role::Operator => format!("an {role}"),
        Role::Viewer => format!("a {role}"),
    }
}

/// The database of backup `id`, when the catalog has it.
async fn backup_database(
    state: &Arc<WebState>,
    id: &str,
) -> dbkeep_model::error::Result<Option<String>> {
    let Some(id) = super::respond::parse_id(id) else {
        return Ok(None);
    };
    blocking(state, move |runner| {
        Ok(runner.catalog().get(id)?.map(|r| r.database))
    })
    .await
}

/// Whether the route at `path` answers in JSON or plain text (the API, the metrics), not with
/// pages.
fn answers_json(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// No valid login: 401 for the API and metrics, else the login page with a way back.
fn unauthenticated(state: &WebState, request: &Request) -> Response {
    if answers_json(request.uri().path()) {
        return super::respond::error(
            StatusCode::UNAUTHORIZED,
            "authentication required: log in, or send Authorization: Bearer TOKEN",
        );
    }
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
