//! Input and plan against wrong deletions and false successes: columns the tool does not know,
//! device serials that lost their leading zeros, an input that changes after the plan, huge
//! records, a file without rows and the demo's scratch directory. Every test runs the real
//! binary; the ones that send run against the real simulator on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::harness::*;
use ds100_offboard::report::status::Status;

/// `validate INPUT EXTRA --overwrite`.
fn validate(input: &Path, extra: &[&str]) -> Ran {
    ds100("validate")
        .arg(input)
        .args(extra)
        .arg("--overwrite")
        .run()
}

// ---- 1. columns the tool does not know ---------------------------------------------------

/// The header of the issue: the userId column is spelled in a way the tool does not know. Before
/// the fix it was ignored, every row became a device-only lookup and the tool deleted the one
/// credential each device held: here another person's. Now `validate`, `run` and
/// `run --dry-run` stop before anything is sent, naming the column and the known spellings.
#[test]
fn an_unknown_user_column_stops_validate_run_and_dry_run() {
    let someone_else = creds(2, 7100);
    let leaver = uuid_like(424_242);
    let text = format!(
        "Device Serial Number,User ID (UUID),Name\n{},{leaver},Ann Leaver\n{},{leaver},Ann Leaver\n",
        someone_else[0].device, someone_else[1].device
    );
    let sc = Scenario::new()
        .seed(&someone_else)
        .input_named("leavers.csv", &text);

    let v = sc.validate(&["--overwrite"]);
    let r = sc.run(FAST);
    let d = sc.run_cmd().args(FAST).arg("--dry-run").run();
    for (what, o) in [("validate", &v), ("run", &r), ("dry run", &d)] {
        assert_eq!(o.code, 2, "{what}: {}", o.stderr);
        assert!(
            o.stderr.contains("\"User ID (UUID)\""),
            "{what}: {}",
            o.stderr
        );
        for known in ["tokenSerialNumber", "deviceSerialNumber", "userId"] {
            assert!(o.stderr.contains(known), "{what}: {}", o.stderr);
        }
        assert!(o.stderr.contains("--ignore-column"), "{what}: {}", o.stderr);
    }
    assert_eq!(sc.sim().stat("deletes"), 0);
    assert_eq!(sorted(sc.sim().store()), sorted(someone_else));
    assert!(!sc.path("leavers.report.csv").exists());
}

/// Spellings of a credential field the tool does not read, in every dialect it reads: each
/// stops `validate` (exit 2) naming the column. Columns that do not look like one pass.
#[test]
fn credential_like_column_names_stop_in_any_dialect() {
    let sc = Scenario::new();
    let row = "014010000001,040000001,00000000-0000-4000-8000-000000000001";
    for name in [
        "Employee ID",
        "Token",
        "Serial No.",
        // `E-mail` is the email column; one that only mentions an address is not.
        "Manager E-mail",
        "GUID",
        "user",
        "Device",
        "uuid",
        "ID",
    ] {
        for (delim, bom) in [(',', ""), (';', "\u{feff}"), ('\t', "")] {
            let header = ["tokenSerialNumber", "deviceSerialNumber", "userId", name]
                .join(&delim.to_string());
            let data = format!("{}{delim}x", row.replace(',', &delim.to_string()));
            let input = sc.file("odd.csv", &format!("{bom}{header}\r\n{data}\r\n"));
            let o = validate(&input, &[]);
            assert_eq!(o.code, 2, "{name:?} {delim:?}: {}", o.stderr);
            assert!(
                o.stderr.contains(&format!("\"{name}\"")),
                "{name:?}: {}",
                o.stderr
            );
        }
    }
    for name in ["Name", "Leaving date", "department", "note", ""] {
        let input = sc.file(
            "fine.csv",
            &format!("tokenSerialNumber,deviceSerialNumber,userId,{name}\n{row},x\n"),
        );
        let o = validate(&input, &[]);
        assert_eq!(o.code, 0, "{name:?}: {}", o.stderr);
    }
}

/// `--ignore-column` says "not a credential field": matched ignoring case and punctuation, on
/// validate and run. One naming no column of the file, or a column the tool reads, is refused.
#[test]
fn ignore_column_lets_a_column_through_and_typos_are_refused() {
    let c = creds(2, 7200);
    let text = format!(
        "Employee ID,tokenSerialNumber,deviceSerialNumber,userId,Badge Serial\n\
         E1,{},{},{},B1\n",
        c[0].token, c[0].device, c[0].user
    );
    let sc = Scenario::new().seed(&c).input(&text);
    let input = sc.input_path();
    let ok = [
        "--ignore-column",
        "employee_id",
        "--ignore-column",
        "BADGE SERIAL",
    ];
    assert_eq!(validate(input, &ok).code, 0);
    // Only one of the two: still stopped, naming the other.
    let half = validate(input, &ok[..2]);
    assert_eq!(half.code, 2, "{}", half.stderr);
    assert!(half.stderr.contains("\"Badge Serial\""), "{}", half.stderr);
    assert!(!half.stderr.contains("\"Employee ID\""), "{}", half.stderr);
    // A typo must not let a credential column through unnoticed.
    for bad in [
        &[
            "--ignore-column",
            "employee_id",
            "--ignore-column",
            "Badge Serail",
        ][..],
        &[
            "--ignore-column",
            "Employee ID",
            "--ignore-column",
            "Badge Serial",
            "--ignore-column",
            "userId",
        ][..],
        &[
            "--ignore-column",
            "Employee ID",
            "--ignore-column",
            "Badge Serial",
            "--ignore-column",
            "",
        ][..],
    ] {
        let o = validate(input, bad);
        assert_eq!(o.code, 2, "{bad:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("--ignore-column"),
            "{bad:?}: {}",
            o.stderr
        );
        let r = sc.run_cmd().args(FAST).args(bad).run();
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
    }
    assert_eq!(sc.sim().stat("deletes"), 0);
    let r = sc.run_cmd().args(FAST).args(ok).run().exits(0);
    // The plan lists what it ignores.
    assert!(r.stderr.contains("ignored columns"), "{}", r.stderr);
    assert!(
        r.stderr.contains("\"Employee ID\"") && r.stderr.contains("\"Badge Serial\""),
        "{}",
        r.stderr
    );
    let rows = r.rows(1);
    assert_eq!(rows[&1].status, Status::Deleted);
}

/// The plan (real run and dry run) lists the ignored columns and says in words how many rows
/// will be resolved by the device alone because they name no user.
#[test]
fn the_plan_lists_ignored_columns_and_rows_naming_no_user() {
    let c = creds(3, 7300);
    let text = format!(
        "deviceSerialNumber,userId,Name,Leaving date\n{},,A,x\n{},{},B,y\n{},,C,z\n",
        c[0].device, c[1].device, c[1].user, c[2].device
    );
    let sc = Scenario::new().seed(&c).input(&text);
    let d = sc.run_cmd().args(FAST).arg("--dry-run").run().exits(0);
    assert!(d.stderr.contains("ignored columns"), "{}", d.stderr);
    assert!(
        d.stderr.contains("\"Name\"") && d.stderr.contains("\"Leaving date\""),
        "{}",
        d.stderr
    );
    assert!(
        d.stderr.contains("2 rows name no user: a real run would delete the credential the device holds, whoever it belongs to"),
        "{}",
        d.stderr
    );
    let r = sc.run(FAST).exits(0);
    assert!(
        r.stderr.contains(
            "2 rows name no user: the credential the device holds will be deleted, whoever it belongs to"
        ),
        "{}",
        r.stderr
    );
    assert!(sc.sim().store().is_empty());
}

// ---- 2. device serials that lost their leading zeros -------------------------------------

const U1: &str = "00000000-0000-4000-8000-000000000001";
const U2: &str = "00000000-0000-4000-8000-000000000002";
const U3: &str = "00000000-0000-4000-8000-000000000003";
const U9: &str = "00000000-0000-4000-8000-000000000009";

fn zeros_tenant() -> Vec<Cred> {
    vec![
        cred("014010000001", "040000001", U1),
        cred("014010000002", "040000002", U2),
        cred("014010000003", "040000003", U3),
    ]
}

/// Row 1's device lost its leading zero (`40000001` for `040000001`), row 3's two of them and
/// no device has that serial even padded. Before the fix both ended `absent` (ok, exit 0) while
/// row 1's credential still worked. Now row 1 is `mismatch` naming the padded serial that the
/// zero-padded lookup found, row 3 is `not_found`; nothing but row 2 is deleted.
#[test]
fn a_device_serial_that_lost_its_zeros_is_never_absent() {
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n\
         014010000001,40000001,{U1}\n\
         014010000002,040000002,{U2}\n\
         014010000009,4000009,{U9}\n"
    );
    let sc = Scenario::new().seed(&zeros_tenant()).input(&text);
    let r = sc
        .run_cmd()
        .args(FAST)
        .args(["--concurrency", "1"])
        .run()
        .exits(1);
    let rows = r.rows(3);
    assert_eq!(rows[&1].status, Status::Mismatch, "{:?}", rows[&1]);
    assert!(rows[&1].error.contains("040000001"), "{:?}", rows[&1]);
    assert!(rows[&1].error.contains("leading zeros"), "{:?}", rows[&1]);
    assert_eq!(rows[&2].status, Status::Deleted);
    assert_eq!(rows[&3].status, Status::NotFound, "{:?}", rows[&3]);
    assert!(rows[&3].error.contains("leading zeros"), "{:?}", rows[&3]);
    // At most two extra lookups per row: one lookup after the 404 plus the padded forms.
    assert!(rows[&1].lookups <= 3 && rows[&3].lookups <= 3, "{rows:?}");
    assert_eq!(
        sorted(sc.sim().store()),
        sorted(vec![zeros_tenant()[0].clone(), zeros_tenant()[2].clone()])
    );
    // The plan says so before anything is sent.
    assert!(r.stderr.contains("shorter"), "{}", r.stderr);
}

/// A file gives no length to compare with (one row, or every serial damaged alike): a device
/// lookup that finds nothing is tried once more with a `0` in front. A credential there makes
/// the row a mismatch; nothing there leaves a truly absent row `absent`.
#[test]
fn without_evidence_in_the_file_one_zero_padded_lookup_is_tried() {
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n\
         014010000001,40000001,{U1}\n\
         014010000009,50000009,{U9}\n"
    );
    let sc = Scenario::new().seed(&zeros_tenant()).input(&text);
    let rows = sc.run(FAST).exits(1).rows(2);
    assert_eq!(rows[&1].status, Status::Mismatch, "{:?}", rows[&1]);
    assert!(rows[&1].error.contains("040000001"), "{:?}", rows[&1]);
    assert_eq!(rows[&2].status, Status::Absent, "{:?}", rows[&2]);
    assert_eq!((rows[&2].attempts, rows[&2].lookups), (1, 2));
    assert_eq!(sorted(sc.sim().store()), sorted(zeros_tenant()));
}

/// The same rule wherever a device lookup finding nothing would make a row `absent`: the dry
/// run, `--verify` and rows resolved by the device alone.
#[test]
fn lost_zeros_are_caught_in_dry_runs_verify_and_device_only_rows() {
    let sc = Scenario::new().seed(&zeros_tenant());
    let full = sc.file(
        "full.csv",
        &format!(
            "tokenSerialNumber,deviceSerialNumber,userId\n\
             014010000001,40000001,{U1}\n\
             014010000002,040000002,{U2}\n\
             014010000009,4000009,{U9}\n"
        ),
    );
    let device_only = sc.file(
        "devices.csv",
        "deviceSerialNumber\n40000001\n040000002\n4000009\n",
    );
    for (input, extra, second) in [
        (&full, &["--dry-run"][..], Status::WouldDelete),
        (&device_only, &["--dry-run"][..], Status::WouldDelete),
    ] {
        let o = sc.run_cmd().input(input).args(FAST).args(extra).run();
        assert_eq!(o.code, 1, "{extra:?}: {}", o.stderr);
        let rows = o.rows(3);
        assert_eq!(rows[&1].status, Status::Mismatch, "{:?}", rows[&1]);
        assert!(rows[&1].error.contains("040000001"), "{:?}", rows[&1]);
        assert_eq!(rows[&2].status, second, "{:?}", rows[&2]);
        assert_eq!(rows[&3].status, Status::NotFound, "{:?}", rows[&3]);
    }
    assert_eq!(sc.sim().stat("deletes"), 0);
    for (input, extra) in [(&full, &["--verify"][..]), (&device_only, &[][..])] {
        let sim = sc.another_sim(&[]);
        let o = sc
            .run_cmd()
            .base_url(&sim.url)
            .input(input)
            .args(FAST)
            .args(extra)
            .arg("--overwrite")
            .run();
        assert_eq!(o.code, 1, "{extra:?}: {}", o.stderr);
        let rows = o.rows(3);
        assert_eq!(rows[&1].status, Status::Mismatch, "{:?}", rows[&1]);
        assert_eq!(rows[&2].status, Status::Deleted, "{:?}", rows[&2]);
        assert_eq!(rows[&3].status, Status::NotFound, "{:?}", rows[&3]);
        assert_eq!(sim.stat("deleted"), 1);
    }
}

/// `validate` points at the short serial offline, in the row's note and on stderr; the row
/// stays `valid` (it may be a real serial of another length).
#[test]
fn validate_points_at_a_short_device_serial() {
    let sc = Scenario::new().input("deviceSerialNumber\n040000001\n40000002\nAB12\n040000003\n");
    let o = sc.validate(&["--overwrite"]).exits(0);
    assert!(o.stderr.contains("shorter"), "{}", o.stderr);
    let rows = o.rows(4);
    assert!(rows[&2].note.contains("leading zeros"), "{:?}", rows[&2]);
    for r in [1, 3, 4] {
        assert!(!rows[&r].note.contains("leading zeros"), "{:?}", rows[&r]);
    }
}

// ---- 3. the input changes after the plan -------------------------------------------------

fn appended(path: &Path, extra: &[Cred]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    for c in extra {
        writeln!(f, "{},{},{}", c.token, c.device, c.user).unwrap();
    }
    f.sync_all().unwrap();
}

/// The run of the issue: the plan says 2 and `--max-deletes 2`; three rows are appended while
/// the typed confirmation waits, then the operator types 2. Before the fix the file was read
/// again and five credentials were deleted. Now: exit 2, "changed after the plan", no DELETE.
#[test]
fn rows_appended_at_the_confirmation_prompt_are_not_sent() {
    let c = creds(5, 7400);
    let sc = Scenario::new().seed(&c).input(&csv_of(&c[..2]));
    let Pty {
        mut controller,
        terminal,
    } = Pty::open(80, 24);
    let mut child = sc
        .run_cmd()
        .args(["--max-deletes", "2", "--rate", "1000/s"])
        .stdio(Some(terminal.into()), None, None)
        .spawn();
    wait_until("the confirmation prompt", || {
        child.stderr_so_far().contains("Type 2 to go on")
    });
    appended(sc.input_path(), &c[2..]);
    controller.write_all(b"2\n").unwrap();
    let ran = child.wait().exits(2);
    assert!(
        ran.stderr.contains("changed after the plan"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("nothing was sent"), "{}", ran.stderr);
    assert_eq!(sc.sim().stat("deletes"), 0);
    assert_eq!(sorted(sc.sim().store()), sorted(c));
    drop(controller);
}

/// Rows appended while a run is sending are never read: the run stops dispatching at what it
/// planned and says the input changed. The run is held open by the simulator's latency.
#[test]
fn rows_appended_during_the_run_are_not_sent() {
    let planned = creds(600, 7500);
    let late = creds(5, 9000);
    let mut all = planned.clone();
    all.extend(late.iter().cloned());
    let sc = Scenario::new()
        .seed(&all)
        .sim_args(&["--latency", "20ms"])
        .input(&csv_of(&planned));
    let child = sc
        .run_cmd()
        .args(["--yes", "--concurrency", "2", "--rate", "1000/s"])
        .spawn();
    wait_until("the first deletions", || sc.sim().stat("deleted") >= 3);
    appended(sc.input_path(), &late);
    let ran = child.wait();
    // The late rows were never sent, whatever else happened.
    let store = sc.sim().store();
    for c in &late {
        assert!(store.contains(c), "{c:?} was deleted: {}", ran.stderr);
    }
    assert!(ran.report().iter().all(|r| r.row <= 600));
    assert_ne!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("changed"), "{}", ran.stderr);
}

// ---- 4. smaller ones ---------------------------------------------------------------------

/// An unclosed quote near the start of a 96 MiB file made one record of the whole file and
/// took memory in proportion (hundreds of MiB). A record is now capped at 1 MiB: the file is
/// refused (exit 2) naming the line, nothing is sent, and memory stays small.
#[test]
fn a_record_longer_than_1_mib_is_refused_in_bounded_memory() {
    let sc = Scenario::new().seed(&zeros_tenant());
    let path = sc.path("big.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "tokenSerialNumber,deviceSerialNumber,userId").unwrap();
        writeln!(f, "014010000001,040000001,{U1}").unwrap();
        writeln!(f, "014010000002,\"040000002,{U2}").unwrap();
        let line = format!("014010000003,040000003,{U3}\n");
        for _ in 0..(96 * 1024 * 1024 / line.len()) {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    let (ran, max_rss_kib) = sc.validate_cmd().input(&path).run_measuring_peak_rss();
    let stderr = ran.exits(2).stderr;
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("1 MiB"), "{stderr}");
    assert!(!sc.path("big.validation.csv").exists());
    assert!(max_rss_kib < 64 * 1024, "peak RSS {max_rss_kib} KiB");

    sc.run_cmd().input(&path).args(FAST).run().exits(2);
    assert_eq!(sc.sim().stat("requests"), 0);
}

/// A header and no rows is an empty export, not a job done: exit 1, "the file has no rows",
/// nothing sent — for `validate` and `run` (and blank lines after the header change nothing).
#[test]
fn a_file_without_rows_says_so_and_exits_1() {
    let sc = Scenario::new().seed(&zeros_tenant());
    for text in [
        "tokenSerialNumber,deviceSerialNumber,userId\n",
        "deviceSerialNumber\r\n\r\n,\r\n",
    ] {
        let input = sc.file("empty-export.csv", text);
        let v = validate(&input, &[]).exits(1);
        assert!(v.stderr.contains("the file has no rows"), "{}", v.stderr);
        for extra in [&[][..], &["--dry-run"][..]] {
            let r = sc
                .run_cmd()
                .input(&input)
                .args(FAST)
                .args(extra)
                .arg("--overwrite")
                .run()
                .exits(1);
            assert!(r.stderr.contains("the file has no rows"), "{}", r.stderr);
        }
    }
    assert_eq!(sc.sim().stat("requests"), 0);
}

/// `demo` wrote into a fixed path in the temp directory, following a symlink planted there.
/// Now every demo gets a fresh private directory, kept and printed.
#[cfg(unix)]
#[test]
fn demo_uses_a_fresh_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = Scenario::new();
    let victim = tmp.path("victim");
    std::fs::create_dir(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, tmp.path("ds100-offboard-demo")).unwrap();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for _ in 0..2 {
        let o = ds100("demo").env("TMPDIR", tmp.dir()).run().exits(0);
        let all = format!("{}{}", o.stdout, o.stderr);
        let dir = std::fs::read_dir(tmp.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.is_dir()
                    && !p.is_symlink()
                    && p != &victim
                    && !dirs.contains(p)
                    && all.contains(&p.display().to_string())
            })
            .unwrap_or_else(|| panic!("no new demo directory printed: {all}"));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is open to others: {mode:o}",
            dir.display()
        );
        assert!(dir.join("demo-offboarding.report.csv").exists());
        dirs.push(dir);
    }
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "wrote through the symlink"
    );
}
