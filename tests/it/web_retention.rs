//! Retention in the web admin and the API: pins from a backup's page and from the API, where
//! each backup is still kept, the retention page's calendar and table, and its prune buttons
//! (a held prune let go by Confirm prune). Every new route is behind the login.

use std::fs;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{Duration, NaiveDate, Utc};
use serde_json::Value;

use crate::common::*;
use crate::web::{App, Auth};
use dbkeep::accounts::{Grant, Role};

/// SQLite backup files named as the original design named them
/// (`sqlite_backup_YYYYMMDD_000000.db`), one for each of `days`, each a little different.
pub(crate) fn dated_backups(dir: &Path, days: &[NaiveDate]) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    let sample = dir.join("sample.sqlite3");
    if !sample.exists() {
        create_sample_sqlite(&sample);
    }
    days.iter()
        .map(|day| {
            let file = dir.join(format!("sqlite_backup_{}_000000.db", day.format("%Y%m%d")));
            fs::copy(&sample, &file).unwrap();
            let conn = rusqlite::Connection::open(&file).unwrap();
            conn.execute("INSERT INTO users (name) VALUES (?1)", [day.to_string()])
                .unwrap();
            file
        })
        .collect()
}

/// Imports one backup file for each of `days` into `database` with one command.
fn import(sandbox: &Sandbox, database: &str, days: &[NaiveDate]) {
    let files = dated_backups(&sandbox.path().join("old"), days);
    let mut cmd = sandbox.cmd();
    cmd.args(["import", "-d", database]).args(&files);
    run_cmd(&mut cmd).assert_success();
}

/// Today in UTC (the tests' configured zone), and `n` days before it.
fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn days_ago(n: i64) -> NaiveDate {
    today() - Duration::days(n)
}

/// The catalog row of the backup taken on `day`.
fn row_of(sandbox: &Sandbox, database: &str, day: NaiveDate) -> Value {
    let prefix = day.format("%Y-%m-%d").to_string();
    sandbox
        .rows_for(database)
        .into_iter()
        .find(|r| r["started_at"].as_str().unwrap().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no backup of {database} on {prefix}"))
}

/// The class attribute of the calendar cell of `day` in `destination`'s calendar.
fn cell_class(page: &str, destination: &str, day: NaiveDate) -> String {
    let section = page
        .split(&format!(
            "<section class=\"destination\" id=\"dest-{destination}\">"
        ))
        .nth(1)
        .unwrap_or_else(|| panic!("no section for {destination}:\n{page}"));
    let section = section.split("</section>").next().unwrap();
    let marker = format!("data-date=\"{}\"", day.format("%Y-%m-%d"));
    let at = section
        .find(&marker)
        .unwrap_or_else(|| panic!("no cell for {marker}:\n{section}"));
    let start = section[..at].rfind("<span class=\"").unwrap() + "<span class=\"".len();
    section[start..].split('"').next().unwrap().to_string()
}

/// The tooltip of the calendar cell of `day` (its `title`, as the page escaped it).
fn cell_title(page: &str, day: NaiveDate) -> String {
    let marker = format!("data-date=\"{}\" title=\"", day.format("%Y-%m-%d"));
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no titled cell {marker}"))
        + marker.len();
    page[at..].split('"').next().unwrap().to_string()
}

fn csrf_form(auth: &Auth, rest: &str) -> String {
    format!("csrf_token={}{rest}", auth.csrf())
}

#[tokio::test]
async fn pins_from_the_backup_page_and_the_api_show_in_the_pages_and_the_list() {
    let app = App::start_with_databases(
        "",
        "[[databases]]\nname = \"broken\"\nurl = \"sqlite:missing.db\"\nschedules = [\"0 0 1 1 *\"]\n",
    )
    .await;
    let auth = app.login().await;
    let id = app.backup("app").await;
    let page = app.get(&format!("/backups/{id}"), &auth).await;
    assert_eq!(page.status, StatusCode::OK);
    let page = page.text();
    assert!(
        page.contains(&format!("action=\"/backups/{id}/pin\"")),
        "{page}"
    );
    assert!(page.contains("name=\"note\""), "{page}");
    // Where it is kept: here only.
    assert!(
        page.contains("<dt>Kept at</dt><dd class=\"where\"><span class=\"loc\">local</span></dd>"),
        "{page}"
    );

    // The form: CSRF first, then the pin with its note, back to the page.
    let pin = format!("/backups/{id}/pin");
    assert_eq!(
        app.post_form(&pin, &auth, "csrf_token=nope&note=x")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let note = "before the <b>migration</b> & after";
    let form = csrf_form(
        &auth,
        &format!(
            "&note={}",
            url::form_urlencoded::byte_serialize(note.as_bytes()).collect::<String>()
        ),
    );
    let pinned = app.post_form(&pin, &auth, &form).await;
    assert_eq!(pinned.status, StatusCode::SEE_OTHER, "{}", pinned.text());
    assert_eq!(pinned.location(), format!("/backups/{id}"));
    let row = &app.sandbox.rows_for("app")[0];
    assert_eq!(row["pinned"], true, "{row:#}");
    assert_eq!(row["pin_note"], note, "{row:#}");

    // The backup's page and the history show the pin and its note, escaped.
    let escaped = "before the &#60;b&#62;migration&#60;/b&#62; &#38; after";
    let page = app.get(&format!("/backups/{id}"), &auth).await.text();
    assert!(!page.contains("<b>migration"), "{page}");
    assert!(
        page.contains(&format!(
            "<span class=\"badge-small pinned\">pinned</span> <span class=\"note\">{escaped}</span>"
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!("action=\"/backups/{id}/unpin\"")),
        "{page}"
    );
    let history = app.get("/backups?database=app", &auth).await.text();
    assert!(!history.contains("<b>migration"), "{history}");
    assert!(
        history.contains(&format!(
            "<span class=\"badge-small pinned\">pinned: <span class=\"note\">{escaped}</span></span>"
        )),
        "{history}"
    );
    assert!(
        history.contains("<div class=\"where\">kept at <span class=\"loc\">local</span></div>"),
        "{history}"
    );
    assert!(
        history.contains("href=\"/databases/app/retention\""),
        "{history}"
    );
    // A note the page cannot keep: refused, the pin stands as it was.
    let long = csrf_form(&auth, &format!("&note={}", "x".repeat(501)));
    assert_eq!(
        app.post_form(&pin, &auth, &long).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.sandbox.rows_for("app")[0]["pin_note"], note);

    // Unpin, back to the page; the note is forgotten.
    let unpinned = app
        .post_form(
            &format!("/backups/{id}/unpin"),
            &auth,
            &csrf_form(&auth, ""),
        )
        .await;
    assert_eq!(
        unpinned.status,
        StatusCode::SEE_OTHER,
        "{}",
        unpinned.text()
    );
    assert_eq!(unpinned.location(), format!("/backups/{id}"));
    let row = &app.sandbox.rows_for("app")[0];
    assert_eq!(row["pinned"], false, "{row:#}");
    assert!(row["pin_note"].is_null(), "{row:#}");
    let history = app.get("/backups?database=app", &auth).await.text();
    assert!(!history.contains("badge-small pinned"), "{history}");

    // The API, with a token: the backup as it is now, every time.
    let token = "dbk_pin_token_0123456789";
    app.add_token("pins", token, Grant::everywhere(Role::Admin));
    let api = Auth::Bearer(token.into());
    let path = format!("/api/v1/backups/{id}/pin");
    let answer = app
        .post_json(&path, &api, r#"{"note": "  kept for the audit  "}"#)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["id"], id);
    assert_eq!(body["pinned"], true);
    assert_eq!(body["pin_note"], "kept for the audit");
    let row = &app.sandbox.rows_for("app")[0];
    assert_eq!(row["pinned"], true, "{row:#}");
    assert_eq!(row["pin_note"], "kept for the audit", "{row:#}");
    // Without a note; and what is not a note is refused.
    let answer = app.post_json(&path, &api, "{}").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.json()["pin_note"].is_null());
    for bad in [
        r#"{"note": "two\nlines"}"#,
        r#"{"note": 12}"#,
        r#"{"notes": "x"}"#,
        "not json",
        "",
    ] {
        let answer = app.post_json(&path, &api, bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(answer.json()["error"].is_string(), "{bad:?}");
    }
    assert_eq!(
        app.post_json("/api/v1/backups/9999/pin", &api, "{}")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Only a successful backup can be pinned.
    app.sandbox.run(&["backup", "-d", "broken"]).assert_code(1);
    let failed = app.sandbox.rows_for("broken")[0]["id"].as_i64().unwrap();
    let refused = app
        .post_json(&format!("/api/v1/backups/{failed}/pin"), &api, "{}")
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
    let page = app.get(&format!("/backups/{failed}"), &auth).await.text();
    assert!(!page.contains("/pin\""), "{page}");
    // A browser session may use the API too, but not from another site.
    let Auth::Session(session, _) = &auth else {
        unreachable!()
    };
    let cross = Request::post(format!("/api/v1/backups/{id}/unpin"))
        .header(header::HOST, "127.0.0.1:7878")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, format!("dbkeep_session={session}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(cross).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.sandbox.rows_for("app")[0]["pinned"], true);
    let answer = app
        .post_json(&format!("/api/v1/backups/{id}/unpin"), &auth, "")
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["pinned"], false);
    assert_eq!(app.sandbox.rows_for("app")[0]["pinned"], false);
    assert_eq!(
        app.post_json("/api/v1/backups/9999/unpin", &api, "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn the_retention_page_draws_each_day_and_confirm_prune_lets_a_held_prune_go() {
    let app = App::start_with("retention_days = 0").await;
    let auth = app.login().await;
    // Three days of backups under a policy that keeps the newest only: the first prune would
    // delete two of three, so it is held.
    import(&app.sandbox, "app", &[days_ago(2), days_ago(1), today()]);
    let page = app.get("/databases/app/retention", &auth).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let page = page.text();
    for word in [
        "kept",
        "will be pruned",
        "prune held",
        "pinned",
        "pruned earlier",
        "no backup",
    ] {
        assert!(
            page.contains(&format!("<span class=\"word\">{word}</span>")),
            "legend without {word}:\n{page}"
        );
    }
    assert!(
        page.contains("Policy: <code>retention_days 0, keep_last 1</code>"),
        "{page}"
    );
    assert!(page.contains("held: the policy"), "{page}");
    assert_eq!(cell_class(&page, "local", days_ago(2)), "day held");
    assert_eq!(cell_class(&page, "local", today()), "day keep");
    let title = cell_title(&page, today());
    assert!(
        title.contains(&format!(
            "sqlite_backup_{}_000000.db",
            today().format("%Y%m%d")
        )) && title.contains("newest good backup"),
        "{title}"
    );
    assert!(page.contains("Confirm prune (2 to delete)"), "{page}");
    assert!(page.contains("name=\"expect\" value=\"2\""), "{page}");
    // Every decision in the table, with its reasons.
    assert_eq!(page.matches("<tr class=\"held\"").count(), 2, "{page}");
    assert!(page.contains("<span class=\"state\">held</span>"), "{page}");

    // A confirmation made for fewer deletions than there are now prunes nothing.
    let stale = app
        .post_form(
            "/databases/app/prune",
            &auth,
            &csrf_form(&auth, "&confirm=yes&expect=1"),
        )
        .await;
    assert_eq!(stale.status, StatusCode::SEE_OTHER);
    assert_eq!(stale.location(), "/databases/app/retention?changed=1");
    assert_eq!(file_names(&app.sandbox.db_dir("app")).len(), 3);
    let page = app.get(&stale.location(), &auth).await.text();
    assert!(page.contains("Nothing was pruned"), "{page}");

    // CSRF first; then Confirm prune lets the held prune go, and says how many went.
    assert_eq!(
        app.post_form("/databases/app/prune", &auth, "confirm=yes")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let confirmed = app
        .post_form(
            "/databases/app/prune",
            &auth,
            &csrf_form(&auth, "&confirm=yes&expect=2"),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        confirmed.location(),
        "/databases/app/retention?pruned=2&failed=0&held=0"
    );
    let files = file_names(&app.sandbox.db_dir("app"));
    assert_eq!(
        files,
        [format!(
            "sqlite_backup_{}_000000.db",
            today().format("%Y%m%d")
        )]
    );
    let page = app.get(&confirmed.location(), &auth).await.text();
    assert!(page.contains("Pruned 2 backup copies."), "{page}");
    assert!(!page.contains("held: the policy"), "{page}");
    assert!(!page.contains("Confirm prune"), "{page}");
    assert_eq!(cell_class(&page, "local", days_ago(2)), "day gone");
    assert_eq!(cell_class(&page, "local", today()), "day keep");
    // The history says where each backup still is.
    let history = app.get("/backups?database=app", &auth).await.text();
    assert_eq!(
        history.matches("<span class=\"loc\">local</span>").count(),
        1
    );
    assert_eq!(
        history
            .matches("<span class=\"state\">pruned</span>")
            .count(),
        2
    );

    // Older backups brought in, one of them pinned: the page marks a day to be pruned and the
    // pinned day, and Prune now deletes what it said.
    import(
        &app.sandbox,
        "app",
        &[days_ago(6), days_ago(5), days_ago(4)],
    );
    let pinned = row_of(&app.sandbox, "app", days_ago(5))["id"]
        .as_i64()
        .unwrap();
    app.sandbox
        .run(&["pin", &pinned.to_string(), "--note", "before the upgrade"])
        .assert_success();
    let page = app.get("/databases/app/retention", &auth).await.text();
    assert_eq!(cell_class(&page, "local", days_ago(6)), "day prune");
    assert_eq!(cell_class(&page, "local", days_ago(5)), "day pinned");
    assert_eq!(cell_class(&page, "local", days_ago(4)), "day prune");
    assert_eq!(cell_class(&page, "local", days_ago(3)), "day none");
    assert_eq!(cell_class(&page, "local", days_ago(2)), "day gone");
    assert!(
        cell_title(&page, days_ago(5)).ends_with(&format!(
            "sqlite_backup_{}_000000.db (#{pinned}): keep (pinned): pinned (note: before the upgrade)",
            days_ago(5).format("%Y%m%d")
        )),
        "{page}"
    );
    assert!(
        page.contains("pinned: <span class=\"note\">before the upgrade</span>"),
        "{page}"
    );
    assert!(!page.contains("Confirm prune"), "{page}");
    assert!(page.contains(">Prune now</button>"), "{page}");
    // A preview of a month later: nothing to press there.
    let later = (today() + Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let preview = app
        .get(&format!("/databases/app/retention?at={later}"), &auth)
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    let preview = preview.text();
    assert!(
        preview.contains(&format!(
            "as the policies would decide at the end of {later}"
        )),
        "{preview}"
    );
    assert!(!preview.contains(">Prune now</button>"), "{preview}");
    assert_eq!(
        app.get("/databases/app/retention?at=soon", &auth)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let now = app
        .post_form("/databases/app/prune", &auth, &csrf_form(&auth, ""))
        .await;
    assert_eq!(now.status, StatusCode::SEE_OTHER);
    assert_eq!(
        now.location(),
        "/databases/app/retention?pruned=2&failed=0&held=0"
    );
    let mut kept: Vec<String> = app
        .sandbox
        .rows_for("app")
        .into_iter()
        .filter(|r| r["pruned_at"].is_null())
        .map(|r| r["file_name"].as_str().unwrap().to_string())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            format!("sqlite_backup_{}_000000.db", days_ago(5).format("%Y%m%d")),
            format!("sqlite_backup_{}_000000.db", today().format("%Y%m%d")),
        ]
    );
    assert_eq!(file_names(&app.sandbox.db_dir("app")), kept);
    // The overview's card links here; an unknown database has no page.
    let overview = app.get("/", &auth).await.text();
    assert!(
        overview.contains("href=\"/databases/app/retention\""),
        "{overview}"
    );
    assert_eq!(
        app.get("/databases/nope/retention", &auth).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_form("/databases/nope/prune", &auth, &csrf_form(&auth, ""))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn the_new_routes_refuse_without_a_login_and_forms_without_their_token() {
    let app = App::start().await;
    let id = app.backup("app").await;
    let routes = [
        ("POST", format!("/backups/{id}/pin")),
        ("POST", format!("/backups/{id}/unpin")),
        ("GET", "/databases/app/retention".to_string()),
        ("POST", "/databases/app/prune".to_string()),
        ("POST", format!("/api/v1/backups/{id}/pin")),
        ("POST", format!("/api/v1/backups/{id}/unpin")),
    ];
    for (method, path) in &routes {
        assert!(
            dbkeep::web::ROUTES.iter().any(|r| r.method == *method
                && r.access != dbkeep::web::Access::Public
                && r.path
                    .replace("{id}", &id.to_string())
                    .replace("{name}", "app")
                    == *path),
            "{method} {path} is not listed in ROUTES as needing a login"
        );
        for auth in [
            Auth::None,
            Auth::Bearer("dbk_forged".into()),
            Auth::Session("forged".into(), String::new()),
        ] {
            let request = auth
                .apply(Request::builder().method(*method).uri(path.as_str()))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("csrf_token=x&note=x&confirm=yes"))
                .unwrap();
            let reply = app.send(request).await;
            if path.starts_with("/api/") {
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            } else {
                assert_eq!(reply.status, StatusCode::SEE_OTHER, "{method} {path}");
                assert!(
                    reply.location().starts_with("/login?next="),
                    "{method} {path}: {}",
                    reply.location()
                );
            }
        }
    }
    assert_eq!(app.sandbox.rows_for("app")[0]["pinned"], false);
    // Logged in, a form post without the session's token is refused too.
    let auth = app.login().await;
    for (method, path) in routes
        .iter()
        .filter(|(m, p)| *m == "POST" && !p.starts_with("/api/"))
    {
        let reply = app.post_form(path, &auth, "csrf_token=stale&note=x").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert_eq!(app.sandbox.rows_for("app")[0]["pinned"], false);
    app.stop().await;
}
