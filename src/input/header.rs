//! The header line: delimiter sniffing, column-name normalisation and the column map.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use super::text::{is_uuid, show};
use crate::credential::Field;

/// How much of the file `open` reads up front to sniff the delimiter. A header line longer than
/// this is not a header a person wrote; refusing it keeps a binary file without line breaks from
/// being read into memory as one giant "header".
pub(crate) const HEAD_LIMIT: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An example header for error messages, so the fix can be copied.
pub(crate) const EXAMPLE_HEADER: &str = "tokenSerialNumber,deviceSerialNumber,userId";

/// What the first line of the file looks like, as far as `open` needs to know before parsing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// Nothing but a BOM and line breaks.
    Empty,
    /// No line break outside quotes within `HEAD_LIMIT` bytes, and there is more.
    /// `in_quotes`: a double quote was still open, the likely cause.
    TooLong { in_quotes: bool },
    /// A header line; the delimiter most frequent in it (outside quotes).
    Line { sniffed: u8 },
}

/// Looks at the start of the file. `is_whole_file` says whether `head` is all there is, so a
/// single header line without a trailing newline is still a header.
pub(crate) fn inspect_head(head: &[u8], is_whole_file: bool) -> Head {
    let head = head.strip_prefix(BOM).unwrap_or(head);
    // csv skips empty lines before the first record, so the sniffer does too.
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let line = &head[start..];
    if line.is_empty() {
        return Head::Empty;
    }
    // Counts for ',' ';' TAB, in that order (the order also breaks nothing: ties go to ',').
    let mut counts = [0usize; 3];
    let mut in_quotes = false;
    let mut ended = false;
    for &b in line {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\r' | b'\n' if !in_quotes => {
                ended = true;
                break;
            }
            b',' if !in_quotes => counts[0] += 1,
            b';' if !in_quotes => counts[1] += 1,
            b'\t' if !in_quotes => counts[2] += 1,
            _ => {}
        }
    }
    if !ended && !is_whole_file {
        return Head::TooLong { in_quotes };
    }
    Head::Line {
        sniffed: pick_delimiter(counts),
    }
}

/// Most frequent wins; a tie for first place, or no delimiter at all, means ','.
fn pick_delimiter(counts: [usize; 3]) -> u8 {
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 || counts.iter().filter(|&&c| c == max).count() > 1 {
        return b',';
    }
    if counts[1] == max {
        b';'
    } else if counts[2] == max {
        b'\t'
    } else {
        b','
    }
}

/// Checks a `--delimiter` override. Any single ASCII punctuation character or TAB works for the
/// csv parser; a letter, digit, quote, space or line break would make nonsense of every row.
pub(crate) fn check_delimiter(d: u8) -> Result<u8> {
    if d == b'\t' || (d.is_ascii_punctuation() && d != b'"') {
        return Ok(d);
    }
    let shown = if d.is_ascii_graphic() || d == b' ' {
        format!("'{}'", d as char)
    } else {
        format!("byte 0x{d:02X}")
    };
    bail!(
        "--delimiter {shown} cannot be used: give one ASCII punctuation character or a tab \
         (the usual ones are ',' ';' and TAB), or leave --delimiter out to detect it from the header"
    )
}

/// The comparable form of a column name: ASCII letters and digits only, lowercased, so that
/// `tokenSerialNumber`, `token_serial_number` and `Token Serial Number` are one column.
pub(crate) fn normalise(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The known column a header name maps to, if any. The email column goes by the names HR and
/// directory exports give it (`e-mail` and `E Mail` normalise to `email`).
pub(crate) fn known_field(name: &str) -> Option<Field> {
    match normalise(name).as_str() {
        "tokenserialnumber" => Some(Field::Token),
        "deviceserialnumber" => Some(Field::Device),
        "userid" => Some(Field::User),
        "email" | "emailaddress" | "mail" | "userprincipalname" => Some(Field::Email),
        _ => None,
    }
}

/// Pieces of a normalised column name that suggest it holds a credential field. A column the
/// tool does not read but that says one of these may be the userId or token under a name the
/// tool does not know: ignoring it would turn its rows into device-only lookups, which delete
/// whatever credential the device holds. Broad on purpose (`id` matches `Employee ID` and
/// `Valid until`): a false alarm costs one `--ignore-column`, a miss costs a wrong deletion.
const CREDENTIAL_WORDS: [&str; 8] = [
    "user", "token", "serial", "device", "uuid", "guid", "id", "email",
];

/// Whether a column name the tool does not know looks like a credential field.
pub(crate) fn looks_like_credential(name: &str) -> bool {
    let n = normalise(name);
    CREDENTIAL_WORDS.iter().any(|w| n.contains(w))
}

/// Where the known columns are, and the header as written (trimmed) for messages.
#[derive(Clone, Debug)]
pub(crate) struct Columns {
    pub(crate) token: Option<usize>,
    pub(crate) device: usize,
    pub(crate) user: Option<usize>,
    pub(crate) email: Option<usize>,
    /// Header names as written, trimmed; `names.len()` is the field count every row must have.
    pub(crate) names: Vec<String>,
}

impl Columns {
    pub(crate) fn n_fields(&self) -> usize {
        self.names.len()
    }

    /// The columns the tool does not read, by index.
    pub(crate) fn unknown(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.names.len()).filter(|&i| {
            i != self.device
                && Some(i) != self.token
                && Some(i) != self.user
                && Some(i) != self.email
        })
    }

    /// The columns the tool does not read, as the plan lists them: `"Name"`, or `column 4
    /// (no name)` for an unnamed one.
    pub(crate) fn ignored(&self) -> Vec<String> {
        self.unknown()
            .map(|i| match self.names[i].as_str() {
                "" => format!("column {} (no name)", i + 1),
                name => show(name),
            })
            .collect()
    }

    /// "column 3 (userId)" — the 1-based position people see in a spreadsheet, and its name.
    pub(crate) fn describe(&self, index: usize) -> String {
        match self.names.get(index) {
            Some(name) if !name.is_empty() => format!("column {} ({})", index + 1, show(name)),
            _ => format!("column {}", index + 1),
        }
    }
}

/// Maps header names to the known columns. Errors say how to fix the header.
pub(crate) fn map_columns(path: &Path, names: Vec<String>) -> Result<Columns> {
    let mut found: [Option<usize>; 4] = [None; 4];
    for (i, name) in names.iter().enumerate() {
        let Some(field) = known_field(name) else {
            continue;
        };
        let slot = &mut found[field as usize];
        if let Some(first) = *slot {
            bail!(
                "{} has two {} columns: column {} ({}) and column {} ({}). Remove or rename one \
                 of them (column names are compared ignoring case, spaces and punctuation).",
                path.display(),
                field.name(),
                first + 1,
                show(&names[first]),
                i + 1,
                show(name),
            );
        }
        *slot = Some(i);
    }
    let Some(device) = found[Field::Device as usize] else {
        bail!("{}", no_device_message(path, &names));
    };
    Ok(Columns {
        token: found[Field::Token as usize],
        device,
        user: found[Field::User as usize],
        email: found[Field::Email as usize],
        names,
    })
}

/// Refuses a header with a column the tool does not read whose name looks like a credential
/// field, unless `--ignore-column` names it; and refuses an `--ignore-column` that names no
/// column of the file, or one the tool reads (a typo must not let a credential column through).
pub(crate) fn check_unknown_columns(path: &Path, cols: &Columns, ignore: &[String]) -> Result<()> {
    for wanted in ignore {
        let n = normalise(wanted);
        if n.is_empty() {
            bail!(
                "--ignore-column {} has no letters or digits, so it names no column; give the \
                 column's name as the header writes it",
                show(wanted)
            );
        }
        if let Some(field) = known_field(wanted) {
            bail!(
                "--ignore-column {} names the {} column, which the tool reads and cannot \
                 ignore; remove the flag, or remove that column from {} if its values are wrong",
                show(wanted),
                field.name(),
                path.display()
            );
        }
        if !cols.names.iter().any(|name| normalise(name) == n) {
            bail!(
                "--ignore-column {} names no column of {} (its columns: {}); check the spelling \
                 (case, spaces and punctuation are ignored)",
                show(wanted),
                path.display(),
                listed(&cols.names)
            );
        }
    }
    let ignored: Vec<String> = ignore.iter().map(|w| normalise(w)).collect();
    let suspicious: Vec<usize> = cols
        .unknown()
        .filter(|&i| looks_like_credential(&cols.names[i]))
        .filter(|&i| !ignored.contains(&normalise(&cols.names[i])))
        .collect();
    if suspicious.is_empty() {
        return Ok(());
    }
    let described: Vec<String> = suspicious.iter().map(|&i| cols.describe(i)).collect();
    let (what, verb) = if suspicious.len() == 1 {
        (
            described[0].clone(),
            "is not a column the tool reads, but its name looks",
        )
    } else {
        (
            format!(
                "{} and {}",
                described[..described.len() - 1].join(", "),
                described[described.len() - 1]
            ),
            "are not columns the tool reads, but their names look",
        )
    };
    let flags: Vec<String> = suspicious
        .iter()
        .map(|&i| format!("--ignore-column {}", shell_word(&cols.names[i])))
        .collect();
    bail!(
        "{}: {what} {verb} like a credential field. It \
         stops rather than ignore it: a row whose userId is ignored would delete whatever \
         credential its device holds. Nothing was sent.\n\
         The columns it reads are tokenSerialNumber, deviceSerialNumber, userId and email (case, \
         spaces and punctuation do not matter: Token Serial Number, device_serial_number and \
         USER-ID work too; userId holds the user's UUID, email the user's address, also read \
         from a column named emailAddress, mail, e-mail or userPrincipalName).\n\
         If it is one of them, rename it in the header. If it is not, say so with: {}",
        path.display(),
        flags.join(" ")
    )
}

/// A column name as one shell word, for a command line to copy.
fn shell_word(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:=@%+,-".contains(&b));
    if plain {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', r"'\''"))
    }
}

/// Up to 12 header names for a message, then how many more.
fn listed(names: &[String]) -> String {
    const MAX_LISTED: usize = 12;
    let named: Vec<&String> = names.iter().filter(|n| !n.is_empty()).collect();
    if named.is_empty() {
        return "no column names".to_string();
    }
    let mut out = named
        .iter()
        .take(MAX_LISTED)
        .map(|n| show(n))
        .collect::<Vec<_>>()
        .join(", ");
    if named.len() > MAX_LISTED {
        let _ = write!(out, ", and {} more", named.len() - MAX_LISTED);
    }
    out
}

fn no_device_message(path: &Path, names: &[String]) -> String {
    let found = listed(names);
    let mut msg = format!(
        "{} has no deviceSerialNumber column (found: {found}). Rename the device column to \
         deviceSerialNumber (case and punctuation are ignored: device_serial_number works too).",
        path.display()
    );
    // Cheap guesses at the likely cause, most specific first.
    if names.len() == 1 && names[0].contains([',', ';', '\t', '|']) {
        let _ = write!(
            msg,
            " The whole header was read as one column, so the delimiter is probably wrong: \
             pass --delimiter with the file's separator."
        );
    } else if let Some((i, name)) = names
        .iter()
        .enumerate()
        .find(|(_, n)| normalise(n).contains("device"))
    {
        let _ = write!(
            msg,
            " Column {} ({}) may be the one to rename.",
            i + 1,
            show(name)
        );
    } else if names.iter().any(|n| looks_like_data(n)) {
        let _ = write!(
            msg,
            " The first line looks like data, not column names: add a header line such as \
             {EXAMPLE_HEADER}"
        );
    }
    msg
}

/// A header cell that is a serial or a UUID suggests the file has no header line at all.
fn looks_like_data(name: &str) -> bool {
    let n = name.trim();
    is_uuid(n) || (n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(s: &[u8]) -> u8 {
        match inspect_head(s, true) {
            Head::Line { sniffed } => sniffed,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn normalise_ignores_case_and_punctuation() {
        for name in [
            "tokenSerialNumber",
            "token_serial_number",
            "Token Serial Number",
            "TOKEN-SERIAL-NUMBER",
            " token.serial.number ",
        ] {
            assert_eq!(normalise(name), "tokenserialnumber", "{name}");
            assert_eq!(known_field(name), Some(Field::Token), "{name}");
        }
        assert_eq!(known_field("Device Serial Number"), Some(Field::Device));
        assert_eq!(known_field("USER_ID"), Some(Field::User));
        assert_eq!(known_field("\u{feff}userId"), Some(Field::User));
        assert_eq!(known_field("serial"), None);
        assert_eq!(known_field("user"), None);
    }

    #[test]
    fn sniffs_the_most_frequent_delimiter_outside_quotes() {
        assert_eq!(sniff(b"a,b,c\n1;2;3;4;5\n"), b',');
        assert_eq!(sniff(b"a;b;c\n"), b';');
        assert_eq!(sniff(b"a\tb\tc"), b'\t');
        assert_eq!(sniff(b"\"x;y;z\",b,c\n"), b',');
        assert_eq!(sniff(b"\"x,y,z\";b;c\n"), b';');
        assert_eq!(sniff(b"\xEF\xBB\xBFa;b\r\n"), b';');
        assert_eq!(sniff(b"\r\n\na;b\n"), b';');
    }

    #[test]
    fn sniff_ties_and_nothing_mean_comma() {
        assert_eq!(sniff(b"a;b\tc\n"), b',');
        assert_eq!(sniff(b"deviceSerialNumber\n"), b',');
        assert_eq!(sniff(b"a;b;c,d,e\tf\n"), b',');
    }

    #[test]
    fn head_shapes() {
        assert_eq!(inspect_head(b"", true), Head::Empty);
        assert_eq!(inspect_head(b"\xEF\xBB\xBF\r\n\n", true), Head::Empty);
        assert_eq!(
            inspect_head(b"aaaa", false),
            Head::TooLong { in_quotes: false }
        );
        // A quoted line break does not end the header line.
        assert_eq!(
            inspect_head(b"\"a\nb", false),
            Head::TooLong { in_quotes: true }
        );
        assert_eq!(
            inspect_head(b"\"a\nb\";c\n", false),
            Head::Line { sniffed: b';' }
        );
    }

    #[test]
    fn delimiter_override_is_checked() {
        for ok in [b',', b';', b'\t', b'|'] {
            assert_eq!(check_delimiter(ok).ok(), Some(ok));
        }
        for bad in [b'a', b'1', b'"', b'\n', b'\r', b' ', 0, 0xFF] {
            let err = check_delimiter(bad).expect_err("bad delimiter accepted");
            assert!(err.to_string().contains("--delimiter"), "{err}");
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn maps_columns_in_any_order_and_ignores_extras() {
        let cols = map_columns(
            Path::new("in.csv"),
            names(&["note", "USER_ID", "Device Serial Number", "x"]),
        )
        .expect("maps");
        assert_eq!(cols.device, 2);
        assert_eq!(cols.user, Some(1));
        assert_eq!(cols.token, None);
        assert_eq!(cols.n_fields(), 4);
    }

    #[test]
    fn a_known_column_twice_is_an_error_naming_both() {
        let err = map_columns(
            Path::new("in.csv"),
            names(&["deviceSerialNumber", "userId", "device_serial_number"]),
        )
        .expect_err("duplicate column accepted")
        .to_string();
        assert!(err.contains("two deviceSerialNumber columns"), "{err}");
        assert!(err.contains("column 1 (\"deviceSerialNumber\")"), "{err}");
        assert!(err.contains("column 3 (\"device_serial_number\")"), "{err}");
    }

    #[test]
    fn no_device_column_says_what_was_found_and_how_to_fix_it() {
        let err = map_columns(Path::new("input.csv"), names(&["serial", "user"]))
            .expect_err("accepted")
            .to_string();
        assert_eq!(
            err,
            "input.csv has no deviceSerialNumber column (found: \"serial\", \"user\"). Rename \
             the device column to deviceSerialNumber (case and punctuation are ignored: \
             device_serial_number works too)."
        );
        let err = map_columns(Path::new("in.csv"), names(&["token", "device serial"]))
            .expect_err("accepted")
            .to_string();
        assert!(err.contains("Column 2 (\"device serial\") may be"), "{err}");
        let err = map_columns(Path::new("in.csv"), names(&["014010008038", "x"]))
            .expect_err("accepted")
            .to_string();
        assert!(err.contains("looks like data"), "{err}");
        let err = map_columns(Path::new("in.csv"), names(&["a|deviceSerialNumber"]))
            .expect_err("accepted")
            .to_string();
        assert!(err.contains("delimiter"), "{err}");
    }

    #[test]
    fn credential_like_names() {
        for name in [
            "User ID (UUID)",
            "Employee ID",
            "Token",
            "Serial No.",
            "E-mail",
            "GUID",
            "deviceSerial",
            "uuid",
            "ID",
        ] {
            assert!(looks_like_credential(name), "{name}");
        }
        for name in ["Name", "Leaving date", "department", "note", "", "Employee"] {
            assert!(!looks_like_credential(name), "{name}");
        }
    }

    fn check(header: &[&str], ignore: &[&str]) -> Result<()> {
        let cols = map_columns(Path::new("in.csv"), names(header)).expect("maps");
        let ignore: Vec<String> = ignore.iter().map(|s| s.to_string()).collect();
        check_unknown_columns(Path::new("in.csv"), &cols, &ignore)
    }

    #[test]
    fn unknown_credential_like_columns_stop_unless_ignored() {
        let header = ["Device Serial Number", "User ID (UUID)", "Name", "Token"];
        let err = check(&header, &[]).expect_err("accepted").to_string();
        assert!(
            err.starts_with(
                "in.csv: column 2 (\"User ID (UUID)\") and column 4 (\"Token\") are not columns \
                 the tool reads"
            ),
            "{err}"
        );
        assert!(
            err.ends_with("--ignore-column 'User ID (UUID)' --ignore-column Token"),
            "{err}"
        );
        let err = check(&header, &["token"])
            .expect_err("accepted")
            .to_string();
        assert!(
            err.contains("column 2 (\"User ID (UUID)\") is not a column"),
            "{err}"
        );
        assert!(check(&header, &["user-id (uuid)", "TOKEN"]).is_ok());
        assert!(check(&["deviceSerialNumber", "Name", ""], &[]).is_ok());
        // Ignoring a harmless column that exists is fine.
        assert!(check(&["deviceSerialNumber", "Name"], &["name"]).is_ok());
    }

    #[test]
    fn ignore_column_must_name_an_unknown_column_of_the_file() {
        let header = ["deviceSerialNumber", "userId", "Employee ID"];
        let err = check(&header, &["Employe ID"])
            .expect_err("typo")
            .to_string();
        assert!(err.contains("names no column of in.csv"), "{err}");
        assert!(err.contains("\"Employee ID\""), "{err}");
        let err = check(&header, &["Employee ID", "user_id"])
            .expect_err("known")
            .to_string();
        assert!(err.contains("names the userId column"), "{err}");
        let err = check(&header, &["Employee ID", " - "])
            .expect_err("empty")
            .to_string();
        assert!(err.contains("no letters or digits"), "{err}");
    }

    #[test]
    fn ignored_columns_are_listed_for_the_plan() {
        let cols = map_columns(
            Path::new("in.csv"),
            names(&["Name", "deviceSerialNumber", "", "userId", "x\ty"]),
        )
        .expect("maps");
        assert_eq!(
            cols.ignored(),
            ["\"Name\"", "column 3 (no name)", "\"x\\ty\""]
        );
    }
}
