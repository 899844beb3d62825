//! One module per subcommand; each turns its configuration into an exit code.

pub(crate) mod demo;
mod preflight;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod sim;
pub(crate) mod token;
pub(crate) mod validate;

use std::path::Path;

use crate::config::{OutputConfig, SummaryJson};
use crate::console;
use crate::input::Scan;
use crate::input::from_report::ReportFacts;
use crate::report::meta::{InputReport, ReportMeta};
use crate::report::summary::Summary;

/// What a command says (exit 1, nothing sent) of an input without rows to send; of a report
/// read as input, which of its rows there were (docs/design.md#a-report-as-input).
pub(crate) fn no_rows_message(path: &Path, report: Option<&ReportFacts>) -> String {
    match report {
        None => crate::input::no_rows_message(path),
        Some(facts) => {
            let left_alone = match facts.leave_unchanged {
                Some(status) if facts.n_left_unchanged > 0 => format!(
                    " ({} row(s) noted `{}` are left alone: the report's command did not change \
                     them, so the undo does not either)",
                    facts.n_left_unchanged,
                    crate::input::from_report::already_note(status)
                ),
                _ => String::new(),
            };
            format!(
                "no row to send: {} is a report of ds100-offboard whose {} row(s) have these \
                 latest statuses: {}; none is {}{left_alone}. Check the report and \
                 --only-status (a disable's report holds `disabled` rows, a run's `deleted` or \
                 `failed` ones). Nothing was sent.",
                path.display(),
                facts.n_rows,
                facts.counts(),
                match &facts.only {
                    Some(_) => format!("one of --only-status {}", facts.wanted()),
                    None => "there".to_string(),
                }
            )
        }
    }
}

/// A report read as input must account for every row of its job: rows it has no line for
/// (its run killed before it wrote them) would be left out of any selection, "retry what
/// failed" included, and so never be sent. Refused (exit 2) until that job is resumed. Without
/// a usable sidecar this cannot be checked: a warning.
///
/// It must also be about `tenant`, the tenant this command sends to (`None`: `validate`, which
/// sends nothing). A report's statuses and the values its lookups resolved describe the tenant
/// it was made against: read against another (a rehearsal's report against production), a row
/// resolved to the rehearsal's credential ends `absent` while the device's credential here
/// still works, and an undo `--only-status disabled` would enable what this tenant never
/// disabled. Refused (exit 2).
pub(crate) fn check_input_report(
    path: &Path,
    facts: &ReportFacts,
    sha256: &str,
    tenant: Option<&str>,
) -> anyhow::Result<()> {
    match ReportMeta::read_if_present(path) {
        Ok(Some(meta)) => {
            if let (Some(recorded), Some(now)) = (meta.tenant.as_deref(), tenant)
                && recorded != now
            {
                anyhow::bail!(
                    "{} was made against another tenant: it records tenant {recorded}, this run \
                     is against tenant {now}. Its statuses and the values its lookups resolved \
                     say nothing about this tenant (a rehearsal's report is no record of \
                     production). Use a report made against {now}, or the original input file. \
                     Nothing was sent.",
                    path.display()
                );
            }
            if let Some(n) = meta.input_rows
                && n > facts.n_rows
            {
                anyhow::bail!(
                    "{} accounts for {} of the {n} rows of its job: {} row(s) have no line (its \
                     run was killed before it wrote them) and would be left out. Finish that \
                     job first (run it again with --resume), then use its report. Nothing was \
                     sent.",
                    path.display(),
                    facts.n_rows,
                    n - facts.n_rows
                );
            }
            // The report as the last command that wrote it left it: a spreadsheet that saved
            // it again (dropping serials' leading zeros) or a hand edit changes what its rows
            // say was done. Sidecars from before the hash was recorded cannot be checked.
            if let Some(recorded) = meta
                .invocations
                .last()
                .and_then(|i| i.report_sha256.as_deref())
                && recorded != sha256
            {
                anyhow::bail!(
                    "{} changed after the tool wrote it: its SHA-256 is {sha256}, the last \
                     command that wrote it recorded {recorded} in its sidecar. A report edited \
                     by hand or saved again by a spreadsheet (which drops serials' leading \
                     zeros) no longer says what was done; if its last run was killed, finish it \
                     with --resume first. Use the report as the tool wrote it (to act on some of \
                     its rows only, copy it and edit the copy). Nothing was sent.",
                    path.display()
                );
            }
        }
        Ok(None) => tracing::warn!(
            "the input report {} has no sidecar, so whether it accounts for every row of its \
             job cannot be checked",
            path.display()
        ),
        Err(why) => tracing::warn!(
            "the input report's sidecar cannot be used ({why}), so whether the report accounts \
             for every row of its job cannot be checked"
        ),
    }
    Ok(())
}

/// How the sidecar records a report read as input; `None` for a list of credentials.
pub(crate) fn input_report(scan: &Scan) -> Option<InputReport> {
    scan.report_facts().map(|facts| InputReport {
        only_status: facts
            .only
            .map(|only| only.iter().map(|s| s.as_str().to_string()).collect()),
    })
}

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
