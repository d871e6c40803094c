//! `dbkeep schedule`: every schedule, its next fire and what became of its last one.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use chrono_tz::Tz;
use dbkeep::catalog::{FireRecord, Status};
use dbkeep::scheduler::next_fire;

use super::{open_runner, render};

/// Show each database's schedules, their next fire times and the last outcome.
#[derive(Debug, clap::Args)]
pub struct Args {}

fn last(fire: Option<&FireRecord>, backup: Option<Status>, tz: Tz) -> String {
    let Some(f) = fire else {
        return "never fired".to_string();
    };
    // What became of the backup, not only that one ran: a failed one says failed.
    let (result, _) = dbkeep::verdict::fire_result(f, backup);
    let mut what = result.to_string();
    if let Some(id) = f.backup_id {
        what.push_str(&format!(" (backup #{id})"));
    }
    if let Some(detail) = &f.detail {
        what.push_str(&format!(": {}", render::one_line(detail)));
    }
    format!("{what}, planned {}", render::time(&f.planned_at, tz))
}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let config = runner.config();
    let tz = config.service.timezone;
    let now = Utc::now();
    println!("time zone: {tz}");
    for db in &config.databases {
        println!("{}", db.name);
        // Its backup schedules, then its restore drill (recorded as `verify EXPR`).
        let drill = config.service.verify_schedule.as_ref().map(|s| {
            (
                format!("{}{}", dbkeep::scheduler::DRILL_PREFIX, s.expr),
                &s.cron,
            )
        });
        let all = db
            .schedules
            .iter()
            .map(|s| (s.expr.clone(), &s.cron))
            .chain(drill);
        for (expr, cron) in all {
            let next = next_fire(cron, tz, now)
                .map_or_else(|| "never".to_string(), |t| render::time(&t, tz));
            let fire = dbkeep::verdict::fires(runner.catalog(), &db.name, &expr, 1)?.pop();
            println!(
                "  {expr:<20} next {next}; last: {}",
                last(
                    fire.as_ref().map(|(f, _)| f),
                    fire.as_ref().and_then(|(_, b)| *b),
                    tz
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
