//! Bearer tokens: the one shared `TokenSource` all workers ask. A key file mints RS256 JWTs;
//! an OAuth API client fetches access tokens from its issuer. Either way a token is renewed
//! before it runs out and once after a 401/403, one renewal at a time however many workers
//! ask at once; a ready token is used as is (docs/design.md#credentials).
//! Secrets stay in `secrecy` types and in header values marked sensitive; nothing here
//! implements `Display`, and `Debug` never shows a token or a key.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};

pub(crate) use super::bearer::Bearer;
use super::client::{ClientOptions, http_client};
use super::credentials::{Credentials, TokenOrigin};
use super::jwt;
use super::keyfile::{KEY_FILE_ENV, KeyFile};
use super::oauth::{OAuthClient, Phase};
use crate::engine::retry::RetryPolicy;

/// Wall-clock time, replaceable in tests.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How a token source reaches an OAuth issuer: the run's HTTP settings (timeouts,
/// `--ca-cert`) and its retry policy (`--max-attempts`, `--max-backoff`).
#[derive(Clone, Debug)]
pub(crate) struct Network {
    pub(crate) client: ClientOptions,
    pub(crate) retry: RetryPolicy,
}

/// Where the run's bearer tokens come from. Cheap to clone; all workers share one.
#[derive(Clone, Debug)]
pub(crate) struct TokenSource {
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
    /// Tokens minted from a key file or fetched from an OAuth issuer.
    Minting(Arc<Minter>),
}

impl TokenSource {
    /// A source that always hands out this one token.
    #[cfg(test)]
    pub(crate) fn fixed(token: &SecretString) -> anyhow::Result<TokenSource> {
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

    /// The source a run's credentials call for. The first token is made here, so a key that
    /// cannot sign, or an OAuth client its issuer refuses, fails before anything is sent to
    /// the tenant.
    pub(crate) async fn new(
        credentials: &Credentials,
        network: &Network,
    ) -> anyhow::Result<TokenSource> {
        match credentials {
            Credentials::Ready { token, origin } => TokenSource::ready(token, origin.clone()),
            Credentials::KeyFile { key, lifetime } => {
                TokenSource::minting(key.clone(), *lifetime, Arc::new(SystemClock))
            }
            Credentials::OAuth { client } => {
                TokenSource::fetching(client.clone(), network, Arc::new(SystemClock)).await
            }
        }
    }

    /// Mints from `key` with tokens living `lifetime`, reading time from `clock`.
    pub(crate) fn minting(
        key: Arc<KeyFile>,
        lifetime: Duration,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<TokenSource> {
        let lifetime_secs = jwt::check_lifetime(lifetime).map_err(anyhow::Error::msg)?;
        let issuer = Issuer::KeyFile {
            key,
            lifetime,
            lifetime_secs,
        };
        let first = issuer.mint(&*clock, None)?;
        Ok(TokenSource::renewing(issuer, first, clock))
    }

    /// Fetches access tokens for `client` from its issuer; the first one now.
    pub(crate) async fn fetching(
        client: Arc<OAuthClient>,
        network: &Network,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<TokenSource> {
        let http = http_client(client.token_url(), &network.client)?;
        let issuer = Issuer::OAuth {
            client,
            http,
            retry: network.retry,
        };
        let first = issuer.fetch(&*clock, None, Phase::Start).await?;
        Ok(TokenSource::renewing(issuer, first, clock))
    }

    fn renewing(issuer: Issuer, first: Minted, clock: Arc<dyn Clock>) -> TokenSource {
        TokenSource {
            kind: Kind::Minting(Arc::new(Minter {
                issuer,
                clock,
                current: RwLock::new(Arc::new(first)),
                mint_lock: tokio::sync::Mutex::new(()),
                failed: Mutex::new(None),
            })),
        }
    }

    /// The token to put on the next request: a minted or fetched token is replaced first when
    /// it is within the refresh margin of its end. An error means no token can be had (an
    /// OAuth issuer refusing or unreachable, after its retries): nothing may be sent.
    pub(crate) async fn current(&self) -> anyhow::Result<Arc<Bearer>> {
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

    /// The server refused `rejected` with 401/403: a fresh token to retry with once, or
    /// `Ok(None)` when this source cannot make one (a ready token is what it is). When several
    /// workers report the same token, only the first renews; the others get that new token.
    /// An error means renewing failed (see `current`).
    pub(crate) async fn renew_after_forbidden(
        &self,
        rejected: &Bearer,
    ) -> anyhow::Result<Option<Arc<Bearer>>> {
        match &self.kind {
            Kind::Static { .. } => Ok(None),
            Kind::Minting(m) => m
                .renew(rejected.generation(), "after a 403")
                .await
                .map(Some),
        }
    }

    /// One line for the plan ("ready bearer token from DS100_TOKEN"), never the token itself.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Static { origin, .. } => format!("ready bearer token from {origin}"),
            Kind::Minting(m) => match &m.issuer {
                Issuer::KeyFile { key, lifetime, .. } => format!(
                    "RS256 tokens minted from {} (accessID {}), each valid {}, renewed as they age",
                    key.origin(),
                    key.access_id(),
                    humantime::format_duration(*lifetime)
                ),
                Issuer::OAuth { client, .. } => format!(
                    "OAuth access tokens for client {} from {} (key {}, kid {}, {:?}), scope \
                     '{}', renewed when a fifth of their lifetime is left",
                    client.client_id(),
                    client.token_url(),
                    client.key().origin(),
                    client.key().kid(),
                    client.key().alg(),
                    client.scope()
                ),
            },
        }
    }

    /// Who sends, in words safe to record (the report's sidecar) and compare between runs:
    /// `accessID <id>` for a key file, `OAuth client <id>` for an OAuth API client,
    /// `token sha256:<12 hex digits>` for a ready token.
    pub(crate) fn identity(&self) -> String {
        match &self.kind {
            Kind::Static { fingerprint, .. } => format!("token sha256:{fingerprint}"),
            Kind::Minting(m) => match &m.issuer {
                Issuer::KeyFile { key, .. } => format!("accessID {}", key.access_id()),
                Issuer::OAuth { client, .. } => format!("OAuth client {}", client.client_id()),
            },
        }
    }

    /// Tokens minted so far (0 for a ready token): each mint is the next generation.
    #[cfg(test)]
    fn n_minted(&self) -> u64 {
        match &self.kind {
            Kind::Static { .. } => 0,
            Kind::Minting(m) => m.latest().bearer.generation(),
        }
    }

    /// Warns when a ready JWT runs out before a run of `run_takes` would end.
    /// Returns whether it warned.
    pub(crate) fn warn_if_expires_within(&self, run_takes: Duration) -> bool {
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

/// A token and when to replace it.
struct Minted {
    bearer: Arc<Bearer>,
    /// A key-file token's claims: its replacement must differ from it.
    claims: Option<jwt::Claims>,
    renew_at: SystemTime,
}

/// What makes new tokens.
enum Issuer {
    KeyFile {
        key: Arc<KeyFile>,
        lifetime: Duration,
        lifetime_secs: u64,
    },
    OAuth {
        client: Arc<OAuthClient>,
        /// The run's HTTP configuration, for the issuer's address.
        http: reqwest::Client,
        retry: RetryPolicy,
    },
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issuer::KeyFile { key, lifetime, .. } => f
                .debug_struct("KeyFile")
                .field("key", key)
                .field("lifetime", lifetime)
                .finish_non_exhaustive(),
            Issuer::OAuth { client, .. } => f
                .debug_struct("OAuth")
                .field("client", client)
                .finish_non_exhaustive(),
        }
    }
}

impl Issuer {
    /// Mints the key-file token after `previous` (the first one when `None`).
    fn mint(&self, clock: &dyn Clock, previous: Option<&Minted>) -> anyhow::Result<Minted> {
        let Issuer::KeyFile {
            key,
            lifetime,
            lifetime_secs,
        } = self
        else {
            anyhow::bail!("an OAuth client fetches its tokens, it does not mint them");
        };
        let now = clock.now();
        let mut claims = key.claims(now, *lifetime_secs);
        if let Some(previous_claims) = previous.and_then(|p| p.claims.as_ref()) {
            claims = jwt::distinct_from(claims, previous_claims);
        }
        let token = key.sign(&claims)?;
        let generation = previous.map_or(1, |p| p.bearer.generation() + 1);
        Ok(Minted {
            bearer: Arc::new(Bearer::new(&token, generation)?),
            renew_at: jwt::renew_at(&claims, now, *lifetime),
            claims: Some(claims),
        })
    }

    /// The next token after `previous`, however this issuer makes them.
    async fn fetch(
        &self,
        clock: &dyn Clock,
        previous: Option<&Minted>,
        phase: Phase,
    ) -> anyhow::Result<Minted> {
        let Issuer::OAuth {
            client,
            http,
            retry,
        } = self
        else {
            return self.mint(clock, previous);
        };
        // Timed from before the request: the token's life may have begun while it travelled.
        let asked_at = clock.now();
        let issued = client.fetch(http, retry, phase).await?;
        let generation = previous.map_or(1, |p| p.bearer.generation() + 1);
        tracing::debug!(
            generation,
            expires_in_secs = issued.lifetime.as_secs_f64(),
            scope = issued.granted.as_deref().unwrap_or(client.scope()),
            "fetched an OAuth access token"
        );
        Ok(Minted {
            bearer: Arc::new(Bearer::new(&issued.token, generation)?),
            claims: None,
            // Used until a fifth of its lifetime is left.
            renew_at: asked_at + issued.lifetime.mul_f64(0.8),
        })
    }
}

/// The shared renewal state: the current token behind a lock held for nanoseconds, and a
/// separate async lock that serialises renewal so concurrent workers never mint or fetch a
/// storm.
struct Minter {
    issuer: Issuer,
    clock: Arc<dyn Clock>,
    current: RwLock<Arc<Minted>>,
    mint_lock: tokio::sync::Mutex<()>,
    /// The generation whose renewal failed, and why: every worker waiting to renew it gets
    /// that answer at once instead of trying all over again (the run is stopping).
    failed: Mutex<Option<(u64, String)>>,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter")
            .field("issuer", &self.issuer)
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
        if let Some((generation, failure)) = &*self.failed.lock().unwrap_or_else(|p| p.into_inner())
            && *generation == stale
        {
            anyhow::bail!("{failure}");
        }
        let minted = match self
            .issuer
            .fetch(&*self.clock, Some(&latest), Phase::Renewal)
            .await
        {
            Ok(minted) => Arc::new(minted),
            Err(e) => {
                let failure = format!("{e:#}");
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((stale, failure.clone()));
                anyhow::bail!("{failure}");
            }
        };
        let generation = minted.bearer.generation();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = minted.clone();
        match self.issuer {
            Issuer::KeyFile { .. } => {
                tracing::debug!(generation, "minted a new bearer token {why}")
            }
            Issuer::OAuth { .. } => {
                tracing::debug!(generation, "fetched a new access token {why}")
            }
        }
        Ok(minted.bearer.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::api::keyfile::tests::test_key;

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
                tokio::spawn(
                    async move { src.renew_after_forbidden(&refused).await.unwrap().unwrap() },
                )
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
                .unwrap()
                .generation(),
            3
        );
    }

    #[tokio::test]
    async fn ready_tokens_are_never_renewed() {
        let src = TokenSource::fixed(&SecretString::from("abc".to_string())).unwrap();
        let b = src.current().await.unwrap();
        assert!(src.renew_after_forbidden(&b).await.unwrap().is_none());
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

    /// An in-process simulator serving a token endpoint for the test EC key, with these
    /// faults, issuing tokens living `ttl`; and an OAuth client of it.
    async fn oauth_issuer(
        faults: &[&str],
        ttl: Duration,
    ) -> (ds100_sim::SimHandle, Arc<OAuthClient>) {
        use crate::api::oauth_key::{OAuthKey, tests::EC_JWK};
        let mut policy = ds100_sim::OAuthPolicy::new(EC_JWK.as_bytes(), "client-1").unwrap();
        policy.token_ttl = ttl;
        policy.faults = faults.iter().map(|f| f.parse().unwrap()).collect();
        let sim = ds100_sim::start(ds100_sim::SimConfig {
            auth: ds100_sim::SimAuth::OAuth(Box::new(policy)),
            ..ds100_sim::SimConfig::default()
        })
        .await
        .unwrap();
        let key = OAuthKey::parse(&SecretString::from(EC_JWK.to_string()), "k", None).unwrap();
        let issuer = format!("{}/oauth", sim.url());
        let client = OAuthClient::new(&issuer, "client-1", key, "rsa.authenticator.ds100.read");
        (sim, Arc::new(client.unwrap()))
    }

    fn network(max_attempts: u32) -> Network {
        Network {
            client: ClientOptions {
                timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(10),
                trust: Default::default(),
            },
            retry: RetryPolicy {
                max_attempts,
                max_backoff: Duration::from_millis(1),
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oauth_tokens_are_used_until_a_fifth_of_their_lifetime_is_left() {
        let (sim, client) = oauth_issuer(&[], Duration::from_secs(100)).await;
        let clock = FakeClock::at(4_000_000);
        let src = TokenSource::fetching(client, &network(1), clock.clone())
            .await
            .unwrap();
        let first = src.current().await.unwrap();
        assert_eq!(first.generation(), 1);
        clock.advance(Duration::from_secs(79));
        assert_eq!(src.current().await.unwrap().generation(), 1);
        clock.advance(Duration::from_secs(1));
        let second = src.current().await.unwrap();
        assert_eq!(second.generation(), 2);
        assert_ne!(second.header(), first.header());
        assert_eq!(sim.stats().oauth_tokens_issued, 2);
        assert_eq!(src.identity(), "OAuth client client-1");
        let dbg = format!("{src:?}");
        assert!(!dbg.contains(second.header().to_str().unwrap()), "{dbg}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_403s_fetch_one_oauth_token() {
        let (sim, client) = oauth_issuer(&[], Duration::from_secs(3600)).await;
        let src = TokenSource::fetching(client, &network(1), Arc::new(SystemClock))
            .await
            .unwrap();
        let refused = src.current().await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let src = src.clone();
                let refused = refused.clone();
                tokio::spawn(
                    async move { src.renew_after_forbidden(&refused).await.unwrap().unwrap() },
                )
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().generation(), 2);
        }
        assert_eq!(
            sim.stats().oauth_tokens_issued,
            2,
            "the first and one renewal"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_renewal_is_tried_with_backoff_once_not_by_every_worker() {
        // The issuer stops issuing after the first token: 401 from the second request on.
        let (sim, client) = oauth_issuer(&["401,from=2"], Duration::from_secs(3600)).await;
        let src = TokenSource::fetching(client, &network(3), Arc::new(SystemClock))
            .await
            .unwrap();
        let refused = src.current().await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let src = src.clone();
                let refused = refused.clone();
                tokio::spawn(async move { src.renew_after_forbidden(&refused).await })
            })
            .collect();
        for t in tasks {
            let e = format!("{:#}", t.await.unwrap().unwrap_err());
            assert!(
                e.contains("invalid_client") && e.contains("after 3 attempts"),
                "{e}"
            );
        }
        // The first fetch, then one renewal of three attempts, however many workers asked.
        assert_eq!(sim.stats().oauth_token_requests, 4);
        assert!(
            src.current().await.is_ok(),
            "the current token is still used until it ages"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_fetch_stops_at_a_refusal_and_rides_out_a_blip() {
        let (sim, client) = oauth_issuer(&["401,nth=1"], Duration::from_secs(60)).await;
        let e = TokenSource::fetching(client, &network(6), Arc::new(SystemClock))
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("Nothing was sent"), "{e:#}");
        assert_eq!(
            sim.stats().oauth_token_requests,
            1,
            "a refusal is not retried"
        );
        let (sim, client) = oauth_issuer(&["503,first=2"], Duration::from_secs(60)).await;
        TokenSource::fetching(client, &network(6), Arc::new(SystemClock))
            .await
            .unwrap();
        assert_eq!(sim.stats().oauth_token_requests, 3);
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
}
