//! What to do with an answer (retry, hold off, give up) and how long to wait between attempts:
//! exponential backoff with full jitter from 500 ms, capped, and Retry-After when given.

use std::time::Duration;

/// Backoff starts here and doubles per failed attempt (docs/design.md#pace-and-retries).
pub(crate) const BASE_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) max_backoff: Duration,
}

impl RetryPolicy {
    /// Full jitter: uniform in [0, min(cap, base · 2^(failures-1))].
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        ceiling.mul_f64(rand::random::<f64>())
    }

    fn ceiling(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        BASE_BACKOFF.saturating_mul(1 << exp).min(self.max_backoff)
    }

    /// The wait before the next attempt: the server's Retry-After when it gave one, else the
    /// jittered backoff; never longer than `--max-backoff`.
    pub(crate) fn wait(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(ra) => ra.min(self.max_backoff),
            None => self.backoff(failures),
        }
    }
}

/// How the engine treats an HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusClass {
    Success,
    NotFound,
    Forbidden,
    /// 429: all workers hold off, then retry.
    Throttled,
    /// 500/502/503/504: retry this request after a backoff.
    Transient,
    /// Anything else (400, other 4xx, 3xx, odd 5xx): final, the row fails.
    Rejected,
}

pub(crate) fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        404 => StatusClass::NotFound,
        // 401 is not in the API's list, but gateways in front of it answer it for a token
        // they refuse: the same remedy as 403 (one fresh token), the same status.
        401 | 403 => StatusClass::Forbidden,
        429 => StatusClass::Throttled,
        500 | 502 | 503 | 504 => StatusClass::Transient,
        _ => StatusClass::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 6,
            max_backoff: Duration::from_secs(3),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(500));
        assert_eq!(p.ceiling(2), Duration::from_secs(1));
        assert_eq!(p.ceiling(3), Duration::from_secs(2));
        assert_eq!(p.ceiling(4), Duration::from_secs(3));
        assert_eq!(p.ceiling(400), Duration::from_secs(3));
        for f in 1..10 {
            assert!(p.backoff(f) <= p.ceiling(f));
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let p = RetryPolicy {
            max_attempts: 6,
            max_backoff: Duration::from_secs(60),
        };
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn statuses_are_classified_as_the_spec_says() {
        use StatusClass::*;
        for (s, c) in [
            (200, Success),
            (204, Success),
            (404, NotFound),
            (403, Forbidden),
            (429, Throttled),
            (500, Transient),
            (502, Transient),
            (503, Transient),
            (504, Transient),
            (400, Rejected),
            (401, Forbidden),
            (409, Rejected),
            (501, Rejected),
            (302, Rejected),
        ] {
            assert_eq!(classify_status(s), c, "{s}");
        }
    }
}
