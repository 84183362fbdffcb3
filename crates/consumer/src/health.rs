//! The consumer's small HTTP port for operators: `/healthz` (the process runs),
//! `/readyz` (database and broker reachable) and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dynamo_broker::Broker;
use dynamo_pipeline::Metrics;
use dynamo_runtime::Shutdown;
use serde_json::json;
use sqlx::PgPool;
use std::fmt::Write;
use std::sync::Arc;

#[derive(Clone)]
struct HealthState {
    pool: PgPool,
    broker: Broker,
    metrics: Arc<Metrics>,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    pool: PgPool,
    broker: Broker,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HealthState {
            pool,
            broker,
            metrics,
        });
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
    {
        tracing::error!(%error, "the health server stopped");
    }
}

async fn readyz(State(state): State<HealthState>) -> Response {
    let database = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .is_ok();
    let broker = state.broker.is_connected();
    let status = if database && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": database, "broker": broker})),
    )
        .into_response()
}

async fn metrics_text(State(state): State<HealthState>) -> Response {
    let mut out = state.metrics.render();
    if let Some(depth) = queue_depth(&state).await {
        let _ = writeln!(
            out,
            "# HELP dynamo_queue_depth Messages waiting in the request queue."
        );
        let _ = writeln!(out, "# TYPE dynamo_queue_depth gauge");
        let _ = writeln!(out, "dynamo_queue_depth {depth}");
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

async fn queue_depth(state: &HealthState) -> Option<u32> {
    state.broker.requests_queue_depth().await
}
