//! `dbkeep pin ID [--note TEXT]` and `dbkeep unpin ID`: a backup kept from every prune, at
//! every destination, whatever the policy, until it is unpinned.

use std::path::Path;
use std::process::ExitCode;

use dbkeep::catalog::BackupId;

use super::{UsageError, open_runner, render};

/// Keep a backup from every prune (local and off-site), whatever the retention policy
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// The backup's id (see `dbkeep list`); only a successful backup can be pinned
    id: BackupId,

    /// Why it is kept, shown by `dbkeep list` (replaces the note of an earlier pin)
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
}

impl PinArgs {
    /// What the audit log names this pin.
    pub(super) fn audited(&self) -> (String, Option<String>) {
        (format!("backup:{}", self.id), self.note.clone())
    }
}

/// Let retention prune a pinned backup again
#[derive(Debug, clap::Args)]
pub struct UnpinArgs {
    /// The backup's id (see `dbkeep list`)
    id: BackupId,
}

impl UnpinArgs {
    /// What the audit log names this unpin.
    pub(super) fn audited(&self) -> (String, Option<String>) {
        (format!("backup:{}", self.id), None)
    }
}

pub fn run_pin(config_path: &Path, args: PinArgs) -> anyhow::Result<ExitCode> {
    // An empty note is no note.
    let note = args
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    set(config_path, args.id, true, note)
}

pub fn run_unpin(config_path: &Path, args: UnpinArgs) -> anyhow::Result<ExitCode> {
    set(config_path, args.id, false, None)
}

fn set(
    config_path: &Path,
    id: BackupId,
    pinned: bool,
    note: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let catalog = runner.catalog();
    if !catalog.set_pin(id, pinned, note)? {
        return Err(UsageError(format!(
            "no backup #{id} in the catalog; `dbkeep list` shows the ids"
        ))
        .into());
    }
    let done = if pinned { "pinned" } else { "unpinned" };
    // The row as it is now: what it is a backup of, and its note. (A row this version cannot
    // read was still pinned; the line then names its id alone.)
    let mut line = format!("{done}  #{id}");
    if let Ok(Some(r)) = catalog.get(id) {
        line.push_str(&format!("  {}", render::one_line(&r.database)));
        if let Some(file) = &r.file_name {
            line.push_str(&format!("  {}", render::one_line(file)));
        }
        if let Some(note) = r.pin_note.as_deref().filter(|_| r.pinned) {
            line.push_str(&format!("  (note: {})", render::one_line(note)));
        }
    }
    render::line(line)?;
    Ok(ExitCode::SUCCESS)
}
