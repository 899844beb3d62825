//! `sim`: serve the simulator until Ctrl-C, printing its URL alone on the first line of stdout
//! so scripts can read it.

use std::future::Future;
use std::pin::Pin;

use ds100_sim::{SimAuth, SimConfig};

use crate::console::outln;
use crate::exit_codes::ExitCode;

pub async fn serve(cfg: SimConfig) -> anyhow::Result<ExitCode> {
    let n_seeded = cfg.credentials.len() as u64 + cfg.generate;
    let oauth = matches!(cfg.auth, SimAuth::OAuth(_));
    let stop = shutdown_signal();
    let handle = ds100_sim::start(cfg).await?;
    // The first line is the contract with scripts and tests: the URL alone, so that
    // `url=$(… | head -1)` needs no parsing. Whoever reads it may close the pipe right after
    // (`head -1` does): a line that cannot be written is lost, and the simulator serves on.
    outln!("{}", handle.url());
    outln!(
        "ds100-offboard sim: {n_seeded} credentials in the store; GET {0}/__sim/store and \
         {0}/__sim/stats read it back; Ctrl-C stops",
        handle.url()
    );
    if oauth {
        outln!(
            "OAuth issuer: {0}/oauth (--oauth-issuer {0}/oauth; tokens from POST {0}{1})",
            handle.url(),
            ds100_sim::TOKEN_PATH
        );
    }
    stop.await;
    let stats = handle.stats();
    handle.shutdown().await;
    outln!("{}", serde_json::to_string(&stats).unwrap_or_default());
    Ok(ExitCode::Success)
}

/// Ctrl-C or SIGTERM, listened for from the moment this is called, not from the first poll:
/// a script that reads the URL and stops the simulator at once gets its stats and exit 0, not
/// the default action of a signal nobody listened for yet.
fn shutdown_signal() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            return Box::pin(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
        }
    }
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
