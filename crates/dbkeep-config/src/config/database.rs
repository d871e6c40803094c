//! One `[[databases]]` entry: its name, where it lives, how its backups are compressed and when they run.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use dbkeep_model::error::ConfigError;

use super::Source;
use super::retention::{RawRetention, RetentionKeys, raw_retention_of};
pub use dbkeep_model::vocab::Compression;

/// A secret string (a password) whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for handing to a child process's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A database on a server (PostgreSQL, MySQL/MariaDB): its URL without the password, and
/// where the password comes from.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    /// The connection URL with any password removed; safe to show and to pass on a command line.
    pub url: Url,
    /// A password that was written inside the URL.
    pub password: Option<Secret>,
    /// The name of the environment variable holding the password, read at backup time.
    pub password_env: Option<String>,
}

impl ServerTarget {
    /// The database's name, as the URL's path gives it (percent-decoded).
    pub fn database(&self) -> String {
        percent_encoding::percent_decode_str(self.url.path().trim_start_matches('/'))
            .decode_utf8_lossy()
            .into_owned()
    }

    /// The password to give the dump tool, from `password_env` first, else the URL.
    ///
    /// # Errors
    /// When `password_env` names a variable that is not set.
    pub fn resolve_password(&self) -> Result<Option<Secret>, String> {
        if let Some(var) = &self.password_env {
            return match std::env::var(var) {
                Ok(value) => Ok(Some(Secret(value))),
                Err(_) => Err(format!(
                    "environment variable {var} (named by password_env) is not set; export it with the database password"
                )),
            };
        }
        Ok(self.password.clone())
    }
}

/// Where a database lives.
#[derive(Debug, Clone)]
pub enum Target {
    /// A SQLite database file.
    Sqlite {
        /// Absolute path of the database file.
        path: PathBuf,
    },
    /// A PostgreSQL database reached with `pg_dump`.
    Postgres(ServerTarget),
    /// A MySQL or MariaDB database reached with `mariadb-dump` (or `mysqldump`).
    Mysql(ServerTarget),
    /// A whole PostgreSQL cluster, copied with `pg_basebackup` (the URL's database is only
    /// where it connects): a `[[servers]]` entry's base backups.
    PostgresBase(ServerTarget),
}

impl Target {
    /// The kind of database, as the catalog records it.
    pub fn kind(&self) -> dbkeep_model::vocab::Kind {
        match self {
            Target::Sqlite { .. } => dbkeep_model::vocab::Kind::Sqlite,
            Target::Postgres(_) => dbkeep_model::vocab::Kind::Postgres,
            Target::Mysql(_) => dbkeep_model::vocab::Kind::Mysql,
            Target::PostgresBase(_) => dbkeep_model::vocab::Kind::PostgresBase,
        }
    }

    /// The server's connection, for the kinds on a server.
    pub fn server(&self) -> Option<&ServerTarget> {
        match self {
            Target::Sqlite { .. } => None,
            Target::Postgres(s) | Target::Mysql(s) | Target::PostgresBase(s) => Some(s),
        }
    }

    /// The same kind of target with another server connection.
    fn with_server(self, server: ServerTarget) -> Target {
        match self {
            Target::Mysql(_) => Target::Mysql(server),
            Target::Sqlite { path } => Target::Sqlite { path },
            Target::Postgres(_) => Target::Postgres(server),
            Target::PostgresBase(_) => Target::PostgresBase(server),
        }
    }

    /// The URL to show people: a SQLite path, or the PostgreSQL URL without its password.
    pub fn display(&self) -> String {
        match self {
            Target::Sqlite { path } => format!("sqlite:{}", path.display()),
            Target::Postgres(s) | Target::Mysql(s) => s.url.to_string(),
            Target::PostgresBase(s) => {
                let mut url = s.url.clone();
                url.set_path("/");
                url.to_string()
            }
        }
    }
}

/// A validated cron schedule, kept with the text it was written as.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cron expression as written.
    pub expr: String,
    /// The parsed schedule.
    pub cron: croner::Cron,
}

/// One validated `[[databases]]` entry.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Unique name: letters, digits, `-` and `_`; also the backup sub-folder.
    pub name: String,
    /// Where the database lives.
    pub target: Target,
    /// Compression of the stored file.
    pub compression: Compression,
    /// When the scheduler backs it up (never empty: absent means daily at midnight).
    pub schedules: Vec<Schedule>,
    /// The server (of the source's kind) where restore-level verification makes its throwaway
    /// databases (`verify_url` of the entry, else the top-level one, else the source's own
    /// server).
    pub verify_url: Option<ServerTarget>,
    /// PostgreSQL: store the server's roles (`pg_dumpall --globals-only --no-role-passwords`)
    /// beside each backup.
    pub globals: bool,
    /// How its backups are encrypted (the entry's keys, else the top level's); `None`: not.
    pub encryption: Option<super::Encryption>,
    /// Its own ping URL (`[notify] ping_url` serves the others).
    pub ping_url: Option<url::Url>,
    /// Keep the local file once every off-site destination holds a checked copy (`keep_local`
    /// of the entry, else the top level's; default true).
    pub keep_local: bool,
    pub(crate) keep_local_set: Option<(bool, Range<usize>)>,
    /// Its own retention keys, over the top-level ones: its local folder's policy, and the
    /// policy of its copies at destinations without one.
    pub retention: RetentionKeys,
    /// Its retention at particular destinations (`[databases.offsite_retention.NAME]`), over
    /// theirs; with the line of each table, to name it in an error.
    pub(crate) offsite_retention: Vec<(String, RetentionKeys, Range<usize>)>,
    pub(crate) name_span: Range<usize>,
    /// The server that found it, when a `[[servers]]` entry did (`None`: a `[[databases]]`
    /// entry).
    pub discovered: Option<super::Discovered>,
}

impl DatabaseConfig {
    /// Whether the scheduler backs it up: every `[[databases]]` entry, and the discovered
    /// databases that are known (not gone, not unreadable).
    pub fn is_scheduled(&self) -> bool {
        self.discovered
            .as_ref()
            .is_none_or(|d| d.state == dbkeep_model::discovery::DiscoveryState::Known)
    }

    /// The `[[servers]]` entry that found it, if one did.
    pub fn server(&self) -> Option<&str> {
        self.discovered.as_ref().map(|d| d.server.as_str())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) name: Spanned<String>,
    pub(super) url: Spanned<String>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) compression: Option<Compression>,
    pub(super) schedules: Option<Vec<Spanned<String>>>,
    pub(super) verify_url: Option<Spanned<String>>,
    pub(super) globals: Option<Spanned<bool>>,
    pub(super) age_recipients: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) age_passphrase_env: Option<Spanned<String>>,
    pub(super) ping_url: Option<Spanned<String>>,
    pub(super) keep_local: Option<Spanned<bool>>,
    pub(super) retention_days: Option<Spanned<u32>>,
    pub(super) keep_last: Option<Spanned<u32>>,
    pub(super) keep_hourly: Option<Spanned<u32>>,
    pub(super) keep_daily: Option<Spanned<u32>>,
    pub(super) keep_weekly: Option<Spanned<u32>>,
    pub(super) keep_monthly: Option<Spanned<u32>>,
    pub(super) keep_yearly: Option<Spanned<u32>>,
    /// Retention of this database's copies at one destination, by destination name.
    pub(super) offsite_retention: Option<std::collections::BTreeMap<String, Spanned<RawRetention>>>,
}

impl RawDatabase {
    pub(super) fn validate(
        self,
        src: &Source<'_>,
        base: &Path,
    ) -> Result<DatabaseConfig, ConfigError> {
        let name = self.name.get_ref();
        if !super::names::is_name(name) {
            return Err(src.error(
                self.name.span(),
                format!("database `name = \"{name}\"` is invalid: use 1 to 64 letters, digits, `-` or `_`"),
            ));
        }
        let target = parse_url(&self.url, src, base)?;
        let password_env = match (self.password_env, &target) {
            (Some(var), Target::Postgres(_) | Target::Mysql(_) | Target::PostgresBase(_)) => {
                if !super::names::is_env_name(var.get_ref()) {
                    return Err(src.error(
                        var.span(),
                        format!("`password_env` of `{name}` must be an environment variable name such as APP_DB_PASSWORD"),
                    ));
                }
                Some(var.into_inner())
            }
            (Some(var), Target::Sqlite { .. }) => {
                return Err(src.error(
                    var.span(),
                    format!(
                        "`password_env` of `{name}` applies only to PostgreSQL and MySQL databases; remove it"
                    ),
                ));
            }
            (None, _) => None,
        };
        let target = match target.server().cloned() {
            Some(server) => target.with_server(ServerTarget {
                password_env,
                ..server
            }),
            None => target,
        };
        let compression = self.compression.unwrap_or(match target {
            Target::Sqlite { .. } => Compression::None,
            Target::Postgres(_) | Target::Mysql(_) => Compression::Gzip,
            Target::PostgresBase(_) => Compression::Zstd,
        });
        let mut schedules = Vec::new();
        let exprs = self
            .schedules
            .unwrap_or_else(|| vec![Spanned::new(0..0, super::DEFAULT_SCHEDULE.to_string())]);
        if exprs.is_empty() {
            return Err(src.error(
                self.name.span(),
                format!("`schedules` of `{name}` is empty; remove it for the default (daily at midnight) or list cron expressions"),
            ));
        }
        for expr in exprs {
            let schedule = parse_schedule(expr.get_ref()).map_err(|why| {
                src.error(
                    expr.span(),
                    format!(
                        "`schedules` of `{name}`: `{}` {why}; expected e.g. \"0 0 * * *\" (daily at midnight), \"0 */6 * * *\" or \"@hourly\"",
                        expr.get_ref().trim()
                    ),
                )
            })?;
            schedules.push(schedule);
        }
        let verify_url = match &self.verify_url {
            None => None,
            Some(url) if matches!(target, Target::Sqlite { .. }) => {
                return Err(src.error(
                    url.span(),
                    format!(
                        "`verify_url` of `{name}` applies only to PostgreSQL and MySQL databases; remove it"
                    ),
                ));
            }
            Some(url) => verify_server(url, src, base, &target)?,
        };
        let globals = match (&self.globals, &target) {
            (Some(g), Target::Sqlite { .. } | Target::Mysql(_)) if *g.get_ref() => {
                return Err(src.error(
                    g.span(),
                    format!(
                        "`globals` of `{name}` applies only to PostgreSQL databases; remove it"
                    ),
                ));
            }
            (Some(g), _) => *g.get_ref(),
            (None, _) => false,
        };
        let encryption = super::encryption::parse(
            src,
            &format!("`{name}`"),
            self.age_recipients.as_ref(),
            self.age_passphrase_env.as_ref(),
        )?;
        let retention = raw_retention_of!(self).check(src, &format!("of database `{name}`"))?;
        let mut offsite_retention = Vec::new();
        for (dest, keys) in self.offsite_retention.iter().flatten() {
            let checked = keys
                .get_ref()
                .check(src, &format!("of database `{name}` at `{dest}`"))?;
            offsite_retention.push((dest.clone(), checked, keys.span()));
        }
        let ping_url = self
            .ping_url
            .as_ref()
            .map(|u| super::notify::http_url(src, "ping_url", u))
            .transpose()?;
        Ok(DatabaseConfig {
            encryption,
            ping_url,
            keep_local: self.keep_local.as_ref().is_none_or(|k| *k.get_ref()),
            keep_local_set: self.keep_local.map(|k| (*k.get_ref(), k.span())),
            retention,
            offsite_retention,
            name_span: self.name.span(),
            name: self.name.into_inner(),
            target,
            compression,
            schedules,
            verify_url,
            globals,
            discovered: None,
        })
    }
}

/// The server of a `verify_url` for `source`: a URL of the source's kind (its database name
/// is replaced by each throwaway's); without a password of its own it uses the source's.
/// `None` for a SQLite source.
pub(super) fn verify_server(
    url: &Spanned<String>,
    src: &Source<'_>,
    base: &Path,
    source: &Target,
) -> Result<Option<ServerTarget>, ConfigError> {
    let Some(from) = source.server() else {
        return Ok(None);
    };
    let parsed = Target::parse(url.get_ref(), base)
        .map_err(|m| src.error(url.span(), m.replace("`url`", "`verify_url`")))?;
    match parsed.server() {
        Some(server) if parsed.kind() == source.kind() => {
            let mut server = server.clone();
            if server.password.is_none() {
                server.password = from.password.clone();
                server.password_env = from.password_env.clone();
            }
            Ok(Some(server))
        }
        _ => Err(src.error(
            url.span(),
            format!(
                "`verify_url` must be a {} URL of a server where dbkeep may create databases",
                match source {
                    Target::Mysql(_) => "mysql://",
                    _ => "postgres://",
                }
            ),
        )),
    }
}

/// A cron expression checked as dbkeep accepts them: 5 or 6 fields (or `@daily` and the like),
/// each field valid, and a date on which it fires.
///
/// # Errors
/// What is wrong, in words to follow the expression ("has 7 fields; …").
pub(super) fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    let text = expr.trim();
    let fields = text.split_whitespace().count();
    if !text.starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!(
            "has {fields} fields; write 5 (minute hour day month weekday) or 6 (seconds first)"
        ));
    }
    // The parser's own wording is a library's; say which field is wrong instead.
    let cron = croner::Cron::from_str(expr).map_err(|_| {
        super::cron::problem(text).map_or_else(
            || "is not a valid cron expression".to_string(),
            |p| format!("is not a valid cron expression: {p}"),
        )
    })?;
    if crate::config::cron::next_fire(&cron, chrono_tz::UTC, chrono::Utc::now()).is_none() {
        return Err("never fires (no date matches it); check the day and month fields".into());
    }
    Ok(Schedule {
        expr: expr.to_string(),
        cron,
    })
}

/// The `sslmode` values libpq knows.
const SSLMODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

fn parse_url(url: &Spanned<String>, src: &Source<'_>, base: &Path) -> Result<Target, ConfigError> {
    Target::parse(url.get_ref(), base).map_err(|message| src.error(url.span(), message))
}

impl Target {
    /// A target from a URL as the configuration writes it (`sqlite:PATH`, `postgres://…`,
    /// `mysql://…` or `mariadb://…`);
    /// relative SQLite paths resolve against `base`. A password in it (user part or
    /// `password=`) is taken out into the target.
    ///
    /// # Errors
    /// What is wrong with the URL, in words (never echoing it: it may hold a password).
    pub fn parse(text: &str, base: &Path) -> Result<Target, String> {
        let expected = "expected `sqlite:PATH`, `postgres://user@host:port/dbname` or `mysql://user@host:port/dbname`";
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!(
                    "`url` has no file path after `sqlite:`; {expected}"
                ));
            }
            return Ok(Target::Sqlite {
                path: base.join(path),
            });
        }
        // Never echo the URL itself: it may hold a password.
        let parsed =
            Url::parse(text).map_err(|e| format!("`url` is not a valid URL ({e}); {expected}"))?;
        let mysql = match parsed.scheme() {
            "postgres" | "postgresql" => false,
            "mysql" | "mariadb" => true,
            other => {
                return Err(format!(
                    "`url` scheme `{other}:` is not supported; {expected}"
                ));
            }
        };
        let database = parsed.path().trim_start_matches('/');
        if database.is_empty() {
            return Err(format!("`url` names no database; {expected}"));
        }
        if mysql {
            let name = percent_encoding::percent_decode_str(database).decode_utf8_lossy();
            if name.contains('/') || name.starts_with('-') || name.contains('\0') {
                return Err(format!(
                    "`url` names the database `{name}`, which the MySQL tools cannot take; {expected}"
                ));
            }
        }
        // Parameters are kept exactly as written (libpq reads `%XX`, not `+`, so nothing is
        // re-encoded), except `password`, which leaves the URL for the environment; it wins over the
        // user-info part, as in libpq.
        let mut in_query = None;
        let mut kept = Vec::new();
        for pair in parsed
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            match key.as_ref() {
                "password" => {
                    in_query = Some(Secret(
                        percent_encoding::percent_decode_str(value)
                            .decode_utf8_lossy()
                            .into_owned(),
                    ));
                }
                // libpq (pg_dump, psql) and the catalog refuse any other mode when they connect:
                // say so now, not at the first backup.
                "sslmode" if !mysql => {
                    let mode = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                    if !SSLMODES.contains(&mode.as_ref()) {
                        return Err(format!(
                            "`url` has `sslmode={}`, which is not one of {}",
                            dbkeep_model::text::escape_controls(&mode, false),
                            SSLMODES.join(", ")
                        ));
                    }
                    kept.push(pair);
                }
                // The client key's passphrase has no environment variable in libpq: in the URL it
                // would reach pg_dump's command line.
                "sslpassword" if !mysql => {
                    return Err("`url` has an `sslpassword` parameter, which would reach pg_dump's command line; remove it and give pg_dump a client key without a passphrase (mode 0600), or a PGSERVICEFILE".into());
                }
                // Each parameter becomes one `--key=value` option of the MySQL tools.
                key if mysql
                    && (key.is_empty()
                        || !key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        || matches!(key, "user" | "host" | "port" | "database")) =>
                {
                    return Err(format!(
                        "`url` has the parameter `{key}`, which is not a MySQL client option dbkeep passes on; give user, host, port and database in the URL itself, and options such as `socket` or `ssl-mode` as parameters"
                    ));
                }
                _ => kept.push(pair),
            }
        }
        let password = in_query.or_else(|| {
            parsed.password().map(|p| {
                Secret(
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
        });
        let mut clean = parsed.clone();
        // Removing a password from a postgres URL cannot fail: it has a host.
        let _ = clean.set_password(None);
        clean.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
        let server = ServerTarget {
            url: clean,
            password,
            password_env: None,
        };
        Ok(if mysql {
            Target::Mysql(server)
        } else {
            Target::Postgres(server)
        })
    }
}
