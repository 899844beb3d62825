//! A stand-in for the DS100 API (docs/design.md#the-simulator): a real HTTP server on
//! loopback, over an in-memory store, for `ds100-offboard sim` and `demo`, the tests and the
//! benchmarks. It throttles, checks bearer tokens and JWTs as the tenant does, and injects
//! faults on demand. A test double and a demo prop, not the product: the product depends on
//! it, never the other way round, and it has its own wire types (`wire`), so a field-name
//! mistake on either side fails the tests instead of cancelling out.
//!
//! API endpoints, behind `Authorization: Bearer`: `DELETE …/ds100/delete/otp`,
//! `POST …/ds100/lookup`, `PATCH …/ds100/disable/otp` and `…/enable/otp`, and
//! `POST …/users/lookup {email}` (`DELETE_PATH`, `LOOKUP_PATH`, `DISABLE_PATH`, `ENABLE_PATH`,
//! `USERS_LOOKUP_PATH`; the users come from `SimConfig::users` and `generated_user`). With
//! `SimAuth::OAuth`, an OAuth token endpoint, `POST /oauth/token` (`TOKEN_PATH`), outside the
//! bearer gate: it issues the only tokens the API then accepts. Admin endpoints, without auth:
//! `GET /__sim/store` (CSV of the store, sorted), `GET /__sim/stats` (JSON `SimStats`),
//! `GET /__sim/arrivals` (JSON array of API request arrival offsets in microseconds since
//! start; empty unless `record_arrivals`).
//!
//! Where things live: `routes` decides what answers each request; `gate` runs every API
//! request through rate limit, auth and faults; `ops` is what each endpoint does, through the
//! operations of `store`; `wire` holds the JSON bodies; `oauth` is the token endpoint and
//! the access tokens it issued. A new API endpoint is an `Endpoint`
//! variant (method, path, name) and a function in `ops`; the compiler points at every match
//! that must learn it.

// The simulator prints nothing itself (its caller does), so a closed stdout cannot panic it.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod admin;
mod auth;
mod config;
mod conn;
mod crypto;
mod endpoint;
mod fault;
mod gate;
mod limiter;
mod mix;
mod oauth;
mod ops;
mod respond;
mod retry_after;
mod routes;
mod server;
mod state;
mod stats;
mod store;
mod users;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{JwtPolicy, SimAuth, SimConfig};
pub use endpoint::{
    DELETE_PATH, DISABLE_PATH, ENABLE_PATH, Endpoint, LOOKUP_PATH, USERS_LOOKUP_PATH,
};
pub use fault::{Fault, FaultKind, Schedule};
pub use oauth::{OAuthFault, OAuthFaultKind, OAuthPolicy, OAuthSchedule, TOKEN_PATH};
pub use retry_after::RetryAfterStyle;
pub use stats::SimStats;
pub use store::generated_credentials;
pub use users::{User, generated_user};
pub use wire::{Credential, LookupRecord, PatchRecord, UserRecord};

use state::State;

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
        self.state.arrivals()
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

/// Checks the configuration, builds the store, binds and starts serving in the background.
pub async fn start(cfg: SimConfig) -> anyhow::Result<SimHandle> {
    let listen = cfg.listen;
    let idle_timeout = cfg.idle_timeout;
    let state = Arc::new(State::new(cfg)?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the simulator to {listen}"))?;
    let addr = listener
        .local_addr()
        .context("reading the simulator's address")?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server::serve(
        listener,
        Arc::clone(&state),
        idle_timeout,
        shutdown.clone(),
    ));
    let url = format!("http://{addr}");
    if let Some(oauth) = state.auth.oauth() {
        oauth.bound_at(&url);
    }
    tracing::debug!(
        %url,
        store_size = state.store.len(),
        users = state.users.len(),
        "simulator listening"
    );
    Ok(SimHandle {
        url,
        addr,
        state,
        shutdown,
        task: Some(task),
    })
}
