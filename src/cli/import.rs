//! `dbkeep import`: an outside backup file into the catalog, as a backup like any other.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{open_runner, render};

/// Add an outside backup file (.db, .sql, .sql.gz, .sql.zst) to a database's backups: copied
/// into its folder, hashed, checked and its rows counted; then verify, restore and prune it
/// like any other.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup file
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// The configured database it is a backup of
    #[arg(long, short = 'd', value_name = "NAME")]
    database: String,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let record = dbkeep::import::import(&runner, &args.file, &args.database)?;
    let tables = runner.catalog().table_rows(record.id)?;
    println!(
        "imported  #{}  {}  {}  {}  ({} table(s), taken {})",
        record.id,
        record.database,
        record.file_name.as_deref().unwrap_or("-"),
        render::size(record.size_bytes),
        tables.len(),
        render::time(&record.started_at, runner.config().service.timezone)
    );
    Ok(ExitCode::SUCCESS)
}
