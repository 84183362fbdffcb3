//! The accept loop: hyper's HTTP/1 server with the limits `axum::serve`
//! cannot set. A connection past `MAX_CONNECTIONS` is closed at once, and a
//! connection that has not sent a whole request head within
//! `HEADER_READ_TIMEOUT` (a half-sent request, or an idle keep-alive one) is
//! closed by hyper's header-read timer; the rest of a request's time is
//! bounded by the router's `REQUEST_TIMEOUT` (see [`crate::app`]).

use crate::config::Limits;
use axum::Router;
use axum::extract::ConnectInfo;
use dynamo_runtime::Shutdown;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long open connections (event streams, say) may take to finish after
/// shutdown is asked for; then they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: Shutdown) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.requested() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, usually: let some close.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(%peer, limit = limits.max_connections, "too many connections (MAX_CONNECTIONS); closing a new one");
            drop(tcp);
            continue;
        };
        // Small JSON answers and SSE events should leave at once, not wait
        // for Nagle's algorithm to batch them.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let app = app.clone();
        // The peer address: failed authentications are limited per client.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::info!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them");
        }
    }
}
