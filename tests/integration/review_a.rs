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
