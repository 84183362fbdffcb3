//! Until the database schema is up to date (the server starts while
//! PostgreSQL is away, SPEC §6.11), every route that reads or writes the
//! database answers a clear 503 instead of a query error.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dynamo_store::SchemaReady;

/// Served without the database: they tell whether it is there, or need none.
pub const WITHOUT_DATABASE: &[&str] = &[
    "/livez",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/sign-in",
    "/me",
    "/overlay",
    "/steps",
];

pub async fn require_schema(
    State(schema): State<SchemaReady>,
    request: Request,
    next: Next,
) -> Response {
    if schema.is_ready() || WITHOUT_DATABASE.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    ApiError::unavailable(
        "the database is unavailable; try again shortly",
        "the schema is not up to date yet (PostgreSQL unreachable since start-up)",
    )
    .into_response()
}
