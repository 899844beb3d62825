//! Bearer-token checks for the simulator's API endpoints.
//!
//! `SimAuth` is what the operator configures; `Authenticator` is what `start` builds from it
//! once (the JWT scheme parses its public key here, not per request). Adding a scheme is
//! one `SimAuth` variant, one `Scheme` variant and one arm in `check`.
//!
//! JWTs are checked the way RSA does (docs/design.md#credentials): header exactly
//! `{"typ":"JWT","alg":"RS256"}`, a valid RS256 signature, `sub` and `aud` as expected,
//! `exp` not past and at most an hour ahead (and after `iat`), `iat` not in the future, all
//! with ±60 s of clock skew; optionally no older than `max_age`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{JwtPolicy, SimAuth};
use crate::crypto::{Rejected, Rs256Verifier};
use crate::endpoint::Endpoint;
use crate::oauth::{AccessDenied, OAuthServer};

/// Clock skew RSA tolerates on `iat` and `exp`.
const SKEW_SECS: f64 = 60.0;
/// The longest lifetime RSA accepts.
const MAX_LIFETIME_SECS: f64 = 3600.0;
/// Distinct tokens remembered for `SimStats::distinct_tokens`; past this the count stops.
const MAX_TOKENS_REMEMBERED: usize = 1 << 20;

/// Why a request was refused; the 403 body says it, without echoing the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    Missing,
    NotBearer,
    Wrong,
    /// A JWT failed one check; the text names which.
    Jwt(&'static str),
    /// Not an access token of the OAuth token endpoint, or not for this endpoint.
    OAuth(AccessDenied),
}

impl Denied {
    pub(crate) fn message(self) -> String {
        match self {
            Denied::Missing => "missing Authorization header".into(),
            Denied::NotBearer => "Authorization must be 'Bearer <token>'".into(),
            Denied::Wrong => "invalid or expired token".into(),
            Denied::Jwt(why) => why.into(),
            Denied::OAuth(why) => why.message(),
        }
    }
}

pub(crate) struct Authenticator {
    scheme: Scheme,
    /// Hashes of the tokens accepted so far, each with its ordinal (1 = the first token
    /// accepted): tests count renewals with it, and `tokens=N` faults pick tokens by it.
    seen: Mutex<HashMap<u64, u64>>,
}

enum Scheme {
    AnyBearer,
    Token(SecretString),
    Jwt(Box<JwtCheck>),
    OAuth(Arc<OAuthServer>),
}

struct JwtCheck {
    verifier: Rs256Verifier,
    sub: Option<String>,
    aud: Option<String>,
    max_age: Option<Duration>,
}

impl Authenticator {
    pub(crate) fn new(auth: &SimAuth) -> anyhow::Result<Authenticator> {
        let scheme = match auth {
            SimAuth::AnyBearer => Scheme::AnyBearer,
            SimAuth::Token(token) => {
                if token.expose_secret().trim().is_empty() {
                    anyhow::bail!("the simulator's bearer token is empty: give a non-empty token");
                }
                Scheme::Token(token.clone())
            }
            SimAuth::Jwt(policy) => Scheme::Jwt(Box::new(JwtCheck::new(policy))),
            SimAuth::OAuth(policy) => Scheme::OAuth(Arc::new(OAuthServer::new(policy))),
        };
        Ok(Authenticator {
            scheme,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// `check_for` without an endpoint (no scope to check).
    #[cfg(test)]
    pub(crate) fn check(&self, header: Option<&[u8]>) -> Result<u64, Denied> {
        self.check_at(header, SystemTime::now())
    }

    /// Checks the `Authorization` header value (`None` when absent) of a request to
    /// `endpoint`; an OAuth access token must carry the endpoint's scope. An accepted token
    /// comes back as its ordinal: 1 for the first distinct token accepted, 2 for the next, ...
    pub(crate) fn check_for(
        &self,
        header: Option<&[u8]>,
        endpoint: Endpoint,
    ) -> Result<u64, Denied> {
        self.check_scoped(header, SystemTime::now(), Some(endpoint.scope()))
    }

    /// The OAuth token endpoint, when that is the scheme.
    pub(crate) fn oauth(&self) -> Option<&OAuthServer> {
        match &self.scheme {
            Scheme::OAuth(server) => Some(server),
            _ => None,
        }
    }

    #[cfg(test)]
    fn check_at(&self, header: Option<&[u8]>, now: SystemTime) -> Result<u64, Denied> {
        self.check_scoped(header, now, None)
    }

    fn check_scoped(
        &self,
        header: Option<&[u8]>,
        now: SystemTime,
        scope: Option<&'static str>,
    ) -> Result<u64, Denied> {
        let header = header.ok_or(Denied::Missing)?;
        let bearer = bearer_token(header).ok_or(Denied::NotBearer)?;
        match &self.scheme {
            Scheme::AnyBearer => {}
            Scheme::Token(expected) => {
                if !constant_time_eq(bearer, expected.expose_secret().as_bytes()) {
                    return Err(Denied::Wrong);
                }
            }
            Scheme::Jwt(check) => check.check(bearer, now)?,
            Scheme::OAuth(server) => server.check_access(bearer, scope).map_err(Denied::OAuth)?,
        }
        Ok(self.remember(bearer))
    }

    /// The token's ordinal; past `MAX_TOKENS_REMEMBERED` new tokens all get `u64::MAX`.
    fn remember(&self, token: &[u8]) -> u64 {
        let mut h = DefaultHasher::new();
        token.hash(&mut h);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let next = seen.len() as u64 + 1;
        if seen.len() < MAX_TOKENS_REMEMBERED {
            *seen.entry(h.finish()).or_insert(next)
        } else {
            seen.get(&h.finish()).copied().unwrap_or(u64::MAX)
        }
    }

    /// How many different tokens were accepted so far.
    pub(crate) fn distinct_tokens(&self) -> u64 {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }
}

impl JwtCheck {
    fn new(policy: &JwtPolicy) -> JwtCheck {
        JwtCheck {
            verifier: Rs256Verifier::new(&policy.public_key_der),
            sub: policy.sub.clone(),
            aud: policy.aud.clone(),
            max_age: policy.max_age,
        }
    }

    fn check(&self, token: &[u8], now: SystemTime) -> Result<(), Denied> {
        let token = std::str::from_utf8(token).map_err(|_| Denied::Jwt("malformed JWT"))?;
        let header = token.split('.').next().unwrap_or_default();
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Denied::Jwt("malformed JWT"))?;
        if header != serde_json::json!({"typ": "JWT", "alg": "RS256"}) {
            return Err(Denied::Jwt(
                "the JWT header must be exactly {\"typ\":\"JWT\",\"alg\":\"RS256\"}",
            ));
        }
        let claims = self
            .verifier
            .verify(token)
            .map_err(|rejected| match rejected {
                Rejected::Signature => Denied::Jwt("invalid JWT signature"),
                Rejected::Malformed => Denied::Jwt("malformed JWT"),
            })?;
        let (Some(iat), Some(exp)) = (
            claims.get("iat").and_then(serde_json::Value::as_f64),
            claims.get("exp").and_then(serde_json::Value::as_f64),
        ) else {
            return Err(Denied::Jwt("the JWT needs numeric iat and exp claims"));
        };
        let (Some(sub), Some(aud)) = (
            claims.get("sub").and_then(serde_json::Value::as_str),
            claims.get("aud").and_then(serde_json::Value::as_str),
        ) else {
            return Err(Denied::Jwt("the JWT needs string sub and aud claims"));
        };
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if exp + SKEW_SECS < now {
            return Err(Denied::Jwt("the JWT has expired"));
        }
        if iat > now + SKEW_SECS {
            return Err(Denied::Jwt("the JWT's iat is in the future"));
        }
        if exp > now + MAX_LIFETIME_SECS + SKEW_SECS || exp - iat > MAX_LIFETIME_SECS {
            return Err(Denied::Jwt("the JWT lives longer than 60 minutes"));
        }
        if self.sub.as_deref().is_some_and(|want| want != sub) {
            return Err(Denied::Jwt("the JWT's sub is not this key's accessID"));
        }
        if self.aud.as_deref().is_some_and(|want| want != aud) {
            return Err(Denied::Jwt(
                "the JWT's aud is not the key file's adminRestApiUrl, exactly",
            ));
        }
        if let Some(max) = self.max_age
            && now - iat > max.as_secs_f64()
        {
            return Err(Denied::Jwt("the JWT is older than --max-token-age"));
        }
        Ok(())
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 9110 §11.1), if non-empty.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares without an early exit, so response timing does not leak how much of a guessed
/// token was right. The length is not secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use super::*;

    /// A test-only key pair: the private key signs, the public key verifies.
    const KEY_PEM: &str = include_str!("../tests/fixtures/test-only-key.pem");
    const PUBLIC_PEM: &[u8] = include_bytes!("../tests/fixtures/test-only-key-public.pem");
    /// Another key, whose signatures must not pass.
    const OTHER_KEY_PEM: &str = include_str!("../tests/fixtures/test-only-other-key.pem");
    const SUB: &str = "test-only-access-id-3f9c";
    const AUD: &str = "https://test-only.invalid/AdminInterface/restapi/v1";

    /// The claims a key file's tokens carry.
    #[derive(Clone, serde::Serialize)]
    struct Claims {
        sub: String,
        aud: String,
        iat: u64,
        exp: u64,
    }

    fn claims(iat: u64, exp: u64) -> Claims {
        Claims {
            sub: SUB.into(),
            aud: AUD.into(),
            iat,
            exp,
        }
    }

    #[test]
    fn any_bearer_needs_a_non_empty_bearer() {
        let auth = Authenticator::new(&SimAuth::AnyBearer).unwrap();
        assert_eq!(auth.check(Some(b"Bearer abc")), Ok(1));
        assert_eq!(auth.check(Some(b"bearer   abc ")), Ok(1));
        assert_eq!(auth.check(None), Err(Denied::Missing));
        assert_eq!(auth.check(Some(b"Bearer ")), Err(Denied::NotBearer));
        assert_eq!(auth.check(Some(b"Bearer")), Err(Denied::NotBearer));
        assert_eq!(auth.check(Some(b"Basic abc")), Err(Denied::NotBearer));
        assert_eq!(auth.check(Some(b"Bearerabc")), Err(Denied::NotBearer));
        assert_eq!(
            auth.check(Some(b"Bearer xyz")),
            Ok(2),
            "a new token, the next ordinal"
        );
        assert_eq!(
            auth.check(Some(b"Bearer abc")),
            Ok(1),
            "a known token keeps its own"
        );
        assert_eq!(auth.distinct_tokens(), 2);
    }

    #[test]
    fn fixed_token_must_match_exactly() {
        let auth = Authenticator::new(&SimAuth::Token("s3cret".into())).unwrap();
        assert_eq!(auth.check(Some(b"Bearer s3cret")), Ok(1));
        assert_eq!(auth.check(Some(b"Bearer s3cre")), Err(Denied::Wrong));
        assert_eq!(auth.check(Some(b"Bearer S3CRET")), Err(Denied::Wrong));
        assert!(Authenticator::new(&SimAuth::Token(" ".into())).is_err());
    }

    const NOW: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// Checks what the key file's tokens carry: its public key, its accessID and its
    /// adminRestApiUrl.
    fn jwt_auth(max_age: Option<Duration>) -> Authenticator {
        let mut policy =
            JwtPolicy::from_public_key_pem(PUBLIC_PEM, Some(SUB.into()), Some(AUD.into())).unwrap();
        policy.max_age = max_age;
        Authenticator::new(&SimAuth::Jwt(policy)).unwrap()
    }

    fn bearer_of(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    fn signed_with(pem: &str, claims: &Claims) -> Vec<u8> {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        bearer_of(&jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap())
    }

    fn signed(claims: &Claims) -> Vec<u8> {
        signed_with(KEY_PEM, claims)
    }

    fn with_header(header: serde_json::Value, claims: &Claims) -> Vec<u8> {
        let token = String::from_utf8(signed(claims)).unwrap();
        // Put the header in verbatim, keeping the signature (invalid then, but the header
        // check comes first).
        let rest = token.split_once('.').unwrap().1;
        bearer_of(&format!(
            "{}.{rest}",
            URL_SAFE_NO_PAD.encode(header.to_string())
        ))
    }

    #[test]
    fn the_header_jsonwebtoken_writes_is_the_one_rsa_wants() {
        let token = String::from_utf8(signed(&claims(NOW, NOW + 60))).unwrap();
        let header = token
            .trim_start_matches("Bearer ")
            .split('.')
            .next()
            .unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"typ": "JWT", "alg": "RS256"}));
    }

    #[test]
    fn minted_tokens_pass_the_rsa_checks() {
        let auth = jwt_auth(None);
        let good = claims(NOW, NOW + 3300);
        assert_eq!(auth.check_at(Some(&signed(&good)), at(NOW + 5)), Ok(1));
        // The real clock: what `run --key-file` sends now is accepted now.
        let now = unix_now();
        let live = claims(now, now + 3300);
        assert_eq!(auth.check(Some(&signed(&live))), Ok(2));
        assert_eq!(auth.distinct_tokens(), 2);
    }

    #[test]
    fn jwt_claims_are_checked_with_60_seconds_of_skew() {
        let auth = jwt_auth(None);
        let check = |claims: &Claims, now: u64| auth.check_at(Some(&signed(claims)), at(now));
        let expired = Denied::Jwt("the JWT has expired");
        assert_eq!(
            check(&claims(NOW, NOW + 60), NOW + 120),
            Ok(1),
            "within the skew"
        );
        assert_eq!(check(&claims(NOW, NOW + 60), NOW + 121), Err(expired));
        assert_eq!(
            check(&claims(NOW + 60, NOW + 120), NOW),
            Ok(2),
            "iat within the skew"
        );
        assert_eq!(
            check(&claims(NOW + 61, NOW + 120), NOW),
            Err(Denied::Jwt("the JWT's iat is in the future"))
        );
        let too_long = Denied::Jwt("the JWT lives longer than 60 minutes");
        assert_eq!(check(&claims(NOW, NOW + 3600), NOW), Ok(3));
        assert_eq!(check(&claims(NOW, NOW + 3601), NOW), Err(too_long));
        assert_eq!(
            check(&claims(NOW - 100, NOW + 3600 + 61), NOW),
            Err(too_long)
        );
        let mut other = claims(NOW, NOW + 60);
        other.sub = "someone-else".into();
        assert_eq!(
            check(&other, NOW),
            Err(Denied::Jwt("the JWT's sub is not this key's accessID"))
        );
        let mut other = claims(NOW, NOW + 60);
        other.aud = format!("{}/", other.aud);
        assert!(matches!(check(&other, NOW), Err(Denied::Jwt(m)) if m.contains("aud")));
    }

    #[test]
    fn only_rs256_with_the_exact_header_and_the_right_key() {
        let auth = jwt_auth(None);
        let claims = claims(NOW, NOW + 60);
        let bad_header =
            Denied::Jwt("the JWT header must be exactly {\"typ\":\"JWT\",\"alg\":\"RS256\"}");
        for h in [
            serde_json::json!({"alg": "RS256"}),
            serde_json::json!({"typ": "JWT", "alg": "RS512"}),
            serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "1"}),
            serde_json::json!({"typ": "jwt", "alg": "RS256"}),
        ] {
            let token = with_header(h.clone(), &claims);
            assert_eq!(auth.check_at(Some(&token), at(NOW)), Err(bad_header), "{h}");
        }
        // HS256 with the public key as secret (the classic confusion attack).
        let public_der = JwtPolicy::from_public_key_pem(PUBLIC_PEM, None, None)
            .unwrap()
            .public_key_der;
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&public_der).unwrap(),
        )
        .unwrap();
        assert!(auth.check_at(Some(&bearer_of(&hs)), at(NOW)).is_err());
        assert_eq!(
            auth.check_at(Some(&signed_with(OTHER_KEY_PEM, &claims)), at(NOW)),
            Err(Denied::Jwt("invalid JWT signature"))
        );
        assert_eq!(
            auth.check_at(Some(b"Bearer not.a.jwt"), at(NOW)),
            Err(Denied::Jwt("malformed JWT"))
        );
        assert_eq!(auth.distinct_tokens(), 0);
    }

    #[test]
    fn max_token_age_refuses_old_tokens() {
        let auth = jwt_auth(Some(Duration::from_secs(2)));
        let t = signed(&claims(NOW, NOW + 3300));
        assert_eq!(auth.check_at(Some(&t), at(NOW + 2)), Ok(1));
        assert_eq!(
            auth.check_at(Some(&t), at(NOW + 3)),
            Err(Denied::Jwt("the JWT is older than --max-token-age"))
        );
    }

    #[test]
    fn a_public_key_without_sub_and_aud_accepts_any() {
        let policy = JwtPolicy::from_public_key_pem(PUBLIC_PEM, None, None).unwrap();
        assert!(!policy.public_key_der.is_empty());
        let auth = Authenticator::new(&SimAuth::Jwt(policy)).unwrap();
        let mut anyone = claims(NOW, NOW + 60);
        anyone.sub = "anyone".into();
        anyone.aud = "anywhere".into();
        assert_eq!(auth.check_at(Some(&signed(&anyone)), at(NOW)), Ok(1));
        assert!(JwtPolicy::from_public_key_pem(KEY_PEM.as_bytes(), None, None).is_err());
    }
}
