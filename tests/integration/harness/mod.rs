//! The shared harness: credentials and files, the report read back, and the pieces a test
//! is built from — a `Scenario` (temp dir, simulator, input) that runs the real binary, the
//! simulator process, spawned runs to signal, and loopback servers standing in front of it.

mod net;
mod process;
mod scenario;
mod screen;
pub(crate) mod sim;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ds100_offboard::report::row::{COLUMNS, ReportRow};

pub use net::{Gateway, Seen, connect_proxy, reply, tls_terminator};
pub use process::{Collector, Pty, send_signal};
pub use scenario::{Cmd, Ran, Scenario, ds100};
pub use screen::{Screen, condense};
pub use sim::Sim;

/// The bearer token every simulator accepts unless a test says otherwise.
pub const TOKEN: &str = "test-token-6f1d2a9c4b7e";

/// Fast-retry flags most runs use (the same flags users have).
pub const FAST: &[&str] = &[
    "--yes",
    "--rate",
    "2000/s",
    "--max-backoff",
    "50ms",
    "--timeout",
    "5s",
];

/// One request at a time with a 1 s timeout: for tests where a slow fault must time out
/// exactly the request it targets.
pub const ONE_AT_A_TIME_1S_TIMEOUT: &[&str] = &[
    "--yes",
    "--concurrency",
    "1",
    "--rate",
    "1000/s",
    "--timeout",
    "1s",
    "--max-backoff",
    "50ms",
];

pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ds100-offboard"))
}

// ---- credentials -------------------------------------------------------------------------

/// A token/device/user triple as the input and the simulator's store spell it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cred {
    pub token: String,
    pub device: String,
    pub user: String,
}

pub fn cred(token: &str, device: &str, user: &str) -> Cred {
    Cred {
        token: token.into(),
        device: device.into(),
        user: user.into(),
    }
}

/// `n` distinct credentials, offset so that several sets do not collide.
pub fn creds(n: usize, offset: usize) -> Vec<Cred> {
    (0..n)
        .map(|i| {
            let k = i + offset;
            Cred {
                token: format!("{:012}", 14_010_000_000u64 + k as u64),
                device: format!("{:09}", 40_000_000 + k),
                user: uuid_like(k as u64),
            }
        })
        .collect()
}

pub fn uuid_like(k: u64) -> String {
    let h = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xdead_beef_cafe_f00d;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        h as u16,
        (k % 0xffff) as u16,
        k
    )
}

pub fn sorted(mut v: Vec<Cred>) -> Vec<Cred> {
    v.sort();
    v
}

/// Credentials from a `tokenSerialNumber,deviceSerialNumber,userId` CSV, sorted.
pub fn creds_from_csv(csv_text: impl std::io::Read) -> Vec<Cred> {
    let mut r = csv::Reader::from_reader(csv_text);
    let out: Vec<Cred> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            cred(&rec[0], &rec[1], &rec[2])
        })
        .collect();
    sorted(out)
}

pub fn csv_of(creds: &[Cred]) -> String {
    let mut s = String::from("tokenSerialNumber,deviceSerialNumber,userId\n");
    for c in creds {
        s.push_str(&format!("{},{},{}\n", c.token, c.device, c.user));
    }
    s
}

// ---- files -------------------------------------------------------------------------------

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// `tests/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A copy of a fixture (a key file) in `dir`, readable by its owner only.
pub fn private_copy(dir: &Path, fixture_name: &str) -> PathBuf {
    let path = dir.join(fixture_name);
    std::fs::copy(fixture(fixture_name), &path).unwrap();
    set_mode(&path, 0o600);
    path
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

// ---- the report --------------------------------------------------------------------------

/// The report's rows (header checked), in file order.
pub fn read_report(path: &Path) -> Vec<ReportRow> {
    let mut r = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("open report {}: {e}", path.display()));
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        COLUMNS.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    r.records()
        .map(|rec| ReportRow::from_record(&rec.unwrap()).unwrap())
        .collect()
}

/// Report rows keyed by `row`, asserting there is exactly one per input row 1..=n.
pub fn report_by_row(path: &Path, n: u64) -> HashMap<u64, ReportRow> {
    let mut by_row = HashMap::new();
    for r in read_report(path) {
        let row = r.row;
        assert!(by_row.insert(row, r).is_none(), "row {row} reported twice");
    }
    let mut keys: Vec<u64> = by_row.keys().copied().collect();
    keys.sort();
    assert_eq!(
        keys,
        (1..=n).collect::<Vec<_>>(),
        "one report row per input row"
    );
    by_row
}

/// The latest report row per row number (the resume rule), asserting every input row has one.
pub fn latest_by_row(path: &Path, n: u64) -> HashMap<u64, ReportRow> {
    let mut by_row = HashMap::new();
    for r in read_report(path) {
        by_row.insert(r.row, r);
    }
    for i in 1..=n {
        assert!(by_row.contains_key(&i), "row {i} missing from the report");
    }
    assert_eq!(by_row.len() as u64, n);
    by_row
}

pub fn status_counts(path: &Path) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in read_report(path) {
        *m.entry(r.status.to_string()).or_insert(0) += 1;
    }
    m
}

/// Rows written so far (lines after the header); 0 while there is no file.
pub fn report_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Polls `cond` every 5 ms. The deadline only keeps a broken build from hanging the suite:
/// it is far longer than any wait a passing test makes.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "still waiting for {what} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
