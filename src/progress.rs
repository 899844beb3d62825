//! The progress display, made in one place: an indicatif bar on a terminal, a plain line every
//! 10 s otherwise, nothing with -q (docs/design.md#progress-logs-and-the-summary).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::counters::RequestCounts;
use crate::report::summary::Tally;

/// Interval of the plain progress line when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

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
    total: u64,
    started: Instant,
    last_plain: Instant,
    last_message: Instant,
}

impl Progress {
    pub(crate) fn new(total: u64, mode: ProgressMode) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner:.green} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {pos}/{len} rows \
                 {rate} ETA {eta}\n  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", state.per_sec());
                },
            )
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            crate::logging::set_active_bar(Some(bar.clone()));
            bar
        });
        let now = Instant::now();
        Progress {
            mode,
            bar,
            total,
            started: now,
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
        if let Some(bar) = &self.bar {
            bar.set_position(tally.total());
            // Rebuilding the message per row would cost more than the row; 10 times a second
            // is what a person can read anyway.
            if self.last_message.elapsed() >= Duration::from_millis(100) {
                bar.set_message(message(tally, counts.into()));
                self.last_message = Instant::now();
            }
        }
    }

    /// Periodic: the plain line when it is due.
    pub(crate) fn tick(&mut self, tally: &Tally, counts: impl Into<RequestCounts>) {
        match self.mode {
            ProgressMode::Bar => self.update(tally, counts),
            ProgressMode::Plain if self.last_plain.elapsed() >= PLAIN_EVERY => {
                self.last_plain = Instant::now();
                self.plain_line(tally, counts.into());
            }
            _ => {}
        }
    }

    fn plain_line(&self, tally: &Tally, counts: RequestCounts) {
        let done = tally.total();
        let secs = self.started.elapsed().as_secs_f64();
        let per_sec = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = if per_sec > 0.0 && self.total > done {
            let left = Duration::from_secs(((self.total - done) as f64 / per_sec) as u64);
            humantime::format_duration(left).to_string()
        } else {
            "-".to_string()
        };
        let pct = (done * 100).checked_div(self.total).unwrap_or(100);
        let line = format!(
            "progress: {done}/{} rows ({pct}%), {per_sec:.1} rows/s, ETA {eta}; {}\n",
            self.total,
            message(tally, counts)
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// At the end: clear the bar (the summary follows).
    pub(crate) fn finish(&mut self, tally: &Tally, counts: impl Into<RequestCounts>) {
        if let Some(bar) = self.bar.take() {
            bar.set_position(tally.total());
            bar.set_message(message(tally, counts.into()));
            bar.finish();
            crate::logging::set_active_bar(None);
        }
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
