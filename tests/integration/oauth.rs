//! OAuth API clients end to end: the real binary fetching access tokens from the simulator's
//! token endpoint with a private-key JWT (RSA and EC keys, JWK and PEM), renewing them over
//! a run several lifetimes long and once after concurrent 403s, refused at the start for a
//! bad kid, key or client id, the scopes it asks for, fresh `jti`s, a token endpoint failing
//! mid-run, and the same rules as the other kinds of credentials.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::harness::*;
use ds100_offboard::report::status::Status;

const CLIENT: &str = "test-only-client-0c4f";
const RSA_KID: &str = "test-only-rsa-kid-7c1e";
const EC_KID: &str = "test-only-ec-kid-52ad";
const READ: &str = "rsa.authenticator.ds100.read";
const DELETE_READ: &str = "rsa.authenticator.ds100.delete rsa.authenticator.ds100.read";

/// A scenario whose simulator holds `all` (also the input) and serves a token endpoint
/// verifying with the public key `public` (a fixture) for `CLIENT`; `extra` simulator flags.
fn oauth_tenant(all: &[Cred], public: &str, extra: &[&str]) -> Scenario {
    let public = fixture(public);
    let mut auth = vec![
        "--oauth-public-key",
        public.to_str().unwrap(),
        "--oauth-client-id",
        CLIENT,
    ];
    auth.extend(extra);
    Scenario::new()
        .seed(all)
        .sim_auth(&auth)
        .input(&csv_of(all))
}

/// `<sim URL>/oauth`.
fn issuer(sc: &Scenario) -> String {
    format!("{}/oauth", sc.sim().url)
}

/// The command with the OAuth flags for `key` (a private copy of a fixture) and no token.
fn with_oauth<'a>(cmd: Cmd<'a>, sc: &Scenario, key: &Path, kid: Option<&str>) -> Cmd<'a> {
    let mut cmd = cmd
        .no_token()
        .args(["--oauth-issuer", &issuer(sc)])
        .args(["--oauth-client-id", CLIENT])
        .arg("--oauth-key")
        .arg(key);
    if let Some(kid) = kid {
        cmd = cmd.args(["--oauth-key-id", kid]);
    }
    cmd
}

fn key(sc: &Scenario, fixture_name: &str) -> PathBuf {
    private_copy(sc.dir(), fixture_name)
}

fn assert_all(ran: &Ran, n: u64, status: Status) {
    for r in ran.rows(n).values() {
        assert_eq!(r.status, status, "{r:?}");
    }
}

/// Every form of both keys signs assertions the simulator accepts: RSA as a JWK, PKCS#1 and
/// PKCS#8 PEM (RS256); EC P-256 as a JWK, SEC1 and PKCS#8 PEM (ES256), verified with the
/// public key as a PEM or a JWK. The report's sidecar and the summary name the client id.
#[test]
fn rsa_and_ec_keys_as_jwk_and_pem_sign_accepted_assertions() {
    let cases = [
        (
            "test-only-oauth-rsa.jwk.json",
            None,
            "test-only-oauth-rsa-public.pem",
        ),
        (
            "test-only-oauth-rsa-pkcs1.pem",
            Some(RSA_KID),
            "test-only-oauth-rsa-public.jwk.json",
        ),
        (
            "test-only-oauth-rsa-pkcs8.pem",
            Some(RSA_KID),
            "test-only-oauth-rsa-public.pem",
        ),
        (
            "test-only-oauth-ec.jwk.json",
            None,
            "test-only-oauth-ec-public.jwk.json",
        ),
        (
            "test-only-oauth-ec-sec1.pem",
            Some(EC_KID),
            "test-only-oauth-ec-public.pem",
        ),
        (
            "test-only-oauth-ec-pkcs8.pem",
            Some(EC_KID),
            "test-only-oauth-ec-public.jwk.json",
        ),
    ];
    for (i, (private, kid, public)) in cases.into_iter().enumerate() {
        let all = creds(2, 30_000 + 10 * i);
        let sc = oauth_tenant(&all, public, &[]);
        let k = key(&sc, private);
        let ran = with_oauth(sc.run_cmd(), &sc, &k, kid)
            .args(FAST)
            .summary()
            .run()
            .exits(0);
        assert_all(&ran, 2, Status::Deleted);
        let sim = sc.sim();
        assert!(sim.store().is_empty(), "{private}");
        assert_eq!(
            sim.stat("oauth_tokens_issued"),
            1,
            "{private}: {}",
            sim.stats()
        );
        assert_eq!(sim.stat("oauth_refused"), 0, "{private}");
        assert_eq!(sim.stat("forbidden"), 0, "{private}");
        let identity = format!("OAuth client {CLIENT}");
        assert_eq!(ran.summary()["identity"], identity.as_str(), "{private}");
        let sidecar = read_json(&ran.report_path().with_extension("meta.json"));
        assert_eq!(sidecar["identity"], identity.as_str(), "{private}");
        let alg = if private.contains("rsa") {
            "RS256"
        } else {
            "ES256"
        };
        assert!(
            ran.stderr.contains(alg),
            "{private}: the plan names {alg}: {}",
            ran.stderr
        );
    }
}

/// Tokens living 2 s, a run held open for more than three of their lifetimes by the
/// simulator's latency: each is replaced when a fifth of its lifetime is left, so none is
/// ever refused and no row fails.
#[test]
fn a_run_longer_than_three_token_lifetimes_renews_and_no_row_fails() {
    let all = creds(70, 31_000);
    let sc = oauth_tenant(
        &all,
        "test-only-oauth-ec-public.pem",
        &["--oauth-token-ttl", "2s", "--latency", "100ms"],
    );
    let k = key(&sc, "test-only-oauth-ec.jwk.json");
    let ran = with_oauth(sc.run_cmd(), &sc, &k, None)
        .args(["--yes", "--rate", "1000/s", "--concurrency", "1", "-v"])
        .run()
        .exits(0);
    assert_all(&ran, 70, Status::Deleted);
    let sim = sc.sim();
    assert!(sim.store().is_empty());
    // 71 requests of at least 100 ms each: over 7 s, more than three lifetimes of 2 s.
    assert_eq!(
        sim.stat("requests"),
        71,
        "no request spent on a stale token"
    );
    assert!(sim.stat("oauth_tokens_issued") >= 4, "{}", sim.stats());
    assert_eq!(sim.stat("forbidden"), 0, "renewed in time: {}", sim.stats());
    assert!(
        ran.stderr
            .contains("fetched a new access token before expiry"),
        "{}",
        ran.stderr
    );
}

/// Eight workers refused together on the first token: one fetch serves them all.
#[test]
fn concurrent_403s_cause_one_token_fetch() {
    let all = creds(8, 31_200);
    // Every DELETE bearing the first token is refused, whenever it arrives (the check
    // before the plan, a lookup, is let through on it).
    let sc = oauth_tenant(&all, "test-only-oauth-rsa-public.pem", &[])
        .faults(&["403,tokens=1,on=delete"]);
    let k = key(&sc, "test-only-oauth-rsa.jwk.json");
    let ran = with_oauth(sc.run_cmd(), &sc, &k, None)
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
    let sim = sc.sim();
    assert!(refused >= 1, "the first token was sent at least once");
    assert_eq!(sim.stats()["by_status"]["403"], refused);
    assert_eq!(
        sim.stat("oauth_tokens_issued"),
        2,
        "the first token and one renewal"
    );
    assert_eq!(sim.stat("distinct_tokens"), 2);
    let fetches = ran
        .stderr
        .matches("fetched a new access token after a 403")
        .count();
    assert_eq!(fetches, 1, "{refused} refusals: {}", ran.stderr);
}

/// A kid the client did not register, a key that is not the client's, a client id the
/// issuer does not know, a URL that is not the issuer: refused by the first token request,
/// before the check and the plan: exit 2, the issuer's error quoted with what to check,
/// nothing sent to the tenant, no report.
#[test]
fn a_bad_kid_a_wrong_key_or_a_wrong_client_id_is_refused_at_the_start() {
    let all = creds(3, 31_400);
    let sc = oauth_tenant(&all, "test-only-oauth-ec-public.jwk.json", &[]);
    let good = key(&sc, "test-only-oauth-ec.jwk.json");
    let pem = key(&sc, "test-only-oauth-ec-sec1.pem");
    let other = key(&sc, "test-only-oauth-other-ec.jwk.json");
    let url = issuer(&sc);
    let cases: Vec<(Cmd<'_>, &str)> = vec![
        (
            with_oauth(sc.run_cmd(), &sc, &pem, Some("not-the-kid")),
            "kid names no key",
        ),
        (with_oauth(sc.run_cmd(), &sc, &other, None), "signature"),
        (
            sc.run_cmd()
                .no_token()
                .args(["--oauth-issuer", &url, "--oauth-client-id", "someone-else"])
                .arg("--oauth-key")
                .arg(&good),
            "unknown client_id",
        ),
    ];
    for (cmd, why) in cases {
        let ran = cmd.args(FAST).run().exits(2);
        let err = &ran.stderr;
        for want in [
            "invalid_client",
            why,
            "Check the client id",
            "kid",
            "clock",
            "Nothing was sent",
        ] {
            assert!(err.contains(want), "{why}: want {want:?}: {err}");
        }
        assert!(
            !err.contains("Plan"),
            "{why}: stopped before the plan: {err}"
        );
        assert!(!ran.has_report(), "{why}");
    }
    // An issuer URL with a wrong path: the simulator's 404 is no token endpoint's answer.
    let ran = sc
        .run_cmd()
        .no_token()
        .args(["--oauth-issuer", &format!("{}/wrong", sc.sim().url)])
        .args(["--oauth-client-id", CLIENT])
        .arg("--oauth-key")
        .arg(&good)
        .args(FAST)
        .run()
        .exits(2);
    assert!(
        ran.stderr
            .contains("did not answer like an OAuth token endpoint")
            && ran.stderr.contains("--oauth-issuer"),
        "{}",
        ran.stderr
    );
    let sim = sc.sim();
    assert_eq!(sim.stat("requests"), 0, "nothing reached the API");
    assert_eq!(sim.stat("oauth_refused"), 3);
    assert_eq!(sim.stat("oauth_tokens_issued"), 0);
    assert_eq!(sim.store().len(), 3);
}

/// A run asks for delete and read, a dry run for read only, `--oauth-scope` for what it
/// says; the simulator records each token request's scope.
#[test]
fn scopes_are_delete_and_read_for_a_run_and_read_for_a_dry_run() {
    let all = creds(3, 31_600);
    let sc = oauth_tenant(&all, "test-only-oauth-ec-public.pem", &[]);
    let k = key(&sc, "test-only-oauth-ec.jwk.json");
    with_oauth(sc.run_cmd(), &sc, &k, None)
        .arg("--dry-run")
        .run()
        .exits(0);
    assert_eq!(sc.sim().store().len(), 3, "a dry run deletes nothing");
    with_oauth(sc.run_cmd(), &sc, &k, None)
        .args(FAST)
        .run()
        .exits(0);
    let stats = sc.sim().stats();
    assert_eq!(
        stats["oauth_scopes_requested"],
        serde_json::json!({ READ: 1, DELETE_READ: 1 }),
        "{stats}"
    );
    assert!(sc.sim().store().is_empty());
    // --oauth-scope replaces the default (here with something the API does not know: the
    // check before the plan, a lookup, is then refused for want of the read scope).
    let ran = with_oauth(sc.run_cmd(), &sc, &k, None)
        .args(["--oauth-scope", "rsa.authenticator.ds100.audit"])
        .args(["--dry-run", "--overwrite"])
        .run()
        .exits(2);
    assert!(
        ran.stderr.contains("refused the access tokens") && ran.stderr.contains("scope"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        sc.sim().stats()["oauth_scopes_requested"]["rsa.authenticator.ds100.audit"],
        2,
        "the first token and the fresh one after the 403"
    );
}

/// An API client allowed only to read: its dry run works; its run is refused at the start
/// (invalid_scope, exit 2, nothing deleted). A read-only token given as a ready token is
/// refused every DELETE by the simulator, which checks each endpoint's scope.
#[test]
fn a_read_only_client_audits_but_cannot_delete() {
    let all = creds(3, 31_800);
    let sc = oauth_tenant(
        &all,
        "test-only-oauth-rsa-public.jwk.json",
        &["--oauth-allowed-scopes", READ],
    );
    let k = key(&sc, "test-only-oauth-rsa-pkcs8.pem");
    with_oauth(sc.run_cmd(), &sc, &k, Some(RSA_KID))
        .arg("--dry-run")
        .run()
        .exits(0);
    let ran = with_oauth(sc.run_cmd(), &sc, &k, Some(RSA_KID))
        .args(FAST)
        .run()
        .exits(2);
    let err = &ran.stderr;
    assert!(
        err.contains("invalid_scope")
            && err.contains("--oauth-scope")
            && err.contains("Nothing was sent"),
        "{err}"
    );
    assert!(!ran.has_report());

    let read_only = with_oauth(ds100("token"), &sc, &k, Some(RSA_KID))
        .args(["--oauth-scope", READ])
        .run()
        .exits(0)
        .stdout;
    let ran = sc
        .run_cmd()
        .token(read_only.trim())
        .args(FAST)
        .args(["--stop-after", "0", "--overwrite"])
        .run()
        .exits(1);
    assert_all(&ran, 3, Status::Unauthorized);
    let sim = sc.sim();
    assert_eq!(sim.stat("deleted"), 0);
    assert_eq!(sim.store().len(), 3);
    assert_eq!(sim.stat("oauth_scope_denied"), 3, "{}", sim.stats());
}

/// Concurrent `token` commands — fetches within the same second — all get a token: every
/// assertion carries a fresh `jti`. A client replaying one assertion is refused.
#[test]
fn a_replayed_jti_is_impossible() {
    let sc = oauth_tenant(&creds(1, 31_900), "test-only-oauth-ec-public.pem", &[]);
    let k = key(&sc, "test-only-oauth-ec-pkcs8.pem");
    let running: Vec<_> = (0..4)
        .map(|_| with_oauth(ds100("token"), &sc, &k, Some(EC_KID)).spawn())
        .collect();
    let mut tokens: Vec<String> = running
        .into_iter()
        .map(|r| r.wait().exits(0).stdout.trim().to_string())
        .collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 4, "four different tokens");
    let sim = sc.sim();
    assert_eq!(sim.stat("oauth_tokens_issued"), 4);
    assert_eq!(sim.stat("oauth_jti_replays"), 0);

    // A replay, by hand: the same assertion twice.
    let assertion = sign_assertion(&sc, "replayed-jti-1");
    let first = post_token(&sc, &assertion);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let again = post_token(&sc, &assertion);
    assert!(
        again.starts_with("HTTP/1.1 401")
            && again.contains("invalid_client")
            && again.contains("replayed"),
        "{again}"
    );
    assert_eq!(sim.stat("oauth_jti_replays"), 1);
}

/// A client assertion for the test EC key, made in the test: as the tool makes them.
fn sign_assertion(sc: &Scenario, jti: &str) -> String {
    jwt_ring::install();
    let pem = std::fs::read(fixture("test-only-oauth-ec-pkcs8.pem")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(EC_KID.into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": CLIENT, "sub": CLIENT, "aud": format!("{}/token", issuer(sc)),
        "iat": now, "exp": now + 300, "jti": jti,
    });
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// `POST /oauth/token` with `assertion`; the raw answer.
fn post_token(sc: &Scenario, assertion: &str) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id={CLIENT}&scope={READ}\
         &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
         &client_assertion={assertion}"
    );
    let mut s = std::net::TcpStream::connect(sc.sim().addr()).unwrap();
    write!(
        s,
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// The token endpoint fails when the first token needs replacing: the renewal is tried
/// again with backoff; a blip is ridden out, a lasting failure stops the run safely (exit 3,
/// rows not sent `skipped`), and `--resume` finishes the job once the issuer answers again.
#[test]
fn a_token_endpoint_failing_mid_run_is_retried_then_stops_safely() {
    // A blip: the first renewal's first attempt fails.
    let all = creds(30, 32_000);
    let sc = oauth_tenant(
        &all,
        "test-only-oauth-ec-public.pem",
        &[
            "--oauth-token-ttl",
            "1s",
            "--latency",
            "100ms",
            "--oauth-fault",
            "503,nth=2",
        ],
    );
    let k = key(&sc, "test-only-oauth-ec.jwk.json");
    let ran = with_oauth(sc.run_cmd(), &sc, &k, None)
        .args([
            "--yes",
            "--concurrency",
            "1",
            "--rate",
            "1000/s",
            "--max-backoff",
            "50ms",
        ])
        .run()
        .exits(0);
    assert_all(&ran, 30, Status::Deleted);
    assert!(sc.sim().stat("oauth_faults_injected") == 1);
    assert!(ran.stderr.contains("trying again"), "{}", ran.stderr);

    // A lasting failure: both attempts of the first renewal fail.
    let sc = oauth_tenant(
        &all,
        "test-only-oauth-ec-public.pem",
        &[
            "--oauth-token-ttl",
            "1s",
            "--latency",
            "100ms",
            "--oauth-fault",
            "401,nth=2",
            "--oauth-fault",
            "503,nth=3",
        ],
    );
    let k = key(&sc, "test-only-oauth-ec.jwk.json");
    let run = || {
        with_oauth(sc.run_cmd(), &sc, &k, None).args([
            "--yes",
            "--concurrency",
            "1",
            "--rate",
            "1000/s",
            "--max-backoff",
            "50ms",
            "--max-attempts",
            "2",
        ])
    };
    let ran = run().summary().run().exits(3);
    let rows = ran.rows(30);
    let deleted = rows
        .values()
        .filter(|r| r.status == Status::Deleted)
        .count();
    let skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!(deleted >= 1, "the first token served some rows");
    assert_eq!(
        deleted + skipped,
        30,
        "nothing failed, nothing lost: {rows:?}"
    );
    assert_eq!(
        sc.sim().store().len(),
        skipped,
        "skipped rows were not deleted"
    );
    assert!(ran.stderr.contains("no bearer token"), "{}", ran.stderr);
    assert!(ran.stdout.contains("--resume"), "{}", ran.stdout);
    let stopped = ran.summary()["stopped"].clone();
    assert!(stopped.to_string().contains("no access token"), "{stopped}");

    // The issuer answers again (its faults were the 2nd and 3rd requests): resume finishes.
    let ran = run().arg("--resume").run().exits(0);
    let latest = latest_by_row(ran.report_path(), 30);
    assert!(latest.values().all(|r| r.status == Status::Deleted));
    let sim = sc.sim();
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("deletes_of_already_deleted"), 0);
}

/// The rules of every kind of credentials: all three OAuth pieces or none (exit 2 naming
/// the missing one), `--base-url` required, HTTPS to the issuer, one kind per run, a flag
/// beating another kind's variable with a warning, the environment alone working.
#[test]
fn oauth_follows_the_rules_of_the_other_kinds_of_credentials() {
    let all = creds(2, 32_200);
    let sc = oauth_tenant(&all, "test-only-oauth-ec-public.pem", &[]);
    let k = key(&sc, "test-only-oauth-ec.jwk.json");
    let key_file = private_copy(sc.dir(), "test-only-key-pkcs1.json");
    let url = issuer(&sc);
    let refused: Vec<(Cmd<'_>, &str)> = vec![
        (
            sc.run_cmd()
                .no_token()
                .args(["--oauth-issuer", &url])
                .arg("--oauth-key")
                .arg(&k),
            "missing: --oauth-client-id (or DS100_OAUTH_CLIENT_ID)",
        ),
        (
            sc.run_cmd()
                .no_token()
                .env("DS100_OAUTH_CLIENT_ID", CLIENT)
                .env("DS100_OAUTH_KEY", &k),
            "missing: --oauth-issuer (or DS100_OAUTH_ISSUER)",
        ),
        (
            with_oauth(sc.run_cmd(), &sc, &k, None).no_base_url(),
            "--base-url",
        ),
        (
            sc.run_cmd()
                .no_token()
                .args(["--oauth-issuer", "http://acme.auth.securid.com/oauth"])
                .args(["--oauth-client-id", CLIENT])
                .arg("--oauth-key")
                .arg(&k),
            "HTTPS",
        ),
        (
            with_oauth(sc.run_cmd(), &sc, &k, None)
                .arg("--key-file")
                .arg(&key_file),
            "two kinds",
        ),
        (
            sc.run_cmd()
                .no_token()
                .env("DS100_OAUTH_ISSUER", &url)
                .env("DS100_OAUTH_CLIENT_ID", CLIENT)
                .env("DS100_OAUTH_KEY", &k)
                .env("DS100_KEY_FILE", &key_file),
            "unset",
        ),
        (
            sc.run_cmd()
                .key_file(&key_file)
                .args(["--oauth-scope", READ]),
            "--oauth-scope applies to OAuth",
        ),
    ];
    for (cmd, want) in refused {
        let ran = cmd.args(FAST).run().exits(2);
        assert!(ran.stderr.contains(want), "want {want:?}: {}", ran.stderr);
    }
    let sim = sc.sim();
    assert_eq!(sim.stat("oauth_token_requests"), 0, "nothing was asked");
    assert_eq!(sim.stat("requests"), 0);

    // OAuth flags beat a leftover DS100_TOKEN, with a warning.
    let ran = with_oauth(sc.run_cmd(), &sc, &k, None)
        .token("leftover-token")
        .args(FAST)
        .run()
        .exits(0);
    assert!(
        ran.stderr.contains("DS100_TOKEN is set but ignored"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("leftover-token"));
    assert_all(&ran, 2, Status::Deleted);

    // The environment alone, the tenant from DS100_BASE_URL.
    let sc2 = oauth_tenant(&creds(2, 32_300), "test-only-oauth-ec-public.pem", &[]);
    let ran = sc2
        .run_cmd()
        .no_token()
        .no_base_url()
        .env("DS100_BASE_URL", &sc2.sim().url)
        .env("DS100_OAUTH_ISSUER", issuer(&sc2))
        .env("DS100_OAUTH_CLIENT_ID", CLIENT)
        .env("DS100_OAUTH_KEY", &k)
        .args(FAST)
        .run()
        .exits(0);
    assert_all(&ran, 2, Status::Deleted);
}

/// `token` prints the access token the issuer gave, which the API accepts; a key file others
/// can read is warned about, with the chmod that fixes it.
#[test]
fn the_token_command_prints_an_access_token_and_warns_about_a_readable_key() {
    let all = creds(2, 32_400);
    let sc = oauth_tenant(&all, "test-only-oauth-rsa-public.pem", &[]);
    let k = key(&sc, "test-only-oauth-rsa-pkcs1.pem");
    let out = with_oauth(ds100("token"), &sc, &k, Some(RSA_KID))
        .run()
        .exits(0);
    assert_eq!(out.stderr, "", "a private key: no warning, nothing else");
    let token = out.stdout.trim_end().to_string();
    assert!(
        out.stdout.ends_with('\n') && out.stdout.lines().count() == 1,
        "{token}"
    );
    assert!(
        token.starts_with("sim-at-"),
        "the issuer's token, as issued: {token}"
    );
    let ran = sc.run_cmd().token(&token).args(FAST).run().exits(0);
    assert_all(&ran, 2, Status::Deleted);

    set_mode(&k, 0o644);
    let out = with_oauth(ds100("token"), &sc, &k, Some(RSA_KID))
        .run()
        .exits(0);
    let fix = format!("chmod 600 {}", k.display());
    assert!(
        out.stderr.contains("readable by every user") && out.stderr.contains(&fix),
        "{}",
        out.stderr
    );
    // Without a kid for the PEM: refused before asking, naming the flag.
    let out = with_oauth(ds100("token"), &sc, &k, None).run().exits(2);
    assert!(out.stderr.contains("--oauth-key-id"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(sc.sim().stat("oauth_token_requests"), 2);
}

/// The token request goes out through the run's TLS configuration: an issuer (and tenant)
/// behind a TLS terminator whose CA the machine does not trust is refused on the handshake
/// (exit 2, pointing at `--ca-cert`, nothing sent); with `--ca-cert` the run goes through.
#[test]
fn the_token_request_uses_the_runs_tls_trust_and_ca_cert() {
    let all = creds(2, 32_600);
    let sc = oauth_tenant(&all, "test-only-oauth-ec-public.pem", &[]);
    let k = key(&sc, "test-only-oauth-ec.jwk.json");
    let proxy = tls_terminator(
        sc.sim().addr(),
        "test-only-server-cert.pem",
        "test-only-server-key.pem",
    );
    let https = format!("https://localhost:{}", proxy.addr.port());
    let https_run = || {
        sc.run_cmd()
            .no_token()
            .base_url(&https)
            .args(["--oauth-issuer", &format!("{https}/oauth")])
            .args(["--oauth-client-id", CLIENT])
            .arg("--oauth-key")
            .arg(&k)
            .args(FAST)
    };
    let ran = https_run().run().exits(2);
    let err = &ran.stderr;
    assert!(
        err.contains("cannot get an OAuth access token")
            && err.contains("TLS")
            && err.contains("--ca-cert"),
        "{err}"
    );
    assert!(
        !err.contains("after"),
        "a TLS failure is not retried: {err}"
    );
    assert_eq!(sc.sim().stat("oauth_token_requests"), 0);
    assert_eq!(sc.sim().stat("requests"), 0);

    let ran = https_run()
        .arg("--ca-cert")
        .arg(fixture("test-only-ca.pem"))
        .run()
        .exits(0);
    assert_all(&ran, 2, Status::Deleted);
    assert_eq!(sc.sim().stat("oauth_tokens_issued"), 1);
    assert!(sc.sim().store().is_empty());
}
