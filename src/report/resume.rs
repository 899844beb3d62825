//! Reading an existing report back for `--resume` (docs/design.md#report-resume-lock): the
//! latest status of every row, keyed on row identity (row number and values), tolerant of a
//! partial last line after a crash.
//!
//! Memory is a few bytes per row (a status and four 32-bit fingerprints), never the rows.

use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, bail};

use super::row::{COLUMNS, ReportRow};
use super::status::Status;
use super::summary::Tally;
use crate::credential::email_key;
use crate::input::{InputRow, RowCheck};

/// The latest state of one row in the report.
#[derive(Clone, Copy, Debug)]
struct Entry {
    status: Status,
    token: u32,
    device: u32,
    user: u32,
    email: u32,
}

/// An existing report, read back.
#[derive(Debug)]
pub(crate) struct PriorReport {
    /// Indexed by `row - 1`; `None` for rows the report does not hold (yet).
    entries: Vec<Option<Entry>>,
    /// Bytes of the file that hold complete rows; a damaged tail beyond this is cut off
    /// before appending.
    complete_len: u64,
    /// Whether a damaged tail (a crash mid-write) was found.
    pub(crate) had_partial_tail: bool,
    pub(crate) n_report_rows: u64,
}

/// Rows of the input that a resumed run leaves alone.
#[derive(Clone, Debug, Default)]
pub(crate) struct RowSet {
    bits: Vec<u64>,
}

impl RowSet {
    pub(crate) fn insert(&mut self, row: u64) {
        let (word, bit) = ((row / 64) as usize, row % 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << bit;
    }

    pub(crate) fn contains(&self, row: u64) -> bool {
        let (word, bit) = ((row / 64) as usize, row % 64);
        self.bits.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }
}

/// What resuming will do, worked out before anything is sent.
#[derive(Debug)]
pub(crate) struct ResumePlan {
    /// Rows whose latest status is final: not sent, not written again.
    pub(crate) done: RowSet,
    /// Their statuses, for the summary of the whole job.
    pub(crate) carried: Tally,
    /// Valid rows that will be sent again (not final, or missing from the report).
    pub(crate) to_send: u64,
    pub(crate) to_send_needing_lookup: u64,
    /// Of those, rows naming no user (resolved by the device alone).
    pub(crate) to_send_naming_no_user: u64,
    /// Of those, rows naming the user by email.
    pub(crate) to_send_by_email: u64,
    /// Invalid and duplicate rows missing from the report (written, never sent).
    pub(crate) unsent_missing: u64,
    /// Rows missing from the report altogether (in flight at a crash, or never reached).
    pub(crate) missing: u64,
    pub(crate) complete_len: u64,
}

impl ResumePlan {
    pub(crate) fn rows_to_write(&self) -> u64 {
        self.to_send + self.unsent_missing
    }
}

fn fingerprint(s: &str) -> u32 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish() as u32
}

impl PriorReport {
    /// Reads `path`, refusing a file that is not a report of this tool or holds rows beyond
    /// `n_input_rows`.
    pub(crate) fn read(path: &Path, n_input_rows: u64) -> anyhow::Result<PriorReport> {
        let mut file = File::open(path).with_context(|| {
            format!(
                "nothing to resume: cannot open report {} — run without --resume to start, \
                 or pass --report with the report of the interrupted run",
                path.display()
            )
        })?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let ends_with_newline = file_len > 0 && {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            file.seek(SeekFrom::Start(0))?;
            last[0] == b'\n'
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::new(file));
        let not_ours = || {
            anyhow::anyhow!(
                "{} is not a report of ds100-offboard (its header is not {}); refusing to resume into it. \
                 Pass --report with the report of the interrupted run.",
                path.display(),
                COLUMNS.join(",")
            )
        };
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(true) if record.iter().eq(COLUMNS.iter().copied()) => {}
            _ => return Err(not_ours()),
        }
        let mut prior = PriorReport {
            entries: Vec::new(),
            complete_len: reader.position().byte(),
            had_partial_tail: false,
            n_report_rows: 0,
        };
        // A damaged record is only acceptable as the very last one (a crash mid-write).
        let mut damaged: Option<(u64, u64, String)> = None;
        loop {
            let start = reader.position().clone();
            let parsed = match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => ReportRow::from_record(&record),
                Err(e) => Err(e.to_string()),
            };
            if let Some((line, _, why)) = damaged.take() {
                bail!(
                    "report {} is damaged at line {line} ({why}), not at its end; \
                     it cannot be resumed safely. Check the file, or start a new report with --report.",
                    path.display()
                );
            }
            match parsed {
                Ok(row) => {
                    prior.add(&row, n_input_rows, path)?;
                    prior.complete_len = reader.position().byte();
                }
                Err(why) => damaged = Some((start.line(), start.byte(), why)),
            }
        }
        if let Some((_, start, _)) = damaged {
            prior.complete_len = start;
            prior.had_partial_tail = true;
        } else if !ends_with_newline && prior.complete_len > 0 && prior.n_report_rows > 0 {
            // The last row parsed but lost its line end: it may have lost characters too.
            prior.forget_last_row(path, n_input_rows)?;
        }
        Ok(prior)
    }

    fn add(&mut self, row: &ReportRow, n_input_rows: u64, path: &Path) -> anyhow::Result<()> {
        if row.row == 0 || row.row > n_input_rows {
            bail!(
                "report {} has row {} but the input has {n_input_rows} rows: it belongs to another input. \
                 Pass --report with the report of this input, or run without --resume.",
                path.display(),
                row.row
            );
        }
        let idx = (row.row - 1) as usize;
        if self.entries.len() <= idx {
            self.entries.resize(idx + 1, None);
        }
        self.entries[idx] = Some(Entry {
            status: row.status,
            token: fingerprint(&row.token),
            device: fingerprint(&row.device),
            user: fingerprint(&row.user.to_ascii_lowercase()),
            email: fingerprint(&email_key(&row.email)),
        });
        self.n_report_rows += 1;
        Ok(())
    }

    /// Re-reads the report up to its last line end, so that the unterminated last row is not
    /// counted (its row will be done again).
    fn forget_last_row(&mut self, path: &Path, n_input_rows: u64) -> anyhow::Result<()> {
        let file = File::open(path)?;
        let mut last_newline = 0u64;
        let mut pos = 0u64;
        let mut buf = [0u8; 64 * 1024];
        let mut r = BufReader::new(file);
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
                last_newline = pos + i as u64 + 1;
            }
            pos += n as u64;
        }
        let limited = File::open(path)?.take(last_newline);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(limited);
        let mut fresh = PriorReport {
            entries: Vec::new(),
            complete_len: last_newline,
            had_partial_tail: true,
            n_report_rows: 0,
        };
        for rec in reader.records() {
            // A quoted cell may hold a line end, so the cut can fall inside a record: that
            // record is the damaged tail and is dropped as well.
            match rec
                .map_err(|e| e.to_string())
                .and_then(|r| ReportRow::from_record(&r))
            {
                Ok(row) => fresh.add(&row, n_input_rows, path)?,
                Err(_) => break,
            }
        }
        *self = fresh;
        Ok(())
    }

    fn entry(&self, row: u64) -> Option<Entry> {
        self.entries
            .get((row.checked_sub(1)?) as usize)
            .copied()
            .flatten()
    }

    /// Checks one input row against what the report says of it: the device and the email
    /// always (the report holds the input's address, never a resolved one), the token and user
    /// where the input gives them (lookups may have filled them in). Invalid rows are compared
    /// as echoed (at most 64 characters), which is what `rows()` yields too.
    pub(crate) fn check_identity(&self, input: &InputRow) -> Result<(), String> {
        let Some(e) = self.entry(input.row) else {
            return Ok(());
        };
        let same = |given: &str, fp: u32| given.is_empty() || fingerprint(given) == fp;
        let cred = &input.credential;
        if fingerprint(&cred.device) != e.device
            || !same(&cred.token, e.token)
            || !same(&cred.user.to_ascii_lowercase(), e.user)
            || fingerprint(&email_key(&cred.email)) != e.email
        {
            let email = match cred.known_email() {
                Some(email) => format!(" (email {email})"),
                None => String::new(),
            };
            return Err(format!(
                "row {} (line {}) of the input is {}/{}/{}{email}, which is not what the report says of row {}",
                input.row, input.line, cred.token, cred.device, cred.user, input.row
            ));
        }
        Ok(())
    }

    /// Works out what a resumed run does with every input row. `final_status` says which
    /// statuses are finished in this mode.
    pub(crate) fn plan<I>(
        &self,
        rows: I,
        final_status: impl Fn(Status) -> bool,
        path: &Path,
    ) -> anyhow::Result<ResumePlan>
    where
        I: Iterator<Item = anyhow::Result<InputRow>>,
    {
        let mut plan = ResumePlan {
            done: RowSet::default(),
            carried: Tally::default(),
            to_send: 0,
            to_send_needing_lookup: 0,
            to_send_naming_no_user: 0,
            to_send_by_email: 0,
            unsent_missing: 0,
            missing: 0,
            complete_len: self.complete_len,
        };
        for item in rows {
            let row = item?;
            if let Err(why) = self.check_identity(&row) {
                bail!(
                    "report {} belongs to another input: {why}. Pass --report with the report of \
                     this input, or run without --resume.",
                    path.display()
                );
            }
            let entry = self.entry(row.row);
            if let Some(e) = entry
                && final_status(e.status)
            {
                plan.done.insert(row.row);
                plan.carried.add(e.status);
                continue;
            }
            if entry.is_none() {
                plan.missing += 1;
            }
            match row.check {
                RowCheck::Valid => {
                    plan.to_send += 1;
                    if row.needs_lookup() {
                        plan.to_send_needing_lookup += 1;
                    }
                    match (row.credential.user.is_empty(), row.credential.known_email()) {
                        (_, Some(_)) => plan.to_send_by_email += 1,
                        (true, None) => plan.to_send_naming_no_user += 1,
                        (false, None) => {}
                    }
                }
                RowCheck::Invalid { .. } | RowCheck::Duplicate { .. } => plan.unsent_missing += 1,
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::Credential;
    use crate::report::writer::ReportWriter;
    use std::io::Write;
    use std::time::SystemTime;

    fn rr(row: u64, status: Status) -> ReportRow {
        ReportRow {
            row,
            line: row + 1,
            token: format!("01401000{row:04}"),
            device: format!("1401{row:05}"),
            user: "87927fb7-e185-4c33-c7e3-8e077675973c".into(),
            email: String::new(),
            status,
            http_status: Some(200),
            attempts: 1,
            lookup_status: None,
            lookups: 0,
            resolved: String::new(),
            error: "a, \"quoted\" note".into(),
            note: String::new(),
            finished_at: SystemTime::now(),
            elapsed_ms: Some(5),
        }
    }

    fn input(row: u64) -> InputRow {
        let r = rr(row, Status::Deleted);
        InputRow {
            row,
            line: row + 1,
            credential: Credential::new(r.token, r.device, r.user),
            check: RowCheck::Valid,
        }
    }

    fn write_report(path: &Path, rows: &[ReportRow]) {
        let mut w = ReportWriter::create(path, true).unwrap();
        for r in rows {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn latest_row_wins_and_final_rows_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_report(
            &path,
            &[
                rr(2, Status::Failed),
                rr(1, Status::Deleted),
                rr(2, Status::Deleted),
                rr(3, Status::Skipped),
            ],
        );
        let prior = PriorReport::read(&path, 4).unwrap();
        assert!(!prior.had_partial_tail);
        let rows = (1..=4).map(|i| Ok(input(i)));
        let plan = prior.plan(rows, Status::is_final, &path).unwrap();
        assert!(plan.done.contains(1) && plan.done.contains(2));
        assert!(!plan.done.contains(3) && !plan.done.contains(4));
        assert_eq!(plan.to_send, 2);
        assert_eq!(plan.missing, 1);
        assert_eq!(plan.carried.get(Status::Deleted), 2);
    }

    #[test]
    fn a_partial_last_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_report(&path, &[rr(1, Status::Deleted), rr(2, Status::Deleted)]);
        let full = std::fs::read(&path).unwrap();
        for cut in 1..40 {
            std::fs::write(&path, &full[..full.len() - cut]).unwrap();
            let prior = PriorReport::read(&path, 2).unwrap();
            assert!(prior.had_partial_tail, "cut {cut}");
            let plan = prior
                .plan((1..=2).map(|i| Ok(input(i))), Status::is_final, &path)
                .unwrap();
            assert!(plan.done.contains(1) && !plan.done.contains(2), "cut {cut}");
            let kept = &full[..plan.complete_len as usize];
            assert!(kept.ends_with(b"\n"), "cut {cut}");
        }
    }

    #[test]
    fn damage_in_the_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_report(&path, &[rr(1, Status::Deleted)]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(f, "2,3,garbage").unwrap();
        writeln!(f, "{}", rr(3, Status::Deleted).to_record().join(",")).unwrap();
        drop(f);
        let err = PriorReport::read(&path, 3).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn foreign_files_and_foreign_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "a,b,c\n1,2,3\n").unwrap();
        assert!(
            PriorReport::read(&path, 5)
                .unwrap_err()
                .to_string()
                .contains("not a report")
        );
        write_report(&path, &[rr(1, Status::Deleted), rr(9, Status::Deleted)]);
        assert!(
            PriorReport::read(&path, 5)
                .unwrap_err()
                .to_string()
                .contains("another input")
        );
        let prior = PriorReport::read(&path, 9).unwrap();
        let mut other = input(1);
        other.credential.device = "999999999".into();
        let err = prior
            .plan(std::iter::once(Ok(other)), Status::is_final, &path)
            .unwrap_err();
        assert!(err.to_string().contains("another input"), "{err}");
        // A row resolved by lookup: the input's empty token matches whatever was resolved.
        let mut resolved = input(1);
        resolved.credential.token.clear();
        assert!(prior.check_identity(&resolved).is_ok());
        // The email is the input's, never resolved: it must be the report's (in any case).
        let mut emailed = input(1);
        emailed.credential.email = "ann@acme.com".into();
        assert!(prior.check_identity(&emailed).is_err());
        let mut rows = vec![rr(1, Status::Failed)];
        rows[0].email = "Ann@Acme.com".into();
        rows[0].resolved = "userId".into();
        write_report(&path, &rows);
        let prior = PriorReport::read(&path, 9).unwrap();
        let mut by_email = input(1);
        by_email.credential.user.clear();
        by_email.credential.email = "ann@acme.COM".into();
        assert!(prior.check_identity(&by_email).is_ok());
        by_email.credential.email = "bob@acme.com".into();
        let err = prior.check_identity(&by_email).unwrap_err();
        assert!(err.contains("(email bob@acme.com)"), "{err}");
        by_email.credential.email.clear();
        assert!(prior.check_identity(&by_email).is_err());
    }

    #[test]
    fn row_sets() {
        let mut s = RowSet::default();
        s.insert(1);
        s.insert(200);
        assert!(s.contains(1) && s.contains(200) && !s.contains(2) && !s.contains(100_000));
    }
}
