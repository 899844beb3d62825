//! Writing to stdout and stderr without ever panicking. `println!` and `eprintln!` panic when
//! the stream is a closed pipe (`run … 2>&1 | tee run.log`, and the Ctrl-C that stops the run
//! also kills `tee`); a message that cannot be shown must never stop the tool halfway, least of
//! all between a Ctrl-C and the stop it asks for. Use `outln!` / `errln!` instead.

use std::fmt;
use std::io::{self, Write};

/// Writes `args` and a newline to stdout in one locked write; errors are ignored.
pub(crate) fn write_out(args: fmt::Arguments<'_>) {
    write_line(&mut io::stdout().lock(), args);
}

/// Writes `args` and a newline to stderr in one locked write; errors are ignored.
pub(crate) fn write_err(args: fmt::Arguments<'_>) {
    write_line(&mut io::stderr().lock(), args);
}

/// Writes `bytes` as they are to stdout; errors are ignored.
pub(crate) fn write_out_bytes(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// Writes `bytes` as they are to stderr; errors are ignored.
pub(crate) fn write_err_bytes(bytes: &[u8]) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(bytes).and_then(|()| err.flush());
}

fn write_line(out: &mut dyn Write, args: fmt::Arguments<'_>) {
    // Formatted first, so that one message is one write and a failing stream stops nothing.
    let mut line = fmt::format(args);
    line.push('\n');
    let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
}

/// `println!` that never panics: a closed or failing stdout loses the line, nothing else.
macro_rules! outln {
    () => {
        $crate::console::write_out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::console::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a closed or failing stderr loses the line, nothing else.
macro_rules! errln {
    () => {
        $crate::console::write_err(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::console::write_err(format_args!($($arg)*))
    };
}

pub(crate) use {errln, outln};

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose reader has gone away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_stream_loses_the_line_and_nothing_else() {
        write_line(&mut ClosedPipe, format_args!("lost {}", 1));
        let mut buf = Vec::new();
        write_line(&mut buf, format_args!("kept {}", 2));
        assert_eq!(buf, b"kept 2\n");
    }
}
