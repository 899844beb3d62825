//! What one request brings back: an `Answer` (any status, with its Retry-After, whether it is
//! an HTML page, and its body cut at `MAX_BODY`), or a `TransportError` when no answer came.
//! Both are data for the engine; neither ever holds a header or a secret.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// Bodies larger than this are cut (the API answers a few KiB at most).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// An HTTP answer, whatever its status.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    /// Retry-After, already converted to a wait from now.
    pub retry_after: Option<Duration>,
    /// The answer says it is an HTML page (`Content-Type: text/html`): a sign-in page or
    /// portal in front of the API, never the API itself.
    pub html: bool,
    pub body: Bytes,
}

impl Answer {
    /// The body as one short printable line for the report's error column.
    pub fn body_excerpt(&self) -> String {
        excerpt(&String::from_utf8_lossy(&self.body), 160)
    }
}

/// Why a request got no answer. Every kind is retried by the engine except `Tls` and
/// `Refused`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TransportError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("connection closed before the answer: {0}")]
    Closed(String),
    #[error("TLS failure: {0}")]
    Tls(String),
    #[error("request failed: {0}")]
    Other(String),
    #[error("{0}")]
    Refused(&'static str),
}

impl TransportError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, TransportError::Tls(_) | TransportError::Refused(_))
    }
}

/// Retry-After in either form (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. A date in the
/// past means "now". Anything else is ignored (the engine then uses its own backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds is "very long": the engine caps it at --max-backoff anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// One printable line of at most `max` characters.
pub fn excerpt(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert!(parse_retry_after("99999999999999999999999", now).is_some());
    }

    #[test]
    fn excerpt_is_one_bounded_line() {
        assert_eq!(excerpt("a\r\nb\t c", 10), "a b c");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
