//! Adaptive rate control (`docs/design.md#pace-and-retries`): lowers the sending rate when the
//! server throttles and climbs back to `--rate` while it does not. Pure arithmetic on explicit
//! instants, so tests drive time by hand; the pacer asks it for the rate of every slot.
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
//!   `--rate`.
//!
//! Only 429s lower the rate. Every other ending of a request, 5xx and transport failures
//! included, counts as admitted: the server did not throttle it, and resets or timeouts
//! between sporadic 429s must not ratchet the measured rate down.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Multiplicative decrease of one throttle episode (AWS SDKs and CUBIC use 0.7).
pub(crate) const BETA: f64 = 0.7;
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

/// The control law on explicit instants (no clock inside).
#[derive(Debug)]
pub(crate) struct AdaptiveRate {
    /// `--rate`, per second: the rate never climbs above it.
    ceiling: f64,
    floor: f64,
    /// (instant, admitted answers so far) at the start and at every cut: the admitted rate
    /// is measured from the latest mark at least `MIN_WINDOW` old. Bounded: older marks go.
    marks: VecDeque<(Instant, u64)>,
    /// The latest cut; `None` before the first throttle episode.
    cut: Option<Episode>,
}

#[derive(Clone, Copy, Debug)]
struct Episode {
    at: Instant,
    /// Requests sent before this instant were sent before the cut took effect.
    effective: Instant,
    /// The ceiling the climb returns to.
    w_max: f64,
    /// Time units from the cut until the climb is back at `w_max`.
    k: f64,
    /// Seconds per time unit of the climb.
    unit: f64,
}

/// What one cut decided, for the log line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cut {
    /// The rate the run sends at from now on.
    pub(crate) rate: f64,
    pub(crate) measured: Option<f64>,
    /// Why `rate` is what it is: the log line states `rate` and this, and no other rate.
    pub(crate) basis: Basis,
    /// The first instant a request may leave at the new rate.
    pub(crate) effective: Instant,
}

/// Where a cut's rate comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Basis {
    /// The rate the server admitted over this window, lower than the rate before.
    Admitted { over: Duration },
    /// The server admitted everything sent over this window: the rate stays as it was.
    Unchanged { over: Duration },
    /// Nothing measured yet (the first second): `BETA` × the rate before.
    Multiplied,
    /// What was admitted is below `DEEPEST_CUT` × the rate before, which is taken instead
    /// (the run may have had little to send).
    DeepestCut,
    /// The lowest rate a run goes to, `FLOOR_SHARE` × `--rate`.
    Floor,
}

/// `DEEPEST_CUT` and `FLOOR_SHARE` in words, for the log line.
pub(crate) const DEEPEST_CUT_WORDS: &str = "a quarter of the rate before";
pub(crate) const FLOOR_WORDS: &str = "the lowest a run goes (a thousandth of --rate)";

impl AdaptiveRate {
    pub(crate) fn new(ceiling: f64, start: Instant) -> AdaptiveRate {
        AdaptiveRate {
            ceiling,
            floor: ceiling * FLOOR_SHARE,
            marks: VecDeque::from([(start, 0)]),
            cut: None,
        }
    }

    /// The sending rate at `now`, per second.
    pub(crate) fn rate_at(&self, now: Instant) -> f64 {
        let Some(ep) = self.cut else {
            return self.ceiling;
        };
        let t = now.saturating_duration_since(ep.at).as_secs_f64() / ep.unit - ep.k;
        (ep.w_max * (1.0 + GROWTH * t * t * t)).clamp(self.floor, self.ceiling)
    }

    /// A 429 for a request sent at `sent_at`, seen at `now`, with `admitted` non-429 answers
    /// so far. Starts a throttle episode and returns the cut, unless the request left before
    /// the latest cut took effect: that 429 belongs to the episode already answered.
    pub(crate) fn throttled(
        &mut self,
        sent_at: Instant,
        now: Instant,
        admitted: u64,
    ) -> Option<Cut> {
        if self.cut.is_some_and(|ep| sent_at < ep.effective) {
            return None;
        }
        let current = self.rate_at(now);
        let window = self
            .marks
            .iter()
            .rev()
            .find(|(at, _)| now.saturating_duration_since(*at) >= MIN_WINDOW)
            .map(|&(at, before)| {
                let over = now.saturating_duration_since(at);
                (
                    admitted.saturating_sub(before) as f64 / over.as_secs_f64(),
                    over,
                )
            });
        let measured = window.map(|(m, _)| m);
        // What the server demonstrably admitted over the last second or more is what it
        // grants: the rate goes there, not lower. A 429 while it admitted everything sent (a
        // sporadic 429 that is not about the rate) therefore costs no rate; without such a
        // measurement (the first second) the cut is multiplicative.
        let wanted = measured.map_or(current * BETA, |m| m.min(current));
        let rate = wanted.max(current * DEEPEST_CUT).max(self.floor);
        let basis = match window {
            _ if rate > wanted && rate == self.floor => Basis::Floor,
            _ if rate > wanted => Basis::DeepestCut,
            None => Basis::Multiplied,
            Some((m, over)) if m >= current => Basis::Unchanged { over },
            Some((_, over)) => Basis::Admitted { over },
        };
        // The climb returns to what the server was measured to grant (or, without a
        // measurement, to where the rate was when the 429 came).
        let w_max = measured.map_or(current, |m| m.min(current)).max(rate);
        let k = ((w_max - rate) / (GROWTH * w_max)).cbrt();
        let unit = (UNIT_REQUESTS / w_max).max(1.0);
        // The cut takes effect one period at the new rate from now: no slot comes before that,
        // so a 429 for anything sent earlier (in flight, or racing this very cut) belongs to
        // this episode.
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
            basis,
            effective,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, secs: f64) -> Instant {
        t0 + Duration::from_secs_f64(secs)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn a_burst_of_429s_is_one_cut() {
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(200.0, t0);
        // The first 429 comes after 0.3 s: too short to trust a measurement, so ×0.7.
        let cut = c.throttled(at(t0, 0.29), at(t0, 0.3), 60).unwrap();
        assert!(close(cut.rate, 140.0), "{cut:?}");
        assert_eq!(cut.measured, None);
        assert_eq!(cut.basis, Basis::Multiplied);
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
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(200.0, t0);
        c.throttled(t0, at(t0, 0.3), 60).unwrap();
        // Between the cut and the next 429, 2 s later, the server admitted 100 answers: it
        // grants 50/s, so the rate goes to 50/s, not 0.7 × ~140.
        let cut = c.throttled(at(t0, 2.2), at(t0, 2.3), 160).unwrap();
        assert!(close(cut.measured.unwrap(), 50.0), "{cut:?}");
        assert!(close(cut.rate, 50.0), "{cut:?}");
        assert_eq!(
            cut.basis,
            Basis::Admitted {
                over: Duration::from_secs(2)
            }
        );
        // It stays there while climbing from the ceiling itself (k = 0), then probes above.
        assert!(close(c.rate_at(at(t0, 2.3)), 50.0));
        let probe = c.rate_at(at(t0, 4.3));
        assert!(close(probe, 50.0 * (1.0 + GROWTH * 8.0)), "{probe}");
    }

    #[test]
    fn a_cut_is_never_deeper_than_a_quarter() {
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(1000.0, t0);
        // Only 10 answers in 10 s (the run had little to send): not a reason to drop to 1/s.
        let cut = c.throttled(at(t0, 9.9), at(t0, 10.0), 10).unwrap();
        assert!(close(cut.rate, 250.0), "{cut:?}");
        assert_eq!(cut.basis, Basis::DeepestCut);
    }

    #[test]
    fn the_rate_climbs_back_to_the_ceiling_and_stays() {
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(100.0, t0);
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
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(1.0, t0);
        c.throttled(t0, at(t0, 0.5), 0).unwrap(); // 1/s → 0.7/s
        // The climb's unit is 10 requests at 1/s = 10 s: back at 1/s after 33 s, not 3.3 s.
        assert!(c.rate_at(at(t0, 0.5 + 3.35)) < 0.9);
        let k = (0.3f64 / GROWTH).cbrt();
        assert!(close(c.rate_at(at(t0, 0.5 + 10.0 * k)), 1.0));
    }

    #[test]
    fn a_cut_sets_when_it_takes_effect_and_restarts_the_measurement() {
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(100.0, t0);
        // Measured 10/s over 2 s → rate max(10, 0.25 × 100) = 25/s, effective 40 ms on.
        let cut = c.throttled(at(t0, 1.9), at(t0, 2.0), 20).unwrap();
        assert!(close(cut.rate, 25.0), "{cut:?}");
        assert_eq!(cut.effective, at(t0, 2.04));
        assert_eq!(c.marks.back(), Some(&(at(t0, 2.0), 20)));
    }

    #[test]
    fn a_sporadic_429_while_everything_was_admitted_costs_no_rate() {
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(100.0, t0);
        // 100/s admitted for 5 s, then one 429: the server grants what we send.
        let cut = c.throttled(at(t0, 4.99), at(t0, 5.0), 500).unwrap();
        assert!(close(cut.rate, 100.0), "{cut:?}");
        assert_eq!(
            cut.basis,
            Basis::Unchanged {
                over: Duration::from_secs(5)
            }
        );
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

    #[test]
    fn the_rate_never_falls_below_the_floor() {
        let t0 = Instant::now();
        let mut c = AdaptiveRate::new(10.0, t0);
        let mut now = t0;
        let mut lowest = f64::MAX;
        for _ in 0..40 {
            // Each 429 comes just after the previous cut took effect, and nothing is admitted.
            now = c.cut.map_or(now, |ep| ep.effective) + Duration::from_secs(2);
            let cut = c.throttled(now, now, 0).unwrap();
            lowest = lowest.min(c.rate_at(now));
            if close(cut.rate, 10.0 * FLOOR_SHARE) {
                assert_eq!(cut.basis, Basis::Floor, "{cut:?}");
            }
        }
        assert!(close(lowest, 10.0 * FLOOR_SHARE), "{lowest}");
    }
}
