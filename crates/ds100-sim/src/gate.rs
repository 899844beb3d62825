//! The way through for every API request: arrival, rate limit, auth, injected errors and
//! scheduled faults, latency, then the endpoint's operation (`ops`), then the faults that act
//! after it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};

use crate::conn::ConnKill;
use crate::endpoint::Endpoint;
use crate::fault::FaultKind;
use crate::mix::unit_draw;
use crate::ops;
use crate::respond::{Answer, Body, JSON, api_response, error_json, too_many_requests};
use crate::state::State;
use crate::stats::bump;

/// Request bodies are three short strings; anything much bigger is not a DS100 call.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Retry-After for injected 429s, which have no bucket to compute a wait from.
const FAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Draw stream of `error_rate`; fault `i` uses stream `i`, so they never share draws.
const ERROR_RATE_STREAM: u64 = u64::MAX;

const GARBAGE_BODY: &[u8] = b"<html>oops";
const HTML_500_BODY: &[u8] = b"<html><head><title>500 Internal Server Error</title></head>\
<body><h1>Internal Server Error</h1><p>The gateway could not complete the request.</p></body></html>";
const SIGN_IN_PAGE: &[u8] = b"<!DOCTYPE html><html><head><title>Sign in</title></head>\
<body><form method=\"post\" action=\"/login\"><input name=\"user\"></form></body></html>";
/// What `html404` sends: nginx's stock error page, as a reverse proxy without a route answers.
const HTML_404_PAGE: &[u8] = b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
/// What `text404` sends: the plain-text 404 of Go's standard mux and many frameworks.
const TEXT_404_BODY: &[u8] = b"404 page not found\n";
/// What `error200` sends: failure in the body, success in the status line.
const ERROR_200_BODY: &[u8] = br#"{"status":"error","errorCode":"E_SIM_INJECTED","errorMessage":"injected error200 fault: nothing was done"}"#;
/// What `truncated` sends when the real answer had no array to cut (a delete, a 404).
const TRUNCATED_FALLBACK: &[u8] =
    br#"[{"id":"d4f8b2e7-f6e4-e102-bb28-ee0b5d37c2f2","name":"dak-br"#;

/// One API request, checks in this order: arrival, rate limit, auth, `error_rate`, scheduled
/// faults, latency, the operation. Answers refused at the gate come back at once, as a
/// gateway's would; `latency` models the work behind it. `kill` is the request's connection:
/// faults use it to drop the socket instead of answering.
pub(crate) async fn pass(
    state: &State,
    kill: &ConnKill,
    endpoint: Endpoint,
    req: Request<Incoming>,
) -> Response<Body> {
    let counters = &state.counters;
    let _in_flight = counters.enter();
    bump(&counters.requests);
    bump(match endpoint {
        Endpoint::Delete => &counters.deletes,
        Endpoint::Lookup => &counters.lookups,
        Endpoint::Disable => &counters.disables,
        Endpoint::Enable => &counters.enables,
        Endpoint::Users => &counters.user_lookups,
    });
    state.record_arrival();

    // Read the (small) body up front even when refusing: an unread body would make hyper
    // close the connection, and a throttled client should keep its keep-alive connection.
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| e.to_string());

    if let Some(bucket) = &state.limiter
        && let Err(wait) = bucket.try_acquire()
    {
        bump(&counters.throttled);
        return too_many_requests(counters, state.retry_after, wait);
    }

    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let token = match state.auth.check_for(authorization, endpoint) {
        Ok(token) => token,
        Err(denied) => {
            bump(&counters.forbidden);
            return api_response(counters, 403, JSON, error_json(403, &denied.message()));
        }
    };

    if state.error_rate > 0.0 {
        let n = state.error_draws.fetch_add(1, Ordering::Relaxed) + 1;
        if unit_draw(state.fault_seed, ERROR_RATE_STREAM, n) < state.error_rate {
            bump(&counters.errors_injected);
            return api_response(
                counters,
                500,
                JSON,
                error_json(500, "injected internal server error"),
            );
        }
    }

    let fault = pick_fault(state, endpoint, token, body.as_ref().ok());
    match fault {
        Some(FaultKind::Status(429)) => {
            return too_many_requests(counters, state.retry_after, FAULT_RETRY_AFTER);
        }
        Some(FaultKind::Status(code)) => {
            return api_response(counters, code, JSON, error_json(code, "injected fault"));
        }
        Some(FaultKind::TooManyRequests(style)) => {
            return too_many_requests(counters, style, FAULT_RETRY_AFTER);
        }
        Some(FaultKind::Html500) => {
            return api_response(
                counters,
                500,
                "text/html; charset=utf-8",
                Bytes::from_static(HTML_500_BODY),
            );
        }
        Some(FaultKind::Html200) => {
            return api_response(
                counters,
                200,
                "text/html; charset=utf-8",
                Bytes::from_static(SIGN_IN_PAGE),
            );
        }
        Some(FaultKind::Html404) => {
            return api_response(
                counters,
                404,
                "text/html",
                Bytes::from_static(HTML_404_PAGE),
            );
        }
        Some(FaultKind::Text404) => {
            return api_response(
                counters,
                404,
                "text/plain; charset=utf-8",
                Bytes::from_static(TEXT_404_BODY),
            );
        }
        Some(FaultKind::Error200) => {
            return api_response(counters, 200, JSON, Bytes::from_static(ERROR_200_BODY));
        }
        Some(FaultKind::Reset) => return reset_connection(state, kill).await,
        Some(FaultKind::HangUp) => return hang_up(state, kill).await,
        Some(FaultKind::Slow) => tokio::time::sleep(state.slow_delay).await,
        _ => {}
    }

    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }

    let mut answer = match fault {
        Some(FaultKind::OtherToken) => ops::naming_another(state, endpoint, body, false),
        Some(FaultKind::OtherUser) => ops::naming_another(state, endpoint, body, true),
        _ => ops::perform(state, endpoint, body),
    };

    match fault {
        Some(FaultKind::ResetAfterCommit) => return reset_connection(state, kill).await,
        Some(FaultKind::SlowAfterCommit) => tokio::time::sleep(state.slow_delay).await,
        Some(FaultKind::Garbage) => {
            answer = Answer {
                status: 200,
                body: Bytes::from_static(GARBAGE_BODY),
            };
        }
        Some(FaultKind::Truncated) => {
            let body = if answer.status == 200 && answer.body.len() >= 2 {
                answer.body.slice(..answer.body.len() / 2)
            } else {
                Bytes::from_static(TRUNCATED_FALLBACK)
            };
            answer = Answer { status: 200, body };
        }
        _ => {}
    }

    let mut resp = api_response(counters, answer.status, JSON, answer.body);
    if fault == Some(FaultKind::Close) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// The first fault (in flag order) that fires on this request. Every fault that applies to
/// the endpoint counts the request, fired or not, so each schedule depends only on its own
/// requests and not on which other faults are configured. `token` is the ordinal of the
/// request's bearer token (`Authenticator::check`). A fault limited to some devices looks only
/// at (and counts only) requests whose body names one of them.
fn pick_fault(
    state: &State,
    endpoint: Endpoint,
    token: u64,
    body: Option<&Bytes>,
) -> Option<FaultKind> {
    let device = if state.faults.iter().any(|a| !a.fault.devices.is_empty()) {
        body.and_then(device_named)
    } else {
        None
    };
    let mut chosen = None;
    for (stream, armed) in (0u64..).zip(&state.faults) {
        if !armed.fault.applies_to(endpoint) || !armed.fault.applies_to_device(device.as_deref()) {
            continue;
        }
        let n = armed.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if chosen.is_none()
            && armed
                .fault
                .schedule
                .fires(n, token, unit_draw(state.fault_seed, stream, n))
        {
            chosen = Some(armed.fault.kind);
        }
    }
    if chosen.is_some() {
        bump(&state.counters.faults_injected);
    }
    chosen
}

/// The `deviceSerialNumber` a request body names, if it is a JSON object with one. Read
/// loosely on purpose: a fault aimed at a device fires whatever else the body gets wrong.
fn device_named(body: &Bytes) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("deviceSerialNumber")?
        .as_str()
        .map(str::to_string)
}

/// Signals the connection task to drop the socket with SO_LINGER 0, then waits to be dropped
/// with it: the client gets a reset and no answer.
async fn reset_connection(state: &State, kill: &ConnKill) -> Response<Body> {
    bump(&state.counters.resets);
    kill.reset();
    std::future::pending().await
}

/// Like `reset_connection`, but the socket closes with a FIN: the client reads end-of-file
/// where the answer should be, as when its request lands on a kept-alive connection that the
/// server is closing as idle.
async fn hang_up(state: &State, kill: &ConnKill) -> Response<Body> {
    bump(&state.counters.hangups);
    kill.hang_up();
    std::future::pending().await
}
