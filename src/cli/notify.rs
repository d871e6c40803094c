//! `dbkeep notify test`: a test message through every configured webhook and email.

use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_FAILED, open_runner, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Send a test message through every webhook and email (ping URLs are not pinged: a ping is a real
    /// signal to its monitor)
    Test,
}

pub fn run(config_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let runner = open_runner(config_path)?;
    let Action::Test = args.action;
    let results = runner.notifier().test();
    if results.is_empty() {
        let _ = render::line(
            "no webhooks or email configured: add a [[notify.webhook]] or [notify.email] to dbkeep.toml",
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut all_ok = true;
    for (channel, result) in results {
        match result {
            Ok(()) => render::line(format!("ok      {channel}"))?,
            Err(e) => {
                all_ok = false;
                let _ = render::line(format!("failed  {channel}  {}", render::one_line(&e)));
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
