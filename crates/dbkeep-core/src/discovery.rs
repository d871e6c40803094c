//! Discovery: which databases each `[[servers]]` entry holds now, compared with what the
//! catalog recorded, and the changes written back ([`apply`]) with the events they bring.
//!
//! [`discover`] only asks the servers and compares; [`apply`] records. A server that does not
//! answer changes nothing: its databases stay as recorded, and its check records the error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use dbkeep_config::config::{Config, ServerConfig, ServerSource};
use dbkeep_engine::engine::listing::{Listed, Listing};
use dbkeep_engine::engine::{MysqlEngine, PostgresEngine};
use dbkeep_model::discovery::{DiscoveredDatabase, Discoveries, DiscoveryState};
use dbkeep_model::error::{Error, Result};

/// Where one database of a server stands, as `dbkeep discover` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Seen {
    /// Not recorded yet: backed up once applied.
    New,
    /// Recorded, and still there.
    Known,
    /// Recorded, and no longer there (or no longer chosen).
    Gone,
    /// Shown by the server, not backed up from it (`why` says why).
    Excluded,
    /// Shown by the server, but the user cannot read it (`why`: the server's words).
    Unreadable,
    /// Recorded, and its server did not answer: kept as recorded (not gone).
    Unreachable,
}

impl Seen {
    /// The word printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Seen::New => "new",
            Seen::Known => "known",
            Seen::Gone => "gone",
            Seen::Excluded => "excluded",
            Seen::Unreadable => "unreadable",
            Seen::Unreachable => "unreachable",
        }
    }
}

/// One database of a server in a discovery.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Its name on the server (a SQLite file's path).
    pub database: String,
    /// dbkeep's name for it, when it has one.
    pub name: Option<String>,
    /// Where it stands.
    pub state: Seen,
    /// Why it is excluded, unreadable or gone.
    pub why: Option<String>,
}

/// What one server showed.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// The `[[servers]]` entry.
    pub server: String,
    /// Its address, without a password.
    pub url: String,
    /// Why it could not be asked; its recorded databases are then listed as recorded.
    pub error: Option<String>,
    /// What the user lacks for complete backups, if the server says so.
    pub warning: Option<String>,
    /// Its databases, by name on the server.
    pub databases: Vec<Line>,
}

/// A discovery of every server.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the servers were asked.
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// Each server, in file order.
    pub servers: Vec<ServerReport>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A change [`apply`] recorded (this call's write made it, so this caller announces it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A database to back up from now on (new, or back).
    Found {
        /// dbkeep's name for it.
        name: String,
        /// Its server.
        server: String,
    },
    /// A database no longer backed up: its backups stay under retention.
    Gone {
        /// dbkeep's name for it.
        name: String,
        /// Its server.
        server: String,
        /// Why.
        why: String,
    },
    /// A database the user cannot read.
    Unreadable {
        /// dbkeep's name for it.
        name: String,
        /// Its server.
        server: String,
        /// The server's words.
        why: String,
    },
}

/// Asks every server of `config` (the file's configuration: its `[[databases]]` entries win)
/// for its databases and compares them with `recorded` (the catalog's). Writes nothing.
pub fn discover(config: &Config, recorded: &[DiscoveredDatabase], at: DateTime<Utc>) -> Report {
    let mut names = Names {
        explicit: config
            .databases
            .iter()
            .filter(|d| d.discovered.is_none())
            .collect(),
        owners: recorded
            .iter()
            .map(|r| (r.name.clone(), (r.server.clone(), r.database.clone())))
            .collect(),
    };
    let servers = list_all(config)
        .into_iter()
        .map(|(server, listing)| {
            let mine: BTreeMap<&str, &DiscoveredDatabase> = recorded
                .iter()
                .filter(|r| r.server == server.name)
                .map(|r| (r.database.as_str(), r))
                .collect();
            match listing {
                Ok(listing) => compare(server, listing, &mine, &mut names),
                Err(error) => unanswered(server, &mine, error),
            }
        })
        .collect();
    Report { at, servers }
}

/// The names already taken: by `[[databases]]` entries, and by each database recorded or
/// seen so far (with its server and its name there).
struct Names<'a> {
    explicit: Vec<&'a dbkeep_config::config::DatabaseConfig>,
    owners: HashMap<String, (String, String)>,
}

impl Names<'_> {
    /// dbkeep's name for `database` of `server`, or why it gets none (an explicit entry backs
    /// it up, or the name would be unsafe or taken).
    fn claim(
        &mut self,
        server: &ServerConfig,
        database: &str,
    ) -> std::result::Result<String, String> {
        if let Some(entry) = self
            .explicit
            .iter()
            .find(|d| server.is_target(&d.target, database))
        {
            return Err(format!(
                "backed up as the [[databases]] entry `{}`",
                entry.name
            ));
        }
        let name = server.name_for(database)?;
        if self.explicit.iter().any(|d| d.name == name) {
            return Err(format!(
                "its name `{name}` is taken by the [[databases]] entry `{name}` (another database): rename that entry, or exclude this one"
            ));
        }
        match self.owners.get(&name) {
            Some((s, d)) if (s.as_str(), d.as_str()) != (server.name.as_str(), database) => {
                Err(format!(
                    "its name `{name}` is taken by database `{d}` of server `{s}`: rename a server, or exclude one of them"
                ))
            }
            _ => {
                self.owners
                    .insert(name.clone(), (server.name.clone(), database.to_string()));
                Ok(name)
            }
        }
    }
}

/// Every server's listing, asked at once (one slow server does not hold up the others).
fn list_all(config: &Config) -> Vec<(&ServerConfig, std::result::Result<Listing, String>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = config
            .servers
            .iter()
            .map(|server| (server, s.spawn(|| list(config, server))))
            .collect();
        handles
            .into_iter()
            .map(|(server, h)| {
                let listing = h
                    .join()
                    .unwrap_or_else(|_| Err("the listing thread failed".into()));
                (server, listing)
            })
            .collect()
    })
}

/// A server that did not answer: its databases as recorded, nothing gone because it said so.
fn unanswered(
    server: &ServerConfig,
    mine: &BTreeMap<&str, &DiscoveredDatabase>,
    error: String,
) -> ServerReport {
    let databases = mine
        .values()
        .map(|r| Line {
            database: r.database.clone(),
            name: Some(r.name.clone()),
            state: match r.state {
                DiscoveryState::Gone => Seen::Gone,
                DiscoveryState::Known | DiscoveryState::Unreadable => Seen::Unreachable,
            },
            why: Some(format!(
                "the server did not answer; kept as recorded ({})",
                r.state
            )),
        })
        .collect();
    ServerReport {
        server: server.name.clone(),
        url: server.display(),
        error: Some(error),
        warning: None,
        databases,
    }
}

/// What `server` shows now against what was recorded of it (`mine`).
fn compare(
    server: &ServerConfig,
    listing: Listing,
    mine: &BTreeMap<&str, &DiscoveredDatabase>,
    names: &mut Names<'_>,
) -> ServerReport {
    let mut lines: Vec<Line> = listing
        .databases
        .iter()
        .map(
            |Listed {
                 name: database,
                 unreadable,
             }| {
                let chosen = match server.excluded(database) {
                    Some(why) => Err(why),
                    None => names.claim(server, database),
                };
                let (state, name, why) = match chosen {
                    Err(why) => (Seen::Excluded, None, Some(why)),
                    Ok(name) => match (unreadable, mine.get(database.as_str())) {
                        (Some(why), _) => (Seen::Unreadable, Some(name), Some(why.clone())),
                        (None, Some(r)) if r.state == DiscoveryState::Known => {
                            (Seen::Known, Some(name), None)
                        }
                        (None, _) => (Seen::New, Some(name), None),
                    },
                };
                Line {
                    database: database.clone(),
                    name,
                    state,
                    why,
                }
            },
        )
        .collect();
    // What was recorded and is not among the chosen any more is gone.
    for r in mine.values() {
        let now = lines.iter().position(|l| l.database == r.database);
        let why = match now.map(|i| &lines[i]) {
            Some(l) if l.name.is_some() => continue,
            Some(l) => format!("now excluded: {}", l.why.as_deref().unwrap_or_default()),
            None if r.state == DiscoveryState::Gone => r
                .detail
                .clone()
                .unwrap_or_else(|| "no longer on the server".into()),
            None => "no longer on the server".into(),
        };
        lines.retain(|l| l.database != r.database);
        lines.push(Line {
            database: r.database.clone(),
            name: Some(r.name.clone()),
            state: Seen::Gone,
            why: Some(why),
        });
    }
    lines.sort_by(|a, b| a.database.cmp(&b.database));
    ServerReport {
        server: server.name.clone(),
        url: server.display(),
        error: None,
        warning: listing.warning,
        databases: lines,
    }
}

/// Records `report` in `catalog`: each server's check, each database's state. Returns the
/// changes this call made (of instances racing on one catalog, one records each).
///
/// # Errors
/// When the catalog cannot be written.
pub fn apply(report: &Report, catalog: &dyn Discoveries) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for server in &report.servers {
        catalog.record_server_check(&server.server, report.at, server.error.as_deref())?;
        if server.error.is_some() {
            continue;
        }
        for line in &server.databases {
            let Some(name) = &line.name else { continue };
            let state = match line.state {
                // Recorded known and still there: nothing to write (500 tenants, no writes).
                Seen::Known => continue,
                Seen::New => DiscoveryState::Known,
                Seen::Gone => DiscoveryState::Gone,
                Seen::Unreadable => DiscoveryState::Unreadable,
                Seen::Excluded | Seen::Unreachable => continue,
            };
            let changed = catalog.set_discovered(&DiscoveredDatabase {
                name: name.clone(),
                server: server.server.clone(),
                database: line.database.clone(),
                state,
                found_at: report.at,
                changed_at: report.at,
                detail: line.why.clone(),
            })?;
            if !changed {
                continue;
            }
            let (name, server) = (name.clone(), server.server.clone());
            let why = line.why.clone().unwrap_or_default();
            changes.push(match state {
                DiscoveryState::Known => Change::Found { name, server },
                DiscoveryState::Gone => Change::Gone { name, server, why },
                DiscoveryState::Unreadable => Change::Unreadable { name, server, why },
            });
        }
    }
    Ok(changes)
}

/// The databases `server` holds now.
fn list(config: &Config, server: &ServerConfig) -> std::result::Result<Listing, String> {
    let words = |e: Error| dbkeep_model::text::escape_controls(&e.to_string(), false).into_owned();
    match &server.source {
        ServerSource::Postgres(target) => PostgresEngine::new(
            target.clone(),
            config
                .pg_dump_path
                .clone()
                .unwrap_or_else(|| "pg_dump".into()),
        )
        .list_databases()
        .map_err(words),
        ServerSource::Mysql(target) => MysqlEngine::new(
            target.clone(),
            config.mysqldump_path.clone(),
            config.mysql_path.clone(),
        )
        .list_databases()
        .map_err(words),
        ServerSource::Sqlite { pattern } => list_files(pattern),
    }
}

/// The SQLite files matching `pattern`: regular files, without SQLite's own side files.
fn list_files(pattern: &Path) -> std::result::Result<Listing, String> {
    let text = pattern.to_string_lossy();
    let paths = glob::glob(&text).map_err(|e| format!("`{text}` is not a file pattern ({e})"))?;
    let mut listing = Listing::default();
    for path in paths.flatten() {
        let name = path.to_string_lossy();
        if ["-wal", "-shm", "-journal"]
            .iter()
            .any(|s| name.ends_with(s))
            || !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
        {
            continue;
        }
        // A dbkeep temporary beside a file is never a database of its own.
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        listing.databases.push(Listed {
            name: name.into_owned(),
            unreadable: std::fs::File::open(&path)
                .err()
                .map(|e| format!("cannot open the file: {e}")),
        });
    }
    // A folder that does not exist is a server that does not answer, not "every file gone".
    if listing.databases.is_empty()
        && let Some(dir) = pattern.parent()
        && !dir.is_dir()
    {
        return Err(format!("the folder {} does not exist", dir.display()));
    }
    Ok(listing)
}

impl crate::runner::Runner {
    /// Asks every configured server for its databases and compares them with the catalog's
    /// record ([`discover`]); writes nothing.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub fn discover(&self) -> Result<Report> {
        let recorded = self.catalog().discovered()?;
        Ok(discover(self.base_config(), &recorded, self.clock().now()))
    }

    /// Records `report` ([`apply`]), puts the new set of databases in force, and announces
    /// each change this call made (`database_found`, `database_gone`) to the notifiers.
    ///
    /// # Errors
    /// When the catalog cannot be written.
    pub fn apply_discovery(&self, report: &Report) -> Result<Vec<Change>> {
        let changes = apply(report, self.catalog())?;
        self.refresh_discovered()?;
        for change in &changes {
            use dbkeep_model::vocab::EventKind;
            use dbkeep_notify::notify::Event;
            match change {
                Change::Found { name, server } => {
                    tracing::info!(database = %name, server = %server, "found a database to back up");
                    self.notifier()
                        .notify(Event::about(EventKind::DatabaseFound, name));
                }
                Change::Gone { name, server, why } => {
                    tracing::warn!(database = %name, server = %server, why = %why, "a database is gone; its backups are kept");
                    self.notifier().notify(Event {
                        error: Some(why.clone()),
                        ..Event::about(EventKind::DatabaseGone, name)
                    });
                }
                Change::Unreadable { name, server, why } => {
                    tracing::warn!(database = %name, server = %server, why = %why, "a database cannot be read; it is not backed up");
                }
            }
        }
        for server in &report.servers {
            if let Some(error) = &server.error {
                tracing::warn!(server = %server.server, error = %error, "a server did not answer discovery; its databases stay as recorded");
            }
        }
        Ok(changes)
    }
}

/// One server as the overview and `dbkeep status` show it: how it last answered and how many
/// of its databases stand where.
#[derive(Debug, Clone, Serialize)]
pub struct ServerState {
    /// The `[[servers]]` entry.
    pub server: String,
    /// Its address, without a password.
    pub url: String,
    /// When discovery last asked it (RFC 3339), if it has.
    pub checked_at: Option<String>,
    /// Why it did not answer, when it did not: the server's verdict is then failing.
    pub error: Option<String>,
    /// Its databases backed up.
    pub known: usize,
    /// Its databases gone.
    pub gone: usize,
    /// Its databases it shows but the user cannot read.
    pub unreadable: usize,
}

impl ServerState {
    /// Whether the server needs someone: it did not answer, or a database cannot be read.
    pub fn failing(&self) -> bool {
        self.error.is_some() || self.unreadable > 0
    }
}

/// Every configured server's state, from the catalog and the configuration in force.
///
/// # Errors
/// When the catalog cannot be read.
pub fn server_states(runner: &dyn crate::runner::View) -> Result<Vec<ServerState>> {
    let config = runner.config();
    let checks = runner.catalog().server_checks()?;
    Ok(config
        .servers
        .iter()
        .map(|s| {
            let check = checks.iter().find(|c| c.server == s.name);
            let count = |state: DiscoveryState| {
                config
                    .databases
                    .iter()
                    .filter(|d| {
                        d.discovered
                            .as_ref()
                            .is_some_and(|f| f.server == s.name && f.state == state)
                    })
                    .count()
            };
            ServerState {
                server: s.name.clone(),
                url: s.display(),
                checked_at: check.map(|c| {
                    c.checked_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }),
                error: check.and_then(|c| c.error.clone()),
                known: count(DiscoveryState::Known),
                gone: count(DiscoveryState::Gone),
                unreadable: count(DiscoveryState::Unreadable),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests;
