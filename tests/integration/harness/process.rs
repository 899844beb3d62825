//! Runs as child processes a test can signal, kill, read while they run and close the output
//! of; pseudo-terminals; output collected in the background.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Ran;

/// Sends a signal to a child process (SIGINT, SIGTERM…) without needing a `kill` binary.
pub fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Everything read from a pipe (or a terminal) by a background thread, readable at any time.
pub struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    pub fn start(mut from: impl Read + Send + 'static) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let thread = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            // A terminal's controller reports EIO once the other side is closed: an end too.
            while let Ok(n) = from.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Collector {
            buf,
            thread: Some(thread),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Everything, once the writer has closed its end.
    pub fn finish(mut self) -> String {
        if let Some(t) = self.thread.take() {
            t.join().expect("collector thread");
        }
        self.text()
    }
}

/// One output stream of a spawned run.
enum Stream {
    /// Not read yet: the test may still close it.
    Pipe(Box<dyn Read + Send>),
    Collecting(Collector),
    /// Closed by the test, or never a pipe (a terminal, a file).
    Closed,
}

impl Stream {
    fn of(pipe: Option<impl Read + Send + 'static>) -> Stream {
        match pipe {
            Some(p) => Stream::Pipe(Box::new(p)),
            None => Stream::Closed,
        }
    }

    /// Reads a pipe the test still holds from now on, in the background.
    fn collect(&mut self) -> Option<&Collector> {
        if let Stream::Pipe(_) = self
            && let Stream::Pipe(pipe) = std::mem::replace(self, Stream::Closed)
        {
            *self = Stream::Collecting(Collector::start(pipe));
        }
        match self {
            Stream::Collecting(c) => Some(c),
            _ => None,
        }
    }

    /// Everything read, once the run has ended.
    fn finish(&mut self) -> String {
        match std::mem::replace(self, Stream::Closed) {
            Stream::Collecting(c) => c.finish(),
            _ => String::new(),
        }
    }
}

/// A run started with `Cmd::spawn`; killed on drop if still running.
pub struct Running {
    child: Child,
    stdout: Stream,
    stderr: Stream,
    report: Option<PathBuf>,
}

impl Running {
    pub(crate) fn new(mut child: Child, report: Option<PathBuf>) -> Running {
        Running {
            stdout: Stream::of(child.stdout.take()),
            stderr: Stream::of(child.stderr.take()),
            child,
            report,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: libc::c_int) {
        send_signal(&self.child, signal);
    }

    /// What the run wrote to stderr so far (read from now on in the background).
    pub fn stderr_so_far(&mut self) -> String {
        self.stderr
            .collect()
            .expect("stderr is a pipe the test holds")
            .text()
    }

    /// The reader goes away, as when the same Ctrl-C killed `tee`: both pipes are closed.
    pub fn close_output(&mut self) {
        for s in [&mut self.stdout, &mut self.stderr] {
            assert!(matches!(s, Stream::Pipe(_)), "output already read");
            *s = Stream::Closed;
        }
    }

    /// SIGKILL, no cleanup of any kind; the run must not have finished before.
    pub fn kill9(mut self, what: &str) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            status.code(),
            None,
            "{what}: the run finished before the kill"
        );
    }

    /// Waits for the run to end, reading its output meanwhile. A run still going after a
    /// minute (one that ignores its stop signal) is killed and the test fails.
    pub fn wait(mut self) -> Ran {
        self.stdout.collect();
        self.stderr.collect();
        let status = self.wait_status();
        let (stdout, stderr) = (self.stdout.finish(), self.stderr.finish());
        Ran::new(status, stdout, stderr, self.report.take(), None)
    }

    fn wait_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.collect().map(Collector::text);
                panic!("the run did not end within 60 s (killed now): {stderr:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to its end: (exit status, stderr, peak RSS in KiB).
///
/// The peak is the run's own. Linux carries a process's peak RSS over `exec`, and a child
/// spawned from this test process starts with the whole suite's peak; so a small `sh` starts
/// the run in the background and exits, this process (a child subreaper) adopts the run, and
/// wait4(2) reports the run's peak over `sh`'s, not over the suite's.
pub(crate) fn run_measuring_peak_rss(cmd: &Command) -> (ExitStatus, String, i64) {
    // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER takes an integer flag and has no memory
    // effects; orphaned descendants of this process are then reparented to it.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl: {}", std::io::Error::last_os_error());
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c")
        .arg(r#""$0" "$@" </dev/null >/dev/null & echo $!"#)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    let mut sh = sh
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let stderr = Collector::start(sh.stderr.take().unwrap());
    let mut pid = String::new();
    BufReader::new(sh.stdout.take().unwrap())
        .read_line(&mut pid)
        .unwrap();
    let pid: libc::pid_t = pid.trim().parse().expect("the run's pid");
    assert!(sh.wait().unwrap().success(), "sh");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on the adopted run, with valid pointers to a status and a rusage.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    (
        ExitStatus::from_raw(status),
        stderr.finish(),
        usage.ru_maxrss,
    )
}

/// A pseudo-terminal of `cols` × `rows`.
pub struct Pty {
    /// The test's side: what the run prints comes out here, what is written here it reads.
    pub controller: std::fs::File,
    /// The run's side, its stdin or stdout/stderr.
    pub terminal: OwnedFd,
}

impl Pty {
    pub fn open(cols: u16, rows: u16) -> Pty {
        let (mut controller, mut terminal) = (-1, -1);
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty(3) writes two new file descriptors into the given ints and reads the
        // winsize we own; the null name and termios pointers are allowed.
        let rc = unsafe {
            libc::openpty(
                &mut controller,
                &mut terminal,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // Not inherited by every process the suite starts meanwhile (a simulator holding the
        // terminal's side open would keep its controller from ever seeing the end); a run
        // given it as stdin/stdout/stderr still gets its own copy.
        for fd in [controller, terminal] {
            // SAFETY: fcntl(2) on a descriptor we own, setting a flag.
            let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            assert_eq!(rc, 0, "fcntl: {}", std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
        unsafe {
            Pty {
                controller: std::fs::File::from_raw_fd(controller),
                terminal: OwnedFd::from_raw_fd(terminal),
            }
        }
    }
}
