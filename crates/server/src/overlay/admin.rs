//! The admin's side: overlay tokens (create, list, revoke) and the queue's
//! controls (pause, resume, skip, replay, clear). Admin only, with the usual
//! bearer token; an overlay token opens none of these.

use super::access::{digest, new_token};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use dynamo_store::{OverlayAlert, OverlayQueue, OverlayToken};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// How many finished entries `GET /overlay/queue` lists (to replay from).
const RECENT: i64 = 20;
const MAX_LABEL: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What to call it: which OBS, which scene (default "overlay"). One
    /// line, at most 100 characters.
    #[serde(default)]
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    label: String,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    id: Uuid,
    label: String,
    created_at: DateTime<Utc>,
    token: String,
    /// The path to give OBS, after this server's address.
    overlay_path: String,
}

/// Creates an overlay token. The token is in this answer only: store it in
/// the OBS browser source's URL.
#[utoipa::path(post, path = "/overlay/tokens", tag = "overlay",
    request_body(content = NewToken, content_type = "application/json"),
    responses((status = 201, description = "{id, label, created_at, token, overlay_path}",
                  links(("RevokeToken" = (operation_id = "revoke_token", parameters(("id" = "$response.body#/id")))),
                        ("Next" = (operation_id = "next", parameters(("token" = "$response.body#/token")))))),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let label = body.label.trim();
    crate::extract::one_line("label", label)?;
    if label.chars().count() > MAX_LABEL {
        return Err(ApiError::bad_field(
            "label",
            format!("at most {MAX_LABEL} characters"),
        ));
    }
    let label = if label.is_empty() { "overlay" } else { label };
    let token = new_token();
    let created = state
        .store
        .create_overlay_token(label, &digest(&token))
        .await?;
    tracing::info!(token_id = %created.id, label, by = ?caller, "overlay token created");
    let overlay_path = format!("/overlay?token={token}");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: created.id,
            label: created.label,
            created_at: created.created_at,
            token,
            overlay_path,
        }),
    ))
}

/// Every overlay token, newest first, without secrets.
#[utoipa::path(get, path = "/overlay/tokens", tag = "overlay",
    responses((status = 200, description = "[{id, label, created_at, revoked_at}]"),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<OverlayToken>>, ApiError> {
    Ok(Json(state.store.overlay_tokens().await?))
}

/// Revokes an overlay token: its open overlays stop within seconds.
#[utoipa::path(delete, path = "/overlay/tokens/{id}", tag = "overlay",
    params(("id" = Uuid, Path, description = "token id")),
    responses((status = 204, description = "revoked (or already was)"),
              (status = 404, description = "no such token"),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if state.store.revoke_overlay_token(id).await? {
        tracing::info!(token_id = %id, by = ?caller, "overlay token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such overlay token".into()))
    }
}

/// The queue: paused or not, the alert on air, those waiting, and the
/// latest finished ones (to replay).
#[utoipa::path(get, path = "/overlay/queue", tag = "overlay",
    responses((status = 200, description = "{paused, on_air, waiting: [...], recent: [...]}"),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn queue(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<OverlayQueue>, ApiError> {
    Ok(Json(state.store.overlay_queue(RECENT).await?))
}

async fn set_paused(state: &AppState, paused: bool) -> Result<Json<OverlayQueue>, ApiError> {
    state.store.set_overlay_paused(paused).await?;
    tracing::info!(paused, "overlay playback changed");
    Ok(Json(state.store.overlay_queue(RECENT).await?))
}

/// Pauses playback: the alert on air finishes, nothing new goes on air, new
/// alerts keep queueing (generation goes on).
#[utoipa::path(post, path = "/overlay/queue/pause", tag = "overlay",
    responses((status = 200, description = "the queue"), (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<OverlayQueue>, ApiError> {
    set_paused(&state, true).await
}

/// Resumes playback: the queue plays in order.
#[utoipa::path(post, path = "/overlay/queue/resume", tag = "overlay",
    responses((status = 200, description = "the queue"), (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<OverlayQueue>, ApiError> {
    set_paused(&state, false).await
}

/// Ends the alert on air at once; the next one follows.
#[utoipa::path(post, path = "/overlay/queue/skip", tag = "overlay",
    responses((status = 200, description = "{\"skipped\": <entry id>}"),
              (status = 409, description = "nothing is on air"),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn skip(State(state): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    match state.store.overlay_skip().await? {
        Some(id) => {
            tracing::info!(entry = id, "alert skipped");
            Ok(Json(json!({"skipped": id})))
        }
        None => Err(ApiError::Conflict("nothing is on air".into())),
    }
}

/// Removes every waiting alert from the queue (the one on air plays out).
#[utoipa::path(post, path = "/overlay/queue/clear", tag = "overlay",
    responses((status = 200, description = "{\"cleared\": <how many>}"), (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn clear(State(state): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let cleared = state.store.overlay_clear().await?;
    tracing::info!(cleared, "overlay queue cleared");
    Ok(Json(json!({"cleared": cleared})))
}

/// Queues entry `id`'s alert again, at the end of the queue.
#[utoipa::path(post, path = "/overlay/alerts/{id}/replay", tag = "overlay",
    params(("id" = i64, Path, description = "queue entry to show again")),
    responses((status = 201, description = "the new queue entry"),
              (status = 404, description = "no such entry"),
              (status = 403, description = "not an admin")),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<OverlayAlert>), ApiError> {
    match state.store.overlay_replay(id).await? {
        Some(alert) => {
            tracing::info!(entry = alert.id, replay_of = id, "alert queued again");
            Ok((StatusCode::CREATED, Json(alert)))
        }
        None => Err(ApiError::NotFound("no such queue entry".into())),
    }
}
