//! Answers that are not the API's: a gateway's or proxy's 404 page, a base URL with an extra
//! path, a 200 whose body reports an error, and credentials the tenant refuses, found by one
//! read-only check before the plan. Also the permission warning for secret files.
//!
//! The real binary against the real simulator, or against a `Gateway`, a tiny loopback server
//! standing in for whatever sits in front of the tenant.

use std::net::TcpListener;

use crate::harness::*;
use ds100_offboard::report::status::Status;

const JSON: Option<&str> = Some("application/json");
const API_404: &str = r#"{"status":404,"error":"Not Found","message":"no such authenticator"}"#;
const NGINX_404: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
    <center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

fn is_lookup(s: &Seen) -> bool {
    s.method == "POST" && s.path == "/AdminInterface/restapi/v1/ds100/lookup"
}

// ---------------------------------------------------------------------------------------
// 1. A 404 that is not the API's never makes a row `absent`.

/// The simulator's HTML 404 page for one device's DELETE: that row fails, with the page's first
/// line and a hint, and no confirming lookup turns it into `absent`; the others are deleted.
#[test]
fn an_html_404_page_for_a_delete_fails_the_row_instead_of_absent() {
    let all = creds(3, 31_000);
    let fault = format!("html404,every=1,on=delete,device={}", all[1].device);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&[&fault])
        .input(&csv_of(&all));
    let rows = sc.run(FAST).exits(1).rows(3);
    let r = &rows[&2];
    assert_eq!(r.status, Status::Failed, "{r:?}");
    assert_eq!((r.http_status, r.lookups), (Some(404), 0), "{r:?}");
    for want in ["404", "HTML page", "<html>", "404 Not Found", "--base-url"] {
        assert!(r.error.contains(want), "{want}: {}", r.error);
    }
    assert_eq!(rows[&1].status, Status::Deleted);
    assert_eq!(rows[&3].status, Status::Deleted);
    assert_eq!(
        sc.sim().store(),
        vec![all[1].clone()],
        "its credential still works"
    );
}

/// A plain-text 404 from the lookup is not "the device holds nothing": a row that needs a
/// lookup fails, a DELETE's 404 it was meant to confirm stays unexplained (`not_found`), and a
/// dry run does not call it `absent` either.
#[test]
fn a_text_404_from_the_lookup_is_not_a_device_that_holds_nothing() {
    let held = creds(3, 32_000);
    // Row 2's credential is held but the row has no token (a lookup resolves it); row 3's
    // device is unknown to the tenant (its DELETE answers the API's 404).
    let gone = creds(1, 32_100).remove(0);
    let fault = format!(
        "text404,every=1,on=lookup,device={}|{}",
        held[1].device, gone.device
    );
    let text = format!(
        "tokenSerialNumber,deviceSerialNumber,userId\n{},{},{}\n,{},{}\n{},{},{}\n",
        held[0].token,
        held[0].device,
        held[0].user,
        held[1].device,
        held[1].user,
        gone.token,
        gone.device,
        gone.user
    );
    let sc = Scenario::new().seed(&held).faults(&[&fault]).input(&text);
    let rows = sc.run(FAST).exits(1).rows(3);
    assert_eq!(rows[&1].status, Status::Deleted, "{:?}", rows[&1]);
    let r = &rows[&2];
    assert_eq!(r.status, Status::Failed, "{r:?}");
    assert!(
        r.error.contains("404 page not found") && r.error.contains("--base-url"),
        "{}",
        r.error
    );
    assert_eq!(r.attempts, 0, "nothing was deleted on a guess");
    let r = &rows[&3];
    assert_eq!(r.status, Status::NotFound, "{r:?}");
    assert!(r.error.contains("404 page not found"), "{}", r.error);
    assert!(sc.sim().store().contains(&held[1]));

    // The same in a dry run: checked, not absent (row 1's credential was left alone above).
    let dry = sc.file("dry.csv", &csv_of(&[held[2].clone(), held[1].clone()]));
    let ran = sc
        .run_cmd()
        .input(&dry)
        .args(FAST)
        .arg("--dry-run")
        .run()
        .exits(1);
    let rows = ran.rows(2);
    assert_eq!(rows[&1].status, Status::WouldDelete);
    assert_eq!(rows[&2].status, Status::Failed, "{:?}", rows[&2]);
}

/// Whatever a gateway in front of the tenant answers with a 404 (an HTML page with or without
/// its Content-Type, plain text, XML, JSON under an HTML Content-Type), no row ends `absent`:
/// each fails with the first line of what came back. The API's own JSON 404 still confirms.
#[test]
fn no_gateway_404_variant_makes_a_row_absent() {
    let variants: Vec<(Option<&'static str>, &'static str, &'static str)> = vec![
        (Some("text/html"), NGINX_404, "<html>"),
        (None, NGINX_404, "<html>"),
        (
            Some("text/html; charset=iso-8859-1"),
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>",
            "DOCTYPE",
        ),
        (Some("text/plain"), "Not Found", "Not Found"),
        (None, "404 page not found\n", "404 page not found"),
        (
            Some("application/json"),
            "<html><body>Not Found</body></html>",
            "Not Found",
        ),
        (Some("text/html"), r#"{"message":"not found"}"#, "not found"),
        (
            Some("application/xml"),
            "<?xml version=\"1.0\"?><error>NoSuchKey</error>",
            "NoSuchKey",
        ),
        (Some("text/plain"), "404", "404"),
    ];
    let n = variants.len();
    let all = creds(n + 1, 33_000);
    let probe = all[0].device.clone();
    let by_device: Vec<(String, Option<&'static str>, &'static str)> = all[1..]
        .iter()
        .zip(&variants)
        .map(|(c, (ct, body, _))| (c.device.clone(), *ct, *body))
        .collect();
    let gw = Gateway::start(move |s| {
        if s.device == probe {
            // The check's lookup and row 1: the API itself.
            return if is_lookup(s) {
                reply(404, JSON, API_404)
            } else {
                reply(200, None, "")
            };
        }
        match by_device.iter().find(|(d, _, _)| *d == s.device) {
            Some((_, ct, body)) => reply(404, *ct, body),
            None => reply(400, JSON, r#"{"error":"unexpected"}"#),
        }
    });
    let sc = Scenario::new().input(&csv_of(&all));
    let rows = sc
        .run_cmd()
        .base_url(&gw.url)
        .args(FAST)
        .run()
        .exits(1)
        .rows(n as u64 + 1);
    assert_eq!(rows[&1].status, Status::Deleted, "{:?}", rows[&1]);
    for (i, (ct, _, want)) in variants.iter().enumerate() {
        let r = &rows[&(i as u64 + 2)];
        assert_eq!(r.status, Status::Failed, "{ct:?} {want}: {r:?}");
        assert_eq!(r.http_status, Some(404));
        assert!(
            r.error.contains(want) && r.error.contains("--base-url"),
            "{ct:?}: {}",
            r.error
        );
    }
    // No foreign 404 was ever "confirmed" by a lookup.
    let lookups = gw.seen().iter().filter(|s| is_lookup(s)).count();
    assert_eq!(lookups, 1, "only the check looked up: {:?}", gw.seen());
}

/// The API's own 404s (JSON or empty) still end `absent` through the confirming lookup.
#[test]
fn the_apis_own_404s_still_confirm_absent() {
    let all = creds(2, 34_000);
    let empty_device = all[1].device.clone();
    let gw = Gateway::start(move |s| {
        if s.device == empty_device {
            reply(404, None, "")
        } else {
            reply(404, JSON, API_404)
        }
    });
    let sc = Scenario::new().input(&csv_of(&all));
    let rows = sc
        .run_cmd()
        .base_url(&gw.url)
        .args(FAST)
        .run()
        .exits(0)
        .rows(2);
    for r in rows.values() {
        assert_eq!(r.status, Status::Absent, "{r:?}");
        assert_eq!((r.http_status, r.lookup_status), (Some(404), Some(404)));
    }
}

/// A gateway answering its 404 page to everything (the base URL points at the wrong thing) is
/// found by the check before the plan: exit 2, one lookup sent, no report, no row `absent`.
#[test]
fn a_gateway_404_page_to_everything_stops_the_run_before_the_plan() {
    for (ct, body) in [
        (Some("text/html"), NGINX_404),
        (None, NGINX_404),
        (Some("text/plain"), "404 page not found"),
    ] {
        let gw = Gateway::start(move |_| reply(404, ct, body));
        let sc = Scenario::new().input(&csv_of(&creds(3, 35_000)));
        for dry in [false, true] {
            let mut cmd = sc.run_cmd().base_url(&gw.url).args(FAST);
            if dry {
                cmd = cmd.arg("--dry-run");
            }
            let err = &cmd.run().exits(2).stderr;
            assert!(
                err.contains("did not answer like the DS100 API") && err.contains("--base-url"),
                "{err}"
            );
            assert!(err.contains(body.lines().next().unwrap().trim()), "{err}");
            assert!(!err.contains("Plan"), "stopped before the plan: {err}");
        }
        assert_eq!(gw.seen().len(), 2, "one lookup per run: {:?}", gw.seen());
        assert!(gw.seen().iter().all(is_lookup));
        assert!(!sc.path("in.report.csv").exists());
        assert!(!sc.path("in.dry-run.csv").exists());
    }
}

/// A base URL whose path is not the origin or the admin REST path is refused before anything
/// is sent, with the accepted forms in the message; the accepted forms all work.
#[test]
fn a_base_url_with_another_path_is_refused_before_anything_is_sent() {
    let all = creds(2, 36_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let sim = sc.sim();
    for path in [
        "/console",
        "/console/",
        "/AdminInterface",
        "/AdminInterface/restapi/v2",
        "/AdminInterface/restapi/v1/ds100",
        "/AdminInterface/restapi/v1/ds100/delete/otp",
        "/rsa/AdminInterface/restapi/v1",
        "/gateway",
        "//",
    ] {
        let base = format!("{}{path}", sim.url);
        for dry in [false, true] {
            let mut cmd = sc.run_cmd().base_url(&base).args(FAST);
            if dry {
                cmd = cmd.arg("--dry-run");
            }
            let err = cmd.run().exits(2).stderr;
            assert!(
                err.contains("Accepted forms")
                    && err.contains("/AdminInterface/restapi/v1")
                    && err.contains("(the origin)"),
                "{path}: {err}"
            );
        }
        // DS100_BASE_URL is checked the same way.
        let ran = sc
            .run_cmd()
            .no_base_url()
            .env("DS100_BASE_URL", &base)
            .args(FAST)
            .run()
            .exits(2);
        assert!(ran.stderr.contains("Accepted forms"), "{path}");
    }
    assert_eq!(sim.stat("requests"), 0, "nothing was sent");
    assert!(!sc.path("in.report.csv").exists());
    for path in [
        "/",
        "/AdminInterface/restapi",
        "/AdminInterface/restapi/",
        "/adminInterface/RESTAPI/v1/",
    ] {
        let base = format!("{}{path}", sim.url);
        sc.run_cmd()
            .base_url(&base)
            .args(FAST)
            .args(["--dry-run", "--overwrite"])
            .run()
            .exits(0);
    }
}

// ---------------------------------------------------------------------------------------
// 2. A 2xx is a deletion only when nothing in it says otherwise.

/// The simulator's 200 with a JSON error body (nothing done): `failed`, the error quoted.
#[test]
fn a_200_with_a_json_error_body_is_failed_not_deleted() {
    let all = creds(3, 37_000);
    let fault = format!("error200,every=1,on=delete,device={}", all[2].device);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&[&fault])
        .input(&csv_of(&all));
    let rows = sc.run(FAST).exits(1).rows(3);
    let r = &rows[&3];
    assert_eq!(
        (r.status, r.http_status),
        (Status::Failed, Some(200)),
        "{r:?}"
    );
    assert!(
        r.error.contains("errorCode") && r.error.contains("E_SIM_INJECTED"),
        "{}",
        r.error
    );
    assert!(r.note.is_empty());
    assert_eq!(
        sc.sim().store(),
        vec![all[2].clone()],
        "its credential still works"
    );
}

/// Error bodies in the shapes APIs and gateways use are failures; a 202 is not a deletion
/// either; a body that reports no error is kept, one short line, in the `note` of the
/// `deleted` row.
#[test]
fn a_2xx_body_reporting_an_error_fails_and_any_other_body_is_noted() {
    let failing: Vec<(u16, Option<&'static str>, &'static str, &'static str)> = vec![
        (
            200,
            JSON,
            r#"{"status":"error","message":"credential locked"}"#,
            "credential locked",
        ),
        (
            200,
            JSON,
            r#"{"errorCode":"E1001","errorMessage":"Token not found"}"#,
            "E1001",
        ),
        (
            200,
            JSON,
            r#"{"error":"invalid_request"}"#,
            "invalid_request",
        ),
        (200, JSON, r#"{"errorMessage":"boom"}"#, "boom"),
        (
            200,
            JSON,
            r#"{"success":false,"message":"not deleted"}"#,
            "not deleted",
        ),
        (
            200,
            JSON,
            r#"{"status":500,"message":"backend down"}"#,
            "backend down",
        ),
        (200, JSON, r#"{"errors":[{"code":"X9"}]}"#, "X9"),
        (
            200,
            Some("text/plain"),
            "Error: credential not deleted",
            "credential not deleted",
        ),
        (
            200,
            None,
            "<!DOCTYPE html><html><title>Sign in</title>",
            "Sign in",
        ),
        (202, None, "", "202"),
    ];
    let n = failing.len();
    let all = creds(n + 1, 38_000);
    let probe = all[0].device.clone();
    let by_device: Vec<(String, u16, Option<&'static str>, &'static str)> = all[1..]
        .iter()
        .zip(&failing)
        .map(|(c, (st, ct, body, _))| (c.device.clone(), *st, *ct, *body))
        .collect();
    let gw = Gateway::start(move |s| {
        if is_lookup(s) {
            return reply(404, JSON, API_404);
        }
        if s.device == probe {
            return reply(
                200,
                JSON,
                "{\"message\":\"credential deleted\",\n\"id\":\"42\"}",
            );
        }
        match by_device.iter().find(|(d, ..)| *d == s.device) {
            Some((_, st, ct, body)) => reply(*st, *ct, body),
            None => reply(400, JSON, r#"{"error":"unexpected"}"#),
        }
    });
    let sc = Scenario::new().input(&csv_of(&all));
    let rows = sc
        .run_cmd()
        .base_url(&gw.url)
        .args(FAST)
        .run()
        .exits(1)
        .rows(n as u64 + 1);
    let r = &rows[&1];
    assert_eq!(r.status, Status::Deleted, "{r:?}");
    assert!(r.error.is_empty());
    assert!(
        r.note.contains("credential deleted") && !r.note.contains('\n'),
        "{}",
        r.note
    );
    for (i, (st, _, body, want)) in failing.iter().enumerate() {
        let r = &rows[&(i as u64 + 2)];
        assert_eq!(
            (r.status, r.http_status),
            (Status::Failed, Some(*st)),
            "{body}: {r:?}"
        );
        assert!(r.error.contains(want), "{body}: {}", r.error);
    }
}

/// A lookup that answers 200 with an error envelope (`{"status":"error","errors":[]}`, whose
/// one empty array reads like an empty list) does not make a row `absent`.
#[test]
fn a_lookup_200_reporting_an_error_is_not_an_empty_device() {
    let all = creds(2, 39_000);
    let probe = all[0].device.clone();
    let gw = Gateway::start(move |s| {
        if s.device == probe {
            reply(200, JSON, "[]")
        } else {
            reply(200, JSON, r#"{"status":"error","errors":[]}"#)
        }
    });
    let sc = Scenario::new().input(&csv_of(&all));
    let rows = sc
        .run_cmd()
        .base_url(&gw.url)
        .args(FAST)
        .arg("--dry-run")
        .run()
        .exits(1)
        .rows(2);
    assert_eq!(rows[&1].status, Status::Absent, "{:?}", rows[&1]);
    let r = &rows[&2];
    assert_eq!(r.status, Status::Failed, "{r:?}");
    assert!(r.error.contains("status"), "{}", r.error);
}

// ---------------------------------------------------------------------------------------
// 3. The credentials are checked before the plan.

/// A ready token the tenant refuses stops `run` and `run --dry-run` before the plan, exit 2,
/// after one lookup, naming what to check, without the token, without a report.
#[test]
fn a_refused_ready_token_stops_before_the_plan() {
    let all = creds(3, 40_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let sim = sc.sim();
    let wrong = "expired-token-9b1c7d";
    let token_file = sc.file("token.txt", wrong);
    set_mode(&token_file, 0o600);
    let mut n = 0;
    for dry in [false, true] {
        for from_file in [false, true] {
            let mut cmd = sc.run_cmd();
            if from_file {
                cmd = cmd.no_token().arg("--token-file").arg(&token_file);
            } else {
                cmd = cmd.token(wrong);
            }
            cmd = cmd.args(FAST);
            if dry {
                cmd = cmd.arg("--dry-run");
            }
            let ran = cmd.run().exits(2);
            n += 1;
            let err = &ran.stderr;
            assert!(
                err.contains("refused the bearer token") && err.contains("403"),
                "{err}"
            );
            assert!(
                err.contains("expired") && err.contains("--key-file"),
                "{err}"
            );
            assert!(!err.contains("Plan"), "stopped before the plan: {err}");
            assert!(!err.contains(wrong), "the token never shows: {err}");
            assert!(!ran.stdout.contains(wrong));
            assert_eq!(sim.stat("lookups"), n, "one read-only lookup per run");
        }
    }
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.store().len(), 3);
    assert!(!sc.path("in.report.csv").exists());
    assert!(!sc.path("in.dry-run.csv").exists());
}

/// Tokens minted from a key file the tenant does not trust: refused even after a fresh one,
/// exit 2 before the plan, saying what to check about the key.
#[test]
fn a_refused_key_file_stops_before_the_plan() {
    let all = creds(2, 41_000);
    let sc = Scenario::new();
    let trusted = private_copy(sc.dir(), "test-only-key-pkcs1.json");
    let other = private_copy(sc.dir(), "test-only-other-key.json");
    let sc = sc.seed(&all).sim_key(&trusted).input(&csv_of(&all));
    let sim = sc.sim();
    for dry in [false, true] {
        let mut cmd = sc.run_cmd().key_file(&other).args(FAST);
        if dry {
            cmd = cmd.arg("--dry-run");
        }
        let err = cmd.run().exits(2).stderr;
        assert!(
            err.contains("refused the tokens minted from the key file")
                && err.contains("a fresh one included")
                && err.contains("clock"),
            "{err}"
        );
        assert!(!err.contains("Plan"), "{err}");
        assert!(
            !err.contains("PRIVATE KEY") && !err.contains("eyJ"),
            "{err}"
        );
    }
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.stat("lookups"), 4, "two tokens tried per run");
    // The trusted key goes through the check and deletes.
    sc.run_cmd().key_file(&trusted).args(FAST).run().exits(0);
    assert!(sim.store().is_empty());
}

/// Something that is not the API answering the check (a sign-in page answering 200) stops the
/// run before the plan and says so.
#[test]
fn a_sign_in_page_answering_the_check_stops_before_the_plan() {
    let all = creds(2, 42_000);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["html200,every=1"])
        .input(&csv_of(&all));
    let err = sc.run(FAST).exits(2).stderr;
    let sim = sc.sim();
    assert!(
        err.contains("did not answer like the DS100 API") && err.contains("HTML page"),
        "{err}"
    );
    assert!(err.contains("Sign in"), "the page is named: {err}");
    assert_eq!(sim.stat("requests"), 1);
    assert_eq!(sim.stat("deletes"), 0);
}

/// The check goes through the run's retries: two 503s are ridden out and the run goes on; the
/// summary counts the check's requests with the run's.
#[test]
fn the_check_is_retried_like_any_request_and_counted_in_the_summary() {
    let all = creds(4, 43_000);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["503,first=2"])
        .input(&csv_of(&all));
    let ran = sc.run_cmd().args(FAST).summary().run().exits(0);
    let sim = sc.sim();
    assert!(sim.store().is_empty());
    assert_eq!(sim.stat("lookups"), 3, "the check, retried twice");
    assert_eq!(sim.stat("deletes"), 4);
    let s = ran.summary();
    assert_eq!(s["invocation"]["requests_sent"], 7, "{s}");
    let rows = ran.rows(4);
    assert!(rows.values().all(|r| r.attempts == 1 && r.lookups == 0));
}

/// A tenant that cannot be reached (5xx on every try, or nothing listening) stops the run
/// before the plan with exit 2 and "cannot reach the tenant"; nothing is deleted.
#[test]
fn an_unreachable_tenant_stops_the_run_before_the_plan() {
    let all = creds(2, 44_000);
    let sc = Scenario::new()
        .seed(&all)
        .faults(&["503,every=1,on=lookup"])
        .input(&csv_of(&all));
    let err = sc
        .run_cmd()
        .args(FAST)
        .args(["--max-attempts", "3"])
        .run()
        .exits(2)
        .stderr;
    let sim = sc.sim();
    assert!(
        err.contains("cannot reach the tenant") && err.contains("503"),
        "{err}"
    );
    assert_eq!(sim.stat("lookups"), 3, "retried up to --max-attempts");
    assert_eq!(sim.stat("deletes"), 0);
    assert_eq!(sim.store().len(), 2);

    // Nothing listening at all.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let ran = sc
        .run_cmd()
        .base_url(&closed)
        .args(FAST)
        .args(["--max-attempts", "2", "--overwrite"])
        .run()
        .exits(2);
    assert!(
        ran.stderr.contains("cannot reach the tenant"),
        "{}",
        ran.stderr
    );
    assert!(!ran.has_report());
}

/// The check's device unknown to the tenant (the API's 404) still proves the credentials were
/// accepted: the run goes on.
#[test]
fn an_unknown_device_in_the_check_still_lets_the_run_go_on() {
    let held = creds(2, 45_000);
    let gone = creds(1, 45_100);
    let mut rows = gone.clone();
    rows.extend(held.iter().cloned());
    let sc = Scenario::new().seed(&held).input(&csv_of(&rows));
    let report = sc.run(FAST).exits(0).rows(3);
    assert_eq!(report[&1].status, Status::Absent);
    assert_eq!(report[&2].status, Status::Deleted);
    assert!(sc.sim().store().is_empty());
}

// ---------------------------------------------------------------------------------------
// 4. Secret files readable by anyone but their owner are warned about.

/// A token file or key file its group (or everyone) can read draws a warning with the
/// `chmod 600 PATH` that fixes it; one only its owner can read draws none.
#[cfg(unix)]
#[test]
fn group_readable_secret_files_are_warned_about_with_the_fix() {
    let all = creds(1, 46_000);
    let sc = Scenario::new().seed(&all).input(&csv_of(&all));
    let token_file = sc.file("token.txt", TOKEN);
    let key = private_copy(sc.dir(), "test-only-key-pkcs1.json");
    for (mode, who) in [
        (0o640, Some("group")),
        (0o660, Some("group")),
        (0o644, Some("every user")),
        (0o604, Some("every user")),
        (0o600, None),
        (0o400, None),
    ] {
        set_mode(&token_file, mode);
        let err = sc
            .run_cmd()
            .no_token()
            .arg("--token-file")
            .arg(&token_file)
            .args(FAST)
            .args(["--dry-run", "--overwrite"])
            .run()
            .exits(0)
            .stderr;
        let fix = format!("chmod 600 {}", token_file.display());
        match who {
            Some(who) => assert!(err.contains(who) && err.contains(&fix), "{mode:o}: {err}"),
            None => assert!(!err.contains("chmod"), "{mode:o}: {err}"),
        }

        set_mode(&key, mode);
        let err = ds100("token")
            .arg("--key-file")
            .arg(&key)
            .run()
            .exits(0)
            .stderr;
        let fix = format!("chmod 600 {}", key.display());
        match who {
            Some(who) => assert!(err.contains(who) && err.contains(&fix), "{mode:o}: {err}"),
            None => assert!(!err.contains("chmod"), "{mode:o}: {err}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. The simulator's new faults are documented where users look.

#[test]
fn sim_help_and_errors_list_the_new_faults() {
    let help = ds100("sim").arg("--help").run().exits(0).stdout;
    for kind in ["html404", "text404", "error200", "device="] {
        assert!(help.contains(kind), "{kind}: {help}");
    }
    let err = ds100("sim")
        .args(["--fault", "html404,every=1,device="])
        .run()
        .exits(2)
        .stderr;
    assert!(
        err.contains("device=SERIAL") && err.contains("error200"),
        "{err}"
    );
}
