//! The shutdown signal: Ctrl-C, SIGTERM, or SIGHUP (the terminal closed).

/// Completes when the process is asked to stop. Each of these stops ccare cleanly, the private
/// PostgreSQL cluster included; only SIGKILL leaves the cluster running (the next start joins it).
pub async fn signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait forever rather than stopping at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hup)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("stopping");
}
