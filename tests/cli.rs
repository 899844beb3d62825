//! The commands as a user types them: validate, demo, usage errors, credentials and URLs.

mod common;

use common::*;
use ds100_offboard::report::status::Status;

#[test]
fn validate_classifies_every_row_offline() {
    let dir = tempfile::tempdir().unwrap();
    let c = creds(2, 9000);
    let text = format!(
        "\u{feff}Token Serial Number;Device Serial Number;User ID;Note\r\n\
         {t0};{d0};{u0};a\r\n\
         \r\n\
         {t0};{d0};{u0};again\r\n\
         ;{d1};;resolve later\r\n\
         x y;{d1};{u1};bad token\r\n",
        t0 = c[0].token,
        d0 = c[0].device,
        u0 = c[0].user,
        d1 = c[1].device,
        u1 = c[1].user,
    );
    let input = write(dir.path(), "in.csv", &text);
    let summary = dir.path().join("s.json");
    bin()
        .arg("validate")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary)
        .assert()
        .code(1);
    let rows = report_by_row(&dir.path().join("in.validation.csv"), 4);
    use Status::*;
    let st: Vec<Status> = (1..=4).map(|i| rows[&i].status).collect();
    assert_eq!(st, [Valid, Duplicate, Valid, Invalid]);
    assert_eq!(rows[&1].line, 2);
    assert_eq!(
        rows[&2].line, 4,
        "blank line skipped but counted in line numbers"
    );
    assert_eq!(rows[&1].token, c[0].token, "leading zeros kept");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    assert_eq!(s["statuses"]["invalid"], 1);
    assert_eq!(s["exit_code"], 1);
}

#[test]
fn validate_of_a_clean_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "ok.csv", &csv_of(&creds(3, 9100)));
    bin().arg("validate").arg(&input).assert().code(0);
    assert_eq!(
        status_counts(&dir.path().join("ok.validation.csv"))["valid"],
        3
    );
}

#[test]
fn whole_file_errors_exit_2_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let out = bin()
        .arg("validate")
        .arg(&missing)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.csv"));
    let empty = write(dir.path(), "empty.csv", "");
    let out = bin()
        .arg("validate")
        .arg(&empty)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("header")
    );
}

#[test]
fn run_without_credentials_or_tenant_explains_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", &csv_of(&creds(1, 9200)));
    let out = bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", "http://127.0.0.1:9"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("DS100_TOKEN"));
    let out = bin()
        .arg("run")
        .arg(&input)
        .env("DS100_TOKEN", TOKEN)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--base-url"));
    let out = bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", "http://acme.access.securid.com"])
        .env("DS100_TOKEN", TOKEN)
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTPS"));
}

#[test]
fn a_token_file_works_like_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let c = creds(2, 9300);
    let sim = Sim::seeded(dir.path(), &c, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&c));
    let token_file = write(dir.path(), "token.txt", &format!("{TOKEN}\n"));
    bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", &format!("{}/AdminInterface/restapi", sim.url)])
        .arg("--token-file")
        .arg(&token_file)
        .args(FAST)
        .assert()
        .code(0);
    assert!(sim.store().is_empty());
}

/// A token the tenant refuses outright is found by the check before the plan (exit 2, nothing
/// deleted, no report). One it accepts for reading but refuses to delete with (a role without
/// the permission) ends rows `unauthorized` until the safety stop.
#[test]
fn a_refused_token_ends_rows_unauthorized_and_trips_the_safety_stop() {
    let dir = tempfile::tempdir().unwrap();
    let c = creds(10, 9400);
    let sim = Sim::seeded(dir.path(), &c, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&c));
    let out = bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", &sim.url, "--stop-after", "3"])
        .args(FAST)
        .env("DS100_TOKEN", "wrong-token")
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the bearer token"));
    assert_eq!((sim.stat("lookups"), sim.stat("deletes")), (1, 0));
    assert!(!dir.path().join("in.report.csv").exists());
    drop(sim);

    let sim = Sim::seeded(dir.path(), &c, &["--fault", "403,every=1,on=delete"]);
    let out = bin()
        .arg("run")
        .arg(&input)
        .args([
            "--base-url",
            &sim.url,
            "--stop-after",
            "3",
            "--concurrency",
            "1",
        ])
        .args(FAST)
        .env("DS100_TOKEN", TOKEN)
        .assert()
        .code(3)
        .get_output()
        .clone();
    let rows = report_by_row(&dir.path().join("in.report.csv"), 10);
    assert_eq!(
        rows.values()
            .filter(|r| r.status == Status::Unauthorized)
            .count(),
        3
    );
    assert_eq!(
        rows.values()
            .filter(|r| r.status == Status::Skipped)
            .count(),
        7
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("safety stop"));
    assert_eq!(sim.store().len(), 10);
}

#[test]
fn demo_runs_end_to_end_without_setup() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("demo.csv");
    let out = bin()
        .arg("demo")
        .arg("--report")
        .arg(&report)
        .assert()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the demo's failing rows are by design: {stdout}"
    );
    assert!(stdout.contains("ended as designed"), "{stdout}");
    let counts = status_counts(&report);
    for st in [
        "deleted",
        "absent",
        "mismatch",
        "ambiguous",
        "invalid",
        "duplicate",
    ] {
        assert!(
            counts.get(st).copied().unwrap_or(0) > 0,
            "demo shows no {st}: {counts:?}"
        );
    }
    assert_eq!(counts.values().sum::<usize>(), 20);
    assert!(
        stdout.contains("answered 429") && !stdout.contains("(0 answered 429)"),
        "{stdout}"
    );
}
