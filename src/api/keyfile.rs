//! The tenant's Administration API key file (docs/design.md#credentials): JSON with `accessID`,
//! `accessKey` (a PEM RSA private key, PKCS#1 or PKCS#8) and `adminRestApiUrl`. Loading checks
//! everything a run needs — including one trial signature — so a bad key is an exit 2 before
//! anything is sent. The private key lives only in a `secrecy` box; errors and `Debug` never
//! show it.

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, bail};
use jsonwebtoken::EncodingKey;
use ring::signature::{KeyPair, RsaKeyPair};
use secrecy::{ExposeSecret, SecretBox, SecretString};

use super::jwt::{self, Claims, describe_jwt_error};

/// Environment variable naming the key file (the `--key-file` flag wins over it).
pub(crate) const KEY_FILE_ENV: &str = "DS100_KEY_FILE";

/// A parsed, checked key file.
pub struct KeyFile {
    /// `accessID`: the JWT's `sub`. An identifier, not a secret.
    access_id: String,
    /// `adminRestApiUrl` exactly as written in the file: the JWT's `aud` and the default
    /// base URL.
    admin_rest_api_url: String,
    /// Where it came from, for messages ("/secure/acme-key.json").
    origin: String,
    signing_key: SecretBox<EncodingKey>,
    /// PKCS#1 `RSAPublicKey` DER of the key pair (public; the simulator verifies with it).
    public_key_der: Vec<u8>,
}

impl KeyFile {
    /// Reads and checks the key file at `path`. Warns when other users can read it.
    pub(crate) fn load(path: &Path) -> anyhow::Result<KeyFile> {
        let shown = path.display();
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "cannot open the key file {shown}: check the path (--key-file or {KEY_FILE_ENV}); \
                 download the key file from the RSA Cloud Administration Console \
                 (Platform > API Key Management) if you have none"
            )
        })?;
        if meta.is_dir() {
            bail!("the key file {shown} is a directory: give the path of the key's JSON file");
        }
        super::secret_file::warn_if_readable_by_others(path);
        let bytes = std::fs::read(path).with_context(|| {
            format!("cannot read the key file {shown}: check its permissions (you may need to run as its owner)")
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!(
                "the key file {shown} is not UTF-8 text: it should be the JSON file the console downloads"
            )
        })?;
        KeyFile::parse(&SecretString::from(text), &shown.to_string())
    }

    /// Parses key-file JSON. `origin` names it in messages.
    pub(crate) fn parse(text: &SecretString, origin: &str) -> anyhow::Result<KeyFile> {
        // serde_json syntax errors say where, never what: safe to show.
        let value: serde_json::Value = serde_json::from_str(text.expose_secret()).map_err(|e| {
            anyhow::anyhow!(
                "the key file {origin} is not JSON ({e}): give the JSON key file exactly as \
                     downloaded from the RSA Cloud Administration Console"
            )
        })?;
        let serde_json::Value::Object(mut map) = value else {
            bail!(
                "the key file {origin} is JSON but not an object with accessID, accessKey and adminRestApiUrl"
            );
        };
        let mut field = |name: &str| -> anyhow::Result<String> {
            match map.remove(name) {
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s),
                Some(serde_json::Value::String(_)) => {
                    bail!(
                        "the key file {origin} has an empty \"{name}\"; download the key file again"
                    )
                }
                Some(_) => bail!("\"{name}\" in the key file {origin} is not a string"),
                None => bail!(
                    "the key file {origin} has no \"{name}\": a key file holds accessID, accessKey and \
                     adminRestApiUrl; download it again from the RSA Cloud Administration Console"
                ),
            }
        };
        let access_id = field("accessID")?;
        let admin_rest_api_url = field("adminRestApiUrl")?;
        let access_key = SecretString::from(field("accessKey")?);
        let (signing_key, public_key_der) = parse_private_key(&access_key)
            .with_context(|| format!("the accessKey in the key file {origin} is not usable"))?;
        let key = KeyFile {
            access_id: access_id.trim().to_string(),
            admin_rest_api_url,
            origin: origin.to_string(),
            signing_key,
            public_key_der,
        };
        // A trial signature: whatever the crypto library objects to shows now, not mid-run.
        key.sign(&key.claims(std::time::UNIX_EPOCH, 60))
            .with_context(|| format!("cannot sign a token with the key in {origin}"))?;
        Ok(key)
    }

    pub(crate) fn access_id(&self) -> &str {
        &self.access_id
    }

    /// `adminRestApiUrl` exactly as written in the file.
    pub(crate) fn admin_rest_api_url(&self) -> &str {
        &self.admin_rest_api_url
    }

    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn signing_key(&self) -> &EncodingKey {
        self.signing_key.expose_secret()
    }

    /// The claims of a token of this key issued at `now`, living `lifetime_secs` seconds.
    pub(crate) fn claims(&self, now: SystemTime, lifetime_secs: u64) -> Claims {
        Claims::new(
            &self.access_id,
            &self.admin_rest_api_url,
            now,
            lifetime_secs,
        )
    }

    /// Signs `claims` with this key.
    pub(crate) fn sign(&self, claims: &Claims) -> anyhow::Result<SecretString> {
        jwt::sign(self.signing_key(), claims)
    }

    /// PKCS#1 `RSAPublicKey` DER of the key pair.
    pub(crate) fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("origin", &self.origin)
            .field("access_id", &self.access_id)
            .field("admin_rest_api_url", &self.admin_rest_api_url)
            .finish_non_exhaustive()
    }
}

/// The PEM label of the first block, e.g. `RSA PRIVATE KEY`.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = pem[start..].find("-----")?;
    Some(pem[start..start + len].trim())
}

/// Checks that `pem` is an RSA private key (PKCS#1 or PKCS#8) and returns the signing key and
/// the public key. Messages name the kind of key found, never its content.
fn parse_private_key(pem: &SecretString) -> anyhow::Result<(SecretBox<EncodingKey>, Vec<u8>)> {
    let raw = pem.expose_secret().trim();
    // Some tools flatten the key to one line with literal "\n" escapes.
    let unescaped;
    let pem = if !raw.contains('\n') && raw.contains("\\n") {
        unescaped = SecretString::from(raw.replace("\\n", "\n"));
        unescaped.expose_secret()
    } else {
        raw
    };
    let Some(label) = pem_label(pem) else {
        bail!(
            "it is not a PEM private key: expected text starting with \
             -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----"
        );
    };
    match label {
        "RSA PRIVATE KEY" | "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => bail!(
            "it is an encrypted (password-protected) private key; decrypt it first, e.g. \
             `openssl pkcs8 -in enc.pem -out key.pem`, and put the result in accessKey"
        ),
        "EC PRIVATE KEY" => {
            bail!("it is an EC private key, not an RSA private key (RS256 needs RSA)")
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => bail!(
            "it is a public key; the key file must hold the RSA private key the console generated"
        ),
        "CERTIFICATE" => bail!("it is a certificate, not an RSA private key"),
        other => bail!("it is a PEM '{other}' block, not an RSA private key"),
    }
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
        anyhow::anyhow!(
            "it is not an RSA private key ({}): RS256 needs RSA",
            describe_jwt_error(&e)
        )
    })?;
    let key = SecretBox::new(Box::new(key));
    let pair = RsaKeyPair::from_der(key.expose_secret().as_bytes()).map_err(|e| {
        anyhow::anyhow!("the RSA private key was rejected: {e} (it must be 2048 to 4096 bits)")
    })?;
    let public = pair.public_key().as_ref().to_vec();
    Ok((key, public))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const PKCS1: &str = include_str!("../../tests/fixtures/test-only-key-pkcs1.json");
    pub(crate) const PKCS8: &str = include_str!("../../tests/fixtures/test-only-key-pkcs8.json");
    const EC_PEM: &str = include_str!("../../tests/fixtures/test-only-ec-key.pem");
    const PUBLIC_PEM: &str = include_str!("../../tests/fixtures/test-only-key-public.pem");
    const RSA1024_PEM: &str = include_str!("../../tests/fixtures/test-only-rsa1024-key.pem");

    pub(crate) fn test_key() -> KeyFile {
        KeyFile::parse(&SecretString::from(PKCS1.to_string()), "test").unwrap()
    }

    fn parse(text: &str) -> anyhow::Result<KeyFile> {
        KeyFile::parse(&SecretString::from(text.to_string()), "k.json")
    }

    fn with_key(pem: &str) -> String {
        serde_json::json!({
            "accessID": "id", "accessKey": pem, "adminRestApiUrl": "https://a.example/x"
        })
        .to_string()
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    /// One base64 line from the middle of the PEM: must never show up in a message.
    fn key_line(json: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["accessKey"]
            .as_str()
            .unwrap()
            .lines()
            .nth(3)
            .unwrap()
            .to_string()
    }

    #[test]
    fn pkcs1_and_pkcs8_give_the_same_key() {
        let a = parse(PKCS1).unwrap();
        let b = parse(PKCS8).unwrap();
        assert_eq!(a.access_id(), "test-only-access-id-3f9c");
        assert_eq!(
            a.admin_rest_api_url(),
            "https://test-only.invalid/AdminInterface/restapi/v1"
        );
        assert_eq!(a.public_key_der(), b.public_key_der());
        assert!(!a.public_key_der().is_empty());
    }

    #[test]
    fn escaped_newlines_are_accepted() {
        let v: serde_json::Value = serde_json::from_str(PKCS1).unwrap();
        let flat = v["accessKey"].as_str().unwrap().replace('\n', "\\n");
        assert!(parse(&with_key(&flat)).is_ok());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut v: serde_json::Value = serde_json::from_str(PKCS1).unwrap();
        v["somethingNew"] = serde_json::json!({"x": [1, 2]});
        assert!(parse(&v.to_string()).is_ok());
    }

    #[test]
    fn bad_key_files_explain_themselves_without_the_key() {
        let line = key_line(PKCS1);
        let cases: Vec<(String, &str)> = vec![
            ("not json {".into(), "not JSON"),
            ("[1,2]".into(), "not an object"),
            (
                PKCS1.replace("\"accessID\"", "\"accessId_\""),
                "no \"accessID\"",
            ),
            (
                PKCS1.replace("\"adminRestApiUrl\"", "\"url\""),
                "no \"adminRestApiUrl\"",
            ),
            (
                PKCS1.replace("\"accessKey\"", "\"key\""),
                "no \"accessKey\"",
            ),
            (with_key(""), "empty \"accessKey\""),
            (with_key("hello"), "not a PEM private key"),
            (with_key(EC_PEM), "EC private key"),
            (with_key(PUBLIC_PEM), "public key"),
            (
                with_key(
                    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                ),
                "encrypted",
            ),
            (
                with_key("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
                "not an RSA private key",
            ),
            (with_key(RSA1024_PEM), "2048"),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.contains(want), "want {want:?} in: {e}");
            assert!(!e.contains(&line), "key material in: {e}");
            assert!(!e.contains("MII"), "key material in: {e}");
        }
        let e = err(
            &serde_json::json!({"accessID": 5, "accessKey": "x", "adminRestApiUrl": "u"})
                .to_string(),
        );
        assert!(e.contains("not a string"), "{e}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = parse(PKCS1).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("test-only-access-id-3f9c"), "{dbg}");
        assert!(!dbg.contains(&key_line(PKCS1)), "{dbg}");
        assert!(!dbg.contains("MII"), "{dbg}");
    }

    #[test]
    fn loading_from_disk_reports_missing_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!(
            "{:#}",
            KeyFile::load(&dir.path().join("nope.json")).unwrap_err()
        );
        assert!(e.contains("nope.json") && e.contains("--key-file"), "{e}");
        let e = format!("{:#}", KeyFile::load(dir.path()).unwrap_err());
        assert!(e.contains("directory"), "{e}");
        let p = dir.path().join("k.json");
        std::fs::write(&p, PKCS1).unwrap();
        assert!(KeyFile::load(&p).is_ok());
        let latin1 = dir.path().join("latin1.json");
        std::fs::write(&latin1, b"{\"accessID\": \"caf\xe9\"}").unwrap();
        let e = format!("{:#}", KeyFile::load(&latin1).unwrap_err());
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_key_file_says_to_check_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        std::fs::write(&p, PKCS1).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(&p).is_ok() {
            return; // running as root: permissions do not stop reads, nothing to test
        }
        let e = format!("{:#}", KeyFile::load(&p).unwrap_err());
        assert!(
            e.contains("cannot read the key file") && e.contains("permissions"),
            "{e}"
        );
    }
}
