//! Rows finished over time, for the audit page: the report's `finishedAt` times binned in
//! fixed memory, however long the job and however many rows.
//!
//! A resumed job may be two bursts of work a night apart, so time is first grouped into
//! `Spans` (stretches of activity without a long pause); the chart shows the spans side by
//! side with the pause marked, instead of a long empty axis. Both the spans and the bins are
//! capped, so a report of any size (or a hostile one with every line a day apart) costs a
//! few kilobytes.

/// A pause longer than this between rows starts a new span.
const GAP_MS: i64 = 5 * 60 * 1000;
/// At most this many spans; beyond it the two closest are merged.
const MAX_SPANS: usize = 16;
/// Bin widths to choose from: a round number of seconds.
const STEPS_MS: [i64; 17] = [
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
    1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
];

/// Stretches of activity, in milliseconds since the Unix epoch, sorted and apart by more than
/// `GAP_MS` (until the cap forces a merge).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spans {
    spans: Vec<(i64, i64)>,
}

impl Spans {
    /// Adds the instant `t`: it extends the span it is near, or starts a new one.
    pub(crate) fn add(&mut self, t: i64) {
        // Rows are written as they finish, so nearly every time extends the last span.
        if let Some(last) = self.spans.last_mut()
            && t >= last.0 - GAP_MS
            && t <= last.1 + GAP_MS
        {
            last.0 = last.0.min(t);
            last.1 = last.1.max(t);
        } else {
            self.spans.push((t, t));
        }
        self.normalise();
    }

    fn normalise(&mut self) {
        if self.spans.len() < 2 {
            return;
        }
        self.spans.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.spans.len());
        for &(a, b) in &self.spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 + GAP_MS => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        while merged.len() > MAX_SPANS {
            let closest = (1..merged.len())
                .min_by_key(|&i| merged[i].0 - merged[i - 1].1)
                .unwrap_or(1);
            let (_, b) = merged.remove(closest);
            merged[closest - 1].1 = merged[closest - 1].1.max(b);
        }
        self.spans = merged;
    }

    pub(crate) fn spans(&self) -> &[(i64, i64)] {
        &self.spans
    }

    /// Total time covered by the spans.
    fn active_ms(&self) -> i64 {
        self.spans.iter().map(|(a, b)| b - a).sum()
    }
}

/// What finished in one bin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bin {
    /// Lines whose status counts as ok.
    pub(crate) ok: u32,
    /// Lines whose status needs attention.
    pub(crate) attention: u32,
    /// Lines whose DELETE took more than one attempt (a 429, a 5xx or a timeout before).
    pub(crate) retried: u32,
}

impl Bin {
    pub(crate) fn total(&self) -> u32 {
        self.ok + self.attention
    }
}

/// One span's bins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Start of the first bin, ms since the epoch (a multiple of the bin width).
    pub(crate) start: i64,
    pub(crate) bins: Vec<Bin>,
}

impl Segment {
    pub(crate) fn end(&self, width: i64) -> i64 {
        self.start + width * self.bins.len() as i64
    }
}

/// Lines binned by when they finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Timeline {
    /// Bin width in milliseconds.
    pub(crate) width: i64,
    pub(crate) segments: Vec<Segment>,
}

impl Timeline {
    /// Empty bins over `spans`, of the narrowest round width that needs at most `max_bins`.
    pub(crate) fn new(spans: &Spans, max_bins: usize) -> Timeline {
        let max_bins = max_bins.max(1) as i64;
        let n_bins = |w: i64| -> i64 {
            spans
                .spans()
                .iter()
                .map(|(a, b)| b.div_euclid(w) - a.div_euclid(w) + 1)
                .sum()
        };
        let width = STEPS_MS
            .into_iter()
            .find(|&w| n_bins(w) <= max_bins)
            .unwrap_or_else(|| {
                // Longer than the steps allow: a whole number of days.
                let days = spans.active_ms() / 86_400_000 / max_bins + 1;
                days.max(1) * 86_400_000
            });
        let segments = spans
            .spans()
            .iter()
            .map(|&(a, b)| {
                let first = a.div_euclid(width);
                let n = (b.div_euclid(width) - first + 1) as usize;
                Segment {
                    start: first * width,
                    bins: vec![Bin::default(); n],
                }
            })
            .collect();
        Timeline { width, segments }
    }

    /// Counts one line that finished at `t`; an instant outside every span is ignored.
    pub(crate) fn add(&mut self, t: i64, ok: bool, retried: bool) {
        let idx = self.segments.partition_point(|s| s.start <= t);
        let Some(seg) = idx.checked_sub(1).and_then(|i| self.segments.get_mut(i)) else {
            return;
        };
        let Ok(i) = usize::try_from((t - seg.start) / self.width) else {
            return;
        };
        if let Some(bin) = seg.bins.get_mut(i) {
            if ok {
                bin.ok += 1;
            } else {
                bin.attention += 1;
            }
            if retried {
                bin.retried += 1;
            }
        }
    }

    /// The largest rows-per-second figure of any bin.
    pub(crate) fn peak_per_second(&self) -> f64 {
        let most = self
            .segments
            .iter()
            .flat_map(|s| s.bins.iter())
            .map(Bin::total)
            .max()
            .unwrap_or(0);
        f64::from(most) * 1000.0 / self.width as f64
    }

    pub(crate) fn n_bins(&self) -> usize {
        self.segments.iter().map(|s| s.bins.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_close_together_are_one_span_and_a_night_apart_two() {
        let mut s = Spans::default();
        for t in [1_000, 2_000, 1_500, 60_000, 200_000] {
            s.add(t);
        }
        assert_eq!(s.spans(), &[(1_000, 200_000)]);
        let next_day = 86_400_000;
        s.add(next_day);
        s.add(next_day + 10);
        // A late line of the first span still lands there.
        s.add(150_000);
        assert_eq!(s.spans(), &[(1_000, 200_000), (next_day, next_day + 10)]);
    }

    #[test]
    fn spans_stay_few_whatever_the_times() {
        let mut s = Spans::default();
        for day in 0..1_000 {
            s.add(day * 86_400_000);
        }
        assert_eq!(s.spans().len(), MAX_SPANS);
        assert_eq!(s.spans()[0].0, 0);
        assert_eq!(s.spans().last().unwrap().1, 999 * 86_400_000);
    }

    #[test]
    fn bins_are_round_and_capped() {
        let mut s = Spans::default();
        s.add(10_000);
        s.add(70_500);
        let mut t = Timeline::new(&s, 120);
        assert_eq!(t.width, 1_000);
        assert_eq!(t.n_bins(), 61);
        t.add(10_000, true, false);
        t.add(10_999, false, true);
        t.add(70_500, true, false);
        t.add(5, true, false); // outside: ignored
        let bins = &t.segments[0].bins;
        assert_eq!(
            bins[0],
            Bin {
                ok: 1,
                attention: 1,
                retried: 1
            }
        );
        assert_eq!(bins[60].ok, 1);
        assert_eq!(t.peak_per_second(), 2.0);

        let mut long = Spans::default();
        long.add(0);
        long.add(4 * 3_600_000); // four hours in steps of a minute
        for i in 0..240 {
            long.add(i * 60_000);
        }
        let t = Timeline::new(&long, 120);
        assert_eq!(t.width, 300_000);
        assert!(t.n_bins() <= 120);
        let mut years = Spans::default();
        for d in 0..10_000 {
            years.add(d * 86_400_000 / 2);
        }
        assert!(Timeline::new(&years, 120).n_bins() <= 120 + MAX_SPANS);
    }
}
