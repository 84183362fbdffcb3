//! `/requests`: what happened to each request, and enqueueing by hand.

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::request_input::{EnqueueBody, ListQuery, Listing};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dynamo_broker::{Envelope, PublishError, headers as amqp};
use dynamo_store::{RequestRecord, RequestState, StepFailure, StoredImage};
use dynamo_wire::GenerationRequest;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;
use utoipa::ToSchema;
use uuid::Uuid;

/// What a client is told while RabbitMQ is away (never the error itself).
pub(crate) const BROKER_AWAY: &str =
    "the message broker is unavailable; the request was not queued; try again shortly";

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerView {
    pub twitch_user_id: String,
    pub twitch_display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    pub index: i32,
    pub url: String,
    /// `#rrggbb` (friends)
    pub color: Option<String>,
    pub content_type: String,
    pub byte_size: i32,
}

/// When each step was reached (null: not yet, or not applicable).
#[derive(Debug, Serialize, ToSchema)]
pub struct StepTimes {
    pub created_at: DateTime<Utc>,
    pub debited_at: Option<DateTime<Utc>>,
    pub named_at: Option<DateTime<Utc>>,
    pub stored_at: Option<DateTime<Utc>>,
    pub alerted_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where the viewer's points stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerStatus {
    /// Free of charge: no points are taken.
    Free,
    /// No debit yet (or none was made before the request ended).
    NotDebited,
    /// Points are held by a pending outflow.
    Pending,
    /// The outflow was accepted: the image was shown.
    Accepted,
    /// The outflow was rejected: the points went back to the viewer.
    Refunded,
}

impl LedgerStatus {
    fn of(record: &RequestRecord) -> Self {
        match (
            record.free_of_charge,
            record.ledger_flow_id,
            record.settled_at,
        ) {
            (true, _, _) => Self::Free,
            (false, None, _) => Self::NotDebited,
            (false, Some(_), None) => Self::Pending,
            (false, Some(_), Some(_)) if record.state() == RequestState::Succeeded => {
                Self::Accepted
            }
            (false, Some(_), Some(_)) => Self::Refunded,
        }
    }
}

/// A transient failure of a step; the step was retried unless it was the last.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureView {
    /// debit, name, moderation, image or alert
    pub step: String,
    /// From 1.
    pub attempt: i32,
    pub failed_at: DateTime<Utc>,
    pub reason: String,
}

impl From<StepFailure> for FailureView {
    fn from(failure: StepFailure) -> Self {
        Self {
            step: failure.step.as_str().to_owned(),
            attempt: failure.attempt,
            failed_at: failure.failed_at,
            reason: failure.reason,
        }
    }
}

/// Everything about one request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: Uuid,
    pub viewer: ViewerView,
    pub style: String,
    #[schema(value_type = Object)]
    pub inputs: Value,
    pub prompt: String,
    /// received, debited, named, stored, awaiting_approval, alerted, succeeded, rejected, failed
    pub state: String,
    /// Why it was rejected or failed.
    pub reason: Option<String>,
    pub attempts: i32,
    pub free_of_charge: bool,
    /// An admin's try-out of a style (`POST /styles/{style}/try`): never
    /// aired, never charged, no result published.
    pub trial: bool,
    pub retry_of: Option<Uuid>,
    pub broadcast_id: Option<i64>,
    pub screening_id: Option<Uuid>,
    pub tape_id: Option<i64>,
    pub steps: StepTimes,
    pub images: Vec<ImageView>,
    /// The friend's name.
    pub name: Option<String>,
    /// The pending or settled ledger outflow; present for admins only (null
    /// when the request was free or never debited).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Uuid>)]
    pub ledger_flow_id: Option<Option<Uuid>>,
    pub ledger_status: LedgerStatus,
    /// Approval before air: present when it waited for the streamer.
    pub approval: Option<crate::approval::ApprovalView>,
    /// Transient failures of its steps, oldest first (`GET /requests/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<FailureView>>,
    /// How the content rules judged it (`GET /requests/{id}` only, once
    /// judged): passed, bypassed (an admin asked), or the rule it broke:
    /// blocklist, cooldown, cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_rules: Option<&'static str>,
    /// Its caption read aloud (`GET /requests/{id}` only, when its style
    /// speaks captions): the audio, or why the alert aired without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spoken_caption: Option<SpokenCaptionView>,
}

/// A request's spoken caption (issue 30).
#[derive(Debug, Serialize, ToSchema)]
pub struct SpokenCaptionView {
    /// The text read aloud.
    pub caption: String,
    /// The audio the overlay plays; null when the alert aired without it.
    pub url: Option<String>,
    pub content_type: Option<String>,
    /// The speech model that spoke it.
    pub model: Option<String>,
    /// Why the alert aired without its spoken caption; null when spoken.
    pub failure: Option<String>,
}

impl From<dynamo_store::CaptionSpeech> for SpokenCaptionView {
    fn from(speech: dynamo_store::CaptionSpeech) -> Self {
        Self {
            caption: speech.caption,
            url: speech.url,
            content_type: speech.content_type,
            model: speech.model,
            failure: speech.failure,
        }
    }
}

impl RequestView {
    fn new(record: RequestRecord, images: Vec<StoredImage>, caller: &Caller) -> Self {
        Self {
            ledger_status: LedgerStatus::of(&record),
            approval: crate::approval::ApprovalView::of(&record.approval),
            failures: None,
            content_rules: None,
            spoken_caption: None,
            id: record.id,
            viewer: ViewerView {
                twitch_user_id: record.twitch_user_id.clone(),
                twitch_display_name: record.twitch_display_name.clone(),
            },
            style: record.style().as_str().to_owned(),
            state: record.state().as_str().to_owned(),
            inputs: record.inputs,
            prompt: record.prompt,
            reason: record.error_message,
            attempts: record.attempts,
            free_of_charge: record.free_of_charge,
            trial: record.trial,
            retry_of: record.retry_of,
            broadcast_id: record.broadcast_id,
            screening_id: record.screening_id,
            tape_id: record.tape_id,
            steps: StepTimes {
                created_at: record.created_at,
                debited_at: record.debited_at,
                named_at: record.named_at,
                stored_at: record.stored_at,
                alerted_at: record.alerted_at,
                settled_at: record.settled_at,
                finished_at: record.finished_at,
            },
            images: images
                .into_iter()
                .map(|i| ImageView {
                    index: i.index,
                    url: i.url,
                    color: i.color,
                    content_type: i.content_type,
                    byte_size: i.byte_size,
                })
                .collect(),
            name: record.name,
            ledger_flow_id: caller.is_admin().then_some(record.ledger_flow_id),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    pub requests: Vec<RequestView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Requests, newest first, filtered; a viewer sees only their own.
#[utoipa::path(get, path = "/requests", tag = "requests", params(ListQuery),
    responses((status = 200, body = RequestPage), (status = 400, description = "a bad filter"), (status = 401)),
    security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<RequestPage>, ApiError> {
    let Some(Listing {
        filter,
        cursor,
        limit,
    }) = query.checked(&caller)?
    else {
        // Another viewer's requests do not exist, as far as a viewer can tell.
        return Ok(Json(RequestPage {
            requests: Vec::new(),
            next_cursor: None,
        }));
    };
    let (records, next) = state.store.list(&filter, cursor, limit).await?;
    let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
    let mut images = state.store.images_of(&ids).await?;
    let requests = records
        .into_iter()
        .map(|record| {
            let own = images.remove(&record.id).unwrap_or_default();
            RequestView::new(record, own, &caller)
        })
        .collect();
    Ok(Json(RequestPage {
        requests,
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// The record, if the caller may see it; otherwise 404 either way, so a viewer
/// cannot probe for other viewers' request ids.
pub async fn visible_record(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<RequestRecord, ApiError> {
    match state.store.load(id).await? {
        Some(record) if caller.can_see(&record.twitch_user_id) => Ok(record),
        _ => Err(ApiError::NotFound(format!("no request {id}"))),
    }
}

/// Everything about one request.
#[utoipa::path(get, path = "/requests/{id}", tag = "requests",
    params(("id" = Uuid, Path, description = "request id")),
    responses((status = 200, body = RequestView), (status = 400, description = "not a UUID"), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<RequestView>, ApiError> {
    let detail = match state.store.detail(id).await? {
        Some(detail) if caller.can_see(&detail.record.twitch_user_id) => detail,
        _ => return Err(ApiError::NotFound(format!("no request {id}"))),
    };
    let mut view = RequestView::new(detail.record, detail.images, &caller);
    view.failures = Some(detail.failures.into_iter().map(FailureView::from).collect());
    view.content_rules = state.store.rules_verdict(id).await?.map(|v| v.as_str());
    view.spoken_caption = state.store.caption_speech(id).await?.map(Into::into);
    Ok(Json(view))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    pub id: Uuid,
    /// Where to follow it.
    pub location: String,
}

fn accepted(id: Uuid) -> Response {
    let location = format!("/requests/{id}");
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(Enqueued { id, location }),
    )
        .into_response()
}

/// Publishes `request` to generation-requests as a new request; its id.
pub(crate) async fn publish(
    state: &AppState,
    request: &GenerationRequest,
    headers: Vec<(String, String)>,
) -> Result<Uuid, ApiError> {
    let id = Uuid::new_v4();
    let envelope = Envelope {
        message_id: Some(id),
        // No queue bound means no consumer has ever run: say so rather than lose it.
        mandatory: true,
        headers,
    };
    // The consumer's span of this request continues this one (the publisher
    // stamps its trace context on the message).
    let span = tracing::info_span!("enqueue", request_id = %id);
    state
        .publisher
        .publish_json(
            &state.topology.requests_exchange,
            &request.to_json_bytes(),
            envelope,
        )
        .instrument(span)
        .await
        .map_err(|error| match error {
            // Nothing consumes the exchange yet: the broker is there, but the
            // request would be lost, so it is refused all the same.
            PublishError::Returned(_) => ApiError::unavailable(
                "no consumer has bound a queue to the requests exchange yet; \
                 the request was not queued",
                error,
            ),
            _ => ApiError::unavailable(BROKER_AWAY, error),
        })?;
    Ok(id)
}

/// Queues a request (admins only). It is processed by dynamo-consumer like any other.
#[utoipa::path(post, path = "/requests", tag = "requests", request_body = EnqueueBody,
    responses((status = 202, body = Enqueued, headers(("location" = String)),
                  links(("GetRequest" = (operation_id = "get_request", parameters(("id" = "$response.body#/id")))),
                        ("RequestEvents" = (operation_id = "request_events", parameters(("id" = "$response.body#/id")))),
                        ("Retry" = (operation_id = "retry", parameters(("id" = "$response.body#/id")))),
                        ("Approve" = (operation_id = "approve", parameters(("id" = "$response.body#/id")))),
                        ("Decline" = (operation_id = "decline", parameters(("id" = "$response.body#/id")))))),
              (status = 400, description = "invalid request; `field` names the culprit"),
              (status = 403, description = "not an admin"), (status = 413), (status = 415),
              (status = 503, description = "the broker is away, or no consumer has bound a queue yet: not queued")),
    security(("bearer" = [])))]
pub async fn enqueue(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Json(body): Json<EnqueueBody>,
) -> Result<Response, ApiError> {
    let request = body.generation_request()?;
    // Refused here rather than dead-lettered by the consumer: the caller
    // is told at once (SPEC §8, a style must exist and be enabled). Ghost
    // and friend exist before any consumer seeded them.
    let style = request.style();
    let enabled = match state.store.style(&style).await? {
        Some(stored) => stored.definition.enabled,
        None => style.builtin().is_some(),
    };
    if !enabled {
        return Err(ApiError::bad_field(
            "style",
            format!("no enabled style {style} (see README, Styles)"),
        ));
    }
    let mut headers = Vec::new();
    if body.free_of_charge {
        headers.push((amqp::FREE_OF_CHARGE.to_owned(), "true".to_owned()));
    }
    if body.bypass_rules {
        headers.push((amqp::BYPASS_RULES.to_owned(), "true".to_owned()));
    }
    let id = publish(&state, &request, headers).await?;
    tracing::info!(request_id = %id, ?caller, free = body.free_of_charge, bypass_rules = body.bypass_rules, "request enqueued by hand");
    Ok(accepted(id))
}

/// Queues a failed or rejected request again, as a new request linked to it (admins only).
#[utoipa::path(post, path = "/requests/{id}/retry", tag = "requests",
    params(("id" = Uuid, Path, description = "the failed or rejected request")),
    responses((status = 202, body = Enqueued), (status = 403), (status = 404),
              (status = 409, description = "the request did not fail")),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let record = visible_record(&state, &caller, id).await?;
    if !matches!(
        record.state(),
        RequestState::Failed | RequestState::Rejected
    ) {
        return Err(ApiError::Conflict(format!(
            "request {id} is {}; only failed or rejected requests can be retried",
            record.state()
        )));
    }
    let request = record
        .generation_request()
        .map_err(|e| ApiError::internal(format!("stored request {id} no longer validates: {e}")))?;
    let mut headers = vec![(amqp::RETRY_OF.to_owned(), id.to_string())];
    if record.free_of_charge {
        headers.push((amqp::FREE_OF_CHARGE.to_owned(), "true".to_owned()));
    }
    let new_id = publish(&state, &request, headers).await?;
    tracing::info!(request_id = %new_id, retry_of = %id, "request retried by hand");
    Ok(accepted(new_id))
}
