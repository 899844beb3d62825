//! Checking the key-file JWTs: reading an RSA public key and checking RS256 signatures,
//! through jsonwebtoken with the workspace's ring-backed provider (`jwt-ring`, the one the
//! product signs with). The OAuth token endpoint (`oauth`) verifies its client assertions on
//! the same provider.

use std::collections::HashSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// Why a token's signature check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Well-formed, but not signed by this key.
    Signature,
    /// Not a JWT this key could check at all.
    Malformed,
}

/// Checks RS256 signatures against one RSA public key.
pub(crate) struct Rs256Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Rs256Verifier {
    /// `public_key_der`: PKCS#1 `RSAPublicKey` DER.
    pub(crate) fn new(public_key_der: &[u8]) -> Rs256Verifier {
        jwt_ring::install();
        let mut validation = Validation::new(Algorithm::RS256);
        // The claims are the caller's to check, with RSA's rules and messages of its own.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        Rs256Verifier {
            key: DecodingKey::from_rsa_der(public_key_der),
            validation,
        }
    }

    /// The token's claims, if it is an RS256 JWT signed by this key. Claims are not checked.
    pub(crate) fn verify(&self, token: &str) -> Result<serde_json::Value, Rejected> {
        jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => Rejected::Signature,
                _ => Rejected::Malformed,
            })
    }
}

/// The PKCS#1 `RSAPublicKey` DER of an RSA public key in PEM (`PUBLIC KEY` or
/// `RSA PUBLIC KEY`).
pub(crate) fn rsa_public_key_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    jwt_ring::install();
    let key = DecodingKey::from_rsa_pem(pem).map_err(|e| e.to_string())?;
    key.try_get_as_bytes()
        .map(<[u8]>::to_vec)
        .map_err(|e| e.to_string())
}
