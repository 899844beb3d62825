//! Secrets never leak: at trace verbosity, through every way a bearer token
//! reaches the tool, nothing of it appears on stdout, stderr, in the report or in the summary
//! JSON — nor in the simulator's own output.
//!
//! To cover another credential path (the JWT key file), add an `Auth` variant: `apply` sets
//! it up on the command, `secrets` lists what must never be printed (for a key file: the
//! access key's PEM body lines and any minted token the test can obtain, e.g. from `token`).
//! `Auth::Client` covers OAuth API clients: every private member of the key, the client
//! assertion's header, and the prefix of every access token the simulator issues.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

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
    /// `--oauth-issuer`, `--oauth-client-id`, `--oauth-key` (and `--oauth-key-id` for a PEM).
    Client(OAuthSetup),
}

/// An OAuth API client of a simulator's token endpoint.
struct OAuthSetup {
    issuer: String,
    client_id: &'static str,
    key: PathBuf,
    kid: Option<&'static str>,
    /// The private key's pieces, the assertion's header segment, the token prefix.
    secrets: Vec<String>,
}

/// Every access token the simulator issues starts so: any piece of one starts a leak.
const ACCESS_TOKEN_PREFIX: &str = "sim-at-";

impl OAuthSetup {
    /// A client of `tenant`'s token endpoint with a private copy of the key fixture `name`.
    fn new(tenant: &Scenario, dir: &Scenario, name: &str, kid: Option<&'static str>) -> OAuthSetup {
        use base64::Engine as _;
        let key = private_copy(dir.dir(), name);
        let text = std::fs::read_to_string(&key).unwrap();
        let mut secrets: Vec<String> = if text.trim_start().starts_with('{') {
            let jwk: serde_json::Value = serde_json::from_str(&text).unwrap();
            ["d", "p", "q", "dp", "dq", "qi"]
                .iter()
                .filter_map(|m| jwk[m].as_str().map(str::to_string))
                .collect()
        } else {
            text.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_string)
                .collect()
        };
        assert!(!secrets.is_empty(), "{name}: no private key material found");
        let alg = if name.contains("rsa") {
            "RS256"
        } else {
            "ES256"
        };
        let kid_in_header = match kid {
            Some(k) => k.to_string(),
            None => {
                let jwk: serde_json::Value = serde_json::from_str(&text).unwrap();
                jwk["kid"].as_str().unwrap().to_string()
            }
        };
        let header = serde_json::json!({"typ": "JWT", "alg": alg, "kid": kid_in_header});
        secrets.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string()));
        secrets.push(ACCESS_TOKEN_PREFIX.to_string());
        OAuthSetup {
            issuer: format!("{}/oauth", tenant.sim().url),
            client_id: OAUTH_CLIENT,
            key,
            kid,
            secrets,
        }
    }
}

const OAUTH_CLIENT: &str = "test-only-leak-client";

impl Auth<'_> {
    fn apply<'a>(&self, cmd: Cmd<'a>, sc: &Scenario) -> Cmd<'a> {
        match self {
            Auth::Env(token) => cmd.token(token),
            Auth::TokenFile(text) => cmd
                .no_token()
                .arg("--token-file")
                .arg(sc.file("token.txt", text)),
            Auth::Client(o) => {
                let cmd = cmd
                    .no_token()
                    .args(["--oauth-issuer", &o.issuer])
                    .args(["--oauth-client-id", o.client_id])
                    .arg("--oauth-key")
                    .arg(&o.key);
                match o.kid {
                    Some(kid) => cmd.args(["--oauth-key-id", kid]),
                    None => cmd,
                }
            }
        }
    }

    /// The strings no output may contain.
    fn secrets(&self) -> Vec<String> {
        let raw = match self {
            Auth::Env(t) | Auth::TokenFile(t) => t,
            Auth::Client(o) => return o.secrets.clone(),
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
        ("sidecar", ran.report_path().with_extension("meta.json")),
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

/// An OAuth API client, RSA key as a JWK and EC key as a SEC1 PEM, text and JSON logs: the
/// first token, a blip of the token endpoint retried, a renewal after a 403, retries after a
/// 500 and a reset — and then a client id the issuer refuses. No piece of the private key,
/// of a client assertion or of an access token in any output of the tool or the simulator.
#[test]
fn an_oauth_client_never_leaks_at_trace_verbosity() {
    let cases = [
        (
            "test-only-oauth-rsa.jwk.json",
            None,
            "test-only-oauth-rsa-public.pem",
        ),
        (
            "test-only-oauth-ec-sec1.pem",
            Some("test-only-ec-kid-52ad"),
            "test-only-oauth-ec-public.jwk.json",
        ),
    ];
    for (i, (private, kid, public)) in cases.into_iter().enumerate() {
        let log_json = i == 1;
        // The input of `run_and_check`; two rows end `absent` through a lookup.
        let mut stored = creds(6, 70_000);
        stored.truncate(4);
        let public = fixture(public);
        let mut tenant = Scenario::new()
            .seed(&stored)
            .sim_auth(&[
                "--oauth-public-key",
                public.to_str().unwrap(),
                "--oauth-client-id",
                OAUTH_CLIENT,
                "--oauth-fault",
                "503,nth=2",
            ])
            .faults(&["500,nth=3", "reset,nth=4", "403,nth=6"])
            .sim_trace();
        let auth = Auth::Client(OAuthSetup::new(&tenant, &tenant, private, kid));
        let ran = run_and_check(&tenant, &auth, &[], log_json).exits(0);
        assert!(ran.stderr.contains("TRACE"), "trace logging is on");
        assert!(
            ran.stderr
                .contains("fetched a new access token after a 403"),
            "{}",
            ran.stderr
        );
        let sim = tenant.sim();
        assert_eq!(sim.stat("deleted"), 4);
        assert_eq!(sim.stat("oauth_tokens_issued"), 2, "{}", sim.stats());
        assert_eq!(sim.stat("oauth_faults_injected"), 1);

        // Refused at the start: the error quotes the issuer, not the assertion.
        let Auth::Client(mut refused) = auth else {
            unreachable!()
        };
        refused.client_id = "not-this-client";
        let refused = Auth::Client(refused);
        let ran = run_and_check(&tenant, &refused, &["--overwrite"], log_json).exits(2);
        assert!(ran.stderr.contains("invalid_client"), "{}", ran.stderr);

        // `token` prints a token on stdout, by design; nothing on stderr.
        let Auth::Client(o) = &auth_again(&tenant, private, kid) else {
            unreachable!()
        };
        let mut cmd = ds100("token")
            .args(["-vv", "--oauth-issuer", &o.issuer])
            .args(["--oauth-client-id", o.client_id])
            .arg("--oauth-key")
            .arg(&o.key)
            .env("RUST_LOG", "trace");
        if let Some(kid) = o.kid {
            cmd = cmd.args(["--oauth-key-id", kid]);
        }
        let out = cmd.run().exits(0);
        assert!(out.stdout.starts_with(ACCESS_TOKEN_PREFIX));
        assert!(out.stderr.contains("TRACE"), "{}", out.stderr);
        assert_no_secret(&o.secrets, "token's stderr", &out.stderr);

        let rest = tenant.stop_sim();
        let sim_log = std::fs::read_to_string(tenant.path("sim.log")).unwrap();
        assert!(sim_log.contains("issued an access token"), "{sim_log}");
        assert_no_secret(&o.secrets, "sim stdout", &rest);
        assert_no_secret(&o.secrets, "sim stderr", &sim_log);
    }
}

/// Another `OAuthSetup` for the same tenant and key (the first was consumed).
fn auth_again(tenant: &Scenario, private: &str, kid: Option<&'static str>) -> Auth<'static> {
    Auth::Client(OAuthSetup::new(tenant, tenant, private, kid))
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
