//! The commands as a user types them: validate, demo, usage errors, credentials and URLs.

use crate::harness::*;
use ds100_offboard::report::status::Status;

#[test]
fn validate_classifies_every_row_offline() {
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
    let sc = Scenario::new().input(&text);
    let ran = sc.validate_cmd().summary().run().exits(1);
    let rows = ran.rows(4);
    use Status::*;
    let st: Vec<Status> = (1..=4).map(|i| rows[&i].status).collect();
    assert_eq!(st, [Valid, Duplicate, Valid, Invalid]);
    assert_eq!(rows[&1].line, 2);
    assert_eq!(
        rows[&2].line, 4,
        "blank line skipped but counted in line numbers"
    );
    assert_eq!(rows[&1].token, c[0].token, "leading zeros kept");
    let s = ran.summary();
    assert_eq!(s["statuses"]["invalid"], 1);
    assert_eq!(s["exit_code"], 1);
}

#[test]
fn validate_of_a_clean_file_exits_0() {
    let sc = Scenario::new().input_named("ok.csv", &csv_of(&creds(3, 9100)));
    let ran = sc.validate(&[]).exits(0);
    assert_eq!(ran.counts()["valid"], 3);
}

#[test]
fn whole_file_errors_exit_2_with_a_hint() {
    let sc = Scenario::new();
    let ran = ds100("validate").arg(sc.path("nope.csv")).run().exits(2);
    assert!(ran.stderr.contains("nope.csv"), "{}", ran.stderr);
    let ran = ds100("validate")
        .arg(sc.file("empty.csv", ""))
        .run()
        .exits(2);
    assert!(
        ran.stderr.to_lowercase().contains("header"),
        "{}",
        ran.stderr
    );
}

#[test]
fn run_without_credentials_or_tenant_explains_and_exits_2() {
    let sc = Scenario::new().input(&csv_of(&creds(1, 9200)));
    let ran = sc
        .run_cmd()
        .no_token()
        .base_url("http://127.0.0.1:9")
        .run()
        .exits(2);
    assert!(ran.stderr.contains("DS100_TOKEN"), "{}", ran.stderr);
    let ran = sc.run_cmd().no_base_url().run().exits(2);
    assert!(ran.stderr.contains("--base-url"), "{}", ran.stderr);
    let ran = sc
        .run_cmd()
        .base_url("http://acme.access.securid.com")
        .run()
        .exits(2);
    assert!(ran.stderr.contains("HTTPS"), "{}", ran.stderr);
}

#[test]
fn a_token_file_works_like_the_environment() {
    let c = creds(2, 9300);
    let sc = Scenario::new().seed(&c).input(&csv_of(&c));
    let token_file = sc.file("token.txt", &format!("{TOKEN}\n"));
    sc.run_cmd()
        .no_token()
        .base_url(&format!("{}/AdminInterface/restapi", sc.sim().url))
        .arg("--token-file")
        .arg(&token_file)
        .args(FAST)
        .run()
        .exits(0);
    assert!(sc.sim().store().is_empty());
}

/// A token the tenant refuses outright is found by the check before the plan (exit 2, nothing
/// deleted, no report). One it accepts for reading but refuses to delete with (a role without
/// the permission) ends rows `unauthorized` until the safety stop.
#[test]
fn a_refused_token_ends_rows_unauthorized_and_trips_the_safety_stop() {
    let c = creds(10, 9400);
    let sc = Scenario::new().seed(&c).input(&csv_of(&c));
    let ran = sc
        .run_cmd()
        .token("wrong-token")
        .args(["--stop-after", "3"])
        .args(FAST)
        .run()
        .exits(2);
    assert!(
        ran.stderr.contains("refused the bearer token"),
        "{}",
        ran.stderr
    );
    assert_eq!((sc.sim().stat("lookups"), sc.sim().stat("deletes")), (1, 0));
    assert!(!ran.has_report());

    let sc = Scenario::new()
        .seed(&c)
        .faults(&["403,every=1,on=delete"])
        .input(&csv_of(&c));
    let ran = sc
        .run_cmd()
        .args(["--stop-after", "3", "--concurrency", "1"])
        .args(FAST)
        .run()
        .exits(3);
    let rows = ran.rows(10);
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
    assert!(ran.stdout.contains("safety stop"), "{}", ran.stdout);
    assert_eq!(sc.sim().store().len(), 10);
}

#[test]
fn demo_runs_end_to_end_without_setup() {
    let sc = Scenario::new();
    let ran = ds100("demo").arg("--report").arg(sc.path("demo.csv")).run();
    assert_eq!(
        ran.code, 0,
        "the demo's failing rows are by design: {}",
        ran.stdout
    );
    assert!(ran.stdout.contains("ended as designed"), "{}", ran.stdout);
    let counts = ran.counts();
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
        ran.stdout.contains("answered 429") && !ran.stdout.contains("(0 answered 429)"),
        "{}",
        ran.stdout
    );
}
