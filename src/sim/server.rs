//! The simulator's own accept loop: per-connection control that a framework's `serve` hides
//! (TCP resets and hang-ups on demand, idle keep-alive timeout, bounded graceful shutdown).

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::handler::{self, State};
use super::stats::bump;

/// How long shutdown waits for answers in progress (a `slow` fault may be sleeping) before
/// dropping their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Accepts until `shutdown`, then lets each connection finish its current answer.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    idle_timeout: Option<Duration>,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    // hyper starts the header-read timer as soon as a kept-alive connection goes idle, so it
    // doubles as the idle timeout; without it hyper's own default applies.
    if let Some(idle) = idle_timeout {
        builder.header_read_timeout(idle);
    }
    let builder = Arc::new(builder);

    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    bump(&state.counters.connections);
                    connections.spawn(serve_connection(
                        stream,
                        Arc::clone(&state),
                        Arc::clone(&builder),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("simulator: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set does not grow with connection churn.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.shutdown().await;
    }
}

async fn serve_connection(
    stream: TcpStream,
    state: Arc<State>,
    builder: Arc<http1::Builder>,
    shutdown: CancellationToken,
) {
    // Small answers must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(ConnKill::default());
    let io = TokioIo::new(ResetOnDrop {
        stream,
        kill: Arc::clone(&kill),
    });
    let service_kill = Arc::clone(&kill);
    let service =
        service_fn(move |req| handler::handle(Arc::clone(&state), Arc::clone(&service_kill), req));
    let mut conn = pin!(builder.serve_connection(io, service));
    // Connection errors (client gone, idle timeout, bad request head) end the connection;
    // there is nobody to tell.
    tokio::select! {
        _ = kill.dropped.cancelled() => return,
        _ = conn.as_mut() => return,
        _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = kill.dropped.cancelled() => {}
        _ = conn => {}
    }
}

/// How a fault ends a connection without answering: the handler calls `reset` (TCP RST) or
/// `hang_up` (FIN), and the connection task drops the socket.
#[derive(Default)]
pub(crate) struct ConnKill {
    dropped: CancellationToken,
    with_reset: AtomicBool,
}

impl ConnKill {
    /// Drop the socket with a TCP reset.
    pub(crate) fn reset(&self) {
        self.with_reset.store(true, Ordering::SeqCst);
        self.dropped.cancel();
    }

    /// Close the socket with an ordinary FIN, as a server closing an idle keep-alive
    /// connection does.
    pub(crate) fn hang_up(&self) {
        self.dropped.cancel();
    }
}

/// The connection's socket, which closes with a TCP reset instead of a FIN when a fault asked
/// for one: SO_LINGER 0 makes close() send RST.
struct ResetOnDrop {
    stream: TcpStream,
    kill: Arc<ConnKill>,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.kill.with_reset.load(Ordering::SeqCst) {
            let _ = SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
