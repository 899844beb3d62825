//! Secrets never leak: at trace verbosity, through every way a bearer token
//! reaches the tool, nothing of it appears on stdout, stderr, in the report or in the summary
//! JSON — nor in the simulator's own output.
//!
//! To cover another credential path (the JWT key file), add an `Auth` variant: `apply` sets
//! it up on the command, `secrets` lists what must never be printed (for a key file: the
//! access key's PEM body lines and any minted token the test can obtain, e.g. from `token`).

use std::io::{Read as _, Write as _};

use crate::harness::*;

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
    fn apply<'a>(&self, cmd: Cmd<'a>, sc: &Scenario) -> Cmd<'a> {
        match self {
            Auth::Env(token) => cmd.token(token),
            Auth::TokenFile(text) => cmd
                .no_token()
                .arg("--token-file")
                .arg(sc.file("token.txt", text)),
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

/// Runs `ds100-offboard run` with `auth` and `extra` flags at trace verbosity against the
/// simulator of `tenant` (from a directory of its own), then checks every output for the
/// secrets.
fn run_and_check(tenant: &Scenario, auth: &Auth, extra: &[&str], log_json: bool) -> Ran {
    let sc = Scenario::new().input(&csv_of(&creds(6, 70_000)));
    let dry_run = extra.contains(&"--dry-run");
    let mut cmd = sc
        .run_cmd()
        .base_url(&tenant.sim().url)
        .arg("-vv")
        .args(FAST.iter().filter(|f| !(dry_run && **f == "--yes")))
        .args(["--stop-after", "0"])
        .args(extra)
        .arg("--report")
        .arg(sc.path("report.csv"))
        .summary()
        .env("RUST_LOG", "trace");
    if log_json {
        cmd = cmd.args(["--log-format", "json"]);
    }
    let ran = auth.apply(cmd, &sc).run();
    let secrets = auth.secrets();
    assert_no_secret(&secrets, "stdout", &ran.stdout);
    assert_no_secret(&secrets, "stderr", &ran.stderr);
    for (name, path) in [
        ("report", ran.report_path().to_path_buf()),
        ("summary", ran.summary_path().to_path_buf()),
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            assert_no_secret(&secrets, name, &text);
        }
    }
    ran
}

/// A token file, every request path exercised: deletes, lookups, retries after a 500 and a
/// reset, a 403 — with text logs and with JSON logs.
#[test]
fn a_token_file_never_leaks_at_trace_verbosity() {
    for log_json in [false, true] {
        let mut stored = creds(6, 70_000);
        stored.truncate(4); // two rows end `absent` through a lookup
        // Request 1 is the check of the credentials before the plan.
        let tenant =
            Scenario::new()
                .seed(&stored)
                .faults(&["500,nth=3", "reset,nth=4", "403,nth=6"]);
        let text = format!("Bearer {TOKEN}\n");
        let auth = Auth::TokenFile(&text);
        let ran = run_and_check(&tenant, &auth, &[], log_json).exits(1);
        assert!(
            ran.stderr.len() > 2000,
            "trace logging is on: {}",
            ran.stderr
        );
        assert!(tenant.sim().stat("requests") >= 9);
    }
}

/// The same through `DS100_TOKEN`, in a dry run (lookups only).
#[test]
fn the_environment_token_never_leaks_in_a_dry_run() {
    // Request 1 is the check of the credentials before the plan; the 503 meets row 1's lookup.
    let tenant = Scenario::new()
        .seed(&creds(6, 70_000))
        .faults(&["503,nth=2"]);
    run_and_check(&tenant, &Auth::Env(TOKEN), &["--dry-run"], false).exits(0);
    assert_eq!(
        tenant.sim().stat("lookups"),
        8,
        "the check, 6 rows, one retry"
    );
}

/// A token the tenant refuses: the check before the plan stops the run, and neither the error
/// nor the logs quote the token that was refused.
#[test]
fn a_refused_token_is_not_quoted_anywhere() {
    let tenant = Scenario::new().seed(&creds(6, 70_000));
    for auth in [Auth::Env(SECRET), Auth::TokenFile(SECRET)] {
        let ran = run_and_check(&tenant, &auth, &[], false).exits(2);
        assert!(
            ran.stderr.contains("refused the bearer token"),
            "{}",
            ran.stderr
        );
    }
    let sim = tenant.sim();
    assert_eq!(sim.stat("forbidden"), 2, "one check per run");
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.store().len(), 6);
}

/// A token that cannot be used (two words, a control character): the error explains without
/// quoting it, and nothing is sent.
#[test]
fn an_unusable_token_is_refused_without_quoting_it() {
    let tenant = Scenario::new().seed(&creds(1, 70_000));
    let two_words = format!("{SECRET} {SECRET}x");
    let control = format!("{SECRET}\u{7}");
    for auth in [
        Auth::TokenFile(&two_words),
        Auth::Env(&two_words),
        Auth::TokenFile(&control),
    ] {
        let ran = run_and_check(&tenant, &auth, &[], false).exits(2);
        assert!(ran.stderr.contains("not usable"), "{}", ran.stderr);
    }
    assert_eq!(tenant.sim().stat("requests"), 0);
}

/// The simulator's side: its token (from `DS100_SIM_TOKEN`) and the tokens clients present
/// appear neither in its output at trace verbosity nor in its answers.
#[test]
fn the_simulator_never_prints_or_echoes_tokens() {
    let c = creds(3, 71_000);
    let mut sc = Scenario::new()
        .seed(&c)
        .sim_auth(&[])
        .sim_env("DS100_SIM_TOKEN", TOKEN)
        .sim_trace()
        .input(&csv_of(&c));

    // A wrong token: the 403 answer must not echo it.
    let wrong = {
        let mut s = std::net::TcpStream::connect(sc.sim().addr()).unwrap();
        let body = r#"{"deviceSerialNumber":"040000000"}"#;
        write!(
            s,
            "POST /AdminInterface/restapi/v1/ds100/lookup HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {SECRET}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");

    // A real run against it, with its token.
    sc.run(FAST).exits(0);

    // SIGTERM: the simulator prints its stats and exits.
    let first = sc.sim().banner.clone();
    let rest = sc.stop_sim();
    let stderr = std::fs::read_to_string(sc.path("sim.log")).unwrap();
    let secrets = vec![TOKEN.to_string(), SECRET.to_string()];
    assert!(rest.contains("\"deleted\":3"), "{rest}");
    assert!(
        stderr.contains("DEBUG"),
        "the simulator logs verbosely: {stderr}"
    );
    assert_no_secret(&secrets, "the 403 answer", &wrong);
    assert_no_secret(&secrets, "sim stdout", &format!("{first}\n{rest}"));
    assert_no_secret(&secrets, "sim stderr", &stderr);
}
