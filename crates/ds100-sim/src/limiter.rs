//! The simulator's server-side rate limit: a token bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A token bucket of `burst` tokens refilled at `rate`, kept as GCRA: one atomic "theoretical
/// arrival time" instead of a counter and a timestamp, so the hot path takes no lock.
/// A request that finds the bucket empty takes nothing, so throttled clients do not starve
/// the bucket further.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    epoch: Instant,
    /// Nanoseconds per token.
    period_ns: u64,
    /// How far ahead of now the theoretical arrival time may run: burst × period.
    tolerance_ns: u64,
    /// Theoretical arrival time of the next request, in nanoseconds since `epoch`.
    tat_ns: AtomicU64,
}

impl TokenBucket {
    /// `per_second` must be finite and above 0 (`SimConfig::check`). `burst` defaults to "a
    /// bucket of one second": max(1, ceil(per_second)).
    pub(crate) fn new(per_second: f64, burst: Option<u32>) -> TokenBucket {
        let burst = burst
            .unwrap_or_else(|| per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32)
            .max(1);
        let period_ns = (1e9 / per_second).round().max(1.0) as u64;
        TokenBucket {
            epoch: Instant::now(),
            period_ns,
            tolerance_ns: period_ns.saturating_mul(u64::from(burst)),
            tat_ns: AtomicU64::new(0),
        }
    }

    /// Takes a token now, or says how long until one is available.
    pub(crate) fn try_acquire(&self) -> Result<(), Duration> {
        let now_ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.try_acquire_at(now_ns)
    }

    /// The clock-free core, so tests can drive time by hand.
    pub(crate) fn try_acquire_at(&self, now_ns: u64) -> Result<(), Duration> {
        let mut tat = self.tat_ns.load(Ordering::Acquire);
        loop {
            let next = tat.max(now_ns).saturating_add(self.period_ns);
            let allowed_until = now_ns.saturating_add(self.tolerance_ns);
            if next > allowed_until {
                return Err(Duration::from_nanos(next - allowed_until));
            }
            match self
                .tat_ns
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn allows_a_burst_then_refills_at_the_rate() {
        let bucket = TokenBucket::new(10.0, Some(3));
        assert!(bucket.try_acquire_at(0).is_ok());
        assert!(bucket.try_acquire_at(0).is_ok());
        assert!(bucket.try_acquire_at(0).is_ok());
        assert_eq!(bucket.try_acquire_at(0), Err(Duration::from_millis(100)));
        // Throttled requests take nothing: the wait does not grow.
        assert_eq!(bucket.try_acquire_at(0), Err(Duration::from_millis(100)));
        assert_eq!(
            bucket.try_acquire_at(40 * MS),
            Err(Duration::from_millis(60))
        );
        assert!(bucket.try_acquire_at(100 * MS).is_ok());
        assert!(bucket.try_acquire_at(100 * MS).is_err());
        // A long pause refills no more than the burst.
        assert!(bucket.try_acquire_at(10_000 * MS).is_ok());
        assert!(bucket.try_acquire_at(10_000 * MS).is_ok());
        assert!(bucket.try_acquire_at(10_000 * MS).is_ok());
        assert!(bucket.try_acquire_at(10_000 * MS).is_err());
    }

    #[test]
    fn default_burst_is_one_second_of_rate() {
        let bucket = TokenBucket::new(50.0, None);
        let granted = (0..100)
            .filter(|_| bucket.try_acquire_at(0).is_ok())
            .count();
        assert_eq!(granted, 50);
        let slow = TokenBucket::new(0.5, None);
        assert!(slow.try_acquire_at(0).is_ok());
        assert_eq!(slow.try_acquire_at(0), Err(Duration::from_secs(2)));
    }

    #[test]
    fn sustained_rate_is_exact() {
        let bucket = TokenBucket::new(100.0, Some(1));
        // Offer a request every millisecond for 10 s: exactly 100/s get through (+1 at t=0).
        let granted = (0..10_000u64)
            .filter(|ms| bucket.try_acquire_at(ms * MS).is_ok())
            .count();
        assert_eq!(granted, 1000);
    }
}
