//! The report file: created without clobbering, rows written as they finish and handed to the
//! OS at once, fsynced at least every second and at the end (docs/design.md#report-resume-lock).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::row::{COLUMNS, ReportRow};

/// How often buffered-to-OS rows are forced to disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct ReportWriter {
    path: PathBuf,
    csv: csv::Writer<File>,
    /// Rows written since the last flush to the OS.
    pending: bool,
    /// Rows handed to the OS since the last fsync.
    unsynced: bool,
    last_sync: Instant,
}

impl ReportWriter {
    /// Creates the report and writes its header. An existing file is refused unless
    /// `overwrite`, with a message that names the ways forward.
    pub(crate) fn create(path: &Path, overwrite: bool) -> anyhow::Result<ReportWriter> {
        let mut opts = OpenOptions::new();
        opts.write(true);
        if overwrite {
            opts.create(true).truncate(true);
        } else {
            opts.create_new(true);
        }
        // A symlink planted at the report's path is refused, not followed (create_new alone
        // refuses it too; --overwrite would otherwise truncate whatever it points at).
        let file = super::files::open_no_follow(&mut opts, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                anyhow::anyhow!("{}", existing_report_message(path))
            } else {
                anyhow::Error::new(e).context(format!("cannot create report {}", path.display()))
            }
        })?;
        let mut writer = ReportWriter::from_file(path, file);
        writer
            .csv
            .write_record(COLUMNS)
            .context("writing the report header")?;
        writer.flush()?;
        writer.sync()?;
        Ok(writer)
    }

    /// Reopens a report for `--resume`: cuts a damaged tail (a row half-written when the
    /// process died) at `complete_len`, then appends after it.
    pub(crate) fn append(path: &Path, complete_len: u64) -> anyhow::Result<ReportWriter> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot reopen report {} to resume", path.display()))?;
        file.set_len(complete_len)
            .with_context(|| format!("cannot trim the damaged end of report {}", path.display()))?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
        let mut writer = ReportWriter::from_file(path, file);
        writer.sync()?;
        Ok(writer)
    }

    fn from_file(path: &Path, file: File) -> ReportWriter {
        ReportWriter {
            path: path.to_path_buf(),
            csv: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(file),
            pending: false,
            unsynced: false,
            last_sync: Instant::now(),
        }
    }

    /// Buffers one row; `flush` hands buffered rows to the OS.
    pub(crate) fn write(&mut self, row: &ReportRow) -> anyhow::Result<()> {
        self.csv
            .write_record(row.to_record())
            .with_context(|| format!("writing report {}", self.path.display()))?;
        self.pending = true;
        Ok(())
    }

    /// Hands every buffered row to the OS (a crash of this process then loses none of them),
    /// and fsyncs when the last fsync is a second old.
    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending {
            self.csv
                .flush()
                .with_context(|| format!("writing report {}", self.path.display()))?;
            self.pending = false;
            self.unsynced = true;
        }
        if self.unsynced && self.last_sync.elapsed() >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Forces the rows handed to the OS onto the disk.
    pub(crate) fn sync(&mut self) -> anyhow::Result<()> {
        self.csv
            .flush()
            .with_context(|| format!("writing report {}", self.path.display()))?;
        self.csv
            .get_ref()
            .sync_data()
            .with_context(|| format!("syncing report {} to disk", self.path.display()))?;
        self.pending = false;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Flushes and fsyncs; the file is complete when this returns Ok.
    pub(crate) fn finish(mut self) -> anyhow::Result<()> {
        self.sync()
    }
}

/// The refusal for an existing report, pointing at the ways forward.
pub(crate) fn existing_report_message(path: &Path) -> String {
    format!(
        "report {} already exists, and reports are never overwritten silently. \
         Use --resume to continue the run that wrote it, --report PATH to write elsewhere, \
         or --overwrite to replace it.",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::status::Status;
    use proptest::prelude::*;
    use std::time::SystemTime;

    fn row(n: u64) -> ReportRow {
        ReportRow {
            row: n,
            line: n + 1,
            token: "014010008038".into(),
            device: "140100080".into(),
            user: "87927fb7-e185-4c33-c7e3-8e077675973c".into(),
            email: String::new(),
            status: Status::Deleted,
            http_status: Some(200),
            attempts: 1,
            lookup_status: None,
            lookups: 0,
            resolved: String::new(),
            error: String::new(),
            note: String::new(),
            finished_at: SystemTime::now(),
            elapsed_ms: Some(3),
        }
    }

    /// Any text a cell can hold: formula starters, quotes, delimiters, line breaks, control
    /// characters, apostrophes, non-ASCII.
    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            ".*",
            "[=+\\-@\t\r'\"][^\u{0}]{0,30}",
            "[,;\"\r\n ]{0,6}",
            Just(String::new()),
        ]
    }

    fn report_row() -> impl Strategy<Value = ReportRow> {
        (
            (any::<u64>(), any::<u64>(), cell(), cell(), cell(), cell()),
            (
                proptest::sample::select(Status::ALL.to_vec()),
                proptest::option::of(100u16..600),
                any::<u32>(),
                proptest::option::of(100u16..600),
                any::<u32>(),
                cell(),
            ),
            (
                cell(),
                cell(),
                0u64..253_402_300_799_000, // up to 9999-12-31, in ms
                proptest::option::of(any::<u64>()),
            ),
        )
            .prop_map(
                |(
                    (row, line, token, device, user, email),
                    (status, http, attempts, lookup_status, lookups, resolved),
                    (error, note, ms, el),
                )| {
                    ReportRow {
                        row,
                        line,
                        token,
                        device,
                        user,
                        email,
                        status,
                        http_status: http,
                        attempts,
                        lookup_status,
                        lookups,
                        resolved,
                        error,
                        note,
                        finished_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                        elapsed_ms: el,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Rows written through the real writer (file, flushes, fsync) read back identical, in
        /// order, and no cell in the file starts a spreadsheet formula.
        #[test]
        fn any_rows_written_to_the_file_read_back_identical(
            rows in proptest::collection::vec(report_row(), 0..20),
            flush_every in 1usize..5,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("r.csv");
            let mut w = ReportWriter::create(&path, false).unwrap();
            for (i, r) in rows.iter().enumerate() {
                w.write(r).unwrap();
                if i % flush_every == 0 {
                    w.flush().unwrap();
                }
            }
            w.finish().unwrap();

            let mut rdr = csv::Reader::from_path(&path).unwrap();
            prop_assert_eq!(rdr.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS.to_vec());
            let mut back = Vec::new();
            for rec in rdr.records() {
                let rec = rec.unwrap();
                for cell in rec.iter() {
                    prop_assert!(
                        !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                        "formula cell {:?}", cell
                    );
                }
                back.push(ReportRow::from_record(&rec).unwrap());
            }
            prop_assert_eq!(back, rows);
        }
    }

    #[test]
    fn rows_reach_the_file_on_flush_and_existing_reports_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = ReportWriter::create(&path, false).unwrap();
        w.write(&row(1)).unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "row,line,tokenSerialNumber,deviceSerialNumber,userId,email,status,httpStatus,attempts,lookupStatus,lookups,resolved,error,note,"
        ));
        assert!(text.contains("\n1,2,014010008038,140100080,"), "{text}");
        w.finish().unwrap();

        let err = ReportWriter::create(&path, false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("already exists") && err.contains("--overwrite"),
            "{err}"
        );
        let w = ReportWriter::create(&path, true).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
