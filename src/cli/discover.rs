//! `dbkeep discover`: what each `[[servers]]` entry holds now, compared with the catalog's
//! record; `--apply` records it (as `dbkeep serve` does every `discover_every`).

use std::path::Path;
use std::process::ExitCode;

use super::{open_runner, render};

/// Ask each server for its databases and show them as new, known, gone, excluded, unreadable
/// or unreachable (with why); nothing changes without `--apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object: `servers`, each with `server`, `url`, `error`, `warning` and
    /// `databases` (`database`, `name`, `state`, `why`)
    #[arg(long)]
    json: bool,
    /// Record what was found: new databases are backed up from now on (at their next fire,
    /// or at once under `dbkeep serve`), gone ones stop being scheduled, and the
    /// notifiers hear of both
    #[arg(long)]
    apply: bool,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    if runner.base_config().servers.is_empty() {
        return Err(super::UsageError(format!(
            "{} has no [[servers]] entry: add one (name, url such as \"postgres://user@host:5432/\") to discover its databases",
            runner.base_config().path.display()
        ))
        .into());
    }
    let report = runner.discover()?;
    let changes = if args.apply {
        let changes = runner.apply_discovery(&report)?;
        // The notifications go out before the process ends.
        runner.notifier().wait(std::time::Duration::from_secs(10));
        Some(changes)
    } else {
        None
    };
    if args.json {
        render::line(serde_json::to_string_pretty(&report)?)?;
    } else {
        for server in &report.servers {
            render::line(format!("{} ({})", server.server, server.url))?;
            if let Some(error) = &server.error {
                render::line(format!(
                    "  error: {}; its databases stay as recorded",
                    render::one_line(error)
                ))?;
            }
            if let Some(warning) = &server.warning {
                render::line(format!("  warning: {}", render::one_line(warning)))?;
            }
            for line in &server.databases {
                let name = line
                    .name
                    .as_deref()
                    .map(|n| format!(" as {n}"))
                    .unwrap_or_default();
                let why = line
                    .why
                    .as_deref()
                    .map(|w| format!(" ({})", render::one_line(w)))
                    .unwrap_or_default();
                render::line(format!(
                    "  {:<10} {}{name}{why}",
                    line.state.as_str(),
                    render::one_line(&line.database)
                ))?;
            }
        }
        match &changes {
            Some(c) if c.is_empty() => render::line("applied: nothing changed")?,
            Some(c) => render::line(format!("applied: {} change(s)", c.len()))?,
            None => render::line("(nothing recorded; run with --apply to record it)")?,
        }
    }
    // A server that did not answer fails the command: its databases are not protected now.
    let unreachable = report.servers.iter().any(|s| s.error.is_some());
    Ok(if unreachable {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
