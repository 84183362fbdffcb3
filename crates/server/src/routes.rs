//! The routes, and the JSON error shape every one of them answers with.

use crate::ServerConfig;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub broker: Arc<dynamo_broker::lapin::Connection>,
}

pub fn app(state: AppState, config: &ServerConfig) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if let Some(dir) = &config.images_dir {
        router = router.nest_service("/images", ServeDir::new(dir));
    }
    router
        .fallback(not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The process is up.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The database and the broker are reachable.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .is_ok();
    let broker = state.broker.status().connected();
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

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "detail": "no such route"})),
    )
        .into_response()
}
