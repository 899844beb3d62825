//! How the simulator's answers are built: JSON error bodies, 429s with Retry-After, and the
//! per-status count every API answer adds to.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::retry_after::{RetryAfterStyle, retry_after_value};
use crate::stats::Counters;
use crate::wire::ErrorBody;

pub(crate) type Body = Full<Bytes>;

pub(crate) const JSON: &str = "application/json";

/// An API answer before it becomes a response, so post-commit faults can rewrite it.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Answer {
    /// An error status with the JSON error body.
    pub(crate) fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            body: error_json(status, message),
        }
    }
}

/// An API answer: counted per status, unlike the admin endpoints' answers.
pub(crate) fn api_response(
    counters: &Counters,
    status: u16,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    counters.answered(status);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    plain_response(status, content_type, body)
}

/// A 429 with Retry-After for a client that must wait `wait`, in `style`.
pub(crate) fn too_many_requests(
    counters: &Counters,
    style: RetryAfterStyle,
    wait: Duration,
) -> Response<Body> {
    let mut resp = api_response(counters, 429, JSON, error_json(429, "too many requests"));
    if let Some(value) = retry_after_value(style, wait, SystemTime::now())
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        resp.headers_mut().insert(header::RETRY_AFTER, value);
    }
    resp
}

pub(crate) fn plain_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(crate) fn error_json(status: u16, message: &str) -> Bytes {
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

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Option<Bytes> {
    serde_json::to_vec(value).ok().map(Bytes::from)
}
