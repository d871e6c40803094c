//! `dbkeep import`: outside backup files into the catalog, as backups like any other.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use dbkeep::import::{ImportOutcome, ImportStep};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_FAILED, open_runner_with, render};

/// Add outside backup files (.db, .sql, .sql.gz, .sql.zst, each also encrypted with age as
/// .age) to a database's backups: each copied
/// into its folder, hashed, checked and its rows counted; then verify, restore and prune them
/// like any other. A file is taken at the time in its name (`…_backup_YYYYMMDD_HHMMSS…`, read
/// in the configured `timezone`), else its modification time; they go in oldest first, and a
/// file the catalog holds already (the same SHA-256) is skipped.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup files (`old/*.sql.gz` brings a folder's whole history in)
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,

    /// The configured database they are backups of
    #[arg(long, short = 'd', value_name = "NAME")]
    database: String,

    /// The age identity file (from `age-keygen`) that opens encrypted (.age) files, in place of
    /// the configuration's `identity_file`
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

impl Args {
    /// What the audit log names this import: the database and how many files.
    pub(super) fn audited(&self) -> (String, Option<String>) {
        (
            self.database.clone(),
            Some(format!("{} file(s)", self.files.len())),
        )
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    // The configuration as written, before --identity stands in for its identity_file: what
    // later restores, verifications and drills open the imported files with.
    let configured = args
        .identity
        .is_some()
        .then(|| dbkeep::Config::load(config_path))
        .transpose()?;
    let runner = open_runner_with(config_path, args.identity.as_deref())?;
    let zone = runner.config().service.timezone;
    // Drawn only when stderr is a terminal, and only for more than one file.
    let bar = if args.files.len() > 1 {
        ProgressBar::with_draw_target(Some(args.files.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{spinner} importing {pos}/{len}: {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let (mut imported, mut skipped, mut failed) = (0u32, 0u32, 0u32);
    let mut line_failed = None;
    let mut on_step = |step: ImportStep<'_>| match step {
        // "importing 3/30: old/…": the third file is being imported.
        ImportStep::Starting { file, index, .. } => {
            bar.set_position(index as u64 + 1);
            bar.set_message(shown(file));
        }
        ImportStep::Done { file, outcome } => {
            let line = match outcome {
                ImportOutcome::Imported { record, tables } => {
                    imported += 1;
                    let mut line = format!(
                        "imported  #{}  {}  {}  {}  ({tables} table(s), taken {})",
                        record.id,
                        record.database,
                        record.file_name.as_deref().unwrap_or("-"),
                        render::size(record.size_bytes),
                        render::time(&record.started_at, zone)
                    );
                    if let Some(config) = &configured
                        && let Some(why) = unopened_by_configured_keys(config, record)
                    {
                        line.push_str(&format!(
                            "\nwarning  #{}: only --identity opens it, not the configured keys ({}): its restores, verifications and drills need --identity too; add that identity to identity_file",
                            record.id,
                            render::one_line(&why)
                        ));
                    }
                    line
                }
                ImportOutcome::Skipped { id } => {
                    skipped += 1;
                    format!("skipped  {}  (already imported as #{id})", shown(file))
                }
                ImportOutcome::Failed(e) => {
                    failed += 1;
                    format!(
                        "failed  {}: {}",
                        shown(file),
                        render::one_line(&e.to_string())
                    )
                }
            };
            // Above the bar; a reader that went away ends the command as any other's would.
            if line_failed.is_none()
                && let Err(e) = bar.suspend(|| {
                    use std::io::Write as _;
                    writeln!(std::io::stdout(), "{line}")
                })
            {
                line_failed = Some(e);
            }
        }
    };
    let outcomes = dbkeep::import::import_many(&runner, &args.files, &args.database, &mut on_step);
    bar.finish_and_clear();
    outcomes?;
    if let Some(e) = line_failed {
        return Err(e.into());
    }
    let _ = render::line(format!(
        "imported {imported}, skipped {skipped}, failed {failed}"
    ));
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Why the configuration's own keys cannot open the encrypted backup `record`, if they cannot
/// (the keys its restores and verifications will look for, [`dbkeep::crypt::Keys::for_record`]).
fn unopened_by_configured_keys(
    config: &dbkeep::Config,
    record: &dbkeep::catalog::BackupRecord,
) -> Option<String> {
    use std::io::Read as _;
    let path = record.path.as_deref()?;
    let keys = match dbkeep::crypt::Keys::for_record(config, record) {
        Ok(Some(keys)) => keys,
        Ok(None) => return None,
        Err(e) => return Some(e.to_string()),
    };
    let opened = std::fs::File::open(path)
        .and_then(|file| keys.decrypt(Box::new(file)))
        .and_then(|mut plain| plain.read(&mut [0u8; 1]));
    opened.err().map(|e| e.to_string())
}

/// A path as given, its control characters escaped (a file name may hold any).
fn shown(file: &Path) -> String {
    dbkeep::text::escape_controls(&file.display().to_string(), false).into_owned()
}
