//! `dbkeep prune`: apply each destination's retention policy now, or show, for every backup
//! everywhere, whether it stays or goes and which rule decides.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::{EXIT_FAILED, UsageError, open_runner, render};
use dbkeep::runner::{Decision, PruneOptions};

/// Delete backups that the retention policies let go, or explain what they would do.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this database [default: all]
    #[arg(long, short = 'd', value_name = "NAME")]
    database: Option<String>,

    /// Keep this many days instead of the configured retention_days, at every destination
    #[arg(long, value_name = "N", value_parser = super::retention_days)]
    retention_days: Option<u32>,

    /// Say, for every backup at every destination, whether it stays or goes and why, without
    /// deleting anything
    #[arg(long)]
    dry_run: bool,

    /// With --dry-run: decide as the policies would at this time ("YYYY-MM-DD HH:MM", in the
    /// configured timezone)
    #[arg(long, value_name = "TIME", requires = "dry_run")]
    at: Option<String>,

    /// Let a prune go that the guard rail holds (a new policy deleting many backups at once)
    #[arg(long, conflicts_with = "dry_run")]
    confirm: bool,

    /// Print JSON: an array with one object per backup and destination
    #[arg(long)]
    json: bool,
}

impl Args {
    /// What the audit log names this prune; `None` for a dry run (nothing changes).
    pub(super) fn audited(&self) -> Option<(String, Option<String>)> {
        (!self.dry_run).then(|| {
            let what = self.database.clone().unwrap_or_else(|| "all".into());
            let detail = self.retention_days.map(|d| format!("retention_days {d}"));
            (what, detail)
        })
    }
}

/// `YYYY-MM-DD HH:MM` (or with `:SS`) read in `tz`; an ambiguous time (the repeated hour of a
/// DST change) is its earlier instant, a skipped one is refused.
fn parse_at(text: &str, tz: Tz) -> Result<DateTime<Utc>, UsageError> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| {
            UsageError(format!("--at `{text}` is not a time: write it as \"YYYY-MM-DD HH:MM\", e.g. \"2027-01-31 00:00\""))
        })?;
    naive
        .and_local_timezone(tz)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            UsageError(format!(
                "--at `{text}` does not exist in {tz} (a clock change skips it)"
            ))
        })
}

/// One decision as `--json` prints it.
fn decision_json(d: &Decision) -> serde_json::Value {
    serde_json::json!({
        "id": d.record.id,
        "database": d.record.database,
        "destination": d.destination.name(),
        "file_name": d.record.file_name,
        "started_at": dbkeep::catalog::format_time(&d.record.started_at),
        "pinned": d.record.pinned,
        "action": d.action.as_str(),
        "reasons": d.reasons,
        "held": d.held,
        "policy": d.policy.to_string(),
    })
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let tz = runner.config().service.timezone;
    let opts = PruneOptions {
        retention_days: args.retention_days,
        at: args.at.as_deref().map(|t| parse_at(t, tz)).transpose()?,
        dry_run: args.dry_run,
        confirm: args.confirm,
    };
    if args.dry_run {
        let plan = runner.retention_plan(args.database.as_deref(), &opts)?;
        super::warn_left_out(&runner);
        if args.json {
            let rows: Vec<_> = plan.iter().map(decision_json).collect();
            render::line(serde_json::to_string_pretty(&rows)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        explain(&plan, tz)?;
        left_alone(&runner, args.database.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    let pruned = runner.prune(args.database.as_deref(), &opts)?;
    super::warn_left_out(&runner);
    if args.json {
        let rows: Vec<_> = pruned
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.record.id,
                    "database": p.record.database,
                    "destination": p.destination,
                    "file_name": p.record.file_name,
                    "started_at": dbkeep::catalog::format_time(&p.record.started_at),
                    "action": "delete",
                    "reasons": [p.reason],
                    "held": p.held,
                    "error": p.error,
                })
            })
            .collect();
        render::line(serde_json::to_string_pretty(&rows)?)?;
    } else {
        let done: Vec<_> = pruned
            .iter()
            .filter(|p| p.error.is_none() && p.held.is_none())
            .collect();
        if done.is_empty() && pruned.iter().all(|p| p.error.is_none()) {
            render::line("nothing pruned")?;
        }
        for p in pruned.iter().filter(|p| p.held.is_none()) {
            render::line(render::pruned(p, false, tz))?;
        }
        held_lines(pruned.iter().filter_map(|p| p.held.as_deref()))?;
        if !done.is_empty() {
            let bytes: u64 = done.iter().filter_map(|p| p.record.size_bytes).sum();
            render::line(format!(
                "pruned {} file(s), {}",
                done.len(),
                render::size(Some(bytes))
            ))?;
        }
        left_alone(&runner, args.database.as_deref())?;
    }
    let failed = pruned.iter().any(|p| p.error.is_some());
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every decision of a dry run, one line each, then the held prunes and the total.
fn explain(plan: &[Decision], tz: Tz) -> std::io::Result<()> {
    if plan.is_empty() {
        render::line("nothing to prune: no stored backups")?;
    }
    let mut group = None;
    for d in plan {
        let r = &d.record;
        if group != Some((&r.database, &d.destination)) {
            group = Some((&r.database, &d.destination));
            render::line(format!("{} at {}: {}", r.database, d.destination, d.policy))?;
        }
        let verb = match (d.action, &d.held) {
            (dbkeep::retention::Action::Keep, _) => "keep  ",
            (_, Some(_)) => "held  ",
            _ => "delete",
        };
        render::line(format!(
            "{verb}  {}  {}  {}  {}  ({})",
            r.database,
            d.destination,
            render::one_line(r.file_name.as_deref().unwrap_or("-")),
            render::time(&r.started_at, tz),
            d.reasons.join(", ")
        ))?;
    }
    held_lines(plan.iter().filter_map(|d| d.held.as_deref()))?;
    let going: Vec<&Decision> = plan
        .iter()
        .filter(|d| d.action == dbkeep::retention::Action::Delete && d.held.is_none())
        .collect();
    let bytes: u64 = going.iter().filter_map(|d| d.record.size_bytes).sum();
    let held = plan.iter().filter(|d| d.held.is_some()).count();
    render::line(format!(
        "would prune {} file(s), {}{}",
        going.len(),
        render::size(Some(bytes)),
        if held > 0 {
            format!("; {held} more held back")
        } else {
            String::new()
        }
    ))
}

/// Each distinct reason a prune is held, once.
fn held_lines<'a>(reasons: impl Iterator<Item = &'a str>) -> std::io::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for why in reasons {
        if seen.insert(why) {
            render::line(render::one_line(why))?;
        }
    }
    Ok(())
}

/// The stored backups that pruning leaves alone, and why.
fn left_alone(runner: &dbkeep::Runner, database: Option<&str>) -> anyhow::Result<()> {
    for left in runner.left_alone()? {
        if database.is_some_and(|d| d != left.database) {
            continue;
        }
        let why = if left.configured {
            format!(
                "recorded in another folder than {} (another configuration sharing the catalog, or a moved backup_dir)",
                runner.config().database_dir(&left.database).display()
            )
        } else {
            "not a database of this configuration (another configuration sharing the catalog, or a removed entry)".to_string()
        };
        render::line(format!(
            "left alone  {}  {} backup(s): {why}",
            render::one_line(&left.database),
            left.backups
        ))?;
    }
    Ok(())
}
