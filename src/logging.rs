//! Logging setup (tracing): levels from -q/-v/RUST_LOG, text or JSON lines on stderr, printed
//! above the progress bar instead of through it.

use std::io::{self, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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
pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,ds100_offboard=info",
        (false, 1) => "info,ds100_offboard=debug",
        (false, _) => "debug,ds100_offboard=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(BarAwareStderr)
        // Its own reports of a failed write go through `eprintln!`, which panics on a closed
        // stderr.
        .log_internal_errors(false)
        .with_target(verbose > 0);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // A second init (tests calling run() twice in one process) keeps the first subscriber.
    let _ = result;
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
