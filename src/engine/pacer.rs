//! The one rate limiter of a run: every request (first try, retry, lookup) waits here. Holds the
//! governor limiter for `--rate`/`--burst`, the shared cooldown that a 429 imposes on all
//! workers, and the adaptive control (SPEC §4) that lowers the sending rate when the server
//! throttles and climbs back to `--rate` while it does not.
//!
//! The control law, per throttle episode (one cut however many 429s the requests already in
//! flight bring back):
//!
//! - cut: the new rate is the lower of `BETA` × the current rate and the rate of admitted
//!   (non-429) answers measured since the previous cut — between two throttle episodes a
//!   token-bucket server has granted exactly its refill rate, so that measurement is the
//!   server's real limit, not a guess (the AWS SDKs' adaptive mode only multiplies);
//! - climb: CUBIC, `rate(t) = w_max · (1 + GROWTH · (t − k)³)` with `w_max` the measured
//!   ceiling: concave back up to it, flat near it, then convex probing above it, capped at
//!   `--rate`. Only 429s lower the rate; 5xx and transport errors do not.
//!
//! While the rate is held below `--rate`, requests also pass an adaptive gate that spaces them
//! evenly at that rate (virtual scheduling, no burst). Once the climb is back at `--rate` the
//! gate disengages and the governor limiter alone paces, exactly as with `--no-adaptive`.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::rate::Rate;

type Limiter = RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>;

/// Multiplicative decrease of one throttle episode (AWS SDKs and CUBIC use 0.7).
const BETA: f64 = 0.7;
/// One cut never goes below this share of the rate it cuts: a measurement taken while the
/// run had little to send must not throw the rate to the floor.
const DEEPEST_CUT: f64 = 0.25;
/// Cubic growth per time unit³, relative to the episode's ceiling, so the climb has the same
/// shape at 5/s and at 5,000/s: from 0.7 × w_max back to w_max in 3.3 units; then +6 % after
/// 2 more units, +50 % after 4.
const GROWTH: f64 = 0.008;
/// The climb's time unit is one second, or the time `UNIT_REQUESTS` requests take at the
/// ceiling when that is longer: a slow run learns per request, not per second, so at 0.5/s it
/// does not race back within one request.
const UNIT_REQUESTS: f64 = 10.0;
/// The measured admitted rate is trusted only over a window at least this long.
const MIN_WINDOW: Duration = Duration::from_secs(1);
/// The rate never drops below this share of `--rate`.
const FLOOR_SHARE: f64 = 0.001;

pub struct Pacer {
    limiter: Limiter,
    clock: DefaultClock,
    rate: Rate,
    /// No request leaves before this instant (set by 429s).
    cooldown_until: Mutex<Option<Instant>>,
    /// `None` with `--no-adaptive`: the rate stays at `--rate`.
    adaptive: Option<Adaptive>,
}

/// The shared side of adaptive control: the hot path touches only atomics until the first
/// throttle episode engages the gate.
struct Adaptive {
    /// True while the controller holds the rate below `--rate`: only then does `acquire`
    /// queue at the gate.
    engaged: AtomicBool,
    /// Answers that were not 429, for the measured admitted rate.
    admitted: AtomicU64,
    /// Bumped by every cut, so a worker waiting for a slot granted before it queues again.
    generation: AtomicU64,
    control: Mutex<Control>,
}

impl Pacer {
    /// A pacer at `rate` with `burst`; `adaptive` lowers the rate on 429s (SPEC §4).
    pub fn new(rate: Rate, burst: u32, adaptive: bool) -> Pacer {
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
            adaptive: adaptive.then(|| Adaptive {
                engaged: AtomicBool::new(false),
                admitted: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                control: Mutex::new(Control::new(rate.as_per_second(), StdInstant::now())),
            }),
        }
    }

    /// Waits until this worker may send one request: past any cooldown, then (while adaptive
    /// control holds the rate down) a slot at the adaptive rate, then a limiter cell.
    pub async fn acquire(&self) {
        'queue: loop {
            if let Some(until) = self.cooldown() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            if let Some(ad) = &self.adaptive
                && ad.engaged.load(Ordering::Acquire)
            {
                let granted = {
                    let mut control = lock(&ad.control);
                    let slot = control.reserve(StdInstant::now());
                    if slot.is_none() {
                        ad.engaged.store(false, Ordering::Release);
                    }
                    slot.map(|s| (s, ad.generation.load(Ordering::Acquire)))
                };
                if let Some((slot, generation)) = granted {
                    tokio::time::sleep_until(Instant::from_std(slot)).await;
                    // A throttle episode began meanwhile: queue again behind its cooldown,
                    // at its rate.
                    if ad.generation.load(Ordering::Acquire) != generation {
                        continue 'queue;
                    }
                }
            }
            loop {
                match self.limiter.check() {
                    Ok(()) => {}
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(self.clock.now());
                        tokio::time::sleep(wait).await;
                        if self.cooldown().is_some() {
                            continue 'queue;
                        }
                        continue;
                    }
                }
                // A 429 may have come in while this worker waited: the hold-off wins.
                if self.cooldown().is_some() {
                    continue 'queue;
                }
                return;
            }
        }
    }

    /// A 429 arrived: every worker holds off for `wait` from now (the longest hold wins).
    pub fn hold_off(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut guard = lock(&self.cooldown_until);
        if guard.is_none_or(|cur| cur < until) {
            *guard = Some(until);
        }
    }

    /// Tells adaptive control how a request sent at `sent_at` was answered: `throttled` for a
    /// 429. Every HTTP answer is reported; transport errors are not answers.
    pub fn on_answer(&self, sent_at: Instant, throttled: bool) {
        let Some(ad) = &self.adaptive else { return };
        if !throttled {
            ad.admitted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut control = lock(&ad.control);
        let admitted = ad.admitted.load(Ordering::Relaxed);
        if let Some(cut) = control.throttled(sent_at.into_std(), StdInstant::now(), admitted) {
            ad.generation.fetch_add(1, Ordering::AcqRel);
            ad.engaged.store(true, Ordering::Release);
            tracing::info!(
                "the server throttles (429): sending at {} for now (measured {}), climbing back \
                 towards {} while no 429 comes",
                Rate::per_second(cut.rate),
                cut.measured
                    .map(|m| format!("{}", Rate::per_second(m.max(1e-9))))
                    .unwrap_or_else(|| "too briefly".into()),
                self.rate
            );
        }
    }

    /// The rate requests are currently sent at (below `--rate` after throttling).
    pub fn current_rate(&self) -> Rate {
        match &self.adaptive {
            Some(ad) => Rate::per_second(lock(&ad.control).rate_at(StdInstant::now())),
            None => self.rate,
        }
    }

    fn cooldown(&self) -> Option<Instant> {
        let mut guard = lock(&self.cooldown_until);
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The control law on explicit instants (no clock inside, so tests drive time by hand).
#[derive(Debug)]
struct Control {
    /// `--rate`, per second: the rate never climbs above it.
    ceiling: f64,
    floor: f64,
    /// Where the admitted-rate measurement starts: the start of the run, then every cut.
    window_start: StdInstant,
    admitted_at_window_start: u64,
    /// The latest cut; `None` before the first throttle episode.
    cut: Option<Episode>,
    /// The adaptive gate's next free slot (virtual scheduling).
    next_slot: StdInstant,
}

#[derive(Clone, Copy, Debug)]
struct Episode {
    at: StdInstant,
    /// Requests sent before this instant were sent before the cut took effect.
    effective: StdInstant,
    /// The ceiling the climb returns to.
    w_max: f64,
    /// Time units from the cut until the climb is back at `w_max`.
    k: f64,
    /// Seconds per time unit of the climb.
    unit: f64,
}

/// What one cut decided, for the log line.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cut {
    rate: f64,
    measured: Option<f64>,
}

impl Control {
    fn new(ceiling: f64, start: StdInstant) -> Control {
        Control {
            ceiling,
            floor: ceiling * FLOOR_SHARE,
            window_start: start,
            admitted_at_window_start: 0,
            cut: None,
            next_slot: start,
        }
    }

    /// The sending rate at `now`, per second.
    fn rate_at(&self, now: StdInstant) -> f64 {
        let Some(ep) = self.cut else {
            return self.ceiling;
        };
        let t = now.saturating_duration_since(ep.at).as_secs_f64() / ep.unit - ep.k;
        (ep.w_max * (1.0 + GROWTH * t * t * t)).clamp(self.floor, self.ceiling)
    }

    /// A 429 for a request sent at `sent_at`, seen at `now`, with `admitted` non-429 answers
    /// so far. Starts a throttle episode and returns the cut, unless the request left before
    /// the latest cut took effect: that 429 belongs to the episode already answered.
    fn throttled(&mut self, sent_at: StdInstant, now: StdInstant, admitted: u64) -> Option<Cut> {
        if self.cut.is_some_and(|ep| sent_at < ep.effective) {
            return None;
        }
        let current = self.rate_at(now);
        let window = now.saturating_duration_since(self.window_start);
        let measured = (window >= MIN_WINDOW).then(|| {
            admitted.saturating_sub(self.admitted_at_window_start) as f64 / window.as_secs_f64()
        });
        let rate = measured
            .map_or(current * BETA, |m| m.min(current * BETA))
            .max(current * DEEPEST_CUT)
            .max(self.floor);
        // The climb returns to what the server was measured to grant (or, without a
        // measurement, to where the rate was when the 429 came).
        let w_max = measured.map_or(current, |m| m.min(current)).max(rate);
        let k = ((w_max - rate) / (GROWTH * w_max)).cbrt();
        let unit = (UNIT_REQUESTS / w_max).max(1.0);
        // The cut takes effect one period at the new rate from now: no request leaves the gate
        // before that, so a 429 for anything sent earlier (in flight, or racing this very
        // cut) belongs to this episode.
        let effective = now + Duration::from_secs_f64(1.0 / rate);
        self.cut = Some(Episode {
            at: now,
            effective,
            w_max,
            k,
            unit,
        });
        self.window_start = now;
        self.admitted_at_window_start = admitted;
        self.next_slot = effective;
        Some(Cut { rate, measured })
    }

    /// Reserves the next send slot at the adaptive rate; `None` once the climb is back at
    /// `--rate` (the governor limiter alone paces then).
    fn reserve(&mut self, now: StdInstant) -> Option<StdInstant> {
        if self.rate_at(now) >= self.ceiling {
            return None;
        }
        let slot = self.next_slot.max(now);
        self.next_slot = slot + Duration::from_secs_f64(1.0 / self.rate_at(slot));
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: StdInstant, secs: f64) -> StdInstant {
        t0 + Duration::from_secs_f64(secs)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn a_burst_of_429s_is_one_cut() {
        let t0 = StdInstant::now();
        let mut c = Control::new(200.0, t0);
        // The first 429 comes after 0.3 s: too short to trust a measurement, so ×0.7.
        let cut = c.throttled(at(t0, 0.29), at(t0, 0.3), 60).unwrap();
        assert!(close(cut.rate, 140.0), "{cut:?}");
        assert_eq!(cut.measured, None);
        // Seven more 429s for requests that were in flight before the cut: ignored.
        for i in 0..7 {
            let sent = at(t0, 0.28 + 0.001 * f64::from(i));
            assert_eq!(c.throttled(sent, at(t0, 0.31), 60), None);
        }
        assert!(close(c.rate_at(at(t0, 0.3)), 140.0));
        // So is one sent while the cut was being made (before its first slot, 1/140 s on).
        assert_eq!(c.throttled(at(t0, 0.305), at(t0, 0.32), 60), None);
        // A request sent after the cut took effect and still throttled is a new episode.
        assert!(c.throttled(at(t0, 0.35), at(t0, 0.36), 60).is_some());
        assert!(c.rate_at(at(t0, 0.36)) < 110.0);
    }

    #[test]
    fn the_measured_admitted_rate_becomes_the_ceiling() {
        let t0 = StdInstant::now();
        let mut c = Control::new(200.0, t0);
        c.throttled(t0, at(t0, 0.3), 60).unwrap();
        // Between the cut and the next 429, 2 s later, the server admitted 100 answers: it
        // grants 50/s, so the rate goes to 50/s, not 0.7 × ~140.
        let cut = c.throttled(at(t0, 2.2), at(t0, 2.3), 160).unwrap();
        assert!(close(cut.measured.unwrap(), 50.0), "{cut:?}");
        assert!(close(cut.rate, 50.0), "{cut:?}");
        // It stays there while climbing from the ceiling itself (k = 0), then probes above.
        assert!(close(c.rate_at(at(t0, 2.3)), 50.0));
        let probe = c.rate_at(at(t0, 4.3));
        assert!(close(probe, 50.0 * (1.0 + GROWTH * 8.0)), "{probe}");
    }

    #[test]
    fn a_cut_is_never_deeper_than_a_quarter() {
        let t0 = StdInstant::now();
        let mut c = Control::new(1000.0, t0);
        // Only 10 answers in 10 s (the run had little to send): not a reason to drop to 1/s.
        let cut = c.throttled(at(t0, 9.9), at(t0, 10.0), 10).unwrap();
        assert!(close(cut.rate, 250.0), "{cut:?}");
    }

    #[test]
    fn the_rate_climbs_back_to_the_ceiling_and_stays() {
        let t0 = StdInstant::now();
        let mut c = Control::new(100.0, t0);
        c.throttled(at(t0, 0.1), at(t0, 0.2), 20).unwrap(); // 100 → 70, w_max 100
        let k = (0.3f64 / GROWTH).cbrt();
        let mut last = 0.0;
        for step in 0..=100 {
            let r = c.rate_at(at(t0, 0.2 + f64::from(step) * 0.1));
            assert!(
                r >= last - 1e-9,
                "the climb went down at step {step}: {r} < {last}"
            );
            last = r;
        }
        // Concave to the old rate at k, where it is flat ...
        assert!(close(c.rate_at(at(t0, 0.2 + k)), 100.0));
        assert!(c.rate_at(at(t0, 0.2 + k * 0.5)) > 70.0 + 0.5 * 30.0);
        // ... and capped at --rate forever after.
        assert_eq!(c.rate_at(at(t0, 30.0)), 100.0);
        assert_eq!(c.rate_at(at(t0, 3600.0)), 100.0);
    }

    #[test]
    fn a_slow_run_climbs_per_request_not_per_second() {
        let t0 = StdInstant::now();
        let mut c = Control::new(1.0, t0);
        c.throttled(t0, at(t0, 0.5), 0).unwrap(); // 1/s → 0.7/s
        // The climb's unit is 10 requests at 1/s = 10 s: back at 1/s after 33 s, not 3.3 s.
        assert!(c.rate_at(at(t0, 0.5 + 3.35)) < 0.9);
        let k = (0.3f64 / GROWTH).cbrt();
        assert!(close(c.rate_at(at(t0, 0.5 + 10.0 * k)), 1.0));
    }

    #[test]
    fn the_gate_spaces_requests_evenly_and_disengages_at_the_ceiling() {
        let t0 = StdInstant::now();
        let mut c = Control::new(100.0, t0);
        // Not throttled yet: no gate.
        assert_eq!(c.reserve(t0), None);
        // Cut to 0.25/s·4 … measured 10/s over 2 s → rate max(10, 25) = 25/s.
        let cut = c.throttled(at(t0, 1.9), at(t0, 2.0), 20).unwrap();
        assert!(close(cut.rate, 25.0), "{cut:?}");
        // Eight workers arriving at once get slots 40 ms apart (no burst), the first one
        // period after the cut.
        let now = at(t0, 2.0);
        let slots: Vec<_> = (0..8).map(|_| c.reserve(now).unwrap()).collect();
        assert_eq!(slots[0], at(t0, 2.04));
        for pair in slots.windows(2) {
            let gap = pair[1].duration_since(pair[0]).as_secs_f64();
            assert!((gap - 0.04).abs() < 0.001, "{gap}");
        }
        // Idle time earns no burst: after a pause the next slot is "now", the one after a
        // period later.
        let later = at(t0, 5.0);
        let a = c.reserve(later).unwrap();
        let b = c.reserve(later).unwrap();
        assert_eq!(a, later);
        assert!(b > later);
        // Once the climb reaches --rate the gate lets go.
        assert_eq!(c.reserve(at(t0, 120.0)), None);
    }

    #[test]
    fn a_new_episode_restarts_the_measurement_and_the_gate() {
        let t0 = StdInstant::now();
        let mut c = Control::new(200.0, t0);
        c.throttled(t0, at(t0, 0.5), 0).unwrap();
        for _ in 0..50 {
            c.reserve(at(t0, 0.5));
        }
        assert!(c.next_slot > at(t0, 0.8));
        c.throttled(at(t0, 0.8), at(t0, 0.9), 10).unwrap();
        assert!(c.next_slot > at(t0, 0.9) && c.next_slot < at(t0, 0.95));
        assert_eq!(c.admitted_at_window_start, 10);
    }

    #[test]
    fn the_rate_never_falls_below_the_floor() {
        let t0 = StdInstant::now();
        let mut c = Control::new(10.0, t0);
        let mut now = t0;
        let mut lowest = f64::MAX;
        for _ in 0..40 {
            // Each 429 comes just after the previous cut took effect, and nothing is admitted.
            now = c.cut.map_or(now, |ep| ep.effective) + Duration::from_secs(2);
            assert!(c.throttled(now, now, 0).is_some());
            lowest = lowest.min(c.rate_at(now));
        }
        assert!(close(lowest, 10.0 * FLOOR_SHARE), "{lowest}");
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
    fn only_429s_lower_the_rate() {
        let pacer = Pacer::new(Rate::per_second(50.0), 1, true);
        for _ in 0..100 {
            pacer.on_answer(Instant::now(), false);
        }
        assert_eq!(pacer.current_rate(), Rate::per_second(50.0));
        pacer.on_answer(Instant::now(), true);
        assert!(pacer.current_rate().as_per_second() < 50.0);
        assert!(
            pacer
                .adaptive
                .as_ref()
                .unwrap()
                .engaged
                .load(Ordering::Relaxed)
        );
    }

    #[tokio::test]
    async fn paces_requests_at_the_rate() {
        let pacer = Pacer::new(Rate::per_second(200.0), 1, true);
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
        let pacer = Pacer::new(Rate::per_second(1000.0), 1, true);
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
