//! `POST /oauth/token`: the client credentials grant with a private-key JWT (RFC 6749 §4.4,
//! RFC 7523). The client assertion is checked as an identity provider checks it — the
//! algorithm the key calls for, `kid`, the signature, `iss` = `sub` = the client id, `aud` =
//! this token URL, `exp` not past, `iat` not ahead, `jti` never seen — with ±60 s of clock
//! skew. Refusals are OAuth error bodies (`invalid_client` 401, the others 400).

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use jsonwebtoken::Validation;

use super::form;
use super::{OAuthFaultKind, OAuthServer};
use crate::conn::ConnKill;
use crate::respond::{Body, JSON, plain_response, to_json};
use crate::stats::bump;
use crate::wire::{OAuthErrorBody, TokenAnswer};

/// Clock skew tolerated on `exp` and `iat`.
pub(crate) const SKEW_SECS: f64 = 60.0;
/// Token requests are a few short parameters and one JWT.
const MAX_BODY_BYTES: usize = 64 * 1024;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a token request is refused: the status and the OAuth error body.
struct Refusal {
    status: u16,
    error: &'static str,
    description: String,
}

fn invalid_client(description: impl Into<String>) -> Refusal {
    Refusal {
        status: 401,
        error: "invalid_client",
        description: description.into(),
    }
}

fn invalid_request(description: impl Into<String>) -> Refusal {
    Refusal {
        status: 400,
        error: "invalid_request",
        description: description.into(),
    }
}

/// Answers one token request. `kill` is its connection (the `reset` fault drops it).
pub(crate) async fn answer(
    server: &OAuthServer,
    kill: &ConnKill,
    req: Request<Incoming>,
) -> Response<Body> {
    let n = server
        .counters
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes());
    let fault = server
        .policy
        .faults
        .iter()
        .find(|f| f.schedule.fires(n))
        .map(|f| f.kind);
    if let Some(kind) = fault {
        bump(&server.counters.faults);
        return match kind {
            OAuthFaultKind::Reset => {
                kill.reset();
                std::future::pending().await
            }
            OAuthFaultKind::Status(status) => {
                let error = match status {
                    400 => "invalid_request",
                    401 => "invalid_client",
                    429 => "slow_down",
                    503 => "temporarily_unavailable",
                    _ => "server_error",
                };
                let mut resp = refusal(&Refusal {
                    status,
                    error,
                    description: "injected fault".into(),
                });
                if status == 429 {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                resp
            }
        };
    }
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let outcome = match body {
        Err(_) => Err(invalid_request(
            "the request body is too large or unreadable",
        )),
        Ok(_) if !is_form => Err(invalid_request(
            "the token request must be application/x-www-form-urlencoded",
        )),
        Ok(body) => grant(server, &body, now_secs(), host.as_deref()),
    };
    match outcome {
        Ok((token, scope)) => {
            let expires_in = server.policy.token_ttl.as_secs().max(1);
            let body = to_json(&TokenAnswer {
                access_token: &token,
                token_type: "Bearer",
                expires_in,
                scope: &scope,
            })
            .unwrap_or_default();
            tracing::debug!(scope = %scope, expires_in, "simulator: issued an access token");
            no_store(plain_response(StatusCode::OK, JSON, body))
        }
        Err(refused) => {
            bump(&server.counters.refused);
            tracing::debug!(
                error = refused.error,
                description = %refused.description,
                "simulator: refused a token request"
            );
            refusal(&refused)
        }
    }
}

fn refusal(r: &Refusal) -> Response<Body> {
    let body = to_json(&OAuthErrorBody {
        error: r.error,
        error_description: &r.description,
    })
    .unwrap_or_default();
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    no_store(plain_response(status, JSON, body))
}

/// Token answers must not be cached (RFC 6749 §5.1).
fn no_store(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Checks a token request made at `now` (Unix seconds) to `host` (its Host header): an
/// access token and the scopes it grants, or the refusal.
fn grant(
    server: &OAuthServer,
    body: &Bytes,
    now: f64,
    host: Option<&str>,
) -> Result<(String, String), Refusal> {
    let pairs = form::decode(body).ok_or_else(|| invalid_request("the body is not a form"))?;
    let param = |name: &str| form::single(&pairs, name).map_err(invalid_request);
    match param("grant_type")? {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(Refusal {
                status: 400,
                error: "unsupported_grant_type",
                description: "only grant_type=client_credentials is served".into(),
            });
        }
        None => return Err(invalid_request("grant_type is missing")),
    }
    if param("client_assertion_type")? != Some(ASSERTION_TYPE) {
        return Err(invalid_request(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let assertion =
        param("client_assertion")?.ok_or_else(|| invalid_request("client_assertion is missing"))?;
    let policy = &server.policy;
    if let Some(id) = param("client_id")?
        && id != policy.client_id
    {
        return Err(invalid_client("unknown client_id"));
    }
    let scope_param = param("scope")?.unwrap_or("");
    server.record_scope(scope_param);
    check_assertion(server, assertion, now, host)?;
    let scopes: Vec<String> = scope_param.split_whitespace().map(str::to_string).collect();
    if let Some(allowed) = &policy.allowed_scopes
        && let Some(bad) = scopes.iter().find(|s| !allowed.contains(s))
    {
        return Err(Refusal {
            status: 400,
            error: "invalid_scope",
            description: format!("the client may not be granted {bad}"),
        });
    }
    let scope = scopes.join(" ");
    Ok((server.issue(scopes), scope))
}

/// The client assertion's checks, in the order a provider makes them. `aud` must be this
/// token endpoint: its own URL, or the URL it was reached at (`host`, over http or https:
/// behind a TLS terminator the simulator cannot tell which).
fn check_assertion(
    server: &OAuthServer,
    assertion: &str,
    now: f64,
    host: Option<&str>,
) -> Result<(), Refusal> {
    let policy = &server.policy;
    let key = &policy.key;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| invalid_client("the client assertion is not a JWT"))?;
    if header.alg != key.alg {
        return Err(invalid_client(format!(
            "the client assertion is signed {:?}; this client's key signs {}",
            header.alg,
            policy.algorithm()
        )));
    }
    match (&header.kid, &policy.key_id) {
        (None, _) => return Err(invalid_client("the client assertion has no kid")),
        (Some(kid), Some(want)) if kid != want => {
            return Err(invalid_client(
                "the client assertion's kid names no key of this client",
            ));
        }
        (Some(kid), None) if kid.trim().is_empty() => {
            return Err(invalid_client("the client assertion's kid is empty"));
        }
        _ => {}
    }
    let mut validation = Validation::new(key.alg);
    // The claims are checked below, with the provider's rules and messages.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    jwt_ring::install();
    let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, &key.key, &validation)
        .map_err(|_| invalid_client("the client assertion's signature does not verify"))?
        .claims;
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    if text("iss") != Some(policy.client_id.as_str()) {
        return Err(invalid_client(
            "the client assertion's iss is not the client id",
        ));
    }
    if text("sub") != Some(policy.client_id.as_str()) {
        return Err(invalid_client(
            "the client assertion's sub is not the client id",
        ));
    }
    let token_url = server.token_url();
    let reached: Vec<String> = host
        .map(|h| {
            ["http", "https"]
                .iter()
                .map(|scheme| format!("{scheme}://{h}{}", super::TOKEN_PATH))
                .collect()
        })
        .unwrap_or_default();
    let is_ours = |a: &str| a == token_url || reached.iter().any(|r| r == a);
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => is_ours(a),
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|a| a.as_str()).any(is_ours),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_client(format!(
            "the client assertion's aud is not this token endpoint ({token_url})"
        )));
    }
    let number = |name: &str| claims.get(name).and_then(serde_json::Value::as_f64);
    let Some(exp) = number("exp") else {
        return Err(invalid_client("the client assertion has no numeric exp"));
    };
    if exp + SKEW_SECS < now {
        return Err(invalid_client("the client assertion has expired"));
    }
    if let Some(iat) = number("iat")
        && iat > now + SKEW_SECS
    {
        return Err(invalid_client(
            "the client assertion's iat is in the future",
        ));
    }
    let jti = text("jti").filter(|j| !j.is_empty());
    let Some(jti) = jti else {
        return Err(invalid_client("the client assertion has no jti"));
    };
    if !server.first_use_of(jti, exp, now) {
        return Err(invalid_client(
            "the client assertion was used before (its jti is replayed)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use super::*;
    use crate::oauth::OAuthPolicy;

    const EC_JWK: &[u8] = include_bytes!("../../../../tests/fixtures/test-only-oauth-ec.jwk.json");
    const EC_PKCS8: &[u8] =
        include_bytes!("../../../../tests/fixtures/test-only-oauth-ec-pkcs8.pem");
    const RSA_PKCS1: &[u8] =
        include_bytes!("../../../../tests/fixtures/test-only-oauth-rsa-pkcs1.pem");
    const RSA_PUBLIC: &[u8] =
        include_bytes!("../../../../tests/fixtures/test-only-oauth-rsa-public.pem");
    const URL: &str = "http://127.0.0.1:9/oauth/token";
    const KID: &str = "test-only-ec-kid-52ad";
    const NOW: f64 = 1_700_000_000.0;

    fn server(public: &[u8]) -> OAuthServer {
        let s = OAuthServer::new(&OAuthPolicy::new(public, "client-1").unwrap());
        s.bound_at("http://127.0.0.1:9");
        s
    }

    fn claims(jti: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": "client-1", "sub": "client-1", "aud": URL,
            "iat": NOW as u64, "exp": NOW as u64 + 300, "jti": jti,
        })
    }

    fn sign(pem: &[u8], alg: Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
        jwt_ring::install();
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(pem).unwrap(),
        };
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn form(assertion: &str, scope: &str) -> Bytes {
        Bytes::from(format!(
            "grant_type=client_credentials&client_id=client-1&scope={scope}\
             &client_assertion_type={}&client_assertion={assertion}",
            ASSERTION_TYPE.replace(':', "%3A")
        ))
    }

    fn refused(s: &OAuthServer, body: &Bytes) -> String {
        match grant(s, body, NOW, None) {
            Ok(_) => panic!("granted"),
            Err(r) => format!("{} {}: {}", r.status, r.error, r.description),
        }
    }

    #[test]
    fn a_good_assertion_gets_a_token_with_its_scopes_once() {
        let s = server(EC_JWK);
        let a = sign(EC_PKCS8, Algorithm::ES256, Some(KID), &claims("j1"));
        let (token, scope) = grant(&s, &form(&a, "read+delete"), NOW, None).ok().unwrap();
        assert_eq!(scope, "read delete");
        assert_eq!(s.check_access(token.as_bytes(), Some("delete")), Ok(()));
        let again = refused(&s, &form(&a, "read"));
        assert!(
            again.starts_with("401 invalid_client") && again.contains("replayed"),
            "{again}"
        );
    }

    #[test]
    fn every_claim_and_header_is_checked() {
        let s = server(EC_JWK);
        let mut n = 0;
        let mut check = |alg: Algorithm,
                         pem: &[u8],
                         kid: Option<&str>,
                         f: &dyn Fn(&mut serde_json::Value),
                         want: &str| {
            n += 1;
            let mut c = claims(&format!("j{n}"));
            f(&mut c);
            let e = refused(&s, &form(&sign(pem, alg, kid, &c), "read"));
            assert!(e.contains(want), "want {want}: {e}");
        };
        let es = Algorithm::ES256;
        check(es, EC_PKCS8, None, &|_| {}, "no kid");
        check(es, EC_PKCS8, Some("other"), &|_| {}, "kid names no key");
        check(
            Algorithm::RS256,
            RSA_PKCS1,
            Some(KID),
            &|_| {},
            "signed RS256",
        );
        check(es, EC_PKCS8, Some(KID), &|c| c["iss"] = "x".into(), "iss");
        check(es, EC_PKCS8, Some(KID), &|c| c["sub"] = "x".into(), "sub");
        check(
            es,
            EC_PKCS8,
            Some(KID),
            &|c| c["aud"] = "http://elsewhere/token".into(),
            "aud",
        );
        check(
            es,
            EC_PKCS8,
            Some(KID),
            &|c| c["exp"] = (NOW - 61.0).into(),
            "expired",
        );
        check(
            es,
            EC_PKCS8,
            Some(KID),
            &|c| c["iat"] = (NOW + 61.0).into(),
            "future",
        );
        check(
            es,
            EC_PKCS8,
            Some(KID),
            &|c| _ = c.as_object_mut().unwrap().remove("jti"),
            "no jti",
        );
        check(
            es,
            EC_PKCS8,
            Some(KID),
            &|c| _ = c.as_object_mut().unwrap().remove("exp"),
            "exp",
        );
        // The URL it was reached at is its URL too; another host's is not.
        let mut c = claims("reached-at");
        c["aud"] = "https://localhost:8443/oauth/token".into();
        let a = sign(EC_PKCS8, es, Some(KID), &c);
        assert!(grant(&s, &form(&a, "r"), NOW, Some("localhost:8443")).is_ok());
        let mut c = claims("reached-elsewhere");
        c["aud"] = "https://localhost:8443/oauth/token".into();
        let a = sign(EC_PKCS8, es, Some(KID), &c);
        assert!(grant(&s, &form(&a, "r"), NOW, Some("localhost:9443")).is_err());
        // An array aud holding the token URL is fine.
        let mut c = claims("array-aud");
        c["aud"] = serde_json::json!(["x", URL]);
        assert!(
            grant(
                &s,
                &form(&sign(EC_PKCS8, es, Some(KID), &c), "r"),
                NOW,
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn another_key_a_wrong_client_or_a_bad_form_are_refused() {
        let s = server(RSA_PUBLIC);
        let other = server(EC_JWK);
        let a = sign(RSA_PKCS1, Algorithm::RS256, Some("any"), &claims("k1"));
        // PEM without a key id: any kid, the signature decides.
        assert!(grant(&s, &form(&a, "r"), NOW, None).is_ok());
        let e = refused(&other, &form(&a, "r"));
        assert!(e.contains("signed RS256"), "{e}");
        let b = sign(RSA_PKCS1, Algorithm::RS256, Some("any"), &claims("k2"));
        let wrong_client = Bytes::from(
            String::from_utf8(form(&b, "r").to_vec())
                .unwrap()
                .replace("client_id=client-1", "client_id=client-2"),
        );
        assert!(refused(&s, &wrong_client).contains("unknown client_id"));
        let e = refused(&s, &Bytes::from_static(b"grant_type=password"));
        assert!(e.starts_with("400 unsupported_grant_type"), "{e}");
        let e = refused(&s, &Bytes::from_static(b"grant_type=client_credentials"));
        assert!(e.contains("client_assertion_type"), "{e}");
        let e = refused(
            &s,
            &Bytes::from_static(b"grant_type=client_credentials&grant_type=x"),
        );
        assert!(e.contains("repeated"), "{e}");
        // A forged signature.
        let c = sign(RSA_PKCS1, Algorithm::RS256, Some("any"), &claims("k3"));
        let (head, _) = c.rsplit_once('.').unwrap();
        let forged = format!("{head}.AAAA");
        assert!(refused(&s, &form(&forged, "r")).contains("signature"));
    }

    #[test]
    fn scopes_outside_the_allowed_ones_are_refused() {
        let mut policy = OAuthPolicy::new(EC_JWK, "client-1").unwrap();
        policy.allowed_scopes = Some(vec!["read".into()]);
        let s = OAuthServer::new(&policy);
        s.bound_at("http://127.0.0.1:9");
        let a = sign(EC_PKCS8, Algorithm::ES256, Some(KID), &claims("s1"));
        let e = refused(&s, &form(&a, "read+delete"));
        assert!(
            e.starts_with("400 invalid_scope") && e.contains("delete"),
            "{e}"
        );
        let b = sign(EC_PKCS8, Algorithm::ES256, Some(KID), &claims("s2"));
        assert!(grant(&s, &form(&b, "read"), NOW, None).is_ok());
    }
}
