//! What the overlay page calls: a live stream of the queue's state, "give me
//! the next alert" and "I finished playing it".

use super::OverlayAccess;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dynamo_store::Store;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// How often an open stream rechecks its token and the queue even without a
/// notification: a revoked overlay stops within this, and a wake lost while
/// the database listener reconnected is made up for.
const RECHECK: Duration = Duration::from_secs(2);

/// The queue as an overlay needs it. Sent as SSE `event: state` whenever it
/// changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PlayState {
    paused: bool,
    /// The entry on air, if any.
    on_air: Option<i64>,
    /// The highest entry ever taken on air: an overlay playing entry X that
    /// sees `taken >= X` and `on_air != X` knows X was ended (skipped).
    taken: Option<i64>,
    /// How many entries wait.
    waiting: i64,
}

async fn play_state(store: &Store) -> Result<PlayState, dynamo_store::StoreError> {
    let (paused, on_air, taken, waiting) = store.overlay_play_state().await?;
    Ok(PlayState {
        paused,
        on_air,
        taken,
        waiting,
    })
}

/// The overlay's live stream: `state` events (the first at once), and
/// `revoked` just before the stream ends because the token was revoked.
#[utoipa::path(get, path = "/overlay/events", tag = "overlay",
    params(("token" = String, Query, description = "overlay token")),
    responses((status = 200, description = "text/event-stream of `state` events ({paused, on_air, taken, waiting}) and a final `revoked`"),
              (status = 401, description = "no, unknown or revoked overlay token")))]
pub async fn stream(
    State(state): State<AppState>,
    access: OverlayAccess,
) -> Result<Response, ApiError> {
    let permit = state
        .streams
        .admit(format!("overlay:{}", hex::encode(access.token_sha256)))?;
    let (events, receiver) = mpsc::channel::<Result<Event, Infallible>>(8);
    let mut wakes = state.overlay.subscribe();
    tokio::spawn(async move {
        // The stream's place among the open ones, until this task ends.
        let _open = permit;
        let mut last: Option<PlayState> = None;
        let mut tick = tokio::time::interval(RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            match state.store.overlay_token_valid(&access.token_sha256).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!("an overlay's token was revoked; ending its stream");
                    let _ = events
                        .send(Ok(Event::default().event("revoked").data("{}")))
                        .await;
                    return;
                }
                Err(error) => tracing::warn!(%error, "cannot check an overlay token"),
            }
            match play_state(&state.store).await {
                Ok(now) if last.as_ref() != Some(&now) => {
                    let event = Event::default()
                        .event("state")
                        .json_data(&now)
                        .unwrap_or_else(|_| Event::default().comment("unserialisable state"));
                    if events.send(Ok(event)).await.is_err() {
                        return;
                    }
                    last = Some(now);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot read the overlay queue"),
            }
            tokio::select! {
                _ = events.closed() => return,
                _ = tick.tick() => {}
                woken = wakes.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = woken {
                        return;
                    }
                }
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(receiver))
        .keep_alive(KeepAlive::new().interval(state.sse_heartbeat))
        .into_response())
}

/// Takes the next alert on air: 200 with it, or 204 when nothing waits or
/// playback is paused. An alert left on air by an overlay that reloaded
/// counts as shown and ends as `interrupted`: it does not play again.
#[utoipa::path(post, path = "/overlay/next", tag = "overlay",
    params(("token" = String, Query, description = "overlay token")),
    responses((status = 200, description = "the alert to play now",
                  links(("Finished" = (operation_id = "finished", parameters(("id" = "$response.body#/id")))),
                        ("Replay" = (operation_id = "replay", parameters(("id" = "$response.body#/id")))))),
              (status = 204, description = "nothing to play (empty queue or paused)"),
              (status = 401, description = "no, unknown or revoked overlay token")))]
pub async fn next(State(state): State<AppState>, _: OverlayAccess) -> Result<Response, ApiError> {
    Ok(match state.store.overlay_take_next().await? {
        Some(alert) => {
            tracing::info!(entry = alert.id, request_id = %alert.image_request_id, "alert on air");
            Json(alert).into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The overlay finished playing entry `id` (its exit is over). 204 either
/// way: an entry skipped meanwhile is already finished.
#[utoipa::path(post, path = "/overlay/alerts/{id}/finished", tag = "overlay",
    params(("id" = i64, Path, description = "queue entry"), ("token" = String, Query, description = "overlay token")),
    responses((status = 204, description = "recorded"),
              (status = 401, description = "no, unknown or revoked overlay token")))]
pub async fn finished(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    _: OverlayAccess,
) -> Result<StatusCode, ApiError> {
    if state.store.overlay_finish(id).await? {
        tracing::info!(entry = id, "alert played");
    }
    Ok(StatusCode::NO_CONTENT)
}
