//! Operators' endpoints: health, readiness, statistics and Prometheus metrics.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::{CONTENT_TYPE, Readings};
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dynamo_broker::QueueDepth;
use dynamo_store::StateCount;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Lets a request through when health endpoints are public (`HEALTH_PUBLIC`),
/// and otherwise asks for a token like every other endpoint.
pub struct HealthAccess;

impl FromRequestParts<AppState> for HealthAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !state.health_public {
            Caller::from_request_parts(parts, state).await?;
        }
        Ok(HealthAccess)
    }
}

/// The process is up (the same as `/livez`).
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
pub async fn healthz(_: HealthAccess) -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The process is up: for Kubernetes' liveness probe. Nothing outside the
/// process makes it fail, so an outage elsewhere never restarts the server.
#[utoipa::path(get, path = "/livez", tag = "health", responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
pub async fn livez(_: HealthAccess) -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Whether this server can serve: the database answers (within
/// [`dynamo_store::SERVE_ACQUIRE_TIMEOUT`]), so status, the page and the
/// overlay work. The broker and the fleet's holds are reported (`broker`,
/// `held`, `unavailable`) but do not make it unready: Kubernetes would take
/// every server pod out of the Service for them, and the overlay and the
/// approval page would go dark while nothing a restart cures is wrong
/// (SPEC §6.11).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "`{\"database\":true,\"broker\":…,\"held\":[{\"service\",\"reason\",\"since\"}],\"unavailable\":[\"…\"]}`: \
              serving; `unavailable` says what is away (the broker: requests cannot be queued)"),
              (status = 503, description = "`{\"database\":false,…,\"unavailable\":[\"…\"]}`: \
              the database is away, so neither status nor requests can be served")))]
pub async fn readyz(_: HealthAccess, State(state): State<AppState>) -> Response {
    let database = state.schema.is_ready() && state.store.ping().await.is_ok();
    let broker = state.broker.is_connected();
    let mut unavailable = Vec::new();
    if !database {
        unavailable.push("the database is unavailable: requests cannot be listed or queued");
    }
    if !broker {
        unavailable.push("the message broker is unavailable: requests cannot be queued");
    }
    let held = if database {
        held(&state).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": database, "broker": broker, "held": held, "unavailable": unavailable})),
    )
        .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepPercentiles {
    pub count: i64,
    pub p50_seconds: f64,
    pub p90_seconds: f64,
    pub p99_seconds: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// state → style → count, over all time.
    pub counts: BTreeMap<String, BTreeMap<String, i64>>,
    /// Images waiting for the streamer's approval now (`APPROVAL=manual`).
    pub awaiting_approval: i64,
    /// Messages waiting in dynamo's request queue; null if the broker did not
    /// say or no consumer has declared the queue yet (see `queue`).
    pub queue_depth: Option<u32>,
    /// `declared`, `no_consumer_yet` (no consumer has declared the request
    /// queue: enqueueing is refused until one runs) or `unknown` (the broker
    /// did not say).
    #[schema(value_type = String, example = "declared")]
    pub queue: &'static str,
    /// Time per step over the last hour (debit, name, image, alert, total).
    pub step_seconds_last_hour: BTreeMap<String, StepPercentiles>,
    /// The models the consumers are configured with, by setting and order of
    /// preference, with their announced shutdown.
    pub models: Vec<ModelLifecycle>,
    /// What images cost: today (UTC) and the current broadcast. A hold
    /// `openai-budget` in `held` says `OPENAI_DAILY_BUDGET_USD` was reached.
    pub spend: Spend,
    /// Services the fleet holds requests for, with why.
    pub held: Vec<HeldService>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Spend {
    /// USD spent on images since 00:00 UTC, fleet-wide.
    pub today_usd: f64,
    /// Images bought since 00:00 UTC.
    pub images_today: i64,
    /// The broadcast of the newest request that names one.
    pub broadcast_id: Option<i64>,
    /// USD spent on that broadcast's requests.
    pub broadcast_usd: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldService {
    /// `openai` (an outage) or `openai-budget` (the daily budget is spent).
    pub service: String,
    /// Why, and what an operator should do.
    pub reason: String,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// The fleet's holds, for `/readyz` and `/stats`.
async fn held(state: &AppState) -> Result<Vec<HeldService>, ApiError> {
    Ok(state
        .store
        .holds()
        .await?
        .into_iter()
        .map(|hold| HeldService {
            service: hold.service,
            reason: hold.reason,
            since: hold.held_since,
        })
        .collect())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelLifecycle {
    pub id: String,
    /// `OPENAI_IMAGE_MODEL` or `OPENAI_CHAT_MODEL`.
    pub variable: String,
    /// 0 first.
    pub preference: i32,
    /// YYYY-MM-DD, null when none is announced.
    pub shutdown_date: Option<String>,
    /// Days from today to the shutdown date, null when none is announced.
    pub days_left: Option<i32>,
    /// Shut down already: skipped.
    pub gone: bool,
}

/// What `/stats` says about the request queue.
fn queue_status(depth: QueueDepth) -> &'static str {
    match depth {
        QueueDepth::Waiting(_) => "declared",
        QueueDepth::NotDeclared => "no_consumer_yet",
        QueueDepth::Unknown => "unknown",
    }
}

/// Counts by state and style, queue depth, and step times over the last hour.
#[utoipa::path(get, path = "/stats", tag = "health", responses((status = 200, body = Stats), (status = 401)),
    security(("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Stats>, ApiError> {
    let mut by_state: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for StateCount {
        state: request_state,
        style,
        count,
    } in state.store.state_counts().await?
    {
        by_state
            .entry(request_state)
            .or_default()
            .insert(style, count);
    }
    let step_seconds_last_hour = state
        .store
        .step_times_last_hour()
        .await?
        .into_iter()
        .map(|times| {
            (
                times.step,
                StepPercentiles {
                    count: times.count,
                    p50_seconds: times.p50_seconds,
                    p90_seconds: times.p90_seconds,
                    p99_seconds: times.p99_seconds,
                },
            )
        })
        .collect();
    let awaiting_approval = by_state
        .get(dynamo_store::RequestState::AwaitingApproval.as_str())
        .map_or(0, |by_style| by_style.values().sum());
    let queue = state.broker.requests_queue().await;
    Ok(Json(Stats {
        awaiting_approval,
        counts: by_state,
        queue_depth: queue.waiting(),
        queue: queue_status(queue),
        step_seconds_last_hour,
        models: state
            .store
            .configured_models()
            .await?
            .into_iter()
            .map(|m| ModelLifecycle {
                id: m.id,
                variable: m.variable,
                preference: m.preference,
                shutdown_date: m.shutdown_date.map(|d| d.to_string()),
                days_left: m.days_left,
                gone: m.gone,
            })
            .collect(),
        spend: {
            let spend = state.store.spend_summary().await?;
            Spend {
                today_usd: spend.today_usd,
                images_today: spend.images_today,
                broadcast_id: spend.broadcast_id,
                broadcast_usd: spend.broadcast_usd,
            }
        },
        held: held(&state).await?,
    }))
}

/// Prometheus text format: HTTP requests served, requests by state and
/// style, and the request queue's depth.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(_: HealthAccess, State(state): State<AppState>) -> Result<Response, ApiError> {
    let readings = Readings {
        requests: state.store.state_counts().await?,
        queue_depth: state.broker.requests_queue_depth().await,
    };
    let text = state.metrics.render(readings).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}
