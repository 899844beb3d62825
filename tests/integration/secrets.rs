//! Secrets never leak (SPEC §6, issue 7): at trace verbosity, through every way a bearer token
//! reaches the tool, nothing of it appears on stdout, stderr, in the report or in the summary
//! JSON — nor in the simulator's own output.
//!
//! To cover another credential path (the JWT key file), add an `Auth` variant: `apply` sets
//! it up on the command, `secrets` lists what must never be printed (for a key file: the
//! access key's PEM body lines and any minted token the test can obtain, e.g. from `token`).

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// A token shaped like a real one (a JWT), distinct from the harness's, so a leak of any
/// piece of it is found.
const SECRET: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsZWFrLXRlc3QifQ.c2lnbmF0dXJlLXNlY3JldA";

/// How the tool is given its credentials.
enum Auth<'a> {
    /// `DS100_TOKEN`.
    Env(&'a str),
    /// `--token-file PATH` holding this text.
    TokenFile(&'a str),
}

impl Auth<'_> {
    fn apply(&self, cmd: &mut assert_cmd::Command, dir: &Path) {
        match self {
            Auth::Env(token) => {
                cmd.env("DS100_TOKEN", token);
            }
            Auth::TokenFile(text) => {
                let path = write(dir, "token.txt", text);
                cmd.arg("--token-file").arg(path);
            }
        }
    }

    /// The strings no output may contain.
    fn secrets(&self) -> Vec<String> {
        let raw = match self {
            Auth::Env(t) | Auth::TokenFile(t) => t,
        };
        raw.split_whitespace()
            .filter(|w| *w != "Bearer")
            .map(str::to_string)
            .collect()
    }
}

/// Fails when `text` holds any secret or any 10-character piece of one (a token cut to fit a
/// log line is still a leak).
fn assert_no_secret(secrets: &[String], source: &str, text: &str) {
    for secret in secrets {
        let chars: Vec<char> = secret.chars().collect();
        let width = chars.len().min(10);
        for piece in chars.windows(width) {
            let piece: String = piece.iter().collect();
            assert!(
                !text.contains(&piece),
                "a piece of a secret ({piece:?}) leaked into {source}"
            );
        }
    }
}

#[test]
fn the_leak_check_finds_a_cut_piece() {
    let secrets = vec![SECRET.to_string()];
    assert_no_secret(&secrets, "clean", "Authorization: Sensitive");
    let leaked = format!("bearer …{}…", &SECRET[20..31]);
    let caught = std::panic::catch_unwind(|| assert_no_secret(&secrets, "log", &leaked));
    assert!(caught.is_err(), "an 11-character piece went unnoticed");
}

/// Runs `ds100-offboard run` with `auth` and `extra` flags at trace verbosity against `sim`,
/// then checks every output for the secrets. Returns the exit code and stderr.
fn run_and_check(sim: &Sim, auth: &Auth, extra: &[&str], log_json: bool) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let c = creds(6, 70_000);
    let input = write(dir.path(), "in.csv", &csv_of(&c));
    let report = dir.path().join("report.csv");
    let summary = dir.path().join("summary.json");
    let dry_run = extra.contains(&"--dry-run");
    let mut cmd = bin();
    cmd.arg("-vv")
        .arg("run")
        .arg(&input)
        .args(["--base-url", &sim.url])
        .args(FAST.iter().filter(|f| !(dry_run && **f == "--yes")))
        .args(["--stop-after", "0"])
        .args(extra)
        .arg("--report")
        .arg(&report)
        .arg("--summary-json")
        .arg(&summary)
        .env("RUST_LOG", "trace");
    if log_json {
        cmd.args(["--log-format", "json"]);
    }
    auth.apply(&mut cmd, dir.path());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let secrets = auth.secrets();
    assert_no_secret(&secrets, "stdout", &stdout);
    assert_no_secret(&secrets, "stderr", &stderr);
    for (name, path) in [("report", &report), ("summary", &summary)] {
        if let Ok(text) = std::fs::read_to_string(path) {
            assert_no_secret(&secrets, name, &text);
        }
    }
    (out.status.code().unwrap_or(-1), stderr)
}

/// A token file, every request path exercised: deletes, lookups, retries after a 500 and a
/// reset, a 403 — with text logs and with JSON logs.
#[test]
fn a_token_file_never_leaks_at_trace_verbosity() {
    for log_json in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut stored = creds(6, 70_000);
        stored.truncate(4); // two rows end `absent` through a lookup
        let sim = Sim::seeded(
            dir.path(),
            &stored,
            &[
                // Request 1 is the check of the credentials before the plan.
                "--fault",
                "500,nth=3",
                "--fault",
                "reset,nth=4",
                "--fault",
                "403,nth=6",
            ],
        );
        let text = format!("Bearer {TOKEN}\n");
        let auth = Auth::TokenFile(&text);
        let (code, stderr) = run_and_check(&sim, &auth, &[], log_json);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.len() > 2000, "trace logging is on: {stderr}");
        assert!(sim.stat("requests") >= 9);
    }
}

/// The same through `DS100_TOKEN`, in a dry run (lookups only).
#[test]
fn the_environment_token_never_leaks_in_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    // Request 1 is the check of the credentials before the plan; the 503 meets row 1's lookup.
    let sim = Sim::seeded(dir.path(), &creds(6, 70_000), &["--fault", "503,nth=2"]);
    let (code, stderr) = run_and_check(&sim, &Auth::Env(TOKEN), &["--dry-run"], false);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(sim.stat("lookups"), 8, "the check, 6 rows, one retry");
}

/// A token the tenant refuses: the check before the plan stops the run, and neither the error
/// nor the logs quote the token that was refused.
#[test]
fn a_refused_token_is_not_quoted_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::seeded(dir.path(), &creds(6, 70_000), &[]);
    for auth in [Auth::Env(SECRET), Auth::TokenFile(SECRET)] {
        let (code, stderr) = run_and_check(&sim, &auth, &[], false);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("refused the bearer token"), "{stderr}");
    }
    assert_eq!(sim.stat("forbidden"), 2, "one check per run");
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.store().len(), 6);
}

/// A token that cannot be used (two words, a control character): the error explains without
/// quoting it, and nothing is sent.
#[test]
fn an_unusable_token_is_refused_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::seeded(dir.path(), &creds(1, 70_000), &[]);
    let two_words = format!("{SECRET} {SECRET}x");
    let control = format!("{SECRET}\u{7}");
    for auth in [
        Auth::TokenFile(&two_words),
        Auth::Env(&two_words),
        Auth::TokenFile(&control),
    ] {
        let (code, stderr) = run_and_check(&sim, &auth, &[], false);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("not usable"), "{stderr}");
    }
    assert_eq!(sim.stat("requests"), 0);
}

/// The simulator's side: its token (from `DS100_SIM_TOKEN`) and the tokens clients present
/// appear neither in its output at trace verbosity nor in its answers.
#[test]
fn the_simulator_never_prints_or_echoes_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let seed = write(dir.path(), "seed.csv", &csv_of(&creds(3, 71_000)));
    let err_path = dir.path().join("sim.stderr");
    let mut child = Command::new(bin_path())
        .args(["-vv", "sim", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .env("DS100_SIM_TOKEN", TOKEN)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let first = String::from_utf8(first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();

    // A wrong token: the 403 answer must not echo it.
    let wrong = {
        let hostport = url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(hostport).unwrap();
        let body = r#"{"deviceSerialNumber":"040000000"}"#;
        std::io::Write::write_all(
            &mut s,
            format!(
                "POST /AdminInterface/restapi/v1/ds100/lookup HTTP/1.1\r\nHost: x\r\n\
                 Authorization: Bearer {SECRET}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");

    // A real run against it, with its token.
    let input = write(dir.path(), "in.csv", &csv_of(&creds(3, 71_000)));
    let mut cmd = bin();
    cmd.arg("run")
        .arg(&input)
        .args(["--base-url", &url])
        .args(FAST)
        .env("DS100_TOKEN", TOKEN);
    cmd.assert().code(0);

    // SIGTERM: the simulator prints its stats and exits.
    send_signal(&child, libc::SIGTERM);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    child.wait().unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    let secrets = vec![TOKEN.to_string(), SECRET.to_string()];
    assert!(rest.contains("\"deleted\":3"), "{rest}");
    assert_no_secret(&secrets, "the 403 answer", &wrong);
    assert_no_secret(&secrets, "sim stdout", &format!("{first}\n{rest}"));
    assert_no_secret(&secrets, "sim stderr", &stderr);
}
