//! The consumer's small HTTP port for operators: `/livez` and `/healthz` (the
//! process runs), `/readyz` (database and broker reachable; a hold is shown
//! but does not make the consumer unready: Kubernetes would stall rollouts
//! and node drains for a budget hold that no restart cures) and `/metrics`
//! (Prometheus text; the series are in `dynamo_pipeline::metrics`).

use crate::pause::HoldWatch;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE as CONTENT_TYPE_HEADER;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dynamo_broker::Broker;
use dynamo_pipeline::Metrics;
use dynamo_pipeline::metrics::{CONTENT_TYPE, ModelShutdown, Readings, SpendReading};
use dynamo_runtime::Shutdown;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// How long `/readyz` waits for the database: within a probe's timeout (1 s
/// by default in Kubernetes), so an outage is an answer, not a hung probe.
const DATABASE_WITHIN: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct HealthState {
    pool: PgPool,
    broker: Broker,
    metrics: Arc<Metrics>,
    holds: HoldWatch,
    daily_budget_usd: Option<f64>,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    pool: PgPool,
    broker: Broker,
    metrics: Arc<Metrics>,
    holds: HoldWatch,
    daily_budget_usd: Option<f64>,
    shutdown: Shutdown,
) {
    let alive = || async { Json(json!({"status": "ok"})) };
    let app = Router::new()
        .route("/livez", get(alive))
        .route("/healthz", get(alive))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HealthState {
            pool,
            broker,
            metrics,
            holds,
            daily_budget_usd,
        });
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
    {
        tracing::error!(%error, "the health server stopped");
    }
}

/// Ready when the database (within [`DATABASE_WITHIN`]) and the broker
/// answer; otherwise 503 with what is wrong. Holds are listed, and
/// `consuming` says whether requests are taken, but neither makes it unready.
async fn readyz(State(state): State<HealthState>) -> Response {
    let store = dynamo_store::Store::new(state.pool.clone());
    let holds = match tokio::time::timeout(DATABASE_WITHIN, store.holds()).await {
        Ok(holds) => holds.ok(),
        Err(_) => None,
    };
    let database = holds.is_some();
    let broker = state.broker.is_connected();
    let held: Vec<serde_json::Value> = holds
        .unwrap_or_default()
        .into_iter()
        .map(|hold| json!({"service": hold.service, "reason": hold.reason, "since": hold.held_since}))
        .collect();
    let status = if database && broker {
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
    let (queue_depth, models, debit_age, holds, spend) = tokio::join!(
        state.broker.requests_queue_depth(),
        store.configured_models(),
        store.oldest_pending_debit_age(),
        store.holds(),
        store.spend_summary(),
    );
    let now = chrono::Utc::now();
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
        held: holds.ok().map(|holds| {
            holds
                .into_iter()
                .map(|hold| {
                    let held_for = (now - hold.held_since).num_milliseconds().max(0);
                    (hold.service, held_for as f64 / 1000.0)
                })
                .collect()
        }),
        spend: spend.ok().map(|spend| SpendReading {
            today_usd: spend.today_usd,
            broadcast: spend.broadcast_id.map(|id| (id, spend.broadcast_usd)),
        }),
        daily_budget_usd: state.daily_budget_usd,
    };
    match state.metrics.render(readings) {
        Ok(text) => ([(CONTENT_TYPE_HEADER, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not render the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
