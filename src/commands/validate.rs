//! `validate`: the offline check of an input file; writes a validation report, sends nothing.

use std::time::{Instant, SystemTime};

use crate::config::ValidateConfig;
use crate::console::errln;
use crate::exit_codes::ExitCode;
use crate::input::{InputFile, InputOptions, RowCheck, Scan};
use crate::report::invocation;
use crate::report::lock::ReportLock;
use crate::report::meta::{self, ReportMeta, ReportMode};
use crate::report::row::ReportRow;
use crate::report::status::Status;
use crate::report::summary::{Summary, Tally};

pub(crate) fn validate(cfg: ValidateConfig) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    // One command per report: a run writing this report is not overwritten from here.
    let _lock = ReportLock::acquire(&cfg.output.report)?;
    let input = InputFile::open(
        &cfg.input,
        &InputOptions {
            delimiter: cfg.delimiter,
            ignore_columns: cfg.ignore_columns.clone(),
            only_status: cfg.only_status.clone(),
            undo_of: None,
        },
    )?;
    let scan = input.scan()?;
    if let Some(facts) = scan.report_facts() {
        super::check_input_report(&cfg.input, &facts, &scan.sha256, None)?;
    }
    if scan.n_rows == 0 {
        errln!(
            "error: {}",
            super::no_rows_message(&cfg.input, scan.report_facts().as_ref())
        );
        return Ok(ExitCode::RowFailures);
    }
    if !cfg.output.quiet {
        print_file_notes(&scan);
    }
    let mut meta = ReportMeta::new(ReportMode::Validate, None, None, &cfg.input, started_at)
        .with_input(&scan.sha256, scan.n_rows);
    meta.input_report = super::input_report(&scan);
    let mut writer = meta::create_report(&cfg.output.report, cfg.output.overwrite, &meta)?;
    let mut tally = Tally::default();
    for item in input.rows(&scan)? {
        let row = item?;
        let (status, error) = match &row.check {
            RowCheck::Valid => {
                let mut notes = Vec::new();
                let cred = &row.credential;
                if cred.known_email().is_some() {
                    notes.push(
                        "named by email: a run looks the user up by address, then a device \
                         lookup must show that user's credential"
                            .to_string(),
                    );
                } else if row.needs_lookup() {
                    notes.push(
                        "tokenSerialNumber or userId empty: a run resolves it by a device lookup"
                            .to_string(),
                    );
                }
                if scan.device_serials.is_short(&row.credential.device) {
                    notes.push(scan.device_serials.describe_short(&row.credential.device));
                }
                (Status::Valid, notes.join("; "))
            }
            RowCheck::Invalid { reason } => (Status::Invalid, reason.clone()),
            RowCheck::Duplicate { first_row } => {
                (Status::Duplicate, format!("repeats row {first_row}"))
            }
        };
        tally.add(status);
        writer.write(&ReportRow::unsent(row, status, error))?;
    }
    writer.finish()?;
    let mut summary = Summary::new("validate", &cfg.input, &cfg.output.report, &tally)
        .with_elapsed(started.elapsed());
    invocation::record(
        &cfg.output.report,
        &mut summary,
        invocation::Facts {
            started: started_at,
            identity: None,
            input_sha256: scan.sha256.clone(),
            rate_per_second: None,
            resume: false,
        },
    );
    super::publish(&summary, &cfg.output)?;
    Ok(tally.exit_code())
}

/// What the file as a whole means for a run: the columns it ignores, the rows it would resolve
/// by the device alone, the device serials that may have lost their leading zeros.
fn print_file_notes(scan: &Scan) {
    if !scan.ignored_columns.is_empty() {
        errln!("Ignored columns: {}", scan.ignored_columns.join(", "));
    }
    if scan.n_no_user > 0 {
        errln!(
            "{}: a run deletes the credential the device holds, whoever it belongs to",
            crate::safety::rows_naming_no_user(scan.n_no_user)
        );
    }
    if scan.n_email > 0 {
        errln!(
            "{}. Offline, repeats of these rows are found on the same device, token and address \
             (in any case); a row naming the same user by userId is told apart only by a run",
            crate::safety::rows_naming_by_email(scan.n_email)
        );
    }
    if scan.n_short_device > 0 {
        errln!(
            "{}; the report's note says which",
            crate::safety::rows_with_short_device(scan)
        );
    }
}
