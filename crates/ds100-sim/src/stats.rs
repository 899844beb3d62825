//! The simulator's counters: lock-free while serving, snapshotted as `SimStats` on demand.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// What the simulator has seen and answered so far. Served as JSON at `/__sim/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimStats {
    /// API requests received (every endpoint, whatever became of them).
    pub requests: u64,
    /// DELETE …/delete/otp requests received.
    pub deletes: u64,
    /// POST …/ds100/lookup requests received.
    pub lookups: u64,
    /// PATCH …/disable/otp requests received.
    pub disables: u64,
    /// PATCH …/enable/otp requests received.
    pub enables: u64,
    /// POST …/users/lookup requests received.
    pub user_lookups: u64,
    /// API answers sent, per HTTP status. Connections reset instead of answering are not here.
    pub by_status: BTreeMap<u16, u64>,
    /// Credentials deleted.
    pub deleted: u64,
    /// Deletes that reached the store and matched nothing (404).
    pub delete_not_found: u64,
    /// Of those, deletes naming a credential this server had already deleted: a client that
    /// never deletes twice keeps this at 0 (retries after `reset-after-commit` do count).
    pub deletes_of_already_deleted: u64,
    /// Lookups answered with at least one record.
    pub lookups_found: u64,
    /// Disables that reached the store and matched a credential (already disabled included).
    pub disabled: u64,
    /// Enables that reached the store and matched a credential (already enabled included).
    pub enabled: u64,
    /// Disables and enables that matched no credential (404).
    pub patch_not_found: u64,
    /// Lookups of a device holding nothing (404).
    pub lookup_not_found: u64,
    /// User lookups answered with a user.
    pub user_lookups_found: u64,
    /// User lookups of an address no user has (404).
    pub user_lookup_not_found: u64,
    /// Requests with a body the API rejects (400 from the business logic, not from faults).
    pub bad_requests: u64,
    /// 429s from the rate limit (429 faults count under `faults_injected`).
    pub throttled: u64,
    /// 403s for a missing or wrong bearer token.
    pub forbidden: u64,
    /// Different bearer tokens accepted (a run minting from a key file shows its renewals).
    pub distinct_tokens: u64,
    /// 500s from `error_rate`.
    pub errors_injected: u64,
    /// Requests a scheduled fault fired on.
    pub faults_injected: u64,
    /// Connections reset by `reset` / `reset-after-commit`.
    pub resets: u64,
    /// Connections closed without an answer by `hangup`.
    pub hangups: u64,
    /// API requests being handled right now.
    pub in_flight: u64,
    /// The most API requests ever handled at once.
    pub max_in_flight: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Credentials in the store now.
    pub store_size: u64,
    /// `POST /oauth/token` requests received (with `--oauth-public-key`).
    pub oauth_token_requests: u64,
    /// Access tokens issued.
    pub oauth_tokens_issued: u64,
    /// Token requests refused (a bad assertion, form or scope; injected faults not counted).
    pub oauth_refused: u64,
    /// Token requests an `--oauth-fault` fired on.
    pub oauth_faults_injected: u64,
    /// Assertions refused because their `jti` was used before.
    pub oauth_jti_replays: u64,
    /// API requests refused because the access token lacks the endpoint's scope.
    pub oauth_scope_denied: u64,
    /// The `scope` parameter of every token request, as sent, with how often it came.
    pub oauth_scopes_requested: BTreeMap<String, u64>,
}

/// Counters for each status code the server can send, indexed by code.
const N_STATUS_SLOTS: usize = 600;

/// The live counters behind `SimStats`.
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) lookups: AtomicU64,
    pub(crate) disables: AtomicU64,
    pub(crate) enables: AtomicU64,
    pub(crate) user_lookups: AtomicU64,
    by_status: Box<[AtomicU64]>,
    pub(crate) deleted: AtomicU64,
    pub(crate) delete_not_found: AtomicU64,
    pub(crate) deletes_of_already_deleted: AtomicU64,
    pub(crate) lookups_found: AtomicU64,
    pub(crate) disabled: AtomicU64,
    pub(crate) enabled: AtomicU64,
    pub(crate) patch_not_found: AtomicU64,
    pub(crate) lookup_not_found: AtomicU64,
    pub(crate) user_lookups_found: AtomicU64,
    pub(crate) user_lookup_not_found: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) forbidden: AtomicU64,
    pub(crate) errors_injected: AtomicU64,
    pub(crate) faults_injected: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) hangups: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    pub(crate) connections: AtomicU64,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            requests: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            disables: AtomicU64::new(0),
            enables: AtomicU64::new(0),
            user_lookups: AtomicU64::new(0),
            by_status: (0..N_STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            deleted: AtomicU64::new(0),
            delete_not_found: AtomicU64::new(0),
            deletes_of_already_deleted: AtomicU64::new(0),
            lookups_found: AtomicU64::new(0),
            disabled: AtomicU64::new(0),
            enabled: AtomicU64::new(0),
            patch_not_found: AtomicU64::new(0),
            lookup_not_found: AtomicU64::new(0),
            user_lookups_found: AtomicU64::new(0),
            user_lookup_not_found: AtomicU64::new(0),
            bad_requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            forbidden: AtomicU64::new(0),
            errors_injected: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            hangups: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        }
    }
}

/// Counts one request as in flight for as long as it lives, so a request whose connection is
/// dropped mid-way (reset, client gone) still leaves the count.
pub(crate) struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Adds one to a counter. Relaxed: the counters are statistics, not synchronisation.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(self)
    }

    pub(crate) fn answered(&self, status: u16) {
        if let Some(slot) = self.by_status.get(usize::from(status)) {
            bump(slot);
        }
    }

    pub(crate) fn snapshot(&self, store_size: u64) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            requests: get(&self.requests),
            deletes: get(&self.deletes),
            lookups: get(&self.lookups),
            disables: get(&self.disables),
            enables: get(&self.enables),
            user_lookups: get(&self.user_lookups),
            by_status: self
                .by_status
                .iter()
                .enumerate()
                .filter_map(|(code, n)| {
                    let n = get(n);
                    (n > 0).then(|| (u16::try_from(code).unwrap_or(u16::MAX), n))
                })
                .collect(),
            deleted: get(&self.deleted),
            delete_not_found: get(&self.delete_not_found),
            deletes_of_already_deleted: get(&self.deletes_of_already_deleted),
            lookups_found: get(&self.lookups_found),
            disabled: get(&self.disabled),
            enabled: get(&self.enabled),
            patch_not_found: get(&self.patch_not_found),
            lookup_not_found: get(&self.lookup_not_found),
            user_lookups_found: get(&self.user_lookups_found),
            user_lookup_not_found: get(&self.user_lookup_not_found),
            bad_requests: get(&self.bad_requests),
            throttled: get(&self.throttled),
            forbidden: get(&self.forbidden),
            distinct_tokens: 0, // filled in by the authenticator, which knows the tokens
            errors_injected: get(&self.errors_injected),
            faults_injected: get(&self.faults_injected),
            resets: get(&self.resets),
            hangups: get(&self.hangups),
            in_flight: get(&self.in_flight),
            max_in_flight: get(&self.max_in_flight),
            connections: get(&self.connections),
            store_size,
            // Filled in by the token endpoint, which keeps its own counters.
            ..SimStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_tracks_the_maximum_and_json_round_trips() {
        let c = Counters::default();
        {
            let _a = c.enter();
            let _b = c.enter();
        }
        let _c = c.enter();
        c.answered(200);
        c.answered(200);
        c.answered(429);
        c.answered(9999);
        let s = c.snapshot(7);
        assert_eq!((s.in_flight, s.max_in_flight, s.store_size), (1, 2, 7));
        assert_eq!(s.by_status, BTreeMap::from([(200, 2), (429, 1)]));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""by_status":{"200":2,"429":1}"#), "{json}");
        assert_eq!(serde_json::from_str::<SimStats>(&json).unwrap(), s);
    }
}
