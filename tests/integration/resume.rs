//! Crash safety: kill -9 at several moments then `--resume`, Ctrl-C, refusals, a report cut
//! mid-line. Real processes, real signals, the simulator as the server.

use crate::harness::*;
use ds100_offboard::report::status::Status;

/// Kills a run with SIGKILL once `ready` says so, resumes it, and checks the end state.
fn kill_then_resume(
    name: &str,
    sim_args: &[&str],
    run_args: &[&str],
    ready: impl Fn(&Sim, &std::path::Path) -> bool,
) {
    let targets = creds(120, 20_000);
    let bystanders = creds(30, 30_000);
    let mut store = targets.clone();
    store.extend(bystanders.iter().cloned());
    let sc = Scenario::new()
        .seed(&store)
        .sim_args(sim_args)
        .input(&csv_of(&targets));
    let sim = sc.sim();
    let report = sc.path("in.report.csv");

    let child = sc.run_cmd().args(["--yes", "-q"]).args(run_args).spawn();
    wait_until(&format!("{name}: the kill point"), || ready(sim, &report));
    child.kill9(name);
    let before = report_lines(&report);
    assert!(
        before < 120,
        "{name}: nothing left to resume ({before} rows)"
    );

    let ran = sc.run_cmd().args(FAST).arg("--resume").run().exits(0);
    let rows = latest_by_row(&report, 120);
    for r in rows.values() {
        // Rows in flight at the kill were deleted without the report knowing: the retry's
        // 404 is explained by a lookup as absent.
        assert!(
            matches!(r.status, Status::Deleted | Status::Absent),
            "{name}: {r:?}"
        );
    }
    assert_eq!(
        sim.store(),
        sorted(bystanders),
        "{name}: every target gone, every bystander untouched"
    );
    assert_eq!(
        sim.stat("deleted"),
        120,
        "{name}: each credential deleted exactly once"
    );
    // Only rows in flight at the kill (at most --concurrency of them) were asked twice.
    assert!(
        sim.stat("deletes_of_already_deleted") <= 8,
        "{name}: {}",
        sim.stats()
    );
    // The summary describes the whole job.
    assert!(ran.stdout.contains("rows             120"), "{name}");
}

#[test]
fn kill_9_early_then_resume() {
    kill_then_resume("early", &[], &["--rate", "100/s"], |_, report| {
        report_lines(report) >= 3
    });
}

#[test]
fn kill_9_midway_then_resume() {
    kill_then_resume(
        "midway",
        &["--latency", "5ms"],
        &["--rate", "150/s"],
        |_, report| report_lines(report) >= 60,
    );
}

#[test]
fn kill_9_during_a_429_cooldown_then_resume() {
    kill_then_resume(
        "cooldown",
        &["--fault", "429,nth=40"],
        &["--rate", "150/s", "--max-backoff", "10s"],
        |sim, _| sim.stats()["by_status"]["429"].as_u64().unwrap_or(0) >= 1,
    );
}

#[test]
fn ctrl_c_accounts_for_every_row_and_the_skipped_ones_resume() {
    let all = creds(200, 40_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let report = sc.path("in.report.csv");
    let child = sc.run_cmd().args(["--yes", "-q", "--rate", "50/s"]).spawn();
    wait_until("some rows", || report_lines(&report) >= 20);
    child.signal(libc::SIGINT);
    let ran = child.wait().exits(130);
    let rows = latest_by_row(&report, 200);
    let skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!(skipped > 100, "skipped {skipped}");
    assert!(
        rows.values()
            .all(|r| matches!(r.status, Status::Deleted | Status::Skipped))
    );
    assert!(ran.stdout.is_empty(), "-q prints nothing: {}", ran.stdout);

    // Not quiet: the resume command is printed, and it works.
    let child = sc
        .run_cmd()
        .args(["--yes", "--rate", "50/s", "--resume"])
        .spawn();
    let before = report_lines(&report);
    wait_until("resumed rows", || report_lines(&report) >= before + 10);
    child.signal(libc::SIGTERM);
    let ran = child.wait().exits(130);
    let line = ran
        .stdout
        .lines()
        .find(|l| l.contains("to resume"))
        .unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(
        line.contains("--resume") && line.contains("in.csv"),
        "{line}"
    );

    sc.run_cmd().args(FAST).arg("--resume").run().exits(0);
    let rows = latest_by_row(&report, 200);
    assert!(
        rows.values().all(|r| r.status == Status::Deleted),
        "only deletes: nothing was in doubt"
    );
    assert!(sc.sim().store().is_empty());
    assert_eq!(sc.sim().stat("deletes_of_already_deleted"), 0);
}

/// The simulator holds every DELETE for ten minutes (the run's timeout too): a run that
/// waited for its requests in flight after the second Ctrl-C would outlast the wait for its
/// end, which fails the test. It exits with every DELETE still unanswered.
#[test]
fn a_second_ctrl_c_exits_at_once() {
    let all = creds(20, 41_000);
    // `slow` rather than `--latency`: the check before the plan (a lookup) gets through.
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["slow,every=1,on=delete"])
        .sim_args(&["--slow-delay", "10m"])
        .input(&csv_of(&all));
    let mut child = sc
        .run_cmd()
        .args(["--yes", "--rate", "100/s", "--timeout", "10m"])
        .spawn();
    wait_until("DELETEs in flight", || sc.sim().stat("deletes") >= 4);
    child.signal(libc::SIGINT);
    wait_until("the first Ctrl-C's notice", || {
        child.stderr_so_far().contains("Press Ctrl-C again")
    });
    child.signal(libc::SIGINT);
    let ran = child.wait().exits(130);
    assert!(ran.stderr.contains("Exiting at once"), "{}", ran.stderr);
    assert_eq!(sc.sim().stat("deleted"), 0, "no request was answered");
    // Whatever is in the report parses (valid up to its last full line).
    read_report(&sc.path("in.report.csv"));
}

#[test]
fn resume_refuses_the_report_of_another_input() {
    let a = creds(5, 42_000);
    let b = creds(5, 43_000);
    let sc = Scenario::new().seed(&a).input_named("a.csv", &csv_of(&a));
    let input_b = sc.file("b.csv", &csv_of(&b));
    sc.run(FAST).exits(0);
    let sim = sc.sim();
    let requests = sim.stat("requests");
    let ran = sc
        .run_cmd()
        .input(&input_b)
        .args(FAST)
        .args(["--resume", "--report"])
        .arg(sc.path("a.report.csv"))
        .run()
        .exits(2);
    assert!(ran.stderr.contains("another input"), "{}", ran.stderr);
    // A file that is not a report at all.
    let other = sc.file("notes.csv", "name,comment\nx,y\n");
    let ran = sc
        .run_cmd()
        .args(FAST)
        .arg("--resume")
        .arg("--report")
        .arg(&other)
        .run()
        .exits(2);
    assert!(ran.stderr.contains("not a report"), "{}", ran.stderr);
    // Nothing to resume from.
    sc.run_cmd()
        .input(&input_b)
        .args(FAST)
        .arg("--resume")
        .run()
        .exits(2);
    assert_eq!(sim.stat("requests"), requests, "nothing was sent");
}

#[test]
fn resuming_a_finished_run_sends_nothing() {
    let all = creds(8, 44_000);
    let sc = Scenario::new()
        .seed(&all)
        .input(&format!("{}bad,row,here\n", csv_of(&all)));
    let ran = sc.run(FAST).exits(1);
    let sim = sc.sim();
    let requests = sim.stat("requests");
    let before = std::fs::read(ran.report_path()).unwrap();
    let ran = sc.run_cmd().args(FAST).arg("--resume").run().exits(1);
    assert!(ran.stderr.contains("Nothing to resume"), "{}", ran.stderr);
    assert_eq!(sim.stat("requests"), requests);
    assert_eq!(std::fs::read(ran.report_path()).unwrap(), before);
}

#[test]
fn a_report_cut_mid_line_is_resumed_correctly() {
    let all = creds(10, 45_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let report = sc
        .run_cmd()
        .args(FAST)
        .args(["--concurrency", "1"])
        .run()
        .exits(0)
        .report_path()
        .to_path_buf();
    // Cut the last row in half, as a crash mid-write would.
    let full = std::fs::read(&report).unwrap();
    std::fs::write(&report, &full[..full.len() - 20]).unwrap();
    let last_row = read_report_lossy_last_row(&full);
    sc.run_cmd().args(FAST).arg("--resume").run().exits(0);
    let rows = latest_by_row(&report, 10);
    // The cut row was done again: its DELETE answered 404 and a lookup confirmed it gone.
    assert_eq!(
        rows[&last_row].status,
        Status::Absent,
        "{:?}",
        rows[&last_row]
    );
    assert_eq!(
        sc.sim().stat("requests"),
        15,
        "the check before the plan and 10 deletes, then the check, one DELETE, one lookup and \
         one with a `0` in front (lost zeros?)"
    );
    // Every line of the file is whole again.
    assert_eq!(read_report(&report).len(), 10);
}

fn read_report_lossy_last_row(full: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(full);
    let last = text.lines().last().unwrap();
    last.split(',').next().unwrap().parse().unwrap()
}
