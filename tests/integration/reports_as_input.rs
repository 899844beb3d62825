//! Adversarial review: paths where the tool could change a credential the row did not name,
//! report a success that did not happen, or lose a row, each reproduced through the binary
//! against the simulator (or a loopback server standing in for a tenant or a gateway).

use crate::harness::*;
use ds100_offboard::report::status::Status;

const ANN: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";

/// Ann holds device 140200001, Bob 140200002; both have an address.
fn ann_and_bob() -> Scenario {
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId,email\n\
         014020000001,140200001,{ANN},ann@acme.com\n\
         014020000002,140200002,{BOB},bob@acme.com\n"
    );
    let sc = Scenario::new();
    let seed = sc.file("seed.csv", &text);
    sc.sim_args(&["--seed", seed.to_str().unwrap()])
}

/// An email row whose user lookup failed ends with an empty userId in the report. "Retry what
/// failed" from that report must still name the user by the address: read without it, the row
/// names no user and deletes whatever its device holds — here Bob's credential, for a row about
/// Ann.
#[test]
fn retrying_an_email_row_from_its_report_keeps_the_address() {
    let sc = ann_and_bob()
        .faults(&["400,first=1,on=users"])
        .input("email,deviceSerialNumber\nann@acme.com,140200002\n");
    let first = sc.run(FAST).exits(1);
    let row = &first.rows(1)[&1];
    assert_eq!(row.status, Status::Failed, "{row:?}");
    assert!(row.user.is_empty(), "{row:?}");

    let report = first.report_path().to_path_buf();
    let again = sc
        .run_cmd()
        .input(&report)
        .args(FAST)
        .args(["--only-status", "failed", "--report"])
        .arg(sc.path("retry.csv"))
        .run()
        .exits(1);
    let row = &again.rows(1)[&1];
    assert_eq!(row.status, Status::Mismatch, "{row:?}");
    assert_eq!(row.email, "ann@acme.com", "{row:?}");
    assert_eq!(row.attempts, 0, "nothing deleted: {row:?}");
    assert_eq!(sc.sim().store().len(), 2, "Bob's credential is still there");
}

/// A report says what happened on the tenant it was made against. Read as the input of a run
/// against another tenant (a rehearsal's dry run against `sim`, then production), its resolved
/// values name the rehearsal's credentials: each row ends `absent` (ok, exit 0) while the
/// device's credential on this tenant still works; and `--only-status disabled` of a
/// rehearsal's disable would "undo" on production what production never did. Refused, exit 2,
/// nothing sent.
#[test]
fn a_report_of_another_tenant_is_not_an_input() {
    // The rehearsal: the device holds Ann's credential; production: Bob's.
    let rehearsal = creds(1, 71_000);
    let mut production = rehearsal.clone();
    production[0].token = "099999999999".into();
    production[0].user = uuid_like(71_999);
    let sc = Scenario::new()
        .seed(&production)
        .input(&format!("deviceSerialNumber\n{}\n", rehearsal[0].device));
    let rehearsing = Scenario::new().seed(&rehearsal);
    let other = rehearsing.sim();
    let dry = sc
        .run_cmd()
        .base_url(&other.url)
        .args(FAST)
        .arg("--dry-run")
        .run()
        .exits(0);
    assert_eq!(dry.rows(1)[&1].status, Status::WouldDelete);

    let ran = sc
        .run_cmd()
        .input(dry.report_path())
        .args(FAST)
        .args(["--only-status", "would_delete", "--report"])
        .arg(sc.path("prod.csv"))
        .run()
        .exits(2);
    assert!(
        ran.stderr.contains("another tenant") && ran.stderr.contains(&other.url),
        "{}",
        ran.stderr
    );
    assert_eq!(sc.sim().stat("deleted"), 0);
    assert_eq!(sc.sim().store(), production);
}

/// An undo restores what the job changed, and only that. A credential disabled before the
/// job (a security hold, a lost device) that the disable found "already disabled" was not
/// changed by it: `enable REPORT --only-status disabled` leaves it out and says so, instead of
/// enabling a token someone else disabled. Deleting later still takes every disabled row.
#[test]
fn an_undo_leaves_alone_what_the_disable_found_already_disabled() {
    let all = creds(3, 72_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let earlier = sc.file("earlier.csv", &csv_of(&all[1..2]));
    sc.cmd("disable").input(&earlier).args(FAST).run().exits(0);

    let disable = sc.cmd("disable").args(FAST).run().exits(0);
    let rows = disable.rows(3);
    assert!(
        rows.values().all(|r| r.status == Status::Disabled),
        "{rows:?}"
    );
    assert!(
        rows[&2].note.starts_with("was already disabled"),
        "{rows:?}"
    );
    let report = disable.report_path().to_path_buf();

    let undo = sc
        .cmd("enable")
        .input(&report)
        .args(FAST)
        .args(["--only-status", "disabled"])
        .run()
        .exits(0);
    let undone = undo.report();
    let mut numbers: Vec<u64> = undone.iter().map(|r| r.row).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 3], "{undone:?}");
    assert!(undone.iter().all(|r| r.status == Status::Enabled));
    assert!(
        undo.stderr.contains("was already disabled"),
        "the plan says why a row is left out: {}",
        undo.stderr
    );
    let store = sc.sim().store_with_status();
    let still: Vec<&Cred> = store
        .iter()
        .filter(|(_, s)| s == "Disabled")
        .map(|(c, _)| c)
        .collect();
    assert_eq!(
        still,
        [&all[1]],
        "the credential disabled before the job stays so"
    );

    // Delete later takes every row the disable left disabled, the earlier one too.
    let later = sc
        .run_cmd()
        .input(&report)
        .args(FAST)
        .args(["--only-status", "disabled"])
        .run()
        .exits(0);
    assert_eq!(later.report().len(), 3);
    assert!(sc.sim().store().is_empty());
}

/// A report changed after the tool wrote it — saved again by a spreadsheet that kept the
/// header but dropped the serials' leading zeros and wrote CRLF, or edited by hand — no longer
/// says what the tool did. Read as input it is refused (exit 2, nothing sent), by the SHA-256
/// the sidecar records for the report as each command left it; the report as the tool wrote
/// it still reads.
#[test]
fn a_report_changed_after_the_tool_wrote_it_is_not_an_input() {
    let all = creds(3, 73_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let disable = sc.cmd("disable").args(FAST).run().exits(0);
    let report = disable.report_path().to_path_buf();
    let written = std::fs::read_to_string(&report).unwrap();

    let resaved: String = written
        .lines()
        .map(|line| {
            let cells: Vec<String> = line
                .split(',')
                .map(|c| {
                    if c.len() > 1 && c.bytes().all(|b| b.is_ascii_digit()) {
                        c.trim_start_matches('0').to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            cells.join(",") + "\r\n"
        })
        .collect();
    assert_ne!(resaved, written);
    std::fs::write(&report, &resaved).unwrap();
    let requests = sc.sim().stat("requests");
    let ran = sc
        .run_cmd()
        .input(&report)
        .args(FAST)
        .args(["--only-status", "disabled"])
        .run()
        .exits(2);
    assert!(ran.stderr.contains("changed after"), "{}", ran.stderr);
    assert_eq!(sc.sim().stat("requests"), requests, "nothing sent");
    assert_eq!(sc.sim().store().len(), 3);

    std::fs::write(&report, &written).unwrap();
    sc.run_cmd()
        .input(&report)
        .args(FAST)
        .args(["--only-status", "disabled"])
        .run()
        .exits(0);
    assert!(sc.sim().store().is_empty());
}
