//! The DS100 HTTP client: one request per call through one `reqwest::Client`, proxied or not,
//! and no retries (the engine owns those). Answers come back as data; only transport failures
//! are errors, described without secrets.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Url};

use super::bearer::Bearer;
use super::endpoints::{Endpoints, is_loopback_host};
use super::exchange::{Answer, MAX_BODY, TransportError, excerpt, parse_retry_after};
use super::patch::{PatchRequest, TokenState};
use super::tls::TrustRoots;
use super::types::{DeleteRequest, LookupRequest, UserLookupRequest};
use crate::credential::Credential;

/// Pooled connections idle longer than this are dropped: below the 5 s keep-alive of Apache
/// and Node.js servers, so the client never reuses a socket the server is about to close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

pub(crate) const USER_AGENT: &str = concat!("ds100-offboard/", env!("CARGO_PKG_VERSION"));

/// Transport settings of the client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra trust roots (`--ca-cert`), on top of the platform's.
    pub trust: TrustRoots,
}

/// The client of one tenant.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    delete_otp: Url,
    lookup: Url,
    disable_otp: Url,
    enable_otp: Url,
    users_lookup: Url,
    /// Accept, Content-Type and User-Agent, built once; each request adds its bearer token and
    /// Content-Length.
    fixed_headers: HeaderMap,
    /// Dry runs: the client itself refuses to send a DELETE or PATCH, whatever the caller does.
    read_only: bool,
}

impl ApiClient {
    /// A client for the tenant at `endpoints`. Proxies come from the environment
    /// (HTTPS_PROXY, ALL_PROXY, NO_PROXY, …, read as reqwest reads them); a loopback tenant
    /// (the simulator) is never proxied.
    pub fn new(endpoints: Endpoints, opts: &ClientOptions) -> anyhow::Result<ApiClient> {
        let http = http_client(endpoints.api_root(), opts)?;
        let mut fixed_headers = HeaderMap::with_capacity(5);
        fixed_headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        fixed_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        fixed_headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        Ok(ApiClient {
            http,
            delete_otp: endpoints.delete_otp().clone(),
            lookup: endpoints.lookup().clone(),
            disable_otp: endpoints.patch_otp(TokenState::Disabled).clone(),
            enable_otp: endpoints.patch_otp(TokenState::Enabled).clone(),
            users_lookup: endpoints.users_lookup().clone(),
            fixed_headers,
            read_only: false,
        })
    }

    /// The same client, unable to send anything that writes.
    pub fn read_only(mut self) -> ApiClient {
        self.read_only = true;
        self
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
        self.send(Method::DELETE, &self.delete_otp, body, bearer)
            .await
    }

    /// `PATCH …/ds100/disable/otp` or `…/enable/otp` with `{deviceSerialNumber, userId}`.
    pub(crate) async fn patch_otp(
        &self,
        cred: &Credential,
        to: TokenState,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        if self.read_only {
            return Err(TransportError::Refused(
                "this is a read-only (dry) run; PATCH is never sent",
            ));
        }
        let body = serde_json::to_vec(&PatchRequest::from(cred))
            .map_err(|e| TransportError::Other(e.to_string()))?;
        let url = match to {
            TokenState::Disabled => &self.disable_otp,
            TokenState::Enabled => &self.enable_otp,
        };
        self.send(Method::PATCH, url, body, bearer).await
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
        self.send(Method::POST, &self.lookup, body, bearer).await
    }

    /// `POST …/users/lookup {email}`: read-only, so a dry run sends it too.
    pub async fn lookup_user(
        &self,
        email: &str,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        let body = serde_json::to_vec(&UserLookupRequest {
            email: email.to_string(),
        })
        .map_err(|e| TransportError::Other(e.to_string()))?;
        self.send(Method::POST, &self.users_lookup, body, bearer)
            .await
    }

    /// One request and its whole answer (body cut at `MAX_BODY`), within `--timeout`.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Vec<u8>,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        let mut req = reqwest::Request::new(method, url.clone());
        let headers = req.headers_mut();
        *headers = self.fixed_headers.clone();
        // Marked sensitive where it was made (`Bearer::new`).
        headers.insert(header::AUTHORIZATION, bearer.header().clone());
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        *req.body_mut() = Some(body.into());
        let mut resp = self.http.execute(req).await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let html = is_html(resp.headers());
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
            if !append_capped(&mut buf, &chunk) {
                break;
            }
        }
        Ok(Answer {
            status,
            retry_after,
            html,
            // Before anything quotes it: an answer echoing the token must not carry it on.
            body: Bytes::from(bearer.redact(&buf)),
        })
    }
}

/// The one HTTP client configuration of the tool, for the tenant's API and for an OAuth token
/// endpoint alike: timeouts, `--ca-cert` trust, no redirects (one could carry a bearer token
/// or a client assertion elsewhere, or downgrade to http), no retries of its own, HTTP/1.1.
/// Proxies come from the environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY, …, read as reqwest
/// reads them); a loopback `url` (the simulator) is never proxied.
pub(crate) fn http_client(url: &Url, opts: &ClientOptions) -> anyhow::Result<reqwest::Client> {
    let loopback = url.host_str().is_some_and(is_loopback_host);
    // Plain http:// (loopback only) makes no TLS connection: it needs no trust store, and
    // gets a configuration that trusts nothing.
    let tls = match url.scheme() {
        "https" => opts.trust.client_config()?,
        _ => trusting_nothing()?,
    };
    let mut builder = reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.connect_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        // HTTP/1.1 only: one connection per request in flight, so --concurrency is also the
        // number of connections.
        .http1_only()
        // The engine owns retries (a reused connection the server closed while idle is
        // still replayed by the pool: nothing of that request was sent).
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .tls_backend_preconfigured(tls);
    if loopback {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))
}

/// A TLS configuration that verifies no certificate, for a client that only speaks http://.
fn trusting_nothing() -> anyhow::Result<rustls::ClientConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
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

/// Sorts a reqwest error into the transport kinds, described by its innermost cause (e.g.
/// "Connection reset by peer"): reqwest's own top-level text names the URL, and no error text
/// of reqwest, hyper or rustls holds a header.
pub(crate) fn transport_error(err: reqwest::Error) -> TransportError {
    let mut cause = err.to_string();
    let mut chain = String::new();
    let mut io_kind = None;
    let mut tls = None;
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        cause = s.to_string();
        chain.push_str(&cause.to_ascii_lowercase());
        chain.push(' ');
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        if let Some(e) = s.downcast_ref::<rustls::Error>() {
            tls = Some(e.to_string());
        }
        source = s.source();
    }
    let cause = excerpt(&cause, 160);
    if err.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
        return TransportError::Timeout;
    }
    if let Some(tls) = tls {
        return TransportError::Tls(excerpt(&tls, 160));
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
        _ if chain.contains("parse") || chain.contains("invalid http") => {
            TransportError::Other(format!("malformed HTTP answer: {cause}"))
        }
        _ => TransportError::Other(cause),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::api::auth::TokenSource;

    /// A server that reads one request head and body, answers `answer` and hands the request
    /// back as text.
    async fn one_exchange(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
            }
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        });
        (url, server)
    }

    fn client(url: &str) -> ApiClient {
        let opts = ClientOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            trust: TrustRoots::default(),
        };
        ApiClient::new(Endpoints::parse(url).unwrap(), &opts).unwrap()
    }

    #[tokio::test]
    async fn a_delete_carries_its_body_with_one_content_length_and_the_fixed_headers() {
        let (url, server) =
            one_exchange("HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\ncontent-type: text/html\r\ncontent-length: 2\r\n\r\nhi").await;
        let tokens = TokenSource::fixed(&SecretString::from("t0ken".to_string())).unwrap();
        let bearer = tokens.current().await.unwrap();
        let cred = Credential::new("1", "2", "3");
        let answer = client(&url).delete_otp(&cred, &bearer).await.unwrap();
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after, Some(Duration::from_secs(7)));
        assert!(answer.html);
        assert_eq!(&answer.body[..], b"hi");
        let request = server.await.unwrap();
        let lower = request.to_ascii_lowercase();
        assert!(
            request.starts_with("DELETE /AdminInterface/restapi/v1/ds100/delete/otp HTTP/1.1\r\n"),
            "{request}"
        );
        let body = r#"{"tokenSerialNumber":"1","deviceSerialNumber":"2","userId":"3"}"#;
        assert_eq!(lower.matches("content-length:").count(), 1, "{request}");
        assert!(
            lower.contains(&format!("content-length: {}\r\n", body.len())),
            "{request}"
        );
        assert!(request.ends_with(body), "{request}");
        for header in [
            "accept: application/json",
            "content-type: application/json",
            "authorization: bearer t0ken",
            "user-agent: ds100-offboard/",
        ] {
            assert!(lower.contains(header), "{header}: {request}");
        }
    }

    #[tokio::test]
    async fn a_user_lookup_posts_the_address_and_a_read_only_client_sends_it() {
        let (url, server) =
            one_exchange("HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}").await;
        let tokens = TokenSource::fixed(&SecretString::from("t0ken".to_string())).unwrap();
        let bearer = tokens.current().await.unwrap();
        let answer = client(&url)
            .read_only()
            .lookup_user("Ann.Leaver@acme.com", &bearer)
            .await
            .unwrap();
        assert_eq!((answer.status, &answer.body[..]), (404, &b"{}"[..]));
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /AdminInterface/restapi/v1/users/lookup HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.ends_with(r#"{"email":"Ann.Leaver@acme.com"}"#),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_read_only_client_never_sends_a_delete() {
        let tokens = TokenSource::fixed(&SecretString::from("t0ken".to_string())).unwrap();
        let bearer = tokens.current().await.unwrap();
        let cred = Credential::new("1", "2", "3");
        // Port 9 (discard) on loopback: nothing listens, and nothing is tried.
        let read_only = client("http://127.0.0.1:9").read_only();
        let err = read_only.delete_otp(&cred, &bearer).await.unwrap_err();
        assert!(matches!(err, TransportError::Refused(_)), "{err:?}");
        for to in [TokenState::Disabled, TokenState::Enabled] {
            let err = read_only.patch_otp(&cred, to, &bearer).await.unwrap_err();
            assert!(matches!(err, TransportError::Refused(_)), "{err:?}");
        }
    }

    #[test]
    fn bodies_are_cut_at_the_cap() {
        let mut buf = BytesMut::new();
        assert!(append_capped(&mut buf, &vec![b'a'; MAX_BODY - 1]));
        assert!(!append_capped(&mut buf, b"bc"));
        assert_eq!(buf.len(), MAX_BODY);
        assert!(!append_capped(&mut buf, b"d"));
        assert_eq!(buf.len(), MAX_BODY);
    }

    #[test]
    fn only_text_html_is_html() {
        let mut h = HeaderMap::new();
        assert!(!is_html(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(" Text/HTML; charset=utf-8"),
        );
        assert!(is_html(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_html(&h));
    }
}
