//! `dbkeep status`: each database's verdict (protected, stale, failing, …) and why, as the
//! overview shows it, then the space its backups use where and the local disk's forecast;
//! `--json` for programs (the Django admin reads it): the same array as ever, each database
//! with its `space` by destination (the disk's forecast is in the text and in `/metrics`).

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use super::{open_runner, render};

/// Show whether each database is protected, and why.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON array (fields: name, kind, server, status, reason, last_good, running,
    /// prune_held, space)
    #[arg(long)]
    json: bool,
}

/// One database's verdict.
#[derive(Debug, Serialize)]
struct DatabaseStatus<'a> {
    name: &'a str,
    kind: dbkeep::catalog::Kind,
    /// The `[[servers]]` entry that found it, if one did.
    server: Option<&'a str>,
    /// `failing`, `unprotected`, `stale`, `not_offsite`, `protected` or `gone`.
    status: &'static str,
    reason: String,
    /// When its newest successful backup finished (RFC 3339), if it has one.
    last_good: Option<String>,
    running: bool,
    /// Why retention holds back a prune of it (`dbkeep prune --confirm` lets it go).
    prune_held: Vec<String>,
    /// What its backups use at each destination (`local` first).
    space: Vec<SpaceJson>,
    /// For a server's base backups (kind `postgres_base`): its point-in-time recovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pitr: Option<PitrJson>,
}

/// A server's point-in-time recovery, in `status --json`.
#[derive(Debug, Serialize)]
struct PitrJson {
    /// The earliest and latest moments it can be recovered to (RFC 3339).
    recoverable_from: Option<String>,
    recoverable_to: Option<String>,
    /// The age of its newest archived WAL, in seconds.
    rpo_seconds: Option<u64>,
    /// Archive files not yet at every off-site destination.
    queued: usize,
    /// Why `wal_archive_stalled` or `wal_archive_failing` holds now, if one does.
    stalled: Option<String>,
    failing: Option<String>,
    /// Why the server could not be asked how its archiver stands.
    unreachable: Option<String>,
}

/// One database's backups at one destination, in `status --json`.
#[derive(Debug, Serialize)]
struct SpaceJson {
    /// `local` (this instance's backup folder), or an `[[offsite]]` destination's name.
    destination: String,
    backups: u64,
    bytes: u64,
    /// The bytes held now minus the bytes held 30 days ago.
    growth_30d_bytes: i64,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let judged = dbkeep::verdict::all(
        &runner,
        &dbkeep::verdict::FactsCache::default(),
        chrono::Utc::now(),
    )?;
    let mut held: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for d in runner.retention_plan(None, &dbkeep::runner::PruneOptions::default())? {
        if let Some(why) = d.held {
            let list = held.entry(d.record.database).or_default();
            if !list.contains(&why) {
                list.push(why);
            }
        }
    }
    let space = runner.space(chrono::Utc::now())?;
    let servers = dbkeep::discovery::server_states(&runner)?;
    let archives = dbkeep::pitr::states(&runner, chrono::Utc::now(), true)?;
    super::warn_left_out(&runner);
    let config = runner.config();
    let pitr = |name: &str| {
        let state = archives.iter().find(|a| a.server == name)?;
        Some(PitrJson {
            recoverable_from: state
                .recoverable
                .map(|(from, _)| dbkeep::catalog::format_time(&from)),
            recoverable_to: state
                .recoverable
                .map(|(_, to)| dbkeep::catalog::format_time(&to)),
            rpo_seconds: state.rpo.map(|d| d.as_secs()),
            queued: state.queued,
            stalled: state.stalled(),
            failing: state.failing(),
            unreachable: state.archiver.clone().and_then(Result::err),
        })
    };
    let out: Vec<DatabaseStatus<'_>> = config
        .databases
        .iter()
        .zip(judged.iter())
        .map(|(db, j)| DatabaseStatus {
            name: &db.name,
            kind: db.target.kind(),
            server: db.server(),
            status: j.verdict.state.as_str(),
            reason: j.verdict.reason.clone(),
            last_good: j
                .verdict
                .last_good
                .map(|t| dbkeep::catalog::format_time(&t)),
            running: j.facts.running(),
            prune_held: held.remove(&db.name).unwrap_or_default(),
            space: space
                .database(&db.name)
                .into_iter()
                .flat_map(|d| &d.destinations)
                .map(|u| SpaceJson {
                    destination: u.destination.clone(),
                    backups: u.backups,
                    bytes: u.bytes,
                    growth_30d_bytes: u.growth_30d_bytes,
                })
                .collect(),
            pitr: (db.target.kind() == dbkeep::catalog::Kind::PostgresBase)
                .then(|| pitr(&db.name))
                .flatten(),
        })
        .collect();
    if args.json {
        render::line(serde_json::to_string_pretty(&out)?)?;
    } else if out.is_empty() {
        render::line(
            "no databases are configured; add a [[databases]] entry to the configuration",
        )?;
    } else {
        let rows: Vec<[String; 3]> = out
            .iter()
            .map(|d| {
                [
                    d.name.to_string(),
                    d.status.to_string(),
                    render::one_line(&d.reason),
                ]
            })
            .collect();
        render::table(&["DATABASE", "STATUS", "WHY"], &rows)?;
        for d in &out {
            for why in &d.prune_held {
                render::line(format!("prune of {}: {}", d.name, render::one_line(why)))?;
            }
        }
        print_servers(&servers)?;
        print_pitr(&out)?;
        print_space(&space)?;
    }
    // Like a health check: non-zero when any database is not protected.
    // A database gone from its server is not backed up any more, by design: not a failure.
    let all_good = out.iter().all(|d| matches!(d.status, "protected" | "gone"))
        && servers.iter().all(|s| !s.failing())
        && out
            .iter()
            .filter_map(|d| d.pitr.as_ref())
            .all(|p| p.stalled.is_none() && p.failing.is_none() && p.unreachable.is_none());
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILED)
    })
}

/// The SERVERS section: each `[[servers]]` entry, whether it answered, and its databases.
fn print_servers(servers: &[dbkeep::discovery::ServerState]) -> std::io::Result<()> {
    if servers.is_empty() {
        return Ok(());
    }
    let rows: Vec<[String; 3]> = servers
        .iter()
        .map(|s| {
            let state = if s.failing() { "failing" } else { "ok" };
            let mut why = format!(
                "{} known, {} gone, {} unreadable",
                s.known, s.gone, s.unreadable
            );
            match (&s.error, &s.checked_at) {
                (Some(e), _) => {
                    why = format!(
                        "did not answer: {}; {why} (kept as recorded)",
                        render::one_line(e)
                    )
                }
                (None, None) => why
                    .push_str("; not asked yet (dbkeep serve or dbkeep discover --apply asks it)"),
                (None, Some(at)) => why.push_str(&format!("; asked {at}")),
            }
            [s.server.clone(), state.to_string(), why]
        })
        .collect();
    render::line("")?;
    render::table(&["SERVER", "STATUS", "WHY"], &rows)
}

/// The POINT-IN-TIME RECOVERY section: each server archiving WAL, the span it can be
/// recovered to, its RPO, and what is wrong.
fn print_pitr(out: &[DatabaseStatus<'_>]) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = out
        .iter()
        .filter_map(|d| d.pitr.as_ref().map(|p| (d.name, p)))
        .map(|(name, p)| {
            let span = match (&p.recoverable_from, &p.recoverable_to) {
                (Some(from), Some(to)) => format!("{from} to {to}"),
                _ => "nothing yet (a base backup and archived WAL are needed)".into(),
            };
            let rpo = p
                .rpo_seconds
                .map_or_else(|| "-".to_string(), |s| format!("{s} s"));
            let why = p
                .failing
                .as_deref()
                .or(p.stalled.as_deref())
                .or(p.unreachable.as_deref())
                .map(render::one_line)
                .unwrap_or_else(|| match p.queued {
                    0 => "archiving".to_string(),
                    n => format!("archiving; {n} file(s) queued for off-site"),
                });
            [name.to_string(), span, rpo, why]
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    render::line("")?;
    render::table(&["POINT-IN-TIME", "RECOVERABLE", "RPO", "WHY"], &rows)
}

/// The SPACE section: each database's backups at each destination, then the local disk.
fn print_space(space: &dbkeep::space::Space) -> std::io::Result<()> {
    let rows: Vec<[String; 5]> = space
        .databases
        .iter()
        .flat_map(|d| {
            d.destinations.iter().map(|u| {
                [
                    d.database.clone(),
                    u.destination.clone(),
                    format!(
                        "{} backup{}",
                        u.backups,
                        if u.backups == 1 { "" } else { "s" }
                    ),
                    render::size(Some(u.bytes)),
                    format!(
                        "{} in 30 days",
                        dbkeep::space::signed_size(u.growth_30d_bytes)
                    ),
                ]
            })
        })
        .collect();
    render::line("")?;
    render::table(&["SPACE", "", "", "", ""], &rows)?;
    render::line(format!("local disk: {}", space.disk.summary()))
}
