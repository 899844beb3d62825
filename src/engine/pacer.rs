//! The one rate limiter of a run: every request (first try, retry, lookup) waits here. Holds the
//! governor limiter for `--rate`/`--burst` and the shared cooldown that a 429 imposes on all
//! workers.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::rate::Rate;

type Limiter = RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>;

pub struct Pacer {
    limiter: Limiter,
    clock: DefaultClock,
    rate: Rate,
    /// No request leaves before this instant (set by 429s).
    cooldown_until: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(rate: Rate, burst: u32) -> Pacer {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        // with_period is None only for a zero period, which Rate cannot produce; the fallback
        // keeps the type total.
        let quota = Quota::with_period(rate.period())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let clock = DefaultClock::default();
        Pacer {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            rate,
            cooldown_until: Mutex::new(None),
        }
    }

    /// Waits until this worker may send one request: past any cooldown, then a limiter cell.
    pub async fn acquire(&self) {
        loop {
            if let Some(until) = self.cooldown() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// A 429 arrived: every worker holds off for `wait` from now (the longest hold wins).
    pub fn hold_off(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut guard = self
            .cooldown_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if guard.is_none_or(|cur| cur < until) {
            *guard = Some(until);
        }
    }

    /// The rate requests are currently sent at.
    pub fn current_rate(&self) -> Rate {
        self.rate
    }

    fn cooldown(&self) -> Option<Instant> {
        let mut guard = self
            .cooldown_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *guard {
            Some(until) if until > Instant::now() => Some(until),
            Some(_) => {
                *guard = None;
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paces_requests_at_the_rate() {
        let pacer = Pacer::new(Rate::per_second(200.0), 1);
        let start = std::time::Instant::now();
        for _ in 0..21 {
            pacer.acquire().await;
        }
        // 20 gaps of 5 ms; generous upper bound for a busy machine.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(95), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn a_hold_off_delays_everyone() {
        let pacer = Pacer::new(Rate::per_second(1000.0), 1);
        pacer.hold_off(Duration::from_millis(120));
        pacer.hold_off(Duration::from_millis(10)); // a shorter hold does not shorten it
        let start = std::time::Instant::now();
        pacer.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(110),
            "{:?}",
            start.elapsed()
        );
    }
}
