//! The one error type of the HTTP API, mapped to status codes in one place.
//! Every error answers JSON: `{"error": "<kind>", "detail": "<what to do>"}`,
//! plus `"field"` when one input field is to blame.
//!
//! A server-side failure (5xx) tells the client nothing about its cause: the
//! body says what kind of failure it was and carries the `request_id` to
//! quote, while the cause is logged with that same id (see
//! [`stamp_request_id`]). Database and upstream error texts name hosts,
//! databases and queries, which are none of a client's business.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt::Display;
use utoipa::ToSchema;

/// What every error answers (the OpenAPI document's schema of every 4xx
/// and 5xx).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The kind: `bad_request`, `unauthorized`, `too_many_requests`, …
    pub error: String,
    /// What went wrong and what to do.
    pub detail: String,
    /// The input field to blame (400s), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 5xx only: the id to quote when reporting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    BadRequest {
        field: Option<String>,
        detail: String,
    },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many failures from this client; it may try again after `retry_after` seconds.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u64 },
    #[error("the body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A service we need is away. `reason` is told to the client (say which
    /// service, never its error text); `cause` is only logged.
    #[error("{reason}")]
    Unavailable { reason: String, cause: String },
    /// A bug or a broken invariant; the cause is only logged.
    #[error("something went wrong on our side; quote the request id when reporting it")]
    Internal { cause: String },
}

impl ApiError {
    pub fn bad(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: None,
            detail: detail.into(),
        }
    }

    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    pub fn unavailable(reason: impl Into<String>, cause: impl Display) -> Self {
        ApiError::Unavailable {
            reason: reason.into(),
            cause: cause.to_string(),
        }
    }

    pub fn internal(cause: impl Display) -> Self {
        ApiError::Internal {
            cause: cause.to_string(),
        }
    }

    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_kind();
        // Logged inside the request's span, so the line carries its request id.
        match &self {
            ApiError::Internal { cause } => tracing::error!(%cause, "request failed"),
            ApiError::Unavailable { reason, cause } => {
                tracing::warn!(%reason, %cause, "request failed: a service is unavailable");
            }
            _ => {}
        }
        let field = match &self {
            ApiError::BadRequest { field, .. } => field.clone(),
            _ => None,
        };
        let body = json!(ErrorBody {
            error: kind.to_owned(),
            detail: self.to_string(),
            field,
            request_id: None,
        });
        let fault = status.is_server_error().then(|| ServerFault(body.clone()));
        let mut response = (status, Json(body)).into_response();
        if let Some(fault) = fault {
            response.extensions_mut().insert(fault);
        }
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The body of a 5xx answer made by [`ApiError`], left on the response for
/// [`stamp_request_id`] to complete.
#[derive(Debug, Clone)]
struct ServerFault(Value);

/// Adds the request's `x-request-id` to the body of every 5xx answer made by
/// [`ApiError`], so that a client can quote it and an operator can find the
/// logged cause. Runs inside the layer that assigns the id.
pub async fn stamp_request_id(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(&crate::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let Some(ServerFault(mut body)) = response.extensions().get::<ServerFault>().cloned() else {
        return response;
    };
    body["request_id"] = json!(request_id);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

impl From<dynamo_store::StoreError> for ApiError {
    fn from(error: dynamo_store::StoreError) -> Self {
        if error.is_transient() {
            ApiError::unavailable("the database is unavailable; try again shortly", error)
        } else {
            ApiError::internal(error)
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
                "send the body as JSON with content-type: application/json".into(),
            ),
            _ => ApiError::bad(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad(rejection.body_text())
    }
}
