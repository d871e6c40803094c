//! `dbkeep audit`: the audit log, newest first, filtered.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use super::{UsageError, open_runner, render};
use dbkeep::audit::{Action, Query};

/// Show the audit log (logins, downloads, restores, changes of who may do what), newest first
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only rows since this time (`2026-12-01`, `2026-12-01T08:00:00Z`) or this long ago (`7d`, `12h`)
    #[arg(long, value_parser = parse_since)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only rows by this actor (`user:alice`, `token:ci#3`, `cli:root`); a kind alone
    /// (`user:`) is every actor of that kind
    #[arg(long)]
    actor: Option<String>,
    /// Only rows of this action (login, download, restore, …)
    #[arg(long, value_parser = parse_action)]
    action: Option<Action>,
    /// At most this many rows
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    limit: u32,
    /// Print a JSON array: `id`, `time`, `actor`, `action`, `target`, `outcome`, `detail`,
    /// `source`, `user_agent`
    #[arg(long)]
    json: bool,
}

fn parse_action(s: &str) -> Result<Action, String> {
    s.parse()
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let ago = humantime::parse_duration(s).map_err(|_| {
        format!(
            "`{s}` is neither a time (2026-12-01, 2026-12-01T08:00:00Z) nor a duration (7d, 12h)"
        )
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| chrono::Utc::now().checked_sub_signed(ago))
        .ok_or_else(|| format!("`{s}` is too long ago"))
}

#[derive(Serialize)]
struct RowJson<'a> {
    id: i64,
    time: String,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    outcome: &'a str,
    detail: Option<&'a str>,
    source: Option<&'a str>,
    user_agent: Option<&'a str>,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if args.actor.as_deref().is_some_and(str::is_empty) {
        return Err(UsageError("--actor needs a value such as user:alice or cli:".into()).into());
    }
    let runner = open_runner(config_path)?;
    let rows = runner.catalog().audit(&Query {
        since: args.since,
        actor: args.actor,
        action: args.action,
        before_id: None,
        limit: args.limit,
    })?;
    if args.json {
        let out: Vec<RowJson<'_>> = rows
            .iter()
            .map(|r| RowJson {
                id: r.id,
                time: dbkeep::catalog::format_time(&r.time),
                actor: &r.entry.actor,
                action: r.entry.action.as_str(),
                target: &r.entry.target,
                outcome: r.entry.outcome.as_str(),
                detail: r.entry.detail.as_deref(),
                source: r.entry.source.as_deref(),
                user_agent: r.entry.user_agent.as_deref(),
            })
            .collect();
        render::line(serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        render::line("no audit rows match")?;
    }
    for r in &rows {
        let e = &r.entry;
        let mut line = format!(
            "{}  {}  {} {}  {}",
            dbkeep::catalog::format_time(&r.time),
            e.actor,
            e.action,
            if e.target.is_empty() { "-" } else { &e.target },
            e.outcome
        );
        if let Some(d) = &e.detail {
            line.push_str(&format!("  ({d})"));
        }
        if let Some(s) = &e.source {
            line.push_str(&format!("  from {s}"));
        }
        render::line(line)?;
    }
    Ok(ExitCode::SUCCESS)
}
