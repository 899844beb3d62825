//! ds100-offboard: bulk removal of RSA SecurID DS100 OTP credentials, row by row, paced,
//! retried and reported.
//!
//! The pipeline is the architecture: `input` reads and checks rows, `engine` sends them
//! through one limiter and N workers, `report` writes what happened. `api` is the tenant's
//! HTTP API. The `ds100-sim` crate is a local stand-in for it, served by the `sim` and `demo`
//! commands.

// Every message goes through `console` (`outln!` / `errln!`), which never panics on a closed
// stdout or stderr; the standard print macros do.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

/// The DS100 HTTP API: wire types, endpoints, the client, key file, OAuth client and bearer
/// tokens.
mod api;
/// Every subcommand and flag (clap); nothing below `config` sees these types.
pub mod cli;
/// One module per subcommand: configuration in, exit code out.
mod commands;
/// Parsed arguments turned into plain runtime configuration.
mod config;
/// `outln!` / `errln!`: printing that never panics on a closed stdout or stderr.
mod console;
/// The OTP credential the tool deletes: token serial, device serial, user id.
mod credential;
/// The pipeline: workers, pacing, retries, matching a row against a lookup.
mod engine;
/// Process exit codes and how they combine.
mod exit_codes;
/// Reading, checking and de-duplicating the input CSV in bounded memory.
pub mod input;
/// Logging setup, printed above the progress bar.
pub mod logging;
/// Shell completions and the man page.
mod manual;
/// The progress display.
mod progress;
/// Request rates as operators write them (`10/s`).
mod rate;
/// The report: rows, statuses, writer, resume, summary, sidecar and lock.
pub mod report;
/// The plan and the operator's go-ahead before a real run.
mod safety;

use cli::{Cli, Command};
use config::{DemoConfig, RunConfig, TokenConfig, ValidateConfig};
pub use exit_codes::ExitCode;

/// Runs one command line to its exit code. An `Err` means nothing was sent (exit 2).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.log.quiet;
    match cli.command {
        Command::Validate(args) => {
            commands::validate::validate(ValidateConfig::from_args(args, quiet)?)
        }
        Command::Run(args) => {
            let cfg = RunConfig::from_args(args, quiet, None)?;
            runtime()?.block_on(commands::run::run(cfg))
        }
        Command::Disable(args) => {
            let cfg = RunConfig::from_args(args, quiet, Some(api::patch::TokenState::Disabled))?;
            runtime()?.block_on(commands::run::run(cfg))
        }
        Command::Enable(args) => {
            let cfg = RunConfig::from_args(args, quiet, Some(api::patch::TokenState::Enabled))?;
            runtime()?.block_on(commands::run::run(cfg))
        }
        Command::Sim(args) => runtime()?.block_on(commands::sim::serve(config::sim_config(args)?)),
        Command::Demo(args) => {
            runtime()?.block_on(commands::demo::demo(DemoConfig::from_args(args, quiet)?))
        }
        Command::Token(args) => {
            let cfg = TokenConfig::from_args(args)?;
            runtime()?.block_on(commands::token::token(cfg))
        }
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
