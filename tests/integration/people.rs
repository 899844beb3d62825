//! People by email: rows that name their user by address, resolved by the simulator's
//! `users/lookup` once per address, confirmed by a device lookup before anything is deleted.

use crate::harness::*;
use ds100_offboard::report::status::Status;

/// One person of the tenant: the address and the credentials (one per device) they hold.
struct Person {
    email: &'static str,
    user: String,
    creds: Vec<Cred>,
}

/// `n_devices` credentials of user `k`, on devices and tokens numbered from `first`.
fn person(email: &'static str, k: u64, first: u64, n_devices: u64) -> Person {
    let user = uuid_like(k);
    let creds = (first..first + n_devices)
        .map(|i| {
            cred(
                &format!("{:012}", 14_020_000_000 + i),
                &format!("{:09}", 140_200_000 + i),
                &user,
            )
        })
        .collect();
    Person { email, user, creds }
}

/// Ann holds two devices, Bob, Carol and Dan one each.
fn tenant() -> (Person, Person, Person, Person) {
    (
        person("Ann.Leaver@Acme.com", 1, 0, 2),
        person("bob.stays@acme.com", 2, 10, 1),
        person("carol.gone@acme.com", 3, 20, 1),
        person("dan.empty@acme.com", 4, 30, 1),
    )
}

/// A simulator seeded with these people's credentials and addresses.
fn seeded(people: &[&Person]) -> Scenario {
    let mut text = String::from("tokenSerialNumber,deviceSerialNumber,userId,email\n");
    for p in people {
        for c in &p.creds {
            text.push_str(&format!(
                "{},{},{},{}\n",
                c.token, c.device, c.user, p.email
            ));
        }
    }
    let sc = Scenario::new();
    let seed = sc.file("seed.csv", &text);
    sc.sim_args(&["--seed", seed.to_str().unwrap()])
}

fn all_creds(people: &[&Person]) -> Vec<Cred> {
    sorted(people.iter().flat_map(|p| p.creds.clone()).collect())
}

#[test]
fn rows_naming_only_an_email_delete_that_users_credential_and_report_the_resolved_id() {
    let (ann, bob, carol, _) = tenant();
    let people = [&ann, &bob, &carol];
    let input = format!(
        "Name,E-mail,Device Serial Number\n\
         Ann,{ann_e},{ann_d0}\n\
         Carol,{carol_e},{carol_d}\n\
         Ann,{ann_e},{ann_d1}\n",
        ann_e = ann.email,
        ann_d0 = ann.creds[0].device,
        ann_d1 = ann.creds[1].device,
        carol_e = carol.email,
        carol_d = carol.creds[0].device,
    );
    let sc = seeded(&people).input(&input);
    let rows = sc.run(FAST).exits(0).rows(3);
    for (row, c, email) in [
        (1, &ann.creds[0], ann.email),
        (2, &carol.creds[0], carol.email),
        (3, &ann.creds[1], ann.email),
    ] {
        let r = &rows[&row];
        assert_eq!(r.status, Status::Deleted, "{r:?}");
        assert_eq!((&r.user, &r.token), (&c.user, &c.token), "{r:?}");
        assert_eq!(r.email, email, "the report keeps the input's address");
        assert_eq!(r.resolved, "tokenSerialNumber;userId", "{r:?}");
        assert_eq!(r.attempts, 1);
        assert!(r.error.is_empty(), "{r:?}");
    }
    // The first row naming an address spends the user lookup; every row its device lookup.
    let lookups: Vec<u32> = (1..=3).map(|i| rows[&i].lookups).collect();
    assert_eq!(lookups.iter().sum::<u32>(), 2 + 3, "{lookups:?}");
    let sim = sc.sim();
    assert_eq!(sim.store(), bob.creds, "only Bob's credential is left");
    assert_eq!(sim.stat("user_lookups"), 2, "one per address");
    assert_eq!(sim.stat("deleted"), 3);
}

#[test]
fn email_and_user_id_agreeing_delete_and_disagreeing_send_nothing_beyond_the_user_lookup() {
    let (ann, bob, carol, _) = tenant();
    let people = [&ann, &bob, &carol];
    let input = format!(
        "userId,email,deviceSerialNumber\n\
         {ann_u_upper},{ann_e},{ann_d0}\n\
         {ann_u},{carol_e},{carol_d}\n",
        ann_u = ann.user,
        ann_u_upper = ann.user.to_uppercase(),
        ann_e = ann.email,
        ann_d0 = ann.creds[0].device,
        carol_e = carol.email,
        carol_d = carol.creds[0].device,
    );
    let sc = seeded(&people).input(&input);
    let rows = sc
        .run_cmd()
        .args(FAST)
        .args(["--concurrency", "1"])
        .run()
        .exits(1)
        .rows(2);
    let agree = &rows[&1];
    assert_eq!(agree.status, Status::Deleted, "{agree:?}");
    assert_eq!(
        agree.resolved, "tokenSerialNumber",
        "the input named the user"
    );
    assert_eq!(agree.user, ann.user.to_uppercase(), "as the input wrote it");
    // Carol's address on a row naming Ann's id: which one the HR line means is not for the
    // tool to guess.
    let disagree = &rows[&2];
    assert_eq!(disagree.status, Status::Mismatch, "{disagree:?}");
    assert!(
        disagree.error.contains("disagree")
            && disagree.error.contains(&carol.user)
            && disagree.error.contains(&ann.user),
        "{}",
        disagree.error
    );
    assert_eq!((disagree.attempts, disagree.lookups), (0, 1));
    assert_eq!(
        disagree.lookup_status,
        Some(200),
        "the user lookup's answer"
    );
    assert_eq!(disagree.user, ann.user, "the input's userId");
    assert_eq!(disagree.resolved, "");
    let sim = sc.sim();
    // The check before the plan and row 1's device: no lookup of Carol's device, no DELETE.
    assert_eq!(sim.stat("lookups"), 2);
    assert_eq!((sim.stat("user_lookups"), sim.stat("deletes")), (2, 1));
    assert!(sim.store().contains(&carol.creds[0]));
}

#[test]
fn an_address_the_tenant_does_not_know_is_not_found_never_absent() {
    let (ann, bob, ..) = tenant();
    let people = [&ann, &bob];
    let input = format!(
        "email,deviceSerialNumber\nann.lever@acme.com,{}\n{},{}\n",
        ann.creds[0].device, bob.email, bob.creds[0].device
    );
    let sc = seeded(&people).input(&input);
    let ran = sc.run(FAST).exits(1);
    let rows = ran.rows(2);
    let typo = &rows[&1];
    assert_eq!(typo.status, Status::NotFound, "{typo:?}");
    assert!(
        typo.error
            .starts_with("no user with email ann.lever@acme.com"),
        "{}",
        typo.error
    );
    assert_eq!((typo.attempts, typo.lookup_status), (0, Some(404)));
    assert_eq!(typo.user, "", "no user was resolved");
    assert_eq!(rows[&2].status, Status::Deleted);
    let sim = sc.sim();
    assert!(
        sim.store().contains(&ann.creds[0]),
        "nothing deleted for the typo"
    );
    assert_eq!(sim.stat("user_lookup_not_found"), 1);
    assert!(
        !ran.stdout.contains("absent"),
        "a typo never reads as already gone: {}",
        ran.stdout
    );
}

#[test]
fn the_same_address_on_many_rows_is_looked_up_once() {
    // Three people with eight devices each; the first eight rows are one address in several
    // spellings, so eight workers resolve it at the same moment.
    let people: Vec<Person> = ["one@acme.com", "two@acme.com", "three@acme.com"]
        .into_iter()
        .zip(0u64..)
        .map(|(email, k)| person(email, 100 + k, 100 + 10 * k, 8))
        .collect();
    let refs: Vec<&Person> = people.iter().collect();
    let spellings = |e: &str, j: usize| match j % 3 {
        0 => e.to_string(),
        1 => e.to_uppercase(),
        _ => e.replace("acme", "ACME"),
    };
    let mut input = String::from("email,deviceSerialNumber\n");
    for p in &people {
        for (j, c) in p.creds.iter().enumerate() {
            input.push_str(&format!("{},{}\n", spellings(p.email, j), c.device));
        }
    }
    // Latency holds the first user lookup open while the other rows of its address arrive.
    let sc = seeded(&refs).sim_args(&["--latency", "40ms"]).input(&input);
    let rows = sc
        .run_cmd()
        .args(FAST)
        .args(["--concurrency", "8"])
        .run()
        .exits(0)
        .rows(24);
    assert!(rows.values().all(|r| r.status == Status::Deleted));
    let sim = sc.sim();
    assert_eq!(sim.stat("user_lookups"), 3, "{}", sim.stats());
    assert!(sim.store().is_empty());
    assert!(sim.stat("max_in_flight") >= 2, "rows ran side by side");
}

#[test]
fn an_address_in_another_case_finds_its_user() {
    let (ann, ..) = tenant();
    let input = format!(
        "emailAddress,deviceSerialNumber\nANN.LEAVER@acme.COM,{}\n",
        ann.creds[0].device
    );
    let sc = seeded(&[&ann]).input(&input);
    let rows = sc.run(FAST).exits(0).rows(1);
    assert_eq!(rows[&1].status, Status::Deleted, "{:?}", rows[&1]);
    assert_eq!(rows[&1].email, "ANN.LEAVER@acme.COM");
    assert_eq!(rows[&1].user, ann.user);
    assert_eq!(sc.sim().store(), vec![ann.creds[1].clone()]);
}

#[test]
fn an_email_whose_user_holds_another_device_is_a_mismatch_and_nothing_is_deleted() {
    let (ann, bob, _, dan) = tenant();
    let people = [&ann, &bob, &dan];
    // Ann's address with Bob's device; Ann's address with the token serial of her other
    // device.
    let input = format!(
        "mail,deviceSerialNumber,tokenSerialNumber\n{a},{bob_d},\n{a},{ann_d0},{ann_t1}\n",
        a = ann.email,
        bob_d = bob.creds[0].device,
        ann_d0 = ann.creds[0].device,
        ann_t1 = ann.creds[1].token,
    );
    let sc = seeded(&people).input(&input);
    let rows = sc.run(FAST).exits(1).rows(2);
    let r = &rows[&1];
    assert_eq!(r.status, Status::Mismatch, "{r:?}");
    assert!(
        r.error.starts_with(&format!(
            "device {} holds a credential of another user",
            bob.creds[0].device
        )) && r.error.contains(&bob.user),
        "{}",
        r.error
    );
    assert_eq!((r.attempts, r.http_status), (0, None), "no DELETE");
    assert_eq!(r.user, ann.user, "the user the address named");
    assert_eq!(r.resolved, "userId");
    assert_eq!(rows[&2].status, Status::Mismatch, "{:?}", rows[&2]);
    let sim = sc.sim();
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.store(), all_creds(&people));
}

#[test]
fn a_dry_run_names_the_resolved_user_and_the_plan_counts_email_rows() {
    let (ann, bob, _, dan) = tenant();
    let people = [&ann, &bob, &dan];
    let input = format!(
        "email,deviceSerialNumber\n{},{}\n{},{}\nnobody@acme.com,{}\n,{}\n",
        ann.email,
        ann.creds[0].device,
        dan.email,
        bob.creds[0].device,
        ann.creds[1].device,
        bob.creds[0].device,
    );
    let sc = seeded(&people).input(&input);
    let ran = sc.run(&["--dry-run", "--rate", "1000/s"]).exits(1);
    let rows = ran.rows(4);
    let r = &rows[&1];
    assert_eq!(r.status, Status::WouldDelete, "{r:?}");
    assert!(
        r.note.contains("Ann Leaver") && r.note.contains(&ann.user),
        "{}",
        r.note
    );
    assert_eq!(
        (r.user.as_str(), r.resolved.as_str()),
        (ann.user.as_str(), "tokenSerialNumber;userId")
    );
    // Dan's address with Bob's device; an unknown address; a row naming nobody.
    assert_eq!(rows[&2].status, Status::Mismatch);
    assert!(rows[&2].note.contains("Dan Empty"), "{}", rows[&2].note);
    assert_eq!(rows[&3].status, Status::NotFound);
    assert_eq!(rows[&4].status, Status::WouldDelete);
    assert!(
        ran.stderr.contains("3 rows name the user by email")
            && ran.stderr.contains("1 row names no user"),
        "{}",
        ran.stderr
    );
    let sim = sc.sim();
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.stat("user_lookups"), 3);
    assert_eq!(sim.store(), all_creds(&people));
}

#[test]
fn a_run_with_email_rows_resumes_and_its_addresses_are_part_of_the_rows_identity() {
    let people: Vec<Person> = ["p0@acme.com", "p1@acme.com", "p2@acme.com", "p3@acme.com"]
        .into_iter()
        .zip(0u64..)
        .map(|(email, k)| person(email, 200 + k, 200 + 10 * k, 3))
        .collect();
    let refs: Vec<&Person> = people.iter().collect();
    let mut input = String::from("deviceSerialNumber,email\n");
    for p in &people {
        for c in &p.creds {
            input.push_str(&format!("{},{}\n", c.device, p.email));
        }
    }
    // The first five DELETEs fail for good (one attempt each): five rows to resume.
    let sc = seeded(&refs)
        .faults(&["503,first=5,on=delete"])
        .input(&input);
    let first = sc
        .run_cmd()
        .args(FAST)
        .args(["--max-attempts", "1", "--concurrency", "1"])
        .run()
        .exits(1);
    assert_eq!(first.counts()["failed"], 5, "{:?}", first.counts());
    let sim = sc.sim();
    assert_eq!(sim.stat("user_lookups"), 4);

    // A row whose address changed is not the row the report holds: refused, nothing sent.
    let requests_before = sim.stat("requests");
    let changed = input.replacen("p0@acme.com", "p9@acme.com", 1);
    let other = sc.file("in.csv", &changed);
    let refused = sc.run_cmd().args(FAST).arg("--resume").run().exits(2);
    assert!(
        refused.stderr.contains("belongs to another input")
            && refused.stderr.contains("p9@acme.com"),
        "{}",
        refused.stderr
    );
    assert_eq!(sim.stat("requests"), requests_before);

    std::fs::write(&other, &input).unwrap();
    sc.run_cmd().args(FAST).arg("--resume").run().exits(0);
    let rows = latest_by_row(&sc.path("in.report.csv"), 12);
    for r in rows.values() {
        assert_eq!(r.status, Status::Deleted, "{r:?}");
        assert_eq!(r.resolved, "tokenSerialNumber;userId");
    }
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("deleted"), 12);
    // The five failed rows were the first five: p0's three and two of p1's.
    assert_eq!(sim.stat("user_lookups"), 4 + 2);
}

#[test]
fn a_gateway_404_page_on_users_lookup_is_failed_not_not_found() {
    let (ann, ..) = tenant();
    for fault in ["html404,every=1,on=users", "text404,every=1,on=users"] {
        let input = format!(
            "email,deviceSerialNumber\n{},{}\n",
            ann.email, ann.creds[0].device
        );
        let sc = seeded(&[&ann]).faults(&[fault]).input(&input);
        let rows = sc.run(FAST).exits(1).rows(1);
        let r = &rows[&1];
        assert_eq!(r.status, Status::Failed, "{fault}: {r:?}");
        assert!(r.error.contains("--base-url"), "{fault}: {}", r.error);
        assert_eq!(r.lookup_status, Some(404));
        let sim = sc.sim();
        assert_eq!(sim.stat("deletes"), 0, "{fault}");
        assert_eq!(sim.store(), ann.creds, "{fault}");
    }
}

#[test]
fn validate_checks_addresses_offline_and_says_what_only_a_run_can_tell() {
    let input = format!(
        "deviceSerialNumber,userPrincipalName,userId\n\
         D1,ann@acme.com,\n\
         D1,Ann@ACME.com,\n\
         D1,,{u}\n\
         D2,ann@acme,\n\
         D3,\"Ann <ann@acme.com>\",\n",
        u = uuid_like(1)
    );
    let sc = Scenario::new().input(&input);
    let ran = sc.validate(&[]).exits(1);
    let rows = ran.rows(5);
    use Status::*;
    let st: Vec<Status> = (1..=5).map(|i| rows[&i].status).collect();
    assert_eq!(st, [Valid, Duplicate, Valid, Invalid, Invalid]);
    assert!(
        rows[&1].note.contains("named by email"),
        "{}",
        rows[&1].note
    );
    assert!(rows[&4].error.contains("no dot"), "{}", rows[&4].error);
    assert_eq!(rows[&5].email, "Ann <ann@acme.com>");
    assert!(
        ran.stderr.contains("1 row names the user by email")
            && ran.stderr.contains("told apart only by a run"),
        "{}",
        ran.stderr
    );
}
