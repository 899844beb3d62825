//! `validate`: the offline check of an input file; writes a validation report, sends nothing.

use std::time::{Instant, SystemTime};

use crate::config::ValidateConfig;
use crate::exit_codes::ExitCode;
use crate::input::{InputFile, InputOptions, RowCheck};
use crate::report::lock::ReportLock;
use crate::report::meta::{self, ReportMeta, ReportMode};
use crate::report::row::ReportRow;
use crate::report::status::Status;
use crate::report::summary::{Summary, Tally};

pub fn validate(cfg: ValidateConfig) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    // One command per report: a run writing this report is not overwritten from here.
    let _lock = ReportLock::acquire(&cfg.output.report)?;
    let input = InputFile::open(
        &cfg.input,
        &InputOptions {
            delimiter: cfg.delimiter,
        },
    )?;
    let scan = input.scan()?;
    let meta = ReportMeta::new(ReportMode::Validate, None, None, &cfg.input, started_at);
    let mut writer = meta::create_report(&cfg.output.report, cfg.output.overwrite, &meta)?;
    let mut tally = Tally::default();
    for item in input.rows(&scan.duplicates)? {
        let row = item?;
        let (status, error) = match &row.check {
            RowCheck::Valid if row.needs_lookup() => (
                Status::Valid,
                "tokenSerialNumber or userId empty: a run resolves it by a device lookup".into(),
            ),
            RowCheck::Valid => (Status::Valid, String::new()),
            RowCheck::Invalid { reason } => (Status::Invalid, reason.clone()),
            RowCheck::Duplicate { first_row } => {
                (Status::Duplicate, format!("repeats row {first_row}"))
            }
        };
        tally.add(status);
        writer.write(&ReportRow::unsent(row, status, error))?;
    }
    writer.finish()?;
    let summary = Summary::new("validate", &cfg.input, &cfg.output.report, &tally)
        .with_elapsed(started.elapsed());
    super::publish(&summary, &cfg.output)?;
    Ok(tally.exit_code())
}
