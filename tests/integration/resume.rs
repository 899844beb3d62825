//! Crash safety (SPEC §8): kill -9 at several moments then `--resume`, Ctrl-C, refusals, a
//! report cut mid-line. Real processes, real signals, the simulator as the server.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ds100_offboard::report::row::ReportRow;
use ds100_offboard::report::status::Status;

/// The latest report row per row number (the resume rule), asserting every input row has one.
fn latest(path: &Path, n: u64) -> HashMap<u64, ReportRow> {
    let mut by_row = HashMap::new();
    for r in read_report(path) {
        by_row.insert(r.row, r);
    }
    for i in 1..=n {
        assert!(by_row.contains_key(&i), "row {i} missing from the report");
    }
    assert_eq!(by_row.len() as u64, n);
    by_row
}

/// Starts `run` as a plain child process (so it can be killed and signalled).
fn spawn_run(sim: &Sim, input: &Path, extra: &[&str]) -> Child {
    Command::new(bin_path())
        .arg("run")
        .arg(input)
        .args(["--base-url", &sim.url, "--yes", "-q"])
        .args(extra)
        .env("DS100_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run")
}

fn report_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills a run with SIGKILL once `ready` says so, resumes it, and checks the end state.
fn kill_then_resume(
    name: &str,
    sim_args: &[&str],
    run_args: &[&str],
    ready: impl Fn(&Sim, &Path) -> bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let targets = creds(120, 20_000);
    let bystanders = creds(30, 30_000);
    let mut store = targets.clone();
    store.extend(bystanders.iter().cloned());
    let sim = Sim::seeded(dir.path(), &store, sim_args);
    let input = write(dir.path(), "in.csv", &csv_of(&targets));
    let report = dir.path().join("in.report.csv");

    let mut child = spawn_run(&sim, &input, run_args);
    wait_until(&format!("{name}: the kill point"), || ready(&sim, &report));
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        None,
        "{name}: the run finished before the kill"
    );
    let before = report_lines(&report);
    assert!(
        before < 120,
        "{name}: nothing left to resume ({before} rows)"
    );

    let out = sim
        .run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .get_output()
        .clone();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rows = latest(&report, 120);
    for r in rows.values() {
        // Rows in flight at the kill were deleted without the report knowing: the retry's
        // 404 is explained by a lookup as absent.
        assert!(
            matches!(r.status, Status::Deleted | Status::Absent),
            "{name}: {r:?}"
        );
    }
    let mut want = bystanders.clone();
    want.sort();
    assert_eq!(
        sim.store(),
        want,
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
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rows             120"),
        "{name}"
    );
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
    let dir = tempfile::tempdir().unwrap();
    let all = creds(200, 40_000);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    let child = spawn_run(&sim, &input, &["--rate", "50/s"]);
    wait_until("some rows", || report_lines(&report) >= 20);
    send_signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let rows = latest(&report, 200);
    let skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!(skipped > 100, "skipped {skipped}");
    assert!(
        rows.values()
            .all(|r| matches!(r.status, Status::Deleted | Status::Skipped))
    );
    let summary_out = String::from_utf8_lossy(&out.stdout);
    assert!(summary_out.is_empty(), "-q prints nothing: {summary_out}");

    // Not quiet: the resume command is printed, and it works.
    let child = Command::new(bin_path())
        .arg("run")
        .arg(&input)
        .args([
            "--base-url",
            &sim.url,
            "--yes",
            "--rate",
            "50/s",
            "--resume",
        ])
        .env("DS100_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let before = report_lines(&report);
    wait_until("resumed rows", || report_lines(&report) >= before + 10);
    send_signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("to resume"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("--resume") && line.contains("in.csv"),
        "{line}"
    );

    sim.run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(0);
    let rows = latest(&report, 200);
    assert!(
        rows.values().all(|r| r.status == Status::Deleted),
        "only deletes: nothing was in doubt"
    );
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("deletes_of_already_deleted"), 0);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(20, 41_000);
    let sim = Sim::seeded(dir.path(), &all, &["--latency", "3s"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let mut child = spawn_run(&sim, &input, &["--rate", "100/s", "--timeout", "20s"]);
    wait_until("requests in flight", || sim.stat("requests") >= 4);
    send_signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    send_signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    // Whatever is in the report parses (valid up to its last full line).
    read_report(&dir.path().join("in.report.csv"));
}

#[test]
fn resume_refuses_the_report_of_another_input() {
    let dir = tempfile::tempdir().unwrap();
    let a = creds(5, 42_000);
    let b = creds(5, 43_000);
    let sim = Sim::seeded(dir.path(), &a, &[]);
    let input_a = write(dir.path(), "a.csv", &csv_of(&a));
    let input_b = write(dir.path(), "b.csv", &csv_of(&b));
    sim.run_cmd(&input_a).args(FAST).assert().code(0);
    let requests = sim.stat("requests");
    let out = sim
        .run_cmd(&input_b)
        .args(FAST)
        .args(["--resume", "--report"])
        .arg(dir.path().join("a.report.csv"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("another input"));
    // A file that is not a report at all.
    let other = write(dir.path(), "notes.csv", "name,comment\nx,y\n");
    let out = sim
        .run_cmd(&input_a)
        .args(FAST)
        .arg("--resume")
        .arg("--report")
        .arg(&other)
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("not a report"));
    // Nothing to resume from.
    sim.run_cmd(&input_b)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(2);
    assert_eq!(sim.stat("requests"), requests, "nothing was sent");
}

#[test]
fn resuming_a_finished_run_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(8, 44_000);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let input = write(
        dir.path(),
        "in.csv",
        &format!("{}bad,row,here\n", csv_of(&all)),
    );
    sim.run_cmd(&input).args(FAST).assert().code(1);
    let requests = sim.stat("requests");
    let report = dir.path().join("in.report.csv");
    let before = std::fs::read(&report).unwrap();
    let out = sim
        .run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Nothing to resume"));
    assert_eq!(sim.stat("requests"), requests);
    assert_eq!(std::fs::read(&report).unwrap(), before);
}

#[test]
fn a_report_cut_mid_line_is_resumed_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(10, 45_000);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    sim.run_cmd(&input)
        .args(FAST)
        .arg("--concurrency")
        .arg("1")
        .assert()
        .code(0);
    // Cut the last row in half, as a crash mid-write would.
    let full = std::fs::read(&report).unwrap();
    std::fs::write(&report, &full[..full.len() - 20]).unwrap();
    let last_row = read_report_lossy_last_row(&full);
    sim.run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(0);
    let rows = latest(&report, 10);
    // The cut row was done again: its DELETE answered 404 and a lookup confirmed it gone.
    assert_eq!(
        rows[&last_row].status,
        Status::Absent,
        "{:?}",
        rows[&last_row]
    );
    assert_eq!(
        sim.stat("requests"),
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
