//! The request path when no proxy is involved: HTTP/1.1 straight over hyper's connection API,
//! with the tool's own small pool of kept-alive connections (at most one per request in
//! flight, so `--concurrency` connections).
//!
//! Why not reqwest here: every request through reqwest re-parses its URL into a URI, merges
//! default headers, and passes tower layers and the generic pool's checkout machinery. Each
//! DS100 request goes to one of two fixed paths of one host, so the URIs and fixed headers are
//! built once, and a request costs a header map, a pool pop and a hyper round trip. reqwest
//! still serves tenants reached through an HTTP(S)_PROXY (`client.rs`), with the same TLS
//! configuration.
//!
//! Behaviour kept from the reqwest client: `--timeout` bounds the whole exchange (connect,
//! send, answer, body), `--connect-timeout` the TCP and TLS set-up; connections idle for
//! `POOL_IDLE_TIMEOUT` are dropped; no redirects are followed (there is no redirect code at
//! all); a request that a reused connection refused before sending any byte goes out again
//! on a new connection, so a socket the server closed while idle never costs an attempt.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::auth::Bearer;
use super::client::{Answer, POOL_IDLE_TIMEOUT, TransportError, USER_AGENT};
use super::client::{append_capped, causes, describe_io, is_html, retry_after_of};

type Sender = SendRequest<Full<Bytes>>;

/// A connection waiting for its next request.
struct Idle {
    sender: Sender,
    since: Instant,
}

/// Where the tenant is and how to reach it.
struct Origin {
    /// Host as the resolver wants it (IPv6 without brackets).
    host: String,
    port: u16,
    /// `Host` header: host as in the URL, plus the port when it is not the scheme's default.
    authority: HeaderValue,
    /// `Some` for https://.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

pub(crate) struct Direct {
    origin: Origin,
    delete_path: Uri,
    lookup_path: Uri,
    idle: Mutex<Vec<Idle>>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("host", &self.origin.host)
            .field("port", &self.origin.port)
            .field("tls", &self.origin.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Which of the two calls.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call {
    Delete,
    Lookup,
}

impl Direct {
    pub(crate) fn new(
        delete_otp: &Url,
        lookup: &Url,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> anyhow::Result<Direct> {
        let host = match delete_otp.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => anyhow::bail!("the tenant URL {delete_otp} has no host"),
        };
        let port = delete_otp
            .port_or_known_default()
            .ok_or_else(|| anyhow::anyhow!("the tenant URL {delete_otp} has no port"))?;
        let shown_host = delete_otp.host_str().unwrap_or_default();
        let authority = match delete_otp.port() {
            Some(port) => format!("{shown_host}:{port}"),
            None => shown_host.to_string(),
        };
        let tls = match (delete_otp.scheme(), tls) {
            ("https", Some(config)) => {
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| anyhow::anyhow!("'{host}' is not a TLS server name: {e}"))?;
                Some((TlsConnector::from(config), name))
            }
            ("https", None) => anyhow::bail!("https:// needs a TLS configuration"),
            _ => None,
        };
        let path = |url: &Url| -> anyhow::Result<Uri> {
            url.path()
                .parse()
                .map_err(|e| anyhow::anyhow!("bad request path {}: {e}", url.path()))
        };
        Ok(Direct {
            origin: Origin {
                host,
                port,
                authority: HeaderValue::from_str(&authority)?,
                tls,
            },
            delete_path: path(delete_otp)?,
            lookup_path: path(lookup)?,
            idle: Mutex::new(Vec::new()),
            timeout,
            connect_timeout,
        })
    }

    /// One request and its whole answer, within `--timeout`.
    pub(crate) async fn send(
        &self,
        call: Call,
        body: Vec<u8>,
        bearer: &Bearer,
    ) -> Result<Answer, TransportError> {
        let (method, path) = match call {
            Call::Delete => (Method::DELETE, &self.delete_path),
            Call::Lookup => (Method::POST, &self.lookup_path),
        };
        let req = self.request(method, path.clone(), Bytes::from(body), bearer);
        tokio::time::timeout(self.timeout, self.exchange(req))
            .await
            .unwrap_or(Err(TransportError::Timeout))
    }

    fn request(
        &self,
        method: Method,
        path: Uri,
        body: Bytes,
        bearer: &Bearer,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = path;
        let headers: &mut HeaderMap = req.headers_mut();
        headers.reserve(6);
        headers.insert(header::HOST, self.origin.authority.clone());
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // Marked sensitive where it was made (`Bearer::new`).
        headers.insert(header::AUTHORIZATION, bearer.header().clone());
        req
    }

    async fn exchange(&self, mut req: Request<Full<Bytes>>) -> Result<Answer, TransportError> {
        let resp = loop {
            let (mut sender, reused) = match self.checkout().await {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            tracing::trace!(method = %req.method(), path = %req.uri(), reused, "sending");
            match sender.try_send_request(req).await {
                Ok(resp) => break (resp, sender),
                Err(mut e) => match e.take_message() {
                    // Not a byte was sent: a reused connection that was closing. Again, on
                    // another one (a new connection never comes back this way twice in a row,
                    // and `--timeout` bounds the loop in any case).
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(classify(e.into_error())),
                },
            }
        };
        let (resp, sender) = resp;
        let status = resp.status().as_u16();
        tracing::trace!(status, "answered");
        let retry_after = retry_after_of(resp.headers());
        let html = is_html(resp.headers());
        let mut body = resp.into_body();
        let mut buf = BytesMut::new();
        let mut complete = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(classify)?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            if !append_capped(&mut buf, &chunk) && !body.is_end_stream() {
                // Cut: the rest is never read, so the connection cannot serve another request.
                complete = false;
                break;
            }
        }
        if complete {
            self.checkin(sender);
        }
        Ok(Answer {
            status,
            retry_after,
            html,
            body: buf.freeze(),
        })
    }

    /// The most recently used open connection, if any has been idle for less than the pool
    /// timeout; older ones are dropped.
    async fn checkout(&self) -> Option<Sender> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            if idle.since.elapsed() >= POOL_IDLE_TIMEOUT || idle.sender.is_closed() {
                continue;
            }
            let mut sender = idle.sender;
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn checkin(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Connections idle past the timeout are closed here too, not only when a checkout
        // happens to reach them (checkouts take the most recently used first).
        idle.retain(|i| i.since.elapsed() < POOL_IDLE_TIMEOUT);
        idle.push(Idle {
            sender,
            since: Instant::now(),
        });
    }

    /// A new connection (TCP, then TLS for https://), within `--connect-timeout`.
    async fn connect(&self) -> Result<Sender, TransportError> {
        tokio::time::timeout(self.connect_timeout, self.open())
            .await
            .unwrap_or(Err(TransportError::Timeout))
    }

    async fn open(&self) -> Result<Sender, TransportError> {
        let origin = &self.origin;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| TransportError::Connect(describe_io(&e)))?
            .collect();
        // Addresses in the resolver's order, each with an equal share of --connect-timeout
        // (as hyper-util does), so an unreachable first address (often IPv6) leaves time for
        // the next.
        let share = self.connect_timeout / u32::try_from(addrs.len().max(1)).unwrap_or(u32::MAX);
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match tokio::time::timeout(share, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    tcp = Some(stream);
                    break;
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(std::io::ErrorKind::TimedOut.into()),
            }
        }
        let Some(tcp) = tcp else {
            let why = last.map_or_else(
                || format!("{} resolves to no address", origin.host),
                |e| describe_io(&e),
            );
            return Err(TransportError::Connect(why));
        };
        tcp.set_nodelay(true)
            .map_err(|e| TransportError::Connect(describe_io(&e)))?;
        tracing::trace!(peer = ?tcp.peer_addr().ok(), tls = origin.tls.is_some(), "connected");
        match &origin.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(tls_error)?;
                handshake(tls).await
            }
        }
    }
}

/// HTTP/1.1 over `io`; the connection itself runs as its own task until either side closes.
async fn handshake<T>(io: T) -> Result<Sender, TransportError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await.map_err(classify)?;
    tokio::spawn(async move {
        // Its errors reach the request that was in flight; an idle connection just ends.
        let _ = conn.await;
    });
    Ok(sender)
}

/// A failed TLS set-up: certificate and protocol problems are `Tls` (never retried); the
/// network failing during the handshake is a connection failure like any other.
fn tls_error(e: std::io::Error) -> TransportError {
    let rustls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls {
        Some(err) => TransportError::Tls(super::client::excerpt(&err.to_string(), 160)),
        None => TransportError::Connect(describe_io(&e)),
    }
}

/// Sorts a hyper error into the transport kinds by its innermost cause.
fn classify(err: hyper::Error) -> TransportError {
    let (cause, _, io_kind) = causes(&err);
    if io_kind == Some(std::io::ErrorKind::TimedOut) || err.is_timeout() {
        return TransportError::Timeout;
    }
    if err.is_incomplete_message() || err.is_canceled() || err.is_closed() || io_kind.is_some() {
        return TransportError::Closed(cause);
    }
    if err.is_parse() || err.is_parse_status() {
        return TransportError::Other(format!("malformed HTTP answer: {cause}"));
    }
    TransportError::Other(cause)
}
