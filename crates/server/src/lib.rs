//! dynamo-server: the HTTP side of dynamo. Today it applies migrations, serves
//! health checks, and serves the images of the filesystem storage backend; the
//! request status API, enqueueing and the live page build on this (issues 5, 6).

mod config;
mod routes;

pub use config::ServerConfig;
pub use routes::{AppState, app};

use dynamo_runtime::Shutdown;
use tokio::net::TcpListener;

/// Serves on `listener` until `shutdown`.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let pool = dynamo_store::connect(&config.database).await?;
    let broker = dynamo_broker::connect(&config.broker, "dynamo-server").await?;
    let state = AppState {
        pool,
        broker: std::sync::Arc::new(broker),
    };
    tracing::info!(address = %listener.local_addr()?, images = ?config.images_dir, "dynamo-server listening");
    axum::serve(listener, app(state, &config))
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await?;
    tracing::info!("dynamo-server stopped");
    Ok(())
}
