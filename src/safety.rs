//! The plan a real run prints before it sends anything, and the operator's go-ahead: typed
//! confirmation on a terminal, `--yes` otherwise, `--max-deletes` as a hard ceiling
//! (docs/design.md#safety-before-sending).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use crate::api::patch::TokenState;
use crate::config::Confirm;
use crate::engine::Mode;
use crate::input::Scan;
use crate::input::from_report::ReportFacts;
use crate::rate::Rate;

/// What a run is about to do.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) tenant: String,
    pub(crate) input: String,
    pub(crate) report: String,
    pub(crate) mode: Mode,
    pub(crate) rows: u64,
    /// Rows that will be sent (valid, not duplicates).
    pub(crate) to_send: u64,
    pub(crate) needs_lookup: u64,
    /// Rows to send that name no user: resolved by the device alone.
    pub(crate) no_user: u64,
    /// Rows to send that name their user by email: a user lookup (one per address), then a
    /// device lookup.
    pub(crate) by_email: u64,
    /// Rows whose device serial may have lost its leading zeros, and the sentence saying so.
    pub(crate) short_devices: u64,
    pub(crate) short_devices_note: String,
    /// Columns of the input the tool does not read.
    pub(crate) ignored_columns: Vec<String>,
    pub(crate) invalid: u64,
    pub(crate) duplicates: u64,
    pub(crate) rate: Rate,
    pub(crate) burst: u32,
    pub(crate) concurrency: usize,
    /// With `--resume`: rows already final in the report (kept, not sent).
    pub(crate) carried_over: Option<u64>,
    /// The input is one of the tool's reports (docs/design.md#a-report-as-input).
    pub(crate) from_report: Option<ReportFacts>,
}

impl Plan {
    pub(crate) fn new(scan: &Scan, mode: Mode, tenant: &str, input: &Path, report: &Path) -> Plan {
        Plan {
            tenant: tenant.to_string(),
            input: input.display().to_string(),
            report: report.display().to_string(),
            mode,
            rows: scan.n_rows,
            to_send: scan.n_valid,
            needs_lookup: scan.n_needs_lookup,
            no_user: scan.n_no_user,
            by_email: scan.n_email,
            short_devices: scan.n_short_device,
            short_devices_note: rows_with_short_device(scan),
            ignored_columns: scan.ignored_columns.clone(),
            invalid: scan.n_invalid,
            duplicates: scan.n_duplicate,
            rate: Rate::per_second(1.0),
            burst: 1,
            concurrency: 1,
            carried_over: None,
            from_report: scan.report_facts(),
        }
    }

    /// Requests the plan needs when nothing is retried and no DELETE answers 404: at most, as
    /// rows naming the same address share one user lookup.
    pub(crate) fn requests(&self) -> u64 {
        let rows = match self.mode {
            Mode::DryRun | Mode::Patch { dry_run: true, .. } => self.to_send,
            // Every row is looked up before its PATCH (docs/design.md#disable-and-enable).
            Mode::Delete { verify: true } | Mode::Patch { .. } => self.to_send * 2,
            Mode::Delete { verify: false } => self.to_send + self.needs_lookup,
        };
        rows + self.by_email
    }

    pub(crate) fn estimated_duration(&self) -> Duration {
        Duration::from_secs_f64(self.requests() as f64 / self.rate.as_per_second())
    }

    pub(crate) fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let title = match self.mode {
            Mode::DryRun => "Plan (dry run: lookups only, nothing is deleted)".to_string(),
            Mode::Delete { verify: true } => {
                "Plan (delete, each row verified by a lookup first)".to_string()
            }
            Mode::Delete { verify: false } => "Plan (delete)".to_string(),
            Mode::Patch { to, dry_run: true } => format!(
                "Plan ({} dry run: lookups only, nothing is {})",
                to.verb(),
                to.done()
            ),
            Mode::Patch { to, .. } => format!(
                "Plan ({}, each row looked up first; reversible with {})",
                to.verb(),
                match to {
                    TokenState::Disabled => "enable",
                    TokenState::Enabled => "disable",
                }
            ),
        };
        let verb = match self.mode {
            _ if self.mode.is_dry_run() => "to check",
            Mode::Patch { to, .. } => match to {
                TokenState::Disabled => "to disable",
                TokenState::Enabled => "to enable",
            },
            _ => "to delete",
        };
        writeln!(out, "{title}")?;
        writeln!(out, "  tenant           {}", self.tenant)?;
        writeln!(
            out,
            "  input            {} ({} rows)",
            self.input, self.rows
        )?;
        if let Some(facts) = &self.from_report {
            writeln!(
                out,
                "  from a report    {} of its {} rows (latest status: {}); row numbers are \
                 the report's",
                self.rows,
                facts.n_rows,
                facts.wanted()
            )?;
            if let Some(status) = facts.leave_unchanged
                && facts.n_left_unchanged > 0
            {
                writeln!(
                    out,
                    "  left alone       {} row(s) noted `{}`: the report's command found them so \
                     and did not change them, so this undo does not either",
                    facts.n_left_unchanged,
                    crate::input::from_report::already_note(status)
                )?;
            }
        }
        if let Some(carried) = self.carried_over {
            writeln!(
                out,
                "  resuming         {carried} rows already final in the report (not sent again)"
            )?;
        }
        write!(out, "  {verb:<16} {}", self.to_send)?;
        if self.needs_lookup > 0 {
            write!(
                out,
                " ({} resolved by a device lookup first)",
                self.needs_lookup
            )?;
        }
        writeln!(out)?;
        if self.no_user > 0 {
            // Said in words: these rows delete whatever the device holds.
            let what = match self.mode {
                Mode::DryRun => {
                    "a real run would delete the credential the device holds, whoever it belongs to"
                }
                Mode::Patch { dry_run: true, .. } => {
                    "a real run would change the credential the device holds, whoever it belongs to"
                }
                Mode::Patch { .. } => {
                    "the credential the device holds will be changed, whoever it belongs to"
                }
                Mode::Delete { .. } => {
                    "the credential the device holds will be deleted, whoever it belongs to"
                }
            };
            writeln!(
                out,
                "  no user named    {}: {what}",
                rows_naming_no_user(self.no_user)
            )?;
        }
        if self.by_email > 0 {
            writeln!(
                out,
                "  by email         {}",
                rows_naming_by_email(self.by_email)
            )?;
        }
        if self.short_devices > 0 {
            writeln!(out, "  short serials    {}", self.short_devices_note)?;
        }
        writeln!(
            out,
            "  invalid          {} (not sent; reasons in the report)",
            self.invalid
        )?;
        writeln!(out, "  duplicates       {} (not sent)", self.duplicates)?;
        let ignored = if self.ignored_columns.is_empty() {
            "none".to_string()
        } else {
            self.ignored_columns.join(", ")
        };
        writeln!(out, "  ignored columns  {ignored}")?;
        let secs = (self.estimated_duration().as_secs_f64().ceil() as u64).max(1);
        writeln!(
            out,
            "  pace             {} (burst {}), {} workers; about {} for {} requests",
            self.rate,
            self.burst,
            self.concurrency,
            humantime::format_duration(Duration::from_secs(secs)),
            self.requests()
        )?;
        writeln!(out, "  report           {}", self.report)?;
        Ok(())
    }
}

/// "2 rows name no user" / "1 row names no user".
pub(crate) fn rows_naming_no_user(n: u64) -> String {
    if n == 1 {
        "1 row names no user".to_string()
    } else {
        format!("{n} rows name no user")
    }
}

/// The plan's and `validate`'s sentence about rows naming their user by email.
pub(crate) fn rows_naming_by_email(n: u64) -> String {
    format!(
        "{} the user by email: resolved to a userId by one user lookup per distinct address, \
         then a device lookup must show that user's credential before it is deleted (an \
         address the tenant does not know is not_found, never absent)",
        if n == 1 {
            "1 row names".to_string()
        } else {
            format!("{n} rows name")
        }
    )
}

/// The plan's and `validate`'s sentence about device serials that may have lost their zeros.
pub(crate) fn rows_with_short_device(scan: &Scan) -> String {
    let n = scan.n_short_device;
    format!(
        "{} an all-digit deviceSerialNumber shorter than the file's longest ({} digits), as if a \
         spreadsheet dropped leading zeros: it is looked up zero-padded too and never counted \
         absent",
        if n == 1 {
            "1 row has".to_string()
        } else {
            format!("{n} rows have")
        },
        scan.device_serials.longest().unwrap_or(0)
    )
}

/// Whether `approve` will ask the operator to type the count: a real run with rows to delete
/// within `--max-changes`, without `--yes`, on a terminal. The plan is then shown even with
/// `-q`: no one should confirm what they cannot see.
pub(crate) fn will_ask(plan: &Plan, confirm: Confirm, max_deletes: Option<u64>) -> bool {
    !plan.mode.is_dry_run()
        && plan.to_send > 0
        && max_deletes.is_none_or(|max| plan.to_send <= max)
        && confirm != Confirm::Given
        && std::io::stdin().is_terminal()
}

/// Applies `--max-changes` (`--max-deletes`) and gets the go-ahead. Errors mean: nothing was
/// sent, exit 2.
pub(crate) fn approve(
    plan: &Plan,
    confirm: Confirm,
    max_deletes: Option<u64>,
) -> anyhow::Result<()> {
    if plan.mode.is_dry_run() {
        return Ok(());
    }
    let (does, doing) = match plan.mode {
        Mode::Patch { to, .. } => match to {
            TokenState::Disabled => ("disables", "disable"),
            TokenState::Enabled => ("enables", "enable"),
        },
        _ => ("deletes", "delete"),
    };
    if let Some(max) = max_deletes
        && plan.to_send > max
    {
        bail!(
            "the plan {does} up to {} credentials, more than --max-changes {max}; nothing was \
             sent. Split the file or raise --max-changes (--max-deletes) if this is intended.",
            plan.to_send
        );
    }
    if plan.to_send == 0 || confirm == Confirm::Given {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to {doing} without confirmation: stdin is not a terminal. Check the plan \
             above (or run with --dry-run first), then re-run with --yes."
        );
    }
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "\nThis {does} up to {n} credentials on {}. Type {n} to go on, anything else stops: ",
        plan.tenant,
        n = plan.to_send
    )?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != plan.to_send.to_string() {
        bail!(
            "not confirmed (expected {}); nothing was sent",
            plan.to_send
        );
    }
    Ok(())
}
