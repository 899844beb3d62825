//! OAuth API clients (docs/design.md#credentials): the client credentials grant with a
//! private-key JWT. Each token request carries a fresh client assertion (`iss` = `sub` = the
//! client id, `aud` = the token endpoint, `iat`, `exp` five minutes on, a random `jti`)
//! signed RS256 or ES256 with the client's key, and the answer's `access_token` is the bearer
//! token of the API requests. What goes wrong is data (`FetchError`); the caller decides
//! whether it stops the run before the plan or is retried mid-run.
//!
//! Neither the assertion nor the access token is ever part of a message: answers are quoted
//! only from error bodies, through their `error` and `error_description`.

use std::fmt;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use bytes::BytesMut;
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::client::{USER_AGENT, append_capped, is_html, transport_error};
use super::endpoints::is_loopback_host;
use super::exchange::{TransportError, excerpt};
use super::jwt::unix_secs;
use super::oauth_key::OAuthKey;
use crate::engine::retry::RetryPolicy;

/// Environment variable holding the issuer URL (`--oauth-issuer` wins over it).
pub(crate) const ISSUER_ENV: &str = "DS100_OAUTH_ISSUER";
/// Environment variable holding the client id (`--oauth-client-id` wins over it).
pub(crate) const CLIENT_ID_ENV: &str = "DS100_OAUTH_CLIENT_ID";

/// RFC 7523's client assertion type.
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// An assertion is used once, at once: a few minutes cover any clock skew.
const ASSERTION_LIFETIME_SECS: u64 = 300;
/// Token answers are a few hundred bytes.
const MAX_TOKEN_ANSWER: usize = 64 * 1024;
/// How long a token is taken to live when the answer gives no `expires_in` (it is only
/// RECOMMENDED): renewed after four minutes, and at once after a 401/403 anyway.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);
/// Attempts of the first fetch, before the plan, on an issuer that is throttled or
/// unreachable: enough to ride out a blip, few enough that an outage is reported soon.
const START_MAX_ATTEMPTS: u32 = 4;

/// A configured OAuth API client: where it asks, who it is, what it signs with and asks for.
pub(crate) struct OAuthClient {
    issuer: String,
    token_url: Url,
    client_id: String,
    key: OAuthKey,
    /// Space-separated, as sent.
    scope: String,
}

/// An access token as issued.
pub(crate) struct Issued {
    pub(crate) token: SecretString,
    /// `expires_in`, or `ASSUMED_LIFETIME` when the answer has none.
    pub(crate) lifetime: Duration,
    /// The `scope` the issuer says it granted, when it says.
    pub(crate) granted: Option<String>,
}

/// Why a token request got no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// The issuer refused: a 400/401 with an OAuth error body.
    Refused {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// The issuer granted fewer scopes than asked for.
    Narrowed { missing: Vec<String> },
    /// Throttled, a server error or a network failure: worth another try.
    Transient(String),
    /// An answer, but not a token endpoint's (an HTML page, a 404, a 200 without a token).
    NotOAuth(String),
    /// Trying again cannot help (TLS, a local signing failure).
    Fatal(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Refused {
                status,
                error,
                description,
            } => {
                write!(f, "HTTP {status} {error}")?;
                match description {
                    Some(d) => write!(f, ": \"{d}\""),
                    None => Ok(()),
                }
            }
            FetchError::Narrowed { missing } => write!(
                f,
                "the issuer did not grant the scope(s) {}",
                missing.join(" ")
            ),
            FetchError::Transient(why) | FetchError::NotOAuth(why) | FetchError::Fatal(why) => {
                f.write_str(why)
            }
        }
    }
}

/// When a fetch happens: its failures are handled differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Before the plan: a refusal stops at once (exit 2, nothing sent); only throttling and
    /// network failures are tried again, a few times.
    Start,
    /// During the run: anything is tried again with backoff, up to `--max-attempts`.
    Renewal,
}

/// The claims of a client assertion (RFC 7523 §3).
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

impl OAuthClient {
    /// Checks the issuer URL (HTTPS, except loopback) and the client id; the token endpoint
    /// is `<issuer>/token`. `scope` is sent as given (space-separated).
    pub(crate) fn new(
        issuer: &str,
        client_id: &str,
        key: OAuthKey,
        scope: &str,
    ) -> anyhow::Result<OAuthClient> {
        let client_id = client_id.trim();
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            bail!(
                "the OAuth client id is empty or has control characters: give the API client's \
                 id (--oauth-client-id or {CLIENT_ID_ENV})"
            );
        }
        let scope = scope.split_whitespace().collect::<Vec<_>>().join(" ");
        if scope.is_empty() {
            bail!(
                "--oauth-scope is empty: give the scopes, e.g. --oauth-scope \"rsa.authenticator.ds100.read\""
            );
        }
        let (issuer, token_url) = token_endpoint(issuer)?;
        Ok(OAuthClient {
            issuer,
            token_url,
            client_id: client_id.to_string(),
            key,
            scope,
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn token_url(&self) -> &Url {
        &self.token_url
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn key(&self) -> &OAuthKey {
        &self.key
    }

    pub(crate) fn scope(&self) -> &str {
        &self.scope
    }

    /// A client assertion issued at `now`, with a `jti` no other assertion has.
    fn assertion(&self, now: SystemTime) -> anyhow::Result<SecretString> {
        let iat = unix_secs(now);
        self.key.sign(&AssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: self.token_url.as_str(),
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
            jti: fresh_jti()?,
        })
    }

    /// Fetches a token, trying again as `phase` allows. The error says what to check.
    pub(crate) async fn fetch(
        &self,
        http: &reqwest::Client,
        retry: &RetryPolicy,
        phase: Phase,
    ) -> anyhow::Result<Issued> {
        let max_attempts = match phase {
            Phase::Start => retry.max_attempts.min(START_MAX_ATTEMPTS),
            Phase::Renewal => retry.max_attempts,
        }
        .max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failed = match self.fetch_once(http).await {
                Ok(issued) => return Ok(issued),
                Err(e) => e,
            };
            let retryable = match (&failed, phase) {
                (FetchError::Fatal(_), _) => false,
                (FetchError::Transient(_), _) | (_, Phase::Renewal) => true,
                _ => false,
            };
            if !retryable || attempt >= max_attempts {
                return Err(anyhow::anyhow!("{}", self.explain(&failed, attempt, phase)));
            }
            tracing::warn!(
                attempt,
                "the OAuth token request to {} failed ({failed}); trying again",
                self.token_url
            );
            tokio::time::sleep(retry.backoff(attempt)).await;
        }
    }

    /// What went wrong and what to check, for the operator.
    fn explain(&self, failed: &FetchError, attempts: u32, phase: Phase) -> String {
        let url = &self.token_url;
        let tries = if attempts == 1 {
            String::new()
        } else {
            format!(" (after {attempts} attempts)")
        };
        let nothing = match phase {
            Phase::Start => " Nothing was sent to the tenant.",
            Phase::Renewal => "",
        };
        let check = format!(
            "Check the client id ({}), that the key ({}, kid {}, {:?}) is the one registered \
             for this API client, the issuer URL (token endpoint {url}), and this machine's \
             clock (the assertion is valid for {} minutes from now).",
            self.client_id,
            self.key.origin(),
            self.key.kid(),
            self.key.alg(),
            ASSERTION_LIFETIME_SECS / 60
        );
        match failed {
            FetchError::Refused { error, .. } if error == "invalid_scope" => format!(
                "the OAuth issuer at {url} refused the scope '{}'{tries}: {failed}. Give the API \
                 client these scopes in the console, or ask for fewer with --oauth-scope.{nothing}",
                self.scope
            ),
            FetchError::Refused { .. } => {
                format!(
                    "the OAuth issuer at {url} refused the client credentials{tries}: {failed}. {check}{nothing}"
                )
            }
            FetchError::Narrowed { .. } => format!(
                "the OAuth issuer at {url} issued a token without everything this command \
                 needs{tries}: {failed} (asked for '{}'). Give the API client these scopes in \
                 the console, or ask for fewer with --oauth-scope.{nothing}",
                self.scope
            ),
            FetchError::Transient(_) | FetchError::Fatal(_) => format!(
                "cannot get an OAuth access token from {url}{tries}: {failed}. Check the \
                 network, the issuer URL (--oauth-issuer) and any proxy (HTTPS_PROXY) in \
                 between; behind a TLS-inspecting proxy, add its CA with --ca-cert.{nothing}"
            ),
            FetchError::NotOAuth(_) => format!(
                "{url} did not answer like an OAuth token endpoint{tries}: {failed}. Check \
                 --oauth-issuer: it is the issuer URL (e.g. \
                 https://acme.auth.securid.com/oauth), and the token endpoint is \
                 <issuer>/token.{nothing}"
            ),
        }
    }

    /// One token request and its answer.
    pub(crate) async fn fetch_once(&self, http: &reqwest::Client) -> Result<Issued, FetchError> {
        let assertion = self
            .assertion(SystemTime::now())
            .map_err(|e| FetchError::Fatal(format!("cannot sign the client assertion: {e:#}")))?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", &self.scope)
            .append_pair("client_assertion_type", ASSERTION_TYPE)
            .append_pair("client_assertion", assertion.expose_secret())
            .finish();
        let mut req = reqwest::Request::new(Method::POST, self.token_url.clone());
        let headers = req.headers_mut();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        *req.body_mut() = Some(body.into());
        let mut resp = http.execute(req).await.map_err(transport)?;
        let status = resp.status().as_u16();
        let html = is_html(resp.headers());
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if !append_capped(&mut buf, &chunk) || buf.len() >= MAX_TOKEN_ANSWER {
                break;
            }
        }
        let issued = read_answer(status, html, &buf).map_err(|e| unquote(e, &assertion))?;
        if let Some(granted) = &issued.granted {
            let missing: Vec<String> = self
                .scope
                .split(' ')
                .filter(|s| !granted.split_whitespace().any(|g| g == *s))
                .map(str::to_string)
                .collect();
            if !missing.is_empty() {
                return Err(FetchError::Narrowed { missing });
            }
        }
        Ok(issued)
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("key", &self.key)
            .field("scope", &self.scope)
            .finish()
    }
}

fn transport(e: reqwest::Error) -> FetchError {
    match transport_error(e) {
        e @ TransportError::Tls(_) => FetchError::Fatal(e.to_string()),
        e => FetchError::Transient(e.to_string()),
    }
}

/// An issuer's error that quotes the client assertion back (a credential, if a short-lived
/// one) has it cut out.
fn unquote(e: FetchError, assertion: &SecretString) -> FetchError {
    let pieces: Vec<&str> = assertion
        .expose_secret()
        .split('.')
        .filter(|p| p.len() >= 16)
        .map(|p| &p[..16])
        .collect();
    let quotes = |t: &str| pieces.iter().any(|p| t.contains(p));
    match e {
        FetchError::Refused {
            status,
            error,
            description: Some(d),
        } if quotes(&d) || quotes(&error) => FetchError::Refused {
            status,
            error: if quotes(&error) {
                "(not shown)".into()
            } else {
                error
            },
            description: Some("(not shown: it quotes the client assertion)".into()),
        },
        FetchError::Transient(t) if quotes(&t) => {
            FetchError::Transient("(an answer quoting the client assertion, not shown)".into())
        }
        FetchError::NotOAuth(t) if quotes(&t) => {
            FetchError::NotOAuth("(an answer quoting the client assertion, not shown)".into())
        }
        other => other,
    }
}

/// 16 random bytes in hex: the `jti` of one assertion.
fn fresh_jti() -> anyhow::Result<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The issuer as given (without a trailing `/`) and its token endpoint. HTTPS only, except
/// loopback hosts: the assertion is a credential.
pub(crate) fn token_endpoint(issuer: &str) -> anyhow::Result<(String, Url)> {
    let given = issuer.trim();
    let url = Url::parse(given).map_err(|_| {
        anyhow::anyhow!(
            "the OAuth issuer '{given}' is not a URL: give it as the console shows it, e.g. \
             https://acme.auth.securid.com/oauth (--oauth-issuer or {ISSUER_ENV})"
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        bail!("the OAuth issuer URL must not contain a user name or password");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("the OAuth issuer URL '{given}' must not have a query or fragment");
    }
    let host = url.host_str().unwrap_or_default().to_string();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => bail!(
            "refusing plain http:// to the OAuth issuer {host}: client assertions and access \
             tokens must travel over HTTPS. Use https://{host}… (http:// is allowed only for \
             loopback hosts such as the simulator)"
        ),
        other => bail!("unsupported OAuth issuer URL scheme '{other}': use https://"),
    }
    let trimmed = given.trim_end_matches('/');
    if url.path().trim_end_matches('/').ends_with("/token") {
        bail!(
            "the OAuth issuer '{given}' looks like the token endpoint itself: give the issuer \
             (e.g. https://acme.auth.securid.com/oauth); the tool asks <issuer>/token"
        );
    }
    let token_url = Url::parse(&format!("{trimmed}/token"))
        .map_err(|e| anyhow::anyhow!("the OAuth issuer '{given}' gives no token URL: {e}"))?;
    Ok((trimmed.to_string(), token_url))
}

/// A token endpoint's answer: a token, or why not. Bodies are quoted only when they are
/// error bodies (a 200's body holds the token).
fn read_answer(status: u16, html: bool, body: &[u8]) -> Result<Issued, FetchError> {
    let json: Option<serde_json::Value> = if html {
        None
    } else {
        serde_json::from_slice(body).ok()
    };
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(|s| excerpt(s, 200))
    };
    match status {
        200 => {
            let Some(obj) = json.as_ref().filter(|v| v.is_object()) else {
                return Err(FetchError::NotOAuth(if html {
                    "HTTP 200 with an HTML page (a sign-in portal?) instead of a token".into()
                } else {
                    "HTTP 200 with a body that is not a JSON object".into()
                }));
            };
            let Some(token) = obj.get("access_token").and_then(|v| v.as_str()) else {
                return Err(FetchError::NotOAuth(
                    "HTTP 200 without an access_token".into(),
                ));
            };
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(FetchError::NotOAuth(
                    "HTTP 200 with an access_token that is empty or not printable ASCII".into(),
                ));
            }
            if let Some(kind) = text(obj, "token_type")
                && !kind.eq_ignore_ascii_case("bearer")
            {
                return Err(FetchError::NotOAuth(format!(
                    "the issuer issued a '{kind}' token; this tool sends bearer tokens"
                )));
            }
            let lifetime = obj
                .get("expires_in")
                .and_then(|v| {
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                })
                .filter(|s| s.is_finite() && *s > 0.0)
                // At least a second: a token renewed every few milliseconds would be a
                // fetch per request.
                .map(|s| Duration::from_secs_f64(s.clamp(1.0, 86_400.0 * 365.0)))
                .unwrap_or(ASSUMED_LIFETIME);
            Ok(Issued {
                token: SecretString::from(token.to_string()),
                lifetime,
                granted: text(obj, "scope").filter(|g| !g.trim().is_empty()),
            })
        }
        // 400 and 401 are RFC 6749's; some providers refuse a disabled client with 403.
        400..=403 if json.as_ref().and_then(|v| text(v, "error")).is_some() => {
            let v = json.as_ref().unwrap_or(&serde_json::Value::Null);
            Err(FetchError::Refused {
                status,
                error: text(v, "error").unwrap_or_default(),
                description: text(v, "error_description"),
            })
        }
        429 | 500 | 502 | 503 | 504 => Err(FetchError::Transient(format!(
            "HTTP {status}{}",
            quote(json.as_ref(), html, body)
        ))),
        _ => Err(FetchError::NotOAuth(format!(
            "HTTP {status}{}",
            quote(json.as_ref(), html, body)
        ))),
    }
}

/// An error answer in a few words: its OAuth error, or its first line.
fn quote(json: Option<&serde_json::Value>, html: bool, body: &[u8]) -> String {
    if let Some(v) = json
        && let Some(e) = v.get("error").and_then(|e| e.as_str())
    {
        let d = v
            .get("error_description")
            .and_then(|d| d.as_str())
            .map(|d| format!(": \"{}\"", excerpt(d, 200)))
            .unwrap_or_default();
        return format!(" {}{d}", excerpt(e, 80));
    }
    if html {
        return " with an HTML page".into();
    }
    let line = excerpt(&String::from_utf8_lossy(body), 120);
    if line.is_empty() {
        String::new()
    } else {
        format!(" ({line})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::oauth_key::tests::EC_JWK;

    fn client(issuer: &str) -> OAuthClient {
        let key = OAuthKey::parse(&SecretString::from(EC_JWK.to_string()), "k", None).unwrap();
        OAuthClient::new(issuer, " client-1 ", key, "a  b").unwrap()
    }

    #[test]
    fn the_token_endpoint_hangs_off_the_issuer() {
        for (issuer, want) in [
            (
                "https://acme.auth.securid.com/oauth",
                "https://acme.auth.securid.com/oauth/token",
            ),
            (
                "https://acme.auth.securid.com/oauth/",
                "https://acme.auth.securid.com/oauth/token",
            ),
            (
                " http://127.0.0.1:8080/oauth ",
                "http://127.0.0.1:8080/oauth/token",
            ),
            ("http://localhost:1", "http://localhost:1/token"),
        ] {
            assert_eq!(token_endpoint(issuer).unwrap().1.as_str(), want, "{issuer}");
        }
        for (bad, why) in [
            ("http://acme.auth.securid.com/oauth", "HTTPS"),
            ("acme.auth.securid.com", "not a URL"),
            ("ftp://x/oauth", "scheme"),
            ("https://u:p@x/oauth", "user name"),
            ("https://x/oauth?a=1", "query"),
            ("https://x/oauth/token", "token endpoint itself"),
            ("https://x/oauth/token/", "token endpoint itself"),
        ] {
            let e = token_endpoint(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn assertions_carry_the_claims_and_a_fresh_jti_each_time() {
        let c = client("https://acme.auth.securid.com/oauth");
        assert_eq!(c.client_id(), "client-1");
        assert_eq!(c.scope(), "a b");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let claims = |t: &SecretString| -> serde_json::Value {
            use base64::Engine as _;
            let payload = t.expose_secret().split('.').nth(1).unwrap().to_string();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        let a = claims(&c.assertion(now).unwrap());
        let b = claims(&c.assertion(now).unwrap());
        assert_eq!(a["iss"], "client-1");
        assert_eq!(a["sub"], "client-1");
        assert_eq!(a["aud"], "https://acme.auth.securid.com/oauth/token");
        assert_eq!(a["iat"], 1_700_000_000u64);
        assert_eq!(a["exp"], 1_700_000_300u64);
        assert_eq!(a["jti"].as_str().unwrap().len(), 32);
        assert_ne!(a["jti"], b["jti"], "same second, different jti");
        assert_eq!(a.as_object().unwrap().len(), 6, "{a}");
    }

    #[test]
    fn answers_are_read_leniently_and_never_quoted_when_they_hold_a_token() {
        let ok = |body: &str| read_answer(200, false, body.as_bytes());
        let t =
            ok(r#"{"access_token":"abc","token_type":"Bearer","expires_in":600,"scope":"x y"}"#)
                .unwrap();
        assert_eq!(t.token.expose_secret(), "abc");
        assert_eq!(t.lifetime, Duration::from_secs(600));
        assert_eq!(t.granted.as_deref(), Some("x y"));
        let t = ok(r#"{"access_token":"abc","token_type":"bearer","expires_in":"90"}"#).unwrap();
        assert_eq!(t.lifetime, Duration::from_secs(90));
        let t = ok(r#"{"access_token":"abc"}"#).unwrap();
        assert_eq!((t.lifetime, t.granted), (ASSUMED_LIFETIME, None));
        let t = ok(r#"{"access_token":"abc","expires_in":0}"#).unwrap();
        assert_eq!(t.lifetime, ASSUMED_LIFETIME);
        let t = ok(r#"{"access_token":"abc","expires_in":0.01,"scope":" "}"#).unwrap();
        assert_eq!((t.lifetime, t.granted), (Duration::from_secs(1), None));
        for (body, want) in [
            (r#"{"token_type":"Bearer"}"#, "without an access_token"),
            (r#"{"access_token":"a b"}"#, "not printable"),
            (
                r#"{"access_token":"secret-tok","token_type":"DPoP"}"#,
                "'DPoP'",
            ),
            ("[]", "not a JSON object"),
        ] {
            let e = ok(body).err().unwrap().to_string();
            assert!(e.contains(want), "{body}: {e}");
            assert!(!e.contains("secret-tok"), "{e}");
        }
        let e = read_answer(200, true, b"<html>").err().unwrap().to_string();
        assert!(e.contains("HTML"), "{e}");

        let refused = read_answer(
            401,
            false,
            br#"{"error":"invalid_client","error_description":"bad signature"}"#,
        )
        .err()
        .unwrap();
        assert_eq!(
            refused,
            FetchError::Refused {
                status: 401,
                error: "invalid_client".into(),
                description: Some("bad signature".into()),
            }
        );
        assert_eq!(
            refused.to_string(),
            "HTTP 401 invalid_client: \"bad signature\""
        );
        assert!(matches!(
            read_answer(403, false, br#"{"error":"access_denied"}"#),
            Err(FetchError::Refused { status: 403, .. })
        ));
        assert!(matches!(
            read_answer(503, false, b"busy"),
            Err(FetchError::Transient(e)) if e == "HTTP 503 (busy)"
        ));
        assert!(matches!(
            read_answer(400, true, b"<html>"),
            Err(FetchError::NotOAuth(e)) if e.contains("HTML")
        ));
        assert!(matches!(
            read_answer(404, false, br#"{"error":"not_found"}"#),
            Err(FetchError::NotOAuth(e)) if e.contains("404 not_found")
        ));
    }

    #[test]
    fn an_error_quoting_the_assertion_does_not_repeat_it() {
        let c = client("https://acme.auth.securid.com/oauth");
        let assertion = c.assertion(SystemTime::now()).unwrap();
        let a = assertion.expose_secret();
        let echoed = read_answer(
            400,
            false,
            serde_json::json!({"error": "invalid_request", "error_description": format!("bad: {a}")})
                .to_string()
                .as_bytes(),
        )
        .err()
        .unwrap();
        let shown = unquote(echoed, &assertion).to_string();
        assert!(
            shown.contains("not shown") && shown.contains("invalid_request"),
            "{shown}"
        );
        for piece in a.split('.') {
            assert!(!shown.contains(&piece[..16]), "{shown}");
        }
        let plain = FetchError::Transient("HTTP 503".into());
        assert_eq!(unquote(plain.clone(), &assertion), plain);
    }

    #[test]
    fn explanations_say_what_to_check() {
        let c = client("https://acme.auth.securid.com/oauth");
        let refused = FetchError::Refused {
            status: 401,
            error: "invalid_client".into(),
            description: Some("unknown kid".into()),
        };
        let e = c.explain(&refused, 1, Phase::Start);
        for want in [
            "invalid_client",
            "\"unknown kid\"",
            "client id (client-1)",
            "kid test-only-ec-kid-52ad",
            "ES256",
            "https://acme.auth.securid.com/oauth/token",
            "clock",
            "Nothing was sent",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = c.explain(&refused, 6, Phase::Renewal);
        assert!(
            e.contains("after 6 attempts") && !e.contains("Nothing was sent"),
            "{e}"
        );
        let scope = FetchError::Refused {
            status: 400,
            error: "invalid_scope".into(),
            description: None,
        };
        assert!(c.explain(&scope, 1, Phase::Start).contains("--oauth-scope"));
        let e = c.explain(
            &FetchError::Narrowed {
                missing: vec!["b".into()],
            },
            1,
            Phase::Start,
        );
        assert!(e.contains("did not grant the scope(s) b"), "{e}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let c = client("https://acme.auth.securid.com/oauth");
        let dbg = format!("{c:?}");
        let jwk: serde_json::Value = serde_json::from_str(EC_JWK).unwrap();
        assert!(dbg.contains("client-1"), "{dbg}");
        assert!(!dbg.contains(&jwk["d"].as_str().unwrap()[..10]), "{dbg}");
    }
}
