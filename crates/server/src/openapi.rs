//! The OpenAPI document: each route's own declaration (`#[utoipa::path]` on
//! its handler) says what only that route answers; what every route of a
//! kind answers because of a layer or an extractor they share (401 from a
//! bearer token, 400 from a path id, 413/415 from a JSON body, 408 and 429
//! from the limits) is added here, once, from the operation's shape, so the
//! document cannot forget a route.

use crate::error::ErrorBody;
use axum::{Extension, Json};
use std::sync::Arc;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "dynamo-server", description = "Generation requests: status, manual enqueueing, live events."),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of every route, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi_json(Extension(doc): Extension<Arc<Document>>) -> Json<Document> {
    Json(doc.as_ref().clone())
}

/// Adds to every operation of `doc` the answers its shape implies.
/// `without_database`: the paths served while the database is away (the
/// others may answer 503).
pub fn complete(doc: &mut Document, without_database: &[&str]) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            complete_operation(operation, without_database.contains(&path.as_str()));
        }
    }
}

fn complete_operation(operation: &mut Operation, without_database: bool) {
    let has = |location: ParameterIn| {
        operation.parameters.iter().flatten().any(|parameter| {
            matches!(parameter, RefOr::T(p) if std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&location))
        })
    };
    let bearer = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut implied: Vec<(&str, &str)> = vec![
        ("408", "no complete request within REQUEST_TIMEOUT"),
        (
            "429",
            "too many failed authentications from this address, or too many event streams (Retry-After says when to try again)",
        ),
    ];
    if bearer {
        implied.push(("401", "no bearer token, or one that is not accepted"));
        implied.push((
            "403",
            "the token is valid but grants nothing here (a service not in ADMIN_SERVICES), or the route is for admins",
        ));
    }
    if has(ParameterIn::Path) {
        implied.push(("400", "a malformed path parameter"));
    }
    if has(ParameterIn::Query) || has(ParameterIn::Header) {
        implied.push(("400", "a malformed parameter; `field` names it"));
    }
    if operation.request_body.is_some() {
        implied.push((
            "400",
            "a body that does not parse or validate; `field` names the culprit",
        ));
        implied.push((
            "413",
            "a body over MAX_BODY_BYTES (refused before it is read when Content-Length says so)",
        ));
        implied.push(("415", "a body that is not sent as application/json"));
    }
    if !without_database {
        implied.push((
            "503",
            "the database (or the broker, or the auth service) is unavailable; try again shortly",
        ));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in implied {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(error_response(description)));
    }
    // Every 4xx is an ApiError: one declared without a body answers the
    // error body. (A route's own 5xx, /readyz's, may answer another.)
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with('4')
            && response.content.is_empty()
        {
            response
                .content
                .insert("application/json".into(), RefOr::T(error_content()));
        }
    }
}

fn error_content() -> Content {
    Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
        ErrorBody::name(),
    ))))
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", error_content())
        .build()
}
