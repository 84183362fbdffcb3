//! Live state changes as Server-Sent Events, fed by PostgreSQL LISTEN/NOTIFY
//! (migration 0002), so a change shows up whichever process made it.
//!
//! One listener per server process fans notifications out to every stream
//! through a broadcast channel. A stream that falls too far behind skips what
//! it missed; clients catch up by reconnecting with `Last-Event-ID`.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Path;
use crate::state::AppState;
use crate::streams::StreamPermit;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use dynamo_runtime::Shutdown;
use dynamo_store::{EVENTS_CHANNEL, RequestRecord, RequestState};
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::convert::Infallible;
use std::future::ready;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::ToSchema;
use uuid::Uuid;

/// Replayed at most this many changes to a reconnecting client.
const REPLAY_LIMIT: i64 = 500;

/// A request changed state. Sent as SSE `event: state`, with the change's
/// time in microseconds as the event id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StateEvent {
    pub id: Uuid,
    pub state: String,
    pub style: String,
    pub twitch_user_id: String,
    pub updated_at: DateTime<Utc>,
}

impl From<&RequestRecord> for StateEvent {
    fn from(record: &RequestRecord) -> Self {
        Self {
            id: record.id,
            state: record.state().as_str().to_owned(),
            style: record.style().as_str().to_owned(),
            twitch_user_id: record.twitch_user_id.clone(),
            updated_at: record.updated_at,
        }
    }
}

impl StateEvent {
    fn is_final(&self) -> bool {
        self.state
            .parse::<RequestState>()
            .is_ok_and(RequestState::is_final)
    }

    fn to_sse(&self) -> Event {
        Event::default()
            .event("state")
            .id(self.updated_at.timestamp_micros().to_string())
            .json_data(self)
            .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
    }
}

#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<StateEvent>,
    listening: tokio::sync::watch::Receiver<bool>,
}

impl EventHub {
    /// Starts listening in the background, reconnecting whenever the
    /// database is away (also at start-up: the server starts without it).
    /// [`EventHub::listening`] tells when the first LISTEN is in place.
    pub fn start(pool: PgPool, shutdown: Shutdown) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let hub_sender = sender.clone();
        let listening =
            listen(
                pool,
                EVENTS_CHANNEL,
                shutdown,
                move |payload| match serde_json::from_str::<StateEvent>(payload) {
                    Ok(event) => {
                        let _ = hub_sender.send(event);
                    }
                    Err(error) => tracing::warn!(%error, "unreadable state notification"),
                },
            );
        Self { sender, listening }
    }

    /// Waits until the first LISTEN is in place: no change made after that is missed.
    pub async fn listening(&self) {
        let mut watch = self.listening.clone();
        // An error means the listening task ended (shutdown): nothing to wait for.
        let _ = watch.wait_for(|listening| *listening).await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StateEvent> {
        self.sender.subscribe()
    }
}

/// LISTENs on `channel` and hands every notification's payload to
/// `deliver`, until `shutdown`. Connects in the background and keeps trying
/// while the database is away (the server starts without it); the answer
/// turns true once the first LISTEN is in place.
pub(crate) fn listen(
    pool: PgPool,
    channel: &'static str,
    shutdown: Shutdown,
    deliver: impl Fn(&str) + Send + 'static,
) -> tokio::sync::watch::Receiver<bool> {
    let (listening, watch) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut listener = loop {
            let connected = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(channel).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            match connected.await {
                Ok(listener) => break listener,
                Err(error) => {
                    tracing::warn!(%error, channel, "cannot listen for changes yet; retrying")
                }
            }
            tokio::select! {
                _ = shutdown.requested() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        let _ = listening.send(true);
        loop {
            let next = tokio::select! {
                _ = shutdown.requested() => return,
                next = listener.recv() => next,
            };
            match next {
                Ok(notification) => deliver(notification.payload()),
                Err(error) => {
                    // PgListener reconnects by itself on the next recv.
                    tracing::warn!(%error, channel, "lost the database listener; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    watch
}

type SseStream =
    Sse<axum::response::sse::KeepAliveStream<BoxStream<'static, Result<Event, Infallible>>>>;

/// The stream holds `permit` (its place among the open streams) until it ends.
fn sse(
    state: &AppState,
    permit: StreamPermit,
    events: BoxStream<'static, StateEvent>,
) -> SseStream {
    Sse::new(
        events
            .map(move |event| {
                let _open = &permit;
                Ok(event.to_sse())
            })
            .boxed(),
    )
    .keep_alive(KeepAlive::new().interval(state.sse_heartbeat))
}

pub(crate) fn last_event_time(headers: &HeaderMap) -> Result<Option<DateTime<Utc>>, ApiError> {
    headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_micros)
                .filter(crate::extract::storable_time)
                .ok_or_else(|| {
                    ApiError::bad_field("Last-Event-ID", "expected an event id from this stream")
                })
        })
        .transpose()
}

/// Every state change the caller may see, live. With `Last-Event-ID`, the
/// changes since that event come first.
#[utoipa::path(get, path = "/events", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this event")),
    responses((status = 200, description = "text/event-stream of `state` events", body = StateEvent, content_type = "text/event-stream"),
              (status = 400, description = "a Last-Event-ID this stream never sent", body = ErrorBody),
              (status = 401, description = "no or bad token", body = ErrorBody),
              (status = 429, description = "too many event streams open (Retry-After)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn all_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<SseStream, ApiError> {
    let since = last_event_time(&headers)?;
    let permit = state.streams.admit(caller.stream_key())?;
    // Subscribe before reading the backlog, so nothing falls in between.
    let live = BroadcastStream::new(state.events.subscribe());
    let backlog: Vec<StateEvent> = match since {
        Some(since) => state
            .store
            .changed_since(since, REPLAY_LIMIT)
            .await?
            .iter()
            .map(StateEvent::from)
            .collect(),
        None => Vec::new(),
    };
    let visible = caller.clone();
    let events = stream::iter(backlog)
        .chain(live.filter_map(|event| ready(event.ok())))
        .filter(move |event| ready(visible.can_see(&event.twitch_user_id)))
        .boxed();
    Ok(sse(&state, permit, events))
}

/// The state changes of one request: its current state first, then each
/// change; the stream ends after the final state.
#[utoipa::path(get, path = "/requests/{id}/events", tag = "events",
    params(("id" = Uuid, Path, description = "request id")),
    responses((status = 200, description = "text/event-stream of `state` events", body = StateEvent, content_type = "text/event-stream"),
              (status = 404, description = "no such request (or not yours)")),
    security(("bearer" = [])))]
pub async fn request_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<SseStream, ApiError> {
    let live = BroadcastStream::new(state.events.subscribe());
    let record = crate::requests::visible_record(&state, &caller, id).await?;
    let permit = state.streams.admit(caller.stream_key())?;
    let snapshot = StateEvent::from(&record);
    if snapshot.is_final() {
        return Ok(sse(&state, permit, stream::iter([snapshot]).boxed()));
    }
    let events = stream::iter([snapshot])
        .chain(live.filter_map(move |event| ready(event.ok().filter(|e| e.id == id))))
        .scan(false, |ended, event| {
            if *ended {
                return ready(None);
            }
            *ended = event.is_final();
            ready(Some(event))
        })
        .boxed();
    Ok(sse(&state, permit, events))
}
