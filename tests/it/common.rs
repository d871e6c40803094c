//! Shared helpers for the integration tests: a sandbox directory with a
//! config file, a runner for the real `dbkeep` binary, catalog inspection
//! through `list --json`, and PostgreSQL / SQLite utilities.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// Environment variables that would leak configuration from the developer's
/// shell into the binary under test.
pub const SCRUBBED_ENV: &[&str] = &[
    "DBKEEP_CONFIG",
    "DBKEEP_BACKUP_DIR",
    "DBKEEP_RETENTION_DAYS",
    "RUST_LOG",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGDATABASE",
    "PGUSER",
    "PGHOST",
    "PGPORT",
];

/// Path of the binary under test.
pub fn bin_path() -> &'static str {
    env!("CARGO_BIN_EXE_dbkeep")
}

/// Returns a name that is unique across this process and across concurrently
/// running test processes: `dbkeep_t_<tag>_<pid>_<n>`.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("dbkeep_t_{tag}_{}_{n}", std::process::id())
}

/// The result of running the binary, with a `Debug` output that shows
/// everything needed to understand a failed assertion.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the full output unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code (wanted {code})\n{self:?}"
        );
        self
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    /// stdout and stderr together, for "never printed" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A temporary directory holding `dbkeep.toml`, the catalog, the databases
/// under test and the backup folder.
pub struct Sandbox {
    dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dbkeep-it-")
            .tempdir()
            .expect("create temp dir");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path as a string, for filters and substring checks.
    pub fn path_str(&self) -> String {
        self.path().display().to_string()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("dbkeep.toml")
    }

    pub fn write_config(&self, toml: &str) {
        fs::write(self.config_path(), toml).expect("write dbkeep.toml");
    }

    /// Default backup folder (`backup_dir = "backups"`).
    pub fn backup_dir(&self) -> PathBuf {
        self.path().join("backups")
    }

    /// `BACKUP_DIR/<database>` for the default backup folder.
    pub fn db_dir(&self, database: &str) -> PathBuf {
        self.backup_dir().join(database)
    }

    /// Default catalog location (`dbkeep.sqlite3` beside the config).
    pub fn catalog_path(&self) -> PathBuf {
        self.path().join("dbkeep.sqlite3")
    }

    /// The binary with a clean environment, running inside the sandbox,
    /// without `--config`.
    pub fn bare_cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(bin_path());
        cmd.current_dir(self.path());
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1");
        cmd.timeout(Duration::from_secs(600));
        cmd
    }

    /// The binary with `--config <sandbox>/dbkeep.toml`.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.bare_cmd();
        cmd.arg("--config").arg(self.config_path());
        cmd
    }

    /// Runs `dbkeep --config <sandbox>/dbkeep.toml ARGS...`.
    pub fn run(&self, args: &[&str]) -> Run {
        run_cmd(self.cmd().args(args))
    }

    /// Runs `dbkeep --config <sandbox>/dbkeep.toml ARGS...` with `stdin` as its input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_cmd(self.cmd().args(args).write_stdin(stdin.to_string()))
    }

    /// Runs `dbkeep list --json` and returns the parsed rows (newest first).
    #[track_caller]
    pub fn list_json(&self) -> Vec<Value> {
        let run = self.run(&["list", "--json"]);
        run.assert_success();
        parse_rows(&run.stdout)
    }

    /// Rows of `list --json` for one database.
    #[track_caller]
    pub fn rows_for(&self, database: &str) -> Vec<Value> {
        self.list_json()
            .into_iter()
            .filter(|row| row["database"] == database)
            .collect()
    }

    /// Raw bytes of the catalog database and its side files, for checks that
    /// a secret never reaches the catalog.
    pub fn catalog_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-journal", "-shm"] {
            let mut p = self.catalog_path().into_os_string();
            p.push(suffix);
            if let Ok(b) = fs::read(PathBuf::from(p)) {
                bytes.extend_from_slice(&b);
            }
        }
        bytes
    }
}

/// Runs an assert_cmd command to completion and captures its output.
pub fn run_cmd(cmd: &mut assert_cmd::Command) -> Run {
    Run::from_output(cmd.output().expect("run dbkeep"))
}

/// Parses the output of `list --json`.
#[track_caller]
pub fn parse_rows(stdout: &str) -> Vec<Value> {
    let value: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("list --json printed invalid JSON ({e}):\n{stdout}"));
    match value {
        Value::Array(rows) => rows,
        other => panic!("list --json did not print an array: {other}"),
    }
}

/// Fields every `list --json` object must have, and no others.
pub const JSON_FIELDS: &[&str] = &[
    "id",
    "database",
    "kind",
    "status",
    "trigger",
    "file_name",
    "path",
    "size_bytes",
    "sha256",
    "compression",
    "started_at",
    "finished_at",
    "duration_ms",
    "error",
    "pruned_at",
    "pinned",
    "pin_note",
    "verified_at",
    "verify_level",
    "verify_status",
    "verify_error",
    "encrypted",
    "copies",
    "instance",
];

/// Asserts the general shape of a successful backup row and returns its
/// file path.
#[track_caller]
pub fn assert_success_row(row: &Value, database: &str, kind: &str) -> PathBuf {
    assert_eq!(row["database"], database, "{row:#}");
    assert_eq!(row["kind"], kind, "{row:#}");
    assert_eq!(row["status"], "success", "{row:#}");
    assert!(row["error"].is_null(), "success row has an error: {row:#}");
    let path = PathBuf::from(row["path"].as_str().expect("path is a string"));
    assert!(path.is_absolute(), "path is not absolute: {row:#}");
    let file_name = row["file_name"].as_str().expect("file_name is a string");
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some(file_name),
        "path and file_name disagree: {row:#}"
    );
    path
}

/// Asserts the row is `failed` with a non-empty error and returns the error.
#[track_caller]
pub fn assert_failed_row(row: &Value, database: &str) -> String {
    assert_eq!(row["database"], database, "{row:#}");
    assert_eq!(row["status"], "failed", "{row:#}");
    let error = row["error"].as_str().unwrap_or_default().to_string();
    assert!(
        !error.trim().is_empty(),
        "failed row without error: {row:#}"
    );
    error
}

/// Names of all entries (hidden ones included) in `dir`, sorted; empty when
/// the folder does not exist.
pub fn file_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| {
            e.expect("read dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// All non-directory entries below `dir`, recursively; empty when the
/// folder does not exist.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let entry = entry.expect("read dir entry");
        let path = entry.path();
        if entry.file_type().expect("file type").is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Permission bits (`mode & 0o777`) of a path.
pub fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// sha256 of a file as computed by `sha256sum`.
pub fn sha256sum(path: &Path) -> String {
    let out = StdCommand::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

/// Asserts that `needle` occurs nowhere in `haystack` (without printing the
/// needle's surroundings twice in the message).
#[track_caller]
pub fn assert_absent(haystack: &str, needle: &str, what: &str) {
    assert!(
        !haystack.contains(needle),
        "secret leaked into {what}:\n{haystack}"
    );
}

/// Asserts that `needle` does not occur in raw bytes.
#[track_caller]
pub fn assert_absent_bytes(haystack: &[u8], needle: &str, what: &str) {
    let found = haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes());
    assert!(!found, "secret leaked into {what}");
}

/// Escapes a literal for use inside an insta filter regex.
pub fn regex_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() * 2);
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Snapshot settings that hide the sandbox path, timestamps, durations and
/// sizes.
pub fn snapshot_settings(sandbox: &Sandbox) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(true);
    settings.add_filter(&regex_escape(&sandbox.path_str()), "[DIR]");
    settings.add_filter(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2}| UTC)?",
        "[TIME]",
    );
    settings.add_filter(r"\d{8}_\d{6}", "[TS]");
    settings.add_filter(
        r"\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|m|min|h)\b( \d+(\.\d+)?\s?(ms|s))?",
        "[DURATION]",
    );
    settings.add_filter(
        r"\b\d+(\.\d+)?\s?(B|bytes|KiB|MiB|GiB|kB|KB|MB|GB)\b",
        "[SIZE]",
    );
    settings
}

// ---------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------

/// A textual, order-independent description of a SQLite database: its
/// schema (`sqlite_master`) and the content of every table.
pub fn sqlite_fingerprint(conn: &rusqlite::Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut tables = Vec::new();
    {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            .expect("prepare sqlite_master");
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .expect("query sqlite_master");
        for row in rows {
            let (ty, name, tbl, sql) = row.expect("sqlite_master row");
            if ty == "table" {
                tables.push(name.clone());
            }
            out.push(format!("schema {ty} {name} {tbl} {sql:?}"));
        }
    }
    for table in tables {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {quoted}"))
            .expect("prepare table scan");
        let ncols = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut cells = Vec::with_capacity(ncols);
                for i in 0..ncols {
                    cells.push(format!("{:?}", r.get::<_, rusqlite::types::Value>(i)?));
                }
                Ok(cells.join(" | "))
            })
            .expect("scan table")
            .map(|r| r.expect("table row"))
            .collect();
        rows.sort();
        out.push(format!("table {table}: {} rows", rows.len()));
        out.extend(rows.into_iter().map(|r| format!("  {table}: {r}")));
    }
    out
}

/// Result of `PRAGMA integrity_check` ("ok" when healthy).
pub fn sqlite_integrity(conn: &rusqlite::Connection) -> String {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .expect("prepare integrity_check");
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("integrity_check")
        .map(|r| r.expect("integrity_check row"))
        .collect();
    lines.join("\n")
}

/// Opens a private copy of a backup file, so that inspecting it never
/// creates side files (`-wal`, `-shm`) in the backup folder or changes it.
pub fn open_copy(path: &Path) -> (TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("inspect.db");
    fs::copy(path, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
    let conn = rusqlite::Connection::open(&copy).expect("open backup copy");
    (dir, conn)
}

/// Decompresses `path` with `tool -dc` (gzip or zstd) into a fresh file in a
/// new temp dir and opens it.
pub fn open_decompressed(tool: &str, path: &Path) -> (TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("restored.db");
    let out_file = fs::File::create(&out_path).expect("create restored.db");
    let status = StdCommand::new(tool)
        .arg("-dc")
        .arg(path)
        .stdout(out_file)
        .status()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(status.success(), "{tool} -dc {} failed", path.display());
    let conn = rusqlite::Connection::open(&out_path).expect("open decompressed database");
    (dir, conn)
}

/// Creates a small but varied SQLite database at `path`.
pub fn create_sample_sqlite(path: &Path) {
    let conn = rusqlite::Connection::open(path).expect("create sqlite db");
    conn.execute_batch(
        r#"
        CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            email TEXT UNIQUE,
            balance REAL,
            avatar BLOB
        );
        CREATE INDEX users_name ON users(name);
        CREATE TABLE "order items" (
            id INTEGER PRIMARY KEY,
            user_id INTEGER REFERENCES users(id),
            sku TEXT,
            qty INTEGER NOT NULL DEFAULT 1
        );
        CREATE VIEW user_orders AS
            SELECT u.name, count(o.id) AS n FROM users u
            LEFT JOIN "order items" o ON o.user_id = u.id GROUP BY u.id;
        CREATE TRIGGER users_touch AFTER UPDATE ON users
            BEGIN UPDATE users SET balance = balance WHERE id = NEW.id; END;
        INSERT INTO users (name, email, balance, avatar) VALUES
            ('Zoë Ångström', 'zoe@example.org', 12.5, x'00ff10deadbeef'),
            ('山田太郎', NULL, NULL, NULL),
            ('emoji 🐘🎉', 'e@example.com', -3.25, x''),
            ('quote '' and "double"', NULL, 0.0, randomblob(64));
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)
        INSERT INTO "order items" (user_id, sku, qty)
            SELECT 1 + x % 4, 'sku-' || x, x % 7 FROM c;
        "#,
    )
    .expect("populate sqlite db");
}

/// Creates a SQLite database of roughly `mb` megabytes with the given
/// journal mode ("wal" or "delete") and a `writes` table for a concurrent
/// writer.
pub fn create_large_sqlite(path: &Path, mb: usize, journal_mode: &str) {
    let conn = rusqlite::Connection::open(path).expect("create sqlite db");
    let mode: String = conn
        .query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |r| {
            r.get(0)
        })
        .expect("set journal mode");
    assert_eq!(mode.to_lowercase(), journal_mode.to_lowercase());
    let rows = mb * 1000;
    conn.execute_batch(&format!(
        r#"
        CREATE TABLE big (id INTEGER PRIMARY KEY, data BLOB NOT NULL, label TEXT);
        CREATE INDEX big_label ON big(label);
        CREATE TABLE writes (id INTEGER PRIMARY KEY, ts REAL NOT NULL, payload BLOB);
        BEGIN;
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
        INSERT INTO big (id, data, label) SELECT x, randomblob(900), 'row ' || x FROM c;
        COMMIT;
        "#
    ))
    .expect("populate large sqlite db");
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_PG_AUTH_URL: &str = "postgres://postgres@127.0.0.1:55432/postgres";
pub const DEFAULT_PG_AUTH_PASSWORD: &str = "dbkeep-test-secret";

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Superuser URL of the trust-auth test server.
pub fn pg_url() -> String {
    env_or("DBKEEP_TEST_PG_URL", DEFAULT_PG_URL)
}

/// Superuser URL (without password) of the password-demanding test server.
pub fn pg_auth_url() -> String {
    env_or("DBKEEP_TEST_PG_AUTH_URL", DEFAULT_PG_AUTH_URL)
}

/// Correct password of the password-demanding test server.
pub fn pg_auth_password() -> String {
    env_or("DBKEEP_TEST_PG_AUTH_PASSWORD", DEFAULT_PG_AUTH_PASSWORD)
}

/// `base` with its database name replaced by `database` and, optionally,
/// a password set.
pub fn url_with(base: &str, database: &str, password: Option<&str>) -> String {
    let mut url = url::Url::parse(base).unwrap_or_else(|e| panic!("bad test URL {base}: {e}"));
    url.set_path(&format!("/{database}"));
    if let Some(pw) = password {
        url.set_password(Some(pw)).expect("set password");
    }
    url.to_string()
}

/// A URL with any password removed, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// Runs `psql` with the given SQL script on stdin, with ON_ERROR_STOP, and
/// returns stdout (unaligned, tuples only).
pub fn try_psql(url: &str, password: Option<&str>, sql: &str) -> Result<String, String> {
    let mut cmd = StdCommand::new("psql");
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url])
        .env("PGCONNECT_TIMEOUT", "5")
        .env_remove("PGPASSFILE")
        .env_remove("PGSERVICE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match password {
        Some(pw) => cmd.env("PGPASSWORD", pw),
        None => cmd.env_remove("PGPASSWORD"),
    };
    let mut child = cmd.spawn().map_err(|e| format!("cannot run psql: {e}"))?;
    {
        let mut stdin = child.stdin.take().expect("psql stdin");
        stdin
            .write_all(sql.as_bytes())
            .map_err(|e| format!("writing to psql: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Like [`try_psql`] but panics on error.
#[track_caller]
pub fn psql(url: &str, password: Option<&str>, sql: &str) -> String {
    try_psql(url, password, sql)
        .unwrap_or_else(|e| panic!("psql on {} failed: {e}\nSQL:\n{sql}", redact(url)))
}

/// Fails the test (never skips) when a test server does not answer.
#[track_caller]
pub fn require_pg(url: &str, password: Option<&str>) {
    if let Err(e) = try_psql(url, password, "SELECT 1;") {
        panic!(
            "PostgreSQL test server at {} is not reachable: {}\n\
             Start the test services with scripts/test.sh (or point \
             DBKEEP_TEST_PG_URL / DBKEEP_TEST_PG_AUTH_URL at running servers).",
            redact(url),
            e.trim()
        );
    }
}

/// Held by a test that makes, drops or restores the server's roles, one such test at a time: a
/// stored roles file holds every role of the server, so another test's `restore
/// --with-globals` would bring back a role this one dropped, and leave it behind.
pub fn server_roles() -> std::sync::MutexGuard<'static, ()> {
    static ROLES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ROLES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A new database whose table `t` (one row, `value`) belongs to `role`, a role made for it
/// (drop it when done: roles belong to the server, not the database).
pub fn pg_owned_by_a_new_role(tag: &str, role: &str, value: i32) -> PgDb {
    let db = PgDb::create(tag);
    psql(&pg_url(), None, &format!("CREATE ROLE {role} NOLOGIN;"));
    db.psql(&format!(
        "CREATE TABLE t (x int); INSERT INTO t VALUES ({value}); ALTER TABLE t OWNER TO {role};"
    ));
    db
}

/// Asserts that `db` holds what [`pg_owned_by_a_new_role`] made: `t`, owned by `role`, with
/// its one row `value`.
#[track_caller]
pub fn assert_owned_by(db: &PgDb, role: &str, value: i32) {
    assert_eq!(
        db.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 't'"),
        role
    );
    assert_eq!(db.scalar("SELECT x FROM t"), value.to_string());
}

/// A uniquely named database on the trust-auth test server, dropped when the
/// guard goes out of scope.
pub struct PgDb {
    pub name: String,
    admin_url: String,
}

impl PgDb {
    /// Creates an empty database named `dbkeep_t_<tag>_<pid>_<n>`.
    #[track_caller]
    pub fn create(tag: &str) -> Self {
        let admin_url = pg_url();
        require_pg(&admin_url, None);
        let name = unique_name(tag);
        psql(
            &admin_url,
            None,
            &format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE);\nCREATE DATABASE \"{name}\";"
            ),
        );
        PgDb { name, admin_url }
    }

    /// A guard for a database that exists already (made by the code under test), dropped with it.
    pub fn existing(name: String) -> Self {
        PgDb {
            name,
            admin_url: pg_url(),
        }
    }

    /// URL of this database (no password; the server trusts local users).
    pub fn url(&self) -> String {
        url_with(&self.admin_url, &self.name, None)
    }

    /// Runs SQL in this database.
    #[track_caller]
    pub fn psql(&self, sql: &str) -> String {
        psql(&self.url(), None, sql)
    }

    /// Runs a query and returns its trimmed single-value output.
    #[track_caller]
    pub fn scalar(&self, sql: &str) -> String {
        self.psql(sql).trim().to_string()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = try_psql(
            &self.admin_url,
            None,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE);", self.name),
        );
    }
}

/// Feeds `decompress -dc file` (or the plain file when `decompress` is None)
/// into `psql -v ON_ERROR_STOP=1` connected to `target_url`.
#[track_caller]
pub fn restore_sql_dump(file: &Path, decompress: Option<&str>, target_url: &str) {
    let mut psql_cmd = StdCommand::new("psql");
    psql_cmd
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target_url])
        .env_remove("PGPASSWORD")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (decompressor, psql_out) = match decompress {
        Some(tool) => {
            let mut dec = StdCommand::new(tool)
                .arg("-dc")
                .arg(file)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("run {tool}: {e}"));
            let pipe = dec.stdout.take().expect("decompressor stdout");
            let out = psql_cmd
                .stdin(Stdio::from(pipe))
                .output()
                .expect("run psql");
            (
                Some((tool, dec.wait().expect("wait for decompressor"))),
                out,
            )
        }
        None => {
            let f = fs::File::open(file).expect("open dump");
            (None, psql_cmd.stdin(f).output().expect("run psql"))
        }
    };
    if let Some((tool, status)) = decompressor {
        assert!(status.success(), "{tool} -dc {} failed", file.display());
    }
    assert!(
        psql_out.status.success(),
        "restoring {} with psql failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&psql_out.stderr)
    );
}

/// Quotes a PostgreSQL identifier.
pub fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A program in the test script's virtualenv (`target/test-venv/bin/NAME`), which must exist.
#[track_caller]
pub fn venv_bin(name: &str, what: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-venv/bin")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: run the tests with scripts/test.sh, which installs {what}",
        bin.display()
    );
    bin
}

/// A test server process, stopped when dropped.
pub struct Running(std::process::Child);

impl Running {
    /// Stops it as an operator would (SIGTERM), and waits for it to exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.0.id().to_string();
        let _ = StdCommand::new("kill").args(["-TERM", &pid]).status();
        self.0.wait().ok()
    }

    /// Stops it now.
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `cmd` quietly and waits until something listens on loopback `port`.
#[track_caller]
pub fn spawn_listening(cmd: &mut StdCommand, port: u16, what: &str) -> Running {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{what} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Running(child)
}

/// What `script` prints, run by bash with `set -euo pipefail`; it must succeed.
#[track_caller]
pub fn bash(script: &str) -> Vec<u8> {
    let out = StdCommand::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; {script}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A throwaway's owner part as dbkeep names it: this machine's mark and a process id.
pub fn owner_part(pid: u32) -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mark = dbkeep::token::token_digest(host.trim())[..8].to_string();
    format!("{mark}_{pid}")
}

/// The id of a process that has just ended.
pub fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Makes backup `id`'s record match `file` as it is now (a hand-edited or damaged file whose
/// checksum still passes), so that what follows tests what lies beyond the checksum.
pub fn record_as_is(sandbox: &Sandbox, id: i64, file: &std::path::Path) {
    let conn = rusqlite::Connection::open(sandbox.catalog_path()).unwrap();
    conn.execute(
        "UPDATE backups SET sha256 = ?1, size_bytes = ?2 WHERE id = ?3",
        rusqlite::params![
            sha256sum(file),
            fs::metadata(file).unwrap().len() as i64,
            id
        ],
    )
    .unwrap();
}
