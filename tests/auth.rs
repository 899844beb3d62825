//! Credentials end to end (SPEC §6): key files minting RS256 JWTs that the simulator verifies
//! as RSA would, renewal before expiry and after a 403, ready tokens, which source wins, bad
//! key files, the `token` command, the HTTPS rule and `--ca-cert`, and a trace-level search
//! of every output for secrets.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use common::*;
use ds100_offboard::report::status::Status;

/// base64url of `{"typ":"JWT","alg":"RS256"}`: the first segment of every token the tool mints.
const JWT_HEADER_B64: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9";
const ACCESS_ID: &str = "test-only-access-id-3f9c";
const KEY_AUD: &str = "https://test-only.invalid/AdminInterface/restapi/v1";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of a fixture key file in `dir`, readable by its owner only.
fn private_copy(dir: &Path, fixture_name: &str) -> PathBuf {
    let path = dir.join(fixture_name);
    std::fs::copy(fixture(fixture_name), &path).unwrap();
    set_mode(&path, 0o600);
    path
}

fn key_file(dir: &Path) -> PathBuf {
    private_copy(dir, "test-only-key-pkcs1.json")
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) {}

/// A simulator seeded with `all` that accepts only JWTs from `key`.
fn jwt_sim(dir: &Path, all: &[Cred], key: &Path, args: &[&str]) -> Sim {
    let seed = write(dir, "seed.csv", &csv_of(all));
    let mut all_args = vec!["--seed", seed.to_str().unwrap()];
    all_args.extend_from_slice(args);
    Sim::start_with_auth(&["--key-file", key.to_str().unwrap()], &all_args)
}

/// `run INPUT --base-url SIM --key-file KEY`.
fn key_run(sim: &Sim, input: &Path, key: &Path) -> assert_cmd::Command {
    let mut cmd = bin();
    cmd.arg("run")
        .arg(input)
        .args(["--base-url", &sim.url])
        .arg("--key-file")
        .arg(key);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn stderr_of(out: &Output) -> String {
    text(&out.stderr)
}

/// `ds100-offboard token --key-file KEY` and its one line.
fn mint(key: &Path, extra: &[&str]) -> String {
    let out = bin()
        .arg("token")
        .arg("--key-file")
        .arg(key)
        .args(extra)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stdout = text(&out.stdout);
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

fn assert_all(report: &Path, n: u64, status: Status) {
    let rows = report_by_row(report, n);
    for r in rows.values() {
        assert_eq!(r.status, status, "{r:?}");
    }
}

#[test]
fn token_command_prints_one_jwt_the_simulator_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let out = bin()
        .arg("token")
        .arg("--key-file")
        .arg(&key)
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(
        stderr_of(&out),
        "",
        "a private key file: no warning, nothing else"
    );
    let token = text(&out.stdout).trim_end().to_string();
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
    let out = bin()
        .arg("token")
        .args(["--token-lifetime", "90s"])
        .env("DS100_KEY_FILE", &key)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let claims = decode_segment(text(&out.stdout).trim().split('.').nth(1).unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        90
    );
    // Over RSA's hour: refused.
    let out = bin()
        .arg("token")
        .arg("--key-file")
        .arg(&key)
        .args(["--token-lifetime", "61m"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&out).contains("60 minutes"),
        "{}",
        stderr_of(&out)
    );
    assert!(out.stdout.is_empty());

    // The simulator's checker (with the key file's public key) accepts it as a ready token.
    let all = creds(3, 20_000);
    let sim = jwt_sim(dir.path(), &all, &key, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", &sim.url])
        .env("DS100_TOKEN", &token)
        .args(FAST)
        .assert()
        .code(0);
    assert_all(&dir.path().join("in.report.csv"), 3, Status::Deleted);
    assert_eq!(sim.stat("forbidden"), 0);
    assert_eq!(sim.stat("distinct_tokens"), 1);
}

#[test]
fn key_file_run_mints_and_the_base_url_defaults_to_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(4, 20_100);
    let seed = write(dir.path(), "seed.csv", &csv_of(&all));
    // Any aud: the key file below names the simulator itself as its adminRestApiUrl.
    let sim = Sim::start_with_auth(
        &[
            "--public-key",
            fixture("test-only-key-public.pem").to_str().unwrap(),
            "--jwt-sub",
            ACCESS_ID,
        ],
        &["--seed", seed.to_str().unwrap()],
    );
    let mut kf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("test-only-key-pkcs8.json")).unwrap(),
    )
    .unwrap();
    // The form without /v1, as some tenants' key files have it.
    kf["adminRestApiUrl"] = format!("{}/AdminInterface/restapi", sim.url).into();
    let key = write(dir.path(), "tenant-key.json", &kf.to_string());
    set_mode(&key, 0o600);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let out = bin()
        .arg("run")
        .arg(&input)
        .arg("--key-file")
        .arg(&key)
        .args(FAST)
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert!(
        stderr_of(&out).contains(&format!("{}/AdminInterface/restapi/v1", sim.url)),
        "the plan names the tenant from the key file: {}",
        stderr_of(&out)
    );
    assert_all(&dir.path().join("in.report.csv"), 4, Status::Deleted);
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("forbidden"), 0);
}

#[test]
fn a_run_longer_than_the_token_lifetime_renews_before_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let all = creds(48, 20_200);
    // Tokens older than 3 s are refused: a client that never renewed would meet 403s.
    let sim = jwt_sim(dir.path(), &all, &key, &["--max-token-age", "3s"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let out = key_run(&sim, &input, &key)
        .args(["--yes", "--rate", "12/s", "--concurrency", "4"])
        .args(["--token-lifetime", "2s", "-v"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_all(&dir.path().join("in.report.csv"), 48, Status::Deleted);
    assert!(sim.store().is_empty());
    assert!(sim.stat("distinct_tokens") >= 2, "renewed: {}", sim.stats());
    assert_eq!(sim.stat("forbidden"), 0, "renewed in time: {}", sim.stats());
    assert_eq!(
        sim.stat("requests"),
        49,
        "the check before the plan and 48 DELETEs: no request was spent on a stale token"
    );
    assert!(stderr_of(&out).contains("minted a new bearer token before expiry"));
}

#[test]
fn a_server_refusing_old_tokens_gets_a_fresh_one_after_its_403() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let all = creds(56, 20_300);
    // The client's tokens live 55 minutes, but this server refuses them after 2 s.
    let sim = jwt_sim(dir.path(), &all, &key, &["--max-token-age", "2s"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    key_run(&sim, &input, &key)
        .args(["--yes", "--rate", "16/s", "--concurrency", "4"])
        .assert()
        .code(0);
    assert_all(&dir.path().join("in.report.csv"), 56, Status::Deleted);
    assert!(sim.store().is_empty());
    assert!(sim.stat("distinct_tokens") >= 2, "{}", sim.stats());
    assert!(sim.stat("forbidden") >= 1, "{}", sim.stats());
}

#[test]
fn one_403_mints_once_and_the_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let all = creds(5, 20_400);
    // Row 3's DELETE (the check before the plan is a lookup).
    let sim = jwt_sim(dir.path(), &all, &key, &["--fault", "403,nth=3,on=delete"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let out = key_run(&sim, &input, &key)
        .args(FAST)
        .args(["--concurrency", "1", "-v"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let rows = report_by_row(&dir.path().join("in.report.csv"), 5);
    for r in rows.values() {
        assert_eq!(r.status, Status::Deleted, "{r:?}");
    }
    assert_eq!(
        rows[&3].attempts, 2,
        "the 403 and the retry: {:?}",
        rows[&3]
    );
    assert_eq!(sim.stats()["by_status"]["403"], 1);
    let err = stderr_of(&out);
    assert_eq!(
        err.matches("minted a new bearer token after a 403").count(),
        1,
        "{err}"
    );
}

#[test]
fn concurrent_403s_do_not_mint_a_storm() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let all = creds(8, 20_450);
    // The simulator refuses every request bearing the first token, whenever it arrives; eight
    // workers start together (burst 8), so most of them send that token before anyone has
    // minted. However the machine schedules them, one mint must serve every refusal: a
    // worker refused on the first token gets the second, whether it minted it or not. (The
    // check before the plan, a lookup, is let through on the first token.)
    let sim = jwt_sim(
        dir.path(),
        &all,
        &key,
        &["--fault", "403,tokens=1,on=delete"],
    );
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let out = key_run(&sim, &input, &key)
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
        .assert()
        .code(0)
        .get_output()
        .clone();
    let rows = report_by_row(&dir.path().join("in.report.csv"), 8);
    let mut refused = 0;
    for r in rows.values() {
        assert_eq!(r.status, Status::Deleted, "{r:?}");
        assert!((1..=2).contains(&r.attempts), "{r:?}");
        refused += u64::from(r.attempts == 2);
    }
    let stats = sim.stats();
    assert!(refused >= 1, "the first token was sent at least once");
    assert_eq!(stats["by_status"]["403"], refused);
    assert_eq!(
        stats["distinct_tokens"], 2,
        "the first token and one renewal"
    );
    let err = stderr_of(&out);
    let mints = err.matches("minted a new bearer token after a 403").count();
    assert_eq!(mints, 1, "{refused} refusals: {err}");
}

/// A key the tenant does not know is refused by the check before the plan, a fresh token
/// included: exit 2, no report. A key it knows but whose DELETEs it refuses (a role without the
/// permission) ends rows `unauthorized` after one fresh token each, until the safety stop.
#[test]
fn a_key_the_tenant_does_not_know_ends_unauthorized_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let other = private_copy(dir.path(), "test-only-other-key.json");
    let all = creds(10, 20_500);
    let sim = jwt_sim(dir.path(), &all, &key, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let out = key_run(&sim, &input, &other)
        .args(FAST)
        .args(["--concurrency", "1", "--stop-after", "3"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("refused the tokens minted from the key file") && err.contains("signature"),
        "{err}"
    );
    assert!(!dir.path().join("in.report.csv").exists());
    assert_eq!(sim.stat("forbidden"), 2, "the check and its fresh token");
    assert_eq!(sim.stat("deletes"), 0);
    drop(sim);

    let sim = jwt_sim(
        dir.path(),
        &all,
        &key,
        &["--fault", "403,every=1,on=delete"],
    );
    key_run(&sim, &input, &key)
        .args(FAST)
        .args(["--concurrency", "1", "--stop-after", "3"])
        .assert()
        .code(3);
    let rows = report_by_row(&dir.path().join("in.report.csv"), 10);
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
    let dir = tempfile::tempdir().unwrap();
    let good: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("test-only-key-pkcs1.json")).unwrap(),
    )
    .unwrap();
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
    let sim = Sim::start(&[]);
    let input = write(dir.path(), "in.csv", &csv_of(&creds(2, 20_600)));
    for (name, content, want) in cases {
        let path = dir.path().join(name);
        if let Some(c) = &content {
            std::fs::write(&path, c).unwrap();
            set_mode(&path, 0o600);
        }
        let mut run = bin();
        run.arg("run")
            .arg(&input)
            .arg("--key-file")
            .arg(&path)
            .arg("--yes");
        if name != "http.json" {
            run.args(["--base-url", &sim.url]);
        }
        let out = run.assert().code(2).get_output().clone();
        let err = stderr_of(&out);
        assert!(err.contains(want), "{name}: want {want:?} in {err}");
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(!err.contains("MII"), "{name}: key material in {err}");
        if name == "http.json" {
            continue; // minting needs no URL: `token` works with this file
        }
        let out = bin()
            .arg("token")
            .arg("--key-file")
            .arg(&path)
            .assert()
            .code(2)
            .get_output()
            .clone();
        assert!(out.stdout.is_empty(), "{name}: token printed something");
        assert!(
            stderr_of(&out).contains(want),
            "{name}: {}",
            stderr_of(&out)
        );
    }
    // A directory where the file should be.
    let out = bin()
        .arg("token")
        .arg("--key-file")
        .arg(dir.path())
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr_of(&out).contains("directory"), "{}", stderr_of(&out));
    assert_eq!(sim.stat("requests"), 0, "nothing was sent");
    assert!(!dir.path().join("in.report.csv").exists());
}

#[cfg(unix)]
#[test]
fn a_world_readable_key_file_warns_but_works() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    set_mode(&key, 0o644);
    let out = bin()
        .arg("token")
        .arg("--key-file")
        .arg(&key)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("readable by every user") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(text(&out.stdout).starts_with(JWT_HEADER_B64));
}

#[test]
fn which_credentials_win() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let token_file = write(dir.path(), "token.txt", "some-ready-token\n");
    set_mode(&token_file, 0o600);
    let all = creds(2, 20_700);
    let sim = jwt_sim(dir.path(), &all, &key, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));

    // Two explicit sources: refused.
    let out = key_run(&sim, &input, &key)
        .arg("--token-file")
        .arg(&token_file)
        .args(FAST)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&out).contains("--token-file"),
        "{}",
        stderr_of(&out)
    );

    // Both variables left in the shell: refused, with the way out.
    let out = bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", &sim.url])
        .env("DS100_KEY_FILE", &key)
        .env("DS100_TOKEN", "leftover-token")
        .args(FAST)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.contains("unset") && err.contains("--key-file"), "{err}");
    assert!(!err.contains("leftover-token"), "{err}");
    assert_eq!(sim.stat("requests"), 0);

    // An explicit --key-file beats a leftover DS100_TOKEN, with a warning.
    let out = key_run(&sim, &input, &key)
        .env("DS100_TOKEN", "leftover-token")
        .args(FAST)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.contains("DS100_TOKEN is set but ignored"), "{err}");
    assert!(!err.contains("leftover-token"), "{err}");
    assert_all(&dir.path().join("in.report.csv"), 2, Status::Deleted);
    assert_eq!(sim.stat("forbidden"), 0);
}

#[test]
fn a_ready_jwt_expiring_before_the_estimated_end_warns() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let short = mint(&key, &["--token-lifetime", "2m"]);
    let long = mint(&key, &["--token-lifetime", "60m"]);
    // 6 rows at 1/min: about 6 minutes. --max-deletes 0 stops right after the plan. The
    // simulator accepts any token, so the check before the plan (one lookup, the first slot
    // of the pace) lets every run reach the plan.
    let input = write(dir.path(), "in.csv", &csv_of(&creds(6, 20_800)));
    let sim = Sim::start_with_auth(&[], &[]);
    let plan_only = |token: &str| {
        let out = bin()
            .arg("run")
            .arg(&input)
            .args(["--base-url", &sim.url, "--rate", "1/min"])
            .args(["--yes", "--max-deletes", "0"])
            .env("DS100_TOKEN", token)
            .assert()
            .code(2)
            .get_output()
            .clone();
        stderr_of(&out)
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
    assert_eq!((sim.stat("lookups"), sim.stat("deletes")), (3, 0));
}

#[test]
fn http_to_a_non_loopback_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let input = write(dir.path(), "in.csv", &csv_of(&creds(1, 20_900)));
    let out = bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", "http://acme.access.securid.com", "--yes"])
        .arg("--key-file")
        .arg(&key)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("refusing plain http://") && err.contains("HTTPS"),
        "{err}"
    );
    assert!(!dir.path().join("in.report.csv").exists());
}

/// Every output of a run at trace level, searched for the token, any minted JWT and the key.
#[test]
fn no_secret_in_any_output_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let token = mint(&key, &[]);
    let signature = token.rsplit('.').next().unwrap().to_string();
    let kf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
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

    let all = creds(15, 21_000);
    for (i, (flag, rust_log)) in [("-vv", None), ("-v", Some("trace"))].iter().enumerate() {
        // A 403 (renewal), a 500 (retry) and a 404 (lookup) along the way.
        let sim = jwt_sim(
            dir.path(),
            &all[..14],
            &key,
            &["--fault", "403,nth=2", "--fault", "500,nth=5"],
        );
        let input = write(dir.path(), &format!("in{i}.csv"), &csv_of(&all));
        let summary = dir.path().join(format!("summary{i}.json"));
        let mut cmd = key_run(&sim, &input, &key);
        cmd.args(FAST)
            .arg(*flag)
            .arg("--summary-json")
            .arg(&summary);
        if let Some(level) = rust_log {
            cmd.env("RUST_LOG", level);
        }
        if i == 1 {
            cmd.args(["--log-format", "json"]);
        }
        let out = cmd.assert().code(0).get_output().clone();
        let report = std::fs::read_to_string(dir.path().join(format!("in{i}.report.csv"))).unwrap();
        let summary = std::fs::read_to_string(&summary).unwrap();
        let stderr = stderr_of(&out);
        let level = if rust_log.is_some() { "TRACE" } else { "DEBUG" };
        assert!(stderr.contains(level), "really at {level} level: {stderr}");
        assert!(stderr.contains("minted a new bearer token after a 403"));
        for (what, haystack) in [
            ("stdout", text(&out.stdout)),
            ("stderr", stderr.clone()),
            ("report", report),
            ("summary", summary),
        ] {
            for needle in &needles {
                assert!(
                    !haystack.contains(needle.as_str()),
                    "{flag} {rust_log:?}: {what} contains secret {needle:?}"
                );
            }
        }
        assert_eq!(sim.stats()["by_status"]["403"], 1);
    }

    // A ready token from DS100_TOKEN at trace level.
    let fixed_sim = Sim::seeded(dir.path(), &creds(3, 21_100), &[]);
    let input = write(dir.path(), "fixed.csv", &csv_of(&creds(3, 21_100)));
    let out = fixed_sim
        .run_cmd(&input)
        .args(FAST)
        .env("RUST_LOG", "trace")
        .assert()
        .code(0)
        .get_output()
        .clone();
    for haystack in [
        text(&out.stdout),
        stderr_of(&out),
        std::fs::read_to_string(dir.path().join("fixed.report.csv")).unwrap(),
    ] {
        assert!(
            !haystack.contains(TOKEN),
            "the ready token leaked: {haystack}"
        );
    }
}

/// A TLS-terminating proxy on 127.0.0.1 in front of `backend`, with a certificate for
/// `localhost` issued by the test-only CA. Serves until the test process ends.
fn tls_proxy(backend: SocketAddr) -> SocketAddr {
    tls_terminator(
        backend,
        "test-only-server-cert.pem",
        "test-only-server-key.pem",
    )
}

/// A TLS server with the fixture certificate `cert` that forwards the decrypted bytes to
/// `backend` (the plain-HTTP simulator).
fn tls_terminator(backend: SocketAddr, cert: &str, key: &str) -> SocketAddr {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::ServerConfig;

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture(cert))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture(key)).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    serve_loopback(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            // A client that does not trust the certificate aborts the handshake here.
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
        }
    })
}

/// A server on 127.0.0.1 (port 0) in its own thread, calling `handle` on a task for every
/// accepted connection; its address.
fn serve_loopback<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                if let Ok((tcp, _)) = listener.accept().await {
                    tokio::spawn(handle(tcp));
                }
            }
        });
    });
    addr_rx.recv().unwrap()
}

#[test]
fn ca_cert_makes_a_tls_inspecting_proxy_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(3, 21_200);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let backend: SocketAddr = sim.url.trim_start_matches("http://").parse().unwrap();
    let proxy = tls_proxy(backend);
    let https = format!("https://localhost:{}", proxy.port());
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let https_run = || {
        let mut cmd = bin();
        cmd.arg("run")
            .arg(&input)
            .args(["--base-url", &https])
            .env("DS100_TOKEN", TOKEN)
            .args(FAST);
        cmd
    };

    // Without the CA: the check before the plan fails on the handshake, once (TLS failures
    // are not retried), the run stops with exit 2 naming --ca-cert, and nothing reaches the
    // server.
    let out = https_run().assert().code(2).get_output().clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("cannot reach the tenant")
            && err.contains("TLS")
            && err.contains("certificate"),
        "{err}"
    );
    assert!(err.contains("--ca-cert"), "{err}");
    assert!(!err.contains("retries exhausted"), "not retried: {err}");
    assert!(!dir.path().join("in.report.csv").exists());
    assert_eq!(sim.stat("requests"), 0);

    // With it: the same run goes through.
    https_run()
        .arg("--ca-cert")
        .arg(fixture("test-only-ca.pem"))
        .arg("--overwrite")
        .assert()
        .code(0);
    assert_all(&dir.path().join("in.report.csv"), 3, Status::Deleted);
    assert!(sim.store().is_empty());

    // Something that is not a certificate: exit 2 before anything is sent.
    let out = https_run()
        .arg("--ca-cert")
        .arg(fixture("test-only-key-public.pem"))
        .arg("--overwrite")
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr_of(&out).contains("--ca-cert"), "{}", stderr_of(&out));
}

/// An HTTP proxy that accepts CONNECT for any target, records the target, and tunnels to
/// `upstream` whatever was asked for (so a made-up tenant name reaches the local TLS server).
fn connect_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = targets.clone();
    let addr = serve_loopback(move |mut client| {
        let seen = seen.clone();
        async move {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                if client.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let request_line = head.lines().next().unwrap_or_default().to_string();
            seen.lock().unwrap().push(request_line.clone());
            if !request_line.starts_with("CONNECT ") {
                let _ = client
                    .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            }
            let Ok(mut upstream) = tokio::net::TcpStream::connect(upstream).await else {
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    });
    (addr, targets)
}

/// A tenant reached through HTTPS_PROXY: every connection is a CONNECT to the tenant's name
/// (which only the proxy knows how to reach), and TLS is verified end to end through the
/// tunnel.
#[test]
fn a_proxy_from_the_environment_carries_the_requests() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(20, 21_300);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let backend: SocketAddr = sim.url.trim_start_matches("http://").parse().unwrap();
    let tenant = tls_terminator(
        backend,
        "test-only-tenant-cert.pem",
        "test-only-tenant-key.pem",
    );
    let (proxy, targets) = connect_proxy(tenant);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let run = |no_proxy: &str| {
        let mut cmd = bin();
        cmd.arg("run")
            .arg(&input)
            .args(["--base-url", "https://tenant.ds100.test"])
            .arg("--ca-cert")
            .arg(fixture("test-only-proxy-ca.pem"))
            .args(["--concurrency", "2", "--connect-timeout", "2s"])
            .args(FAST)
            .env("DS100_TOKEN", TOKEN)
            .env("HTTPS_PROXY", format!("http://{proxy}"))
            .env("NO_PROXY", no_proxy)
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env_remove("https_proxy")
            .env_remove("no_proxy");
        cmd
    };

    run("localhost").assert().code(0);
    assert_all(&dir.path().join("in.report.csv"), 20, Status::Deleted);
    assert!(sim.store().is_empty());
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
