//! The reversible step: `disable` and `enable` against the simulator's PATCH endpoints, and one
//! of the tool's reports read back as the input with `--only-status` (undo, delete later,
//! retry what failed).

use std::collections::HashMap;

use crate::harness::*;
use ds100_offboard::report::row::ReportRow;
use ds100_offboard::report::status::Status;

/// The store with every credential's status.
fn store_of(sc: &Scenario) -> Vec<(Cred, String)> {
    sc.sim().store_with_status()
}

/// The credentials `store` lists `Disabled`.
fn disabled(store: &[(Cred, String)]) -> Vec<Cred> {
    store
        .iter()
        .filter(|(_, s)| s == "Disabled")
        .map(|(c, _)| c.clone())
        .collect()
}

/// A report's rows by row number; each row exactly once.
fn by_row(rows: Vec<ReportRow>) -> HashMap<u64, ReportRow> {
    let mut out = HashMap::new();
    for r in rows {
        let row = r.row;
        assert!(out.insert(row, r).is_none(), "row {row} reported twice");
    }
    out
}

fn keys(rows: &HashMap<u64, ReportRow>) -> Vec<u64> {
    let mut k: Vec<u64> = rows.keys().copied().collect();
    k.sort_unstable();
    k
}

/// Disable a file, enable the same file: every credential it disabled is enabled again and
/// the store is exactly as it was, the ones the file does not name untouched throughout.
#[test]
fn disable_then_enable_a_file_leaves_the_store_as_it_was() {
    let all = creds(12, 61_000);
    let leavers = &all[..8];
    let sc = Scenario::new().seed(&all).input(&csv_of(leavers));
    let before = store_of(&sc);
    assert!(before.iter().all(|(_, s)| s == "Enabled"), "{before:?}");

    let ran = sc.cmd("disable").args(FAST).summary().run().exits(0);
    let rows = ran.rows(8);
    assert!(
        rows.values().all(|r| r.status == Status::Disabled),
        "{rows:?}"
    );
    // Every row was looked up first, then sent one PATCH answered 200.
    assert!(
        rows.values()
            .all(|r| (r.http_status, r.attempts, r.lookups) == (Some(200), 1, 1)),
        "{rows:?}"
    );
    assert_eq!(
        ran.report_path().file_name().unwrap(),
        "in.disable-report.csv"
    );
    let s = ran.summary();
    assert_eq!(
        (s["mode"].as_str(), s["command"].as_str()),
        (Some("disable"), Some("disable"))
    );
    assert_eq!(s["statuses"]["disabled"], 8);
    let during = store_of(&sc);
    assert_eq!(disabled(&during), sorted(leavers.to_vec()));
    assert_eq!(sc.sim().stat("store_size"), 12, "disabling deletes nothing");

    let ran = sc.cmd("enable").args(FAST).run().exits(0);
    assert_eq!(
        ran.report_path().file_name().unwrap(),
        "in.enable-report.csv"
    );
    assert!(ran.rows(8).values().all(|r| r.status == Status::Enabled));
    assert_eq!(store_of(&sc), before);
    assert_eq!(
        (sc.sim().stat("disables"), sc.sim().stat("enables")),
        (8, 8),
        "one PATCH per row and command"
    );
    assert_eq!(sc.sim().stat("deletes"), 0);
}

/// The undo reads the disable's report: only rows whose latest status is `disabled` are
/// enabled, with the original row numbers. A credential that was disabled before the job and
/// whose disable failed stays disabled; one the job disabled is enabled again.
#[test]
fn undo_of_a_partly_failed_disable_touches_only_rows_that_were_disabled() {
    let all = creds(10, 62_000);
    // The disables of rows 4 and 7 fail, except the very first one: row 4's credential was
    // disabled by someone else before the job.
    let sc = Scenario::new()
        .seed(&all)
        .faults(&[&format!(
            "500,after=1,on=disable,device={}|{}",
            all[3].device, all[6].device
        )])
        .input(&csv_of(&all[..8]));
    let earlier = sc.file("earlier.csv", &csv_of(&all[3..4]));
    sc.cmd("disable").input(&earlier).args(FAST).run().exits(0);
    assert_eq!(disabled(&store_of(&sc)), [all[3].clone()]);

    let ran = sc
        .cmd("disable")
        .args(["--yes", "--max-attempts", "2", "--max-backoff", "20ms"])
        .run()
        .exits(1);
    let rows = ran.rows(8);
    for (row, r) in &rows {
        let want = if [4, 7].contains(row) {
            Status::Failed
        } else {
            Status::Disabled
        };
        assert_eq!(r.status, want, "row {row}: {r:?}");
    }
    assert_eq!(rows[&4].attempts, 2, "retried, then failed");
    let disable_report = ran.report_path().to_path_buf();
    let patches_before = sc.sim().stat("enables");

    let undo = sc
        .cmd("enable")
        .input(&disable_report)
        .args(["--only-status", "disabled"])
        .args(FAST)
        .summary()
        .run()
        .exits(0);
    assert_eq!(
        undo.report_path().file_name().unwrap(),
        "in.disable-report.enable-report.csv"
    );
    let undone = by_row(undo.report());
    assert_eq!(keys(&undone), [1, 2, 3, 5, 6, 8]);
    for (row, r) in &undone {
        assert_eq!(r.status, Status::Enabled, "row {row}: {r:?}");
        // The row keeps the original input's row and line.
        assert_eq!(r.line, row + 1, "row {row}");
        assert_eq!(r.token, all[*row as usize - 1].token);
    }
    assert_eq!(sc.sim().stat("enables") - patches_before, 6);
    // Row 4 stays disabled as it was before the job; row 7 was never disabled.
    assert_eq!(disabled(&store_of(&sc)), [all[3].clone()]);
    let s = undo.summary();
    assert_eq!(s["rows"], 6);
    assert_eq!(s["statuses"]["enabled"], 6);

    // `report` counts the new statuses and no phantom rows in the gaps (4, 7).
    let out = ds100("report").arg(undo.report_path()).run().exits(0);
    assert!(out.stdout.contains("enabled          6"), "{}", out.stdout);
    assert!(
        out.stdout.contains("mode             enable"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("no line"), "{}", out.stdout);
}

/// Disable now, delete later: `run` reads the disable's report; only the rows it disabled are
/// deleted (a mismatch row of the disable is not), and the store keeps everything else.
#[test]
fn delete_later_from_the_disable_report() {
    let all = creds(8, 63_000);
    let wrong_user = uuid_like(63_999);
    let text = format!(
        "{}{},{},{}\n",
        csv_of(&all[..5]),
        all[5].token,
        all[5].device,
        wrong_user
    );
    let sc = Scenario::new().seed(&all).input(&text);
    let rows = sc.cmd("disable").args(FAST).run().exits(1).rows(6);
    assert_eq!(rows[&6].status, Status::Mismatch, "{:?}", rows[&6]);
    assert_eq!(
        rows[&6].attempts, 0,
        "a mismatch found by the lookup sends no PATCH"
    );
    let disable_report = sc.path("in.disable-report.csv");

    let ran = sc
        .run_cmd()
        .input(&disable_report)
        .args(["--only-status", "disabled"])
        .args(FAST)
        .run()
        .exits(0);
    assert_eq!(
        ran.report_path().file_name().unwrap(),
        "in.disable-report.report.csv"
    );
    let deleted = by_row(ran.report());
    assert_eq!(keys(&deleted), [1, 2, 3, 4, 5]);
    assert!(deleted.values().all(|r| r.status == Status::Deleted));
    assert_eq!(
        sc.sim().store(),
        sorted(all[5..].to_vec()),
        "deleted exactly what was disabled"
    );
    assert!(disabled(&store_of(&sc)).is_empty());
}

/// A PATCH's 404 is never taken at its word: the lookup after it says `absent` (the device
/// holds nothing any more) or `not_found` (it still lists the credential); a gateway's HTML
/// 404 is `failed`.
#[test]
fn a_404_on_disable_is_confirmed_by_a_lookup() {
    let all = creds(4, 64_000);
    let (gone, listed, html) = (&all[1].device, &all[2].device, &all[3].device);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&[
            &format!("404,on=disable,device={gone}|{listed}"),
            // The second lookup of `gone` (the one after the 404) finds nothing.
            &format!("404,nth=2,on=lookup,device={gone}"),
            &format!("html404,on=disable,device={html}"),
        ])
        .input(&csv_of(&all));
    let rows = sc.cmd("disable").args(FAST).run().exits(1).rows(4);
    assert_eq!(rows[&1].status, Status::Disabled);
    let r = &rows[&2];
    assert_eq!(r.status, Status::Absent, "{r:?}");
    // The lookup first, the one after the 404, and one of the zero-padded serial (a device
    // that lost its leading zeros is never `absent`).
    assert_eq!((r.http_status, r.attempts, r.lookups), (Some(404), 1, 3));
    assert!(
        r.note.starts_with("PATCH disable/otp answered 404"),
        "{r:?}"
    );
    let r = &rows[&3];
    assert_eq!(r.status, Status::NotFound, "{r:?}");
    assert!(r.error.contains("still lists"), "{r:?}");
    let r = &rows[&4];
    assert_eq!(r.status, Status::Failed, "{r:?}");
    assert!(r.error.contains("HTML"), "{r:?}");
    assert_eq!(disabled(&store_of(&sc)), [all[0].clone()]);
}

/// The tenant answers a disable naming another token (or another user) than the row's: the
/// row is `mismatch`, the run stops at once (exit 3, its own reason), the rest is `skipped`.
#[test]
fn a_disable_answer_naming_another_credential_is_a_mismatch_and_stops_the_run() {
    for fault in ["other-token", "other-user"] {
        let all = creds(6, 65_000);
        let sc = Scenario::new()
            .seed(&all)
            .faults(&[&format!("{fault},nth=2,on=disable")])
            .input(&csv_of(&all));
        let ran = sc
            .cmd("disable")
            .args(FAST)
            .args(["--concurrency", "1"])
            .summary()
            .run()
            .exits(3);
        let rows = ran.rows(6);
        assert_eq!(rows[&1].status, Status::Disabled, "{fault}");
        let r = &rows[&2];
        assert_eq!(r.status, Status::Mismatch, "{fault}: {r:?}");
        assert_eq!(r.http_status, Some(200), "{fault}");
        assert!(r.error.contains("does not name"), "{fault}: {}", r.error);
        for row in 3..=6 {
            assert_eq!(rows[&row].status, Status::Skipped, "{fault}: row {row}");
            assert_eq!(rows[&row].requests(), 0, "{fault}: row {row}");
        }
        let s = ran.summary();
        let stopped = s["stopped"].as_str().unwrap_or_default();
        assert!(
            stopped.contains("another credential") && stopped.contains("row 2"),
            "{fault}: {stopped}"
        );
        assert!(ran.stdout.contains("exit 3"), "{}", ran.stdout);
        assert_eq!(disabled(&store_of(&sc)), [all[0].clone()], "{fault}");
        // The mismatch is final: a resume does not PATCH that row again.
        let patches = sc.sim().stat("disables");
        let ran = sc.cmd("disable").args(FAST).arg("--resume").run().exits(1);
        let rows = latest_by_row(ran.report_path(), 6);
        assert_eq!(sc.sim().stat("disables") - patches, 4, "{fault}");
        assert_eq!(rows[&2].status, Status::Mismatch);
        assert!(
            rows.values()
                .filter(|r| r.row != 2)
                .all(|r| r.status == Status::Disabled)
        );
    }
}

/// Ctrl-C stops a disable (exit 130, the rest `skipped`); `--resume` finishes it, every
/// credential disabled by exactly one PATCH. A resume in another mode is refused.
#[test]
fn ctrl_c_then_resume_a_disable() {
    let all = creds(60, 66_000);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "20ms"])
        .input(&csv_of(&all));
    let report = sc.path("in.disable-report.csv");
    let child = sc
        .cmd("disable")
        .args(["--yes", "-q", "--rate", "100/s", "--concurrency", "2"])
        .spawn();
    wait_until("some rows", || report_lines(&report) >= 6);
    child.signal(libc::SIGINT);
    child.wait().exits(130);
    let rows = latest_by_row(&report, 60);
    let skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!(skipped > 20, "skipped {skipped}");
    assert!(
        rows.values()
            .all(|r| matches!(r.status, Status::Disabled | Status::Skipped))
    );

    // Another mode is another job: refused, nothing sent.
    let requests = sc.sim().stat("requests");
    for other in [
        sc.cmd("enable").arg("--report").arg(&report),
        sc.cmd("disable")
            .arg("--dry-run")
            .arg("--report")
            .arg(&report),
        sc.run_cmd().arg("--report").arg(&report),
    ] {
        let ran = other.args(["--yes", "--resume"]).run().exits(2);
        assert!(ran.stderr.contains("another mode"), "{}", ran.stderr);
    }
    assert_eq!(sc.sim().stat("requests"), requests);

    sc.cmd("disable").args(FAST).arg("--resume").run().exits(0);
    let rows = latest_by_row(&report, 60);
    assert!(rows.values().all(|r| r.status == Status::Disabled));
    assert_eq!(disabled(&store_of(&sc)), sorted(all.clone()));
    assert_eq!(sc.sim().stat("disables"), 60, "one PATCH per credential");
    // Finished: a further resume sends nothing.
    let requests = sc.sim().stat("requests");
    sc.cmd("disable").args(FAST).arg("--resume").run().exits(0);
    assert_eq!(sc.sim().stat("requests"), requests);
}

/// `--only-status` needs one of the tool's reports: on any other file, and with a status name
/// that does not exist, the command stops before anything is sent (exit 2) and says why.
#[test]
fn only_status_on_a_file_that_is_not_a_report_is_refused() {
    let all = creds(3, 67_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    for sub in ["disable", "enable", "run"] {
        let ran = sc
            .cmd(sub)
            .args(["--only-status", "disabled"])
            .args(FAST)
            .run()
            .exits(2);
        assert!(
            ran.stderr.contains("--only-status")
                && ran.stderr.contains("is not one")
                && ran.stderr.contains("Nothing was sent"),
            "{sub}: {}",
            ran.stderr
        );
        assert!(!ran.has_report(), "{sub}");
    }
    let ran = sc.validate(&["--only-status", "failed"]).exits(2);
    assert!(ran.stderr.contains("is not one"), "{}", ran.stderr);
    let ran = sc
        .cmd("disable")
        .args(["--only-status", "disabled,gone"])
        .args(FAST)
        .run()
        .exits(2);
    assert!(
        ran.stderr.contains("'gone'") && ran.stderr.contains("would_disable, would_enable"),
        "{}",
        ran.stderr
    );
    assert_eq!(sc.sim().stat("requests"), 0);
}

/// The dry run looks each row up and notes the credential's current tokenStatus; it sends no
/// PATCH. A second disable of a disabled credential is ok, noted "was already disabled".
#[test]
fn dry_run_shows_the_token_status_and_a_repeat_disable_says_already() {
    let all = creds(4, 68_000);
    let text = format!(
        "{}099999999999,140000000,{}\n",
        csv_of(&all[..3]),
        uuid_like(1)
    );
    let sc = Scenario::new().seed(&all).input(&text);
    let first = sc.file("first.csv", &csv_of(&all[..1]));
    sc.cmd("disable").input(&first).args(FAST).run().exits(0);

    for (sub, would) in [
        ("disable", Status::WouldDisable),
        ("enable", Status::WouldEnable),
    ] {
        let ran = sc.cmd(sub).arg("--dry-run").args(FAST).run().exits(0);
        assert_eq!(
            ran.report_path().file_name().unwrap().to_string_lossy(),
            format!("in.{sub}-dry-run.csv")
        );
        let rows = ran.rows(4);
        for row in 1..=3 {
            assert_eq!(rows[&row].status, would, "{sub} row {row}");
            assert_eq!(rows[&row].attempts, 0);
        }
        assert_eq!(rows[&4].status, Status::Absent);
        let (first, second) = match would {
            Status::WouldDisable => (
                "tokenStatus Disabled: already disabled, a real run changes nothing",
                "tokenStatus Enabled",
            ),
            _ => (
                "tokenStatus Disabled",
                "tokenStatus Enabled: already enabled, a real run changes nothing",
            ),
        };
        assert_eq!(rows[&1].note, first, "{sub}");
        assert_eq!(rows[&2].note, second, "{sub}");
    }
    assert_eq!(sc.sim().stat("disables"), 1);
    assert_eq!(sc.sim().stat("enables"), 0);

    let rows = sc.cmd("disable").args(FAST).run().exits(0).rows(4);
    assert_eq!(rows[&1].status, Status::Disabled);
    assert_eq!(rows[&1].note, "was already disabled");
    assert_eq!(rows[&2].status, Status::Disabled);
    assert!(rows[&2].note.is_empty(), "{:?}", rows[&2]);
    assert_eq!(rows[&4].status, Status::Absent);
}

/// Retry what failed: `run REPORT --only-status failed,skipped` sends exactly those rows
/// again, under their original row numbers; a resumed report's latest line per row counts.
#[test]
fn retry_what_failed_from_the_report() {
    let all = creds(6, 69_000);
    let sc = Scenario::new()
        .seed(&all)
        // The first DELETE of each of the two devices fails; the retry finds the fault gone.
        .faults(&[&format!(
            "503,first=2,on=delete,device={}|{}",
            all[1].device, all[4].device
        )])
        .input(&csv_of(&all));
    let ran = sc
        .run(&["--yes", "--max-attempts", "1", "--rate", "2000/s"])
        .exits(1);
    let rows = ran.rows(6);
    assert_eq!(rows[&2].status, Status::Failed);
    assert_eq!(rows[&5].status, Status::Failed);
    let left = sc.sim().store();
    assert_eq!(left, sorted(vec![all[1].clone(), all[4].clone()]));
    // The same tenant: a report read as input must have been made against it.
    let report = sc.path("in.report.csv");
    let ran = sc
        .run_cmd()
        .input(&report)
        .args(["--only-status", "failed,skipped"])
        .args(FAST)
        .run()
        .exits(0);
    assert_eq!(
        ran.report_path(),
        sc.path("in.report.report.csv"),
        "next to the input report"
    );
    let retried = by_row(ran.report());
    assert_eq!(keys(&retried), [2, 5]);
    assert!(retried.values().all(|r| r.status == Status::Deleted));
    assert!(sc.sim().store().is_empty());
}

/// A report read as input: its rows keep their numbers through an interrupted and resumed
/// enable; a duplicate row of the original input is a duplicate again (of the lower row,
/// though the report lists it first); the input report cannot be written while it is read;
/// a resume with another `--only-status` is refused.
#[test]
fn a_report_as_input_resumes_dedups_and_is_locked() {
    let all = creds(40, 70_000);
    // Row 2 repeats row 1.
    let mut with_repeat = all.clone();
    with_repeat.insert(1, all[0].clone());
    let text = csv_of(&with_repeat);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "40ms"])
        .input(&text);
    let rows = sc.cmd("disable").args(FAST).run().exits(0).rows(41);
    assert_eq!(rows[&2].status, Status::Duplicate);
    let disable_report = sc.path("in.disable-report.csv");
    let lines = std::fs::read_to_string(&disable_report).unwrap();
    assert!(
        lines.lines().nth(1).unwrap().starts_with("2,"),
        "the duplicate is written first (it sends nothing): {lines}"
    );

    // validate reads the report too, row numbers kept.
    sc.validate_cmd().input(&disable_report).run().exits(0);
    let checked = by_row(read_report(&sc.path("in.disable-report.validation.csv")));
    assert_eq!(checked.len(), 41);
    assert_eq!(checked[&2].status, Status::Duplicate);
    assert!(
        checked[&2].note.contains("repeats row 1"),
        "{:?}",
        checked[&2]
    );
    assert_eq!(checked[&1].status, Status::Valid);

    let undo_report = sc.path("in.disable-report.enable-report.csv");
    let child = sc
        .cmd("enable")
        .input(&disable_report)
        .args(["--yes", "-q", "--rate", "100/s", "--concurrency", "1"])
        .spawn();
    wait_until("some rows", || report_lines(&undo_report) >= 4);
    // The input report is being read: its own job cannot write to it meanwhile.
    let ran = sc.cmd("disable").args(FAST).arg("--resume").run().exits(2);
    assert!(
        ran.stderr.contains("being written by another run"),
        "{}",
        ran.stderr
    );
    child.signal(libc::SIGINT);
    child.wait().exits(130);
    let partial = latest_by_row(&undo_report, 41);
    assert!(partial.values().any(|r| r.status == Status::Skipped));

    // Another selection of the report's rows is another job.
    let requests = sc.sim().stat("requests");
    let ran = sc
        .cmd("enable")
        .input(&disable_report)
        .args(["--only-status", "disabled"])
        .args(FAST)
        .arg("--resume")
        .run()
        .exits(2);
    assert!(
        ran.stderr.contains("--only-status disabled"),
        "{}",
        ran.stderr
    );
    assert_eq!(sc.sim().stat("requests"), requests);

    sc.cmd("enable")
        .input(&disable_report)
        .args(FAST)
        .arg("--resume")
        .run()
        .exits(0);
    let latest = latest_by_row(&undo_report, 41);
    assert!(
        latest
            .values()
            .filter(|r| r.row != 2)
            .all(|r| r.status == Status::Enabled)
    );
    assert_eq!(latest[&2].status, Status::Duplicate);
    assert!(
        latest[&2].note.contains("repeats row 1"),
        "{:?}",
        latest[&2]
    );
    assert!(disabled(&store_of(&sc)).is_empty());
    assert_eq!(sc.sim().stat("enables"), 40, "each credential enabled once");
}

/// The PATCH names only the device and the user. When the user holds another credential on
/// the device, the tenant would change both: the row is `ambiguous` and nothing is sent.
#[test]
fn a_patch_that_would_change_another_credential_of_the_user_is_not_sent() {
    let mut all = creds(2, 71_000);
    let sibling = cred("014010071999", &all[0].device, &all[0].user);
    all.push(sibling.clone());
    let sc = Scenario::new().seed(&all).input(&csv_of(&all[..2]));
    for dry_run in [true, false] {
        let mut cmd = sc.cmd("disable").args(FAST);
        if dry_run {
            cmd = cmd.arg("--dry-run");
        }
        let rows = cmd.run().exits(1).rows(2);
        let r = &rows[&1];
        assert_eq!(r.status, Status::Ambiguous, "{r:?}");
        assert!(r.error.contains(&sibling.token), "{}", r.error);
        assert_eq!(r.attempts, 0);
    }
    assert_eq!(disabled(&store_of(&sc)), [all[1].clone()]);
    assert_eq!(sc.sim().stat("disables"), 1);
}

/// A report that has no line for some rows of its job (its run was killed before it wrote
/// them) is refused as input: any selection would leave those rows out, never to be sent.
#[test]
fn a_report_missing_rows_of_its_job_is_refused_as_input() {
    let all = creds(4, 72_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    sc.cmd("disable").args(FAST).run().exits(0);
    let report = sc.path("in.disable-report.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    let cut: String = text
        .lines()
        .filter(|l| !l.starts_with("3,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&report, cut).unwrap();
    let requests = sc.sim().stat("requests");
    let ran = sc
        .run_cmd()
        .input(&report)
        .args(["--only-status", "disabled"])
        .args(FAST)
        .run()
        .exits(2);
    assert!(
        ran.stderr.contains("accounts for 3 of the 4 rows") && ran.stderr.contains("--resume"),
        "{}",
        ran.stderr
    );
    assert_eq!(sc.sim().stat("requests"), requests);
}
