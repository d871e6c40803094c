//! `dbkeep check`: reads and checks the configuration (and the age identity file it names), and
//! nothing else: no catalog is opened, no folder created. For editors, deploy scripts and the Django app's system checks.

use std::path::Path;
use std::process::ExitCode;

/// Check the configuration file and exit (no catalog is opened, nothing is written)
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    let config = dbkeep::Config::load(config_path)?;
    for warning in config.notify.warnings() {
        eprintln!("warning: {}: {warning}", config_path.display());
    }
    // What later commands would open: found now rather than at the first restore.
    config.check_files()?;
    let n = config.databases.len();
    // The servers' databases are found when they are asked (`dbkeep discover`).
    let servers = match config.servers.len() {
        0 => String::new(),
        1 => ", 1 server".to_string(),
        k => format!(", {k} servers"),
    };
    super::render::line(format!(
        "{}: configuration OK ({n} database{}{servers})",
        config_path.display(),
        if n == 1 { "" } else { "s" }
    ))?;
    Ok(ExitCode::SUCCESS)
}
