//! `dbkeep verify`: prove backups restorable, and record that they are.

use std::path::Path;
use std::process::ExitCode;

use dbkeep::catalog::{BackupRecord, ListFilter, Status, VerifyLevel};

use super::backup::Interrupt;
use super::{EXIT_FAILED, UsageError, open_runner_with, render};

/// Verify backups: their checksum, their decompression, or a real restore into a throwaway
/// database (the default).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup's id (see `dbkeep list`)
    #[arg(value_name = "ID", required_unless_present_any = ["latest", "all"])]
    id: Option<i64>,

    /// The newest successful backup of each database (or of --database)
    #[arg(long, conflicts_with_all = ["id", "all"])]
    latest: bool,

    /// Every stored backup (of --database)
    #[arg(long, conflicts_with = "id")]
    all: bool,

    /// Only this database, with --latest or --all
    #[arg(long, short = 'd', value_name = "NAME")]
    database: Option<String>,

    /// How deeply: checksum (the file is intact), readable (it decompresses), restore (it
    /// restores into a throwaway database, which is then removed)
    #[arg(long, value_parser = ["checksum", "readable", "restore"], default_value = "restore")]
    level: String,

    /// Verify the copy at this off-site destination (`[[offsite]] name`) instead of the local file
    #[arg(long, value_name = "NAME")]
    from: Option<String>,

    /// The age identity file (from `age-keygen`) that opens encrypted backups, in place of
    /// the configuration's `identity_file`
    #[arg(long, value_name = "FILE")]
    identity: Option<std::path::PathBuf>,
}

impl Args {
    /// What the audit log names this verification.
    pub(super) fn audited(&self) -> (String, Option<String>) {
        let what = match (self.id, &self.database, self.all) {
            (Some(id), _, _) => format!("backup:{id}"),
            (None, Some(d), true) => format!("all of {d}"),
            (None, Some(d), false) => format!("latest of {d}"),
            (None, None, true) => "all".into(),
            (None, None, false) => "latest".into(),
        };
        (what, Some(format!("level {}", self.level)))
    }
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner_with(config_path, args.identity.as_deref())?;
    let level: VerifyLevel = args.level.parse().map_err(UsageError)?;
    if let Some(name) = &args.from
        && !runner.config().offsite.iter().any(|o| &o.name == name)
    {
        return Err(UsageError(format!(
            "--from: no [[offsite]] destination named `{name}` in the configuration"
        ))
        .into());
    }
    let names: Vec<String> = match &args.database {
        Some(d) => {
            runner.config().database(d)?;
            vec![d.clone()]
        }
        None => runner
            .config()
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect(),
    };
    let mut records: Vec<BackupRecord> = Vec::new();
    if let Some(id) = args.id {
        records.push(runner.catalog().get(id)?.ok_or_else(|| {
            UsageError(format!("no backup #{id} in the catalog; see `dbkeep list`"))
        })?);
    } else if args.latest {
        for name in &names {
            records.extend(dbkeep::verdict::last_success(&runner, name)?);
        }
    } else {
        for name in &names {
            records.extend(
                runner
                    .catalog()
                    .list(&ListFilter {
                        database: Some(name.clone()),
                        status: Some(Status::Success),
                        ..ListFilter::default()
                    })?
                    .into_iter()
                    .filter(|r| r.is_stored() && runner.owns(r)),
            );
        }
    }
    super::warn_left_out(&runner);
    if records.is_empty() {
        let _ = render::line("no stored backups to verify");
        return Ok(ExitCode::SUCCESS);
    }
    let interrupted = Interrupt::watch()?;
    let mut all_ok = true;
    for record in &records {
        if interrupted.code().is_some() {
            break;
        }
        let cancel = interrupted.arm();
        let v = match dbkeep::verify::verify_from(
            &runner,
            record,
            level,
            args.from.as_deref(),
            &cancel,
        ) {
            Ok(v) => v,
            Err(dbkeep::Error::Cancelled(_)) => break,
            Err(e) => return Err(e.into()),
        };
        all_ok &= v.ok;
        let took = v
            .restore_ms
            .map(|ms| format!("  (restored in {})", render::duration(Some(ms))))
            .unwrap_or_default();
        let done = v.level;
        let took = match &v.source {
            Some(name) => format!("{took}  (from off-site `{name}`)"),
            None => took,
        };
        match &v.message {
            None => render::line(format!(
                "ok      #{}  {}  {done}{took}",
                record.id, record.database
            ))?,
            Some(why) => render::line(format!(
                "failed  #{}  {}  {done}  {}",
                record.id,
                record.database,
                render::one_line(why)
            ))?,
        }
        if done != level {
            let _ = render::line(format!(
                "        #{} is encrypted: the {level} level needs its age identity (--identity FILE or identity_file)",
                record.id
            ));
        }
    }
    // The notifications of these runs are delivered before the command ends.
    runner.notifier().wait(super::NOTIFY_WAIT);
    Ok(match interrupted.code() {
        Some(code) => ExitCode::from(code),
        None if all_ok => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_FAILED),
    })
}
