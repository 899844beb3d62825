//! The progress display, made in one place: an indicatif bar on a terminal, a plain line every
//! 10 s otherwise, nothing with -q (docs/design.md#progress-logs-and-the-summary).
//!
//! What it counts: a row is done when its report row is written, except a `skipped` one (never
//! attempted because the run stopped), which is shown apart and never fills the bar. The rate
//! is rows *sent* per second — rows of the plan that finished, not invalid or duplicate rows
//! that end the moment they are read, nor rows a `--resume` carried over (those never reach
//! the writer) — over the last 10 s, and the ETA is the rows still to send at that rate.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::counters::RequestCounts;
use crate::report::status::Status;
use crate::report::summary::Tally;

/// Interval of the plain progress line when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The sending rate is measured over about this long: long enough to smooth the bursts a
/// pool of workers finishes rows in, short enough to follow a throttled tenant.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The rate is not shown before rows have been sending this long (one row finishing 5 ms after
/// the start is not 200 rows a second).
const RATE_MIN_SPAN: Duration = Duration::from_millis(500);

/// Samples of the sending rate are kept at most this often.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProgressMode {
    Bar,
    Plain,
    Hidden,
}

impl ProgressMode {
    /// Bar on a terminal, plain line otherwise, nothing when quiet.
    pub(crate) fn detect(quiet: bool) -> ProgressMode {
        if quiet {
            ProgressMode::Hidden
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Plain
        }
    }
}

pub(crate) struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    /// Rows this invocation writes (the input's, less those a `--resume` carried over).
    total: u64,
    /// Of those, rows to send (valid, not duplicates).
    to_send: u64,
    rate: SendRate,
    last_plain: Instant,
    last_message: Instant,
}

impl Progress {
    pub(crate) fn new(total: u64, to_send: u64, mode: ProgressMode) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner:.green} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {pos}/{len} rows \
                 · {prefix}\n  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(Counts::default().pace(None, to_send));
            bar.enable_steady_tick(Duration::from_millis(200));
            crate::logging::set_active_bar(Some(bar.clone()));
            bar
        });
        let now = Instant::now();
        Progress {
            mode,
            bar,
            total,
            to_send,
            rate: SendRate::new(now),
            last_plain: now,
            last_message: now,
        }
    }

    /// A cheap handle that prints messages above the bar (see `Notices`).
    pub(crate) fn notices(&self) -> Notices {
        Notices {
            bar: self.bar.clone(),
        }
    }

    /// After rows were written.
    pub(crate) fn update(&mut self, tally: &Tally, counts: impl Into<RequestCounts>) {
        let now = Instant::now();
        let c = Counts::of(tally);
        self.rate.record(now, c.sent);
        if let Some(bar) = &self.bar {
            bar.set_position(c.done);
            // Rebuilding the text per row would cost more than the row; 10 times a second is
            // what a person can read anyway.
            if now.duration_since(self.last_message) >= Duration::from_millis(100) {
                self.redraw_text(tally, &c, counts.into(), now);
                self.last_message = now;
            }
        }
    }

    /// Periodic: the plain line when it is due.
    pub(crate) fn tick(&mut self, tally: &Tally, counts: impl Into<RequestCounts>) {
        match self.mode {
            ProgressMode::Bar => self.update(tally, counts),
            ProgressMode::Plain if self.last_plain.elapsed() >= PLAIN_EVERY => {
                let now = Instant::now();
                self.last_plain = now;
                let c = Counts::of(tally);
                self.rate.record(now, c.sent);
                self.plain_line(tally, &c, counts.into(), now);
            }
            _ => {}
        }
    }

    fn redraw_text(&self, tally: &Tally, c: &Counts, counts: RequestCounts, now: Instant) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(c.pace(self.rate.per_second(now, c.sent), self.to_send));
            bar.set_message(message(tally, counts));
        }
    }

    fn plain_line(&self, tally: &Tally, c: &Counts, counts: RequestCounts, now: Instant) {
        let pct = (c.done * 100).checked_div(self.total).unwrap_or(100);
        let line = format!(
            "progress: {}/{} rows ({pct}%), {}; {}\n",
            c.done,
            self.total,
            c.pace(self.rate.per_second(now, c.sent), self.to_send),
            message(tally, counts)
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// At the end: the last counts stay on screen (the summary follows).
    pub(crate) fn finish(&mut self, tally: &Tally, counts: impl Into<RequestCounts>) {
        let now = Instant::now();
        let c = Counts::of(tally);
        self.rate.record(now, c.sent);
        if let Some(bar) = &self.bar {
            bar.set_position(c.done);
            self.redraw_text(tally, &c, counts.into(), now);
        }
        if let Some(bar) = self.bar.take() {
            // Not `finish`, which fills the bar: rows skipped by a stop were not done.
            bar.abandon();
            crate::logging::set_active_bar(None);
        }
    }
}

/// What the display counts, from the rows written so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    /// Rows with an outcome: every row written but the skipped ones.
    done: u64,
    /// Rows of the plan (neither invalid nor duplicate) that finished.
    sent: u64,
    /// Rows never attempted because the run stopped.
    skipped: u64,
}

impl Counts {
    fn of(tally: &Tally) -> Counts {
        let skipped = tally.get(Status::Skipped);
        let done = tally.total() - skipped;
        let unsent = tally.get(Status::Invalid) + tally.get(Status::Duplicate);
        Counts {
            done,
            sent: done.saturating_sub(unsent),
            skipped,
        }
    }

    /// "12.5 rows/s sent · ETA 1m 4s", "– rows/s sent · ETA –" before anything is measured, or
    /// what stopped once rows are skipped.
    fn pace(&self, per_second: Option<f64>, to_send: u64) -> String {
        if self.skipped > 0 {
            return format!("stopped: {} not attempted (skipped)", rows(self.skipped));
        }
        let left = to_send.saturating_sub(self.sent);
        let eta = match per_second {
            _ if left == 0 => "0s".to_string(),
            Some(r) if r > 0.0 => {
                let secs = (left as f64 / r).ceil().min(1e9) as u64;
                humantime::format_duration(Duration::from_secs(secs)).to_string()
            }
            _ => "–".to_string(),
        };
        let rate = per_second.map_or_else(|| "–".to_string(), |r| format!("{r:.1}"));
        format!("{rate} rows/s sent · ETA {eta}")
    }
}

fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}

/// Rows sent per second over the last `RATE_WINDOW`, on explicit instants.
#[derive(Debug)]
struct SendRate {
    /// (instant, rows sent by then), oldest first, at least `SAMPLE_EVERY` apart; the first
    /// is the start of the measurement window.
    samples: VecDeque<(Instant, u64)>,
}

impl SendRate {
    fn new(start: Instant) -> SendRate {
        SendRate {
            samples: VecDeque::from([(start, 0)]),
        }
    }

    fn record(&mut self, now: Instant, sent: u64) {
        let due = self
            .samples
            .back()
            .is_none_or(|&(at, _)| now.saturating_duration_since(at) >= SAMPLE_EVERY);
        if due {
            self.samples.push_back((now, sent));
        }
        // The window starts at the newest sample at least RATE_WINDOW old.
        while self.samples.len() > 1
            && now.saturating_duration_since(self.samples[1].0) >= RATE_WINDOW
        {
            self.samples.pop_front();
        }
    }

    /// `None` until a row was sent and the window spans `RATE_MIN_SPAN`.
    fn per_second(&self, now: Instant, sent: u64) -> Option<f64> {
        let &(since, before) = self.samples.front()?;
        let span = now.saturating_duration_since(since);
        if sent == 0 || span < RATE_MIN_SPAN {
            return None;
        }
        Some(sent.saturating_sub(before) as f64 / span.as_secs_f64())
    }
}

/// Prints whole messages to stderr while the progress bar may be on screen: the bar is cleared,
/// the message written, the bar drawn again below it. Written straight over the bar, a
/// message is clipped to a line or erased at the bar's next redraw. Cheap to clone; for tasks
/// that do not own the bar (the Ctrl-C handler).
#[derive(Clone, Debug, Default)]
pub(crate) struct Notices {
    bar: Option<ProgressBar>,
}

impl Notices {
    /// Writes `text` and a newline to stderr; never panics, a failed write is lost.
    pub(crate) fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| crate::console::errln!("{text}")),
            None => crate::console::errln!("{text}"),
        }
    }
}

fn message(tally: &Tally, counts: RequestCounts) -> String {
    let RequestCounts {
        requests,
        throttled,
        ..
    } = counts;
    let brief = tally.brief();
    let brief = if brief.is_empty() {
        "starting".to_string()
    } else {
        brief
    };
    format!("{brief} | {requests} requests, {throttled} × 429")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(statuses: &[(Status, u64)]) -> Tally {
        let mut t = Tally::default();
        for &(s, n) in statuses {
            for _ in 0..n {
                t.add(s);
            }
        }
        t
    }

    #[test]
    fn skipped_rows_are_not_done_and_invalid_rows_are_not_sent() {
        let t = tally(&[
            (Status::Deleted, 3),
            (Status::Failed, 1),
            (Status::Invalid, 2),
            (Status::Duplicate, 1),
            (Status::Skipped, 7),
        ]);
        let c = Counts::of(&t);
        assert_eq!(
            c,
            Counts {
                done: 7,
                sent: 4,
                skipped: 7
            }
        );
        assert_eq!(
            c.pace(Some(3.0), 11),
            "stopped: 7 rows not attempted (skipped)"
        );
    }

    #[test]
    fn the_eta_is_the_rows_left_to_send_at_the_sending_rate() {
        let c = Counts::of(&tally(&[(Status::Deleted, 40), (Status::Invalid, 500)]));
        assert_eq!(c.pace(Some(10.0), 100), "10.0 rows/s sent · ETA 6s");
        assert_eq!(c.pace(None, 100), "– rows/s sent · ETA –");
        assert_eq!(c.pace(Some(0.0), 100), "0.0 rows/s sent · ETA –");
        assert_eq!(c.pace(Some(2.0), 40), "2.0 rows/s sent · ETA 0s");
    }

    #[test]
    fn the_rate_counts_rows_sent_over_the_last_ten_seconds() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut r = SendRate::new(t0);
        // Nothing sent yet, however long: no rate (not 0/s from rows that needed no request).
        r.record(at(1.0), 0);
        assert_eq!(r.per_second(at(1.0), 0), None);
        // 10 rows a second for 20 s.
        for step in 1..=200 {
            let s = 1.0 + f64::from(step) * 0.1;
            r.record(at(s), step as u64);
        }
        let rate = r.per_second(at(21.0), 200).unwrap();
        assert!((rate - 10.0).abs() < 0.2, "{rate}");
        // Then 2 rows a second: after 10 s the window holds only those.
        let mut sent = 200;
        for step in 1..=100 {
            if step % 5 == 0 {
                sent += 1;
            }
            r.record(at(21.0 + f64::from(step) * 0.1), sent);
        }
        let rate = r.per_second(at(31.0), sent).unwrap();
        assert!((rate - 2.0).abs() < 0.3, "{rate}");
        assert!(r.samples.len() <= 102, "{}", r.samples.len());
    }

    #[test]
    fn one_early_row_is_not_a_rate() {
        let t0 = Instant::now();
        let mut r = SendRate::new(t0);
        let soon = t0 + Duration::from_millis(5);
        r.record(soon, 1);
        assert_eq!(r.per_second(soon, 1), None);
    }
}
