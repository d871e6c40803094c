//! The web admin and API, in process: every route behind a login, CSRF, login throttling,
//! downloads, the JSON API's filters and errors, health and metrics.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dbkeep::accounts::{self, Accounts, Grant, Role};
use serde_json::Value;
use tower::ServiceExt;

use crate::common::*;

pub(crate) struct App {
    pub(crate) sandbox: Sandbox,
    handle: Option<dbkeep::ServiceHandle>,
    router: Router,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub(crate) fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, v)| *k == name && !v.is_empty())
            .map(|(_, v)| v.to_string())
    }
}

const PASSWORD: &str = "correct horse battery";

impl App {
    pub(crate) async fn start() -> App {
        Self::start_with("").await
    }

    /// Starts with `settings` (top-level keys) added to the test configuration.
    pub(crate) async fn start_with(settings: &str) -> App {
        Self::start_with_databases(settings, "").await
    }

    /// Starts with `settings` added to the test configuration and `databases` (more
    /// `[[databases]]` entries) after its two.
    pub(crate) async fn start_with_databases(settings: &str, databases: &str) -> App {
        let sandbox = Sandbox::new();
        create_sample_sqlite(&sandbox.path().join("app.db"));
        sandbox.write_config(&format!(
            "{settings}\ntimezone = \"UTC\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n\
             [[databases]]\nname = \"other\"\nurl = \"sqlite:app.db\"\ncompression = \"gzip\"\nschedules = [\"0 0 1 1 *\"]\n{databases}"
        ));
        let config = dbkeep::Config::load(&sandbox.config_path()).unwrap();
        let handle = dbkeep::Service::from_config(config)
            .unwrap()
            .start()
            .await
            .unwrap();
        let accounts = handle.runner().accounts();
        accounts
            .add_user(
                "admin",
                &accounts::hash_password(PASSWORD).unwrap(),
                &Grant::everywhere(Role::Admin),
                chrono::Utc::now(),
            )
            .unwrap();
        let router = dbkeep::web::router(&handle, "");
        App {
            sandbox,
            handle: Some(handle),
            router,
        }
    }

    pub(crate) async fn stop(mut self) {
        self.handle.take().unwrap().shutdown().await;
    }

    pub(crate) fn accounts(&self) -> &dyn Accounts {
        self.handle.as_ref().unwrap().runner().accounts()
    }

    /// The catalog the service records into.
    pub(crate) fn catalog(&self) -> &dyn dbkeep::catalog::Catalog {
        self.handle.as_ref().unwrap().runner().catalog()
    }

    /// Adds an API token `token` named `name` with `grant`.
    pub(crate) fn add_token(&self, name: &str, token: &str, grant: Grant) {
        self.accounts()
            .add_token(
                &accounts::NewToken {
                    name,
                    token_sha256: &dbkeep::token::token_digest(token),
                    grant: &grant,
                    expires_at: None,
                },
                chrono::Utc::now(),
            )
            .unwrap();
    }

    /// Adds a user `name` (password [`PASSWORD`]) with `grant`.
    pub(crate) fn add_user(&self, name: &str, grant: Grant) {
        self.accounts()
            .add_user(
                name,
                &accounts::hash_password(PASSWORD).unwrap(),
                &grant,
                chrono::Utc::now(),
            )
            .unwrap();
    }

    /// Logs `name` in through the form (password [`PASSWORD`]); the session and its CSRF token.
    pub(crate) async fn login_as(&self, name: &str) -> Auth {
        let (status, cookie) = self.try_login(name, PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{name} could not log in");
        let mut auth = Auth::Session(cookie.expect("session cookie"), String::new());
        let page = self.get("/", &auth).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        if let Auth::Session(_, token) = &mut auth {
            *token = hidden_csrf(&page.text());
        }
        auth
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str, auth: &Auth) -> Reply {
        self.send(auth.apply(Request::get(path)).body(Body::empty()).unwrap())
            .await
    }

    pub(crate) async fn post_form(&self, path: &str, auth: &Auth, form: &str) -> Reply {
        let request = auth
            .apply(Request::post(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .unwrap();
        self.send(request).await
    }

    pub(crate) async fn post_json(&self, path: &str, auth: &Auth, json: &str) -> Reply {
        let request = auth
            .apply(Request::post(path))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// Logs in through the form; returns the session and its CSRF token.
    pub(crate) async fn login(&self) -> Auth {
        self.login_as("admin").await
    }

    pub(crate) async fn try_login(
        &self,
        user: &str,
        password: &str,
    ) -> (StatusCode, Option<String>) {
        let form = self.get("/login", &Auth::None).await;
        let csrf = form.cookie("dbkeep_login_csrf").expect("login csrf cookie");
        assert_eq!(hidden_csrf(&form.text()), csrf);
        let body = format!(
            "username={user}&password={}&csrf_token={csrf}&next=/",
            password.replace(' ', "+")
        );
        let reply = self
            .post_form("/login", &Auth::LoginCsrf(csrf), &body)
            .await;
        (reply.status, reply.cookie("dbkeep_session"))
    }

    pub(crate) async fn backup(&self, database: &str) -> i64 {
        let runner = Arc::clone(self.handle.as_ref().unwrap().runner());
        let database = database.to_string();
        tokio::task::spawn_blocking(move || {
            runner
                .backup(
                    &database,
                    &dbkeep::BackupOptions::default(),
                    &dbkeep::stream::NoProgress,
                )
                .unwrap()
                .record
                .id
        })
        .await
        .unwrap()
    }
}

pub(crate) enum Auth {
    None,
    LoginCsrf(String),
    Session(String, String),
    Bearer(String),
}

impl Auth {
    pub(crate) fn apply(
        &self,
        builder: axum::http::request::Builder,
    ) -> axum::http::request::Builder {
        let builder = builder.header(header::HOST, "127.0.0.1:7878");
        match self {
            Auth::None => builder,
            Auth::LoginCsrf(c) => builder.header(header::COOKIE, format!("dbkeep_login_csrf={c}")),
            Auth::Session(s, _) => builder.header(header::COOKIE, format!("dbkeep_session={s}")),
            Auth::Bearer(t) => builder.header(header::AUTHORIZATION, format!("Bearer {t}")),
        }
    }
    pub(crate) fn csrf(&self) -> &str {
        match self {
            Auth::Session(_, c) => c,
            _ => "",
        }
    }
}

pub(crate) fn hidden_csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("a csrf_token field")
        + 25;
    html[at..].split('"').next().unwrap().to_string()
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{name}", "app")
}

#[tokio::test]
async fn every_route_needs_a_login_except_the_public_ones() {
    let app = App::start().await;
    let public: Vec<_> = dbkeep::web::ROUTES
        .iter()
        .filter(|r| r.access == dbkeep::web::Access::Public)
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        public,
        [
            ("GET", "/login"),
            ("POST", "/login"),
            ("GET", "/login/2fa"),
            ("POST", "/login/2fa"),
            ("GET", "/login/oidc"),
            ("GET", "/login/oidc/callback"),
            ("GET", "/healthz"),
            ("GET", "/static/style.css"),
            ("GET", "/static/favicon.svg"),
            ("GET", "/favicon.ico")
        ],
        "a route became public"
    );
    for dbkeep::web::Route {
        method,
        path,
        access,
        ..
    } in dbkeep::web::ROUTES
    {
        if *access == dbkeep::web::Access::Public {
            continue;
        }
        let request = Auth::None.apply(Request::builder().method(*method).uri(concrete(path)));
        let reply = app.send(request.body(Body::empty()).unwrap()).await;
        if path.starts_with("/api/") || *path == "/metrics" {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(
                reply.json()["error"]
                    .as_str()
                    .unwrap()
                    .contains("authentication required"),
                "{method} {path}"
            );
        } else {
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{method} {path}");
            assert!(
                reply.location().starts_with("/login?next="),
                "{method} {path}: {}",
                reply.location()
            );
        }
        // A made-up token or session is no better than none.
        for auth in [
            Auth::Bearer("dbk_forged".into()),
            Auth::Session("forged".into(), String::new()),
        ] {
            let reply = app
                .send(
                    auth.apply(Request::builder().method(*method).uri(concrete(path)))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert!(
                matches!(
                    reply.status,
                    StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER
                ),
                "{method} {path}"
            );
        }
    }
    // Logged in, every GET page and API route answers.
    let auth = app.login().await;
    app.backup("app").await;
    app.backup("other").await;
    for dbkeep::web::Route { method, path, .. } in
        dbkeep::web::ROUTES.iter().filter(|r| r.method == "GET")
    {
        let reply = app.get(&concrete(path), &auth).await;
        // The old dashboard's address is a permanent redirect to the overview.
        let want = if *path == "/databases" {
            StatusCode::PERMANENT_REDIRECT
        } else if path.contains("{rid}") {
            // No restore was started here (the route table's test starts one).
            StatusCode::NOT_FOUND
        } else if path.starts_with("/login/oidc") {
            // No [auth.oidc] here: single sign-on is not there.
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(reply.status, want, "{method} {path}: {}", reply.text());
    }
    // This very service is on the instances page, alive.
    let page = app.get("/instances", &auth).await.text();
    let me = format!("{}:{}", dbkeep::instances::host_name(), std::process::id());
    assert!(page.contains(&me), "{page}");
    assert!(
        page.contains("<strong class=\"state\">alive</strong>"),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn form_posts_need_the_sessions_csrf_token_and_the_same_origin() {
    let app = App::start().await;
    let auth = app.login().await;
    let path = "/databases/app/backup";
    assert_eq!(
        app.post_form(path, &auth, "").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_form(path, &auth, "csrf_token=0123").await.status,
        StatusCode::FORBIDDEN
    );
    let cross = Request::post(path)
        .header(header::HOST, "127.0.0.1:7878")
        .header(header::ORIGIN, "https://evil.example")
        .header(
            header::COOKIE,
            match &auth {
                Auth::Session(s, _) => format!("dbkeep_session={s}"),
                _ => unreachable!(),
            },
        )
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf_token={}", auth.csrf())))
        .unwrap();
    assert_eq!(app.send(cross).await.status, StatusCode::FORBIDDEN);
    let ok = app
        .post_form(path, &auth, &format!("csrf_token={}", auth.csrf()))
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/backups?database=app");
    // The admin's button is recorded as such, not as an API call.
    assert_eq!(app.sandbox.rows_for("app")[0]["trigger"], "web");
    // The login form has its own token.
    let no_token = app
        .post_form(
            "/login",
            &Auth::None,
            "username=admin&password=x&csrf_token=",
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    // Logging out ends the session.
    let out = app
        .post_form("/logout", &auth, &format!("csrf_token={}", auth.csrf()))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/", &auth).await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn failed_logins_look_alike_and_are_throttled() {
    let app = App::start().await;
    let form = app.get("/login", &Auth::None).await;
    let csrf = form.cookie("dbkeep_login_csrf").unwrap();
    let attempt = |user: &str, password: &str| {
        format!("username={user}&password={password}&csrf_token={csrf}")
    };
    let wrong = app
        .post_form(
            "/login",
            &Auth::LoginCsrf(csrf.clone()),
            &attempt("admin", "nope"),
        )
        .await;
    let unknown = app
        .post_form(
            "/login",
            &Auth::LoginCsrf(csrf.clone()),
            &attempt("nobody", "nope"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (unknown.status, unknown.text().replace("nobody", "admin")),
        (wrong.status, wrong.text())
    );
    assert!(wrong.text().contains("Wrong user name or password."));
    for _ in 0..4 {
        let r = app
            .post_form(
                "/login",
                &Auth::LoginCsrf(csrf.clone()),
                &attempt("admin", "nope"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Five failures for admin: even the right password is refused for a while.
    let blocked = app
        .post_form(
            "/login",
            &Auth::LoginCsrf(csrf.clone()),
            &attempt("admin", "correct+horse+battery"),
        )
        .await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        blocked.text()
    );
    assert!(blocked.headers.get(header::RETRY_AFTER).is_some());
    assert!(blocked.cookie("dbkeep_session").is_none());
    app.stop().await;
}

#[tokio::test]
async fn downloads_stream_the_recorded_file_and_refuse_anything_else() {
    let app = App::start().await;
    let auth = app.login().await;
    let id = app.backup("app").await;
    let rows = app.sandbox.rows_for("app");
    let path = std::path::PathBuf::from(rows[0]["path"].as_str().unwrap());
    for prefix in ["", "/api/v1"] {
        let reply = app
            .get(&format!("{prefix}/backups/{id}/download"), &auth)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, std::fs::read(&path).unwrap());
        assert_eq!(reply.headers["x-backup-sha256"], sha256sum(&path).as_str());
        assert_eq!(
            reply.headers[header::CONTENT_LENGTH],
            reply.body.len().to_string().as_str()
        );
        let disposition = reply.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
        assert_eq!(
            disposition,
            format!(
                "attachment; filename=\"{}\"",
                rows[0]["file_name"].as_str().unwrap()
            )
        );
    }
    for bad in [
        "/backups/..%2F..%2Fetc%2Fpasswd/download",
        "/backups/../../etc/passwd/download",
        "/backups/%2e%2e%2fdbkeep.toml/download",
        "/api/v1/backups/..%2Fdbkeep.toml/download",
        "/backups/1%20OR%201=1/download",
        "/backups/999/download",
        "/backups/-1/download",
    ] {
        let reply = app.get(bad, &auth).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{bad}: {}",
            reply.text()
        );
    }
    // Pruned: gone, with a reason.
    app.backup("app").await;
    app.sandbox
        .run(&["prune", "--retention-days", "0", "--confirm"])
        .assert_success();
    let reply = app
        .get(&format!("/api/v1/backups/{id}/download"), &auth)
        .await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert!(reply.json()["error"].as_str().unwrap().contains("pruned"));
    app.stop().await;
}

#[tokio::test]
async fn api_lists_filters_pages_and_starts_backups() {
    let app = App::start().await;
    let token = "dbk_test_token_0123456789";
    app.add_token("ci", token, Grant::everywhere(Role::Admin));
    let auth = Auth::Bearer(token.into());
    for db in ["app", "app", "other", "app"] {
        app.backup(db).await;
    }
    let all = app.get("/api/v1/backups", &auth).await.json();
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [4, 3, 2, 1]);
    let fields: Vec<&str> = all[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = JSON_FIELDS.to_vec();
    expected.sort_unstable();
    let mut fields_sorted = fields.clone();
    fields_sorted.sort_unstable();
    assert_eq!(
        fields_sorted, expected,
        "the API's objects are exactly `dbkeep list --json`'s"
    );
    let other = app
        .get("/api/v1/backups?database=other", &auth)
        .await
        .json();
    assert_eq!(other.as_array().unwrap().len(), 1);
    let page = app
        .get("/api/v1/backups?limit=2&before=4", &auth)
        .await
        .json();
    let page_ids: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page_ids, [3, 2]);
    assert_eq!(
        app.get("/api/v1/backups?status=failed", &auth).await.json(),
        serde_json::json!([])
    );
    for bad in [
        "/api/v1/backups?limit=0",
        "/api/v1/backups?limit=x",
        "/api/v1/backups?status=great",
        "/api/v1/backups?before=z",
    ] {
        let reply = app.get(bad, &auth).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.json()["error"].is_string(), "{bad}");
    }
    let one = app.get("/api/v1/backups/3", &auth).await;
    assert_eq!(one.json()["database"], "other");
    assert_eq!(
        app.get("/api/v1/backups/77", &auth).await.status,
        StatusCode::NOT_FOUND
    );

    let accepted = app
        .post_json("/api/v1/backups", &auth, r#"{"database": "app"}"#)
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text());
    let id = accepted.json()["id"].as_i64().unwrap();
    assert!(id > 4);
    assert_eq!(accepted.location(), format!("/api/v1/backups/{id}"));
    // While another instance holds the database's lease, a second request conflicts.
    let catalog = rusqlite::Connection::open(app.sandbox.catalog_path()).unwrap();
    catalog
        .execute(
            "INSERT INTO leases (resource, holder, host, pid, run, acquired_at, expires_at) \
             VALUES ('backup:other', 'web-2:1', 'web-2', 1, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+60 seconds'))",
            [],
        )
        .unwrap();
    let conflict = app
        .post_json("/api/v1/backups", &auth, r#"{"database": "other"}"#)
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text());
    assert!(
        conflict.json()["error"]
            .as_str()
            .unwrap()
            .contains("already running")
    );
    catalog.execute("DELETE FROM leases", []).unwrap();
    assert_eq!(
        app.post_json("/api/v1/backups", &auth, r#"{"database": "nope"}"#)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_json("/api/v1/backups", &auth, r#"{"db": 1}"#)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // The started backup finishes and shows in the list as an API backup.
    for _ in 0..100 {
        let r = app
            .get(&format!("/api/v1/backups/{id}"), &auth)
            .await
            .json();
        if r["status"] == "success" {
            assert_eq!(r["trigger"], "api");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.get(&format!("/api/v1/backups/{id}"), &auth)
            .await
            .json()["status"],
        "success"
    );
    let dbs = app.get("/api/v1/databases", &auth).await.json();
    assert_eq!(dbs[0]["name"], "app");
    assert_eq!(dbs[0]["schedules"][0]["schedule"], "0 0 1 1 *");
    assert!(dbs[0]["last_success"]["id"].is_i64());
    app.stop().await;
}

#[tokio::test]
async fn health_names_stale_databases_and_metrics_describe_backups() {
    let app = App::start().await;
    let health = app.get("/healthz", &app.login().await).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["stale"], serde_json::json!(["app", "other"]));
    app.backup("app").await;
    app.backup("other").await;
    let health = app.get("/healthz", &Auth::None).await;
    assert_eq!(
        (health.status, health.json()),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );
    let auth = app.login().await;
    let metrics = app.get("/metrics", &auth).await.text();
    for line in [
        "dbkeep_backups_total{database=\"app\",status=\"success\"} 1",
        "dbkeep_backup_in_progress{database=\"other\"} 0",
        "# TYPE dbkeep_backup_last_success_timestamp_seconds gauge",
        "dbkeep_backup_last_size_bytes{database=\"app\"} ",
        "dbkeep_backup_last_duration_seconds{database=\"other\"} ",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
    let status = Arc::clone(app.handle.as_ref().unwrap().status());
    app.stop().await;
    assert!(
        !status.alive(),
        "the scheduler reports stopped after shutdown"
    );
}

#[tokio::test]
async fn the_admin_nests_under_a_prefix_with_its_links_and_cookies() {
    let mut app = App::start().await;
    let admin = dbkeep::web::router(app.handle.as_ref().unwrap(), "/admin/backups");
    app.router = Router::new().nest("/admin/backups", admin);
    // A nested router's home is the mount point itself (axum does not route its trailing slash).
    let home = app.get("/admin/backups", &Auth::None).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(
        home.location(),
        "/admin/backups/login?next=%2Fadmin%2Fbackups"
    );
    let filtered = app.get("/admin/backups?database=app", &Auth::None).await;
    assert_eq!(
        filtered.location(),
        "/admin/backups/login?next=%2Fadmin%2Fbackups%3Fdatabase%3Dapp"
    );
    let api = app.get("/admin/backups/api/v1/backups", &Auth::None).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert!(api.json()["error"].is_string());

    let form = app.get("/admin/backups/login", &Auth::None).await;
    assert!(
        form.text().contains("action=\"/admin/backups/login\""),
        "{}",
        form.text()
    );
    let set_cookie = form.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("Path=/admin/backups"), "{set_cookie}");
    let csrf = form.cookie("dbkeep_login_csrf").unwrap();
    let body = format!(
        "username=admin&password=correct+horse+battery&csrf_token={csrf}&next=%2Fadmin%2Fbackups"
    );
    let login = app
        .post_form("/admin/backups/login", &Auth::LoginCsrf(csrf), &body)
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/admin/backups");
    let session = Auth::Session(login.cookie("dbkeep_session").unwrap(), String::new());
    let page = app.get("/admin/backups", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains("href=\"/admin/backups/static/style.css\""),
        "{html}"
    );
    assert!(
        html.contains("<a class=\"brand\" href=\"/admin/backups\">"),
        "{html}"
    );
    assert_eq!(
        app.get("/admin/backups/backups", &session).await.status,
        StatusCode::OK
    );
    // The old dashboard's address leads to the overview, under the prefix.
    let old = app.get("/admin/backups/databases", &session).await;
    assert_eq!(old.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(old.location(), "/admin/backups");
    // A `next` pointing elsewhere is ignored.
    let csrf = app
        .get("/admin/backups/login", &Auth::None)
        .await
        .cookie("dbkeep_login_csrf")
        .unwrap();
    let body = format!(
        "username=admin&password=correct+horse+battery&csrf_token={csrf}&next=%2F%2Fevil.example%2F"
    );
    let login = app
        .post_form("/admin/backups/login", &Auth::LoginCsrf(csrf), &body)
        .await;
    assert_eq!(login.location(), "/admin/backups");
    app.stop().await;
}

#[tokio::test]
async fn the_separate_metrics_router_needs_no_login_and_serves_nothing_else() {
    let mut app = App::start().await;
    app.backup("app").await;
    app.router = dbkeep::web::metrics_router(app.handle.as_ref().unwrap());
    let metrics = app.get("/metrics", &Auth::None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .text()
            .contains("dbkeep_backups_total{database=\"app\",status=\"success\"} 1")
    );
    assert_eq!(
        app.get("/", &Auth::None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/backups", &Auth::None).await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn session_cookies_are_locked_down_and_sessions_expire() {
    let app = App::start_with("public_url = \"https://backups.example.com\"").await;
    let form = app.get("/login", &Auth::None).await;
    let csrf = form.cookie("dbkeep_login_csrf").unwrap();
    let body = format!("username=admin&password=correct+horse+battery&csrf_token={csrf}");
    let login = app.post_form("/login", &Auth::LoginCsrf(csrf), &body).await;
    let session_cookie = login
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("dbkeep_session="))
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(
            session_cookie.contains(attribute),
            "`{attribute}` missing: {session_cookie}"
        );
    }
    let live = Auth::Session(login.cookie("dbkeep_session").unwrap(), String::new());
    assert_eq!(app.get("/", &live).await.status, StatusCode::OK);

    // A session past its expiry is no login at all.
    let (user, _) = app.accounts().user_by_name("admin").unwrap().unwrap();
    let now = chrono::Utc::now();
    let token = "an-expired-session-token";
    app.accounts()
        .add_session(
            &dbkeep::token::token_digest(token),
            user.id,
            "csrf",
            now - chrono::Duration::hours(13),
            now - chrono::Duration::hours(1),
        )
        .unwrap();
    let expired = app
        .get("/", &Auth::Session(token.into(), String::new()))
        .await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert!(expired.location().starts_with("/login"));
    app.stop().await;
}

/// Inserts a forged `success` row into the app's catalog and returns its id.
fn forge_row(app: &App, database: &str, file_name: &str, path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(app.sandbox.catalog_path()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn.execute(
        "INSERT INTO backups (database, kind, status, trigger, file_name, path, size_bytes, sha256, compression, started_at, finished_at, duration_ms)
         VALUES (?1, 'sqlite', 'success', 'manual', ?2, ?3, 1, 'ab', 'none', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:01.000Z', 1)",
        rusqlite::params![database, file_name, path.to_string_lossy()],
    )
    .unwrap();
    conn.last_insert_rowid()
}

#[tokio::test]
async fn downloads_and_pruning_only_touch_files_inside_the_databases_folder() {
    let app = App::start().await;
    let auth = app.login().await;
    // A row naming a system file, under a database this configuration does not have.
    let passwd = forge_row(&app, "etc", "passwd", std::path::Path::new("/etc/passwd"));
    // A row of a configured database whose path points outside the backup folder.
    let outside = app.sandbox.path().join("elsewhere/app");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim.db");
    std::fs::write(&victim, "precious").unwrap();
    let stray = forge_row(&app, "app", "victim.db", &victim);
    for id in [passwd, stray] {
        for prefix in ["", "/api/v1"] {
            let reply = app
                .get(&format!("{prefix}/backups/{id}/download"), &auth)
                .await;
            assert_ne!(reply.status, StatusCode::OK, "#{id}: {}", reply.text());
            assert!(!reply.text().contains("root:"), "{}", reply.text());
            assert!(!reply.text().contains("precious"), "{}", reply.text());
        }
    }
    // A real backup whose file was replaced by a link to another file.
    let id = app.backup("app").await;
    let row = app.sandbox.rows_for("app")[0].clone();
    let file = std::path::PathBuf::from(row["path"].as_str().unwrap());
    let secret = app.sandbox.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&secret, &file).unwrap();
    let reply = app.get(&format!("/backups/{id}/download"), &auth).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(!reply.text().contains("top secret"));

    // Pruning everything it may: the forged rows' files stay, and so does the link's target.
    app.backup("app").await;
    let run = app
        .sandbox
        .run(&["prune", "--retention-days", "0", "--confirm"]);
    // The link is refused, not followed nor deleted: a failed prune.
    run.assert_code(1);
    assert!(run.stdout.contains("symbolic link"), "{run:?}");
    assert!(run.stdout.contains("left alone  etc  1"), "{run:?}");
    assert!(run.stdout.contains("left alone  app  1"), "{run:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
    assert!(std::path::Path::new("/etc/passwd").exists());
    app.stop().await;
}

#[tokio::test]
async fn after_login_only_a_path_of_this_site_is_followed() {
    let app = App::start().await;
    for (next, want) in [
        ("/\t/127.0.0.1:19199/phish", "/"),
        ("/\n/x", "/"),
        ("/\r/x", "/"),
        ("/\u{0b}/x", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/backups/1?x=1", "/backups/1?x=1"),
    ] {
        let form = app.get("/login", &Auth::None).await;
        let csrf = form.cookie("dbkeep_login_csrf").unwrap();
        let enc =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let body = format!(
            "username=admin&password={}&csrf_token={csrf}&next={}",
            enc(PASSWORD),
            enc(next)
        );
        let reply = app.post_form("/login", &Auth::LoginCsrf(csrf), &body).await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{next:?}: {}",
            reply.text()
        );
        assert_eq!(reply.location(), want, "{next:?}");
    }
    // The login page itself never carries a foreign `next` in its form.
    let page = app
        .get(
            "/login?next=%2F%09%2F127.0.0.1%3A19199%2Fphish",
            &Auth::None,
        )
        .await;
    assert!(
        page.text().contains("name=\"next\" value=\"/\""),
        "{}",
        page.text()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_origin_check_includes_the_scheme_and_bearer_is_case_insensitive() {
    let app = App::start().await;
    let auth = app.login().await;
    let Auth::Session(session, csrf) = &auth else {
        unreachable!()
    };
    for (origin, want) in [
        ("https://127.0.0.1:7878", StatusCode::FORBIDDEN),
        ("ftp://127.0.0.1:7878", StatusCode::FORBIDDEN),
        ("null", StatusCode::FORBIDDEN),
        ("http://127.0.0.1:7878", StatusCode::SEE_OTHER),
    ] {
        let request = Request::post("/databases/app/backup")
            .header(header::HOST, "127.0.0.1:7878")
            .header(header::ORIGIN, origin)
            .header(header::COOKIE, format!("dbkeep_session={session}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf_token={csrf}")))
            .unwrap();
        assert_eq!(app.send(request).await.status, want, "{origin}");
    }
    let token = "dbk_case_token_0123456789";
    app.add_token("case", token, Grant::everywhere(Role::Admin));
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let request = Request::get("/api/v1/databases")
            .header(header::AUTHORIZATION, format!("{scheme} {token}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.send(request).await.status, StatusCode::OK, "{scheme}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_new_password_a_deleted_user_or_a_revoked_token_ends_access_at_once() {
    let app = App::start().await;
    let auth = app.login().await;
    assert_eq!(app.get("/", &auth).await.status, StatusCode::OK);
    let run = app
        .sandbox
        .run_with_stdin(&["user", "passwd", "admin"], "a brand new password\n");
    run.assert_success();
    assert_eq!(app.get("/", &auth).await.status, StatusCode::SEE_OTHER);

    app.sandbox
        .run_with_stdin(&["user", "add", "bob"], "bob's password\n")
        .assert_success();
    let (status, cookie) = app.try_login("bob", "bob's password").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let bob = Auth::Session(cookie.unwrap(), String::new());
    assert_eq!(app.get("/", &bob).await.status, StatusCode::OK);
    app.sandbox.run(&["user", "delete", "bob"]).assert_success();
    assert_eq!(app.get("/", &bob).await.status, StatusCode::SEE_OTHER);

    let token = "dbk_revoked_token_0123456789";
    app.add_token("soon-revoked", token, Grant::everywhere(Role::Admin));
    let api = Auth::Bearer(token.into());
    assert_eq!(
        app.get("/api/v1/databases", &api).await.status,
        StatusCode::OK
    );
    app.sandbox
        .run(&["token", "revoke", "soon-revoked"])
        .assert_success();
    assert_eq!(
        app.get("/api/v1/databases", &api).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn each_run_has_its_log_in_the_page_and_the_api() {
    let app = App::start().await;
    let auth = app.login().await;
    let id = app.backup("app").await;
    let reply = app.get(&format!("/api/v1/backups/{id}/log"), &auth).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["id"], id);
    let lines: Vec<&str> = body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines[0].contains("started: sqlite backup of sqlite:"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("renamed into place as sqlite_backup_")),
        "{lines:?}"
    );
    let page = app.get(&format!("/backups/{id}"), &auth).await.text();
    assert!(page.contains("<pre class=\"log\">"), "{page}");
    assert!(
        page.contains("renamed into place as sqlite_backup_"),
        "{page}"
    );
    assert_eq!(
        app.get("/api/v1/backups/999/log", &auth).await.status,
        StatusCode::NOT_FOUND
    );
    // Unknown addresses: a page inside the layout, or JSON under the API.
    let missing = app.get("/no/such/page", &auth).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text().contains("<nav>"), "{}", missing.text());
    let api = app.get("/api/v1/nothing", &auth).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.json()["error"].is_string());
    // A filter that matches nothing says so, rather than "no backups yet".
    let none = app
        .get("/backups?database=app&status=failed", &auth)
        .await
        .text();
    assert!(
        none.contains("No backups match database app, status failed."),
        "{none}"
    );
    let icon = app.get("/favicon.ico", &Auth::None).await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.headers[header::CONTENT_TYPE], "image/svg+xml");
    app.stop().await;
}

#[tokio::test]
async fn verify_now_restores_a_backup_in_the_background_and_shows_the_result() {
    let app = App::start().await;
    let auth = app.login().await;
    let id = app.backup("app").await;
    let token = "dbk_verify_token_0123456789";
    app.add_token("verify", token, Grant::everywhere(Role::Admin));
    let api = Auth::Bearer(token.into());
    let accepted = app
        .post_json(&format!("/api/v1/backups/{id}/verify"), &api, "")
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text());
    assert_eq!(accepted.json()["level"], "restore");
    let start = std::time::Instant::now();
    let record = loop {
        let r = app.get(&format!("/api/v1/backups/{id}"), &api).await.json();
        if !r["verify_status"].is_null() {
            break r;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(record["verify_status"], "ok", "{record}");
    assert_eq!(record["verify_level"], "restore", "{record}");
    let page = app.get(&format!("/backups/{id}"), &auth).await.text();
    assert!(
        page.contains("<span class=\"state\">passed</span>"),
        "{page}"
    );
    assert!(page.contains(&format!("restore {id} --to ")), "{page}");
    let history = app.get("/backups", &auth).await.text();
    assert!(history.contains(">verified</div>"), "{history}");
    // The form: CSRF checked, then back to the backup's page.
    let no_token = app
        .post_form(&format!("/backups/{id}/verify"), &auth, "csrf_token=nope")
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let form = app
        .post_form(
            &format!("/backups/{id}/verify"),
            &auth,
            &format!("csrf_token={}", auth.csrf()),
        )
        .await;
    assert_eq!(form.status, StatusCode::SEE_OTHER, "{}", form.text());
    assert_eq!(form.location(), format!("/backups/{id}"));
    // Nothing to verify: not found, or refused.
    assert_eq!(
        app.post_json("/api/v1/backups/999/verify", &api, "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let missing = app
        .post_form(
            "/backups/999/verify",
            &auth,
            &format!("csrf_token={}", auth.csrf()),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text());
    app.stop().await;
}

#[tokio::test]
async fn a_backup_under_half_the_size_of_the_one_before_is_flagged_suspicious() {
    let app = App::start().await;
    let auth = app.login().await;
    let first = app.backup("app").await;
    // The first one was large (as if a table had been emptied since).
    rusqlite::Connection::open(app.sandbox.catalog_path())
        .unwrap()
        .execute(
            "UPDATE backups SET size_bytes = 100000000 WHERE id = ?1",
            [first],
        )
        .unwrap();
    let second = app.backup("app").await;
    let history = app.get("/backups", &auth).await.text();
    assert_eq!(history.matches(">suspicious</div>").count(), 1, "{history}");
    let page = app.get(&format!("/backups/{second}"), &auth).await.text();
    assert!(
        page.contains("suspicious: less than half the size"),
        "{page}"
    );
    let page = app.get(&format!("/backups/{first}"), &auth).await.text();
    assert!(!page.contains("suspicious"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_backup_page_names_its_instance_and_says_when_its_file_is_on_another() {
    let app = App::start().await;
    let auth = app.login().await;
    let id = app.backup("app").await;
    let page = app.get(&format!("/backups/{id}"), &auth).await.text();
    assert!(page.contains("(this instance)"), "{page}");
    assert!(!page.contains("class=\"whereabouts"), "{page}");
    // As if another machine's instance had made it: its file is not on this disk.
    let file = app.sandbox.db_dir("app").join(
        app.sandbox.rows_for("app")[0]["file_name"]
            .as_str()
            .unwrap(),
    );
    std::fs::remove_file(&file).unwrap();
    rusqlite::Connection::open(app.sandbox.catalog_path())
        .unwrap()
        .execute("UPDATE backups SET instance = 'web-2' WHERE id = ?1", [id])
        .unwrap();
    let page = app.get(&format!("/backups/{id}"), &auth).await.text();
    assert!(
        page.contains(
            "Its file is on the disk of instance web-2 only, and no off-site copy holds it"
        ),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_databases_are_a_table_most_urgent_first_a_page_at_a_time() {
    let mut more = String::from(
        "[[databases]]\nname = \"broken\"\nurl = \"sqlite:missing.db\"\nschedules = [\"0 0 1 1 *\"]\n",
    );
    for n in 0..148 {
        more.push_str(&format!(
            "[[databases]]\nname = \"db{n:03}\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
        ));
    }
    let app = App::start_with_databases("", &more).await;
    let auth = app.login().await;
    app.backup("app").await;
    let runner = Arc::clone(app.handle.as_ref().unwrap().runner());
    let failed = tokio::task::spawn_blocking(move || {
        runner.backup(
            "broken",
            &dbkeep::BackupOptions::default(),
            &dbkeep::stream::NoProgress,
        )
    })
    .await
    .unwrap();
    assert_eq!(
        failed.unwrap().record.status,
        dbkeep::catalog::Status::Failed,
        "a missing file cannot be backed up"
    );

    let first = app.get("/", &auth).await;
    assert_eq!(first.status, StatusCode::OK);
    let html = first.text();
    assert!(
        html.contains("151 databases · 1 failing · 149 unprotected · 1 protected"),
        "{html}"
    );
    assert!(html.contains("<table class=\"databases\">"), "{html}");
    assert!(
        !html.contains("class=\"card "),
        "no cards with this many databases"
    );
    assert!(html.contains("1–100 of 151"), "{html}");
    // Most urgent first: the failing database heads the table, the protected one is on page 2.
    let rows: Vec<&str> = html.split("<tr id=\"db-").skip(1).collect();
    assert_eq!(rows.len(), 100);
    assert!(rows[0].starts_with("broken\""), "{}", rows[0]);
    assert!(rows[0].contains("failing"), "{}", rows[0]);
    assert!(!html.contains("id=\"db-app\""));
    assert!(html.contains("href=\"/?page=2\" rel=\"next\""), "{html}");
    assert!(
        html.len() < 150_000,
        "a page of 100 databases stays small: {} bytes",
        html.len()
    );

    let second = app.get("/?page=2", &auth).await.text();
    assert!(second.contains("101–151 of 151"), "{second}");
    let last = second.split("<tr id=\"db-").last().unwrap();
    assert!(last.starts_with("app\""), "{last}");
    assert!(last.contains("protected"), "{last}");
    assert!(second.contains("href=\"/\" rel=\"prev\""), "{second}");
    assert!(!second.contains("rel=\"next\""));
    // A page past the end shows the last one.
    assert!(
        app.get("/?page=99", &auth)
            .await
            .text()
            .contains("101–151 of 151")
    );

    // One state at a time, with links that keep the filter.
    let failing = app.get("/?state=failing", &auth).await.text();
    assert_eq!(failing.matches("<tr id=\"db-").count(), 1, "{failing}");
    assert!(failing.contains("id=\"db-broken\""));
    assert!(failing.contains("1–1 of 1"));
    assert!(
        failing.contains("href=\"/?state=failing\" class=\"filter red\" aria-current=\"page\""),
        "{failing}"
    );
    let unprotected = app.get("/?state=unprotected&page=2", &auth).await.text();
    assert!(
        unprotected.contains("href=\"/?state=unprotected\" rel=\"prev\""),
        "{unprotected}"
    );
    assert!(!unprotected.contains("id=\"db-app\""));

    for (query, says) in [
        (
            "/?state=bogus",
            "unknown state `bogus` in the address; use one of failing, unprotected, stale, not_offsite, protected",
        ),
        ("/?page=two", "invalid page number in the address"),
    ] {
        let reply = app.get(query, &auth).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.text().contains(says), "{query}: {}", reply.text());
    }
    app.stop().await;
}

/// The app on a PostgreSQL catalog in a database of its own, and that database.
async fn on_postgres(tag: &str) -> (App, PgDb) {
    let catalog = PgDb::create(tag);
    let app = App::start_with(&format!("catalog = \"{}\"", catalog.url())).await;
    (app, catalog)
}

/// Whether a response body names the catalog or repeats the server's words.
#[track_caller]
fn assert_no_internals(body: &str, catalog: &PgDb, what: &str) {
    for internal in [
        catalog.name.as_str(),
        "postgres://",
        "127.0.0.1:",
        "UTF8",
        "relation",
    ] {
        assert_absent(body, internal, what);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_filter_matches_nothing_on_a_postgres_catalog_as_on_sqlite() {
    let (app, catalog) = on_postgres("web_nul").await;
    let auth = app.login().await;
    app.backup("app").await;
    let api = app.get("/api/v1/backups?database=%00", &auth).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.text());
    assert_eq!(api.json(), serde_json::json!([]));
    let page = app.get("/backups?database=%00", &auth).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_no_internals(&page.text(), &catalog, "the backups page");
    // The same filter with a real name still finds its backup.
    let found = app.get("/api/v1/backups?database=app", &auth).await.json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    // A user name with a NUL is no user, and the failed login is counted like any other.
    for _ in 0..2 {
        assert_eq!(
            app.try_login("ad%00min", PASSWORD).await,
            (StatusCode::UNAUTHORIZED, None)
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_catalog_answers_a_generic_error_without_its_url_or_the_servers_words() {
    let (app, catalog) = on_postgres("web_broken").await;
    let token = "dbk_test_token_broken_catalog";
    app.add_token("ci", token, Grant::everywhere(Role::Admin));
    let auth = Auth::Bearer(token.into());
    app.backup("app").await;
    // The backups' table goes (the accounts stay, so the token still logs in), and the
    // stamp's too, so that nothing read before is served from memory.
    catalog.psql(
        "ALTER TABLE backups RENAME TO backups_gone; ALTER TABLE catalog_stamp RENAME TO stamp_gone;",
    );
    for path in [
        "/api/v1/backups",
        "/api/v1/backups/1",
        "/api/v1/backups/1/log",
        "/api/v1/backups/1/download",
        "/api/v1/databases",
        "/backups",
        "/backups/1",
        "/",
        "/metrics",
        "/healthz",
    ] {
        let reply = app.get(path, &auth).await;
        assert!(
            reply.status == StatusCode::INTERNAL_SERVER_ERROR
                || (path == "/healthz" && reply.status == StatusCode::SERVICE_UNAVAILABLE),
            "{path}: {} {}",
            reply.status,
            reply.text()
        );
        let body = reply.text();
        assert!(
            body.contains("internal error") && body.contains("log"),
            "{path} does not say where the cause is: {body}"
        );
        assert_no_internals(&body, &catalog, path);
        if path.starts_with("/api/") || path == "/healthz" {
            assert!(reply.json()["error"].is_string(), "{path}: {body}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn health_without_a_login_counts_and_names_databases_only_behind_one() {
    let app = App::start().await;
    let public = app.get("/healthz", &Auth::None).await;
    assert_eq!(public.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        public.json(),
        serde_json::json!({
            "status": "unhealthy",
            "counts": {"stale": 2, "unverified": 0, "not_offsite": 0}
        })
    );
    for name in ["app", "other"] {
        assert_absent(&public.text(), name, "/healthz without a login");
    }
    // A logged-in user, or an API token, sees which databases.
    let token = "dbk_test_token_health_details";
    app.add_token("monitor", token, Grant::everywhere(Role::Admin));
    for auth in [app.login().await, Auth::Bearer(token.into())] {
        let inside = app.get("/healthz", &auth).await;
        assert_eq!(inside.status, StatusCode::SERVICE_UNAVAILABLE);
        let body = inside.json();
        assert_eq!(body["stale"], serde_json::json!(["app", "other"]), "{body}");
        assert_eq!(body["counts"]["stale"], 2, "{body}");
    }
    // A wrong token is no login: the counts only.
    let wrong = app
        .get("/healthz", &Auth::Bearer("dbk_not_a_token".into()))
        .await;
    assert_eq!(wrong.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(wrong.json().get("stale").is_none(), "{}", wrong.text());
    app.stop().await;

    // healthz_details = true names them to anyone.
    let open = App::start_with("healthz_details = true").await;
    let public = open.get("/healthz", &Auth::None).await;
    assert_eq!(public.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        public.json()["stale"],
        serde_json::json!(["app", "other"]),
        "{}",
        public.text()
    );
    open.stop().await;
}
