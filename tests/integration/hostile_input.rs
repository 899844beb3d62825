//! The hostile-input corpus: every file in `tests/fixtures/hostile/`, plus 10 MB
//! files generated here, through the real binary — `validate` offline and `run` against a
//! simulator seeded with `tenant.csv`.
//!
//! Each file ends one of two ways: a whole-file error (exit 2, a message that says how to fix
//! it, no report, not one request), or one report row per record where every bad row is
//! `invalid` with a reason and is never sent; a header without rows is exit 1, "the file has no
//! rows", with neither report nor request. Never a panic. After a run the store is exactly
//! the tenant minus the credentials of the rows the report calls `deleted`, and the simulator
//! received exactly the requests the report accounts for.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::harness::*;
use ds100_offboard::report::row::ReportRow;
use ds100_offboard::report::status::Status;

/// `tests/fixtures/hostile/NAME`.
fn hostile(name: &str) -> PathBuf {
    fixture(&format!("hostile/{name}"))
}

/// The credentials every fixture refers to: `tenant.csv`, 40 of them.
fn tenant() -> Vec<Cred> {
    creds_from_csv(std::fs::File::open(hostile("tenant.csv")).unwrap())
}

/// A simulator seeded with `tenant.csv`, `input` as the input file.
fn tenant_with(input: &Path) -> Scenario {
    Scenario::new()
        .sim_args(&["--seed", hostile("tenant.csv").to_str().unwrap()])
        .input_file(input)
}

/// What one record must end as.
struct Row {
    validate: Status,
    run: Status,
    /// For invalid rows: a piece of the reason the report must give.
    reason: &'static str,
}

const fn row(validate: Status, run: Status, reason: &'static str) -> Row {
    Row {
        validate,
        run,
        reason,
    }
}

const DELETED: Row = row(Status::Valid, Status::Deleted, "");

const fn invalid(reason: &'static str) -> Row {
    row(Status::Invalid, Status::Invalid, reason)
}

enum Expect {
    /// Exit 2 before anything is written or sent; stderr says this.
    WholeFile(&'static str),
    Rows(Vec<Row>),
}

/// Checks an invocation for the things that must never happen (`Ran` has checked for a panic
/// and a signal already): an exit code other than 0, 1 or 2.
fn invoke(cmd: Cmd) -> Ran {
    let ran = cmd.run();
    assert!(
        matches!(ran.code, 0..=2),
        "exit {}: {}",
        ran.code,
        ran.stderr
    );
    ran
}

/// The report's rows in `row` order, one per record.
fn rows_of(report: &Path, n: usize) -> Vec<ReportRow> {
    let mut by_row = report_by_row(report, n as u64);
    (1..=n as u64).map(|i| by_row.remove(&i).unwrap()).collect()
}

fn check_invalid_row(r: &ReportRow, reason: &str) {
    assert_eq!(r.attempts, 0, "{r:?}");
    assert_eq!(r.http_status, None, "{r:?}");
    assert!(
        r.error.contains(reason),
        "row {}: want a reason with {reason:?}, got {:?}",
        r.row,
        r.error
    );
    for cell in [&r.token, &r.device, &r.user] {
        assert!(cell.chars().count() <= 64, "echo longer than 64: {r:?}");
    }
}

/// `validate` and `run` on `input` (a fixture or a generated file), with `extra` flags.
fn check_file(input: &Path, extra: &[&str], expect: &Expect) {
    let sc = tenant_with(input);
    let validation = sc.path("validation.csv");
    let report = sc.path("report.csv");

    // validate: offline.
    let v = invoke(
        sc.validate_cmd()
            .args(extra)
            .arg("--report")
            .arg(&validation),
    );
    // run: against a simulator seeded with the tenant.
    let r = invoke(
        sc.run_cmd()
            .args(extra)
            .args(FAST)
            .args(["--stop-after", "0"])
            .arg("--report")
            .arg(&report),
    );
    let stats = sc.sim().stats();
    let store = sc.sim().store();

    match expect {
        Expect::WholeFile(hint) => {
            for (what, ran, path) in [("validate", &v, &validation), ("run", &r, &report)] {
                assert_eq!(ran.code, 2, "{what} {}: {}", input.display(), ran.stderr);
                assert!(
                    ran.stderr.contains(hint),
                    "{what} {}: want {hint:?} in {}",
                    input.display(),
                    ran.stderr
                );
                assert!(!path.exists(), "{what} wrote a report");
            }
            assert_eq!(stats["requests"], 0, "{stats}");
            assert_eq!(store, tenant());
        }
        Expect::Rows(want) => {
            let got = rows_of(&validation, want.len());
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(g.status, w.validate, "validate {}: {g:?}", input.display());
                if w.validate == Status::Invalid {
                    check_invalid_row(g, w.reason);
                }
            }
            let all_valid = want.iter().all(|w| w.validate == Status::Valid);
            assert_eq!(v.code, if all_valid { 0 } else { 1 }, "{}", v.stderr);

            let got = rows_of(&report, want.len());
            let mut deleted = BTreeSet::new();
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(g.status, w.run, "run {}: {g:?}", input.display());
                if w.run == Status::Invalid {
                    check_invalid_row(g, w.reason);
                }
                if g.status == Status::Deleted {
                    deleted.insert(cred(&g.token, &g.device, &g.user));
                }
            }
            let all_ok = want
                .iter()
                .all(|w| matches!(w.run, Status::Deleted | Status::Absent));
            assert_eq!(r.code, if all_ok { 0 } else { 1 }, "{}", r.stderr);
            // Nothing but the rows the report calls deleted left the store...
            let expected: Vec<Cred> = tenant()
                .into_iter()
                .filter(|c| !deleted.contains(c))
                .collect();
            assert_eq!(store, expected, "{}", input.display());
            assert_eq!(tenant().len() - store.len(), deleted.len());
            // ...and every request the simulator saw belongs to a row that was sent, but the
            // one read-only lookup that checks the credentials before the plan (sent when
            // there is a row to send).
            let attempts: u64 = got.iter().map(|g| u64::from(g.requests())).sum();
            let check = u64::from(want.iter().any(|w| w.validate == Status::Valid));
            assert_eq!(
                stats["requests"].as_u64(),
                Some(attempts + check),
                "{stats}"
            );
            assert_eq!(stats["bad_requests"], 0, "{stats}");
        }
    }
}

fn check(name: &str, expect: Expect) {
    check_file(&hostile(name), &[], &expect);
}

/// `validate NAME --report …` (exit `code`): the lines its rows start on.
fn validated_lines(name: &str, code: i32, n: usize) -> Vec<u64> {
    let sc = Scenario::new().input_file(&hostile(name));
    let ran = sc
        .validate_cmd()
        .arg("--report")
        .arg(sc.path("v.csv"))
        .run()
        .exits(code);
    rows_of(ran.report_path(), n)
        .iter()
        .map(|r| r.line)
        .collect()
}

// ---- files that read fine --------------------------------------------------------------

#[test]
fn bom_and_crlf() {
    check("bom_crlf.csv", Expect::Rows(vec![DELETED, DELETED]));
}

#[test]
fn semicolon_delimiter_with_a_comma_inside_a_value() {
    check(
        "semicolon.csv",
        Expect::Rows(vec![
            DELETED,
            DELETED,
            invalid("tokenSerialNumber \"0140,10000005\""),
        ]),
    );
}

#[test]
fn tab_delimiter_and_padded_cells() {
    check("tab.tsv", Expect::Rows(vec![DELETED, DELETED]));
}

#[test]
fn reordered_and_differently_spelled_headers() {
    check(
        "reordered_headers.csv",
        Expect::Rows(vec![DELETED, DELETED]),
    );
}

#[test]
fn extra_columns_are_ignored() {
    check("extra_columns.csv", Expect::Rows(vec![DELETED, DELETED]));
}

#[test]
fn quoted_fields_with_commas_newlines_and_quotes() {
    check(
        "quoted_fields.csv",
        Expect::Rows(vec![
            DELETED,
            DELETED,
            DELETED,
            DELETED,
            invalid("tokenSerialNumber \"0140,10000016\""),
        ]),
    );
    // The record after the one with a line break in a quoted cell starts two lines later.
    assert_eq!(validated_lines("quoted_fields.csv", 1, 5), [2, 3, 5, 6, 7]);
}

#[test]
fn blank_lines_are_skipped_but_counted_as_lines() {
    check("blank_lines.csv", Expect::Rows(vec![DELETED, DELETED]));
    assert_eq!(validated_lines("blank_lines.csv", 0, 2), [3, 7]);
}

#[test]
fn a_trailing_delimiter_on_every_line_is_an_unnamed_column() {
    check(
        "trailing_delimiter.csv",
        Expect::Rows(vec![DELETED, DELETED]),
    );
}

#[test]
fn a_header_without_the_optional_columns_resolves_by_lookup() {
    check(
        "missing_optional_columns.csv",
        Expect::Rows(vec![DELETED, DELETED]),
    );
}

/// An empty export is a mistake, not a job done: exit 1 and "the file has no rows", no report,
/// nothing sent.
#[test]
fn a_header_only_file_says_it_has_no_rows() {
    let sc = tenant_with(&hostile("header_only.csv"));
    let report = sc.path("r.csv");
    let v = invoke(sc.validate_cmd().arg("--report").arg(&report));
    let r = invoke(sc.run_cmd().args(FAST).arg("--report").arg(&report));
    for ran in [v, r] {
        assert_eq!(ran.code, 1, "{}", ran.stderr);
        assert!(
            ran.stderr.contains("the file has no rows"),
            "{}",
            ran.stderr
        );
        assert!(!report.exists());
    }
    assert_eq!(sc.sim().stats()["requests"], 0);
}

/// Old Mac line ends (CR alone) parse into the right records, on the right lines.
#[test]
fn carriage_returns_alone_end_records() {
    check("cr_only.csv", Expect::Rows(vec![DELETED, DELETED]));
    assert_eq!(validated_lines("cr_only.csv", 0, 2), [2, 3]);
}

// ---- files with bad rows -----------------------------------------------------------------

#[test]
fn a_trailing_delimiter_on_data_rows_only_is_a_field_count_error() {
    check(
        "trailing_delimiter_rows_only.csv",
        Expect::Rows(vec![
            invalid("expected 3 fields, found 4 (a value that contains ','"),
            invalid("expected 3 fields, found 4"),
        ]),
    );
}

#[test]
fn rows_with_too_few_or_too_many_fields() {
    check(
        "field_count.csv",
        Expect::Rows(vec![
            invalid("expected 3 fields, found 2"),
            invalid("expected 3 fields, found 4"),
            DELETED,
        ]),
    );
}

#[test]
fn invalid_utf8_in_one_row() {
    check(
        "invalid_utf8.csv",
        Expect::Rows(vec![
            invalid("column 4 (\"name\") is not valid UTF-8"),
            DELETED,
        ]),
    );
}

#[test]
fn formula_looking_values_are_invalid_and_escaped_in_the_report() {
    check(
        "formula_values.csv",
        Expect::Rows(vec![
            invalid("contains '=' at position 1"),
            invalid("contains '+' at position 1"),
            invalid("userId \"@SUM(1+1)\" is not a UUID"),
            invalid("contains '-' at position 1"),
            DELETED,
        ]),
    );
    let sc = Scenario::new().input_file(&hostile("formula_values.csv"));
    let out = sc.path("v.csv");
    sc.validate_cmd().arg("--report").arg(&out).run().exits(1);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(&out)
        .unwrap();
    let raw: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert!(raw[0][2].starts_with("'=HYPERLINK("), "{:?}", raw[0]);
    assert_eq!(&raw[1][3], "'+040000029");
    assert_eq!(&raw[2][4], "'@SUM(1+1)");
    assert_eq!(&raw[3][2], "'-1");
    // No cell of the report starts a formula.
    for rec in &raw {
        for cell in rec {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{rec:?}"
            );
        }
    }
}

/// Serials a spreadsheet turned into numbers. Scientific notation and decimals are caught;
/// a serial that merely lost its leading zeros is a valid-looking serial the tenant does not
/// know, so the run deletes nothing: `mismatch` either way — the device serial is shorter than
/// the file's others and its zero-padded lookup finds the credential (row 1), or the user holds
/// the zero-padded token on that device (row 2). Never a wrong deletion, never `absent`.
#[test]
fn numbers_with_lost_leading_zeros() {
    check(
        "lost_leading_zeros.csv",
        Expect::Rows(vec![
            row(Status::Valid, Status::Mismatch, ""),
            row(Status::Valid, Status::Mismatch, ""),
            invalid("scientific notation; export the column as text"),
            invalid("decimal part; export the column as text"),
        ]),
    );
}

#[test]
fn a_nul_byte_in_a_value() {
    check(
        "nul_bytes.csv",
        Expect::Rows(vec![invalid("contains '\\0' at position 5")]),
    );
}

/// A quote opened and never closed swallows the rest of the file into one record: that record
/// is invalid, says which lines it swallowed, and the credential on the swallowed line is not
/// sent either.
#[test]
fn an_unclosed_quote() {
    check(
        "unclosed_quote.csv",
        Expect::Rows(vec![invalid(
            "a double quote opened in column 2 (\"deviceSerialNumber\") is never closed, so the next line was read",
        )]),
    );
}

/// The same in an ignored note column: the record still has its three good values and the
/// right field count, so without the quote count it would be deleted while the two rows
/// swallowed into its note silently vanished.
#[test]
fn an_unclosed_quote_in_an_ignored_last_column() {
    check(
        "unclosed_quote_in_note.csv",
        Expect::Rows(vec![invalid(
            "a double quote opened in column 4 (\"note\") is never closed, so the next 2 lines were read",
        )]),
    );
}

// ---- whole-file errors -------------------------------------------------------------------

#[test]
fn an_empty_file() {
    check(
        "empty.csv",
        Expect::WholeFile("is empty: the first line must be a header"),
    );
}

#[test]
fn a_missing_device_column() {
    check(
        "missing_device_column.csv",
        Expect::WholeFile("has no deviceSerialNumber column"),
    );
}

#[test]
fn a_duplicated_header_column() {
    check(
        "duplicated_header_column.csv",
        Expect::WholeFile("has two deviceSerialNumber columns"),
    );
}

#[test]
fn a_binary_file() {
    check("binary.bin", Expect::WholeFile("is not valid UTF-8"));
}

#[test]
fn a_utf16_file() {
    check("utf16.csv", Expect::WholeFile("save it as UTF-8"));
}

#[test]
fn a_wrong_delimiter_override() {
    check_file(
        &hostile("bom_crlf.csv"),
        &["--delimiter", ";"],
        &Expect::WholeFile("the delimiter is probably wrong"),
    );
}

// ---- generated 10 MB inputs ----------------------------------------------------------------

const TEN_MB: usize = 10 * 1024 * 1024;

fn tenant_line(k: usize) -> String {
    let c = &tenant()[k];
    format!("{},{},{}", c.token, c.device, c.user)
}

/// One cell of 10 MB in a data row: a record longer than 1 MiB is refused as a whole-file
/// error before anything is sent (reading it would take memory in proportion), naming its line.
#[test]
fn a_10_mb_field_in_a_row() {
    let tmp = Scenario::new();
    let c = &tenant()[1];
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n{}\n{},{},{}\n{}\n",
        tenant_line(0),
        "7".repeat(TEN_MB),
        c.device,
        c.user,
        tenant_line(2),
    );
    let input = tmp.file("big.csv", &text);
    check_file(
        &input,
        &[],
        &Expect::WholeFile("the record that starts on line 3 is longer than 1 MiB"),
    );
}

/// A 10 MB quoted cell full of delimiters, quotes and line breaks, in an extra column.
#[test]
fn a_10_mb_quoted_field_with_embedded_delimiters_and_newlines() {
    let tmp = Scenario::new();
    let chunk = "a,b;\"\"c\"\"\r\nd\t";
    let note = chunk.repeat(TEN_MB / chunk.len());
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId,note\n{},\"{note}\"\n{},ok\n",
        tenant_line(3),
        tenant_line(4),
    );
    let input = tmp.file("bigquoted.csv", &text);
    check_file(
        &input,
        &[],
        &Expect::WholeFile("the record that starts on line 2 is longer than 1 MiB"),
    );
}

/// A first line of 10 MB is no header: refused before reading the rest.
#[test]
fn a_10_mb_first_line() {
    let tmp = Scenario::new();
    let text = format!(
        "{}\n{}\n",
        "deviceSerialNumber,".repeat(TEN_MB / 19),
        tenant_line(0)
    );
    let input = tmp.file("bighead.csv", &text);
    check_file(
        &input,
        &[],
        &Expect::WholeFile("longer than 64 KiB, so it is not a header"),
    );
}

/// 10 MB of bytes without a line break, as a binary export would be.
#[test]
fn a_10_mb_binary_file_without_line_breaks() {
    let tmp = Scenario::new();
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let bytes: Vec<u8> = (0..TEN_MB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match (x >> 56) as u8 {
                b'\n' | b'\r' => 0,
                b => b,
            }
        })
        .collect();
    let input = tmp.path("blob.bin");
    std::fs::write(&input, bytes).unwrap();
    check_file(&input, &[], &Expect::WholeFile("is not a header line"));
}
