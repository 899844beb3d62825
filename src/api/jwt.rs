//! RS256 JWTs as RSA's Administration API wants them (docs/design.md#credentials): the claims,
//! signing, the refresh margin, and reading `exp` out of a ready token without verifying it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// RSA refuses tokens living longer than this.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// What the tool asks for: five minutes under the ceiling, for clocks that disagree.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(55 * 60);
/// Shorter lifetimes exist for tests and rehearsals; below a second the claims (whole
/// seconds) cannot express it.
pub(crate) const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// The longest refresh margin: a default token is replaced when 5 of its 55 minutes are left.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The claims RSA checks: `sub` = accessID, `aud` = adminRestApiUrl as written in the key file,
/// `iat` and `exp` in whole Unix seconds. Nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

impl Claims {
    /// Claims for a token of `sub` (the key's accessID) for `aud` (its adminRestApiUrl as
    /// written), issued at `now`, living `lifetime_secs` seconds.
    pub(crate) fn new(sub: &str, aud: &str, now: SystemTime, lifetime_secs: u64) -> Claims {
        let iat = unix_secs(now);
        Claims {
            sub: sub.to_string(),
            aud: aud.to_string(),
            iat,
            exp: iat + lifetime_secs,
        }
    }

    pub(crate) fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.exp)
    }
}

/// `claims` for a token replacing one with `previous` claims, made to differ from them.
/// Claims are whole seconds and RS256 signatures are deterministic, so a token minted in the
/// same second as the one it replaces would be that token again: useless as the fresh token
/// to retry a 403 with. The replacement then expires a second earlier (a lifetime a second
/// shorter, still within RSA's hour), or, for a one-second token, was issued a second earlier.
pub(crate) fn distinct_from(claims: Claims, previous: &Claims) -> Claims {
    if claims.iat > previous.iat {
        return claims;
    }
    let (iat, exp) = if previous.exp > previous.iat + 1 {
        (previous.iat, previous.exp - 1)
    } else {
        (previous.iat.saturating_sub(1), previous.exp)
    };
    Claims { iat, exp, ..claims }
}

/// The header, exactly `{"typ":"JWT","alg":"RS256"}` (anything else is answered 403).
pub(crate) fn header() -> Header {
    Header::new(Algorithm::RS256)
}

/// Signs `claims` with a key file's private key.
pub(crate) fn sign(key: &EncodingKey, claims: &Claims) -> anyhow::Result<SecretString> {
    jwt_ring::install();
    jsonwebtoken::encode(&header(), claims, key)
        .map(SecretString::from)
        .map_err(|e| anyhow::anyhow!("signing the token failed: {}", describe_jwt_error(&e)))
}

/// Checks a requested lifetime: between 1 s and 60 min, whole seconds.
pub(crate) fn check_lifetime(lifetime: Duration) -> Result<u64, String> {
    if lifetime > MAX_LIFETIME {
        return Err(format!(
            "{} is longer than the 60 minutes RSA accepts: give at most 60m (default 55m)",
            humantime::format_duration(lifetime)
        ));
    }
    if lifetime < MIN_LIFETIME {
        return Err("a token must live at least 1s".into());
    }
    Ok(lifetime.as_secs())
}

/// How long before `exp` a token is replaced: a fifth of its lifetime, at most 5 minutes.
/// Scales down with short test lifetimes so a 2 s token is still used for over a second.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(MAX_REFRESH_MARGIN)
}

/// When a token minted at `now` with `claims` should be replaced: `margin` before `exp`, but
/// never sooner than half its lifetime after minting (whole-second `iat` can make a short
/// token look older than it is; minting on every request would be worse).
pub(crate) fn renew_at(claims: &Claims, now: SystemTime, lifetime: Duration) -> SystemTime {
    let by_exp = claims
        .expires_at()
        .checked_sub(refresh_margin(lifetime))
        .unwrap_or(UNIX_EPOCH);
    by_exp.max(now + lifetime / 2)
}

/// The `exp` of a ready token, if it is a JWT with a numeric `exp`. Not verified: this only
/// serves the warning that a token will run out during the run.
pub(crate) fn unverified_exp(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = value.get("exp")?.as_f64()?;
    (exp.is_finite() && exp >= 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(exp))
}

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A `jsonwebtoken` error as text; its messages name kinds of failures, not key bytes.
pub(crate) fn describe_jwt_error(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidKeyFormat => "not a valid key of this kind".into(),
        ErrorKind::InvalidRsaKey(_) => "not a valid RSA key".into(),
        ErrorKind::InvalidEcdsaKey => "an EC key".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::keyfile::tests::test_key;
    use secrecy::ExposeSecret;

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn claims_are_sub_aud_iat_exp_in_whole_seconds() {
        let key = test_key();
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_900);
        let c = key.claims(now, 3300);
        assert_eq!(c.sub, "test-only-access-id-3f9c");
        assert_eq!(c.aud, "https://test-only.invalid/AdminInterface/restapi/v1");
        assert_eq!((c.iat, c.exp), (1_700_000_000, 1_700_003_300));
        let json = serde_json::to_value(&c).unwrap();
        assert!(json["iat"].is_u64() && json["exp"].is_u64(), "{json}");
        assert_eq!(json.as_object().unwrap().len(), 4);
    }

    #[test]
    fn a_replacement_in_the_same_second_is_a_different_token() {
        let key = test_key();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = key.claims(now, 3300);
        let same_second = key.claims(now + Duration::from_millis(999), 3300);
        let second = distinct_from(same_second, &first);
        assert_eq!((second.iat, second.exp), (first.iat, first.exp - 1));
        let third = distinct_from(key.claims(now, 3300), &second);
        assert_eq!((third.iat, third.exp), (first.iat, first.exp - 2));
        assert_ne!(
            key.sign(&first).unwrap().expose_secret(),
            key.sign(&second).unwrap().expose_secret()
        );
        // One-second tokens cannot expire earlier: issued a second earlier instead.
        let short = key.claims(now, 1);
        let again = distinct_from(key.claims(now, 1), &short);
        assert_eq!((again.iat, again.exp), (short.iat - 1, short.exp));
        // A later second needs nothing.
        let later = key.claims(now + Duration::from_secs(1), 3300);
        assert_eq!(distinct_from(later.clone(), &first), later);
    }

    #[test]
    fn signed_token_has_the_exact_header_and_verifies() {
        let key = test_key();
        let claims = key.claims(SystemTime::now(), 60);
        let token = key.sign(&claims).unwrap();
        let token = token.expose_secret();
        let header = token.split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header).unwrap(),
            br#"{"typ":"JWT","alg":"RS256"}"#
        );
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&[&claims.aud]);
        v.sub = Some(claims.sub.clone());
        let dk = jsonwebtoken::DecodingKey::from_rsa_der(key.public_key_der());
        let back = jsonwebtoken::decode::<Claims>(token, &dk, &v).unwrap();
        assert_eq!(back.claims, claims);
        assert_eq!(unverified_exp(token), Some(claims.expires_at()));
    }

    #[test]
    fn lifetimes_are_capped_at_an_hour() {
        assert_eq!(check_lifetime(DEFAULT_LIFETIME), Ok(3300));
        assert_eq!(check_lifetime(MAX_LIFETIME), Ok(3600));
        assert!(
            check_lifetime(MAX_LIFETIME + Duration::from_secs(1))
                .unwrap_err()
                .contains("60")
        );
        assert!(check_lifetime(Duration::from_millis(500)).is_err());
        assert_eq!(check_lifetime(Duration::from_secs(2)), Ok(2));
    }

    #[test]
    fn refresh_margin_scales_with_the_lifetime() {
        assert_eq!(refresh_margin(DEFAULT_LIFETIME), Duration::from_secs(300));
        assert_eq!(refresh_margin(MAX_LIFETIME), Duration::from_secs(300));
        assert_eq!(
            refresh_margin(Duration::from_secs(10 * 60)),
            Duration::from_secs(120)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(2)),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn renewal_time_is_before_exp_and_never_immediate() {
        let key = test_key();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = key.claims(now, 3300);
        assert_eq!(
            renew_at(&c, now, DEFAULT_LIFETIME),
            now + Duration::from_secs(3000)
        );
        // A 1 s token minted late in a second: iat is floored, exp is close; still used a while.
        let late = now + Duration::from_millis(950);
        let c = key.claims(late, 1);
        assert_eq!(
            renew_at(&c, late, Duration::from_secs(1)),
            late + Duration::from_millis(500)
        );
    }

    #[test]
    fn exp_of_ready_tokens() {
        let h = b64(&serde_json::json!({"alg": "RS256"}));
        let tok = |p: serde_json::Value| format!("{h}.{}.c2ln", b64(&p));
        assert_eq!(
            unverified_exp(&tok(serde_json::json!({"exp": 1_700_000_000u64}))),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(
            unverified_exp(&tok(serde_json::json!({"exp": 1.5}))),
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        assert_eq!(unverified_exp(&tok(serde_json::json!({"sub": "x"}))), None);
        assert_eq!(
            unverified_exp(&tok(serde_json::json!({"exp": "soon"}))),
            None
        );
        assert_eq!(unverified_exp(&tok(serde_json::json!({"exp": -1}))), None);
        assert_eq!(unverified_exp("opaque-token-1234"), None);
        assert_eq!(unverified_exp("a.b.c.d"), None);
        assert_eq!(unverified_exp("a.!!!.c"), None);
        // Padded base64url from sloppy encoders still reads.
        let padded = format!("{h}.{}==.c2ln", b64(&serde_json::json!({"exp": 7})));
        assert_eq!(
            unverified_exp(&padded),
            Some(UNIX_EPOCH + Duration::from_secs(7))
        );
    }
}
