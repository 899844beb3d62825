//! A DS100 API simulator (SPEC §9): a real HTTP server on loopback for the demo, the tests
//! and the benchmarks, with rate limiting and injectable faults.
//!
//! Endpoints (API.md): `DELETE /AdminInterface/restapi/v1/ds100/delete/otp` and
//! `POST /AdminInterface/restapi/v1/ds100/lookup`, both behind `Authorization: Bearer`.
//! Admin endpoints without auth: `GET /__sim/store` (CSV of the store, sorted),
//! `GET /__sim/stats` (JSON `SimStats`), `GET /__sim/arrivals` (JSON array of API request
//! arrival offsets in microseconds since start; empty unless `record_arrivals`).

mod auth;
mod fault;
mod handler;
mod limiter;
mod mix;
mod server;
mod stats;
mod store;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::types::DeleteRequest as Credential;
use crate::rate::Rate;

pub use fault::{Endpoint, Fault, FaultKind, Schedule};
pub use stats::SimStats;
pub use store::generated_credentials;

use handler::{ArmedFault, State};

/// Paths of the two API endpoints, for callers that build URLs from `SimHandle::url`.
pub const DELETE_PATH: &str = handler::DELETE_PATH;
pub const LOOKUP_PATH: &str = handler::LOOKUP_PATH;

/// Everything the simulator can be told. `Default` is a quiet, fault-free server on a free
/// loopback port that accepts any bearer token.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port (read it back from `SimHandle::addr`).
    pub listen: SocketAddr,
    /// The seeded store.
    pub credentials: Vec<Credential>,
    /// Adds this many `generated_credentials` to the store.
    pub generate: u64,
    pub auth: SimAuth,
    /// Requests per second above which API requests are answered 429.
    pub rate_limit: Option<Rate>,
    /// Token bucket size; `None`: one second's worth of `rate_limit`, at least 1.
    pub rate_limit_burst: Option<u32>,
    /// Form of Retry-After on 429s.
    pub retry_after: RetryAfterStyle,
    /// Share (0..=1) of authorised API requests answered 500 before anything is done.
    pub error_rate: f64,
    /// Added to every API answer that reaches the business logic.
    pub latency: Duration,
    /// Scheduled faults; the first that fires (in this order) wins.
    pub faults: Vec<Fault>,
    /// Seeds `error_rate` and `rate=` faults, so runs repeat.
    pub fault_seed: u64,
    /// How long `slow` and `slow-after-commit` sleep.
    pub slow_delay: Duration,
    /// Closes kept-alive connections idle this long; `None`: hyper's default (30 s).
    pub idle_timeout: Option<Duration>,
    /// Keeps the arrival time of every API request for `/__sim/arrivals`.
    pub record_arrivals: bool,
    /// DELETE compares userId case-sensitively (by default case is ignored).
    pub exact_user_ids: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            credentials: Vec::new(),
            generate: 0,
            auth: SimAuth::AnyBearer,
            rate_limit: None,
            rate_limit_burst: None,
            retry_after: RetryAfterStyle::Seconds,
            error_rate: 0.0,
            latency: Duration::ZERO,
            faults: Vec::new(),
            fault_seed: 0,
            slow_delay: Duration::from_secs(5),
            idle_timeout: None,
            record_arrivals: false,
            exact_user_ids: false,
        }
    }
}

/// How the simulator checks `Authorization: Bearer <token>`; anything else is a 403.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SimAuth {
    /// Any non-empty bearer token.
    AnyBearer,
    /// Exactly this token.
    Token(SecretString),
    /// RS256 JWTs checked the way RSA does (API.md §Auth).
    Jwt(JwtPolicy),
}

/// What a JWT must satisfy besides RSA's fixed rules (RS256, exact header, lifetime, skew).
#[derive(Clone)]
pub struct JwtPolicy {
    /// The RSA public key, PKCS#1 `RSAPublicKey` DER.
    pub public_key_der: Vec<u8>,
    /// Required `sub`; `None` accepts any.
    pub sub: Option<String>,
    /// Required `aud`, compared exactly; `None` accepts any.
    pub aud: Option<String>,
    /// Refuse tokens issued longer ago than this (rehearsing renewal).
    pub max_age: Option<Duration>,
}

impl JwtPolicy {
    /// Tokens minted from this key file: its public key, its accessID and adminRestApiUrl.
    pub fn from_key_file(key: &crate::api::keyfile::KeyFile) -> JwtPolicy {
        JwtPolicy {
            public_key_der: key.public_key_der().to_vec(),
            sub: Some(key.access_id().to_string()),
            aud: Some(key.admin_rest_api_url().to_string()),
            max_age: None,
        }
    }

    /// An RSA public key in PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub fn from_public_key_pem(
        pem: &[u8],
        sub: Option<String>,
        aud: Option<String>,
    ) -> anyhow::Result<JwtPolicy> {
        let text = String::from_utf8_lossy(pem);
        if !(text.contains("-----BEGIN PUBLIC KEY-----")
            || text.contains("-----BEGIN RSA PUBLIC KEY-----"))
        {
            anyhow::bail!(
                "not a PEM RSA public key: give -----BEGIN PUBLIC KEY----- text, e.g. from \
                 `openssl rsa -in private.pem -pubout`, or use --key-file with the key file"
            );
        }
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem)
            .map_err(|e| anyhow::anyhow!("not a usable RSA public key: {e}"))?;
        let der = key
            .try_get_as_bytes()
            .map_err(|e| anyhow::anyhow!("not a usable RSA public key: {e}"))?;
        Ok(JwtPolicy {
            public_key_der: der.to_vec(),
            sub,
            aud,
            max_age: None,
        })
    }
}

impl fmt::Debug for JwtPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtPolicy")
            .field("public_key_bytes", &self.public_key_der.len())
            .field("sub", &self.sub)
            .field("aud", &self.aud)
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// The form of Retry-After on 429 answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryAfterStyle {
    /// Whole seconds, rounded up, at least 1.
    #[default]
    Seconds,
    /// An HTTP-date, rounded up to the next whole second.
    HttpDate,
    /// No Retry-After header (API.md: none is documented).
    Omit,
}

impl FromStr for RetryAfterStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<RetryAfterStyle, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "seconds" => Ok(RetryAfterStyle::Seconds),
            "http-date" => Ok(RetryAfterStyle::HttpDate),
            "none" => Ok(RetryAfterStyle::Omit),
            other => Err(format!(
                "unknown Retry-After style '{other}': use seconds, http-date or none"
            )),
        }
    }
}

impl fmt::Display for RetryAfterStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryAfterStyle::Seconds => "seconds",
            RetryAfterStyle::HttpDate => "http-date",
            RetryAfterStyle::Omit => "none",
        })
    }
}

/// A running simulator. Dropping the handle stops the server too (without waiting);
/// `shutdown` stops it and waits.
pub struct SimHandle {
    url: String,
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The origin, e.g. `http://127.0.0.1:40123` (no path).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// The credentials still stored, sorted by (token, device, user).
    pub fn store(&self) -> Vec<Credential> {
        self.state.store.snapshot()
    }

    /// Arrival offsets of API requests in microseconds since start, in arrival order; empty
    /// unless `record_arrivals` (the same data as `/__sim/arrivals`).
    pub fn arrivals(&self) -> Vec<u64> {
        self.state
            .arrivals
            .as_ref()
            .map(|a| a.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Stops accepting, lets answers in progress finish (bounded), and waits for the server.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle").field("url", &self.url).finish()
    }
}

/// Binds, builds the store and starts serving in the background.
pub async fn start(cfg: SimConfig) -> anyhow::Result<SimHandle> {
    if !(0.0..=1.0).contains(&cfg.error_rate) {
        anyhow::bail!(
            "error rate {} is not a share: give a number from 0 to 1 (e.g. 0.1)",
            cfg.error_rate
        );
    }
    if cfg.rate_limit_burst == Some(0) {
        anyhow::bail!("rate-limit burst must be at least 1");
    }
    let auth = auth::Authenticator::new(&cfg.auth)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding the simulator to {}", cfg.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the simulator's address")?;
    let mut store = store::Store::new(
        cfg.credentials
            .into_iter()
            .chain(generated_credentials(cfg.generate)),
    );
    store.exact_user_ids = cfg.exact_user_ids;
    let state = Arc::new(State {
        store,
        counters: stats::Counters::default(),
        auth,
        limiter: cfg
            .rate_limit
            .map(|rate| limiter::TokenBucket::new(rate, cfg.rate_limit_burst)),
        retry_after: cfg.retry_after,
        error_rate: cfg.error_rate,
        error_draws: AtomicU64::new(0),
        faults: cfg
            .faults
            .into_iter()
            .map(|fault| ArmedFault {
                fault,
                seen: AtomicU64::new(0),
            })
            .collect(),
        fault_seed: cfg.fault_seed,
        slow_delay: cfg.slow_delay,
        latency: cfg.latency,
        started: Instant::now(),
        arrivals: cfg.record_arrivals.then(|| Mutex::new(Vec::new())),
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server::serve(
        listener,
        Arc::clone(&state),
        cfg.idle_timeout,
        shutdown.clone(),
    ));
    let url = format!("http://{addr}");
    tracing::debug!(%url, store_size = state.store.len(), "simulator listening");
    Ok(SimHandle {
        url,
        addr,
        state,
        shutdown,
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_style_parses() {
        assert_eq!("seconds".parse(), Ok(RetryAfterStyle::Seconds));
        assert_eq!("HTTP-DATE".parse(), Ok(RetryAfterStyle::HttpDate));
        assert_eq!("none".parse(), Ok(RetryAfterStyle::Omit));
        assert!("date".parse::<RetryAfterStyle>().is_err());
        for style in [
            RetryAfterStyle::Seconds,
            RetryAfterStyle::HttpDate,
            RetryAfterStyle::Omit,
        ] {
            assert_eq!(style.to_string().parse(), Ok(style));
        }
    }

    #[test]
    fn config_debug_hides_the_token() {
        let cfg = SimConfig {
            auth: SimAuth::Token("hunter2".into()),
            ..SimConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
