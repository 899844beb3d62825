//! Bearer credentials: where the token comes from, and the one shared source all workers ask.
//! Secrets stay in `secrecy` types and in header values marked sensitive; nothing here
//! implements `Display`, and `Debug` never shows a token.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

/// Environment variable holding a ready bearer token.
pub const TOKEN_ENV: &str = "DS100_TOKEN";

/// One bearer token, ready to put on a request. `generation` tells tokens apart without
/// looking at them (a worker that got a 403 says which token was refused).
pub struct Bearer {
    header: HeaderValue,
    generation: u64,
}

impl Bearer {
    fn new(token: &SecretString, generation: u64) -> anyhow::Result<Bearer> {
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .context("the token contains characters that cannot go in an HTTP header")?;
        // Marked sensitive so hyper, reqwest and our own Debug output print "Sensitive".
        header.set_sensitive(true);
        Ok(Bearer { header, generation })
    }

    pub fn header(&self) -> &HeaderValue {
        &self.header
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Where the run's bearer tokens come from. Cheap to clone; all workers share one.
#[derive(Clone, Debug)]
pub struct TokenSource {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// A ready token from DS100_TOKEN or --token-file, used as is.
    Static(Arc<Bearer>),
}

impl TokenSource {
    /// A source that always hands out this one token.
    pub fn fixed(token: &SecretString) -> anyhow::Result<TokenSource> {
        Ok(TokenSource {
            kind: Kind::Static(Arc::new(Bearer::new(token, 1)?)),
        })
    }

    /// The token to put on the next request.
    pub async fn current(&self) -> anyhow::Result<Arc<Bearer>> {
        match &self.kind {
            Kind::Static(b) => Ok(b.clone()),
        }
    }

    /// The server refused `rejected` with 403: a fresh token to retry with once, or `None`
    /// when this source cannot make one (a ready token is what it is).
    pub async fn renew_after_forbidden(&self, _rejected: &Bearer) -> Option<Arc<Bearer>> {
        match &self.kind {
            Kind::Static(_) => None,
        }
    }

    /// Short description for the plan ("token from DS100_TOKEN"), never the token itself.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Static(_) => "ready bearer token",
        }
    }
}

/// Where a ready token was read from, for messages.
#[derive(Clone, Debug)]
pub enum TokenOrigin {
    Env,
    File(PathBuf),
}

/// Reads the ready bearer token: `--token-file` when given, else `DS100_TOKEN`.
pub fn read_ready_token(token_file: Option<&Path>) -> anyhow::Result<(SecretString, TokenOrigin)> {
    let (raw, origin) = match token_file {
        Some(path) => {
            warn_if_world_readable(path);
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
        None => match std::env::var(TOKEN_ENV) {
            Ok(v) => (SecretString::from(v), TokenOrigin::Env),
            Err(std::env::VarError::NotPresent) => bail!(
                "no credentials: set {TOKEN_ENV} to a bearer token, or pass --token-file PATH \
                 (a file holding the token). Tokens are never taken on the command line."
            ),
            Err(std::env::VarError::NotUnicode(_)) => bail!("{TOKEN_ENV} is not valid UTF-8"),
        },
    };
    let where_ = match &origin {
        TokenOrigin::Env => TOKEN_ENV.to_string(),
        TokenOrigin::File(p) => p.display().to_string(),
    };
    let token = clean_token(raw.expose_secret())
        .with_context(|| format!("the bearer token in {where_} is not usable"))?;
    Ok((token, origin))
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

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            "{} is readable by every user on this machine; restrict it with: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_pasted_tokens() {
        let t = clean_token("  Bearer abc.def-ghi_1\n\nignored").unwrap();
        assert_eq!(t.expose_secret(), "abc.def-ghi_1");
        assert!(clean_token("\n  \n").is_err());
        assert!(clean_token("two words").is_err());
        assert!(clean_token("tökén").is_err());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let src = TokenSource::fixed(&SecretString::from("s3cr3t-value".to_string())).unwrap();
        let dbg = format!("{src:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        let Kind::Static(b) = &src.kind;
        assert!(!format!("{:?}", b.header()).contains("s3cr3t"));
    }
}
