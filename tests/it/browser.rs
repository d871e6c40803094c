//! The web admin in a real browser: headless Chromium driven through
//! chromedriver (WebDriver) against a real `dbkeep serve`.
//!
//! Needs `chromium` and `chromedriver`: `scripts/test.sh` installs them and
//! exports `DBKEEP_TEST_CHROMIUM` / `DBKEEP_TEST_CHROMEDRIVER`. Without them
//! the test fails (it never skips). Screenshots of the pages are written to
//! `target/screenshots/` for a human to look at.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::*;

const PASSWORD: &str = "browser test password";

/// How long the backup started from the browser may take to show up as a success.
const BACKUP_DEADLINE: Duration = Duration::from_secs(30);

/// The browser binaries: from the environment, else the Debian locations.
pub(crate) struct Browser {
    pub(crate) chromedriver: PathBuf,
    pub(crate) chromium: PathBuf,
}

/// Finds chromedriver and Chromium or fails the test with a hint.
#[track_caller]
pub(crate) fn require_browser() -> Browser {
    let find = |var: &str, default: &str| -> Result<PathBuf, String> {
        let (path, source) = match std::env::var(var) {
            Ok(v) if !v.is_empty() => (PathBuf::from(v), format!("set by {var}")),
            _ => (PathBuf::from(default), format!("{var} is unset")),
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("no {} ({source})", path.display()))
        }
    };
    match (
        find("DBKEEP_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"),
        find("DBKEEP_TEST_CHROMIUM", "/usr/bin/chromium"),
    ) {
        (Ok(chromedriver), Ok(chromium)) => Browser {
            chromedriver,
            chromium,
        },
        (a, b) => {
            let problems: Vec<String> = [a.err(), b.err()].into_iter().flatten().collect();
            panic!(
                "the browser test needs Chromium and chromedriver: {}.\n\
                 Run the tests with scripts/test.sh (it installs the Debian packages \
                 chromium and chromium-driver), or point DBKEEP_TEST_CHROMIUM and \
                 DBKEEP_TEST_CHROMEDRIVER at the binaries.",
                problems.join("; ")
            );
        }
    }
}

/// A TCP port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// The status code of a plain `GET path` to `127.0.0.1:port`, or None when
/// nothing answers yet.
pub(crate) fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// A child process with its output in log files; on drop it is stopped with
/// its direct children (chromedriver's Chromium) and, when the test is
/// failing, the logs are printed.
///
/// The child stays in the test's process group so that Ctrl-C on
/// `cargo test` reaches it too, and it gets SIGTERM when the test process
/// dies (chromedriver ignores SIGINT).
pub(crate) struct Guard {
    name: &'static str,
    pub(crate) child: Child,
    logs: Vec<PathBuf>,
}

impl Guard {
    pub(crate) fn spawn(name: &'static str, mut cmd: Command, log_dir: &Path) -> Guard {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
        // memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))
                .map_err(std::io::Error::from)
            });
        }
        let out = log_dir.join(format!("{name}.out"));
        let err = log_dir.join(format!("{name}.err"));
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("create stdout log"))
            .stderr(fs::File::create(&err).expect("create stderr log"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Guard {
            name,
            child,
            logs: vec![out, err],
        }
    }

    /// Panics with the logs when the process has already exited.
    #[track_caller]
    pub(crate) fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early ({status})\n{}", self.name, self.logs());
        }
    }

    pub(crate) fn logs(&self) -> String {
        self.logs
            .iter()
            .map(|p| {
                format!(
                    "--- {} ---\n{}",
                    p.file_name().unwrap_or_default().to_string_lossy(),
                    fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.child.id();
        let children = children_of(pid);
        signal("-TERM", children.iter().copied().chain([pid]));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut exited = false;
        while Instant::now() < deadline {
            exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited && !children.iter().any(|&p| alive(p)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !exited {
            let _ = self.child.kill();
        }
        // Whatever is left (a browser outliving its driver).
        signal("-KILL", children.into_iter().filter(|&p| alive(p)));
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{} logs:\n{}", self.name, self.logs());
        }
    }
}

/// Sends `signal` (e.g. "-TERM") to the processes, if any.
pub(crate) fn signal(signal: &str, pids: impl IntoIterator<Item = u32>) {
    let pids: Vec<String> = pids.into_iter().map(|p| p.to_string()).collect();
    if !pids.is_empty() {
        let _ = Command::new("kill")
            .arg(signal)
            .args(pids)
            .stderr(Stdio::null())
            .status();
    }
}

/// Makes `old`'s backup three days old, and records a scheduled fire whose backup (of
/// `broken`) failed, as the scheduler would have.
fn age_backups_and_record_a_failed_fire(sandbox: &Sandbox) {
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).expect("open the catalog");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let three_days_ago = (chrono::Utc::now() - chrono::Duration::days(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    conn.execute(
        "UPDATE backups SET started_at = ?1, finished_at = ?1 WHERE database = 'old'",
        [&three_days_ago],
    )
    .expect("age the backup of old");
    let failed: i64 = conn
        .query_row(
            "SELECT max(id) FROM backups WHERE database = 'broken' AND status = 'failed'",
            [],
            |r| r.get(0),
        )
        .expect("the failed backup of broken");
    conn.execute(
        "INSERT INTO fires (database, schedule, planned_at, started_at, outcome, backup_id)
         VALUES ('broken', '0 0 1 1 *', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'ran', ?1)",
        [failed],
    )
    .expect("record a fire");
}

/// The state letter and parent id of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether a process still runs (zombies waiting to be reaped do not).
pub(crate) fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

/// Process ids whose parent is `parent`, from `/proc`.
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_stat(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// Waits until `GET path` on `port` answers 200, while `guard` keeps running.
#[track_caller]
pub(crate) fn wait_for_http(guard: &mut Guard, port: u16, path: &str) {
    let start = Instant::now();
    loop {
        guard.assert_running();
        if http_status(port, path) == Some(200) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} did not answer GET {path} on port {port} within 30 s\n{}",
            guard.name,
            guard.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// WebDriver capabilities for a headless, quiet, throwaway Chromium.
pub(crate) fn capabilities(chromium: &Path, profile: &Path) -> serde_json::Map<String, Value> {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,900",
            ],
        },
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("capabilities are an object"),
    }
}

/// A headless Chromium session through chromedriver, with its driver and throwaway profile
/// (both kept as long as the session).
pub(crate) struct Session {
    pub(crate) client: Client,
    _driver: Guard,
    _profile: tempfile::TempDir,
}

impl Session {
    /// Starts chromedriver (its logs in `log_dir`) and a Chromium session through it.
    pub(crate) async fn start(browser: &Browser, log_dir: &Path) -> Session {
        let profile = tempfile::tempdir().expect("temp dir for the browser profile");
        let driver_port = free_port();
        let mut driver_cmd = Command::new(&browser.chromedriver);
        driver_cmd.arg(format!("--port={driver_port}"));
        let mut driver = Guard::spawn("chromedriver", driver_cmd, log_dir);
        wait_for_http(&mut driver, driver_port, "/status");
        // The test build links two rustls providers (the WebDriver client's and dbkeep's):
        // pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .expect("TLS setup")
            .capabilities(capabilities(&browser.chromium, profile.path()))
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start a Chromium session through chromedriver: {e}\n{}",
                    driver.logs()
                )
            });
        Session {
            client,
            _driver: driver,
            _profile: profile,
        }
    }
}

/// What the scenario needs, owned so that it can run in its own task.
struct Ctx {
    base: String,
    sandbox: Arc<Sandbox>,
    screenshots: PathBuf,
}

/// One backup row as the page shows it.
#[derive(Debug)]
struct Row {
    id: i64,
    class: String,
    state: String,
    download: Option<String>,
}

/// The backup rows of the current page and whether it asks to be reloaded,
/// read in one script so that an automatic reload cannot tear them.
async fn read_rows(client: &Client) -> Result<(Vec<Row>, bool), fantoccini::error::CmdError> {
    let value = client
        .execute(
            r#"
            const rows = Array.from(document.querySelectorAll('tr[id^="backup-"]'), r => ({
                id: r.id,
                class: r.className,
                state: (r.querySelector('.state') || {}).textContent || '',
                download: (r.querySelector('a.download') || {}).href || null,
            }));
            const refresh = document.querySelector('meta[http-equiv="refresh"]') !== null;
            return { rows, refresh };
            "#,
            vec![],
        )
        .await?;
    let rows = value["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| Row {
            id: r["id"]
                .as_str()
                .and_then(|id| id.strip_prefix("backup-"))
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("row with a bad id: {r}")),
            class: r["class"].as_str().unwrap_or_default().to_string(),
            state: r["state"].as_str().unwrap_or_default().trim().to_string(),
            download: r["download"].as_str().map(str::to_string),
        })
        .collect();
    Ok((rows, value["refresh"].as_bool().unwrap_or(false)))
}

/// Waits (up to `limit`) until the current URL's path and query are `want`.
pub(crate) async fn wait_for_path(client: &Client, want: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let url = client.current_url().await.expect("current URL");
        let got = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        if got == want {
            return;
        }
        if start.elapsed() > limit {
            let text = client
                .execute(
                    "return document.body ? document.body.innerText : '';",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!(
                "browser is at {url}, expected {want}; the page says:\n{}",
                text.as_str().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn save_screenshot(client: &Client, dir: &Path, name: &str) {
    let png = client.screenshot().await.expect("take a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(name);
    fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Resizes the window so that the page itself gets `width` x `height` CSS
/// pixels (the window size includes the browser's own frame).
pub(crate) async fn set_viewport_size(client: &Client, width: u32, height: u32) {
    client
        .set_window_size(width, height)
        .await
        .expect("resize the window");
    let inner = client
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .expect("read the viewport size");
    let (w, h) = (
        inner[0].as_u64().unwrap_or(0),
        inner[1].as_u64().unwrap_or(0),
    );
    let grow = |want: u32, got: u64| (2 * u64::from(want)).saturating_sub(got);
    let (w2, h2) = (grow(width, w), grow(height, h));
    if (w2, h2) != (u64::from(width), u64::from(height)) {
        client
            .set_window_size(
                u32::try_from(w2).expect("window width"),
                u32::try_from(h2).expect("window height"),
            )
            .await
            .expect("resize the window");
    }
}

pub(crate) async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .text()
        .await
        .expect("element text")
}

/// Log in, start a backup, watch it succeed, check the download, take screenshots.
async fn scenario(client: Client, ctx: Ctx) {
    let base = &ctx.base;

    // Not logged in: the backups page sends the browser to the login form.
    client.goto(&format!("{base}/")).await.expect("open /");
    let url = client.current_url().await.expect("current URL");
    assert_eq!(url.path(), "/login", "not sent to the login page: {url}");
    let form = client
        .find(Locator::Css("form[action$='/login']"))
        .await
        .expect("login form");
    let csrf = form
        .find(Locator::Css("input[type=hidden][name=csrf_token]"))
        .await
        .expect("hidden csrf_token field")
        .prop("value")
        .await
        .expect("csrf_token value")
        .unwrap_or_default();
    assert!(!csrf.is_empty(), "login form has an empty csrf_token");
    save_screenshot(&client, &ctx.screenshots, "admin-login.png").await;
    form.find(Locator::Css("input[name=username]"))
        .await
        .expect("username field")
        .send_keys("admin")
        .await
        .expect("type the user name");
    form.find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("type the password");
    form.find(Locator::Css("button[type=submit]"))
        .await
        .expect("login button")
        .click()
        .await
        .expect("click Log in");

    // Logged in: the overview, most urgent first; `app` has no backup yet.
    wait_for_path(&client, "/", Duration::from_secs(10)).await;
    assert_eq!(text_of(&client, "main h1").await, "Overview");
    assert_eq!(text_of(&client, "header .logout a").await, "admin");
    assert_eq!(
        card_states(&client).await,
        [
            ("broken".to_string(), "failing".to_string()),
            ("app".to_string(), "unprotected".to_string()),
            ("old".to_string(), "stale".to_string()),
        ]
    );

    // Start a backup from the overview.
    let card = client
        .find(Locator::Css("section#db-app"))
        .await
        .expect("card of database app");
    let button = card
        .find(Locator::XPath(
            ".//button[normalize-space(.)='Back up now']",
        ))
        .await
        .expect("Back up now button in the app card");
    assert!(button.is_enabled().await.expect("button state"));
    button.click().await.expect("click Back up now");
    wait_for_path(&client, "/backups?database=app", Duration::from_secs(10)).await;

    // Wait for the newest row to turn into a green success, reloading when
    // the page does not do it by itself.
    let start = Instant::now();
    let mut last_reload = Instant::now();
    let row = loop {
        match read_rows(&client).await {
            Ok((rows, refresh)) => {
                if let Some(newest) = rows.into_iter().max_by_key(|r| r.id) {
                    assert_ne!(
                        newest.state,
                        "failed",
                        "the backup failed: {newest:?}\n{}",
                        ctx.sandbox.run(&["list", "--json"]).stdout
                    );
                    if newest.state == "success" {
                        break newest;
                    }
                }
                if !refresh && last_reload.elapsed() > Duration::from_secs(1) {
                    client.refresh().await.expect("reload the page");
                    last_reload = Instant::now();
                }
            }
            // The page was reloading (meta refresh) while we looked.
            Err(e) => eprintln!("reading rows: {e}"),
        }
        assert!(
            start.elapsed() < BACKUP_DEADLINE,
            "no successful backup on the page within {BACKUP_DEADLINE:?}; page:\n{}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let classes: Vec<&str> = row.class.split_whitespace().collect();
    assert!(
        classes.contains(&"green"),
        "successful row is not green: {row:?}"
    );
    let href = row
        .download
        .clone()
        .unwrap_or_else(|| panic!("successful row has no download link: {row:?}"));
    assert!(
        href.ends_with(&format!("/backups/{}/download", row.id)),
        "unexpected download link {href}"
    );
    let dot = client
        .find(Locator::Css(&format!("tr#backup-{} .dot", row.id)))
        .await
        .expect("status dot of the row");
    let colour = dot.css_value("background-color").await.expect("dot colour");
    let rgb: Vec<u8> = colour
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    assert!(
        matches!(rgb[..], [r, g, b] if g > r.saturating_add(40) && g > b.saturating_add(40)),
        "the dot of a successful backup is not green: {colour}"
    );

    // Download the file inside the page and hash it there.
    let fetched = client
        .execute_async(
            r#"
            const [href, done] = arguments;
            fetch(href, { credentials: 'same-origin' })
                .then(async (r) => {
                    const buf = await r.arrayBuffer();
                    const digest = await crypto.subtle.digest('SHA-256', buf);
                    const hex = Array.from(new Uint8Array(digest),
                        (b) => b.toString(16).padStart(2, '0')).join('');
                    done({
                        status: r.status,
                        header: r.headers.get('x-backup-sha256'),
                        size: buf.byteLength,
                        hex,
                    });
                })
                .catch((e) => done({ error: String(e) }));
            "#,
            vec![json!(href)],
        )
        .await
        .expect("download the backup in the page");
    assert!(fetched["error"].is_null(), "download failed: {fetched}");
    assert_eq!(fetched["status"], 200, "download failed: {fetched}");
    let in_page = fetched["hex"].as_str().unwrap_or_default().to_string();
    assert_eq!(in_page.len(), 64, "bad digest from the page: {fetched}");

    let catalog = ctx
        .sandbox
        .rows_for("app")
        .into_iter()
        .find(|r| r["id"].as_i64() == Some(row.id))
        .unwrap_or_else(|| panic!("backup #{} is not in the catalog", row.id));
    let path = assert_success_row(&catalog, "app", "sqlite");
    assert_eq!(
        catalog["sha256"].as_str(),
        Some(in_page.as_str()),
        "catalog and downloaded file disagree"
    );
    assert_eq!(
        fetched["header"].as_str(),
        Some(in_page.as_str()),
        "x-backup-sha256 header and downloaded file disagree"
    );
    assert_eq!(fetched["size"], catalog["size_bytes"], "size differs");
    assert_eq!(sha256sum(&path), in_page, "file on disk differs");

    save_screenshot(&client, &ctx.screenshots, "admin-backups.png").await;

    // The overview now: failing, stale, protected, each with its reason.
    client.goto(&format!("{base}/")).await.expect("open /");
    assert_eq!(
        card_states(&client).await,
        [
            ("broken".to_string(), "failing".to_string()),
            ("old".to_string(), "stale".to_string()),
            ("app".to_string(), "protected".to_string()),
        ]
    );
    let summary = text_of(&client, "p.summary").await;
    assert!(
        summary.starts_with("3 databases · 1 failing · 1 stale · 1 protected"),
        "{summary}"
    );
    let broken = text_of(&client, "section#db-broken .reason").await;
    assert!(
        broken.contains("failing 2× since") && broken.contains("no such file"),
        "{broken}"
    );
    let old = text_of(&client, "section#db-old .reason").await;
    assert!(old.contains("older than stale_after"), "{old}");
    let app = text_of(&client, "section#db-app .reason").await;
    assert!(app.starts_with("last good backup"), "{app}");
    assert!(
        text_of(&client, "section#db-app .actions")
            .await
            .contains("Back up now"),
        "the overview is still busy after the backup"
    );
    // Every run square links to its run.
    let squares = client
        .execute(
            "return Array.from(document.querySelectorAll('.strip a.sq'), a => [a.getAttribute('href'), a.title]);",
            vec![],
        )
        .await
        .expect("read the run squares");
    let squares = squares.as_array().cloned().unwrap_or_default();
    assert!(squares.len() >= 5, "{squares:?}");
    // `old` has two good runs: its chart, with a table of the same numbers.
    client
        .find(Locator::Css("section#db-old svg.chart text"))
        .await
        .expect("the chart of old, with its labels");
    // Folded away in a <details>, so read its text rather than what is visible.
    let rows = client
        .execute(
            "return document.querySelector('section#db-old figure.chart table').textContent;",
            vec![],
        )
        .await
        .expect("read the chart's table");
    let rows = rows.as_str().unwrap_or_default();
    assert!(
        rows.contains("Size") && rows.contains("Duration") && rows.matches('#').count() >= 2,
        "{rows}"
    );
    for sq in &squares {
        let href = sq[0].as_str().unwrap_or_default();
        let id = href
            .strip_prefix("/backups/")
            .and_then(|i| i.parse::<i64>().ok());
        assert!(id.is_some(), "a run square links to {href}");
        assert!(sq[1].as_str().unwrap_or_default().starts_with('#'), "{sq}");
    }
    let first = squares[0][0].as_str().unwrap_or_default().to_string();
    client
        .find(Locator::Css(&format!(".strip a.sq[href='{first}']")))
        .await
        .expect("a run square")
        .click()
        .await
        .expect("click a run square");
    wait_for_path(&client, &first, Duration::from_secs(10)).await;
    assert!(text_of(&client, "main h1").await.starts_with("Backup #"));
    client.goto(&format!("{base}/")).await.expect("open /");
    assert_no_wrapping(&client, "the overview at 1280 px").await;
    save_screenshot(&client, &ctx.screenshots, "admin-overview.png").await;

    // The schedules page shows the fire whose backup failed as failed, in red.
    client
        .goto(&format!("{base}/schedules"))
        .await
        .expect("open /schedules");
    let fire = text_of(&client, "li.fire.red[data-result='failed']").await;
    assert!(fire.contains("failed"), "{fire}");
    assert_no_wrapping(&client, "the schedules at 1280 px").await;

    // The admin's users page and the audit log, which holds this session's login and download.
    client
        .goto(&format!("{base}/users"))
        .await
        .expect("open /users");
    assert_eq!(text_of(&client, "main h1").await, "Users");
    assert!(text_of(&client, "table.users").await.contains("admin"));
    assert_no_wrapping(&client, "the users page at 1280 px").await;
    save_screenshot(&client, &ctx.screenshots, "users.png").await;
    client
        .goto(&format!("{base}/audit"))
        .await
        .expect("open /audit");
    let audit = text_of(&client, "table.audit").await;
    assert!(
        audit.contains("user:admin") && audit.contains("download") && audit.contains("login"),
        "{audit}"
    );
    assert_no_wrapping(&client, "the audit log at 1280 px").await;
    save_screenshot(&client, &ctx.screenshots, "audit.png").await;

    // A page that does not exist: inside the layout, with its navigation.
    client
        .goto(&format!("{base}/no/such/page"))
        .await
        .expect("open a missing page");
    assert_eq!(text_of(&client, "main h1").await, "Not found");
    client
        .find(Locator::Css("header nav a[href='/backups']"))
        .await
        .expect("navigation on the not-found page");

    // The same pages on a phone.
    set_viewport_size(&client, 390, 844).await;
    client.goto(&format!("{base}/")).await.expect("open /");
    assert_no_wrapping(&client, "the overview at 390 px").await;
    save_screenshot(&client, &ctx.screenshots, "admin-overview-phone.png").await;
    client
        .goto(&format!("{base}/backups"))
        .await
        .expect("open /backups");
    client
        .find(Locator::Css(&format!("tr#backup-{}", row.id)))
        .await
        .expect("backup row on the phone-sized page");
    assert_no_wrapping(&client, "the backups at 390 px").await;
    save_screenshot(&client, &ctx.screenshots, "admin-backups-phone.png").await;
    client
        .goto(&format!("{base}/schedules"))
        .await
        .expect("open /schedules");
    assert_no_wrapping(&client, "the schedules at 390 px").await;
}

/// The overview's cards in page order: (database, state).
async fn card_states(client: &Client) -> Vec<(String, String)> {
    let value = client
        .execute(
            "return Array.from(document.querySelectorAll('section.card'), c => [c.id.replace('db-', ''), c.dataset.state, c.querySelector('.state').textContent]);",
            vec![],
        )
        .await
        .expect("read the cards");
    value
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            // The state is a word on the page, not only a colour or an attribute.
            assert_eq!(c[1], c[2], "card {c}");
            (
                c[0].as_str().unwrap_or_default().to_string(),
                c[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Fails when a status word or a time on the page breaks over two lines.
async fn assert_no_wrapping(client: &Client, what: &str) {
    let broken = client
        .execute(
            "return Array.from(document.querySelectorAll('.state, .when, time'))
                .filter(e => e.getClientRects().length > 1)
                .map(e => e.textContent);",
            vec![],
        )
        .await
        .expect("measure the page");
    assert_eq!(broken, json!([]), "{what}: these wrap over two lines");
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .expect("measure the page width");
    assert!(
        overflow.as_i64().unwrap_or(0) <= 0,
        "{what}: the page is {overflow} px wider than the window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_logs_in_backs_up_and_downloads_in_a_real_browser() {
    let browser = require_browser();
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    fs::create_dir_all(&screenshots).expect("create target/screenshots");

    let sandbox = Arc::new(Sandbox::new());
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let web_port = free_port();
    // Three databases: one whose file is missing (failing), one whose only backup is three
    // days old (stale), and `app`, backed up from the browser (protected).
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:{web_port}\"\n\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n\
         [[databases]]\nname = \"broken\"\nurl = \"sqlite:missing.db\"\nschedules = [\"0 0 1 1 *\"]\n\
         [[databases]]\nname = \"old\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    ));
    sandbox.run(&["backup", "-d", "broken"]).assert_code(1);
    sandbox.run(&["backup", "-d", "broken"]).assert_code(1);
    sandbox.run(&["backup", "-d", "old"]).assert_success();
    sandbox.run(&["backup", "-d", "old"]).assert_success();
    age_backups_and_record_a_failed_fire(&sandbox);
    let logs = tempfile::tempdir().expect("temp dir for logs");

    let _serve = serve_in(&sandbox, logs.path(), web_port);

    let session = Session::start(&browser, logs.path()).await;
    let client = session.client.clone();

    // The scenario runs in its own task so that the browser session is
    // closed even when an assertion fails.
    let ctx = Ctx {
        base: format!("http://127.0.0.1:{web_port}"),
        sandbox: Arc::clone(&sandbox),
        screenshots,
    };
    let outcome = tokio::spawn(scenario(client.clone(), ctx)).await;
    let _ = client.close().await;
    // Unwinding drops the guards, which then print the servers' logs.
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("browser scenario did not finish: {e}"),
        }
    }
}

/// `dbkeep serve` on `sandbox`'s configuration (the first admin's password [`PASSWORD`]),
/// answering on `port`.
fn serve_in(sandbox: &Sandbox, logs: &Path, port: u16) -> Guard {
    serve_with(sandbox, logs, port, &[])
}

/// [`serve_in`] with `envs` added to its environment.
pub(crate) fn serve_with(
    sandbox: &Sandbox,
    logs: &Path,
    port: u16,
    envs: &[(&str, &str)],
) -> Guard {
    let mut serve_cmd = Command::new(bin_path());
    serve_cmd.envs(envs.iter().copied());
    serve_cmd
        .current_dir(sandbox.path())
        .arg("--config")
        .arg(sandbox.config_path())
        .arg("serve")
        .env("DBKEEP_ADMIN_PASSWORD", PASSWORD)
        .env_remove("DBKEEP_LISTEN")
        .env("NO_COLOR", "1");
    for var in SCRUBBED_ENV {
        serve_cmd.env_remove(var);
    }
    let mut serve = Guard::spawn("dbkeep-serve", serve_cmd, logs);
    wait_for_http(&mut serve, port, "/login");
    serve
}

/// How many days of backups the retention page's browser test brings in.
const HISTORY_DAYS: i64 = 120;

/// Logs in through the form as the first admin, with `password`, and waits for the overview.
async fn log_in(client: &Client, base: &str, password: &str) {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("open /login");
    let form = client
        .find(Locator::Css("form[action$='/login']"))
        .await
        .expect("login form");
    form.find(Locator::Css("input[name=username]"))
        .await
        .expect("username field")
        .send_keys("admin")
        .await
        .expect("type the user name");
    form.find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type the password");
    form.find(Locator::Css("button[type=submit]"))
        .await
        .expect("login button")
        .click()
        .await
        .expect("click Log in");
    wait_for_path(client, "/", Duration::from_secs(10)).await;
}

/// How many elements match `css` on the current page.
async fn count(client: &Client, css: &str) -> u64 {
    client
        .execute(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .await
        .expect("count elements")
        .as_u64()
        .unwrap_or(0)
}

/// The retention page of a database with 120 days of imported backups under a
/// grandfather-father-son policy, one of them pinned: the legend, the calendar with the held
/// first prune, the pin and the kept days, at 1280 and 390 px. Its screenshot is the one in
/// docs/retention.png.
async fn retention_scenario(client: Client, ctx: Ctx, pinned_day: String) {
    let base = &ctx.base;
    log_in(&client, base, PASSWORD).await;
    client
        .find(Locator::Css(
            "section#db-app a[href='/databases/app/retention']",
        ))
        .await
        .expect("the card's link to the retention page")
        .click()
        .await
        .expect("click Retention");
    wait_for_path(&client, "/databases/app/retention", Duration::from_secs(10)).await;
    assert_eq!(text_of(&client, "main h1").await, "Retention of app");
    assert_eq!(count(&client, "ul.legend li").await, 7);
    let policy = text_of(&client, "section#dest-local .policy").await;
    assert_eq!(
        policy,
        "Policy: retention_days 0, keep_last 1, keep_daily 7, keep_weekly 4, keep_monthly 12"
    );
    // The first prune under this policy would delete most of the history: held.
    let held = text_of(&client, "section#dest-local .held-reason").await;
    assert!(held.starts_with("held: the policy"), "{held}");
    let cells = "section#dest-local .calendar .day";
    let drawn = count(&client, &format!("{cells}:not(.out)")).await;
    assert_eq!(drawn, HISTORY_DAYS as u64, "one square a day");
    assert_eq!(count(&client, &format!("{cells}.pinned")).await, 1);
    let kept = count(&client, &format!("{cells}.keep")).await;
    let waiting = count(&client, &format!("{cells}.held")).await;
    assert!((10..=20).contains(&kept), "{kept} kept days");
    assert_eq!(kept + waiting + 1, HISTORY_DAYS as u64);
    let title = client
        .find(Locator::Css(&format!(
            "{cells}.pinned[data-date='{pinned_day}']"
        )))
        .await
        .expect("the pinned day's square")
        .attr("title")
        .await
        .expect("its tooltip")
        .unwrap_or_default();
    assert!(
        title.contains("keep (pinned): pinned (note: before the billing migration)"),
        "{title}"
    );
    client
        .find(Locator::XPath(
            "//button[starts-with(normalize-space(.), 'Confirm prune (')]",
        ))
        .await
        .expect("the Confirm prune button");
    // The squares are squares, and the day's colours are the legend's.
    let size = client
        .execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.width, r.height];",
            vec![json!(format!("{cells}.keep"))],
        )
        .await
        .expect("measure a square");
    assert_eq!(size, json!([11, 11]), "{size}");
    assert_no_wrapping(&client, "the retention page at 1280 px").await;
    save_screenshot(&client, &ctx.screenshots, "retention.png").await;

    // On a phone the calendar scrolls inside its box, not the page, and shows the newest
    // weeks first.
    set_viewport_size(&client, 390, 844).await;
    client.refresh().await.expect("reload the page");
    assert_no_wrapping(&client, "the retention page at 390 px").await;
    let newest = client
        .execute(
            "const box = document.querySelector('section#dest-local .calendar-box').getBoundingClientRect();
             const days = document.querySelectorAll('section#dest-local .calendar .day:not(.out)');
             const day = days[days.length - 1].getBoundingClientRect();
             return day.left >= box.left && day.right <= box.right;",
            vec![],
        )
        .await
        .expect("find the newest day");
    assert_eq!(
        newest,
        json!(true),
        "the newest day is out of sight on a phone"
    );
    save_screenshot(&client, &ctx.screenshots, "retention-phone.png").await;

    // Pin the newest backup from its page, with a note, and see it on the page and the history.
    set_viewport_size(&client, 1280, 900).await;
    let newest = ctx.sandbox.rows_for("app")[0]["id"]
        .as_i64()
        .expect("an id");
    client
        .goto(&format!("{base}/backups/{newest}"))
        .await
        .expect("open the newest backup");
    assert_eq!(text_of(&client, "dd.where").await, "local");
    let form = client
        .find(Locator::Css(&format!(
            "form[action='/backups/{newest}/pin']"
        )))
        .await
        .expect("the pin form");
    form.find(Locator::Css("input[name=note]"))
        .await
        .expect("the note field")
        .send_keys("end of year <close>")
        .await
        .expect("type the note");
    form.find(Locator::XPath(".//button[normalize-space(.)='Pin']"))
        .await
        .expect("the Pin button")
        .click()
        .await
        .expect("click Pin");
    // The form comes back to the same address: wait for the pinned page itself.
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("dl.detail .note"))
        .await
        .expect("the page of the pinned backup");
    assert_eq!(
        text_of(&client, "dl.detail .note").await,
        "end of year <close>"
    );
    client
        .find(Locator::XPath("//button[normalize-space(.)='Unpin']"))
        .await
        .expect("the Unpin button");
    save_screenshot(&client, &ctx.screenshots, "backup-pinned.png").await;
    client
        .goto(&format!("{base}/backups?database=app"))
        .await
        .expect("open the history");
    let badge = text_of(&client, &format!("tr#backup-{newest} .badge-small.pinned")).await;
    assert_eq!(badge, "pinned: end of year <close>");
    assert_no_wrapping(&client, "the history with pins at 1280 px").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_page_draws_four_months_of_history_in_a_real_browser() {
    let browser = require_browser();
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    fs::create_dir_all(&screenshots).expect("create target/screenshots");

    let sandbox = Arc::new(Sandbox::new());
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let web_port = free_port();
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:{web_port}\"\n\
         keep_daily = 7\nkeep_weekly = 4\nkeep_monthly = 12\n\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    ));
    // A backup a day for 120 days, the last one today, brought in with one command.
    let today = chrono::Utc::now().date_naive();
    let days: Vec<chrono::NaiveDate> = (0..HISTORY_DAYS)
        .rev()
        .map(|n| today - chrono::Duration::days(n))
        .collect();
    let files = crate::web_retention::dated_backups(&sandbox.path().join("old"), &days);
    let mut import = sandbox.cmd();
    import.args(["import", "-d", "app"]).args(&files);
    run_cmd(&mut import).assert_success();
    let pinned_day = (today - chrono::Duration::days(45))
        .format("%Y-%m-%d")
        .to_string();
    let pinned = sandbox
        .rows_for("app")
        .into_iter()
        .find(|r| {
            r["started_at"]
                .as_str()
                .is_some_and(|t| t.starts_with(&pinned_day))
        })
        .expect("the backup to pin");
    sandbox
        .run(&[
            "pin",
            &pinned["id"].to_string(),
            "--note",
            "before the billing migration",
        ])
        .assert_success();
    let logs = tempfile::tempdir().expect("temp dir for logs");

    let _serve = serve_in(&sandbox, logs.path(), web_port);

    let session = Session::start(&browser, logs.path()).await;
    let client = session.client.clone();
    let ctx = Ctx {
        base: format!("http://127.0.0.1:{web_port}"),
        sandbox: Arc::clone(&sandbox),
        screenshots,
    };
    let outcome = tokio::spawn(retention_scenario(client.clone(), ctx, pinned_day)).await;
    let _ = client.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("browser scenario did not finish: {e}"),
        }
    }
}

/// Fills the fields of the form `form_css` with `values` and submits it.
pub(crate) async fn submit(client: &Client, form_css: &str, values: &[(&str, &str)]) {
    let form = client
        .find(Locator::Css(form_css))
        .await
        .unwrap_or_else(|e| panic!("no form {form_css}: {e}"));
    for (name, value) in values {
        let field = form
            .find(Locator::Css(&format!("input[name={name}]")))
            .await
            .unwrap_or_else(|e| panic!("no field {name} in {form_css}: {e}"));
        field.clear().await.expect("clear the field");
        field.send_keys(value).await.expect("type into the field");
    }
    // Mark the page, so that the wait below ends only once the answer's page has replaced it.
    client
        .execute("window.dbkeepOldPage = true;", vec![])
        .await
        .expect("mark the page");
    form.find(Locator::Css("button[type=submit]"))
        .await
        .expect("a submit button")
        .click()
        .await
        .expect("submit the form");
    let start = Instant::now();
    loop {
        let loaded = client
            .execute(
                "return window.dbkeepOldPage === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if loaded {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "submitting {form_css} loaded no new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// Turns two-factor login on from the account page (QR code, secret, code), then logs in
/// with a wrong code, a right one, and a recovery code.
async fn two_factor_scenario(client: Client, base: String, screenshots: PathBuf) {
    client
        .goto(&format!("{base}/login"))
        .await
        .expect("open /login");
    submit(
        &client,
        "form[action$='/login']",
        &[("username", "admin"), ("password", PASSWORD)],
    )
    .await;
    // require_2fa covers admins: the admin is sent to set it up.
    wait_for_path(&client, "/account", Duration::from_secs(10)).await;
    submit(&client, "form[action$='/account/2fa/start']", &[]).await;
    assert_eq!(count(&client, "figure.qr svg").await, 1, "no QR code drawn");
    save_screenshot(&client, &screenshots, "two-factor-enrolment.png").await;
    let secret = text_of(&client, "code.secret").await;
    let code = dbkeep::twofactor::code_at(&secret, unix_now()).expect("a code");
    submit(
        &client,
        "form[action$='/account/2fa/confirm']",
        &[("code", &code)],
    )
    .await;
    let codes = client
        .execute(
            "return [...document.querySelectorAll('ul.codes code')].map(c => c.textContent);",
            vec![],
        )
        .await
        .expect("read the recovery codes");
    let codes: Vec<String> = serde_json::from_value(codes).expect("a list of codes");
    assert_eq!(codes.len(), 10, "{codes:?}");
    // The overview opens now.
    client.goto(&format!("{base}/")).await.expect("open /");
    wait_for_path(&client, "/", Duration::from_secs(10)).await;
    submit(&client, "form.logout", &[]).await;
    wait_for_path(&client, "/login", Duration::from_secs(10)).await;

    // The password, then a wrong code (refused), then the next step's code.
    submit(
        &client,
        "form[action$='/login']",
        &[("username", "admin"), ("password", PASSWORD)],
    )
    .await;
    wait_for_path(&client, "/login/2fa?next=%2F", Duration::from_secs(10)).await;
    submit(&client, "form[action$='/login/2fa']", &[("code", "000000")]).await;
    assert_eq!(text_of(&client, "p.error").await, "Wrong code.");
    let next = dbkeep::twofactor::code_at(&secret, unix_now() + 30).expect("a code");
    submit(&client, "form[action$='/login/2fa']", &[("code", &next)]).await;
    wait_for_path(&client, "/", Duration::from_secs(10)).await;
    submit(&client, "form.logout", &[]).await;
    wait_for_path(&client, "/login", Duration::from_secs(10)).await;

    // A recovery code lets in once.
    for attempt in 0..2 {
        submit(
            &client,
            "form[action$='/login']",
            &[("username", "admin"), ("password", PASSWORD)],
        )
        .await;
        wait_for_path(&client, "/login/2fa?next=%2F", Duration::from_secs(10)).await;
        submit(
            &client,
            "form[action$='/login/2fa']",
            &[("code", &codes[0])],
        )
        .await;
        if attempt == 0 {
            wait_for_path(&client, "/", Duration::from_secs(10)).await;
            let account = format!("{base}/account");
            client.goto(&account).await.expect("open /account");
            assert!(
                text_of(&client, "main")
                    .await
                    .contains("9 recovery code(s) left")
            );
            submit(&client, "form.logout", &[]).await;
            wait_for_path(&client, "/login", Duration::from_secs(10)).await;
        } else {
            assert_eq!(text_of(&client, "p.error").await, "Wrong code.");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_login_is_set_up_and_used_in_a_real_browser() {
    let browser = require_browser();
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    fs::create_dir_all(&screenshots).expect("create target/screenshots");
    let sandbox = Sandbox::new();
    create_sample_sqlite(&sandbox.path().join("app.db"));
    let web_port = free_port();
    sandbox.write_config(&format!(
        "timezone = \"UTC\"\nlisten = \"127.0.0.1:{web_port}\"\nauth = {{ require_2fa = \"admins\" }}\n\n\
         [[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\nschedules = [\"0 0 1 1 *\"]\n"
    ));
    let logs = tempfile::tempdir().expect("temp dir for logs");
    let _serve = serve_in(&sandbox, logs.path(), web_port);
    let session = Session::start(&browser, logs.path()).await;
    let client = session.client.clone();
    let base = format!("http://127.0.0.1:{web_port}");
    let outcome = tokio::spawn(two_factor_scenario(client.clone(), base, screenshots)).await;
    let _ = client.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("browser scenario did not finish: {e}"),
        }
    }
    // The audit log tells the same story.
    let audit = sandbox.run(&["audit", "--action", "login"]);
    audit.assert_success();
    for want in [
        "with a TOTP code",
        "with a recovery code (9 left)",
        "wrong second-factor code",
    ] {
        assert!(audit.stdout.contains(want), "{want}: {}", audit.stdout);
    }
}
