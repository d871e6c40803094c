//! The `dbkeep` command: parses arguments, sets up logging, and hands over to the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
