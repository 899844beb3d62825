//! The run's request counters: bumped by the workers as they send, read as a snapshot by the
//! progress display and the summary.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by all workers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Rows that got at least one request.
    pub(crate) rows_sent: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) throttled: AtomicU64,
}

impl Counters {
    pub(crate) fn count_row_sent(&self) {
        self.rows_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts as they are now.
    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            rows_sent: self.rows_sent.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }
}

/// The request counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestCounts {
    /// Rows that got at least one request.
    pub(crate) rows_sent: u64,
    /// Requests of any kind, retries included.
    pub(crate) requests: u64,
    /// Requests answered 429.
    pub(crate) throttled: u64,
}

impl From<&Counters> for RequestCounts {
    fn from(counters: &Counters) -> RequestCounts {
        counters.snapshot()
    }
}
