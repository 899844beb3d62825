//! The one rate limiter of a run: every request (first try, retry, lookup) waits here for a
//! slot of one shared schedule. Holds `--rate`/`--burst`, the cooldown that a 429 imposes on
//! all workers, and the adaptive control (SPEC §4) that lowers the sending rate when the
//! server throttles and climbs back to `--rate` while it does not.
//!
//! Pacing is GCRA in its virtual-scheduling form: a worker *reserves* the next slot (the
//! theoretical arrival time, at most `burst − 1` periods early), sleeps until it and sends.
//! The schedule advances by one period per slot, not from the moment a late worker woke up,
//! so timer granularity and a busy machine cost no rate: the achieved rate is `--rate` less a
//! 0.5 % safety margin, and a late request is at most a catch-up, never a burst beyond
//! `--burst` (after a stall longer than a period the waiting workers are spaced again). (governor's
//! check-then-sleep limiter, used before, restarts the period at every late wake-up and
//! delivered 89/s at `--rate 100/s --burst 1` on the benchmark machine.)
//!
//! The control law, per throttle episode (one cut however many 429s the requests already in
//! flight bring back):
//!
//! - cut: to the rate of admitted (non-429) answers measured over the last second or more
//!   (from the latest cut at least a second old) when that is lower than the current rate —
//!   between two throttle episodes a token-bucket server has granted exactly its refill
//!   rate, so that measurement is the server's real limit, not a guess; in the first second,
//!   with nothing to measure, `BETA` × the current rate (the AWS SDKs' adaptive mode always
//!   multiplies, and a sporadic 429 unrelated to the rate then drains the rate away);
//! - climb: CUBIC, `rate(t) = w_max · (1 + GROWTH · (t − k)³)` with `w_max` the measured
//!   ceiling: concave back up to it, flat near it, then convex probing above it, capped at
//!   `--rate`. Only 429s lower the rate; 5xx and transport errors do not.
//!
//! While the rate is held below `--rate`, slots are evenly spaced (no burst).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use tokio::time::Instant;

use crate::rate::Rate;

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
/// Slots are spaced this much wider than the rate says. A request that leaves a little late
/// (timer granularity, a busy machine) followed by one on time would otherwise put
/// `rate + 1` requests into one second, using up the allowance that the server's own arrival
/// jitter needs; 0.5 % absorbs 5 ms of lateness per second and stays within SPEC's 1 %.
const PACING_MARGIN: f64 = 0.005;

pub struct Pacer {
    rate: Rate,
    burst: u32,
    /// Answers that were not 429, for the measured admitted rate: counted without the lock.
    admitted: AtomicU64,
    state: Mutex<State>,
}

struct State {
    schedule: Schedule,
    /// No request leaves before this instant (set by 429s).
    cooldown_until: Option<StdInstant>,
    /// `None` with `--no-adaptive`: the rate stays at `--rate`.
    control: Option<Control>,
}

impl Pacer {
    /// A pacer at `rate` with `burst`; `adaptive` lowers the rate on 429s (SPEC §4).
    pub fn new(rate: Rate, burst: u32, adaptive: bool) -> Pacer {
        let now = StdInstant::now();
        Pacer {
            rate,
            burst: burst.max(1),
            admitted: AtomicU64::new(0),
            state: Mutex::new(State {
                schedule: Schedule::new(now),
                cooldown_until: None,
                control: adaptive.then(|| Control::new(rate.as_per_second(), now)),
            }),
        }
    }

    /// Waits until this worker may send one request: past any cooldown, then its slot.
    pub async fn acquire(&self) {
        loop {
            let (until, ticket) = {
                let mut st = self.lock();
                let now = StdInstant::now();
                match st.cooldown_until {
                    Some(until) if until > now => (until, None),
                    _ => {
                        st.cooldown_until = None;
                        let (period, tolerance) = self.spacing(&st, now);
                        let (slot, after) = st.schedule.reserve(now, period, tolerance);
                        let ticket = Ticket {
                            generation: st.schedule.generation,
                            after,
                            // Later than this, the wake-up was a stall, not timer jitter.
                            stalled_after: slot + period + tolerance,
                            period,
                        };
                        (slot, Some(ticket))
                    }
                }
            };
            if until > StdInstant::now() {
                tokio::time::sleep_until(Instant::from_std(until)).await;
            }
            let Some(ticket) = ticket else {
                continue; // the cooldown is over: queue for a slot
            };
            let mut st = self.lock();
            // A 429 came in while this worker waited: the hold-off and the new schedule win.
            if st.schedule.generation == ticket.generation {
                st.schedule.commit(ticket.after);
                let now = StdInstant::now();
                if now > ticket.stalled_after {
                    // The process was not scheduled for longer than a period: the workers
                    // whose slots passed meanwhile would all leave at once. Space them again.
                    st.schedule.realign(now, ticket.period);
                }
                return;
            }
        }
    }

    /// A 429 arrived: every worker holds off for `wait` from now (the longest hold wins).
    pub fn hold_off(&self, wait: Duration) {
        let until = StdInstant::now() + wait;
        let mut st = self.lock();
        if st.cooldown_until.is_none_or(|cur| cur < until) {
            st.cooldown_until = Some(until);
            st.schedule.restart(until);
        }
    }

    /// Tells adaptive control how a request sent at `sent_at` ended: `throttled` for a 429.
    /// Every request is reported, transport errors included: a request the server did not
    /// throttle counts as admitted, whatever became of it, so that resets and timeouts
    /// between sporadic 429s do not ratchet the measured rate down.
    pub fn on_answer(&self, sent_at: Instant, throttled: bool) {
        if !throttled {
            self.admitted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut st = self.lock();
        let admitted = self.admitted.load(Ordering::Relaxed);
        let now = StdInstant::now();
        let Some(control) = st.control.as_mut() else {
            return;
        };
        let Some(cut) = control.throttled(sent_at.into_std(), now, admitted) else {
            return;
        };
        st.schedule.restart(cut.effective);
        drop(st);
        tracing::info!(
            "the server throttles (429): sending at {} for now ({}), climbing back towards {} \
             while no 429 comes",
            Rate::per_second(cut.rate),
            match cut.measured {
                Some(m) => format!(
                    "it admitted {} since the last cut",
                    Rate::per_second(m.max(1e-9))
                ),
                None => "0.7 × the rate before".to_string(),
            },
            self.rate
        );
    }

    /// The rate requests are currently sent at (below `--rate` after throttling).
    pub fn current_rate(&self) -> Rate {
        let st = self.lock();
        match &st.control {
            Some(control) => Rate::per_second(control.rate_at(StdInstant::now())),
            None => self.rate,
        }
    }

    /// Period and burst tolerance of the next slot: `--rate`/`--burst`, or evenly spaced at
    /// the adaptive rate while it is below `--rate`.
    fn spacing(&self, st: &State, now: StdInstant) -> (Duration, Duration) {
        let adapted = st
            .control
            .as_ref()
            .map(|c| c.rate_at(now))
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

/// The period between slots at `rate` per second, margin included.
fn spaced(rate: f64) -> Duration {
    Duration::from_secs_f64((1.0 + PACING_MARGIN) / rate)
}

/// A reserved slot, as the worker holding it needs it after its sleep.
struct Ticket {
    generation: u64,
    /// The schedule after this slot.
    after: StdInstant,
    stalled_after: StdInstant,
    period: Duration,
}

/// GCRA virtual scheduling on explicit instants (tests drive time by hand).
#[derive(Debug)]
struct Schedule {
    /// Theoretical arrival time of the next request.
    tat: StdInstant,
    /// `tat` as the requests that really left made it: reservations of workers that had to
    /// queue again (a hold-off came) are dropped by going back to it.
    committed: StdInstant,
    /// Bumped by every restart; a reservation from an older generation is void.
    generation: u64,
}

impl Schedule {
    fn new(start: StdInstant) -> Schedule {
        Schedule {
            tat: start,
            committed: start,
            generation: 0,
        }
    }

    /// The next slot, at most `tolerance` before the theoretical arrival time and never
    /// before `now`, and the schedule after it.
    fn reserve(
        &mut self,
        now: StdInstant,
        period: Duration,
        tolerance: Duration,
    ) -> (StdInstant, StdInstant) {
        let earliest = self.tat.checked_sub(tolerance).unwrap_or(now);
        let slot = earliest.max(now);
        self.tat = self.tat.max(slot) + period;
        (slot, self.tat)
    }

    /// A reserved slot was used.
    fn commit(&mut self, after: StdInstant) {
        self.committed = self.committed.max(after);
    }

    /// A request left at `now`, after a stall: the next slot is a period later, and open
    /// reservations (whose slots passed during the stall) are void.
    fn realign(&mut self, now: StdInstant, period: Duration) {
        self.tat = self.committed.max(now + period);
        self.committed = self.tat;
        self.generation += 1;
    }

    /// Voids every open reservation; the next slot is at `not_before` at the earliest.
    fn restart(&mut self, not_before: StdInstant) {
        self.tat = self.committed.max(not_before);
        self.generation += 1;
    }
}

/// The control law on explicit instants (no clock inside, so tests drive time by hand).
#[derive(Debug)]
struct Control {
    /// `--rate`, per second: the rate never climbs above it.
    ceiling: f64,
    floor: f64,
    /// (instant, admitted answers so far) at the start and at every cut: the admitted rate
    /// is measured from the latest mark at least `MIN_WINDOW` old. Bounded: older marks go.
    marks: VecDeque<(StdInstant, u64)>,
    /// The latest cut; `None` before the first throttle episode.
    cut: Option<Episode>,
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
    /// The first instant a request may leave at the new rate.
    effective: StdInstant,
}

impl Control {
    fn new(ceiling: f64, start: StdInstant) -> Control {
        Control {
            ceiling,
            floor: ceiling * FLOOR_SHARE,
            marks: VecDeque::from([(start, 0)]),
            cut: None,
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
        let measured = self
            .marks
            .iter()
            .rev()
            .find(|(at, _)| now.saturating_duration_since(*at) >= MIN_WINDOW)
            .map(|&(at, before)| {
                admitted.saturating_sub(before) as f64
                    / now.saturating_duration_since(at).as_secs_f64()
            });
        // What the server demonstrably admitted over the last second or more is what it
        // grants: the rate goes there, not lower. A 429 while it admitted everything sent (a
        // sporadic 429 that is not about the rate) therefore costs no rate; without such a
        // measurement (the first second) the cut is multiplicative.
        let rate = measured
            .map_or(current * BETA, |m| m.min(current))
            .max(current * DEEPEST_CUT)
            .max(self.floor);
        // The climb returns to what the server was measured to grant (or, without a
        // measurement, to where the rate was when the 429 came).
        let w_max = measured.map_or(current, |m| m.min(current)).max(rate);
        let k = ((w_max - rate) / (GROWTH * w_max)).cbrt();
        let unit = (UNIT_REQUESTS / w_max).max(1.0);
        // The cut takes effect one period at the new rate from now: no slot comes before that, so a 429 for anything sent earlier (in flight, or racing this very
        // cut) belongs to this episode.
        let effective = now + Duration::from_secs_f64(1.0 / rate);
        self.cut = Some(Episode {
            at: now,
            effective,
            w_max,
            k,
            unit,
        });
        self.marks.push_back((now, admitted));
        while self.marks.len() > 1 && now.saturating_duration_since(self.marks[1].0) >= MIN_WINDOW {
            self.marks.pop_front();
        }
        Some(Cut {
            rate,
            measured,
            effective,
        })
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
    fn a_cut_sets_when_it_takes_effect_and_restarts_the_measurement() {
        let t0 = StdInstant::now();
        let mut c = Control::new(100.0, t0);
        // Measured 10/s over 2 s → rate max(10, 0.25 × 100) = 25/s, effective 40 ms on.
        let cut = c.throttled(at(t0, 1.9), at(t0, 2.0), 20).unwrap();
        assert!(close(cut.rate, 25.0), "{cut:?}");
        assert_eq!(cut.effective, at(t0, 2.04));
        assert_eq!(c.marks.back(), Some(&(at(t0, 2.0), 20)));
    }

    #[test]
    fn a_sporadic_429_while_everything_was_admitted_costs_no_rate() {
        let t0 = StdInstant::now();
        let mut c = Control::new(100.0, t0);
        // 100/s admitted for 5 s, then one 429: the server grants what we send.
        let cut = c.throttled(at(t0, 4.99), at(t0, 5.0), 500).unwrap();
        assert!(close(cut.rate, 100.0), "{cut:?}");
        // Ten more sporadic ones, 0.5 s apart, while 100/s keep being admitted.
        let mut admitted = 500;
        for i in 1..=10 {
            admitted += 50;
            let now = at(t0, 5.0 + 0.5 * f64::from(i));
            c.throttled(now, now, admitted);
        }
        assert!(
            c.rate_at(at(t0, 10.0)) > 95.0,
            "{}",
            c.rate_at(at(t0, 10.0))
        );
        assert!(c.marks.len() <= 4, "{:?}", c.marks);
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_schedule_allows_the_burst_then_spaces_evenly() {
        let t0 = StdInstant::now();
        let mut s = Schedule::new(t0);
        let (period, tolerance) = (10 * MS, 20 * MS); // 100/s, burst 3
        let slots: Vec<_> = (0..6).map(|_| s.reserve(t0, period, tolerance).0).collect();
        assert_eq!(
            slots,
            [t0, t0, t0, t0 + 10 * MS, t0 + 20 * MS, t0 + 30 * MS]
        );
        // Idle time earns no more than the burst.
        let later = t0 + Duration::from_secs(10);
        let slots: Vec<_> = (0..4)
            .map(|_| s.reserve(later, period, tolerance).0)
            .collect();
        assert_eq!(slots, [later, later, later, later + 10 * MS]);
    }

    #[test]
    fn late_wake_ups_cost_no_rate_and_never_bunch_beyond_one() {
        // One request per 10 ms (100/s, burst 1); eight workers, each waking up to 9 ms late
        // after its slot, then sending and queueing again at once.
        let t0 = StdInstant::now();
        let mut s = Schedule::new(t0);
        let (period, tolerance) = (10 * MS, Duration::ZERO);
        let mut sent = Vec::new();
        let mut ready: Vec<StdInstant> = vec![t0; 8];
        let mut lateness = 7u64;
        for _ in 0..2000 {
            // The worker that queued first reserves next.
            let w = (0..ready.len()).min_by_key(|&w| ready[w]).unwrap();
            let (slot, after) = s.reserve(ready[w], period, tolerance);
            lateness = (lateness * 31 + 17) % 10; // 0..=9 ms, deterministic
            let at_send = slot + Duration::from_millis(lateness);
            s.commit(after);
            sent.push(at_send);
            ready[w] = at_send;
        }
        sent.sort();
        let span = sent[sent.len() - 1].duration_since(sent[0]).as_secs_f64();
        let achieved = (sent.len() - 1) as f64 / span;
        assert!((achieved - 100.0).abs() < 0.5, "{achieved}/s");
        let mut worst = 0;
        let mut lo = 0;
        for hi in 0..sent.len() {
            while sent[hi].duration_since(sent[lo]) >= Duration::from_secs(1) {
                lo += 1;
            }
            worst = worst.max(hi - lo + 1);
        }
        assert!(worst <= 101, "{worst} requests in one second");
    }

    #[test]
    fn after_a_stall_the_waiting_workers_are_spaced_again() {
        let t0 = StdInstant::now();
        let mut s = Schedule::new(t0);
        let period = 10 * MS;
        // Eight workers hold slots 0..70 ms; the process stalls until 50 ms.
        let tickets: Vec<_> = (0..8)
            .map(|_| s.reserve(t0, period, Duration::ZERO))
            .collect();
        let generation = s.generation;
        let now = t0 + 50 * MS;
        s.commit(tickets[0].1);
        s.realign(now, period);
        // The other seven reservations are void; the next slot is a period after this one.
        assert_ne!(s.generation, generation);
        assert_eq!(s.reserve(now, period, Duration::ZERO).0, now + period);
    }

    #[test]
    fn a_restart_voids_open_reservations_but_keeps_the_sent_ones() {
        let t0 = StdInstant::now();
        let mut s = Schedule::new(t0);
        let period = 10 * MS;
        let (_, first) = s.reserve(t0, period, Duration::ZERO);
        s.commit(first); // sent at t0
        for _ in 0..7 {
            s.reserve(t0, period, Duration::ZERO); // seven workers waiting for 10..70 ms
        }
        let generation = s.generation;
        // A 429 at t0 + 1 ms holds everyone off for 5 ms: the next slot is one period after
        // the request really sent, not after the seven void reservations (80 ms).
        s.restart(t0 + 5 * MS);
        assert_ne!(s.generation, generation);
        assert_eq!(
            s.reserve(t0 + 5 * MS, period, Duration::ZERO).0,
            t0 + 10 * MS
        );
        // A hold-off longer than the period: the next slot is its end.
        s.restart(t0 + 50 * MS);
        assert_eq!(
            s.reserve(t0 + 50 * MS, period, Duration::ZERO).0,
            t0 + 50 * MS
        );
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
        let st = pacer.lock();
        let (period, tolerance) = pacer.spacing(&st, StdInstant::now());
        assert!(period > Duration::from_millis(20), "{period:?}");
        assert_eq!(tolerance, Duration::ZERO);
    }

    #[test]
    fn slots_keep_a_small_margin_below_the_rate_and_the_burst_applies_at_it() {
        let pacer = Pacer::new(Rate::per_second(100.0), 3, true);
        let st = pacer.lock();
        let (period, tolerance) = pacer.spacing(&st, StdInstant::now());
        assert_eq!(period, Duration::from_micros(10_050));
        assert_eq!(tolerance, 2 * period);
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
