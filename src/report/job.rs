//! A whole job read back from its report (one command or many: a resumed report holds several
//! lines per row, the latest line per row wins) and its sidecar, for `report`.
//!
//! Memory stays at a few bytes per row whatever the report's size: the first pass keeps, per
//! row, the latest status (1 byte) and the byte offset of the latest line (8 bytes); rows are
//! read again from those offsets only when they are needed (the compact report, the page's
//! table of rows needing attention).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::meta::{Invocation, ReportMeta};
use super::row::{COLUMNS, ReportRow};
use super::status::Status;
use super::summary::Tally;
use super::summary_json::{self, InvocationDoc, SummaryDoc, rfc3339};
use super::timeline::{Spans, Timeline};
use crate::exit_codes::ExitCode;

/// No latest status (the row has no line in the report).
const NONE: u8 = u8::MAX;

/// How far a row number may run ahead of the lines read so far. The tool writes rows in
/// completion order, close to input order, so a row far beyond the lines before it is not
/// one of its reports; without this bound one line naming row 4,000,000,000 would cost
/// gigabytes of per-row state.
const ROW_LEAD: u64 = 1_000_000;

/// What the report's last line looked like, when it was not a complete line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DamagedTail {
    /// The file line it starts on.
    pub(crate) line: u64,
    /// The row it names, when that much of it can be read.
    pub(crate) row: Option<u64>,
    pub(crate) why: String,
}

/// A report, read once: per-row latest statuses and where their lines are.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) path: PathBuf,
    /// The sidecar, when there is a usable one.
    pub(crate) meta: Option<ReportMeta>,
    /// Why the sidecar could not be used, when there is one.
    pub(crate) meta_problem: Option<String>,
    /// Per row (`row - 1`): the byte offset of its latest complete line; 0 when none.
    offsets: Vec<u64>,
    /// Per row: the latest status's index; `NONE` when the row has no line.
    statuses: Vec<u8>,
    /// Latest status per row.
    pub(crate) tally: Tally,
    /// Input rows of the job: the sidecar's count, or the highest row the report names.
    pub(crate) n_rows: u64,
    /// Complete lines below the header (several per row after a resume).
    pub(crate) n_lines: u64,
    pub(crate) damaged_tail: Option<DamagedTail>,
    /// The first row's start (finishedAt − elapsedMs) and the last row's end.
    pub(crate) first_start: Option<SystemTime>,
    pub(crate) last_finish: Option<SystemTime>,
    /// When lines finished, grouped into stretches of activity.
    pub(crate) spans: Spans,
    /// The SHA-256 of the report file as read (lowercase hex), and its size.
    pub(crate) sha256: String,
    pub(crate) size: u64,
    /// The file starts with a UTF-8 byte-order mark, which the tool never writes: another
    /// program (a spreadsheet, which also drops leading zeros) saved it again.
    pub(crate) resaved: bool,
}

/// Hashes everything read through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The refusal for a file that is not a report of this tool (exit 2).
fn not_a_report(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is not a report of {} ({why}). A report starts with the header {}; pass the report \
         a run, a dry run or validate wrote (e.g. leavers.report.csv).",
        path.display(),
        env!("CARGO_PKG_NAME"),
        COLUMNS.join(",")
    )
}

impl Job {
    /// Reads the report at `path` and its sidecar. `Err` for a file that is not a report of
    /// this tool, or one damaged anywhere but its last line.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Job> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta_md = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if !meta_md.is_file() {
            bail!("{} is not a file", path.display());
        }
        let (meta, meta_problem) = match ReportMeta::read_if_present(path) {
            Ok(m) => (m, None),
            Err(why) => (None, Some(why)),
        };
        let mut hashing = Hashing {
            inner: file,
            hash: Sha256::new(),
        };
        let mut job = Job {
            path: path.to_path_buf(),
            meta,
            meta_problem,
            offsets: Vec::new(),
            statuses: Vec::new(),
            tally: Tally::default(),
            n_rows: 0,
            n_lines: 0,
            damaged_tail: None,
            first_start: None,
            last_finish: None,
            spans: Spans::default(),
            sha256: String::new(),
            size: 0,
            resaved: false,
        };
        let ends_with_newline;
        {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&mut hashing);
            let mut record = csv::StringRecord::new();
            match reader.read_record(&mut record) {
                Ok(true) if record.iter().eq(COLUMNS.iter().copied()) => {}
                Ok(true) => {
                    let header: Vec<&str> = record.iter().take(4).collect();
                    let resaved = record
                        .iter()
                        .map(str::to_ascii_lowercase)
                        .eq(COLUMNS.iter().map(|c| c.to_ascii_lowercase()));
                    let hint = if resaved {
                        "; it looks like a report saved again by a spreadsheet, which also \
                         drops leading zeros: use the file the tool wrote"
                    } else {
                        ""
                    };
                    return Err(not_a_report(
                        path,
                        &format!("its header starts {}{hint}", visible(&header.join(","))),
                    ));
                }
                Ok(false) => return Err(not_a_report(path, "it is empty")),
                Err(e) => return Err(not_a_report(path, &format!("its first line: {e}"))),
            }
            // The last line is held back until the next one (or the end) shows it was
            // complete: a line cut short by a crash may still parse.
            let mut pending: Option<(ReportRow, u64)> = None;
            let mut damaged: Option<DamagedTail> = None;
            loop {
                let start = reader.position().clone();
                let parsed = match reader.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => ReportRow::from_record(&record).map_err(|why| {
                        // A cut line may still name its row: the row is then known to exist.
                        (why, record.get(0).and_then(|r| r.parse::<u64>().ok()))
                    }),
                    Err(e) => Err((e.to_string(), None)),
                };
                if let Some(d) = damaged.take() {
                    bail!(
                        "{} is damaged at line {} ({}), not at its end: it cannot be read as a \
                         record of the job. Check the file (a copy that was edited by hand?), \
                         or ask for the original.",
                        path.display(),
                        d.line,
                        d.why
                    );
                }
                if let Some((row, offset)) = pending.take() {
                    job.add(row, offset)?;
                }
                match parsed {
                    Ok(row) => pending = Some((row, start.byte())),
                    Err((why, row)) => {
                        damaged = Some(DamagedTail {
                            line: start.line(),
                            row,
                            why,
                        })
                    }
                }
            }
            job.size = reader.position().byte();
            ends_with_newline = last_byte(path, job.size)? == Some(b'\n');
            match (pending, damaged) {
                (_, Some(d)) => job.damaged_tail = Some(d),
                (Some((row, offset)), None) if ends_with_newline => job.add(row, offset)?,
                (Some((row, offset)), None) => {
                    job.damaged_tail = Some(DamagedTail {
                        line: line_of(path, offset)?,
                        row: Some(row.row),
                        why: format!(
                            "row {} has no line end, so it may be cut short (a run killed while \
                             writing it)",
                            row.row
                        ),
                    })
                }
                (None, None) => {}
            }
        }
        job.sha256 = hex(&hashing.hash.finalize());
        job.resaved = first_bytes(path)?.starts_with(b"\xef\xbb\xbf");
        // A row whose only line is the damaged one still exists: it counts as having no line.
        let damaged_row = job
            .damaged_tail
            .as_ref()
            .and_then(|d| d.row)
            .filter(|&r| r <= job.n_lines + ROW_LEAD)
            .unwrap_or(0);
        let max_row = (job.statuses.len() as u64).max(damaged_row);
        let input_rows = job.meta.as_ref().and_then(|m| m.input_rows).unwrap_or(0);
        let mut job = job.finish();
        if job.rows_from_report() {
            // Row numbers are the input report's, with gaps: only the count says what is
            // missing (docs/design.md#a-report-as-input).
            let damaged_new = damaged_row > 0 && job.status(damaged_row).is_none();
            job.n_rows = (job.tally.total() + u64::from(damaged_new)).max(input_rows);
        } else {
            job.n_rows = max_row.max(input_rows);
        }
        Ok(job)
    }

    /// Whether the job read one of the tool's reports as input: its row numbers are that
    /// report's, so a gap between them is no missing row.
    pub(crate) fn rows_from_report(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.input_report.is_some())
    }

    fn add(&mut self, row: ReportRow, offset: u64) -> anyhow::Result<()> {
        // Not the sidecar's row count: a sidecar is as easy to edit as the report, and the
        // bound is what keeps the per-row state small.
        let limit = self.n_lines + ROW_LEAD;
        if row.row == 0 || row.row > limit {
            return Err(not_a_report(
                &self.path,
                &format!(
                    "line {} names row {}, far beyond the {} lines before it",
                    self.n_lines + 2,
                    row.row,
                    self.n_lines
                ),
            ));
        }
        let idx = usize::try_from(row.row - 1).context("row number out of range")?;
        if self.statuses.len() <= idx {
            self.statuses.resize(idx + 1, NONE);
            self.offsets.resize(idx + 1, 0);
        }
        self.statuses[idx] = row.status.index() as u8;
        self.offsets[idx] = offset;
        self.n_lines += 1;
        let finished = row.finished_at;
        let started = finished
            .checked_sub(Duration::from_millis(row.elapsed_ms.unwrap_or(0)))
            .unwrap_or(finished);
        self.first_start = Some(self.first_start.map_or(started, |t| t.min(started)));
        self.last_finish = Some(self.last_finish.map_or(finished, |t| t.max(finished)));
        // Only rows that sent something are work over time; rows never sent (invalid,
        // duplicate, skipped) finish in a burst and say nothing about the pace.
        if row.requests() > 0 {
            self.spans.add(millis(finished));
        }
        Ok(())
    }

    /// Counts the latest status of every row (after the first pass).
    fn finish(mut self) -> Job {
        let mut tally = Tally::default();
        for &s in &self.statuses {
            if let Some(status) = Status::ALL.get(usize::from(s)) {
                tally.add(*status);
            }
        }
        self.tally = tally;
        self
    }

    /// Input rows with no line in the report.
    pub(crate) fn n_missing(&self) -> u64 {
        self.n_rows - self.tally.total()
    }

    /// Rows needing attention: latest status not ok, or no line at all.
    pub(crate) fn n_attention(&self) -> u64 {
        self.tally.failures() + self.n_missing()
    }

    /// The latest status of `row`, `None` when it has no line.
    pub(crate) fn status(&self, row: u64) -> Option<Status> {
        let idx = usize::try_from(row.checked_sub(1)?).ok()?;
        Status::ALL
            .get(usize::from(*self.statuses.get(idx)?))
            .copied()
    }

    /// Up to `limit` ranges of rows with no line, in row order (`first..=last`). None when the
    /// job's input was a report: its row numbers have gaps, which are no missing rows.
    pub(crate) fn missing_ranges(&self, limit: usize) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        if self.rows_from_report() {
            return out;
        }
        let push = |out: &mut Vec<(u64, u64)>, first: u64, last: u64| -> bool {
            if let Some(prev) = out.last_mut()
                && prev.1 + 1 == first
            {
                prev.1 = last;
            } else if out.len() == limit {
                return false;
            } else {
                out.push((first, last));
            }
            true
        };
        let seen = self.statuses.len() as u64;
        for row in 1..=seen {
            if self.status(row).is_none() && !push(&mut out, row, row) {
                return out;
            }
        }
        // Rows beyond the last one the report names are one range, however many there are.
        if self.n_rows > seen {
            push(&mut out, seen + 1, self.n_rows);
        }
        out
    }

    /// A reader positioned on the report's lines, for reading rows again by offset. Refuses
    /// a report that changed in a way that moves lines (it may only have grown: a run still
    /// appending to it).
    fn reopen(&self) -> anyhow::Result<csv::Reader<File>> {
        let file = File::open(&self.path)
            .with_context(|| format!("cannot open {} again", self.path.display()))?;
        let len = file.metadata()?.len();
        if len < self.size {
            bail!(
                "{} changed while it was read (it is now shorter); read it again",
                self.path.display()
            );
        }
        Ok(csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(16 * 1024)
            .from_reader(file))
    }

    /// Reads the line at `offset` and checks it is still the line of `row` it was.
    fn read_at(
        &self,
        reader: &mut csv::Reader<File>,
        row: u64,
        offset: u64,
        record: &mut csv::StringRecord,
    ) -> anyhow::Result<ReportRow> {
        let mut pos = csv::Position::new();
        pos.set_byte(offset);
        reader.seek(pos)?;
        let changed = || {
            anyhow::anyhow!(
                "{} changed while it was read (row {row} is no longer where it was); read it again",
                self.path.display()
            )
        };
        if !reader.read_record(record).map_err(|_| changed())? {
            return Err(changed());
        }
        match ReportRow::from_record(record) {
            Ok(r) if r.row == row && self.status(row) == Some(r.status) => Ok(r),
            _ => Err(changed()),
        }
    }

    /// Calls `visit` with the latest line of every row that has one, in row order, as the
    /// report holds it (cells still escaped) and parsed.
    pub(crate) fn for_each_latest(
        &self,
        mut visit: impl FnMut(&csv::StringRecord, &ReportRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut reader = self.reopen()?;
        let mut record = csv::StringRecord::new();
        for (i, &offset) in self.offsets.iter().enumerate() {
            if offset == 0 {
                continue;
            }
            let row = self.read_at(&mut reader, i as u64 + 1, offset, &mut record)?;
            visit(&record, &row)?;
        }
        Ok(())
    }

    /// The first `limit` rows (in row order) whose latest status needs attention.
    pub(crate) fn attention_rows(&self, limit: usize) -> anyhow::Result<Vec<ReportRow>> {
        let mut reader = self.reopen()?;
        let mut record = csv::StringRecord::new();
        let mut out = Vec::new();
        for (i, (&offset, &s)) in self.offsets.iter().zip(&self.statuses).enumerate() {
            if out.len() == limit {
                break;
            }
            let needs = Status::ALL.get(usize::from(s)).is_some_and(|s| !s.is_ok());
            if offset != 0 && needs {
                out.push(self.read_at(&mut reader, i as u64 + 1, offset, &mut record)?);
            }
        }
        Ok(out)
    }

    /// Every complete line of a row that sent a request (superseded ones too: they are work
    /// that was done) binned by when it finished, in at most about `max_bins` bins; and the
    /// lines of rows that sent nothing, per status.
    pub(crate) fn timeline(&self, max_bins: usize) -> anyhow::Result<(Timeline, Tally)> {
        let mut timeline = Timeline::new(&self.spans, max_bins);
        let mut unsent = Tally::default();
        let mut reader = self.reopen()?;
        let mut record = csv::StringRecord::new();
        // The header, then exactly the lines the first pass counted.
        reader.read_record(&mut record)?;
        for _ in 0..self.n_lines {
            if !reader.read_record(&mut record)? {
                break;
            }
            if let Ok(row) = ReportRow::from_record(&record) {
                if row.requests() == 0 {
                    unsent.add(row.status);
                    continue;
                }
                timeline.add(
                    millis(row.finished_at),
                    row.status.is_ok(),
                    row.attempts > 1,
                );
            }
        }
        Ok((timeline, unsent))
    }
}

impl Job {
    /// The exit code `report` gives: 0 when every row's latest status is ok, else 1.
    pub(crate) fn exit_code(&self) -> ExitCode {
        // A report without a row shows nothing done: not a success, as a run of a file
        // without rows is not one.
        if self.n_attention() == 0 && self.n_rows > 0 {
            ExitCode::Success
        } else {
            ExitCode::RowFailures
        }
    }

    /// The last command the sidecar recorded.
    pub(crate) fn last_invocation(&self) -> Option<&Invocation> {
        self.meta.as_ref().and_then(|m| m.invocations.last())
    }

    /// When the job started: the sidecar's record, else the first row's first request.
    pub(crate) fn started_at(&self) -> Option<String> {
        match &self.meta {
            Some(m) => Some(m.started_at.clone()),
            None => self.first_start.map(rfc3339),
        }
    }

    /// When the job last did something: its last recorded command's end or its last row,
    /// whichever is later (a command killed before it could record itself left rows).
    pub(crate) fn finished_at(&self) -> Option<String> {
        let recorded = self
            .last_invocation()
            .and_then(|i| humantime::parse_rfc3339_weak(&i.finished_at).ok());
        let latest = match (recorded, self.last_finish) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        latest.map(rfc3339)
    }

    /// The whole job's summary JSON (`report --json`).
    pub(crate) fn to_doc(&self) -> SummaryDoc {
        let meta = self.meta.as_ref();
        let last = self.last_invocation();
        let path = self
            .path
            .canonicalize()
            .unwrap_or_else(|_| self.path.clone());
        SummaryDoc {
            schema: summary_json::SCHEMA,
            tool: env!("CARGO_PKG_NAME"),
            tool_version: env!("CARGO_PKG_VERSION"),
            command: "report".to_string(),
            mode: meta.map(|m| m.mode.as_str().to_string()),
            tenant: meta.and_then(|m| m.tenant.clone()),
            identity: meta.and_then(|m| m.identity.clone()),
            input: meta.map(|m| m.input.clone()),
            input_sha256: meta.and_then(|m| m.input_sha256.clone()),
            report: path.to_string_lossy().into_owned(),
            started_at: self.started_at(),
            finished_at: self.finished_at(),
            rows: self.n_rows,
            statuses: Status::ALL
                .into_iter()
                .map(|s| (s.as_str(), self.tally.get(s)))
                .collect(),
            ok: self.tally.total() - self.tally.failures(),
            failures: self.tally.failures(),
            rows_missing: self.n_missing(),
            stopped: last.and_then(|i| i.stopped.clone()),
            resume_command: None,
            exit_code: self.exit_code().code(),
            invocation: last.map_or_else(InvocationDoc::default, |i| InvocationDoc {
                command: Some(i.command.clone()),
                started_at: Some(i.started_at.clone()),
                finished_at: Some(i.finished_at.clone()),
                elapsed_seconds: i.elapsed_seconds,
                rows_sent: i.rows_sent,
                rows_carried_over: i.rows_carried_over,
                requests_sent: i.requests_sent,
                throttled_429: i.throttled_429,
                rate_per_second: i.rate_per_second,
                final_rate_per_second: i.final_rate_per_second,
            }),
        }
    }
}

/// What to do about a row with this latest status (`None`: the row has no line).
pub(crate) fn fix_for(status: Option<Status>) -> &'static str {
    match status {
        None => {
            "No line in the report (a run was killed before it wrote the row): resume with \
             --resume; it sends exactly the rows the report does not account for."
        }
        Some(Status::Mismatch) => {
            "The device holds a credential for another user or another token serial (or the \
             row's userId and email name two users); nothing was changed. Check the HR file's \
             userId, email and tokenSerialNumber for this device (and leading zeros) against \
             the tenant before sending the row again."
        }
        Some(Status::Ambiguous) => {
            "Several credentials fit the row; nothing was changed. Add the tokenSerialNumber \
             and userId so the row names exactly one, then send it in a new file."
        }
        Some(Status::NotFound) => {
            "A 404 no lookup could explain, or an email address no user has. Check the serials \
             for lost leading zeros (import the file as text), the address for a typo or an old \
             address, and that the key may read (lookup); then resume with --resume."
        }
        Some(Status::Invalid) => {
            "Never sent: the value named in the error is malformed. Fix the row in the input \
             and send it in a new file (a resume does not send invalid rows again)."
        }
        Some(Status::Unauthorized) => {
            "The tenant refused the credentials even after a fresh token. Check the key's role, \
             expiry and tenant, then resume with --resume."
        }
        Some(Status::Failed) => {
            "Read the error. After a transient cause (5xx, timeouts, resets) resume with \
             --resume; after an answer that is not the API's (an HTML page) check --base-url \
             and what sits in front of the tenant first."
        }
        Some(Status::Skipped) => {
            "Never attempted: the run stopped first (safety stop or Ctrl-C). Resume with \
             --resume."
        }
        Some(_) => "Nothing to do.",
    }
}

/// `s` with control and bidirectional-formatting characters written as `\u{…}`: report cells
/// and sidecar fields are shown on terminals and pages, and such characters could hide or
/// reorder what is shown (an escape sequence, a right-to-left override).
pub(crate) fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The first three bytes of `path` (fewer in a shorter file).
fn first_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(3);
    File::open(path)?.take(3).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The byte at `len - 1` of `path`, if any.
fn last_byte(path: &Path, len: u64) -> anyhow::Result<Option<u8>> {
    if len == 0 {
        return Ok(None);
    }
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(len - 1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(Some(b[0]))
}

/// The 1-based file line that byte `offset` of `path` is on.
fn line_of(path: &Path, offset: u64) -> anyhow::Result<u64> {
    let mut f = File::open(path)?.take(offset);
    let mut buf = [0u8; 64 * 1024];
    let mut lines = 1;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::writer::ReportWriter;
    use std::io::Write;

    fn rr(row: u64, status: Status) -> ReportRow {
        ReportRow {
            row,
            line: row + 1,
            token: format!("0140100{row:05}"),
            device: format!("1401{row:05}"),
            user: "87927fb7-e185-4c33-c7e3-8e077675973c".into(),
            email: String::new(),
            status,
            http_status: Some(200),
            attempts: 1,
            lookup_status: None,
            lookups: 0,
            resolved: String::new(),
            error: if status.is_ok() {
                String::new()
            } else {
                "=HYPERLINK(\"x\"), <b>".into()
            },
            note: String::new(),
            finished_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000 + row),
            elapsed_ms: Some(5),
        }
    }

    fn write_report(path: &Path, rows: &[ReportRow]) {
        let mut w = ReportWriter::create(path, true).unwrap();
        for r in rows {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
    }

    fn read(path: &Path) -> anyhow::Result<Job> {
        Job::read(path)
    }

    #[test]
    fn the_latest_line_per_row_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_report(
            &path,
            &[
                rr(2, Status::Failed),
                rr(1, Status::Deleted),
                rr(3, Status::Skipped),
                rr(2, Status::Deleted),
                rr(5, Status::Mismatch),
            ],
        );
        let job = read(&path).unwrap();
        assert_eq!(job.n_lines, 5);
        assert_eq!(job.n_rows, 5);
        assert_eq!(job.tally.get(Status::Deleted), 2);
        assert_eq!(job.tally.get(Status::Failed), 0);
        assert_eq!(job.n_missing(), 1);
        assert_eq!(job.missing_ranges(10), [(4, 4)]);
        assert_eq!(job.n_attention(), 3);
        let mut order = Vec::new();
        job.for_each_latest(|rec, row| {
            order.push((row.row, row.status, rec[12].to_string()));
            Ok(())
        })
        .unwrap();
        let rows: Vec<_> = order.iter().map(|(r, s, _)| (*r, *s)).collect();
        assert_eq!(
            rows,
            [
                (1, Status::Deleted),
                (2, Status::Deleted),
                (3, Status::Skipped),
                (5, Status::Mismatch)
            ]
        );
        // The escaped cell as the report holds it.
        assert!(order[3].2.starts_with("'="), "{order:?}");
        let attention = job.attention_rows(1).unwrap();
        assert_eq!(attention.len(), 1);
        assert_eq!(attention[0].row, 3);
        let (t, unsent) = job.timeline(100).unwrap();
        assert_eq!(unsent.total(), 0);
        assert_eq!(
            t.segments
                .iter()
                .flat_map(|s| &s.bins)
                .map(|b| b.total())
                .sum::<u32>(),
            5
        );
        assert_eq!(job.sha256.len(), 64);
    }

    #[test]
    fn a_damaged_last_line_is_left_out_and_damage_before_it_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_report(&path, &[rr(1, Status::Failed), rr(1, Status::Deleted)]);
        let full = std::fs::read(&path).unwrap();
        for cut in 1..60 {
            std::fs::write(&path, &full[..full.len() - cut]).unwrap();
            let job = read(&path).unwrap();
            assert!(job.damaged_tail.is_some(), "cut {cut}");
            // The earlier, complete line of the row stands.
            assert_eq!(job.status(1), Some(Status::Failed), "cut {cut}");
            assert_eq!(job.n_lines, 1);
        }
        // A row whose only line is cut is a row without a line, not a row less.
        write_report(&path, &[rr(1, Status::Deleted), rr(2, Status::Deleted)]);
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 30]).unwrap();
        let job = read(&path).unwrap();
        assert_eq!((job.n_rows, job.n_missing()), (2, 1));
        assert_eq!(job.exit_code(), ExitCode::RowFailures);
        write_report(&path, &[rr(1, Status::Deleted)]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "2,3,garbage").unwrap();
        writeln!(f, "{}", rr(3, Status::Deleted).to_record().join(",")).unwrap();
        drop(f);
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("damaged at line 3"), "{err}");
    }

    #[test]
    fn hidden_characters_are_shown() {
        assert_eq!(visible("plain 014010008038"), "plain 014010008038");
        assert_eq!(visible("a\u{1b}[31mb"), "a\\u{001b}[31mb");
        assert_eq!(visible("x\u{202e}y\nz"), "x\\u{202e}y\\u{000a}z");
    }

    #[test]
    fn other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        for (content, why) in [
            ("", "empty"),
            (
                "tokenSerialNumber,deviceSerialNumber,userId\n1,2,3\n",
                "header starts",
            ),
            ("\u{feff}row,line\n", "header starts"),
        ] {
            std::fs::write(&path, content).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains("not a report") && err.contains(why), "{err}");
        }
        write_report(
            &path,
            &[rr(1, Status::Deleted), rr(4_000_000_000, Status::Deleted)],
        );
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("far beyond"), "{err}");
        std::fs::write(&path, COLUMNS.join(",").to_uppercase()).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("ROW,LINE") && err.contains("spreadsheet"),
            "{err}"
        );
        // The csv reader takes a byte-order mark in its stride; the tool never writes one.
        std::fs::write(&path, format!("\u{feff}{}\n", COLUMNS.join(","))).unwrap();
        assert!(read(&path).unwrap().resaved);
    }

    #[test]
    fn rows_without_a_line_are_ranges_however_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_report(&path, &[rr(2, Status::Deleted), rr(5, Status::Deleted)]);
        let mut job = read(&path).unwrap();
        assert_eq!(job.missing_ranges(10), [(1, 1), (3, 4)]);
        // A sidecar claiming a huge input costs nothing: the rest is one range.
        job.n_rows = 1_000_000_000_000;
        assert_eq!(
            job.missing_ranges(10),
            [(1, 1), (3, 4), (6, 1_000_000_000_000)]
        );
        assert_eq!(job.missing_ranges(1), [(1, 1)]);
        job.n_rows = 6;
        assert_eq!(job.missing_ranges(10), [(1, 1), (3, 4), (6, 6)]);
    }
}
