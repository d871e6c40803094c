//! The Django admin's "Backup histories" page in a real browser (headless Chromium through
//! chromedriver), served by gunicorn from the sample project: staff with the permission see
//! the history with dots and words and download a file whose SHA-256 matches the catalog;
//! staff without it get 403; anonymous visitors are sent to the login.

use std::fs;
use std::path::Path;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    Guard, Session, free_port, http_status, require_browser, save_screenshot, set_viewport_size,
    wait_for_http,
};
use crate::common::*;
use crate::django::{Engine, Project};

const PAGE: &str = "/admin/dbkeep/backuphistory/";
const KEEPER_PASSWORD: &str = "keeper password 1";
const INTERN_PASSWORD: &str = "intern password 1";

/// Staff users `keeper` (with `dbkeep.view_backups`) and `intern` (without).
fn create_users(p: &Project) {
    let script = format!(
        "from django.contrib.auth.models import Permission, User\n\
         k = User.objects.create_user('keeper', password='{KEEPER_PASSWORD}', is_staff=True)\n\
         k.user_permissions.add(Permission.objects.get(content_type__app_label='dbkeep', codename='view_backups'))\n\
         User.objects.create_user('intern', password='{INTERN_PASSWORD}', is_staff=True)\n"
    );
    p.manage(&["shell", "-c", &script]).assert_success();
}

/// Where an unauthenticated GET of `path` is sent (its status and `Location`).
fn redirect_of(port: u16, path: &str) -> (Option<u16>, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let location = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap_or_default()
        .to_string();
    (http_status(port, path), location)
}

async fn log_in(client: &Client, base: &str, user: &str, password: &str) {
    client
        .goto(&format!("{base}/admin/login/?next={PAGE}"))
        .await
        .unwrap();
    let field = match client.find(Locator::Css("#id_username")).await {
        Ok(f) => f,
        Err(e) => panic!(
            "no login form for {user} ({e}) at {:?}:\n{}",
            client.current_url().await.map(|u| u.to_string()),
            client.source().await.unwrap_or_default()
        ),
    };
    field.send_keys(user).await.unwrap();
    client
        .find(Locator::Css("#id_password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    client
        .find(Locator::Css("input[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Logged in once the login page has sent the browser on.
    let start = std::time::Instant::now();
    loop {
        let url = client.current_url().await.unwrap();
        if url.path() != "/admin/login/" {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "{user} is still on the login page:\n{}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `GET href` inside the page: its status, its bytes' SHA-256 and size, and a header.
async fn fetch_in_page(client: &Client, href: &str) -> Value {
    client
        .execute_async(
            r#"
            const [href, done] = arguments;
            fetch(href, { credentials: 'same-origin', redirect: 'manual' })
                .then(async (r) => {
                    const buf = await r.arrayBuffer();
                    const digest = await crypto.subtle.digest('SHA-256', buf);
                    const hex = Array.from(new Uint8Array(digest),
                        (b) => b.toString(16).padStart(2, '0')).join('');
                    done({ status: r.status, header: r.headers.get('x-dbkeep-sha256'),
                           size: buf.byteLength, hex });
                })
                .catch((e) => done({ error: String(e) }));
            "#,
            vec![json!(href)],
        )
        .await
        .unwrap()
}

async fn scenario(client: Client, base: String, p: &Project) {
    // With the permission: the history, with dots and words, and the verdict.
    log_in(&client, &base, "keeper", KEEPER_PASSWORD).await;
    client.goto(&format!("{base}{PAGE}")).await.unwrap();
    let page = client
        .execute(
            r#"
            const rows = [...document.querySelectorAll('#dbkeep-backups tbody tr[data-id]')];
            const verdicts = [...document.querySelectorAll('#dbkeep-verdicts tbody tr')];
            return {
              title: document.title,
              rows: rows.map((r) => ({
                id: Number(r.dataset.id), status: r.dataset.status,
                text: r.innerText,
                dot: (r.querySelector('.dbkeep-dot') || {}).className || '',
                dotColour: r.querySelector('.dbkeep-dot')
                  ? getComputedStyle(r.querySelector('.dbkeep-dot')).backgroundColor : '',
                href: (r.querySelector('a[download]') || {}).href || null })),
              verdicts: verdicts.map((r) => ({ database: r.dataset.database,
                status: r.dataset.status, text: r.innerText })),
            };
            "#,
            vec![],
        )
        .await
        .unwrap();
    let rows = page["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{page:#}");
    let (good, failed) = (&rows[1], &rows[0]);
    // Whether a row's field holds `part`.
    let has = |row: &serde_json::Value, field: &str, part: &str| {
        row[field].as_str().unwrap().contains(part)
    };
    assert_eq!(good["status"], "success", "{page:#}");
    assert!(has(good, "dot", "green"), "{page:#}");
    assert!(has(good, "text", "success"), "{page:#}");
    assert!(has(good, "text", "sqlite_backup_"), "{page:#}");
    // Times in the project's TIME_ZONE (Europe/Berlin).
    assert!(
        has(good, "text", "CET") || has(good, "text", "CEST"),
        "{page:#}"
    );
    let colour = good["dotColour"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        colour, "rgb(26, 127, 55)",
        "the dot of a success is not green"
    );
    assert_eq!(failed["status"], "failed", "{page:#}");
    assert!(has(failed, "dot", "red"), "{page:#}");
    assert!(has(failed, "text", "failed"), "{page:#}");
    assert!(
        failed["href"].is_null(),
        "a failed backup has no download: {page:#}"
    );
    let verdicts = page["verdicts"].as_array().cloned().unwrap_or_default();
    assert_eq!(verdicts.len(), 1, "{page:#}");
    assert_eq!(verdicts[0]["database"], "default");
    assert_eq!(
        verdicts[0]["status"], "failing",
        "the latest run failed: {page:#}"
    );
    assert!(
        verdicts[0]["text"].as_str().unwrap().contains("failing"),
        "{page:#}"
    );
    // In a 1280 px window the page fits its width, and the failed row, whose error is long,
    // is one line like the others, its whole error in the cell's title.
    set_viewport_size(&client, 1280, 800).await;
    let fit = client
        .execute(
            r#"
            const row = (id) => document.querySelector(`#dbkeep-backups tr[data-id="${id}"]`);
            const error = document.querySelector('#dbkeep-backups .dbkeep-error');
            return {
              page: document.documentElement.scrollWidth, window: window.innerWidth,
              good: row(arguments[0]).getBoundingClientRect().height,
              failed: row(arguments[1]).getBoundingClientRect().height,
              title: error.title, shown: error.closest('td').clientWidth,
              whole: error.closest('td').scrollWidth,
            };
            "#,
            vec![good["id"].clone(), failed["id"].clone()],
        )
        .await
        .unwrap();
    save_screenshot(
        &client,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"),
        "django-admin.png",
    )
    .await;
    assert!(
        fit["page"].as_f64() <= fit["window"].as_f64(),
        "the page is wider than its window: {fit:#}"
    );
    assert!(
        fit["failed"].as_f64().unwrap() <= fit["good"].as_f64().unwrap() * 1.2,
        "the failed row is taller than a line: {fit:#}"
    );
    let recorded: String = p
        .catalog()
        .query_row(
            "SELECT error FROM backups WHERE id = ?1",
            [failed["id"].as_i64().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fit["title"].as_str(), Some(recorded.as_str()), "{fit:#}");
    assert!(
        fit["whole"].as_f64() > fit["shown"].as_f64(),
        "the error was long enough to be cut: {fit:#} ({recorded})"
    );

    // The download streams through Django: the catalog's SHA-256.
    let href = good["href"].as_str().expect("a download link").to_string();
    let fetched = fetch_in_page(&client, &href).await;
    assert_eq!(fetched["status"], 200, "{fetched:#}");
    let catalog: (String, i64, String) = p
        .catalog()
        .query_row(
            "SELECT sha256, size_bytes, path FROM backups WHERE id = ?1",
            [good["id"].as_i64().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        fetched["hex"].as_str(),
        Some(catalog.0.as_str()),
        "{fetched:#}"
    );
    assert_eq!(
        fetched["header"].as_str(),
        Some(catalog.0.as_str()),
        "{fetched:#}"
    );
    assert_eq!(fetched["size"].as_i64(), Some(catalog.1), "{fetched:#}");
    assert_eq!(sha256sum(Path::new(&catalog.2)), catalog.0);
    // dbkeep's audit log names the Django user who downloaded it. `dbkeep download` writes
    // its row once the file has gone out, so it may land a moment after the last byte.
    let started = std::time::Instant::now();
    let (actor, target, detail): (String, String, String) = loop {
        let row = p.catalog().query_row(
            "SELECT actor, target, detail FROM audit_log WHERE action = 'download' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        );
        match row {
            Ok(row) => break row,
            Err(rusqlite::Error::QueryReturnedNoRows)
                if started.elapsed() < std::time::Duration::from_secs(10) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no audit row of the download: {e}"),
        }
    };
    assert_eq!(actor, "django:keeper");
    assert_eq!(target, format!("backup:{}", good["id"].as_i64().unwrap()));
    assert!(detail.contains("via cli:"), "{detail}");

    // Without the permission: 403, for the page and for a download.
    client.delete_all_cookies().await.unwrap();
    log_in(&client, &base, "intern", INTERN_PASSWORD).await;
    for path in [PAGE.to_string(), href.replace(&base, "")] {
        let got = fetch_in_page(&client, &format!("{base}{path}")).await;
        assert_eq!(got["status"], 403, "{path}: {got:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_lists_backups_and_streams_downloads_to_staff_with_the_permission() {
    let browser = require_browser();
    let p = Project::new(Engine::Sqlite, None).with("DBKEEP_AUTOSTART", "0");
    p.manage(&["migrate", "--noinput"]).assert_success();
    create_users(&p);
    p.manage(&["backup_database"]).assert_success();
    // Then a failure: the database file taken away for a moment.
    let db = p.state.path().join("db.sqlite3");
    let aside = p.state.path().join("db.sqlite3.aside");
    fs::rename(&db, &aside).unwrap();
    p.manage(&["backup_database"]).assert_code(1);
    fs::rename(&aside, &db).unwrap();

    let logs = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = p.venv_command("gunicorn");
    cmd.args(["--workers", "1", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("site_config.wsgi:application");
    let mut site = Guard::spawn("gunicorn", cmd, logs.path());
    wait_for_http(&mut site, port, "/admin/login/");
    // Anonymous: to the login.
    let (status, location) = redirect_of(port, PAGE);
    assert_eq!(status, Some(302));
    assert!(location.starts_with("/admin/login/?next="), "{location}");

    let session = Session::start(&browser, logs.path()).await;
    let client = session.client.clone();
    let base = format!("http://127.0.0.1:{port}");
    let p = std::sync::Arc::new(p);
    let shared = std::sync::Arc::clone(&p);
    let outcome = tokio::spawn({
        let client = client.clone();
        async move { scenario(client, base, &shared).await }
    })
    .await;
    let _ = client.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("browser scenario did not finish: {e}"),
        }
    }
}
