//! `dbkeep schedule`: every schedule, its next fire and what became of its last one.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use dbkeep::catalog::{FireRecord, Outcome};
use dbkeep::scheduler::next_fire;

use super::{open_runner, render};

/// Show each database's schedules, their next fire times and the last outcome.
#[derive(Debug, clap::Args)]
pub struct Args {}

fn at(t: &DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn last(fire: Option<&FireRecord>, tz: Tz) -> String {
    let Some(f) = fire else {
        return "never fired".to_string();
    };
    let what = match (f.outcome, f.backup_id, &f.detail) {
        (Outcome::Ran, Some(id), _) => format!("ran backup #{id}"),
        (outcome, _, Some(detail)) => format!("{outcome}: {}", render::one_line(detail)),
        (outcome, _, None) => outcome.to_string(),
    };
    format!("{what} (planned {})", at(&f.planned_at, tz))
}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let config = runner.config();
    let tz = config.service.timezone;
    let now = Utc::now();
    println!("time zone: {tz}");
    for db in &config.databases {
        println!("{}", db.name);
        for s in &db.schedules {
            let next =
                next_fire(&s.cron, tz, now).map_or_else(|| "never".to_string(), |t| at(&t, tz));
            let fires = runner.catalog().fires(&db.name, Some(&s.expr), 1)?;
            println!(
                "  {:<20} next {next}; last: {}",
                s.expr,
                last(fires.first(), tz)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
