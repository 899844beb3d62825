//! Bearer credentials: which source a run uses (key file or ready token, SPEC §6), and the one
//! shared `TokenSource` all workers ask. A key file mints RS256 JWTs, renewed before they run
//! out and once after a 403, one mint at a time however many workers ask at once.
//! Secrets stay in `secrecy` types and in header values marked sensitive; nothing here
//! implements `Display`, and `Debug` never shows a token or a key.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use super::jwt;
use super::keyfile::{KEY_FILE_ENV, KeyFile};

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

/// Wall-clock time, replaceable in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Where a run's credentials come from, as configured (SPEC §6).
#[derive(Clone, Debug)]
pub enum Credentials {
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
pub enum TokenOrigin {
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

/// Where the run's bearer tokens come from. Cheap to clone; all workers share one.
#[derive(Clone, Debug)]
pub struct TokenSource {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// A ready token from DS100_TOKEN or --token-file, used as is.
    Static {
        bearer: Arc<Bearer>,
        origin: TokenOrigin,
        /// The JWT's `exp`, when the token is a JWT that has one.
        expires: Option<SystemTime>,
        /// The first 12 hex digits of the token's SHA-256: tells tokens apart, reveals nothing.
        fingerprint: String,
    },
    /// Tokens minted from a key file.
    Minting(Arc<Minter>),
}

impl TokenSource {
    /// A source that always hands out this one token.
    pub fn fixed(token: &SecretString) -> anyhow::Result<TokenSource> {
        TokenSource::ready(token, TokenOrigin::Env)
    }

    fn ready(token: &SecretString, origin: TokenOrigin) -> anyhow::Result<TokenSource> {
        Ok(TokenSource {
            kind: Kind::Static {
                bearer: Arc::new(Bearer::new(token, 1)?),
                expires: jwt::unverified_exp(token.expose_secret()),
                fingerprint: fingerprint(token),
                origin,
            },
        })
    }

    /// The source a run's credentials call for. A key file mints its first token here, so a
    /// key that cannot sign fails before anything is sent.
    pub fn new(credentials: &Credentials) -> anyhow::Result<TokenSource> {
        match credentials {
            Credentials::Ready { token, origin } => TokenSource::ready(token, origin.clone()),
            Credentials::KeyFile { key, lifetime } => {
                TokenSource::minting(key.clone(), *lifetime, Arc::new(SystemClock))
            }
        }
    }

    /// Mints from `key` with tokens living `lifetime`, reading time from `clock`.
    pub fn minting(
        key: Arc<KeyFile>,
        lifetime: Duration,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<TokenSource> {
        let lifetime_secs = jwt::check_lifetime(lifetime).map_err(anyhow::Error::msg)?;
        let first = mint(&key, &*clock, lifetime, lifetime_secs, None)?;
        Ok(TokenSource {
            kind: Kind::Minting(Arc::new(Minter {
                key,
                lifetime,
                lifetime_secs,
                clock,
                current: RwLock::new(Arc::new(first)),
                mint_lock: tokio::sync::Mutex::new(()),
                n_minted: AtomicU64::new(1),
            })),
        })
    }

    /// The token to put on the next request: a minted token is replaced first when it is
    /// within the refresh margin of its `exp`.
    pub async fn current(&self) -> anyhow::Result<Arc<Bearer>> {
        match &self.kind {
            Kind::Static { bearer, .. } => Ok(bearer.clone()),
            Kind::Minting(m) => {
                let minted = m.latest();
                if m.clock.now() < minted.renew_at {
                    return Ok(minted.bearer.clone());
                }
                m.renew(minted.bearer.generation(), "before expiry").await
            }
        }
    }

    /// The server refused `rejected` with 403: a fresh token to retry with once, or `None`
    /// when this source cannot make one (a ready token is what it is). When several workers
    /// report the same token, only the first mints; the others get that new token.
    pub async fn renew_after_forbidden(&self, rejected: &Bearer) -> Option<Arc<Bearer>> {
        match &self.kind {
            Kind::Static { .. } => None,
            Kind::Minting(m) => match m.renew(rejected.generation(), "after a 403").await {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::error!("cannot mint a fresh token after a 403: {e:#}");
                    None
                }
            },
        }
    }

    /// One line for the plan ("ready bearer token from DS100_TOKEN"), never the token itself.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Static { origin, .. } => format!("ready bearer token from {origin}"),
            Kind::Minting(m) => format!(
                "RS256 tokens minted from {} (accessID {}), each valid {}, renewed as they age",
                m.key.origin(),
                m.key.access_id(),
                humantime::format_duration(m.lifetime)
            ),
        }
    }

    /// Who sends, in words safe to record (the report's sidecar) and compare between runs:
    /// `accessID <id>` for a key file, `token sha256:<12 hex digits>` for a ready token.
    pub(crate) fn identity(&self) -> String {
        match &self.kind {
            Kind::Static { fingerprint, .. } => format!("token sha256:{fingerprint}"),
            Kind::Minting(m) => format!("accessID {}", m.key.access_id()),
        }
    }

    /// Tokens minted so far (0 for a ready token).
    pub fn n_minted(&self) -> u64 {
        match &self.kind {
            Kind::Static { .. } => 0,
            Kind::Minting(m) => m.n_minted.load(Ordering::Relaxed),
        }
    }

    /// Warns when a ready JWT runs out before a run of `run_takes` would end (SPEC §6).
    /// Returns whether it warned.
    pub fn warn_if_expires_within(&self, run_takes: Duration) -> bool {
        let Kind::Static {
            origin,
            expires: Some(exp),
            ..
        } = &self.kind
        else {
            return false;
        };
        let Some(message) = expiry_warning(origin, *exp, SystemTime::now(), run_takes) else {
            return false;
        };
        tracing::warn!("{message}");
        true
    }
}

/// The first 12 hex digits (48 bits) of the token's SHA-256: enough to tell two tokens apart,
/// far too little to recover or forge one.
fn fingerprint(token: &SecretString) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.expose_secret().as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The warning for a ready token expiring at `exp` when the run ends at `now + run_takes`.
fn expiry_warning(
    origin: &TokenOrigin,
    exp: SystemTime,
    now: SystemTime,
    run_takes: Duration,
) -> Option<String> {
    let fix = format!(
        "Pass --key-file (or set {KEY_FILE_ENV}) instead so the tool mints fresh tokens as it goes."
    );
    match exp.duration_since(now) {
        Err(ago) => Some(format!(
            "the bearer token in {origin} expired {} ago: every request will be refused (403). {fix}",
            humantime::format_duration(round_secs(ago.duration()))
        )),
        Ok(left) if left < run_takes => Some(format!(
            "the bearer token in {origin} expires in {}, before this run's estimated end (about {}): \
             rows sent after that will end `unauthorized`. {fix}",
            humantime::format_duration(round_secs(left)),
            humantime::format_duration(round_secs(run_takes))
        )),
        Ok(_) => None,
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// A minted token, its claims, and when to replace it.
struct Minted {
    bearer: Arc<Bearer>,
    claims: jwt::Claims,
    renew_at: SystemTime,
}

/// The shared minting state: the current token behind a lock held for nanoseconds, and a
/// separate async lock that serialises minting so concurrent workers never mint a storm.
struct Minter {
    key: Arc<KeyFile>,
    lifetime: Duration,
    lifetime_secs: u64,
    clock: Arc<dyn Clock>,
    current: RwLock<Arc<Minted>>,
    mint_lock: tokio::sync::Mutex<()>,
    n_minted: AtomicU64,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter")
            .field("key", &self.key)
            .field("lifetime", &self.lifetime)
            .field("generation", &self.latest().bearer.generation())
            .finish_non_exhaustive()
    }
}

impl Minter {
    fn latest(&self) -> Arc<Minted> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the token of generation `stale`, unless another worker already has: then its
    /// newer token is the answer.
    async fn renew(&self, stale: u64, why: &str) -> anyhow::Result<Arc<Bearer>> {
        let _minting = self.mint_lock.lock().await;
        let latest = self.latest();
        if latest.bearer.generation() != stale {
            return Ok(latest.bearer.clone());
        }
        let minted = Arc::new(mint(
            &self.key,
            &*self.clock,
            self.lifetime,
            self.lifetime_secs,
            Some(&latest),
        )?);
        let generation = minted.bearer.generation();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = minted.clone();
        self.n_minted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(generation, "minted a new bearer token {why}");
        Ok(minted.bearer.clone())
    }
}

/// Mints the token after `previous` (the first one when `None`).
fn mint(
    key: &KeyFile,
    clock: &dyn Clock,
    lifetime: Duration,
    lifetime_secs: u64,
    previous: Option<&Minted>,
) -> anyhow::Result<Minted> {
    let now = clock.now();
    let mut claims = jwt::Claims::new(key, now, lifetime_secs);
    if let Some(previous) = previous {
        claims = jwt::distinct_from(claims, &previous.claims);
    }
    let token = jwt::sign(key, &claims)?;
    let generation = previous.map_or(1, |p| p.bearer.generation() + 1);
    Ok(Minted {
        bearer: Arc::new(Bearer::new(&token, generation)?),
        renew_at: jwt::renew_at(&claims, now, lifetime),
        claims,
    })
}

/// The credential flags of a command, before the environment is consulted.
#[derive(Clone, Copy, Debug, Default)]
pub struct CredentialFlags<'a> {
    pub key_file: Option<&'a Path>,
    pub token_file: Option<&'a Path>,
    pub token_lifetime: Option<Duration>,
}

/// Chooses the run's credentials (README "Which credentials win"):
/// - `--key-file` and `--token-file` together: refused, pick one;
/// - one flag given: it wins; the other kind's environment variable is ignored with a warning;
/// - no flag: `DS100_KEY_FILE` or `DS100_TOKEN`; both set is refused (unset one, or pick with
///   a flag), because silently choosing would hide a leftover variable.
///
/// `env` reads the environment (a parameter so tests need not change the process's).
pub fn resolve(
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
pub fn key_file_path(
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
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::api::keyfile::tests::{PKCS1, test_key};

    #[test]
    fn identity_names_the_sender_never_the_secret() {
        let secret = "ready-token-e3b0c44298fc";
        let src = TokenSource::fixed(&SecretString::from(secret.to_string())).unwrap();
        let id = src.identity();
        assert!(id.starts_with("token sha256:"), "{id}");
        let hex = id.trim_start_matches("token sha256:");
        assert_eq!(hex.len(), 12);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert!(!id.contains(secret));
        let other = TokenSource::fixed(&SecretString::from("another".to_string())).unwrap();
        assert_ne!(other.identity(), id);
        let key = Arc::new(test_key());
        let minting =
            TokenSource::minting(key.clone(), Duration::from_secs(600), Arc::new(SystemClock))
                .unwrap();
        assert_eq!(minting.identity(), format!("accessID {}", key.access_id()));
    }

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

    /// A clock that moves only when told.
    struct FakeClock(Mutex<SystemTime>);

    impl FakeClock {
        fn at(secs: u64) -> Arc<FakeClock> {
            Arc::new(FakeClock(Mutex::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            )))
        }
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    fn minting(clock: Arc<FakeClock>, lifetime: Duration) -> TokenSource {
        TokenSource::minting(Arc::new(test_key()), lifetime, clock).unwrap()
    }

    fn claims_of(b: &Bearer) -> jwt::Claims {
        use base64::Engine as _;
        let v = b
            .header()
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_string();
        let payload = v.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

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
        let Kind::Static { bearer, .. } = &src.kind else {
            panic!()
        };
        assert!(!format!("{:?}", bearer.header()).contains("s3cr3t"));
    }

    #[tokio::test]
    async fn minted_tokens_are_reused_then_renewed_within_the_margin() {
        let clock = FakeClock::at(1_000_000);
        let src = minting(clock.clone(), jwt::DEFAULT_LIFETIME);
        let first = src.current().await.unwrap();
        let c = claims_of(&first);
        assert_eq!((c.iat, c.exp), (1_000_000, 1_003_300));
        assert_eq!(c.sub, "test-only-access-id-3f9c");
        // 49 minutes on: still the same token.
        clock.advance(Duration::from_secs(49 * 60));
        assert_eq!(src.current().await.unwrap().generation(), 1);
        // 50 minutes on: 5 minutes left, the margin: a new one.
        clock.advance(Duration::from_secs(60));
        let second = src.current().await.unwrap();
        assert_eq!(second.generation(), 2);
        assert_eq!(claims_of(&second).iat, 1_003_000);
        assert_eq!(src.n_minted(), 2);
        let dbg = format!("{src:?}");
        assert!(!dbg.contains(first.header().to_str().unwrap()), "{dbg}");
    }

    #[tokio::test]
    async fn short_lifetimes_renew_proportionally() {
        let clock = FakeClock::at(2_000_000);
        let src = minting(clock.clone(), Duration::from_secs(2));
        assert_eq!(src.current().await.unwrap().generation(), 1);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(src.current().await.unwrap().generation(), 1);
        clock.advance(Duration::from_millis(200));
        assert_eq!(src.current().await.unwrap().generation(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_403s_mint_once() {
        let clock = FakeClock::at(3_000_000);
        let src = minting(clock.clone(), jwt::DEFAULT_LIFETIME);
        let refused = src.current().await.unwrap();
        // Eight workers report the same refused token at once.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let src = src.clone();
                let refused = refused.clone();
                tokio::spawn(async move { src.renew_after_forbidden(&refused).await.unwrap() })
            })
            .collect();
        for t in tasks {
            let fresh = t.await.unwrap();
            assert_eq!(fresh.generation(), 2);
            // Same (fake) second as the refused token, yet a different token.
            assert_ne!(fresh.header(), refused.header());
        }
        assert_eq!(
            src.n_minted(),
            2,
            "one initial mint plus exactly one renewal"
        );
        // A late 403 on the old token gets the current one, no new mint.
        assert_eq!(
            src.renew_after_forbidden(&refused)
                .await
                .unwrap()
                .generation(),
            2
        );
        assert_eq!(src.n_minted(), 2);
        // A 403 on the current token mints again.
        let current = src.current().await.unwrap();
        assert_eq!(
            src.renew_after_forbidden(&current)
                .await
                .unwrap()
                .generation(),
            3
        );
    }

    #[tokio::test]
    async fn ready_tokens_are_never_renewed() {
        let src = TokenSource::fixed(&SecretString::from("abc".to_string())).unwrap();
        let b = src.current().await.unwrap();
        assert!(src.renew_after_forbidden(&b).await.is_none());
        assert_eq!(src.n_minted(), 0);
    }

    #[test]
    fn lifetimes_over_an_hour_are_refused() {
        let e = TokenSource::minting(
            Arc::new(test_key()),
            Duration::from_secs(3601),
            Arc::new(SystemClock),
        )
        .unwrap_err();
        assert!(e.to_string().contains("60 minutes"), "{e}");
    }

    #[test]
    fn expiry_warning_for_ready_jwts() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let hour = Duration::from_secs(3600);
        let w =
            expiry_warning(&TokenOrigin::Env, now + Duration::from_secs(600), now, hour).unwrap();
        assert!(
            w.contains("DS100_TOKEN") && w.contains("10m") && w.contains("--key-file"),
            "{w}"
        );
        let w = expiry_warning(&TokenOrigin::Env, now - Duration::from_secs(5), now, hour).unwrap();
        assert!(w.contains("expired 5s ago"), "{w}");
        assert!(expiry_warning(&TokenOrigin::Env, now + 2 * hour, now, hour).is_none());
        // A ready token that is not a JWT has no exp: no warning possible.
        let src = TokenSource::fixed(&SecretString::from("opaque".to_string())).unwrap();
        assert!(!src.warn_if_expires_within(hour));
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
