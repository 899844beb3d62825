//! Row validation: which records are blank, which are invalid and why, in plain words
//! (docs/design.md#input).

use csv::ByteRecord;

use super::header::Columns;
use super::text::{email_problem, is_serial, is_uuid, show};
use crate::credential::Field;

/// The longest cell a row may have. Real serials and ids are short; a kilobyte cell is a broken
/// export (an unclosed quote swallowing the rest of the file) and must not reach the report whole.
pub(crate) const MAX_CELL_BYTES: usize = 1024;

const UUID_EXAMPLE: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

/// The verdict on one non-blank record.
pub(crate) enum Validity<'r> {
    /// Trimmed values; an absent column reads as "".
    Valid {
        token: &'r str,
        device: &'r str,
        user: &'r str,
        email: &'r str,
    },
    Invalid(Problem<'r>),
}

/// Why a record is invalid. Kept borrowed and unformatted so that counting passes pay nothing
/// for the wording; `reason` renders it for the report.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem<'r> {
    /// A quote opened in this cell and never closed: it swallowed `lines` following lines.
    UnclosedQuote {
        column: usize,
        lines: usize,
    },
    FieldCount {
        expected: usize,
        found: usize,
    },
    NotUtf8 {
        column: usize,
    },
    TooLong {
        column: usize,
        len: usize,
    },
    DeviceEmpty,
    BadSerial {
        field: Field,
        value: &'r str,
    },
    BadUser {
        value: &'r str,
    },
    /// The email cell is not an address; `why` says what is wrong with it.
    BadEmail {
        value: &'r str,
        why: &'static str,
    },
}

impl Problem<'_> {
    /// The plain-words reason the report shows; values are quoted to at most 64 characters.
    pub(crate) fn reason(&self, cols: &Columns, delimiter: u8) -> String {
        match *self {
            Problem::UnclosedQuote { column, lines } => format!(
                "a double quote opened in {} is never closed, so {} read as part of this \
                 value and not as rows; close the quote (or double it: \"\") and run again. \
                 Nothing of these lines was sent",
                cols.describe(column),
                if lines == 1 {
                    "the next line was".to_string()
                } else {
                    format!("the next {lines} lines were")
                }
            ),
            Problem::FieldCount { expected, found } if found > expected => format!(
                "expected {expected} fields, found {found} (a value that contains {} must be \
                 in double quotes)",
                describe_delimiter(delimiter)
            ),
            Problem::FieldCount { expected, found } => {
                format!("expected {expected} fields, found {found}")
            }
            Problem::NotUtf8 { column } => format!(
                "{} is not valid UTF-8; save the file as UTF-8 (in Excel: \"CSV UTF-8\")",
                cols.describe(column)
            ),
            Problem::TooLong { column, len } => format!(
                "{} is {len} bytes long; a cell may hold at most {MAX_CELL_BYTES} bytes",
                cols.describe(column)
            ),
            Problem::DeviceEmpty => "deviceSerialNumber is empty".to_string(),
            Problem::BadSerial { field, value } => serial_reason(field, value),
            Problem::BadUser { value } => user_reason(value),
            Problem::BadEmail { value, why } => format!(
                "email {} is not an email address: {why}; write one address such as \
                 ann.leaver@example.com",
                show(value)
            ),
        }
    }
}

fn describe_delimiter(d: u8) -> String {
    match d {
        b'\t' => "a tab".to_string(),
        d => format!("'{}'", d as char),
    }
}

/// True when the record is empty or every cell is whitespace: blank lines and the `,,,` lines
/// spreadsheet exports end with. Such records are skipped and take no row number.
pub(crate) fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(|cell| {
        cell.iter().all(u8::is_ascii_whitespace)
            || std::str::from_utf8(cell).is_ok_and(|s| s.trim().is_empty())
    })
}

/// Validates one non-blank record; `odd_quotes` says its bytes in the file hold an odd
/// number of `"`. Check order: an unclosed quote, field count, UTF-8, cell length, then the
/// device, token and user values.
pub(crate) fn validate<'r>(
    record: &'r ByteRecord,
    cols: &Columns,
    odd_quotes: bool,
) -> Validity<'r> {
    let expected = cols.n_fields();
    if let Some(problem) = swallowed_lines(record, odd_quotes) {
        return Validity::Invalid(problem);
    }
    if record.len() != expected {
        return Validity::Invalid(Problem::FieldCount {
            expected,
            found: record.len(),
        });
    }
    // One walk over the cells finds both the first non-UTF-8 cell and the first oversized one;
    // a non-UTF-8 cell anywhere is reported first. An all-ASCII record (the usual case) is
    // UTF-8 as a whole, which spares the per-cell decoding.
    let all_ascii = record.as_slice().is_ascii();
    let mut too_long = None;
    for (column, cell) in record.iter().enumerate() {
        if !all_ascii && std::str::from_utf8(cell).is_err() {
            return Validity::Invalid(Problem::NotUtf8 { column });
        }
        if too_long.is_none() && cell.len() > MAX_CELL_BYTES {
            too_long = Some(Problem::TooLong {
                column,
                len: cell.len(),
            });
        }
    }
    if let Some(problem) = too_long {
        return Validity::Invalid(problem);
    }
    // Every cell was just checked to be UTF-8, so "" below is unreachable, not a silent default.
    let cell = |i: Option<usize>| -> &'r str {
        i.and_then(|i| record.get(i))
            .and_then(|b| std::str::from_utf8(b).ok())
            .map_or("", str::trim)
    };
    let device = cell(Some(cols.device));
    let token = cell(cols.token);
    let user = cell(cols.user);
    let email = cell(cols.email);
    if device.is_empty() {
        return Validity::Invalid(Problem::DeviceEmpty);
    }
    if !is_serial(device) {
        return Validity::Invalid(Problem::BadSerial {
            field: Field::Device,
            value: device,
        });
    }
    if !token.is_empty() && !is_serial(token) {
        return Validity::Invalid(Problem::BadSerial {
            field: Field::Token,
            value: token,
        });
    }
    if !user.is_empty() && !is_uuid(user) {
        return Validity::Invalid(Problem::BadUser { value: user });
    }
    if !email.is_empty()
        && let Some(why) = email_problem(email)
    {
        return Validity::Invalid(Problem::BadEmail { value: email, why });
    }
    Validity::Valid {
        token,
        device,
        user,
        email,
    }
}

/// A quoted cell that never closes runs on through the following lines, and csv reads them
/// as its value: the rows on them vanish without a trace, and the record may even look valid
/// when the cell is in an ignored last column. Well-formed quoting always uses quotes in
/// pairs (open, close, and `""` inside), so a record that spans lines with an odd number of
/// quote characters in its bytes (`odd_quotes`, counted by the reader) is that. The cell is
/// the first one holding a line break; the count is of the lines it swallowed.
fn swallowed_lines(record: &ByteRecord, odd_quotes: bool) -> Option<Problem<'_>> {
    if !odd_quotes {
        return None;
    }
    record.iter().enumerate().find_map(|(column, cell)| {
        // A cell running to the end of the file ends with that file's last line break.
        let end = cell
            .iter()
            .rposition(|&b| b != b'\n' && b != b'\r')
            .map_or(0, |i| i + 1);
        let cell = &cell[..end];
        // Line breaks: LF, CRLF, or a lone CR.
        let lines = cell.iter().filter(|&&b| b == b'\n').count()
            + cell
                .windows(2)
                .filter(|w| w[0] == b'\r' && w[1] != b'\n')
                .count();
        (lines > 0).then_some(Problem::UnclosedQuote { column, lines })
    })
}

fn serial_reason(field: Field, value: &str) -> String {
    let name = field.name();
    let q = show(value);
    const RULE: &str = "a serial is 1–36 letters and digits";
    if looks_scientific(value) {
        return format!(
            "{name} {q} looks like a spreadsheet number in scientific notation; export the \
             column as text"
        );
    }
    if looks_decimal(value) {
        return format!(
            "{name} {q} looks like a spreadsheet number with a decimal part; export the column \
             as text"
        );
    }
    if value.starts_with('\'') {
        return format!(
            "{name} {q} starts with an apostrophe (a spreadsheet text marker); remove it"
        );
    }
    if is_uuid(value) {
        return format!("{name} {q} looks like a userId, not a serial; are the columns swapped?");
    }
    if let Some((pos, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
    {
        let what = match c {
            ' ' => "a space".to_string(),
            '\u{a0}' => "a non-breaking space".to_string(),
            c => format!("{:?}", c),
        };
        return format!("{name} {q} contains {what} at position {}; {RULE}", pos + 1);
    }
    format!(
        "{name} {q} is {} characters long; {RULE}",
        value.chars().count()
    )
}

fn user_reason(value: &str) -> String {
    let q = show(value);
    if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}'))
        && is_uuid(inner)
    {
        return format!("userId {q} is in braces; write it without them");
    }
    if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!(
            "userId {q} has no dashes; write it as 8-4-4-4-12 hex digits, e.g. {UUID_EXAMPLE}"
        );
    }
    format!("userId {q} is not a UUID (8-4-4-4-12 hex digits, e.g. {UUID_EXAMPLE})")
}

/// `1.40100E+11`, `1,401E11`: what a spreadsheet shows for a long number in a General column.
fn looks_scientific(v: &str) -> bool {
    let Some((mantissa, exponent)) = v.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent
        .strip_prefix(['+', '-'])
        .unwrap_or(exponent)
        .as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let mantissa_ok = match mantissa.split_once(['.', ',']) {
        Some((int, frac)) => digits(int.as_bytes()) && digits(frac.as_bytes()),
        None => digits(mantissa.as_bytes()),
    };
    mantissa_ok && digits(exponent)
}

/// `14010008038.0`: a number column exported with a decimal part.
fn looks_decimal(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    v.split_once(['.', ','])
        .is_some_and(|(int, frac)| digits(int) && digits(frac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Columns {
        super::super::header::map_columns(
            std::path::Path::new("t.csv"),
            names.iter().map(|s| s.to_string()).collect(),
        )
        .expect("columns")
    }

    fn rec(cells: &[&[u8]]) -> ByteRecord {
        ByteRecord::from(cells.to_vec())
    }

    fn reason(cells: &[&[u8]]) -> String {
        let c = cols(&["tokenSerialNumber", "deviceSerialNumber", "userId"]);
        let r = rec(cells);
        match validate(&r, &c, false) {
            Validity::Invalid(p) => p.reason(&c, b','),
            Validity::Valid { .. } => panic!("valid: {cells:?}"),
        }
    }

    const U: &[u8] = b"3F2504E0-4F89-11D3-9A0C-0305E82C3301";

    #[test]
    fn valid_rows_are_trimmed_and_keep_leading_zeros() {
        let c = cols(&["tokenSerialNumber", "deviceSerialNumber", "userId"]);
        let r = rec(&[b" 000123 ", b"\t0077\xC2\xA0", U]);
        match validate(&r, &c, false) {
            Validity::Valid {
                token,
                device,
                user,
                ..
            } => {
                assert_eq!(token, "000123");
                assert_eq!(device, "0077");
                assert_eq!(user.as_bytes(), U);
            }
            Validity::Invalid(p) => panic!("invalid: {p:?}"),
        }
    }

    #[test]
    fn empty_token_and_user_are_valid() {
        let c = cols(&["tokenSerialNumber", "deviceSerialNumber", "userId"]);
        let r = rec(&[b"", b"D1", b"  "]);
        assert!(matches!(
            validate(&r, &c, false),
            Validity::Valid {
                token: "",
                device: "D1",
                user: "",
                email: "",
            }
        ));
        let c = cols(&["deviceSerialNumber"]);
        let r = rec(&[b"D1"]);
        assert!(matches!(
            validate(&r, &c, false),
            Validity::Valid {
                token: "",
                device: "D1",
                user: "",
                email: "",
            }
        ));
    }

    #[test]
    fn each_invalid_reason() {
        assert_eq!(reason(&[b"T", b"D"]), "expected 3 fields, found 2");
        assert_eq!(
            reason(&[b"T", b"D", U, b"x"]),
            "expected 3 fields, found 4 (a value that contains ',' must be in double quotes)"
        );
        assert_eq!(
            reason(&[b"T", b"D\xFF", U]),
            "column 2 (\"deviceSerialNumber\") is not valid UTF-8; save the file as UTF-8 (in \
             Excel: \"CSV UTF-8\")"
        );
        let long = vec![b'A'; 1025];
        assert_eq!(
            reason(&[b"T", b"D", &long]),
            "column 3 (\"userId\") is 1025 bytes long; a cell may hold at most 1024 bytes"
        );
        assert_eq!(reason(&[b"T", b"  ", U]), "deviceSerialNumber is empty");
        assert_eq!(
            reason(&[b"T", b"1.40100E+11", U]),
            "deviceSerialNumber \"1.40100E+11\" looks like a spreadsheet number in scientific \
             notation; export the column as text"
        );
        assert!(reason(&[b"14010008038.0", b"D", U]).contains("decimal part"));
        assert!(reason(&[b"'0140", b"D", U]).contains("apostrophe"));
        assert!(reason(&[U, b"D", U]).contains("columns swapped"));
        assert_eq!(
            reason(&[b"AB-12", b"D", U]),
            "tokenSerialNumber \"AB-12\" contains '-' at position 3; a serial is 1–36 letters \
             and digits"
        );
        assert!(reason(&[b"AB 12", b"D", U]).contains("a space at position 3"));
        assert_eq!(
            reason(&[b"T", "X".repeat(37).as_bytes(), U]),
            format!(
                "deviceSerialNumber \"{}\" is 37 characters long; a serial is 1–36 letters and \
                 digits",
                "X".repeat(37)
            )
        );
        assert_eq!(
            reason(&[b"T", b"D", b"nobody"]),
            "userId \"nobody\" is not a UUID (8-4-4-4-12 hex digits, e.g. \
             3f2504e0-4f89-11d3-9a0c-0305e82c3301)"
        );
        assert!(
            reason(&[b"T", b"D", b"{3f2504e0-4f89-11d3-9a0c-0305e82c3301}"]).contains("braces")
        );
        assert!(reason(&[b"T", b"D", b"3f2504e04f8911d39a0c0305e82c3301"]).contains("no dashes"));
    }

    #[test]
    fn check_order_is_count_utf8_length_then_fields() {
        let long = vec![b'A'; 2000];
        // Wrong count wins over bad UTF-8.
        assert!(reason(&[b"\xFF", b"D"]).starts_with("expected 3 fields"));
        // Bad UTF-8 wins over length, even in a later column.
        assert!(reason(&[&long, b"D", b"\xFF"]).contains("not valid UTF-8"));
        // Length wins over a bad device.
        assert!(reason(&[&long, b"", U]).contains("2000 bytes"));
        // Device is checked before token and user.
        assert_eq!(
            reason(&[b"bad-token", b"", b"x"]),
            "deviceSerialNumber is empty"
        );
    }

    #[test]
    fn reasons_quote_at_most_64_characters() {
        let v = "ü-".repeat(200);
        let r = reason(&[v.as_bytes(), b"D", U]);
        let quoted = r.split('"').nth(1).expect("quoted value");
        assert_eq!(quoted.chars().count(), 65); // 64 characters and the ellipsis
        assert!(quoted.ends_with('…'));
    }

    #[test]
    fn blank_records() {
        assert!(is_blank(&rec(&[])));
        assert!(is_blank(&rec(&[b""])));
        assert!(is_blank(&rec(&[b"", b" ", b"\t", "\u{a0}".as_bytes()])));
        assert!(!is_blank(&rec(&[b"", b"x", b""])));
        assert!(!is_blank(&rec(&[b"\xFF"])));
    }
}
