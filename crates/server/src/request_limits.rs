//! Limits on one request, before and while a handler runs: a body declared
//! larger than `MAX_BODY_BYTES` is refused before a byte of it is read, and a
//! request that has no answer within `REQUEST_TIMEOUT` (a body trickling in,
//! say) is answered 408.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The largest body a request may send.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// `MAX_BODY_BYTES`: every route's JSON.
    pub default: usize,
    /// `SOUND_MAX_BYTES`: an alert sound's upload.
    pub sound: usize,
}

/// 413 at once for a `Content-Length` over the route's limit: waiting for a
/// body that would be refused anyway only holds the connection.
pub async fn refuse_declared_oversize(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let max_body_bytes = if crate::sounds::is_upload(request.uri().path()) {
        limits.sound
    } else {
        limits.default
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body_bytes as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// 408 when the answer's head is not ready within `timeout`; a stream, once
/// answered, runs on.
pub async fn time_limit(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(format!(
            "no answer within {} s (REQUEST_TIMEOUT): the request arrived or was served too slowly",
            timeout.as_secs_f64()
        ))
        .into_response(),
    }
}
