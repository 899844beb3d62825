//! ds100-offboard: bulk removal of RSA SecurID DS100 OTP credentials, row by row, paced,
//! retried and reported.
//!
//! The pipeline is the architecture: `input` reads and checks rows, `engine` sends them
//! through one limiter and N workers, `report` writes what happened. `api` is the tenant's
//! HTTP API, `sim` a local stand-in for it.

// Every message goes through `console` (`outln!` / `errln!`), which never panics on a closed
// stdout or stderr; the standard print macros do.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
mod console;
pub mod engine;
pub mod exit_codes;
pub mod input;
pub mod logging;
mod manual;
pub mod progress;
pub mod rate;
pub mod report;
pub mod safety;
pub mod sim;

use cli::{Cli, Command};
use config::{RunConfig, ValidateConfig};
pub use exit_codes::ExitCode;

/// Runs one command line to its exit code. An `Err` means nothing was sent (exit 2).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.log.quiet;
    match cli.command {
        Command::Validate(args) => {
            commands::validate::validate(ValidateConfig::from_args(args, quiet)?)
        }
        Command::Run(args) => {
            let cfg = RunConfig::from_args(args, quiet)?;
            runtime()?.block_on(commands::run::run(cfg))
        }
        Command::Sim(args) => runtime()?.block_on(commands::sim::serve(args)),
        Command::Demo(args) => runtime()?.block_on(commands::demo::demo(args, quiet)),
        Command::Token(args) => commands::token::token(args),
        Command::Report(args) => {
            commands::report::report(config::ReportConfig::from_args(args, quiet))
        }
        Command::Completions(args) => manual::completions(args.shell),
        Command::Man => manual::man(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}
