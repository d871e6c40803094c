//! `dbkeep list`: the catalog, newest first, as a table or as JSON.

use std::path::Path;
use std::process::ExitCode;

use dbkeep::catalog::{ListFilter, Status};

use super::{UsageError, open_runner, render};

/// Show recorded backups, newest first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this database
    #[arg(long, short = 'd', value_name = "NAME")]
    database: Option<String>,

    /// Only backups with this status
    #[arg(long, value_parser = ["success", "failed", "in_progress"])]
    status: Option<String>,

    /// At most this many rows (1 or more; without it, every row)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    limit: Option<u32>,

    /// Only the backup with this id
    #[arg(long, value_name = "ID", conflicts_with_all = ["database", "status", "limit"])]
    id: Option<i64>,

    /// Print a JSON array (fields: id, database, kind, status, trigger, file_name, path,
    /// size_bytes, sha256, compression, started_at, finished_at, duration_ms, error, pruned_at)
    #[arg(long)]
    json: bool,
}

/// What to say when no row matched: which filter matched nothing, and what exists.
fn nothing_matched(
    config: &dbkeep::Config,
    database: Option<&str>,
    status: Option<Status>,
) -> String {
    let names: Vec<&str> = config.databases.iter().map(|d| d.name.as_str()).collect();
    match (database, status) {
        (Some(d), _) if config.database(d).is_err() => format!(
            "no backups of `{}`: it is not a configured database ({})",
            render::one_line(d),
            if names.is_empty() {
                "none is configured yet".to_string()
            } else {
                format!("configured: {}", names.join(", "))
            }
        ),
        (Some(d), Some(s)) => format!("no {s} backups of {d} recorded"),
        (Some(d), None) => format!("no backups of {d} recorded yet; run `dbkeep backup -d {d}`"),
        (None, Some(s)) => format!("no {s} backups recorded"),
        (None, None) => "no backups recorded yet; run `dbkeep backup`".to_string(),
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let status = args
        .status
        .map(|s| s.parse::<Status>().map_err(UsageError))
        .transpose()?;
    let records = match args.id {
        Some(id) => runner.catalog().get(id)?.into_iter().collect(),
        None => runner.catalog().list(&ListFilter {
            database: args.database.clone(),
            status,
            before: None,
            limit: args.limit,
        })?,
    };
    super::warn_left_out(&runner);
    if args.json {
        render::line(serde_json::to_string_pretty(&records)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        render::line(match args.id {
            Some(id) => format!("no backup #{id} in the catalog; `dbkeep list` shows the ids"),
            None => nothing_matched(&runner.config(), args.database.as_deref(), status),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 9]> = records
        .iter()
        .map(|r| {
            let status = match (r.pruned_at, r.is_stored()) {
                (Some(_), false) => "pruned".to_string(),
                _ => r.status.to_string(),
            };
            // Where a copy is still stored: the local folder and each off-site destination.
            let mut places: Vec<&str> = Vec::new();
            if r.status == dbkeep::catalog::Status::Success && r.pruned_at.is_none() {
                places.push("local");
            }
            places.extend(r.offsite_holders());
            let place = if places.is_empty() {
                "-".to_string()
            } else {
                places.join(",")
            };
            let mut detail = match (&r.error, &r.file_name) {
                (Some(e), _) => format!("error: {}", render::one_line(e)),
                (None, Some(f)) => f.clone(),
                (None, None) => "-".to_string(),
            };
            if r.pinned {
                detail.push_str(&match &r.pin_note {
                    Some(note) => format!("  [pinned: {}]", render::one_line(note)),
                    None => "  [pinned]".to_string(),
                });
            }
            [
                r.id.to_string(),
                render::one_line(&r.database),
                status,
                r.trigger.to_string(),
                render::time(&r.started_at, runner.config().service.timezone),
                render::size(r.size_bytes),
                render::duration(r.duration_ms),
                render::one_line(&place),
                render::one_line(&detail),
            ]
        })
        .collect();
    render::table(
        &[
            "ID", "DATABASE", "STATUS", "TRIGGER", "STARTED", "SIZE", "DURATION", "WHERE", "FILE",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}
