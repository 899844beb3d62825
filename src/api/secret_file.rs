//! Secret files on disk (the key file, a token file): a warning when other users can read them.

use std::path::Path;

/// Warns (does not refuse) when anyone but the owner can read a secret file: its group too,
/// as ssh does for private keys.
#[cfg(unix)]
pub(crate) fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && let Some(message) = readable_by_others(path, meta.permissions().mode())
    {
        tracing::warn!("{message}");
    }
}

#[cfg(not(unix))]
pub(crate) fn warn_if_readable_by_others(_path: &Path) {}

/// The warning for a secret file with permission bits `mode`, if others can read it.
#[cfg(unix)]
fn readable_by_others(path: &Path, mode: u32) -> Option<String> {
    let who = match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (_, true) => "every user on this machine",
        (true, false) => "other members of its group",
        (false, false) => return None,
    };
    let shown = path.display().to_string();
    let plain = !shown.is_empty()
        && shown
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-~".contains(&b));
    let arg = if plain {
        shown.clone()
    } else {
        format!("'{}'", shown.replace('\'', r"'\''"))
    };
    Some(format!(
        "{shown} holds a secret and is readable by {who} (mode {:03o}); restrict it with: chmod 600 {arg}",
        mode & 0o777
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn group_or_world_readable_secret_files_are_warned_about() {
        let p = Path::new("/keys/acme.json");
        assert_eq!(readable_by_others(p, 0o100600), None);
        assert_eq!(readable_by_others(p, 0o400), None);
        assert_eq!(
            readable_by_others(p, 0o620),
            None,
            "group may write, not read"
        );
        let group = readable_by_others(p, 0o640).unwrap();
        assert!(
            group.contains("group") && group.ends_with("chmod 600 /keys/acme.json"),
            "{group}"
        );
        let world = readable_by_others(p, 0o604).unwrap();
        assert!(world.contains("every user") && world.contains("chmod 600 /keys/acme.json"));
        let spaced = readable_by_others(Path::new("/my keys/it's.json"), 0o644).unwrap();
        assert!(
            spaced.ends_with(r"chmod 600 '/my keys/it'\''s.json'"),
            "{spaced}"
        );
    }
}
