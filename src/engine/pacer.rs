//! The one rate limiter of a run (`docs/design.md#pace-and-retries`): every request (first
//! try, retry, lookup) waits here. It holds `--rate`/`--burst`, the hold-off that a 429
//! imposes on all workers, and the adaptive rate (`adaptive.rs`).
//!
//! The schedule is two instants. `next` is when the next request is due (GCRA's theoretical
//! arrival time): a request may leave `burst − 1` periods before it, and moves it one period
//! on. `not_before` is the end of the latest 429 hold-off. A worker sleeps until both allow it,
//! then checks again under the lock, so a hold-off or a cut that came while it slept applies
//! to it too, and a worker cancelled while waiting costs no slot.
//!
//! A request that leaves a little late (timer granularity, a busy machine) moves `next` one
//! period on from where it was, not from the late instant, so lateness costs no rate. Only
//! when it is more than a period late (an idle run, a stall) does the schedule start again
//! from now: the workers that waited through the stall are then spaced, not sent together.
//! While the adaptive rate is below `--rate`, requests are evenly spaced (no burst).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::adaptive::{AdaptiveRate, BETA, Basis, Cut, DEEPEST_CUT_WORDS, FLOOR_WORDS};
use crate::rate::Rate;

/// Requests are spaced this much wider than the rate says. A request that leaves a little late
/// followed by one on time would otherwise put `rate + 1` requests into one second, using up
/// the allowance that the server's own arrival jitter needs; 0.5 % absorbs 5 ms of lateness
/// per second and keeps the achieved rate within 1 % of `--rate`.
const PACING_MARGIN: f64 = 0.005;

pub struct Pacer {
    rate: Rate,
    burst: u32,
    /// Requests that were not answered 429, for the measured admitted rate: counted without
    /// the lock.
    admitted: AtomicU64,
    state: Mutex<State>,
}

struct State {
    /// When the next request is due.
    next: Instant,
    /// No request leaves before this instant (429 hold-offs).
    not_before: Instant,
    /// `None` with `--no-adaptive`: the rate stays at `--rate`.
    adaptive: Option<AdaptiveRate>,
}

impl Pacer {
    /// A pacer at `rate` with `burst`; `adaptive` lowers the rate on 429s.
    pub fn new(rate: Rate, burst: u32, adaptive: bool) -> Pacer {
        let now = Instant::now();
        Pacer {
            rate,
            burst: burst.max(1),
            admitted: AtomicU64::new(0),
            state: Mutex::new(State {
                next: now,
                not_before: now,
                adaptive: adaptive.then(|| AdaptiveRate::new(rate.as_per_second(), now)),
            }),
        }
    }

    /// Waits until this worker may send one request.
    pub async fn acquire(&self) {
        loop {
            let wake_at = {
                let mut st = self.lock();
                let now = Instant::now();
                let (period, tolerance) = self.spacing(&st, now);
                match st.take(now, period, tolerance) {
                    Ok(()) => return,
                    Err(wake_at) => wake_at,
                }
            };
            tokio::time::sleep_until(wake_at).await;
        }
    }

    /// A 429 arrived: every worker holds off for `wait` from now (the longest hold wins).
    pub fn hold_off(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut st = self.lock();
        st.not_before = st.not_before.max(until);
    }

    /// Tells the adaptive rate how a request sent at `sent_at` ended: `throttled` for a 429.
    /// Every request is reported, transport failures included: a request the server did not
    /// throttle counts as admitted, whatever became of it.
    pub fn on_answer(&self, sent_at: Instant, throttled: bool) {
        if !throttled {
            self.admitted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let admitted = self.admitted.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut st = self.lock();
        let Some(adaptive) = st.adaptive.as_mut() else {
            return;
        };
        let Some(cut) = adaptive.throttled(sent_at, now, admitted) else {
            return;
        };
        // Nothing leaves at the new rate before the cut takes effect.
        st.next = st.next.max(cut.effective);
        drop(st);
        tracing::info!("{}", cut_message(&cut, self.rate));
    }

    /// The rate requests are currently sent at (below `--rate` after throttling).
    pub fn current_rate(&self) -> Rate {
        let st = self.lock();
        match &st.adaptive {
            Some(adaptive) => Rate::per_second(adaptive.rate_at(Instant::now())),
            None => self.rate,
        }
    }

    /// Period and burst tolerance at `now`: `--rate`/`--burst`, or evenly spaced at the
    /// adaptive rate while it is below `--rate`.
    fn spacing(&self, st: &State, now: Instant) -> (Duration, Duration) {
        let adapted = st
            .adaptive
            .as_ref()
            .map(|a| a.rate_at(now))
            .filter(|r| *r < self.rate.as_per_second());
        match adapted {
            Some(rate) => (spaced(rate), Duration::ZERO),
            None => {
                let period = spaced(self.rate.as_per_second());
                (period, period.saturating_mul(self.burst - 1))
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Takes a request's place in the schedule at `now`, or says when to ask again.
    fn take(&mut self, now: Instant, period: Duration, tolerance: Duration) -> Result<(), Instant> {
        let due = self.next.checked_sub(tolerance).unwrap_or(now);
        let earliest = due.max(self.not_before);
        if now < earliest {
            return Err(earliest);
        }
        self.next = if now.saturating_duration_since(self.next) <= period {
            self.next + period
        } else {
            now + period
        };
        Ok(())
    }
}

/// The log line of a cut: the one rate the run sends at from now on and why, and where it
/// climbs back to. A measured or previous rate is never put beside it as a second number: two
/// rates in one line read as a contradiction.
fn cut_message(cut: &Cut, ceiling: Rate) -> String {
    let rate = Rate::per_second(cut.rate);
    let why = match cut.basis {
        Basis::Admitted { over } => format!(
            "sending at {rate}, what it admitted over the last {:.1} s",
            over.as_secs_f64()
        ),
        Basis::Unchanged { over } => format!(
            "sending at {rate} still: it admitted everything sent over the last {:.1} s",
            over.as_secs_f64()
        ),
        Basis::Multiplied => format!(
            "sending at {rate}, {BETA} × the rate before (too early to measure what it admits)"
        ),
        Basis::DeepestCut => format!("sending at {rate}, {DEEPEST_CUT_WORDS}"),
        Basis::Floor => format!("sending at {rate}, {FLOOR_WORDS}"),
    };
    let climb = if cut.rate < ceiling.as_per_second() {
        format!("; climbing back towards --rate {ceiling} while no 429 comes")
    } else {
        String::new()
    };
    format!("the tenant throttles (429): {why}{climb}")
}

/// The period between requests at `rate` per second, margin included.
fn spaced(rate: f64) -> Duration {
    Duration::from_secs_f64((1.0 + PACING_MARGIN) / rate)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn state(t0: Instant) -> State {
        State {
            next: t0,
            not_before: t0,
            adaptive: None,
        }
    }

    /// Sorted send instants: the most requests in any 1-second window.
    fn busiest_second(sent: &[Instant]) -> usize {
        let mut worst = 0;
        let mut lo = 0;
        for hi in 0..sent.len() {
            while sent[hi].duration_since(sent[lo]) >= Duration::from_secs(1) {
                lo += 1;
            }
            worst = worst.max(hi - lo + 1);
        }
        worst
    }

    fn achieved(sent: &[Instant]) -> f64 {
        let span = sent[sent.len() - 1].duration_since(sent[0]).as_secs_f64();
        (sent.len() - 1) as f64 / span
    }

    #[test]
    fn the_schedule_allows_the_burst_then_spaces_evenly() {
        let t0 = Instant::now();
        let mut st = state(t0);
        let (period, tolerance) = (10 * MS, 20 * MS); // 100/s, burst 3
        let mut when = Vec::new();
        let mut now = t0;
        while when.len() < 6 {
            match st.take(now, period, tolerance) {
                Ok(()) => when.push(now),
                Err(at) => now = at,
            }
        }
        assert_eq!(when, [t0, t0, t0, t0 + 10 * MS, t0 + 20 * MS, t0 + 30 * MS]);
        // Idle time earns no more than the burst.
        let later = t0 + Duration::from_secs(10);
        let n_at_once = (0..10)
            .take_while(|_| st.take(later, period, tolerance).is_ok())
            .count();
        assert_eq!(n_at_once, 3);
        assert_eq!(st.take(later, period, tolerance), Err(later + 10 * MS));
    }

    #[test]
    fn late_wake_ups_cost_no_rate_and_never_bunch_beyond_one() {
        // 100/s, burst 1; eight workers that each wake up to 9 ms after the instant they were
        // told, then queue again at once after sending.
        let t0 = Instant::now();
        let mut st = state(t0);
        let (period, tolerance) = (10 * MS, Duration::ZERO);
        let mut ready: Vec<Instant> = vec![t0; 8];
        let mut sent = Vec::new();
        let mut lateness = 7u64;
        while sent.len() < 2000 {
            let w = (0..ready.len()).min_by_key(|&w| ready[w]).unwrap();
            lateness = (lateness * 31 + 17) % 10; // 0..=9 ms, deterministic
            match st.take(ready[w], period, tolerance) {
                Ok(()) => sent.push(ready[w]),
                Err(at) => ready[w] = at + Duration::from_millis(lateness),
            }
        }
        sent.sort();
        let rate = achieved(&sent);
        assert!((rate - 100.0).abs() < 1.0, "{rate}/s");
        assert!(busiest_second(&sent) <= 101, "{}", busiest_second(&sent));
    }

    #[test]
    fn after_a_stall_the_waiting_workers_are_spaced_again() {
        let t0 = Instant::now();
        let mut st = state(t0);
        let period = 10 * MS;
        assert_eq!(st.take(t0, period, Duration::ZERO), Ok(()));
        // The process stalls for 50 ms; seven workers were due meanwhile. One leaves now, the
        // next a period later, not all seven at once.
        let now = t0 + 50 * MS;
        assert_eq!(st.take(now, period, Duration::ZERO), Ok(()));
        assert_eq!(st.take(now, period, Duration::ZERO), Err(now + period));
    }

    #[test]
    fn spacing_keeps_a_small_margin_and_the_burst_applies_at_the_rate() {
        let pacer = Pacer::new(Rate::per_second(100.0), 3, true);
        let st = pacer.lock();
        let (period, tolerance) = pacer.spacing(&st, Instant::now());
        assert_eq!(period, Duration::from_micros(10_050));
        assert_eq!(tolerance, 2 * period);
    }

    #[test]
    fn without_adaptive_control_429s_leave_the_rate_alone() {
        let pacer = Pacer::new(Rate::per_second(50.0), 1, false);
        for _ in 0..10 {
            pacer.on_answer(Instant::now(), true);
        }
        assert_eq!(pacer.current_rate(), Rate::per_second(50.0));
    }

    #[test]
    fn only_429s_lower_the_rate_and_a_cut_spaces_evenly() {
        let pacer = Pacer::new(Rate::per_second(50.0), 4, true);
        for _ in 0..100 {
            pacer.on_answer(Instant::now(), false);
        }
        assert_eq!(pacer.current_rate(), Rate::per_second(50.0));
        pacer.on_answer(Instant::now(), true);
        assert!(pacer.current_rate().as_per_second() < 50.0);
        let st = pacer.lock();
        let (period, tolerance) = pacer.spacing(&st, Instant::now());
        assert!(period > Duration::from_millis(20), "{period:?}");
        assert_eq!(tolerance, Duration::ZERO);
    }

    /// `n` acquisitions shared by `n_workers` tasks; the instants they were granted, sorted.
    async fn acquisitions(pacer: Arc<Pacer>, n_workers: usize, n: usize) -> Vec<Instant> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let left = Arc::new(AtomicU64::new(n as u64));
        let tasks: Vec<_> = (0..n_workers)
            .map(|_| {
                let (pacer, tx, left) = (pacer.clone(), tx.clone(), left.clone());
                tokio::spawn(async move {
                    while left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                        .is_ok()
                    {
                        pacer.acquire().await;
                        tx.send(Instant::now()).unwrap();
                        // The request itself takes a while.
                        tokio::time::sleep(3 * MS).await;
                    }
                })
            })
            .collect();
        drop(tx);
        for t in tasks {
            t.await.unwrap();
        }
        let mut sent = Vec::new();
        while let Some(at) = rx.recv().await {
            sent.push(at);
        }
        sent.sort();
        sent
    }

    #[tokio::test(start_paused = true)]
    async fn paces_many_workers_at_the_rate_without_a_busy_second() {
        let pacer = Arc::new(Pacer::new(Rate::per_second(100.0), 1, true));
        let sent = acquisitions(pacer, 8, 1_500).await;
        assert_eq!(sent.len(), 1_500);
        let rate = achieved(&sent);
        assert!((rate - 100.0).abs() <= 1.0, "{rate}/s");
        assert!(busiest_second(&sent) <= 101, "{}", busiest_second(&sent));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_leaves_at_once_and_no_second_holds_more_than_rate_plus_burst() {
        let pacer = Arc::new(Pacer::new(Rate::per_second(20.0), 5, true));
        let t0 = Instant::now();
        let sent = acquisitions(pacer, 8, 200).await;
        assert_eq!(sent.iter().filter(|&&at| at == t0).count(), 5);
        assert!(busiest_second(&sent) <= 25, "{}", busiest_second(&sent));
        let rate = achieved(&sent[5..]);
        assert!((rate - 20.0).abs() <= 0.2, "{rate}/s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_off_delays_everyone_including_workers_already_waiting() {
        let pacer = Arc::new(Pacer::new(Rate::per_second(10.0), 1, true));
        let t0 = Instant::now();
        pacer.acquire().await; // at t0; the next is due 100.5 ms on
        let waiting = {
            let pacer = pacer.clone();
            tokio::spawn(async move {
                pacer.acquire().await;
                Instant::now()
            })
        };
        tokio::time::sleep(10 * MS).await;
        pacer.hold_off(Duration::from_millis(500));
        pacer.hold_off(Duration::from_millis(100)); // a shorter hold does not shorten it
        assert_eq!(waiting.await.unwrap(), t0 + 510 * MS);
        // After the hold-off the schedule starts again from its end, one period apart (the
        // timer wakes on whole milliseconds).
        pacer.acquire().await;
        let second = Instant::now() - (t0 + 510 * MS);
        assert!(
            (100_500..=101_500).contains(&second.as_micros()),
            "{second:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_leaves_before_a_cut_takes_effect() {
        let pacer = Pacer::new(Rate::per_second(100.0), 1, true);
        let t0 = Instant::now();
        pacer.acquire().await;
        // A 429 in the first second: 100/s → 70/s, effective one period at 70/s from now.
        pacer.on_answer(t0, true);
        pacer.acquire().await;
        let effective = t0 + Duration::from_secs_f64(1.0 / 70.0);
        assert!(Instant::now() >= effective, "{:?}", Instant::now() - t0);
    }

    /// The rates a log line names, `--rate X` apart.
    fn rates_named(line: &str) -> (Vec<&str>, Option<&str>) {
        let (head, ceiling) = match line.split_once("--rate ") {
            Some((head, tail)) => (head, tail.split_whitespace().next()),
            None => (line, None),
        };
        let rates = head
            .split_whitespace()
            .map(|w| w.trim_end_matches([',', ';', ':']))
            .filter(|w| w.ends_with("/s") || w.ends_with("/min") || w.ends_with("/h"))
            .collect();
        (rates, ceiling)
    }

    #[test]
    fn a_cut_states_one_rate_and_why() {
        let t0 = Instant::now();
        let ceiling = Rate::per_second(100.0);
        let cut = |rate: f64, basis: Basis| Cut {
            rate,
            measured: Some(40.0),
            basis,
            effective: t0,
        };
        let over = Duration::from_millis(2000);
        for (c, says) in [
            (
                cut(40.0, Basis::Admitted { over }),
                "sending at 40/s, what it admitted over the last 2.0 s",
            ),
            (
                cut(70.0, Basis::Multiplied),
                "sending at 70/s, 0.7 × the rate before",
            ),
            (
                cut(25.0, Basis::DeepestCut),
                "sending at 25/s, a quarter of the rate before",
            ),
            (
                cut(0.1, Basis::Floor),
                "sending at 6/min, the lowest a run goes",
            ),
            (
                cut(60.0, Basis::Unchanged { over }),
                "sending at 60/s still: it admitted everything sent",
            ),
        ] {
            let line = cut_message(&c, ceiling);
            assert!(line.contains(says), "{line}");
            let (rates, climb_to) = rates_named(&line);
            assert_eq!(rates.len(), 1, "one rate: {line}");
            assert_eq!(climb_to, Some("100/s"), "{line}");
            assert!(line.contains("while no 429 comes"), "{line}");
        }
        // At --rate already there is nothing to climb back to.
        let line = cut_message(&cut(100.0, Basis::Unchanged { over }), ceiling);
        assert_eq!(rates_named(&line), (vec!["100/s"], None), "{line}");
    }
}
