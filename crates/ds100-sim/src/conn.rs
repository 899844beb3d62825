//! How a fault ends a connection without answering: the request handler asks, the
//! connection task drops the socket, with a TCP reset or a plain close.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// One connection's kill switch: the handler calls `reset` (TCP RST) or `hang_up` (FIN), and
/// the connection task, waiting on `dropped`, drops the socket.
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

    /// Completes once `reset` or `hang_up` was called.
    pub(crate) async fn dropped(&self) {
        self.dropped.cancelled().await;
    }
}

/// The connection's socket, which closes with a TCP reset instead of a FIN when a fault asked
/// for one: SO_LINGER 0 makes close() send RST.
pub(crate) struct ResetOnDrop {
    stream: TcpStream,
    kill: Arc<ConnKill>,
}

impl ResetOnDrop {
    pub(crate) fn new(stream: TcpStream, kill: Arc<ConnKill>) -> ResetOnDrop {
        ResetOnDrop { stream, kill }
    }
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
