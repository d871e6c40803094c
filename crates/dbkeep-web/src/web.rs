//! The web admin, JSON API, health check and metrics: one axum router, every route behind a
//! login except `/login`, `/healthz` and static assets. Handlers parse, call the library
//! (off the async threads: the catalog is synchronous), and render.

mod access;
mod admin;
mod api;
mod audited;
mod auth;
mod calendar;
mod download;
mod health;
mod oidc;
mod overview;
mod pages;
mod pins;
mod respond;
mod restores;
mod retention;
mod server;
mod setup;
mod space;
mod throttle;
mod twofactor;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use dbkeep_core::runner::View;
use dbkeep_core::verdict::FactsCache;
use dbkeep_model::accounts::Role;
use dbkeep_model::audit::Action;
use dbkeep_model::clock::Clock;
use dbkeep_service::service::ServiceHandle;
use dbkeep_service::service::ServiceStatus;

pub use auth::{check_new_password, ensure_admin};
pub use server::{ServerLimits, serve};

/// Everything a handler needs, shared by all requests.
pub struct WebState {
    /// What the pages read: backups, accounts and files; runs go through `jobs`.
    runner: Arc<dyn View>,
    status: Arc<ServiceStatus>,
    jobs: Arc<dbkeep_service::service::Jobs>,
    /// What the verdicts were last judged from: the service's, shared with its stale watch.
    facts: Arc<FactsCache>,
    clock: Arc<dyn Clock>,
    throttle: throttle::Throttle,
    /// The path the router is mounted at (`""` at the root), for links and cookies.
    base: String,
    secure_cookies: bool,
    /// The address people reach the admin at, when configured: the only origin forms may come from.
    public_url: Option<url::Url>,
    /// The single sign-on provider (`[auth.oidc]`), when there is one.
    oidc: Option<Arc<oidc::Provider>>,
}

type State = axum::extract::State<Arc<WebState>>;

/// Who may ask for a route: anyone, or whoever holds at least a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No login (the login form, the health check, static files).
    Public,
    /// A login, or an API token, of at least this role.
    Needs(Role),
}

/// One route of the router.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path, with `{id}` (a backup) or `{name}` (a database) in it.
    pub path: &'static str,
    /// Who may ask for it.
    pub access: Access,
    /// What the audit log records it as, whoever asks (refusals are recorded for every route).
    pub audit: Option<Action>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    audit: Option<Action>,
) -> Route {
    Route {
        method,
        path,
        access,
        audit,
    }
}

const VIEWER: Access = Access::Needs(Role::Viewer);
const OPERATOR: Access = Access::Needs(Role::Operator);
const ADMIN: Access = Access::Needs(Role::Admin);
const PUBLIC: Access = Access::Public;

/// Every route, who may ask for it and what the audit log calls it: the one place either is
/// decided. The login middleware looks each request up here (a route missing from it is
/// refused), and a test walks it with every role.
pub const ROUTES: &[Route] = &[
    route("GET", "/", VIEWER, None),
    route("GET", "/backups", VIEWER, None),
    route("GET", "/backups/{id}", VIEWER, None),
    route(
        "GET",
        "/backups/{id}/download",
        OPERATOR,
        Some(Action::Download),
    ),
    route(
        "POST",
        "/backups/{id}/verify",
        OPERATOR,
        Some(Action::Verify),
    ),
    route("GET", "/backups/{id}/restore", ADMIN, None),
    route(
        "POST",
        "/backups/{id}/restore",
        ADMIN,
        Some(Action::Restore),
    ),
    route("GET", "/restores/{rid}", ADMIN, None),
    route("POST", "/restores/{rid}/stop", ADMIN, Some(Action::Restore)),
    route("POST", "/backups/{id}/pin", ADMIN, Some(Action::Pin)),
    route("POST", "/backups/{id}/unpin", ADMIN, Some(Action::Unpin)),
    route("GET", "/databases", VIEWER, None),
    route(
        "POST",
        "/databases/{name}/backup",
        OPERATOR,
        Some(Action::Backup),
    ),
    route("GET", "/databases/{name}/retention", VIEWER, None),
    route(
        "POST",
        "/databases/{name}/prune",
        ADMIN,
        Some(Action::Prune),
    ),
    route("GET", "/schedules", VIEWER, None),
    route("GET", "/instances", VIEWER, None),
    route("GET", "/users", ADMIN, None),
    route(
        "POST",
        "/users/{user}/sessions/end",
        ADMIN,
        Some(Action::SessionsEnd),
    ),
    route("GET", "/audit", ADMIN, None),
    route("GET", "/setup", ADMIN, None),
    route("GET", "/account", VIEWER, None),
    route("POST", "/account/2fa/start", VIEWER, None),
    route("POST", "/account/2fa/confirm", VIEWER, None),
    route("POST", "/account/2fa/disable", VIEWER, None),
    route("POST", "/logout", VIEWER, None),
    route("GET", "/metrics", VIEWER, None),
    route("GET", "/api/v1/backups", VIEWER, None),
    route("POST", "/api/v1/backups", OPERATOR, Some(Action::Backup)),
    route("GET", "/api/v1/backups/{id}", VIEWER, None),
    route(
        "GET",
        "/api/v1/backups/{id}/download",
        OPERATOR,
        Some(Action::Download),
    ),
    route("GET", "/api/v1/backups/{id}/log", VIEWER, None),
    route(
        "POST",
        "/api/v1/backups/{id}/verify",
        OPERATOR,
        Some(Action::Verify),
    ),
    route(
        "POST",
        "/api/v1/backups/{id}/restore",
        ADMIN,
        Some(Action::Restore),
    ),
    route("GET", "/api/v1/restores/{rid}", ADMIN, None),
    route(
        "POST",
        "/api/v1/restores/{rid}/stop",
        ADMIN,
        Some(Action::Restore),
    ),
    route("POST", "/api/v1/backups/{id}/pin", ADMIN, Some(Action::Pin)),
    route(
        "POST",
        "/api/v1/backups/{id}/unpin",
        ADMIN,
        Some(Action::Unpin),
    ),
    route("GET", "/api/v1/databases", VIEWER, None),
    route("GET", "/api/v1/instances", VIEWER, None),
    route("GET", "/api/v1/openapi.json", VIEWER, None),
    route("GET", "/login", PUBLIC, None),
    route("POST", "/login", PUBLIC, None),
    route("GET", "/login/2fa", PUBLIC, None),
    route("POST", "/login/2fa", PUBLIC, None),
    route("GET", "/login/oidc", PUBLIC, None),
    route("GET", "/login/oidc/callback", PUBLIC, None),
    route("GET", "/healthz", PUBLIC, None),
    route("GET", "/static/style.css", PUBLIC, None),
    route("GET", "/static/favicon.svg", PUBLIC, None),
    route("GET", "/favicon.ico", PUBLIC, None),
];

/// The route `method path` (a path as the router matched it, with `{id}`), if listed.
pub fn find_route(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

/// The admin router for a running service, to serve on its own or to nest into an
/// application under `base` (e.g. `"/admin/backups"`; `""` for the root).
pub fn router(service: &ServiceHandle, base: &str) -> Router {
    let runner = Arc::clone(service.runner());
    let public_url = runner.config().web.public_url.clone();
    let oidc = oidc::provider(&runner.config().web);
    let secure_cookies = public_url.as_ref().is_some_and(|u| u.scheme() == "https");
    let state = Arc::new(WebState {
        // The service's clock: one notion of "now" for the scheduler and the pages.
        clock: Arc::clone(service.jobs().clock()),
        jobs: Arc::clone(service.jobs()),
        facts: Arc::clone(service.jobs().facts()),
        status: Arc::clone(service.status()),
        runner,
        throttle: throttle::Throttle::default(),
        base: base.trim_end_matches('/').to_string(),
        secure_cookies,
        public_url,
        oidc,
    });
    let protected = Router::new()
        .route("/", get(overview::overview_get))
        .route("/backups", get(pages::backups_get))
        .route("/backups/{id}", get(pages::backup_get))
        .route("/backups/{id}/download", get(download::download_get))
        .route("/backups/{id}/verify", post(pages::verify_now_post))
        .route(
            "/backups/{id}/restore",
            get(restores::restore_get).post(restores::restore_post),
        )
        .route("/restores/{rid}", get(restores::run_get))
        .route("/restores/{rid}/stop", post(restores::stop_post))
        .route("/backups/{id}/pin", post(pages::pin_post))
        .route("/backups/{id}/unpin", post(pages::unpin_post))
        .route("/databases", get(pages::databases_get))
        .route("/databases/{name}/backup", post(overview::backup_now_post))
        .route("/databases/{name}/retention", get(retention::retention_get))
        .route("/databases/{name}/prune", post(retention::prune_post))
        .route("/schedules", get(pages::schedules_get))
        .route("/instances", get(pages::instances_get))
        .route("/users", get(admin::users_get))
        .route("/users/{user}/sessions/end", post(admin::end_sessions_post))
        .route("/audit", get(admin::audit_get))
        .route("/setup", get(setup::setup_get))
        .route("/account", get(twofactor::account_get))
        .route("/account/2fa/start", post(twofactor::start_post))
        .route("/account/2fa/confirm", post(twofactor::confirm_post))
        .route("/account/2fa/disable", post(twofactor::disable_post))
        .route("/logout", post(auth::logout_post))
        .route("/metrics", get(health::metrics_get))
        .route(
            "/api/v1/backups",
            get(api::backups_get).post(api::backups_post),
        )
        .route("/api/v1/backups/{id}", get(api::backup_get))
        .route("/api/v1/backups/{id}/download", get(download::download_get))
        .route("/api/v1/backups/{id}/log", get(api::backup_log_get))
        .route("/api/v1/backups/{id}/verify", post(api::backup_verify_post))
        .route(
            "/api/v1/backups/{id}/restore",
            post(restores::api_restore_post),
        )
        .route("/api/v1/restores/{rid}", get(restores::api_run_get))
        .route("/api/v1/restores/{rid}/stop", post(restores::api_stop_post))
        .route("/api/v1/backups/{id}/pin", post(api::backup_pin_post))
        .route("/api/v1/backups/{id}/unpin", post(api::backup_unpin_post))
        .route("/api/v1/databases", get(api::databases_get))
        .route("/api/v1/instances", get(api::instances_get))
        .route("/api/v1/openapi.json", get(api::openapi_get))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            access::guard,
        ));
    let public = Router::new()
        .route(
            "/login",
            get(auth::login_get)
                .post(auth::login_post)
                .layer(DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
        )
        .route(
            "/login/2fa",
            get(twofactor::login_2fa_get)
                .post(twofactor::login_2fa_post)
                .layer(DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
        )
        .route("/login/oidc", get(oidc::start_get))
        .route("/login/oidc/callback", get(oidc::callback_get))
        .route("/healthz", get(health::healthz_get))
        .route("/static/style.css", get(pages::style_get))
        .route("/static/favicon.svg", get(pages::favicon_get))
        .route("/favicon.ico", get(pages::favicon_get));
    protected
        .merge(public)
        .fallback(respond::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(panicked))
}

/// The largest request body any route reads (forms and API calls are a few hundred bytes).
const BODY_LIMIT: usize = 64 * 1024;
/// The largest login form: a user name and a password of the longest accepted lengths, a
/// CSRF token and a `next` path.
const LOGIN_BODY_LIMIT: usize = 8 * 1024;
/// How long a request may take to arrive and be answered (a download's body streams after).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The answer to a request whose handler panicked: a 500, and the process goes on.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; answered 500");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: this request failed; the service goes on\n",
    )
        .into_response()
}

/// Only `/metrics`, without a login, for a separate private address (`metrics_listen`).
pub fn metrics_router(service: &ServiceHandle) -> Router {
    let runner: Arc<dyn View> = Arc::clone(service.runner()) as Arc<dyn View>;
    let clock = Arc::clone(service.jobs().clock());
    let facts = Arc::clone(service.jobs().facts());
    Router::new().route(
        "/metrics",
        get(move || {
            let (runner, clock, facts) =
                (Arc::clone(&runner), Arc::clone(&clock), Arc::clone(&facts));
            async move { health::render_metrics(&runner, &facts, clock.now()).await }
        }),
    )
}

impl WebState {
    /// The overview's address.
    fn home(&self) -> String {
        home(&self.base)
    }
}

/// The home page (the overview) under `base`: `/` at the root, else the mount point itself (a nested axum
/// router answers `/admin/backups`, not `/admin/backups/`).
fn home(base: &str) -> String {
    if base.is_empty() {
        "/".to_string()
    } else {
        base.to_string()
    }
}

/// The outside address of `path_and_query` inside the router mounted at `base`.
fn link(base: &str, path_and_query: &str) -> String {
    match path_and_query.strip_prefix('/') {
        Some(rest) if rest.is_empty() || rest.starts_with('?') => format!("{}{rest}", home(base)),
        _ => format!("{base}{path_and_query}"),
    }
}

/// What a response says when the service itself failed (the catalog cannot be read, a worker
/// thread died): the error's own text names the catalog's URL or file and repeats the
/// server's words, so it goes to the log, and the answer says only where to look.
const INTERNAL_ERROR: &str =
    "internal error: this request could not be answered; the service's log says why";

/// Logs `e` in full for the operator and returns what the response may say instead: the one
/// place every handler's internal failure goes through.
fn internal_error(e: &dyn std::fmt::Display) -> &'static str {
    tracing::error!(error = %e, "a request failed; answered with a generic internal error");
    INTERNAL_ERROR
}

/// Runs catalog or file work off the async threads.
async fn blocking<T: Send + 'static>(
    state: &Arc<WebState>,
    f: impl FnOnce(&dyn View) -> dbkeep_model::error::Result<T> + Send + 'static,
) -> dbkeep_model::error::Result<T> {
    read(&state.runner, f).await
}

/// Runs work that needs the runner itself (retention plans, prunes) off the async threads.
async fn with_runner<T: Send + 'static>(
    state: &Arc<WebState>,
    f: impl FnOnce(&dbkeep_core::runner::Runner) -> dbkeep_model::error::Result<T> + Send + 'static,
) -> dbkeep_model::error::Result<T> {
    let runner = Arc::clone(&state.jobs.runner);
    tokio::task::spawn_blocking(move || f(&runner))
        .await
        .map_err(|e| dbkeep_model::error::Error::Engine(format!("a worker thread failed: {e}")))?
}

/// Runs `f` over `view` on a blocking thread (catalog reads must not stall the server).
async fn read<T: Send + 'static>(
    view: &Arc<dyn View>,
    f: impl FnOnce(&dyn View) -> dbkeep_model::error::Result<T> + Send + 'static,
) -> dbkeep_model::error::Result<T> {
    let view = Arc::clone(view);
    tokio::task::spawn_blocking(move || f(view.as_ref()))
        .await
        .map_err(|e| dbkeep_model::error::Error::Engine(format!("a worker thread failed: {e}")))?
}
