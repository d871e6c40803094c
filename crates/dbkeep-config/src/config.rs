//! Configuration: `dbkeep.toml`, then environment overrides, validated once into typed values.

pub mod auth;
mod catalog;
pub mod cron;
mod database;
pub mod encryption;
mod names;
mod notify;
mod offsite;
mod retention;
mod server;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dbkeep_model::error::ConfigError;
use serde::Deserialize;
use toml::Spanned;

pub use catalog::CatalogLocation;
pub use database::{Compression, DatabaseConfig, Schedule, Secret, ServerTarget, Target};
pub use encryption::{Encryption, passphrase};
pub use notify::{DEFAULT_ON, Email, NotifySettings, SmtpTls, Webhook, WebhookFormat, url_origin};
pub use offsite::Offsite;
pub use retention::{
    DEFAULT_RETENTION_DAYS, Destination, MAX_KEEP_LAST, MAX_PERIODS, MAX_RETENTION_DAYS, Retention,
    RetentionKeys,
};
pub use server::{Discovered, MYSQL_SYSTEM_SCHEMAS, ServerConfig, ServerSource};

/// The schedule every database without `schedules` gets: daily at midnight.
pub const DEFAULT_SCHEDULE: &str = "0 0 * * *";

/// The most backups `max_concurrent_backups` may run at once.
pub const MAX_CONCURRENT_BACKUPS: u32 = 64;
/// The longest any duration setting may be.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The default of `min_free_space`: what an expanding file leaves free on its disk.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 256 * 1024 * 1024;

/// The name of the configuration file looked for in the current folder.
pub const DEFAULT_FILE: &str = "dbkeep.toml";

/// The validated configuration of one dbkeep installation.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from; relative paths inside it resolve against its folder.
    pub path: PathBuf,
    /// Where backup files are written, one folder per database.
    pub backup_dir: PathBuf,
    /// The top-level retention keys: the local folder's policy, and each database's default.
    pub retention: RetentionKeys,
    /// Where the catalog lives: a SQLite file, or a PostgreSQL database shared by several
    /// instances.
    pub catalog: CatalogLocation,
    /// The `pg_dump` program to run; `None` means `pg_dump` from `PATH`.
    pub pg_dump_path: Option<PathBuf>,
    /// The MySQL dump program to run; `None` means `mariadb-dump` from `PATH` when there is
    /// one, else `mysqldump`.
    pub mysqldump_path: Option<PathBuf>,
    /// The MySQL client to load and query with; `None` means `mariadb` from `PATH` when there
    /// is one, else `mysql`.
    pub mysql_path: Option<PathBuf>,
    /// The age identities (private keys) that open encrypted backups, for restore and verify;
    /// best kept off the backup host, and given with `--identity` when needed.
    pub identity_file: Option<PathBuf>,
    /// The line of `identity_file`, for [`Config::check_files`].
    identity_file_line: Option<usize>,
    /// The longest line of a dump's SQL outside table data that a restore passes on to the
    /// database client, in bytes (`restore_line_limit`).
    pub restore_line_limit: u64,
    /// The free space a file that dbkeep expands (an imported SQLite file's check) must leave
    /// on its disk, in bytes (`min_free_space`).
    pub min_free_space: u64,
    /// The databases to back up, in file order.
    pub databases: Vec<DatabaseConfig>,
    /// Where each database is in `databases`, by name: a thousand databases are looked up
    /// without a walk through the list.
    by_name: std::collections::HashMap<String, usize>,
    /// How `dbkeep serve` runs schedules.
    pub service: ServiceSettings,
    /// The web admin and API of `dbkeep serve`.
    pub web: WebSettings,
    /// Where dbkeep says that something happened.
    pub notify: NotifySettings,
    /// Where every new backup is copied besides the local folder.
    pub offsite: Vec<Offsite>,
    /// The servers whose databases are discovered (`[[servers]]`), in file order.
    pub servers: Vec<ServerConfig>,
}

/// Settings of the web admin, the API, health and metrics.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Where `dbkeep serve` listens (env `DBKEEP_LISTEN`).
    pub listen: std::net::SocketAddr,
    /// The address people reach the admin at; an `https` one makes session cookies `Secure`.
    pub public_url: Option<url::Url>,
    /// A database whose last successful backup is older than this makes `/healthz` fail.
    pub stale_after: Duration,
    /// Serve `/metrics` without a login on this separate address (keep it private).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `/healthz` names the stale, unverified and not off-site databases to anyone; without
    /// it, only to a logged-in user or an API token (anyone else gets the counts).
    pub healthz_details: bool,
    /// How people log in (`[auth]`).
    pub auth: auth::AuthSettings,
}

/// Settings of the scheduler in `dbkeep serve` (and in an embedding application).
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The zone cron expressions are read in.
    pub timezone: chrono_tz::Tz,
    /// A fire missed while dbkeep was not running is caught up at start if it is this recent.
    pub misfire_grace: Duration,
    /// A backup running longer than this is stopped and recorded as failed.
    pub backup_timeout: Duration,
    /// A backup that produces no bytes for this long is stopped and recorded as failed.
    pub stall_timeout: Duration,
    /// At most this many backups run at once, across databases.
    pub max_concurrent_backups: usize,
    /// On shutdown, running backups get this long to finish before they are cancelled.
    pub shutdown_grace: Duration,
    /// This instance's name in the catalog's leases (`None`: `<host>:<pid>`).
    pub instance_name: Option<String>,
    /// How long a lease holds without renewal: how long a lost instance can hold up its
    /// databases' backups.
    pub lease_timeout: Duration,
    /// When `dbkeep serve` proves each database's newest backup restorable (a restore drill);
    /// `None` when `verify_schedule = "off"`.
    pub verify_schedule: Option<Schedule>,
    /// How often `dbkeep serve` sends again the off-site copies that failed (or are missing)
    /// of the backups on its disk, as `dbkeep offsite sync` does.
    pub offsite_retry: Duration,
    /// How often `dbkeep serve` asks each `[[servers]]` entry for its databases.
    pub discover_every: Duration,
    /// How many days the audit log keeps its rows (`audit_retention`, default 400 days, at
    /// least 30); `dbkeep serve` removes older ones daily.
    pub audit_retention_days: u32,
}

/// The default restore drill: Sundays at 03:00.
pub const DEFAULT_VERIFY_SCHEDULE: &str = "0 3 * * sun";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    backup_dir: Option<String>,
    retention_days: Option<Spanned<u32>>,
    keep_last: Option<Spanned<u32>>,
    keep_hourly: Option<Spanned<u32>>,
    keep_daily: Option<Spanned<u32>>,
    keep_weekly: Option<Spanned<u32>>,
    keep_monthly: Option<Spanned<u32>>,
    keep_yearly: Option<Spanned<u32>>,
    catalog: Option<Spanned<String>>,
    catalog_password_env: Option<Spanned<String>>,
    pg_dump_path: Option<String>,
    mysqldump_path: Option<String>,
    mysql_path: Option<String>,
    timezone: Option<Spanned<String>>,
    misfire_grace: Option<Spanned<String>>,
    backup_timeout: Option<Spanned<String>>,
    stall_timeout: Option<Spanned<String>>,
    shutdown_grace: Option<Spanned<String>>,
    offsite_retry: Option<Spanned<String>>,
    discover_every: Option<Spanned<String>>,
    audit_retention: Option<Spanned<String>>,
    instance_name: Option<Spanned<String>>,
    lease_timeout: Option<Spanned<String>>,
    max_concurrent_backups: Option<Spanned<u32>>,
    verify_schedule: Option<Spanned<String>>,
    schedules: Option<Spanned<Vec<Spanned<String>>>>,
    verify_url: Option<Spanned<String>>,
    age_recipients: Option<Spanned<Vec<Spanned<String>>>>,
    age_passphrase_env: Option<Spanned<String>>,
    identity_file: Option<Spanned<String>>,
    restore_line_limit: Option<Spanned<String>>,
    min_free_space: Option<Spanned<String>>,
    keep_local: Option<Spanned<bool>>,
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    stale_after: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    healthz_details: Option<bool>,
    auth: Option<auth::RawAuth>,
    notify: Option<notify::RawNotify>,
    #[serde(default)]
    offsite: Vec<offsite::RawOffsite>,
    #[serde(default)]
    databases: Vec<database::RawDatabase>,
    #[serde(default)]
    servers: Vec<server::RawServer>,
}

/// Where a configuration value is read from, for error messages.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// The key assigned on the line holding byte `offset`, if that line is `key = value`.
    fn key_at(&self, offset: usize) -> Option<&str> {
        let start = self.text[..offset.min(self.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        (!key.is_empty() && key.chars().all(bare)).then_some(key)
    }

    /// The 1-based line holding `span`.
    fn line(&self, span: Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// An error at the line holding `span`.
    pub fn error(&self, span: Range<usize>, message: impl fmt::Display) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            line: Some(self.line(span)),
            message: message.to_string(),
        }
    }
}

impl Config {
    /// The retention policy of `database`'s backups at `destination`, with `retention_days`
    /// replaced by `days` when given (a command line's `--retention-days`).
    ///
    /// The local folder follows the database's keys over the top-level ones. An off-site
    /// destination follows the database's `offsite_retention` for it, over the destination's
    /// own keys when it has any, else over the database's local policy.
    pub fn retention(
        &self,
        database: &str,
        destination: &Destination,
        days: Option<u32>,
    ) -> Retention {
        let db = self.database(database).ok();
        let local = db.map_or(self.retention, |d| d.retention.over(self.retention));
        let keys = match destination {
            Destination::Local => local,
            Destination::Offsite(name) => {
                let own = self
                    .offsite
                    .iter()
                    .find(|o| o.name == *name)
                    .and_then(|o| o.retention);
                let base = own.unwrap_or(local);
                db.and_then(|d| d.offsite_retention.iter().find(|(n, ..)| n == name))
                    .map_or(base, |(_, keys, _)| keys.over(base))
            }
        };
        keys.with_days(days).resolve()
    }

    /// Finds the configuration file: `explicit`, else `$DBKEEP_CONFIG`, else `./dbkeep.toml`.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("DBKEEP_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE))
    }

    /// Reads, parses and validates the file at `path`, then applies environment overrides.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the key and the line for a missing or unreadable
    /// file, invalid TOML, an unknown key, a wrong type or an invalid value.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "no such file; create one with `dbkeep init`, or point --config / DBKEEP_CONFIG at yours"
                    .to_string()
            } else {
                format!("cannot read: {e}")
            },
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses configuration `text` as if read from `path`, with `env` supplying overrides.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let source = Source { path, text };
        let raw = Self::parse_raw(&source)?;
        let path = absolute(path);
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let resolve = |p: &str| base.join(p);
        // A program: a path (relative to the configuration) when it holds a `/`, else a name
        // looked up on `PATH`.
        let program = |p: &str| {
            if p.contains('/') {
                resolve(p)
            } else {
                PathBuf::from(p)
            }
        };

        let env_error = |name: &str, message: String| ConfigError {
            path: PathBuf::from(format!("environment variable {name}")),
            line: None,
            message,
        };
        let backup_dir = match env("DBKEEP_BACKUP_DIR") {
            Some(dir) if dir.is_empty() => {
                return Err(env_error(
                    "DBKEEP_BACKUP_DIR",
                    "is empty; set it to a folder path or unset it".into(),
                ));
            }
            Some(dir) => resolve(&dir),
            None => resolve(raw.backup_dir.as_deref().unwrap_or("backups")),
        };
        let days_env = match env("DBKEEP_RETENTION_DAYS") {
            Some(v) => Some(
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|d| *d <= MAX_RETENTION_DAYS)
                    .ok_or_else(|| {
                        env_error(
                            "DBKEEP_RETENTION_DAYS",
                            format!("`{v}` is not a whole number of days from 0 to {MAX_RETENTION_DAYS} (expected e.g. 30)"),
                        )
                    })?,
            ),
            None => None,
        };
        let retention = retention::raw_retention_of!(raw)
            .check(&source, "")?
            .with_days(days_env);

        let service = ServiceSettings {
            timezone: timezone(&source, raw.timezone.as_ref())?,
            misfire_grace: duration(&source, "misfire_grace", raw.misfire_grace.as_ref(), "1h")?,
            backup_timeout: duration(&source, "backup_timeout", raw.backup_timeout.as_ref(), "6h")?,
            stall_timeout: duration(&source, "stall_timeout", raw.stall_timeout.as_ref(), "10m")?,
            shutdown_grace: duration(
                &source,
                "shutdown_grace",
                raw.shutdown_grace.as_ref(),
                "30s",
            )?,
            offsite_retry: duration(&source, "offsite_retry", raw.offsite_retry.as_ref(), "15m")?,
            discover_every: duration(
                &source,
                "discover_every",
                raw.discover_every.as_ref(),
                "10m",
            )?,
            audit_retention_days: audit_retention(&source, raw.audit_retention.as_ref())?,
            instance_name: match raw.instance_name {
                Some(name) if !names::is_name(name.get_ref()) => {
                    return Err(source.error(
                        name.span(),
                        format!("`instance_name = \"{}\"` is invalid: use 1 to 64 letters, digits, `-` or `_`", name.get_ref()),
                    ));
                }
                other => other.map(Spanned::into_inner),
            },
            lease_timeout: match duration(
                &source,
                "lease_timeout",
                raw.lease_timeout.as_ref(),
                "60s",
            )? {
                // Renewed every third of it: shorter than a second, a busy catalog loses leases.
                d if d < Duration::from_secs(1) => {
                    return Err(source.error(
                        raw.lease_timeout.as_ref().map_or(0..0, Spanned::span),
                        "`lease_timeout` must be at least 1s (60s is the default; instances renew their leases every third of it)",
                    ));
                }
                d => d,
            },
            max_concurrent_backups: number(
                &source,
                "max_concurrent_backups",
                raw.max_concurrent_backups.as_ref(),
                1..=MAX_CONCURRENT_BACKUPS,
                "backups running at once, e.g. 2",
            )?
            .unwrap_or(2) as usize,
            verify_schedule: verify_schedule(&source, raw.verify_schedule.as_ref())?,
        };

        let listen = match env("DBKEEP_LISTEN") {
            Some(v) => v.parse().map_err(|_| {
                env_error(
                    "DBKEEP_LISTEN",
                    format!("`{v}` is not an address:port such as 127.0.0.1:7878"),
                )
            })?,
            None => address(&source, "listen", raw.listen.as_ref())?
                .unwrap_or(([127, 0, 0, 1], 7878).into()),
        };
        let web = WebSettings {
            listen,
            public_url: raw
                .public_url
                .as_ref()
                .map(|u| public_url(&source, u))
                .transpose()?,
            stale_after: duration(&source, "stale_after", raw.stale_after.as_ref(), "26h")?,
            metrics_listen: address(&source, "metrics_listen", raw.metrics_listen.as_ref())?,
            healthz_details: raw.healthz_details.unwrap_or(false),
            auth: match raw.auth {
                Some(a) => a.validate(&source)?,
                None => auth::AuthSettings::default(),
            },
        };
        if web.auth.oidc.is_some() && web.public_url.is_none() {
            return Err(source.error(
                0..0,
                "`[auth.oidc]` needs `public_url`: the provider sends the browser back to <public_url>/login/oidc/callback",
            ));
        }

        let notify = match raw.notify {
            Some(n) => n.validate(&source)?,
            None => NotifySettings::default(),
        };
        let encryption = encryption::parse(
            &source,
            "the top level",
            raw.age_recipients.as_ref(),
            raw.age_passphrase_env.as_ref(),
        )?;
        // The top-level verify_url serves the databases of its kind: it must be a server's URL
        // even when no database is of that kind yet.
        if let Some(url) = &raw.verify_url {
            match Target::parse(url.get_ref(), &base) {
                Ok(t) if t.server().is_some() => {}
                Ok(_) => {
                    return Err(source.error(
                        url.span(),
                        "`verify_url` must be a postgres:// or mysql:// URL of a server where dbkeep may create databases",
                    ));
                }
                Err(m) => return Err(source.error(url.span(), m.replace("`url`", "`verify_url`"))),
            }
        }
        // The top-level keys serve every database (and every server's template) without
        // keys of its own: encryption, and the verify_url of its kind.
        let top_level = |db: &mut DatabaseConfig| -> Result<(), ConfigError> {
            if db.encryption.is_none() {
                db.encryption.clone_from(&encryption);
            }
            if let (None, Some(url), Some(_)) =
                (&db.verify_url, &raw.verify_url, db.target.server())
                && Target::parse(url.get_ref(), &base).is_ok_and(|t| t.kind() == db.target.kind())
            {
                db.verify_url = database::verify_server(url, &source, &base, &db.target)?;
            }
            Ok(())
        };
        let default_schedules = default_schedules(&source, raw.schedules.as_ref())?;
        let mut databases: Vec<DatabaseConfig> = Vec::with_capacity(raw.databases.len());
        for mut raw_db in raw.databases {
            if raw_db.schedules.is_none() {
                raw_db.schedules.clone_from(&default_schedules);
            }
            let mut db = raw_db.validate(&source, &base)?;
            top_level(&mut db)?;
            if databases.iter().any(|d| d.name == db.name) {
                return Err(source.error(
                    db.name_span.clone(),
                    format!("duplicate database `name = \"{}\"`: each [[databases]] entry needs its own name", db.name),
                ));
            }
            databases.push(db);
        }

        let mut servers: Vec<ServerConfig> = Vec::with_capacity(raw.servers.len());
        for mut raw_server in raw.servers {
            if raw_server.schedules.is_none() {
                raw_server.schedules.clone_from(&default_schedules);
            }
            let mut server = raw_server.validate(&source, &base)?;
            top_level(server.template_mut())?;
            if servers.iter().any(|s| s.name == server.name) {
                return Err(source.error(
                    server.template().name_span.clone(),
                    format!("duplicate server `name = \"{}\"`: each [[servers]] entry needs its own name", server.name),
                ));
            }
            servers.push(server);
        }
        // A server that archives WAL has its base backups kept as a database of its name.
        for base in servers.iter().filter_map(ServerConfig::base) {
            if let Some(db) = databases.iter().find(|d| d.name == base.name) {
                return Err(source.error(
                    db.name_span.clone(),
                    format!("database `name = \"{}\"` is also the name of a [[servers]] entry with `wal_archive = true`, whose base backups are kept under that name; rename one", db.name),
                ));
            }
            databases.push(base);
        }

        // An [[offsite]] entry's `databases` may name a server: every database it finds.
        let names: Vec<String> = databases
            .iter()
            .map(|d| d.name.clone())
            .chain(servers.iter().map(|s| s.name.clone()))
            .collect();
        let mut offsite: Vec<Offsite> = Vec::new();
        for raw_offsite in raw.offsite {
            let o = raw_offsite.validate(&source, &base, &names)?;
            if offsite.iter().any(|x| x.name == o.name) {
                return Err(
                    source.error(0..0, format!("duplicate offsite `name = \"{}\"`", o.name))
                );
            }
            offsite.push(o);
        }
        // A database's policy at a destination needs that destination to take it.
        for db in databases
            .iter()
            .chain(servers.iter().map(ServerConfig::template))
        {
            for (dest, _, span) in &db.offsite_retention {
                if !offsite.iter().any(|o| o.name == *dest && o.takes(&db.name)) {
                    let known: Vec<&str> = offsite
                        .iter()
                        .filter(|o| o.takes(&db.name))
                        .map(|o| o.name.as_str())
                        .collect();
                    return Err(source.error(
                        span.clone(),
                        format!(
                            "`offsite_retention.{dest}` of database `{}`: no [[offsite]] destination named `{dest}` takes this database ({})",
                            db.name,
                            if known.is_empty() {
                                "none does".to_string()
                            } else {
                                format!("those that do: {}", known.join(", "))
                            }
                        ),
                    ));
                }
            }
        }
        // Dropping the local file is only for a database that has somewhere else to be.
        for db in databases
            .iter_mut()
            .chain(servers.iter_mut().map(ServerConfig::template_mut))
        {
            let (keep, span) = match (&db.keep_local_set, &raw.keep_local) {
                (Some((k, span)), _) => (*k, span.clone()),
                (None, Some(k)) => (*k.get_ref(), k.span()),
                (None, None) => (true, 0..0),
            };
            db.keep_local = keep;
            if !keep && !offsite.iter().any(|o| o.takes(&db.name)) {
                return Err(source.error(
                    span,
                    format!("`keep_local = false` for `{}` would leave its backups nowhere: add an [[offsite]] destination that takes it, or keep the local files", db.name),
                ));
            }
        }
        Ok(Config {
            offsite,
            path: path.clone(),
            backup_dir,
            retention,
            catalog: catalog::parse(
                &source,
                &base,
                raw.catalog.as_ref(),
                raw.catalog_password_env.as_ref(),
            )?,
            pg_dump_path: raw.pg_dump_path.map(|p| program(&p)),
            mysqldump_path: raw.mysqldump_path.map(|p| program(&p)),
            mysql_path: raw.mysql_path.map(|p| program(&p)),
            identity_file: raw.identity_file.as_ref().map(|f| resolve(f.get_ref())),
            identity_file_line: raw.identity_file.as_ref().map(|f| source.line(f.span())),
            restore_line_limit: size(
                &source,
                "restore_line_limit",
                raw.restore_line_limit.as_ref(),
                dbkeep_model::stream::DEFAULT_LINE_LIMIT,
                1024,
            )?,
            min_free_space: size(
                &source,
                "min_free_space",
                raw.min_free_space.as_ref(),
                DEFAULT_MIN_FREE_SPACE,
                0,
            )?,
            by_name: databases
                .iter()
                .enumerate()
                .map(|(i, d)| (d.name.clone(), i))
                .collect(),
            databases,
            servers,
            service,
            web,
            notify,
        })
    }

    /// This configuration with the databases its servers' discovery recorded (`found`, from
    /// the catalog) added after its `[[databases]]` entries: each with its server's settings,
    /// named as the catalog records it. A row of a server no longer configured is left out,
    /// and so is one whose name a `[[databases]]` entry took (that entry wins).
    pub fn with_discovered(&self, found: &[dbkeep_model::discovery::DiscoveredDatabase]) -> Config {
        let mut config = self.clone();
        for row in found {
            let Some(server) = config.servers.iter().find(|s| s.name == row.server) else {
                continue;
            };
            if config.by_name.contains_key(&row.name) {
                continue;
            }
            let db = server.database(&row.name, &row.database, row.state, row.detail.as_deref());
            for o in &mut config.offsite {
                if o.databases.contains(&server.name) {
                    o.databases.push(row.name.clone());
                }
            }
            config
                .by_name
                .insert(row.name.clone(), config.databases.len());
            config.databases.push(db);
        }
        config
    }

    /// The `[[servers]]` entry named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name == name)
    }

    fn parse_raw(source: &Source<'_>) -> Result<RawConfig, ConfigError> {
        toml::from_str(source.text).map_err(|e| {
            let message = e.message().replace("u32", "a whole number (0 or more)");
            match e.span() {
                Some(span) => {
                    let key = source.key_at(span.start);
                    match key {
                        Some(key) if !message.contains(&format!("`{key}`")) => {
                            source.error(span, format!("`{key}`: {message}"))
                        }
                        _ => source.error(span, message),
                    }
                }
                None => ConfigError {
                    path: source.path.to_path_buf(),
                    line: None,
                    message,
                },
            }
        })
    }

    /// Checks what loading leaves to the command that needs it, for `dbkeep check`: that
    /// `identity_file` can be read and holds an age identity. (Loading does not check it: a
    /// key kept off the backup host may be named here and be there only when restores run.)
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the line and the key.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.identity_file else {
            return Ok(());
        };
        let problem = match encryption::read_identities(path) {
            Ok(_) => return Ok(()),
            Err(encryption::IdentityFileError::Unreadable(e)) => format!("cannot be read ({e})"),
            Err(encryption::IdentityFileError::NotAnIdentity(why)) => {
                format!("is not an age identity file ({why})")
            }
        };
        Err(ConfigError {
            path: self.path.clone(),
            line: self.identity_file_line,
            message: format!(
                "`identity_file` = \"{}\" {problem}; name the file `age-keygen -o` wrote, or leave `identity_file` out and give `--identity FILE` where restores and verifications run",
                path.display()
            ),
        })
    }

    /// The database named `name`.
    ///
    /// # Errors
    /// [`dbkeep_model::error::Error::UnknownDatabase`] when no entry has that name.
    pub fn database(&self, name: &str) -> dbkeep_model::error::Result<&DatabaseConfig> {
        let indexed = self
            .by_name
            .get(name)
            .and_then(|&i| self.databases.get(i))
            .filter(|d| d.name == name);
        // The list is public: one changed after loading is searched instead.
        indexed
            .or_else(|| self.databases.iter().find(|d| d.name == name))
            .ok_or_else(|| dbkeep_model::error::Error::UnknownDatabase {
                name: name.to_string(),
                known: self.databases.iter().map(|d| d.name.clone()).collect(),
            })
    }

    /// The folder holding `database`'s backup files.
    pub fn database_dir(&self, database: &str) -> PathBuf {
        self.backup_dir.join(database)
    }
}

fn duration(
    source: &Source<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(humantime::parse_duration(default).unwrap_or_default());
    };
    match humantime::parse_duration(value.get_ref()) {
        Ok(d) if !d.is_zero() && d <= MAX_DURATION => Ok(d),
        Ok(_) => Err(source.error(
            value.span(),
            format!("`{key}` = \"{}\" is out of range: it must be more than 0 and at most 366 days (e.g. \"30s\", \"10m\", \"6h\")", value.get_ref()),
        )),
        Err(_) => Err(source.error(
            value.span(),
            format!("`{key}` = \"{}\" is not a duration; write e.g. \"30s\", \"10m\", \"6h\" or \"1h 30m\"", value.get_ref()),
        )),
    }
}

/// The longest and shortest audit retention, in days.
const AUDIT_RETENTION_DAYS: std::ops::RangeInclusive<u32> = 30..=36_600;

/// `audit_retention`: whole days, from 30 days (the catalog refuses to delete younger rows)
/// to a hundred years; 400 days when absent.
fn audit_retention(
    source: &Source<'_>,
    value: Option<&Spanned<String>>,
) -> Result<u32, ConfigError> {
    let Some(value) = value else {
        return Ok(400);
    };
    let days = humantime::parse_duration(value.get_ref())
        .ok()
        .map(|d| d.as_secs() / 86_400)
        .and_then(|d| u32::try_from(d).ok());
    match days {
        Some(d) if AUDIT_RETENTION_DAYS.contains(&d) => Ok(d),
        _ => Err(source.error(
            value.span(),
            format!(
                "`audit_retention` = \"{}\" is not a duration from 30 days to 100 years; write e.g. \"400d\" or \"2years\"",
                value.get_ref()
            ),
        )),
    }
}

/// A size setting (`"256MiB"`, `"1 GB"`, `"4096"` bytes), at least `least` bytes.
fn size(
    source: &Source<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
    default: u64,
    least: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.get_ref().trim().parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() >= least => Ok(size.as_u64()),
        Ok(_) => Err(source.error(
            value.span(),
            format!(
                "`{key}` = \"{}\" is too small: it must be at least {}",
                value.get_ref(),
                dbkeep_model::text::exact_size(least)
            ),
        )),
        Err(_) => Err(source.error(
            value.span(),
            format!(
                "`{key}` = \"{}\" is not a size; write e.g. \"256MiB\", \"1GiB\" or \"500MB\"",
                value.get_ref()
            ),
        )),
    }
}

/// A whole-number setting, checked against its sane range.
fn number(
    source: &Source<'_>,
    key: &str,
    value: Option<&Spanned<u32>>,
    range: std::ops::RangeInclusive<u32>,
    meaning: &str,
) -> Result<Option<u32>, ConfigError> {
    match value {
        Some(v) if !range.contains(v.get_ref()) => Err(source.error(
            v.span(),
            format!(
                "`{key}` = {} is out of range: it must be from {} to {} ({meaning})",
                v.get_ref(),
                range.start(),
                range.end()
            ),
        )),
        Some(v) => Ok(Some(*v.get_ref())),
        None => Ok(None),
    }
}

/// `public_url`: an `http://` or `https://` address (it becomes links, the origin forms must
/// come from, and whether cookies are `Secure`).
fn public_url(source: &Source<'_>, value: &Spanned<String>) -> Result<url::Url, ConfigError> {
    let example = "write e.g. \"https://backups.example.com\"";
    let url = url::Url::parse(value.get_ref()).map_err(|e| {
        source.error(
            value.span(),
            format!("`public_url` is not a URL ({e}); {example}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(source.error(
            value.span(),
            format!(
                "`public_url` = \"{}\" is not an http:// or https:// address (its scheme is `{}:`); {example}",
                dbkeep_model::text::escape_controls(value.get_ref(), false),
                url.scheme()
            ),
        ));
    }
    Ok(url)
}

/// The top-level `schedules`, checked: what every database and server without its own gets
/// (`None`: daily at midnight).
fn default_schedules(
    source: &Source<'_>,
    value: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Option<Vec<Spanned<String>>>, ConfigError> {
    let Some(list) = value else {
        return Ok(None);
    };
    if list.get_ref().is_empty() {
        return Err(source.error(
            list.span(),
            "`schedules` is empty; remove it for the default (daily at midnight) or list cron expressions",
        ));
    }
    for expr in list.get_ref() {
        database::parse_schedule(expr.get_ref()).map_err(|why| {
            source.error(
                expr.span(),
                format!(
                    "`schedules`: `{}` {why}; expected e.g. \"0 0 * * *\" (daily at midnight), \"0 */6 * * *\" or \"@hourly\"",
                    expr.get_ref().trim()
                ),
            )
        })?;
    }
    Ok(Some(list.get_ref().clone()))
}

fn verify_schedule(
    source: &Source<'_>,
    value: Option<&Spanned<String>>,
) -> Result<Option<Schedule>, ConfigError> {
    let text = value.map_or(DEFAULT_VERIFY_SCHEDULE, |v| v.get_ref().as_str());
    if text.trim() == "off" {
        return Ok(None);
    }
    let span = value.map_or(0..0, Spanned::span);
    database::parse_schedule(text)
        .map(Some)
        .map_err(|why| source.error(span, format!("`verify_schedule`: `{text}` {why}; write a cron expression such as \"0 3 * * sun\", or \"off\"")))
}

fn address(
    source: &Source<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    value
        .map(|v| {
            v.get_ref().parse().map_err(|_| {
                source.error(
                    v.span(),
                    format!(
                        "`{key}` = \"{}\" is not an address:port such as \"127.0.0.1:7878\"",
                        v.get_ref()
                    ),
                )
            })
        })
        .transpose()
}

fn timezone(
    source: &Source<'_>,
    value: Option<&Spanned<String>>,
) -> Result<chrono_tz::Tz, ConfigError> {
    match value {
        Some(name) => name.get_ref().parse().map_err(|_| {
            source.error(
                name.span(),
                format!("`timezone` = \"{}\" is not an IANA time zone name; write e.g. \"Europe/Berlin\" or \"UTC\"", name.get_ref()),
            )
        }),
        // The machine's zone, as cron users expect; UTC when the machine names none.
        None => Ok(iana_time_zone::get_timezone().ok().and_then(|n| n.parse().ok()).unwrap_or(chrono_tz::UTC)),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests;
