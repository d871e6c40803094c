//! `dbkeep schedule`: every schedule, its next fire and what became of its last one.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use chrono_tz::Tz;
use dbkeep::catalog::{FireRecord, Status};
use dbkeep::config::cron::next_fire;

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
    render::line(format!("time zone: {tz}"))?;
    // Each database's backup schedules, then its restore drill (recorded as `verify EXPR`).
    let drill = config.service.verify_schedule.as_ref().map(|s| {
        (
            format!("{}{}", dbkeep::scheduler::DRILL_PREFIX, s.expr),
            &s.cron,
        )
    });
    // A discovered database fires later than its cron time by its share of its server's
    // `spread`; one gone or unreadable does not fire at all.
    type Each<'a> = (
        &'a str,
        chrono::Duration,
        Option<&'a str>,
        Vec<(String, &'a croner::Cron)>,
    );
    let each: Vec<Each<'_>> = config
        .databases
        .iter()
        .map(|db| {
            let all = db.schedules.iter().map(|s| (s.expr.clone(), &s.cron));
            let off = (!db.is_scheduled())
                .then(|| db.discovered.as_ref().map_or("", |d| d.state.as_str()));
            (
                db.name.as_str(),
                dbkeep::scheduler::offset_of(&config, db),
                off,
                all.chain(drill.clone()).collect(),
            )
        })
        .collect();
    // Every schedule's last fire in one read.
    let pairs: Vec<(String, String)> = each
        .iter()
        .flat_map(|(db, _, _, all)| all.iter().map(|(expr, _)| (db.to_string(), expr.clone())))
        .collect();
    let mut fires = runner.catalog().last_fires(&pairs)?.into_iter();
    for (db, offset, off, all) in &each {
        match (off, offset.is_zero()) {
            (Some(state), _) => render::line(format!("{db} ({state}: not scheduled)"))?,
            (None, true) => render::line(db)?,
            (None, false) => render::line(format!(
                "{db} (spread: {}h{:02}m{:02}.{:03}s after each cron time)",
                offset.num_hours(),
                offset.num_minutes() % 60,
                offset.num_seconds() % 60,
                offset.num_milliseconds() % 1000
            ))?,
        }
        for ((expr, cron), fire) in all.iter().zip(fires.by_ref()) {
            let next = match off {
                Some(_) => "never".to_string(),
                // A spread fire is placed to the millisecond: shown so.
                None => next_fire(cron, tz, now - *offset)
                    .map(|t| t + *offset)
                    .map_or_else(
                        || "never".to_string(),
                        |t| match offset.is_zero() {
                            true => render::time(&t, tz),
                            false => render::time_ms(&t, tz),
                        },
                    ),
            };
            let (fire, backup) = fire.map_or((None, None), |(f, b)| (Some(f), b));
            render::line(format!(
                "  {expr:<20} next {next}; last: {}",
                last(fire.as_ref(), backup, tz)
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
