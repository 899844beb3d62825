//! One report row: its columns, the spreadsheet-formula escaping, and reading back.
//!
//! Each column says one thing: `httpStatus`/`attempts` are about the row's change request
//! (the DELETE, or the PATCH of `disable`/`enable`) only, `lookupStatus`/`lookups` about the lookups spent on it; `error` is
//! empty exactly when the row needs no attention, and information goes to `note`.

use std::time::SystemTime;

use super::status::Status;
use crate::input::InputRow;

/// The report's columns, in order (defined in `columns`, which the input reader uses too).
pub use super::columns::COLUMNS;

/// The requests spent on one row, as the report counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spent {
    /// The answer to the row's change request (DELETE or PATCH); `None` when none was sent.
    pub(crate) change_status: Option<u16>,
    /// Change requests sent, retries included.
    pub(crate) changes: u32,
    /// The answer to the row's last lookup; `None` when none was sent.
    pub(crate) lookup_status: Option<u16>,
    /// Lookups sent, retries included.
    pub(crate) lookups: u32,
    /// From the first request to the final answer; `None` when nothing was sent.
    pub(crate) elapsed_ms: Option<u64>,
}

impl Spent {
    /// Requests of any kind.
    pub(crate) fn requests(&self) -> u32 {
        self.changes + self.lookups
    }
}

/// The outcome of one input row as the report records it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    pub row: u64,
    pub line: u64,
    pub token: String,
    pub device: String,
    pub user: String,
    pub email: String,
    pub status: Status,
    /// The answer to the row's change request; `None` when none was sent.
    pub http_status: Option<u16>,
    /// Change requests sent for the row, retries included.
    pub attempts: u32,
    /// The answer to the last lookup; `None` when none was sent.
    pub lookup_status: Option<u16>,
    pub lookups: u32,
    /// The fields a lookup filled in, e.g. `tokenSerialNumber;userId`.
    pub resolved: String,
    /// Why the row needs attention; empty when it does not.
    pub error: String,
    /// Information that needs no action.
    pub note: String,
    pub finished_at: SystemTime,
    /// From the first request to the final answer; `None` when nothing was sent.
    pub elapsed_ms: Option<u64>,
}

impl ReportRow {
    /// The report row of an input row after the requests spent on it, finished now. `detail`
    /// goes to `error` when the status needs attention, to `note` when it does not.
    pub(crate) fn finished(
        input: InputRow,
        status: Status,
        detail: String,
        spent: Spent,
    ) -> ReportRow {
        let (error, note) = if status.is_ok() {
            (String::new(), detail)
        } else {
            (detail, String::new())
        };
        ReportRow {
            row: input.row,
            line: input.line,
            token: input.credential.token,
            device: input.credential.device,
            user: input.credential.user,
            email: input.credential.email,
            status,
            http_status: spent.change_status,
            attempts: spent.changes,
            lookup_status: spent.lookup_status,
            lookups: spent.lookups,
            resolved: String::new(),
            error,
            note,
            finished_at: SystemTime::now(),
            elapsed_ms: spent.elapsed_ms,
        }
    }

    /// The report row of an input row that got no request.
    pub(crate) fn unsent(input: InputRow, status: Status, detail: String) -> ReportRow {
        ReportRow::finished(input, status, detail, Spent::default())
    }

    /// Requests of any kind spent on the row.
    pub fn requests(&self) -> u32 {
        self.attempts + self.lookups
    }

    /// The cells, escaped, in column order.
    pub fn to_record(&self) -> [String; COLUMNS.len()] {
        let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        [
            self.row.to_string(),
            self.line.to_string(),
            escape_cell(&self.token),
            escape_cell(&self.device),
            escape_cell(&self.user),
            escape_cell(&self.email),
            self.status.as_str().to_string(),
            opt(self.http_status.map(u64::from)),
            self.attempts.to_string(),
            opt(self.lookup_status.map(u64::from)),
            self.lookups.to_string(),
            escape_cell(&self.resolved),
            escape_cell(&self.error),
            escape_cell(&self.note),
            humantime::format_rfc3339_millis(self.finished_at).to_string(),
            opt(self.elapsed_ms),
        ]
    }

    /// Parses a record written by `to_record` (the resume reader and the tests use it).
    pub fn from_record(rec: &csv::StringRecord) -> Result<ReportRow, String> {
        if rec.len() != COLUMNS.len() {
            return Err(format!(
                "expected {} columns, found {}",
                COLUMNS.len(),
                rec.len()
            ));
        }
        let num = |i: usize| -> Result<u64, String> {
            rec[i]
                .parse()
                .map_err(|_| format!("{} is not a number: '{}'", COLUMNS[i], &rec[i]))
        };
        let opt = |i: usize| -> Result<Option<u64>, String> {
            if rec[i].is_empty() {
                Ok(None)
            } else {
                num(i).map(Some)
            }
        };
        let status_code = |i: usize| -> Result<Option<u16>, String> {
            opt(i)?
                .map(|s| u16::try_from(s).map_err(|_| format!("{} out of range: {s}", COLUMNS[i])))
                .transpose()
        };
        let count = |i: usize| -> Result<u32, String> {
            u32::try_from(num(i)?).map_err(|_| format!("{} out of range", COLUMNS[i]))
        };
        let text = |i: usize| unescape_cell(&rec[i]).to_string();
        Ok(ReportRow {
            row: num(0)?,
            line: num(1)?,
            token: text(2),
            device: text(3),
            user: text(4),
            email: text(5),
            status: rec[6].parse()?,
            http_status: status_code(7)?,
            attempts: count(8)?,
            lookup_status: status_code(9)?,
            lookups: count(10)?,
            resolved: text(11),
            error: text(12),
            note: text(13),
            finished_at: humantime::parse_rfc3339(&rec[14])
                .map_err(|e| format!("finishedAt '{}': {e}", &rec[14]))?,
            elapsed_ms: opt(15)?,
        })
    }
}

/// A cell that a spreadsheet would read as a formula gets a leading `'`. A cell that
/// already starts with `'` gets one too, so that reading back (strip one `'`) is exact.
pub(crate) fn escape_cell(s: &str) -> String {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'') => format!("'{s}"),
        _ => s.to_string(),
    }
}

/// The inverse of `escape_cell`.
pub(crate) fn unescape_cell(s: &str) -> &str {
    s.strip_prefix('\'').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(token: &str, error: &str) -> ReportRow {
        ReportRow {
            row: 3,
            line: 4,
            token: token.into(),
            device: "140100080".into(),
            user: "87927fb7-e185-4c33-c7e3-8e077675973c".into(),
            email: String::new(),
            status: Status::Failed,
            http_status: Some(400),
            attempts: 2,
            lookup_status: Some(200),
            lookups: 1,
            resolved: "tokenSerialNumber".into(),
            error: error.into(),
            note: "-a note".into(),
            finished_at: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_millis(1_700_000_000_123),
            elapsed_ms: Some(17),
        }
    }

    #[test]
    fn formula_cells_are_escaped() {
        for (raw, want) in [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'x", "''x"),
            ("014010008038", "014010008038"),
            ("", ""),
        ] {
            assert_eq!(escape_cell(raw), want);
            assert_eq!(unescape_cell(&escape_cell(raw)), raw);
        }
    }

    #[test]
    fn record_has_the_spec_columns() {
        let rec = sample("=1+1", "HTTP 400").to_record();
        assert_eq!(rec[2], "'=1+1");
        assert_eq!(rec[6], "failed");
        assert_eq!((rec[7].as_str(), rec[8].as_str()), ("400", "2"));
        assert_eq!((rec[9].as_str(), rec[10].as_str()), ("200", "1"));
        assert_eq!(rec[11], "tokenSerialNumber");
        assert_eq!(rec[13], "'-a note");
        assert_eq!(rec[14], "2023-11-14T22:13:20.123Z");
        assert_eq!(rec[15], "17");
    }

    fn round_trip(row: &ReportRow) -> ReportRow {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(row.to_record()).unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        let rec = r.records().next().unwrap().unwrap();
        ReportRow::from_record(&rec).unwrap()
    }

    proptest! {
        #[test]
        fn any_row_reads_back_identical(token in ".*", user in ".*", error in ".*", note in ".*",
                                         http in proptest::option::of(100u16..600),
                                         lookup in proptest::option::of(100u16..600),
                                         ms in proptest::option::of(0u64..1<<40)) {
            let mut row = sample(&token, &error);
            row.user = user;
            row.note = note;
            row.http_status = http;
            row.lookup_status = lookup;
            row.elapsed_ms = ms;
            prop_assert_eq!(round_trip(&row), row);
        }
    }
}
