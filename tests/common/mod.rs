//! Shared test harness: the real binary, a real simulator process on 127.0.0.1, fixture files
//! in a temp dir, and the report read back.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use ds100_offboard::report::row::ReportRow;

pub const TOKEN: &str = "test-token-6f1d2a9c4b7e";

pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ds100-offboard"))
}

/// `ds100-offboard` with a clean environment for credentials.
pub fn bin() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(bin_path());
    cmd.env_remove("DS100_TOKEN")
        .env_remove("DS100_BASE_URL")
        .env_remove("DS100_KEY_FILE")
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(120));
    cmd
}

/// A simulator process; killed on drop.
pub struct Sim {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub url: String,
}

impl Sim {
    /// Starts `ds100-offboard sim` with `--token TOKEN` and `args`, waits for its URL.
    pub fn start(args: &[&str]) -> Sim {
        Sim::start_with_auth(&["--token", TOKEN], args)
    }

    /// Starts `ds100-offboard sim` with the auth flags `auth` (e.g. `--key-file K`) and `args`.
    pub fn start_with_auth(auth: &[&str], args: &[&str]) -> Sim {
        let mut child = Command::new(bin_path())
            .arg("sim")
            .args(["--listen", "127.0.0.1:0"])
            .args(auth)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sim");
        let mut stdout = BufReader::new(child.stdout.take().expect("sim stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read sim url");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in sim output: {line:?}"))
            .to_string();
        Sim {
            child,
            _stdout: stdout,
            url,
        }
    }

    /// Seeds the store from `creds` (written to a file in `dir`).
    pub fn seeded(dir: &Path, creds: &[Cred], args: &[&str]) -> Sim {
        let seed = dir.join("seed.csv");
        std::fs::write(&seed, csv_of(creds)).unwrap();
        let mut all = vec!["--seed", seed.to_str().unwrap()];
        all.extend_from_slice(args);
        Sim::start(&all)
    }

    pub fn get(&self, path: &str) -> String {
        http_get(&self.url, path)
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/__sim/stats")).expect("stats json")
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no stat {name}: {}", self.stats()))
    }

    /// The store as credentials.
    pub fn store(&self) -> Vec<Cred> {
        creds_from_csv(self.get("/__sim/store").as_bytes())
    }

    /// `--base-url` and the token env for a `run` against this simulator.
    pub fn run_cmd(&self, input: &Path) -> assert_cmd::Command {
        let mut cmd = bin();
        cmd.arg("run")
            .arg(input)
            .args(["--base-url", &self.url])
            .env("DS100_TOKEN", TOKEN);
        cmd
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal to a child process (SIGINT, SIGTERM…) without needing a `kill` binary.
pub fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// A minimal HTTP/1.1 GET (the admin endpoints of the simulator).
pub fn http_get(base: &str, path: &str) -> String {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).expect("connect sim");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cred {
    pub token: String,
    pub device: String,
    pub user: String,
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

/// Credentials from a `tokenSerialNumber,deviceSerialNumber,userId` CSV, sorted.
pub fn creds_from_csv(csv_text: impl std::io::Read) -> Vec<Cred> {
    let mut r = csv::Reader::from_reader(csv_text);
    let mut out: Vec<Cred> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            Cred {
                token: rec[0].to_string(),
                device: rec[1].to_string(),
                user: rec[2].to_string(),
            }
        })
        .collect();
    out.sort();
    out
}

pub fn csv_of(creds: &[Cred]) -> String {
    let mut s = String::from("tokenSerialNumber,deviceSerialNumber,userId\n");
    for c in creds {
        s.push_str(&format!("{},{},{}\n", c.token, c.device, c.user));
    }
    s
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// The report's rows (header checked), in file order.
pub fn read_report(path: &Path) -> Vec<ReportRow> {
    let mut r = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("open report {}: {e}", path.display()));
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        ds100_offboard::report::row::COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    r.records()
        .map(|rec| ReportRow::from_record(&rec.unwrap()).unwrap())
        .collect()
}

/// Report rows keyed by `row`, asserting there is exactly one per input row 1..=n.
pub fn report_by_row(path: &Path, n: u64) -> HashMap<u64, ReportRow> {
    let rows = read_report(path);
    let mut by_row = HashMap::new();
    for r in rows {
        assert!(
            by_row.insert(r.row, r.clone()).is_none(),
            "row {} reported twice",
            r.row
        );
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

pub fn status_counts(path: &Path) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in read_report(path) {
        *m.entry(r.status.to_string()).or_insert(0) += 1;
    }
    m
}

/// Fast-retry flags every test uses (the same flags users have).
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
