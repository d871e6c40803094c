//! `dbkeep completions SHELL` and `dbkeep man`: shell completions and manual pages made from
//! the same clap definitions as `--help`, so that they never say something else.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;

use super::{Cli, UsageError};

/// Print the completion script for a shell (bash, zsh or fish) to standard output
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh or fish
    #[arg(value_name = "SHELL", value_enum)]
    shell: Shell,
}

/// The shells dbkeep writes completions for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Print dbkeep's manual page (roff) to standard output, or write one page per command into a
/// folder
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write dbkeep.1 and a dbkeep-COMMAND.1 for each command (dbkeep-user-add.1, …) into this
    /// folder instead
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Into memory first: the generator panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "dbkeep", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    command.build();
    match args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command).render(&mut out)?;
            out.flush()?;
        }
        Some(dir) => {
            if !dir.is_dir() {
                return Err(UsageError(format!(
                    "--dir {}: not a folder; create it first",
                    dir.display()
                ))
                .into());
            }
            let written = write_pages(&command, &dir, "dbkeep")?;
            for page in written {
                super::render::line(page.display().to_string())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `command`'s page as `NAME.1` into `dir`, then its subcommands' as `NAME-SUB.1`;
/// returns the files written.
fn write_pages(command: &clap::Command, dir: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    let page = command.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut text = Vec::new();
    clap_mangen::Man::new(page).render(&mut text)?;
    std::fs::write(&path, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let mut written = vec![path];
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let sub_name = format!("{name}-{}", sub.get_name());
        written.extend(write_pages(sub, dir, &sub_name)?);
    }
    Ok(written)
}
