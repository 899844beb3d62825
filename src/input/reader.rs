//! The streaming record reader: csv `ByteRecord`s with exact start lines, blank-row skipping,
//! row numbering and classification, shared by `scan` and `rows`. A record is capped at
//! `MAX_RECORD_BYTES`, so memory stays bounded whatever the file holds.

use std::fs::File;
use std::io::{self, Read};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use csv::ByteRecord;

use super::check::{Validity, is_blank, validate};
use super::dedup::DuplicateIndex;
use super::fingerprint::{Changed, Fingerprint, Recorder, Source, Verifier};
use super::from_report::{self, Latest, Lines};
use super::header::Columns;
use super::row::{InputRow, RowCheck};
use super::text::truncate_chars;
use crate::credential::Credential;

/// csv's own buffer; larger than its 8 KiB default for fewer read calls on big files.
const BUFFER_BYTES: usize = 64 * 1024;

/// Drop history this far behind the reader (amortises the shift of the kept bytes).
const HISTORY_SLACK: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The most bytes one record may take in the file. Offboarding rows are well under 1 KiB; a
/// record this long is a broken file (a quote opened and never closed makes the rest of the
/// file one value), and reading it whole would take memory in proportion. The file is refused
/// as a whole: the rows it swallowed cannot be told apart, so none can be trusted.
pub(crate) const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// The csv parser asked for more bytes while one record already took `MAX_RECORD_BYTES`.
#[derive(Debug)]
struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a record longer than 1 MiB")
    }
}

impl std::error::Error for RecordTooLong {}

/// A whole-file problem met while reading: the message is complete, no "after line N" needed.
#[derive(Debug)]
struct FileProblem(String);

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FileProblem {}

/// Passes the file through to csv and keeps the bytes csv has not finished with, so that the
/// true start line of each record can be computed.
///
/// Why: csv's `Position::line()` is the line where the previous record's parse stopped. Blank
/// lines before a record, and the LF of a CRLF (which csv consumes with the *next* record), are
/// counted after that, so the position is early by one on every CRLF row and by the number of
/// skipped blank lines. The bytes between two record ends are exactly those skipped CR/LF
/// bytes followed by the record, so counting the LFs in that run fixes the number.
///
/// csv counts LFs only, but it also ends records at a lone CR (old Mac line ends), so the
/// lone CRs — a CR not followed by LF — before each record are counted here and added.
struct Tap<R> {
    inner: R,
    history: Vec<u8>,
    /// File offset of `history[0]`.
    base: u64,
    /// Lone CRs in the file before offset `cr_cursor` (which never falls behind `base`).
    lone_crs: u64,
    cr_cursor: u64,
    /// File offset where the record being parsed began (the end of the previous one).
    record_start: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // csv asks for more only when it has parsed everything it was given, so every byte
        // read so far past `record_start` belongs to the record it is still parsing.
        let end = self.base + self.history.len() as u64;
        if end.saturating_sub(self.record_start) > MAX_RECORD_BYTES {
            return Err(io::Error::other(RecordTooLong));
        }
        let n = self.inner.read(buf)?;
        self.history.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl<R> Tap<R> {
    /// The number of LFs in the run of CR/LF bytes (after the BOM at offset 0) that starts at
    /// file offset `from`: the blank lines csv skipped before the record that begins there.
    /// Also returns the file offset just after that run, where the record's content starts.
    fn skipped_newlines(&self, from: u64) -> (u64, u64) {
        let start = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let mut bytes = self.history.get(start..).unwrap_or_default();
        let mut content = from;
        if from == 0 && bytes.starts_with(BOM) {
            bytes = &bytes[BOM.len()..];
            content += BOM.len() as u64;
        }
        let run = bytes
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let n = bytes[..run].iter().filter(|&&b| b == b'\n').count();
        (n as u64, content + run as u64)
    }

    /// The number of lone CRs before file offset `to`, counting forward from where the last
    /// call stopped. A CR whose next byte has not been read yet is left for a later call.
    fn lone_crs_before(&mut self, to: u64) -> u64 {
        let end = self.base + self.history.len() as u64;
        let to = to.min(end.saturating_sub(1));
        if to > self.cr_cursor {
            let h = &self.history;
            let start = usize::try_from(self.cr_cursor - self.base).unwrap_or(usize::MAX);
            let stop = usize::try_from(to - self.base).unwrap_or(usize::MAX);
            // `stop < h.len()`, so `i + 1` is in bounds.
            let n = (start..stop)
                .filter(|&i| h[i] == b'\r' && h[i + 1] != b'\n')
                .count();
            self.lone_crs += n as u64;
            self.cr_cursor = to;
        }
        self.lone_crs
    }

    /// The number of `"` bytes between file offsets `from` and `to` (both kept in history).
    fn quotes_between(&self, from: u64, to: u64) -> usize {
        let at = |offset: u64| {
            usize::try_from(offset.saturating_sub(self.base))
                .unwrap_or(usize::MAX)
                .min(self.history.len())
        };
        self.history[at(from)..at(to).max(at(from))]
            .iter()
            .filter(|&&b| b == b'"')
            .count()
    }

    /// Forgets the bytes before file offset `upto`: csv has parsed them (and they are counted).
    fn forget_before(&mut self, upto: u64) {
        self.lone_crs_before(upto);
        let upto = upto.min(self.cr_cursor);
        let done = usize::try_from(upto.saturating_sub(self.base)).unwrap_or(usize::MAX);
        if done >= HISTORY_SLACK {
            let done = done.min(self.history.len());
            self.history.drain(..done);
            self.base += done as u64;
        }
    }
}

/// csv records of one file, each with the line it starts on. Blank lines are skipped by csv;
/// records of blank cells are returned (the caller decides).
pub(crate) struct RecordSource {
    rdr: csv::Reader<Tap<Source>>,
    pub(crate) record: ByteRecord,
    /// The start line of `record`.
    pub(crate) line: u64,
    /// Whether `record`'s bytes in the file hold an odd number of `"` (an unclosed quote).
    pub(crate) odd_quotes: bool,
    /// csv's (byte, line) position after the last record: where the next one is parsed from.
    last_end: (u64, u64),
}

impl RecordSource {
    pub(crate) fn open(source: Source, delimiter: u8) -> RecordSource {
        let tap = Tap {
            inner: source,
            history: Vec::new(),
            base: 0,
            lone_crs: 0,
            cr_cursor: 0,
            record_start: 0,
        };
        let rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            // A row with the wrong number of fields is one invalid row, not a read error.
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(BUFFER_BYTES)
            .from_reader(tap);
        RecordSource {
            rdr,
            record: ByteRecord::new(),
            line: 0,
            odd_quotes: false,
            last_end: (0, 1),
        }
    }

    /// The reader under the parser, to collect what it recorded.
    fn into_source(self) -> Source {
        self.rdr.into_inner().inner
    }

    /// The whole-file error for a record over `MAX_RECORD_BYTES`, naming the line it starts on.
    fn too_long(&mut self) -> io::Error {
        let (from, line) = self.last_end;
        let tap = self.rdr.get_mut();
        let (skipped, content) = tap.skipped_newlines(from);
        let line = line + skipped + tap.lone_crs_before(content);
        let quoted = tap.quotes_between(content, content + MAX_RECORD_BYTES) > 0;
        let why = if quoted {
            "a double quote opened there is probably never closed, so the rest of the file reads \
             as one value; close the quote (or double it: \"\") and run again"
        } else {
            "an offboarding row is well under 1 KiB: check that this is the right file"
        };
        io::Error::other(FileProblem(format!(
            "the record that starts on line {line} is longer than 1 MiB, so the file is not read \
             any further ({why}). Nothing was sent."
        )))
    }

    /// Reads the next record into `self.record`; false at the end of the file. Errors are I/O
    /// errors only: with `flexible` byte records csv has no other failure.
    pub(crate) fn advance(&mut self) -> io::Result<bool> {
        let more = match self.rdr.read_byte_record(&mut self.record) {
            Ok(more) => more,
            Err(e) => {
                let e = match e.into_kind() {
                    csv::ErrorKind::Io(e) => e,
                    other => io::Error::other(format!("{other:?}")),
                };
                if e.get_ref().is_some_and(|e| e.is::<RecordTooLong>()) {
                    return Err(self.too_long());
                }
                return Err(e);
            }
        };
        if !more {
            return Ok(false);
        }
        let (from, line) = self
            .record
            .position()
            .map_or((0, 1), |p| (p.byte(), p.line()));
        let tap = self.rdr.get_mut();
        let (skipped, content) = tap.skipped_newlines(from);
        self.line = line + skipped + tap.lone_crs_before(content);
        let end = self.rdr.position();
        let parsed_upto = end.byte();
        self.last_end = (parsed_upto, end.line());
        let tap = self.rdr.get_mut();
        self.odd_quotes = tap.quotes_between(content, parsed_upto) % 2 == 1;
        tap.forget_before(parsed_upto);
        tap.record_start = parsed_upto;
        Ok(true)
    }
}

/// One data record as a pass sees it, borrowed from the reader's buffer.
pub(crate) struct RawRow<'r> {
    pub(crate) row: u64,
    pub(crate) line: u64,
    pub(crate) validity: Validity<'r>,
    pub(crate) record: &'r ByteRecord,
    pub(crate) cols: &'r Columns,
}

/// What a pass checks of the bytes it reads.
pub(crate) enum Check<'a> {
    /// Nothing: a pass without a plan (seed files).
    None,
    /// The plan's first pass: take the fingerprint (collected with `DataReader::fingerprint`).
    Record,
    /// Every later pass: exactly the bytes of this fingerprint, or an error.
    Verify(&'a Fingerprint),
}

/// The data rows of a file after its header: numbered, blank ones skipped, classified.
pub(crate) struct DataReader {
    path: PathBuf,
    src: RecordSource,
    pub(crate) cols: Columns,
    delimiter: u8,
    n_rows: u64,
    /// One of the tool's reports: which of its lines are rows, and the record a row is read
    /// as (see `from_report`).
    report: Option<ReportLines>,
}

/// A report read as input, line by line.
struct ReportLines {
    lines: Lines,
    /// Non-blank lines read so far.
    ordinal: u64,
    record: ByteRecord,
}

impl DataReader {
    /// Opens a new pass and checks that the header is still the one `InputFile::open` saw.
    pub(crate) fn open(
        path: &Path,
        delimiter: u8,
        cols: &Columns,
        header: &ByteRecord,
        check: Check<'_>,
        report: Option<Lines>,
    ) -> Result<DataReader> {
        let file = File::open(path).with_context(|| {
            format!(
                "cannot open input file {} again for reading — was it moved or deleted?",
                path.display()
            )
        })?;
        let source = match check {
            Check::None => Source::Plain(file),
            Check::Record => Source::Record(Box::new(Recorder::new(file))),
            Check::Verify(fp) => Source::Verify(Box::new(Verifier::new(file, fp.clone()))),
        };
        let mut src = RecordSource::open(source, delimiter);
        let got_header = src.advance().map_err(|e| read_error(path, e, None))?;
        if !got_header || src.record != *header {
            bail!(
                "input file {} changed while it was being read (its header is different now); \
                 make sure nothing writes to it and run again",
                path.display()
            );
        }
        Ok(DataReader {
            path: path.to_path_buf(),
            src,
            cols: cols.clone(),
            delimiter,
            n_rows: 0,
            report: report.map(|lines| ReportLines {
                lines,
                ordinal: 0,
                record: ByteRecord::new(),
            }),
        })
    }

    /// The next line of a report read as input: its own `row`, `line` and `status`, or an
    /// error naming the file line that is not a report line (nothing of a damaged report is
    /// guessed at). `None` at the end of the file.
    fn next_report_line(&mut self) -> Result<Option<(u64, from_report::ReportLine)>> {
        loop {
            let at = self.src.line;
            let more = self
                .src
                .advance()
                .map_err(|e| read_error(&self.path, e, Some(at)))?;
            if !more {
                return Ok(None);
            }
            if is_blank(&self.src.record) {
                continue;
            }
            let Some(report) = self.report.as_mut() else {
                return Ok(None);
            };
            report.ordinal += 1;
            let parsed = from_report::parse_line(&self.src.record).map_err(|why| {
                anyhow!(
                    "input file {} is read as a report of ds100-offboard (its header is the \
                     report's), but its line {} is not a report line: {why}. A report that was \
                     edited or cut short cannot be trusted as a list of credentials: use the \
                     report the tool wrote (if its run was killed, finish it with --resume \
                     first). Nothing was sent.",
                    self.path.display(),
                    self.src.line
                )
            })?;
            return Ok(Some((report.ordinal, parsed)));
        }
    }

    /// Reads a report to its end: the latest line of each row (the first pass of its plan).
    pub(crate) fn latest_lines(&mut self) -> Result<Latest> {
        let mut latest = Latest::default();
        while let Some((ordinal, line)) = self.next_report_line()? {
            latest.add(ordinal, &line).map_err(|why| {
                anyhow!(
                    "input file {} is read as a report of ds100-offboard, but its line {} is \
                     not one it wrote: {why}. Nothing was sent.",
                    self.path.display(),
                    self.src.line
                )
            })?;
        }
        Ok(latest)
    }

    pub(crate) fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The fingerprint of everything this pass read, when it was opened with `Check::Record`
    /// (the rest of the file is read first, so it covers the whole file).
    pub(crate) fn fingerprint(self) -> Result<Option<Fingerprint>> {
        let path = self.path;
        match self.src.into_source() {
            Source::Record(r) => r
                .finish()
                .map(Some)
                .with_context(|| format!("reading input file {}", path.display())),
            Source::Plain(_) | Source::Verify(_) => Ok(None),
        }
    }

    /// The next non-blank data record, or `None` at the end of the file. Of a report read as
    /// input, the next line that is a row of the plan, numbered as the report numbers it.
    pub(crate) fn next_row(&mut self) -> Result<Option<RawRow<'_>>> {
        if self.report.is_some() {
            let line = loop {
                let Some((ordinal, line)) = self.next_report_line()? else {
                    return Ok(None);
                };
                let keep = match self.report.as_ref().map(|r| &r.lines) {
                    Some(Lines::Selected(selection)) => selection.keeps(ordinal, &line),
                    Some(Lines::All) | None => true,
                };
                if keep {
                    break line;
                }
            };
            let Some(report) = self.report.as_mut() else {
                return Ok(None);
            };
            from_report::credential_record(&self.src.record, &mut report.record);
            self.n_rows += 1;
            return Ok(Some(RawRow {
                row: line.row,
                line: line.line,
                validity: validate(&report.record, &self.cols, self.src.odd_quotes),
                record: &report.record,
                cols: &self.cols,
            }));
        }
        loop {
            let line = self.src.line;
            let more = self
                .src
                .advance()
                .map_err(|e| read_error(&self.path, e, Some(line)))?;
            if !more {
                return Ok(None);
            }
            if !is_blank(&self.src.record) {
                break;
            }
        }
        self.n_rows += 1;
        Ok(Some(RawRow {
            row: self.n_rows,
            line: self.src.line,
            validity: validate(&self.src.record, &self.cols, self.src.odd_quotes),
            record: &self.src.record,
            cols: &self.cols,
        }))
    }
}

/// An error of a pass, worded for the operator: the problems this module finds carry their
/// whole message; other I/O errors say where the reading stopped.
fn read_error(path: &Path, e: io::Error, after_line: Option<u64>) -> anyhow::Error {
    let inner = e.get_ref();
    if let Some(p) = inner.and_then(|e| e.downcast_ref::<FileProblem>()) {
        return anyhow!("input file {}: {p}", path.display());
    }
    if let Some(c) = inner.and_then(|e| e.downcast_ref::<Changed>()) {
        return changed_error(path, &c.0, after_line);
    }
    match after_line {
        Some(line) => anyhow::Error::new(e).context(format!(
            "reading input file {} after line {line}",
            path.display()
        )),
        None => anyhow::Error::new(e).context(format!("reading input file {}", path.display())),
    }
}

/// The input is not what the plan read. Nothing past the point where that showed was read, so
/// no row of it was sent.
fn changed_error(path: &Path, how: &str, after_line: Option<u64>) -> anyhow::Error {
    let from = match after_line {
        Some(line) if line > 1 => format!(" No row after line {line} was read or sent."),
        _ => " No row of it was read or sent.".to_string(),
    };
    anyhow!(
        "the input changed after the plan: {} is not the file that was planned: {how}.{from} \
         Make sure nothing writes to it while the tool runs.",
        path.display()
    )
}

/// The data rows of an input file, each checked and, when valid, classified against the
/// duplicate index. Yields `Err` only for an I/O error or an input that is not the planned one
/// (more or fewer rows, other bytes), and then ends.
pub struct Rows<'a> {
    data: DataReader,
    dups: &'a DuplicateIndex,
    /// The plan's row count: a pass after the plan yields exactly these rows.
    planned: Option<u64>,
    /// Rows yielded so far, and the line the last one started on.
    n_read: u64,
    last_line: u64,
    path: PathBuf,
    failed: bool,
}

impl<'a> Rows<'a> {
    pub(crate) fn new(data: DataReader, dups: &'a DuplicateIndex) -> Rows<'a> {
        let path = data.path.clone();
        Rows {
            data,
            dups,
            planned: None,
            n_read: 0,
            last_line: 1,
            path,
            failed: false,
        }
    }

    /// The rows of a plan: its `n_rows` enforced, its duplicates `dups` marked.
    pub(crate) fn planned(data: DataReader, n_rows: u64, dups: &'a DuplicateIndex) -> Rows<'a> {
        Rows {
            planned: Some(n_rows),
            ..Rows::new(data, dups)
        }
    }
}

// After the end or an error, `next` keeps answering `None`.
impl FusedIterator for Rows<'_> {}

impl Iterator for Rows<'_> {
    type Item = Result<InputRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let dups = self.dups;
        let delimiter = self.data.delimiter();
        let planned = self.planned;
        let raw = match self.data.next_row() {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                return match planned {
                    Some(n) if n != self.n_read => {
                        self.failed = true;
                        let how = format!("it has {} rows, the plan {n}", self.n_read);
                        Some(Err(changed_error(&self.path, &how, None)))
                    }
                    _ => None,
                };
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        // The byte check makes this unreachable; the count is the plan's own promise. (Rows
        // are counted: a report read as input keeps its own row numbers, which have gaps.)
        if let Some(n) = planned
            && self.n_read >= n
        {
            self.failed = true;
            let how = format!("it has more than the {n} rows of the plan");
            return Some(Err(changed_error(&self.path, &how, Some(self.last_line))));
        }
        self.n_read += 1;
        self.last_line = raw.line;
        let row = match raw.validity {
            Validity::Valid {
                token,
                device,
                user,
                email,
            } => InputRow {
                row: raw.row,
                line: raw.line,
                credential: Credential::new(token, device, user).with_email(email),
                check: match dups.first_of(raw.row) {
                    Some(first_row) => RowCheck::Duplicate { first_row },
                    None => RowCheck::Valid,
                },
            },
            Validity::Invalid(ref problem) => {
                let cols = raw.cols;
                let echo = |i: Option<usize>| {
                    i.and_then(|i| raw.record.get(i))
                        .map(|b| truncate_chars(String::from_utf8_lossy(b).trim()).to_string())
                        .unwrap_or_default()
                };
                InputRow {
                    row: raw.row,
                    line: raw.line,
                    credential: Credential::new(
                        echo(cols.token),
                        echo(Some(cols.device)),
                        echo(cols.user),
                    )
                    .with_email(echo(cols.email)),
                    check: RowCheck::Invalid {
                        reason: problem.reason(cols, delimiter),
                    },
                }
            }
        };
        Some(Ok(row))
    }
}
