//! An OAuth API client's private key (docs/design.md#credentials): a JWK (RSA, or EC on P-256,
//! with `kid`; a JWK Set holding it works too) or a PEM (RSA PKCS#1 or PKCS#8, EC SEC1 or
//! PKCS#8; the key id then comes from `--oauth-key-id`). Loading checks everything signing
//! needs, one trial signature included, so a bad key is an exit 2 before anything is sent.
//! The key lives only in a `secrecy` box; errors and `Debug` never show any of it.

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Serialize;

use super::der::{self, OID_P256, RsaNumbers};
use super::jwt::describe_jwt_error;

/// Environment variable naming the OAuth client's key file (`--oauth-key` wins over it).
pub(crate) const OAUTH_KEY_ENV: &str = "DS100_OAUTH_KEY";

/// A parsed, checked OAuth client key: what signs the client assertions.
pub(crate) struct OAuthKey {
    /// Where it came from, for messages.
    origin: String,
    /// The `kid` header: which of the client's registered keys signed.
    kid: String,
    /// RS256 for an RSA key, ES256 for an EC P-256 key.
    alg: Algorithm,
    signing_key: SecretBox<EncodingKey>,
}

impl OAuthKey {
    /// Reads and checks the key at `path`; `key_id` is `--oauth-key-id`. Warns when other
    /// users can read the file.
    pub(crate) fn load(path: &Path, key_id: Option<&str>) -> anyhow::Result<OAuthKey> {
        let shown = path.display();
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "cannot open the OAuth key {shown}: check the path (--oauth-key or \
                 {OAUTH_KEY_ENV}); it is the private key (JWK or PEM) generated for the API \
                 client in the RSA Cloud Administration Console"
            )
        })?;
        if meta.is_dir() {
            bail!("the OAuth key {shown} is a directory: give the path of the key file");
        }
        super::secret_file::warn_if_readable_by_others(path);
        let bytes = std::fs::read(path).with_context(|| {
            format!("cannot read the OAuth key {shown}: check its permissions (you may need to run as its owner)")
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!(
                "the OAuth key {shown} is not UTF-8 text: give the private key as a JWK (JSON) or a PEM file"
            )
        })?;
        OAuthKey::parse(&SecretString::from(text), &shown.to_string(), key_id)
    }

    /// Parses a JWK, a JWK Set or a PEM. `origin` names it in messages.
    pub(crate) fn parse(
        text: &SecretString,
        origin: &str,
        key_id: Option<&str>,
    ) -> anyhow::Result<OAuthKey> {
        let key_id = match key_id.map(str::trim) {
            Some("") => {
                bail!("--oauth-key-id is empty: give the key id (kid) of the API client's key")
            }
            Some(k) if k.chars().any(char::is_control) => {
                bail!("--oauth-key-id contains control characters")
            }
            other => other,
        };
        let raw = text.expose_secret().trim_start_matches('\u{feff}').trim();
        let (alg, kid, der) = if raw.starts_with('{') {
            from_jwk_text(raw, key_id)
                .with_context(|| format!("the OAuth key {origin} is not usable"))?
        } else if raw.contains("-----BEGIN ") {
            let Some(kid) = key_id else {
                bail!(
                    "the OAuth key {origin} is a PEM, which carries no key id: pass --oauth-key-id \
                     KID (the key id shown for this API client's key in the console), or give \
                     the key as a JWK with its \"kid\""
                );
            };
            let (alg, der) =
                from_pem(raw).with_context(|| format!("the OAuth key {origin} is not usable"))?;
            (alg, kid.to_string(), der)
        } else {
            bail!(
                "the OAuth key {origin} is neither a JWK (JSON starting with {{) nor a PEM \
                 (-----BEGIN … PRIVATE KEY-----): give the private key generated for the API client"
            );
        };
        let key = OAuthKey {
            origin: origin.to_string(),
            kid,
            alg,
            signing_key: der,
        };
        // A trial signature: whatever the crypto library objects to shows now, not mid-run.
        key.sign(&serde_json::json!({"trial": true}))
            .with_context(|| format!("cannot sign with the OAuth key {origin}"))?;
        Ok(key)
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn alg(&self) -> Algorithm {
        self.alg
    }

    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// A JWT of `claims` with the header `{"typ":"JWT","alg":…,"kid":…}`.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<SecretString> {
        jwt_ring::install();
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, self.signing_key.expose_secret())
            .map(SecretString::from)
            .map_err(|e| anyhow::anyhow!("signing failed: {}", sign_error(self.alg, &e)))
    }
}

impl fmt::Debug for OAuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthKey")
            .field("origin", &self.origin)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// What `ring` objected to, in words for the key's kind.
fn sign_error(alg: Algorithm, e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match (alg, e.kind()) {
        (Algorithm::RS256, ErrorKind::InvalidRsaKey(_)) => {
            "the RSA key was rejected: its numbers do not form a valid key pair, or it is not 2048 to 4096 bits".into()
        }
        (Algorithm::ES256, ErrorKind::InvalidEcdsaKey) => {
            "the EC key was rejected: its numbers do not form a valid P-256 key pair".into()
        }
        _ => describe_jwt_error(e),
    }
}

type Parsed = (Algorithm, String, SecretBox<EncodingKey>);

/// A JWK's members, read as strings. No `Debug`: it holds the private numbers.
#[derive(serde::Deserialize)]
struct JwkMembers {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn from_jwk_text(raw: &str, key_id: Option<&str>) -> anyhow::Result<Parsed> {
    // serde_json's syntax errors say where, never what: safe to show.
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| anyhow::anyhow!("it starts like a JWK but is not JSON ({e})"))?;
    if value.get("accessKey").is_some() || value.get("accessID").is_some() {
        bail!(
            "it is an Administration API key file (accessID, accessKey), not an OAuth client's \
             key: give it with --key-file instead of the --oauth-… flags"
        );
    }
    let value = match value.get("keys") {
        Some(serde_json::Value::Array(keys)) => pick_from_set(keys, key_id)?,
        Some(_) => bail!("its \"keys\" is not an array of JWKs"),
        None => value,
    };
    // serde_json's type errors quote the value: not shown.
    let jwk: JwkMembers = serde_json::from_value(value).map_err(|_| {
        anyhow::anyhow!("it is not a JWK: its members (kty, kid, n, e, d, x, y, …) must be strings")
    })?;
    from_jwk(&jwk, key_id)
}

/// The key of a JWK Set this run uses: the one with `key_id`, or the only one.
fn pick_from_set(
    keys: &[serde_json::Value],
    key_id: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let kid_of = |k: &serde_json::Value| k.get("kid").and_then(|v| v.as_str()).map(str::to_string);
    match (keys, key_id) {
        ([], _) => bail!("it is a JWK Set without keys"),
        ([only], None) => Ok(only.clone()),
        (_, Some(want)) => keys
            .iter()
            .find(|k| kid_of(k).as_deref() == Some(want))
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "its JWK Set holds no key with kid '{want}' (--oauth-key-id); it holds: {}",
                    kids(keys, kid_of)
                )
            }),
        (_, None) => bail!(
            "it is a JWK Set of {} keys: choose one with --oauth-key-id KID (it holds: {})",
            keys.len(),
            kids(keys, kid_of)
        ),
    }
}

fn kids(
    keys: &[serde_json::Value],
    kid_of: impl Fn(&serde_json::Value) -> Option<String>,
) -> String {
    keys.iter()
        .map(|k| kid_of(k).unwrap_or_else(|| "(no kid)".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_jwk(jwk: &JwkMembers, key_id: Option<&str>) -> anyhow::Result<Parsed> {
    if jwk.kty.is_none() {
        bail!("it has no \"kty\" (key type): is it a JWK?");
    }
    if jwk.d.is_none() {
        bail!(
            "it is a public key (no \"d\"): give the private JWK generated for the API client; \
             the console keeps only the public half"
        );
    }
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        bail!(
            "its \"use\" is \"{}\": the client assertion needs a signing key (\"use\": \"sig\")",
            jwk.use_.as_deref().unwrap_or_default()
        );
    }
    let kid = match (jwk.kid.as_deref().map(str::trim), key_id) {
        (Some(k), Some(flag)) if !k.is_empty() && k != flag => bail!(
            "its kid is '{k}' but --oauth-key-id says '{flag}': the kid must name the key the \
             API client registered; drop --oauth-key-id or correct it"
        ),
        (Some(k), _) if !k.is_empty() => k.to_string(),
        (_, Some(flag)) => flag.to_string(),
        _ => bail!(
            "it has no \"kid\": pass --oauth-key-id KID (the key id shown for this API client's \
             key in the console)"
        ),
    };
    let (alg, der) = match jwk.kty.as_deref() {
        Some("RSA") => (Algorithm::RS256, rsa_from_jwk(jwk)?),
        Some("EC") => (Algorithm::ES256, ec_from_jwk(jwk)?),
        Some(other) => bail!(
            "its key type (kty) is '{other}': the client assertion is signed RS256 (kty RSA) or \
             ES256 (kty EC, crv P-256)"
        ),
        None => bail!("it has no \"kty\" (key type): is it a JWK?"),
    };
    let want = if alg == Algorithm::RS256 {
        "RS256"
    } else {
        "ES256"
    };
    if let Some(a) = jwk.alg.as_deref()
        && a != want
    {
        bail!(
            "its \"alg\" is '{a}', but a {} key signs {want}",
            kty_name(alg)
        );
    }
    Ok((alg, kid, der))
}

fn kty_name(alg: Algorithm) -> &'static str {
    if alg == Algorithm::RS256 {
        "RSA"
    } else {
        "EC P-256"
    }
}

/// A base64url JWK member (padding tolerated), or why not. Never quotes the value.
fn member(value: Option<&String>, name: &str) -> anyhow::Result<SecretBox<Vec<u8>>> {
    let Some(v) = value else {
        bail!("it has no \"{name}\"");
    };
    URL_SAFE_NO_PAD
        .decode(v.trim().trim_end_matches('='))
        .map(|b| SecretBox::new(Box::new(b)))
        .map_err(|_| anyhow::anyhow!("its \"{name}\" is not base64url"))
}

fn rsa_from_jwk(jwk: &JwkMembers) -> anyhow::Result<SecretBox<EncodingKey>> {
    if jwk.p.is_none() || jwk.q.is_none() {
        bail!(
            "it holds \"d\" but not the primes and CRT values (p, q, dp, dq, qi) the signer \
             needs: export the complete private JWK"
        );
    }
    let [n, e, d, p, q, dp, dq, qi] = [
        member(jwk.n.as_ref(), "n")?,
        member(jwk.e.as_ref(), "e")?,
        member(jwk.d.as_ref(), "d")?,
        member(jwk.p.as_ref(), "p")?,
        member(jwk.q.as_ref(), "q")?,
        member(jwk.dp.as_ref(), "dp")?,
        member(jwk.dq.as_ref(), "dq")?,
        member(jwk.qi.as_ref(), "qi")?,
    ];
    let der = der::rsa_private_key(&RsaNumbers {
        n: n.expose_secret(),
        e: e.expose_secret(),
        d: d.expose_secret(),
        p: p.expose_secret(),
        q: q.expose_secret(),
        dp: dp.expose_secret(),
        dq: dq.expose_secret(),
        qi: qi.expose_secret(),
    });
    Ok(SecretBox::new(Box::new(EncodingKey::from_rsa_der(&der))))
}

/// A P-256 coordinate or scalar: exactly 32 bytes (shorter ones are left-padded, as some
/// encoders drop leading zeros).
fn coordinate(value: Option<&String>, name: &str) -> anyhow::Result<SecretBox<[u8; 32]>> {
    let bytes = member(value, name)?;
    let b = bytes.expose_secret();
    if b.len() > 32 || b.is_empty() {
        bail!(
            "its \"{name}\" is {} bytes, not the 32 of a P-256 key",
            b.len()
        );
    }
    let mut out = [0u8; 32];
    out[32 - b.len()..].copy_from_slice(b);
    Ok(SecretBox::new(Box::new(out)))
}

fn ec_from_jwk(jwk: &JwkMembers) -> anyhow::Result<SecretBox<EncodingKey>> {
    match jwk.crv.as_deref() {
        Some("P-256") => {}
        Some(other) => {
            bail!("its curve (crv) is '{other}': ES256 client assertions need a P-256 key")
        }
        None => bail!("it has no \"crv\": an EC key for ES256 has \"crv\": \"P-256\""),
    }
    let d = coordinate(jwk.d.as_ref(), "d")?;
    let x = coordinate(jwk.x.as_ref(), "x")?;
    let y = coordinate(jwk.y.as_ref(), "y")?;
    let sec1 = der::p256_private_key(d.expose_secret(), x.expose_secret(), y.expose_secret());
    let pkcs8 = der::p256_pkcs8(&sec1);
    Ok(SecretBox::new(Box::new(EncodingKey::from_ec_der(&pkcs8))))
}

/// The PEM label of the first block, e.g. `EC PRIVATE KEY`.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = pem[start..].find("-----")?;
    Some(pem[start..start + len].trim())
}

fn from_pem(pem: &str) -> anyhow::Result<(Algorithm, SecretBox<EncodingKey>)> {
    let not_p256 = || {
        anyhow::anyhow!(
            "it is an EC key on another curve than P-256: ES256 client assertions need P-256 \
             (openssl ecparam -name prime256v1 -genkey)"
        )
    };
    match pem_label(pem) {
        Some("RSA PRIVATE KEY") => {
            let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                anyhow::anyhow!(
                    "it is not a valid RSA private key ({})",
                    describe_jwt_error(&e)
                )
            })?;
            Ok((Algorithm::RS256, SecretBox::new(Box::new(key))))
        }
        Some("EC PRIVATE KEY") => {
            let sec1 = SecretBox::new(Box::new(
                der::pem_body(pem, "EC PRIVATE KEY").map_err(anyhow::Error::msg)?,
            ));
            if !contains(sec1.expose_secret(), OID_P256) {
                return Err(not_p256());
            }
            let pkcs8 = der::p256_pkcs8(sec1.expose_secret());
            Ok((
                Algorithm::ES256,
                SecretBox::new(Box::new(EncodingKey::from_ec_der(&pkcs8))),
            ))
        }
        Some("PRIVATE KEY") => {
            if let Ok(key) = EncodingKey::from_rsa_pem(pem.as_bytes()) {
                return Ok((Algorithm::RS256, SecretBox::new(Box::new(key))));
            }
            let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| {
                anyhow::anyhow!(
                    "it is a PKCS#8 private key of neither RSA nor EC (an Ed25519 key?): the \
                     client assertion is signed RS256 or ES256"
                )
            })?;
            if !contains(key.as_bytes(), OID_P256) {
                return Err(not_p256());
            }
            Ok((Algorithm::ES256, SecretBox::new(Box::new(key))))
        }
        Some("ENCRYPTED PRIVATE KEY") => bail!(
            "it is an encrypted (password-protected) private key; decrypt it first, e.g. \
             `openssl pkey -in enc.pem -out key.pem`"
        ),
        Some("PUBLIC KEY" | "RSA PUBLIC KEY") => bail!(
            "it is a public key: give the API client's private key (the console keeps only the \
             public half)"
        ),
        Some("CERTIFICATE") => bail!("it is a certificate, not a private key"),
        Some(other) => bail!("it is a PEM '{other}' block, not a private key"),
        None => bail!("it has no PEM -----BEGIN …----- line"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
pub(crate) mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    pub(crate) const RSA_JWK: &str =
        include_str!("../../tests/fixtures/test-only-oauth-rsa.jwk.json");
    pub(crate) const EC_JWK: &str =
        include_str!("../../tests/fixtures/test-only-oauth-ec.jwk.json");
    const RSA_PUBLIC_JWK: &str =
        include_str!("../../tests/fixtures/test-only-oauth-rsa-public.jwk.json");
    const RSA_PKCS1: &str = include_str!("../../tests/fixtures/test-only-oauth-rsa-pkcs1.pem");
    const RSA_PKCS8: &str = include_str!("../../tests/fixtures/test-only-oauth-rsa-pkcs8.pem");
    const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/test-only-oauth-rsa-public.pem");
    const EC_SEC1: &str = include_str!("../../tests/fixtures/test-only-oauth-ec-sec1.pem");
    const EC_PKCS8: &str = include_str!("../../tests/fixtures/test-only-oauth-ec-pkcs8.pem");
    const EC_PUBLIC: &str = include_str!("../../tests/fixtures/test-only-oauth-ec-public.pem");
    const P384: &str = include_str!("../../tests/fixtures/test-only-oauth-p384-sec1.pem");
    const RSA_KID: &str = "test-only-rsa-kid-7c1e";
    const EC_KID: &str = "test-only-ec-kid-52ad";

    fn parse(text: &str, kid: Option<&str>) -> anyhow::Result<OAuthKey> {
        OAuthKey::parse(&SecretString::from(text.to_string()), "k", kid)
    }

    fn err(text: &str, kid: Option<&str>) -> String {
        format!("{:#}", parse(text, kid).unwrap_err())
    }

    /// Signs with `key` and verifies with the public PEM: the key is the one on file.
    fn verifies(key: &OAuthKey, public_pem: &str) {
        let token = key.sign(&serde_json::json!({"sub": "x"})).unwrap();
        let token = token.expose_secret();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, key.alg());
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let dk = match key.alg() {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap(),
            _ => DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap(),
        };
        let mut v = Validation::new(key.alg());
        v.required_spec_claims.clear();
        v.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(token, &dk, &v).unwrap();
    }

    #[test]
    fn every_form_of_the_rsa_key_signs_rs256_with_the_same_key() {
        for (text, kid) in [
            (RSA_JWK, None),
            (RSA_PKCS1, Some(RSA_KID)),
            (RSA_PKCS8, Some(RSA_KID)),
        ] {
            let key = parse(text, kid).unwrap();
            assert_eq!((key.alg(), key.kid()), (Algorithm::RS256, RSA_KID));
            verifies(&key, RSA_PUBLIC);
        }
    }

    #[test]
    fn every_form_of_the_ec_key_signs_es256_with_the_same_key() {
        for (text, kid) in [
            (EC_JWK, None),
            (EC_JWK, Some(EC_KID)),
            (EC_SEC1, Some(EC_KID)),
            (EC_PKCS8, Some(EC_KID)),
        ] {
            let key = parse(text, kid).unwrap();
            assert_eq!((key.alg(), key.kid()), (Algorithm::ES256, EC_KID));
            verifies(&key, EC_PUBLIC);
        }
    }

    #[test]
    fn a_jwk_set_gives_the_key_named_or_the_only_one() {
        let one = format!("{{\"keys\": [{EC_JWK}]}}");
        assert_eq!(parse(&one, None).unwrap().kid(), EC_KID);
        let two = format!("{{\"keys\": [{EC_JWK}, {RSA_JWK}]}}");
        assert_eq!(parse(&two, Some(RSA_KID)).unwrap().alg(), Algorithm::RS256);
        let e = err(&two, None);
        assert!(e.contains("--oauth-key-id") && e.contains(EC_KID), "{e}");
        let e = err(&two, Some("nope"));
        assert!(e.contains("no key with kid 'nope'"), "{e}");
    }

    /// One line of the private key that must never show up in a message.
    fn secret_pieces() -> Vec<String> {
        let ec: serde_json::Value = serde_json::from_str(EC_JWK).unwrap();
        let rsa: serde_json::Value = serde_json::from_str(RSA_JWK).unwrap();
        vec![
            ec["d"].as_str().unwrap()[..12].to_string(),
            rsa["d"].as_str().unwrap()[..12].to_string(),
            rsa["p"].as_str().unwrap()[..12].to_string(),
            EC_SEC1.lines().nth(1).unwrap()[..12].to_string(),
        ]
    }

    #[test]
    fn bad_keys_explain_themselves_without_the_key() {
        let jwk = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(EC_JWK).unwrap();
            f(&mut v);
            v.to_string()
        };
        let rsa = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(RSA_JWK).unwrap();
            f(&mut v);
            v.to_string()
        };
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            (RSA_PKCS1.into(), None, "--oauth-key-id"),
            (
                jwk(&|v| _ = v.as_object_mut().unwrap().remove("kid")),
                None,
                "no \"kid\"",
            ),
            (EC_JWK.into(), Some("other"), "drop --oauth-key-id"),
            (RSA_PUBLIC_JWK.into(), None, "public key"),
            (RSA_PUBLIC.into(), Some("k"), "public key"),
            (jwk(&|v| v["crv"] = "P-384".into()), None, "P-256"),
            (P384.into(), Some("k"), "P-256"),
            (jwk(&|v| v["kty"] = "OKP".into()), None, "'OKP'"),
            (jwk(&|v| v["use"] = "enc".into()), None, "signing key"),
            (jwk(&|v| v["alg"] = "RS256".into()), None, "ES256"),
            (
                jwk(&|v| v["d"] = "!!".into()),
                None,
                "\"d\" is not base64url",
            ),
            (
                jwk(&|v| v["x"] = "AAAA".into()),
                None,
                "valid P-256 key pair",
            ),
            (
                rsa(&|v| _ = v.as_object_mut().unwrap().remove("qi")),
                None,
                "no \"qi\"",
            ),
            (
                rsa(&|v| _ = v.as_object_mut().unwrap().remove("p")),
                None,
                "complete private JWK",
            ),
            (
                rsa(&|v| v["d"] = v["n"].clone()),
                None,
                "RSA key was rejected",
            ),
            (jwk(&|v| v["d"] = 5.into()), None, "not a JWK"),
            ("{not json".into(), None, "not JSON"),
            ("hello".into(), None, "neither a JWK"),
            (
                include_str!("../../tests/fixtures/test-only-key-pkcs1.json").into(),
                None,
                "--key-file",
            ),
            (r#"{"kid":"k","x":"AA"}"#.into(), None, "no \"kty\""),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA\n-----END ENCRYPTED PRIVATE KEY-----"
                    .into(),
                Some("k"),
                "encrypted",
            ),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----".into(),
                Some("k"),
                "P-256",
            ),
        ];
        let pieces = secret_pieces();
        for (text, kid, want) in cases {
            let e = err(&text, kid);
            assert!(e.contains(want), "want {want:?} in: {e}");
            for p in &pieces {
                assert!(!e.contains(p.as_str()), "key material in: {e}");
            }
        }
        assert!(err(EC_JWK, Some("")).contains("empty"));
    }

    #[test]
    fn debug_shows_no_key_material() {
        for (text, kid) in [(RSA_JWK, None), (EC_SEC1, Some(EC_KID))] {
            let dbg = format!("{:?}", parse(text, kid).unwrap());
            assert!(dbg.contains("kid"), "{dbg}");
            for p in secret_pieces() {
                assert!(!dbg.contains(&p), "{dbg}");
            }
        }
    }

    #[test]
    fn loading_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!(
            "{:#}",
            OAuthKey::load(&dir.path().join("nope.json"), None).unwrap_err()
        );
        assert!(e.contains("nope.json") && e.contains("--oauth-key"), "{e}");
        let e = format!("{:#}", OAuthKey::load(dir.path(), None).unwrap_err());
        assert!(e.contains("directory"), "{e}");
        let p = dir.path().join("k.jwk");
        std::fs::write(&p, format!("\u{feff}{EC_JWK}")).unwrap();
        assert_eq!(OAuthKey::load(&p, None).unwrap().kid(), EC_KID);
    }
}
