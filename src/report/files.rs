//! Where the tool may write besides the report: the sidecar, the lock file and the summary JSON
//! never land on the input or the report (whatever the spelling, a symlink or a hard link),
//! never follow a symlink someone planted, and are replaced whole or not at all.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::bail;

/// Opens `path` with `opts`, refusing to follow a symlink in its last component (the open fails
/// instead), so a planted link cannot redirect the write to another file.
pub(crate) fn open_no_follow(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::other("it is a symbolic link"));
    }
    opts.open(path)
}

/// Replaces `path` with `bytes` all at once: written to a fresh file in the same folder, synced,
/// then renamed over `path`. A crash leaves the old file or the new one, never half of one; a
/// symlink at `path` is replaced, not followed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path)?;
    let result = (|| {
        // create_new: never an existing file, never through a symlink.
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `path` whole from `fill`, streaming: into a fresh file in the same folder, synced,
/// then renamed over `path`. For outputs too large to hold in memory; like `write_atomic`, a
/// crash leaves the old file or the new one, and a symlink at `path` is replaced, not followed.
pub(crate) fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temp_sibling(path)?;
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Checks that a file can be created next to `path` (its folder exists and is writable),
/// without leaving anything behind.
pub(crate) fn probe_writable(path: &Path) -> io::Result<()> {
    let tmp = temp_sibling(path)?;
    OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    fs::remove_file(&tmp)
}

/// `.<name>.tmp-<pid>` next to `path`.
fn temp_sibling(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path names no file"))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// Whether `a` and `b` name one file: the same inode when both exist (hard links and symlinks
/// included), else the same absolute path once the folders' symlinks are resolved.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    if let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return ma.dev() == mb.dev() && ma.ino() == mb.ino();
    }
    match (resolved(a), resolved(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The absolute, symlink-free path of `p`, which may not exist yet: then its folder is resolved
/// and its name kept.
fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let folder = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(folder.canonicalize().ok()?.join(name))
}

/// Refuses, before anything is sent, a `--summary-json` file that is one of `taken` (the input,
/// the report, its sidecar and lock file, each with what to call it), a symlink, not a regular
/// file, or an existing file without `overwrite`.
pub(crate) fn check_summary_json(
    path: &Path,
    overwrite: bool,
    taken: &[(&Path, &str)],
) -> anyhow::Result<()> {
    check_output("--summary-json", "the summary", path, overwrite, taken)
}

/// Refuses an output file (`flag` names it in messages, `what` says what it holds) that is one
/// of `taken`, a symlink, not a regular file, or an existing file without `overwrite`.
pub(crate) fn check_output(
    flag: &str,
    what_out: &str,
    path: &Path,
    overwrite: bool,
    taken: &[(&Path, &str)],
) -> anyhow::Result<()> {
    let shown = path.display();
    if path.as_os_str() == "-" {
        // Elsewhere `-` means stdout (`--summary-json -`): here it would be a file named `-`.
        bail!(
            "{flag} - would write {what_out} to a file named '-': name the file instead (for \
             the summary JSON on stdout, use --json)"
        );
    }
    for (other, what) in taken {
        if same_file(path, other) {
            bail!("{flag} {shown} is {what}: choose another path for {what_out}");
        }
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => bail!(
            "{flag} {shown} is a symbolic link: {what_out} is never written through one; name \
             the file itself"
        ),
        Ok(m) if !m.is_file() => bail!("{flag} {shown} exists and is not a file"),
        Ok(_) if !overwrite => bail!(
            "{flag} {shown} already exists: choose another path, or pass --overwrite to replace \
             it"
        ),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let folder = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !folder.is_dir() {
                bail!(
                    "{flag} {shown}: the folder {} does not exist",
                    folder.display()
                );
            }
            Ok(())
        }
        Err(e) => bail!("cannot check {flag} {shown}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_under_several_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("in.csv");
        fs::write(&input, "x\n").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        assert!(same_file(&input, &d.join("sub/../in.csv")));
        assert!(same_file(&input, &d.join("./in.csv")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&input, d.join("link")).unwrap();
            assert!(same_file(&input, &d.join("link")));
        }
        fs::hard_link(&input, d.join("hard")).unwrap();
        assert!(same_file(&input, &d.join("hard")));
        // Files that do not exist yet compare by where they would be.
        assert!(same_file(&d.join("new.csv"), &d.join("sub/../new.csv")));
        assert!(!same_file(&d.join("new.csv"), &d.join("other.csv")));
        assert!(!same_file(&input, &d.join("new.csv")));
    }

    #[test]
    fn atomic_writes_replace_symlinks_instead_of_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let victim = d.join("victim");
        fs::write(&victim, "keep").unwrap();
        let link = d.join("out.json");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(
            fs::read_dir(d).unwrap().count(),
            2,
            "no temporary file left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn no_follow_refuses_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("victim"), "keep").unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join("lock")).unwrap();
        let opened = open_no_follow(OpenOptions::new().write(true).create(true), &d.join("lock"));
        assert!(opened.is_err());
        assert_eq!(fs::read_to_string(d.join("victim")).unwrap(), "keep");
    }

    #[test]
    fn summary_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("in.csv");
        fs::write(&input, "x\n").unwrap();
        let report = d.join("in.report.csv");
        let taken = [
            (input.as_path(), "the input"),
            (report.as_path(), "the report"),
        ];
        let err = |p: &Path, overwrite| {
            check_summary_json(p, overwrite, &taken)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&input, true).contains("is the input"));
        assert!(err(&report, true).contains("is the report"));
        assert!(err(&d.join("missing/s.json"), false).contains("does not exist"));
        let existing = d.join("s.json");
        fs::write(&existing, "{}").unwrap();
        assert!(err(&existing, false).contains("--overwrite"));
        assert!(check_summary_json(&existing, true, &taken).is_ok());
        assert!(check_summary_json(&d.join("new.json"), false, &taken).is_ok());
    }
}
