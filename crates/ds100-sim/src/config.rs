//! What the simulator can be told: its plain configuration and the auth scheme. Callers (the
//! product's `sim` and `demo` commands, the tests) fill it in.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use secrecy::SecretString;

use crate::crypto;
use crate::fault::Fault;
use crate::retry_after::RetryAfterStyle;
use crate::users::User;
use crate::wire::Credential;

/// Everything the simulator can be told. `Default` is a quiet, fault-free server on a free
/// loopback port that accepts any bearer token.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port (read it back from `SimHandle::addr`).
    pub listen: SocketAddr,
    /// The seeded store.
    pub credentials: Vec<Credential>,
    /// Adds this many `generated_credentials` to the store, and a user with an address for each
    /// (`generated_user`).
    pub generate: u64,
    /// The users `…/users/lookup` knows, by address (the seed's `email` column).
    pub users: Vec<User>,
    pub auth: SimAuth,
    /// Requests per second above which API requests are answered 429.
    pub rate_limit_per_second: Option<f64>,
    /// Token bucket size; `None`: one second's worth of the rate limit, at least 1.
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
            users: Vec::new(),
            auth: SimAuth::AnyBearer,
            rate_limit_per_second: None,
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

impl SimConfig {
    /// Refuses values no server could act on; the messages say what to give instead.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            anyhow::bail!(
                "error rate {} is not a share: give a number from 0 to 1 (e.g. 0.1)",
                self.error_rate
            );
        }
        if let Some(rate) = self.rate_limit_per_second
            && !(rate.is_finite() && rate > 0.0)
        {
            anyhow::bail!("rate limit {rate}/s is not a rate: give requests per second above 0");
        }
        if self.rate_limit_burst == Some(0) {
            anyhow::bail!("rate-limit burst must be at least 1");
        }
        Ok(())
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
    /// RS256 JWTs checked the way RSA does (docs/design.md#credentials).
    Jwt(JwtPolicy),
    /// Access tokens from the simulator's own OAuth token endpoint (`POST /oauth/token`),
    /// each checked for the scope its endpoint needs.
    OAuth(Box<crate::oauth::OAuthPolicy>),
}

/// What a JWT must satisfy besides RSA's fixed rules (RS256, exact header, lifetime, skew).
/// Only the public half of a key pair: whoever holds the key file reads it and passes this.
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
        let public_key_der = crypto::rsa_public_key_der(pem)
            .map_err(|e| anyhow::anyhow!("not a usable RSA public key: {e}"))?;
        Ok(JwtPolicy {
            public_key_der,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_token() {
        let cfg = SimConfig {
            auth: SimAuth::Token("hunter2".into()),
            ..SimConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn check_refuses_what_no_server_can_do() {
        let check = |tweak: fn(&mut SimConfig)| {
            let mut cfg = SimConfig::default();
            tweak(&mut cfg);
            cfg.check()
        };
        assert!(check(|_| {}).is_ok());
        assert!(check(|c| c.error_rate = 1.5).is_err());
        assert!(check(|c| c.rate_limit_per_second = Some(0.0)).is_err());
        assert!(check(|c| c.rate_limit_per_second = Some(f64::NAN)).is_err());
        assert!(check(|c| c.rate_limit_burst = Some(0)).is_err());
    }
}
