//! The DS100 HTTP client: one request per call, no retries (the engine owns those). Answers
//! come back as data; only transport failures are errors, described without secrets.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::auth::Bearer;
use super::endpoints::{Endpoints, is_loopback_host};
use super::types::{Credential, LookupRequest};

/// Pooled connections idle longer than this are dropped: below the 5 s keep-alive of Apache
/// and Node.js servers, so the client never reuses a socket the server is about to close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Bodies larger than this are cut (the API answers a few KiB at most).
const MAX_BODY: usize = 1 << 20;

pub const USER_AGENT: &str = concat!("ds100-offboard/", env!("CARGO_PKG_VERSION"));

/// Transport settings of the client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra trust roots (`--ca-cert`), on top of the platform's.
    pub trust: TrustRoots,
}

/// Certificates trusted in addition to the platform's roots, e.g. a TLS-inspecting proxy's CA.
#[derive(Clone, Default)]
pub struct TrustRoots {
    certs: Vec<reqwest::Certificate>,
    sources: Vec<String>,
}

impl TrustRoots {
    /// Reads every certificate of a PEM file (a bundle is fine).
    pub fn add_pem_file(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --ca-cert {shown}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            anyhow::anyhow!("--ca-cert {shown} is not a PEM certificate file ({e}): give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)")
        })?;
        if certs.is_empty() {
            anyhow::bail!(
                "--ca-cert {shown} holds no certificate: give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)"
            );
        }
        self.certs.extend(certs);
        self.sources.push(shown.to_string());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

impl std::fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustRoots")
            .field("certificates", &self.certs.len())
            .field("from", &self.sources)
            .finish()
    }
}

/// An HTTP answer, whatever its status.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    /// Retry-After, already converted to a wait from now.
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Answer {
    /// The body as one short printable line for the report's error column.
    pub fn body_excerpt(&self) -> String {
        excerpt(&String::from_utf8_lossy(&self.body), 160)
    }
}

/// Why a request got no answer. Every kind is retried by the engine except `Tls`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TransportError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("connection closed before the answer: {0}")]
    Closed(String),
    #[error("TLS failure: {0}")]
    Tls(String),
    #[error("request failed: {0}")]
    Other(String),
    #[error("{0}")]
    Refused(&'static str),
}

impl TransportError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, TransportError::Tls(_) | TransportError::Refused(_))
    }
}

/// The client of one tenant.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    /// Dry runs: the client itself refuses to send a DELETE, whatever the caller does.
    read_only: bool,
}

impl ApiClient {
    pub fn new(endpoints: Endpoints, opts: &ClientOptions) -> anyhow::Result<ApiClient> {
        let mut defaults = HeaderMap::new();
        defaults.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(defaults)
            .timeout(opts.timeout)
            .connect_timeout(opts.connect_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            // A redirect could carry the bearer token elsewhere or downgrade to http.
            .redirect(reqwest::redirect::Policy::none())
            // HTTP/1.1 only: one connection per request in flight, so --concurrency is also the
            // number of connections, and DELETE bodies travel the well-trodden path.
            .http1_only()
            // reqwest's own retries cover only HTTP/2 and HTTP/3 refusals, and the engine
            // owns retries anyway; without them reqwest no longer clones every request
            // (headers, body) in case it retries.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .https_only(false);
        if !opts.trust.is_empty() {
            // Merged with the platform's roots: the proxy's CA is trusted as well, not instead.
            builder = builder.tls_certs_merge(opts.trust.certs.iter().cloned());
        }
        if endpoints
            .api_root()
            .host_str()
            .is_some_and(is_loopback_host)
        {
            // A proxy from the environment must not swallow loopback traffic (the simulator).
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(ApiClient {
            http,
            endpoints,
            read_only: false,
        })
    }

    /// The same client, unable to send anything that writes.
    pub fn read_only(mut self) -> ApiClient {
        self.read_only = true;
        self
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// `DELETE …/ds100/delete/otp` with the credential as a JSON body (sent with Content-Length).
    pub async fn delete_otp(
        &self,
        cred: &Credential,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        if self.read_only {
            return Err(TransportError::Refused(
                "this is a read-only (dry) run; DELETE is never sent",
            ));
        }
        let body = serde_json::to_vec(cred).map_err(|e| TransportError::Other(e.to_string()))?;
        let req = self.http.delete(self.endpoints.delete_otp().clone());
        self.send(req, body, bearer).await
    }

    /// `POST …/ds100/lookup {deviceSerialNumber}`.
    pub async fn lookup(
        &self,
        device_serial: &str,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        let body = serde_json::to_vec(&LookupRequest {
            device_serial_number: device_serial.to_string(),
        })
        .map_err(|e| TransportError::Other(e.to_string()))?;
        let req = self.http.post(self.endpoints.lookup().clone());
        self.send(req, body, bearer).await
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        body: Vec<u8>,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        let mut resp = req
            .header(header::AUTHORIZATION, bearer.header().clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            let room = MAX_BODY.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        Ok(Answer {
            status,
            retry_after,
            body: buf.freeze(),
        })
    }
}

/// Retry-After in either form (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. A date in the
/// past means "now". Anything else is ignored (the engine then uses its own backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds is "very long": the engine caps it at --max-backoff anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Sorts a reqwest error into the transport kinds, describing it by its innermost cause
/// (e.g. "Connection reset by peer") without the URL or any header.
fn classify(err: reqwest::Error) -> TransportError {
    let mut cause = err.to_string();
    let mut io_kind = None;
    let mut source = err.source();
    let mut chain = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        chain.push_str(&cause.to_ascii_lowercase());
        chain.push(' ');
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        source = s.source();
    }
    let cause = excerpt(&cause, 160);
    if err.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
        return TransportError::Timeout;
    }
    if chain.contains("certificate") || chain.contains("handshake") {
        return TransportError::Tls(cause);
    }
    if err.is_connect() {
        return TransportError::Connect(cause);
    }
    use std::io::ErrorKind::*;
    match io_kind {
        Some(ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected) => {
            TransportError::Closed(cause)
        }
        _ if chain.contains("closed") || chain.contains("incomplete") || err.is_body() => {
            TransportError::Closed(cause)
        }
        _ => TransportError::Other(cause),
    }
}

/// One printable line of at most `max` characters.
pub fn excerpt(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert!(parse_retry_after("99999999999999999999999", now).is_some());
    }

    #[test]
    fn excerpt_is_one_bounded_line() {
        assert_eq!(excerpt("a\r\nb\t c", 10), "a b c");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
