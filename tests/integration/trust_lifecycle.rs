//! One run per report, always stoppable: the report's sidecar (tenant, mode, identity) and
//! what `--resume` makes of it, the report lock, Ctrl-C with closed output pipes and under the
//! progress bar, and where `--summary-json` may write. Real binary, real simulator.

use std::path::{Path, PathBuf};

use crate::harness::*;
use ds100_offboard::report::status::Status;

/// The sidecar next to a report: `leavers.report.csv` → `leavers.report.meta.json`.
fn sidecar_of(report: &Path) -> PathBuf {
    report.with_extension("meta.json")
}

fn lock_of(report: &Path) -> PathBuf {
    let mut name = report.file_name().unwrap().to_os_string();
    name.push(".lock");
    report.with_file_name(name)
}

// ---------------------------------------------------------------------------------------
// The sidecar: tenant, mode, identity
// ---------------------------------------------------------------------------------------

#[test]
fn the_sidecar_records_tenant_mode_and_identity_never_a_secret() {
    let all = creds(4, 60_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let sim = sc.sim();
    let report = sc.run(FAST).exits(0).report_path().to_path_buf();

    let meta_path = sidecar_of(&report);
    let text = std::fs::read_to_string(&meta_path).expect("the sidecar next to the report");
    assert!(!text.contains(TOKEN), "the token itself: {text}");
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(meta["schema"], 1, "{meta}");
    assert_eq!(meta["mode"], "delete", "{meta}");
    let tenant = meta["tenant"].as_str().unwrap();
    assert!(tenant.starts_with(&sim.url), "{tenant} vs {}", sim.url);
    let identity = meta["identity"].as_str().unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, TOKEN.as_bytes());
    let hex: String = digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(identity, format!("token sha256:{hex}"), "{meta}");
    assert_eq!(meta["tool_version"], env!("CARGO_PKG_VERSION"));
    assert!(
        meta["input"].as_str().unwrap().ends_with("in.csv"),
        "{meta}"
    );
    let started = meta["started_at"].as_str().unwrap();
    assert!(started.ends_with('Z'), "{started}");
    humantime::parse_rfc3339(started).unwrap_or_else(|e| panic!("{started}: {e}"));

    // A dry run records its mode; --overwrite replaces the sidecar along with the report.
    let shared = sc.path("shared.csv");
    sc.run_cmd()
        .args(FAST)
        .arg("--dry-run")
        .arg("--report")
        .arg(&shared)
        .run()
        .exits(0);
    assert_eq!(read_json(&sidecar_of(&shared))["mode"], "dry-run");
    // --verify is still a delete run.
    let sim2 = sc.another_sim(&[]);
    sc.run_cmd()
        .base_url(&sim2.url)
        .args(FAST)
        .args(["--verify", "--overwrite", "--report"])
        .arg(&shared)
        .run()
        .exits(0);
    let meta = read_json(&sidecar_of(&shared));
    assert_eq!(meta["mode"], "delete", "{meta}");
    assert!(
        meta["tenant"].as_str().unwrap().starts_with(&sim2.url),
        "{meta}"
    );
}

#[test]
fn a_key_file_run_records_its_access_id() {
    let all = creds(2, 60_100);
    let key = fixture("test-only-key-pkcs8.json");
    let sc = Scenario::new()
        .seed(&all)
        .sim_key(&key)
        .input(&csv_of(&all));
    sc.run_cmd().key_file(&key).args(FAST).run().exits(0);
    let text = std::fs::read_to_string(sc.path("in.report.meta.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(meta["identity"], "accessID test-only-access-id-3f9c");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[test]
fn resume_refuses_a_report_made_against_another_tenant() {
    let all = creds(6, 60_200);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let rehearsal = sc.sim();
    let production = sc.another_sim(&[]);
    // The rehearsal: every row deleted on the simulator.
    sc.run(FAST).exits(0);

    // The same report, resumed against production: nothing there was deleted.
    let err = sc
        .run_cmd()
        .base_url(&production.url)
        .args(FAST)
        .arg("--resume")
        .run()
        .exits(2)
        .stderr;
    assert!(err.contains("tenant"), "{err}");
    assert!(
        err.contains(&rehearsal.url) && err.contains(&production.url),
        "names both tenants: {err}"
    );
    assert_eq!(production.stat("requests"), 0, "nothing was sent");
    assert_eq!(production.store().len(), 6);
}

#[test]
fn resume_refuses_a_report_of_another_mode() {
    let all = creds(5, 60_300);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let sim = sc.sim();
    let report = sc.path("audit.csv");
    sc.run_cmd()
        .args(FAST)
        .arg("--dry-run")
        .arg("--report")
        .arg(&report)
        .run()
        .exits(0);
    let requests = sim.stat("requests");

    // A delete run resuming into the dry run's report.
    let err = sc
        .run_cmd()
        .args(FAST)
        .arg("--resume")
        .arg("--report")
        .arg(&report)
        .run()
        .exits(2)
        .stderr;
    assert!(
        err.contains("mode") && err.contains("dry-run") && err.contains("delete"),
        "{err}"
    );
    assert_eq!(sim.stat("requests"), requests, "nothing was sent");
    assert_eq!(sim.store().len(), 5);

    // And the other way round: a dry run resuming into a delete run's report.
    sc.run(FAST).exits(0);
    let requests = sim.stat("requests");
    sc.run_cmd()
        .args(FAST)
        .args(["--dry-run", "--resume", "--report"])
        .arg(sc.path("in.report.csv"))
        .run()
        .exits(2);
    assert_eq!(sim.stat("requests"), requests);
}

#[test]
fn resume_with_another_identity_warns_and_goes_on() {
    let all = creds(6, 60_400);
    let sc = Scenario::new()
        .seed(&all)
        .sim_auth(&[])
        .faults(&["500,nth=2"])
        .input(&csv_of(&all));
    let report = sc
        .run_cmd()
        .args(["--max-attempts", "1", "--concurrency", "1"])
        .args(FAST)
        .token("alice-token-1111")
        .run()
        .exits(1)
        .report_path()
        .to_path_buf();
    let recorded = read_json(&sidecar_of(&report))["identity"]
        .as_str()
        .unwrap()
        .to_string();

    let err = sc
        .run_cmd()
        .arg("--resume")
        .args(FAST)
        .token("bob-token-2222")
        .run()
        .exits(0)
        .stderr;
    assert!(
        err.contains("identity") && err.contains(&recorded),
        "warns naming the recorded identity: {err}"
    );
    assert!(
        !err.contains("alice-token-1111") && !err.contains("bob-token-2222"),
        "{err}"
    );
    assert!(sc.sim().store().is_empty());
    // The sidecar still describes the job as it started.
    assert_eq!(read_json(&sidecar_of(&report))["identity"], recorded);
}

#[test]
fn resume_refuses_a_report_without_a_readable_sidecar() {
    let all = creds(4, 60_500);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["500,nth=2"])
        .input(&csv_of(&all));
    let sim = sc.sim();
    let report = sc
        .run_cmd()
        .args(FAST)
        .args(["--max-attempts", "1", "--concurrency", "1"])
        .run()
        .exits(1)
        .report_path()
        .to_path_buf();
    let requests = sim.stat("requests");
    let meta = sidecar_of(&report);
    let good = std::fs::read(&meta).expect("sidecar");

    let refused = |what: &str| {
        let ran = sc.run_cmd().args(FAST).arg("--resume").run();
        let err = &ran.stderr;
        assert_eq!(ran.code, 2, "{what}: {err}");
        assert!(
            err.contains(&meta.file_name().unwrap().to_string_lossy().to_string()),
            "{what}: names the sidecar: {err}"
        );
        assert!(
            err.contains("--report") || err.contains("--overwrite"),
            "{what}: says how to proceed: {err}"
        );
        assert_eq!(sim.stat("requests"), requests, "{what}: nothing was sent");
    };
    std::fs::remove_file(&meta).unwrap();
    refused("missing");
    std::fs::write(&meta, "{ not json").unwrap();
    refused("garbage");
    let mut future: serde_json::Value = serde_json::from_slice(&good).unwrap();
    future["schema"] = serde_json::json!(99);
    std::fs::write(&meta, future.to_string()).unwrap();
    refused("a newer schema");

    // With the sidecar back, the resume goes on.
    std::fs::write(&meta, &good).unwrap();
    sc.run_cmd().args(FAST).arg("--resume").run().exits(0);
}

// ---------------------------------------------------------------------------------------
// Ctrl-C with closed output pipes
// ---------------------------------------------------------------------------------------

#[test]
fn ctrl_c_stops_a_run_whose_output_pipes_are_closed() {
    let all = creds(60, 60_600);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "400ms"])
        .input(&csv_of(&all));
    let sim = sc.sim();
    // Not quiet: the notice is printed, as in `run … 2>&1 | tee run.log`.
    let mut child = sc
        .run_cmd()
        .args([
            "--yes",
            "--concurrency",
            "2",
            "--rate",
            "100/s",
            "--timeout",
            "20s",
        ])
        .spawn();
    wait_until("deletes in flight", || sim.stat("deletes") >= 4);
    // The reader goes away (the same Ctrl-C killed `tee`).
    child.close_output();
    let deletes_before = sim.stat("deletes");
    child.signal(libc::SIGINT);
    let ran = child.wait().exits(130);
    let after = sim.stat("deletes") - deletes_before;
    assert!(
        after <= 2,
        "{after} DELETEs reached the tenant after the signal (2 may have been on their way)"
    );
    let rows = ran.rows(60);
    assert!(
        rows.values()
            .all(|r| matches!(r.status, Status::Deleted | Status::Skipped)),
        "{rows:?}"
    );
    let skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!(skipped > 30, "skipped {skipped}");
    assert!(
        !lock_of(ran.report_path()).exists(),
        "the lock file is removed"
    );
}

#[test]
fn a_log_line_to_a_closed_stderr_does_not_stop_the_run() {
    let all = creds(30, 60_650);
    // The 429 comes after the pipes are closed: the rate cut it causes is logged (info).
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "200ms"])
        .faults(&["429,nth=14"])
        .input(&csv_of(&all));
    let sim = sc.sim();
    let mut child = sc
        .run_cmd()
        .args(["--yes", "--concurrency", "2", "--rate", "100/s"])
        .args(["--max-backoff", "50ms"])
        .spawn();
    wait_until("deletes in flight", || sim.stat("deletes") >= 4);
    child.close_output();
    let ran = child.wait();
    assert_eq!(
        sim.stats()["by_status"]["429"].as_u64(),
        Some(1),
        "{}",
        sim.stats()
    );
    let rows = ran.exits(0).rows(30);
    assert!(
        rows.values().all(|r| r.status == Status::Deleted),
        "{rows:?}"
    );
    assert!(sim.store().is_empty());
}

// ---------------------------------------------------------------------------------------
// One run per report
// ---------------------------------------------------------------------------------------

#[test]
fn a_second_run_on_the_same_report_is_refused_naming_the_holder() {
    let all = creds(40, 60_700);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "300ms"])
        .input(&csv_of(&all));
    let sim = sc.sim();
    let report = sc.path("in.report.csv");
    let first = sc
        .run_cmd()
        .args(["--yes", "-q", "--concurrency", "2", "--rate", "100/s"])
        .spawn();
    wait_until("the first rows", || report_lines(&report) >= 2);
    let pid = first.id().to_string();

    let refused = |what: &str, cmd: Cmd| {
        let ran = cmd.run();
        let err = &ran.stderr;
        assert_eq!(ran.code, 2, "{what}: {err}");
        assert!(
            err.contains(&pid),
            "{what}: names the holder's pid {pid}: {err}"
        );
    };
    refused(
        "--resume in a second terminal",
        sc.run_cmd().args(FAST).arg("--resume"),
    );
    refused(
        "a fresh run with --overwrite",
        sc.run_cmd().args(FAST).arg("--overwrite"),
    );
    refused(
        "a dry run on the same report",
        sc.run_cmd()
            .args(FAST)
            .args(["--dry-run", "--overwrite", "--report"])
            .arg(&report),
    );
    refused(
        "validate on the same report",
        sc.validate_cmd()
            .args(["--overwrite", "--report"])
            .arg(&report),
    );

    first.signal(libc::SIGINT);
    first.wait().exits(130);
    // The first run's audit trail is whole: nobody truncated or appended to it.
    let rows = report_by_row(&report, 40);
    let deleted = rows
        .values()
        .filter(|r| r.status == Status::Deleted)
        .count() as u64;
    assert_eq!(
        sim.stat("deleted"),
        deleted,
        "every deletion is in the report"
    );
    assert!(
        !lock_of(&report).exists(),
        "the lock file is removed at the end"
    );

    // Once the first run has ended, the resume is welcome.
    sc.run_cmd().args(FAST).arg("--resume").run().exits(0);
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("deletes_of_already_deleted"), 0);
}

#[test]
fn a_lock_left_by_kill_9_does_not_block_the_resume() {
    let all = creds(30, 60_800);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "100ms"])
        .input(&csv_of(&all));
    let report = sc.path("in.report.csv");
    let child = sc
        .run_cmd()
        .args(["--yes", "-q", "--concurrency", "2", "--rate", "100/s"])
        .spawn();
    wait_until("some rows", || report_lines(&report) >= 3);
    let lock = lock_of(&report);
    let holder = std::fs::read_to_string(&lock).expect("a lock file while the run writes");
    assert!(holder.contains(&child.id().to_string()), "{holder}");
    child.kill9("a run holding the lock");
    assert!(lock.exists(), "kill -9 leaves the file behind");

    sc.run_cmd().args(FAST).arg("--resume").run().exits(0);
    assert!(sc.sim().store().is_empty());
    assert!(!lock.exists());
}

// ---------------------------------------------------------------------------------------
// --summary-json
// ---------------------------------------------------------------------------------------

#[test]
fn summary_json_never_lands_on_the_input_the_report_or_an_existing_file() {
    let all = creds(3, 60_900);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let sim = sc.sim();
    let input = sc.input_path();
    let original = std::fs::read(input).unwrap();
    let d = sc.dir();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(input, d.join("link.json")).unwrap();
    std::fs::hard_link(input, d.join("hard.json")).unwrap();
    let victim = write(d, "victim.txt", "keep me\n");
    std::os::unix::fs::symlink(&victim, d.join("dangerous.json")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere.txt"), d.join("dangling.json")).unwrap();
    let existing = write(d, "old.json", "{\"old\":true}\n");

    let refused = |what: &str, summary: &Path, extra: &[&str]| {
        let ran = sc
            .run_cmd()
            .args(FAST)
            .args(extra)
            .arg("--summary-json")
            .arg(summary)
            .run();
        let err = &ran.stderr;
        assert_eq!(ran.code, 2, "{what}: {err}");
        assert!(err.contains("--summary-json"), "{what}: {err}");
        assert_eq!(sim.stat("requests"), 0, "{what}: nothing was sent");
        assert_eq!(
            std::fs::read(input).unwrap(),
            original,
            "{what}: input intact"
        );
    };
    refused("the input", input, &[]);
    refused(
        "the input, spelled another way",
        &d.join("sub/../in.csv"),
        &["--overwrite"],
    );
    refused(
        "the input, ./ spelling",
        &d.join("./in.csv"),
        &["--overwrite"],
    );
    refused(
        "a symlink to the input",
        &d.join("link.json"),
        &["--overwrite"],
    );
    refused(
        "a hard link of the input",
        &d.join("hard.json"),
        &["--overwrite"],
    );
    refused("the report", &d.join("in.report.csv"), &[]);
    refused("the report's sidecar", &d.join("in.report.meta.json"), &[]);
    refused("the report's lock file", &d.join("in.report.csv.lock"), &[]);
    refused("an existing file", &existing, &[]);
    refused(
        "a symlink elsewhere",
        &d.join("dangerous.json"),
        &["--overwrite"],
    );
    refused("a dangling symlink", &d.join("dangling.json"), &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert!(!d.join("nowhere.txt").exists());
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "{\"old\":true}\n"
    );
    // validate takes the same flag and the same care.
    sc.validate_cmd()
        .arg("--summary-json")
        .arg(input)
        .run()
        .exits(2);
    assert_eq!(std::fs::read(input).unwrap(), original);

    // --overwrite replaces a summary file.
    let ran = sc
        .run_cmd()
        .args(FAST)
        .args(["--dry-run", "--summary-json"])
        .arg(&existing)
        .arg("--overwrite")
        .run()
        .exits(0);
    assert_eq!(ran.summary()["command"], "run --dry-run");

    // `-` is stdout: nothing but the JSON there, no file named `-`, the human summary on stderr.
    let ran = sc
        .run_cmd()
        .current_dir(d)
        .args(FAST)
        .args(["--summary-json", "-"])
        .run()
        .exits(0);
    let json: serde_json::Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", ran.stdout));
    assert_eq!(json["statuses"]["deleted"], 3);
    assert!(!d.join("-").exists(), "no file named -");
    assert!(ran.stderr.contains("Summary (run)"), "{}", ran.stderr);
}

// ---------------------------------------------------------------------------------------
// The Ctrl-C notice under the progress bar
// ---------------------------------------------------------------------------------------

#[test]
fn the_first_ctrl_c_notice_is_whole_on_screen_under_the_progress_bar() {
    let all = creds(40, 61_000);
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "1500ms"])
        .input(&csv_of(&all));
    let width = 80;
    let Pty {
        controller,
        terminal,
    } = Pty::open(width, 40);
    let child = sc
        .run_cmd()
        .args(["--yes", "--concurrency", "2"])
        .args(["--rate", "100/s", "--timeout", "20s"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdio(
            None,
            Some(terminal.try_clone().unwrap().into()),
            Some(terminal.into()),
        )
        .spawn();
    // The run holds the only copies of the terminal's side: its end is the controller's.
    let seen = Collector::start(controller);
    let screen_of = |bytes: &str| {
        let mut screen = Screen::new(usize::from(width));
        screen.feed(bytes);
        screen
    };
    // The bar itself ("0/40 rows"), not the plan printed above it.
    wait_until("the progress bar", || {
        sc.sim().stat("deletes") >= 2 && screen_of(&seen.text()).text().contains("/40 rows")
    });
    child.signal(libc::SIGINT);
    child.wait().exits(130);

    let screen = screen_of(&seen.finish());
    if std::env::var_os("SHOW_SCREEN").is_some() {
        eprintln!("{}", screen.text());
    }
    let on_screen = screen.condensed();
    for part in [
        "Interrupted: no new rows start",
        "requests in flight finish (at most --timeout).",
        "Press Ctrl-C again to exit at once.",
    ] {
        assert!(
            on_screen.contains(&condense(part)),
            "{part:?} is not on screen:\n{}",
            screen.text()
        );
    }
}

// ---------------------------------------------------------------------------------------
// An interrupted dry run
// ---------------------------------------------------------------------------------------

#[test]
fn an_interrupted_dry_run_counts_only_the_rows_it_checked() {
    let on_tenant = creds(3, 61_100);
    let wanted = creds(40, 61_200); // none of them on the tenant: every checked row is absent
    let sc = Scenario::new()
        .seed(&on_tenant)
        .sim_args(&["--latency", "400ms"])
        .input(&csv_of(&wanted));
    let report = sc.path("in.dry-run.csv");
    let child = sc
        .run_cmd()
        .args([
            "--yes",
            "--dry-run",
            "--concurrency",
            "2",
            "--rate",
            "100/s",
        ])
        .spawn();
    wait_until("a few rows checked", || report_lines(&report) >= 2);
    child.signal(libc::SIGINT);
    let ran = child.wait().exits(130);
    let rows = ran.rows(40);
    let n_absent = rows.values().filter(|r| r.status == Status::Absent).count();
    let n_skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!(n_absent >= 2 && n_skipped > 0, "{n_absent} {n_skipped}");
    let stdout = &ran.stdout;
    assert!(
        !stdout.contains("(all absent)"),
        "the note speaks of rows never checked:\n{stdout}"
    );
    let note = stdout
        .lines()
        .find(|l| l.contains("matched a credential"))
        .unwrap_or_else(|| panic!("the note is still given for the rows checked:\n{stdout}"));
    assert!(
        note.contains(&format!("{n_absent} row")),
        "counts the {n_absent} rows checked: {note}"
    );
}

/// `--overwrite` replaces a report, never the file a planted symlink at the report's path
/// points at.
#[test]
fn overwrite_never_follows_a_symlink_at_the_report_path() {
    let all = creds(2, 61_900);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let victim = sc.file("victim.txt", "keep me\n");
    std::os::unix::fs::symlink(&victim, sc.path("in.report.csv")).unwrap();
    sc.run_cmd().args(FAST).arg("--overwrite").run().exits(2);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert_eq!(sc.sim().stat("deletes"), 0, "nothing was deleted");
    assert_eq!(sc.sim().store().len(), 2);
}
