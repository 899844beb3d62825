//! One module per subcommand; each turns its configuration into an exit code.

pub mod demo;
mod preflight;
pub mod run;
pub mod sim;
pub mod token;
pub mod validate;

use crate::config::OutputConfig;
use crate::report::summary::Summary;

/// Prints the summary (unless quiet) and writes `--summary-json`.
pub(crate) fn publish(summary: &Summary, output: &OutputConfig) -> anyhow::Result<()> {
    if !output.quiet {
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) must not turn a finished run into an error.
        let _ = summary.print(&mut out);
    }
    if let Some(path) = &output.summary_json {
        summary.write_json(path)?;
    }
    Ok(())
}
