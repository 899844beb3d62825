//! Fuzz target: any bytes as an input file, through everything `validate` and `run` do with
//! it before sending — header, delimiter sniffing, both scan passes, the row stream. A whole-
//! file error is fine; a panic, an I/O error on a regular file, or an inconsistent count is not.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ds100_offboard::input::{InputFile, InputOptions, RowCheck};
use libfuzzer_sys::fuzz_target;

/// `InputFile` reads a path, so each fuzzing process rewrites one scratch file (in tmpfs when
/// the machine has one, for speed).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let dir = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("ds100-fuzz-{}.csv", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch file");
    for delimiter in [None, Some(b';'), Some(b'\t')] {
        let opts = InputOptions {
            delimiter,
            ..InputOptions::default()
        };
        let Ok(input) = InputFile::open(path, &opts) else {
            continue;
        };
        let scan = input.scan().expect("scanning a regular file never fails");
        assert_eq!(
            scan.n_valid + scan.n_invalid + scan.n_duplicate,
            scan.n_rows
        );
        assert!(scan.n_needs_lookup <= scan.n_valid);
        let mut n_rows = 0u64;
        let mut last_line = 1u64;
        for row in input.rows(&scan).expect("a second pass opens") {
            let row = row.expect("reading a regular file never fails");
            n_rows += 1;
            assert_eq!(row.row, n_rows);
            assert!(row.line > 1 && row.line >= last_line, "{row:?}");
            last_line = row.line;
            match &row.check {
                RowCheck::Valid | RowCheck::Duplicate { .. } => {
                    let device = &row.credential.device;
                    assert!(!device.is_empty() && device.len() <= 36, "{row:?}");
                }
                RowCheck::Invalid { reason } => {
                    assert!(!reason.is_empty());
                    let c = &row.credential;
                    for v in [&c.token, &c.device, &c.user] {
                        assert!(v.chars().count() <= 64, "{row:?}");
                    }
                }
            }
        }
        assert_eq!(n_rows, scan.n_rows);
    }
});
