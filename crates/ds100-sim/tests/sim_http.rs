//! The simulator over real HTTP on 127.0.0.1: the API's semantics, auth, rate limit, faults,
//! idle timeout and the admin endpoints, driven by reqwest (and raw TCP where reqwest hides
//! what the socket saw). Request bodies are written with the API's field names
//! (`wire_body`), not through the simulator's own types, so a misspelt field on its side
//! fails here.

use std::time::{Duration, Instant, SystemTime};

use ds100_sim::{
    self as sim, Credential, DELETE_PATH, DISABLE_PATH, ENABLE_PATH, LOOKUP_PATH, LookupRecord,
    PatchRecord, RetryAfterStyle, SimAuth, SimConfig, SimHandle, SimStats, USERS_LOOKUP_PATH, User,
    generated_credentials,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "test-token";

fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(5))
}

fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    // reqwest is built without a TLS provider of its own (the tool hands it its rustls
    // configuration); a client built from defaults takes the process's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("building the test client")
}

async fn start(cfg: SimConfig) -> SimHandle {
    sim::start(cfg).await.expect("starting the simulator")
}

/// A simulator with `n` generated credentials and the given tweaks.
async fn start_with(n: u64, tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut cfg = SimConfig {
        generate: n,
        ..SimConfig::default()
    };
    tweak(&mut cfg);
    start(cfg).await
}

/// The DELETE body naming `cred`, with the API's field names.
fn wire_body(cred: &Credential) -> Value {
    json!({
        "tokenSerialNumber": cred.token_serial_number,
        "deviceSerialNumber": cred.device_serial_number,
        "userId": cred.user_id,
    })
}

fn generated(i: u64) -> Credential {
    generated_credentials(i + 1).nth(i as usize).unwrap()
}

async fn delete(c: &reqwest::Client, h: &SimHandle, cred: &Credential) -> reqwest::Response {
    try_delete(c, h, cred).await.expect("DELETE answered")
}

async fn try_delete(
    c: &reqwest::Client,
    h: &SimHandle,
    cred: &Credential,
) -> reqwest::Result<reqwest::Response> {
    c.delete(format!("{}{DELETE_PATH}", h.url()))
        .bearer_auth(TOKEN)
        .json(&wire_body(cred))
        .send()
        .await
}

async fn try_lookup(
    c: &reqwest::Client,
    h: &SimHandle,
    device: &str,
) -> reqwest::Result<reqwest::Response> {
    c.post(format!("{}{LOOKUP_PATH}", h.url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "deviceSerialNumber": device }))
        .send()
        .await
}

async fn lookup(c: &reqwest::Client, h: &SimHandle, device: &str) -> reqwest::Response {
    try_lookup(c, h, device).await.expect("lookup answered")
}

fn content_type(resp: &reqwest::Response) -> &str {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn json_error(resp: reqwest::Response) -> Value {
    assert_eq!(content_type(&resp), "application/json");
    let body: Value = resp.json().await.expect("a JSON error body");
    assert!(body["message"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn delete_hits_once_then_404s_and_counts_the_repeat() {
    let h = start_with(3, |_| {}).await;
    let c = client();
    let target = generated(1);

    let resp = delete(&c, &h, &target).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(content_type(&resp), "application/json");
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(h.store().len(), 2);
    assert!(!h.store().contains(&target));

    let mut wrong_user = generated(2);
    wrong_user.user_id = "87927fb7-e185-4c33-c7e3-8e077675973c".into();
    let resp = delete(&c, &h, &wrong_user).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    json_error(resp).await;

    let resp = delete(&c, &h, &target).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // userId is UUID hex: case does not matter. Serials are exact.
    let mut upper = generated(0);
    upper.user_id.make_ascii_uppercase();
    assert_eq!(delete(&c, &h, &upper).await.status(), StatusCode::OK);

    let stats = h.stats();
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.deletes, 4);
    assert_eq!(stats.deleted, 2);
    assert_eq!(stats.delete_not_found, 2);
    assert_eq!(stats.deletes_of_already_deleted, 1);
    assert_eq!(stats.by_status.get(&200), Some(&2));
    assert_eq!(stats.by_status.get(&404), Some(&2));
    assert_eq!(stats.store_size, 1);
    assert_eq!(h.store(), vec![generated(2)]);
    h.shutdown().await;
}

/// `PATCH path` with `{deviceSerialNumber, userId}` of `cred`, under the API's field names.
async fn patch(
    c: &reqwest::Client,
    h: &SimHandle,
    path: &str,
    cred: &Credential,
) -> reqwest::Response {
    c.patch(format!("{}{path}", h.url()))
        .bearer_auth(TOKEN)
        .json(&json!({
            "deviceSerialNumber": cred.device_serial_number,
            "userId": cred.user_id,
        }))
        .send()
        .await
        .expect("PATCH answered")
}

/// The `tokenStatus` a lookup lists for `cred`.
async fn listed_status(c: &reqwest::Client, h: &SimHandle, cred: &Credential) -> String {
    let records: Vec<LookupRecord> = lookup(c, h, &cred.device_serial_number)
        .await
        .json()
        .await
        .unwrap();
    records
        .into_iter()
        .find(|r| r.token_serial_number == cred.token_serial_number)
        .map(|r| r.token_status)
        .expect("the credential is listed")
}

#[tokio::test]
async fn disable_and_enable_change_the_status_lookup_and_store_show() {
    let h = start_with(3, |_| {}).await;
    let c = client();
    let target = generated(1);
    assert_eq!(listed_status(&c, &h, &target).await, "Enabled");

    let resp = patch(&c, &h, DISABLE_PATH, &target).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(content_type(&resp), "application/json");
    let raw: Value = resp.json().await.unwrap();
    for field in [
        "userId",
        "tokenSerialNumber",
        "tokenStatus",
        "tokenStatusChangedAt",
        "tokenStatusChangedBy",
        "deviceSerialNumber",
    ] {
        assert!(raw[0].get(field).is_some(), "missing {field}: {raw}");
    }
    let records: Vec<PatchRecord> = serde_json::from_value(raw).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].token_serial_number, target.token_serial_number);
    assert_eq!(records[0].token_status, "Disabled");
    // Still listed, disabled; the store says so too; nothing else changed.
    assert_eq!(listed_status(&c, &h, &target).await, "Disabled");
    assert_eq!(listed_status(&c, &h, &generated(0)).await, "Enabled");
    let store = c
        .get(format!("{}/__sim/store", h.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        store.contains(&format!("{},Disabled", target.user_id)),
        "{store}"
    );
    assert_eq!(store.matches(",Enabled").count(), 2, "{store}");

    // Again: the same answer (already disabled). Then enable; a wrong user is a 404.
    let again: Vec<PatchRecord> = patch(&c, &h, DISABLE_PATH, &target)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, records);
    let resp = patch(&c, &h, ENABLE_PATH, &target).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(listed_status(&c, &h, &target).await, "Enabled");
    let mut wrong_user = generated(2);
    wrong_user.user_id = "87927fb7-e185-4c33-c7e3-8e077675973c".into();
    let resp = patch(&c, &h, DISABLE_PATH, &wrong_user).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    json_error(resp).await;
    // Wrong methods are refused; a disabled credential can still be deleted.
    let resp = c
        .post(format!("{}{DISABLE_PATH}", h.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        patch(&c, &h, DISABLE_PATH, &target).await.status(),
        StatusCode::OK
    );
    assert_eq!(delete(&c, &h, &target).await.status(), StatusCode::OK);
    assert!(!h.store().contains(&target));

    let stats = h.stats();
    assert_eq!((stats.disables, stats.enables), (4, 1));
    assert_eq!((stats.disabled, stats.enabled), (3, 1));
    assert_eq!(stats.patch_not_found, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn patch_faults_answer_another_credential_and_change_nothing() {
    let h = start_with(2, |cfg| {
        cfg.faults = vec![
            "other-token,nth=1".parse().unwrap(),
            "other-user,nth=2".parse().unwrap(),
            "503,nth=1,on=enable".parse().unwrap(),
        ];
    })
    .await;
    let c = client();
    let target = generated(0);
    let records: Vec<PatchRecord> = patch(&c, &h, DISABLE_PATH, &target)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_ne!(records[0].token_serial_number, target.token_serial_number);
    assert_eq!(records[0].user_id, target.user_id);
    let records: Vec<PatchRecord> = patch(&c, &h, DISABLE_PATH, &target)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(records[0].token_serial_number, target.token_serial_number);
    assert_ne!(records[0].user_id, target.user_id);
    // Nothing changed; a lookup is never answered by these faults.
    assert_eq!(listed_status(&c, &h, &target).await, "Enabled");
    let resp = patch(&c, &h, ENABLE_PATH, &target).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        patch(&c, &h, DISABLE_PATH, &target).await.status(),
        StatusCode::OK
    );
    assert_eq!(listed_status(&c, &h, &target).await, "Disabled");
    h.shutdown().await;
}

#[tokio::test]
async fn lookup_answers_every_record_on_the_device_or_404() {
    let shared_device = "140100080";
    let seeded = vec![
        Credential {
            token_serial_number: "014010008038".into(),
            device_serial_number: shared_device.into(),
            user_id: "87927fb7-e185-4c33-c7e3-8e077675973c".into(),
        },
        Credential {
            token_serial_number: "014010008035".into(),
            device_serial_number: shared_device.into(),
            user_id: "26c1e3d6-b31c-803e-cf7f-bdbe7687a72b".into(),
        },
    ];
    let h = start(SimConfig {
        credentials: seeded.clone(),
        generate: 2,
        ..SimConfig::default()
    })
    .await;
    let c = client();

    let resp = lookup(&c, &h, shared_device).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(content_type(&resp), "application/json");
    let raw: Value = resp.json().await.unwrap();
    let records = raw.as_array().expect("a JSON array");
    assert_eq!(records.len(), 2);
    for field in [
        "id",
        "name",
        "userId",
        "deviceType",
        "registeredDate",
        "tokenSerialNumber",
        "updatedAt",
        "tokenState",
        "expiryDate",
        "tokenStatus",
        "tokenStatusReason",
        "assignedAt",
        "assignedBy",
    ] {
        assert!(records[0].get(field).is_some(), "missing {field}: {raw}");
    }
    assert!(records[0]["expiryDate"].is_null());
    let records: Vec<LookupRecord> = serde_json::from_value(raw.clone()).unwrap();
    let mut tokens: Vec<_> = records
        .iter()
        .map(|r| r.token_serial_number.clone())
        .collect();
    tokens.sort();
    assert_eq!(tokens, ["014010008035", "014010008038"]);
    assert!(records.iter().all(|r| r.device_type == "SecurID DS100"));

    // Deterministic: the same device answers the same records.
    let again: Value = lookup(&c, &h, shared_device).await.json().await.unwrap();
    assert_eq!(again, raw);

    let one = lookup(&c, &h, &generated(1).device_serial_number).await;
    assert_eq!(one.status(), StatusCode::OK);
    let one: Vec<LookupRecord> = one.json().await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].user_id, generated(1).user_id);

    let none = lookup(&c, &h, "999999999").await;
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    json_error(none).await;

    let stats = h.stats();
    assert_eq!(
        (stats.lookups, stats.lookups_found, stats.lookup_not_found),
        (4, 3, 1)
    );
    assert_eq!(stats.store_size, 4);
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_json_error() {
    let h = start_with(1, |_| {}).await;
    let c = client();
    let url = format!("{}{DELETE_PATH}", h.url());
    let send = |body: Option<&'static str>| {
        let mut req = c
            .delete(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json");
        if let Some(body) = body {
            req = req.body(body);
        }
        req.send()
    };
    for body in [
        None,
        Some(""),
        Some("not json"),
        Some(r#"{"tokenSerialNumber":"014010000000","deviceSerialNumber":"040000000"}"#),
        Some(r#"{"tokenSerialNumber":14010000000,"deviceSerialNumber":"040000000","userId":"x"}"#),
        Some(r#"["014010000000","040000000","x"]"#),
    ] {
        let resp = send(body).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body:?}");
        json_error(resp).await;
    }
    let resp = c
        .post(format!("{}{LOOKUP_PATH}", h.url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "deviceSerialNumber": 40000000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    json_error(resp).await;

    assert_eq!(h.stats().bad_requests, 7);
    assert_eq!(h.stats().store_size, 1, "nothing done on a 400");
}

#[tokio::test]
async fn missing_or_wrong_bearer_is_403() {
    let h = start_with(2, |cfg| cfg.auth = SimAuth::Token(TOKEN.into())).await;
    let c = client();
    let url = format!("{}{DELETE_PATH}", h.url());
    let target = generated(0);

    let resp = c
        .delete(&url)
        .json(&wire_body(&target))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    json_error(resp).await;

    let resp = c
        .delete(&url)
        .bearer_auth("not-the-token")
        .json(&wire_body(&target))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = resp.text().await.unwrap();
    assert!(
        !body.contains("not-the-token") && !body.contains(TOKEN),
        "{body}"
    );

    let resp = c
        .delete(&url)
        .header("authorization", format!("Basic {TOKEN}"))
        .json(&wire_body(&target))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let resp = c
        .post(format!("{}{LOOKUP_PATH}", h.url()))
        .json(&json!({"deviceSerialNumber": "040000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    assert_eq!(h.store().len(), 2, "nothing deleted without auth");
    assert_eq!(delete(&c, &h, &target).await.status(), StatusCode::OK);
    assert_eq!(h.stats().forbidden, 4);

    // Any non-empty bearer is enough by default.
    let open = start_with(1, |_| {}).await;
    let resp = c
        .delete(format!("{}{DELETE_PATH}", open.url()))
        .bearer_auth("anything")
        .json(&wire_body(&generated(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Two requests back to back against a bucket of one: the second is throttled.
async fn throttled_response(style: RetryAfterStyle) -> reqwest::Response {
    let h = start_with(2, |cfg| {
        cfg.rate_limit_per_second = Some(0.5);
        cfg.retry_after = style;
    })
    .await;
    let c = client();
    assert_eq!(delete(&c, &h, &generated(0)).await.status(), StatusCode::OK);
    let resp = delete(&c, &h, &generated(1)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let stats = h.stats();
    assert_eq!((stats.throttled, stats.deleted), (1, 1));
    assert_eq!(
        h.store(),
        vec![generated(1)],
        "a throttled delete does nothing"
    );
    resp
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_in_each_style() {
    let resp = throttled_response(RetryAfterStyle::Seconds).await;
    // 0.5/s, bucket of one: the next token comes about 2 s after the first request.
    assert_eq!(resp.headers()["retry-after"], "2");
    json_error(resp).await;

    let before = SystemTime::now();
    let resp = throttled_response(RetryAfterStyle::HttpDate).await;
    let date = resp.headers()["retry-after"].to_str().unwrap().to_string();
    let at = httpdate::parse_http_date(&date).expect("an HTTP-date");
    assert!(at >= before + Duration::from_secs(1), "{date}");
    assert!(at <= SystemTime::now() + Duration::from_secs(4), "{date}");

    let resp = throttled_response(RetryAfterStyle::Omit).await;
    assert!(resp.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn rate_limit_lets_a_burst_through_then_refills() {
    let h = start_with(0, |cfg| {
        // Slow refill, so that a loaded machine cannot refill the bucket mid-burst.
        cfg.rate_limit_per_second = Some(1.0);
        cfg.rate_limit_burst = Some(5);
    })
    .await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(lookup(&c, &h, "1").await.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 404, 404, 429, 429]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(lookup(&c, &h, "1").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn status_fault_every_second_request() {
    let h = start_with(0, |cfg| cfg.faults = vec!["503,every=2".parse().unwrap()]).await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let resp = lookup(&c, &h, "1").await;
        statuses.push(resp.status().as_u16());
        assert_eq!(content_type(&resp), "application/json");
    }
    assert_eq!(statuses, [404, 503, 404, 503]);
    assert_eq!(h.stats().faults_injected, 2);
}

#[tokio::test]
async fn faults_can_target_one_endpoint_and_429_faults_force_their_style() {
    let h = start_with(2, |cfg| {
        cfg.faults = vec![
            "429-date,first=1,on=delete".parse().unwrap(),
            "429-none,nth=2,on=delete".parse().unwrap(),
            "html500,first=1,on=lookup".parse().unwrap(),
            "close,nth=2,on=lookup".parse().unwrap(),
        ];
    })
    .await;
    let c = client();

    let resp = delete(&c, &h, &generated(0)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(httpdate::parse_http_date(resp.headers()["retry-after"].to_str().unwrap()).is_ok());
    let resp = delete(&c, &h, &generated(0)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(delete(&c, &h, &generated(0)).await.status(), StatusCode::OK);

    let resp = lookup(&c, &h, "040000001").await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(content_type(&resp).starts_with("text/html"));
    assert!(resp.text().await.unwrap().starts_with("<html>"));
    let resp = lookup(&c, &h, "040000001").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["connection"], "close");
    assert_eq!(lookup(&c, &h, "040000001").await.status(), StatusCode::OK);
    let stats = h.stats();
    assert_eq!(stats.faults_injected, 4);
    assert_eq!(stats.throttled, 0, "fault 429s are not the rate limit's");
}

#[tokio::test]
async fn reset_drops_the_connection_with_a_tcp_reset() {
    let h = start_with(1, |cfg| cfg.faults = vec!["reset,nth=1".parse().unwrap()]).await;

    // Raw TCP, to see that the socket really gets a RST and no answer.
    let mut tcp = TcpStream::connect(h.addr()).await.unwrap();
    let body = r#"{"deviceSerialNumber":"040000000"}"#;
    let request = format!(
        "POST {LOOKUP_PATH} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .expect("the server acts within 3 s");
    match read {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        Ok(n) => panic!("expected a reset, read {n} bytes"),
    }

    // The next request is served normally; nothing was done for the reset one.
    let resp = lookup(&client(), &h, "040000000").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let stats = h.stats();
    assert_eq!((stats.resets, stats.lookups_found), (1, 1));
    assert_eq!(stats.by_status.values().sum::<u64>(), 1);
}

#[tokio::test]
async fn hangup_closes_the_connection_without_an_answer_or_a_reset() {
    let h = start_with(1, |cfg| cfg.faults = vec!["hangup,nth=1".parse().unwrap()]).await;

    // Raw TCP: the socket sees end-of-file (a FIN), not a reset and not an answer.
    let mut tcp = TcpStream::connect(h.addr()).await.unwrap();
    let body =
        r#"{"tokenSerialNumber":"014010000000","deviceSerialNumber":"040000000","userId":"x"}"#;
    let request = format!(
        "DELETE {DELETE_PATH} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .expect("the server acts within 3 s")
        .expect("a plain close, not a reset");
    assert_eq!(n, 0, "no answer");

    // Nothing was done: the store is whole and the next request is served.
    assert_eq!(h.store().len(), 1);
    let resp = delete(&client(), &h, &generated(0)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let stats = h.stats();
    assert_eq!((stats.hangups, stats.resets, stats.deleted), (1, 0, 1));
    assert_eq!(stats.deletes, 2);
}

#[tokio::test]
async fn close_answers_then_closes_the_connection() {
    let h = start_with(2, |cfg| cfg.faults = vec!["close,nth=1".parse().unwrap()]).await;
    let mut tcp = TcpStream::connect(h.addr()).await.unwrap();
    let body = r#"{"deviceSerialNumber":"040000000"}"#;
    let request = format!(
        "POST {LOOKUP_PATH} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let answer = read_response(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .expect("closed after the answer")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

/// Every fault kind under a `rate=` schedule fires on the same requests for the same seed, and
/// on other requests for another seed; `every=` does not depend on the seed at all.
#[tokio::test]
async fn rate_and_every_schedules_repeat_for_every_kind() {
    async fn fired(fault: &str, seed: u64) -> Vec<u64> {
        let h = start_with(0, |cfg| {
            cfg.faults = vec![fault.parse().unwrap()];
            cfg.fault_seed = seed;
            cfg.slow_delay = Duration::from_millis(1);
        })
        .await;
        let c = client_with_timeout(Duration::from_secs(5));
        let mut out = Vec::new();
        for i in 0..40u64 {
            // Lookups of an unknown device: 404 unless a fault fires.
            let fault_fired = match try_lookup(&c, &h, "1").await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    status != StatusCode::NOT_FOUND || !body.starts_with(b"{")
                }
                Err(_) => true,
            };
            if fault_fired {
                out.push(i);
            }
        }
        let n_faults = h.stats().faults_injected;
        let mut n_detected = out.len() as u64;
        // `slow` and `close` answer normally: the fault shows only in the count.
        if fault.starts_with("slow") || fault.starts_with("close") {
            n_detected = n_faults;
            out = vec![n_faults];
        }
        assert_eq!(n_detected, n_faults, "{fault}");
        out
    }
    for kind in [
        "500",
        "502",
        "503",
        "504",
        "429",
        "429-date",
        "429-none",
        "html500",
        "reset",
        "hangup",
        "reset-after-commit",
        "slow",
        "slow-after-commit",
        "garbage",
        "truncated",
        "close",
    ] {
        let by_rate = format!("{kind},rate=0.3");
        let a = fired(&by_rate, 11).await;
        assert_eq!(a, fired(&by_rate, 11).await, "{by_rate} is not repeatable");
        assert!(!a.is_empty() && a.len() < 40, "{by_rate}: {a:?}");
        if !(kind.starts_with("slow") || kind == "close") {
            assert_ne!(a, fired(&by_rate, 12).await, "{by_rate} ignores the seed");
            let every = format!("{kind},every=4");
            assert_eq!(
                fired(&every, 1).await,
                (0..40).filter(|i| i % 4 == 3).collect::<Vec<_>>()
            );
        }
    }
}

#[tokio::test]
async fn reset_after_commit_deletes_but_the_client_sees_an_error() {
    let h = start_with(2, |cfg| {
        cfg.faults = vec!["reset-after-commit,nth=1,on=delete".parse().unwrap()]
    })
    .await;
    let c = client();
    let target = generated(0);
    let err = try_delete(&c, &h, &target)
        .await
        .expect_err("no answer after a reset");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(!h.store().contains(&target), "the delete was committed");

    // The client's retry finds nothing, and the simulator notices the repeat.
    assert_eq!(
        delete(&c, &h, &target).await.status(),
        StatusCode::NOT_FOUND
    );
    let stats = h.stats();
    assert_eq!(stats.deleted, 1);
    assert_eq!(stats.resets, 1);
    assert_eq!(stats.deletes_of_already_deleted, 1);
}

#[tokio::test]
async fn slow_fault_outlasts_a_short_client_timeout() {
    let h = start_with(1, |cfg| {
        cfg.faults = vec!["slow,nth=1".parse().unwrap()];
        cfg.slow_delay = Duration::from_millis(800);
    })
    .await;
    let impatient = client_with_timeout(Duration::from_millis(150));
    let started = Instant::now();
    let err = try_lookup(&impatient, &h, "040000000")
        .await
        .expect_err("timed out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(700));
    let resp = try_lookup(&impatient, &h, "040000000").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_after_commit_deletes_before_sleeping() {
    let h = start_with(1, |cfg| {
        cfg.faults = vec!["slow-after-commit,nth=1".parse().unwrap()];
        cfg.slow_delay = Duration::from_millis(800);
    })
    .await;
    let impatient = client_with_timeout(Duration::from_millis(150));
    let err = try_delete(&impatient, &h, &generated(0))
        .await
        .expect_err("timed out");
    assert!(err.is_timeout(), "{err:?}");
    // The commit happens before the sleep; on a loaded machine the client may time out
    // before the request is even handled, so wait for it (bounded) rather than race it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !h.store().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(h.store().is_empty());
}

#[tokio::test]
async fn garbage_and_truncated_bodies_on_lookup() {
    let h = start_with(2, |cfg| {
        cfg.faults = vec![
            "garbage,nth=1,on=lookup".parse().unwrap(),
            "truncated,nth=2,on=lookup".parse().unwrap(),
        ]
    })
    .await;
    let c = client();

    let resp = lookup(&c, &h, "040000000").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    let resp = lookup(&c, &h, "040000000").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.bytes().await.unwrap();
    assert!(body.starts_with(b"[{"), "{body:?}");
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    // Deletes are not targeted; later lookups are whole again.
    assert_eq!(delete(&c, &h, &generated(1)).await.status(), StatusCode::OK);
    let whole: Vec<LookupRecord> = lookup(&c, &h, "040000000").await.json().await.unwrap();
    assert_eq!(whole.len(), 1);
}

#[tokio::test]
async fn error_rate_is_seeded_and_repeatable() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let h = start_with(0, |cfg| {
            cfg.error_rate = 0.5;
            cfg.fault_seed = seed;
        })
        .await;
        let c = client();
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(lookup(&c, &h, "1").await.status().as_u16());
        }
        out
    }
    let a = statuses(7).await;
    assert_eq!(a, statuses(7).await);
    assert_ne!(a, statuses(8).await);
    let n_500 = a.iter().filter(|&&s| s == 500).count();
    assert!((8..=32).contains(&n_500), "{a:?}");
    assert!(a.iter().all(|&s| s == 500 || s == 404));

    let all = start_with(1, |cfg| cfg.error_rate = 1.0).await;
    let resp = delete(&client(), &all, &generated(0)).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    json_error(resp).await;
    assert_eq!(all.store().len(), 1, "a 500 does nothing");
    assert_eq!(all.stats().errors_injected, 1);
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body) off a raw socket.
async fn read_response(tcp: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed mid-response");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let idle = Duration::from_millis(300);
    let h = start_with(0, |cfg| cfg.idle_timeout = Some(idle)).await;
    let mut tcp = TcpStream::connect(h.addr()).await.unwrap();
    let request = "GET /__sim/stats HTTP/1.1\r\nhost: x\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.unwrap();
    assert!(read_response(&mut tcp).await.starts_with("HTTP/1.1 200"));
    // Still open for a second request right away: keep-alive works.
    tcp.write_all(request.as_bytes()).await.unwrap();
    assert!(read_response(&mut tcp).await.starts_with("HTTP/1.1 200"));

    let went_idle = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .expect("the server closes an idle connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without another answer");
    assert!(went_idle.elapsed() >= idle - Duration::from_millis(50));
}

#[tokio::test]
async fn admin_endpoints_show_store_stats_and_arrivals() {
    let h = start_with(3, |cfg| cfg.record_arrivals = true).await;
    let c = client();
    assert_eq!(delete(&c, &h, &generated(1)).await.status(), StatusCode::OK);
    lookup(&c, &h, "nothing-here").await;

    let resp = c
        .get(format!("{}/__sim/store", h.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(content_type(&resp).starts_with("text/csv"));
    let csv = resp.text().await.unwrap();
    let expected: String =
        std::iter::once("tokenSerialNumber,deviceSerialNumber,userId,status".to_string())
            .chain([generated(0), generated(2)].iter().map(|c| {
                format!(
                    "{},{},{},Enabled",
                    c.token_serial_number, c.device_serial_number, c.user_id
                )
            }))
            .map(|line| line + "\n")
            .collect();
    assert_eq!(csv, expected);

    let stats: SimStats = c
        .get(format!("{}/__sim/stats", h.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.deleted, 1);
    assert_eq!(stats.store_size, 2);
    assert_eq!(stats.by_status.get(&200), Some(&1));
    assert_eq!(stats.by_status.get(&404), Some(&1));
    assert_eq!(stats.max_in_flight, 1);
    assert!(stats.connections >= 1);

    let arrivals: Vec<u64> = c
        .get(format!("{}/__sim/arrivals", h.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(arrivals.len(), 2, "admin requests are not API arrivals");
    assert_eq!(arrivals, h.arrivals());
    assert!(arrivals[0] <= arrivals[1]);

    // Without record_arrivals nothing is kept.
    let quiet = start_with(1, |_| {}).await;
    lookup(&c, &quiet, "040000000").await;
    let arrivals: Vec<u64> = c
        .get(format!("{}/__sim/arrivals", quiet.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(arrivals.is_empty());

    // Unknown paths and wrong methods are JSON errors, not API requests.
    let resp = c.get(format!("{}/nope", h.url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c
        .get(format!("{}{DELETE_PATH}", h.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "DELETE");
    assert_eq!(h.stats().requests, 2);
}

#[tokio::test]
async fn concurrent_deletes_each_succeed_exactly_once() {
    let n = 400;
    let h = start_with(n, |_| {}).await;
    let c = client();
    let mut tasks = tokio::task::JoinSet::new();
    // Every credential is deleted twice, concurrently: exactly one of each pair wins.
    for cred in generated_credentials(n).chain(generated_credentials(n)) {
        let c = c.clone();
        let url = format!("{}{DELETE_PATH}", h.url());
        tasks.spawn(async move {
            c.delete(url)
                .bearer_auth(TOKEN)
                .json(&wire_body(&cred))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        if done.unwrap().unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, n);
    let stats = h.stats();
    assert_eq!(stats.deleted, n);
    assert_eq!(stats.deletes_of_already_deleted, n);
    assert_eq!(stats.store_size, 0);
    assert_eq!(stats.in_flight, 0);
    assert!(stats.max_in_flight >= 1);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let h = start_with(0, |_| {}).await;
    let addr = h.addr();
    assert!(h.url().starts_with("http://127.0.0.1:"));
    h.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn bad_config_is_refused() {
    let err = sim::start(SimConfig {
        error_rate: 1.5,
        ..SimConfig::default()
    })
    .await
    .expect_err("error rate above 1");
    assert!(err.to_string().contains("0 to 1"), "{err}");
    assert!(
        sim::start(SimConfig {
            rate_limit_per_second: Some(1.0),
            rate_limit_burst: Some(0),
            ..SimConfig::default()
        })
        .await
        .is_err()
    );
}

// ---- the OAuth token endpoint ------------------------------------------------------------

const OAUTH_CLIENT: &str = "client-1";
const EC_JWK: &[u8] = include_bytes!("../../../tests/fixtures/test-only-oauth-ec.jwk.json");
const EC_PKCS8: &[u8] = include_bytes!("../../../tests/fixtures/test-only-oauth-ec-pkcs8.pem");

/// A client assertion for the test EC key, addressed to `h`'s token endpoint.
fn assertion(h: &SimHandle, jti: &str) -> String {
    jwt_ring::install();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(EC_PKCS8).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("test-only-ec-kid-52ad".into());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": OAUTH_CLIENT, "sub": OAUTH_CLIENT, "aud": format!("{}/oauth/token", h.url()),
        "iat": now, "exp": now + 300, "jti": jti,
    });
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// `POST /oauth/token` for `scope` (already form-encoded) with a fresh assertion.
async fn fetch_token(c: &reqwest::Client, h: &SimHandle, jti: &str, scope: &str) -> Value {
    let body = format!(
        "grant_type=client_credentials&client_id={OAUTH_CLIENT}&scope={scope}\
         &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
         &client_assertion={}",
        assertion(h, jti)
    );
    let resp = c
        .post(format!("{}{}", h.url(), sim::TOKEN_PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

/// The API takes only the tokens the token endpoint issued, each endpoint checking its scope;
/// the token endpoint itself needs no bearer token; elsewhere it is not served.
#[tokio::test]
async fn oauth_tokens_are_the_only_ones_the_api_takes_each_with_its_scope() {
    let mut policy = sim::OAuthPolicy::new(EC_JWK, OAUTH_CLIENT).unwrap();
    policy.token_ttl = Duration::from_secs(120);
    let h = start_with(3, |cfg| cfg.auth = SimAuth::OAuth(Box::new(policy))).await;
    let c = client();
    let read = fetch_token(&c, &h, "jti-read", "rsa.authenticator.ds100.read").await;
    assert_eq!(read["token_type"], "Bearer");
    assert_eq!(read["expires_in"], 120);
    assert_eq!(read["scope"], "rsa.authenticator.ds100.read");
    let read = read["access_token"].as_str().unwrap().to_string();
    let both = fetch_token(
        &c,
        &h,
        "jti-both",
        "rsa.authenticator.ds100.read+rsa.authenticator.ds100.delete",
    )
    .await;
    let both = both["access_token"].as_str().unwrap().to_string();
    let cred = generated(0);
    let lookup = |token: String| {
        let c = c.clone();
        let url = format!("{}{LOOKUP_PATH}", h.url());
        let device = cred.device_serial_number.clone();
        async move {
            c.post(url)
                .bearer_auth(token)
                .json(&json!({"deviceSerialNumber": device}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let delete_with = |token: String| {
        let c = c.clone();
        let url = format!("{}{DELETE_PATH}", h.url());
        let body = wire_body(&cred);
        async move {
            let resp = c
                .delete(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    assert_eq!(lookup(read.clone()).await, StatusCode::OK);
    assert_eq!(lookup("made-up-token".into()).await, StatusCode::FORBIDDEN);
    let (status, body) = delete_with(read.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.contains("rsa.authenticator.ds100.delete") && !body.contains(&read),
        "{body}"
    );
    assert_eq!(delete_with(both).await.0, StatusCode::OK);
    let stats = h.stats();
    assert_eq!((stats.deleted, stats.oauth_tokens_issued), (1, 2));
    assert_eq!(stats.oauth_scope_denied, 1);
    assert_eq!(stats.forbidden, 2);
    assert_eq!(
        stats.oauth_scopes_requested.keys().collect::<Vec<_>>(),
        [
            "rsa.authenticator.ds100.read",
            "rsa.authenticator.ds100.read rsa.authenticator.ds100.delete"
        ]
    );

    // Without a token endpoint configured, /oauth/token is not served.
    let plain = start_with(0, |_| {}).await;
    let resp = c
        .post(format!("{}{}", plain.url(), sim::TOKEN_PATH))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

async fn user_lookup(c: &reqwest::Client, h: &SimHandle, body: Value) -> reqwest::Response {
    c.post(format!("{}{USERS_LOOKUP_PATH}", h.url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("users/lookup answered")
}

#[tokio::test]
async fn users_lookup_answers_the_user_of_an_address_in_any_case() {
    let h = start_with(3, |cfg| {
        cfg.users = vec![User::from_address(
            "87927fb7-e185-4c33-c7e3-8e077675973c",
            "Ann.Leaver@Acme.com",
        )];
        cfg.faults = vec!["html404,nth=3,on=users".parse().unwrap()];
    })
    .await;
    let c = client();
    let resp = user_lookup(&c, &h, json!({"email": "ann.leaver@ACME.COM"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["id"], "87927fb7-e185-4c33-c7e3-8e077675973c");
    assert_eq!(user["email"], "Ann.Leaver@Acme.com");
    assert_eq!(
        (&user["firstName"], &user["lastName"]),
        (&json!("Ann"), &json!("Leaver"))
    );
    assert_eq!(user["userStatus"], "Enabled");
    // Generated credentials come with users who have addresses.
    let resp = user_lookup(&c, &h, json!({"email": "bob.leaver.1@example.com"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["id"], json!(generated(1).user_id));
    // The third user lookup gets the gateway's page (on=users), nothing else does.
    let resp = user_lookup(&c, &h, json!({"email": "ann.leaver@acme.com"})).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(content_type(&resp), "text/html");
    assert_eq!(
        lookup(&c, &h, &generated(0).device_serial_number)
            .await
            .status(),
        StatusCode::OK
    );
    let resp = user_lookup(&c, &h, json!({"email": "nobody@acme.com"})).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    json_error(resp).await;
    let resp = user_lookup(&c, &h, json!({"mail": "ann.leaver@acme.com"})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let stats = h.stats();
    assert_eq!(
        (
            stats.user_lookups,
            stats.user_lookups_found,
            stats.user_lookup_not_found
        ),
        (5, 2, 1)
    );
    assert_eq!((stats.lookups, stats.requests), (1, 6));
}
