//! Roles, database scopes and the audit log, on both catalogs: every route answered for each
//! role as the route table says, scoped logins seeing only their databases, and the audit log
//! holding the story of an incident with its actors and addresses.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use dbkeep::accounts::{Databases, Grant, Role};
use dbkeep::audit::{Action, Outcome, Query};
use dbkeep::web::{Access, ROUTES};

use crate::common::*;
use crate::web::{App, Auth, Reply, hidden_csrf};

/// An app on the SQLite catalog, or on a fresh PostgreSQL one (kept alive beside it).
async fn app_on(postgres: bool) -> (App, Option<PgDb>) {
    if postgres {
        let catalog = PgDb::create("roles_catalog");
        let app = App::start_with(&format!("catalog = \"{}\"", catalog.url())).await;
        (app, Some(catalog))
    } else {
        (App::start().await, None)
    }
}

fn grant(role: Role, databases: &str) -> Grant {
    Grant {
        role,
        databases: Databases::parse(databases).unwrap(),
    }
}

/// The request for `method path` by `auth`, with a body that passes the form or JSON checks.
async fn ask(app: &App, method: &str, path: &str, auth: &Auth) -> Reply {
    let builder = auth.apply(Request::builder().method(method).uri(path));
    let request = match (method, path.starts_with("/api/")) {
        ("POST", true) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(if path == "/api/v1/backups" {
                r#"{"database": "app"}"#.to_string()
            } else {
                "{}".to_string()
            })),
        ("POST", false) => builder
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf_token={}", auth.csrf()))),
        _ => builder.body(Body::empty()),
    };
    app.send(request.unwrap()).await
}

fn audit_rows(app: &App, action: Action) -> Vec<dbkeep::audit::Row> {
    app.catalog()
        .audit(&Query {
            action: Some(action),
            limit: 1000,
            ..Query::default()
        })
        .unwrap()
}

async fn every_route_answers_each_role_as_the_table_says(postgres: bool) {
    let (app, _catalog) = app_on(postgres).await;
    let id = app.backup("app").await;
    let mut callers = Vec::new();
    for role in Role::ALL {
        let user = format!("{role}-user");
        app.add_user(&user, Grant::everywhere(role));
        callers.push((role, format!("user {user}"), app.login_as(&user).await));
        let token = format!("dbk_{role}_token_0123456789");
        app.add_token(&format!("{role}-token"), &token, Grant::everywhere(role));
        callers.push((role, format!("token of {role}"), Auth::Bearer(token)));
    }
    // A restore to follow at /restores/{rid}: into a new file beside app's.
    let admin_token = &callers.last().unwrap().2;
    let started = app
        .post_json(
            &format!("/api/v1/backups/{id}/restore"),
            admin_token,
            r#"{"to": "new", "name": "matrix_copy"}"#,
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
    let rid = started.json()["id"].as_i64().unwrap().to_string();
    let concrete = |p: &str| {
        p.replace("{id}", &id.to_string())
            .replace("{rid}", &rid)
            .replace("{name}", "app")
            .replace("{user}", "nobody")
    };
    let mut checked = 0;
    for route in ROUTES {
        let Access::Needs(needed) = route.access else {
            continue;
        };
        // Logging out ends the session the other routes are asked with: checked last.
        if route.path == "/logout" {
            continue;
        }
        for (role, who, auth) in &callers {
            let reply = ask(&app, route.method, &concrete(route.path), auth).await;
            let what = format!("{} {} by {who}", route.method, route.path);
            if *role >= needed {
                assert!(
                    ![StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED].contains(&reply.status),
                    "{what}: {} {}",
                    reply.status,
                    reply.text()
                );
                assert!(!reply.location().contains("/login"), "{what}");
                if route.method == "GET" && route.path != "/databases" {
                    assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.text());
                }
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{what}: {}",
                    reply.text()
                );
                assert!(
                    reply
                        .text()
                        .contains(&format!("the {role} role may not do this")),
                    "{what}: {}",
                    reply.text()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 6 * 25, "only {checked} answers checked");
    // Each page shows only the buttons its viewer may use.
    let session = |role: Role| {
        &callers
            .iter()
            .find(|c| c.0 == role && matches!(c.2, Auth::Session(..)))
            .unwrap()
            .2
    };
    let viewer_page = app
        .get(&format!("/backups/{id}"), session(Role::Viewer))
        .await
        .text();
    assert!(!viewer_page.contains("/download\""), "{viewer_page}");
    assert!(!viewer_page.contains("Verify now"), "{viewer_page}");
    let viewer_home = app.get("/", session(Role::Viewer)).await.text();
    assert!(!viewer_home.contains("Back up now") && !viewer_home.contains("/audit\""));
    let operator_page = app
        .get(&format!("/backups/{id}"), session(Role::Operator))
        .await
        .text();
    assert!(operator_page.contains("/download\"") && operator_page.contains("Verify now"));
    assert!(!operator_page.contains("/users\""), "{operator_page}");
    let admin_home = app.get("/", session(Role::Admin)).await.text();
    assert!(admin_home.contains("/users\"") && admin_home.contains("/audit\""));
    // The admin's pages: every user with its role, every token with its scope, and the log.
    let users = app.get("/users", session(Role::Admin)).await.text();
    for want in [
        "viewer-user",
        "operator-token",
        "<strong>operator</strong>",
        "all databases",
    ] {
        assert!(users.contains(want), "{want}: {users}");
    }
    assert!(!users.contains("dbk_"), "the users page shows a token");
    let audit = app
        .get("/audit?action=download", session(Role::Admin))
        .await
        .text();
    assert!(
        audit.contains("user:viewer-user") && audit.contains("refused"),
        "{audit}"
    );
    assert!(!audit.contains("<td>login</td>"), "{audit}");
    assert!(audit.contains("<td>download</td>"), "{audit}");
    let bad = app.get("/audit?action=explode", session(Role::Admin)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Every role may log out.
    for (_, who, auth) in callers.iter().filter(|c| matches!(c.2, Auth::Session(..))) {
        let reply = ask(&app, "POST", "/logout", auth).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "logout by {who}");
    }

    // A viewer's download was refused, and the audit log has the attempt; an operator's went
    // through, from the local file.
    let downloads = audit_rows(&app, Action::Download);
    let target = format!("backup:{id}");
    let by = |actor: &str, outcome: Outcome| {
        downloads
            .iter()
            .filter(|r| r.entry.actor == actor && r.entry.outcome == outcome)
            .filter(|r| r.entry.target == target)
            .count()
    };
    assert_eq!(
        by("user:viewer-user", Outcome::Refused),
        2,
        "{downloads:#?}"
    );
    let refused_tokens = downloads
        .iter()
        .filter(|r| r.entry.actor.starts_with("token:viewer-token#"))
        .filter(|r| r.entry.outcome == Outcome::Refused)
        .count();
    assert_eq!(refused_tokens, 2, "{downloads:#?}");
    assert_eq!(by("user:operator-user", Outcome::Ok), 2, "{downloads:#?}");
    let ok = downloads
        .iter()
        .find(|r| r.entry.outcome == Outcome::Ok)
        .unwrap();
    assert!(
        ok.entry
            .detail
            .as_deref()
            .unwrap()
            .contains("from the local file"),
        "{ok:?}"
    );
    let refusal = downloads
        .iter()
        .find(|r| r.entry.outcome == Outcome::Refused)
        .unwrap();
    assert!(
        refusal
            .entry
            .detail
            .as_deref()
            .unwrap()
            .contains("needs an operator"),
        "{refusal:?}"
    );
    // Pins by an operator were refused and recorded as such; an admin's pin is recorded done.
    let pins = audit_rows(&app, Action::Pin);
    assert!(
        pins.iter()
            .any(|r| r.entry.actor == "user:operator-user" && r.entry.outcome == Outcome::Refused)
    );
    assert!(
        pins.iter()
            .any(|r| r.entry.actor == "user:admin-user" && r.entry.outcome == Outcome::Ok),
        "{pins:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_table_says_on_sqlite() {
    every_route_answers_each_role_as_the_table_says(false).await;
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_table_says_on_postgres() {
    every_route_answers_each_role_as_the_table_says(true).await;
}

#[test]
fn the_route_table_lists_every_api_route_of_the_openapi_document() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../crates/dbkeep-web/src/web/openapi.json")).unwrap();
    let mut documented = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), format!("/api/v1{path}")));
        }
    }
    documented.sort();
    let mut listed: Vec<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    listed.sort();
    assert_eq!(listed, documented);
    for (method, path) in &documented {
        let route = dbkeep::web::find_route(method, path).unwrap();
        assert!(
            matches!(route.access, Access::Needs(_)),
            "{method} {path} has no role"
        );
    }
}

#[tokio::test]
async fn a_login_limited_to_some_databases_sees_and_acts_on_only_those() {
    let app = App::start().await;
    let app_id = app.backup("app").await;
    let other_id = app.backup("other").await;
    app.add_user("shop", grant(Role::Operator, "oth*"));
    let shop = app.login_as("shop").await;
    app.add_token(
        "shop-token",
        "dbk_shop_token_0123456789",
        grant(Role::Operator, "other"),
    );
    let token = Auth::Bearer("dbk_shop_token_0123456789".into());

    assert_eq!(
        app.get(&format!("/backups/{other_id}"), &shop).await.status,
        StatusCode::OK
    );
    for path in [
        format!("/backups/{app_id}"),
        format!("/backups/{app_id}/download"),
        format!("/api/v1/backups/{app_id}"),
    ] {
        for auth in [&shop, &token] {
            assert_eq!(
                app.get(&path, auth).await.status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }
    let overview = app.get("/", &shop).await.text();
    assert!(overview.contains("other"), "{overview}");
    assert!(!overview.contains("/databases/app/"), "{overview}");
    let listed = app.get("/api/v1/databases", &token).await.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other"]);
    let backups = app.get("/api/v1/backups", &token).await.json();
    let ids: Vec<i64> = backups
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [other_id]);
    let started = app
        .post_json("/api/v1/backups", &token, r#"{"database": "app"}"#)
        .await;
    assert_eq!(started.status, StatusCode::NOT_FOUND, "{}", started.text());
    let reply = app
        .post_form(
            "/databases/app/backup",
            &shop,
            &format!("csrf_token={}", shop.csrf()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // The metrics name every database: not for a scoped login.
    assert_eq!(
        app.get("/metrics", &token).await.status,
        StatusCode::FORBIDDEN
    );
    // Each refusal is in the audit log, with the database that was out of reach.
    let refused: Vec<_> = app
        .catalog()
        .audit(&Query {
            limit: 100,
            ..Query::default()
        })
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.outcome == Outcome::Refused)
        .collect();
    assert!(
        refused.iter().any(|r| r.entry.action == Action::Download
            && r.entry.actor == "user:shop"
            && r.entry.detail.as_deref().unwrap().contains("database app")),
        "{refused:#?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.entry.action == Action::Backup && r.entry.target == "app"),
        "{refused:#?}"
    );
    app.stop().await;
}

/// Logs in as `user` with `password` from `addr`; the reply's status and session cookie.
async fn login_from(
    app: &App,
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> (StatusCode, Option<String>) {
    let form = app.get("/login", &Auth::None).await;
    let csrf = form.cookie("dbkeep_login_csrf").unwrap();
    assert_eq!(hidden_csrf(&form.text()), csrf);
    let body = format!(
        "username={user}&password={}&csrf_token={csrf}&next=/",
        password.replace(' ', "+")
    );
    let mut request = Auth::LoginCsrf(csrf)
        .apply(Request::post("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::USER_AGENT, "incident-browser/1.0")
        .body(Body::from(body))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    let reply = app.send(request).await;
    (reply.status, reply.cookie("dbkeep_session"))
}

async fn the_audit_log_tells_the_story_of_an_incident(postgres: bool) {
    let (app, _catalog) = app_on(postgres).await;
    let id = app.backup("app").await;
    app.add_user("mallory", Grant::everywhere(Role::Operator));
    let attacker: SocketAddr = "192.0.2.66:40000".parse().unwrap();
    let office: SocketAddr = "198.51.100.7:50000".parse().unwrap();
    // Two failed logins, then one that works, and a download.
    let (status, _) = login_from(&app, attacker, "mallory", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = login_from(&app, attacker, "nobody", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, cookie) = login_from(&app, office, "mallory", "correct horse battery").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = Auth::Session(cookie.unwrap(), String::new());
    let mut request = session
        .apply(Request::get(format!("/backups/{id}/download")))
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(office));
    assert_eq!(app.send(request).await.status, StatusCode::OK);
    // A restore from the shell, by this Unix user.
    let to = app.sandbox.path().join("restored.db");
    app.sandbox
        .run(&["restore", &id.to_string(), "--to", to.to_str().unwrap()])
        .assert_success();
    let failed_restore =
        app.sandbox
            .run(&["restore", &id.to_string(), "--to", to.to_str().unwrap()]);
    assert_ne!(
        failed_restore.code,
        Some(0),
        "a second restore over the file must refuse"
    );

    let run = app.sandbox.run(&["audit", "--json", "--limit", "20"]);
    run.assert_success();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let story: Vec<(String, String, String, String, String)> = rows
        .iter()
        .rev()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (
                s("actor"),
                s("action"),
                s("target"),
                s("outcome"),
                s("source"),
            )
        })
        .collect();
    let me = dbkeep::audit::cli_actor();
    let want = [
        ("anonymous", "login", "mallory", "failed", "192.0.2.66"),
        ("anonymous", "login", "nobody", "failed", "192.0.2.66"),
        ("user:mallory", "login", "mallory", "ok", "198.51.100.7"),
        (
            "user:mallory",
            "download",
            &*format!("backup:{id}"),
            "ok",
            "198.51.100.7",
        ),
        (&*me, "restore", &*format!("backup:{id}"), "ok", ""),
        (&*me, "restore", &*format!("backup:{id}"), "failed", ""),
    ];
    let want: Vec<(String, String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d, e)| {
            (
                a.to_string(),
                b.to_string(),
                c.to_string(),
                d.to_string(),
                e.to_string(),
            )
        })
        .collect();
    assert_eq!(story, want, "{}", run.stdout);
    let first = &rows[rows.len() - 1];
    assert_eq!(first["detail"], "wrong password");
    assert_eq!(rows[rows.len() - 2]["detail"], "no such user");
    assert_eq!(first["user_agent"], "incident-browser/1.0");
    assert!(
        rows[0]["detail"].as_str().unwrap().contains("to "),
        "{}",
        rows[0]
    );
    assert!(rows.iter().all(|r| !r["time"].as_str().unwrap().is_empty()));
    // Filters: by actor, by action, by time.
    let by_user = app
        .sandbox
        .run(&["audit", "--json", "--actor", "user:mallory"]);
    let n = serde_json::from_str::<Vec<serde_json::Value>>(&by_user.stdout)
        .unwrap()
        .len();
    assert_eq!(n, 2);
    let logins = app.sandbox.run(&["audit", "--action", "login"]);
    logins.assert_success();
    assert_eq!(logins.stdout.lines().count(), 3, "{}", logins.stdout);
    assert!(
        logins.stdout.contains("from 192.0.2.66"),
        "{}",
        logins.stdout
    );
    let later = app.sandbox.run(&["audit", "--since", "2999-01-01"]);
    assert!(
        later.stdout.contains("no audit rows match"),
        "{}",
        later.stdout
    );
    let bad = app.sandbox.run(&["audit", "--action", "explode"]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("explode"), "{}", bad.stderr);
    app.stop().await;
}

#[tokio::test]
async fn the_audit_log_tells_the_story_of_an_incident_on_sqlite() {
    the_audit_log_tells_the_story_of_an_incident(false).await;
}

#[tokio::test]
async fn the_audit_log_tells_the_story_of_an_incident_on_postgres() {
    the_audit_log_tells_the_story_of_an_incident(true).await;
}

#[test]
fn users_and_tokens_get_roles_databases_and_expiry_from_the_command_line() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    let pw = "a long enough password\n";
    // The first user is an admin; the next a viewer unless told.
    sandbox
        .run_with_stdin(&["user", "add", "root"], pw)
        .assert_success();
    sandbox
        .run_with_stdin(&["user", "add", "watcher"], pw)
        .assert_success();
    sandbox
        .run_with_stdin(
            &[
                "user",
                "add",
                "shop",
                "--role",
                "operator",
                "--databases",
                "app,tenants-*",
            ],
            pw,
        )
        .assert_success();
    let list = sandbox.run(&["user", "list"]);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(
        lines[0].starts_with("root  admin of all databases"),
        "{}",
        list.stdout
    );
    assert!(
        lines[1].starts_with("shop  operator of app,tenants-*"),
        "{}",
        list.stdout
    );
    assert!(
        lines[2].starts_with("watcher  viewer of all databases"),
        "{}",
        list.stdout
    );
    let bad = sandbox.run_with_stdin(&["user", "add", "x", "--role", "root"], pw);
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("`root` is not a role"),
        "{}",
        bad.stderr
    );
    let bad = sandbox.run_with_stdin(&["user", "add", "x", "--databases", "a b"], pw);
    bad.assert_code(2);
    assert!(bad.stderr.contains("`a b`"), "{}", bad.stderr);
    // The last admin cannot be demoted.
    let refused = sandbox.run(&["user", "set-role", "root", "--role", "viewer"]);
    refused.assert_code(2);
    assert!(refused.stderr.contains("only admin"), "{}", refused.stderr);
    sandbox
        .run(&["user", "set-role", "watcher", "--role", "admin"])
        .assert_success();
    sandbox
        .run(&["user", "set-role", "root", "--role", "viewer"])
        .assert_success();

    let created = sandbox.run(&["token", "create", "ci", "--expires", "90d"]);
    created.assert_success();
    let secret = created.stdout.lines().last().unwrap().to_string();
    assert!(secret.starts_with("dbk_"), "{}", created.stdout);
    assert!(
        created.stdout.contains("operator of all databases"),
        "{}",
        created.stdout
    );
    sandbox
        .run(&[
            "token",
            "create",
            "ro",
            "--role",
            "viewer",
            "--databases",
            "app",
        ])
        .assert_success();
    let tokens = sandbox.run(&["token", "list"]);
    assert!(
        !tokens.stdout.contains(&secret),
        "a token list shows a secret"
    );
    let ci = tokens
        .stdout
        .lines()
        .find(|l| l.starts_with("ci "))
        .unwrap();
    assert!(
        ci.contains("operator of all databases") && ci.contains("expires 20"),
        "{ci}"
    );
    assert!(ci.contains("never used"), "{ci}");
    let ro = tokens
        .stdout
        .lines()
        .find(|l| l.starts_with("ro "))
        .unwrap();
    assert!(
        ro.contains("viewer of app") && ro.contains("never expires"),
        "{ro}"
    );
    let bad = sandbox.run(&["token", "create", "x", "--expires", "soon"]);
    bad.assert_code(2);
    assert!(bad.stderr.contains("`soon`"), "{}", bad.stderr);

    // Each change is in the audit log, by this Unix user, never with a secret.
    let audit = sandbox.run(&["audit", "--json"]);
    audit.assert_success();
    assert!(!audit.stdout.contains(&secret));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&audit.stdout).unwrap();
    let actions: Vec<&str> = rows
        .iter()
        .rev()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user_add",
            "user_add",
            "user_add",
            "user_change",
            "user_change",
            "token_create",
            "token_create"
        ]
    );
    let me = dbkeep::audit::cli_actor();
    assert!(
        rows.iter().all(|r| r["actor"] == me.as_str()),
        "{}",
        audit.stdout
    );
}

#[tokio::test]
async fn serve_prunes_audit_rows_older_than_audit_retention_at_start() {
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    sandbox.write_config(
        "audit_retention = \"60d\"\n[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n",
    );
    sandbox.run(&["list"]).assert_success();
    let old = (chrono::Utc::now() - chrono::Duration::days(61)).format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let kept = (chrono::Utc::now() - chrono::Duration::days(59)).format("%Y-%m-%dT%H:%M:%S%.3fZ");
    rusqlite::Connection::open(sandbox.catalog_path())
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO audit_log (at, actor, action, target, outcome) VALUES
             ('{old}', 'cli:old', 'login', 'a', 'ok'), ('{kept}', 'cli:kept', 'login', 'b', 'ok');"
        ))
        .unwrap();
    let config = dbkeep::Config::load(&sandbox.config_path()).unwrap();
    let handle = dbkeep::Service::from_config(config)
        .unwrap()
        .start()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pruned = loop {
        let rows = handle
            .runner()
            .catalog()
            .audit(&Query {
                action: Some(Action::AuditPrune),
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        if !rows.is_empty() || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(pruned.len(), 1, "no prune was recorded");
    assert_eq!(pruned[0].entry.actor, "scheduler");
    assert_eq!(
        pruned[0].entry.detail.as_deref(),
        Some("1 row(s) older than 60 days")
    );
    let actors: Vec<String> = handle
        .runner()
        .catalog()
        .audit(&Query {
            limit: 100,
            ..Query::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.entry.actor)
        .collect();
    assert!(actors.contains(&"cli:kept".to_string()), "{actors:?}");
    assert!(!actors.contains(&"cli:old".to_string()), "{actors:?}");
    handle.shutdown().await;
}
