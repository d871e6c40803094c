//! Reaching the PostgreSQL catalog: the driver's settings from the URL and the password, a small
//! pool of connections, and the schema's migrations, applied under an advisory lock so that
//! several instances starting at once migrate it once.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::r2d2;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::postgres_tls::{self as tls, SslMode};
use dbkeep_config::config::ServerTarget;

/// The pool of connections one catalog keeps.
pub(super) type Pool = r2d2::Pool<Manager>;

/// Statements one connection keeps prepared at most (dbkeep sends a few dozen different ones).
const STATEMENTS_KEPT: usize = 256;

/// The pool's connection manager: every connection may use TLS (whether it does is the URL's
/// `sslmode`), and keeps the statements it prepared.
pub(super) struct Manager(PostgresConnectionManager<MakeRustlsConnect>);

/// A connection handed out again within this long of its last checkout is not checked with a
/// round trip first: under load that check was half of a short request's round trips. One the
/// server ended in that time fails its next statement; a read is then repeated on another
/// connection (see [`lost`]).
pub(super) const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A connection of the pool with the statements it prepared, by their text: a statement sent
/// again is executed at once, without another parse on the server and the round trip for it.
pub(super) struct Connection {
    /// The driver's connection.
    pub client: postgres::Client,
    prepared: HashMap<String, postgres::Statement>,
    /// When the pool last handed it out.
    checked_out: Option<Instant>,
    /// Found unusable (the server ended it): the pool drops it instead of keeping it.
    broken: bool,
}

impl Connection {
    /// Notes that `error` happened on this connection; true when it says the connection is
    /// lost, which makes the pool drop it.
    pub(super) fn lost(&mut self, error: &postgres::Error) -> bool {
        self.broken |= lost(error);
        self.broken
    }

    /// `sql` prepared on this connection: kept from an earlier call, or prepared now.
    pub(super) fn prepared(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.prepared.len() < STATEMENTS_KEPT {
            self.prepared.insert(sql.to_string(), statement.clone());
        }
        Ok(statement)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection {
            client: self.0.connect()?,
            prepared: HashMap::new(),
            checked_out: None,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), postgres::Error> {
        let trusted = conn
            .checked_out
            .is_some_and(|at| at.elapsed() < TRUSTED_FOR);
        if !trusted || conn.client.is_closed() {
            self.0.is_valid(&mut conn.client)?;
        }
        conn.checked_out = Some(Instant::now());
        Ok(())
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.broken || self.0.has_broken(&mut conn.client)
    }
}

/// Whether `error` says the connection is gone (closed, reset, or ended by the server), so
/// that a statement which changes nothing may be sent again on another one.
pub(super) fn lost(error: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    let ended = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::IDLE_SESSION_TIMEOUT,
    ];
    error.is_closed()
        || error.code().is_some_and(|code| ended.contains(code))
        || std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
}

/// The limit on each attempt to reach the server, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one process keeps at most: the runner, the scheduler and the web's blocking
/// threads share them.
const POOL_SIZE: u32 = 4;
/// How long a call waits for a free (or new) connection before it fails.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// The advisory lock (per database) held while the schema is checked and migrated: "dbkeep".
const MIGRATION_LOCK: i64 = 0x6462_6b65_6570;

/// Schema versions, applied in order; never edit one that has shipped, add the next.
pub(super) const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_catalog.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_instance_columns.sql"),
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_running_fires.sql"),
    ),
    (
        4,
        include_str!("../migrations/postgres/0004_change_stamp.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_channel_names.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_pins_and_retention_marks.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_disk_alerts.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/0008_discovered.sql"),
    ),
    (
        9,
        include_str!("../migrations/postgres/0009_roles_and_audit.sql"),
    ),
    (
        10,
        include_str!("../migrations/postgres/0010_two_factor.sql"),
    ),
    (
        11,
        include_str!("../migrations/postgres/0011_single_sign_on.sql"),
    ),
    (
        12,
        include_str!("../migrations/postgres/0012_wal_archive.sql"),
    ),
];

/// What [`settings`] makes of a target: the driver's configuration and its TLS connector.
pub(super) struct Settings {
    /// Host, port, user, database, password, timeouts.
    pub config: postgres::Config,
    /// The TLS connector `sslmode` asks for.
    pub tls: MakeRustlsConnect,
}

/// The driver's settings for `target`: its URL (less the TLS keys dbkeep handles itself), its
/// password, a connect timeout and the TLS that `sslmode` and `sslrootcert` ask for.
///
/// # Errors
/// A readable message (never naming the password) when the URL, its TLS settings or the
/// password's source is unusable.
pub(super) fn settings(target: &ServerTarget) -> Result<Settings, String> {
    let (url, mode, root) = tls::split(&target.url)?;
    let mut config = postgres::Config::from_str(&url)
        .map_err(|e| format!("the URL is not usable: {}", describe(&e)))?;
    config.ssl_mode(match mode {
        SslMode::Disable => postgres::config::SslMode::Disable,
        SslMode::Prefer => postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            postgres::config::SslMode::Require
        }
    });
    if let Some(password) = target.resolve_password()? {
        config.password(password.expose());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("dbkeep");
    }
    Ok(Settings {
        config,
        tls: tls::connector(mode, root.as_deref())?,
    })
}

/// Connects once, outside any pool (to migrate, or for tests).
///
/// # Errors
/// Why the server could not be reached or refused the login, in words.
pub(super) fn connect(settings: &Settings) -> Result<postgres::Client, String> {
    settings.config.connect(settings.tls.clone()).map_err(|e| {
        let text = describe(&e);
        if text.contains("password missing") {
            format!(
                "cannot connect: the server asks for a password; set catalog_password_env (or PGPASSWORD) ({text})"
            )
        } else {
            format!("cannot connect: {text}")
        }
    })
}

/// The pool of connections: none opened until needed, an idle one closed after a while, a
/// broken one dropped (checked before use, unless it was handed out less than
/// [`TRUSTED_FOR`] ago).
pub(super) fn pool(settings: Settings, url: &str, last_error: LastError) -> Pool {
    r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .min_idle(Some(0))
        .idle_timeout(Some(IDLE_TIMEOUT))
        .connection_timeout(CHECKOUT_TIMEOUT)
        .error_handler(Box::new(PoolErrors {
            url: url.to_string(),
            last: last_error,
        }))
        .build_unchecked(Manager(PostgresConnectionManager::new(
            settings.config,
            settings.tls,
        )))
}

/// The last reason the pool could not connect, in full (the pool's own error keeps only the
/// first words of it).
pub(super) type LastError = Arc<Mutex<Option<String>>>;

/// Logs the pool's failed connections (new ones, and idle ones found broken) and keeps the
/// last reason.
#[derive(Debug)]
struct PoolErrors {
    url: String,
    last: LastError,
}

impl r2d2::HandleError<postgres::Error> for PoolErrors {
    fn handle_error(&self, error: postgres::Error) {
        let text = describe(&error);
        tracing::warn!(catalog = %self.url, "a connection to the catalog failed: {text}");
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
    }
}

/// Brings the schema to the newest version this build knows, under an advisory lock so that
/// instances starting at once migrate it once; returns the version it has.
///
/// # Errors
/// When the schema is newer than this build knows, or a migration fails (nothing of it stays).
pub(super) fn migrate(client: &mut postgres::Client) -> Result<i32, String> {
    let db = |e: postgres::Error| describe(&e);
    let mut tx = client.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(db)?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('dbkeep_schema_migrations') IS NOT NULL",
            &[],
        )
        .map_err(db)?
        .get(0);
    if !exists {
        tx.batch_execute(
            "CREATE TABLE dbkeep_schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .map_err(db)?;
    }
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM dbkeep_schema_migrations",
            &[],
        )
        .map_err(db)?
        .get(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > latest {
        return Err(format!(
            "its schema is version {current}, newer than this dbkeep knows (version {latest}): \
             a newer dbkeep shares this catalog; upgrade this one to the same version"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)
            .map_err(|e| format!("migration {version}: {}", describe(&e)))?;
        tx.execute(
            "INSERT INTO dbkeep_schema_migrations (version, applied_at) VALUES ($1, now())",
            &[version],
        )
        .map_err(db)?;
    }
    tx.commit().map_err(db)?;
    Ok(current.max(latest))
}

/// An error and its causes in words: the server's message (with its detail and hint) for an
/// error it reported, else each cause after the next (the driver's own words say little).
pub(super) fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = db.message().to_string();
        for extra in [db.detail(), db.hint()].into_iter().flatten() {
            text.push_str(" (");
            text.push_str(extra);
            text.push(')');
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn target(url: &str) -> ServerTarget {
        ServerTarget {
            url: url::Url::parse(url).unwrap(),
            password: None,
            password_env: None,
        }
    }

    #[test]
    fn settings_give_the_password_to_the_driver_and_refuse_what_it_cannot_do() {
        let mut t = target("postgres://u@h/db?sslmode=require&connect_timeout=3");
        t.password = Some(dbkeep_config::config::Secret::new("pw"));
        let s = settings(&t).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(s.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        let s = settings(&target("postgres://u@h/db?sslmode=disable")).unwrap();
        assert_eq!(s.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(s.config.get_ssl_mode(), postgres::config::SslMode::Disable);
        let e = settings(&target("postgres://u@h/db?sslcert=c.pem"))
            .err()
            .unwrap();
        assert!(e.contains("sslcert"), "{e}");
        let e = settings(&target(
            "postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem",
        ))
        .err()
        .unwrap();
        assert!(e.contains("sslrootcert /nonexistent.pem"), "{e}");
        let mut t = target("postgres://u@h/db");
        t.password_env = Some("DBKEEP_TEST_SURELY_UNSET_VARIABLE".into());
        let e = settings(&t).err().unwrap();
        assert!(e.contains("DBKEEP_TEST_SURELY_UNSET_VARIABLE"), "{e}");
    }
}
