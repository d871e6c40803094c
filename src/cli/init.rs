//! `dbkeep init`: write a commented example configuration.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::UsageError;

/// The configuration `dbkeep init` writes: every key, commented.
pub const EXAMPLE: &str = include_str!("example.toml");

/// Write a commented example configuration (to --config, or ./dbkeep.toml).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config_path: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    // Private whatever the umask: a configuration may hold a database URL with a password.
    let mut file = match dbkeep::storage::create_private_file(config_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(UsageError(format!(
                "{} already exists; not overwriting it (edit it, or pass --config with a new path)",
                config_path.display()
            ))
            .into());
        }
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot create {}: {e}",
                config_path.display()
            ));
        }
    };
    file.write_all(EXAMPLE.as_bytes())?;
    let _ = super::render::line(format!(
        "wrote {}; add a [[databases]] entry, then run `dbkeep backup`",
        config_path.display()
    ));
    Ok(ExitCode::SUCCESS)
}
