//! One run per report, always stoppable: the report's sidecar (tenant, mode, identity) and
//! what `--resume` makes of it, the report lock, Ctrl-C with closed output pipes and under the
//! progress bar, and where `--summary-json` may write. Real binary, real simulator.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
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

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `run` as a plain child process (to signal it), with the token of the test simulator.
fn spawn_run(sim: &Sim, input: &Path, extra: &[&str]) -> Child {
    Command::new(bin_path())
        .arg("run")
        .arg(input)
        .args(["--base-url", &sim.url, "--yes"])
        .args(extra)
        .env("DS100_TOKEN", TOKEN)
        .env_remove("DS100_KEY_FILE")
        .env_remove("DS100_BASE_URL")
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

/// Polls `cond`; the deadline only keeps a broken build from hanging the suite.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the child to exit; kills it (and fails) if it is still running after a minute,
/// which only a run that ignores its stop signal does.
fn wait_or_kill(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the run did not stop after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A simulator that accepts any bearer token, seeded with `creds`.
fn any_token_sim(dir: &Path, creds: &[Cred], args: &[&str]) -> Sim {
    let seed = dir.join("seed-any.csv");
    std::fs::write(&seed, csv_of(creds)).unwrap();
    let mut all = vec!["--seed", seed.to_str().unwrap()];
    all.extend_from_slice(args);
    Sim::start_with_auth(&[], &all)
}

// ---------------------------------------------------------------------------------------
// The sidecar: tenant, mode, identity
// ---------------------------------------------------------------------------------------

#[test]
fn the_sidecar_records_tenant_mode_and_identity_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(4, 60_000);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    sim.run_cmd(&input).args(FAST).assert().code(0);

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
    let shared = dir.path().join("shared.csv");
    sim.run_cmd(&input)
        .args(FAST)
        .arg("--dry-run")
        .arg("--report")
        .arg(&shared)
        .assert()
        .code(0);
    assert_eq!(read_json(&sidecar_of(&shared))["mode"], "dry-run");
    // --verify is still a delete run.
    let sim2 = Sim::seeded(dir.path(), &all, &[]);
    sim2.run_cmd(&input)
        .args(FAST)
        .args(["--verify", "--overwrite", "--report"])
        .arg(&shared)
        .assert()
        .code(0);
    let meta = read_json(&sidecar_of(&shared));
    assert_eq!(meta["mode"], "delete", "{meta}");
    assert!(
        meta["tenant"].as_str().unwrap().starts_with(&sim2.url),
        "{meta}"
    );
}

#[test]
fn a_key_file_run_records_its_access_id() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(2, 60_100);
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-only-key-pkcs8.json");
    let seed = write(dir.path(), "seed.csv", &csv_of(&all));
    let sim = Sim::start_with_auth(
        &["--key-file", key.to_str().unwrap()],
        &["--seed", seed.to_str().unwrap()],
    );
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", &sim.url, "--key-file"])
        .arg(&key)
        .args(FAST)
        .assert()
        .code(0);
    let text = std::fs::read_to_string(dir.path().join("in.report.meta.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(meta["identity"], "accessID test-only-access-id-3f9c");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[test]
fn resume_refuses_a_report_made_against_another_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(6, 60_200);
    let rehearsal = Sim::seeded(dir.path(), &all, &[]);
    let production = Sim::seeded(dir.path(), &all, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    // The rehearsal: every row deleted on the simulator.
    rehearsal.run_cmd(&input).args(FAST).assert().code(0);

    // The same report, resumed against production: nothing there was deleted.
    let out = production
        .run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
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
    let dir = tempfile::tempdir().unwrap();
    let all = creds(5, 60_300);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("audit.csv");
    sim.run_cmd(&input)
        .args(FAST)
        .arg("--dry-run")
        .arg("--report")
        .arg(&report)
        .assert()
        .code(0);
    let requests = sim.stat("requests");

    // A delete run resuming into the dry run's report.
    let out = sim
        .run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .arg("--report")
        .arg(&report)
        .assert()
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mode") && err.contains("dry-run") && err.contains("delete"),
        "{err}"
    );
    assert_eq!(sim.stat("requests"), requests, "nothing was sent");
    assert_eq!(sim.store().len(), 5);

    // And the other way round: a dry run resuming into a delete run's report.
    sim.run_cmd(&input).args(FAST).assert().code(0);
    let requests = sim.stat("requests");
    let out = sim
        .run_cmd(&input)
        .args(FAST)
        .args(["--dry-run", "--resume", "--report"])
        .arg(dir.path().join("in.report.csv"))
        .assert()
        .get_output()
        .clone();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert_eq!(sim.stat("requests"), requests);
}

#[test]
fn resume_with_another_identity_warns_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(6, 60_400);
    let sim = any_token_sim(dir.path(), &all, &["--fault", "500,nth=2"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    let first = bin()
        .arg("run")
        .arg(&input)
        .args([
            "--base-url",
            &sim.url,
            "--max-attempts",
            "1",
            "--concurrency",
            "1",
        ])
        .args(FAST)
        .env("DS100_TOKEN", "alice-token-1111")
        .assert()
        .code(1)
        .get_output()
        .clone();
    let recorded = read_json(&sidecar_of(&report))["identity"]
        .as_str()
        .unwrap()
        .to_string();
    let _ = first;

    let out = bin()
        .arg("run")
        .arg(&input)
        .args(["--base-url", &sim.url, "--resume"])
        .args(FAST)
        .env("DS100_TOKEN", "bob-token-2222")
        .assert()
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("identity") && err.contains(&recorded),
        "warns naming the recorded identity: {err}"
    );
    assert!(
        !err.contains("alice-token-1111") && !err.contains("bob-token-2222"),
        "{err}"
    );
    assert!(sim.store().is_empty());
    // The sidecar still describes the job as it started.
    assert_eq!(read_json(&sidecar_of(&report))["identity"], recorded);
}

#[test]
fn resume_refuses_a_report_without_a_readable_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(4, 60_500);
    let sim = Sim::seeded(dir.path(), &all, &["--fault", "500,nth=2"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    sim.run_cmd(&input)
        .args(FAST)
        .args(["--max-attempts", "1", "--concurrency", "1"])
        .assert()
        .code(1);
    let requests = sim.stat("requests");
    let meta = sidecar_of(&report);
    let good = std::fs::read(&meta).expect("sidecar");

    let refused = |what: &str| {
        let out = sim
            .run_cmd(&input)
            .args(FAST)
            .arg("--resume")
            .assert()
            .get_output()
            .clone();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
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
    sim.run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(0);
}

// ---------------------------------------------------------------------------------------
// Ctrl-C with closed output pipes
// ---------------------------------------------------------------------------------------

#[test]
fn ctrl_c_stops_a_run_whose_output_pipes_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(60, 60_600);
    let sim = Sim::seeded(dir.path(), &all, &["--latency", "400ms"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    // Not quiet: the notice is printed, as in `run … 2>&1 | tee run.log`.
    let mut child = spawn_run(
        &sim,
        &input,
        &["--concurrency", "2", "--rate", "100/s", "--timeout", "20s"],
    );
    wait_until("deletes in flight", || sim.stat("deletes") >= 4);
    // The reader goes away (the same Ctrl-C killed `tee`).
    drop(child.stdout.take());
    drop(child.stderr.take());
    let deletes_before = sim.stat("deletes");
    send_signal(&child, libc::SIGINT);
    let status = wait_or_kill(&mut child, "closed pipes");
    assert_eq!(status.code(), Some(130), "{status:?}");
    let after = sim.stat("deletes") - deletes_before;
    assert!(
        after <= 2,
        "{after} DELETEs reached the tenant after the signal (2 may have been on their way)"
    );
    let rows = report_by_row(&report, 60);
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
    assert!(!lock_of(&report).exists(), "the lock file is removed");
}

#[test]
fn a_log_line_to_a_closed_stderr_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(30, 60_650);
    // The 429 comes after the pipes are closed: the rate cut it causes is logged (info).
    let sim = Sim::seeded(
        dir.path(),
        &all,
        &["--latency", "200ms", "--fault", "429,nth=14"],
    );
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    let mut child = spawn_run(
        &sim,
        &input,
        &[
            "--concurrency",
            "2",
            "--rate",
            "100/s",
            "--max-backoff",
            "50ms",
        ],
    );
    wait_until("deletes in flight", || sim.stat("deletes") >= 4);
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = wait_or_kill(&mut child, "closed stderr");
    assert_eq!(
        sim.stats()["by_status"]["429"].as_u64(),
        Some(1),
        "{}",
        sim.stats()
    );
    assert_eq!(status.code(), Some(0), "{status:?}");
    let rows = report_by_row(&report, 30);
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
    let dir = tempfile::tempdir().unwrap();
    let all = creds(40, 60_700);
    let sim = Sim::seeded(dir.path(), &all, &["--latency", "300ms"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    let mut first = spawn_run(
        &sim,
        &input,
        &["-q", "--concurrency", "2", "--rate", "100/s"],
    );
    wait_until("the first rows", || report_lines(&report) >= 2);
    let pid = first.id().to_string();

    let refused = |what: &str, cmd: &mut assert_cmd::Command| {
        let out = cmd.assert().get_output().clone();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(&pid),
            "{what}: names the holder's pid {pid}: {err}"
        );
    };
    refused(
        "--resume in a second terminal",
        sim.run_cmd(&input).args(FAST).arg("--resume"),
    );
    refused(
        "a fresh run with --overwrite",
        sim.run_cmd(&input).args(FAST).arg("--overwrite"),
    );
    refused(
        "a dry run on the same report",
        sim.run_cmd(&input)
            .args(FAST)
            .args(["--dry-run", "--overwrite", "--report"])
            .arg(&report),
    );
    refused(
        "validate on the same report",
        bin()
            .arg("validate")
            .arg(&input)
            .args(["--overwrite", "--report"])
            .arg(&report),
    );

    send_signal(&first, libc::SIGINT);
    let status = wait_or_kill(&mut first, "first run");
    assert_eq!(status.code(), Some(130));
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
    sim.run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(0);
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("deletes_of_already_deleted"), 0);
}

#[test]
fn a_lock_left_by_kill_9_does_not_block_the_resume() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(30, 60_800);
    let sim = Sim::seeded(dir.path(), &all, &["--latency", "100ms"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let report = dir.path().join("in.report.csv");
    let mut child = spawn_run(
        &sim,
        &input,
        &["-q", "--concurrency", "2", "--rate", "100/s"],
    );
    wait_until("some rows", || report_lines(&report) >= 3);
    let lock = lock_of(&report);
    let holder = std::fs::read_to_string(&lock).expect("a lock file while the run writes");
    assert!(holder.contains(&child.id().to_string()), "{holder}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lock.exists(), "kill -9 leaves the file behind");

    sim.run_cmd(&input)
        .args(FAST)
        .arg("--resume")
        .assert()
        .code(0);
    assert!(sim.store().is_empty());
    assert!(!lock.exists());
}

// ---------------------------------------------------------------------------------------
// --summary-json
// ---------------------------------------------------------------------------------------

#[test]
fn summary_json_never_lands_on_the_input_the_report_or_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(3, 60_900);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let original = std::fs::read(&input).unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(&input, d.join("link.json")).unwrap();
    std::fs::hard_link(&input, d.join("hard.json")).unwrap();
    let victim = write(d, "victim.txt", "keep me\n");
    std::os::unix::fs::symlink(&victim, d.join("dangerous.json")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere.txt"), d.join("dangling.json")).unwrap();
    let existing = write(d, "old.json", "{\"old\":true}\n");

    let refused = |what: &str, summary: &Path, extra: &[&str]| {
        let out = sim
            .run_cmd(&input)
            .args(FAST)
            .args(extra)
            .arg("--summary-json")
            .arg(summary)
            .assert()
            .get_output()
            .clone();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains("--summary-json"), "{what}: {err}");
        assert_eq!(sim.stat("requests"), 0, "{what}: nothing was sent");
        assert_eq!(
            std::fs::read(&input).unwrap(),
            original,
            "{what}: input intact"
        );
    };
    refused("the input", &input, &[]);
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
    bin()
        .arg("validate")
        .arg(&input)
        .arg("--summary-json")
        .arg(&input)
        .assert()
        .code(2);
    assert_eq!(std::fs::read(&input).unwrap(), original);

    // --overwrite replaces a summary file.
    sim.run_cmd(&input)
        .args(FAST)
        .args(["--dry-run", "--summary-json"])
        .arg(&existing)
        .arg("--overwrite")
        .assert()
        .code(0);
    assert_eq!(read_json(&existing)["command"], "run --dry-run");

    // `-` is stdout: nothing but the JSON there, no file named `-`, the human summary on stderr.
    let out = sim
        .run_cmd(&input)
        .current_dir(d)
        .args(FAST)
        .args(["--summary-json", "-"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout_of(&out)));
    assert_eq!(json["statuses"]["deleted"], 3);
    assert!(!d.join("-").exists(), "no file named -");
    assert!(
        stderr_of(&out).contains("Summary (run)"),
        "{}",
        stderr_of(&out)
    );
}

// ---------------------------------------------------------------------------------------
// The Ctrl-C notice under the progress bar
// ---------------------------------------------------------------------------------------

/// A terminal screen, just enough of one to replay what indicatif and the tool draw: printable
/// characters with line wrap, CR, LF, cursor up/down/column, erase in line and below.
struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    width: usize,
}

impl Screen {
    fn new(width: usize) -> Screen {
        Screen {
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            width,
        }
    }

    fn line(&mut self) -> &mut Vec<char> {
        while self.rows.len() <= self.row {
            self.rows.push(Vec::new());
        }
        &mut self.rows[self.row]
    }

    fn put(&mut self, c: char) {
        if self.col >= self.width {
            self.row += 1;
            self.col = 0;
        }
        let col = self.col;
        let line = self.line();
        if line.len() <= col {
            line.resize(col + 1, ' ');
        }
        line[col] = c;
        self.col += 1;
    }

    fn feed(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => self.col = 0,
                '\n' => self.row += 1,
                '\x08' => self.col = self.col.saturating_sub(1),
                '\x1b' => match chars.next() {
                    Some('[') => {
                        let mut params = String::new();
                        let mut last = ' ';
                        for d in chars.by_ref() {
                            if ('@'..='~').contains(&d) {
                                last = d;
                                break;
                            }
                            params.push(d);
                        }
                        self.csi(&params, last);
                    }
                    Some('(' | ')') => {
                        chars.next();
                    }
                    _ => {}
                },
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
    }

    fn csi(&mut self, params: &str, last: char) {
        let n: Option<usize> = params
            .trim_start_matches('?')
            .split(';')
            .next()
            .and_then(|p| p.parse().ok());
        let count = n.unwrap_or(1).max(1);
        match last {
            'A' => self.row = self.row.saturating_sub(count),
            'B' => self.row += count,
            'C' => self.col = (self.col + count).min(self.width),
            'D' => self.col = self.col.saturating_sub(count),
            'G' => self.col = count - 1,
            'K' => {
                let col = self.col;
                let line = self.line();
                match n.unwrap_or(0) {
                    0 => line.truncate(col),
                    1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    _ => line.clear(),
                }
            }
            'J' => {
                let col = self.col;
                match n.unwrap_or(0) {
                    0 => {
                        self.line().truncate(col);
                        self.rows.truncate(self.row + 1);
                    }
                    _ => self.rows.iter_mut().for_each(Vec::clear),
                }
            }
            _ => {} // colours, cursor visibility
        }
    }

    /// Everything on screen in reading order with all whitespace removed, so that a message
    /// wrapped over several rows still reads as one.
    fn condensed(&self) -> String {
        self.rows
            .iter()
            .flatten()
            .filter(|c| !c.is_whitespace())
            .collect()
    }

    fn text(&self) -> String {
        self.rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn condense(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A pseudo-terminal of `cols` × `rows`: (master, slave).
fn open_pty(cols: u16, rows: u16) -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds into the ints we pass and reads the winsize we own.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened by openpty and are owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

#[test]
fn the_first_ctrl_c_notice_is_whole_on_screen_under_the_progress_bar() {
    let dir = tempfile::tempdir().unwrap();
    let all = creds(40, 61_000);
    let sim = Sim::seeded(dir.path(), &all, &["--latency", "1500ms"]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let width = 80;
    let (mut master, slave) = open_pty(width, 40);
    let mut cmd = Command::new(bin_path());
    cmd.arg("run")
        .arg(&input)
        .args(["--base-url", &sim.url, "--yes", "--concurrency", "2"])
        .args(["--rate", "100/s", "--timeout", "20s"])
        .env("DS100_TOKEN", TOKEN)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().expect("spawn run on a pty");
    drop(cmd); // our copies of the slave: the master then sees EOF when the run exits

    let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match master.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        })
    };
    let screen_now = || {
        let bytes = seen.lock().unwrap().clone();
        let mut screen = Screen::new(usize::from(width));
        screen.feed(&String::from_utf8_lossy(&bytes));
        screen
    };
    // The bar itself ("0/40 rows"), not the plan printed above it.
    wait_until("the progress bar", || {
        sim.stat("deletes") >= 2 && screen_now().text().contains("/40 rows")
    });
    send_signal(&child, libc::SIGINT);
    let status = wait_or_kill(&mut child, "pty");
    reader.join().unwrap();
    assert_eq!(status.code(), Some(130));

    let screen = screen_now();
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
    let dir = tempfile::tempdir().unwrap();
    let on_tenant = creds(3, 61_100);
    let wanted = creds(40, 61_200); // none of them on the tenant: every checked row is absent
    let sim = Sim::seeded(dir.path(), &on_tenant, &["--latency", "400ms"]);
    let input = write(dir.path(), "in.csv", &csv_of(&wanted));
    let report = dir.path().join("in.dry-run.csv");
    let child = spawn_run(
        &sim,
        &input,
        &["--dry-run", "--concurrency", "2", "--rate", "100/s"],
    );
    wait_until("a few rows checked", || report_lines(&report) >= 2);
    send_signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr_of(&out));
    let rows = report_by_row(&report, 40);
    let n_absent = rows.values().filter(|r| r.status == Status::Absent).count();
    let n_skipped = rows
        .values()
        .filter(|r| r.status == Status::Skipped)
        .count();
    assert!(n_absent >= 2 && n_skipped > 0, "{n_absent} {n_skipped}");
    let stdout = stdout_of(&out);
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
    let dir = tempfile::tempdir().unwrap();
    let all = creds(2, 61_900);
    let sim = Sim::seeded(dir.path(), &all, &[]);
    let input = write(dir.path(), "in.csv", &csv_of(&all));
    let victim = write(dir.path(), "victim.txt", "keep me\n");
    let report = dir.path().join("in.report.csv");
    std::os::unix::fs::symlink(&victim, &report).unwrap();
    let out = sim
        .run_cmd(&input)
        .args(FAST)
        .arg("--overwrite")
        .assert()
        .get_output()
        .clone();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert_eq!(sim.stat("deletes"), 0, "nothing was deleted");
    assert_eq!(sim.store().len(), 2);
}
