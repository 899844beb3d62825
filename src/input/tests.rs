//! Tests of the input module through its public API, on real files in a temp dir.

use std::collections::HashMap;
use std::io::Write as _;

use proptest::prelude::*;
use tempfile::NamedTempFile;

use super::*;

const U1: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
const U2: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

fn file(bytes: &[u8]) -> NamedTempFile {
    let mut f = NamedTempFile::new().expect("temp file");
    f.write_all(bytes).expect("write");
    f.flush().expect("flush");
    f
}

fn open(bytes: &[u8]) -> (NamedTempFile, InputFile) {
    let f = file(bytes);
    let input = InputFile::open(f.path(), &InputOptions::default()).expect("opens");
    (f, input)
}

fn open_err(bytes: &[u8]) -> String {
    let f = file(bytes);
    format!(
        "{:#}",
        InputFile::open(f.path(), &InputOptions::default()).expect_err("opened")
    )
}

fn rows_of(input: &InputFile, dups: &DuplicateIndex) -> Vec<InputRow> {
    input
        .rows_unplanned(dups)
        .expect("rows")
        .collect::<Result<Vec<_>>>()
        .expect("no I/O error")
}

fn planned_rows(input: &InputFile, scan: &Scan) -> Vec<InputRow> {
    input
        .rows(scan)
        .expect("rows")
        .collect::<Result<Vec<_>>>()
        .expect("no I/O error")
}

fn all_rows(bytes: &[u8]) -> (Scan, Vec<InputRow>) {
    let (_f, input) = open(bytes);
    let scan = input.scan().expect("scan");
    let rows = planned_rows(&input, &scan);
    (scan, rows)
}

fn lines(rows: &[InputRow]) -> Vec<(u64, u64)> {
    rows.iter().map(|r| (r.row, r.line)).collect()
}

// ---- whole-file errors -------------------------------------------------------------------

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("nope.csv");
    let err = InputFile::open(&path, &InputOptions::default())
        .expect_err("opened")
        .to_string();
    assert!(err.starts_with("cannot open input file "), "{err}");
    assert!(err.contains("nope.csv: No such file"), "{err}");
    assert!(err.ends_with("— check the path"), "{err}");
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().expect("dir");
    let err = InputFile::open(dir.path(), &InputOptions::default())
        .expect_err("opened")
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn empty_file_and_only_blank_lines() {
    let err = open_err(b"");
    assert!(
        err.contains("is empty: the first line must be a header"),
        "{err}"
    );
    assert!(
        err.contains("tokenSerialNumber,deviceSerialNumber,userId"),
        "{err}"
    );
    for blank in [&b"\n\n\r\n"[..], b"\xEF\xBB\xBF", b"\xEF\xBB\xBF\r\n"] {
        let err = open_err(blank);
        assert!(err.contains("has no header line"), "{err}");
    }
}

#[test]
fn header_not_utf8() {
    let err = open_err(b"deviceSerialNumber,us\xFFer\nD1,x\n");
    assert!(
        err.contains("header line of") && err.contains("is not valid UTF-8 (column 2)"),
        "{err}"
    );
}

#[test]
fn binary_files_are_clear_errors() {
    let err = open_err(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0");
    assert!(
        err.contains("deviceSerialNumber") || err.contains("UTF-8"),
        "{err}"
    );
    let err = open_err(&[0u8; 100_000]);
    assert!(err.contains("longer than 64 KiB"), "{err}");
    let err = open_err(&[0xFFu8; 1000]);
    assert!(err.contains("not valid UTF-8"), "{err}");
}

#[test]
fn no_device_column() {
    let f = file(b"serial,user\n1,2\n");
    let err = InputFile::open(f.path(), &InputOptions::default())
        .expect_err("opened")
        .to_string();
    assert_eq!(
        err,
        format!(
            "{} has no deviceSerialNumber column (found: \"serial\", \"user\"). Rename the \
             device column to deviceSerialNumber (case and punctuation are ignored: \
             device_serial_number works too).",
            f.path().display()
        )
    );
}

#[test]
fn duplicate_known_column() {
    let err = open_err(b"userId,deviceSerialNumber,USER ID\n");
    assert!(err.contains("two userId columns"), "{err}");
    assert!(
        err.contains("column 1") && err.contains("column 3"),
        "{err}"
    );
}

#[test]
fn bad_delimiter_option() {
    let f = file(b"deviceSerialNumber\nD1\n");
    let err = InputFile::open(
        f.path(),
        &InputOptions {
            delimiter: Some(b'x'),
            ..InputOptions::default()
        },
    )
    .expect_err("opened")
    .to_string();
    assert!(err.starts_with("--delimiter 'x' cannot be used"), "{err}");
}

// ---- header, delimiter, lines -------------------------------------------------------------

#[test]
fn header_variants_and_column_presence() {
    let (_f, input) = open(b"Note;Device Serial Number;user_id\nx;D1;\n");
    assert_eq!(input.delimiter, b';');
    assert!(input.has_column(Field::Device));
    assert!(input.has_column(Field::User));
    assert!(!input.has_column(Field::Token));
    let rows = rows_of(&input, &DuplicateIndex::empty());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].credential.device, "D1");
    assert_eq!(rows[0].credential.token, "");
    assert!(rows[0].needs_lookup());
    assert!(!rows[0].credential.is_complete());
}

#[test]
fn tab_and_override() {
    let (_f, input) = open(b"deviceSerialNumber\tuserId\nD1\t\n");
    assert_eq!(input.delimiter, b'\t');
    // Overriding with the wrong delimiter makes the header one column: no device column.
    let f = file(b"deviceSerialNumber;userId\nD1;\n");
    let err = InputFile::open(
        f.path(),
        &InputOptions {
            delimiter: Some(b','),
            ..InputOptions::default()
        },
    )
    .expect_err("opened")
    .to_string();
    assert!(err.contains("delimiter"), "{err}");
    // And with the right one an ambiguous header reads fine.
    let f = file(b"deviceSerialNumber;user,Id\nD1;\n");
    let input = InputFile::open(
        f.path(),
        &InputOptions {
            delimiter: Some(b';'),
            ..InputOptions::default()
        },
    )
    .expect("opens");
    assert!(input.has_column(Field::User));
}

#[test]
fn bom_crlf_and_leading_zeros() {
    let (scan, rows) = all_rows(
        format!("\u{feff}tokenSerialNumber,deviceSerialNumber,userId\r\n000123,0077,{U1}\r\n")
            .as_bytes(),
    );
    assert_eq!(scan.n_valid, 1);
    assert_eq!(rows[0].credential.token, "000123");
    assert_eq!(rows[0].credential.device, "0077");
    assert_eq!(rows[0].line, 2);
    assert_eq!(rows[0].check, RowCheck::Valid);
    assert_eq!(rows[0].credential, Credential::new("000123", "0077", U1));
}

#[test]
fn line_numbers_with_crlf_blank_lines_and_quoted_newlines() {
    let text = "deviceSerialNumber,note\r\n\
                D1,a\r\n\
                \r\n\
                \r\n\
                D2,\"two\r\nlines\"\r\n\
                D3,x\r\n\
                ,\r\n\
                D4,\"three\nline\nnote\"\n\
                \n\
                D5,y";
    let (_s, rows) = all_rows(text.as_bytes());
    assert_eq!(lines(&rows), vec![(1, 2), (2, 5), (3, 7), (4, 9), (5, 13)]);
    // Same with LF endings.
    let (_s, rows) = all_rows(text.replace("\r\n", "\n").as_bytes());
    assert_eq!(lines(&rows), vec![(1, 2), (2, 5), (3, 7), (4, 9), (5, 13)]);
}

#[test]
fn line_numbers_with_blank_lines_before_the_header() {
    let (_s, rows) = all_rows(b"\n\r\ndeviceSerialNumber\r\nD1\r\n\nD2\n");
    assert_eq!(lines(&rows), vec![(1, 4), (2, 6)]);
}

#[test]
fn line_numbers_survive_history_compaction() {
    // Enough rows to make the tap drop parsed bytes several times.
    let mut text = String::from("deviceSerialNumber,note\r\n");
    for i in 0..20_000 {
        text.push_str(&format!("D{i},\"a\r\nb\"\r\n\r\n"));
    }
    let (_s, rows) = all_rows(text.as_bytes());
    assert_eq!(rows.len(), 20_000);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.line, 2 + 3 * i as u64, "row {}", r.row);
    }
}

#[test]
fn line_numbers_with_cr_only_and_mixed_line_ends() {
    // Old Mac line ends: csv ends records at a lone CR but counts only LFs.
    let (_s, rows) = all_rows(b"deviceSerialNumber,note\rD1,a\r\rD2,\"x\ry\"\rD3,b\r");
    assert_eq!(lines(&rows), vec![(1, 2), (2, 4), (3, 6)]);
    // Every kind of line end in one file, a BOM, blank lines of each kind.
    let (_s, rows) = all_rows(b"\xEF\xBB\xBF\rdeviceSerialNumber\r\nD1\rD2\n\r\r\nD3\r\n\nD4");
    assert_eq!(lines(&rows), vec![(1, 3), (2, 4), (3, 7), (4, 9)]);
}

#[test]
fn line_numbers_with_cr_only_survive_history_compaction() {
    let mut text = String::from("deviceSerialNumber,note\r");
    for i in 0..20_000 {
        text.push_str(&format!("D{i},\"a\rb\"\r\r"));
    }
    let (_s, rows) = all_rows(text.as_bytes());
    assert_eq!(rows.len(), 20_000);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.line, 2 + 3 * i as u64, "row {}", r.row);
    }
}

#[test]
fn blank_and_all_empty_rows_are_skipped_without_a_row_number() {
    let (scan, rows) = all_rows(b"deviceSerialNumber,userId,x\nD1,,\n,,\n , \t ,\n\nD2,,\n,,,,\n");
    assert_eq!(scan.n_rows, 2);
    assert_eq!(lines(&rows), vec![(1, 2), (2, 6)]);
}

// ---- invalid rows ----------------------------------------------------------------------------

#[test]
fn invalid_rows_carry_reason_and_truncated_echo() {
    let long = "x".repeat(100);
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n\
         T1,D1,{U1},extra\n\
         T2,D\u{e9}\u{301}-{long},{U1}\n\
         T3,,{U1}\n"
    );
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"T4,D\xFF4,nobody\n");
    let (scan, rows) = all_rows(&bytes);
    assert_eq!(scan.n_invalid, 4);
    assert_eq!(scan.n_valid, 0);
    let reasons: Vec<&str> = rows
        .iter()
        .map(|r| match &r.check {
            RowCheck::Invalid { reason } => reason.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(
        reasons[0].starts_with("expected 3 fields, found 4"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("contains 'é' at position 2"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2], "deviceSerialNumber is empty");
    assert!(reasons[3].contains("not valid UTF-8"), "{reasons:?}");
    // Echo: first 64 characters, never split inside a character; lossy for bad bytes.
    assert_eq!(rows[1].credential.device.chars().count(), 64);
    assert!(rows[1].credential.device.starts_with("Dé\u{301}-xxx"));
    assert_eq!(rows[3].credential.device, "D\u{FFFD}4");
    assert_eq!(rows[3].credential.user, "nobody");
    assert_eq!(rows[0].credential.user, U1);
    assert!(!rows[0].needs_lookup());
}

#[test]
fn short_rows_echo_what_they_have() {
    let (_s, rows) = all_rows(b"tokenSerialNumber,deviceSerialNumber,userId\nT1\n");
    assert_eq!(rows[0].credential.token, "T1");
    assert_eq!(rows[0].credential.device, "");
    assert_eq!(
        rows[0].check,
        RowCheck::Invalid {
            reason: "expected 3 fields, found 1".into()
        }
    );
}

#[test]
fn oversized_cell_is_invalid() {
    let text = format!("deviceSerialNumber,note\nD1,{}\nD2,ok\n", "n".repeat(1025));
    let (scan, rows) = all_rows(text.as_bytes());
    assert_eq!((scan.n_invalid, scan.n_valid), (1, 1));
    assert!(
        matches!(&rows[0].check, RowCheck::Invalid { reason } if reason.contains("1025 bytes"))
    );
}

// ---- duplicates -----------------------------------------------------------------------------

#[test]
fn duplicates_case_insensitive_user_and_after_invalid_rows() {
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n\
         T1,D1,{U1}\n\
         T1,D1,bad\n\
         T1,D1,{upper}\n\
         T2,D1,{U1}\n\
         T1,D1,{U2}\n\
         T1,D1,{U1}\n\
         ,D9,\n\
         ,D9,\n\
         T2,D1,{U1}\n",
        upper = U1.to_uppercase()
    );
    let (scan, rows) = all_rows(text.as_bytes());
    assert_eq!(scan.n_rows, 9);
    assert_eq!(scan.n_invalid, 1);
    assert_eq!(scan.n_duplicate, 4);
    assert_eq!(scan.n_valid, 4);
    assert_eq!(scan.n_needs_lookup, 1);
    let checks: Vec<&RowCheck> = rows.iter().map(|r| &r.check).collect();
    assert!(matches!(checks[1], RowCheck::Invalid { .. }));
    assert_eq!(checks[2], &RowCheck::Duplicate { first_row: 1 });
    assert_eq!(checks[3], &RowCheck::Valid);
    assert_eq!(checks[4], &RowCheck::Valid);
    assert_eq!(checks[5], &RowCheck::Duplicate { first_row: 1 });
    assert_eq!(checks[6], &RowCheck::Valid);
    assert_eq!(checks[7], &RowCheck::Duplicate { first_row: 7 });
    assert_eq!(checks[8], &RowCheck::Duplicate { first_row: 4 });
    // A duplicate keeps its full values but is neither sent nor looked up.
    assert_eq!(rows[2].credential.user, U1.to_uppercase());
    assert!(!rows[7].needs_lookup());
    assert_eq!(scan.duplicates.first_of(3), Some(1));
    assert_eq!(scan.duplicates.first_of(2), None);
}

// ---- people by email -------------------------------------------------------------------

#[test]
fn an_email_column_under_any_of_its_names_is_read() {
    for name in [
        "email",
        "Email",
        "E-mail",
        "E Mail",
        "emailAddress",
        "Email Address",
        "mail",
        "userPrincipalName",
        "User Principal Name",
    ] {
        let text = format!("deviceSerialNumber,{name}\nD1, Ann.Leaver@acme.com \n");
        let (scan, rows) = all_rows(text.as_bytes());
        assert!(scan.ignored_columns.is_empty(), "{name}");
        assert_eq!(rows[0].credential.email, "Ann.Leaver@acme.com", "{name}");
        assert_eq!(rows[0].check, RowCheck::Valid, "{name}");
        assert!(
            rows[0].needs_lookup(),
            "{name}: confirmed by a device lookup"
        );
    }
    let err = open_err(b"deviceSerialNumber,email,Mail\nD1,a@b.c,a@b.c\n");
    assert!(err.contains("two email columns"), "{err}");
    // A column that only mentions an email is still not read, and still stops the run.
    let err = open_err(b"deviceSerialNumber,email,Manager email\nD1,a@b.c,m@b.c\n");
    assert!(err.contains("\"Manager email\""), "{err}");
}

#[test]
fn email_rows_are_checked_counted_and_repeat_only_the_same_address() {
    let text = format!(
        "deviceSerialNumber,userId,email\n\
         D1,,ann@acme.com\n\
         D1,,ANN@Acme.com\n\
         D2,,ann@acme.com\n\
         D1,{U1},ann@acme.com\n\
         D1,{U1},\n\
         D3,,not an address\n\
         D4,,\n\
         D1,{U1},Ann@acme.com\n"
    );
    let (scan, rows) = all_rows(text.as_bytes());
    assert_eq!((scan.n_rows, scan.n_invalid, scan.n_duplicate), (8, 1, 2));
    let checks: Vec<&RowCheck> = rows.iter().map(|r| &r.check).collect();
    // The same device and address in another case: a repeat, found offline.
    assert_eq!(checks[1], &RowCheck::Duplicate { first_row: 1 });
    assert_eq!(checks[2], &RowCheck::Valid);
    // Offline an address is nobody yet: not a repeat of a row naming a userId.
    assert_eq!(checks[3], &RowCheck::Valid);
    assert_eq!(checks[4], &RowCheck::Valid);
    assert_eq!(checks[7], &RowCheck::Duplicate { first_row: 4 });
    match checks[5] {
        RowCheck::Invalid { reason } => {
            assert!(reason.starts_with("email \"not an address\""), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rows[5].credential.email, "not an address", "echoed");
    // Rows 1, 3 and 4 name their user by email; only row 7 names no user at all.
    assert_eq!((scan.n_email, scan.n_no_user), (3, 1));
    assert_eq!(scan.n_needs_lookup, 5, "no row names a token");
}

#[test]
fn an_invalid_row_is_never_the_first_of_a_duplicate() {
    let (scan, rows) = all_rows(b"deviceSerialNumber,x\nD1,1,2\nD1,1\nD1,1\n");
    assert_eq!(scan.n_invalid, 1);
    assert_eq!(rows[2].check, RowCheck::Duplicate { first_row: 2 });
}

#[test]
fn without_the_index_every_valid_row_is_valid() {
    let (_f, input) = open(b"deviceSerialNumber\nD1\nD1\n");
    let rows = rows_of(&input, &DuplicateIndex::empty());
    assert!(rows.iter().all(|r| r.check == RowCheck::Valid));
}

/// The plain answer: the first valid row of every key.
fn naive_duplicates(input: &InputFile) -> HashMap<u64, u64> {
    let mut first: HashMap<(String, String, String), u64> = HashMap::new();
    let mut dups = HashMap::new();
    for r in rows_of(input, &DuplicateIndex::empty()) {
        if r.check != RowCheck::Valid {
            continue;
        }
        let c = r.credential;
        let key = (c.token, c.device, c.user.to_ascii_lowercase());
        match first.get(&key) {
            Some(&f) => {
                dups.insert(r.row, f);
            }
            None => {
                first.insert(key, r.row);
            }
        }
    }
    dups
}

#[test]
fn bloom_false_positives_do_not_change_the_answer() {
    let mut text = String::from("tokenSerialNumber,deviceSerialNumber,userId\n");
    for i in 0..3000u32 {
        // Every 7th row repeats an earlier one; the rest are distinct.
        let d = if i % 7 == 6 { i / 2 } else { i };
        text.push_str(&format!("T{},D{d},{U1}\n", d % 13));
    }
    let (_f, input) = open(text.as_bytes());
    // One 512-bit block for 3000 keys: almost every key is a (false) candidate.
    let tiny = input.scan_with(0).expect("scan");
    let normal = input.scan().expect("scan");
    assert_eq!(tiny, normal);
    let expected = naive_duplicates(&input);
    assert_eq!(tiny.duplicates.len(), expected.len());
    assert!(!expected.is_empty());
    for (row, first) in expected {
        assert_eq!(tiny.duplicates.first_of(row), Some(first), "row {row}");
    }
    assert_eq!(
        tiny.n_valid + tiny.n_duplicate + tiny.n_invalid,
        tiny.n_rows
    );
}

// ---- read_credentials ---------------------------------------------------------------------

#[test]
fn read_credentials_reads_all_or_names_the_bad_row() {
    let f = file(
        format!("userId,deviceSerialNumber,tokenSerialNumber\n{U1},D1,T1\n{U2},D2,T2\n").as_bytes(),
    );
    let creds = read_credentials(f.path()).expect("reads");
    assert_eq!(creds.len(), 2);
    assert_eq!(creds[1], Credential::new("T2", "D2", U2));

    let f = file(
        format!("userId,deviceSerialNumber,tokenSerialNumber\n{U1},D1,T1\n\n{U2},D-2,T2\n")
            .as_bytes(),
    );
    let err = read_credentials(f.path()).expect_err("read").to_string();
    assert!(
        err.contains("row 2 (line 4) is invalid: deviceSerialNumber"),
        "{err}"
    );

    let f = file(format!("userId,deviceSerialNumber,tokenSerialNumber\n{U1},D1,\n").as_bytes());
    let err = read_credentials(f.path()).expect_err("read").to_string();
    assert!(
        err.contains("row 1 (line 2) has an empty tokenSerialNumber"),
        "{err}"
    );

    let f = file(b"deviceSerialNumber,userId\n");
    let err = read_credentials(f.path()).expect_err("read").to_string();
    assert!(err.contains("has no tokenSerialNumber column"), "{err}");
}

// ---- API shape ----------------------------------------------------------------------------

#[test]
fn passes_can_move_to_another_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<InputFile>();
    assert_send::<Scan>();
    assert_send::<Rows<'static>>();
}

#[test]
fn a_file_changed_between_passes_is_an_error() {
    let f = file(b"deviceSerialNumber\nD1\n");
    let input = InputFile::open(f.path(), &InputOptions::default()).expect("opens");
    std::fs::write(f.path(), b"userId,deviceSerialNumber\nx,D1\n").expect("rewrite");
    let err = input.scan().expect_err("scanned").to_string();
    assert!(err.contains("changed while it was being read"), "{err}");
}

#[test]
fn the_plan_counts_rows_naming_no_user_and_short_device_serials() {
    let text = format!(
        "deviceSerialNumber,userId,tokenSerialNumber\n\
         040000001,{U1},\n040000002,,T2\n40000003,,\n40000003,,\nAB1,,\n04000-004,{U2},\n"
    );
    let (scan, rows) = all_rows(text.as_bytes());
    assert_eq!((scan.n_rows, scan.n_valid, scan.n_duplicate), (6, 4, 1));
    // Rows 2, 3 and 5; row 4 repeats row 3, row 6 is invalid.
    assert_eq!(scan.n_no_user, 3);
    assert_eq!(scan.n_short_device, 1);
    assert!(scan.device_serials.is_short(&rows[2].credential.device));
    assert!(scan.ignored_columns.is_empty());
}

#[test]
fn the_scan_exposes_size_and_sha256() {
    let bytes = b"deviceSerialNumber,Name\nD1,x\n";
    let (scan, _) = all_rows(bytes);
    assert_eq!(scan.size, bytes.len() as u64);
    // sha256sum of the same bytes.
    assert_eq!(
        scan.sha256,
        "e53dcb9f676a45aedaedfeff01b041f93a375f463dbea1b5a75931f269c454a4"
    );
    assert_eq!(scan.sha256, scan.fingerprint.sha256_hex());
    assert_eq!(scan.ignored_columns, ["\"Name\""]);
}

#[test]
fn a_pass_after_the_plan_reads_only_the_planned_rows() {
    let f = file(format!("deviceSerialNumber,userId\nD1,{U1}\nD2,{U2}\n").as_bytes());
    let input = InputFile::open(f.path(), &InputOptions::default()).expect("opens");
    let scan = input.scan().expect("scan");
    assert!(input.check_unchanged(&scan).is_ok());
    // Rows appended after the plan.
    let mut appended = std::fs::OpenOptions::new()
        .append(true)
        .open(f.path())
        .expect("append");
    appended.write_all(b"D3,\nD4,\n").expect("append");
    let err = format!(
        "{:#}",
        input.check_unchanged(&scan).expect_err("unchanged?")
    );
    assert!(err.starts_with("the input changed after the plan"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    let mut rows = input.rows(&scan).expect("opens");
    for want in ["D1", "D2"] {
        assert_eq!(
            rows.next()
                .expect("a row")
                .expect("planned")
                .credential
                .device,
            want
        );
    }
    let err = format!(
        "{:#}",
        rows.next().expect("an error").expect_err("extra row")
    );
    assert!(err.starts_with("the input changed after the plan"), "{err}");
    assert!(err.contains("longer now"), "{err}");
    assert!(rows.next().is_none());
    // An edit of the same length: refused before any row is read (here, when the pass
    // opens, as the one block holds the header too).
    std::fs::write(
        f.path(),
        format!("deviceSerialNumber,userId\nD9,{U1}\nD2,{U2}\n"),
    )
    .expect("edit");
    let err = match input.rows(&scan) {
        Err(e) => format!("{e:#}"),
        Ok(mut rows) => format!("{:#}", rows.next().expect("an error").expect_err("edited")),
    };
    assert!(err.contains("are not the ones the plan read"), "{err}");
}

#[test]
fn a_record_over_1_mib_is_a_whole_file_error_naming_its_line() {
    let mut text = format!("deviceSerialNumber,userId\nD1,{U1}\n\nD2,\"{U2}\n");
    while text.len() < 3 * 1024 * 1024 {
        text.push_str("D3,x\n");
    }
    let (_f, input) = open(text.as_bytes());
    let err = format!("{:#}", input.scan().expect_err("scanned"));
    assert!(
        err.contains("the record that starts on line 4 is longer than 1 MiB"),
        "{err}"
    );
    assert!(err.contains("never closed"), "{err}");
    // Just under the cap is a record like any other (its cell is too long: invalid).
    let mut text = "deviceSerialNumber,note\nD1,".to_string();
    text.push_str(&"n".repeat(1024 * 1024 - 100));
    text.push_str("\nD2,x\n");
    let (scan, rows) = all_rows(text.as_bytes());
    assert_eq!((scan.n_rows, scan.n_invalid), (2, 1));
    assert_eq!(rows[1].check, RowCheck::Valid);
}

#[test]
fn credential_like_columns_stop_opening_unless_ignored() {
    let f = file(b"Device Serial Number,User ID (UUID),Name\nD1,x,y\n");
    let err = format!(
        "{:#}",
        InputFile::open(f.path(), &InputOptions::default()).expect_err("opened")
    );
    assert!(
        err.contains("column 2 (\"User ID (UUID)\") is not a column"),
        "{err}"
    );
    let opts = InputOptions {
        ignore_columns: vec!["user id (uuid)".into()],
        ..InputOptions::default()
    };
    let input = InputFile::open(f.path(), &opts).expect("opens");
    assert_eq!(input.cols.ignored(), ["\"User ID (UUID)\"", "\"Name\""]);
}

// ---- properties ---------------------------------------------------------------------------

/// Checks everything that must hold for any file: no panics, consistent counts, consecutive
/// row numbers, non-decreasing lines, and an exact duplicate index.
fn check_any_file(bytes: &[u8]) {
    let f = file(bytes);
    for opts in [
        InputOptions::default(),
        InputOptions {
            delimiter: Some(b';'),
            ..InputOptions::default()
        },
    ] {
        let Ok(input) = InputFile::open(f.path(), &opts) else {
            continue;
        };
        let scan = input.scan().expect("scan of a regular file");
        assert_eq!(
            scan.n_valid + scan.n_invalid + scan.n_duplicate,
            scan.n_rows
        );
        assert!(scan.n_needs_lookup <= scan.n_valid);
        assert_eq!(scan, input.scan_with(0).expect("tiny scan"));
        let rows = planned_rows(&input, &scan);
        assert_eq!(rows.len() as u64, scan.n_rows);
        let mut prev_line = 1;
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.row, i as u64 + 1);
            assert!(r.line > 1 && r.line >= prev_line, "{rows:?}");
            prev_line = r.line;
            let c = &r.credential;
            for v in [&c.token, &c.device, &c.user] {
                assert!(v.chars().count() <= 64 || r.check == RowCheck::Valid);
            }
        }
        for r in &rows {
            match &r.check {
                RowCheck::Valid | RowCheck::Duplicate { .. } => assert_follows_the_rules(r),
                RowCheck::Invalid { reason } => {
                    assert!(!reason.trim().is_empty(), "an invalid row without a reason");
                }
            }
        }
        let n = |p: fn(&InputRow) -> bool| rows.iter().filter(|r| p(r)).count() as u64;
        assert_eq!(n(|r| r.check == RowCheck::Valid), scan.n_valid);
        assert_eq!(n(InputRow::needs_lookup), scan.n_needs_lookup);
        assert_eq!(
            n(|r| r.check == RowCheck::Valid && r.credential.user.is_empty()),
            scan.n_no_user
        );
        let n_short = rows
            .iter()
            .filter(|r| {
                r.check == RowCheck::Valid && scan.device_serials.is_short(&r.credential.device)
            })
            .count() as u64;
        assert_eq!(n_short, scan.n_short_device);
        assert_eq!(
            n(|r| matches!(r.check, RowCheck::Invalid { .. })),
            scan.n_invalid
        );
        let expected = naive_duplicates(&input);
        assert_eq!(expected.len() as u64, scan.n_duplicate);
        for (row, first) in expected {
            assert_eq!(scan.duplicates.first_of(row), Some(first));
        }
    }
}

/// The row rules of docs/design.md#input, written out independently of `check.rs`: what a row
/// must be to be sent.
fn assert_follows_the_rules(r: &InputRow) {
    let serial =
        |v: &str| (1..=36).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric());
    let uuid = |v: &str| {
        let groups: Vec<&str> = v.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(
        serial(&r.credential.device),
        "valid row with a bad device: {r:?}"
    );
    assert!(
        r.credential.token.is_empty() || serial(&r.credential.token),
        "bad token: {r:?}"
    );
    assert!(
        r.credential.user.is_empty() || uuid(&r.credential.user),
        "bad user: {r:?}"
    );
}

/// Bytes that look enough like a CSV input to reach every branch of the reader.
fn csvish() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        Just(b"".to_vec()),
        Just(b" ".to_vec()),
        Just(b"T1".to_vec()),
        Just(b"D1".to_vec()),
        Just(b"0077".to_vec()),
        Just(U1.as_bytes().to_vec()),
        Just(U1.to_uppercase().into_bytes()),
        Just(b"\"q,\r\nq\"".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\xFF".to_vec()),
        Just(b"1.4E+11".to_vec()),
        Just(vec![b'A'; 1100]),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    let sep = prop_oneof![Just(b','), Just(b';'), Just(b'\t')];
    let eol = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec())
    ];
    let line = (proptest::collection::vec(cell, 0..5), sep, eol).prop_map(|(cells, sep, eol)| {
        let mut out = cells.join(&sep);
        out.extend(eol);
        out
    });
    let header = prop_oneof![
        Just(b"tokenSerialNumber,deviceSerialNumber,userId\n".to_vec()),
        Just(b"\xEF\xBB\xBFuser_id;DEVICE SERIAL NUMBER\r\n".to_vec()),
        Just(b"deviceSerialNumber\n".to_vec()),
        Just(Vec::new()),
    ];
    (header, proptest::collection::vec(line, 0..30)).prop_map(|(mut h, lines)| {
        for l in lines {
            h.extend(l);
        }
        h
    })
}

/// A credential as a row holds it; token and user may be empty (resolved by lookup).
fn values() -> impl Strategy<Value = Credential> {
    let serial = "[A-Za-z0-9]{1,36}";
    let hex = |n: usize| {
        proptest::collection::vec(
            prop_oneof![Just('a'), Just('F'), Just('0'), Just('9'), Just('c')],
            n,
        )
        .prop_map(|v| v.into_iter().collect::<String>())
    };
    let user = (hex(8), hex(4), hex(4), hex(4), hex(12))
        .prop_map(|(a, b, c, d, e)| format!("{a}-{b}-{c}-{d}-{e}"));
    (
        prop_oneof![3 => serial.prop_map(String::from), 1 => Just(String::new())],
        serial,
        prop_oneof![3 => user, 1 => Just(String::new())],
    )
        .prop_map(|(token, device, user)| Credential::new(token, device, user))
}

/// How a spreadsheet or script may have written the file: every accepted dialect.
#[derive(Clone, Debug)]
struct Dialect {
    delimiter: u8,
    bom: bool,
    crlf: bool,
    /// Header spelling per known column.
    spelling: [usize; 3],
    /// Column order: a permutation of 0..5 (3 known columns and 2 extra ones).
    order: Vec<usize>,
    /// Which known columns are present (device always).
    with_token: bool,
    with_user: bool,
    quote_all: bool,
}

fn dialect() -> impl Strategy<Value = Dialect> {
    (
        prop_oneof![Just(b','), Just(b';'), Just(b'\t')],
        any::<bool>(),
        any::<bool>(),
        [0..4usize, 0..4usize, 0..4usize],
        Just((0..5).collect::<Vec<usize>>()).prop_shuffle(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(delimiter, bom, crlf, spelling, order, with_token, with_user, quote_all)| Dialect {
                delimiter,
                bom,
                crlf,
                spelling,
                order,
                with_token,
                with_user,
                quote_all,
            },
        )
}

const SPELLINGS: [[&str; 4]; 3] = [
    [
        "tokenSerialNumber",
        "token_serial_number",
        "Token Serial Number",
        "TOKEN-SERIAL-NUMBER",
    ],
    [
        "deviceSerialNumber",
        "device_serial_number",
        "Device Serial Number",
        "DEVICESERIALNUMBER",
    ],
    ["userId", "user_id", "User ID", "USERID"],
];

/// Writes `rows` in `dialect`, with `extras` (two cells per row, any text) and blank lines
/// after the rows flagged in `blanks`. Returns the bytes and each record's start line.
fn write_dialect(
    d: &Dialect,
    rows: &[Credential],
    extras: &[(String, String)],
    blanks: &[bool],
    pads: &[bool],
) -> (Vec<u8>, Vec<u64>) {
    let eol: &[u8] = if d.crlf { b"\r\n" } else { b"\n" };
    let record = |cells: Vec<String>| -> Vec<u8> {
        let mut w = csv::WriterBuilder::new()
            .delimiter(d.delimiter)
            .quote_style(if d.quote_all {
                csv::QuoteStyle::Always
            } else {
                csv::QuoteStyle::Necessary
            })
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(&cells).expect("write to a Vec");
        let mut bytes = w.into_inner().expect("flush to a Vec");
        bytes.pop(); // our own line end below
        bytes
    };
    let present = [d.with_token, true, d.with_user];
    let header: Vec<String> = d
        .order
        .iter()
        .filter(|&&c| c >= 3 || present[c])
        .map(|&c| match c {
            0..=2 => SPELLINGS[c][d.spelling[c]].to_string(),
            3 => "note".to_string(),
            _ => "Employee Name".to_string(),
        })
        .collect();
    let mut out = Vec::new();
    if d.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    out.extend(record(header));
    out.extend_from_slice(eol);
    let mut lines = Vec::new();
    for (i, v) in rows.iter().enumerate() {
        let pad = |s: &str| {
            if pads[i] && !s.is_empty() {
                format!("  {s} ")
            } else {
                s.to_string()
            }
        };
        let cells: Vec<String> = d
            .order
            .iter()
            .filter(|&&c| c >= 3 || present[c])
            .map(|&c| match c {
                0 => pad(&v.token),
                1 => pad(&v.device),
                2 => pad(&v.user),
                3 => extras[i].0.clone(),
                _ => extras[i].1.clone(),
            })
            .collect();
        // A line break is an LF, or a CR not followed by one (a CRLF counts once).
        let breaks = (0..out.len())
            .filter(|&i| out[i] == b'\n' || (out[i] == b'\r' && out.get(i + 1) != Some(&b'\n')))
            .count();
        lines.push(1 + breaks as u64);
        out.extend(record(cells));
        out.extend_from_slice(eol);
        if blanks[i] {
            out.extend_from_slice(eol);
        }
    }
    (out, lines)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any credentials written in any accepted dialect — delimiter, BOM, CRLF, header spelling,
    /// column order, optional columns absent, extra columns holding any text (delimiters,
    /// quotes, line breaks), padding, blank lines, quoting — read back exactly, each valid,
    /// on the line it starts on.
    #[test]
    fn any_dialect_reads_back_the_values_written(
        d in dialect(),
        rows in proptest::collection::vec(values(), 1..12),
        extras in proptest::collection::vec((".{0,40}", "[^\u{0}]{0,20}"), 12),
        blanks in proptest::collection::vec(any::<bool>(), 12),
        pads in proptest::collection::vec(any::<bool>(), 12),
    ) {
        // Rows that repeat an earlier one are duplicates, not valid: keep the first of each.
        let mut seen = std::collections::HashSet::new();
        let mut rows: Vec<Credential> = rows;
        for v in &mut rows {
            if !d.with_token {
                v.token.clear();
            }
            if !d.with_user {
                v.user.clear();
            }
        }
        rows.retain(|v| seen.insert((v.token.clone(), v.device.clone(), v.user.to_lowercase())));
        // A line whose cells are all blank is skipped: an extra cell of only spaces next to
        // nothing else cannot happen (the device is never empty), so every row is a record.
        let (bytes, lines) = write_dialect(&d, &rows, &extras, &blanks, &pads);
        let (_f, input) = open(&bytes);
        let scan = input.scan().expect("scan");
        prop_assert_eq!(scan.n_rows, rows.len() as u64);
        prop_assert_eq!(scan.n_valid, rows.len() as u64);
        let got = rows_of(&input, &scan.duplicates);
        for ((v, r), line) in rows.iter().zip(&got).zip(&lines) {
            prop_assert_eq!(&r.check, &RowCheck::Valid);
            prop_assert_eq!(&r.credential, v);
            prop_assert_eq!(r.line, *line);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_any_file(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_header_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        let mut file = b"tokenSerialNumber,deviceSerialNumber,userId\n".to_vec();
        file.extend(bytes);
        check_any_file(&file);
    }

    #[test]
    fn csv_like_files_are_counted_consistently(bytes in csvish()) {
        check_any_file(&bytes);
    }
}

// ---- benchmark (ignored: run with --release -- --ignored --nocapture) --------------------

/// Peak resident set size of this process in KiB, from /proc (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "benchmark: cargo test --release input::tests::bench -- --ignored --nocapture"]
fn bench_scan_and_rows_on_a_million_rows() {
    let n: u64 = std::env::var("INPUT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dup_every: u64 = std::env::var("INPUT_BENCH_DUP_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut f = NamedTempFile::new().expect("temp file");
    {
        let mut w = std::io::BufWriter::new(f.as_file_mut());
        writeln!(w, "tokenSerialNumber,deviceSerialNumber,userId").expect("write");
        for i in 0..n {
            // Some duplicates (every `dup_every`-th row), so the second pass runs.
            let k = if dup_every > 0 && i % dup_every == dup_every - 1 {
                i / 2
            } else {
                i
            };
            writeln!(
                w,
                "{:012},{:012},{:08x}-4f89-11d3-9a0c-0305e82c3301",
                k,
                k + 7,
                k
            )
            .expect("write");
        }
        w.flush().expect("flush");
    }
    let rss_before = peak_rss_kib();
    let input = InputFile::open(f.path(), &InputOptions::default()).expect("opens");
    let t = std::time::Instant::now();
    let scan = input.scan().expect("scan");
    let scan_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let mut n_rows = 0u64;
    for r in input.rows(&scan).expect("rows") {
        std::hint::black_box(r.expect("row"));
        n_rows += 1;
    }
    let rows_s = t.elapsed().as_secs_f64();
    assert_eq!(n_rows, n);
    eprintln!(
        "{n} rows, {} duplicates: scan (2 passes) {scan_s:.3} s = {:.0} rows/s; rows() pass \
         {rows_s:.3} s = {:.0} rows/s; peak RSS before {rss_before:?} KiB, after {:?} KiB",
        scan.n_duplicate,
        n as f64 / scan_s,
        n as f64 / rows_s,
        peak_rss_kib()
    );
}
