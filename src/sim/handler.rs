//! Request handling: routing, the per-request gate (rate limit, auth, injected errors, faults),
//! the DS100 business logic and the `/__sim/*` admin endpoints.

use std::convert::Infallible;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::auth::Authenticator;
use super::fault::{Endpoint, Fault, FaultKind};
use super::limiter::{TokenBucket, retry_after_value};
use super::mix::unit_draw;
use super::server::ConnKill;
use super::stats::{Counters, bump};
use super::store::{DeleteOutcome, Store, lookup_record};
use super::{RetryAfterStyle, SimStats};
use crate::api::types::{DeleteRequest as Credential, LookupRequest};

pub(crate) const DELETE_PATH: &str = "/AdminInterface/restapi/v1/ds100/delete/otp";
pub(crate) const LOOKUP_PATH: &str = "/AdminInterface/restapi/v1/ds100/lookup";

/// Request bodies are three short strings; anything much bigger is not a DS100 call.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Retry-After for injected 429s, which have no bucket to compute a wait from.
const FAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Draw stream of `error_rate`; fault `i` uses stream `i`, so they never share draws.
const ERROR_RATE_STREAM: u64 = u64::MAX;

const JSON: &str = "application/json";
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

pub(crate) type Body = Full<Bytes>;

/// A fault together with the count of requests it has looked at.
pub(crate) struct ArmedFault {
    pub(crate) fault: Fault,
    pub(crate) seen: AtomicU64,
}

/// Everything a request handler reads or updates; shared by all connections.
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) counters: Counters,
    pub(crate) auth: Authenticator,
    pub(crate) limiter: Option<TokenBucket>,
    pub(crate) retry_after: RetryAfterStyle,
    pub(crate) error_rate: f64,
    pub(crate) error_draws: AtomicU64,
    pub(crate) faults: Vec<ArmedFault>,
    pub(crate) fault_seed: u64,
    pub(crate) slow_delay: Duration,
    pub(crate) latency: Duration,
    pub(crate) started: Instant,
    /// `Some` only with `record_arrivals`: otherwise nothing grows per request.
    pub(crate) arrivals: Option<Mutex<Vec<u64>>>,
}

impl State {
    pub(crate) fn stats(&self) -> SimStats {
        let mut stats = self.counters.snapshot(self.store.len());
        stats.distinct_tokens = self.auth.distinct_tokens();
        stats
    }
}

/// An API answer before it becomes a response, so post-commit faults can rewrite it.
struct Answer {
    status: u16,
    body: Bytes,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    error: &'a str,
    message: &'a str,
}

/// The hyper service: one call per request. `kill` is this connection's: faults use it to make
/// the connection task drop the socket (with a TCP reset or a plain close) instead of answering.
pub(crate) async fn handle(
    state: std::sync::Arc<State>,
    kill: std::sync::Arc<ConnKill>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    enum Route {
        Api(Endpoint),
        WrongMethod(&'static str),
        Store,
        Stats,
        Arrivals,
        Unknown,
    }
    let route = match (req.method(), req.uri().path()) {
        (&Method::DELETE, DELETE_PATH) => Route::Api(Endpoint::Delete),
        (&Method::POST, LOOKUP_PATH) => Route::Api(Endpoint::Lookup),
        (_, DELETE_PATH) => Route::WrongMethod("DELETE"),
        (_, LOOKUP_PATH) => Route::WrongMethod("POST"),
        (&Method::GET, "/__sim/store") => Route::Store,
        (&Method::GET, "/__sim/stats") => Route::Stats,
        (&Method::GET, "/__sim/arrivals") => Route::Arrivals,
        _ => Route::Unknown,
    };
    let response = match route {
        Route::Api(endpoint) => api(&state, &kill, endpoint, req).await,
        Route::WrongMethod(allowed) => {
            let mut resp = plain_response(
                StatusCode::METHOD_NOT_ALLOWED,
                JSON,
                error_json(405, "method not allowed"),
            );
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allowed));
            resp
        }
        Route::Store => plain_response(StatusCode::OK, "text/csv", store_csv(&state)),
        Route::Stats => plain_response(
            StatusCode::OK,
            JSON,
            to_json(&state.stats()).unwrap_or_default(),
        ),
        Route::Arrivals => plain_response(StatusCode::OK, JSON, arrivals_json(&state)),
        Route::Unknown => plain_response(
            StatusCode::NOT_FOUND,
            JSON,
            error_json(404, "no such endpoint"),
        ),
    };
    Ok(response)
}

/// One DS100 API request, checks in the documented order: arrival, rate limit, auth,
/// `error_rate`, scheduled faults, latency, business logic. Answers refused at the gate come
/// back at once, as a gateway's would; `latency` models the work behind it.
async fn api(
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
    });
    if let Some(arrivals) = &state.arrivals {
        let micros = u64::try_from(state.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(micros);
    }

    // Read the (small) body up front even when refusing: an unread body would make hyper
    // close the connection, and a throttled client should keep its keep-alive connection.
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes());

    if let Some(bucket) = &state.limiter
        && let Err(wait) = bucket.try_acquire()
    {
        bump(&counters.throttled);
        return too_many_requests(state, state.retry_after, wait);
    }

    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let token = match state.auth.check(authorization) {
        Ok(token) => token,
        Err(denied) => {
            bump(&counters.forbidden);
            return api_response(state, 403, JSON, error_json(403, denied.message()));
        }
    };

    if state.error_rate > 0.0 {
        let n = state.error_draws.fetch_add(1, Ordering::Relaxed) + 1;
        if unit_draw(state.fault_seed, ERROR_RATE_STREAM, n) < state.error_rate {
            bump(&counters.errors_injected);
            return api_response(
                state,
                500,
                JSON,
                error_json(500, "injected internal server error"),
            );
        }
    }

    let fault = pick_fault(state, endpoint, token, body.as_ref().ok());
    match fault {
        Some(FaultKind::Status(429)) => {
            return too_many_requests(state, state.retry_after, FAULT_RETRY_AFTER);
        }
        Some(FaultKind::Status(code)) => {
            return api_response(state, code, JSON, error_json(code, "injected fault"));
        }
        Some(FaultKind::TooManyRequests(style)) => {
            return too_many_requests(state, style, FAULT_RETRY_AFTER);
        }
        Some(FaultKind::Html500) => {
            return api_response(
                state,
                500,
                "text/html; charset=utf-8",
                Bytes::from_static(HTML_500_BODY),
            );
        }
        Some(FaultKind::Html200) => {
            return api_response(
                state,
                200,
                "text/html; charset=utf-8",
                Bytes::from_static(SIGN_IN_PAGE),
            );
        }
        Some(FaultKind::Html404) => {
            return api_response(state, 404, "text/html", Bytes::from_static(HTML_404_PAGE));
        }
        Some(FaultKind::Text404) => {
            return api_response(
                state,
                404,
                "text/plain; charset=utf-8",
                Bytes::from_static(TEXT_404_BODY),
            );
        }
        Some(FaultKind::Error200) => {
            return api_response(state, 200, JSON, Bytes::from_static(ERROR_200_BODY));
        }
        Some(FaultKind::Reset) => return reset_connection(state, kill).await,
        Some(FaultKind::HangUp) => return hang_up(state, kill).await,
        Some(FaultKind::Slow) => tokio::time::sleep(state.slow_delay).await,
        _ => {}
    }

    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }

    let mut answer = match endpoint {
        Endpoint::Delete => delete(state, body),
        Endpoint::Lookup => lookup(state, body),
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

    let mut resp = api_response(state, answer.status, JSON, answer.body);
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

/// The `deviceSerialNumber` a request body names, if it is a JSON object with one.
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

fn delete(state: &State, body: Result<Bytes, impl std::fmt::Display>) -> Answer {
    let cred: Credential = match parse_body(body) {
        Ok(cred) => cred,
        Err(why) => return bad_request(state, &why),
    };
    match state.store.delete(&cred) {
        DeleteOutcome::Deleted => {
            bump(&state.counters.deleted);
            // API.md: no response body on success.
            Answer {
                status: 200,
                body: Bytes::new(),
            }
        }
        DeleteOutcome::NotFound { already_deleted } => {
            bump(&state.counters.delete_not_found);
            if already_deleted {
                bump(&state.counters.deletes_of_already_deleted);
            }
            Answer {
                status: 404,
                body: error_json(404, "the user or the DS100 authenticator does not exist"),
            }
        }
    }
}

fn lookup(state: &State, body: Result<Bytes, impl std::fmt::Display>) -> Answer {
    let request: LookupRequest = match parse_body(body) {
        Ok(request) => request,
        Err(why) => return bad_request(state, &why),
    };
    let on_device = state.store.on_device(&request.device_serial_number);
    if on_device.is_empty() {
        bump(&state.counters.lookup_not_found);
        return Answer {
            status: 404,
            body: error_json(404, "no DS100 authenticator with this serial number"),
        };
    }
    bump(&state.counters.lookups_found);
    let records: Vec<_> = on_device.iter().map(lookup_record).collect();
    match to_json(&records) {
        Some(body) => Answer { status: 200, body },
        None => Answer {
            status: 500,
            body: error_json(500, "could not encode the answer"),
        },
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, impl std::fmt::Display>,
) -> Result<T, String> {
    let body = body.map_err(|e| format!("could not read the request body: {e}"))?;
    let trimmed = body.trim_ascii_start();
    if trimmed.is_empty() {
        return Err("missing JSON request body".to_string());
    }
    // serde's derive also accepts a JSON array for a struct; the API takes only an object.
    if !trimmed.starts_with(b"{") {
        return Err("the request body must be a JSON object".to_string());
    }
    serde_json::from_slice(&body).map_err(|e| format!("malformed request body: {e}"))
}

fn bad_request(state: &State, why: &str) -> Answer {
    bump(&state.counters.bad_requests);
    Answer {
        status: 400,
        body: error_json(400, why),
    }
}

fn too_many_requests(state: &State, style: RetryAfterStyle, wait: Duration) -> Response<Body> {
    let mut resp = api_response(state, 429, JSON, error_json(429, "too many requests"));
    if let Some(value) = retry_after_value(style, wait, SystemTime::now())
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        resp.headers_mut().insert(header::RETRY_AFTER, value);
    }
    resp
}

/// An API answer: counted per status, unlike the admin endpoints' answers.
fn api_response(
    state: &State,
    status: u16,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    state.counters.answered(status);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    plain_response(status, content_type, body)
}

fn plain_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn error_json(status: u16, message: &str) -> Bytes {
    let error = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    to_json(&ErrorBody {
        status,
        error,
        message,
    })
    .unwrap_or_default()
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Option<Bytes> {
    serde_json::to_vec(value).ok().map(Bytes::from)
}

/// `tokenSerialNumber,deviceSerialNumber,userId` with a header, sorted.
fn store_csv(state: &State) -> Bytes {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail; should it ever, the CSV is merely cut short.
    let _ = out.write_record(["tokenSerialNumber", "deviceSerialNumber", "userId"]);
    for cred in state.store.snapshot() {
        let _ = out.serialize(&cred);
    }
    out.into_inner().map(Bytes::from).unwrap_or_default()
}

fn arrivals_json(state: &State) -> Bytes {
    match &state.arrivals {
        Some(arrivals) => {
            let arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner());
            to_json(arrivals.as_slice()).unwrap_or_default()
        }
        None => Bytes::from_static(b"[]"),
    }
}
