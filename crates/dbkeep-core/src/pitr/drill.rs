//! The drill of a base backup: it is recovered with the archive to the archive's end into a
//! throwaway data directory beside it (hidden, in the server's folder), started on a free
//! port of loopback, and every table of every database is counted there (which reads every
//! row); then the server is stopped and the folder removed. How long recovery took, from the
//! first byte unpacked to the promoted server, is the drill's RTO.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::runner::Runner;
use dbkeep_config::config::ServerSource;
use dbkeep_model::catalog::BackupRecord;
use dbkeep_model::error::{Error, Result};

use super::recover::{RecoveryTarget, free_port, prepare_base, server_program, start_in};

/// What a drill proved.
#[derive(Debug)]
pub struct Drilled {
    /// From the first byte unpacked to the promoted server.
    pub rto: Duration,
    /// Databases, tables and rows counted on the recovered server.
    pub databases: usize,
    /// Tables counted.
    pub tables: usize,
    /// Rows counted.
    pub rows: u64,
}

/// The throwaway folders of drills start with this.
const PREFIX: &str = ".drill_";

/// Recovers `record` (a base backup) with its server's archive, starts it, counts its rows,
/// and removes it again.
///
/// # Errors
/// Why the backup and its archive did not make a server whose every table reads.
pub fn drill(runner: &Runner, record: &BackupRecord) -> Result<Drilled> {
    let config = runner.config();
    let server = config
        .server(&record.database)
        .filter(|s| s.archives_wal())
        .ok_or_else(|| {
            Error::Refused(format!(
                "backup #{} is a base backup of `{}`, which no [[servers]] entry with wal_archive = true names now",
                record.id, record.database
            ))
        })?;
    let ServerSource::Postgres(target) = &server.source else {
        return Err(Error::Refused("not a PostgreSQL server".into()));
    };
    let folder = config.database_dir(&server.name);
    remove_orphans(&folder);
    let base = super::stored_bases(runner, &server.name)?
        .into_iter()
        .find(|(b, _)| b.backup_id == record.id)
        .ok_or_else(|| {
            Error::Refused(format!(
                "backup #{} has no recorded place in the log",
                record.id
            ))
        })?;
    let dir = folder.join(format!("{PREFIX}{}_{}", record.id, std::process::id()));
    let port = free_port()?;
    let started = Instant::now();
    let result = (|| {
        let prepared = prepare_base(
            runner,
            &config.path,
            &server.name,
            base,
            &RecoveryTarget::Latest,
            &dir,
            Some(port),
        )?;
        // Only this machine reaches it; nothing else of the original's network settings.
        start_in(
            &prepared,
            config.service.backup_timeout,
            &["listen_addresses=127.0.0.1"],
        )?;
        let rto = started.elapsed();
        let (databases, tables, rows) = count(target, port)?;
        Ok(Drilled {
            rto,
            databases,
            tables,
            rows,
        })
    })();
    stop_and_remove(&dir);
    result
}

/// Counts every table of every database of the server on `port` as `target`'s user.
fn count(target: &dbkeep_config::config::ServerTarget, port: u16) -> Result<(usize, usize, u64)> {
    let password = target.resolve_password().map_err(Error::Engine)?;
    let connect = |database: &str| {
        let mut c = postgres::Config::new();
        c.host("127.0.0.1")
            .port(port)
            .user(target.url.username())
            .dbname(database)
            .connect_timeout(Duration::from_secs(10));
        if target.url.username().is_empty() {
            c.user("postgres");
        }
        if let Some(p) = &password {
            c.password(p.expose());
        }
        c.connect(postgres::NoTls).map_err(|e| {
            Error::Engine(format!(
                "the recovered server (port {port}), database {database}: {e}"
            ))
        })
    };
    let fail = |e: postgres::Error| Error::Engine(format!("the recovered server: {e}"));
    let mut admin = connect("postgres")?;
    if admin
        .query_one("SELECT pg_is_in_recovery()", &[])
        .map_err(fail)?
        .get::<_, bool>(0)
    {
        return Err(Error::Engine(
            "the recovered server is still in recovery".into(),
        ));
    }
    let names: Vec<String> = admin
        .query(
            "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1",
            &[],
        )
        .map_err(fail)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (mut tables, mut rows) = (0usize, 0u64);
    for name in &names {
        let mut db = connect(name)?;
        let counted = db
            .query(
                "SELECT (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'",
                &[],
            )
            .map_err(|e| Error::Engine(format!("counting the rows of database {name} on the recovered server: {e}")))?;
        tables += counted.len();
        rows += counted
            .iter()
            .map(|r| r.get::<_, i64>(0).max(0) as u64)
            .sum::<u64>();
    }
    Ok((names.len(), tables, rows))
}

/// Stops a server running on `dir` (if one is) and removes the folder.
fn stop_and_remove(dir: &Path) {
    if dir.join("postmaster.pid").exists() {
        let _ = Command::new(server_program(dir, "pg_ctl"))
            .arg("-D")
            .arg(dir)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove a drill's data directory");
    }
}

/// Removes the folders of drills whose process is gone (killed mid-drill).
fn remove_orphans(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.rsplit('_').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            tracing::info!(dir = %name, "removing the data directory a killed drill left");
            stop_and_remove(&entry.path());
        }
    }
}
