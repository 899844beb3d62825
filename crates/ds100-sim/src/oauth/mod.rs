//! An OAuth token endpoint in front of the API (docs/design.md#the-simulator): the client
//! credentials grant with a private-key JWT, as an identity provider serves it. `POST
//! /oauth/token` verifies the client assertion (`token`), issues short-lived opaque access
//! tokens carrying the requested scopes, and the API endpoints then accept only those
//! tokens, each checking the scope it needs (`check_access`).
//!
//! `OAuthPolicy` is what the operator configures (the client's public key, its id, the token
//! lifetime, allowed scopes, injected faults); `OAuthServer` is the running state built
//! from it: tokens issued, `jti`s seen, counters.

mod form;
pub(crate) mod token;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::stats::{SimStats, bump};

/// The path of the token endpoint; the issuer is the simulator's URL plus `/oauth`.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Tokens remembered at most; expired ones are dropped first, then the oldest.
const MAX_GRANTS: usize = 100_000;
/// DER of OID 1.2.840.10045.3.1.7 (P-256), to tell a P-256 public key from other curves.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The public key client assertions are verified with.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// What the token endpoint checks and issues.
#[derive(Clone)]
pub struct OAuthPolicy {
    pub(crate) key: Arc<VerifyKey>,
    /// The one client id assertions may name (`iss`, `sub`, `client_id`).
    pub client_id: String,
    /// The `kid` assertions must carry; `None`: any non-empty `kid`.
    pub key_id: Option<String>,
    /// Lifetime of issued access tokens.
    pub token_ttl: Duration,
    /// Scopes the client may be granted; `None`: whatever it asks for.
    pub allowed_scopes: Option<Vec<String>>,
    /// Token requests that fail instead (the first that fires wins).
    pub faults: Vec<OAuthFault>,
    /// The issuer URL assertions are addressed to (`aud` = issuer + `/token`); `None`: the
    /// simulator's own URL plus `/oauth`.
    pub issuer: Option<String>,
}

impl OAuthPolicy {
    /// A policy verifying with `public_key` (a PEM public key, or a JWK — a private one is
    /// read for its public half; RSA or EC P-256) for the client `client_id`. A JWK's `kid`
    /// becomes the required `key_id`.
    pub fn new(public_key: &[u8], client_id: &str) -> anyhow::Result<OAuthPolicy> {
        let client_id = client_id.trim();
        if client_id.is_empty() {
            anyhow::bail!("the OAuth client id is empty");
        }
        let (key, key_id) = parse_public_key(public_key)?;
        Ok(OAuthPolicy {
            key: Arc::new(key),
            client_id: client_id.to_string(),
            key_id,
            token_ttl: Duration::from_secs(3600),
            allowed_scopes: None,
            faults: Vec::new(),
            issuer: None,
        })
    }

    /// RS256 or ES256, as the key dictates.
    pub fn algorithm(&self) -> &'static str {
        match self.key.alg {
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        }
    }
}

impl fmt::Debug for OAuthPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthPolicy")
            .field("alg", &self.algorithm())
            .field("client_id", &self.client_id)
            .field("key_id", &self.key_id)
            .field("token_ttl", &self.token_ttl)
            .field("allowed_scopes", &self.allowed_scopes)
            .field("faults", &self.faults)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Reads a public key: PEM (`PUBLIC KEY`, `RSA PUBLIC KEY`) or a JWK (or a JWK Set of one).
fn parse_public_key(bytes: &[u8]) -> anyhow::Result<(VerifyKey, Option<String>)> {
    jwt_ring::install();
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.starts_with('{') {
        let mut value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("the OAuth public key is not JSON ({e})"))?;
        if let Some(keys) = value.get("keys").and_then(|k| k.as_array()) {
            let [only] = keys.as_slice() else {
                anyhow::bail!(
                    "the JWK Set holds {} keys: give the one key of the client",
                    keys.len()
                );
            };
            value = only.clone();
        }
        let jwk: Jwk = serde_json::from_value(value)
            .map_err(|_| anyhow::anyhow!("the OAuth public key is not a JWK (RSA, or EC P-256)"))?;
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::EllipticCurve(_) => {
                anyhow::bail!("the JWK is an EC key on another curve than P-256 (ES256)")
            }
            _ => anyhow::bail!("the JWK is neither RSA nor EC P-256"),
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| anyhow::anyhow!("the JWK is not a usable public key: {e}"))?;
        return Ok((VerifyKey { alg, key }, jwk.common.key_id.clone()));
    }
    let label = text
        .split_once("-----BEGIN ")
        .and_then(|(_, rest)| rest.split_once("-----"))
        .map(|(label, _)| label.trim());
    match label {
        Some("PUBLIC KEY") => {
            if let Ok(key) = DecodingKey::from_rsa_pem(text.as_bytes()) {
                return Ok((
                    VerifyKey {
                        alg: Algorithm::RS256,
                        key,
                    },
                    None,
                ));
            }
            let key = DecodingKey::from_ec_pem(text.as_bytes()).map_err(|_| {
                anyhow::anyhow!("the PEM public key is neither RSA nor EC (RS256 or ES256)")
            })?;
            if !pem_der(text).is_some_and(|der| der.windows(OID_P256.len()).any(|w| w == OID_P256))
            {
                anyhow::bail!(
                    "the PEM public key is an EC key on another curve than P-256 (ES256)"
                );
            }
            Ok((
                VerifyKey {
                    alg: Algorithm::ES256,
                    key,
                },
                None,
            ))
        }
        Some("RSA PUBLIC KEY") => {
            let key = DecodingKey::from_rsa_pem(text.as_bytes())
                .map_err(|e| anyhow::anyhow!("not a usable RSA public key: {e}"))?;
            Ok((
                VerifyKey {
                    alg: Algorithm::RS256,
                    key,
                },
                None,
            ))
        }
        Some(l) if l.contains("PRIVATE KEY") => anyhow::bail!(
            "the OAuth public key is a private key: give its public half, e.g. from \
             `openssl pkey -in key.pem -pubout`, or the client's JWK"
        ),
        _ => anyhow::bail!(
            "the OAuth public key is neither a JWK nor a PEM public key (-----BEGIN PUBLIC KEY-----)"
        ),
    }
}

/// The DER of a PEM's first block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body = pem.split("-----").nth(2)?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A token request that fails: what it answers and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OAuthFault {
    pub kind: OAuthFaultKind,
    pub schedule: OAuthSchedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthFaultKind {
    /// 400 `invalid_request`, 401 `invalid_client`, 429 `slow_down`, 500 `server_error`,
    /// 503 `temporarily_unavailable`.
    Status(u16),
    /// The connection is reset instead of answered.
    Reset,
}

/// Which token requests (counted from 1) a fault fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthSchedule {
    Nth(u64),
    First(u64),
    Every(u64),
    /// The Nth and every one after it: an issuer that stops issuing.
    From(u64),
}

impl OAuthSchedule {
    fn fires(self, n: u64) -> bool {
        match self {
            OAuthSchedule::Nth(k) => n == k,
            OAuthSchedule::First(k) => n <= k,
            OAuthSchedule::Every(k) => n.is_multiple_of(k),
            OAuthSchedule::From(k) => n >= k,
        }
    }
}

const OAUTH_FAULT_GRAMMAR: &str = "oauth fault grammar: STATUS,SCHEDULE with STATUS 400, 401, \
     429, 500, 503 or reset and SCHEDULE nth=N, first=N, every=N or from=N (N ≥ 1); \
     examples: 503,nth=2  401,from=3  reset,first=1";

impl FromStr for OAuthFault {
    type Err = String;

    fn from_str(s: &str) -> Result<OAuthFault, String> {
        let bad = |why: &str| format!("{why}; {OAUTH_FAULT_GRAMMAR}");
        let (kind, schedule) = s
            .split_once(',')
            .ok_or_else(|| bad(&format!("'{s}' has no SCHEDULE")))?;
        let kind = match kind.trim().to_ascii_lowercase().as_str() {
            "reset" => OAuthFaultKind::Reset,
            k => match k.parse::<u16>() {
                Ok(code @ (400 | 401 | 429 | 500 | 503)) => OAuthFaultKind::Status(code),
                _ => return Err(bad(&format!("unknown STATUS '{k}'"))),
            },
        };
        let (name, n) = schedule
            .trim()
            .split_once('=')
            .ok_or_else(|| bad(&format!("'{schedule}' is not NAME=N")))?;
        let n: u64 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(&format!("'{n}' is not a count of 1 or more")))?;
        let schedule = match name.trim() {
            "nth" => OAuthSchedule::Nth(n),
            "first" => OAuthSchedule::First(n),
            "every" => OAuthSchedule::Every(n),
            "from" => OAuthSchedule::From(n),
            other => return Err(bad(&format!("unknown SCHEDULE '{other}'"))),
        };
        Ok(OAuthFault { kind, schedule })
    }
}

/// Why an API request's access token is refused (a 403); never the token itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccessDenied {
    Unknown,
    Expired,
    /// The token lacks this scope, which the endpoint needs.
    Scope(&'static str),
}

impl AccessDenied {
    pub(crate) fn message(self) -> String {
        match self {
            AccessDenied::Unknown => {
                "invalid access token: not one the token endpoint issued".into()
            }
            AccessDenied::Expired => "the access token has expired".into(),
            AccessDenied::Scope(scope) => format!(
                "insufficient scope: this endpoint needs {scope}, which the access token does not carry"
            ),
        }
    }
}

/// One issued access token.
struct Grant {
    scopes: Vec<String>,
    expires: Instant,
}

/// The token endpoint's running state.
pub(crate) struct OAuthServer {
    pub(crate) policy: OAuthPolicy,
    /// `<issuer>/token`, known once the simulator is bound (or from the policy).
    token_url: OnceLock<String>,
    grants: Mutex<HashMap<String, Grant>>,
    /// `jti`s of accepted assertions, each with its `exp`: a replay is refused while it
    /// would otherwise still be valid (after that, `exp` refuses it).
    jtis: Mutex<HashMap<String, f64>>,
    random: RandomState,
    n_issued_ever: AtomicU64,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    issued: AtomicU64,
    refused: AtomicU64,
    faults: AtomicU64,
    jti_replays: AtomicU64,
    scope_denied: AtomicU64,
    scopes: Mutex<BTreeMap<String, u64>>,
}

impl OAuthServer {
    pub(crate) fn new(policy: &OAuthPolicy) -> OAuthServer {
        let token_url = OnceLock::new();
        if let Some(issuer) = &policy.issuer {
            let _ = token_url.set(format!("{}/token", issuer.trim_end_matches('/')));
        }
        OAuthServer {
            policy: policy.clone(),
            token_url,
            grants: Mutex::new(HashMap::new()),
            jtis: Mutex::new(HashMap::new()),
            random: RandomState::new(),
            n_issued_ever: AtomicU64::new(0),
            counters: Counters::default(),
        }
    }

    /// The simulator's URL is known: the issuer is `<url>/oauth` unless the policy named one.
    pub(crate) fn bound_at(&self, url: &str) {
        let _ = self.token_url.set(format!("{url}{TOKEN_PATH}"));
    }

    /// The `aud` assertions must carry.
    pub(crate) fn token_url(&self) -> &str {
        self.token_url.get().map_or("", String::as_str)
    }

    /// Whether the bearer `token` is one this endpoint issued, unexpired, granting `scope`
    /// (`None`: any scope).
    pub(crate) fn check_access(
        &self,
        token: &[u8],
        scope: Option<&'static str>,
    ) -> Result<(), AccessDenied> {
        self.check_access_at(token, scope, Instant::now())
    }

    fn check_access_at(
        &self,
        token: &[u8],
        scope: Option<&'static str>,
        now: Instant,
    ) -> Result<(), AccessDenied> {
        let token = std::str::from_utf8(token).map_err(|_| AccessDenied::Unknown)?;
        let grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        let grant = grants.get(token).ok_or(AccessDenied::Unknown)?;
        if now >= grant.expires {
            return Err(AccessDenied::Expired);
        }
        if let Some(scope) = scope
            && !grant.scopes.iter().any(|s| s == scope)
        {
            bump(&self.counters.scope_denied);
            return Err(AccessDenied::Scope(scope));
        }
        Ok(())
    }

    /// A new opaque access token granting `scopes` for the policy's lifetime.
    fn issue(&self, scopes: Vec<String>) -> String {
        let n = self.n_issued_ever.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (
            self.random.hash_one((n, 1u8, Instant::now())),
            self.random.hash_one((n, 2u8, Instant::now())),
        );
        let token = format!("sim-at-{a:016x}{b:016x}");
        let now = Instant::now();
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        if grants.len() >= MAX_GRANTS {
            grants.retain(|_, g| g.expires > now);
        }
        if grants.len() < MAX_GRANTS {
            grants.insert(
                token.clone(),
                Grant {
                    scopes,
                    expires: now + self.policy.token_ttl,
                },
            );
        }
        bump(&self.counters.issued);
        token
    }

    /// Records `jti` (valid until `exp`); false when it was seen before.
    fn first_use_of(&self, jti: &str, exp: f64, now: f64) -> bool {
        let mut jtis = self.jtis.lock().unwrap_or_else(|p| p.into_inner());
        jtis.retain(|_, e| *e + token::SKEW_SECS >= now);
        if jtis.contains_key(jti) {
            bump(&self.counters.jti_replays);
            return false;
        }
        jtis.insert(jti.to_string(), exp);
        true
    }

    fn record_scope(&self, scope: &str) {
        let mut scopes = self
            .counters
            .scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *scopes.entry(scope.to_string()).or_insert(0) += 1;
    }

    /// The counters into `stats`.
    pub(crate) fn fill(&self, stats: &mut SimStats) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        stats.oauth_token_requests = get(&c.requests);
        stats.oauth_tokens_issued = get(&c.issued);
        stats.oauth_refused = get(&c.refused);
        stats.oauth_faults_injected = get(&c.faults);
        stats.oauth_jti_replays = get(&c.jti_replays);
        stats.oauth_scope_denied = get(&c.scope_denied);
        stats.oauth_scopes_requested = c.scopes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PUBLIC_PEM: &[u8] =
        include_bytes!("../../../../tests/fixtures/test-only-oauth-rsa-public.pem");
    const EC_PUBLIC_PEM: &[u8] =
        include_bytes!("../../../../tests/fixtures/test-only-oauth-ec-public.pem");
    const EC_JWK: &[u8] = include_bytes!("../../../../tests/fixtures/test-only-oauth-ec.jwk.json");
    const RSA_PUBLIC_JWK: &[u8] =
        include_bytes!("../../../../tests/fixtures/test-only-oauth-rsa-public.jwk.json");
    const EC_PRIVATE_PEM: &[u8] =
        include_bytes!("../../../../tests/fixtures/test-only-oauth-ec-pkcs8.pem");

    #[test]
    fn public_keys_of_every_form_are_read() {
        let alg = |b: &[u8]| OAuthPolicy::new(b, "c").map(|p| (p.algorithm(), p.key_id));
        assert_eq!(alg(RSA_PUBLIC_PEM).unwrap(), ("RS256", None));
        assert_eq!(alg(EC_PUBLIC_PEM).unwrap(), ("ES256", None));
        assert_eq!(
            alg(EC_JWK).unwrap(),
            ("ES256", Some("test-only-ec-kid-52ad".into()))
        );
        assert_eq!(
            alg(RSA_PUBLIC_JWK).unwrap(),
            ("RS256", Some("test-only-rsa-kid-7c1e".into()))
        );
        let e = alg(EC_PRIVATE_PEM).unwrap_err().to_string();
        assert!(e.contains("private key"), "{e}");
        assert!(alg(b"hello").is_err());
        assert!(OAuthPolicy::new(EC_JWK, " ").is_err());
        let dbg = format!("{:?}", OAuthPolicy::new(EC_JWK, "c").unwrap());
        assert!(dbg.contains("ES256") && !dbg.contains("NPcO"), "{dbg}");
    }

    #[test]
    fn fault_specs_parse_or_explain() {
        assert_eq!(
            "503,nth=2".parse(),
            Ok(OAuthFault {
                kind: OAuthFaultKind::Status(503),
                schedule: OAuthSchedule::Nth(2)
            })
        );
        assert_eq!(
            "reset, from=3".parse(),
            Ok(OAuthFault {
                kind: OAuthFaultKind::Reset,
                schedule: OAuthSchedule::From(3)
            })
        );
        for bad in ["503", "404,nth=1", "401,nth=0", "401,later=2", "401,nth"] {
            let e = bad.parse::<OAuthFault>().unwrap_err();
            assert!(e.contains("grammar"), "{bad}: {e}");
        }
        assert!(OAuthSchedule::From(3).fires(3) && OAuthSchedule::From(3).fires(9));
        assert!(!OAuthSchedule::From(3).fires(2));
        assert!(OAuthSchedule::Every(2).fires(4) && !OAuthSchedule::Every(2).fires(3));
    }

    #[test]
    fn issued_tokens_grant_their_scopes_until_they_expire() {
        let mut policy = OAuthPolicy::new(EC_JWK, "c").unwrap();
        policy.token_ttl = Duration::from_secs(60);
        let server = OAuthServer::new(&policy);
        let t = server.issue(vec!["read".into()]);
        let u = server.issue(vec!["read".into()]);
        assert_ne!(t, u, "every token is new");
        assert_eq!(server.check_access(t.as_bytes(), Some("read")), Ok(()));
        assert_eq!(server.check_access(t.as_bytes(), None), Ok(()));
        let e = server
            .check_access(t.as_bytes(), Some("delete"))
            .unwrap_err();
        assert_eq!(e, AccessDenied::Scope("delete"));
        assert!(e.message().contains("needs delete"), "{e:?}");
        assert!(server.check_access(b"made-up", Some("read")).is_err());
        let later = Instant::now() + Duration::from_secs(61);
        assert_eq!(
            server.check_access_at(t.as_bytes(), Some("read"), later),
            Err(AccessDenied::Expired)
        );
    }

    #[test]
    fn a_jti_is_accepted_once_while_it_is_valid() {
        let server = OAuthServer::new(&OAuthPolicy::new(EC_JWK, "c").unwrap());
        assert!(server.first_use_of("j1", 1000.0, 900.0));
        assert!(!server.first_use_of("j1", 1000.0, 950.0));
        assert!(server.first_use_of("j2", 1000.0, 950.0));
        // Long after its exp it is forgotten (exp alone refuses it then).
        assert!(server.first_use_of("j1", 1000.0, 2000.0));
        let mut stats = SimStats::default();
        server.fill(&mut stats);
        assert_eq!(stats.oauth_jti_replays, 1);
    }
}
