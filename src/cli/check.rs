//! `dbkeep check`: reads and checks the configuration, and nothing else: no catalog is opened,
//! no folder created. For editors, deploy scripts and the Django app's system checks.

use std::path::Path;
use std::process::ExitCode;

/// Check the configuration file and exit (nothing is opened or written)
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    let config = dbkeep::Config::load(config_path)?;
    for warning in config.notify.warnings() {
        eprintln!("warning: {}: {warning}", config_path.display());
    }
    let n = config.databases.len();
    println!(
        "{}: configuration OK ({n} database{})",
        config_path.display(),
        if n == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}
