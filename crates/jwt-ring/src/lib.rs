//! A `jsonwebtoken` crypto provider backed by `ring`, for the algorithms the tool and its
//! simulator use: RS256 (key-file tokens), ES256 on P-256 (OAuth client assertions), and
//! RS384, RS512 and HS256 (so tests can make tokens the simulator must refuse). Every other
//! algorithm, and every JWK utility but digests and public-key components, is an error, never
//! a panic.
//!
//! `ring` instead of jsonwebtoken's own backends: `aws_lc_rs` builds a C library (the largest
//! unit of a cold build), and `rust_crypto` signs RSA with the `rsa` crate, which carries the
//! unfixed Marvin timing advisory RUSTSEC-2023-0071. rustls uses `ring` too, so it is compiled
//! once for both. `ring` signs with RSA keys of 2048 to 4096 bits.
//!
//! Key bytes never reach `Debug` output or an error: the signers below implement neither, and
//! errors name a kind of failure only.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair as _};
use ring::{digest, hmac};

/// The provider. Install it once per process with [`install`].
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private_key,
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::InvalidAlgorithm.into()),
        ec_pub_components_from_private_key: ec_components_from_private_key,
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
        compute_digest,
    },
};

/// Makes [`PROVIDER`] the process's provider before the first `encode` or `decode`. Safe to
/// call any number of times, from anywhere.
pub fn install() {
    // Err only when a provider is installed already: ours, or one the caller chose.
    let _ = PROVIDER.install_default();
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            Ok(Box::new(RsaSigner::new(*algorithm, key)?))
        }
        Algorithm::ES256 => Ok(Box::new(Es256Signer::new(key)?)),
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.family(), key.as_bytes())?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let want = match algorithm {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        Algorithm::HS256 => {
            let secret = key.try_get_as_bytes()?;
            return Ok(Box::new(Hs256::new(key.family(), secret)?));
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    if key.family() != want {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(PublicKeyVerifier {
        algorithm: *algorithm,
        key: key.clone(),
    }))
}

/// RS256, RS384, RS512: RSASSA-PKCS1-v1_5, from a PKCS#1 `RSAPrivateKey` (what
/// `EncodingKey::from_rsa_pem` holds, whether the PEM was PKCS#1 or PKCS#8).
struct RsaSigner {
    algorithm: Algorithm,
    pair: sig::RsaKeyPair,
}

impl RsaSigner {
    fn new(algorithm: Algorithm, key: &EncodingKey) -> Result<Self> {
        if key.family() != AlgorithmFamily::Rsa {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        let pair = sig::RsaKeyPair::from_der(key.as_bytes())
            .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
        Ok(RsaSigner { algorithm, pair })
    }
}

impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let encoding: &'static dyn sig::RsaEncoding = match self.algorithm {
            Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
            Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
            _ => &sig::RSA_PKCS1_SHA256,
        };
        let mut out = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(encoding, &SystemRandom::new(), msg, &mut out)
            .map_err(|_| signature::Error::new())?;
        Ok(out)
    }
}

impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// ES256: ECDSA on P-256 with SHA-256, fixed-length signatures, from a PKCS#8 key (what
/// `EncodingKey::from_ec_pem` holds).
struct Es256Signer(sig::EcdsaKeyPair);

impl Es256Signer {
    fn new(key: &EncodingKey) -> Result<Self> {
        if key.family() != AlgorithmFamily::Ec {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            key.as_bytes(),
            &SystemRandom::new(),
        )
        .map(Es256Signer)
        .map_err(|_| ErrorKind::InvalidEcdsaKey.into())
    }
}

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let signed = self
            .0
            .sign(&SystemRandom::new(), msg)
            .map_err(|_| signature::Error::new())?;
        Ok(signed.as_ref().to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// HS256 both ways.
struct Hs256(hmac::Key);

impl Hs256 {
    fn new(family: AlgorithmFamily, secret: &[u8]) -> Result<Self> {
        if family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        Ok(Hs256(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.0, msg).as_ref().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        // Constant-time comparison inside ring.
        hmac::verify(&self.0, msg, tag).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

/// RS256/384/512 or ES256 verification with a public key: PKCS#1 `RSAPublicKey` DER, RSA
/// modulus and exponent, or an uncompressed P-256 point.
struct PublicKeyVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for PublicKeyVerifier {
    fn verify(&self, msg: &[u8], signed: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let rsa: &'static sig::RsaParameters = match self.algorithm {
            Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            _ => &sig::RSA_PKCS1_2048_8192_SHA256,
        };
        let checked = match (self.algorithm, self.key.kind()) {
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, signed)
            }
            // An EC key is never held as modulus and exponent.
            (Algorithm::ES256, _) => return Err(signature::Error::new()),
            (_, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                sig::RsaPublicKeyComponents { n, e }.verify(rsa, msg, signed)
            }
            (_, DecodingKeyKind::SecretOrDer(der)) => {
                sig::UnparsedPublicKey::new(rsa, der).verify(msg, signed)
            }
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for PublicKeyVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn rsa_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = sig::RsaKeyPair::from_der(der)
        .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
    let public: sig::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    Ok((public.n, public.e))
}

fn ec_components_from_private_key(
    pkcs8: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    if algorithm != Algorithm::ES256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let pair = sig::EcdsaKeyPair::from_pkcs8(
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    match pair.public_key().as_ref() {
        [4, xy @ ..] if xy.len() == 64 => {
            let (x, y) = xy.split_at(32);
            Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jsonwebtoken::{Header, Validation, decode, encode};

    use super::*;

    const RSA_PEM: &[u8] = include_bytes!("../tests/test-only-rsa2048.pem");
    const RSA_PUB_PEM: &[u8] = include_bytes!("../tests/test-only-rsa2048.pub.pem");
    const EC_PEM: &[u8] = include_bytes!("../tests/test-only-p256.pem");
    const EC_PUB_PEM: &[u8] = include_bytes!("../tests/test-only-p256.pub.pem");

    type Claims = BTreeMap<String, String>;

    fn claims() -> Claims {
        [("sub".to_string(), "someone".to_string())].into()
    }

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v
    }

    fn round_trip(alg: Algorithm, sk: &EncodingKey, pk: &DecodingKey) {
        install();
        let token = encode(&Header::new(alg), &claims(), sk).unwrap();
        let back = decode::<Claims>(&token, pk, &validation(alg)).unwrap();
        assert_eq!(back.claims, claims());
        // One flipped signature bit is an invalid signature, not a panic or a pass.
        let mut tampered = token.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let err = decode::<Claims>(&tampered, pk, &validation(alg)).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidSignature, "{alg:?}");
    }

    #[test]
    fn rsa_signs_and_verifies_with_pem_der_and_components() {
        let sk = EncodingKey::from_rsa_pem(RSA_PEM).unwrap();
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
            round_trip(alg, &sk, &DecodingKey::from_rsa_pem(RSA_PUB_PEM).unwrap());
        }
        let (n, e) = rsa_components_from_private_key(sk.as_bytes()).unwrap();
        round_trip(
            Algorithm::RS256,
            &sk,
            &DecodingKey::from_rsa_raw_components(&n, &e),
        );
        // RS256 signatures are deterministic: the same claims give the same token.
        let a = encode(&Header::new(Algorithm::RS256), &claims(), &sk).unwrap();
        let b = encode(&Header::new(Algorithm::RS256), &claims(), &sk).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn es256_signs_and_verifies() {
        let sk = EncodingKey::from_ec_pem(EC_PEM).unwrap();
        round_trip(
            Algorithm::ES256,
            &sk,
            &DecodingKey::from_ec_pem(EC_PUB_PEM).unwrap(),
        );
        let (curve, x, y) =
            ec_components_from_private_key(sk.as_bytes(), Algorithm::ES256).unwrap();
        assert_eq!((curve, x.len(), y.len()), (EllipticCurve::P256, 32, 32));
    }

    #[test]
    fn hs256_signs_and_verifies() {
        let secret = b"test-only secret";
        round_trip(
            Algorithm::HS256,
            &EncodingKey::from_secret(secret).unwrap(),
            &DecodingKey::from_secret(secret).unwrap(),
        );
    }

    #[test]
    fn other_algorithms_and_wrong_keys_are_errors() {
        install();
        let rsa = EncodingKey::from_rsa_pem(RSA_PEM).unwrap();
        let ec = EncodingKey::from_ec_pem(EC_PEM).unwrap();
        for alg in [Algorithm::PS256, Algorithm::ES384, Algorithm::EdDSA] {
            assert!(
                encode(&Header::new(alg), &claims(), &rsa).is_err(),
                "{alg:?}"
            );
        }
        assert!(encode(&Header::new(Algorithm::RS256), &claims(), &ec).is_err());
        assert!(encode(&Header::new(Algorithm::ES256), &claims(), &rsa).is_err());
        // A token signed RS256 does not verify as ES256 with an EC key, nor against another
        // RSA key's public half presented as an EC key.
        let token = encode(&Header::new(Algorithm::RS256), &claims(), &rsa).unwrap();
        let ec_pub = DecodingKey::from_ec_pem(EC_PUB_PEM).unwrap();
        assert!(decode::<Claims>(&token, &ec_pub, &validation(Algorithm::RS256)).is_err());
    }
}
