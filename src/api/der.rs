//! Just enough DER and PEM to hand `ring` the private keys an OAuth client may come with:
//! a JWK's numbers written as PKCS#1 (RSA) or PKCS#8 (EC P-256), and a SEC1
//! `EC PRIVATE KEY` wrapped in PKCS#8. `ring` itself checks every key built here (the
//! numbers must agree with each other), so nothing here validates cryptography.
//!
//! Everything built here is secret: callers keep it in `secrecy` boxes, and errors name a
//! kind of failure, never bytes.

use base64::Engine as _;

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_SEQUENCE: u8 = 0x30;
/// `[0]` and `[1]`, constructed: ECPrivateKey's parameters and publicKey.
const TAG_CONTEXT_0: u8 = 0xa0;
const TAG_CONTEXT_1: u8 = 0xa1;

/// OID 1.2.840.10045.2.1 (id-ecPublicKey), DER-encoded with its tag.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7 (prime256v1, P-256), DER-encoded with its tag.
pub(crate) const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// One DER element: tag, definite length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER from big-endian bytes (as a JWK's base64url numbers decode):
/// leading zeros dropped, a zero byte added when the top bit would read as a sign.
fn unsigned(be: &[u8]) -> Vec<u8> {
    let start = be.iter().take_while(|b| **b == 0).count();
    let digits = &be[start..];
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(TAG_INTEGER, &content)
}

fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &items.concat())
}

/// The numbers of an RSA private key, big-endian, as a JWK gives them.
pub(crate) struct RsaNumbers<'a> {
    pub(crate) n: &'a [u8],
    pub(crate) e: &'a [u8],
    pub(crate) d: &'a [u8],
    pub(crate) p: &'a [u8],
    pub(crate) q: &'a [u8],
    pub(crate) dp: &'a [u8],
    pub(crate) dq: &'a [u8],
    pub(crate) qi: &'a [u8],
}

/// PKCS#1 `RSAPrivateKey` (RFC 8017 A.1.2), two primes: what `ring` signs RS256 with.
pub(crate) fn rsa_private_key(k: &RsaNumbers<'_>) -> Vec<u8> {
    sequence(&[
        unsigned(&[0]),
        unsigned(k.n),
        unsigned(k.e),
        unsigned(k.d),
        unsigned(k.p),
        unsigned(k.q),
        unsigned(k.dp),
        unsigned(k.dq),
        unsigned(k.qi),
    ])
}

/// SEC1 `ECPrivateKey` (RFC 5915) on P-256: the 32-byte scalar `d` and the uncompressed
/// public point `04 || x || y`, which `ring` requires to be present.
pub(crate) fn p256_private_key(d: &[u8; 32], x: &[u8; 32], y: &[u8; 32]) -> Vec<u8> {
    let mut point = Vec::with_capacity(66);
    point.extend_from_slice(&[0x00, 0x04]); // no unused bits; uncompressed point
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    sequence(&[
        unsigned(&[1]),
        tlv(TAG_OCTET_STRING, d),
        tlv(TAG_CONTEXT_0, OID_P256),
        tlv(TAG_CONTEXT_1, &tlv(TAG_BIT_STRING, &point)),
    ])
}

/// A SEC1 `ECPrivateKey` on P-256 wrapped as PKCS#8 `PrivateKeyInfo` (RFC 5208), the form
/// `ring` reads EC keys in.
pub(crate) fn p256_pkcs8(sec1: &[u8]) -> Vec<u8> {
    sequence(&[
        unsigned(&[0]),
        sequence(&[OID_EC_PUBLIC_KEY.to_vec(), OID_P256.to_vec()]),
        tlv(TAG_OCTET_STRING, sec1),
    ])
}

/// The DER inside the first PEM block labelled `label`, or why not. Messages never quote
/// the content.
pub(crate) fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| format!("no {begin} line"))? + begin.len();
    let len = pem[start..]
        .find(&end)
        .ok_or_else(|| format!("no {end} line"))?;
    let body = &pem[start..start + len];
    // RFC 7468 allows headers (Proc-Type: …) only in encrypted legacy PEM, refused here.
    if body.contains(':') {
        return Err("it is an encrypted (password-protected) key".into());
    }
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "its body is not valid base64".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_unsigned() {
        assert_eq!(unsigned(&[0]), [2, 1, 0]);
        assert_eq!(unsigned(&[]), [2, 1, 0]);
        assert_eq!(unsigned(&[0, 0, 5]), [2, 1, 5]);
        assert_eq!(unsigned(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(unsigned(&[1, 0, 1]), [2, 3, 1, 0, 1]);
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        let long = tlv(TAG_OCTET_STRING, &[7; 300]);
        assert_eq!(&long[..4], &[4, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
        assert_eq!(&tlv(TAG_OCTET_STRING, &[7; 200])[..3], &[4, 0x81, 200]);
    }

    #[test]
    fn pem_bodies() {
        let pem = "junk\n-----BEGIN X-----\nAAEC\nAw==\n-----END X-----\n";
        assert_eq!(pem_body(pem, "X").unwrap(), [0, 1, 2, 3]);
        assert!(pem_body(pem, "Y").unwrap_err().contains("BEGIN Y"));
        assert!(pem_body("-----BEGIN X-----\nAA", "X").is_err());
        let enc = "-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n\nAAEC\n-----END X-----";
        assert!(pem_body(enc, "X").unwrap_err().contains("encrypted"));
        assert!(pem_body("-----BEGIN X-----\n!!\n-----END X-----", "X").is_err());
    }
}
