//! Restore from the admin: in a real browser into a new PostgreSQL database (the choice, what
//! will happen, the progress, the row counts), the refusals (a viewer, an operator, a wrong
//! typed name), and through the API (admins only, a running backup keeps a restore out, each
//! step in the audit log).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::browser::{
    Session, free_port, require_browser, save_screenshot, serve_with, submit, text_of,
    wait_for_path,
};
use crate::common::*;
use crate::web::{App, Auth};
use dbkeep::accounts::{Grant, Role};

/// A shop's tables: 3 customers and 250 orders, and a table with a quoted name.
const SHOP: &str = "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);\n\
INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger');\n\
CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers, note text);\n\
INSERT INTO orders (customer, note) SELECT 1 + g % 3, repeat('note ', g % 7) FROM generate_series(1, 250) g;\n\
CREATE TABLE \"Audit Trail\" (n int);\nINSERT INTO \"Audit Trail\" SELECT generate_series(1, 17);\n";

const PASSWORD: &str = "browser test password";

fn shop() -> PgDb {
    let db = PgDb::create("admin_restore");
    db.psql(SHOP);
    db
}

/// Waits until the page at `path` says `css` is not `running`, and returns what it says.
async fn wait_for_state(client: &Client, path: &str, css: &str) -> String {
    let start = Instant::now();
    loop {
        let state = text_of(client, css).await;
        if state != "running" {
            return state;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{path} still running after a minute"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.goto(path).await.expect("reload the restore's page");
    }
}

/// The cells of each row of the table `css`, as text.
async fn table_rows(client: &Client, css: &str) -> Vec<Vec<String>> {
    let rows = client
        .execute(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim()));",
            vec![Value::from(css)],
        )
        .await
        .expect("read the table");
    serde_json::from_value(rows).expect("rows of cells")
}

async fn log_in_as(client: &Client, base: &str, user: &str) {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("open /login");
    submit(
        client,
        "form[action$='/login']",
        &[("username", user), ("password", PASSWORD)],
    )
    .await;
    wait_for_path(client, "/", Duration::from_secs(10)).await;
}

async fn log_out(client: &Client) {
    submit(client, "form.logout", &[]).await;
    wait_for_path(client, "/login", Duration::from_secs(10)).await;
}

struct Ctx {
    base: String,
    id: i64,
    new_name: String,
    screenshots: PathBuf,
}

async fn restore_scenario(client: Client, ctx: Ctx) {
    let Ctx {
        base,
        id,
        new_name,
        screenshots,
    } = ctx;
    // A viewer and an operator are refused the restore page, and see no way to it.
    for user in ["viewer", "operator"] {
        log_in_as(&client, &base, user).await;
        client
            .goto(&format!("{base}/backups/{id}"))
            .await
            .expect("open the backup's page");
        let links = client
            .find_all(Locator::Css("a.restore"))
            .await
            .expect("look for the restore link");
        assert!(links.is_empty(), "{user} is offered a restore");
        client
            .goto(&format!("{base}/backups/{id}/restore"))
            .await
            .expect("open the restore page");
        let said = text_of(&client, "body").await;
        assert!(
            said.contains(&format!(
                "forbidden: the {user} role may not do this; it needs an admin"
            )),
            "{user}: {said}"
        );
        client
            .goto(&format!("{base}/"))
            .await
            .expect("open the overview");
        log_out(&client).await;
    }

    // The admin: from the backup's page to the restore page.
    log_in_as(&client, &base, "admin").await;
    client
        .goto(&format!("{base}/backups/{id}"))
        .await
        .expect("open the backup's page");
    client
        .find(Locator::Css("a.restore"))
        .await
        .expect("a restore link for an admin")
        .click()
        .await
        .expect("follow it");
    wait_for_path(
        &client,
        &format!("/backups/{id}/restore"),
        Duration::from_secs(10),
    )
    .await;
    // The tables the backup recorded are listed before anything is chosen.
    let recorded = table_rows(&client, "table.tables").await;
    assert_eq!(
        recorded,
        [
            ["public.\"Audit Trail\"", "17"],
            ["public.customers", "3"],
            ["public.orders", "250"]
        ]
        .map(|r| r.map(str::to_string).to_vec())
        .to_vec(),
        "the recorded tables"
    );

    // Over the original: the name must be typed, and a wrong one is refused.
    client
        .find(Locator::Css("input[name=to][value=original]"))
        .await
        .expect("the original's choice")
        .click()
        .await
        .expect("choose the original");
    submit(&client, "form.restore-choice", &[]).await;
    let effects = text_of(&client, "ul.effects").await;
    assert!(
        effects.contains("Database shop loses its 3 table(s)"),
        "{effects}"
    );
    submit(&client, "form.start-restore", &[("confirm", "shopp")]).await;
    assert_eq!(
        text_of(&client, "p.error").await,
        "type the database's name, shop, to confirm restoring over it"
    );
    assert!(
        client
            .current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/restore"),
        "a refused restore stays on its page"
    );

    // Into a new database: what will happen, then start it and watch it.
    client
        .goto(&format!("{base}/backups/{id}/restore"))
        .await
        .expect("open the restore page again");
    submit(&client, "form.restore-choice", &[("name", &new_name)]).await;
    let target = text_of(&client, "dd.target").await;
    assert!(
        target.starts_with(&format!("new database {new_name} (postgres://")),
        "{target}"
    );
    assert_eq!(
        text_of(&client, "dd.holds").await,
        "3 table(s), 270 row(s), as recorded when it was taken"
    );
    let effects = text_of(&client, "ul.effects").await;
    assert!(
        effects.contains("a failed restore leaves nothing"),
        "{effects}"
    );
    assert!(effects.contains("roles"), "{effects}");
    save_screenshot(&client, &screenshots, "restore-preview.png").await;
    submit(&client, "form.start-restore", &[]).await;
    let path = client.current_url().await.expect("url").path().to_string();
    assert!(
        path.starts_with("/restores/"),
        "started restores show at {path}"
    );
    let state = wait_for_state(&client, &format!("{base}{path}"), "span.run-state").await;
    assert_eq!(state, "restored", "{}", text_of(&client, "main").await);
    let compared = table_rows(&client, "table.rows-compared").await;
    assert_eq!(
        compared,
        [
            ["public.\"Audit Trail\"", "17", "17"],
            ["public.customers", "3", "3"],
            ["public.orders", "250", "250"]
        ]
        .map(|r| r.map(str::to_string).to_vec())
        .to_vec(),
        "the row counts shown"
    );
    save_screenshot(&client, &screenshots, "restore-result.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_restores_a_backup_into_a_new_postgres_database_in_a_real_browser() {
    let browser = require_browser();
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&screenshots).expect("create target/screenshots");
    let db = shop();
    let sandbox = Sandbox::new();
    let web_port = free_port();
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:{web_port}\"\n\n\
         [[databases]]\nname = \"shop\"\nurl = \"{}\"\nschedules = [\"0 0 1 1 *\"]\n",
        db.url()
    ));
    sandbox
        .run(&["backup", "--database", "shop"])
        .assert_success();
    let id = sandbox.rows_for("shop")[0]["id"].as_i64().expect("an id");
    let logs = tempfile::tempdir().expect("temp dir for logs");
    let _serve = serve_with(&sandbox, logs.path(), web_port, &[]);
    for (user, role) in [("viewer", "viewer"), ("operator", "operator")] {
        run_cmd(
            sandbox
                .cmd()
                .args(["user", "add", user, "--role", role])
                .write_stdin(format!("{PASSWORD}\n")),
        )
        .assert_success();
    }
    let new_name = unique_name("restored").replace("dbkeep_t_", "copy_");
    let restored = PgDb::existing(new_name.clone());
    let session = Session::start(&browser, logs.path()).await;
    let client = session.client.clone();
    let ctx = Ctx {
        base: format!("http://127.0.0.1:{web_port}"),
        id,
        new_name,
        screenshots,
    };
    let outcome = tokio::spawn(restore_scenario(client.clone(), ctx)).await;
    let _ = client.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("browser scenario did not finish: {e}"),
        }
    }
    // The new database holds the rows; the original is untouched.
    assert_eq!(restored.scalar("SELECT count(*) FROM orders"), "250");
    assert_eq!(
        restored.scalar("SELECT string_agg(name, ',' ORDER BY id) FROM customers"),
        "Ada,Grace,Edsger"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM \"Audit Trail\""), "17");
    // The audit log tells each step: the refusals, the start, the end.
    let audit = sandbox.run(&["audit", "--action", "restore", "--json"]);
    audit.assert_success();
    let rows = parse_rows(&audit.stdout);
    let story: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap_or_default().to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
                r["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (actor, outcome, detail) in [
        ("user:admin", "refused", "type the database's name, shop"),
        ("user:admin", "ok", "started restore #1 into new database"),
        (
            "user:admin",
            "ok",
            "every table has the rows the backup recorded",
        ),
    ] {
        assert!(
            story
                .iter()
                .any(|(a, o, d)| a == actor && o == outcome && d.contains(detail)),
            "no {actor} {outcome} {detail:?} in {story:#?}"
        );
    }
    // The viewer's and the operator's attempts at the restore page are refused accesses.
    let access = sandbox.run(&["audit", "--action", "access", "--json"]);
    access.assert_success();
    for user in ["viewer", "operator"] {
        assert!(
            parse_rows(&access.stdout)
                .iter()
                .any(|r| r["actor"] == format!("user:{user}")
                    && r["outcome"] == "refused"
                    && r["target"] == format!("backup:{id}")
                    && r["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("may not do this")),
            "no refusal of {user} in {}",
            access.stdout
        );
    }
}

/// A session holding `LOCK TABLE … ACCESS EXCLUSIVE` on `table` until dropped: a `pg_dump`
/// of its database waits for it.
struct Locked(Child);

impl Locked {
    fn hold(db: &PgDb, table: &str) -> Locked {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &db.url()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start psql");
        use std::io::Write as _;
        let stdin = child.stdin.as_mut().expect("psql's stdin");
        writeln!(
            stdin,
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT 1;"
        )
        .expect("send the lock");
        stdin.flush().expect("flush");
        // Until the lock is granted, another session sees it in pg_locks.
        let start = Instant::now();
        while db.scalar(&format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = '{table}' AND l.mode = 'AccessExclusiveLock' AND l.granted"
        )) != "1"
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the lock was never taken"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Locked(child)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks for a restore of `id` with `body` and returns the answer.
async fn ask_restore(app: &App, auth: &Auth, id: i64, body: &str) -> crate::web::Reply {
    app.post_json(&format!("/api/v1/backups/{id}/restore"), auth, body)
        .await
}

/// Follows restore `rid` until it has ended; returns the API's last answer.
async fn wait_for_restore(app: &App, auth: &Auth, rid: i64) -> Value {
    let start = Instant::now();
    loop {
        let reply = app.get(&format!("/api/v1/restores/{rid}"), auth).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let body = reply.json();
        if body["state"] != "running" {
            return body;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{body:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the catalog holds an `in_progress` backup of `database`.
async fn wait_for_running_backup(app: &App, database: &str) {
    let start = Instant::now();
    while !app
        .catalog()
        .list(&dbkeep::catalog::ListFilter {
            database: Some(database.into()),
            status: Some(dbkeep::catalog::Status::InProgress),
            ..Default::default()
        })
        .unwrap()
        .iter()
        .any(|_| true)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no backup of {database} started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_restores_for_admins_only_and_never_over_a_database_whose_backup_runs() {
    let db = shop();
    let app = App::start_with_databases(
        "",
        &format!(
            "[[databases]]\nname = \"shop\"\nurl = \"{}\"\nschedules = [\"0 0 1 1 *\"]\n",
            db.url()
        ),
    )
    .await;
    let id = app.backup("shop").await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let token = format!("dbk_restore_{role}_0123456789");
        app.add_token(&format!("{role}-token"), &token, Grant::everywhere(role));
        tokens.push((role, Auth::Bearer(token)));
    }
    let auth = |role: Role| &tokens.iter().find(|(r, _)| *r == role).unwrap().1;
    let admin = auth(Role::Admin);
    let new_name = unique_name("api_restored").replace("dbkeep_t_", "copy_");
    let restored = PgDb::existing(new_name.clone());
    let into_new = format!(r#"{{"to": "new", "name": "{new_name}"}}"#);

    // Viewers and operators may not restore, however they ask.
    for role in [Role::Viewer, Role::Operator] {
        let reply = ask_restore(&app, auth(role), id, &into_new).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            reply.text()
        );
    }
    // Bad choices are named.
    for (body, says) in [
        (r#"{"to": "original"}"#, "type the database's name, shop"),
        (
            r#"{"to": "original", "confirm": "app"}"#,
            "type the database's name, shop",
        ),
        (
            r#"{"to": "database", "database": "app", "confirm": "app"}"#,
            "is a postgres backup and app is a sqlite database",
        ),
        (
            r#"{"to": "database", "database": "nope"}"#,
            "nope is not a configured database",
        ),
        (
            r#"{"to": "new", "name": "dbkeep_mine"}"#,
            "dbkeep's own throwaways",
        ),
        (r#"{"to": "new", "name": "a;b"}"#, "letters, digits"),
        (r#"{"to": "somewhere"}"#, "not a target"),
        (r#"{}"#, "choose where the backup goes"),
    ] {
        let reply = ask_restore(&app, admin, id, body).await;
        assert_eq!(
            reply.status,
            StatusCode::CONFLICT,
            "{body}: {}",
            reply.text()
        );
        assert!(
            reply.json()["error"].as_str().unwrap().contains(says),
            "{body}: {}",
            reply.text()
        );
    }
    let reply = ask_restore(&app, admin, id, r#"{"to": "new", "extra": 1}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());

    // Into a new database: 202, then restored with every table's rows.
    let reply = ask_restore(&app, admin, id, &into_new).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let rid = reply.json()["id"].as_i64().unwrap();
    assert_eq!(reply.location(), format!("/api/v1/restores/{rid}"));
    let done = wait_for_restore(&app, admin, rid).await;
    assert_eq!(done["state"], "restored", "{done:#}");
    assert_eq!(done["actor"], "token:admin-token#3", "{done:#}");
    let tables: Vec<(String, u64, u64)> = done["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["expected"].as_u64().unwrap(),
                t["found"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tables,
        [
            ("public.\"Audit Trail\"", 17, 17),
            ("public.customers", 3, 3),
            ("public.orders", 250, 250),
        ]
        .map(|(t, e, f)| (t.to_string(), e, f))
        .to_vec()
    );
    assert_eq!(restored.scalar("SELECT count(*) FROM orders"), "250");
    // The same name again is taken now.
    let reply = ask_restore(&app, admin, id, &into_new).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
    assert!(reply.text().contains("exists already"), "{}", reply.text());
    // Operators cannot follow restores either.
    let reply = app
        .get(&format!("/api/v1/restores/{rid}"), auth(Role::Operator))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());

    // While a backup of shop runs (it waits for a lock), a restore over shop is refused:
    // one started here, then one started by another process.
    let over = r#"{"to": "original", "confirm": "shop"}"#;
    db.psql("DELETE FROM orders WHERE id > 200;");
    {
        let _lock = Locked::hold(&db, "orders");
        let started = app
            .post_json("/api/v1/backups", admin, r#"{"database": "shop"}"#)
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
        wait_for_running_backup(&app, "shop").await;
        let reply = ask_restore(&app, admin, id, over).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
        assert!(
            reply
                .text()
                .contains("a backup of shop is running on this instance"),
            "{}",
            reply.text()
        );
    }
    // Wait for that backup to end, then one by another process.
    let start = Instant::now();
    while app
        .sandbox
        .rows_for("shop")
        .iter()
        .any(|r| r["status"] == "in_progress")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the backup never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    {
        let _lock = Locked::hold(&db, "orders");
        let mut cli = app.sandbox.cmd();
        cli.args(["backup", "--database", "shop"]);
        let mut other = std::process::Command::new(cli.get_program());
        other
            .args(cli.get_args())
            .envs(cli.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .current_dir(app.sandbox.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut other = other.spawn().expect("start a backup in another process");
        wait_for_running_backup(&app, "shop").await;
        let reply = ask_restore(&app, admin, id, over).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
        assert!(
            reply.text().contains("of shop is running (on instance"),
            "{}",
            reply.text()
        );
        drop(_lock);
        assert!(other.wait().expect("the other backup").success());
    }
    // A restore over the original that waits on the application's lock can be stopped: it
    // rolls back, and the original keeps its 200 orders.
    {
        let _lock = Locked::hold(&db, "orders");
        let reply = ask_restore(&app, admin, id, over).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        let rid = reply.json()["id"].as_i64().unwrap();
        let start = Instant::now();
        loop {
            let now = app
                .get(&format!("/api/v1/restores/{rid}"), admin)
                .await
                .json();
            assert_eq!(now["state"], "running", "{now:#}");
            if now["phase"] == "loading" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{now:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // It waits on the lock: still running a moment later.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = app
            .get(&format!("/api/v1/restores/{rid}"), admin)
            .await
            .json();
        assert_eq!(now["state"], "running", "{now:#}");
        let stop = app
            .post_json(&format!("/api/v1/restores/{rid}/stop"), admin, "")
            .await;
        assert_eq!(stop.status, StatusCode::ACCEPTED, "{}", stop.text());
        let done = wait_for_restore(&app, admin, rid).await;
        assert_eq!(done["state"], "failed", "{done:#}");
        assert!(
            done["error"]
                .as_str()
                .unwrap()
                .contains("stopped by token:admin-token"),
            "{done:#}"
        );
    }
    assert_eq!(db.scalar("SELECT count(*) FROM orders"), "200");

    // With no backup running, the restore over the original brings back the 250 orders.
    let reply = ask_restore(&app, admin, id, over).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let done = wait_for_restore(&app, admin, reply.json()["id"].as_i64().unwrap()).await;
    assert_eq!(done["state"], "restored", "{done:#}");
    assert_eq!(db.scalar("SELECT count(*) FROM orders"), "250");

    // Each step is in the audit log, with who and why.
    let rows = app
        .catalog()
        .audit(&dbkeep::audit::Query {
            action: Some(dbkeep::audit::Action::Restore),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let story: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.entry.actor,
                r.entry.outcome,
                r.entry.detail.clone().unwrap_or_default()
            )
        })
        .collect();
    for want in [
        "token:viewer-token#1 refused the viewer role may not do this",
        "token:operator-token#2 refused the operator role may not do this",
        "token:admin-token#3 refused type the database's name, shop",
        "token:admin-token#3 ok started restore #1 into new database",
        "token:admin-token#3 ok restore #1 into new database",
        "token:admin-token#3 refused a backup of shop is running on this instance",
        "token:admin-token#3 ok stopped restore #2 into database shop",
        "token:admin-token#3 failed restore #2 into database shop",
        "token:admin-token#3 ok restore #3 into database shop",
    ] {
        assert!(
            story.iter().any(|s| s.starts_with(want)),
            "no {want:?} in {story:#?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_restores_sqlite_and_mysql_backups_into_new_ones_beside_them() {
    use crate::mysql::MyDb;
    let my = MyDb::create("admin_restore");
    my.sql("CREATE TABLE items (id int PRIMARY KEY, label text); INSERT INTO items VALUES (1, 'a'), (2, 'b');");
    let app = App::start_with_databases(
        "",
        &format!(
            "[[databases]]\nname = \"shop\"\nurl = \"{}\"\nschedules = [\"0 0 1 1 *\"]\n",
            my.url()
        ),
    )
    .await;
    let token = "dbk_restore_admin_0123456789";
    app.add_token("admin-token", token, Grant::everywhere(Role::Admin));
    let admin = Auth::Bearer(token.into());
    let restored_my = MyDb::existing(&unique_name("my_copy").replace("dbkeep_t_", "copy_"));
    for (database, name) in [
        ("app", "app_copy".to_string()),
        ("shop", restored_my.name.clone()),
    ] {
        let id = app.backup(database).await;
        let reply = ask_restore(
            &app,
            &admin,
            id,
            &format!(r#"{{"to": "new", "name": "{name}"}}"#),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{database}: {}",
            reply.text()
        );
        let done = wait_for_restore(&app, &admin, reply.json()["id"].as_i64().unwrap()).await;
        assert_eq!(done["state"], "restored", "{database}: {done:#}");
        let tables = done["tables"].as_array().unwrap();
        assert!(!tables.is_empty(), "{database}: {done:#}");
        assert!(
            tables.iter().all(|t| t["expected"] == t["found"]),
            "{database}: {done:#}"
        );
    }
    // The SQLite copy is a new file beside the original's, private like every file dbkeep makes.
    let copy = app.sandbox.path().join("app_copy.db");
    assert_eq!(mode_of(&copy) & 0o777, 0o600, "{}", copy.display());
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let original = rusqlite::Connection::open(app.sandbox.path().join("app.db")).unwrap();
    assert_eq!(sqlite_fingerprint(&conn), sqlite_fingerprint(&original));
    assert_eq!(
        restored_my
            .sql("SELECT label FROM items ORDER BY id")
            .trim(),
        "a\nb"
    );
    app.stop().await;
}
