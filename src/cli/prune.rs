//! `dbkeep prune`: apply the retention policy now, or show what it would delete.

use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_FAILED, open_runner, render};

/// Delete backups that the retention policy lets go.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this database [default: all]
    #[arg(long, short = 'd', value_name = "NAME")]
    database: Option<String>,

    /// Keep this many days instead of the configured retention_days
    #[arg(long, value_name = "N", value_parser = super::retention_days)]
    retention_days: Option<u32>,

    /// Print what would be deleted, and why, without deleting anything
    #[arg(long)]
    dry_run: bool,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let pruned = runner.prune(args.database.as_deref(), args.retention_days, args.dry_run)?;
    super::warn_left_out(&runner);
    if pruned.is_empty() {
        println!("nothing to prune");
    }
    let tz = runner.config().service.timezone;
    for p in &pruned {
        println!("{}", render::pruned(p, args.dry_run, tz));
    }
    if !pruned.is_empty() {
        let done: Vec<_> = pruned.iter().filter(|p| p.error.is_none()).collect();
        let bytes: u64 = done.iter().filter_map(|p| p.record.size_bytes).sum();
        println!(
            "{} {} file(s), {}",
            if args.dry_run {
                "would prune"
            } else {
                "pruned"
            },
            done.len(),
            render::size(Some(bytes))
        );
    }
    for left in runner.left_alone()? {
        if args.database.as_deref().is_some_and(|d| d != left.database) {
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
        println!(
            "left alone  {}  {} backup(s): {why}",
            render::one_line(&left.database),
            left.backups
        );
    }
    let failed = pruned.iter().any(|p| p.error.is_some());
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
