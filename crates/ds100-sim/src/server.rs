//! The simulator's own accept loop: per-connection control that a framework's `serve` hides
//! (TCP resets and hang-ups on demand, idle keep-alive timeout, bounded graceful shutdown).

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::conn::{ConnKill, ResetOnDrop};
use crate::routes;
use crate::state::State;
use crate::stats::bump;

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
    let io = TokioIo::new(ResetOnDrop::new(stream, Arc::clone(&kill)));
    let service_kill = Arc::clone(&kill);
    let service =
        service_fn(move |req| routes::handle(Arc::clone(&state), Arc::clone(&service_kill), req));
    let mut conn = pin!(builder.serve_connection(io, service));
    // Connection errors (client gone, idle timeout, bad request head) end the connection;
    // there is nobody to tell.
    tokio::select! {
        _ = kill.dropped() => return,
        _ = conn.as_mut() => return,
        _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = kill.dropped() => {}
        _ = conn => {}
    }
}
