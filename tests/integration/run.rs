//! `run` end to end: the real binary against a real simulator process over HTTP.

use crate::harness::*;
use ds100_offboard::report::status::Status;

#[test]
fn clean_run_deletes_every_row_and_reports_each_once() {
    let all = creds(60, 0);
    let sc = Scenario::new()
        .seed(&all)
        .input_named("leavers.csv", &csv_of(&all[..50]));
    let ran = sc.run_cmd().args(FAST).summary().run().exits(0);
    let rows = ran.rows(50);
    for (i, c) in all[..50].iter().enumerate() {
        let r = &rows[&(i as u64 + 1)];
        assert_eq!(r.status, Status::Deleted, "{r:?}");
        assert_eq!(
            (&r.token, &r.device, &r.user),
            (&c.token, &c.device, &c.user)
        );
        assert_eq!(r.http_status, Some(200));
        assert_eq!(r.attempts, 1);
        assert_eq!(r.line, i as u64 + 2);
        assert!(r.elapsed_ms.is_some());
    }
    // Exactly the targets are gone; the other ten are untouched.
    let sim = sc.sim();
    assert_eq!(sim.store(), all[50..].to_vec());
    assert_eq!(sim.stat("deletes"), 50);
    assert_eq!(sim.stat("deletes_of_already_deleted"), 0);
    let s = ran.summary();
    assert_eq!(s["statuses"]["deleted"], 50);
    // The 50 DELETEs and the read-only lookup that checked the credentials before the plan.
    assert_eq!(sim.stat("lookups"), 1);
    assert_eq!(s["invocation"]["requests_sent"], 51);
    assert_eq!(s["exit_code"], 0);
}

fn throttle_storm(retry_after: &str) {
    let all = creds(40, 100);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&[
            "--rate-limit",
            "40/s",
            "--rate-limit-burst",
            "4",
            "--retry-after",
            retry_after,
        ])
        .input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .args([
            "--yes",
            "--rate",
            "400/s",
            "--burst",
            "4",
            "--max-backoff",
            "300ms",
            "--stop-after",
            "0",
            "--max-attempts",
            "30",
        ])
        .summary()
        .run()
        .exits(0);
    let rows = ran.rows(40);
    assert!(
        rows.values().all(|r| r.status == Status::Deleted),
        "{rows:?}"
    );
    assert!(sc.sim().store().is_empty());
    let throttled = sc.sim().stat("throttled");
    assert!(throttled > 0, "the storm never happened");
    assert_eq!(
        ran.summary()["invocation"]["throttled_429"].as_u64(),
        Some(throttled)
    );
    // Every 429 was followed by a retry: rows that saw one spent more than one attempt.
    let extra: u32 = rows.values().map(|r| r.attempts - 1).sum();
    assert_eq!(u64::from(extra), throttled);
}

#[test]
fn a_429_storm_with_retry_after_in_seconds_is_ridden_out() {
    throttle_storm("seconds");
}

#[test]
fn a_429_storm_with_retry_after_as_http_date_is_ridden_out() {
    throttle_storm("http-date");
}

#[test]
fn a_429_with_retry_after_holds_off_every_worker() {
    let all = creds(12, 150);
    // One 429 with Retry-After: 1 s, on the 3rd DELETE; nothing else may leave during it.
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["429,nth=3,on=delete"])
        .sim_args(&["--record-arrivals"])
        .input(&csv_of(&all));
    sc.run(&[
        "--yes",
        "--rate",
        "200/s",
        "--concurrency",
        "4",
        "--max-backoff",
        "10s",
    ])
    .exits(0);
    let arrivals = sc.sim().arrivals();
    // The check before the plan, 12 DELETEs and the throttled one's retry.
    assert_eq!(arrivals.len(), 14);
    let mut sorted = arrivals.clone();
    sorted.sort();
    // The gaps between the DELETEs only: the check's distance to them is the plan's time.
    let gaps: Vec<u64> = sorted[1..].windows(2).map(|w| w[1] - w[0]).collect();
    let longest = *gaps.iter().max().unwrap();
    assert!(
        longest >= 900_000,
        "no worker held off for the Retry-After second: gaps {gaps:?} µs"
    );
}

#[test]
fn injected_500s_succeed_on_retry() {
    let all = creds(30, 200);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["500,every=3", "503,nth=4"])
        .input(&csv_of(&all));
    let rows = sc.run(FAST).exits(0).rows(30);
    assert!(rows.values().all(|r| r.status == Status::Deleted));
    assert!(rows.values().any(|r| r.attempts > 1));
    assert!(sc.sim().store().is_empty());
    assert_eq!(sc.sim().stat("deletes_of_already_deleted"), 0);
}

#[test]
fn exhausted_retries_end_as_failed_with_the_reason() {
    let all = creds(5, 300);
    // Every DELETE fails (the check before the plan, a lookup, goes through).
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["500,every=1,on=delete"])
        .input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .args(FAST)
        .args(["--max-attempts", "3", "--stop-after", "0"])
        .run()
        .exits(1);
    for r in ran.rows(5).values() {
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.attempts, 3);
        assert_eq!(r.http_status, Some(500));
        assert!(r.error.contains("retries exhausted"), "{}", r.error);
    }
    assert_eq!(sc.sim().store().len(), 5);
}

/// Runs `n` rows against a simulator answering every request with `fault`; each row must
/// end `status` after one attempt with `http` and an error naming `why`. Returns the
/// scenario for further checks.
fn every_row_ends(fault: &str, n: usize, status: Status, http: u16, why: &str) -> Scenario {
    let all = creds(n, 400 + 10 * usize::from(http % 100));
    let sc = Scenario::new()
        .seed(&all)
        .faults(&[fault])
        .input(&csv_of(&all));
    let rows = sc.run(FAST).exits(1).rows(n as u64);
    assert_eq!(rows.len(), n);
    for r in rows.values() {
        assert_eq!(
            (r.status, r.attempts, r.http_status),
            (status, 1, Some(http)),
            "{r:?}"
        );
        assert!(r.error.contains(why), "{}", r.error);
    }
    sc
}

#[test]
fn a_400_fails_the_row_without_retry() {
    let sc = every_row_ends("400,every=1,on=delete", 4, Status::Failed, 400, "400");
    // One DELETE per row, and the check's lookup before the plan.
    assert_eq!(sc.sim().stat("deletes"), 4);
    assert_eq!(sc.sim().stat("requests"), 5);
}

/// A sign-in page or portal answering 200 with HTML has deleted nothing: `failed`, with the
/// hint, never `deleted`.
#[test]
fn an_html_page_answering_200_is_not_a_deletion() {
    let sc = every_row_ends(
        "html200,every=1,on=delete",
        3,
        Status::Failed,
        200,
        "HTML page",
    );
    assert_eq!(sc.sim().store().len(), 3, "nothing was deleted");
}

/// 401, which gateways in front of the API answer for a refused token, ends `unauthorized`
/// like a 403, not `failed` (a ready token cannot be renewed, so one attempt).
#[test]
fn a_401_is_unauthorized() {
    // On the DELETE: a 401 to the check's lookup stops the run before the plan (trust_api).
    let sc = every_row_ends(
        "401,every=1,on=delete",
        2,
        Status::Unauthorized,
        401,
        "answered 401",
    );
    assert_eq!(sc.sim().store().len(), 2, "nothing was deleted");
}

#[test]
fn a_404_that_no_lookup_can_explain_is_not_found() {
    let all = creds(3, 500);
    // The tenant holds none of them, and the key may not read them: their lookups answer
    // 403. Row 1 is one the tenant holds, whose lookup (the check before the plan) answers.
    let held = creds(1, 900);
    let devices: Vec<&str> = all.iter().map(|c| c.device.as_str()).collect();
    let fault = format!("403,every=1,on=lookup,device={}", devices.join("|"));
    let mut rows = held.clone();
    rows.extend(all.iter().cloned());
    let sc = Scenario::new()
        .seed(&held)
        .faults(&[&fault])
        .input(&csv_of(&rows));
    let mut rows = sc.run(FAST).exits(1).rows(4);
    assert_eq!(rows.remove(&1).map(|r| r.status), Some(Status::Deleted));
    for r in rows.values() {
        assert_eq!(r.status, Status::NotFound, "{r:?}");
        assert_eq!((r.http_status, r.lookup_status), (Some(404), Some(403)));
        assert_eq!((r.attempts, r.lookups), (1, 1));
        assert!(r.error.contains("404"), "{}", r.error);
    }
}

#[test]
fn a_timed_out_request_is_retried() {
    let all = creds(3, 600);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["slow,nth=1,on=delete"])
        .sim_args(&["--slow-delay", "3s"])
        .input(&csv_of(&all));
    let rows = sc.run(ONE_AT_A_TIME_1S_TIMEOUT).exits(0).rows(3);
    assert!(
        rows.values().all(|r| r.status == Status::Deleted),
        "{rows:?}"
    );
    assert_eq!(rows[&1].attempts, 2, "{:?}", rows[&1]);
    assert!(sc.sim().store().is_empty());
}

#[test]
fn invalid_rows_and_duplicates_never_reach_the_server() {
    let c = creds(3, 700);
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n\
         {t0},{d0},{u0}\n\
         {t0},{d0},{u0}\n\
         {t1},{d1},not-a-uuid\n\
         1.40100E+11,{d1},{u1}\n\
         =cmd|' /C calc'!A0,{d2},{u2}\n\
         {t2},{d2},{u2}\n\
         {t2},{d2},{u2_upper}\n",
        t0 = c[0].token,
        d0 = c[0].device,
        u0 = c[0].user,
        t1 = c[1].token,
        d1 = c[1].device,
        u1 = c[1].user,
        t2 = c[2].token,
        d2 = c[2].device,
        u2 = c[2].user,
        u2_upper = c[2].user.to_uppercase(),
    );
    let sc = Scenario::new().seed(&c).input(&text);
    let ran = sc.run(FAST).exits(1);
    let rows = ran.rows(7);
    let st: Vec<Status> = (1..=7).map(|i| rows[&i].status).collect();
    use Status::*;
    assert_eq!(
        st,
        [
            Deleted, Duplicate, Invalid, Invalid, Invalid, Deleted, Duplicate
        ]
    );
    assert_eq!(rows[&2].requests(), 0);
    assert!(rows[&2].note.contains("row 1"), "{}", rows[&2].note);
    assert!(rows[&2].error.is_empty());
    assert!(
        rows[&3].error.to_lowercase().contains("userid"),
        "{}",
        rows[&3].error
    );
    // The formula cell is escaped in the file and reads back as written.
    assert_eq!(rows[&5].token, "=cmd|' /C calc'!A0");
    let raw = std::fs::read_to_string(ran.report_path()).unwrap();
    assert!(raw.contains("'=cmd|"), "{raw}");
    // Two DELETEs, and the check's lookup (of row 1's device) before the plan.
    assert_eq!(sc.sim().stat("deletes"), 2);
    assert_eq!(sc.sim().stat("requests"), 3);
    assert_eq!(sc.sim().store(), vec![c[1].clone()]);
}

#[test]
fn a_file_without_a_device_column_exits_2_and_sends_nothing() {
    let sc = Scenario::new()
        .seed(&creds(2, 800))
        .input("tokenSerialNumber,userId\n014010008038,87927fb7-e185-4c33-c7e3-8e077675973c\n");
    let ran = sc.run(FAST).exits(2);
    assert!(ran.stderr.contains("deviceSerialNumber"), "{}", ran.stderr);
    assert_eq!(sc.sim().stat("requests"), 0);
    assert!(!ran.has_report());
}

#[test]
fn an_existing_report_is_never_overwritten() {
    let all = creds(2, 850);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let report = sc.file("in.report.csv", "precious audit trail\n");
    let ran = sc.run(FAST).exits(2);
    assert!(
        ran.stderr.contains("already exists") && ran.stderr.contains("--overwrite"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "precious audit trail\n"
    );
    assert_eq!(sc.sim().stat("requests"), 0);
    // --overwrite is the explicit way.
    sc.run_cmd()
        .args(FAST)
        .arg("--overwrite")
        .run()
        .exits(0)
        .rows(2);
}

#[test]
fn without_yes_and_without_a_terminal_nothing_is_sent() {
    let all = creds(2, 870);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let ran = sc.run_cmd().stdin("2\n").run().exits(2);
    assert!(ran.stderr.contains("--yes"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("to delete"),
        "the plan is shown: {}",
        ran.stderr
    );
    // Only the read-only check before the plan reached the tenant.
    assert_eq!(sc.sim().stat("deletes"), 0);
    assert_eq!(sc.sim().stat("requests"), 1);
    assert_eq!(sc.sim().store().len(), 2);
    assert!(!ran.has_report());
}

#[test]
fn max_deletes_refuses_a_larger_plan() {
    let all = creds(5, 880);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .args(FAST)
        .args(["--max-deletes", "4"])
        .run()
        .exits(2);
    assert!(ran.stderr.contains("--max-deletes"), "{}", ran.stderr);
    // Only the read-only check before the plan reached the tenant.
    assert_eq!(sc.sim().stat("deletes"), 0);
    assert_eq!(sc.sim().stat("requests"), 1);
    sc.run_cmd()
        .args(FAST)
        .args(["--max-deletes", "5"])
        .run()
        .exits(0);
}

#[test]
fn the_safety_stop_skips_the_rest_and_exits_3() {
    let all = creds(40, 1000);
    // Every DELETE fails (the check before the plan, a lookup, goes through).
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["500,every=1,on=delete"])
        .input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .args(FAST)
        .args([
            "--max-attempts",
            "1",
            "--stop-after",
            "5",
            "--concurrency",
            "2",
        ])
        .run()
        .exits(3);
    let rows = ran.rows(40);
    let failed = rows.values().filter(|r| r.status == Status::Failed).count();
    let skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!((5..=8).contains(&failed), "failed {failed}");
    assert_eq!(failed + skipped, 40);
    assert!(sc.sim().stat("deletes") <= 8);
    assert_eq!(sc.sim().stat("lookups"), 1, "only the check");
    let skipped_row = rows.values().find(|r| r.status == Status::Skipped).unwrap();
    assert!(
        skipped_row.error.contains("safety stop"),
        "{}",
        skipped_row.error
    );
}

/// The workers' rows waiting for their first pacer slot are not in flight: after the safety
/// stop they are skipped, not sent (only a row already answered or on the wire counts).
#[test]
fn the_safety_stop_sends_no_row_that_was_only_waiting_for_its_turn() {
    let all = creds(30, 1100);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["400,every=1,on=delete"])
        .input(&csv_of(&all));
    // Eight workers each holding a row; one request every 200 ms, each refused at once.
    let counts = sc
        .run(&[
            "--yes",
            "--rate",
            "5/s",
            "--concurrency",
            "8",
            "--stop-after",
            "3",
        ])
        .exits(3)
        .counts();
    let failed = counts.get("failed").copied().unwrap_or(0);
    // Three refusals trip the stop; a fourth only if its request was already on the wire
    // when the third answer came back (a very slow machine).
    assert!((3..=4).contains(&failed), "{counts:?}");
    assert_eq!(counts.get("skipped").copied().unwrap_or(0), 30 - failed);
    assert_eq!(sc.sim().stat("deletes"), failed as u64);
    assert_eq!(
        sc.sim().stat("requests"),
        failed as u64 + 1,
        "and the check before the plan"
    );
}

#[test]
fn the_bearer_token_never_appears_in_any_output() {
    let all = creds(6, 1100);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["403,nth=2", "500,nth=3"])
        .input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .args(FAST)
        .arg("-vv")
        .summary()
        .env("RUST_LOG", "trace")
        .run()
        .exits(1);
    let report = std::fs::read_to_string(ran.report_path()).unwrap();
    let summary = ran.summary().to_string();
    assert!(
        ran.stderr.len() > 1000,
        "trace logging produced output: {}",
        ran.stderr
    );
    for (name, text) in [
        ("stdout", &ran.stdout),
        ("stderr", &ran.stderr),
        ("report", &report),
        ("summary", &summary),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {name}");
        assert!(
            !text.contains(&TOKEN[5..20]),
            "part of the token leaked into {name}"
        );
    }
}

/// Pacing as the tenant sees it: 150 DELETEs at `--rate 50/s` never arrive faster than that
/// (the simulator records when each came in), and the run ends at the rate it was given.
/// How close to the rate a run gets is the pacer's unit tests' and the benchmarks' business.
#[test]
fn pacing_holds_the_requested_rate() {
    let all = creds(150, 2000);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--record-arrivals"])
        .input(&csv_of(&all));
    let ran = sc
        .run_cmd()
        .args(["--yes", "--rate", "50/s", "--concurrency", "8"])
        .summary()
        .run()
        .exits(0);
    assert!(sc.sim().store().is_empty());
    let mut arrivals = sc.sim().arrivals();
    arrivals.sort();
    assert_eq!(
        arrivals.len(),
        151,
        "the check before the plan and 150 DELETEs"
    );
    // The DELETEs only: the check's distance to them is the plan's time.
    let deletes = &arrivals[1..];
    // 150 evenly spaced requests at 50/s span 149/50 = 2.98 s; a little jitter on the way in.
    let span = deletes[149] - deletes[0];
    assert!(span >= 2_900_000, "too fast: 150 DELETEs within {span} µs");
    // No second holds more than its 50 (and one more from a jittered neighbour).
    let busiest = deletes
        .iter()
        .enumerate()
        .map(|(i, t)| {
            deletes[i..]
                .iter()
                .take_while(|u| **u < t + 1_000_000)
                .count()
        })
        .max()
        .unwrap();
    assert!(busiest <= 51, "{busiest} DELETEs within one second");
    // Nothing throttled the run: it kept the rate it was given.
    assert_eq!(ran.summary()["invocation"]["final_rate_per_second"], 50.0);
}
