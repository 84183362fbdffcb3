//! The consumer's small HTTP port for operators: `/healthz` (the process runs),
//! `/readyz` (database and broker reachable) and `/metrics` (Prometheus text).

use crate::pause::HoldWatch;
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
    let mut out = state.metrics.render();
    if let Some(depth) = queue_depth(&state).await {
        let _ = writeln!(
            out,
            "# HELP dynamo_queue_depth Messages waiting in the request queue."
        );
        let _ = writeln!(out, "# TYPE dynamo_queue_depth gauge");
        let _ = writeln!(out, "dynamo_queue_depth {depth}");
    }
    render_model_lifecycle(&state, &mut out).await;
    render_pending_debit(&state, &mut out).await;
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

/// Days until each configured model's announced shutdown, so an alert can
/// page before a model retires mid-stream. Models without a date are left
/// out; a database that does not answer leaves the gauge out this scrape.
async fn render_model_lifecycle(state: &HealthState, out: &mut String) {
    let store = dynamo_store::Store::new(state.pool.clone());
    let Ok(models) = store.configured_models().await else {
        return;
    };
    let dated: Vec<_> = models
        .iter()
        .filter_map(|m| m.days_left.map(|days| (m, days)))
        .collect();
    if dated.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP dynamo_model_shutdown_days Days until a configured model's announced shutdown (negative once past)."
    );
    let _ = writeln!(out, "# TYPE dynamo_model_shutdown_days gauge");
    for (model, days) in dated {
        let _ = writeln!(
            out,
            "dynamo_model_shutdown_days{{model=\"{}\",variable=\"{}\"}} {days}",
            label(&model.id),
            label(&model.variable)
        );
    }
}

/// The age of the oldest debit not yet accepted or rejected, fleet-wide
/// (from PostgreSQL), for the alert on points held too long. Left out this
/// scrape when the database does not answer.
async fn render_pending_debit(state: &HealthState, out: &mut String) {
    let store = dynamo_store::Store::new(state.pool.clone());
    let Ok(age) = store.oldest_pending_debit_age().await else {
        return;
    };
    let _ = writeln!(
        out,
        "# HELP dynamo_oldest_pending_debit_age_seconds Age of the oldest ledger debit neither accepted nor rejected yet (0: none)."
    );
    let _ = writeln!(out, "# TYPE dynamo_oldest_pending_debit_age_seconds gauge");
    let _ = writeln!(out, "dynamo_oldest_pending_debit_age_seconds {age}");
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn queue_depth(state: &HealthState) -> Option<u32> {
    state.broker.requests_queue_depth().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(super::label("gpt-4.1-mini"), "gpt-4.1-mini");
    }
}
