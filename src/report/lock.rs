//! One run per report: an exclusive OS lock on `<report>.lock`, held from before the report is
//! read or created until the command ends. Two runs writing one report would both send and
//! overwrite each other's rows. The file names its holder (pid, host, start time) so the
//! refusal can say who; the lock itself is the OS's and dies with the process, so a file left
//! behind by `kill -9` never blocks the next run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};

use super::files;

/// Attempts when the lock file is removed between our open and our lock (by the run that held
/// it, ending): each attempt opens the file anew.
const ATTEMPTS: usize = 5;

/// The lock on one report; released, and its file removed, when dropped.
#[derive(Debug)]
pub(crate) struct ReportLock {
    path: PathBuf,
    /// Holds the OS lock for as long as it is open.
    _file: File,
}

/// `<report>.lock`: `leavers.report.csv` → `leavers.report.csv.lock`.
pub(crate) fn lock_path(report: &Path) -> PathBuf {
    let mut name = report
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    report.with_file_name(name)
}

impl ReportLock {
    /// Takes the lock of `report`, or refuses naming the run that holds it.
    pub(crate) fn acquire(report: &Path) -> anyhow::Result<ReportLock> {
        let path = lock_path(report);
        for _ in 0..ATTEMPTS {
            let mut file = files::open_no_follow(
                OpenOptions::new().read(true).write(true).create(true),
                &path,
            )
            .with_context(|| {
                format!(
                    "cannot create the lock file {} next to the report (it keeps a second run \
                     off the same report): check that the folder exists and is writable, and \
                     that the lock file is not a symbolic link",
                    path.display()
                )
            })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    bail!(
                        "report {} is being written by another run ({}): two runs on one report \
                         would both send and overwrite each other's rows. Wait for that run to \
                         end (or stop it with Ctrl-C), then continue with --resume; or write \
                         elsewhere with --report PATH. Nothing was sent.",
                        report.display(),
                        describe_holder(&mut file)
                    );
                }
                Err(TryLockError::Error(e)) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "cannot lock {} (one run per report); nothing was sent",
                        path.display()
                    )));
                }
            }
            // The run that held it may have removed the file between our open and our lock:
            // we then hold a lock on a file nobody else will open. Start again.
            if !still_linked(&file, &path) {
                continue;
            }
            let holder = format!(
                "pid={}\nhost={}\nstarted={}\n",
                std::process::id(),
                host_name(),
                humantime::format_rfc3339_seconds(SystemTime::now())
            );
            file.set_len(0)
                .and_then(|()| file.write_all(holder.as_bytes()))
                .with_context(|| format!("cannot write the lock file {}", path.display()))?;
            return Ok(ReportLock { path, _file: file });
        }
        bail!(
            "cannot lock {}: it keeps being removed and re-created by other runs; nothing was sent",
            path.display()
        )
    }
}

impl Drop for ReportLock {
    fn drop(&mut self) {
        // Removed while still locked, so that no other run can lock this file in between.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// "pid 1234 on host db01, started 2025-06-01T10:00:00Z", from the holder's lock file. The
/// holder writes it just after locking; a moment's wait covers that gap.
fn describe_holder(file: &mut File) -> String {
    let mut text = String::new();
    for _ in 0..20 {
        text.clear();
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text));
        if read.is_ok() && text.contains("started=") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match (field("pid"), field("host"), field("started")) {
        (Some(pid), host, started) => format!(
            "pid {pid} on host {}, started {}",
            host.unwrap_or("?"),
            started.unwrap_or("?")
        ),
        _ => "a run that is just starting".to_string(),
    }
}

/// Whether `path` still names the file `file` has open.
fn still_linked(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "?".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.csv");
        let lock = ReportLock::acquire(&report).unwrap();
        assert_eq!(lock_path(&report), dir.path().join("r.csv.lock"));
        let err = ReportLock::acquire(&report).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(lock);
        assert!(!lock_path(&report).exists());
        // A file left behind (kill -9) does not block: only the OS lock does.
        std::fs::write(lock_path(&report), "pid=1\nhost=x\nstarted=y\n").unwrap();
        let lock = ReportLock::acquire(&report).unwrap();
        let text = std::fs::read_to_string(lock_path(&report)).unwrap();
        assert!(
            text.starts_with(&format!("pid={}\n", std::process::id())),
            "{text}"
        );
        drop(lock);
    }
}
