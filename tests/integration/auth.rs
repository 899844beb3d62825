//! Credentials end to end: key files minting RS256 JWTs that the simulator verifies as RSA
//! would, renewal before expiry and after a 403, ready tokens, which source wins, bad key
//! files, the `token` command, the HTTPS rule and `--ca-cert`, proxies, and a trace-level
//! search of every output for secrets.

use std::path::{Path, PathBuf};

use crate::harness::*;
use ds100_offboard::report::status::Status;

/// base64url of `{"typ":"JWT","alg":"RS256"}`: the first segment of every token the tool mints.
const JWT_HEADER_B64: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9";
const ACCESS_ID: &str = "test-only-access-id-3f9c";
const KEY_AUD: &str = "https://test-only.invalid/AdminInterface/restapi/v1";

fn key_file(dir: &Path) -> PathBuf {
    private_copy(dir, "test-only-key-pkcs1.json")
}

/// A scenario with a private copy of the test key, whose simulator holds `all` (also the
/// input) and accepts only JWTs from that key: (scenario, key).
fn jwt_tenant(all: &[Cred], faults: &[&str]) -> (Scenario, PathBuf) {
    let sc = Scenario::new();
    let key = key_file(sc.dir());
    let sc = sc
        .seed(all)
        .sim_key(&key)
        .faults(faults)
        .input(&csv_of(all));
    (sc, key)
}

/// `ds100-offboard token --key-file KEY` and its one line.
fn mint(key: &Path, extra: &[&str]) -> String {
    let stdout = ds100("token")
        .arg("--key-file")
        .arg(key)
        .args(extra)
        .run()
        .exits(0)
        .stdout;
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "{stdout:?}"
    );
    stdout.trim_end().to_string()
}

fn decode_segment(segment: &str) -> serde_json::Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn assert_all(ran: &Ran, n: u64, status: Status) {
    for r in ran.rows(n).values() {
        assert_eq!(r.status, status, "{r:?}");
    }
}

#[test]
fn token_command_prints_one_jwt_the_simulator_accepts() {
    let all = creds(3, 20_000);
    let (sc, key) = jwt_tenant(&all, &[]);
    let out = ds100("token").arg("--key-file").arg(&key).run().exits(0);
    assert_eq!(
        out.stderr, "",
        "a private key file: no warning, nothing else"
    );
    let token = out.stdout.trim_end().to_string();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(parts[0], JWT_HEADER_B64);
    let claims = decode_segment(parts[1]);
    assert_eq!(claims["sub"], ACCESS_ID);
    assert_eq!(claims["aud"], KEY_AUD);
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 55 * 60, "default lifetime");
    assert_eq!(claims.as_object().unwrap().len(), 4, "{claims}");

    // DS100_KEY_FILE works too, and --token-lifetime shortens the token.
    let out = ds100("token")
        .args(["--token-lifetime", "90s"])
        .env("DS100_KEY_FILE", &key)
        .run()
        .exits(0);
    let claims = decode_segment(out.stdout.trim().split('.').nth(1).unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        90
    );
    // Over RSA's hour: refused.
    let out = ds100("token")
        .arg("--key-file")
        .arg(&key)
        .args(["--token-lifetime", "61m"])
        .run()
        .exits(2);
    assert!(out.stderr.contains("60 minutes"), "{}", out.stderr);
    assert!(out.stdout.is_empty());

    // The simulator's checker (with the key file's public key) accepts it as a ready token.
    let ran = sc.run_cmd().token(&token).args(FAST).run().exits(0);
    assert_all(&ran, 3, Status::Deleted);
    assert_eq!(sc.sim().stat("forbidden"), 0);
    assert_eq!(sc.sim().stat("distinct_tokens"), 1);
}

#[test]
fn key_file_run_mints_and_the_base_url_defaults_to_the_key_file() {
    let all = creds(4, 20_100);
    // Any aud: the key file below names the simulator itself as its adminRestApiUrl.
    let public_key = fixture("test-only-key-public.pem");
    let sc = Scenario::new()
        .seed(&all)
        .sim_auth(&[
            "--public-key",
            public_key.to_str().unwrap(),
            "--jwt-sub",
            ACCESS_ID,
        ])
        .input(&csv_of(&all));
    let sim = sc.sim();
    let mut kf = read_json(&fixture("test-only-key-pkcs8.json"));
    // The form without /v1, as some tenants' key files have it.
    kf["adminRestApiUrl"] = format!("{}/AdminInterface/restapi", sim.url).into();
    let key = sc.file("tenant-key.json", &kf.to_string());
    set_mode(&key, 0o600);
    let ran = sc
        .run_cmd()
        .no_base_url()
        .key_file(&key)
        .args(FAST)
        .run()
        .exits(0);
    assert!(
        ran.stderr
            .contains(&format!("{}/AdminInterface/restapi/v1", sim.url)),
        "the plan names the tenant from the key file: {}",
        ran.stderr
    );
    assert_all(&ran, 4, Status::Deleted);
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("forbidden"), 0);
}

#[test]
fn a_run_longer_than_the_token_lifetime_renews_before_expiry() {
    let all = creds(48, 20_200);
    // Tokens older than 3 s are refused: a client that never renewed would meet 403s.
    let (sc, key) = jwt_tenant(&all, &[]);
    let sc = sc.sim_args(&["--max-token-age", "3s"]);
    let ran = sc
        .run_cmd()
        .key_file(&key)
        .args(["--yes", "--rate", "12/s", "--concurrency", "4"])
        .args(["--token-lifetime", "2s", "-v"])
        .run()
        .exits(0);
    assert_all(&ran, 48, Status::Deleted);
    let sim = sc.sim();
    assert!(sim.store().is_empty());
    assert!(sim.stat("distinct_tokens") >= 2, "renewed: {}", sim.stats());
    assert_eq!(sim.stat("forbidden"), 0, "renewed in time: {}", sim.stats());
    assert_eq!(
        sim.stat("requests"),
        49,
        "the check before the plan and 48 DELETEs: no request was spent on a stale token"
    );
    assert!(
        ran.stderr
            .contains("minted a new bearer token before expiry")
    );
}

#[test]
fn a_server_refusing_old_tokens_gets_a_fresh_one_after_its_403() {
    let all = creds(56, 20_300);
    // The client's tokens live 55 minutes, but this server refuses them after 2 s.
    let (sc, key) = jwt_tenant(&all, &[]);
    let sc = sc.sim_args(&["--max-token-age", "2s"]);
    let ran = sc
        .run_cmd()
        .key_file(&key)
        .args(["--yes", "--rate", "16/s", "--concurrency", "4"])
        .run()
        .exits(0);
    assert_all(&ran, 56, Status::Deleted);
    let sim = sc.sim();
    assert!(sim.store().is_empty());
    assert!(sim.stat("distinct_tokens") >= 2, "{}", sim.stats());
    assert!(sim.stat("forbidden") >= 1, "{}", sim.stats());
}

#[test]
fn one_403_mints_once_and_the_retry_succeeds() {
    let all = creds(5, 20_400);
    // Row 3's DELETE (the check before the plan is a lookup).
    let (sc, key) = jwt_tenant(&all, &["403,nth=3,on=delete"]);
    let ran = sc
        .run_cmd()
        .key_file(&key)
        .args(FAST)
        .args(["--concurrency", "1", "-v"])
        .run()
        .exits(0);
    let rows = ran.rows(5);
    for r in rows.values() {
        assert_eq!(r.status, Status::Deleted, "{r:?}");
    }
    assert_eq!(
        rows[&3].attempts, 2,
        "the 403 and the retry: {:?}",
        rows[&3]
    );
    assert_eq!(sc.sim().stats()["by_status"]["403"], 1);
    assert_eq!(
        ran.stderr
            .matches("minted a new bearer token after a 403")
            .count(),
        1,
        "{}",
        ran.stderr
    );
}

#[test]
fn concurrent_403s_do_not_mint_a_storm() {
    let all = creds(8, 20_450);
    // The simulator refuses every request bearing the first token, whenever it arrives; eight
    // workers start together (burst 8), so most of them send that token before anyone has
    // minted. However the machine schedules them, one mint must serve every refusal: a
    // worker refused on the first token gets the second, whether it minted it or not. (The
    // check before the plan, a lookup, is let through on the first token.)
    let (sc, key) = jwt_tenant(&all, &["403,tokens=1,on=delete"]);
    let ran = sc
        .run_cmd()
        .key_file(&key)
        .args([
            "--yes",
            "--rate",
            "8/s",
            "--burst",
            "8",
            "--concurrency",
            "8",
            "-v",
        ])
        .run()
        .exits(0);
    let mut refused = 0;
    for r in ran.rows(8).values() {
        assert_eq!(r.status, Status::Deleted, "{r:?}");
        assert!((1..=2).contains(&r.attempts), "{r:?}");
        refused += u64::from(r.attempts == 2);
    }
    let stats = sc.sim().stats();
    assert!(refused >= 1, "the first token was sent at least once");
    assert_eq!(stats["by_status"]["403"], refused);
    assert_eq!(
        stats["distinct_tokens"], 2,
        "the first token and one renewal"
    );
    let mints = ran
        .stderr
        .matches("minted a new bearer token after a 403")
        .count();
    assert_eq!(mints, 1, "{refused} refusals: {}", ran.stderr);
}

/// A key the tenant does not know is refused by the check before the plan, a fresh token
/// included: exit 2, no report. A key it knows but whose DELETEs it refuses (a role without the
/// permission) ends rows `unauthorized` after one fresh token each, until the safety stop.
#[test]
fn a_key_the_tenant_does_not_know_ends_unauthorized_and_stops() {
    let all = creds(10, 20_500);
    let (sc, _key) = jwt_tenant(&all, &[]);
    let other = private_copy(sc.dir(), "test-only-other-key.json");
    let ran = sc
        .run_cmd()
        .key_file(&other)
        .args(FAST)
        .args(["--concurrency", "1", "--stop-after", "3"])
        .run()
        .exits(2);
    let err = &ran.stderr;
    assert!(
        err.contains("refused the tokens minted from the key file") && err.contains("signature"),
        "{err}"
    );
    assert!(!ran.has_report());
    assert_eq!(
        sc.sim().stat("forbidden"),
        2,
        "the check and its fresh token"
    );
    assert_eq!(sc.sim().stat("deletes"), 0);

    let (sc, key) = jwt_tenant(&all, &["403,every=1,on=delete"]);
    let ran = sc
        .run_cmd()
        .key_file(&key)
        .args(FAST)
        .args(["--concurrency", "1", "--stop-after", "3"])
        .run()
        .exits(3);
    let rows = ran.rows(10);
    for i in 1..=3 {
        let r = &rows[&i];
        assert_eq!(r.status, Status::Unauthorized, "{r:?}");
        assert_eq!(r.attempts, 2, "one retry with a fresh token: {r:?}");
        assert_eq!(r.http_status, Some(403));
        assert!(r.error.contains("answered 403"), "{r:?}");
    }
    for i in 4..=10 {
        assert_eq!(rows[&i].status, Status::Skipped, "{:?}", rows[&i]);
    }
    let sim = sc.sim();
    assert_eq!(sim.store().len(), 10, "nothing deleted");
    assert_eq!(sim.stats()["by_status"]["403"], 6);
    assert_eq!(
        sim.stat("distinct_tokens"),
        4,
        "the first token and three renewals"
    );
}

#[test]
fn bad_key_files_exit_2_and_send_nothing() {
    let good = read_json(&fixture("test-only-key-pkcs1.json"));
    let with = |field: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v[field] = value;
        v.to_string()
    };
    let without = |field: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(field);
        v.to_string()
    };
    let pem = |name: &str| std::fs::read_to_string(fixture(name)).unwrap();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing.json", None, "cannot open the key file"),
        ("not-json.json", Some("accessID=1\n".into()), "not JSON"),
        (
            "no-key.json",
            Some(without("accessKey")),
            "no \"accessKey\"",
        ),
        ("no-id.json", Some(without("accessID")), "no \"accessID\""),
        (
            "no-url.json",
            Some(without("adminRestApiUrl")),
            "no \"adminRestApiUrl\"",
        ),
        (
            "ec.json",
            Some(with("accessKey", pem("test-only-ec-key.pem").into())),
            "not an RSA private key",
        ),
        (
            "public.json",
            Some(with("accessKey", pem("test-only-key-public.pem").into())),
            "public key",
        ),
        (
            "garbage.json",
            Some(with("accessKey", "MIIEowIBAAKCAQEA".into())),
            "not a PEM private key",
        ),
        (
            "http.json",
            Some(with(
                "adminRestApiUrl",
                "http://acme.access.securid.com/AdminInterface/restapi/v1".into(),
            )),
            "HTTPS",
        ),
    ];
    let sc = Scenario::new().input(&csv_of(&creds(2, 20_600)));
    let sim = sc.sim();
    for (name, content, want) in cases {
        let path = sc.path(name);
        if let Some(c) = &content {
            std::fs::write(&path, c).unwrap();
            set_mode(&path, 0o600);
        }
        let mut run = sc.run_cmd().key_file(&path).arg("--yes");
        if name == "http.json" {
            run = run.no_base_url();
        }
        let ran = run.run().exits(2);
        let err = &ran.stderr;
        assert!(err.contains(want), "{name}: want {want:?} in {err}");
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(!err.contains("MII"), "{name}: key material in {err}");
        if name == "http.json" {
            continue; // minting needs no URL: `token` works with this file
        }
        let out = ds100("token").arg("--key-file").arg(&path).run().exits(2);
        assert!(out.stdout.is_empty(), "{name}: token printed something");
        assert!(out.stderr.contains(want), "{name}: {}", out.stderr);
    }
    // A directory where the file should be.
    let out = ds100("token")
        .arg("--key-file")
        .arg(sc.dir())
        .run()
        .exits(2);
    assert!(out.stderr.contains("directory"), "{}", out.stderr);
    assert_eq!(sim.stat("requests"), 0, "nothing was sent");
    assert!(!sc.path("in.report.csv").exists());
}

#[cfg(unix)]
#[test]
fn a_world_readable_key_file_warns_but_works() {
    let sc = Scenario::new();
    let key = key_file(sc.dir());
    set_mode(&key, 0o644);
    let out = ds100("token").arg("--key-file").arg(&key).run().exits(0);
    let err = &out.stderr;
    assert!(
        err.contains("readable by every user") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(out.stdout.starts_with(JWT_HEADER_B64));
}

#[test]
fn which_credentials_win() {
    let all = creds(2, 20_700);
    let (sc, key) = jwt_tenant(&all, &[]);
    let token_file = sc.file("token.txt", "some-ready-token\n");
    set_mode(&token_file, 0o600);
    let sim = sc.sim();

    // Two explicit sources: refused.
    let out = sc
        .run_cmd()
        .key_file(&key)
        .arg("--token-file")
        .arg(&token_file)
        .args(FAST)
        .run()
        .exits(2);
    assert!(out.stderr.contains("--token-file"), "{}", out.stderr);

    // Both variables left in the shell: refused, with the way out.
    let out = sc
        .run_cmd()
        .env("DS100_KEY_FILE", &key)
        .token("leftover-token")
        .args(FAST)
        .run()
        .exits(2);
    let err = &out.stderr;
    assert!(err.contains("unset") && err.contains("--key-file"), "{err}");
    assert!(!err.contains("leftover-token"), "{err}");
    assert_eq!(sim.stat("requests"), 0);

    // An explicit --key-file beats a leftover DS100_TOKEN, with a warning.
    let ran = sc
        .run_cmd()
        .key_file(&key)
        .token("leftover-token")
        .args(FAST)
        .run()
        .exits(0);
    let err = &ran.stderr;
    assert!(err.contains("DS100_TOKEN is set but ignored"), "{err}");
    assert!(!err.contains("leftover-token"), "{err}");
    assert_all(&ran, 2, Status::Deleted);
    assert_eq!(sim.stat("forbidden"), 0);
}

#[test]
fn a_ready_jwt_expiring_before_the_estimated_end_warns() {
    let sc = Scenario::new().sim_auth(&[]);
    let key = key_file(sc.dir());
    let short = mint(&key, &["--token-lifetime", "2m"]);
    let long = mint(&key, &["--token-lifetime", "60m"]);
    // 6 rows at 1/min: about 6 minutes. --max-deletes 0 stops right after the plan. The
    // simulator accepts any token, so the check before the plan (one lookup, the first slot
    // of the pace) lets every run reach the plan.
    let sc = sc.input(&csv_of(&creds(6, 20_800)));
    let plan_only = |token: &str| {
        sc.run_cmd()
            .token(token)
            .args(["--rate", "1/min"])
            .args(["--yes", "--max-deletes", "0"])
            .run()
            .exits(2)
            .stderr
    };
    let err = plan_only(&short);
    assert!(
        err.contains("DS100_TOKEN expires in") && err.contains("--key-file"),
        "{err}"
    );
    assert!(!err.contains(&short), "{err}");
    let err = plan_only(&long);
    assert!(!err.contains("expires in"), "{err}");
    let err = plan_only("an-opaque-token-without-exp");
    assert!(!err.contains("expires"), "{err}");
    assert_eq!((sc.sim().stat("lookups"), sc.sim().stat("deletes")), (3, 0));
}

#[test]
fn http_to_a_non_loopback_host_is_refused() {
    let sc = Scenario::new().input(&csv_of(&creds(1, 20_900)));
    let key = key_file(sc.dir());
    let ran = sc
        .run_cmd()
        .base_url("http://acme.access.securid.com")
        .arg("--yes")
        .key_file(&key)
        .run()
        .exits(2);
    let err = &ran.stderr;
    assert!(
        err.contains("refusing plain http://") && err.contains("HTTPS"),
        "{err}"
    );
    assert!(!ran.has_report());
}

/// Every output of a run at trace level, searched for the token, any minted JWT and the key.
#[test]
fn no_secret_in_any_output_at_trace_level() {
    let all = creds(15, 21_000);
    let key_dir = Scenario::new();
    let key = key_file(key_dir.dir());
    let token = mint(&key, &[]);
    let signature = token.rsplit('.').next().unwrap().to_string();
    let kf = read_json(&key);
    let pem_lines: Vec<String> = kf["accessKey"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect();
    let mut needles = vec![
        token.clone(),
        signature,
        JWT_HEADER_B64.to_string(),
        "PRIVATE KEY".to_string(),
    ];
    needles.extend([1, 10, pem_lines.len() - 2].map(|i| pem_lines[i].clone()));

    for (i, (flag, rust_log)) in [("-vv", None), ("-v", Some("trace"))].iter().enumerate() {
        // A 403 (renewal), a 500 (retry) and a 404 (lookup) along the way.
        let sc = Scenario::new()
            .seed(&all[..14])
            .sim_key(&key)
            .faults(&["403,nth=2", "500,nth=5"])
            .input_named(&format!("in{i}.csv"), &csv_of(&all));
        let mut cmd = sc.run_cmd().key_file(&key).args(FAST).arg(*flag).summary();
        if let Some(level) = rust_log {
            cmd = cmd.env("RUST_LOG", level);
        }
        if i == 1 {
            cmd = cmd.args(["--log-format", "json"]);
        }
        let ran = cmd.run().exits(0);
        let report = std::fs::read_to_string(ran.report_path()).unwrap();
        let summary = std::fs::read_to_string(ran.summary_path()).unwrap();
        let level = if rust_log.is_some() { "TRACE" } else { "DEBUG" };
        assert!(
            ran.stderr.contains(level),
            "really at {level} level: {}",
            ran.stderr
        );
        assert!(ran.stderr.contains("minted a new bearer token after a 403"));
        for (what, haystack) in [
            ("stdout", &ran.stdout),
            ("stderr", &ran.stderr),
            ("report", &report),
            ("summary", &summary),
        ] {
            for needle in &needles {
                assert!(
                    !haystack.contains(needle.as_str()),
                    "{flag} {rust_log:?}: {what} contains secret {needle:?}"
                );
            }
        }
        assert_eq!(sc.sim().stats()["by_status"]["403"], 1);
    }

    // A ready token from DS100_TOKEN at trace level.
    let fixed = creds(3, 21_100);
    let sc = Scenario::new()
        .seed(&fixed)
        .input_named("fixed.csv", &csv_of(&fixed));
    let ran = sc
        .run_cmd()
        .args(FAST)
        .env("RUST_LOG", "trace")
        .run()
        .exits(0);
    for haystack in [
        &ran.stdout,
        &ran.stderr,
        &std::fs::read_to_string(ran.report_path()).unwrap(),
    ] {
        assert!(
            !haystack.contains(TOKEN),
            "the ready token leaked: {haystack}"
        );
    }
}

#[test]
fn ca_cert_makes_a_tls_inspecting_proxy_trusted() {
    let all = creds(3, 21_200);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    // A TLS-terminating proxy in front of the simulator, with a certificate for `localhost`
    // issued by the test-only CA.
    let proxy = tls_terminator(
        sc.sim().addr(),
        "test-only-server-cert.pem",
        "test-only-server-key.pem",
    );
    let https = format!("https://localhost:{}", proxy.addr.port());
    let https_run = || sc.run_cmd().base_url(&https).args(FAST);

    // Without the CA: the check before the plan fails on the handshake, once (TLS failures
    // are not retried), the run stops with exit 2 naming --ca-cert, and nothing reaches the
    // server.
    let ran = https_run().run().exits(2);
    let err = &ran.stderr;
    assert!(
        err.contains("cannot reach the tenant")
            && err.contains("TLS")
            && err.contains("certificate"),
        "{err}"
    );
    assert!(err.contains("--ca-cert"), "{err}");
    assert!(!err.contains("retries exhausted"), "not retried: {err}");
    assert!(!ran.has_report());
    assert_eq!(sc.sim().stat("requests"), 0);

    // With it: the same run goes through.
    let ran = https_run()
        .arg("--ca-cert")
        .arg(fixture("test-only-ca.pem"))
        .arg("--overwrite")
        .run()
        .exits(0);
    assert_all(&ran, 3, Status::Deleted);
    assert!(sc.sim().store().is_empty());

    // Something that is not a certificate: exit 2 before anything is sent.
    let ran = https_run()
        .arg("--ca-cert")
        .arg(fixture("test-only-key-public.pem"))
        .arg("--overwrite")
        .run()
        .exits(2);
    assert!(ran.stderr.contains("--ca-cert"), "{}", ran.stderr);
}

/// A tenant reached through HTTPS_PROXY: every connection is a CONNECT to the tenant's name
/// (which only the proxy knows how to reach), and TLS is verified end to end through the
/// tunnel.
#[test]
fn a_proxy_from_the_environment_carries_the_requests() {
    let all = creds(20, 21_300);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let tenant = tls_terminator(
        sc.sim().addr(),
        "test-only-tenant-cert.pem",
        "test-only-tenant-key.pem",
    );
    let (proxy, targets) = connect_proxy(tenant.addr);
    let ran = sc
        .run_cmd()
        .base_url("https://tenant.ds100.test")
        .arg("--ca-cert")
        .arg(fixture("test-only-proxy-ca.pem"))
        .args(["--concurrency", "2", "--connect-timeout", "2s"])
        .args(FAST)
        .env("HTTPS_PROXY", format!("http://{}", proxy.addr))
        .env("NO_PROXY", "localhost")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("https_proxy")
        .env_remove("no_proxy")
        .run()
        .exits(0);
    assert_all(&ran, 20, Status::Deleted);
    assert!(sc.sim().store().is_empty());
    let targets = targets.lock().unwrap().clone();
    // reqwest's pool may open a connection while another is on its way back to the pool,
    // so the count of tunnels is not pinned; that each is a CONNECT to the tenant is.
    assert!(!targets.is_empty());
    for t in &targets {
        assert!(
            t.starts_with("CONNECT tenant.ds100.test:443 "),
            "{targets:?}"
        );
    }
}
