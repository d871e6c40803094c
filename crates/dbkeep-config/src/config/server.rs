//! One `[[servers]]` entry: a PostgreSQL or MySQL/MariaDB server (or a glob of SQLite files)
//! whose databases are discovered, with the filters that choose them and the defaults every
//! database found there gets.
//!
//! A database found on server `S` is named `S-DB` (`DB` its name on the server; for a SQLite
//! glob, the file's name without its extension). The name is also its backup folder, so it
//! must be a valid database name: 1 to 64 letters, digits, `-` or `_`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use dbkeep_model::discovery::DiscoveryState;
use dbkeep_model::error::ConfigError;

use super::database::{DatabaseConfig, RawDatabase, ServerTarget, Target};
use super::retention::RawRetention;
use super::{Source, names};

/// The schemas of a MySQL server that hold the server's own data, never backed up as
/// databases of their own.
pub const MYSQL_SYSTEM_SCHEMAS: &[&str] =
    &["mysql", "information_schema", "performance_schema", "sys"];

/// The longest `spread` may be.
const MAX_SPREAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a server's databases are found.
#[derive(Debug, Clone)]
pub enum ServerSource {
    /// A PostgreSQL server; the URL's database is the one discovery connects to (`postgres`
    /// when the URL names none).
    Postgres(ServerTarget),
    /// A MySQL or MariaDB server; the URL names no database.
    Mysql(ServerTarget),
    /// SQLite files matching a glob (an absolute pattern).
    Sqlite {
        /// The pattern, e.g. `/srv/app/*.sqlite3`.
        pattern: PathBuf,
    },
}

/// A validated `[[servers]]` entry.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Its name: letters, digits, `-` and `_`; the first part of its databases' names.
    pub name: String,
    /// Where its databases are found.
    pub source: ServerSource,
    /// Only databases matching one of these are backed up (all when none is given).
    pub include: Vec<glob::Pattern>,
    /// Databases matching one of these are not backed up.
    pub exclude: Vec<glob::Pattern>,
    /// At most this many backups run against the server at once, across every instance on
    /// the catalog (`None`: no limit of its own; default 1 for PostgreSQL and MySQL).
    pub max_concurrent: Option<u32>,
    /// Each database's fires are moved later than the cron time by a stable share of this
    /// window (zero: none).
    pub spread: Duration,
    /// The settings every database found here gets; its name and target are replaced.
    template: DatabaseConfig,
    /// PostgreSQL: its WAL is archived (`wal_archive = true`, with `archive_command =
    /// 'dbkeep wal push %p'`) and base backups are taken on these schedules
    /// (`base_schedules`, default weekly); `None`: no point-in-time recovery.
    pub base_schedules: Option<Vec<super::database::Schedule>>,
    /// With WAL archived: how long no WAL may reach the archive while the server writes
    /// before `wal_archive_stalled` is announced (`wal_stalled_after`, default 10 minutes).
    pub wal_stalled_after: Duration,
    /// `compression` as the entry wrote it (base backups default to zstd).
    compression_set: Option<dbkeep_model::vocab::Compression>,
}

/// When base backups run unless `base_schedules` says otherwise: Sundays at 01:00.
pub const DEFAULT_BASE_SCHEDULE: &str = "0 1 * * sun";

/// What discovery knows of one database of a server when it builds its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The `[[servers]]` entry that found it.
    pub server: String,
    /// Its name on the server (a SQLite file's path).
    pub database: String,
    /// Where it stands.
    pub state: DiscoveryState,
    /// Why it is unreadable or gone, as discovery recorded it.
    pub detail: Option<String>,
}

impl ServerConfig {
    /// The kind of the databases found here.
    pub fn kind(&self) -> dbkeep_model::vocab::Kind {
        match &self.source {
            ServerSource::Postgres(_) => dbkeep_model::vocab::Kind::Postgres,
            ServerSource::Mysql(_) => dbkeep_model::vocab::Kind::Mysql,
            ServerSource::Sqlite { .. } => dbkeep_model::vocab::Kind::Sqlite,
        }
    }

    /// The address to show people: the URL without its password, or the glob.
    pub fn display(&self) -> String {
        match &self.source {
            ServerSource::Postgres(s) => s.url.to_string(),
            // Its URL names no database: the one the client is given is a placeholder.
            ServerSource::Mysql(s) => {
                let mut url = s.url.clone();
                url.set_path("/");
                url.to_string()
            }
            ServerSource::Sqlite { pattern } => format!("sqlite:{}", pattern.display()),
        }
    }

    /// dbkeep's name for the database `database` of this server (see the module's docs).
    ///
    /// # Errors
    /// Why the name would not be a safe name, in words naming the database.
    pub fn name_for(&self, database: &str) -> Result<String, String> {
        let short = match &self.source {
            ServerSource::Sqlite { .. } => Path::new(database)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            _ => database.to_string(),
        };
        let name = format!("{}-{short}", self.name);
        if names::is_name(&name) {
            Ok(name)
        } else {
            Err(format!(
                "its name would be `{}`, which is not a safe folder name (1 to 64 letters, digits, `-` or `_`); exclude it, or back it up with a [[databases]] entry of its own",
                dbkeep_model::text::escape_controls(&name, false)
            ))
        }
    }

    /// Why `database` is not backed up from this server although it shows it (a system
    /// schema, an `exclude` pattern, no `include` pattern), or `None` when it is.
    pub fn excluded(&self, database: &str) -> Option<String> {
        if matches!(self.source, ServerSource::Mysql(_)) && MYSQL_SYSTEM_SCHEMAS.contains(&database)
        {
            return Some("a system schema".into());
        }
        // A SQLite glob's files are matched by their file name.
        let matched = match &self.source {
            ServerSource::Sqlite { .. } => Path::new(database)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            _ => database.to_string(),
        };
        if let Some(p) = self.exclude.iter().find(|p| p.matches(&matched)) {
            return Some(format!("matches exclude `{}`", p.as_str()));
        }
        if !self.include.is_empty() && !self.include.iter().any(|p| p.matches(&matched)) {
            return Some("matches no include pattern".into());
        }
        None
    }

    /// Whether `target` is the database `database` of this server (an explicit
    /// `[[databases]]` entry for it wins over discovery).
    pub fn is_target(&self, target: &Target, database: &str) -> bool {
        match (&self.source, target) {
            (ServerSource::Postgres(s), Target::Postgres(t))
            | (ServerSource::Mysql(s), Target::Mysql(t)) => {
                s.url.host_str() == t.url.host_str()
                    && s.url.port_or_known_default() == t.url.port_or_known_default()
                    && t.database() == database
            }
            (ServerSource::Sqlite { .. }, Target::Sqlite { path }) => {
                let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                canon(path) == canon(Path::new(database))
            }
            _ => false,
        }
    }

    /// The configuration of the database `database` of this server, named `name`.
    pub fn database(
        &self,
        name: &str,
        database: &str,
        state: DiscoveryState,
        detail: Option<&str>,
    ) -> DatabaseConfig {
        let mut db = self.template.clone();
        db.name = name.to_string();
        db.target = match &self.source {
            ServerSource::Postgres(s) => Target::Postgres(on_database(s, database)),
            ServerSource::Mysql(s) => Target::Mysql(on_database(s, database)),
            ServerSource::Sqlite { .. } => Target::Sqlite {
                path: PathBuf::from(database),
            },
        };
        db.discovered = Some(Discovered {
            server: self.name.clone(),
            database: database.to_string(),
            state,
            detail: detail.map(str::to_string),
        });
        db
    }

    /// Where `name`'s database fires within the spread window: a stable share of `spread`
    /// from a hash of the name (FNV-1a, then the 64-bit finalizer of MurmurHash3, so that
    /// names differing in a last digit land far apart; fixed here so that it never changes
    /// between releases).
    pub fn offset(&self, name: &str) -> Duration {
        // In milliseconds: 500 databases over an hour get 500 distinct times.
        let window = u64::try_from(self.spread.as_millis()).unwrap_or(u64::MAX);
        if window == 0 {
            return Duration::ZERO;
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^= hash >> 33;
        Duration::from_millis(hash % window)
    }
}

/// The server connection `server` with its database replaced by `database`.
fn on_database(server: &ServerTarget, database: &str) -> ServerTarget {
    let mut url = server.url.clone();
    // Unreserved characters stay as they are, as a person would write the URL.
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let encoded: String = percent_encoding::utf8_percent_encode(database, PATH).collect();
    url.set_path(&format!("/{encoded}"));
    ServerTarget {
        url,
        ..server.clone()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    name: Spanned<String>,
    url: Spanned<String>,
    password_env: Option<Spanned<String>>,
    include: Option<Vec<Spanned<String>>>,
    exclude: Option<Vec<Spanned<String>>>,
    max_concurrent_per_server: Option<Spanned<u32>>,
    spread: Option<Spanned<String>>,
    compression: Option<dbkeep_model::vocab::Compression>,
    pub(super) schedules: Option<Vec<Spanned<String>>>,
    verify_url: Option<Spanned<String>>,
    globals: Option<Spanned<bool>>,
    age_recipients: Option<Spanned<Vec<Spanned<String>>>>,
    age_passphrase_env: Option<Spanned<String>>,
    ping_url: Option<Spanned<String>>,
    keep_local: Option<Spanned<bool>>,
    retention_days: Option<Spanned<u32>>,
    keep_last: Option<Spanned<u32>>,
    keep_hourly: Option<Spanned<u32>>,
    keep_daily: Option<Spanned<u32>>,
    keep_weekly: Option<Spanned<u32>>,
    keep_monthly: Option<Spanned<u32>>,
    keep_yearly: Option<Spanned<u32>>,
    offsite_retention: Option<std::collections::BTreeMap<String, Spanned<RawRetention>>>,
    wal_archive: Option<Spanned<bool>>,
    base_schedules: Option<Vec<Spanned<String>>>,
    wal_stalled_after: Option<Spanned<String>>,
}

/// How long no WAL may reach the archive while the server writes, unless
/// `wal_stalled_after` says otherwise.
pub const DEFAULT_WAL_STALLED_AFTER: Duration = Duration::from_secs(600);

impl RawServer {
    pub(super) fn validate(
        self,
        src: &Source<'_>,
        base: &Path,
    ) -> Result<ServerConfig, ConfigError> {
        let name = self.name.get_ref().clone();
        // The server's own name is followed by `-` and a database's in every name it makes.
        if !names::is_name(&name) || name.len() > 48 {
            return Err(src.error(
                self.name.span(),
                format!("server `name = \"{name}\"` is invalid: use 1 to 48 letters, digits, `-` or `_` (its databases are named `{name}-<database>`)"),
            ));
        }
        let url_text = self.url.get_ref();
        let (source, template_url) = if let Some(pattern) = url_text.strip_prefix("sqlite:") {
            let pattern = pattern.strip_prefix("//").unwrap_or(pattern);
            if pattern.is_empty() {
                return Err(src.error(self.url.span(), format!("`url` of server `{name}` has no file pattern after `sqlite:`; write e.g. \"sqlite:/srv/app/*.sqlite3\"")));
            }
            let pattern = base.join(pattern);
            if let Err(e) = glob::Pattern::new(&pattern.to_string_lossy()) {
                return Err(src.error(self.url.span(), format!("`url` of server `{name}` is not a valid file pattern ({e}); write e.g. \"sqlite:/srv/app/*.sqlite3\"")));
            }
            (
                ServerSource::Sqlite {
                    pattern: pattern.clone(),
                },
                format!("sqlite:{}", pattern.display()),
            )
        } else {
            let mut url = url::Url::parse(url_text).map_err(|e| {
                src.error(self.url.span(), format!("`url` of server `{name}` is not a valid URL ({e}); expected `postgres://user@host:port/`, `mysql://user@host:port/` or `sqlite:/path/*.sqlite3`"))
            })?;
            let mysql = matches!(url.scheme(), "mysql" | "mariadb");
            if !mysql && !matches!(url.scheme(), "postgres" | "postgresql") {
                return Err(src.error(self.url.span(), format!("`url` scheme `{}:` of server `{name}` is not supported; expected `postgres://`, `mysql://` or `sqlite:`", url.scheme())));
            }
            let path = url.path().trim_start_matches('/').to_string();
            if mysql && !path.is_empty() {
                return Err(src.error(self.url.span(), format!("`url` of server `{name}` names the database `{path}`: a MySQL server's URL names none (write `mysql://user@host:port/`); choose databases with `include` and `exclude`")));
            }
            if path.is_empty() {
                url.set_path(if mysql { "/mysql" } else { "/postgres" });
            }
            let text = url.to_string();
            // The template's target is the server's: each database found replaces its name.
            let placeholder = Spanned::new(self.url.span(), text.clone());
            let target = Target::parse(placeholder.get_ref(), base)
                .map_err(|m| src.error(self.url.span(), m))?;
            let server = target
                .server()
                .cloned()
                .ok_or_else(|| src.error(self.url.span(), "not a server URL"))?;
            (
                if mysql {
                    ServerSource::Mysql(server)
                } else {
                    ServerSource::Postgres(server)
                },
                text,
            )
        };
        let patterns = |key: &str,
                        list: Option<Vec<Spanned<String>>>|
         -> Result<Vec<glob::Pattern>, ConfigError> {
            list.unwrap_or_default()
                .into_iter()
                .map(|p| {
                    glob::Pattern::new(p.get_ref()).map_err(|e| {
                        src.error(p.span(), format!("`{key}` of server `{name}`: `{}` is not a glob pattern ({e}); write e.g. \"tenant_*\"", p.get_ref()))
                    })
                })
                .collect()
        };
        let include = patterns("include", self.include)?;
        let exclude = patterns("exclude", self.exclude)?;
        let sqlite = matches!(source, ServerSource::Sqlite { .. });
        let max_concurrent = match &self.max_concurrent_per_server {
            Some(n) if !(1..=super::MAX_CONCURRENT_BACKUPS).contains(n.get_ref()) => {
                return Err(src.error(n.span(), format!("`max_concurrent_per_server` of server `{name}` = {} is out of range: it must be from 1 to {}", n.get_ref(), super::MAX_CONCURRENT_BACKUPS)));
            }
            Some(n) => Some(*n.get_ref()),
            None if sqlite => None,
            None => Some(1),
        };
        let spread = match &self.spread {
            None => Duration::ZERO,
            Some(s) => match humantime::parse_duration(s.get_ref()) {
                Ok(d) if d <= MAX_SPREAD => d,
                _ => {
                    return Err(src.error(s.span(), format!("`spread` of server `{name}` = \"{}\" is not a duration up to 7 days; write e.g. \"1h\" or \"30m\"", s.get_ref())));
                }
            },
        };
        let base_schedules = match (&self.wal_archive, &source) {
            (Some(w), ServerSource::Postgres(_)) if *w.get_ref() => {
                Some(base_schedules(src, &name, self.base_schedules.as_deref())?)
            }
            (Some(w), _) if *w.get_ref() => {
                return Err(src.error(w.span(), format!("`wal_archive` of server `{name}` applies only to PostgreSQL servers; remove it")));
            }
            _ => {
                if let Some(first) = self.base_schedules.as_ref().and_then(|b| b.first()) {
                    return Err(src.error(first.span(), format!("`base_schedules` of server `{name}` needs `wal_archive = true`: base backups are for point-in-time recovery")));
                }
                None
            }
        };
        let wal_stalled_after = match &self.wal_stalled_after {
            None => DEFAULT_WAL_STALLED_AFTER,
            Some(s) if base_schedules.is_none() => {
                return Err(src.error(
                    s.span(),
                    format!("`wal_stalled_after` of server `{name}` needs `wal_archive = true`"),
                ));
            }
            Some(s) => match humantime::parse_duration(s.get_ref()) {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    return Err(src.error(s.span(), format!("`wal_stalled_after` of server `{name}` = \"{}\" is not a duration; write e.g. \"10m\" (more than archive_timeout)", s.get_ref())));
                }
            },
        };
        let compression_set = self.compression;
        let raw = RawDatabase {
            name: self.name,
            url: Spanned::new(self.url.span(), template_url),
            password_env: self.password_env,
            compression: self.compression,
            schedules: self.schedules,
            verify_url: self.verify_url,
            globals: self.globals,
            age_recipients: self.age_recipients,
            age_passphrase_env: self.age_passphrase_env,
            ping_url: self.ping_url,
            keep_local: self.keep_local,
            retention_days: self.retention_days,
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            offsite_retention: self.offsite_retention,
        };
        let template = raw.validate(src, base)?;
        // The template's connection carries `password_env`: the databases found use it.
        let source = match (source, template.target.server()) {
            (ServerSource::Postgres(_), Some(t)) => ServerSource::Postgres(t.clone()),
            (ServerSource::Mysql(_), Some(t)) => ServerSource::Mysql(t.clone()),
            (other, _) => other,
        };
        Ok(ServerConfig {
            name,
            source,
            include,
            exclude,
            max_concurrent,
            spread,
            template,
            base_schedules,
            wal_stalled_after,
            compression_set,
        })
    }
}

/// The validated `base_schedules` of server `name` (the default when absent).
fn base_schedules(
    src: &Source<'_>,
    name: &str,
    exprs: Option<&[Spanned<String>]>,
) -> Result<Vec<super::database::Schedule>, ConfigError> {
    let default = [Spanned::new(0..0, DEFAULT_BASE_SCHEDULE.to_string())];
    let exprs = exprs.unwrap_or(&default);
    if exprs.is_empty() {
        return Err(src.error(0..0, format!("`base_schedules` of server `{name}` is empty; remove it for the default (\"{DEFAULT_BASE_SCHEDULE}\", Sundays at 01:00) or list cron expressions")));
    }
    exprs
        .iter()
        .map(|expr| {
            super::database::parse_schedule(expr.get_ref()).map_err(|why| {
                src.error(expr.span(), format!("`base_schedules` of server `{name}`: `{}` {why}; expected e.g. \"{DEFAULT_BASE_SCHEDULE}\" (Sundays at 01:00)", expr.get_ref().trim()))
            })
        })
        .collect()
}

impl ServerConfig {
    /// The settings every database found here gets (its name is the server's).
    pub fn template(&self) -> &DatabaseConfig {
        &self.template
    }

    /// The configuration of this server's base backups, when it archives WAL: a database
    /// named as the server (its folder holds the base backups, and `wal/` the archive), on
    /// `base_schedules`, with the server's compression (zstd unless set), encryption,
    /// retention and off-site destinations.
    pub fn base(&self) -> Option<DatabaseConfig> {
        let schedules = self.base_schedules.clone()?;
        let ServerSource::Postgres(server) = &self.source else {
            return None;
        };
        let mut db = self.template.clone();
        db.target = Target::PostgresBase(server.clone());
        db.schedules = schedules;
        db.compression = self
            .compression_set
            .unwrap_or(dbkeep_model::vocab::Compression::Zstd);
        db.globals = false;
        db.verify_url = None;
        db.discovered = None;
        Some(db)
    }

    /// Whether this server's WAL is archived by dbkeep.
    pub fn archives_wal(&self) -> bool {
        self.base_schedules.is_some() && matches!(self.source, ServerSource::Postgres(_))
    }

    /// The template, for the top-level keys that apply below it.
    pub(super) fn template_mut(&mut self) -> &mut DatabaseConfig {
        &mut self.template
    }
}
