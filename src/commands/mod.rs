//! One module per subcommand; each turns its configuration into an exit code.

pub(crate) mod demo;
mod preflight;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod sim;
pub(crate) mod token;
pub(crate) mod validate;

use crate::config::{OutputConfig, SummaryJson};
use crate::console;
use crate::report::summary::Summary;

/// Prints the summary (unless quiet) and writes `--summary-json`. Printing never fails the
/// command (a closed stdout, e.g. `| head`, must not turn a finished run into an error); the
/// JSON file can.
pub(crate) fn publish(summary: &Summary, output: &OutputConfig) -> anyhow::Result<()> {
    if !output.quiet {
        let mut text = Vec::new();
        let _ = summary.print(&mut text);
        // `--summary-json -` owns stdout: a pipeline reads JSON there and nothing else.
        if output.summary_json == Some(SummaryJson::Stdout) {
            console::write_err_bytes(&text);
        } else {
            console::write_out_bytes(&text);
        }
    }
    match &output.summary_json {
        Some(SummaryJson::Stdout) => {
            let mut json = summary.to_json()?;
            json.push(b'\n');
            console::write_out_bytes(&json);
        }
        Some(SummaryJson::File(path)) => summary.write_json(path)?,
        None => {}
    }
    Ok(())
}
