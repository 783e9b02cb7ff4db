//! `whereis-bot`: see `whereis_bot --help` and the README.

use std::process::ExitCode;

fn main() -> ExitCode {
    whereis::cli::main()
}
