//! Logging setup (tracing): levels from -q/-v/RUST_LOG, text or JSON lines on stderr, printed
//! above the progress bar instead of through it. On a terminal a line carries the local time
//! of day (`14:02:07`); JSON lines and lines written to a file or a pipe carry the full
//! RFC 3339 UTC time, as log collectors and later readers need.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use time::{OffsetDateTime, UtcOffset};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

/// How log lines are written on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, colored on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// The bar currently on screen, if any; log lines suspend it while they print.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

pub(crate) fn set_active_bar(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// Installs the global subscriber. RUST_LOG, when set, replaces the -q/-v levels.
///
/// Call it before any thread starts (first thing in `main`): the local UTC offset for the
/// terminal's time of day is read here, and the `time` crate reads it only while the process
/// has one thread (another thread may change the environment under `localtime_r`).
pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,ds100_offboard=info",
        (false, 1) => "info,ds100_offboard=debug",
        (false, _) => "debug,ds100_offboard=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let on_terminal = io::IsTerminal::is_terminal(&io::stderr());
    let timer = if format == LogFormat::Text && on_terminal {
        LogTime::TimeOfDay(UtcOffset::current_local_offset().ok())
    } else {
        LogTime::Rfc3339
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(timer)
        .with_writer(BarAwareStderr)
        // Its own reports of a failed write go through `eprintln!`, which panics on a closed
        // stderr.
        .log_internal_errors(false)
        .with_target(verbose > 0);
    let result = match format {
        LogFormat::Text => builder.with_ansi(on_terminal).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // A second init (tests calling run() twice in one process) keeps the first subscriber.
    let _ = result;
}

/// The time a log line starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogTime {
    /// `2025-06-01T21:04:11.123456Z`: for files, pipes and collectors.
    Rfc3339,
    /// `14:02:07` in the local time zone, for a person at the terminal; the offset is the one
    /// read at startup (a run that crosses a daylight-saving change keeps the old one). When
    /// the offset cannot be read, UTC, marked `Z`.
    TimeOfDay(Option<UtcOffset>),
}

impl FormatTime for LogTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match *self {
            LogTime::Rfc3339 => SystemTime.format_time(w),
            LogTime::TimeOfDay(offset) => {
                w.write_str(&time_of_day(OffsetDateTime::now_utc(), offset))
            }
        }
    }
}

/// `now` as `HH:MM:SS` at `offset`, or in UTC with a `Z` when there is none.
fn time_of_day(now: OffsetDateTime, offset: Option<UtcOffset>) -> String {
    let (t, zone) = match offset {
        Some(offset) => (now.to_offset(offset), ""),
        None => (now, "Z"),
    };
    format!("{:02}:{:02}:{:02}{zone}", t.hour(), t.minute(), t.second())
}

#[derive(Clone, Copy)]
struct BarAwareStderr;

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = BarAwareStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tracing-subscriber formats a whole event and writes it at once, so suspending the
        // bar per write keeps each log line intact.
        let bar = ACTIVE_BAR.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // A log line that cannot be written (stderr a closed pipe) is lost, and only that: an
        // error here would make tracing-subscriber report it with `eprintln!`, which panics in
        // whatever task was logging.
        let _ = match bar {
            Some(bar) => bar.suspend(|| io::stderr().lock().write_all(buf)),
            None => io::stderr().lock().write_all(buf),
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_of_day_is_local_and_short() {
        // 2025-06-01T21:04:11.5Z
        let now = OffsetDateTime::from_unix_timestamp_nanos(1_748_811_851_500_000_000).unwrap();
        let plus_0530 = UtcOffset::from_hms(5, 30, 0).ok();
        assert_eq!(time_of_day(now, plus_0530), "02:34:11");
        let minus_7 = UtcOffset::from_hms(-7, 0, 0).ok();
        assert_eq!(time_of_day(now, minus_7), "14:04:11");
        assert_eq!(time_of_day(now, None), "21:04:11Z");
    }
}
