//! One of the tool's own reports as the input (docs/design.md#a-report-as-input): recognised
//! by its exact header; each row of it taken once, from its latest line (a resumed report
//! holds several lines per row); optionally only the rows whose latest status is one of
//! `--only-status`. A row keeps the report's `row` and `line` (the original input's), so the
//! new report's rows trace back to the original file; its token, device, user and email are
//! the report's (lookups included). The email matters most where the userId is empty: a row
//! whose address was never resolved (its user lookup failed, or the run stopped first) read
//! without it would name no user, and so delete whatever its device holds.
//!
//! The latest line of each row is only known once the whole report has been read, so a plan
//! of a report takes one pass more: it records, per row number, the ordinal of its latest line
//! (4 bytes) and that line's status (1 byte), and every later pass keeps the lines whose
//! ordinal is their row's latest.
//!
//! An undo changes back only what the job changed. A `disabled` line noted `was already
//! disabled` names a credential the disable found disabled (a hold, a lost device, someone
//! else's decision): it did not change it, so `enable` of that report leaves the row out
//! (`Selection::leave_unchanged`), and the same for `enabled` lines and `disable`. Deleting
//! later still takes them: they are disabled, whoever did it.

use std::sync::Arc;

use csv::ByteRecord;

use crate::report::columns::COLUMNS;
use crate::report::status::Status;

/// Where the report's own columns are (`COLUMNS`' order).
const ROW: usize = 0;
const LINE: usize = 1;
const STATUS: usize = 6;
const NOTE: usize = 13;
/// The credential's cells, which the new row takes: token, device, user and email.
const CREDENTIAL_CELLS: [usize; 4] = [2, 3, 4, 5];

/// How far a row number may run ahead of the lines read so far. A report is written in
/// completion order, close to row order; a row far beyond would only cost memory (4 + 1 bytes
/// per row number up to it), and no report of the tool names one.
const ROW_LEAD: u64 = 16_000_000;

/// Whether a header (cells trimmed) is exactly the tool's report header.
pub(crate) fn is_report_header(names: &[String]) -> bool {
    names.iter().map(String::as_str).eq(COLUMNS.iter().copied())
}

/// Whether a header is the report's but for case or a byte-order mark: a report saved again
/// by a spreadsheet (which also drops leading zeros).
pub(crate) fn is_resaved_report_header(names: &[String]) -> bool {
    names
        .iter()
        .map(|n| n.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .eq(COLUMNS.iter().map(|c| c.to_ascii_lowercase()))
}

/// What a report's line says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReportLine {
    pub(crate) row: u64,
    pub(crate) line: u64,
    pub(crate) status: Status,
    /// A `disabled` / `enabled` line whose note says the credential was already in that state:
    /// the command that wrote it did not change it.
    pub(crate) unchanged: bool,
}

/// The note a `disable` / `enable` row gets when its credential was already in the wanted
/// state (`worker::patch`): `was already disabled`.
pub(crate) fn already_note(status: Status) -> String {
    format!("was already {}", status.as_str())
}

/// Reads `row`, `line` and `status` of one report line; `Err` says what is wrong with it.
pub(crate) fn parse_line(record: &ByteRecord) -> Result<ReportLine, String> {
    if record.len() != COLUMNS.len() {
        return Err(format!(
            "it has {} fields, a report line has {}",
            record.len(),
            COLUMNS.len()
        ));
    }
    let text = |i: usize| std::str::from_utf8(&record[i]).unwrap_or("").trim();
    let number = |i: usize| -> Result<u64, String> {
        text(i)
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("its {} '{}' is not a number", COLUMNS[i], text(i)))
    };
    let status: Status = text(STATUS)
        .parse()
        .map_err(|e| format!("its status: {e}"))?;
    let unchanged = matches!(status, Status::Disabled | Status::Enabled)
        && text(NOTE).starts_with(&already_note(status));
    Ok(ReportLine {
        row: number(ROW)?,
        line: number(LINE)?,
        status,
        unchanged,
    })
}

/// The record a row of the report is read as: the credential's cells as the report holds
/// them minus the spreadsheet-formula escaping (one leading `'`), every other cell empty, so
/// that the row is checked like any input row and nothing else of the report is read as data.
pub(crate) fn credential_record(record: &ByteRecord, out: &mut ByteRecord) {
    out.clear();
    for (i, cell) in record.iter().enumerate() {
        if CREDENTIAL_CELLS.contains(&i) {
            out.push_field(cell.strip_prefix(b"'").unwrap_or(cell));
        } else {
            out.push_field(b"");
        }
    }
}

/// Per row number (`row - 1`): the ordinal of its latest line (1-based; 0 for none) and that
/// line's status (its index, with `UNCHANGED` set for a line noted `was already …`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Latest {
    ordinals: Vec<u32>,
    statuses: Vec<u8>,
}

/// The bit of a `Latest` status byte that says the line is `ReportLine::unchanged`.
const UNCHANGED: u8 = 0x80;

impl Latest {
    /// Notes that line number `ordinal` (of the report's lines) says `line`.
    pub(crate) fn add(&mut self, ordinal: u64, line: &ReportLine) -> Result<(), String> {
        if line.row > ordinal + ROW_LEAD {
            return Err(format!(
                "its row {} is far beyond the {ordinal} lines read so far",
                line.row
            ));
        }
        let ordinal =
            u32::try_from(ordinal).map_err(|_| "the report has too many lines".to_string())?;
        let idx = usize::try_from(line.row - 1).map_err(|_| "row out of range".to_string())?;
        if self.ordinals.len() <= idx {
            self.ordinals.resize(idx + 1, 0);
            self.statuses.resize(idx + 1, 0);
        }
        self.ordinals[idx] = ordinal;
        self.statuses[idx] = line.status.index() as u8 | if line.unchanged { UNCHANGED } else { 0 };
        Ok(())
    }

    /// Whether line number `ordinal` is the latest line of `row`.
    fn is_latest(&self, row: u64, ordinal: u64) -> bool {
        row.checked_sub(1)
            .and_then(|i| self.ordinals.get(usize::try_from(i).ok()?))
            .is_some_and(|&o| u64::from(o) == ordinal)
    }

    /// The latest status of every row the report holds, in row order, and whether its line is
    /// `unchanged`.
    fn statuses(&self) -> impl Iterator<Item = (Status, bool)> + '_ {
        self.ordinals
            .iter()
            .zip(&self.statuses)
            .filter(|(o, _)| **o != 0)
            .filter_map(|(_, s)| {
                let status = Status::ALL.get(usize::from(*s & !UNCHANGED)).copied()?;
                Some((status, *s & UNCHANGED != 0))
            })
    }
}

/// The rows of a report a plan reads: the latest line of each row, with a latest status in
/// `only` when given, less the `unchanged` ones of status `leave_unchanged`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selection {
    pub(crate) latest: Latest,
    pub(crate) only: Option<Vec<Status>>,
    /// An undo: `Disabled` for `enable`, `Enabled` for `disable` (`InputOptions::undo_of`).
    pub(crate) leave_unchanged: Option<Status>,
}

impl Selection {
    /// Whether line number `ordinal`, which says `line`, is a row of the plan.
    pub(crate) fn keeps(&self, ordinal: u64, line: &ReportLine) -> bool {
        self.latest.is_latest(line.row, ordinal)
            && self.only.as_ref().is_none_or(|o| o.contains(&line.status))
            && !self.left_unchanged(line.status, line.unchanged)
    }

    /// Whether a row whose latest line says `status` (`unchanged`) is left out by the undo.
    fn left_unchanged(&self, status: Status, unchanged: bool) -> bool {
        unchanged && self.leave_unchanged == Some(status)
    }

    /// What the plan and the messages say about the report read as input.
    pub(crate) fn facts(&self) -> ReportFacts {
        let mut by_status: Vec<(Status, u64)> = Vec::new();
        let mut n_left_unchanged = 0u64;
        for (s, unchanged) in self.latest.statuses() {
            match by_status.iter_mut().find(|(st, _)| *st == s) {
                Some((_, n)) => *n += 1,
                None => by_status.push((s, 1)),
            }
            let wanted = self.only.as_ref().is_none_or(|o| o.contains(&s));
            if wanted && self.left_unchanged(s, unchanged) {
                n_left_unchanged += 1;
            }
        }
        by_status.sort();
        ReportFacts {
            n_rows: by_status.iter().map(|(_, n)| n).sum(),
            by_status,
            only: self.only.clone(),
            n_left_unchanged,
            leave_unchanged: self.leave_unchanged,
        }
    }
}

/// Which lines of a report a pass reads.
#[derive(Clone, Debug)]
pub(crate) enum Lines {
    /// Every line (the pass that finds each row's latest line).
    All,
    /// The rows of a plan.
    Selected(Arc<Selection>),
}

/// A report read as input, for the plan and its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReportFacts {
    /// Rows the report holds a line for.
    pub(crate) n_rows: u64,
    /// Their latest statuses, counted, in status order.
    pub(crate) by_status: Vec<(Status, u64)>,
    /// `--only-status`, when given.
    pub(crate) only: Option<Vec<Status>>,
    /// Rows otherwise selected that the undo leaves out: their line says the report's command
    /// found the credential already `leave_unchanged`.
    pub(crate) n_left_unchanged: u64,
    pub(crate) leave_unchanged: Option<Status>,
}

impl ReportFacts {
    /// "disabled 3, failed 1".
    pub(crate) fn counts(&self) -> String {
        if self.by_status.is_empty() {
            return "no rows".to_string();
        }
        self.by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// "failed, skipped", or "any" without `--only-status`.
    pub(crate) fn wanted(&self) -> String {
        match &self.only {
            Some(only) => only
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            None => "any".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cells: &[&str]) -> ByteRecord {
        ByteRecord::from(cells.to_vec())
    }

    fn line(row: &str, line: &str, status: &str) -> ByteRecord {
        let mut cells = vec![""; COLUMNS.len()];
        cells[ROW] = row;
        cells[LINE] = line;
        cells[STATUS] = status;
        rec(&cells)
    }

    #[test]
    fn the_header_is_recognised_exactly() {
        let header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        assert!(is_report_header(&header));
        let mut other = header.clone();
        other[6] = "Status".into();
        assert!(!is_report_header(&other) && is_resaved_report_header(&other));
        assert!(!is_report_header(&header[..15]));
        let mut bom = header.clone();
        bom[0] = "\u{feff}row".into();
        assert!(!is_report_header(&bom) && is_resaved_report_header(&bom));
    }

    #[test]
    fn lines_are_parsed_or_refused() {
        assert_eq!(
            parse_line(&line("3", "4", "disabled")),
            Ok(ReportLine {
                row: 3,
                line: 4,
                status: Status::Disabled,
                unchanged: false,
            })
        );
        // The note of a credential the command found already in its state.
        let mut already = line("3", "4", "disabled");
        let mut cells: Vec<&[u8]> = already.iter().collect();
        cells[NOTE] = b"was already disabled; email a names b";
        already = ByteRecord::from(cells);
        assert!(parse_line(&already).unwrap().unchanged);
        let mut cells: Vec<&[u8]> = already.iter().collect();
        cells[STATUS] = b"deleted";
        assert!(!parse_line(&ByteRecord::from(cells)).unwrap().unchanged);
        for bad in [
            line("x", "4", "disabled"),
            line("0", "4", "disabled"),
            line("3", "", "disabled"),
            line("3", "4", "gone"),
            rec(&["1", "2", "disabled"]),
        ] {
            assert!(parse_line(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_latest_line_of_a_row_with_a_wanted_status_is_kept() {
        let lines = [
            (1, line("2", "3", "failed")),
            (2, line("1", "2", "disabled")),
            (3, line("2", "3", "disabled")),
            (4, line("4", "5", "skipped")),
        ];
        let mut latest = Latest::default();
        for (ordinal, l) in &lines {
            latest.add(*ordinal, &parse_line(l).unwrap()).unwrap();
        }
        let kept = |only: Option<Vec<Status>>| -> Vec<u64> {
            let sel = Selection {
                latest: latest.clone(),
                only,
                leave_unchanged: None,
            };
            lines
                .iter()
                .filter(|(o, l)| sel.keeps(*o, &parse_line(l).unwrap()))
                .map(|(_, l)| parse_line(l).unwrap().row)
                .collect()
        };
        assert_eq!(kept(None), [1, 2, 4]);
        assert_eq!(kept(Some(vec![Status::Disabled])), [1, 2]);
        assert_eq!(kept(Some(vec![Status::Failed])), Vec::<u64>::new());
        let facts = Selection {
            latest,
            only: Some(vec![Status::Failed, Status::Skipped]),
            leave_unchanged: None,
        }
        .facts();
        assert_eq!(facts.n_rows, 3);
        assert_eq!(facts.counts(), "disabled 2, skipped 1");
        assert_eq!(facts.wanted(), "failed, skipped");
    }

    #[test]
    fn an_undo_leaves_out_what_the_job_found_already_done() {
        let mut already = line("2", "3", "disabled");
        let mut cells: Vec<&[u8]> = already.iter().collect();
        cells[NOTE] = b"was already disabled";
        already = ByteRecord::from(cells);
        let lines = [
            (1, line("1", "2", "disabled")),
            (2, already),
            (3, line("3", "4", "failed")),
        ];
        let mut latest = Latest::default();
        for (ordinal, l) in &lines {
            latest.add(*ordinal, &parse_line(l).unwrap()).unwrap();
        }
        let select = |leave_unchanged| Selection {
            latest: latest.clone(),
            only: Some(vec![Status::Disabled]),
            leave_unchanged,
        };
        let kept = |sel: &Selection| -> Vec<u64> {
            lines
                .iter()
                .filter(|(o, l)| sel.keeps(*o, &parse_line(l).unwrap()))
                .map(|(_, l)| parse_line(l).unwrap().row)
                .collect()
        };
        // Enable (the undo) leaves row 2 out; delete later, or another undo, does not.
        let undo = select(Some(Status::Disabled));
        assert_eq!(kept(&undo), [1]);
        assert_eq!(undo.facts().n_left_unchanged, 1);
        assert_eq!(undo.facts().counts(), "disabled 2, failed 1");
        assert_eq!(kept(&select(None)), [1, 2]);
        assert_eq!(kept(&select(Some(Status::Enabled))), [1, 2]);
        assert_eq!(select(None).facts().n_left_unchanged, 0);
    }

    #[test]
    fn a_row_far_beyond_the_lines_is_refused() {
        let mut latest = Latest::default();
        let far = ReportLine {
            row: 4_000_000_000,
            line: 1,
            status: Status::Deleted,
            unchanged: false,
        };
        assert!(latest.add(1, &far).unwrap_err().contains("far beyond"));
    }

    #[test]
    fn the_credential_cells_are_unescaped_and_nothing_else_is_kept() {
        let mut cells = vec!["x"; COLUMNS.len()];
        cells[2] = "014010008038";
        cells[3] = "''0140";
        cells[4] = "'=cmd";
        cells[5] = "'-ann@acme.com";
        let mut out = ByteRecord::new();
        credential_record(&rec(&cells), &mut out);
        assert_eq!(out.len(), COLUMNS.len());
        assert_eq!(&out[2], b"014010008038");
        assert_eq!(&out[3], b"'0140");
        assert_eq!(&out[4], b"=cmd");
        assert_eq!(&out[5], b"-ann@acme.com");
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, c)| i < 6 && i > 1 || c.is_empty())
        );
    }
}
