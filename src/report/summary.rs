//! Counting rows per status, and the end summary for people and for pipelines
//! (docs/design.md#progress-logs-and-the-summary).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::status::Status;
use super::summary_json::{self, InvocationDoc, JobFacts, SummaryDoc};
use crate::exit_codes::ExitCode;

/// Rows per status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    counts: [u64; Status::ALL.len()],
}

impl Tally {
    pub(crate) fn add(&mut self, status: Status) {
        self.counts[status.index()] += 1;
    }

    pub(crate) fn get(&self, status: Status) -> u64 {
        self.counts[status.index()]
    }

    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: &Tally) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    pub(crate) fn failures(&self) -> u64 {
        Status::ALL
            .into_iter()
            .filter(|s| !s.is_ok())
            .map(|s| self.get(s))
            .sum()
    }

    /// Non-zero counts, in the report's status order.
    pub(crate) fn nonzero(&self) -> impl Iterator<Item = (Status, u64)> + '_ {
        Status::ALL
            .into_iter()
            .map(|s| (s, self.get(s)))
            .filter(|(_, n)| *n > 0)
    }

    /// 0 when every row is ok, else 1 (stops and interrupts are merged in by the caller).
    pub(crate) fn exit_code(&self) -> ExitCode {
        if self.failures() == 0 {
            ExitCode::Success
        } else {
            ExitCode::RowFailures
        }
    }

    /// A one-line "deleted 10 · failed 2" for progress displays.
    pub(crate) fn brief(&self) -> String {
        let parts: Vec<String> = self.nonzero().map(|(s, n)| format!("{s} {n}")).collect();
        parts.join(" · ")
    }
}

/// The pace a run ended at, labelled against `--rate` so it is not read as the rate achieved:
/// "10/s (--rate)" or "40/s, lowered by 429s from --rate 100/s".
pub(crate) fn final_rate(rate: f64, ceiling: Option<f64>) -> String {
    use crate::rate::Rate;
    // The sidecar `report` reads is a file: a rate in it may be anything.
    let shown = Rate::show(rate);
    match ceiling.filter(|c| c.is_finite() && *c > 0.0 && rate.is_finite() && rate > 0.0) {
        // Within display rounding of --rate: the run ended at it.
        Some(c) if rate >= c * 0.995 => format!("{shown} (--rate)"),
        Some(c) => format!("{shown}, lowered by 429s from --rate {}", Rate::show(c)),
        None => shown,
    }
}

/// What the end of a command prints, and `--summary-json` writes (as a `SummaryDoc`).
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    pub(crate) command: String,
    pub(crate) input: PathBuf,
    pub(crate) report: PathBuf,
    pub(crate) tenant: Option<String>,
    pub(crate) rows: u64,
    /// Every status with its count (zeros included, so pipelines need no defaults).
    pub(crate) statuses: std::collections::BTreeMap<&'static str, u64>,
    pub(crate) ok: u64,
    pub(crate) failures: u64,
    /// Rows this invocation sent requests for (after a resume, the job has more).
    pub(crate) rows_sent_this_run: u64,
    /// Rows whose final status came from the report of an earlier invocation (`--resume`).
    pub(crate) rows_carried_over: u64,
    /// Requests this invocation sent.
    pub(crate) requests_sent: u64,
    pub(crate) throttled_429: u64,
    pub(crate) final_rate_per_second: Option<f64>,
    pub(crate) elapsed_seconds: f64,
    pub(crate) stopped: Option<String>,
    pub(crate) exit_code: u8,
    pub(crate) resume_command: Option<String>,
    /// The job as the report's sidecar records it (filled in by `report::invocation`).
    pub(crate) job: JobFacts,
    /// This command's start and end, and its `--rate` (none for `validate`).
    pub(crate) started_at: Option<std::time::SystemTime>,
    pub(crate) finished_at: Option<std::time::SystemTime>,
    pub(crate) rate_per_second: Option<f64>,
    /// This command as the sidecar records it (`run --resume`); `command` when not recorded.
    pub(crate) invocation_command: Option<String>,
}

impl Summary {
    pub(crate) fn new(command: &str, input: &Path, report: &Path, tally: &Tally) -> Summary {
        Summary {
            command: command.to_string(),
            input: input.to_path_buf(),
            report: report.to_path_buf(),
            tenant: None,
            rows: tally.total(),
            statuses: Status::ALL
                .into_iter()
                .map(|s| (s.as_str(), tally.get(s)))
                .collect(),
            ok: tally.total() - tally.failures(),
            failures: tally.failures(),
            rows_sent_this_run: 0,
            rows_carried_over: 0,
            requests_sent: 0,
            throttled_429: 0,
            final_rate_per_second: None,
            elapsed_seconds: 0.0,
            stopped: None,
            exit_code: tally.exit_code().code(),
            resume_command: None,
            job: JobFacts::default(),
            started_at: None,
            finished_at: None,
            rate_per_second: None,
            invocation_command: None,
        }
    }

    pub(crate) fn with_elapsed(mut self, elapsed: Duration) -> Summary {
        self.elapsed_seconds = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
        self
    }

    /// The human summary.
    pub(crate) fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out)?;
        writeln!(out, "Summary ({})", self.command)?;
        writeln!(out, "  rows             {}", self.rows)?;
        for (status, n) in &self.statuses {
            if *n > 0 {
                writeln!(out, "  {status:<16} {n}")?;
            }
        }
        if self.rows_carried_over > 0 {
            writeln!(
                out,
                "  resumed          {} rows final from earlier runs, {} rows sent now",
                self.rows_carried_over, self.rows_sent_this_run
            )?;
        }
        if self.command != "validate" {
            writeln!(
                out,
                "  requests sent    {} ({} answered 429)",
                self.requests_sent, self.throttled_429
            )?;
            if let Some(rate) = self.final_rate_per_second {
                writeln!(
                    out,
                    "  final rate       {}",
                    final_rate(rate, self.rate_per_second)
                )?;
            }
        }
        let elapsed = Duration::from_millis((self.elapsed_seconds * 1000.0) as u64);
        writeln!(
            out,
            "  elapsed          {}",
            humantime::format_duration(elapsed)
        )?;
        if let Some(tenant) = &self.tenant {
            writeln!(out, "  tenant           {tenant}")?;
        }
        writeln!(out, "  report           {}", self.report.display())?;
        if let Some(why) = &self.stopped {
            writeln!(out, "  stopped          {why}")?;
        }
        if let Some(cmd) = &self.resume_command {
            let not_found = self.statuses.get("not_found").copied().unwrap_or(0);
            if not_found > 0 {
                writeln!(
                    out,
                    "  note             {not_found} not_found row(s): a 404 no lookup could explain, or an email no user has; resume tries them again"
                )?;
            }
            writeln!(out, "  to resume        {cmd}")?;
        }
        let count = |st: &str| self.statuses.get(st).copied().unwrap_or(0);
        let found_any = [
            "deleted",
            "disabled",
            "enabled",
            "would_delete",
            "would_disable",
            "would_enable",
            "mismatch",
            "ambiguous",
        ]
        .iter()
        .any(|st| count(st) > 0);
        let n_absent = count("absent");
        if self.command != "validate" && n_absent > 0 && !found_any {
            // Only rows that were checked can be said to match nothing: an interrupted run's
            // skipped rows (and invalid or repeated ones) were never asked about.
            let what = if n_absent == self.rows {
                "no row matched a credential on the tenant (all absent)".to_string()
            } else {
                format!(
                    "none of the {n_absent} row(s) checked matched a credential on the tenant \
                     (the other {} not checked, or without an answer)",
                    self.rows - n_absent
                )
            };
            writeln!(
                out,
                "  note             {what}: if that is unexpected, check --base-url — a wrong \
                 path is answered 404 like a credential that is gone"
            )?;
        }
        let verdict = match self.exit_code {
            0 => "every row ok".to_string(),
            1 => format!(
                "{} row(s) need attention: see the error column of the report",
                self.failures
            ),
            3 => "safety stop: check the tenant and the token, then resume".to_string(),
            130 => "interrupted".to_string(),
            _ => String::new(),
        };
        writeln!(
            out,
            "  result           {verdict} (exit {})",
            self.exit_code
        )?;
        Ok(())
    }

    /// The summary JSON document (schema 1, docs/summary-schema.md). Paths are made absolute
    /// where they can be: the document outlives the shell it was written from.
    pub fn to_doc(&self) -> SummaryDoc {
        let absolute = |p: &Path| {
            p.canonicalize()
                .unwrap_or_else(|_| p.to_path_buf())
                .to_string_lossy()
                .into_owned()
        };
        let sending = self.command != "validate";
        SummaryDoc {
            schema: summary_json::SCHEMA,
            tool: env!("CARGO_PKG_NAME"),
            tool_version: env!("CARGO_PKG_VERSION"),
            command: self.command.clone(),
            mode: self.job.mode.clone(),
            tenant: self.tenant.clone().or_else(|| self.job.tenant.clone()),
            identity: self.job.identity.clone(),
            input: Some(absolute(&self.input)),
            input_sha256: self.job.input_sha256.clone(),
            report: absolute(&self.report),
            started_at: self.job.started_at.clone(),
            finished_at: self
                .job
                .finished_at
                .clone()
                .or_else(|| self.finished_at.map(summary_json::rfc3339)),
            rows: self.rows,
            statuses: self.statuses.clone(),
            ok: self.ok,
            failures: self.failures,
            rows_missing: 0,
            stopped: self.stopped.clone(),
            resume_command: self.resume_command.clone(),
            exit_code: self.exit_code,
            invocation: InvocationDoc {
                command: Some(
                    self.invocation_command
                        .clone()
                        .unwrap_or_else(|| self.command.clone()),
                ),
                started_at: self.started_at.map(summary_json::rfc3339),
                finished_at: self.finished_at.map(summary_json::rfc3339),
                elapsed_seconds: Some(self.elapsed_seconds),
                rows_sent: Some(self.rows_sent_this_run),
                rows_carried_over: Some(self.rows_carried_over),
                requests_sent: Some(self.requests_sent),
                throttled_429: Some(self.throttled_429),
                rate_per_second: self.rate_per_second.filter(|_| sending),
                final_rate_per_second: self
                    .final_rate_per_second
                    .filter(|_| sending)
                    .map(summary_json::round3),
            },
        }
    }

    /// The JSON form.
    pub(crate) fn to_json(&self) -> anyhow::Result<Vec<u8>> {
        self.to_doc().to_json().context("encoding the summary")
    }

    /// Writes the JSON form to `path`, replacing it whole (a symlink there is replaced, not
    /// followed).
    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let json = self.to_json()?;
        super::files::write_atomic(path, &json)
            .with_context(|| format!("writing summary {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_rate_is_labelled_against_the_rate_asked_for() {
        assert_eq!(final_rate(10.0, Some(10.0)), "10/s (--rate)");
        assert_eq!(
            final_rate(40.0, Some(100.0)),
            "40/s, lowered by 429s from --rate 100/s"
        );
        assert_eq!(final_rate(7.5, None), "7.5/s");
        assert_eq!(final_rate(0.0, Some(10.0)), "0/s");
    }

    #[test]
    fn tally_counts_and_exit_code() {
        let mut t = Tally::default();
        t.add(Status::Deleted);
        t.add(Status::Deleted);
        t.add(Status::Duplicate);
        assert_eq!(t.exit_code(), ExitCode::Success);
        t.add(Status::Skipped);
        assert_eq!(t.total(), 4);
        assert_eq!(t.failures(), 1);
        assert_eq!(t.exit_code(), ExitCode::RowFailures);
        assert_eq!(t.brief(), "deleted 2 · duplicate 1 · skipped 1");
    }

    fn printed(s: &Summary) -> String {
        let mut text = Vec::new();
        s.print(&mut text).unwrap();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn the_all_absent_note_counts_only_rows_checked() {
        let mut t = Tally::default();
        for _ in 0..3 {
            t.add(Status::Absent);
        }
        let s = Summary::new("run --dry-run", Path::new("i"), Path::new("r"), &t);
        assert!(printed(&s).contains("no row matched a credential on the tenant (all absent)"));
        for _ in 0..5 {
            t.add(Status::Skipped);
        }
        let text = printed(&Summary::new(
            "run --dry-run",
            Path::new("i"),
            Path::new("r"),
            &t,
        ));
        assert!(!text.contains("(all absent)"), "{text}");
        assert!(
            text.contains(
                "none of the 3 row(s) checked matched a credential on the tenant (the other 5"
            ),
            "{text}"
        );
        t.add(Status::WouldDelete);
        let text = printed(&Summary::new(
            "run --dry-run",
            Path::new("i"),
            Path::new("r"),
            &t,
        ));
        assert!(!text.contains("matched a credential"), "{text}");
    }

    #[test]
    fn summary_json_lists_every_status() {
        let mut t = Tally::default();
        t.add(Status::Deleted);
        let s = Summary::new("run", Path::new("in.csv"), Path::new("in.report.csv"), &t);
        let v: serde_json::Value = serde_json::from_slice(&s.to_json().unwrap()).unwrap();
        assert_eq!(v["statuses"]["deleted"], 1);
        assert_eq!(v["statuses"]["not_found"], 0);
        assert_eq!(v["exit_code"], 0);
        let mut text = Vec::new();
        s.print(&mut text).unwrap();
        assert!(
            String::from_utf8(text)
                .unwrap()
                .contains("deleted          1")
        );
    }
}
