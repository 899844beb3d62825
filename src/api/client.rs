//! The DS100 HTTP client: one request per call, no retries (the engine owns those). Answers
//! come back as data; only transport failures are errors, described without secrets.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::auth::Bearer;
use super::direct::{Call, Direct};
use super::endpoints::{Endpoints, is_loopback_host};
use super::types::{DeleteRequest, LookupRequest};
use crate::credential::Credential;

/// Pooled connections idle longer than this are dropped: below the 5 s keep-alive of Apache
/// and Node.js servers, so the client never reuses a socket the server is about to close.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Bodies larger than this are cut (the API answers a few KiB at most).
pub(crate) const MAX_BODY: usize = 1 << 20;

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
    certs: Vec<CertificateDer<'static>>,
    sources: Vec<String>,
}

impl TrustRoots {
    /// Reads every certificate of a PEM file (a bundle is fine).
    pub fn add_pem_file(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --ca-cert {shown}: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
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

    /// The TLS settings of every connection: TLS 1.2 and 1.3, certificates checked by the
    /// platform's verifier (its trust store, revocation where the platform does it) with these
    /// extra roots merged in, ALPN offering HTTP/1.1 only.
    fn tls_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = if self.certs.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.certs.iter().cloned(),
                provider.clone(),
            )
        }
        .map_err(|e| anyhow::anyhow!("cannot set up TLS certificate verification: {e}"))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
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
    /// The answer says it is an HTML page (`Content-Type: text/html`): a sign-in page or
    /// portal in front of the API, never the API itself.
    pub html: bool,
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
    transport: Transport,
    endpoints: Endpoints,
    /// Dry runs: the client itself refuses to send a DELETE, whatever the caller does.
    read_only: bool,
}

/// How requests travel: straight to the tenant (`direct.rs`), or through reqwest when the
/// environment names a proxy for the tenant (HTTPS_PROXY, ALL_PROXY, … and NO_PROXY, read
/// exactly as reqwest reads them).
#[derive(Clone, Debug)]
enum Transport {
    Direct(Arc<Direct>),
    Proxied(reqwest::Client),
}

impl ApiClient {
    pub fn new(endpoints: Endpoints, opts: &ClientOptions) -> anyhow::Result<ApiClient> {
        let loopback = endpoints
            .api_root()
            .host_str()
            .is_some_and(is_loopback_host);
        let proxied = !loopback && proxy_for(endpoints.delete_otp()).is_some();
        let transport = if proxied {
            Transport::Proxied(proxied_client(opts, opts.trust.tls_config()?)?)
        } else {
            // Plain http:// (loopback only) needs no TLS set-up, nor the system's roots.
            let tls = match endpoints.api_root().scheme() {
                "https" => Some(opts.trust.tls_config()?),
                _ => None,
            };
            Transport::Direct(Arc::new(Direct::new(
                endpoints.delete_otp(),
                endpoints.lookup(),
                tls,
                opts.timeout,
                opts.connect_timeout,
            )?))
        };
        Ok(ApiClient {
            transport,
            endpoints,
            read_only: false,
        })
    }

    /// Whether requests go through a proxy from the environment (said in the plan).
    pub fn proxied(&self) -> bool {
        matches!(self.transport, Transport::Proxied(_))
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
        let body = serde_json::to_vec(&DeleteRequest::from(cred))
            .map_err(|e| TransportError::Other(e.to_string()))?;
        self.send(Call::Delete, body, bearer).await
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
        self.send(Call::Lookup, body, bearer).await
    }

    async fn send(
        &self,
        call: Call,
        body: Vec<u8>,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        match &self.transport {
            Transport::Direct(direct) => direct.send(call, body, bearer).await,
            Transport::Proxied(http) => {
                let req = match call {
                    Call::Delete => http.delete(self.endpoints.delete_otp().clone()),
                    Call::Lookup => http.post(self.endpoints.lookup().clone()),
                };
                send_proxied(req, body, bearer).await
            }
        }
    }
}

/// The proxy the environment names for `url`, if any (HTTPS_PROXY, ALL_PROXY, NO_PROXY, …;
/// the matcher reqwest itself uses).
fn proxy_for(url: &Url) -> Option<hyper_util::client::proxy::matcher::Intercept> {
    let uri: hyper::Uri = url.as_str().parse().ok()?;
    hyper_util::client::proxy::matcher::Matcher::from_system().intercept(&uri)
}

/// reqwest, for tenants behind a proxy: it speaks CONNECT and proxy authentication. The same
/// TLS settings, timeouts and idle timeout as the direct path; no redirects.
fn proxied_client(
    opts: &ClientOptions,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<reqwest::Client> {
    let mut defaults = HeaderMap::new();
    defaults.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .default_headers(defaults)
        .timeout(opts.timeout)
        .connect_timeout(opts.connect_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        // A redirect could carry the bearer token elsewhere or downgrade to http.
        .redirect(reqwest::redirect::Policy::none())
        // HTTP/1.1 only: one connection per request in flight, so --concurrency is also the
        // number of connections.
        .http1_only()
        // The engine owns retries.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))
}

async fn send_proxied(
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
    let retry_after = retry_after_of(resp.headers());
    let html = is_html(resp.headers());
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if !append_capped(&mut buf, &chunk) {
            break;
        }
    }
    Ok(Answer {
        status,
        retry_after,
        html,
        body: buf.freeze(),
    })
}

/// Whether the answer's Content-Type is HTML.
pub(crate) fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// Appends `chunk` to an answer body cut at `MAX_BODY`; false once the body is full.
pub(crate) fn append_capped(buf: &mut BytesMut, chunk: &[u8]) -> bool {
    let room = MAX_BODY.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    room > chunk.len()
}

/// The answer's Retry-After as a wait from now.
pub(crate) fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
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

/// The innermost cause of an error as one line, its chain in lower case (to search), and the
/// kind of the innermost I/O error in it. Error texts of hyper and reqwest never hold headers;
/// reqwest's own top-level text (which names the URL) is replaced by its cause.
pub(crate) fn causes(err: &dyn std::error::Error) -> (String, String, Option<std::io::ErrorKind>) {
    let mut cause = err.to_string();
    let mut io_kind = None;
    let mut chain = String::new();
    let mut source = err.source();
    while let Some(s) = source {
        cause = s.to_string();
        chain.push_str(&cause.to_ascii_lowercase());
        chain.push(' ');
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        source = s.source();
    }
    (excerpt(&cause, 160), chain, io_kind)
}

/// An I/O error as one short line.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    excerpt(&e.to_string(), 160)
}

/// Sorts a reqwest error into the transport kinds, describing it by its innermost cause
/// (e.g. "Connection reset by peer") without the URL or any header.
fn classify(err: reqwest::Error) -> TransportError {
    let (cause, chain, io_kind) = causes(&err);
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
