//! Bearer-token checks for the simulator's API endpoints.
//!
//! `SimAuth` is what the operator configures; `Authenticator` is what `start` builds from it
//! once (a JWT variant would parse its public key here, not per request). Adding a scheme is
//! one `SimAuth` variant, one `Authenticator` variant and one arm in `check`.

use secrecy::{ExposeSecret, SecretString};

use super::SimAuth;

/// Why a request was refused; the 403 body says it, without echoing the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    Missing,
    NotBearer,
    Wrong,
}

impl Denied {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Denied::Missing => "missing Authorization header",
            Denied::NotBearer => "Authorization must be 'Bearer <token>'",
            Denied::Wrong => "invalid or expired token",
        }
    }
}

pub(crate) enum Authenticator {
    AnyBearer,
    Token(SecretString),
}

impl Authenticator {
    pub(crate) fn new(auth: &SimAuth) -> anyhow::Result<Authenticator> {
        Ok(match auth {
            SimAuth::AnyBearer => Authenticator::AnyBearer,
            SimAuth::Token(token) => {
                if token.expose_secret().trim().is_empty() {
                    anyhow::bail!("the simulator's bearer token is empty: give a non-empty token");
                }
                Authenticator::Token(token.clone())
            }
        })
    }

    /// Checks an `Authorization` header value (`None` when absent).
    pub(crate) fn check(&self, header: Option<&[u8]>) -> Result<(), Denied> {
        let header = header.ok_or(Denied::Missing)?;
        let bearer = bearer_token(header).ok_or(Denied::NotBearer)?;
        match self {
            Authenticator::AnyBearer => Ok(()),
            Authenticator::Token(expected) => {
                if constant_time_eq(bearer, expected.expose_secret().as_bytes()) {
                    Ok(())
                } else {
                    Err(Denied::Wrong)
                }
            }
        }
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
    use super::*;

    #[test]
    fn any_bearer_needs_a_non_empty_bearer() {
        let auth = Authenticator::new(&SimAuth::AnyBearer).unwrap();
        assert_eq!(auth.check(Some(b"Bearer abc")), Ok(()));
        assert_eq!(auth.check(Some(b"bearer   abc ")), Ok(()));
        assert_eq!(auth.check(None), Err(Denied::Missing));
        assert_eq!(auth.check(Some(b"Bearer ")), Err(Denied::NotBearer));
        assert_eq!(auth.check(Some(b"Bearer")), Err(Denied::NotBearer));
        assert_eq!(auth.check(Some(b"Basic abc")), Err(Denied::NotBearer));
        assert_eq!(auth.check(Some(b"Bearerabc")), Err(Denied::NotBearer));
    }

    #[test]
    fn fixed_token_must_match_exactly() {
        let auth = Authenticator::new(&SimAuth::Token("s3cret".into())).unwrap();
        assert_eq!(auth.check(Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(auth.check(Some(b"Bearer s3cre")), Err(Denied::Wrong));
        assert_eq!(auth.check(Some(b"Bearer S3CRET")), Err(Denied::Wrong));
        assert!(Authenticator::new(&SimAuth::Token(" ".into())).is_err());
    }
}
