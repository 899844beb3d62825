//! Input: streams the CSV of credentials to remove — header mapping, delimiter sniffing, row
//! validation and duplicate detection — in memory that does not grow with the file
//! (docs/design.md#input).
//!
//! # Reading
//!
//! [`InputFile::open`] reads the header and fails, with a message that says how to fix it, on
//! whole-file problems: a missing or unreadable file, one that is not a regular file (`-`, a
//! pipe, a directory: the input is read twice), UTF-16 text, no header, a header that is not
//! UTF-8,
//! no `deviceSerialNumber` column, a known column named twice, a bad `--delimiter`, a column
//! the tool does not read whose name looks like a credential field (`User ID (UUID)`, `Token`:
//! ignoring it would make its rows device-only lookups) unless `--ignore-column` names it.
//! After that nothing about a single row is an error: every non-blank record becomes one
//! [`InputRow`] that is valid, invalid (with a reason in plain words) or a duplicate of an
//! earlier row. Two things still stop a pass as a whole: a record longer than 1 MiB (a quote
//! never closed; reading it would take memory in proportion), and a file that is not the one
//! the plan read.
//!
//! # One file from plan to sending
//!
//! [`InputFile::scan`] is the plan: its first pass takes the file's size, SHA-256 and one
//! digest per 64 KiB block (see `fingerprint`). Every later pass, [`InputFile::rows`] included,
//! reads only those bytes, each block checked before the parser sees it, and stops at the
//! plan's row count: rows added or changed after the plan are never read, so never sent.
//! [`InputFile::check_unchanged`] re-reads the whole file, for the moment after the go-ahead.
//!
//! Header names are compared ignoring case and everything but ASCII letters and digits. The
//! delimiter is the most frequent of `,` `;` TAB outside quotes on the header line (ties and
//! none mean `,`) unless `--delimiter` says otherwise. Records are csv `ByteRecord`s read with
//! `flexible(true)`, so a wrong field count or bytes that are not UTF-8 make one invalid row,
//! never an error or a panic. Blank lines and records whose cells are all whitespace are skipped
//! and take no row number. Cells are trimmed; values stay strings (leading zeros survive).
//!
//! # Duplicates in bounded memory
//!
//! A row is a duplicate when its (token, device, lowercased user, lowercased email) equals that
//! of an earlier valid row: offline an address is not known to be anyone, so a row naming its
//! user by email repeats only a row naming the same device, token and address (the run, which
//! resolves addresses, is what sees a row naming the same user by userId:
//! docs/design.md#people-by-email). Remembering every key would make memory grow with the file
//! (docs/design.md#the-pipeline), so [`InputFile::scan`] works in two streaming passes:
//!
//! 1. Every valid row's key is hashed to 128 bits and added to a fixed 4 MiB Bloom filter. A key
//!    whose bits were all set already *may* have been seen: it goes into a candidate set.
//!    Keys that the filter has never seen are certainly new and cost nothing more.
//! 2. Only if there are candidates, a second pass records, per candidate key, the first row
//!    that has it and maps every later row with that key to it. False positives of the filter
//!    simply find no earlier row and drop out, so the answer is exact.
//!
//! Memory is the 4 MiB filter (freed when `scan` returns) plus about 40 bytes per distinct
//! duplicated key and 16 bytes per duplicate row in the resulting [`DuplicateIndex`]: it grows
//! with the number of duplicates, not with the file. At 1,000,000 distinct rows the filter
//! yields on the order of ten false candidates.

mod check;
mod dedup;
mod fingerprint;
pub(crate) mod from_report;
mod header;
mod kind;
mod reader;
mod row;
mod serials;
mod text;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use csv::ByteRecord;

use crate::credential::{Credential, Field};
use crate::report::columns::COLUMNS;
use crate::report::status::Status;
use check::Validity;
use dedup::{Bloom, DEFAULT_LOG2_BLOCKS, KeyMap, KeySet, row_key};
use fingerprint::Source;
use from_report::{Lines, ReportFacts, Selection};
use header::{Columns, EXAMPLE_HEADER, HEAD_LIMIT, Head};
use reader::{Check, DataReader, RecordSource};

pub(crate) use dedup::DuplicateIndex;
pub(crate) use fingerprint::Fingerprint;
pub(crate) use kind::check_path as check_input_path;
pub use reader::Rows;
pub use row::{InputRow, RowCheck};
pub(crate) use serials::{DeviceSerials, Padding};

/// How to read the input file.
#[derive(Clone, Debug, Default)]
pub struct InputOptions {
    /// `--delimiter`: overrides the delimiter sniffed from the header (`b','`, `b';'`, `b'\t'`).
    pub delimiter: Option<u8>,
    /// `--ignore-column`: columns that look like credential fields but are not (compared like
    /// header names). Each must name a column of the file that the tool does not read.
    pub ignore_columns: Vec<String>,
    /// `--only-status`: the input must be one of the tool's reports; keep its rows whose
    /// latest status is one of these.
    pub(crate) only_status: Option<Vec<Status>>,
    /// The command is the undo of this status (`Disabled` for `enable`, `Enabled` for
    /// `disable`): of a report read as input, rows of this status whose credential its command
    /// found already so are left out (docs/design.md#a-report-as-input).
    pub(crate) undo_of: Option<Status>,
}

/// An opened input file whose header has been checked. Each pass (`scan`, `rows`) reopens
/// the file and streams it.
#[derive(Clone, Debug)]
pub struct InputFile {
    path: PathBuf,
    delimiter: u8,
    cols: Columns,
    /// The raw header, compared on every later pass to notice a file changed underneath.
    header: ByteRecord,
    /// The file is one of the tool's reports (its header is the report's): `--only-status`,
    /// if given (docs/design.md#a-report-as-input).
    report: Option<Option<Vec<Status>>>,
    /// `InputOptions::undo_of`.
    undo_of: Option<Status>,
}

/// The plan's view of the file: counts, the exact duplicate index and what was read.
/// `n_valid + n_invalid + n_duplicate == n_rows`; `n_needs_lookup`, `n_no_user`, `n_email` and
/// `n_short_device` are parts of `n_valid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub n_rows: u64,
    pub n_valid: u64,
    pub n_invalid: u64,
    pub n_duplicate: u64,
    /// Valid rows with an empty token and/or user, or naming the user by email: they need a
    /// lookup by device.
    pub n_needs_lookup: u64,
    /// Valid rows naming no user, by userId or email: resolved by the device alone, they
    /// delete whatever credential the device holds.
    pub(crate) n_no_user: u64,
    /// Valid rows naming the user by email: resolved by a user lookup, then confirmed by a
    /// device lookup.
    pub(crate) n_email: u64,
    /// Valid rows whose device serial is all digits and shorter than others of the file.
    pub(crate) n_short_device: u64,
    /// The lengths of the file's all-digit device serials.
    pub(crate) device_serials: DeviceSerials,
    /// The columns the tool does not read, as the plan lists them.
    pub(crate) ignored_columns: Vec<String>,
    pub(crate) duplicates: DuplicateIndex,
    /// The file's size in bytes and SHA-256 (lowercase hex), as the plan read it.
    pub(crate) size: u64,
    pub(crate) sha256: String,
    /// What the plan read, block by block: every later pass is checked against it.
    pub(crate) fingerprint: Fingerprint,
    /// The highest row number of the plan: `n_rows`, but for a report read as input, whose
    /// rows keep the report's numbers.
    pub(crate) max_row: u64,
    /// A report read as input: which of its lines are the plan's rows.
    pub(crate) selection: Option<Arc<Selection>>,
}

impl InputFile {
    /// Opens `path` and checks its header. Whole-file problems are errors here, with messages
    /// that say how to fix them.
    pub fn open(path: &Path, opts: &InputOptions) -> Result<InputFile> {
        if let Some(d) = opts.delimiter {
            header::check_delimiter(d)?;
        }
        kind::check_path(path)?;
        let mut file = File::open(path).map_err(|e| {
            anyhow!(
                "cannot open input file {}: {e} — check the path",
                path.display()
            )
        })?;
        if let Ok(meta) = file.metadata() {
            kind::check_metadata(path, &meta)?;
        }
        let mut head = Vec::with_capacity(HEAD_LIMIT + 1);
        (&mut file)
            .take(HEAD_LIMIT as u64 + 1)
            .read_to_end(&mut head)
            .with_context(|| format!("cannot read input file {}", path.display()))?;
        if let Some(order) = kind::utf16(&head) {
            bail!("{}", kind::utf16_message(path, order));
        }
        let sniffed = match header::inspect_head(&head, head.len() <= HEAD_LIMIT) {
            Head::Empty => bail!("{}", no_header_message(path, head.is_empty())),
            Head::TooLong { in_quotes } => bail!(
                "the first line of {} is longer than {} KiB, so it is not a header line{} — is \
                 this a CSV file? The first line must name the columns, for example:\n  \
                 {EXAMPLE_HEADER}",
                path.display(),
                HEAD_LIMIT / 1024,
                if in_quotes {
                    " (a double quote in it is never closed)"
                } else {
                    ""
                }
            ),
            Head::Line { sniffed } => sniffed,
        };
        let delimiter = opts.delimiter.unwrap_or(sniffed);
        file.seek(SeekFrom::Start(0))
            .with_context(|| format!("cannot read input file {}", path.display()))?;
        let mut src = RecordSource::open(Source::Plain(file), delimiter);
        let got_header = src
            .advance()
            .with_context(|| format!("cannot read input file {}", path.display()))?;
        if !got_header {
            bail!("{}", no_header_message(path, false));
        }
        let header = src.record.clone();
        let mut names = Vec::with_capacity(header.len());
        for (i, cell) in header.iter().enumerate() {
            let Ok(name) = std::str::from_utf8(cell) else {
                bail!(
                    "the header line of {} is not valid UTF-8 (column {}). If this is a CSV \
                     file, save it as UTF-8 (in Excel: \"CSV UTF-8\"); if it is not, check the \
                     path.",
                    path.display(),
                    i + 1
                );
            };
            names.push(name.trim().to_string());
        }
        let is_report = from_report::is_report_header(&names);
        if !is_report && opts.only_status.is_some() {
            bail!("{}", not_a_report_message(path, &names));
        }
        let resaved_report = from_report::is_resaved_report_header(&names);
        let cols = header::map_columns(path, names)?;
        if is_report {
            // Every column of the tool's own report is known; nothing is ignored.
            if let Some(flag) = opts.ignore_columns.first() {
                bail!(
                    "--ignore-column {flag}: {} is one of the tool's own reports, whose columns \
                     are all known (its tokenSerialNumber, deviceSerialNumber and userId are \
                     read); remove the flag",
                    path.display()
                );
            }
            check_report_ends(path)?;
        } else if resaved_report {
            bail!(
                "{} looks like a report of ds100-offboard saved again by another program (its \
                 header is the report's but for case or a byte-order mark): a spreadsheet also \
                 drops serials' leading zeros, so its values cannot be trusted. Use the report \
                 the tool wrote. Nothing was sent.",
                path.display()
            );
        } else {
            header::check_unknown_columns(path, &cols, &opts.ignore_columns)?;
        }
        Ok(InputFile {
            path: path.to_path_buf(),
            delimiter,
            cols,
            header,
            report: is_report.then(|| opts.only_status.clone()),
            undo_of: opts.undo_of,
        })
    }

    /// Whether the file is one of the tool's own reports.
    pub(crate) fn is_report(&self) -> bool {
        self.report.is_some()
    }

    /// Whether the header has this column (`Device` always: `open` requires it).
    pub(crate) fn has_column(&self, f: Field) -> bool {
        match f {
            Field::Token => self.cols.token.is_some(),
            Field::Device => true,
            Field::User => self.cols.user.is_some(),
            Field::Email => self.cols.email.is_some(),
        }
    }

    /// One full streaming pass (two when the file may hold duplicates): counts and the exact
    /// duplicate index. See the module docs for how memory stays bounded.
    pub fn scan(&self) -> Result<Scan> {
        self.scan_with(DEFAULT_LOG2_BLOCKS)
    }

    /// `scan` with a Bloom filter of 2^`log2_blocks` 64-byte blocks; tests shrink it to force
    /// false positives.
    fn scan_with(&self, log2_blocks: u32) -> Result<Scan> {
        let mut bloom = Bloom::with_log2_blocks(log2_blocks);
        let mut candidates = KeySet::default();
        let (mut n_rows, mut n_invalid, mut n_valid_all, mut n_needs_all) =
            (0u64, 0u64, 0u64, 0u64);
        let (mut n_no_user_all, mut n_email_all) = (0u64, 0u64);
        let mut device_serials = DeviceSerials::default();
        // A report's rows are only known once every line was read: one pass more, first.
        let (selection, report_fingerprint) = match &self.report {
            Some(only) => {
                let mut data = self.data(Check::Record, Some(Lines::All))?;
                let latest = data.latest_lines()?;
                let fingerprint = data.fingerprint()?.unwrap_or_default();
                let selection = Arc::new(Selection {
                    latest,
                    only: only.clone(),
                    leave_unchanged: self.undo_of,
                });
                (Some(selection), Some(fingerprint))
            }
            None => (None, None),
        };
        let lines = selection.clone().map(Lines::Selected);
        let mut max_row = 0u64;
        let mut data = match &report_fingerprint {
            Some(fingerprint) => self.data(Check::Verify(fingerprint), lines.clone())?,
            None => self.data(Check::Record, None)?,
        };
        while let Some(raw) = data.next_row()? {
            n_rows += 1;
            max_row = max_row.max(raw.row);
            match raw.validity {
                Validity::Invalid(_) => n_invalid += 1,
                Validity::Valid {
                    token,
                    device,
                    user,
                    email,
                } => {
                    n_valid_all += 1;
                    if needs_device_lookup(token, user, email) {
                        n_needs_all += 1;
                    }
                    if user.is_empty() && email.is_empty() {
                        n_no_user_all += 1;
                    }
                    if !email.is_empty() {
                        n_email_all += 1;
                    }
                    device_serials.add(device);
                    let key = row_key(token, device, user, email);
                    if bloom.insert(key) {
                        candidates.insert(key);
                    }
                }
            }
        }
        drop(bloom);
        let fingerprint = match report_fingerprint {
            Some(fingerprint) => fingerprint,
            None => data.fingerprint()?.unwrap_or_default(),
        };

        let mut pairs = Vec::new();
        let (mut n_needs_dup, mut n_no_user_dup, mut n_short_dup) = (0u64, 0u64, 0u64);
        let mut n_email_dup = 0u64;
        if !candidates.is_empty() {
            // Per candidate key, the rows that have it; the lowest row number is the one the
            // others repeat (a report's lines are in completion order, not in row order).
            let mut with_key = KeyMap::<Vec<RepeatFlags>>::default();
            with_key.reserve(candidates.len());
            let (mut n_rows_again, mut n_valid_again) = (0u64, 0u64);
            let mut data = self.data(Check::Verify(&fingerprint), lines)?;
            while let Some(raw) = data.next_row()? {
                n_rows_again += 1;
                let Validity::Valid {
                    token,
                    device,
                    user,
                    email,
                } = raw.validity
                else {
                    continue;
                };
                n_valid_again += 1;
                let key = row_key(token, device, user, email);
                if !candidates.contains(&key) {
                    continue;
                }
                with_key.entry(key).or_default().push(RepeatFlags {
                    row: raw.row,
                    needs_lookup: needs_device_lookup(token, user, email),
                    no_user: user.is_empty() && email.is_empty(),
                    by_email: !email.is_empty(),
                    short: device_serials.is_short(device),
                });
            }
            // The second pass must see the file the first one counted, or the counts below
            // would mix two files.
            if (n_rows_again, n_valid_again) != (n_rows, n_valid_all) {
                bail!(
                    "input file {} changed while it was being read ({n_rows} rows, then \
                     {n_rows_again}); make sure nothing writes to it and run again",
                    self.path.display()
                );
            }
            for rows in with_key.values() {
                let Some(first) = rows.iter().map(|r| r.row).min() else {
                    continue;
                };
                for r in rows.iter().filter(|r| r.row != first) {
                    pairs.push((r.row, first));
                    n_needs_dup += u64::from(r.needs_lookup);
                    n_no_user_dup += u64::from(r.no_user);
                    n_email_dup += u64::from(r.by_email);
                    n_short_dup += u64::from(r.short);
                }
            }
            pairs.sort_unstable();
        }
        let duplicates = DuplicateIndex::from_sorted(pairs);
        let n_duplicate = duplicates.len() as u64;
        Ok(Scan {
            n_rows,
            n_valid: n_valid_all.saturating_sub(n_duplicate),
            n_invalid,
            n_duplicate,
            n_needs_lookup: n_needs_all.saturating_sub(n_needs_dup),
            n_no_user: n_no_user_all.saturating_sub(n_no_user_dup),
            n_email: n_email_all.saturating_sub(n_email_dup),
            n_short_device: device_serials.n_short().saturating_sub(n_short_dup),
            device_serials,
            ignored_columns: if self.report.is_some() {
                Vec::new()
            } else {
                self.cols.ignored()
            },
            duplicates,
            size: fingerprint.size(),
            sha256: fingerprint.sha256_hex(),
            fingerprint,
            max_row,
            selection,
        })
    }

    /// The rows of the plan `scan`, in a new streaming pass: duplicates marked, and exactly
    /// the bytes and the rows the plan read. Anything else (rows added, changed or removed
    /// since) is an `Err` before the first row that is not the plan's, and the pass ends.
    pub fn rows<'a>(&self, scan: &'a Scan) -> Result<Rows<'a>> {
        Ok(Rows::planned(
            self.data(
                Check::Verify(&scan.fingerprint),
                scan.selection.clone().map(Lines::Selected),
            )?,
            scan.n_rows,
            &scan.duplicates,
        ))
    }

    /// A streaming pass without a plan, marking duplicates with `dups`
    /// (`DuplicateIndex::empty()` marks none): for files read once (the simulator's seed).
    pub(crate) fn rows_unplanned<'a>(&self, dups: &'a DuplicateIndex) -> Result<Rows<'a>> {
        let lines = self.report.as_ref().map(|_| Lines::All);
        Ok(Rows::new(self.data(Check::None, lines)?, dups))
    }

    /// Reads the whole file again and fails unless it is byte for byte what `scan` read: for
    /// the moment after the operator's go-ahead, however long the confirmation waited.
    pub(crate) fn check_unchanged(&self, scan: &Scan) -> Result<()> {
        let file = File::open(&self.path).with_context(|| {
            format!(
                "cannot open input file {} again — was it moved or deleted? Nothing was sent",
                self.path.display()
            )
        })?;
        let now = fingerprint::of_file(file)
            .with_context(|| format!("reading input file {}", self.path.display()))?;
        if now.size() != scan.size || now.sha256_hex() != scan.sha256 {
            bail!(
                "the input changed after the plan: {} is now {} bytes with SHA-256 {}, the plan \
                 read {} bytes with SHA-256 {}; nothing was sent. Make sure nothing writes to \
                 it while the tool runs, then run again to see the new plan.",
                self.path.display(),
                now.size(),
                now.sha256_hex(),
                scan.size,
                scan.sha256
            );
        }
        Ok(())
    }

    fn data(&self, check: Check<'_>, lines: Option<Lines>) -> Result<DataReader> {
        DataReader::open(
            &self.path,
            self.delimiter,
            &self.cols,
            &self.header,
            check,
            lines,
        )
    }
}

impl Scan {
    /// A report read as input: its rows and latest statuses, and `--only-status`.
    pub(crate) fn report_facts(&self) -> Option<ReportFacts> {
        self.selection.as_ref().map(|s| s.facts())
    }
}

/// `--only-status` on a file that is not one of the tool's reports.
fn not_a_report_message(path: &Path, names: &[String]) -> String {
    let resaved = if from_report::is_resaved_report_header(names) {
        " It looks like a report saved again by another program (a spreadsheet, which also \
         drops serials' leading zeros): use the report the tool wrote."
    } else {
        ""
    };
    format!(
        "--only-status keeps the rows of one of ds100-offboard's own reports by their latest \
         status, but {} is not one: a report's header is exactly {}.{resaved} Pass a report the \
         tool wrote (e.g. leavers.disable-report.csv), or leave out --only-status to read the \
         file as a list of credentials. Nothing was sent.",
        path.display(),
        COLUMNS.join(",")
    )
}

/// A report the tool wrote ends with a line end; one that does not was cut short (its run
/// killed while writing the last line), and that line's values may be cut too.
fn check_report_ends(path: &Path) -> Result<()> {
    let mut file =
        File::open(path).with_context(|| format!("cannot read input file {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut last = [0u8; 1];
    if len > 0 {
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .with_context(|| format!("cannot read input file {}", path.display()))?;
    }
    if last[0] != b'\n' {
        bail!(
            "input file {} is a report of ds100-offboard whose last line has no line end: the \
             run writing it was killed while writing that line, whose values may be cut short. \
             Finish that job first (run it again with --resume), then use its report. Nothing \
             was sent.",
            path.display()
        );
    }
    Ok(())
}

/// What the plan's counts need to know of a row that may repeat an earlier one.
struct RepeatFlags {
    row: u64,
    needs_lookup: bool,
    no_user: bool,
    by_email: bool,
    short: bool,
}

/// Whether a valid row is looked up by device before anything is deleted: a field is missing,
/// or its user is named by email (an address is confirmed against the device's credentials).
pub(crate) fn needs_device_lookup(token: &str, user: &str, email: &str) -> bool {
    token.is_empty() || user.is_empty() || !email.is_empty()
}

/// Every row of `path` as a credential, for the simulator's `--seed`; an `email` column, where
/// a row fills it, gives the user's address. Fails naming the first row that is invalid or
/// lacks a token or user. Duplicates are kept.
pub(crate) fn read_credentials(path: &Path) -> Result<Vec<Credential>> {
    let input = InputFile::open(path, &InputOptions::default())?;
    for f in [Field::Token, Field::User] {
        if !input.has_column(f) {
            bail!(
                "{} has no {} column; a seed file needs tokenSerialNumber, deviceSerialNumber \
                 and userId on every row",
                path.display(),
                f.name()
            );
        }
    }
    let dups = DuplicateIndex::empty();
    let mut credentials = Vec::new();
    for row in input.rows_unplanned(&dups)? {
        let row = row?;
        if let RowCheck::Invalid { reason } = &row.check {
            bail!(
                "{} row {} (line {}) is invalid: {reason}",
                path.display(),
                row.row,
                row.line
            );
        }
        if !row.credential.is_complete() {
            let missing = if row.credential.token.is_empty() {
                Field::Token
            } else {
                Field::User
            };
            bail!(
                "{} row {} (line {}) has an empty {}; every row of a seed file needs \
                 tokenSerialNumber, deviceSerialNumber and userId",
                path.display(),
                row.row,
                row.line,
                missing.name()
            );
        }
        credentials.push(row.credential);
    }
    Ok(credentials)
}

/// What `validate` and `run` say (exit 1, nothing sent) of a header without data rows: an
/// empty export is a mistake to look into, not a job done.
pub(crate) fn no_rows_message(path: &Path) -> String {
    format!(
        "the file has no rows: {} has a header line but no data rows under it, so there is \
         nothing to check or delete. An empty export is usually a mistake: check the export or \
         the file name. Nothing was sent.",
        path.display()
    )
}

fn no_header_message(path: &Path, is_empty: bool) -> String {
    let what = if is_empty {
        "is empty"
    } else {
        "has no header line (only blank lines)"
    };
    format!(
        "{} {what}: the first line must be a header naming the columns, for example:\n  \
         {EXAMPLE_HEADER}\nOnly deviceSerialNumber is required; the others are looked up when \
         absent.",
        path.display()
    )
}

#[cfg(test)]
mod tests;
