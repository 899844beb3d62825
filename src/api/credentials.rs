//! The API credentials a run signs in with, a key file or a ready bearer token, chosen from
//! flags and environment (docs/design.md#credentials). Not to be confused with the OTP
//! credentials a run deletes (`crate::credential`).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

use super::jwt;
use super::keyfile::{KEY_FILE_ENV, KeyFile};
use super::secret_file::warn_if_readable_by_others;

/// Environment variable holding a ready bearer token.
pub(crate) const TOKEN_ENV: &str = "DS100_TOKEN";

/// Where a run's API credentials come from, as configured.
#[derive(Clone, Debug)]
pub(crate) enum Credentials {
    /// Mint RS256 JWTs from the key file, each living `lifetime`.
    KeyFile {
        key: Arc<KeyFile>,
        lifetime: Duration,
    },
    /// A ready bearer token, used as is.
    Ready {
        token: SecretString,
        origin: TokenOrigin,
    },
}

/// Where a ready token was read from, for messages.
#[derive(Clone, Debug)]
pub(crate) enum TokenOrigin {
    Env,
    File(PathBuf),
}

impl fmt::Display for TokenOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenOrigin::Env => f.write_str(TOKEN_ENV),
            TokenOrigin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The credential flags of a command, before the environment is consulted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CredentialFlags<'a> {
    pub(crate) key_file: Option<&'a Path>,
    pub(crate) token_file: Option<&'a Path>,
    pub(crate) token_lifetime: Option<Duration>,
}

/// Chooses the run's credentials (README "Which credentials win"):
/// - `--key-file` and `--token-file` together: refused, pick one;
/// - one flag given: it wins; the other kind's environment variable is ignored with a warning;
/// - no flag: `DS100_KEY_FILE` or `DS100_TOKEN`; both set is refused (unset one, or pick with
///   a flag), because silently choosing would hide a leftover variable.
///
/// `env` reads the environment (a parameter so tests need not change the process's).
pub(crate) fn resolve(
    flags: CredentialFlags<'_>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> anyhow::Result<Credentials> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let key_env = set(KEY_FILE_ENV);
    let token_env = set(TOKEN_ENV);
    let lifetime = flags.token_lifetime.unwrap_or(jwt::DEFAULT_LIFETIME);
    let from_key = |path: &Path| -> anyhow::Result<Credentials> {
        Ok(Credentials::KeyFile {
            key: Arc::new(KeyFile::load(path)?),
            lifetime,
        })
    };
    match (flags.key_file, flags.token_file) {
        (Some(_), Some(_)) => bail!(
            "both --key-file and --token-file given: pass only one. --key-file mints fresh tokens \
             for runs of any length; --token-file uses one ready token as is"
        ),
        (Some(path), None) => {
            if token_env.is_some() {
                tracing::warn!("{TOKEN_ENV} is set but ignored: --key-file was given");
            }
            from_key(path)
        }
        (None, Some(path)) => {
            if key_env.is_some() {
                tracing::warn!("{KEY_FILE_ENV} is set but ignored: --token-file was given");
            }
            ready_token(Some(path), None, flags.token_lifetime)
        }
        (None, None) => match (key_env, token_env) {
            (Some(_), Some(_)) => bail!(
                "both {KEY_FILE_ENV} and {TOKEN_ENV} are set: unset the one you do not mean \
                 (e.g. `unset {TOKEN_ENV}`), or choose explicitly with --key-file PATH or --token-file PATH"
            ),
            (Some(path), None) => from_key(Path::new(&path)),
            (None, Some(token)) => ready_token(None, Some(token), flags.token_lifetime),
            (None, None) => bail!(
                "no credentials: pass --key-file PATH (the Administration API key file; or set \
                 {KEY_FILE_ENV}), or give a ready bearer token in {TOKEN_ENV} or --token-file PATH. \
                 Tokens are never taken on the command line."
            ),
        },
    }
}

/// The key file for `token` and `sim`: `--key-file`, else `DS100_KEY_FILE`.
pub(crate) fn key_file_path(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| {
        env(KEY_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// A ready token from `--token-file` or the value of `DS100_TOKEN`.
fn ready_token(
    token_file: Option<&Path>,
    env_value: Option<OsString>,
    token_lifetime: Option<Duration>,
) -> anyhow::Result<Credentials> {
    if token_lifetime.is_some() {
        tracing::warn!("--token-lifetime is ignored: it applies to tokens minted from --key-file");
    }
    let (raw, origin) = match (token_file, env_value) {
        (Some(path), _) => {
            warn_if_readable_by_others(path);
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read token file {}: check the path and its permissions",
                    path.display()
                )
            })?;
            (
                SecretString::from(text),
                TokenOrigin::File(path.to_path_buf()),
            )
        }
        (None, Some(v)) => match v.into_string() {
            Ok(s) => (SecretString::from(s), TokenOrigin::Env),
            Err(_) => bail!("{TOKEN_ENV} is not valid UTF-8"),
        },
        (None, None) => bail!("no bearer token given"),
    };
    let token = clean_token(raw.expose_secret())
        .with_context(|| format!("the bearer token in {origin} is not usable"))?;
    Ok(Credentials::Ready { token, origin })
}

/// Takes the first line, trims it, accepts a pasted "Bearer " prefix, and checks the token is
/// one printable ASCII word. Errors never quote the token.
fn clean_token(raw: &str) -> anyhow::Result<SecretString> {
    let line = raw
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let token = line
        .strip_prefix("Bearer ")
        .or_else(|| line.strip_prefix("bearer "))
        .unwrap_or(line)
        .trim();
    if token.is_empty() {
        bail!("it is empty");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("it contains spaces, control or non-ASCII characters");
    }
    Ok(SecretString::from(token.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::api::keyfile::tests::PKCS1;

    #[test]
    fn cleans_pasted_tokens() {
        let t = clean_token("  Bearer abc.def-ghi_1\n\nignored").unwrap();
        assert_eq!(t.expose_secret(), "abc.def-ghi_1");
        assert!(clean_token("\n  \n").is_err());
        assert!(clean_token("two words").is_err());
        assert!(clean_token("tökén").is_err());
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn which_credentials_win() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(&key, PKCS1).unwrap();
        let tok = dir.path().join("token.txt");
        std::fs::write(&tok, "from-file\n").unwrap();
        let key_s = key.to_str().unwrap();
        let flags = |k: bool, t: bool| CredentialFlags {
            key_file: k.then_some(key.as_path()),
            token_file: t.then_some(tok.as_path()),
            token_lifetime: None,
        };
        let is_key = |c: &Credentials| matches!(c, Credentials::KeyFile { .. });
        let ready = |c: &Credentials| match c {
            Credentials::Ready { token, .. } => token.expose_secret().to_string(),
            _ => String::new(),
        };
        let both_env = env_of(&[("DS100_KEY_FILE", key_s), ("DS100_TOKEN", "from-env")]);
        // Two explicit flags: refused.
        let e = resolve(flags(true, true), &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("only one"), "{e}");
        // A flag beats the other kind's variable.
        assert!(is_key(&resolve(flags(true, false), &both_env).unwrap()));
        assert_eq!(
            ready(&resolve(flags(false, true), &both_env).unwrap()),
            "from-file"
        );
        // Both variables, no flag: refused.
        let e = resolve(flags(false, false), &both_env).unwrap_err();
        assert!(e.to_string().contains("unset"), "{e}");
        // One variable.
        assert!(is_key(
            &resolve(flags(false, false), &env_of(&[("DS100_KEY_FILE", key_s)])).unwrap()
        ));
        assert_eq!(
            ready(
                &resolve(
                    flags(false, false),
                    &env_of(&[("DS100_TOKEN", "Bearer e1")])
                )
                .unwrap()
            ),
            "e1"
        );
        // Empty variables count as unset.
        let e = resolve(
            flags(false, false),
            &env_of(&[("DS100_KEY_FILE", ""), ("DS100_TOKEN", "")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no credentials"), "{e}");
        // The lifetime reaches the key-file credentials.
        let c = resolve(
            CredentialFlags {
                token_lifetime: Some(Duration::from_secs(90)),
                ..flags(true, false)
            },
            &env_of(&[]),
        )
        .unwrap();
        assert!(
            matches!(c, Credentials::KeyFile { lifetime, .. } if lifetime == Duration::from_secs(90))
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("MII"), "{dbg}");
    }
}
