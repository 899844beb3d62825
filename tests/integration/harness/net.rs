//! Loopback servers standing in for what sits between the tool and the tenant: a gateway or
//! portal answering its own pages, a TLS-terminating proxy, an HTTP CONNECT proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fixture;

/// A server on 127.0.0.1 (port 0) in its own thread; stops accepting when dropped.
pub struct Loopback {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves `handle` on a task for every accepted connection.
pub fn serve_loopback<F, Fut>(handle: F) -> Loopback
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                tokio::select! {
                    // The sender dropped: the test is done with this server.
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        if let Ok((tcp, _)) = accepted {
                            tokio::spawn(handle(tcp));
                        }
                    }
                }
            }
        });
    });
    Loopback {
        addr: addr_rx.recv().unwrap(),
        _stop: stop_tx,
    }
}

// ---- a gateway answering whatever the test says -------------------------------------------

/// One answer of the gateway.
pub struct Reply {
    status: u16,
    content_type: Option<&'static str>,
    body: String,
}

pub fn reply(status: u16, content_type: Option<&'static str>, body: &str) -> Reply {
    Reply {
        status,
        content_type,
        body: body.to_string(),
    }
}

/// A request the gateway received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// `deviceSerialNumber` of the JSON body, if any.
    pub device: String,
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// An HTTP/1.1 server answering every request with `handler`, each connection closed after
/// its answer.
pub struct Gateway {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: Loopback,
}

impl Gateway {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Gateway {
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let server = serve_loopback(move |conn| {
            let (handler, log) = (handler.clone(), log.clone());
            async move {
                let answer = tokio::time::timeout(Duration::from_secs(10), async {
                    serve_one(conn, &*handler, &log).await
                });
                let _ = answer.await;
            }
        });
        Gateway {
            url: format!("http://{}", server.addr),
            seen,
            _server: server,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request (headers, then Content-Length bytes of body), answers, closes.
async fn serve_one(mut conn: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while raw.len() < head_end + length {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&raw[head_end..head_end + length]).to_string();
    let mut words = head.split_whitespace();
    let request = Seen {
        method: words.next().unwrap_or_default().to_string(),
        path: words.next().unwrap_or_default().to_string(),
        device: serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["deviceSerialNumber"].as_str().map(str::to_string))
            .unwrap_or_default(),
    };
    seen.lock().unwrap().push(request.clone());
    let r = handler(&request);
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    if let Some(ct) = r.content_type {
        out.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&r.body);
    let _ = conn.write_all(out.as_bytes()).await;
    let _ = conn.shutdown().await;
}

// ---- TLS and CONNECT proxies ----------------------------------------------------------------

/// A TLS server with the fixture certificate `cert` (and its key) that forwards the decrypted
/// bytes to `backend` (the plain-HTTP simulator).
pub fn tls_terminator(backend: SocketAddr, cert: &str, key: &str) -> Loopback {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::ServerConfig;

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture(cert))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture(key)).unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    serve_loopback(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            // A client that does not trust the certificate aborts the handshake here.
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut upstream) = TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
        }
    })
}

/// An HTTP proxy that accepts CONNECT for any target, records the request line, and tunnels
/// to `upstream` whatever was asked for (so a made-up tenant name reaches a local server).
pub fn connect_proxy(upstream: SocketAddr) -> (Loopback, Arc<Mutex<Vec<String>>>) {
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    let server = serve_loopback(move |mut client| {
        let seen = seen.clone();
        async move {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                if client.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let request_line = head.lines().next().unwrap_or_default().to_string();
            seen.lock().unwrap().push(request_line.clone());
            if !request_line.starts_with("CONNECT ") {
                let _ = client
                    .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            }
            let Ok(mut upstream) = TcpStream::connect(upstream).await else {
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    });
    (server, targets)
}
