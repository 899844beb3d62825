//! Everything a request reads or updates, shared by all connections, and how `start` builds
//! it from the configuration.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crate::auth::Authenticator;
use crate::config::SimConfig;
use crate::fault::Fault;
use crate::limiter::TokenBucket;
use crate::retry_after::RetryAfterStyle;
use crate::stats::{Counters, SimStats};
use crate::store::{Store, generated_credentials};
use crate::users::{Directory, generated_user};

/// A fault together with the count of requests it has looked at.
pub(crate) struct ArmedFault {
    pub(crate) fault: Fault,
    pub(crate) seen: AtomicU64,
}

pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) users: Directory,
    pub(crate) counters: Counters,
    pub(crate) auth: Authenticator,
    pub(crate) limiter: Option<TokenBucket>,
    pub(crate) retry_after: RetryAfterStyle,
    pub(crate) error_rate: f64,
    pub(crate) error_draws: AtomicU64,
    pub(crate) faults: Vec<ArmedFault>,
    pub(crate) fault_seed: u64,
    pub(crate) slow_delay: Duration,
    pub(crate) latency: Duration,
    started: Instant,
    /// `Some` only with `record_arrivals`: otherwise nothing grows per request.
    arrivals: Option<Mutex<Vec<u64>>>,
}

impl State {
    /// Checks the configuration and builds the store, the authenticator and the limiter.
    pub(crate) fn new(cfg: SimConfig) -> anyhow::Result<State> {
        cfg.check()?;
        let auth = Authenticator::new(&cfg.auth)?;
        let mut store = Store::new(
            cfg.credentials
                .into_iter()
                .chain(generated_credentials(cfg.generate)),
        );
        store.exact_user_ids = cfg.exact_user_ids;
        let generated_users = generated_credentials(cfg.generate)
            .zip(0u64..)
            .map(|(cred, i)| generated_user(i, &cred.user_id));
        let users = Directory::new(cfg.users.into_iter().chain(generated_users))?;
        Ok(State {
            store,
            users,
            counters: Counters::default(),
            auth,
            limiter: cfg
                .rate_limit_per_second
                .map(|per_second| TokenBucket::new(per_second, cfg.rate_limit_burst)),
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
        })
    }

    pub(crate) fn stats(&self) -> SimStats {
        let mut stats = self.counters.snapshot(self.store.len());
        stats.distinct_tokens = self.auth.distinct_tokens();
        if let Some(oauth) = self.auth.oauth() {
            oauth.fill(&mut stats);
        }
        stats
    }

    /// Notes an API request's arrival, when `record_arrivals` asked for it.
    pub(crate) fn record_arrival(&self) {
        if let Some(arrivals) = &self.arrivals {
            let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            arrivals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(micros);
        }
    }

    /// Arrival offsets in microseconds since start; empty unless `record_arrivals`.
    pub(crate) fn arrivals(&self) -> Vec<u64> {
        self.arrivals
            .as_ref()
            .map(|a| a.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }
}
