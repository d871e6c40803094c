//! `dbkeep restore --server NAME --at TIME --to-dir PATH [--start]`: a PostgreSQL server
//! recovered to a point in time from its base backups and WAL archive, into a new data
//! directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use dbkeep::pitr::{self, RecoveryTarget};

use super::UsageError;

/// The options of a restore to a point in time.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Restore this server (a [[servers]] entry with wal_archive = true) to a point in time,
    /// from its base backups and archived WAL, into a new data directory (--to-dir)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["id", "latest", "to"], requires = "to_dir")]
    pub server: Option<String>,

    /// The moment to recover to: "YYYY-MM-DD HH:MM:SS" in the configured timezone, an RFC 3339
    /// time with its offset, or `latest` (the end of the archive)
    #[arg(long, value_name = "TIME", requires = "server", conflicts_with_all = ["lsn", "xid"])]
    at: Option<String>,

    /// Recover to this WAL position (as PostgreSQL writes it, e.g. 0/16B3748)
    #[arg(long, value_name = "LSN", requires = "server", conflicts_with = "xid")]
    lsn: Option<String>,

    /// Recover up to and including this transaction id
    #[arg(long, value_name = "XID", requires = "server")]
    xid: Option<u64>,

    /// The new data directory (absent or empty)
    #[arg(long, value_name = "PATH", requires = "server")]
    to_dir: Option<PathBuf>,

    /// Start PostgreSQL on it and wait until recovery reached the target (run as the
    /// PostgreSQL user, never root)
    #[arg(long, requires = "server")]
    start: bool,

    /// The port the restored server listens on [default with --start: a free one]
    #[arg(long, value_name = "PORT", requires = "server")]
    port: Option<u16>,

    /// With --start: how long recovery may take
    #[arg(long, value_name = "DURATION", requires = "start", default_value = "1h", value_parser = humantime::parse_duration)]
    wait: Duration,
}

impl ServerArgs {
    pub(super) fn audited(&self, server: &str) -> (String, Option<String>) {
        (
            format!("server:{server}"),
            self.to_dir.as_ref().map(|d| format!("to {}", d.display())),
        )
    }

    fn target(&self, zone: chrono_tz::Tz) -> anyhow::Result<RecoveryTarget> {
        if let Some(xid) = self.xid {
            return Ok(RecoveryTarget::Xid(xid));
        }
        if let Some(lsn) = &self.lsn {
            return Ok(RecoveryTarget::Lsn(
                lsn.parse().map_err(|e| UsageError(format!("--lsn: {e}")))?,
            ));
        }
        let Some(at) = &self.at else {
            return Err(UsageError(
                "say where recovery stops: --at \"YYYY-MM-DD HH:MM:SS\" (or --at latest), --lsn or --xid".into(),
            )
            .into());
        };
        if at == "latest" {
            return Ok(RecoveryTarget::Latest);
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) {
            return Ok(RecoveryTarget::Time(t.with_timezone(&Utc)));
        }
        let naive = NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.f"))
            .map_err(|_| {
                UsageError(format!(
                    "--at \"{at}\" is not a time: write \"YYYY-MM-DD HH:MM:SS\" (in {zone}), an RFC 3339 time, or latest"
                ))
            })?;
        let local = zone.from_local_datetime(&naive).single().ok_or_else(|| {
            UsageError(format!(
                "--at \"{at}\" is ambiguous or does not exist in {zone} (a clock change): give it with its offset, e.g. \"{}+01:00\"",
                naive.format("%Y-%m-%dT%H:%M:%S")
            ))
        })?;
        Ok(RecoveryTarget::Time(local.with_timezone(&Utc)))
    }
}

pub fn run(
    config_path: &Path,
    runner: &dbkeep::Runner,
    server: &str,
    args: &ServerArgs,
) -> anyhow::Result<ExitCode> {
    let config = runner.config();
    let zone = config.service.timezone;
    let target = args.target(zone)?;
    let Some(dir) = &args.to_dir else {
        return Err(UsageError("--to-dir PATH: the new data directory".into()).into());
    };
    let dir = std::path::absolute(dir)?;
    let port = match (args.port, args.start) {
        (Some(p), _) => Some(p),
        (None, true) => Some(pitr::free_port()?),
        (None, false) => None,
    };
    let shown = |t: chrono::DateTime<Utc>| {
        t.with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    let prepared = pitr::prepare(runner, config_path, server, &target, &dir, port)?;
    println!(
        "server {server}: base backup #{} (ended {}, WAL from {}) unpacked into {} in {:.1} s",
        prepared.base.backup_id,
        shown(prepared.base.stopped_at),
        prepared.base.start_lsn,
        dir.display(),
        prepared.unpacked_in.as_secs_f64()
    );
    println!("recovery settings added to postgresql.auto.conf, and recovery.signal:");
    for line in &prepared.settings {
        println!("  {line}");
    }
    if !args.start {
        println!(
            "start it (as the PostgreSQL user): pg_ctl -D {} start; it replays the archive to {} and then accepts writes",
            dir.display(),
            describe(&target, &shown)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let started = pitr::start(&prepared, args.wait)?;
    println!(
        "recovered to {} in {:.1} s: PostgreSQL runs on port {} with data directory {}; stop it with pg_ctl -D {} stop",
        describe(&target, &shown),
        started.took.as_secs_f64(),
        port.unwrap_or_default(),
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn describe(target: &RecoveryTarget, shown: &dyn Fn(chrono::DateTime<Utc>) -> String) -> String {
    match target {
        RecoveryTarget::Time(t) => shown(*t),
        other => other.to_string(),
    }
}
