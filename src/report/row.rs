//! One report row (SPEC §3): its columns, the spreadsheet-formula escaping, and reading back.

use std::time::SystemTime;

use super::status::Status;
use crate::input::InputRow;

/// The report's columns, in order.
pub const COLUMNS: [&str; 11] = [
    "row",
    "line",
    "tokenSerialNumber",
    "deviceSerialNumber",
    "userId",
    "status",
    "httpStatus",
    "attempts",
    "error",
    "finishedAt",
    "elapsedMs",
];

/// The outcome of one input row as the report records it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    pub row: u64,
    pub line: u64,
    pub token: String,
    pub device: String,
    pub user: String,
    pub status: Status,
    /// The last HTTP status seen for the row.
    pub http_status: Option<u16>,
    /// HTTP requests spent on the row, lookups included.
    pub attempts: u32,
    pub error: String,
    pub finished_at: SystemTime,
    /// From the first request to the final answer; `None` when nothing was sent.
    pub elapsed_ms: Option<u64>,
}

impl ReportRow {
    /// The report row of an input row after the requests spent on it, finished now.
    pub fn finished(
        input: InputRow,
        status: Status,
        error: String,
        http_status: Option<u16>,
        attempts: u32,
        elapsed_ms: Option<u64>,
    ) -> ReportRow {
        ReportRow {
            row: input.row,
            line: input.line,
            token: input.token,
            device: input.device,
            user: input.user,
            status,
            http_status,
            attempts,
            error,
            finished_at: SystemTime::now(),
            elapsed_ms,
        }
    }

    /// The report row of an input row that got no request.
    pub fn unsent(input: InputRow, status: Status, error: String) -> ReportRow {
        ReportRow::finished(input, status, error, None, 0, None)
    }

    /// The eleven cells, escaped, in column order.
    pub fn to_record(&self) -> [String; 11] {
        [
            self.row.to_string(),
            self.line.to_string(),
            escape_cell(&self.token),
            escape_cell(&self.device),
            escape_cell(&self.user),
            self.status.as_str().to_string(),
            self.http_status.map(|s| s.to_string()).unwrap_or_default(),
            self.attempts.to_string(),
            escape_cell(&self.error),
            humantime::format_rfc3339_millis(self.finished_at).to_string(),
            self.elapsed_ms.map(|ms| ms.to_string()).unwrap_or_default(),
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
        Ok(ReportRow {
            row: num(0)?,
            line: num(1)?,
            token: unescape_cell(&rec[2]).to_string(),
            device: unescape_cell(&rec[3]).to_string(),
            user: unescape_cell(&rec[4]).to_string(),
            status: rec[5].parse()?,
            http_status: opt(6)?
                .map(|s| u16::try_from(s).map_err(|_| format!("httpStatus out of range: {s}")))
                .transpose()?,
            attempts: u32::try_from(num(7)?).map_err(|_| "attempts out of range".to_string())?,
            error: unescape_cell(&rec[8]).to_string(),
            finished_at: humantime::parse_rfc3339(&rec[9])
                .map_err(|e| format!("finishedAt '{}': {e}", &rec[9]))?,
            elapsed_ms: opt(10)?,
        })
    }
}

/// A cell that a spreadsheet would read as a formula gets a leading `'` (SPEC §3). A cell that
/// already starts with `'` gets one too, so that reading back (strip one `'`) is exact.
pub fn escape_cell(s: &str) -> String {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'') => format!("'{s}"),
        _ => s.to_string(),
    }
}

/// The inverse of `escape_cell`.
pub fn unescape_cell(s: &str) -> &str {
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
            status: Status::Failed,
            http_status: Some(400),
            attempts: 2,
            error: error.into(),
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
        assert_eq!(rec[5], "failed");
        assert_eq!(rec[9], "2023-11-14T22:13:20.123Z");
        assert_eq!(rec[10], "17");
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
        fn any_row_reads_back_identical(token in ".*", user in ".*", error in ".*",
                                         http in proptest::option::of(100u16..600), ms in proptest::option::of(0u64..1<<40)) {
            let mut row = sample(&token, &error);
            row.user = user;
            row.http_status = http;
            row.elapsed_ms = ms;
            prop_assert_eq!(round_trip(&row), row);
        }
    }
}
