//! An adversarial review through the real binary: what the tool writes never lands on a file
//! it reads (the input by a hard link, a key, token or OAuth key file), `report` on odd
//! reports and odd output names, and the operator's messages.

use std::path::Path;

use crate::harness::*;

/// The key file the tool must never write over, as a private copy in `dir`.
fn key_copy(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    std::fs::copy(fixture("test-only-key-pkcs1.json"), &key).unwrap();
    set_mode(&key, 0o600);
    key
}

#[test]
fn outputs_never_land_on_the_input_or_a_credential_file() {
    let all = creds(2, 900);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let input_text = std::fs::read(sc.input_path()).unwrap();

    // The report as a hard link to the input: --overwrite would truncate the input.
    let linked = sc.path("linked.csv");
    std::fs::hard_link(sc.input_path(), &linked).unwrap();
    let ran = sc
        .run_cmd()
        .args(["--dry-run", "--overwrite", "--report"])
        .arg(&linked)
        .run()
        .exits(2);
    assert!(ran.stderr.contains("input"), "{}", ran.stderr);
    assert_eq!(std::fs::read(sc.input_path()).unwrap(), input_text);

    // The report, the summary JSON or the sidecar on the key file, the token file or the
    // OAuth key: the only copy of a credential would be gone.
    let key = key_copy(sc.dir(), "key.json");
    let key_text = std::fs::read(&key).unwrap();
    for (flag, path) in [("--report", &key), ("--summary-json", &key)] {
        let ran = sc
            .run_cmd()
            .key_file(&key)
            .args(["--dry-run", "--overwrite", flag])
            .arg(path)
            .run()
            .exits(2);
        assert!(ran.stderr.contains("key file"), "{flag}: {}", ran.stderr);
        assert_eq!(std::fs::read(&key).unwrap(), key_text, "{flag}");
    }
    // `--report acme.csv` puts its sidecar on `acme.meta.json`.
    let meta_key = key_copy(sc.dir(), "acme.meta.json");
    let ran = sc
        .run_cmd()
        .key_file(&meta_key)
        .args(["--dry-run", "--report"])
        .arg(sc.path("acme.csv"))
        .run()
        .exits(2);
    assert!(ran.stderr.contains("key file"), "{}", ran.stderr);
    assert_eq!(std::fs::read(&meta_key).unwrap(), key_text);

    let token = sc.file("token.txt", &format!("{TOKEN}\n"));
    set_mode(&token, 0o600);
    let ran = sc
        .run_cmd()
        .no_token()
        .args(["--dry-run", "--overwrite", "--token-file"])
        .arg(&token)
        .arg("--report")
        .arg(&token)
        .run()
        .exits(2);
    assert!(ran.stderr.contains("token file"), "{}", ran.stderr);
    assert_eq!(
        std::fs::read_to_string(&token).unwrap(),
        format!("{TOKEN}\n")
    );

    let jwk = sc.path("client.jwk.json");
    std::fs::copy(fixture("test-only-oauth-rsa.jwk.json"), &jwk).unwrap();
    set_mode(&jwk, 0o600);
    let jwk_text = std::fs::read(&jwk).unwrap();
    let ran = sc
        .run_cmd()
        .no_token()
        .args(["--dry-run", "--overwrite", "--oauth-client-id", "c1"])
        .arg("--oauth-issuer")
        .arg(format!("{}/oauth", sc.sim().url))
        .arg("--oauth-key")
        .arg(&jwk)
        .arg("--summary-json")
        .arg(&jwk)
        .run()
        .exits(2);
    assert!(ran.stderr.contains("OAuth key"), "{}", ran.stderr);
    assert_eq!(std::fs::read(&jwk).unwrap(), jwk_text);
    assert_eq!(sc.sim().stat("requests"), 0, "nothing was sent");
}

/// A report holding its header and no row (its rows were lost; no sidecar says how many there
/// were) shows nothing done: `report` must not call that "every row ok".
#[test]
fn a_report_without_rows_is_not_every_row_ok() {
    let dir = tempfile::tempdir().unwrap();
    let report = write(
        dir.path(),
        "empty.report.csv",
        &format!("{}\n", ds100_offboard::report::row::COLUMNS.join(",")),
    );
    let ran = ds100("report").arg(&report).run().exits(1);
    assert!(ran.stdout.contains("no rows"), "{}", ran.stdout);
    assert!(!ran.stdout.contains("every row ok"), "{}", ran.stdout);
    let ran = ds100("report").arg(&report).arg("--json").run().exits(1);
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(doc["exit_code"], 1, "{doc}");
    let page = dir.path().join("page.html");
    let ran = ds100("report")
        .arg(&report)
        .arg("--html")
        .arg(&page)
        .run()
        .exits(1);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("Every row ok"), "{}", ran.stderr);
}

/// `-` names stdout for `--summary-json`; for `--compact` and `--html` it made a file named
/// `-` in the current folder. It is refused, saying to name a file.
#[test]
fn report_outputs_named_dash_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(2, 920);
    let sc = Scenario::new().input(&csv_of(&all));
    let report = sc.validate(&[]).exits(0).report_path().to_path_buf();
    for flag in ["--compact", "--html"] {
        let ran = ds100("report")
            .arg(&report)
            .args([flag, "-"])
            .current_dir(dir.path())
            .run()
            .exits(2);
        assert!(ran.stderr.contains(flag), "{}", ran.stderr);
        assert!(
            !dir.path().join("-").exists(),
            "{flag} wrote a file named -"
        );
    }
}

/// A gateway or debugging proxy that echoes the request's Authorization header in its answer
/// (as JSON, where the word before the token is `"Bearer` with a quote) must not put the
/// token into the report, the logs or the summary: the body is quoted in `note` and `error`.
#[test]
fn an_answer_echoing_the_bearer_token_never_puts_it_in_the_report_or_logs() {
    const SECRET: &str = "opaque-at-7Hq2xV9mK4pL8wZ3nR6t";
    let all = creds(3, 940);
    let (ok, refused, flaky) = (
        all[0].device.clone(),
        all[1].device.clone(),
        all[2].device.clone(),
    );
    let echo = format!(r#"{{"headers":{{"Authorization":"Bearer {SECRET}"}},"token":"{SECRET}"}}"#);
    let gw = Gateway::start(move |s| {
        let json = Some("application/json");
        if s.path.ends_with("/lookup") {
            return reply(404, json, r#"{"message":"no such authenticator"}"#);
        }
        if s.device == ok {
            reply(200, json, &echo)
        } else if s.device == refused {
            reply(400, json, &echo)
        } else if s.device == flaky {
            reply(503, json, &echo)
        } else {
            reply(500, None, "")
        }
    });
    let sc = Scenario::new().input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .base_url(&gw.url)
        .token(SECRET)
        .args(FAST)
        .args(["--max-attempts", "2", "-vv"])
        .env("RUST_LOG", "trace")
        .summary()
        .run()
        .exits(1);
    let report = std::fs::read_to_string(ran.report_path()).unwrap();
    let summary = std::fs::read_to_string(ran.summary_path()).unwrap();
    for (what, text) in [
        ("report", &report),
        ("stderr", &ran.stderr),
        ("stdout", &ran.stdout),
        ("summary", &summary),
    ] {
        for piece in SECRET.as_bytes().windows(10) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!text.contains(piece), "{what} holds {piece}:\n{text}");
        }
    }
    // The body is still quoted, the token cut out.
    assert!(report.contains("redacted"), "{report}");
}

/// The command a stopped run prints to resume it works as printed, `--summary-json PATH`
/// included: the resume replaces the summary its own job wrote there with the whole job's.
/// Any other existing file at that path is still refused.
#[test]
fn the_printed_resume_command_works_with_summary_json() {
    let all = creds(4, 960);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["500,first=1,on=delete"])
        .input(&csv_of(&all));
    let summary = sc.path("job.summary.json");
    let ran = sc
        .run_cmd()
        .args(FAST)
        .args([
            "--stop-after",
            "1",
            "--max-attempts",
            "1",
            "--concurrency",
            "1",
        ])
        .arg("--summary-json")
        .arg(&summary)
        .run()
        .exits(3);
    let printed = ran
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("to resume"))
        .unwrap_or_else(|| panic!("no resume command: {}", ran.stdout))
        .trim()
        .to_string();
    assert!(printed.contains("--summary-json"), "{printed}");
    let resumed = std::process::Command::new("sh")
        .args(["-c", &printed])
        .env("DS100_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .current_dir(sc.dir())
        .output()
        .unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{printed}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let doc = read_json(&summary);
    assert_eq!(doc["statuses"]["deleted"], 4, "{doc}");
    assert_eq!(doc["invocation"]["command"], "run --resume", "{doc}");

    // A file that is not this job's summary is never replaced by a resume.
    let other = sc.file("other.json", "{\"keep\": true}\n");
    sc.run_cmd()
        .args(FAST)
        .args(["--resume", "--summary-json"])
        .arg(&other)
        .run()
        .exits(2);
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "{\"keep\": true}\n"
    );
}

/// `demo --report PATH` wrote over whatever was there (a leavers file, say) and over a file
/// named like its sidecar. Like every report, the demo's is never written over an existing
/// file: exit 2, the file untouched.
#[test]
fn demo_never_writes_its_report_over_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let existing = write(dir.path(), "leavers.csv", "deviceSerialNumber\n140100080\n");
    let ran = ds100("demo")
        .arg("--report")
        .arg(&existing)
        .current_dir(dir.path())
        .run()
        .exits(2);
    assert!(ran.stderr.contains("exists"), "{}", ran.stderr);
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "deviceSerialNumber\n140100080\n"
    );
    let notes = write(dir.path(), "notes.meta.json", "{\"mine\": 1}\n");
    let ran = ds100("demo")
        .args(["--report", "notes.csv"])
        .current_dir(dir.path())
        .run()
        .exits(2);
    assert!(ran.stderr.contains("notes.meta.json"), "{}", ran.stderr);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "{\"mine\": 1}\n");
    assert!(!dir.path().join("notes.csv").exists());
}

/// `report --compact` / `--html` with `--overwrite` replaced the job's own input — the HR file
/// the sidecar names — with the compact report or the page. The job's input is never an
/// output of `report`.
#[test]
fn report_outputs_never_replace_the_jobs_input() {
    let all = creds(2, 980);
    let sc = Scenario::new().input(&csv_of(&all));
    let report = sc.validate(&[]).exits(0).report_path().to_path_buf();
    let before = std::fs::read(sc.input_path()).unwrap();
    for flag in ["--compact", "--html"] {
        let ran = ds100("report")
            .arg(&report)
            .arg(flag)
            .arg(sc.input_path())
            .arg("--overwrite")
            .run()
            .exits(2);
        assert!(ran.stderr.contains("input"), "{flag}: {}", ran.stderr);
        assert_eq!(std::fs::read(sc.input_path()).unwrap(), before, "{flag}");
    }
}
