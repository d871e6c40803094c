//! A restore chosen in the admin or through the API, before it runs: where it goes (a new
//! database on the backup's own server, another configured database, or the original), what
//! it will do there, in words, and the checks it must pass first (the right kind of database,
//! a new name that is free, the name typed out before a database is replaced). After the
//! restore, [`compare`] counts the target's rows against what the backup recorded.

use dbkeep_config::config::Target;
use dbkeep_engine::engine::{self, RestoreOptions};
use dbkeep_model::cancel::Cancel;
use dbkeep_model::catalog::{BackupRecord, Kind, Status};
use dbkeep_model::error::{Error, Result};
use dbkeep_model::stream::TableRows;

use crate::runner::Runner;

/// Where a restore goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTo {
    /// A database (a SQLite file) of this name, created on the backup's own server (in its
    /// folder); refused when it is there already.
    New(String),
    /// Another configured database, by its name in the configuration.
    Database(String),
    /// The database the backup was taken of.
    Original,
}

/// What a restore will do, checked against the target as it is now.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where it loads.
    pub target: Target,
    /// The target in words: `new database app_copy on postgres://…` (never a password).
    pub target_label: String,
    /// The configured database it replaces or fills, when it goes into one: its backups must
    /// not be running, and its name must be typed out to confirm.
    pub replaces: Option<String>,
    /// The tables and rows the backup recorded (empty for a backup made before dbkeep
    /// counted them).
    pub tables: TableRows,
    /// What will happen, one sentence each.
    pub effects: Vec<String>,
    /// How the engine is asked to load it.
    pub options: RestoreOptions,
}

/// The longest name a new database may be given (PostgreSQL's limit).
const NAME_MAX: usize = 63;

/// Checks a new database's name: letters, digits, `_` and `-`, not dbkeep's own prefix (the
/// names dbkeep removes again after a killed run begin with `dbkeep_`).
fn check_new_name(name: &str) -> Result<()> {
    let fine = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with('-');
    if !fine {
        let shown: String = name.chars().take(NAME_MAX + 1).collect();
        return Err(Error::Refused(format!(
            "the new database's name must be 1 to {NAME_MAX} letters, digits, `_` or `-`, not beginning with `-` (got {:?})",
            dbkeep_model::text::escape_controls(&shown, false)
        )));
    }
    if name.to_ascii_lowercase().starts_with("dbkeep_") {
        return Err(Error::Refused(
            "names beginning with dbkeep_ are dbkeep's own throwaways; choose another name".into(),
        ));
    }
    Ok(())
}

/// Plans restoring `record` as `to` says, with the stored roles first when `with_globals`.
///
/// # Errors
/// [`Error::Refused`] naming why the restore cannot go there: a backup that is not stored, a
/// database no longer configured, a target of another kind, a new name that is taken or not
/// a name; [`Error::Engine`] when the target's server cannot be asked.
pub fn plan(
    runner: &Runner,
    record: &BackupRecord,
    to: &RestoreTo,
    with_globals: bool,
) -> Result<Plan> {
    let id = record.id;
    if record.status != Status::Success || !record.is_stored() {
        return Err(Error::Refused(format!(
            "backup #{id} has no stored file to restore (it is {}{})",
            record.status,
            if record.pruned_at.is_some() {
                ", pruned"
            } else {
                ""
            }
        )));
    }
    crate::pitr::refuse_base(record)?;
    let config = runner.config();
    let source = config.database(&record.database).map_err(|_| {
        Error::Refused(format!(
            "database {} is no longer configured, so its server is unknown here; restore backup #{id} from the command line with --to",
            record.database
        ))
    })?;
    let (target, replaces) = match to {
        RestoreTo::New(name) => {
            check_new_name(name)?;
            let target = match &source.target {
                Target::Sqlite { path } => Target::Sqlite {
                    path: path.with_file_name(format!("{name}.db")),
                },
                Target::Postgres(s) => {
                    Target::Postgres(dbkeep_engine::throwaway::on_server(s, name))
                }
                Target::Mysql(s) => Target::Mysql(dbkeep_engine::throwaway::on_server(s, name)),
                // Refused above (`refuse_base`): a base backup's database is its server.
                Target::PostgresBase(s) => Target::PostgresBase(s.clone()),
            };
            (target, None)
        }
        RestoreTo::Database(name) => {
            let db = config
                .database(name)
                .map_err(|_| Error::Refused(format!("{name} is not a configured database")))?;
            (db.target.clone(), Some(db.name.clone()))
        }
        RestoreTo::Original => (source.target.clone(), Some(source.name.clone())),
    };
    if target.kind() != record.kind {
        return Err(Error::Refused(format!(
            "backup #{id} is a {} backup and {} is a {} database; restore it into a {} one",
            record.kind,
            replaces.as_deref().unwrap_or("the target"),
            target.kind(),
            record.kind
        )));
    }
    // An encrypted backup this host cannot open is refused now, not after reading it whole.
    dbkeep_pipeline::crypt::Keys::for_record(&config, record).map_err(|e| {
        Error::Refused(format!(
            "backup #{id} is encrypted and cannot be opened here: {e}"
        ))
    })?;
    let roles_stored = record.kind == Kind::Postgres && runner.globals_for(record)?.is_some();
    if with_globals && record.kind != Kind::Postgres {
        return Err(Error::Refused(format!(
            "backup #{id} is a {} backup: only PostgreSQL backups store the server's roles",
            record.kind
        )));
    }
    if with_globals && !roles_stored {
        return Err(Error::Refused(format!(
            "backup #{id} has no stored roles (its database did not say globals = true when it was made); restore it without the roles"
        )));
    }
    let engine = engine::for_target(&config, &target);
    let cancel = Cancel::new();
    let exists = engine.exists(&cancel)?;
    let shown = target.display();
    let mut effects = Vec::new();
    let (label, create) = match (to, exists) {
        (RestoreTo::New(name), true) => {
            return Err(Error::Refused(format!(
                "{name} exists already ({shown}); choose a name that is free, or restore into a configured database"
            )));
        }
        (RestoreTo::New(name), false) => {
            effects.push(match record.kind {
                Kind::Sqlite => format!("A new file {shown} is written; it appears under its name only once it is whole."),
                Kind::Postgres => format!("A new database {name} is created on the backup's server and loaded under a temporary name, then renamed to {name} once every table has loaded: a failed restore leaves nothing."),
                Kind::Mysql | Kind::PostgresBase => format!("A new database {name} is created on the backup's server; a failed restore drops it again."),
            });
            (format!("new database {name} ({shown})"), true)
        }
        (_, false) => {
            let name = replaces.clone().unwrap_or_default();
            effects.push(match record.kind {
                Kind::Sqlite => format!(
                    "The file of {name} ({shown}) is not there: it is written, and appears under its name only once it is whole."
                ),
                _ => format!(
                    "Database {name} is not on its server ({shown}): it is created and loaded."
                ),
            });
            (format!("database {name} ({shown})"), true)
        }
        (_, true) => {
            let name = replaces.clone().unwrap_or_default();
            let held = match engine.table_count(&cancel) {
                Ok(n) => format!("its {n} table(s)"),
                Err(_) => "what it holds".to_string(),
            };
            effects.push(match record.kind {
                Kind::Sqlite => format!("The file {shown} and {held} are replaced by the backup's: the restored copy is swapped in whole, so a failed restore leaves the file as it was. Stop the application first."),
                Kind::Postgres => format!("Database {name} loses {held} and everything else in its schemas, replaced in the same transaction as the load: a failed restore leaves it as it was. The restore waits for the application's open transactions, and its sessions wait for the restore to commit. Stop the application first."),
                Kind::Mysql | Kind::PostgresBase => format!("Database {name} loses {held}: they are dropped before the load (MySQL cannot do that in a transaction), so a failed restore leaves it marked incomplete, not as it was. Stop the application first."),
            });
            (format!("database {name} ({shown})"), false)
        }
    };
    if record.kind == Kind::Postgres {
        effects.push(if with_globals {
            "The roles stored with the backup that the server lacks are created first; roles that exist are never changed.".into()
        } else if roles_stored {
            "The server's roles are stored with this backup but are not restored: the owners the dump names must exist on the server.".into()
        } else {
            "No roles are stored with this backup: the owners the dump names must exist on the server.".into()
        });
    }
    Ok(Plan {
        target,
        target_label: label,
        replaces,
        tables: runner.catalog().table_rows(id)?,
        effects,
        options: RestoreOptions {
            force: exists,
            create,
            with_globals,
            jobs: 1,
            ..RestoreOptions::default()
        },
    })
}

impl Plan {
    /// Checks that a restore into a configured database had its name typed out: the last
    /// guard before a database is replaced.
    ///
    /// # Errors
    /// [`Error::Refused`] when the name typed is not the database's.
    pub fn confirm(&self, typed: Option<&str>) -> Result<()> {
        match &self.replaces {
            Some(name) if typed.map(str::trim) != Some(name.as_str()) => Err(Error::Refused(
                format!("type the database's name, {name}, to confirm restoring over it"),
            )),
            _ => Ok(()),
        }
    }
}

/// One table's rows: as the backup recorded them, and as the restored target holds them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCount {
    /// The table, as the backup named it.
    pub table: String,
    /// The rows the backup recorded.
    pub expected: u64,
    /// The rows the target holds now.
    pub found: u64,
}

/// The target's rows of each table `record` recorded, beside the recorded counts.
///
/// # Errors
/// [`Error::Engine`] when the target's tables cannot be counted.
pub fn compare(
    runner: &Runner,
    record: &BackupRecord,
    target: &Target,
    cancel: &Cancel,
) -> Result<Vec<TableCount>> {
    let recorded = runner.catalog().table_rows(record.id)?;
    if recorded.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = recorded.iter().map(|(n, _)| n.clone()).collect();
    let found = engine::for_target(&runner.config(), target).count_rows(&names, cancel)?;
    Ok(recorded
        .into_iter()
        .zip(found)
        .map(|((table, expected), (_, found))| TableCount {
            table,
            expected,
            found,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_new_name_is_a_plain_name_and_never_one_of_dbkeeps_throwaways() {
        for fine in ["app_copy", "shop-2026", "A1", &"x".repeat(NAME_MAX)] {
            assert!(check_new_name(fine).is_ok(), "{fine}");
        }
        for bad in [
            "",
            "-app",
            "a;b",
            "a b",
            "app\"",
            "äpp",
            "../etc",
            &"x".repeat(NAME_MAX + 1),
        ] {
            let e = check_new_name(bad).unwrap_err().to_string();
            assert!(e.contains("letters, digits"), "{bad}: {e}");
        }
        let e = check_new_name("DBKEEP_verify_1").unwrap_err().to_string();
        assert!(e.contains("dbkeep's own throwaways"), "{e}");
        // A name with control characters is shown escaped, and cut.
        let e = check_new_name(&format!("a\nb{}", "y".repeat(500)))
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n') && e.len() < 300, "{e}");
    }

    fn plan_replacing(replaces: Option<&str>) -> Plan {
        Plan {
            target: Target::Sqlite {
                path: "/tmp/x.db".into(),
            },
            target_label: String::new(),
            replaces: replaces.map(str::to_string),
            tables: Vec::new(),
            effects: Vec::new(),
            options: RestoreOptions::default(),
        }
    }

    #[test]
    fn replacing_a_database_needs_its_name_typed_exactly() {
        let plan = plan_replacing(Some("shop"));
        assert!(plan.confirm(Some("shop")).is_ok());
        assert!(plan.confirm(Some("  shop ")).is_ok());
        for wrong in [None, Some(""), Some("Shop"), Some("shopp")] {
            let e = plan.confirm(wrong).unwrap_err().to_string();
            assert!(
                e.contains("type the database's name, shop"),
                "{wrong:?}: {e}"
            );
        }
        // A new database replaces nothing: nothing to type.
        assert!(plan_replacing(None).confirm(None).is_ok());
    }
}
