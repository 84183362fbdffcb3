//! The consumer's small HTTP port for operators: `/healthz` (the process runs),
//! `/readyz` (database and broker reachable) and `/metrics` (Prometheus text;
//! the series are in `dynamo_pipeline::metrics`).

use crate::pause::HoldWatch;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE as CONTENT_TYPE_HEADER;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dynamo_broker::Broker;
use dynamo_pipeline::Metrics;
use dynamo_pipeline::metrics::{CONTENT_TYPE, ModelShutdown, Readings};
use dynamo_runtime::Shutdown;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
struct HealthState {
    pool: PgPool,
    broker: Broker,
    metrics: Arc<Metrics>,
    holds: HoldWatch,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    pool: PgPool,
    broker: Broker,
    metrics: Arc<Metrics>,
    holds: HoldWatch,
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
            holds,
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
        // `consuming`: false while the fleet holds (requests stay in the queue).
        Json(json!({"database": database, "broker": broker, "held": held,
                    "consuming": state.holds.paused().is_none()})),
    )
        .into_response()
}

async fn metrics_text(State(state): State<HealthState>) -> Response {
    let store = dynamo_store::Store::new(state.pool.clone());
    let (queue_depth, models, debit_age) = tokio::join!(
        state.broker.requests_queue_depth(),
        store.configured_models(),
        store.oldest_pending_debit_age(),
    );
    let readings = Readings {
        queue_depth,
        // Models without an announced shutdown have no gauge.
        model_shutdowns: models
            .unwrap_or_default()
            .into_iter()
            .filter_map(|model| {
                Some(ModelShutdown {
                    days_left: model.days_left?,
                    model: model.id,
                    variable: model.variable,
                })
            })
            .collect(),
        oldest_pending_debit_age: debit_age.ok(),
    };
    match state.metrics.render(readings) {
        Ok(text) => ([(CONTENT_TYPE_HEADER, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not render the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
