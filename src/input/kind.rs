//! What kind of file the input is, before it is parsed: a regular file (the only kind that can
//! be read once to plan and once to send), and not UTF-16 text (Excel's "Unicode Text"), which
//! would otherwise surface as a header without `deviceSerialNumber`.

use std::fs::Metadata;
use std::path::Path;

use anyhow::{Result, bail};

/// Why the input must be a regular file, for every message that refuses another kind.
const READ_TWICE: &str = "the input must be a regular file: it is read once to plan and once to \
     send";

/// Refuses `-`, pipes, FIFOs, terminals, devices and directories before the file is opened:
/// opening a FIFO would wait for a writer, and whatever a pipe holds can be read only once.
pub(crate) fn check_path(path: &Path) -> Result<()> {
    if path.as_os_str() == "-" {
        bail!(
            "'-' (standard input) cannot be the input: {READ_TWICE}; save the rows to a file \
             and give its path (a file named '-' is ./-)"
        );
    }
    // A path that cannot be looked at is left to `open`, which names the problem.
    match std::fs::metadata(path) {
        Ok(meta) => check_metadata(path, &meta),
        Err(_) => Ok(()),
    }
}

/// The same check on an opened file (the path may have been replaced in between).
pub(crate) fn check_metadata(path: &Path, meta: &Metadata) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let (what, fix) = if meta.is_dir() {
        ("a directory", "give the path of the CSV file in it")
    } else if is_pipe(meta) {
        (
            "a pipe, not a file",
            "save the rows to a file and give its path (a pipe, /dev/stdin or a process \
             substitution <(…) can be read only once)",
        )
    } else {
        (
            "not a regular file (a terminal or a device)",
            "save the rows to a file and give its path",
        )
    };
    bail!("{} is {what}: {READ_TWICE}; {fix}", path.display());
}

#[cfg(unix)]
fn is_pipe(meta: &Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_pipe(_: &Metadata) -> bool {
    false
}

/// Byte order of UTF-16 text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Utf16 {
    LittleEndian,
    BigEndian,
}

/// Whether the start of the file is UTF-16: a byte-order mark, or (without one) ASCII text
/// with a zero byte beside (nearly) every character, as a header line in UTF-16 is. A UTF-8
/// header has no zero bytes at all, so this cannot mistake one.
pub(crate) fn utf16(head: &[u8]) -> Option<Utf16> {
    match head {
        [0xFF, 0xFE, ..] => return Some(Utf16::LittleEndian),
        [0xFE, 0xFF, ..] => return Some(Utf16::BigEndian),
        _ => {}
    }
    // The first characters, as pairs of bytes; a header has at least "a,b" of them.
    let pairs: Vec<(u8, u8)> = head
        .chunks_exact(2)
        .take(64)
        .map(|p| (p[0], p[1]))
        .collect();
    if pairs.len() < 3 {
        return None;
    }
    // A zero beside a non-zero byte, in the same place in the first pair and in nearly all the
    // others (a character outside Latin-1 in a header name has no zero).
    let (n_le, n_be) = pairs.iter().fold((0, 0), |(le, be), &(a, b)| {
        (
            le + usize::from(a != 0 && b == 0),
            be + usize::from(a == 0 && b != 0),
        )
    });
    let most = pairs.len() * 3 / 4;
    let (a, b) = pairs[0];
    if a != 0 && b == 0 && n_le >= most {
        Some(Utf16::LittleEndian)
    } else if a == 0 && b != 0 && n_be >= most {
        Some(Utf16::BigEndian)
    } else {
        None
    }
}

/// What to say of a UTF-16 file.
pub(crate) fn utf16_message(path: &Path, order: Utf16) -> String {
    let order = match order {
        Utf16::LittleEndian => "little-endian",
        Utf16::BigEndian => "big-endian",
    };
    format!(
        "{} is UTF-16 text ({order}), as Excel writes \"Unicode Text\": save it as UTF-8 instead \
         — in Excel, File → Save As → \"CSV UTF-8 (Comma delimited)\", not \"Unicode Text\"; \
         nothing was sent",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn utf16be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    #[test]
    fn utf16_with_and_without_a_byte_order_mark() {
        let header = "deviceSerialNumber\tuserId\r\n";
        let mut le_bom = vec![0xFF, 0xFE];
        le_bom.extend(utf16le(header));
        let mut be_bom = vec![0xFE, 0xFF];
        be_bom.extend(utf16be(header));
        assert_eq!(utf16(&le_bom), Some(Utf16::LittleEndian));
        assert_eq!(utf16(&be_bom), Some(Utf16::BigEndian));
        assert_eq!(utf16(&utf16le(header)), Some(Utf16::LittleEndian));
        assert_eq!(utf16(&utf16be(header)), Some(Utf16::BigEndian));
        // Even a short header, cut at an odd byte.
        let short = utf16le("dev,");
        assert_eq!(utf16(&short[..7]), Some(Utf16::LittleEndian));
        // A name outside ASCII (Latin-1 still has the zero byte).
        assert_eq!(utf16(&utf16le("Gerät,userId\n")), Some(Utf16::LittleEndian));
    }

    #[test]
    fn utf8_text_is_not_utf16() {
        for text in [
            &b"deviceSerialNumber\n"[..],
            b"\xEF\xBB\xBFdeviceSerialNumber\n",
            b"a,b\n",
            b"",
            b"d\0",
            // A NUL inside a cell of a UTF-8 file: not every second byte.
            b"tokenSerialNumber,deviceSerialNumber\n0140\x0010000001,1\n",
            b"\x89PNG\r\n\x1a\n",
        ] {
            assert_eq!(utf16(text), None, "{text:?}");
        }
    }

    #[test]
    fn dash_and_directories_are_refused_with_the_reason() {
        let err = check_path(Path::new("-")).unwrap_err().to_string();
        assert!(err.contains("read once to plan and once to send"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = check_path(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        assert!(err.contains("must be a regular file"), "{err}");
        // A missing file is left to the open, which says so.
        assert!(check_path(&dir.path().join("missing.csv")).is_ok());
    }
}
