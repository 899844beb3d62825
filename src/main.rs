//! The `ds100-offboard` binary: parse arguments, run, map the result to an exit code.

use std::io::Write;

use clap::Parser;
use ds100_offboard::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    ds100_offboard::logging::init(cli.log.verbose, cli.log.quiet, cli.log.log_format.into());
    match ds100_offboard::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            // {:#} prints the whole context chain on one line. A closed stderr is not worth
            // a panic.
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ds100_offboard::ExitCode::Usage.into()
        }
    }
}
