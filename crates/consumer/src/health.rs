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

/// Ready when the database and the broker answer and no service the
/// pipeline needs is held; otherwise 503 with what is wrong.
async fn readyz(State(state): State<HealthState>) -> Response {
    let store = dynamo_store::Store::new(state.pool.clone());
    let holds = store.holds().await;
    let database = holds.is_ok();
    let broker = state.broker.is_connected();
    let held: Vec<serde_json::Value> = holds
        .unwrap_or_default()
        .into_iter()
        .map(|hold| json!({"service": hold.service, "reason": hold.reason, "since": hold.held_since}))
        .collect();
    let status = if database && broker && held.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": database, "broker": broker, "held": held})),
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
