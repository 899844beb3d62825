//! The simulator as a test sees it: `ds100-offboard sim` as a child process on 127.0.0.1
//! port 0, read through its admin endpoints (stats, store, arrivals), killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use super::{Cred, bin_path, creds_from_csv, send_signal};

/// How to start a simulator: its auth flags, other flags, environment and where its log goes.
#[derive(Clone, Debug)]
pub(crate) struct SimSpec {
    /// `--token T`, `--key-file K`, `--public-key P …`, or nothing (any bearer token).
    pub auth: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Logs at trace level into this file instead of the test's stderr.
    pub trace_log: Option<PathBuf>,
}

/// A simulator process; killed on drop.
pub struct Sim {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// The line it printed first (its URL).
    pub banner: String,
    pub url: String,
}

impl Sim {
    pub(crate) fn start(spec: &SimSpec) -> Sim {
        let mut cmd = Command::new(bin_path());
        cmd.arg("sim")
            .args(["--listen", "127.0.0.1:0"])
            .args(&spec.auth)
            .args(&spec.args)
            .env_remove("RUST_LOG")
            .env_remove("DS100_SIM_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        match &spec.trace_log {
            Some(path) => {
                cmd.arg("-vv")
                    .env("RUST_LOG", "trace")
                    .stderr(std::fs::File::create(path).unwrap());
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        let mut child = cmd.spawn().expect("spawn sim");
        let mut stdout = BufReader::new(child.stdout.take().expect("sim stdout"));
        let mut banner = String::new();
        stdout.read_line(&mut banner).expect("read sim url");
        let banner = banner.trim_end().to_string();
        // The first line is the URL alone: scripts take it as it is (`head -1`).
        assert!(
            banner.starts_with("http://") && !banner.contains(char::is_whitespace),
            "the first line of sim is not its URL alone: {banner:?}"
        );
        let url = banner.clone();
        Sim {
            child,
            stdout,
            banner,
            url,
        }
    }

    /// Its address, for servers put in front of it.
    pub fn addr(&self) -> SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    pub fn get(&self, path: &str) -> String {
        http_get(&self.url, path)
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/__sim/stats")).expect("stats json")
    }

    pub fn stat(&self, name: &str) -> u64 {
        let stats = self.stats();
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no stat {name}: {stats}"))
    }

    /// The store as credentials, sorted.
    pub fn store(&self) -> Vec<Cred> {
        creds_from_csv(self.get("/__sim/store").as_bytes())
    }

    /// The store as credentials with their `tokenStatus` (`status` column), sorted.
    pub fn store_with_status(&self) -> Vec<(Cred, String)> {
        let text = self.get("/__sim/store");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>(),
            [
                "tokenSerialNumber",
                "deviceSerialNumber",
                "userId",
                "status"
            ]
        );
        let mut out: Vec<(Cred, String)> = r
            .records()
            .map(|rec| {
                let rec = rec.unwrap();
                (super::cred(&rec[0], &rec[1], &rec[2]), rec[3].to_string())
            })
            .collect();
        out.sort();
        out
    }

    /// Arrival times of the requests (µs), with `--record-arrivals`.
    pub fn arrivals(&self) -> Vec<u64> {
        serde_json::from_str(&self.get("/__sim/arrivals")).expect("arrivals json")
    }

    /// SIGTERM: the simulator prints its stats and exits. Returns what it printed after its
    /// first line.
    pub fn stop(mut self) -> String {
        send_signal(&self.child, libc::SIGTERM);
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        self.child.wait().unwrap();
        rest
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET (the admin endpoints of the simulator).
fn http_get(base: &str, path: &str) -> String {
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
