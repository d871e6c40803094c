//! `dbkeep download ID`: a backup's stored bytes, as kept (compressed, encrypted), from its
//! local file or, when that is on another instance's disk, a checked off-site copy. To standard
//! output or a file; the Django admin streams its downloads through it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use std::io::IsTerminal;

use super::{UsageError, open_runner};

/// Write a backup's file (as stored: compressed, encrypted) to standard output or a file
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup's id (see `dbkeep list`)
    id: i64,

    /// Write here instead of standard output (a new file, mode 0600; refused when it exists)
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
}

impl Args {
    /// What the audit log names this download: the backup, and where it went.
    pub(super) fn audited(&self) -> (String, Option<String>) {
        let to = self.output.as_ref().map_or_else(
            || "to standard output".into(),
            |p| format!("to {}", p.display()),
        );
        (format!("backup:{}", self.id), Some(to))
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let record = runner.catalog().get(args.id)?.ok_or_else(|| {
        UsageError(format!(
            "no backup #{} in the catalog; see `dbkeep list`",
            args.id
        ))
    })?;
    if !record.is_stored() {
        let what = match record.status {
            dbkeep::catalog::Status::Success => "was pruned from every destination",
            dbkeep::catalog::Status::InProgress => "is still running",
            dbkeep::catalog::Status::Failed => "failed",
        };
        return Err(UsageError(format!(
            "backup #{} {what}: it has no file to download",
            args.id
        ))
        .into());
    }
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(UsageError(
            "refusing to write a backup file to a terminal; use --output FILE or a pipe".into(),
        )
        .into());
    }
    let mut source = runner
        .open_stored(&record)
        .with_context(|| format!("cannot read backup #{}", args.id))?;
    let (copied, sha256) = match &args.output {
        Some(path) => {
            let file = dbkeep::storage::create_private_file(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = dbkeep::pipeline::HashingWriter::new(file);
            std::io::copy(&mut source, &mut out)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let (file, n, sha256) = out.finish();
            file.sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
            (n, sha256)
        }
        None => {
            let mut out = dbkeep::pipeline::HashingWriter::new(std::io::stdout().lock());
            std::io::copy(&mut source, &mut out)
                .and_then(|_| out.flush())
                .context("cannot write to standard output")?;
            let (_, n, sha256) = out.finish();
            (n, sha256)
        }
    };
    // What was written is the backup as recorded, or the command fails (a reader of the pipe
    // learns it from the exit code).
    if record.size_bytes.is_some_and(|size| size != copied)
        || record.sha256.as_ref().is_some_and(|s| *s != sha256)
    {
        anyhow::bail!(
            "backup #{}: the {copied} bytes read do not match the size and SHA-256 recorded; \
             the file is damaged (see `dbkeep verify {}`)",
            args.id,
            args.id
        );
    }
    Ok(ExitCode::SUCCESS)
}
