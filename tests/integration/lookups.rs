//! Lookups: resolving missing fields, explaining 404s, the dry-run audit and
//! verify-before-delete, against the simulator over HTTP.

use crate::harness::*;
use ds100_offboard::report::status::Status;

/// A tenant where device `shared` holds two credentials and the rest one each.
fn tenant() -> (Vec<Cred>, Cred, Cred) {
    let mut all = creds(6, 5000);
    let a = cred("014010009001", "140109999", &uuid_like(1));
    let b = cred("014010009002", "140109999", &uuid_like(2));
    all.push(a.clone());
    all.push(b.clone());
    all.sort();
    (all, a, b)
}

#[test]
fn a_404_is_explained_by_a_lookup_as_absent_or_mismatch() {
    let (all, _, _) = tenant();
    let c = creds(6, 5000);
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n\
         {t0},{d0},{u0}\n\
         014010000000,{d1},{u1}\n\
         {t2},{d2},{wrong}\n\
         099999999999,140000000,{u3}\n\
         {t4},{d4},{u3}\n",
        t0 = c[0].token,
        d0 = c[0].device,
        u0 = c[0].user,
        d1 = c[1].device,
        u1 = uuid_like(77),
        t2 = c[2].token,
        d2 = c[2].device,
        wrong = uuid_like(78),
        u3 = c[3].user,
        t4 = "014010000001",
        d4 = c[3].device,
    );
    let sc = Scenario::new().seed(&all).input(&text);
    let rows = sc.run(FAST).exits(1).rows(5);
    assert_eq!(rows[&1].status, Status::Deleted);
    // Device 1 holds a credential, but not this token nor for this user: nothing to delete.
    assert_eq!(rows[&2].status, Status::Absent, "{:?}", rows[&2]);
    assert_eq!((rows[&2].attempts, rows[&2].lookups), (1, 1));
    assert_eq!(
        (rows[&2].http_status, rows[&2].lookup_status),
        (Some(404), Some(200))
    );
    assert!(rows[&2].error.is_empty() && !rows[&2].note.is_empty());
    // The token exists on the device for another user: the leaver's data is wrong.
    assert_eq!(rows[&3].status, Status::Mismatch, "{:?}", rows[&3]);
    assert!(rows[&3].error.contains(&c[2].user), "{}", rows[&3].error);
    // A device the tenant does not know.
    assert_eq!(rows[&4].status, Status::Absent);
    // The user holds another token on that device: mismatch, and the credential survives.
    assert_eq!(rows[&5].status, Status::Mismatch, "{:?}", rows[&5]);
    assert!(rows[&5].error.contains(&c[3].token), "{}", rows[&5].error);
    assert_eq!(sc.sim().store().len(), all.len() - 1);
}

#[test]
fn missing_fields_are_resolved_with_zero_one_or_several_candidates() {
    let (all, a, b) = tenant();
    let c = creds(6, 5000);
    let text = format!(
        "deviceSerialNumber,userId,tokenSerialNumber\n\
         {d0},,\n\
         {shared},,\n\
         {shared},{ub},\n\
         140000001,,\n\
         {d1},,{t1}\n",
        d0 = c[0].device,
        shared = a.device,
        ub = b.user,
        d1 = c[1].device,
        t1 = c[1].token,
    );
    let sc = Scenario::new().seed(&all).input(&text);
    // One at a time: rows 2 and 3 name the same device, and row 2 is ambiguous only while
    // row 3's credential is still there.
    let rows = sc
        .run_cmd()
        .args(FAST)
        .args(["--concurrency", "1"])
        .run()
        .exits(1)
        .rows(5);
    // One candidate: resolved, deleted, and the report shows the resolved values.
    assert_eq!(rows[&1].status, Status::Deleted);
    assert_eq!(
        (rows[&1].token.as_str(), rows[&1].user.as_str()),
        (c[0].token.as_str(), c[0].user.as_str())
    );
    assert_eq!((rows[&1].attempts, rows[&1].lookups), (1, 1));
    assert_eq!(rows[&1].resolved, "tokenSerialNumber;userId");
    // Two candidates: ambiguous, both listed, nothing deleted.
    assert_eq!(rows[&2].status, Status::Ambiguous);
    assert!(
        rows[&2].error.contains(&a.token) && rows[&2].error.contains(&b.token),
        "{}",
        rows[&2].error
    );
    // The user narrows it to one.
    assert_eq!(rows[&3].status, Status::Deleted);
    assert_eq!(rows[&3].token, b.token);
    // No candidate.
    assert_eq!(rows[&4].status, Status::Absent);
    assert_eq!(rows[&5].status, Status::Deleted);
    assert_eq!(rows[&5].user, c[1].user);
    let left = sc.sim().store();
    assert!(left.contains(&a) && !left.contains(&b));
}

#[test]
fn a_dry_run_looks_everything_up_and_changes_nothing() {
    let (all, a, _) = tenant();
    let c = creds(6, 5000);
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n\
         {t0},{d0},{u0}\n\
         ,{shared},\n\
         {t1},{d1},{wrong}\n\
         014010000000,140000001,{u0}\n\
         bad!,{d0},{u0}\n",
        t0 = c[0].token,
        d0 = c[0].device,
        u0 = c[0].user,
        shared = a.device,
        t1 = c[1].token,
        d1 = c[1].device,
        wrong = uuid_like(99),
    );
    let sc = Scenario::new().seed(&all).input(&text);
    // No --yes needed, even without a terminal.
    let ran = sc.run(&["--dry-run", "--rate", "1000/s"]).exits(1);
    let rows = ran.rows(5);
    let sim = sc.sim();
    use Status::*;
    let st: Vec<Status> = (1..=5).map(|i| rows[&i].status).collect();
    assert_eq!(st, [WouldDelete, Ambiguous, Mismatch, Absent, Invalid]);
    assert_eq!(sim.store(), all);
    assert_eq!(sim.stat("deletes"), 0);
    // One per valid row, the check of the credentials before the plan, and row 4's device
    // (it holds nothing) once more with a `0` in front, in case a spreadsheet dropped its
    // leading zero.
    assert_eq!(sim.stat("lookups"), 6);
}

#[test]
fn verify_never_deletes_a_mismatching_row() {
    let (all, _, _) = tenant();
    let c = creds(6, 5000);
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n{},{},{}\n{},{},{}\n",
        c[0].token,
        c[0].device,
        c[0].user,
        c[1].token,
        c[1].device,
        uuid_like(5),
    );
    let sc = Scenario::new().seed(&all).input(&text);
    let rows = sc
        .run_cmd()
        .args(FAST)
        .arg("--verify")
        .run()
        .exits(1)
        .rows(2);
    let sim = sc.sim();
    assert_eq!(rows[&1].status, Status::Deleted);
    assert_eq!((rows[&1].attempts, rows[&1].lookups), (1, 1));
    assert_eq!(rows[&1].resolved, "", "the input named every field");
    assert_eq!(rows[&2].status, Status::Mismatch);
    assert_eq!((rows[&2].attempts, rows[&2].lookups), (0, 1));
    assert_eq!(rows[&2].http_status, None, "no DELETE was sent");
    assert_eq!(sim.stat("deletes"), 1, "only the verified row got a DELETE");
    assert!(sim.store().contains(&c[1]));
}

#[test]
fn a_lookup_answering_429_then_200_is_retried() {
    let c = creds(2, 5100);
    // The 2nd lookup is the row's: the 1st is the check of the credentials before the plan.
    let sc = Scenario::new()
        .seed(&c)
        .faults(&["429,nth=2,on=lookup"])
        .input(&format!("deviceSerialNumber\n{}\n", c[0].device));
    let rows = sc.run(FAST).exits(0).rows(1);
    assert_eq!(rows[&1].status, Status::Deleted);
    assert_eq!(
        (rows[&1].lookups, rows[&1].attempts),
        (2, 1),
        "429 lookup, 200 lookup, 200 delete"
    );
    assert_eq!(rows[&1].lookup_status, Some(200));
}

#[test]
fn a_lookup_answering_garbage_fails_the_row_with_the_reason() {
    let c = creds(2, 5200);
    // Every lookup but the first (the check before the plan, answered normally by `close`).
    let sc = Scenario::new()
        .seed(&c)
        .faults(&["close,nth=1,on=lookup", "garbage,every=1,on=lookup"])
        .input(&format!(
            "deviceSerialNumber\n{}\n{}\n",
            c[0].device, c[1].device
        ));
    let rows = sc.run(FAST).exits(1).rows(2);
    let sim = sc.sim();
    for r in rows.values() {
        assert_eq!(r.status, Status::Failed);
        assert!(r.error.contains("not JSON"), "{}", r.error);
    }
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.store().len(), 2);
}

#[test]
fn a_delete_that_timed_out_after_committing_ends_absent_not_failed() {
    let c = creds(2, 5300);
    let sc = Scenario::new()
        .seed(&c)
        .faults(&["slow-after-commit,nth=1,on=delete"])
        .sim_args(&["--slow-delay", "3s"])
        .input(&csv_of(&c));
    let rows = sc.run(ONE_AT_A_TIME_1S_TIMEOUT).exits(0).rows(2);
    let sim = sc.sim();
    assert_eq!(rows[&1].status, Status::Absent, "{:?}", rows[&1]);
    assert!(rows[&1].note.contains("no answer"), "{}", rows[&1].note);
    assert_eq!(
        (rows[&1].attempts, rows[&1].lookups),
        (2, 1),
        "timed-out DELETE, DELETE 404, lookup"
    );
    assert_eq!(rows[&2].status, Status::Deleted);
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("deleted"), 2);
}

/// An HR file whose spreadsheet turned token serials into numbers: `12345678` for the
/// tenant's `000012345678`. The DELETE answers 404 and the device holds no such token, yet the
/// credential the row meant is there and still works: `mismatch` (needs attention), not
/// `absent` (done), in a run and in a dry run, and nothing is deleted on a guess.
#[test]
fn a_token_serial_that_lost_its_leading_zeros_is_a_mismatch() {
    let held = cred("000012345678", "000140100080", &uuid_like(5));
    let sc = Scenario::new()
        .seed(std::slice::from_ref(&held))
        .input(&format!(
            "tokenSerialNumber,deviceSerialNumber\n12345678,{}\n",
            held.device
        ));
    for dry in [true, false] {
        let ran = if dry {
            sc.run(&["--dry-run", "--rate", "1000/s"])
        } else {
            sc.run(FAST)
        };
        let rows = ran.exits(1).rows(1);
        assert_eq!(
            rows[&1].status,
            Status::Mismatch,
            "dry {dry}: {:?}",
            rows[&1]
        );
        assert!(
            rows[&1].error.contains("000012345678") && rows[&1].error.contains("leading zeros"),
            "{}",
            rows[&1].error
        );
    }
    assert_eq!(sc.sim().store(), vec![held]);
}

/// A tenant that compares userId exactly: a row whose userId is upper-case gets a 404, the
/// lookup shows the credential under the lower-case spelling, and the DELETE is sent once more
/// with the tenant's own values; the report shows what was deleted.
#[test]
fn a_user_id_in_another_case_is_deleted_with_the_tenants_spelling() {
    let c = creds(2, 6100);
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n{},{},{}\n{},{},{}\n",
        c[0].token,
        c[0].device,
        c[0].user.to_uppercase(),
        c[1].token,
        c[1].device,
        c[1].user,
    );
    let sc = Scenario::new()
        .seed(&c)
        .sim_args(&["--exact-user-ids"])
        .input(&text);
    let rows = sc.run(FAST).exits(0).rows(2);
    let sim = sc.sim();
    assert_eq!(rows[&1].status, Status::Deleted, "{:?}", rows[&1]);
    assert_eq!(
        (rows[&1].attempts, rows[&1].lookups),
        (2, 1),
        "DELETE 404, lookup, DELETE: {:?}",
        rows[&1]
    );
    assert_eq!(
        rows[&1].user,
        c[0].user.to_uppercase(),
        "as the input wrote it"
    );
    assert!(
        rows[&1].note.contains(&c[0].user),
        "the tenant's spelling: {:?}",
        rows[&1]
    );
    assert_eq!((rows[&2].status, rows[&2].attempts), (Status::Deleted, 1));
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("deletes"), 3);
}
