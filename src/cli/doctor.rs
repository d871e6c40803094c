//! `dbkeep doctor`: the whole setup checked end to end, each check with ok, warn or fail and
//! what to do; exit 1 when any fails.

use std::path::Path;
use std::process::ExitCode;

use dbkeep::health::{Finding, Level};

use super::{EXIT_FAILED, render};

/// Check the whole setup: configuration, each database and its tools, the backup folder, the
/// catalog, off-site destinations, notifications, age keys, clock and time zone
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the checks as JSON (a list of objects: check, level, detail, fix)
    #[arg(long)]
    json: bool,

    /// Send a test notification to each channel that takes one, instead of only connecting
    /// to its server
    #[arg(long)]
    send: bool,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let found = match dbkeep::Config::load(config_path) {
        Err(e) => vec![Finding::bad(
            Level::Fail,
            "configuration",
            format!("{e:#}"),
            "correct the file (dbkeep check says the same)",
        )],
        Ok(config) => {
            let runner = dbkeep::Runner::open(config.clone()).map_err(|e| e.to_string());
            let opts = dbkeep::doctor::Options { send: args.send };
            // The configuration in force: the file's databases and those its servers found.
            let in_force = runner
                .as_ref()
                .map_or_else(|_| config.clone(), |r| (*r.config()).clone());
            let found =
                dbkeep::doctor::check(&in_force, runner.as_ref().map_err(Clone::clone), opts);
            if let Ok(runner) = &runner {
                runner.notifier().wait(std::time::Duration::from_secs(10));
            }
            found
        }
    };
    if args.json {
        render::line(serde_json::to_string_pretty(&found)?)?;
    } else {
        print(&found)?;
    }
    Ok(match dbkeep::doctor::worst(&found) {
        Level::Fail => ExitCode::from(EXIT_FAILED),
        _ => ExitCode::SUCCESS,
    })
}

/// One line per check, its fix beneath, then the count of each level.
fn print(found: &[Finding]) -> std::io::Result<()> {
    let width = found
        .iter()
        .map(|f| f.check.chars().count())
        .max()
        .unwrap_or(0);
    for f in found {
        render::line(format!(
            "{:<4}  {:<width$}  {}",
            f.level.as_str(),
            f.check,
            render::one_line(&f.detail)
        ))?;
        if let Some(fix) = &f.fix {
            render::line(format!(
                "{:<4}  {:<width$}  fix: {}",
                "",
                "",
                render::one_line(fix)
            ))?;
        }
    }
    let count = |level: Level| found.iter().filter(|f| f.level == level).count();
    render::line(format!(
        "{} ok, {} warn, {} fail",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    ))
}
