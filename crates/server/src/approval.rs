//! Approval before air (`APPROVAL=manual` on the consumers): admins approve or
//! decline an image waiting in `awaiting_approval`. The server only records
//! the decision (once: the first decision, or the timeout, wins); the next
//! scheduler poll of any consumer carries it out — the alert then the
//! accept, or the refund and the viewer's result.

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dynamo_store::{Approval, Decision, DecisionError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest note a decline may carry (it goes to the viewer).
const MAX_NOTE_CHARS: usize = 200;

/// A request's approval, when it waited for one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    /// When it began waiting.
    pub requested_at: DateTime<Utc>,
    /// When `APPROVAL_TIMEOUT_ACTION` decides if nobody does.
    pub deadline: Option<DateTime<Utc>>,
    /// approved or declined; null while waiting.
    pub decision: Option<String>,
    /// The admin who decided, or `timeout`.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The reason given with a decline.
    pub note: Option<String>,
}

impl ApprovalView {
    pub fn of(approval: &Approval) -> Option<Self> {
        Some(Self {
            requested_at: approval.requested_at?,
            deadline: approval.deadline,
            decision: approval.decision().map(|d| d.as_str().to_owned()),
            decided_by: approval.decided_by.clone(),
            decided_at: approval.decided_at,
            note: approval.note.clone(),
        })
    }
}

/// Optional body of a decline.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineBody {
    /// Told to the viewer after "declined by the streamer: " (one line, at
    /// most 200 characters).
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub reason: Option<String>,
}

/// The decision is recorded; a consumer carries it out within a second.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decided {
    pub id: Uuid,
    /// approved or declined
    pub decision: String,
    /// Where to follow the request.
    pub location: String,
}

/// Approves an image awaiting approval: it airs, then the debit is made final (admins only).
#[utoipa::path(post, path = "/requests/{id}/approve", tag = "approval",
    params(("id" = Uuid, Path, description = "a request awaiting approval")),
    responses((status = 202, body = Decided), (status = 401), (status = 403, description = "not an admin"),
              (status = 404), (status = 409, description = "the request is not awaiting approval (or was decided already)")),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    decide(&state, &caller, id, Decision::Approved, None).await
}

/// Declines an image awaiting approval: it never airs, the points are refunded and the
/// viewer is told "declined by the streamer" (admins only). The body is optional.
#[utoipa::path(post, path = "/requests/{id}/decline", tag = "approval",
    params(("id" = Uuid, Path, description = "a request awaiting approval")),
    request_body(content = DeclineBody, description = "optional (an empty body is no reason): a reason for the viewer", content_type = "application/json"),
    responses((status = 202, body = Decided), (status = 400, description = "a body that is not a DeclineBody"),
              (status = 401), (status = 403, description = "not an admin"), (status = 404),
              (status = 409, description = "the request is not awaiting approval (or was decided already)")),
    security(("bearer" = [])))]
pub async fn decline(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = decline_body(&body)?;
    decide(
        &state,
        &caller,
        id,
        Decision::Declined,
        body.reason.as_deref(),
    )
    .await
}

/// An empty body is no reason; anything else must be a [`DeclineBody`].
pub(crate) fn decline_body(raw: &[u8]) -> Result<DeclineBody, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeclineBody::default());
    }
    let body: DeclineBody = serde_json::from_slice(raw)
        .map_err(|e| ApiError::bad(format!("the body must be {{\"reason\": \"...\"}}: {e}")))?;
    if let Some(reason) = &body.reason {
        if reason.chars().count() > MAX_NOTE_CHARS {
            return Err(ApiError::bad_field(
                "reason",
                format!("at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        if reason.chars().any(char::is_control) {
            return Err(ApiError::bad_field("reason", "must be one line of text"));
        }
    }
    Ok(body)
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    decision: Decision,
    note: Option<&str>,
) -> Result<Response, ApiError> {
    let decided_by = who(caller);
    match state
        .store
        .decide_approval(id, decision, &decided_by, note)
        .await
    {
        Ok(()) => {}
        Err(DecisionError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!("no request {id}")));
        }
        Err(error @ DecisionError::NotAwaiting { .. }) => {
            return Err(ApiError::Conflict(error.to_string()));
        }
        Err(DecisionError::Store(error)) => return Err(error.into()),
    }
    tracing::info!(request_id = %id, %decision, by = %decided_by, "approval decided");
    let location = format!("/requests/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(Decided {
            id,
            decision: decision.as_str().to_owned(),
            location,
        }),
    )
        .into_response())
}

/// Who decided, as recorded: the role and id, never a token.
fn who(caller: &Caller) -> String {
    match caller {
        Caller::Broadcaster { twitch_user_id } => format!("broadcaster {twitch_user_id}"),
        Caller::Service { name } => format!("service {name}"),
        Caller::Viewer { twitch_user_id } => format!("viewer {twitch_user_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decline_body_is_optional_and_checked() {
        assert!(decline_body(b"").unwrap().reason.is_none());
        assert!(decline_body(b"  \n").unwrap().reason.is_none());
        assert_eq!(
            decline_body(br#"{"reason":"not tonight"}"#)
                .unwrap()
                .reason
                .as_deref(),
            Some("not tonight")
        );
        assert!(decline_body(b"not json").is_err());
        assert!(decline_body(br#"{"why":"x"}"#).is_err());
        let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(201));
        assert!(matches!(
            decline_body(long.as_bytes()),
            Err(ApiError::BadRequest { field: Some(f), .. }) if f == "reason"
        ));
    }
}
